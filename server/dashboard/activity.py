"""What just happened on the server, for the dashboard: the latest notable events and focus.

:class:`Activity` watches every record the server queues for its data file (the storage
thread's ``watch``; steps excluded) and keeps, in memory, the last :data:`KEPT` notable
ones — connects and disconnects, lobby exits, scene outcomes, status changes, turned-away
connections, lockstep desyncs, throttled dashboard logins — each with a one-line
description, plus each participant's window focus (``focus_lost`` / ``focus_gained`` from
their client). Messages the server rejected are reported to it directly (they are not
records). Nothing here is read back from the database: it is the live view since this
worker started.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any
from collections.abc import Callable

from igym.records import EventRecord, ParticipantRecord

log = logging.getLogger("igym.server")
KEPT = 50
TEXT_LIMIT = 200

STATUS_TEXTS = {"started": "started the study", "completed": "completed the study", "declined": "declined consent",
                "aborted": "left the study before its end (aborted)"}

# Event kinds worth a line in the feed; the rest (round trips, keys, stalls, …) are counted elsewhere.
NOTABLE = frozenset({"connect", "disconnect", "reconnect", "page_abandoned", "scene_outcome", "lobby_left",
                     "rtt_gate", "seat_replaced", "desync", "resync", "lockstep_disconnect", "login_throttled"})


class Activity:
    """The ring of recent notable events and who has their window in focus."""

    def __init__(self, kept: int = KEPT, clock: Callable[[], float] = time.time) -> None:
        self._events: deque[dict[str, Any]] = deque(maxlen=kept)
        self._clock = clock
        self._number = 0
        self.focus: dict[str, tuple[bool, float]] = {}  # participant → (in focus, since when, unix s)
        self._failed = False

    # --- feeding it ---------------------------------------------------------------------

    def observe(self, record: Any) -> None:
        """The storage's watch: called on the event loop for every record but steps. Never raises
        (a broken description must not break the room that wrote the record)."""
        try:
            kind = type(record)
            if kind is EventRecord:
                self._event(record)
            elif kind is ParticipantRecord:
                text = STATUS_TEXTS.get(record.status, record.status)
                if record.status == "completed" and record.completion_code:
                    text += "; completion code issued"
                if record.status == "started" and record.condition:
                    text += f", condition {record.condition}"
                self._add(record.status if record.status != "started" else "joined", record.participant_id, text)
        except Exception:
            if not self._failed:
                self._failed = True
                log.exception("dashboard: describing a record failed (reported once)")

    def rejected(self, participant: str | None, reason: str) -> None:
        """A connection was closed for a message that broke the protocol."""
        self._add("rejected", participant, reason)

    def _event(self, record: EventRecord) -> None:
        kind, data, pid = record.kind, record.data or {}, record.participant_id
        if kind in ("focus_lost", "focus_gained"):
            self.focus[pid] = (kind == "focus_gained", round(self._clock(), 1))
            return
        if kind not in NOTABLE:
            return
        if kind in ("connect", "disconnect", "reconnect") and "agent" in data:
            return  # a room's copy of a connection event: the server's own is already in the feed
        if kind == "rtt_gate":
            median, limit = data.get("median_ms"), data.get("max_ms")
            if median is not None and limit is not None and median <= limit:
                return  # passed: nothing to see
            text = ("no answer to pings" if median is None else f"round trip {median:.0f} ms over {limit:.0f} ms")
            self._add("turned_away", pid, text + ": turned away")
            return
        self._add(kind, pid, describe(kind, data))

    def _add(self, kind: str, participant: str | None, text: str) -> None:
        self._number += 1
        self._events.append({"id": self._number, "t": round(self._clock(), 3), "kind": kind,
                             "participant": participant, "text": text[:TEXT_LIMIT]})

    # --- reading it ---------------------------------------------------------------------

    def events(self) -> list[dict[str, Any]]:
        """The kept events, oldest first (plain JSON)."""
        return list(self._events)


def describe(kind: str, data: dict[str, Any]) -> str:
    """One line for an event, from its data."""
    if kind == "connect":
        return "reconnected" if data.get("reconnect") else "connected"
    if kind == "disconnect":
        return "connection closed"
    if kind == "page_abandoned":
        return "away from a page too long: left the study"
    if kind == "scene_outcome":
        return f"{data.get('name')}: {data.get('outcome')}"
    if kind == "lobby_left":
        wait = data.get("wait_s")
        waited = f" after {wait:.0f} s" if isinstance(wait, (int, float)) else ""
        return f"left the {data.get('game')} lobby: {data.get('reason')}{waited}"
    if kind == "seat_replaced":
        by = data.get("by")
        by = by.get("kind", by) if isinstance(by, dict) else by
        return f"seat {data.get('agent')} taken over by {by}"
    if kind == "desync":
        return (f"desync at episode {data.get('episode')} step {data.get('step')} "
                f"(correction: {data.get('correction')})")
    if kind == "resync":
        return f"{data.get('to')} loaded {data.get('from')}'s state at step {data.get('step')}"
    if kind == "lockstep_disconnect":
        return f"left lockstep seat {data.get('seat')}"
    if kind == "login_throttled":
        source = "everyone" if data.get("scope") == "overall" else data.get("address")
        return f"{data.get('failures')} wrong dashboard tokens from {source}: logins throttled"
    return ", ".join(f"{k} {v}" for k, v in data.items() if isinstance(v, (str, int, float)))
