"""One participant's way through an experiment, sans I/O.

A :class:`StudyRun` knows which scene comes next (conditions applied, random orders drawn
from the participant's recorded seed, changes hooks asked for), gives every visit its own
id, decides what a visit's outcome means (a declined consent ends the study) and emits
the records of all that: a :class:`~igym.records.ParticipantRecord` whenever the
participant's status changes and a :class:`~igym.records.VisitRecord` at the start and end
of every visit. Drivers (the desktop app, the browser page) only show the scenes and
hand back what happened — so the flow, and the data it leaves, is the same everywhere.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .answer_times import FIELDS
from .errors import ExperimentError
from .experiment import Experiment, with_changes
from .hooks import SceneContext
from .records import ParticipantRecord, Record, VisitRecord, plain

# Completion codes avoid look-alike characters (0/O, 1/I/L): participants type them.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def completion_code(length: int = 8) -> str:
    """A fresh random completion code, e.g. ``K7QX2M9D``."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


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
        return self.scene.kind

    @property
    def name(self) -> str:
        return self.scene.name


class StudyRun:
    """Walks one participant through ``experiment``: ``next_visit`` → show it → ``finish_visit``."""

    def __init__(self, experiment: Experiment, participant_id: str, *, condition: str | None = None,
                 condition_counts: Mapping[str, int] | None = None, meta: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.experiment = experiment
        self.participant_id = participant_id
        self.clock = clock
        if condition is not None and (not experiment.conditions or condition not in experiment.conditions):
            known = ", ".join(experiment.conditions or ()) or "none (the experiment declares no conditions)"
            raise ExperimentError(f"condition {condition!r} is not one of the experiment's conditions: {known}")
        self.condition = condition or experiment.choose_condition(condition_counts or {})
        self.condition_assigned = "experimenter" if condition else ("balanced" if self.condition else None)
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
            participant_id, experiment.id, clock(), self.condition, "started", None, None,
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
        visit_id, started_at = (reopen["visit_id"], reopen["started_at"]) if reopen else (uuid.uuid4().hex, self.clock())
        visit = Visit(visit_id, self.position, scene, started_at, {k: plain(v) for k, v in params.items()})
        self.current = visit
        if scene.kind == "end":
            # Reaching the End page is completing the study: the code exists from here on.
            self.completion_code = completion_code() if scene.code else None
            self._set_status("completed")
        self._records.append(VisitRecord(visit.visit_id, self.participant_id, visit.position, scene.name,
                                         scene.kind, visit.started_at, params=visit.params or None))
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
                                         visit.kind, visit.started_at, self.clock(), outcome,
                                         None if answers is None else {k: plain(v) for k, v in answers.items()},
                                         visit.params or None, times or None))
        self._context.outcome = outcome
        self._context.answers = answers
        self._hook(self.experiment.on_scene_end, visit)
        if outcome == "declined" and visit.kind == "consent":
            self._set_status("declined")
        elif outcome == "aborted":
            self._set_status("aborted")

    def abort(self) -> None:
        """The run stopped early (window closed, experimenter quit): record it as such."""
        if self.current is not None:
            self.finish_visit("aborted")
        if self.status == "started":
            self._set_status("aborted")

    def fail(self, reason: str) -> None:
        """The run broke (not the participant's doing): the open visit and the participant end
        as ``failed``, with the reason, so the data never shows a broken run as a started one."""
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
                clock: Callable[[], float] = time.time) -> "StudyRun":
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
            run.participant_id, experiment.id, snapshot.get("created_at") or clock(), run.condition, run.status,
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
        record.ended_at = self.clock()
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


def _copy(record: ParticipantRecord) -> ParticipantRecord:
    return ParticipantRecord(record.participant_id, record.experiment, record.created_at, record.condition,
                             record.status, record.completion_code, record.ended_at, record.flow, record.meta)
