"""The env adapter over PettingZoo parallel envs, Gymnasium dict-action envs and plain Gymnasium envs."""

import gymnasium
import pytest

from igym.envs import SINGLE_AGENT, EnvAdapter
from igym.errors import EnvError
from tests.toy_envs import DictCounter, LineRace


def test_parallel_env():
    env = EnvAdapter(LineRace(goal=3))
    assert env.kind == "parallel" and env.agents == ("a", "b")
    obs = env.reset(seed=1)
    assert set(obs) == {"a", "b"} and not env.done
    assert env.action_space("a").n == 3
    while not env.done:
        result = env.step({a: 1 for a in env.active()})
    assert result.terminations == {"a": True, "b": True}
    assert env.active() == ()  # PettingZoo drops finished agents
    assert env.state_fingerprint is not None


def test_dict_action_env_with_scalar_reward_and_all_flag():
    env = EnvAdapter(DictCounter(limit=3))
    assert env.kind == "dict" and env.agents == ("left", "right")
    obs = env.reset(seed=0)
    assert obs == {"left": [0], "right": [0]}
    result = env.step({"left": 1, "right": 0})
    assert result.rewards == {"left": 1.0, "right": 1.0}
    assert result.terminations == {"left": False, "right": False}
    result = env.step({"left": 0, "right": 1})
    assert env.done and result.terminations == {"left": True, "right": True}


def test_single_agent_gymnasium_env():
    env = EnvAdapter(gymnasium.make("CartPole-v1"))
    assert env.kind == "single" and env.agents == (SINGLE_AGENT,)
    first = env.reset(seed=3)[SINGLE_AGENT]
    again = EnvAdapter(gymnasium.make("CartPole-v1")).reset(seed=3)[SINGLE_AGENT]
    assert (first == again).all()
    steps = 0
    while not env.done:
        env.step({SINGLE_AGENT: steps % 2})
        steps += 1
    assert steps < 500


def test_not_an_env_is_a_clear_error():
    with pytest.raises(EnvError, match="not an environment"):
        EnvAdapter(object())
    with pytest.raises(EnvError, match="its agents are"):
        EnvAdapter(LineRace()).agent("c")
