"""Continuous actions end to end: what the env receives is what SQLite holds, bit for bit, and
replay ``--verify`` and the Minari export read back the very same float32 values."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest

from igym.autopilot import Autopilot
from igym.sqlite_sink import SqliteSink
from igym.gymenv import gym_game
from igym.session import Session

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}


class Received(gymnasium.Wrapper):
    """Keeps a copy of every action the env was given."""

    def __init__(self, env):
        super().__init__(env)
        self.actions = []

    def step(self, action):
        self.actions.append(np.array(action, copy=True))
        return self.env.step(action)

    def state_fingerprint(self):
        return self.env.state_fingerprint()


def test_recorded_actions_are_the_float32s_the_env_received(tmp_path):
    game = gym_game("Pendulum-v1")
    make_pendulum = game.env
    envs = []

    def make():
        envs.append(Received(make_pendulum()))
        return envs[-1]

    game = dataclasses.replace(game, env=make, max_steps=150, seeds=4)
    path = tmp_path / "pendulum.sqlite"
    with SqliteSink(path) as sink:
        session = Session(game, "P1")
        pilot = Autopilot(["left", "right"], seed=5, axes={0: 0.0})  # keys and a stick at once
        now = 0.0
        while not session.finished:
            pilot.play(session, now)
            session.tick(now)
            sink.write(session.take_records())
            now += 1 / 60
    received = envs[0].actions
    assert len(received) == 150 and all(a.dtype == np.float32 and a.shape == (1,) for a in received)
    db = sqlite3.connect(path)
    recorded = [json.loads(a) for (a,) in db.execute("SELECT action FROM steps ORDER BY step")]
    assert len(recorded) == 150
    for sent, kept in zip(received, recorded):
        assert np.asarray(kept, dtype=np.float32).tobytes() == sent.tobytes()  # bit for bit
        assert kept == sent.tolist()  # the Python floats of those float32s, unchanged by JSON
    values = {round(v[0], 3) for v in recorded}
    assert len(values) > 5  # stick positions in between the keys' values, not only -2 / 0 / 2


@pytest.mark.slow
def test_car_racing_headless_autopilot_replays_and_exports_bit_exactly(tmp_path):
    pytest.importorskip("Box2D", reason="CarRacing needs the Box2D bindings (pip install box2d)")
    data = tmp_path / "car.sqlite"
    out = subprocess.run([sys.executable, "-m", "igym.play", "CarRacing-v3", "--headless", "--autopilot",
                          "--max-steps", "300", "--data", str(data)], cwd=ROOT, env=ENV, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    db = sqlite3.connect(data)
    steps = db.execute("SELECT action, source, extra FROM steps ORDER BY step").fetchall()
    assert len(steps) == 300
    actions = [json.loads(a) for a, _, _ in steps]
    assert all(len(a) == 3 and all(isinstance(v, float) for v in a) for a in actions)
    assert all(v == float(np.float32(v)) for a in actions for v in a)  # float32 values, as the env had them
    assert all(-1 <= a[0] <= 1 and 0 <= a[1] <= 1 and 0 <= a[2] <= 1 for a in actions)
    extras = [json.loads(e) for _, _, e in steps]
    assert all(set(e) == {"axis.0", "axis.4", "axis.5"} for e in extras)  # steer stick, brake and gas triggers
    assert "human" in {s for _, s, _ in steps}
    assert len({tuple(a) for a in actions}) > 20  # the stick and triggers make values between the keys'
    (episode,) = db.execute("SELECT episode_id FROM episodes").fetchone()
    db.close()

    verify = subprocess.run([sys.executable, "-m", "igym.data", "replay", str(data), "--episode", episode[:8],
                             "--verify"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("verified 300 steps")

    pytest.importorskip("minari")
    folder = tmp_path / "minari"
    export = subprocess.run([sys.executable, "-m", "igym.data", "export", str(data), "--to", "minari", str(folder),
                             "--agent", "agent_0"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert export.returncode == 0, export.stderr
    os.environ["MINARI_DATASETS_PATH"] = str(folder)
    try:
        import minari

        dataset = minari.load_dataset("igym/CarRacing_v3_agent_0-v0")
        (exported,) = list(dataset.iterate_episodes())
    finally:
        os.environ.pop("MINARI_DATASETS_PATH", None)
    assert exported.actions.dtype == np.float32 and exported.actions.shape == (300, 3)
    assert exported.actions.tobytes() == np.asarray(actions, dtype=np.float32).tobytes()
    assert dataset.action_space == gymnasium.make("CarRacing-v3").action_space
