"""Record types: what a session tells the data layer, as plain data.

The session emits these; sinks (SQLite natively and on the server, upload from the
browser) store them. They are kept apart from the SQLite code so the browser can build
and send them without ``sqlite3``. ``to_wire``/``from_wire`` give a msgpack-friendly list
form so records travel unchanged from a browser to the server.

One :class:`StepRecord` holds *every* agent of one env step (the sink writes one row per
agent): a step costs one small object, which keeps the session's overhead far below the
env's own step time.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, field
from typing import Any


@dataclass(slots=True)
class StepRecord:
    """One env step. Per-agent values are tuples in the order of ``agents``."""

    episode_id: str
    step: int
    t_ns: int
    agents: tuple[str, ...]
    actions: tuple[Any, ...]
    sources: tuple[str, ...]
    rewards: tuple[float, ...]
    terminated: tuple[bool, ...]
    truncated: tuple[bool, ...]
    keys: tuple[str, ...]
    key_t_ns: tuple[int | None, ...]
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class EpisodeRecord:
    """An episode's facts. Emitted at its start (``ended_at`` None) and again at its end."""

    episode_id: str
    participant_id: str
    scene: str
    index: int
    seed: int | None
    started_at: float
    started_ns: int
    seats: dict[str, Any]
    ended_at: float | None = None
    ended_ns: int | None = None
    steps: int = 0
    returns: dict[str, float] = field(default_factory=dict)
    outcome: str | None = None
    timing: dict[str, float] | None = None


@dataclass(slots=True)
class EventRecord:
    """Something that happened outside the env's step: a key press, focus lost, a clock skip."""

    participant_id: str
    t_ns: int
    kind: str
    data: dict[str, Any] | None = None
    episode_id: str | None = None


Record = StepRecord | EpisodeRecord | EventRecord
_TAGS: dict[type, int] = {StepRecord: 1, EpisodeRecord: 2, EventRecord: 3}
_TYPES: dict[int, type] = {v: k for k, v in _TAGS.items()}
_TUPLE_FIELDS = {"agents", "actions", "sources", "rewards", "terminated", "truncated", "keys", "key_t_ns"}


def to_wire(record: Record) -> list:
    """A list of plain values (msgpack/JSON-safe) that :func:`from_wire` turns back."""
    return [_TAGS[type(record)], *astuple(record)]


def from_wire(item: list) -> Record:
    """Rebuild a record from :func:`to_wire`'s form (tuples come back as tuples)."""
    cls = _TYPES[item[0]]
    values = list(item[1:])
    if cls is StepRecord:
        values = [tuple(v) if name in _TUPLE_FIELDS else v
                  for name, v in zip(StepRecord.__slots__, values)]
    return cls(*values)
