"""Policies: ONNX on onnxruntime (argmax, seeded softmax, recurrent state), random, functions."""

import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from igym.errors import PolicyError
from igym.policy import FunctionPolicy, OnnxPolicy, RandomPolicy, SeededSampler, as_policy


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    rng = np.random.default_rng(0)
    w0, b0 = rng.normal(size=(12, 16)).astype(np.float32), rng.normal(size=16).astype(np.float32)
    w1, b1 = rng.normal(size=(16, 6)).astype(np.float32), rng.normal(size=6).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["obs", "W0", "B0"], ["z"]), helper.make_node("Tanh", ["z"], ["h"]),
         helper.make_node("Gemm", ["h", "W1", "B1"], ["logits"])],
        "mlp", [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["N", 12])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 6])],
        [numpy_helper.from_array(a, n) for a, n in ((w0, "W0"), (b0, "B0"), (w1, "W1"), (b1, "B1"))])
    path = save(graph, tmp_path_factory.mktemp("onnx") / "mlp.onnx")

    def forward(obs):
        return np.tanh(np.asarray(obs, np.float32) @ w0 + b0) @ w1 + b1
    return path, forward


@pytest.fixture(scope="module")
def recurrent(tmp_path_factory):
    w = np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)
    v = np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "W"], ["x"]), helper.make_node("Add", ["h_in", "x"], ["s"]),
         helper.make_node("Tanh", ["s"], ["h_out"]), helper.make_node("MatMul", ["h_out", "V"], ["logits"])],
        "rnn", [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["N", 4]),
                helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 8])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(v, "V")])
    return save(graph, tmp_path_factory.mktemp("onnx") / "rnn.onnx")


def test_argmax_matches_numpy_forward_and_is_deterministic(mlp):
    path, forward = mlp
    policy = OnnxPolicy(path)
    rng = np.random.default_rng(5)
    for _ in range(50):
        obs = rng.normal(size=12).tolist()
        action = policy.act(obs)
        assert isinstance(action, int) and action == int(np.argmax(forward(obs)))
        assert policy.act(np.asarray(obs)) == action  # lists and arrays alike
    assert policy.describe()["input"] == "obs"


def test_softmax_sampling_is_seeded_and_follows_the_probabilities(mlp):
    path, forward = mlp
    obs = [0.1] * 12
    def run(seed):
        policy = OnnxPolicy(path, sample="softmax", temperature=3.0, seed=seed)
        return [policy.act(obs) for _ in range(50)]
    assert run(1) == run(1) and run(1) != run(2)
    cold = OnnxPolicy(path, sample="softmax", temperature=1e-3, seed=3)
    assert {cold.act(obs) for _ in range(30)} == {int(np.argmax(forward(obs)))}
    temperature = 3.0
    policy = OnnxPolicy(path, sample="softmax", temperature=temperature, seed=4)
    counts = np.bincount([policy.act(obs) for _ in range(5000)], minlength=6) / 5000
    logits = forward(obs) / temperature
    expected = np.exp(logits - logits.max())
    expected /= expected.sum()
    assert np.abs(counts - expected).max() < 0.03


def test_recurrent_state_carries_and_resets(recurrent):
    policy = OnnxPolicy(recurrent, state_inputs=["h_in"], state_outputs=["h_out"], sample="raw")
    obs = [0.5, -0.2, 0.1, 0.3]
    first = [policy.act(obs) for _ in range(4)]
    assert first[0] != first[1]  # the state changes what the same observation gives
    policy.reset()
    assert [policy.act(obs) for _ in range(4)] == first


@pytest.mark.parametrize("kwargs, words", [
    (dict(input_name="observation"), r"input 'observation' not in the model; its inputs are \['obs'\] — pass input_name='obs'"),
    (dict(output_name="probs"), r"output 'probs' not in the model; its outputs are \['logits'\]"),
    (dict(sample="greedy"), "sample='greedy'"),
])
def test_clear_errors(mlp, kwargs, words):
    with pytest.raises(PolicyError, match=words):
        OnnxPolicy(mlp[0], **kwargs)


def test_missing_file_and_wrong_size_and_bad_state_names(mlp, recurrent, tmp_path):
    with pytest.raises(PolicyError, match="ONNX file not found"):
        OnnxPolicy(tmp_path / "nope.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(PolicyError, match="cannot load it"):
        OnnxPolicy(tmp_path / "junk.onnx")
    with pytest.raises(PolicyError, match="observation has 3 numbers, the model's input 'obs' takes 12"):
        OnnxPolicy(mlp[0]).act([1, 2, 3])
    with pytest.raises(PolicyError, match="state input 'h' not in the model"):
        OnnxPolicy(recurrent, state_inputs=["h"], state_outputs=["h_out"])


def test_functions_random_and_the_sampler():
    policy = as_policy(lambda obs: obs + 1)
    assert isinstance(policy, FunctionPolicy) and policy.act(1) == 2
    with pytest.raises(PolicyError):
        as_policy(42)
    a, b = RandomPolicy(4, seed=7), RandomPolicy(4, seed=7)
    sequence = [a.act(None) for _ in range(100)]
    assert sequence == [b.act(None) for _ in range(100)] and set(sequence) == {0, 1, 2, 3}
    assert SeededSampler.argmax([1, 5, 5, 2]) == 1
    assert [SeededSampler(9).softmax_sample([0, 1, 2]) for _ in range(3)] == [SeededSampler(9).softmax_sample([0, 1, 2])] * 3


def test_policy_module_imports_without_numpy_or_onnxruntime():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('numpy', 'onnxruntime'):\n"
            "            raise ImportError('blocked ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from igym.policy import SeededSampler, RandomPolicy\n"
            "print(SeededSampler(1).softmax_sample([0.0, 1.0, 2.0]), RandomPolicy(3, seed=1).act(None))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(SeededSampler(1).softmax_sample([0.0, 1.0, 2.0])), str(RandomPolicy(3, seed=1).act(None))]
