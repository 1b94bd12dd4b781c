"""ONNX action time: ``OnnxPolicy.act`` next to a raw onnxruntime call on the same model.

    python tests/bench/bench_policy.py        (or: python -m tests.bench bench_policy)

Models: the slime-sized MLP 12 → 64 → 64 → 6 (tanh), built here in a temp folder with
``onnx.helper`` (the size the hands-on notes measured), and the shipped
``policies/slime_volleyball.onnx`` when it exists. Raw is ``InferenceSession.run`` with a
pre-built float32 feed, the fastest fair public call (no conversion, no sampling); igym
takes a Python list observation (what the envs give), fills its buffer, runs, and picks
the action. Each case is timed in alternation with raw, and the median of the repeats is
kept, so machine noise hits both alike. Target: ``act`` ≤ 2× raw.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from igym.policy import OnnxPolicy

SHIPPED = Path(__file__).resolve().parents[2] / "policies" / "slime_volleyball.onnx"
CALLS = 10000
REPEATS = 7
OBSERVATION = [0.5, 0.15, 0.0, 0.0, 0.2, 1.2, 0.5, -0.3, -1.0, 0.15, 0.0, 0.0]


def build_mlp(path: Path, sizes: tuple[int, ...] = (12, 64, 64, 6), seed: int = 0) -> Path:
    """An MLP with tanh between Gemm layers, input ``obs`` [N, 12], output ``logits`` [N, 6]."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    nodes, weights, x = [], [], "obs"
    for layer, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        weight = (rng.normal(size=(n_in, n_out)) / n_in ** 0.5).astype(np.float32)
        weights += [numpy_helper.from_array(weight, f"W{layer}"),
                    numpy_helper.from_array(np.zeros(n_out, np.float32), f"B{layer}")]
        last = layer == len(sizes) - 2
        out = "logits" if last else f"z{layer}"
        nodes.append(helper.make_node("Gemm", [x, f"W{layer}", f"B{layer}"], [out]))
        if not last:
            nodes.append(helper.make_node("Tanh", [out], [f"h{layer}"]))
            x = f"h{layer}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["N", sizes[0]])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", sizes[-1]])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    path.write_bytes(model.SerializeToString())
    return path


def _time_pair(ours, raw, calls: int = CALLS, repeats: int = REPEATS) -> tuple[float, float]:
    """Median µs per call of both, measured in alternation after a warm-up."""
    for _ in range(1000):
        ours()
        raw()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for function, into in ((ours, times[0]), (raw, times[1])):
            started = time.perf_counter_ns()
            for _ in range(calls):
                function()
            into.append((time.perf_counter_ns() - started) / calls / 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def _bench_model(label: str, path: Path) -> list[dict]:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {"obs": np.asarray([OBSERVATION], np.float32)}
    fetch = ["logits"]
    run = session.run

    def raw():
        return run(fetch, feed)

    argmax = OnnxPolicy(path)
    softmax = OnnxPolicy(path, sample="softmax", seed=1)
    as_array = np.asarray(OBSERVATION, np.float32)
    cases = [("act, argmax, list obs", lambda: argmax.act(OBSERVATION), "≤ 2×"),
             ("act, argmax, numpy obs", lambda: argmax.act(as_array), ""),
             ("act, softmax, list obs", lambda: softmax.act(OBSERVATION), "")]
    measured = [(name, *_time_pair(function, raw), target) for name, function, target in cases]
    baseline = statistics.median(raw_us for _, _, raw_us, _ in measured)
    rows = [{"bench": "policy", "case": f"{label}: session.run (raw, pre-built feed)", "value": baseline,
             "unit": "µs"}]
    for name, ours_us, raw_us, target in measured:
        # Each case against the raw time measured beside it (same minutes, same noise).
        rows.append({"bench": "policy", "case": f"{label}: OnnxPolicy.{name}", "value": ours_us,
                     "baseline": raw_us, "ratio": ours_us / raw_us, "unit": "µs", "target": target})
    return rows


def run() -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows += _bench_model("MLP 12-64-64-6", build_mlp(Path(folder) / "mlp_12_64_64_6.onnx"))
    if SHIPPED.is_file():
        rows += _bench_model("policies/slime_volleyball.onnx", SHIPPED)
    return rows


def main() -> None:
    print(f"onnxruntime {onnxruntime.__version__}, numpy {np.__version__}, Python {sys.version.split()[0]}; "
          f"{CALLS} calls × {REPEATS} repeats, median\n")
    print("| case | µs per call | raw beside it (µs) | ratio vs raw | target |")
    print("|---|---|---|---|---|")
    for row in run():
        base = f"{row['baseline']:.2f}" if row.get("baseline") is not None else "—"
        ratio = f"{row['ratio']:.2f}×" if row.get("ratio") is not None else "—"
        print(f"| {row['case']} | {row['value']:.2f} | {base} | {ratio} | {row.get('target', '')} |")


if __name__ == "__main__":
    main()
