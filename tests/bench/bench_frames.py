"""Frame pacing of the native app loop: frame-interval mean and SD at 60 Hz, in real time.

Runs the real loop (``renderers.app.run_session`` with the real-time ``Pacer``) on the
Slime Volleyball experiment for 5 s under the dummy video driver, autopilot at the keys,
ONNX AI on the other side, records going to a real SQLite file — and reads back the
frame timing the session recorded for the episode. Target: SD < 1 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import tempfile
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

from igym.sqlite_sink import SqliteSink
from igym.loader import load_experiment
from igym.renderers.app import Pacer, autopilot_for, run_session
from igym.renderers.window import Window
from igym.session import Session

EXPERIMENT = Path(__file__).resolve().parents[2] / "examples" / "slime_volleyball" / "human_ai.py"


def run(seconds: float = 5.0) -> list[dict]:
    game = load_experiment(EXPERIMENT).scenes[0]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "frames.sqlite"
        sink = SqliteSink(path)
        window = Window(game.canvas, headless=True)
        session = Session(game, "bench", max_total_steps=int(seconds * game.fps))
        asyncio.run(run_session(window, session, sink, Pacer(60.0), autopilot=autopilot_for(session)))
        sink.close()
        window.close()
        timing = [json.loads(t) for (t,) in sqlite3.connect(path).execute(
            "SELECT timing FROM episodes WHERE timing IS NOT NULL")]
    longest = max(timing, key=lambda t: t["frames"])
    return [
        {"bench": "frames", "case": f"native loop at 60 Hz: frame interval mean ({longest['frames']} frames)",
         "value": longest["mean_ms"], "baseline": 1000 / 60, "ratio": longest["mean_ms"] / (1000 / 60), "unit": "ms"},
        {"bench": "frames", "case": "native loop at 60 Hz: frame interval SD", "value": longest["sd_ms"],
         "unit": "ms", "target": "< 1 ms"},
        {"bench": "frames", "case": "native loop at 60 Hz: longest frame interval", "value": longest["max_ms"],
         "unit": "ms"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
