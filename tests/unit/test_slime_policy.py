"""The shipped Slime Volleyball AI: loads through OnnxPolicy and plays well."""

from pathlib import Path

import pytest

from examples.slime_volleyball.evaluate_policy import evaluate
from examples.slime_volleyball.scripted import RandomSlimePolicy, ScriptedSlimePolicy
from igym.errors import PolicyError
from igym.policy import OnnxPolicy

MODEL = Path(__file__).resolve().parents[2] / "policies" / "slime_volleyball.onnx"


def test_shipped_model_beats_random_and_scores_against_scripted():
    policy = OnnxPolicy(MODEL)
    against_random = evaluate(policy, RandomSlimePolicy(42), games=20, seed=1000)
    assert against_random.wins >= 18
    against_scripted = evaluate(policy, ScriptedSlimePolicy(), games=4, seed=2000)
    assert against_scripted.scored > 0


def test_shipped_model_shapes_and_determinism():
    policy = OnnxPolicy(MODEL)
    assert (policy.input_name, policy.output_name, policy.obs_size) == ("obs", "logits", 12)
    observation = [0.5, 0.15, 0, 0, 0.2, 1.2, 0.5, -0.3, -1.0, 0.15, 0, 0]
    action = policy.act(observation)
    assert isinstance(action, int) and 0 <= action < 6
    assert all(policy.act(observation) == action for _ in range(10))
    assert len(policy.scores(observation)) == 6


def test_wrong_input_name_names_the_real_one():
    with pytest.raises(PolicyError, match=r"input 'observation' not in the model; its inputs are \['obs'\]"):
        OnnxPolicy(MODEL, input_name="observation")
