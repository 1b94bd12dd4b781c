"""The dashboard's time series: one point a second for the last ten minutes.

Each point is what happened during that second: the tick lateness of the rooms' clock
(p50, p99, max over the ticks of that second, not the long window of ``/status``, so a
bad moment shows as a spike), the records written to the data per second, and how many
participants were connected. Taking a point sorts at most one second of samples, so
watching the dashboard costs the rooms next to nothing.
"""

from __future__ import annotations

from collections import deque
from typing import Any

KEPT_S = 600


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class History:
    """Per-second points: ``t`` (unix s), ``p50_ms``, ``p99_ms``, ``max_ms``, ``ticks``,
    ``records_per_s``, ``connected``."""

    def __init__(self, stats: Any, storage: Any, kept_s: int = KEPT_S) -> None:
        self.stats = stats
        self.storage = storage
        self.points: deque[dict[str, Any]] = deque(maxlen=kept_s)
        self._mark = stats.ticks
        self._written = storage.records_written
        self._last_t: float | None = None

    def sample(self, now: float, connected: int) -> dict[str, Any]:
        """Take the point for the second that just ended (``now`` is the wall clock)."""
        late, self._mark = self.stats.lateness_since(self._mark)
        written = self.storage.records_written
        elapsed = now - self._last_t if self._last_t is not None else 1.0
        rate = (written - self._written) / elapsed if elapsed > 0 else 0.0
        self._written, self._last_t = written, now
        point: dict[str, Any] = {"t": round(now, 3), "p50_ms": None, "p99_ms": None, "max_ms": None,
                                 "ticks": len(late), "records_per_s": round(rate, 1), "connected": connected}
        if late:
            ordered = sorted(late)
            point.update(p50_ms=round(percentile(ordered, 0.5) * 1000, 3),
                         p99_ms=round(percentile(ordered, 0.99) * 1000, 3), max_ms=round(ordered[-1] * 1000, 3))
        self.points.append(point)
        return point

    @property
    def latest(self) -> dict[str, Any] | None:
        return self.points[-1] if self.points else None

    def series(self) -> dict[str, list[Any]]:
        """The kept points as columns (what the charts take)."""
        keys = ("t", "p50_ms", "p99_ms", "max_ms", "records_per_s", "connected")
        return {key: [point[key] for point in self.points] for key in keys}
