"""Data is sacred: kill -9 in the middle of a real-time run loses at most the last second."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

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
