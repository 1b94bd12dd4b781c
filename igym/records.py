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
from collections.abc import Sequence
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
    fingerprint: str | None = None
    turn_ns: int | None = None  # pace="on_input": when this move was asked for (key_t_ns - turn_ns: decision time)
    press: list[str | None] | None = None  # per agent: the key (or click) whose press made a keystroke action

    def rows(self) -> list[tuple[str, Any, str, float, bool, bool, str, int | None]]:
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
    visit_id: str | None = None

    def copy(self) -> EpisodeRecord:
        """A snapshot to hand to a sink while the episode goes on changing this one."""
        return EpisodeRecord(self.episode_id, self.participant_id, self.scene, self.index, self.seed,
                             self.started_at, self.started_ns, dict(self.seats), self.ended_at, self.ended_ns,
                             self.steps, dict(self.returns), self.outcome, self.timing, self.visit_id)


@dataclass(slots=True)
class ParticipantRecord:
    """A participant's facts: emitted when they start, and again whenever their status changes.

    ``status`` is ``started``, ``completed``, ``declined`` (consent refused) or ``aborted``
    (the window closed, the experimenter stopped the run); ``flow`` is the plan this
    participant follows (seed of the random orders and the scene names in order), so an
    analysis can tell which order a participant saw without re-running the randomisation.
    """

    participant_id: str
    experiment: str
    created_at: float
    condition: str | None = None
    status: str = "started"
    completion_code: str | None = None
    ended_at: float | None = None
    flow: dict[str, Any] | None = None
    meta: dict[str, Any] | None = None


@dataclass(slots=True)
class VisitRecord:
    """One visit of one scene by one participant. Emitted at its start and again at its end.

    Every visit has its own id, so a scene shown twice (``Repeat``, a practice block met
    again) never overwrites the other visit's answers; episodes point at their visit.
    ``answers`` maps question ids to typed values (int, float, str, list, or None for a
    skipped optional question); ``timings`` maps them to when they were answered
    (``first_s``, ``last_s``: seconds since the page opened, ``changes``; see
    :mod:`igym.answer_times`). ``questions`` holds the page's question definitions as it was
    shown (:func:`igym.questions.definition`: kind, text, scale, options in their order), on
    the record of the visit's start, so an analysis — and the report — knows every question's
    real scale, not only the answers given. ``timings`` and ``questions`` are the last fields,
    so records of pages built before them still rebuild (:func:`from_wire` gives them None).
    """

    visit_id: str
    participant_id: str
    position: int
    scene: str
    kind: str
    started_at: float
    ended_at: float | None = None
    outcome: str | None = None
    answers: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    timings: dict[str, dict[str, Any]] | None = None
    questions: list[dict[str, Any]] | None = None


@dataclass(slots=True)
class EventRecord:
    """Something that happened outside the env's step: a key press, focus lost, a clock skip."""

    participant_id: str
    t_ns: int
    kind: str
    data: dict[str, Any] | None = None
    episode_id: str | None = None


Record = StepRecord | EpisodeRecord | EventRecord | ParticipantRecord | VisitRecord


def ends_something(record: Record) -> bool:
    """An episode's end, a visit's end or a participant's status change: sinks store these at
    once (the next scene must not start before what the participant just did is stored)."""
    if isinstance(record, EpisodeRecord):
        return record.outcome is not None
    if isinstance(record, VisitRecord):
        return record.ended_at is not None
    return isinstance(record, ParticipantRecord)
_TAGS: dict[type[Record], int] = {StepRecord: 1, EpisodeRecord: 2, EventRecord: 3, ParticipantRecord: 4,
                                   VisitRecord: 5}
_TYPES: dict[int, type[Record]] = {v: k for k, v in _TAGS.items()}

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


def to_wire(record: Record) -> list[Any]:
    """A list of plain values (msgpack/JSON-safe) that :func:`from_wire` turns back.

    A field added at the end of a record (a step's ``press``, a visit's ``questions``) is
    left out when it is None, so such a record has the form it had before the field existed."""
    if isinstance(record, StepRecord):
        names = [str(a) for a in record.agents]
        per_agent: list[Sequence[Any]] = list(zip(*record.rows())) if record.agents else [[]] * 8
        item = [1, record.episode_id, record.step, record.t_ns, names, list(per_agent[1]), list(per_agent[2]),
                list(per_agent[3]), list(per_agent[4]), list(per_agent[5]), list(per_agent[6]),
                list(per_agent[7]), record.extra, record.fingerprint, record.turn_ns]
        return item if record.press is None else [*item, list(record.press)]
    item = [_TAGS[type(record)], *astuple(record)]
    if isinstance(record, VisitRecord) and record.questions is None:
        item.pop()
    return item


def from_wire(item: list[Any]) -> Record:
    """Rebuild a record from :func:`to_wire`'s form (tuples come back as tuples)."""
    cls = _TYPES[item[0]]
    if cls is StepRecord:
        (episode_id, step, t_ns, names, actions, sources, rewards, terms, truncs, keys, key_times,
         extra, *rest) = item[1:]
        return StepRecord(episode_id, step, t_ns, tuple(names), dict(zip(names, actions)), list(sources),
                          dict(zip(names, rewards)), dict(zip(names, terms)), dict(zip(names, truncs)),
                          list(keys), list(key_times), False, extra, rest[0] if rest else None,
                          rest[1] if len(rest) > 1 else None,
                          list(rest[2]) if len(rest) > 2 and rest[2] is not None else None)
    return cls(*item[1:])
