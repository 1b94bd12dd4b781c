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
- ``episodes``: one row per episode (seed, times, steps, returns, outcome, seats, timing).
- ``steps``: one row per agent per step (action, who chose it, reward, flags, keys held,
  the env's state fingerprint when it offers one).
- ``events``: key presses, focus changes, clock skips, anything timestamped.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from .errors import DataError
from .records import EpisodeRecord, EventRecord, ParticipantRecord, Record, StepRecord, VisitRecord, ends_something

SCHEMA_VERSION = 3
COMMIT_EVERY_S = 1.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
    participant_id TEXT PRIMARY KEY,
    experiment TEXT,
    created_at REAL NOT NULL,
    meta TEXT,
    condition TEXT,
    status TEXT,
    completion_code TEXT,
    ended_at REAL,
    flow TEXT
);
CREATE TABLE IF NOT EXISTS visits (
    visit_id TEXT PRIMARY KEY,
    participant_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    scene TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    duration_s REAL,
    outcome TEXT,
    params TEXT,
    answers TEXT
);
CREATE TABLE IF NOT EXISTS answers (
    visit_id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    scene TEXT NOT NULL,
    question TEXT NOT NULL,
    value TEXT,
    first_s REAL,
    last_s REAL,
    changes INTEGER,
    PRIMARY KEY (visit_id, question)
) WITHOUT ROWID;
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
    timing TEXT,
    visit_id TEXT
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
    fingerprint TEXT,
    turn_ns INTEGER,
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
    participant_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    records INTEGER NOT NULL,
    PRIMARY KEY (participant_id, batch_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS resume (
    participant_id TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    snapshot TEXT,
    updated_at REAL NOT NULL,
    parked_at REAL
);
CREATE TABLE IF NOT EXISTS quarantine (
    quarantine_id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    source TEXT,
    kind TEXT NOT NULL,
    record TEXT NOT NULL,
    error TEXT NOT NULL
);
"""
TABLES = ("participants", "visits", "answers", "episodes", "steps", "events", "uploads", "resume", "quarantine")

# Columns added by schema version 2 to tables of version 1 files (migrated in place).
_V2_COLUMNS = {"participants": ("condition TEXT", "status TEXT", "completion_code TEXT", "ended_at REAL",
                                "flow TEXT"),
               "episodes": ("visit_id TEXT",), "steps": ("fingerprint TEXT",)}
# Columns version 3 adds to tables of version 2 files: each answer's times, each move's turn.
_V3_COLUMNS = {"answers": ("first_s REAL", "last_s REAL", "changes INTEGER"), "steps": ("turn_ns INTEGER",)}

_STEP_SQL = ("INSERT OR IGNORE INTO steps (episode_id, step, agent, t_ns, action, source, reward, terminated, "
             "truncated, keys, key_t_ns, extra, fingerprint, turn_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
_EPISODE_SQL = ("INSERT OR REPLACE INTO episodes (episode_id, participant_id, scene, episode_index, seed, "
                "started_at, started_ns, ended_at, ended_ns, steps, returns, outcome, seats, timing, visit_id) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
# A participant row is created by the first record and updated by later ones; created_at and
# meta keep their first values (a later record with meta None does not erase it).
_PARTICIPANT_SQL = ("INSERT INTO participants (participant_id, experiment, created_at, meta, condition, status, "
                    "completion_code, ended_at, flow) VALUES (?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(participant_id) DO UPDATE SET experiment=excluded.experiment, "
                    "meta=coalesce(excluded.meta, meta), condition=coalesce(excluded.condition, condition), "
                    "status=excluded.status, completion_code=coalesce(excluded.completion_code, completion_code), "
                    "ended_at=excluded.ended_at, flow=coalesce(excluded.flow, flow)")
_VISIT_SQL = ("INSERT OR REPLACE INTO visits (visit_id, participant_id, position, scene, kind, started_at, ended_at, "
              "duration_s, outcome, params, answers) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
_ANSWER_SQL = ("INSERT OR REPLACE INTO answers (visit_id, participant_id, scene, question, value, first_s, last_s, "
               "changes) VALUES (?,?,?,?,?,?,?,?)")
_EVENT_SQL = "INSERT INTO events (participant_id, episode_id, t_ns, kind, data) VALUES (?,?,?,?,?)"


def _statements(script: str) -> list[str]:
    """The statements of a schema script (run one by one inside a transaction)."""
    return [part.strip() for part in script.split(";") if part.strip()]


def _json(value: Any) -> str | None:
    """JSON text; NaN and infinities become null (standard JSON has no such numbers)."""
    if value is None:
        return None
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), separators=(",", ":"), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def step_rows(record: StepRecord) -> list[tuple[Any, ...]]:
    """The ``steps`` rows (one per agent) of one step record."""
    extra = _json(record.extra)
    head = (record.episode_id, record.step)
    fingerprint, turn = record.fingerprint, record.turn_ns
    return [(*head, agent, record.t_ns, "null" if action is None else _json(action), source, reward, int(term),
             int(trunc), keys, key_t, extra, fingerprint, turn)
            for agent, action, source, reward, term, trunc, keys, key_t in record.rows()]


class SqliteSink:
    """Writes records to the study's SQLite file, committing at least once a second.

    It is synchronous: the desktop calls it between frames. The server never calls it from
    its event loop; it hands it to :class:`igym.server.storage.Storage`, whose thread does
    every write, commit and read, so a slow disk never stalls a room's tick.
    """

    def __init__(self, path: str | Path, *, commit_every_s: float = COMMIT_EVERY_S) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._open_schema()
        except (OSError, sqlite3.Error) as error:
            raise DataError(f"{self.path}: cannot be used as a data file ({error}) — give a new file's path or "
                            f"an igym .sqlite file") from None
        self.commit_every_s = commit_every_s
        self._last_commit = time.monotonic()
        self._open = False
        self._pending: list[Record] = []
        self._db_lock = threading.RLock()  # the connection: one user at a time
        self._pending_lock = threading.Lock()  # the queue: held only to append or swap
        self._closed = False
        self.quarantined = 0

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

    def _begin(self) -> None:
        if not self._open:
            self.db.execute("BEGIN")
            self._open = True

    def add_participant(self, participant_id: str, experiment: str | None = None,
                        meta: dict[str, Any] | None = None) -> None:
        """Register a participant (kept if already there) and commit at once."""
        with self._db_lock:
            self._begin()
            self.db.execute("INSERT OR IGNORE INTO participants (participant_id, experiment, created_at, meta, "
                            "status) VALUES (?,?,?,?,?)", (participant_id, experiment, time.time(), _json(meta),
                                                          "started"))
            self.commit()

    def participant_status(self, participant_id: str) -> str | None:
        """``started``/``completed``/``declined``/``aborted`` for a known participant, else None."""
        with self._db_lock:
            self.flush()
            row = self.db.execute("SELECT status FROM participants WHERE participant_id=?",
                                  (participant_id,)).fetchone()
        return None if row is None else (row[0] or "started")

    def condition_counts(self, experiment: str) -> dict[str, int]:
        """How many participants of ``experiment`` each condition has (declined ones do not count:
        they never saw the condition, so balancing should not count them)."""
        with self._db_lock:
            self.flush()
            rows = self.db.execute("SELECT condition, count(*) FROM participants WHERE experiment=? AND condition "
                                   "IS NOT NULL AND coalesce(status, '') != 'declined' GROUP BY condition",
                                   (experiment,)).fetchall()
        return {condition: count for condition, count in rows}

    def write(self, records: Iterable[Record]) -> None:
        """Take records; they are written and committed once a second, and at every episode end.

        Holding them for up to a second costs nothing in safety (uncommitted rows are lost
        in a crash either way) and lets a server with hundreds of rooms write once a second.
        """
        urgent = False
        with self._pending_lock:
            pending = self._pending
            for record in records:
                pending.append(record)
                if type(record) is not StepRecord and ends_something(record):
                    urgent = True  # committed at once (see ends_something)
        if urgent or time.monotonic() - self._last_commit >= self.commit_every_s:
            self.commit()

    def flush(self) -> None:
        """Write pending records into the open transaction now (committed by the next commit)."""
        with self._pending_lock:
            records, self._pending = self._pending, []
        if records:
            with self._db_lock:
                self._insert(records)

    def _insert(self, records: list[Record]) -> None:
        """Insert records into the open transaction; a record that cannot be stored is kept in the
        ``quarantine`` table with its source and the reason, and the others are stored."""
        self._begin()
        self.db.execute("SAVEPOINT igym_records")
        try:
            self._insert_all(records)
        except (sqlite3.Error, ValueError, TypeError, OverflowError):
            self.db.execute("ROLLBACK TO igym_records")
            for record in records:  # one by one: only the unstorable ones stay out
                self.db.execute("SAVEPOINT igym_record")
                try:
                    self._insert_all([record])
                except (sqlite3.Error, ValueError, TypeError, OverflowError) as error:
                    self.db.execute("ROLLBACK TO igym_record")
                    self._quarantine(record, error)
                self.db.execute("RELEASE igym_record")
        self.db.execute("RELEASE igym_records")

    def _quarantine(self, record: Any, error: BaseException, source: str | None = None) -> None:
        source = source or getattr(record, "participant_id", None) or getattr(record, "episode_id", None)
        logging.getLogger("igym.data").error("quarantined a %s from %s: %s", type(record).__name__, source, error)
        self.quarantined += 1
        self.db.execute("INSERT INTO quarantine (received_at, source, kind, record, error) VALUES (?,?,?,?,?)",
                        (time.time(), None if source is None else str(source)[:200], type(record).__name__,
                         repr(record)[:100_000], f"{type(error).__name__}: {error}"[:1000]))

    def _insert_all(self, records: list[Record]) -> None:
        steps: list[tuple[Any, ...]] = []
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
                    _json(record.returns), record.outcome, _json(record.seats), _json(record.timing),
                    record.visit_id))
            elif type(record) is EventRecord:
                self.db.execute(_EVENT_SQL, (record.participant_id, record.episode_id, record.t_ns,
                                             record.kind, _json(record.data)))
            elif type(record) is VisitRecord:
                self._write_visit(record)
            elif type(record) is ParticipantRecord:
                self.db.execute(_PARTICIPANT_SQL, (
                    record.participant_id, record.experiment, record.created_at, _json(record.meta),
                    record.condition, record.status, record.completion_code, record.ended_at, _json(record.flow)))
            else:
                raise TypeError(f"not a record: {record!r}")
        if steps:
            self.db.executemany(_STEP_SQL, steps)

    def _write_visit(self, visit: VisitRecord) -> None:
        duration = None if visit.ended_at is None else round(visit.ended_at - visit.started_at, 6)
        self.db.execute(_VISIT_SQL, (visit.visit_id, visit.participant_id, visit.position, visit.scene, visit.kind,
                                     visit.started_at, visit.ended_at, duration, visit.outcome, _json(visit.params),
                                     _json(visit.answers)))
        if visit.answers:
            timings = visit.timings
            rows = []
            for question, value in visit.answers.items():
                # With times for the page: a question it did not time was never answered (0 changes);
                # without (an older client or page): unknown, NULL.
                times = (timings or {}).get(question) or ({"changes": 0} if timings is not None else {})
                rows.append((visit.visit_id, visit.participant_id, visit.scene, str(question), json.dumps(value),
                             _finite(times.get("first_s")), _finite(times.get("last_s")), times.get("changes")))
            self.db.executemany(_ANSWER_SQL, rows)

    def store_batch(self, batch_id: str, participant_id: str, records: list[Record]) -> bool:
        """Store an uploaded batch once, all or nothing, and commit before returning (so the ack
        means "on disk").

        Returns False for a batch id this participant already stored: a page that resends after
        a reload gets its acknowledgement again, and nothing is written twice. A batch that
        cannot be stored whole goes to the ``quarantine`` table as one row (nothing of it in
        the study's tables), so it is on disk for the researcher and not resent forever.
        """
        with self._db_lock:
            self.flush()
            self._begin()
            self.db.execute("SAVEPOINT igym_batch")
            try:
                cursor = self.db.execute("INSERT OR IGNORE INTO uploads (participant_id, batch_id, received_at, "
                                         "records) VALUES (?,?,?,?)",
                                         (participant_id, batch_id, time.time(), len(records)))
                new = cursor.rowcount == 1
                if new:
                    self._insert_all(list(records))
            except (sqlite3.Error, ValueError, TypeError, OverflowError) as error:
                self.db.execute("ROLLBACK TO igym_batch")
                self._quarantine(records, error, source=f"upload {participant_id} {batch_id}")
                new = False
            self.db.execute("RELEASE igym_batch")
            self.commit()
        return new

    # --- where a participant is, between connections (the server) ------------------------------

    def checkpoint(self, participant_id: str, token_sha256: str, snapshot: dict[str, Any] | None,
                   parked: bool = False) -> None:
        """Keep what a participant needs to resume (their study run's snapshot and the hash of their
        reconnect token) — after every scene change, so a restarted server loses nobody's place;
        ``parked``: they are away and no longer held in the server's memory."""
        with self._db_lock:
            self.flush()
            self._begin()
            now = time.time()
            self.db.execute("INSERT OR REPLACE INTO resume (participant_id, token_sha256, snapshot, updated_at, "
                            "parked_at) VALUES (?,?,?,?,?)",
                            (participant_id, token_sha256, _json(snapshot), now, now if parked else None))
            self.commit()

    def resume_point(self, participant_id: str) -> tuple[str | None, tuple[str, dict[str, Any] | None] | None]:
        """The participant's status and, if they can resume, (token hash, snapshot)."""
        with self._db_lock:
            self.flush()
            row = self.db.execute("SELECT status FROM participants WHERE participant_id=?",
                                  (participant_id,)).fetchone()
            point = self.db.execute("SELECT token_sha256, snapshot FROM resume WHERE participant_id=?",
                                    (participant_id,)).fetchone()
        status = None if row is None else (row[0] or "started")
        return status, (None if point is None else (point[0], None if point[1] is None else json.loads(point[1])))

    def forget_resume_point(self, participant_id: str) -> None:
        with self._db_lock:
            self._begin()
            self.db.execute("DELETE FROM resume WHERE participant_id=?", (participant_id,))
            self.commit()

    def park_everyone(self) -> int:
        """A server starting holds nobody in memory: whoever could resume counts as away from now."""
        with self._db_lock:
            self._begin()
            count = self.db.execute("UPDATE resume SET parked_at=? WHERE parked_at IS NULL", (time.time(),)).rowcount
            self.commit()
        return count

    def abandon_parked(self, before: float) -> list[str]:
        """Participants away since before ``before`` have left the study: their open visit and their
        status end as ``aborted`` (event ``page_abandoned``), and they can no longer resume."""
        with self._db_lock:
            self.flush()
            self._begin()
            now = time.time()
            rows = self.db.execute("SELECT participant_id, snapshot FROM resume WHERE parked_at < ?",
                                   (before,)).fetchall()
            for participant_id, snapshot in rows:
                visit = (json.loads(snapshot).get("open_visit") if snapshot else None) or {}
                if visit.get("visit_id"):
                    self.db.execute("UPDATE visits SET ended_at=?, duration_s=round(? - started_at, 6), "
                                    "outcome='aborted' WHERE visit_id=? AND ended_at IS NULL",
                                    (now, now, visit["visit_id"]))
                if snapshot:
                    self.db.execute("UPDATE participants SET status='aborted', ended_at=? WHERE participant_id=? "
                                    "AND coalesce(status, 'started')='started'", (now, participant_id))
                    self.db.execute(_EVENT_SQL, (participant_id, None, time.monotonic_ns(), "page_abandoned",
                                                 _json({"visit": visit.get("visit_id"), "parked": True})))
                self.db.execute("DELETE FROM resume WHERE participant_id=?", (participant_id,))
            self.commit()
        return [row[0] for row in rows]

    def end_open_episodes(self, visit_id: str, outcome: str) -> int:
        """Episodes of a visit left open (their server went away) end with ``outcome``."""
        with self._db_lock:
            self.flush()
            self._begin()
            count = self.db.execute("UPDATE episodes SET outcome=?, ended_at=? WHERE visit_id=? AND outcome IS NULL",
                                    (outcome, time.time(), visit_id)).rowcount
            self.commit()
        return count

    def study_overview(self, experiment: str, recent: int = 300) -> dict[str, Any]:
        """The whole study as the data has it (every participant, also from before a restart):
        statuses, conditions, completion codes issued, how many reached each scene, and the most
        recently active participants — what the experimenter's dashboard counts from."""
        with self._db_lock:
            self.flush()
            db = self.db
            statuses = dict(db.execute("SELECT coalesce(status, 'started'), count(*) FROM participants "
                                       "WHERE experiment=? GROUP BY 1", (experiment,)).fetchall())
            conditions = dict(db.execute("SELECT condition, count(*) FROM participants WHERE experiment=? AND "
                                         "condition IS NOT NULL GROUP BY condition", (experiment,)).fetchall())
            codes = db.execute("SELECT count(*) FROM participants WHERE experiment=? AND completion_code IS NOT "
                               "NULL", (experiment,)).fetchone()[0]
            reached = dict(db.execute("SELECT v.scene, count(DISTINCT v.participant_id) FROM visits v JOIN "
                                      "participants p USING (participant_id) WHERE p.experiment=? GROUP BY v.scene",
                                      (experiment,)).fetchall())
            rows = db.execute(
                "SELECT p.participant_id, coalesce(p.status, 'started'), p.condition, p.completion_code, "
                "coalesce(p.ended_at, p.created_at), r.parked_at, "
                "(SELECT scene FROM visits v WHERE v.participant_id = p.participant_id ORDER BY position DESC "
                "LIMIT 1) FROM participants p LEFT JOIN resume r USING (participant_id) WHERE p.experiment=? "
                "ORDER BY coalesce(p.ended_at, p.created_at) DESC LIMIT ?", (experiment, recent)).fetchall()
        return {"statuses": statuses, "conditions": conditions, "codes_issued": codes, "reached": reached,
                "recent": [{"participant": pid, "status": status, "condition": condition, "code": code,
                            "since": since, "parked_at": parked_at, "scene": scene}
                           for pid, status, condition, code, since, parked_at, scene in rows]}

    def episode_owner(self, episode_id: str) -> str | None:
        """The participant an episode belongs to, if it is in the file."""
        with self._db_lock:
            self.flush()
            row = self.db.execute("SELECT participant_id FROM episodes WHERE episode_id=?", (episode_id,)).fetchone()
        return row[0] if row else None

    def visit_owner(self, visit_id: str) -> str | None:
        """The participant a visit belongs to, if it is in the file."""
        with self._db_lock:
            self.flush()
            row = self.db.execute("SELECT participant_id FROM visits WHERE visit_id=?", (visit_id,)).fetchone()
        return row[0] if row else None

    def commit(self) -> None:
        """Write what is pending and make it durable against a process crash."""
        with self._db_lock:
            self.flush()
            if self._open:
                self.db.execute("COMMIT")
                self._open = False
            self._last_commit = time.monotonic()

    def close(self) -> None:
        """Commit what is pending and close the file (a second call does nothing)."""
        with self._db_lock:
            if self._closed:
                return
            self.commit()
            self.db.close()
            self._closed = True

    def __enter__(self) -> SqliteSink:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

