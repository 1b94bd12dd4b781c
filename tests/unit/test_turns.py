"""Data a reviewer would accept: independent AI seats, games that wait for their players,
keys that count only when the game takes them, honest reaction times, failed runs marked.

Most of these drive the sans-I/O Session with its own clock (what every runtime does), so
the times in the records are exact and the checks are about them.
"""

import json
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from igym import Game, KeyMap
from igym.builtin_keys import keymap_for
from igym.clock import ManualClock
from igym.gymenv import gym_game
from igym.records import EpisodeRecord, EventRecord, StepRecord
from igym.session import Session, seat_seed

ROOT = Path(__file__).resolve().parents[2]


def drive(session, until, presses=(), fps=60):
    """Tick ``session`` at ``fps`` until ``until`` seconds; ``presses``: (time, key) pairs."""
    records, t, pending = [], 0.0, sorted(presses)
    while t <= until and not session.finished:
        while pending and pending[0][0] <= t:
            _, key = pending.pop(0)
            session.press(key, t)
            session.release(key, t)
        session.tick(t)
        records += session.take_records()
        t = round(t + 1 / fps, 9)
    return records


def steps_of(records):
    return [r for r in records if type(r) is StepRecord]


# --- 1. independent random seats -------------------------------------------------------------------

def pistonball():
    from pettingzoo.butterfly import pistonball_v6
    return pistonball_v6.parallel_env(render_mode="rgb_array", max_cycles=125, continuous=False)


def test_nineteen_random_seats_play_independent_streams_that_replay():
    pytest.importorskip("pymunk")
    agents = [f"piston_{i}" for i in range(20)]
    game = Game(name="pistons", env=pistonball, canvas=(880, 560), fps=30, episodes=2, seeds=5,
                seats={a: "human" if a == "piston_0" else "random" for a in agents},
                keys=KeyMap({"up": 2, "down": 0}, default_action=1))
    session = Session(game, "P1", study="pistonball_study")
    records = drive(session, 20, fps=30)
    episodes = [r for r in records if type(r) is EpisodeRecord and r.outcome]
    assert len(episodes) == 2
    streams = {a: [s.actions[a] for s in steps_of(records) if a in s.actions] for a in agents[1:]}
    first = [s for s in steps_of(records) if s.episode_id == episodes[0].episode_id]
    unanimous = sum(1 for s in first if len({s.actions[a] for a in agents[1:] if a in s.actions}) == 1)
    assert unanimous == 0  # were every seat seeded alike, all 19 would move together on every step
    seeds = {a: [e.seats[a]["seed"] for e in episodes] for a in agents[1:]}
    assert len({seed for pair in seeds.values() for seed in pair}) == 38  # one per seat and episode
    assert seeds["piston_1"][0] == seat_seed("pistonball_study", "P1", "pistons", 0, "piston_1")
    # The recorded seed alone replays a seat's stream.
    from igym.policy import RandomPolicy
    from gymnasium.spaces import Discrete
    replayed = RandomPolicy(space=Discrete(3))
    replayed.reseed(seeds["piston_7"][0])
    assert [replayed.act(None) for _ in first] == [s.actions["piston_7"] for s in first]
    assert len(set(map(tuple, streams.values()))) == 19


# --- 2. games that wait for their players ----------------------------------------------------------------

def test_taxi_waits_for_the_player_and_records_each_decision_time():
    game = gym_game("Taxi-v4")  # its built-in map is one action per press, pace="on_input"
    assert game.pace == "on_input"
    session = Session(game, "P1", study="taxi")
    records = drive(session, 10.0, presses=[(4.0, "down"), (6.5, "left")])
    steps = steps_of(records)
    assert [s.step for s in steps] == [1, 2]  # nothing moved by itself in ten seconds
    assert [s.t_ns / 1e9 for s in steps] == pytest.approx([4.0, 6.5], abs=0.02)
    assert [s.sources for s in steps] == [["human"], ["human"]]
    assert [(s.key_t_ns[0] - s.turn_ns) / 1e9 for s in steps] == pytest.approx([4.0, 2.5], abs=0.02)
    assert dict(session.frame.hud)["Move"] == "You"


def test_a_parallel_game_steps_when_the_person_acts_and_the_ai_acts_on_that_step():
    from pettingzoo.classic import rps_v2
    game = Game(name="rps", env=lambda: rps_v2.parallel_env(render_mode="rgb_array", num_actions=3, max_cycles=5),
                canvas=(400, 300), seats={"player_0": "human", "player_1": "random"}, keys=keymap_for("rps"),
                pace="on_input", fps=30)
    session = Session(game, "P1")
    steps = steps_of(drive(session, 6.0, presses=[(1.0, "r"), (2.0, "p"), (4.0, "s")]))
    assert [round(s.t_ns / 1e9, 1) for s in steps] == [1.0, 2.0, 4.0]
    assert all(s.sources == ["human", "policy"] and s.actions["player_1"] in (0, 1, 2) for s in steps)


def test_max_wait_takes_the_default_action_recorded_as_a_timeout():
    import dataclasses
    game = dataclasses.replace(gym_game("Taxi-v4"), max_wait_s=2.0)
    session = Session(game, "P1")
    steps = steps_of(drive(session, 5.0, presses=[(3.0, "up")]))
    assert [(round(s.t_ns / 1e9, 2), s.sources[0]) for s in steps] == [(2.0, "timeout"), (3.0, "human")]
    assert steps[0].actions["agent_0"] == game.keymaps["agent_0"].default_action


def test_a_board_game_takes_turns_ignores_illegal_squares_and_credits_both_players():
    from pettingzoo.classic import tictactoe_v3
    game = Game(name="ttt", env=lambda: tictactoe_v3.env(render_mode="rgb_array"), canvas=(300, 300), fps=2,
                seats={"player_1": "human", "player_2": "random"}, keys=keymap_for("tictactoe"), pace="on_input")
    session = Session(game, "P1")
    records = drive(session, 4.0, presses=[(1.0, "5"), (1.2, "1"), (2.0, "5")])
    steps = steps_of(records)
    # 1.0: X in the centre; 1.2: a key in O's turn, dropped; 1.5: O (random) answers; 2.0: the
    # centre again — illegal, recorded, no move.
    assert [(s.step, s.sources) for s in steps] == [(1, ["human", "waiting"]), (2, ["waiting", "policy"])]
    assert steps[0].actions == {"player_1": 4, "player_2": None}
    kinds = Counter(r.kind for r in records if type(r) is EventRecord)
    assert kinds["key_dropped"] == 1 and kinds["illegal_action"] == 1
    assert dict(session.frame.hud)["Move"] == "You"
    # a whole game: the winner's and the loser's rewards are both in the rows of the last move
    records += drive_to_end(session)
    last = steps_of(records)[-1]
    assert sorted(last.rewards.values()) in ([-1, 1], [0, 0])


def drive_to_end(session):
    records, t, key = [], 5.0, 0
    while not session.finished and t < 200:
        if session.env.active() and session.env.active()[0] in session.inputs:
            key = key % 9 + 1
            session.press(str(key), t)
            session.release(str(key), t)
        session.tick(t)
        records += session.take_records()
        t += 0.1
    return records


def test_turn_based_pettingzoo_needs_a_pace_that_waits():
    from pettingzoo.classic import connect_four_v3
    from igym.errors import ExperimentError
    game = Game(name="c4", env=lambda: connect_four_v3.env(render_mode="rgb_array"), canvas=(300, 300),
                seats={"player_0": "human", "player_1": "random"}, keys=keymap_for("connect_four"))
    with pytest.raises(ExperimentError, match="pace='on_input'"):
        Session(game, "P1")
    with pytest.raises(ExperimentError, match="keystroke"):
        Game(name="x", env=lambda: None, seats={"agent_0": "human"}, keys=KeyMap({"left": 0}), pace="on_input")


# --- 4. keys count only when the game takes them; reaction times ------------------------------------------

def test_presses_during_the_countdown_are_dropped_not_played_after_it():
    game = Game(name="grid", env=lambda: __import__("gymnasium").make("FrozenLake-v1", render_mode="rgb_array"),
                canvas=(256, 256), seats={"agent_0": "human"}, fps=10, countdown_s=3, seeds=1,
                keys=KeyMap({"left": 0, "down": 1, "right": 2, "up": 3}, mode="keystroke", default_action=0))
    session = Session(game, "P1")
    records = drive(session, 4.05, presses=[(0.5, "down"), (1.0, "right"), (2.0, "down"), (3.55, "right")])
    steps = steps_of(records)
    human = [s for s in steps if s.sources == ["human"]]
    assert len(human) == 1 and human[0].actions["agent_0"] == 2  # only the press after the countdown
    assert human[0].keys == ["right"] and human[0].key_t_ns[0] / 1e9 == pytest.approx(3.55, abs=0.02)  # its press
    dropped = [r for r in records if type(r) is EventRecord and r.kind == "key_dropped"]
    assert [r.data["why"] for r in dropped] == ["countdown"] * 3


def test_a_keystroke_steps_key_time_is_its_press_even_when_another_key_changed_since():
    game = Game(name="grid", env=lambda: __import__("gymnasium").make("FrozenLake-v1", render_mode="rgb_array"),
                canvas=(256, 256), seats={"agent_0": "human"}, fps=2, seeds=1,
                keys=KeyMap({"left": 0, "down": 1, "right": 2, "up": 3}, mode="keystroke", default_action=0))
    session = Session(game, "P1")
    session.tick(0.0)  # the episode starts; steps at 0.5, 1.0, …
    session.press("down", 0.6)
    session.press("right", 0.8)  # held with down: this keystroke is down+right (a composite nobody maps)
    session.release("down", 0.9)
    session.tick(1.0)
    (step,) = steps_of(session.take_records())
    assert step.keys == ["down"] and step.key_t_ns == [int(0.6 * 1e9)]


def connect_four(**more):
    from pettingzoo.classic import connect_four_v3
    return Game(name="c4", env=lambda: connect_four_v3.env(render_mode="rgb_array"), canvas=(300, 300), fps=2,
                seats={"player_0": "human", "player_1": "random"}, keys=keymap_for("connect_four"),
                pace="on_input", **more)


def test_a_keystroke_step_records_the_keys_held_and_the_press_that_made_its_action(tmp_path):
    """Connect four, key 6 held while 5 is pressed: the move is column 5 (action 4); ``keys`` says
    what was held (6+5), ``press`` which press made the move (5) — in the data file too."""
    from igym.sqlite_sink import SqliteSink
    session = Session(connect_four(), "P1", clock=ManualClock())
    records = []
    for t, action in [(0.0, "tick"), (1.0, "6"), (1.05, "tick"), (1.6, "tick"), (2.0, "5"), (2.05, "tick")]:
        if action == "tick":
            session.tick(t)
        else:
            session.press(action, t)  # never released: 6 is still held when 5 goes down
        records += session.take_records()
    moves = [(s.actions["player_0"], s.keys[0], s.press[0]) for s in steps_of(records) if s.sources[0] == "human"]
    assert moves == [(5, "6", "6"), (4, "6+5", "5")]
    ai = [s for s in steps_of(records) if s.sources[1] == "policy"]
    assert ai and all(s.press == [None, None] and s.keys == ["", ""] for s in ai)
    with SqliteSink(tmp_path / "c4.sqlite") as sink:
        sink.write(records)
    rows = sqlite3.connect(tmp_path / "c4.sqlite").execute(
        "SELECT step, action, keys, press FROM steps WHERE agent = 'player_0' AND source = 'human' ORDER BY step")
    assert rows.fetchall() == [(1, "5", "6", "6"), (3, "4", "6+5", "5")]


def test_presses_dropped_before_an_episode_starts_keep_the_times_they_were_made():
    """Presses the game does not play are dropped, each recorded at its own moment: two 250 ms
    apart before the game starts, two 250 ms apart after the last move of an episode (before the
    next one starts: not at that episode's start), and one after a turn's move (not at the
    turn's end)."""
    game = Game(name="grid", env=lambda: __import__("gymnasium").make("FrozenLake-v1", render_mode="rgb_array"),
                canvas=(256, 256), seats={"agent_0": "human"}, fps=2, seeds=[1, 2], episodes=2, max_steps=2,
                keys=KeyMap({"left": 0, "down": 1, "right": 2, "up": 3}, mode="keystroke", default_action=0))
    session = Session(game, "P1", clock=ManualClock())
    session.press("up", 0.0)  # before the first episode starts: dropped at once, each at its own time
    session.press("down", 0.25)
    assert [(r.kind, r.data["key"], r.t_ns, r.episode_id) for r in session.take_records() if r.kind != "key_down"] \
        == [("key_dropped", "up", 0, None), ("key_dropped", "down", 250_000_000, None)]
    session.release_all(0.3)
    session.tick(0.5)  # the first episode starts
    session.tick(1.0)  # its step 1; step 2, its last, is due at 1.5
    for t, key in [(1.05, "left"), (1.2, "up"), (1.45, "down")]:  # the last two 250 ms apart
        session.press(key, t)
        session.release(key, t)
    session.tick(1.5)  # step 2 plays "left"; the episode ends and the next starts at 1.5
    records = session.take_records()
    starts = [r for r in records if type(r) is EpisodeRecord and r.outcome is None]
    dropped = [r for r in records if type(r) is EventRecord and r.kind == "key_dropped"]
    assert [(r.data["key"], r.data["why"], r.t_ns) for r in dropped] == [
        ("up", "episode ended", int(1.2 * 1e9)), ("down", "episode ended", int(1.45 * 1e9))]
    assert dropped[1].t_ns - dropped[0].t_ns == 250_000_000 and starts[-1].started_ns == int(1.5 * 1e9)
    assert all(r.episode_id == starts[0].episode_id for r in dropped)  # pressed during the episode before

    session = Session(connect_four(), "P2", clock=ManualClock())
    session.tick(0.0)
    session.press("1", 1.0)
    session.press("2", 1.25)  # 250 ms later, still in the same turn: a second move it cannot make
    session.tick(1.3)
    records = session.take_records()
    (move,) = [s for s in steps_of(records) if s.sources[0] == "human"]
    dropped = [r for r in records if type(r) is EventRecord and r.kind == "key_dropped"]
    assert move.press == ["1", None] and move.key_t_ns[0] == int(1.0 * 1e9)
    assert [(r.data["key"], r.data["why"], r.t_ns) for r in dropped] == [("2", "turn over", int(1.25 * 1e9))]
    assert dropped[0].t_ns - move.key_t_ns[0] == 250_000_000


# --- 7. a run that breaks is marked failed ------------------------------------------------------------------

def test_a_run_that_fails_leaves_a_failed_participant_not_a_started_one(tmp_path):
    study = tmp_path / "broken.py"
    study.write_text('''
from igym import Experiment, Game, KeyMap, Info

class Broken:
    """An env whose reset fails (a missing data file, a wrong argument …)."""
    action_space = None
    def reset(self, seed=None, options=None):
        raise FileNotFoundError("level.txt")
    def step(self, action):
        raise AssertionError

experiment = Experiment(id="broken", scenes=[Info(name="hello", text="Hi"), Game(
    name="game", env=Broken, render=lambda env: [], seats={"agent_0": "human"}, keys=KeyMap({"left": 0}))])
''')
    data = tmp_path / "broken.sqlite"
    out = subprocess.run([sys.executable, "-m", "igym.play", str(study), "--headless", "--autopilot", "--data",
                          str(data), "--participant", "P1"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "level.txt" in out.stderr, out.stderr
    db = sqlite3.connect(data)
    status, meta = db.execute("SELECT status, meta FROM participants").fetchone()
    assert status == "failed" and "FileNotFoundError" in json.loads(meta)["failure"]
    assert db.execute("SELECT scene, outcome FROM visits ORDER BY position").fetchall() == [
        ("hello", "continued"), ("game", "failed")]
    assert db.execute("SELECT count(*) FROM episodes WHERE outcome IS NULL").fetchone() == (0,)


# --- 8. a recording of a Gymnasium id replays and exports by its id ------------------------------------------

def test_a_recording_of_a_gymnasium_id_replays_and_exports_by_its_id(tmp_path):
    data = tmp_path / "taxi.sqlite"
    play = subprocess.run([sys.executable, "-m", "igym.play", "CliffWalking-v1", "--headless", "--autopilot",
                           "--max-steps", "40", "--data", str(data), "--participant", "P1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert play.returncode == 0, play.stderr
    episode = sqlite3.connect(data).execute("SELECT episode_id FROM episodes").fetchone()[0][:8]
    for extra in ([], ["--experiment", "CliffWalking-v1"]):
        out = subprocess.run([sys.executable, "-m", "igym.data", "replay", str(data), "--episode", episode, "--verify",
                              *extra], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and "verified" in out.stdout, out.stdout + out.stderr
    pytest.importorskip("minari")
    pytest.importorskip("PIL")
    out = subprocess.run([sys.executable, "-m", "igym.data", "export", str(data), "--to", "minari",
                          str(tmp_path / "minari"), "--agent", "agent_0", "--experiment", "CliffWalking-v1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr


def test_the_hud_names_no_mover_before_the_game_starts():
    """During the countdown the game takes no move: the HUD does not say "Move: You" then."""
    import gymnasium

    game = Game(name="grid", env=lambda: gymnasium.make("FrozenLake-v1", render_mode="rgb_array"),
                canvas=(256, 256), seats={"agent_0": "human"}, fps=10, countdown_s=3, seeds=1, pace="on_input",
                keys=KeyMap({"left": 0, "down": 1, "right": 2, "up": 3}, mode="keystroke", default_action=0))
    session = Session(game, "P1")
    for now in (0.0, 1.5, 2.9):
        session.tick(now)
        assert "Move" not in dict(session.frame.hud), (now, session.frame.hud)
    session.tick(3.05)
    assert dict(session.frame.hud)["Move"] == "You"
