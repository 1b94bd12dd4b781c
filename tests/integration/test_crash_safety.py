"""Data is sacred: kill -9 in the middle of a real-time run loses at most the last second; Ctrl+C
ends a run like closing its window."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.crash import count, kill_while_playing

ROOT = Path(__file__).resolve().parents[2]


def test_sigkill_loses_at_most_the_last_second(tmp_path):
    data = tmp_path / "crash.sqlite"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    process = subprocess.Popen([sys.executable, "-m", "igym.play", "examples/slime_volleyball/human_ai.py",
                                "--autopilot", "--data", str(data)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def steps():  # the game runs in real time: steps appear with the first commit
        return count(data, "SELECT count(*) FROM steps WHERE agent='agent_left'")
    ran = kill_while_playing(process, steps, 3.0, wait_s=60)
    assert steps() >= ran * 30 - 30 - 3, (steps(), ran)  # at most 1 s (30 steps) lost
    db = sqlite3.connect(data)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    episode = db.execute("SELECT seed, outcome FROM episodes").fetchone()
    assert episode[0] is not None and episode[1] is None  # the killed episode is there, unfinished


# An endless game of a pure-Python env: a headless run cannot finish before the signal arrives.
ENDLESS = '''
from igym.controls import KeyMap
from igym.experiment import Experiment, Game
from igym.render import Rect


class Endless:
    possible_agents = ["a"]

    def __init__(self):
        self.agents, self.t = [], 0

    def action_space(self, agent):
        from gymnasium.spaces import Discrete
        return Discrete(3)

    def observation_space(self, agent):
        from gymnasium.spaces import Discrete
        return Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents, self.t = list(self.possible_agents), 0
        return {"a": 0}, {"a": {}}

    def step(self, actions):
        self.t += 1
        return {"a": 0}, {"a": 1.0}, {"a": False}, {"a": False}, {"a": {}}


experiment = Experiment(id="endless", scenes=[Game(
    name="endless", env=Endless, render=lambda env: [Rect("box", env.t % 190, 10, 5, 5, (200, 0, 0))],
    canvas=(200, 100), seats={"a": "human"}, keys=KeyMap({"right": 1, "left": 2}, default_action=0), fps=30,
    episodes=1, max_steps=10**9)])
'''


@pytest.mark.parametrize("signals", [1, 2], ids=["one_sigint", "two_sigints"])
@pytest.mark.parametrize("mode", ["window", "headless"])
def test_ctrl_c_ends_the_run_with_its_data_like_closing_the_window(mode, signals, tmp_path):
    """Ctrl+C mid-game, in a window (SDL's dummy driver runs the real window loop) or headless: exit 130,
    the participant and the episode ``aborted``, the steps played kept — as SIGTERM and the close
    button end a run. A second Ctrl+C while the run is ending changes nothing."""
    data = tmp_path / "ctrl_c.sqlite"
    if mode == "window":
        target, flags = ["Acrobot-v1"], ["--autopilot"]  # real time: 30 steps a second, 500 to the end
    else:
        (tmp_path / "endless.py").write_text(ENDLESS)
        target, flags = [str(tmp_path / "endless.py")], ["--headless", "--autopilot"]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    process = subprocess.Popen([sys.executable, "-m", "igym.play", *target, *flags, "--data", str(data)], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while count(data, "SELECT count(*) FROM steps") == 0:  # mid-game: its first steps are committed
            assert time.monotonic() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.05)
        for _ in range(signals):
            process.send_signal(signal.SIGINT)
            time.sleep(0.05)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, (process.returncode, out[-500:], err[-2000:])
    assert not err.strip(), err
    db = sqlite3.connect(data)
    assert [status for (status,) in db.execute("SELECT status FROM participants")] == ["aborted"]
    (outcome, steps), = db.execute("SELECT outcome, steps FROM episodes").fetchall()
    assert outcome == "aborted" and steps > 0
    assert db.execute("SELECT count(*) FROM steps").fetchone() == (steps,)
    assert "aborted" in out and f"data: {data.resolve()}" in out
