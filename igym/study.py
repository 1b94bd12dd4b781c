"""One participant's way through an experiment, sans I/O.

A :class:`StudyRun` knows which scene comes next (conditions applied, random orders drawn
from the participant's recorded seed, changes hooks asked for), gives every visit its own
id, decides what a visit's outcome means (a declined consent ends the study) and emits
the records of all that: a :class:`~igym.records.ParticipantRecord` whenever the
participant's status changes and a :class:`~igym.records.VisitRecord` at the start and end
of every visit. It also owns the flow's rules: a game's instructions page comes before the
game (:meth:`StudyRun.next_show`), which outcomes end the study, and what the participant
is told at the end (:attr:`StudyRun.ending`). Drivers (the desktop app and browser page in
``renderers/study.py``, the server in ``server/flow.py``) only show what it asks for and hand
back what happened — so the flow, and the data it leaves, is the same everywhere.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Literal
from collections.abc import Callable, Mapping

from .answer_times import FIELDS
from .clock import SYSTEM_CLOCK, Clock
from .errors import ExperimentError
from .experiment import Experiment, Game, with_changes
from .hooks import SceneContext
from .questions import definition
from .records import ParticipantRecord, Record, VisitRecord, plain

# Completion codes avoid look-alike characters (0/O, 1/I/L): participants type them.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

# What a participant is told when their study ends, by how it ended (:attr:`StudyRun.ending`).
END_TEXTS = {"played": "Thank you — the study is complete.",
             "aborted": "The study was left before its end. Thank you for your time.",
             "timed_out": "Nobody else arrived in time to play. Thank you for waiting.",
             "partner_left": "Your partner left the game. Thank you for playing.",
             "disconnected": "You were away too long, so the game ended.",
             "error": "Something went wrong; your data so far is saved.",
             "high_latency": "Your connection is too slow for this study. Thank you for your time.",
             "desync_unresolved": "The game could not be kept the same on every computer, so it ended. Thank you.",
             "removed": "Your game stopped reporting what happened, so it ended."}


def completion_code(length: int = 8) -> str:
    """A fresh random completion code, e.g. ``K7QX2M9D``."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class Ending:
    """How a participant's study ended, and the text that tells them."""

    outcome: str  # played (the study ran to its end), declined, aborted, or a game's outcome
    text: str


@dataclass(frozen=True)
class Show:
    """What a driver shows next: a page scene, a game's instructions page, or the game."""

    visit: Visit
    part: Literal["page", "instructions", "game"]
    scene: Any

    @property
    def is_game(self) -> bool:
        return self.part == "game"


@dataclass
class Visit:
    """A scene being shown: its id, place in the participant's plan, the scene as shown."""

    visit_id: str
    position: int
    scene: Any
    started_at: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.scene.kind)

    @property
    def name(self) -> str:
        return str(self.scene.name)


class StudyRun:
    """Walks one participant through ``experiment``: ``next_visit`` → show it → ``finish_visit``."""

    def __init__(self, experiment: Experiment, participant_id: str, *, condition: str | None = None,
                 assigned_by: str = "experimenter", meta: dict[str, Any] | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        """``condition``: the participant's, already resolved — named by the experimenter
        (``assigned_by="experimenter"``) or drawn by whoever balances the study
        (``assigned_by="balanced"``: :meth:`Experiment.choose_condition` over the data's counts,
        or a cluster's shared counters). An experiment with conditions and none given starts at its
        first (balanced over nobody)."""
        self.experiment = experiment
        self.participant_id = participant_id
        self.clock = clock
        self.ending: Ending | None = None
        self._showing: Show | None = None
        if assigned_by not in ("experimenter", "balanced"):
            raise ValueError(f"assigned_by {assigned_by!r}: 'experimenter' or 'balanced'")
        if condition is not None and (not experiment.conditions or condition not in experiment.conditions):
            known = ", ".join(experiment.conditions or ()) or "none (the experiment declares no conditions)"
            raise ExperimentError(f"condition {condition!r} is not one of the experiment's conditions: {known}")
        if condition is None:
            condition, assigned_by = experiment.choose_condition({}), "balanced"
        self.condition = condition
        self.condition_assigned = assigned_by if condition else None
        self.order_seed = experiment.order_seed(participant_id)
        self.plan = experiment.plan(self.order_seed)
        self.state: dict[str, Any] = {}
        self.overrides: dict[str, dict[str, Any]] = {}
        self.position = -1
        self.status = "started"
        self.completion_code: str | None = None
        self.current: Visit | None = None
        self._records: list[Record] = []
        self._participant = ParticipantRecord(
            participant_id, experiment.id, clock.wall(), self.condition, "started", None, None,
            {"order_seed": self.order_seed, "scenes": [scene.name for scene in self.plan],
             "condition_assigned": self.condition_assigned}, meta)
        self._records.append(_copy(self._participant))
        self._context = SceneContext(participant_id, self.condition, self.state, self._update_scene)
        self._reopen: dict[str, Any] | None = None

    # --- the flow ---------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status != "started"

    def next_visit(self) -> Visit | None:
        """The next scene to show (and its start recorded), or None when the study is over."""
        if self.current is not None:
            raise RuntimeError("finish_visit() the current visit before starting the next")
        if self.finished:
            return None
        self.position += 1
        if self.position >= len(self.plan):
            self._set_status("completed")
            return None
        declared = self.plan[self.position]
        scene = self.experiment.scene(declared.name, self.condition)
        params: dict[str, Any] = {}
        if self.condition and self.experiment.conditions:
            params.update(self.experiment.conditions[self.condition].get(declared.name, {}))
        changes = self.overrides.get(declared.name)
        if changes:
            scene = with_changes(scene, changes)
            params.update(changes)
        reopen, self._reopen = self._reopen, None
        visit_id, started_at = ((reopen["visit_id"], reopen["started_at"]) if reopen
                                else (self.clock.new_id(), self.clock.wall()))
        visit = Visit(visit_id, self.position, scene, started_at, {k: plain(v) for k, v in params.items()})
        self.current = visit
        if scene.kind == "end":
            # Reaching the End page is completing the study: the code exists from here on.
            self.completion_code = completion_code() if scene.code else None
            self._set_status("completed")
        self._records.append(VisitRecord(visit.visit_id, self.participant_id, visit.position, scene.name,
                                         scene.kind, visit.started_at, params=visit.params or None,
                                         questions=_definitions(scene)))
        self._hook(self.experiment.on_scene_start, visit)
        return visit

    def finish_visit(self, outcome: str, answers: dict[str, Any] | None = None,
                     timings: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """The current visit ended with ``outcome`` (``continued``, ``agreed``, ``declined``,
        ``played``, ``aborted``…) and, for surveys, its typed ``answers`` and when each was
        given (``timings``: per question ``first_s``, ``last_s``, ``changes``; see
        :mod:`igym.answer_times`) — kept for the answered page's questions only."""
        visit = self.current
        if visit is None:
            raise RuntimeError("no visit is open")
        self.current = None
        times = None
        if timings is not None and answers is not None:
            times = {str(q): {f: timings[q].get(f) for f in FIELDS} for q in answers if q in timings}
        self._records.append(VisitRecord(visit.visit_id, self.participant_id, visit.position, visit.name,
                                         visit.kind, visit.started_at, self.clock.wall(), outcome,
                                         None if answers is None else {k: plain(v) for k, v in answers.items()},
                                         visit.params or None, times or None))
        self._context.outcome = outcome
        self._context.answers = answers
        self._hook(self.experiment.on_scene_end, visit)
        if outcome == "declined" and visit.kind == "consent":
            self._set_status("declined")
        elif outcome == "aborted":
            self._set_status("aborted")

    def next_show(self) -> Show | None:
        """What to show next — the flow's rules in one place: a page scene, a game's
        instructions page (then the game, in the same visit), or a game. None when the study is
        over; then :attr:`ending` says how it ended."""
        if self._showing is not None:
            raise RuntimeError("report how the last thing shown ended (shown()) before asking for the next")
        if self.current is not None and isinstance(self.current.scene, Game):
            show = Show(self.current, "game", self.current.scene)  # its instructions page was left
        else:
            visit = self.next_visit()
            if visit is None:
                self._end("played" if self.status == "completed" else self.status)
                return None
            if isinstance(visit.scene, Game):
                intro = visit.scene.instructions_page()
                show = Show(visit, "instructions", intro) if intro is not None else Show(visit, "game", visit.scene)
            else:
                show = Show(visit, "page", visit.scene)
        self._showing = show
        return show

    def shown(self, outcome: str, answers: dict[str, Any] | None = None,
              timings: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """How the last :meth:`next_show` ended: a page's outcome (``continued``, ``agreed``,
        ``declined``, ``closed``, or ``aborted`` when it was quit or abandoned) with a survey's
        answers and their times, or a game's outcome (``played``, ``skipped``, ``aborted``,
        ``timed_out``, ``partner_left``, ``server_lost``…). Anything but a played (or skipped)
        game, a left page or a declined consent ends the study."""
        show, self._showing = self._showing, None
        if show is None:
            raise RuntimeError("nothing is being shown")
        if show.part == "instructions":
            if outcome == "aborted":
                self.finish_visit("aborted")
                self._end("aborted")
            return  # left: the game comes next, in the same visit
        if show.part == "game":
            self.finish_visit(outcome)
            if outcome not in ("played", "skipped", "server_lost"):
                self._end(outcome)
                self.abort()
            return
        self.finish_visit(outcome, answers, timings)
        if self.status in ("declined", "aborted"):
            self._end(self.status, show.scene.declined_text if self.status == "declined" else None)

    def _end(self, outcome: str, text: str | None = None) -> None:
        if self.ending is None:
            self.ending = Ending(outcome, text or END_TEXTS.get(outcome, outcome))

    def abort(self) -> None:
        """The run stopped early (window closed, experimenter quit): record it as such."""
        self._showing = None
        self._end("aborted")
        if self.current is not None:
            self.finish_visit("aborted")
        if self.status == "started":
            self._set_status("aborted")

    def fail(self, reason: str) -> None:
        """The run broke (not the participant's doing): the open visit and the participant end
        as ``failed``, with the reason, so the data never shows a broken run as a started one."""
        self._showing = None
        self._end("error")
        if self.current is not None:
            self.finish_visit("failed")
        if self.status == "started":
            self._participant.meta = {**(self._participant.meta or {}), "failure": reason[:500]}
            self._set_status("failed")

    def take_records(self) -> list[Record]:
        records, self._records = self._records, []
        return records

    # --- resuming (a reloaded browser page, a restarted client) ---------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to resume this participant later, JSON-safe.

        A visit still open is resumed from its start (a game scene restarts its current
        visit; the visit id stays, so its records are not duplicated but continued).
        Hook ``state`` must hold JSON-safe values to survive a reload.
        """
        current = self.current
        return {"participant_id": self.participant_id, "experiment": self.experiment.id,
                "condition": self.condition, "condition_assigned": self.condition_assigned,
                "position": self.position - (1 if current is not None else 0), "status": self.status,
                "completion_code": self.completion_code, "state": plain(self.state),
                "overrides": plain(self.overrides), "created_at": self._participant.created_at,
                "open_visit": None if current is None else {"visit_id": current.visit_id,
                                                            "started_at": current.started_at}}

    @classmethod
    def restore(cls, experiment: Experiment, snapshot: Mapping[str, Any], *,
                clock: Clock = SYSTEM_CLOCK) -> StudyRun:
        """A run that continues where ``snapshot`` left off (same order, condition, state).

        Nothing is recorded again for the visits already finished; the next ``next_visit``
        shows the scene that was open (with its original visit id) or the one after.
        """
        if snapshot.get("experiment") != experiment.id:
            raise ExperimentError(f"cannot resume: the saved run belongs to {snapshot.get('experiment')!r}, "
                                  f"not {experiment.id!r}")
        run = cls.__new__(cls)
        run.experiment = experiment
        run.participant_id = snapshot["participant_id"]
        run.clock = clock
        run.ending = None
        run._showing = None
        run.condition = snapshot.get("condition")
        run.condition_assigned = snapshot.get("condition_assigned")
        run.order_seed = experiment.order_seed(run.participant_id)
        run.plan = experiment.plan(run.order_seed)
        run.state = dict(snapshot.get("state") or {})
        run.overrides = {k: dict(v) for k, v in (snapshot.get("overrides") or {}).items()}
        run.position = int(snapshot.get("position", -1))
        run.status = snapshot.get("status", "started")
        run.completion_code = snapshot.get("completion_code")
        run.current = None
        run._records = []
        run._participant = ParticipantRecord(
            run.participant_id, experiment.id, snapshot.get("created_at") or clock.wall(), run.condition, run.status,
            run.completion_code, None, {"order_seed": run.order_seed, "scenes": [s.name for s in run.plan],
                                        "condition_assigned": run.condition_assigned}, None)
        run._context = SceneContext(run.participant_id, run.condition, run.state, run._update_scene)
        run._reopen = snapshot.get("open_visit")
        return run

    # --- internals --------------------------------------------------------------------

    def _set_status(self, status: str) -> None:
        if self.status == status:
            return
        self.status = status
        record = self._participant
        record.status = status
        record.completion_code = self.completion_code
        record.ended_at = self.clock.wall()
        self._records.append(_copy(record))

    def _hook(self, hook: Callable[[SceneContext], Any] | None, visit: Visit) -> None:
        if hook is None:
            return
        context = self._context
        context.scene, context.visit_id, context.position = visit.scene, visit.visit_id, visit.position
        hook(context)

    def _update_scene(self, name: str, changes: dict[str, Any]) -> None:
        scene = self.experiment.scene(name, self.condition)  # checks the name
        merged = {**self.overrides.get(name, {}), **changes}
        with_changes(scene, merged)  # checks the fields and values now, not when the scene comes up
        self.overrides[name] = merged


def _definitions(scene: Any) -> list[dict[str, Any]] | None:
    """The questions of a survey as shown (conditions and hooks applied), recorded with the
    visit's start: every runtime shows pages through this class, so every data file has them."""
    questions = getattr(scene, "questions", None) if scene.kind == "survey" else None
    return [plain(definition(q)) for q in questions] if questions else None


def _copy(record: ParticipantRecord) -> ParticipantRecord:
    return ParticipantRecord(record.participant_id, record.experiment, record.created_at, record.condition,
                             record.status, record.completion_code, record.ended_at, record.flow, record.meta)
