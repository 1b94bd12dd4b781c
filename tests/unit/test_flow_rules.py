"""The study flow's rules on their own (:class:`igym.study.StudyRun`): what is shown in which
order, what ends a study and what the participant is told — with an injected clock (no
sleeping, reproducible ids)."""

from __future__ import annotations

import pytest

from igym.clock import ManualClock
from igym.experiment import Consent, End, Experiment, Game, Info
from igym.study import END_TEXTS, StudyRun
from tests.toy_envs import LineRace


def _study() -> Experiment:
    return Experiment(id="rules", scenes=[
        Consent(name="consent", text="Agree?", declined_text="You declined; nothing was recorded beyond that."),
        Info(name="intro", text="Hello"),
        Game(name="match", env=LineRace, seats={"a": "random", "b": "random"}, instructions="Play well."),
        End(name="end", text="Thanks"),
    ])


def _walk(run: StudyRun, outcomes: dict[str, str]) -> list[tuple[str, str]]:
    shown = []
    while (show := run.next_show()) is not None:
        shown.append((show.visit.name, show.part))
        run.shown(outcomes.get(f"{show.visit.name}/{show.part}", {"page": "continued", "instructions": "continued",
                                                                     "game": "played"}[show.part]))
    return shown


def test_the_flow_rules_live_in_the_study_run():
    clock = ManualClock()
    run = StudyRun(_study(), "A", clock=clock)
    assert _walk(run, {"consent/page": "agreed", "end/page": "closed"}) == [
        ("consent", "page"), ("intro", "page"), ("match", "instructions"), ("match", "game"), ("end", "page")]
    assert run.status == "completed" and run.ending.outcome == "played" and run.ending.text == END_TEXTS["played"]
    visits = [r for r in run.take_records() if type(r).__name__ == "VisitRecord" and r.outcome]
    assert [v.visit_id for v in visits] == [f"{i:032x}" for i in (1, 2, 3, 4)]  # ids from the injected clock
    assert {v.started_at for v in visits} == {clock.wall()}  # time moved only when told to

    declined = StudyRun(_study(), "B", clock=ManualClock())
    assert _walk(declined, {"consent/page": "declined"}) == [("consent", "page")]
    assert declined.status == "declined" and declined.ending.text.startswith("You declined")

    left = StudyRun(_study(), "C", clock=ManualClock())
    assert _walk(left, {"match/instructions": "aborted"})[-1] == ("match", "instructions")
    assert left.status == "aborted" and left.ending.outcome == "aborted"  # the same wherever it runs

    alone = StudyRun(_study(), "D", clock=ManualClock())
    assert _walk(alone, {"match/game": "partner_left"})[-1] == ("match", "game")
    assert alone.status == "aborted" and alone.ending.outcome == "partner_left"
    assert alone.ending.text == END_TEXTS["partner_left"]

    broken = StudyRun(_study(), "E", clock=ManualClock())
    broken.next_show()
    broken.fail("RuntimeError: the env would not start")
    assert broken.status == "failed" and broken.ending.outcome == "error" and broken.next_show() is None


def test_a_driver_must_report_what_it_showed_before_asking_again():
    run = StudyRun(_study(), "F", clock=ManualClock())
    run.next_show()
    with pytest.raises(RuntimeError, match="shown"):
        run.next_show()
