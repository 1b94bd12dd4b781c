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
from typing import Any, NamedTuple


class StepRecord(NamedTuple):
    """One env step of every active agent.

    Per-agent values are kept as the session had them (dicts keyed by the env's agent ids,
    lists in the order of ``agents``) and turned into rows by the sink, and the record is a
    NamedTuple: one is made every step, so it must cost next to nothing.
    """

    episode_id: str
    step: int
    t_ns: int
    agents: tuple[Any, ...]
    actions: dict[Any, Any]
    sources: list[str]
    rewards: dict[Any, float]
    terminated: dict[Any, bool]
    truncated: dict[Any, bool]
    keys: list[str]
    key_t_ns: list[int | None]
    cut: bool = False
    extra: dict[str, Any] | None = None

    def rows(self) -> list[tuple]:
        """(agent, action, source, reward, terminated, truncated, keys, key_t_ns) per agent."""
        return [(str(agent), plain(self.actions[agent]), source, float(self.rewards.get(agent, 0.0)),
                 bool(self.terminated.get(agent, False)), bool(self.truncated.get(agent, False)) or self.cut,
                 keys, key_t)
                for agent, source, keys, key_t in zip(self.agents, self.sources, self.keys, self.key_t_ns)]


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

_PLAIN_TYPES = (bool, int, float, str)


def plain(value: Any) -> Any:
    """A JSON/msgpack-safe copy of an action or info value (numpy scalars and arrays → Python)."""
    if value is None or type(value) in _PLAIN_TYPES:
        return value
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "ndim", 1) == 0:
        return item()
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return tolist()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)


def to_wire(record: Record) -> list:
    """A list of plain values (msgpack/JSON-safe) that :func:`from_wire` turns back."""
    if type(record) is StepRecord:
        names = [str(a) for a in record.agents]
        per_agent = list(zip(*record.rows())) if record.agents else [[]] * 8
        return [1, record.episode_id, record.step, record.t_ns, names, list(per_agent[1]), list(per_agent[2]),
                list(per_agent[3]), list(per_agent[4]), list(per_agent[5]), list(per_agent[6]),
                list(per_agent[7]), record.extra]
    return [_TAGS[type(record)], *astuple(record)]


def from_wire(item: list) -> Record:
    """Rebuild a record from :func:`to_wire`'s form (tuples come back as tuples)."""
    cls = _TYPES[item[0]]
    if cls is StepRecord:
        (episode_id, step, t_ns, names, actions, sources, rewards, terms, truncs, keys, key_times,
         extra) = item[1:]
        return StepRecord(episode_id, step, t_ns, tuple(names), dict(zip(names, actions)), list(sources),
                          dict(zip(names, rewards)), dict(zip(names, terms)), dict(zip(names, truncs)),
                          list(keys), list(key_times), False, extra)
    return cls(*item[1:])
