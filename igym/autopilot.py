"""A random-key player, so a whole experiment can run with nobody at the keyboard.

``--autopilot`` uses it for smoke tests, CI and load tests: it presses and releases the
keys a scene's key maps use, through exactly the same ``press``/``release`` path a person's
keys take — and moves the gamepad axes (``axis``) and the pointer (``point``) the maps use —
so everything downstream (key maps, records, the network) is exercised. It is seeded, so an
autopilot run is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any


class Autopilot:
    """Holds a random combination of keys for a random short while, then picks again.

    With ``axes`` (axis number → its rest value: 0 for a stick, -1 for a trigger) it also
    pushes them to random positions (at rest half of the time) at each change; with ``pointer``
    (the canvas' width and height) it moves the pointer to a random spot with random buttons.
    With ``aim`` (``rng -> (x, y) or None``: a board pointer's idea of where a person would
    click, :mod:`igym.boards`) it clicks there instead — the left button down at one change,
    up at the next — and only points at random when ``aim`` has nothing to say.
    """

    def __init__(self, keys: Iterable[str], seed: int | None = 0, *, min_hold_s: float = 0.1,
                 max_hold_s: float = 0.6, axes: Mapping[int, float] | None = None,
                 pointer: tuple[float, float] | None = None,
                 aim: Callable[[random.Random], tuple[float, float] | None] | None = None) -> None:
        self.keys = sorted(keys)
        self.axes = dict(sorted((axes or {}).items()))
        self.pointer = pointer
        self.aim = aim
        self._down: tuple[float, float] | None = None  # aiming: where the button is held down
        self.rng = random.Random(seed)
        self.min_hold_s = min_hold_s
        self.max_hold_s = max_hold_s
        self.held: set[str] = set()
        self._next_change = 0.0

    def poll(self, now: float) -> tuple[list[str], list[str]]:
        """Keys to press and keys to release at ``now`` (both empty most of the time)."""
        if now < self._next_change or not (self.keys or self.axes or self.pointer):
            return [], []
        self._next_change = now + self.rng.uniform(self.min_hold_s, self.max_hold_s)
        count = self.rng.choice((0, 1, 1, 2))
        wanted = set(self.rng.sample(self.keys, min(count, len(self.keys))))
        presses = sorted(wanted - self.held)
        releases = sorted(self.held - wanted)
        self.held = wanted
        return presses, releases

    def play(self, target: Any, now: float) -> None:
        """Release and press on ``target`` (a Session or a lockstep player) what :meth:`poll` says."""
        changing = now >= self._next_change
        presses, releases = self.poll(now)
        for key in releases:
            target.release(key, now)
        for key in presses:
            target.press(key, now)
        if changing and (self.axes or self.pointer):
            rng = self.rng
            for axis, rest in self.axes.items():
                target.axis(axis, rest if rng.random() < 0.5 else round(rng.uniform(-1.0, 1.0), 4), now)
            if self.pointer:
                spot = None
                if self.aim is not None:
                    if self._down is not None:
                        spot, self._down = self._down, None
                        target.point(spot[0], spot[1], 0, now)  # a click is a press and a release
                        return
                    spot = self.aim(rng)
                if spot is not None:
                    self._down = spot
                    target.point(spot[0], spot[1], 1, now)
                else:
                    width, height = self.pointer
                    target.point(rng.uniform(0, width), rng.uniform(0, height), rng.choice((0, 0, 1, 4)), now)
