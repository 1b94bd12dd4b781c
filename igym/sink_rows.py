"""The study's tables, written once for every sink: schema, column lists, records → rows, SQL.

The SQLite file and the PostgreSQL database hold the same tables with the same columns and
the same values, so one analysis script, ``python -m igym.data`` and an archived file pulled
from the server's database all read alike. Everything that decides *what* a row holds lives
here; the sinks only decide *how* it reaches their database. The schema is written in
SQLite's words (:data:`SCHEMA`, as README documents it) and :func:`postgres_schema` says
the same in PostgreSQL's; the SQL statements use ``?`` placeholders and the upsert syntax
both databases share (``INSERT … ON CONFLICT``), and :func:`pyformat` turns them into
psycopg's ``%s``.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from .records import EpisodeRecord, EventRecord, ParticipantRecord, StepRecord, VisitRecord

Row = tuple[Any, ...]  # one row of a table, as the database driver takes it

SCHEMA_VERSION = 4

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
CREATE TABLE IF NOT EXISTS questions (
    visit_id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    scene TEXT NOT NULL,
    position INTEGER NOT NULL,
    question TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    required INTEGER,
    points INTEGER,
    labels TEXT,
    options TEXT,
    min_value REAL,
    max_value REAL,
    step REAL,
    definition TEXT NOT NULL,
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
    press TEXT,
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
# Columns each schema version added to tables that existed before it: an older file or database
# is migrated by adding them (the rows already there get NULL: they did not record them).
ADDED_COLUMNS: dict[int, dict[str, tuple[str, ...]]] = {
    2: {"participants": ("condition TEXT", "status TEXT", "completion_code TEXT", "ended_at REAL", "flow TEXT"),
        "episodes": ("visit_id TEXT",), "steps": ("fingerprint TEXT",)},
    3: {"answers": ("first_s REAL", "last_s REAL", "changes INTEGER"), "steps": ("turn_ns INTEGER",)},
    4: {"steps": ("press TEXT",)},  # the press that made a keystroke action (the questions table is new)
}
TABLES = ("participants", "visits", "answers", "questions", "episodes", "steps", "events", "uploads", "resume",
          "quarantine")


def statements(script: str) -> list[str]:
    """The statements of a schema script (run one by one inside a transaction)."""
    return [part.strip() for part in script.split(";") if part.strip()]


def table_columns(script: str = SCHEMA) -> dict[str, tuple[str, ...]]:
    """Each table's columns in order, read from the schema itself (so no list can drift from it)."""
    found: dict[str, tuple[str, ...]] = {}
    for statement in statements(script):
        match = re.match(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*)\)", statement, re.S)
        if match:
            lines = [line.strip() for line in match.group(2).split(",\n")]
            found[match.group(1)] = tuple(line.split()[0] for line in lines if not line.startswith("PRIMARY KEY"))
    return found


COLUMNS = table_columns()


def postgres_schema(script: str = SCHEMA) -> str:
    """The schema in PostgreSQL's words: 8-byte integers and floats (what SQLite's INTEGER and
    REAL hold), identity columns for the counters, and no ``WITHOUT ROWID`` (a SQLite storage
    choice). JSON stays TEXT, so every value reads back exactly as the SQLite file has it."""
    script = script.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
    script = re.sub(r"\bINTEGER\b", "BIGINT", script)
    script = re.sub(r"\bREAL\b", "DOUBLE PRECISION", script)
    return script.replace(") WITHOUT ROWID;", ");")


@cache
def pyformat(sql: str) -> str:
    """``?`` placeholders → psycopg's ``%s`` (the statements here hold no other ``?`` or ``%``)."""
    if "%" in sql:
        raise ValueError(f"a '%' in SQL meant for both databases: {sql}")
    return sql.replace("?", "%s")


def _insert(table: str, columns: tuple[str, ...], conflict: str) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({','.join('?' * len(columns))}) {conflict}")


def _replace(table: str, key: tuple[str, ...]) -> str:
    """Insert a whole row, or overwrite every column of the row with that key (SQLite's INSERT OR REPLACE)."""
    columns = COLUMNS[table]
    updates = ", ".join(f"{c}=excluded.{c}" for c in columns if c not in key)
    return _insert(table, columns, f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}")


STEP_SQL = _insert("steps", COLUMNS["steps"], "ON CONFLICT DO NOTHING")
EPISODE_SQL = _replace("episodes", ("episode_id",))
VISIT_SQL = _replace("visits", ("visit_id",))
ANSWER_SQL = _replace("answers", ("visit_id", "question"))
QUESTION_SQL = _replace("questions", ("visit_id", "question"))
RESUME_SQL = _replace("resume", ("participant_id",))
# A participant row is created by the first record and updated by later ones; created_at and
# meta keep their first values (a later record with meta None does not erase it).
PARTICIPANT_SQL = _insert("participants", COLUMNS["participants"],
                          "ON CONFLICT (participant_id) DO UPDATE SET experiment=excluded.experiment, "
                          "meta=coalesce(excluded.meta, participants.meta), "
                          "condition=coalesce(excluded.condition, participants.condition), "
                          "status=excluded.status, "
                          "completion_code=coalesce(excluded.completion_code, participants.completion_code), "
                          "ended_at=excluded.ended_at, flow=coalesce(excluded.flow, participants.flow)")
NEW_PARTICIPANT_SQL = _insert("participants", ("participant_id", "experiment", "created_at", "meta", "status"),
                              "ON CONFLICT DO NOTHING")
EVENT_SQL = _insert("events", ("participant_id", "episode_id", "t_ns", "kind", "data"), "")
UPLOAD_SQL = _insert("uploads", COLUMNS["uploads"], "ON CONFLICT DO NOTHING")
QUARANTINE_SQL = _insert("quarantine", ("received_at", "source", "kind", "record", "error"), "")


def json_text(value: Any) -> str | None:
    """JSON text; NaN and infinities become null (standard JSON has no such numbers)."""
    if value is None:
        return None
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(finite(value), separators=(",", ":"), allow_nan=False)


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities (also inside lists and dicts) replaced by None."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def step_rows(record: StepRecord) -> list[Row]:
    """The ``steps`` rows (one per agent) of one step record."""
    extra = json_text(record.extra)
    head = (record.episode_id, record.step)
    fingerprint, turn = record.fingerprint, record.turn_ns
    rows = record.rows()
    presses = record.press if record.press is not None else [None] * len(rows)
    return [(*head, agent, record.t_ns, "null" if action is None else json_text(action), source, reward, int(term),
             int(trunc), keys, key_t, extra, fingerprint, turn, press or None)
            for (agent, action, source, reward, term, trunc, keys, key_t), press in zip(rows, presses)]


def episode_row(record: EpisodeRecord) -> Row:
    """The ``episodes`` row of an episode record (its start, or its end over the start)."""
    return (record.episode_id, record.participant_id, record.scene, record.index, record.seed, record.started_at,
            record.started_ns, record.ended_at, record.ended_ns, record.steps, json_text(record.returns),
            record.outcome, json_text(record.seats), json_text(record.timing), record.visit_id)


def event_row(record: EventRecord) -> Row:
    return (record.participant_id, record.episode_id, record.t_ns, record.kind, json_text(record.data))


def participant_row(record: ParticipantRecord) -> Row:
    return (record.participant_id, record.experiment, record.created_at, json_text(record.meta), record.condition,
            record.status, record.completion_code, record.ended_at, json_text(record.flow))


def visit_row(visit: VisitRecord) -> Row:
    duration = None if visit.ended_at is None else round(visit.ended_at - visit.started_at, 6)
    return (visit.visit_id, visit.participant_id, visit.position, visit.scene, visit.kind, visit.started_at,
            visit.ended_at, duration, visit.outcome, json_text(visit.params), json_text(visit.answers))


def answer_rows(visit: VisitRecord) -> list[Row]:
    """One ``answers`` row per answered question of a visit, with when it was answered."""
    if not visit.answers:
        return []
    timings = visit.timings
    rows = []
    for question, value in visit.answers.items():
        # With times for the page: a question it did not time was never answered (0 changes);
        # without (an older client or page): unknown, NULL.
        times = (timings or {}).get(question) or ({"changes": 0} if timings is not None else {})
        rows.append((visit.visit_id, visit.participant_id, visit.scene, str(question), json.dumps(value),
                     finite(times.get("first_s")), finite(times.get("last_s")), times.get("changes")))
    return rows


def _scale(definition: dict[str, Any]) -> tuple[Any, Any, Any]:
    """A question's scale as numbers (lowest, highest, step): a Likert's 1..points, a slider's
    and a number's declared bounds (None where there are none)."""
    kind = definition.get("kind")
    if kind == "likert":
        return 1, definition.get("points"), 1
    if kind == "slider":
        return definition.get("min"), definition.get("max"), definition.get("step")
    if kind == "number":
        return definition.get("min"), definition.get("max"), 1 if definition.get("integer", True) else None
    return None, None, None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def question_rows(visit: VisitRecord) -> list[Row]:
    """One ``questions`` row per question of the page a visit showed (its definition as shown),
    from the record of the visit's start; none for other visits."""
    rows = []
    for position, definition in enumerate(visit.questions or ()):
        low, high, step = _scale(definition)
        labels, options = definition.get("labels"), definition.get("options")
        required = definition.get("required")
        points = definition.get("points") if definition.get("kind") == "likert" else None
        rows.append((visit.visit_id, visit.participant_id, visit.scene, position, str(definition["id"]),
                     str(definition["kind"]), str(definition["text"]), None if required is None else int(required),
                     points, json_text(list(labels)) if labels else None, json_text(list(options)) if options else None,
                     _number(low), _number(high), _number(step), json_text(definition)))
    return rows
