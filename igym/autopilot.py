"""A random-key player, so a whole experiment can run with nobody at the keyboard.

``--autopilot`` uses it for smoke tests, CI and load tests: it presses and releases the
keys a scene's key maps use, through exactly the same ``press``/``release`` path a person's
keys take, so everything downstream (key maps, records, the network) is exercised. It is
seeded, so an autopilot run is reproducible.
"""

from __future__ import annotations

import random
from typing import Any, Iterable


class Autopilot:
    """Holds a random combination of keys for a random short while, then picks again."""

    def __init__(self, keys: Iterable[str], seed: int | None = 0, *, min_hold_s: float = 0.1,
                 max_hold_s: float = 0.6) -> None:
        self.keys = sorted(keys)
        self.rng = random.Random(seed)
        self.min_hold_s = min_hold_s
        self.max_hold_s = max_hold_s
        self.held: set[str] = set()
        self._next_change = 0.0

    def poll(self, now: float) -> tuple[list[str], list[str]]:
        """Keys to press and keys to release at ``now`` (both empty most of the time)."""
        if now < self._next_change or not self.keys:
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
        presses, releases = self.poll(now)
        for key in releases:
            target.release(key, now)
        for key in presses:
            target.press(key, now)
