"""The sans-I/O session: fixed-step clock, seats, fallbacks, episodes, records."""

import subprocess
import sys

import pytest

from igym import render
from igym.controls import KeyMap
from igym.errors import ExperimentError
from igym.experiment import Game
from igym.records import EpisodeRecord, EventRecord, StepRecord
from igym.session import Session
from tests.toy_envs import LineRace


class Counting:
    """A policy that counts how often it is asked and always steps right."""

    def __init__(self):
        self.calls = 0
        self.resets = 0

    def reset(self):
        self.resets += 1

    def act(self, obs):
        self.calls += 1
        return 1


def draw(env):
    return [render.Circle("a", env.pos["a"] * 10, 10, 3), render.Circle("b", env.pos["b"] * 10, 20, 3)]


def game(**changes):
    options = dict(env=lambda: LineRace(goal=1000), seats={"a": "human", "b": Counting()}, render=draw,
                   keys=KeyMap({"right": 1, "left": 2}, default_action=0), fps=10, seeds=7)
    options.update(changes)
    return Game(**options)


def steps_of(records):
    return [r for r in records if isinstance(r, StepRecord)]


def test_fixed_step_clock_does_not_drift():
    session = Session(game())
    assert session.tick(0.0) == 0  # the first tick starts the episode
    assert session.frame is not None and session.frame.step == 0
    assert session.tick(0.05) == 0
    assert session.tick(0.1) == 1
    assert session.tick(0.35) == 2  # steps due at 0.2 and 0.3
    assert session.tick(0.39) == 0
    assert session.step == 3
    times = [r.t_ns for r in steps_of(session.take_records())]
    assert times == [100_000_000, 200_000_000, 300_000_000]  # on the deadlines, not on the ticks
    assert 0.85 < session.alpha(0.39) < 0.95


def test_clock_skips_instead_of_fast_forwarding():
    session = Session(game())
    session.tick(0.0)
    assert session.tick(5.0) == 1
    kinds = [r.kind for r in session.take_records() if isinstance(r, EventRecord)]
    assert "clock_skip" in kinds


def test_pause_stops_the_clock():
    session = Session(game())
    session.tick(0.0)
    session.pause(0.05)
    assert session.tick(3.0) == 0
    session.resume(3.0)
    assert session.tick(3.1) == 1


def test_human_default_and_policy_sources_and_keys_recorded():
    session = Session(game())
    session.tick(0.0)
    session.tick(0.1)
    session.press("right", 0.15)
    session.tick(0.2)
    session.release("right", 0.25)
    session.tick(0.3)
    steps = steps_of(session.take_records())
    assert [s.sources for s in steps] == [["default", "policy"], ["human", "policy"], ["default", "policy"]]
    assert [s.actions["a"] for s in steps] == [0, 1, 0]
    assert steps[1].keys == ["right", ""] and steps[1].key_t_ns[0] == 150_000_000
    assert steps[0].agents == ("a", "b")


def test_previous_fallback():
    keys = KeyMap({"right": 1, "left": 2}, default_action=0, fallback="previous")
    session = Session(game(keys=keys))
    session.tick(0.0)
    session.press("left", 0.01)
    session.tick(0.1)
    session.release("left", 0.11)
    session.tick(0.2)
    steps = steps_of(session.take_records())
    assert [(s.actions["a"], s.sources[0]) for s in steps] == [(2, "human"), (2, "previous")]


def test_ai_acts_every_k_steps_and_holds_its_action():
    policy = Counting()
    session = Session(game(seats={"a": "human", "b": policy}, ai_every=3))
    for i in range(10):
        session.tick(i / 10)
    assert session.step == 9 and policy.calls == 3
    steps = steps_of(session.take_records())
    assert all(s.actions["b"] == 1 and s.sources[1] == "policy" for s in steps)


def test_max_steps_really_ends_episodes_and_seeds_follow_the_schedule():
    policy = Counting()
    session = Session(game(seats={"a": Counting(), "b": policy}, max_steps=5, episodes=3, seeds=[11, 12, 13]))
    now = 0.0
    while not session.finished:
        session.tick(now)
        now += 0.1
    records = session.take_records()
    ends = [r for r in records if isinstance(r, EpisodeRecord) and r.outcome]
    assert [e.steps for e in ends] == [5, 5, 5]
    assert [e.seed for e in ends] == [11, 12, 13]
    assert all(e.outcome == "truncated" for e in ends)
    steps = steps_of(records)
    assert len(steps) == 15
    assert [[row[5] for row in s.rows()] for s in steps if s.step == 5] == [[True, True]] * 3
    assert policy.resets == 3


def test_terminated_episode_and_returns():
    session = Session(game(env=lambda: LineRace(goal=3), seats={"a": Counting(), "b": "random"}, seeds=0))
    now = 0.0
    while not session.finished:
        session.tick(now)
        now += 0.1
    end = [r for r in session.take_records() if isinstance(r, EpisodeRecord) and r.outcome][-1]
    assert end.outcome == "terminated" and end.returns["a"] == 1.0


def test_total_step_budget_stops_the_session():
    session = Session(game(), max_total_steps=4)
    now = 0.0
    while not session.finished:
        session.tick(now)
        now += 0.1
    records = session.take_records()
    assert len(steps_of(records)) == 4
    assert [r.outcome for r in records if isinstance(r, EpisodeRecord)][-1] == "stopped"


def test_same_seed_same_trajectory():
    def run():
        session = Session(game(seats={"a": "random", "b": "random"}, seeds=3, max_steps=30))
        now = 0.0
        while not session.finished:
            session.tick(now)
            now += 0.1
        return [s.rows() for s in steps_of(session.take_records())]
    assert run() == run()


def test_frames_carry_episode_and_step():
    session = Session(game())
    session.tick(0.0)
    session.tick(0.1)
    assert session.previous_frame.step == 0 and session.frame.step == 1
    assert dict(session.frame.hud)["Episode"] == "1/1"


def test_seats_must_match_agents():
    with pytest.raises(ExperimentError, match="one seat per agent"):
        Session(game(seats={"a": "human"}))


def test_abort_records_the_open_episode():
    session = Session(game())
    session.tick(0.0)
    session.tick(0.2)
    session.abort(0.25)
    ends = [r for r in session.take_records() if isinstance(r, EpisodeRecord) and r.outcome]
    assert ends[-1].outcome == "aborted" and ends[-1].steps == 2


def test_core_imports_without_numpy_or_pygame():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('numpy', 'pygame', 'onnxruntime', 'gymnasium'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import igym.session, igym.render, igym.controls, igym.envs, igym.policy, igym.records\n"
        "import igym.experiment, igym.loader, igym.autopilot\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr
