"""CoGrid Overcooked (PyPI ``cogrid`` 0.3.2) as igym plays it: a thin subclass, no fork.

``OvercookedEnv(layout)`` is CoGrid's own ``CoGridEnv`` (a PettingZoo ``ParallelEnv``,
agents ``0`` and ``1``, ``Discrete(7)`` actions, 892-float observations) built from the
registered layout config, with three additions:

- ``observation_space(agent)``: 0.3.2 defines ``action_spaces`` but no
  ``observation_spaces``, so the inherited method raises AttributeError;
- ``state_fingerprint()``: a short hash of ``get_state()`` (JSON, sorted keys), so a replay
  can check it re-simulated the same kitchen;
- ``rewards="delivery"`` (the default): only CoGrid's ``DeliveryReward`` (20 per soup,
  shared by both cooks), the score people see in Overcooked studies; ``rewards="shaped"``
  keeps CoGrid's shaping (+3 onion in pot, +5 soup in dish) as registered.

Actions (``env.action_set``): 0 up, 1 down, 2 left, 3 right, 4 ``pick_up_or_drop`` (the
"interact" key: picks up, puts down, fills the pot, takes the soup, serves), 5 ``toggle``
(only used by OvercookedV2 buttons), 6 no-op. A move into a counter turns the cook to
face it without moving.

Pure Python + numpy (CoGrid itself imports pygame if it is installed; this module does
not). CoGrid 0.3.2's one-cook layout (``Overcooked-CrampedRoom-SingleAgent-V0``) fails in
``reset`` (its ``dist_to_other_players`` feature indexes a second agent), so it is not
offered. The state arrays the drawing and the scripted cook read live in ``env._env_state``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import cogrid.envs as cogrid_envs
from cogrid.cogrid_env import CoGridEnv
from cogrid.envs.overcooked.agent import OvercookedAgent
from cogrid.envs.overcooked.rewards import DeliveryReward
from gymnasium import spaces

# layout name → (CoGrid config in cogrid.envs, registered id it matches)
LAYOUTS = {
    "cramped_room": ("cramped_room_config", "Overcooked-CrampedRoom-V0"),
    "asymmetric_advantages": ("asymmetric_adv_config", "Overcooked-AsymmetricAdvantages-V0"),
    "coordination_ring": ("coordination_ring_config", "Overcooked-CoordinationRing-V0"),
    "forced_coordination": ("forced_coordination_config", "Overcooked-ForcedCoordination-V0"),
    "counter_circuit": ("counter_circuit_config", "Overcooked-CounterCircuit-V0"),
}

# (rows, columns) of each layout's grid
LAYOUT_SIZES = {"cramped_room": (4, 5), "asymmetric_advantages": (5, 9), "coordination_ring": (5, 5),
                "forced_coordination": (5, 5), "counter_circuit": (5, 8)}

UP, DOWN, LEFT, RIGHT, INTERACT, TOGGLE, NOOP = range(7)
N_ACTIONS = 7
OBS_SIZE = 892
DELIVERY_REWARD = 20.0


class OvercookedEnv(CoGridEnv):
    """One CoGrid Overcooked kitchen; see the module docstring."""

    def __init__(self, layout: str = "cramped_room", *, rewards: str = "delivery", max_steps: int = 1000,
                 render_mode: str | None = None) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose one of {sorted(LAYOUTS)}")
        if rewards not in ("delivery", "shaped"):
            raise ValueError(f"rewards must be 'delivery' or 'shaped', got {rewards!r}")
        config = copy.deepcopy(getattr(cogrid_envs, LAYOUTS[layout][0]))
        if rewards == "delivery":
            config["rewards"] = [DeliveryReward(coefficient=DELIVERY_REWARD, common_reward=True)]
        config["max_steps"] = max_steps
        super().__init__(config=config, render_mode=render_mode, agent_class=OvercookedAgent)
        self.layout = layout
        self._observation_space = spaces.Box(-float("inf"), float("inf"), (OBS_SIZE,), dtype="float32")

    def observation_space(self, agent: Any) -> spaces.Space:  # 0.3.2 raises AttributeError here
        return self._observation_space

    def state_fingerprint(self) -> str:
        """16 hex digits of the SHA-256 of ``get_state()`` as sorted JSON."""
        text = json.dumps(self.get_state(), sort_keys=True, separators=(",", ":"), default=_plain)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """numpy scalars and arrays → Python (get_state is plain lists, but be safe)."""
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        return tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def make(layout: str = "cramped_room", **options: Any):
    """A factory for ``Game(env=...)``: ``env=make("asymmetric_advantages")``."""
    def factory() -> OvercookedEnv:
        return OvercookedEnv(layout, **options)
    factory.__name__ = f"overcooked_{layout}"
    return factory
