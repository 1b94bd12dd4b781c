"""Key maps for the Gymnasium and PettingZoo envs people play by hand.

Classic control, Box2D and toy text ship no key map of their own (Atari-style envs do:
their ``get_keys_to_action`` is used instead, see :mod:`igym.gymenv`), so
``python -m igym.play CarRacing-v3`` needs one from here. A map is found by the env's
family: the id without namespace and version (``CarRacing-v3`` → ``CarRacing``,
``pettingzoo.butterfly.pistonball_v6`` → ``pistonball``).

Continuous envs map arrow keys to offsets that add up (CarRacing: ← + ↑ steers left with
gas) and gamepad axes to the same components. Axis numbers are SDL joystick axes as pygame
reports them; they follow SDL's GameController order (0/1 left stick x/y, 2/3 right stick
x/y, 4/5 left/right trigger), which is what Xbox and PlayStation pads report on Windows and
macOS (on Linux some drivers number the triggers 2 and 5 — give your own ``axes=`` then).

The grid worlds, Blackjack and the board games act once per key press (``keystroke``) and
step only when the player moves (``pace="on_input"``): nothing happens by itself. Chess and
go are played with the mouse (a board pointer, :mod:`igym.boards`): a click is a keystroke.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

from .boards import ChessPointer, GoPointer
from .controls import Axis, KeyMap


@dataclass(frozen=True)
class Builtin:
    """One family's keys (``{key or (keys): action}``), default action, mode, axes and pointer
    (a factory: each key map gets its own)."""

    keys: dict[Any, Any]
    default: Any
    mode: str = "held"
    axes: tuple[Axis, ...] = ()
    help: str = field(default="", compare=False)
    pointer: Callable[[], Any] | None = None

    def keymap(self) -> KeyMap:
        return KeyMap(self.keys, default_action=self.default, mode=self.mode, axes=self.axes,
                      pointer=self.pointer() if self.pointer is not None else None)

    @property
    def pace(self) -> str:
        """One press, one move: keystroke games wait for the player (``Game(pace=...)``)."""
        return "on_input" if self.mode == "keystroke" else "fixed"


_STICK_X = Axis(0, 0)
_ARROWS4 = {"left": 0, "down": 1, "right": 2, "up": 3}
_WALKER = Builtin(
    {"q": [1.0, 0.0, 0.0, 0.0], "a": [-1.0, 0.0, 0.0, 0.0], "w": [0.0, 1.0, 0.0, 0.0], "s": [0.0, -1.0, 0.0, 0.0],
     "u": [0.0, 0.0, 1.0, 0.0], "j": [0.0, 0.0, -1.0, 0.0], "i": [0.0, 0.0, 0.0, 1.0], "k": [0.0, 0.0, 0.0, -1.0]},
    [0.0, 0.0, 0.0, 0.0], axes=(Axis(0, 0), Axis(1, 1, invert=True), Axis(2, 2), Axis(3, 3, invert=True)),
    help="Q/A and W/S: hip and knee of one leg, U/J and I/K: the other's; or the two sticks")

BUILTIN: dict[str, Builtin] = {
    # classic control
    "CartPole": Builtin({"left": 0, "right": 1}, 0, help="← / → push the cart"),
    "MountainCar": Builtin({"left": 0, "right": 2}, 1, help="← / → push, no key: no push"),
    "MountainCarContinuous": Builtin({"left": -1.0, "right": 1.0}, 0.0, axes=(_STICK_X,),
                                     help="← / → push (both: none); or the left stick"),
    "Acrobot": Builtin({"left": 0, "right": 2}, 1, help="← / → torque on the joint"),
    "Pendulum": Builtin({"left": 2.0, "right": -2.0}, 0.0, axes=(Axis(0, 0, invert=True),),
                        help="← turns anticlockwise, → clockwise; or the left stick"),
    # Box2D
    "LunarLander": Builtin({"left": 1, "up": 2, "right": 3}, 0, help="↑ main engine, ← / → side engines"),
    "LunarLanderContinuous": Builtin({"up": [1.0, 0.0], "left": [-1.0, -1.0], "right": [-1.0, 1.0]}, [-1.0, 0.0],
                                     axes=(Axis(5, 0, trigger=True), Axis(0, 1)),
                                     help="↑ main engine, ← / → side engines (together with ↑ too); or the right "
                                          "trigger and the left stick"),
    "BipedalWalker": _WALKER,
    "BipedalWalkerHardcore": _WALKER,
    "CarRacing": Builtin({"left": [-1.0, 0.0, 0.0], "right": [1.0, 0.0, 0.0], "up": [0.0, 1.0, 0.0],
                          "down": [0.0, 0.0, 0.8]}, [0.0, 0.0, 0.0],
                         axes=(Axis(0, 0), Axis(5, 1, trigger=True), Axis(4, 2, trigger=True)),
                         help="← / → steer, ↑ gas, ↓ brake (held together: steer with gas); or the left stick, "
                              "right trigger (gas) and left trigger (brake)"),
    # toy text: one action per press
    "Blackjack": Builtin({"s": 0, "h": 1}, 0, mode="keystroke", help="H hits, S sticks"),
    "FrozenLake": Builtin(_ARROWS4, 0, mode="keystroke", help="arrows move"),
    "FrozenLake8x8": Builtin(_ARROWS4, 0, mode="keystroke", help="arrows move"),
    "CliffWalking": Builtin({"up": 0, "right": 1, "down": 2, "left": 3}, 0, mode="keystroke", help="arrows move"),
    "CliffWalkingSlippery": Builtin({"up": 0, "right": 1, "down": 2, "left": 3}, 0, mode="keystroke",
                                    help="arrows move"),
    "Taxi": Builtin({"down": 0, "up": 1, "right": 2, "left": 3, "p": 4, "d": 5}, 0, mode="keystroke",
                    help="arrows drive, P picks up, D drops off"),
    # PettingZoo (the keys of their manual policies)
    "pistonball": Builtin({"w": 1.0, "up": 1.0, "s": -1.0, "down": -1.0}, 0.0, axes=(Axis(1, 0, invert=True),),
                          help="↑ / ↓ (or W / S) move your piston"),
    "cooperative_pong": Builtin({"w": 1, "up": 1, "s": 2, "down": 2}, 0, help="↑ / ↓ move your paddle"),
    "knights_archers_zombies": Builtin({"w": 0, "up": 0, "s": 1, "down": 1, "a": 2, "left": 2, "d": 3, "right": 3,
                                        "space": 4}, 5, help="↑ / ↓ walk, ← / → turn, Space attacks"),
    "pursuit": Builtin({"left": 0, "right": 1, "down": 2, "up": 3}, 4, help="arrows move"),
    "multiwalker": _WALKER,
    "rps": Builtin({"r": 0, "p": 1, "s": 2}, 0, mode="keystroke", help="R rock, P paper, S scissors"),
    # Keys 1-9 in reading order (1 top left, 9 bottom right); PettingZoo numbers squares by column.
    "tictactoe": Builtin({str(k + 1): (k % 3) * 3 + k // 3 for k in range(9)}, 0, mode="keystroke",
                         help="1-9 mark a square: 1 2 3 the top row, 4 5 6 the middle, 7 8 9 the bottom"),
    "connect_four": Builtin({str(i + 1): i for i in range(7)}, 0, mode="keystroke", help="1-7 drop into a column"),
    # The mouse on the env's picture (igym.boards); go's default 19×19 board: P passes (action 361).
    "chess": Builtin({}, 0, mode="keystroke", pointer=ChessPointer,
                     help="click a piece, then the square it moves to (a pawn on the last rank becomes a queen)"),
    "go": Builtin({"p": 361}, 361, mode="keystroke", pointer=GoPointer,
                  help="click a point to place a stone, P passes"),
}


def family(env_id: str) -> str:
    """``CarRacing-v3`` → ``CarRacing``; ``pettingzoo.butterfly.pistonball_v6`` → ``pistonball``."""
    name = env_id.split("/")[-1].split(".")[-1]
    return re.sub(r"(-v\d+|_v\d+)$", "", name)


def builtin(env_id: str) -> Builtin | None:
    """The built-in map of an env id or PettingZoo module name, or None."""
    return BUILTIN.get(family(env_id))


def keymap_for(env_id: str) -> KeyMap | None:
    """A fresh :class:`KeyMap` for an env id or PettingZoo module name (None when there is none)."""
    found = builtin(env_id)
    return found.keymap() if found is not None else None


def pace_for(env_id: str) -> str:
    """``on_input`` for the families played one press at a time, else ``fixed``."""
    found = builtin(env_id)
    return found.pace if found is not None else "fixed"
