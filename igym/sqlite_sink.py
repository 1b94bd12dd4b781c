"""The study's SQLite file: one file per study, written as the study runs (``SqliteSink``).

Data is sacred: records are written as they arrive and committed at least once a second
and at every episode end, in WAL mode, so a crash or ``kill -9`` loses at most the last
second and never corrupts what was committed. Nothing is held only in memory until the
end. The same schema is written by the desktop, by the server, and from browser uploads,
so one analysis script reads all three. The schema is documented in README ("Data") and
versioned in the ``schema_version`` table.

Tables:
- ``participants``: one row per participant id (condition, status, completion code, flow).
- ``visits``: one row per scene visit (times, outcome, parameters, answers).
- ``answers``: one row per answered question of a visit, the value as typed JSON, and when it
  was answered (``first_s``, ``last_s``: seconds since the page opened; ``changes``).
- ``questions``: one row per question of a survey visit, as the page showed it (kind, text,
  scale, labels, options in their order).
- ``episodes``: one row per episode (seed, times, steps, returns, outcome, seats, timing).
- ``steps``: one row per agent per step (action, who chose it, reward, flags, keys held, the
  press that made a keystroke action, the env's state fingerprint when it offers one).
- ``events``: key presses, focus changes, clock skips, anything timestamped.

The schema, the rows and the batching are shared with the PostgreSQL sink
(:mod:`igym.sink_rows`, :class:`igym.sink_base.StudySink`); this module is what is SQLite's
own: the file, WAL mode, and migrating files of older schema versions in place.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from .errors import DataError
from .sink_base import COMMIT_EVERY_S, StudySink
from .sink_rows import ADDED_COLUMNS, SCHEMA, SCHEMA_VERSION, Row, TABLES, json_text, statements, step_rows

__all__ = ["SqliteSink", "SCHEMA", "SCHEMA_VERSION", "TABLES", "COMMIT_EVERY_S", "step_rows"]

_json = json_text  # the name older code imported
_statements = statements

# Columns each version adds to the tables of the version before (migrated in place).
_V2_COLUMNS, _V3_COLUMNS, _V4_COLUMNS = ADDED_COLUMNS[2], ADDED_COLUMNS[3], ADDED_COLUMNS[4]


BUSY_TIMEOUT_S = 30.0

class SqliteSink(StudySink):
    """Writes records to the study's SQLite file, committing at least once a second.

    It is synchronous: the desktop calls it between frames. The server never calls it from
    its event loop; it hands it to :class:`igym.server.storage.Storage`, whose thread does
    every write, commit and read, so a slow disk never stalls a room's tick.
    """

    ERRORS = (sqlite3.Error, ValueError, TypeError, OverflowError)

    def __init__(self, path: str | Path, *, commit_every_s: float = COMMIT_EVERY_S) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Several server processes may share one file (--workers): a writer waits for another's
            # commit (at most about a second's batch) instead of failing.
            self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                      timeout=BUSY_TIMEOUT_S)
            self._open_schema()
        except (OSError, sqlite3.Error) as error:
            raise DataError(f"{self.path}: cannot be used as a data file ({error}) — give a new file's path or "
                            f"an igym .sqlite file") from None
        self._setup(commit_every_s)

    def _exec(self, sql: str, params: Row | list[Any] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, params)

    def _begin(self) -> None:
        """Take the write lock at once (BEGIN IMMEDIATE): a transaction that reads before it writes
        would otherwise fail outright when another process committed in between."""
        if not self._open:
            self._exec("BEGIN IMMEDIATE")
            self._open = True

    def _exec_many(self, sql: str, rows: list[Row]) -> None:
        self.db.executemany(sql, rows)

    def _close_db(self) -> None:
        self.db.close()

    def _open_schema(self) -> None:
        """Create the schema in a new file, migrate an older igym file, refuse anything else."""
        db = self.db
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables - {"sqlite_sequence"} and "schema_version" not in tables:
            raise DataError(f"{self.path} is an SQLite file of something else (tables: "
                            f"{', '.join(sorted(tables)[:5])}) — igym will not add its tables to it; give a new "
                            f"file's path")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        row = db.execute("SELECT version FROM schema_version").fetchone() if tables else None
        version = row[0] if row else None
        if version is not None and version > SCHEMA_VERSION:
            raise DataError(f"{self.path} has schema version {version}, newer than this igym's {SCHEMA_VERSION} "
                            f"— use the igym version that wrote it, or a new data file")
        db.execute("BEGIN")
        if version is not None and version < 2:
            self._migrate_to_v2()
        if version is not None and version < 3:
            self._migrate_to_v3()
        if version is not None and version < 4:
            self._migrate_to_v4()
        for statement in _statements(SCHEMA):
            db.execute(statement)
        if version == 3:
            self._add_columns(_V3_COLUMNS)  # a file of version 3 written before its answers had times
        if version is None:
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        else:
            db.execute("UPDATE schema_version SET version=?", (SCHEMA_VERSION,))
        db.execute("COMMIT")

    def _migrate_to_v2(self) -> None:
        """Add version 2's columns to a version 1 file (its rows stay as they are)."""
        self._add_columns(_V2_COLUMNS)

    def _add_columns(self, added: dict[str, tuple[str, ...]]) -> None:
        """Add the columns a table lacks (existing rows get NULL)."""
        for table, columns in added.items():
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if not have:
                continue  # the table itself is new: the schema creates it whole
            for column in columns:
                if column.split()[0] not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    def _migrate_to_v3(self) -> None:
        """Version 3 keys uploaded batches by participant and batch id (one page's batch id can no
        longer stand for another's), steps say when their move was asked for (``turn_ns``), and
        answers get their times (NULL for the answers already there: they were not timed); the
        resume and quarantine tables are new."""
        self._add_columns(_V3_COLUMNS)
        self.db.execute("ALTER TABLE uploads RENAME TO uploads_v2")
        self.db.execute(next(q for q in _statements(SCHEMA) if "TABLE IF NOT EXISTS uploads" in q))
        self.db.execute("INSERT INTO uploads (participant_id, batch_id, received_at, records) "
                        "SELECT participant_id, batch_id, received_at, records FROM uploads_v2")
        self.db.execute("DROP TABLE uploads_v2")

    def _migrate_to_v4(self) -> None:
        """Version 4 records what each page asked (the ``questions`` table, new and so created by
        the schema; older visits have no rows there) and the press that made a keystroke action
        (``steps.press``, NULL in the rows already there: they did not record it)."""
        self._add_columns(_V4_COLUMNS)
