"""Small, pure-Python environments for tests of the core (no numpy needed).

They are real envs — PettingZoo-parallel and Gymnasium-dict shaped — with deterministic
dynamics, so session and adapter tests can check exact values.
"""

from __future__ import annotations

import random
from typing import Any


class LineRace:
    """PettingZoo-style ParallelEnv: two runners on a line; action 0 stay, 1 step right, 2 left.

    Reward 1 for the step that reaches ``goal``; the episode terminates then. Each reset
    draws the start positions from the seed, so seeds matter.
    """

    metadata = {"name": "line_race_v0"}

    def __init__(self, goal: int = 5) -> None:
        self.possible_agents = ["a", "b"]
        self.agents: list[str] = []
        self.goal = goal
        self.pos: dict[str, int] = {}
        self.t = 0

    def action_space(self, agent: str) -> Any:
        from gymnasium.spaces import Discrete
        return Discrete(3)

    def observation_space(self, agent: str) -> Any:
        from gymnasium.spaces import Box
        return Box(-100, 100, (2,))

    def _obs(self) -> dict[str, list[float]]:
        return {a: [float(self.pos[a]), float(self.t)] for a in self.possible_agents}

    def reset(self, seed: int | None = None, options: Any = None):
        rng = random.Random(seed)
        self.agents = list(self.possible_agents)
        self.pos = {a: rng.randint(-2, 2) for a in self.agents}
        self.t = 0
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]):
        self.t += 1
        for agent, action in actions.items():
            self.pos[agent] += {0: 0, 1: 1, 2: -1}[int(action)]
        won = {a: self.pos[a] >= self.goal for a in self.agents}
        rewards = {a: 1.0 if won[a] else 0.0 for a in self.agents}
        done = any(won.values())
        terms = {a: done for a in self.agents}
        truncs = {a: False for a in self.agents}
        infos = {a: {"pos": self.pos[a]} for a in self.agents}
        obs = self._obs()
        if done:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def render(self) -> None:
        return None

    def state_fingerprint(self) -> str:
        return f"{self.t}:{self.pos['a']}:{self.pos['b']}"


class DictCounter:
    """Gymnasium-style env with a Dict action space of two agents, scalar reward, "__all__" done."""

    def __init__(self, limit: int = 4) -> None:
        from gymnasium.spaces import Dict, Discrete
        self.action_space = Dict({"left": Discrete(2), "right": Discrete(2)})
        self.limit = limit
        self.count = 0

    def reset(self, seed: int | None = None, options: Any = None):
        self.count = 0
        return [0], {}

    def step(self, actions: dict[str, int]):
        self.count += 1 + actions["left"] + actions["right"]
        done = self.count >= self.limit
        return [self.count], float(actions["left"]), {"__all__": done}, {"__all__": False}, {}
