"""One adapter over the environments people bring.

Four shapes of env exist in the wild and the session should not care which it got:
- a PettingZoo ``ParallelEnv`` (``possible_agents``, dict actions, dict results);
- a PettingZoo ``AECEnv`` (agents take turns: ``agent_selection`` moves, its legal moves in
  the observation's ``action_mask``): one step is the move of the agent whose turn it is;
- a Gymnasium ``Env`` whose action space is a ``Dict`` of agents (dict actions; rewards
  and terminations may be dicts or scalars, sometimes with ``"__all__"``);
- a plain single-agent Gymnasium ``Env`` (one agent, called ``"agent_0"``).

Detection is by duck typing, so this module imports neither gymnasium nor pettingzoo
(the core must import without numpy). Agent ids keep their native type (CoGrid uses
ints); records use ``str(agent)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Mapping

from .errors import EnvError

SINGLE_AGENT = "agent_0"


@dataclass(slots=True)
class StepResult:
    """What one env step returned, per agent id."""

    observations: dict[Any, Any]
    rewards: dict[Any, float]
    terminations: dict[Any, bool]
    truncations: dict[Any, bool]
    infos: dict[Any, Any]


class EnvAdapter:
    """A uniform multi-agent view of a Gymnasium or PettingZoo env."""

    def __init__(self, env: Any) -> None:
        self.env = env
        if hasattr(env, "agent_iter") and hasattr(env, "last") and hasattr(env, "possible_agents"):
            self.kind = "aec"
            self.agents: tuple[Any, ...] = tuple(env.possible_agents)
        elif hasattr(env, "possible_agents"):
            self.kind = "parallel"
            self.agents = tuple(env.possible_agents)
        elif (keys := _dict_space_keys(getattr(env, "action_space", None))) is not None:
            self.kind = "dict"
            self.agents = tuple(keys)
        elif hasattr(env, "step") and hasattr(env, "reset"):
            self.kind = "single"
            self.agents = (SINGLE_AGENT,)
        else:
            raise EnvError(f"{type(env).__name__} is not an environment: give a Gymnasium Env or a "
                           f"PettingZoo ParallelEnv (something with reset() and step())")
        if not self.agents:
            raise EnvError(f"{type(env).__name__} has no agents — check possible_agents")
        self.agent_names: tuple[str, ...] = tuple(str(a) for a in self.agents)
        self._by_name = dict(zip(self.agent_names, self.agents))
        base = getattr(env, "unwrapped", env)
        # The env itself first: a wrapper may add a fingerprint its base env lacks (igym.gymenv).
        self.state_fingerprint: Callable[[], str] | None = (getattr(env, "state_fingerprint", None)
                                                            or getattr(base, "state_fingerprint", None))
        self.get_state: Callable[[], Any] | None = getattr(base, "get_state", None)
        self.set_state: Callable[[Any], None] | None = getattr(base, "set_state", None)
        self.done = True
        self.observations: dict[Any, Any] = {}

    def agent(self, name: str) -> Any:
        """The native agent id for a name used in seats and records."""
        try:
            return self._by_name[str(name)]
        except KeyError:
            raise EnvError(f"agent {name!r} is not in this env; its agents are "
                           f"{list(self.agent_names)}") from None

    def action_space(self, agent: Any) -> Any:
        """The action space of one agent."""
        if self.kind in ("parallel", "aec"):
            return self.env.action_space(agent)
        if self.kind == "dict":
            return self.env.action_space[agent]
        return self.env.action_space

    @property
    def turn_based(self) -> bool:
        return self.kind == "aec"

    def reset(self, seed: int | None = None) -> dict[Any, Any]:
        """Start an episode; returns each agent's first observation (in an AEC env: the first mover's)."""
        if self.kind == "aec":
            self.env.reset(seed=seed)
            self.done = False
            self.observations = self._turn_observation()
            return self.observations
        obs, _info = self.env.reset(seed=seed)
        self.done = False
        if self.kind == "single":
            obs = {SINGLE_AGENT: obs}
        elif self.kind == "dict" and not _keyed_by(obs, self.agents):
            obs = {a: obs for a in self.agents}
        self.observations = obs
        return self.observations

    def active(self) -> tuple[Any, ...]:
        """Agents that act this step (PettingZoo drops agents that are done; in an AEC env, the
        agent whose turn it is)."""
        if self.kind == "parallel":
            return tuple(self.env.agents)
        if self.kind == "aec":
            return () if self.done else (self.env.agent_selection,)
        return self.agents

    def legal(self, agent: Any, action: Any) -> bool:
        """Whether ``action`` is a legal move of ``agent`` now (the observation's or info's
        ``action_mask``; envs without one allow every action of their space)."""
        mask = self.action_mask(agent)
        if mask is None:
            return True
        try:
            return bool(mask[int(action)])
        except (TypeError, ValueError, IndexError):
            return False

    def action_mask(self, agent: Any) -> Any:
        """The legal-move mask of ``agent`` now, or None."""
        observation = self.observations.get(agent)
        if isinstance(observation, Mapping) and "action_mask" in observation:
            return observation["action_mask"]
        infos = getattr(self.env, "infos", None)
        if isinstance(infos, Mapping) and isinstance(infos.get(agent), Mapping):
            return infos[agent].get("action_mask")
        return None

    def _turn_observation(self) -> dict[Any, Any]:
        env = self.env
        if not env.agents:
            return {}
        agent = env.agent_selection
        return {agent: env.observe(agent)}

    def step(self, actions: Mapping[Any, Any]) -> StepResult:
        """Step with one action per active agent; sets ``done`` when the episode is over.

        An AEC step is the move of the agent whose turn it is; the rewards, ends and infos it
        returns are every agent's (a winning move gives the loser its reward in the same step).
        """
        if self.kind == "aec":
            env = self.env
            env.step(actions[env.agent_selection])
            rew, term, trunc, info = (dict(env.rewards), dict(env.terminations), dict(env.truncations),
                                      dict(env.infos))
            self.done = not env.agents or all(term.get(a, False) or trunc.get(a, False) for a in env.agents)
            self.observations = {} if self.done else self._turn_observation()
            return StepResult(self.observations, rew, term, trunc, info)
        if self.kind == "parallel":
            obs, rew, term, trunc, info = self.env.step(actions)
            # PettingZoo empties env.agents at the end; the value scan is a cheap C-level check.
            self.done = not self.env.agents or (
                (True in term.values() or True in trunc.values())
                and all(term.get(a, False) or trunc.get(a, False) for a in self.agents if a in term))
        elif self.kind == "dict":
            obs, rew, term, trunc, info = self.env.step(dict(actions))
            agents = self.agents
            if not _keyed_by(obs, agents):
                obs = {a: obs for a in agents}
            rew = rew if isinstance(rew, Mapping) else {a: rew for a in agents}
            term = _per_agent_flags(term, agents)
            trunc = _per_agent_flags(trunc, agents)
            info = info if _keyed_by(info, agents) else {a: info for a in agents}
            self.done = all(term[a] or trunc[a] for a in agents)
        else:
            obs, rew, term, trunc, info = self.env.step(actions[SINGLE_AGENT])
            obs, rew, term, trunc, info = ({SINGLE_AGENT: obs}, {SINGLE_AGENT: rew},
                                           {SINGLE_AGENT: bool(term)}, {SINGLE_AGENT: bool(trunc)},
                                           {SINGLE_AGENT: info})
            self.done = term[SINGLE_AGENT] or trunc[SINGLE_AGENT]
        self.observations = obs
        return StepResult(obs, rew, term, trunc, info)

    def render(self) -> Any:
        """The env's own render() (an RGB array when made with render_mode='rgb_array')."""
        return self.env.render()

    def close(self) -> None:
        close = getattr(self.env, "close", None)
        if close is not None:
            close()


def _dict_space_keys(space: Any) -> list[Any] | None:
    spaces = getattr(space, "spaces", None)
    if isinstance(spaces, Mapping):
        return list(spaces)
    return None


def _keyed_by(value: Any, agents: tuple[Any, ...]) -> bool:
    return isinstance(value, Mapping) and all(a in value for a in agents)


def _per_agent_flags(flags: Any, agents: tuple[Any, ...]) -> dict[Any, bool]:
    if isinstance(flags, Mapping):
        everyone = bool(flags.get("__all__", False))
        return {a: everyone or bool(flags.get(a, False)) for a in agents}
    return {a: bool(flags) for a in agents}
