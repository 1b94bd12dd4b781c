"""Flags: participants whose data a researcher should look at before analysing it.

Three kinds, each from a rule with its threshold as a module constant below (change
them here, the report prints the values it used):

- **long focus loss**: the window lost the keyboard focus (``focus_lost`` event) and got
  it back (the next ``focus_gained`` of that participant) only after a long time.
- **idle keys**: in a game, a human seat's actions came almost never from key presses, or
  nothing was pressed for a long stretch.
- **impossible times**: visits that end before they start or last no time, surveys
  answered faster than anyone reads (from each answer's own time when the page timed them),
  episodes that end before they start.

A flag is a reason to look, not a verdict: the numbers come with it.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterable

from .studydb import StudyData, human_seats, iter_rows

FOCUS_LONGEST_S = 15.0
"""One absence from the window longer than this is flagged: a glance at another window or
a notification takes seconds; 15 s away means the participant was doing something else
(and in a game the game paused, so the episode's pace was broken)."""

FOCUS_TOTAL_S = 60.0
"""All absences of one participant together longer than this are flagged, even when each
was short: many short absences add up to a participant who was not paying attention."""

IDLE_HUMAN_SHARE = 0.05
"""An episode in which a key press chose the human seat's action in fewer than 5 % of its
steps is flagged: the rest came from the key map's default or previous action, i.e. the
participant let the game play itself. (Keystroke games count the steps that took a press.)"""

IDLE_MIN_STEPS = 30
"""Episodes shorter than this many human-seat steps are too short to judge idleness by share."""

IDLE_GAP_S = 10.0
"""A stretch of more than 10 s of game time with no key held and none changed is flagged: in
the action games igym runs, players press something every few seconds. Game time is steps
× the episode's median step interval, so a pause (focus loss) or a lockstep stall in the
stretch does not lengthen it."""

MIN_SECONDS_PER_QUESTION = 1.0
"""A survey answered in less than 1 s per question is flagged: nobody reads and answers a
question in under a second, so the answers are likely clicked at random. Where the page timed
its answers (``answers.first_s``), the time per question is the median gap between one first
answer and the next (the first from the page's opening), so a participant who reads slowly
and then clicks down the page is caught; otherwise it is the visit's duration per answer."""

FOCUS_EVENTS = ("focus_lost", "focus_gained")
"""The event kinds the flags need from the events table."""

_HUMAN_SOURCES = ("human", "default", "previous")  # a seat's source while a person holds it ("policy": replaced)


@dataclass
class Flag:
    """One reason to look at one participant: the kind of flag and what was measured."""

    participant_id: str
    kind: str  # "long focus loss", "idle keys", "impossible times"
    detail: str


@dataclass
class SeatInput:
    """How one human seat was played in one episode (from the steps table)."""

    episode_id: str
    participant_id: str
    scene: str
    episode_index: int
    agent: str
    steps: int = 0
    pressed: int = 0  # steps whose action came from a key press
    longest_idle_steps: int = 0
    step_s: float | None = None  # the episode's median step interval
    _run: int = 0
    _last_key_t: Any = None
    _last_t: Any = None
    _dts: list[int] = field(default_factory=list)

    @property
    def share(self) -> float | None:
        """Share of the seat's steps chosen by a key press."""
        return self.pressed / self.steps if self.steps else None

    @property
    def longest_idle_s(self) -> float | None:
        """Longest stretch with no key held or changed, in game time (steps × step interval)."""
        return None if self.step_s is None else self.longest_idle_steps * self.step_s


@dataclass
class FocusLoss:
    """A participant's absences from the window."""

    count: int = 0
    total_s: float = 0.0
    longest_s: float = 0.0
    not_regained: int = 0  # losses with no focus_gained after them in the record


def focus_losses(events: Iterable[dict[str, Any]]) -> dict[str, FocusLoss]:
    """Pair each participant's ``focus_lost`` with their next ``focus_gained`` (t_ns in nanoseconds).

    A second loss before a gain belongs to the first (the window cannot lose a focus it
    does not have); a loss never regained is counted but has no duration.
    """
    by_participant: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for event in events:
        if event["kind"] in FOCUS_EVENTS and event["t_ns"] is not None:
            by_participant[event["participant_id"]].append((int(event["t_ns"]), event["kind"]))
    result: dict[str, FocusLoss] = {}
    for participant, items in by_participant.items():
        loss = FocusLoss()
        lost_at: int | None = None
        for t_ns, kind in sorted(items):
            if kind == "focus_lost" and lost_at is None:
                lost_at = t_ns
            elif kind == "focus_gained" and lost_at is not None:
                away = (t_ns - lost_at) / 1e9
                loss.count += 1
                loss.total_s += away
                loss.longest_s = max(loss.longest_s, away)
                lost_at = None
        if lost_at is not None:
            loss.not_regained += 1
        if loss.count or loss.not_regained:
            result[participant] = loss
    return result


def seat_inputs(db: Any, data: StudyData) -> list[SeatInput]:
    """How every human seat of every episode was played, from one pass over the steps table.

    A step counts as active when keys are held or the seat's keys changed since the
    previous step (``key_t_ns``: quick taps in keystroke games are released before the
    step); files without a ``keys`` column fall back to the step's source.
    """
    if not data.has("steps"):
        return []
    seats: dict[str, dict[str, SeatInput]] = {}
    for episode in data.episodes:
        humans = human_seats(episode)
        if humans:
            seats[episode["episode_id"]] = {
                agent: SeatInput(episode["episode_id"], participant, episode["scene"],
                                 int(episode["episode_index"] or 0), agent)
                for agent, participant in humans.items()}
    if not seats:
        return []
    have = data.tables["steps"]
    with_keys = "keys" in have
    for row in iter_rows(db, "steps", ("episode_id", "step", "agent", "t_ns", "source", "keys", "key_t_ns"),
                         order=("episode_id", "step"), have=have):
        seat = seats.get(row["episode_id"], {}).get(row["agent"])
        if seat is None or row["source"] not in _HUMAN_SOURCES:
            if seat is not None:
                seat._run = 0  # an AI held the seat (dropout): not the person's idleness
            continue
        seat.steps += 1
        if row["source"] == "human":
            seat.pressed += 1
        t_ns, key_t = row["t_ns"], row["key_t_ns"]
        if seat._last_t is not None and t_ns is not None:
            seat._dts.append(t_ns - seat._last_t)
        seat._last_t = t_ns
        if with_keys:
            active = bool(row["keys"]) or (key_t is not None and key_t != seat._last_key_t)
        else:
            active = row["source"] == "human"
        seat._last_key_t = key_t
        seat._run = 0 if active else seat._run + 1
        seat.longest_idle_steps = max(seat.longest_idle_steps, seat._run)
    result = []
    for by_agent in seats.values():
        for seat in by_agent.values():
            positive = [dt for dt in seat._dts if dt > 0]
            seat.step_s = statistics.median(positive) / 1e9 if positive else None
            seat._dts = []
            if seat.steps:
                result.append(seat)
    return result


def _episode_name(seat: SeatInput) -> str:
    return f"{seat.scene} #{seat.episode_index}"


def find_flags(data: StudyData, inputs: list[SeatInput], losses: dict[str, FocusLoss]) -> list[Flag]:
    """Every flag of the study, participant by participant in the order they were registered."""
    flags: list[Flag] = []
    for participant, loss in losses.items():
        if loss.longest_s > FOCUS_LONGEST_S or loss.total_s > FOCUS_TOTAL_S:
            extra = f"; {loss.not_regained} more never regained" if loss.not_regained else ""
            flags.append(Flag(participant, "long focus loss",
                              f"away {loss.count}× for {loss.total_s:.1f} s in all, longest {loss.longest_s:.1f} s"
                              f"{extra} (limits: {FOCUS_LONGEST_S:g} s once, {FOCUS_TOTAL_S:g} s in all)"))
    for seat in inputs:
        share = seat.share
        if seat.steps >= IDLE_MIN_STEPS and share is not None and share < IDLE_HUMAN_SHARE:
            flags.append(Flag(seat.participant_id, "idle keys",
                              f"{_episode_name(seat)} ({seat.agent}): a key press chose {100 * share:.1f} % of "
                              f"{seat.steps} steps (limit {100 * IDLE_HUMAN_SHARE:g} %)"))
        idle = seat.longest_idle_s
        if idle is not None and idle > IDLE_GAP_S:
            flags.append(Flag(seat.participant_id, "idle keys",
                              f"{_episode_name(seat)} ({seat.agent}): no key for {idle:.1f} s of game time "
                              f"({seat.longest_idle_steps} steps; limit {IDLE_GAP_S:g} s)"))
    answered = _answered_per_visit(data)
    timed = _answer_times_per_visit(data)
    for visit in data.visits:
        started, ended, duration = visit["started_at"], visit["ended_at"], visit["duration_s"]
        if ended is None:
            continue  # still open (or the participant left): no duration to judge
        name = f"{visit['scene']} at position {visit['position']}"
        if started is not None and ended < started:
            flags.append(Flag(visit["participant_id"], "impossible times",
                              f"visit {name} ended {started - ended:.3f} s before it started"))
        elif duration is not None and duration <= 0 and visit["outcome"] != "skipped":
            flags.append(Flag(visit["participant_id"], "impossible times",
                              f"visit {name} lasted {duration:g} s"))
        elif visit["kind"] == "survey" and timed.get(visit["visit_id"]):
            firsts = sorted(timed[visit["visit_id"]])
            gaps = [b - a for a, b in zip([0.0] + firsts, firsts)]
            gap = statistics.median(gaps)
            if gap < MIN_SECONDS_PER_QUESTION:
                flags.append(Flag(visit["participant_id"], "impossible times",
                                  f"{name}: {len(firsts)} answers a median {gap:.2f} s apart (each answer's own "
                                  f"time; limit {MIN_SECONDS_PER_QUESTION:g} s)"))
        elif visit["kind"] == "survey" and duration is not None:
            count = answered.get(visit["visit_id"], 0)
            if count and duration / count < MIN_SECONDS_PER_QUESTION:
                flags.append(Flag(visit["participant_id"], "impossible times",
                                  f"{name}: {count} answers in {duration:.2f} s "
                                  f"({duration / count:.2f} s per question; limit {MIN_SECONDS_PER_QUESTION:g} s)"))
    for episode in data.episodes:
        started, ended = episode["started_ns"], episode["ended_ns"]
        if started is not None and ended is not None and ended < started:
            flags.append(Flag(episode["participant_id"], "impossible times",
                              f"episode {episode['scene']} #{episode['episode_index']} ended "
                              f"{(started - ended) / 1e9:.3f} s before it started"))
    order = {p["participant_id"]: i for i, p in enumerate(data.participants)}
    kinds = {"long focus loss": 0, "idle keys": 1, "impossible times": 2}
    flags.sort(key=lambda f: (order.get(f.participant_id, len(order)), str(f.participant_id), kinds[f.kind]))
    return flags


def _answer_times_per_visit(data: StudyData) -> dict[str, list[float]]:
    """The first-answer times (seconds since the page opened) of each visit whose page timed them."""
    times: dict[str, list[float]] = defaultdict(list)
    for answer in data.answers:
        first = answer.get("first_s")
        if isinstance(first, (int, float)) and not isinstance(first, bool):
            times[answer["visit_id"]].append(float(first))
    return times


def _answered_per_visit(data: StudyData) -> dict[str, int]:
    """Answered (not skipped) questions per visit: from the answers table, else visits.answers."""
    counts: dict[str, int] = defaultdict(int)
    if data.has("answers"):
        for answer in data.answers:
            if answer["value"] is not None:
                counts[answer["visit_id"]] += 1
    else:
        for visit in data.visits:
            if isinstance(visit["answers"], dict):
                counts[visit["visit_id"]] = sum(1 for v in visit["answers"].values() if v is not None)
    return counts
