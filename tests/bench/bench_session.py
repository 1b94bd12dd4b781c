"""Session overhead per step next to Slime Volleyball's own step.

Raw: ``env.step`` in a plain loop with the same actions. igym: ``Session.tick`` driving
the same env with two constant policies and a render function that returns a fixed
tuple, so what remains beyond the env's step is the session's own work (seats, clock,
records, frames, HUD). Target: overhead ≤ 10 % of the env's step. A third row adds the
env's ``state_fingerprint()`` on every step (the default, for replay ``--verify``).
"""

from __future__ import annotations

import statistics
import time

from examples.slime_volleyball.slime import SlimeVolleyEnv
from igym.experiment import Game
from igym.session import Session

STEPS = 20000


def _raw(steps: int) -> float:
    env = SlimeVolleyEnv(max_steps=10**9)
    env.reset(seed=1)
    actions = {"agent_left": 1, "agent_right": 2}
    step = env.step
    started = time.perf_counter_ns()
    for _ in range(steps):
        if not env.agents:
            env.reset(seed=1)
        step(actions)
    return (time.perf_counter_ns() - started) / steps


def _session(steps: int, fingerprints: bool = False) -> float:
    shapes = ()
    game = Game(env=lambda: SlimeVolleyEnv(max_steps=10**9), render=lambda env: shapes,
                seats={"agent_left": lambda obs: 1, "agent_right": lambda obs: 2}, fps=30, seeds=1,
                episodes=10**6, fingerprints=fingerprints)
    session = Session(game)
    session.tick(0.0)
    dt = session.dt
    started = time.perf_counter_ns()
    for i in range(1, steps + 1):
        session.tick(i * dt)
        if i % 512 == 0:
            session.take_records()
    return (time.perf_counter_ns() - started) / steps


def run() -> list[dict]:
    raws, sessions, printed = [], [], []
    for _ in range(7):  # alternate, so machine noise hits all alike
        raws.append(_raw(STEPS))
        sessions.append(_session(STEPS))
        printed.append(_session(STEPS, fingerprints=True))
    raw, ours, with_prints = statistics.median(raws), statistics.median(sessions), statistics.median(printed)
    overhead = ours - raw
    return [
        {"bench": "session", "case": "slime step: Session.tick vs env.step", "value": ours / 1000,
         "baseline": raw / 1000, "ratio": ours / raw, "unit": "µs"},
        {"bench": "session", "case": "session overhead / env step", "value": 100 * overhead / raw,
         "unit": "%", "target": "≤ 10 %"},
        {"bench": "session", "case": "slime step with the env's state fingerprint recorded (the default)",
         "value": with_prints / 1000, "baseline": raw / 1000, "ratio": with_prints / raw, "unit": "µs"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
