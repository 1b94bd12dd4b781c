"""The pure-Python ONNX evaluator (used where onnxruntime is missing: pygbag pages, bare
machines) against onnxruntime on the shipped policies and on models with every operator
it claims; and OnnxPolicy choosing it when onnxruntime cannot be imported."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from igym.errors import PolicyError
from igym.onnxlite import LiteBackend
from igym.policy import _Flat

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [ROOT / "policies" / "slime_volleyball.onnx", ROOT / "policies" / "overcooked_cramped_room.onnx"]


def ort_scores(path, obs):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.asarray(obs, np.float32)})[0]


def lite_scores(path, obs):
    backend = LiteBackend(str(path))
    obs = np.asarray(obs, np.float32)
    out = backend.run([backend.model.outputs[0][0]],
                      {backend.input_names[0]: _Flat(obs.ravel().tolist(), list(obs.shape))})
    return np.asarray(out[0].values).reshape(out[0].shape)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_policies_give_onnxruntimes_scores_and_actions(path):
    backend = LiteBackend(str(path))
    size = backend.input_shape(backend.input_names[0])[-1]
    rng = np.random.default_rng(0)
    for _ in range(60):
        obs = rng.normal(size=(1, size)).astype(np.float32)
        want, got = ort_scores(path, obs), lite_scores(path, obs)
        # float32 (onnxruntime) against double sums: differences of 1e-5 of the largest score
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()) + 1e-6)
        assert int(np.argmax(got)) == int(np.argmax(want))


def test_every_supported_operator_against_onnxruntime(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(5, 4)).astype(np.float32)  # used transposed by Gemm(transB=1)
    m = rng.normal(size=(4, 3)).astype(np.float32)
    bias, scale, shift = (rng.normal(size=n).astype(np.float32) for n in (5, 3, 3))
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["g"], transB=1, alpha=0.5, beta=2.0),
             helper.make_node("Sigmoid", ["g"], ["s"]),
             helper.make_node("Identity", ["s"], ["i"]),
             helper.make_node("Sub", ["i", "B"], ["d"]),
             helper.make_node("Relu", ["d"], ["r"]),
             helper.make_node("Gemm", ["r", "W"], ["back"]),  # [1, 5] @ [5, 4]
             helper.make_node("MatMul", ["back", "M"], ["mm"]),
             helper.make_node("Mul", ["mm", "S"], ["scaled"]),
             helper.make_node("Add", ["scaled", "T"], ["shifted"]),
             helper.make_node("Tanh", ["shifted"], ["t"]),
             helper.make_node("Softmax", ["t"], ["p"], axis=-1)]
    graph = helper.make_graph(nodes, "ops", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 3])],
                              [numpy_helper.from_array(a, n) for a, n in ((w, "W"), (m, "M"), (bias, "B"),
                                                                          (scale, "S"), (shift, "T"))])
    path = tmp_path / "ops.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
                     .SerializeToString())
    for _ in range(20):
        obs = rng.normal(size=(1, 4)).astype(np.float32)
        np.testing.assert_allclose(lite_scores(path, obs), ort_scores(path, obs), rtol=1e-4, atol=1e-6)
    obs = rng.normal(size=(3, 4)).astype(np.float32)  # a batch of three
    np.testing.assert_allclose(lite_scores(path, obs), ort_scores(path, obs), rtol=1e-4, atol=1e-6)


def test_unsupported_operators_and_bad_files_are_named(tmp_path):
    graph = helper.make_graph([helper.make_node("Conv", ["x", "W"], ["y"])], "conv",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.ones((1, 1, 2, 2), np.float32), "W")])
    conv = tmp_path / "conv.onnx"
    conv.write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(PolicyError, match="not Conv"):
        LiteBackend(str(conv))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * 20)
    with pytest.raises(PolicyError, match="not a readable ONNX model"):
        LiteBackend(str(junk))


def test_onnx_policy_falls_back_to_it_without_onnxruntime():
    """Where ``import onnxruntime`` fails (a pygbag page, a bare machine), OnnxPolicy runs the
    model in pure Python and acts as it does with onnxruntime."""
    code = ("import sys; sys.modules['onnxruntime'] = None\n"
            "import random\n"
            "from igym.policy import OnnxPolicy\n"
            f"policy = OnnxPolicy({str(SHIPPED[0])!r})\n"
            "rng = random.Random(3)\n"
            "obs = [[rng.uniform(-2, 2) for _ in range(12)] for _ in range(200)]\n"
            "print(policy.backend.name); print([policy.act(o) for o in obs]); print(obs)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    name, actions, observations = out.stdout.splitlines()
    assert name == "igym-onnxlite"
    from igym.policy import OnnxPolicy
    native = OnnxPolicy(SHIPPED[0])
    assert native.backend.name == "onnxruntime"
    assert eval(actions) == [native.act(o) for o in eval(observations)]  # our own output
