"""Reading a study's tables through any DB-API connection.

The summary and the report read the study through these few functions only, so the same
code can later read the server's PostgreSQL database (psycopg) as it reads SQLite today.
That is why the SQL here is plain: whole tables or constant filters, no placeholders, no
``PRAGMA`` and no SQLite JSON functions — JSON columns are decoded in Python. Older files
lack some tables and columns; those read as absent (an empty column list, ``None`` values)
so each caller can say what is missing instead of failing.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterator, Sequence

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# The JSON columns of each table, decoded on reading.
JSON_COLUMNS = {"participants": ("meta", "flow"), "visits": ("params", "answers"), "answers": ("value",),
                "questions": ("labels", "options", "definition"), "episodes": ("returns", "seats", "timing"),
                "events": ("data",)}

PARTICIPANT_COLUMNS = ("participant_id", "experiment", "created_at", "meta", "condition", "status",
                       "completion_code", "ended_at", "flow")
VISIT_COLUMNS = ("visit_id", "participant_id", "position", "scene", "kind", "started_at", "ended_at", "duration_s",
                 "outcome", "params", "answers")
ANSWER_COLUMNS = ("visit_id", "participant_id", "scene", "question", "value", "first_s", "last_s", "changes")
QUESTION_COLUMNS = ("visit_id", "participant_id", "scene", "position", "question", "kind", "text", "definition")
EPISODE_COLUMNS = ("episode_id", "participant_id", "scene", "episode_index", "seed", "started_at", "started_ns",
                   "ended_at", "ended_ns", "steps", "returns", "outcome", "seats", "timing", "visit_id")
EVENT_COLUMNS = ("participant_id", "episode_id", "t_ns", "kind", "data")


def decode_json(text: Any) -> Any:
    """A JSON column's value decoded (text that is not JSON is kept as it is)."""
    if text is None or not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _check(name: str) -> str:
    if not _NAME.match(name):  # names are the schema's own constants; never build SQL from data
        raise ValueError(f"not a plain SQL name: {name!r}")
    return name


def _driver_error(db: Any) -> type[BaseException]:
    """The DB-API ``Error`` class of the connection's driver (sqlite3.Error, psycopg.Error, ...)."""
    module = sys.modules.get(type(db).__module__.split(".")[0])
    error = getattr(module, "Error", None)
    return error if isinstance(error, type) and issubclass(error, BaseException) else Exception


def query(db: Any, sql: str) -> list[tuple[Any, ...]]:
    """All rows of one parameter-free SELECT."""
    cursor = db.cursor()
    try:
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def columns(db: Any, table: str) -> list[str]:
    """The columns of ``table``; empty when the database has no such table (older files)."""
    cursor = db.cursor()
    try:
        cursor.execute(f"SELECT * FROM {_check(table)} WHERE 1 = 0")
        return [str(d[0]) for d in cursor.description or ()]
    except _driver_error(db):
        try:
            db.rollback()  # PostgreSQL refuses further statements in a failed transaction
        except _driver_error(db):
            pass
        return []
    finally:
        cursor.close()


def iter_rows(db: Any, table: str, wanted: Sequence[str], *, where: str = "", order: Sequence[str] = (),
              have: Sequence[str] | None = None, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Rows of ``table`` as dicts of ``wanted`` columns, streamed (the steps table can be large).

    Columns the table lacks come back as ``None``; JSON columns are decoded. ``where`` is a
    constant condition written by the caller (never data), ``order`` column names.
    """
    have = columns(db, table) if have is None else have
    present = [_check(c) for c in wanted if c in have]
    if not present:
        return
    decode = set(JSON_COLUMNS.get(table, ())) & set(present)
    order_by = [_check(c) for c in order if c in have]
    sql = f"SELECT {', '.join(present)} FROM {_check(table)}"
    sql += f" WHERE {where}" if where else ""
    sql += f" ORDER BY {', '.join(order_by)}" if order_by else ""
    cursor = db.cursor()
    try:
        cursor.execute(sql)
        while True:
            chunk = cursor.fetchmany(batch)
            if not chunk:
                break
            for values in chunk:
                row = dict.fromkeys(wanted)
                for name, value in zip(present, values):
                    row[name] = decode_json(value) if name in decode else value
                yield row
    finally:
        cursor.close()


def read_rows(db: Any, table: str, wanted: Sequence[str], *, where: str = "",
              order: Sequence[str] = ()) -> list[dict[str, Any]]:
    """:func:`iter_rows` as a list."""
    return list(iter_rows(db, table, wanted, where=where, order=order))


def count(db: Any, table: str, column: str | None = None) -> int:
    """Rows of ``table`` (with ``column`` not null, when given); 0 for a missing table or column."""
    have = columns(db, table)
    if not have or (column is not None and column not in have):
        return 0
    what = f"count({_check(column)})" if column else "count(*)"
    return int(query(db, f"SELECT {what} FROM {_check(table)}")[0][0] or 0)


def human_seats(episode: dict[str, Any]) -> dict[str, str]:
    """The human seats of an episode and who held each: ``{agent: participant_id}``.

    ``episodes.seats`` says ``"human"`` on the desktop (the episode's own participant) and
    ``{"kind": "human", "participant": ...}`` on the server (each seat its own person);
    anything else (a policy's description, ``"random"``) is not a person.
    """
    seats = episode.get("seats")
    if not isinstance(seats, dict):
        return {}
    humans: dict[str, str] = {}
    for agent, seat in seats.items():
        if seat == "human":
            humans[str(agent)] = episode["participant_id"]
        elif isinstance(seat, dict) and seat.get("kind") == "human":
            humans[str(agent)] = seat.get("participant") or episode["participant_id"]
    return humans


@dataclass
class StudyData:
    """A study's small tables, decoded: what the summary and the report compute from.

    ``tables`` holds each table's columns (empty: the file has no such table). The steps
    table is not loaded (it is the big one); read it with :func:`iter_rows` when needed.
    """

    tables: dict[str, list[str]]
    participants: list[dict[str, Any]] = field(default_factory=list)
    visits: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    questions: list[dict[str, Any]] = field(default_factory=list)  # each survey visit's questions as shown
    episodes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def has(self, table: str, column: str | None = None) -> bool:
        have = self.tables.get(table, [])
        return bool(have) and (column is None or column in have)


def read_study(db: Any, event_kinds: Sequence[str] = ()) -> StudyData:
    """Participants, visits, answers, the questions asked and episodes, and the events of
    ``event_kinds`` (only those: key presses make the events table nearly as big as the steps
    table). Files written before igym recorded the questions have none (an empty list)."""
    names = ("participants", "visits", "answers", "questions", "episodes", "events", "steps")
    data = StudyData({name: columns(db, name) for name in names})
    data.participants = read_rows(db, "participants", PARTICIPANT_COLUMNS, order=("created_at", "participant_id"))
    data.visits = read_rows(db, "visits", VISIT_COLUMNS, order=("position", "started_at"))
    data.answers = read_rows(db, "answers", ANSWER_COLUMNS, order=("scene", "question"))
    data.questions = read_rows(db, "questions", QUESTION_COLUMNS, order=("visit_id", "position"))
    data.episodes = read_rows(db, "episodes", EPISODE_COLUMNS,
                              order=("participant_id", "started_ns", "episode_index"))
    if event_kinds and data.has("events"):
        kinds = ", ".join("'" + _check(kind) + "'" for kind in event_kinds)
        order = ("event_id",) if "event_id" in data.tables["events"] else ("t_ns",)
        data.events = read_rows(db, "events", EVENT_COLUMNS, where=f"kind IN ({kinds})", order=order)
    return data
