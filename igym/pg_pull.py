"""``python -m igym.data pull postgresql://… study.sqlite``: the server's database as one SQLite file.

The file a researcher archives, shares and analyses is the study's SQLite file, whatever the
server wrote to: pulling copies every table of the PostgreSQL database, row for row and
column for column, into a new file of the current schema — the file one server with
``--data`` would have written. It reads one snapshot (a read-only REPEATABLE READ
transaction), so a pull taken while workers still write is a consistent moment of the
study, and it writes a temporary file beside the target that becomes the target only when
complete: an interrupted pull leaves no half file.

The other data commands (``summary``, ``export``, ``replay``, ``report``) read a URL the
same way: they pull into a temporary file, read that, and delete it when they end
(:func:`pulled_copy`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from .errors import DataError
from .pg_sink import first_line, connect, psycopg_module, redact, schema_version
from .sink_rows import COLUMNS, SCHEMA_VERSION, TABLES

# The order rows are read in: each table's key, so the file is the same for the same data.
ORDER = {"participants": "participant_id", "visits": "visit_id", "answers": "visit_id, question",
         "questions": "visit_id, question", "episodes": "episode_id", "steps": "episode_id, step, agent",
         "events": "event_id", "uploads": "participant_id, batch_id", "resume": "participant_id",
         "quarantine": "quarantine_id"}
BATCH = 5000


def pull(url: str, path: str | Path, *, force: bool = False) -> dict[str, int]:
    """Copy the database at ``url`` into a new SQLite file at ``path``; returns rows per table.

    Refuses an existing ``path`` unless ``force`` (then the file is replaced whole).
    """
    from .sqlite_sink import SqliteSink

    path = Path(path)
    if path.exists() and not force:
        raise DataError(f"{path} exists — give a new file's name, or --force to replace it")
    if path.is_dir():
        raise DataError(f"{path} is a folder — give a file's name (study.sqlite)")
    psycopg = psycopg_module()
    where = redact(url)
    db = connect(url, autocommit=False)
    temp = path.with_name(f".{path.name}.pulling-{os.getpid()}")
    counts: dict[str, int] = {}
    try:
        db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        db.read_only = True
        version = schema_version(db, where)
        if version is None:
            raise DataError(f"{where}: no igym tables in this database — is it the one the server wrote "
                            f"(--database)?")
        if version > SCHEMA_VERSION:
            raise DataError(f"{where} has schema version {version}, newer than this igym's {SCHEMA_VERSION} — "
                            f"pull it with the igym version that wrote it")
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove(temp)
        SqliteSink(temp).close()  # a new file of the current schema
        lite = sqlite3.connect(temp, isolation_level=None)
        try:
            lite.execute("BEGIN")
            for table in TABLES:
                counts[table] = _copy_table(db, lite, table)
            lite.execute("COMMIT")
            lite.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to archive
        finally:
            lite.close()
        db.rollback()  # end the read-only snapshot
        if force:
            for suffix in ("-wal", "-shm"):  # a replaced file's journal must not be read into the new one
                _remove(path.with_name(path.name + suffix))
        os.replace(temp, path)
    except psycopg.Error as error:
        raise DataError(f"{where}: pulling failed ({first_line(error)})") from None
    except sqlite3.Error as error:
        raise DataError(f"{path}: writing the pulled file failed ({error})") from None
    finally:
        db.close()
        for suffix in ("", "-wal", "-shm"):
            _remove(temp.with_name(temp.name + suffix))
    return counts


def _copy_table(db: Any, lite: sqlite3.Connection, table: str) -> int:
    """Stream one table's rows from PostgreSQL into the file (a server-side cursor: steps can be millions).
    A table the database's older schema version lacks (its workers never opened it since) copies nothing."""
    with db.cursor() as probe:
        probe.execute("SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = %s", (table,))
        if probe.fetchone() is None:
            return 0
        probe.execute(f"SELECT * FROM {table} WHERE false")
        have = {d.name for d in probe.description}
    wanted = [c for c in COLUMNS[table] if c in have]
    insert = f"INSERT INTO {table} ({', '.join(wanted)}) VALUES ({','.join('?' * len(wanted))})"
    copied = 0
    with db.cursor(name=f"igym_pull_{table}") as cursor:
        cursor.execute(f"SELECT {', '.join(wanted)} FROM {table} ORDER BY {ORDER[table]}")
        while True:
            rows = cursor.fetchmany(BATCH)
            if not rows:
                break
            lite.executemany(insert, rows)
            copied += len(rows)
    return copied


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def pulled_copy(url: str) -> Path:
    """A temporary SQLite copy of the database at ``url``, deleted when the process ends.

    This is how ``summary``, ``export``, ``replay`` and ``report`` read a PostgreSQL URL: the
    same readers as for a file, on the same rows (the copy is what ``pull`` writes).
    """
    folder = tempfile.mkdtemp(prefix="igym-pull-")
    atexit.register(shutil.rmtree, folder, True)
    path = Path(folder) / "study.sqlite"
    pull(url, path)
    return path
