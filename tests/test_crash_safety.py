"""Data is sacred: kill -9 in the middle of a real-time run loses at most the last second."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def count_steps(path):
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        return db.execute("SELECT count(*) FROM steps WHERE agent='agent_left'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_loses_at_most_the_last_second(tmp_path):
    data = tmp_path / "crash.sqlite"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    process = subprocess.Popen([sys.executable, "-m", "igym.play", "examples/slime_volleyball/human_ai.py",
                                "--autopilot", "--data", str(data)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while count_steps(data) == 0:  # the first commit: the game is running in real time
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        first_seen = time.monotonic()
        time.sleep(3.0)
        process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    steps = count_steps(data)
    played_since = (killed - first_seen) * 30  # steps played between first sight and the kill
    assert steps >= played_since - 30 - 3, (steps, played_since)  # at most 1 s (30 steps) lost
    db = sqlite3.connect(data)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    episode = db.execute("SELECT seed, outcome FROM episodes").fetchone()
    assert episode[0] is not None and episode[1] is None  # the killed episode is there, unfinished
