"""Where the sans-I/O core gets the time and fresh ids: one injected :class:`Clock`.

The session, the lockstep player and the study run never read ``time`` or ``uuid``
themselves. A driver hands them the clock it paces frames with, so "now" means the same
thing to the driver and to the core (a lockstep player compares key-change times with the
driver's ``now``), and a test hands them a :class:`ManualClock` to make time and ids
reproducible without sleeping.
"""

from __future__ import annotations

import time
import uuid
from typing import Protocol


class Clock(Protocol):
    """Monotonic time for durations and deadlines, wall time for records, ids for records."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (frame deadlines, reaction times)."""

    def wall(self) -> float:
        """Seconds since the Unix epoch (``started_at``/``ended_at`` columns)."""

    def new_id(self) -> str:
        """A fresh 32-hex-digit id (episodes, visits)."""


class SystemClock:
    """The machine's clocks and random ids: what every real driver uses."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def new_id(self) -> str:
        return uuid.uuid4().hex


class ManualClock:
    """Time that moves only when told to, and numbered ids: for tests and replays."""

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self.now = start
        self._wall_offset = wall_start - start
        self._ids = 0

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self._wall_offset

    def new_id(self) -> str:
        self._ids += 1
        return f"{self._ids:032x}"


SYSTEM_CLOCK: Clock = SystemClock()
