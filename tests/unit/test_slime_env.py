"""Slime Volleyball as an env: PettingZoo API, determinism, state snapshots, episode ends."""

import subprocess
import sys

import pytest

from examples.slime_volleyball import slime
from examples.slime_volleyball.scripted import RandomSlimePolicy, ScriptedSlimePolicy


def rollout(seed, steps=400, env=None):
    env = env or slime.SlimeVolleyEnv()
    observations, _ = env.reset(seed=seed)
    players = {"agent_left": RandomSlimePolicy(seed), "agent_right": RandomSlimePolicy(seed + 1)}
    trace = []
    for _ in range(steps):
        if not env.agents:
            break
        observations, rewards, *_ = env.step({a: players[a].act(observations[a]) for a in env.agents})
        trace.append((env.state_fingerprint(), rewards["agent_left"]))
    return trace


def test_passes_pettingzoo_parallel_api_test():
    from pettingzoo.test import parallel_api_test
    parallel_api_test(slime.SlimeVolleyEnv(obs_as="numpy"), num_cycles=1000)


def test_same_seed_same_trajectory_different_seed_differs():
    assert rollout(3) == rollout(3)
    assert rollout(3) != rollout(4)


def test_get_state_set_state_continues_identically():
    env = slime.SlimeVolleyEnv()
    env.reset(seed=9)
    for _ in range(50):
        env.step({"agent_left": slime.FORWARD_JUMP, "agent_right": slime.BACKWARD})
    snapshot = env.get_state()
    import json
    snapshot = json.loads(json.dumps(snapshot))  # it must survive JSON (the network, the data file)
    actions = [{"agent_left": i % 6, "agent_right": (i * 5) % 6} for i in range(300)]
    first = []
    for a in actions:
        if env.agents:
            env.step(a)
            first.append(env.state_fingerprint())
    other = slime.SlimeVolleyEnv()
    other.reset(seed=123)
    other.set_state(snapshot)
    second = []
    for a in actions:
        if other.agents:
            other.step(a)
            second.append(other.state_fingerprint())
    assert first == second and len(first) > 100


def test_max_steps_truncates():
    env = slime.SlimeVolleyEnv(max_steps=10)
    env.reset(seed=0)
    for _ in range(10):
        _, _, terms, truncs, _ = env.step({"agent_left": 0, "agent_right": 0})
    assert truncs == {"agent_left": True, "agent_right": True} and not any(terms.values())
    assert env.agents == []
    with pytest.raises(RuntimeError):
        env.step({"agent_left": 0, "agent_right": 0})


def test_match_terminates_when_lives_run_out_and_rewards_are_zero_sum():
    env = slime.SlimeVolleyEnv()
    observations, _ = env.reset(seed=1)
    scripted, rand = ScriptedSlimePolicy(), RandomSlimePolicy(1)
    totals = {"agent_left": 0.0, "agent_right": 0.0}
    while env.agents:
        observations, rewards, terms, _, _ = env.step({"agent_left": scripted.act(observations["agent_left"]),
                                                       "agent_right": rand.act(observations["agent_right"])})
        assert rewards["agent_left"] == -rewards["agent_right"]
        for agent, value in rewards.items():
            totals[agent] += value
    assert terms["agent_left"] and min(env.game.agent_left.lives, env.game.agent_right.lives) == 0
    assert totals["agent_left"] > 0  # the scripted player beats random


def test_observations_are_mirrored():
    env = slime.SlimeVolleyEnv()
    observations, _ = env.reset(seed=0)
    env.game.ball.x, env.game.ball.vx = 0.0, 0.0
    env.game._observe()
    left, right = env.game.observations["agent_left"], env.game.observations["agent_right"]
    assert left == right  # a symmetric position looks the same from both sides
    assert left[0] > 0  # each slime sees itself on the positive side


def test_button_actions_and_bad_actions():
    env = slime.SlimeVolleyEnv()
    env.reset(seed=0)
    env.step({"agent_left": [1, 0, 1], "agent_right": slime.FORWARD_JUMP})
    assert env.game.agent_left.vy == env.game.agent_right.vy > 0
    with pytest.raises(ValueError):
        env.step({"agent_left": 7, "agent_right": 0})


def test_imports_without_numpy():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('numpy', 'gymnasium', 'pettingzoo'):\n"
            "            raise ImportError('blocked ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from examples.slime_volleyball.slime import SlimeVolleyEnv\n"
            "env = SlimeVolleyEnv(); env.reset(seed=1); env.step({'agent_left': 1, 'agent_right': 2})\n"
            "print('ok')\n")
    from pathlib import Path
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "ok", out.stderr
