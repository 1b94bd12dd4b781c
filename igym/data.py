"""The study's SQLite file: one file per study, written as the study runs.

Data is sacred: records are written as they arrive and committed at least once a second
and at every episode end, in WAL mode, so a crash or ``kill -9`` loses at most the last
second and never corrupts what was committed. Nothing is held only in memory until the
end. The same schema is written by the desktop, by the server, and from browser uploads,
so one analysis script reads all three. The schema is documented in README ("Data") and
versioned in the ``schema_version`` table.

Tables:
- ``participants``: one row per participant id.
- ``episodes``: one row per episode (seed, times, steps, returns, outcome, seats, timing).
- ``steps``: one row per agent per step (action, who chose it, reward, flags, keys held).
- ``events``: key presses, focus changes, clock skips, anything timestamped.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

from .records import EpisodeRecord, EventRecord, Record, StepRecord

SCHEMA_VERSION = 1
COMMIT_EVERY_S = 1.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
    participant_id TEXT PRIMARY KEY,
    experiment TEXT,
    created_at REAL NOT NULL,
    meta TEXT
);
CREATE TABLE IF NOT EXISTS episodes (
    episode_id TEXT PRIMARY KEY,
    participant_id TEXT NOT NULL,
    scene TEXT NOT NULL,
    episode_index INTEGER NOT NULL,
    seed INTEGER,
    started_at REAL NOT NULL,
    started_ns INTEGER NOT NULL,
    ended_at REAL,
    ended_ns INTEGER,
    steps INTEGER NOT NULL DEFAULT 0,
    returns TEXT,
    outcome TEXT,
    seats TEXT,
    timing TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    episode_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    agent TEXT NOT NULL,
    t_ns INTEGER NOT NULL,
    action TEXT NOT NULL,
    source TEXT NOT NULL,
    reward REAL NOT NULL,
    terminated INTEGER NOT NULL,
    truncated INTEGER NOT NULL,
    keys TEXT,
    key_t_ns INTEGER,
    extra TEXT,
    PRIMARY KEY (episode_id, step, agent)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    participant_id TEXT NOT NULL,
    episode_id TEXT,
    t_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT
);
CREATE INDEX IF NOT EXISTS events_by_participant ON events (participant_id, t_ns);
CREATE TABLE IF NOT EXISTS uploads (
    batch_id TEXT PRIMARY KEY,
    participant_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    records INTEGER NOT NULL
);
"""

_STEP_SQL = ("INSERT OR IGNORE INTO steps (episode_id, step, agent, t_ns, action, source, reward, terminated, "
             "truncated, keys, key_t_ns, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")
_EPISODE_SQL = ("INSERT OR REPLACE INTO episodes (episode_id, participant_id, scene, episode_index, seed, "
                "started_at, started_ns, ended_at, ended_ns, steps, returns, outcome, seats, timing) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
_EVENT_SQL = "INSERT INTO events (participant_id, episode_id, t_ns, kind, data) VALUES (?,?,?,?,?)"


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def step_rows(record: StepRecord) -> list[tuple]:
    """The ``steps`` rows (one per agent) of one step record."""
    extra = _json(record.extra)
    head = (record.episode_id, record.step)
    return [(*head, agent, record.t_ns, json.dumps(action), source, reward, int(term), int(trunc), keys,
             key_t, extra)
            for agent, action, source, reward, term, trunc, keys, key_t in record.rows()]


class SqliteSink:
    """Writes records to the study's SQLite file, committing at least once a second."""

    def __init__(self, path: str | Path, *, commit_every_s: float = COMMIT_EVERY_S) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        row = self.db.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            self.db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} has schema version {row[0]}, this igym writes {SCHEMA_VERSION}")
        self.commit_every_s = commit_every_s
        self._last_commit = time.monotonic()
        self._open = False
        self._pending: list[Record] = []
        self._episode_ended = False

    def _begin(self) -> None:
        if not self._open:
            self.db.execute("BEGIN")
            self._open = True

    def add_participant(self, participant_id: str, experiment: str | None = None,
                        meta: dict[str, Any] | None = None) -> None:
        """Register a participant (kept if already there) and commit at once."""
        self._begin()
        self.db.execute("INSERT OR IGNORE INTO participants (participant_id, experiment, created_at, meta) "
                        "VALUES (?,?,?,?)", (participant_id, experiment, time.time(), _json(meta)))
        self.commit()

    def write(self, records: Iterable[Record]) -> None:
        """Take records; they are written and committed once a second, and at every episode end.

        Holding them for up to a second costs nothing in safety (uncommitted rows are lost
        in a crash either way) and lets a server with hundreds of rooms write once a second.
        """
        pending = self._pending
        for record in records:
            pending.append(record)
            if type(record) is EpisodeRecord and record.outcome is not None:
                self._episode_ended = True
        if self._episode_ended or time.monotonic() - self._last_commit >= self.commit_every_s:
            self.commit()

    def flush(self) -> None:
        """Write pending records into the open transaction now (committed by the next commit)."""
        records, self._pending = self._pending, []
        if not records:
            return
        self._begin()
        steps: list[tuple] = []
        for record in records:
            if type(record) is StepRecord:
                steps.extend(step_rows(record))
                continue
            if steps:
                self.db.executemany(_STEP_SQL, steps)
                steps = []
            if type(record) is EpisodeRecord:
                self.db.execute(_EPISODE_SQL, (
                    record.episode_id, record.participant_id, record.scene, record.index, record.seed,
                    record.started_at, record.started_ns, record.ended_at, record.ended_ns, record.steps,
                    _json(record.returns), record.outcome, _json(record.seats), _json(record.timing)))
            elif type(record) is EventRecord:
                self.db.execute(_EVENT_SQL, (record.participant_id, record.episode_id, record.t_ns,
                                             record.kind, _json(record.data)))
            else:
                raise TypeError(f"not a record: {record!r}")
        if steps:
            self.db.executemany(_STEP_SQL, steps)

    def store_batch(self, batch_id: str, participant_id: str, records: list[Record]) -> bool:
        """Store an uploaded batch once and commit before returning (so the ack means "on disk").

        Returns False for a batch id already stored: a page that resends after a reload
        gets its acknowledgement again, and nothing is written twice.
        """
        self.flush()
        self._begin()
        cursor = self.db.execute("INSERT OR IGNORE INTO uploads (batch_id, participant_id, received_at, records) "
                                 "VALUES (?,?,?,?)", (batch_id, participant_id, time.time(), len(records)))
        new = cursor.rowcount == 1
        if new:
            self._pending = list(records)
        self.commit()
        return new

    def episode_owner(self, episode_id: str) -> str | None:
        """The participant an episode belongs to, if it is in the file."""
        self.flush()
        row = self.db.execute("SELECT participant_id FROM episodes WHERE episode_id=?", (episode_id,)).fetchone()
        return row[0] if row else None

    def commit(self) -> None:
        """Write what is pending and make it durable against a process crash."""
        self.flush()
        self._episode_ended = False
        if self._open:
            self.db.execute("COMMIT")
            self._open = False
        self._last_commit = time.monotonic()

    def close(self) -> None:
        self.commit()
        self.db.close()

    def __enter__(self) -> "SqliteSink":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
