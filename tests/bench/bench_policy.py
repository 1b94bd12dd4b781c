"""ONNX action time: ``OnnxPolicy.act`` next to a raw onnxruntime call on the same model.

Model: the shipped ``policies/slime_volleyball.onnx`` (12 → 32 → 32 → 6 MLP). Raw is
``InferenceSession.run`` with a pre-built float32 feed (the fastest fair raw call: no
conversion, no sampling); igym converts a list observation, runs, and picks the action.
Target: ≤ 2× raw.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime

from igym.policy import OnnxPolicy

MODEL = Path(__file__).resolve().parents[2] / "policies" / "slime_volleyball.onnx"
CALLS = 20000


def _time_pair(ours, raw, repeats: int = 9) -> tuple[float, float]:
    """Median µs per call of both, measured in alternation so machine noise hits both alike."""
    for _ in range(500):
        ours()
        raw()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for function, into in ((ours, times[0]), (raw, times[1])):
            started = time.perf_counter_ns()
            for _ in range(CALLS):
                function()
            into.append((time.perf_counter_ns() - started) / CALLS / 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def run() -> list[dict]:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    observation = [0.5, 0.15, 0.0, 0.0, 0.2, 1.2, 0.5, -0.3, -1.0, 0.15, 0.0, 0.0]
    feed = {"obs": np.asarray([observation], np.float32)}
    argmax = OnnxPolicy(MODEL)
    softmax = OnnxPolicy(MODEL, sample="softmax", seed=1)
    ours, raw = _time_pair(lambda: argmax.act(observation), lambda: session.run(["logits"], feed))
    sampled, raw_again = _time_pair(lambda: softmax.act(observation), lambda: session.run(["logits"], feed))
    raw = min(raw, raw_again)
    return [
        {"bench": "policy", "case": "slime MLP: OnnxPolicy.act (argmax) vs session.run", "value": ours,
         "baseline": raw, "ratio": ours / raw, "unit": "µs", "target": "≤ 2×"},
        {"bench": "policy", "case": "slime MLP: OnnxPolicy.act (softmax) vs session.run", "value": sampled,
         "baseline": raw, "ratio": sampled / raw, "unit": "µs"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
