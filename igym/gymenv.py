"""Playing a Gymnasium env by its id: ``python -m igym.play CarRacing-v3``.

One Game of one human seat, the env's own RGB-array picture on a canvas of its size, and
a key map: ``--keys``, else the built-in one of the env's family (:mod:`igym.builtin_keys`),
else the env's ``get_keys_to_action`` (Atari-style envs). The map is checked against the
action space here, before any window opens. Making the env fails with one line naming the
missing package (MuJoCo, jax, …), never a traceback.

The env gets a ``state_fingerprint()``: a digest of each step's observation and reward, so
``python -m igym.data replay --verify`` can check an episode of any Gymnasium env
step by step (the participant's meta records the id, ``gym_id``, for the replay).
gymnasium is imported only inside these functions.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import Any

from .builtin_keys import builtin
from .controls import KeyMap
from .errors import ExperimentError

FPS = 30


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def digest(observation: Any, reward: Any) -> str:
    """A short hex digest of an observation (arrays by their bytes) and a reward."""
    h = hashlib.blake2b(digest_size=8)
    _feed(h, observation)
    h.update(repr(float(reward)).encode())
    return h.hexdigest()


def _feed(h: Any, value: Any) -> None:
    tobytes = getattr(value, "tobytes", None)
    if tobytes is not None and hasattr(value, "dtype"):
        h.update(f"{value.dtype}{getattr(value, 'shape', '')}".encode())
        h.update(tobytes())
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            h.update(str(key).encode())
            _feed(h, value[key])
    elif isinstance(value, (list, tuple)):
        for item in value:
            _feed(h, item)
    else:
        h.update(repr(value).encode())


def fingerprinted(env: Any) -> Any:
    """``env`` wrapped so that it offers ``state_fingerprint()`` (observation + reward digest)."""
    import gymnasium

    class Fingerprinted(gymnasium.Wrapper):
        """Remembers each step's observation and reward as a digest (see :func:`digest`)."""

        def __init__(self, inner: Any) -> None:
            super().__init__(inner)
            self._fingerprint = ""

        def reset(self, **kwargs: Any) -> Any:
            obs, info = self.env.reset(**kwargs)
            self._fingerprint = digest(obs, 0.0)
            return obs, info

        def step(self, action: Any) -> Any:
            obs, reward, terminated, truncated, info = self.env.step(action)
            self._fingerprint = digest(obs, reward)
            return obs, reward, terminated, truncated, info

        def state_fingerprint(self) -> str:
            return self._fingerprint

    return Fingerprinted(env)


def maker(env_id: str) -> Any:
    """A function making the env (RGB-array render, fingerprinted); one line when the id is unknown."""
    try:
        import gymnasium
        gymnasium.spec(env_id)
    except Exception as error:  # noqa: BLE001 — gymnasium raises several kinds
        raise ExperimentError(f"{env_id}: not a file and not a Gymnasium id ({error}) — give an experiment "
                              f"file path or a registered id such as MountainCar-v0") from None

    def make() -> Any:
        return fingerprinted(gymnasium.make(env_id, render_mode="rgb_array"))

    return make


def gym_game(env_id: str, keys: KeyMap | None = None, *, human: bool = True) -> Any:
    """A Game of one human seat playing ``env_id`` with ``keys`` (or the env's own key map);
    ``human=False``: a random seat and no keys (a replay re-feeds recorded actions)."""
    from .experiment import Game

    make = maker(env_id)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a deprecated id's warning: the Game is made all the same
            probe = make()
    except Exception as error:  # noqa: BLE001 — a missing package, a missing argument, …
        raise ExperimentError(f"{env_id}: cannot make the env: {_first_line(error)}") from None
    try:
        if human:
            if keys is None:
                keys = env_keys(env_id, probe)
            keys.bind(probe.action_space, f"{env_id} keys")  # every value fits, before any window opens
        probe.reset(seed=0)
        frame = probe.render()
    except ExperimentError:
        raise
    except Exception as error:  # noqa: BLE001
        raise ExperimentError(f"{env_id}: cannot reset and render the env: {_first_line(error)}") from None
    finally:
        probe.close()
    if frame is None or not hasattr(frame, "shape") or len(frame.shape) != 3:
        raise ExperimentError(f"{env_id}: its render_mode='rgb_array' render gives no RGB image — igym needs "
                              f"an RGB array (or write an experiment file with a render function)")
    height, width = int(frame.shape[0]), int(frame.shape[1])
    pace = "on_input" if human and keys is not None and keys.mode == "keystroke" else "fixed"
    return Game(name=env_id, env=make, seats={"agent_0": "human" if human else "random"}, keys=keys if human else None,
                fps=FPS, canvas=(width, height), pace=pace)


def gym_experiment(env_id: str, keys: KeyMap | None) -> Any:
    """An experiment of one Game that lets a person play a Gymnasium env by its id."""
    from .experiment import Experiment

    return Experiment(id=env_id.replace("/", "_"), scenes=[gym_game(env_id, keys)])


def env_keys(env_id: str, env: Any) -> KeyMap:
    """The built-in key map of the env's family, else the env's ``get_keys_to_action``."""
    found = builtin(env_id)
    if found is not None:
        return found.keymap()
    get = getattr(env.unwrapped, "get_keys_to_action", None)
    if get is None:
        raise ExperimentError(f"{env_id} has no built-in key map and no get_keys_to_action — give one with "
                              f"--keys, e.g. {example_keys(env.action_space)}")
    import pygame
    mapping = {}
    default = 0
    for codes, action in get().items():
        names = tuple(pygame.key.name(c) if isinstance(c, int) else str(c) for c in codes)
        if not names:
            default = int(action)
            continue
        mapping[names[0] if len(names) == 1 else names] = int(action)
    return KeyMap(mapping, default_action=default)


def example_keys(space: Any) -> str:
    """A ``--keys`` example that fits ``space`` (for the message when a map is missing)."""
    from .actions import neutral, read_space

    info = read_space(space)
    if info.kind == "discrete":
        first, last = info.start, info.start + info.n - 1
        return f"--keys 'left={first},right={min(first + 1, last)},default={first}'"
    if info.kind == "box":
        base = list(neutral(info))

        def at(value: float) -> str:
            vector = list(base)
            vector[0] = value
            return repr(vector[0]) if info.size == 1 else "[" + ",".join(repr(v) for v in vector) + "]"

        return f"--keys 'left={at(info.low[0])},right={at(info.high[0])},default={at(base[0])}'"
    return "--keys 'KEY=ACTION,default=ACTION' with actions of the space " + info.text
