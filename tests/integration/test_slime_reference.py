"""Slime Volleyball is faithful: it matches the original slimevolleygym 0.1.0 step for step.

The original wheel is downloaded from PyPI (``pip download --no-deps``) into a cache and its
``slimevolley.py`` is loaded with stub ``gym`` and ``cv2`` modules (its physics needs only
math and numpy). Both games start from the same state and get the same button presses;
at every re-serve the original's random serve is copied into ours (the two RNGs differ).
"""

import os
import random
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from examples.slime_volleyball import slime

CACHE = Path(os.environ.get("IGYM_TEST_CACHE", Path.home() / ".cache" / "igym-test"))
WHEEL = "slimevolleygym-0.1.0-py3-none-any.whl"


def _original_module():
    CACHE.mkdir(parents=True, exist_ok=True)
    wheel = CACHE / WHEEL
    if not wheel.exists():
        out = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "slimevolleygym==0.1.0",
                              "-d", str(CACHE)], capture_output=True, text=True)
        if out.returncode != 0 or not wheel.exists():
            pytest.skip(f"cannot download slimevolleygym 0.1.0 from PyPI: {out.stderr.strip()[-200:]}")
    source = zipfile.ZipFile(wheel).read("slimevolleygym/slimevolley.py")
    stubs = {}
    gym = types.ModuleType("gym")
    gym.__getattr__ = lambda name: type(name, (), {})  # Env, RewardWrapper, ... as empty classes
    spaces = types.ModuleType("gym.spaces")
    utils = types.ModuleType("gym.utils")
    seeding = types.ModuleType("gym.utils.seeding")
    envs = types.ModuleType("gym.envs")
    registration = types.ModuleType("gym.envs.registration")
    registration.register = lambda *a, **k: None
    gym.spaces, gym.utils, gym.envs = spaces, utils, envs
    utils.seeding, envs.registration = seeding, registration
    for module in (gym, spaces, utils, seeding, envs, registration, types.ModuleType("cv2")):
        stubs[module.__name__] = module
    saved = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    try:
        module = types.ModuleType("original_slimevolley")
        exec(compile(source, "slimevolley.py", "exec"), module.__dict__)
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old
    return module


@pytest.fixture(scope="module")
def original():
    return _original_module()


def _copy_serve(theirs, ours):
    ours.ball.x, ours.ball.y = theirs.ball.x, theirs.ball.y
    ours.ball.vx, ours.ball.vy = theirs.ball.vx, theirs.ball.vy
    ours.ball.prev_x, ours.ball.prev_y = theirs.ball.prev_x, theirs.ball.prev_y


def _state(game):
    b, left, right = game.ball, game.agent_left, game.agent_right
    return [b.x, b.y, b.vx, b.vy, left.x, left.y, left.vx, left.vy, right.x, right.y, right.vx, right.vy]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_original_for_1000_steps(original, seed):
    import numpy as np
    theirs = original.Game(np_random=np.random.RandomState(seed))
    env = slime.SlimeVolleyEnv()
    env.reset(seed=seed)
    ours = env.game
    _copy_serve(theirs, ours)
    rng = random.Random(seed)
    points = 0
    table = original.SlimeVolleyEnv.action_table
    for step in range(1000):
        # Sticky random actions, like a person holding keys, so slimes reach the ball.
        if step % 8 == 0:
            left, right = rng.randrange(6), rng.randrange(6)
        theirs.agent_left.setAction(table[left])
        theirs.agent_right.setAction(table[right])
        their_result = theirs.step()
        _, rewards, *_ = env.step({"agent_left": left, "agent_right": right}) if env.agents else (None, None)
        our_result = int(rewards["agent_right"]) if rewards else None
        assert our_result == their_result, f"step {step}: point {our_result} vs {their_result}"
        if their_result != 0:
            points += 1
            _copy_serve(theirs, ours)
            if not env.agents:
                break
        mine, reference = _state(ours), _state(theirs)
        assert max(abs(a - b) for a, b in zip(mine, reference)) < 1e-6, f"step {step}: {mine} vs {reference}"
        assert ours.agent_left.lives == theirs.agent_left.life
        assert ours.agent_right.lives == theirs.agent_right.life
        if their_result == 0:
            np.testing.assert_allclose(ours.observations["agent_right"],
                                       theirs.agent_right.getObservation(), atol=1e-9)
            np.testing.assert_allclose(ours.observations["agent_left"],
                                       theirs.agent_left.getObservation(), atol=1e-9)
    assert points >= 1  # re-serves were exercised
