"""A real PostgreSQL server for the tests: started in a temp folder on a free 127.0.0.1 port.

``pg_server`` (session scope) runs ``initdb`` and ``pg_ctl start`` from the Debian package
``postgresql`` (/usr/lib/postgresql/<version>/bin) and yields the server's base URL; it is
stopped and its folder deleted at the end. ``pg_url`` (per test) creates a new empty
database on it and yields that database's URL, so tests never see each other's rows.
initdb refuses to run as root, so as root the server runs as the ``postgres`` user (its
folder is chowned to it); as anyone else it runs as that user.

Without the package the fixture fails with the line to install it: tests never skip
silently (CI installs it: ``apt-get install -y postgresql``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

INSTALL = "apt-get install -y postgresql (Debian/Ubuntu: the tests start their own server)"


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        pytest.fail(f"PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb) — {INSTALL}", pytrace=False)
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresService:
    """One throwaway PostgreSQL cluster: ``start()``, ``url(database)``, ``create_database()``, ``stop()``."""

    def __init__(self) -> None:
        self.bin = _binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="igym-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        self.user = "postgres" if self.as_root else pwd.getpwuid(os.geteuid()).pw_name

    def _run(self, *command: str) -> subprocess.CompletedProcess:
        argv = [str(self.bin / command[0]), *command[1:]]
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=self.folder)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr.strip() or result.stdout}")
        return result

    def start(self) -> PostgresService:
        if self.as_root:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(f"no 'postgres' user to run PostgreSQL as (root may not) — {INSTALL}", pytrace=False)
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
                  "--locale=C")
        # fsync off: the cluster is thrown away after the run; nothing here tests the disk's durability.
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c max_connections=60")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w",
                  "-t", "60", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database's URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server of the test run's own (see the module's text)."""
    service = PostgresService().start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def pg_url(pg_server):
    """A new empty database on the test run's server: its URL."""
    return pg_server.create_database()
