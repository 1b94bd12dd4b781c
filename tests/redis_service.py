"""A real redis-server for a test: started on a free port of 127.0.0.1, stopped after.

No persistence (``--save ''``, ``--appendonly no``), its files in the test's temporary
folder. :meth:`RedisServer.kill` and :meth:`RedisServer.start` let a test take Redis away
and bring it back on the same port — what a crashed or restarted Redis looks like to the
workers (it comes back empty, as an unpersisted Redis does).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import igym.server
import pytest
import redis

START_TIMEOUT_S = 10.0
ROOT = Path(__file__).resolve().parents[1]

# ``igym.server`` is this checkout's server/ when installed from it; from another worktree
# of the repository (an editable install points at one), look here first.
if str(ROOT / "server") not in igym.server.__path__:
    igym.server.__path__.insert(0, str(ROOT / "server"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_port_run(count: int) -> int:
    """A free port whose next ``count - 1`` ports are free too (a study's and its workers' own)."""
    for _ in range(50):
        port = free_port()
        if port + count < 65535 and all(_free(port + i) for i in range(1, count)):
            return port
    raise RuntimeError("no run of free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class RedisServer:
    """One redis-server process (restartable on the same port)."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: the cluster tests need a real one "
                        "(apt-get install redis-server, or brew install redis)", pytrace=False)
        self.binary = binary
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart) and wait until it answers PING."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.folder), "--protected-mode", "yes"], stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                if self.process.poll() is not None:
                    tail = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{tail}")
                try:
                    if client.ping():
                        return
                except redis.exceptions.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer on port {self.port} in {START_TIMEOUT_S} s")
                time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: gone at once, connections reset, nothing saved."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


@contextmanager
def running_redis(folder: Path) -> Iterator[RedisServer]:
    """A redis-server running in ``folder`` for the ``with`` block."""
    server = RedisServer(folder)
    for attempt in range(3):  # the free port can be taken between probing and binding
        try:
            server.start()
            break
        except RuntimeError:
            server.kill()
            if attempt == 2:
                raise
            server.port = free_port()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server for one test (import it into a test module to use it)."""
    with running_redis(tmp_path / "redis") as server:
        yield server
