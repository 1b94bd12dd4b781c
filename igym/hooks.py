"""What researchers' hooks see and may change.

Hooks are plain functions in the experiment file. Episode and step hooks
(``Game.on_episode_start``, ``on_step``, ``on_episode_end``) get a :class:`HookContext`
from the session; scene hooks (``Experiment.on_scene_start``, ``on_scene_end``) get a
:class:`SceneContext` from the study run. Both live in the core, not in a driver, so a
hook runs at the same point in the lab window, the browser and on the server.

``state`` is one dict per participant shared by all their hooks, for things like "wins
in a row". A hook changes what comes next only through the methods here, and every
change is recorded (``seat_replaced`` events, the episode's ``seats``, the visit's
``params``), so adaptive studies stay analysable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from collections.abc import Callable

if TYPE_CHECKING:
    from .session import Session


class HookContext:
    """An episode/step hook's view of the game (read the env; record columns; swap seats)."""

    __slots__ = ("session", "state", "condition", "outcome")

    def __init__(self, session: Session, state: dict[str, Any], condition: str | None) -> None:
        self.session = session
        self.state = state
        self.condition = condition
        self.outcome: str | None = None

    @property
    def env(self) -> Any:
        """The environment object the experiment file made (not igym's adapter)."""
        return self.session.env.env

    @property
    def participant_id(self) -> str:
        return self.session.participant_id

    @property
    def scene(self) -> str:
        return self.session.scene

    @property
    def visit_id(self) -> str | None:
        return self.session.visit_id

    @property
    def episode(self) -> int:
        """Index of the current episode in the scene (0-based)."""
        return self.session.episode

    @property
    def step(self) -> int:
        """Steps taken in the current episode (1 after the first step)."""
        return self.session.step

    @property
    def returns(self) -> dict[str, float]:
        """Reward summed per agent over the current episode so far."""
        return {str(agent): value for agent, value in self.session._returns.items()}

    @property
    def seats(self) -> dict[str, Any]:
        """Who plays each agent now (as recorded in the episode's ``seats``)."""
        return dict(self.session.seats)

    def set_seat(self, agent: str, seat: Any) -> None:
        """Hand ``agent`` to another player — ``"random"``, a ``.onnx`` path, a policy — from the
        next episode on (at ``on_episode_start``: from this episode's first step)."""
        self.session.request_seat(agent, seat)


class SceneContext:
    """A scene hook's view of the study: which visit, its answers, and the scenes to come."""

    def __init__(self, participant_id: str, condition: str | None, state: dict[str, Any],
                 update: Callable[[str, dict[str, Any]], None]) -> None:
        self.participant_id = participant_id
        self.condition = condition
        self.state = state
        self._update = update
        self.scene: Any = None
        self.visit_id: str | None = None
        self.position = 0
        self.outcome: str | None = None
        self.answers: dict[str, Any] | None = None

    def update_scene(self, name: str, **changes: Any) -> None:
        """Change fields of scene ``name`` for this participant's later visits of it, e.g.
        ``ctx.update_scene("block_2", seats={...})``; recorded in that visit's ``params``."""
        self._update(name, changes)
