"""Policies: ONNX on onnxruntime (argmax, seeded softmax, raw, recurrent state), random
policies, plain functions, the pure-Python sampler, and clear errors.

The models are built here with ``onnx.helper`` from numpy weights, so every expected
action is checked against a numpy forward pass of the same weights.
"""

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from igym.errors import IgymError, PolicyError
from igym.policy import FunctionPolicy, OnnxPolicy, Policy, RandomPolicy, SeededSampler, as_policy

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "policies" / "slime_volleyball.onnx"


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """MLP 12 → 16 → 6 (Gemm, Tanh, Gemm): input ``obs`` [N, 12], output ``logits`` [N, 6]."""
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
        return np.tanh(np.asarray(obs, np.float32).reshape(-1) @ w0 + b0) @ w1 + b1
    return path, forward


@pytest.fixture(scope="module")
def recurrent(tmp_path_factory):
    """Inputs obs [N, 4], h_in [1, 8]; h_out = tanh(h_in + obs @ W), logits = h_out @ V."""
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
    path = save(graph, tmp_path_factory.mktemp("onnx") / "rnn.onnx")

    def forward(obs, h):
        h = np.tanh(h + np.asarray(obs, np.float32) @ w)
        return h @ v, h
    return path, forward


# --- OnnxPolicy: actions --------------------------------------------------------------

def test_shapes_types_and_description(mlp):
    path, forward = mlp
    policy = OnnxPolicy(path)
    assert isinstance(policy, Policy)
    assert (policy.input_name, policy.output_name, policy.obs_size) == ("obs", "logits", 12)
    obs = [0.1 * i for i in range(12)]
    action = policy.act(obs)
    assert type(action) is int and 0 <= action < 6
    raw = OnnxPolicy(path, sample="raw").act(obs)
    assert type(raw) is list and len(raw) == 6 and all(type(x) is float for x in raw)
    np.testing.assert_allclose(raw, forward(obs), rtol=1e-5, atol=1e-5)
    assert policy.scores(obs) == raw
    sampled = OnnxPolicy(path, sample="softmax", seed=0).act(obs)
    assert type(sampled) is int and 0 <= sampled < 6
    description = OnnxPolicy(path, sample="softmax", temperature=0.5, seed=7).describe()
    assert description["path"] == str(path) and description["input"] == "obs"
    assert description["output"] == "logits" and description["sample"] == "softmax"
    assert description["temperature"] == 0.5 and description["seed"] == 7
    assert len(description["sha256"]) == 64
    json.dumps(description)  # it goes into the data as is


def test_argmax_matches_numpy_forward_and_is_deterministic(mlp):
    path, forward = mlp
    policy = OnnxPolicy(path)
    rng = np.random.default_rng(5)
    for _ in range(100):
        obs = rng.normal(size=12)
        expected = int(np.argmax(forward(obs)))
        assert policy.act(obs.tolist()) == expected  # a list
        assert policy.act(tuple(obs.tolist())) == expected  # a tuple
        assert policy.act(obs) == expected  # float64 array
        assert policy.act(obs.astype(np.float32)) == expected  # float32 array
        assert policy.act(obs.reshape(3, 4)) == expected  # any shape, flattened
        assert policy.act([obs.tolist()]) == expected  # nested [[...]]
    obs = rng.normal(size=12).tolist()
    assert len({policy.act(obs) for _ in range(20)}) == 1


def test_preprocess_turns_env_observations_into_numbers(mlp):
    path, forward = mlp
    policy = OnnxPolicy(path, preprocess=lambda o: o["position"] + o["velocity"])
    obs = {"position": [0.3] * 6, "velocity": [-0.2] * 6}
    assert policy.act(obs) == int(np.argmax(forward([0.3] * 6 + [-0.2] * 6)))


def test_softmax_sampling_is_seeded_and_follows_the_probabilities(mlp):
    path, forward = mlp
    obs = [0.1] * 12

    def run(seed, temperature=3.0, n=50):
        policy = OnnxPolicy(path, sample="softmax", temperature=temperature, seed=seed)
        return [policy.act(obs) for _ in range(n)]
    assert run(1) == run(1)
    assert run(1) != run(2)
    best = int(np.argmax(forward(obs)))
    assert set(run(3, temperature=1e-3, n=200)) == {best}  # cold: the argmax
    temperature = 6.0
    counts = np.bincount(run(4, temperature, n=5000), minlength=6) / 5000
    logits = forward(obs) / temperature
    expected = np.exp(logits - logits.max())
    expected /= expected.sum()
    assert expected.max() < 0.5 and expected.min() > 0.03  # a real spread, not a near-argmax
    assert np.abs(counts - expected).max() < 0.03


def test_reset_does_not_reseed_the_sampler(mlp):
    policy = OnnxPolicy(mlp[0], sample="softmax", temperature=5.0, seed=11)
    first = [policy.act([0.0] * 12) for _ in range(30)]
    policy.reset()
    second = [policy.act([0.0] * 12) for _ in range(30)]
    fresh = OnnxPolicy(mlp[0], sample="softmax", temperature=5.0, seed=11)
    assert [fresh.act([0.0] * 12) for _ in range(60)] == first + second  # one stream per session


def test_recurrent_state_carries_and_resets(recurrent):
    path, forward = recurrent
    policy = OnnxPolicy(path, state_inputs=["h_in"], state_outputs=["h_out"], sample="raw")
    assert (policy.input_name, policy.output_name) == ("obs", "logits")
    obs = [0.5, -0.2, 0.1, 0.3]
    first = [policy.act(obs) for _ in range(5)]
    assert first[0] != first[1]  # the state changes what the same observation gives
    h = np.zeros((1, 8), np.float32)
    for got in first:
        want, h = forward(obs, h)
        np.testing.assert_allclose(got, want.ravel(), rtol=1e-5, atol=1e-6)
    policy.reset()
    assert [policy.act(obs) for _ in range(5)] == first
    argmax = OnnxPolicy(path, state_inputs=["h_in"], state_outputs=["h_out"])
    actions = [argmax.act(obs) for _ in range(5)]
    assert actions == [int(np.argmax(row)) for row in first]
    argmax.reset()
    assert [argmax.act(obs) for _ in range(5)] == actions


def test_declared_input_types_and_dynamic_sizes(tmp_path):
    double = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["y"])], "neg",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 3])])
    assert OnnxPolicy(save(double, tmp_path / "d.onnx"), sample="raw").act([1, 2, 3]) == [-1.0, -2.0, -3.0]
    dynamic = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["y"])], "neg",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "M"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "M"])])
    policy = OnnxPolicy(save(dynamic, tmp_path / "dyn.onnx"), sample="raw", threads=2)
    assert policy.obs_size is None
    assert policy.act([1.5, 2.0]) == [-1.5, -2.0] and policy.act([1, 2, 3, 4]) == [-1, -2, -3, -4]
    assert policy.act(np.ones((2, 2))) == [-1.0] * 4


@pytest.mark.skipif(not SHIPPED.is_file(), reason="policies/slime_volleyball.onnx is not there (yet)")
def test_shipped_slime_model_acts():
    policy = OnnxPolicy(SHIPPED)
    assert (policy.input_name, policy.output_name, policy.obs_size) == ("obs", "logits", 12)
    for obs in ([0.0] * 12, [0.5, 0.15, 0, 0, 0.2, 1.2, 0.5, -0.3, -1.0, 0.15, 0, 0]):
        action = policy.act(obs)
        assert type(action) is int and 0 <= action <= 5


# --- OnnxPolicy: errors ---------------------------------------------------------------

@pytest.mark.parametrize("kwargs, words", [
    (dict(input_name="observation"),
     r"OnnxPolicy\(.*mlp.onnx\): input 'observation' not in the model; "
     r"its inputs are \['obs'\] — pass input_name='obs'"),
    (dict(output_name="probs"),
     r"output 'probs' not in the model; its outputs are \['logits'\] — pass output_name='logits'"),
    (dict(sample="greedy"), r"sample='greedy' is not one of \['argmax', 'softmax', 'raw'\]"),
    (dict(sample="softmax", temperature=0), "temperature=0 — give a number above 0"),
    (dict(threads=0), "threads=0"),
])
def test_clear_errors(mlp, kwargs, words):
    with pytest.raises(PolicyError, match=words):
        OnnxPolicy(mlp[0], **kwargs)


def test_missing_and_unloadable_files(tmp_path):
    with pytest.raises(PolicyError, match=r"ONNX file not found: .*nope.onnx — check the path \(relative paths"):
        OnnxPolicy(tmp_path / "nope.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(PolicyError, match=r"OnnxPolicy\(.*junk.onnx\): onnxruntime cannot load it"):
        OnnxPolicy(tmp_path / "junk.onnx")
    assert issubclass(PolicyError, IgymError)


@pytest.mark.parametrize("obs, got", [([1, 2, 3], 3), ([1.0], 1), (2.5, 1), (np.zeros(13), 13), ([[1, 2]] * 7, 14)])
def test_wrong_observation_size_names_both_sizes(mlp, obs, got):
    # [1.0] and 2.5 would otherwise be broadcast by numpy into all 12 slots without a word.
    with pytest.raises(PolicyError, match=f"observation has {got} numbers, the model's input 'obs' takes 12"):
        OnnxPolicy(mlp[0]).act(obs)


def test_observation_that_is_not_numbers(mlp):
    with pytest.raises(PolicyError, match="pass preprocess="):
        OnnxPolicy(mlp[0]).act({"position": [0.0] * 12})


def test_state_name_errors_list_the_real_names(recurrent):
    path = recurrent[0]
    with pytest.raises(PolicyError, match=r"state input 'h' not in the model; its state inputs are \['obs', 'h_in'\]"):
        OnnxPolicy(path, state_inputs=["h"], state_outputs=["h_out"])
    with pytest.raises(PolicyError,
                       match=r"state output 'h' not in the model; its state outputs are \['logits', 'h_out'\]"):
        OnnxPolicy(path, state_inputs=["h_in"], state_outputs=["h"])
    with pytest.raises(PolicyError, match="must pair up"):
        OnnxPolicy(path, state_inputs=["h_in"])
    with pytest.raises(PolicyError, match="lists of names"):
        OnnxPolicy(path, state_inputs="h_in", state_outputs="h_out")


# --- functions, random policies -------------------------------------------------------

def test_as_policy_accepts_policies_functions_and_act_objects():
    random_policy = RandomPolicy(3, seed=0)
    assert as_policy(random_policy) is random_policy
    policy = as_policy(lambda obs: obs + 1)
    assert isinstance(policy, FunctionPolicy) and isinstance(policy, Policy)
    assert policy.act(1) == 2 and policy.reset() is None
    assert policy.describe()["kind"] == "function"

    class OnlyAct:
        def act(self, obs):
            return 4
    wrapped = as_policy(OnlyAct())
    assert wrapped.act(None) == 4 and wrapped.reset() is None
    assert wrapped.describe() == {"kind": "function", "name": "OnlyAct"}


def test_as_policy_rejects_other_things_saying_what_is_accepted():
    with pytest.raises(PolicyError, match=r"int 42 is not a policy — give an object with reset\(\) and act\(obs\), "
                                          r"or a function obs -> action"):
        as_policy(42)
    with pytest.raises(PolicyError, match=r"RandomPolicy is a class, not a policy — pass an instance"):
        as_policy(RandomPolicy)


def test_random_policy_is_seeded_and_in_range():
    a, b = RandomPolicy(4, seed=7), RandomPolicy(4, seed=7)
    sequence = [a.act(None) for _ in range(200)]
    assert sequence == [b.act(None) for _ in range(200)]
    assert set(sequence) == {0, 1, 2, 3} and all(type(x) is int for x in sequence)
    assert sequence != [RandomPolicy(4, seed=8).act(None) for _ in range(200)]
    a.reset()  # does not reseed: the session's stream goes on
    stream = random.Random(7)
    assert [a.act(None) for _ in range(50)] == [stream.randrange(4) for _ in range(250)][200:]
    with pytest.raises(PolicyError, match="n_actions or an action space"):
        RandomPolicy()
    with pytest.raises(PolicyError, match="n_actions=0"):
        RandomPolicy(0)


def test_random_policy_over_gymnasium_spaces():
    gymnasium = pytest.importorskip("gymnasium")
    discrete = RandomPolicy(space=gymnasium.spaces.Discrete(3, start=-1), seed=3)
    actions = [discrete.act(None) for _ in range(100)]
    assert set(actions) == {-1, 0, 1} and all(type(x) is int for x in actions)
    plain = RandomPolicy(3, seed=3)  # Discrete is drawn in pure Python: the same stream, shifted
    assert actions == [plain.act(None) - 1 for _ in range(100)]
    box = gymnasium.spaces.Box(-1.0, 1.0, shape=(2,))
    first = RandomPolicy(space=box, seed=5).act(None).tolist()
    again = RandomPolicy(space=gymnasium.spaces.Box(-1.0, 1.0, shape=(2,)), seed=5).act(None).tolist()
    assert first == again and all(-1 <= x <= 1 for x in first)
    assert RandomPolicy(space=box, seed=5).describe()["space"].startswith("Box")
    with pytest.raises(PolicyError, match="has no sample"):
        RandomPolicy(space=object())


# --- the sampler: pure Python, reproducible --------------------------------------------

def test_sampler_argmax_and_golden_sequence():
    assert SeededSampler.argmax([1, 5, 5, 2]) == 1  # first on ties, like numpy
    assert SeededSampler.argmax((0.0, -1.0)) == 0
    sampler = SeededSampler(2024)
    # Pinned: the browser runs this same code on onnxruntime-web's logits and must draw
    # these very actions. A change here changes every seeded softmax study.
    assert [sampler.softmax_sample([0.5, -1.0, 2.0, 0.0], 1.5) for _ in range(20)] == \
        [2, 2, 2, 3, 2, 2, 1, 1, 2, 2, 2, 2, 3, 2, 2, 2, 2, 3, 0, 2]
    # ... and they are inverse-CDF draws from random.Random(2024): checked with numpy here.
    logits = np.array([0.5, -1.0, 2.0, 0.0]) / 1.5
    cdf = np.cumsum(np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum())
    rng = random.Random(2024)
    assert [int(np.searchsorted(cdf, rng.random(), side="right")) for _ in range(20)] == \
        [2, 2, 2, 3, 2, 2, 1, 1, 2, 2, 2, 2, 3, 2, 2, 2, 2, 3, 0, 2]
    assert SeededSampler(1).softmax_sample([0.0, 3.0, 1.0], temperature=0) == 1  # greedy limit
    assert SeededSampler(1).softmax_sample([1000.0, -1000.0]) == 0  # no overflow
    with pytest.raises(PolicyError, match="not finite"):
        SeededSampler(1).softmax_sample([0.0, float("nan")])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=1, max_size=12), st.floats(0.05, 10), st.integers(0, 2**32))
def test_sampler_properties(logits, temperature, seed):
    a, b = SeededSampler(seed), SeededSampler(seed)
    draws = [a.softmax_sample(logits, temperature) for _ in range(5)]
    assert draws == [b.softmax_sample(logits, temperature) for _ in range(5)]
    scaled = np.array(logits) / temperature
    probabilities = np.exp(scaled - scaled.max())
    assert all(0 <= d < len(logits) and probabilities[d] > 0 for d in draws)  # never an impossible action
    assert SeededSampler.argmax(logits) == int(np.argmax(logits))


# --- the core stays pure Python at import time ----------------------------------------

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('numpy', 'onnxruntime'):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
"""


def test_policy_module_imports_without_numpy_or_onnxruntime():
    code = BLOCKER + (
        "import igym.policy\n"
        "from igym.policy import SeededSampler, RandomPolicy, as_policy\n"
        "assert 'numpy' not in sys.modules and 'onnxruntime' not in sys.modules\n"
        "s = SeededSampler(2024)\n"
        "print(*[s.softmax_sample([0.5, -1.0, 2.0, 0.0], 1.5) for _ in range(20)])\n"
        "r = RandomPolicy(5, seed=9)\n"
        "print(*[r.act(None) for _ in range(20)])\n"
        "print(as_policy(lambda o: 1).act(0))\n"
        "try:\n"
        "    igym.policy.OnnxPolicy(sys.argv[1])\n"
        "except igym.policy.PolicyError as error:\n"
        "    print(error)\n")
    out = subprocess.run([sys.executable, "-c", code, __file__], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # The same draws as with numpy loaded in this process: nothing in the sampler uses it.
    sampler = SeededSampler(2024)
    assert lines[0].split() == [str(sampler.softmax_sample([0.5, -1.0, 2.0, 0.0], 1.5)) for _ in range(20)]
    r = RandomPolicy(5, seed=9)
    assert lines[1].split() == [str(r.act(None)) for _ in range(20)]
    assert lines[2] == "1"
    assert "pip install" in lines[3]  # an ONNX policy without numpy/onnxruntime says what to install


def test_policy_module_does_not_import_numpy_when_loaded():
    code = "import sys, igym.policy\nprint(sorted({'numpy', 'onnxruntime'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
