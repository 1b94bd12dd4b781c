"""Bytes per Slime Volleyball frame on the wire.

Three encodings of the same frames from a real seeded match (two random players):
igym's msgpack delta (only changed fields of changed shapes), a whole msgpack frame, and
whole objects as JSON every frame (how Interactive Gym and MUG send state). Target:
≤ 400 B per delta frame.
"""

from __future__ import annotations

import dataclasses
import json
import random
import statistics

from examples.slime_volleyball.draw import render
from examples.slime_volleyball.slime import SlimeVolleyEnv
from igym import render as r

FRAMES = 3000


def _frames() -> list[r.Frame]:
    env = SlimeVolleyEnv()
    env.reset(seed=5)
    rng = random.Random(5)
    frames = []
    for step in range(FRAMES):
        if not env.agents:
            env.reset(seed=step)
        env.step({a: rng.randrange(6) for a in env.possible_agents})
        frames.append(r.Frame.of(render(env), {"Time": f"{step // 30}"}, 0, step))
    return frames


def _as_json(frame: r.Frame) -> bytes:
    objects = [{"type": type(s).__name__, **dataclasses.asdict(s)} for s in frame.shapes]
    return json.dumps({"objects": objects, "hud": dict(frame.hud)}).encode()


def run() -> list[dict]:
    frames = _frames()
    delta = [len(r.encode(f, p)) for p, f in zip(frames, frames[1:])]
    whole = [len(r.encode(f)) for f in frames[1:]]
    as_json = [len(_as_json(f)) for f in frames[1:]]
    mean = statistics.fmean
    return [
        {"bench": "wire", "case": "slime frame, igym delta (mean)", "value": mean(delta), "unit": "B",
         "baseline": mean(as_json), "ratio": mean(delta) / mean(as_json), "target": "≤ 400 B"},
        {"bench": "wire", "case": "slime frame, igym delta (max)", "value": max(delta), "unit": "B"},
        {"bench": "wire", "case": "slime frame, whole msgpack frame", "value": mean(whole), "unit": "B"},
        {"bench": "wire", "case": "slime frame, whole objects as JSON (upstream style)", "value": mean(as_json),
         "unit": "B"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
