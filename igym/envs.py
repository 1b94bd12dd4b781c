"""One adapter over the environments people bring.

Three shapes of env exist in the wild and the session should not care which it got:
- a PettingZoo ``ParallelEnv`` (``possible_agents``, dict actions, dict results);
- a Gymnasium ``Env`` whose action space is a ``Dict`` of agents (dict actions; rewards
  and terminations may be dicts or scalars, sometimes with ``"__all__"``);
- a plain single-agent Gymnasium ``Env`` (one agent, called ``"agent_0"``).

Detection is by duck typing, so this module imports neither gymnasium nor pettingzoo
(the core must import without numpy). Agent ids keep their native type (CoGrid uses
ints); records use ``str(agent)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

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
        if hasattr(env, "agent_iter") and hasattr(env, "last"):
            raise EnvError(f"{type(env).__name__} is a PettingZoo AEC env (agents take turns): igym plays "
                           f"ParallelEnvs — use the module's parallel_env() where it has one")
        if hasattr(env, "possible_agents"):
            self.kind = "parallel"
            self.agents: tuple[Any, ...] = tuple(env.possible_agents)
        elif _dict_space_keys(getattr(env, "action_space", None)) is not None:
            self.kind = "dict"
            self.agents = tuple(_dict_space_keys(env.action_space))
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
        if self.kind == "parallel":
            return self.env.action_space(agent)
        if self.kind == "dict":
            return self.env.action_space[agent]
        return self.env.action_space

    def reset(self, seed: int | None = None) -> dict[Any, Any]:
        """Start an episode; returns each agent's first observation."""
        obs, _info = self.env.reset(seed=seed)
        self.done = False
        if self.kind == "single":
            obs = {SINGLE_AGENT: obs}
        elif self.kind == "dict" and not _keyed_by(obs, self.agents):
            obs = {a: obs for a in self.agents}
        self.observations = obs
        return obs

    def active(self) -> tuple[Any, ...]:
        """Agents that act this step (PettingZoo drops agents that are done)."""
        if self.kind == "parallel":
            return tuple(self.env.agents)
        return self.agents

    def step(self, actions: Mapping[Any, Any]) -> StepResult:
        """Step with one action per active agent; sets ``done`` when the episode is over."""
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


def _dict_space_keys(space: Any) -> list | None:
    spaces = getattr(space, "spaces", None)
    if isinstance(spaces, Mapping):
        return list(spaces)
    return None


def _keyed_by(value: Any, agents: tuple) -> bool:
    return isinstance(value, Mapping) and all(a in value for a in agents)


def _per_agent_flags(flags: Any, agents: tuple) -> dict[Any, bool]:
    if isinstance(flags, Mapping):
        everyone = bool(flags.get("__all__", False))
        return {a: everyone or bool(flags.get(a, False)) for a in agents}
    return {a: bool(flags) for a in agents}
