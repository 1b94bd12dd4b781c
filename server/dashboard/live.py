"""The dashboard's live feed: a WebSocket that gets the study once, then what changed each second.

A page that opens ``/dashboard/live`` is sent ``{"type": "full", "snapshot": S, "history":
H}`` — the latest snapshot (:mod:`.snapshot`) and the last minutes of per-second points
(:mod:`.history`) — then once a second::

    {"type": "delta", "set": {key: value},                 # top-level keys whose value changed
     "participants": {"set": {id: row}, "del": [id]},     # rows that changed or went away
     "events": [event],                                   # events not sent before (by id)
     "point": {...}}                                      # the second's chart point

Every viewer gets the same delta: a new viewer's full message is the snapshot the next
delta starts from, so one diff a second serves any number of them. A viewer whose
connection stops reading is closed rather than buffered for (it reconnects and starts
over with a full message). Nothing a viewer sends is read, and a viewer that sends more
than its token bucket allows (:mod:`.throttle`: the page itself sends nothing) is closed
with 1008.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from collections.abc import Callable

import websockets
from websockets.asyncio.server import ServerConnection, broadcast
from websockets.frames import CloseCode

from .throttle import TokenBucket

log = logging.getLogger("igym.server")
BACKLOG_BYTES = 1 << 20  # a viewer with more than this unsent is dropped (it reconnects)
KEYED = ("participants", "events")


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What turns snapshot ``old`` into ``new``: changed keys, changed rows, new events."""
    changed = {key: value for key, value in new.items() if key not in KEYED and old.get(key) != value}
    before, after = old.get("participants", {}), new["participants"]
    rows = {pid: row for pid, row in after.items() if before.get(pid) != row}
    gone = [pid for pid in before if pid not in after]
    sent = {event["id"] for event in old.get("events", ())}
    return {"set": changed, "participants": {"set": rows, "del": gone},
            "events": [event for event in new["events"] if event["id"] not in sent]}


class LiveFeed:
    """The connected dashboard pages and the snapshot they all have."""

    def __init__(self) -> None:
        self.viewers: set[ServerConnection] = set()
        self.current: dict[str, Any] | None = None  # the snapshot every viewer has now
        self.last_sizes: dict[str, int] = {}  # bytes of the latest full and delta messages (measured)

    def publish(self, snapshot: dict[str, Any], point: dict[str, Any] | None) -> None:
        """Send every viewer what changed since the snapshot they have."""
        old, self.current = self.current, snapshot
        if old is None or not self.viewers:
            return
        message = json.dumps({"type": "delta", **diff(old, snapshot), "point": point}, separators=(",", ":"))
        self.last_sizes["delta"] = len(message)
        for viewer in list(self.viewers):
            transport = viewer.transport
            if transport is not None and transport.get_write_buffer_size() > BACKLOG_BYTES:
                self.viewers.discard(viewer)
                transport.abort()
        broadcast(self.viewers, message)

    async def serve(self, connection: ServerConnection, make_snapshot: Callable[[], dict[str, Any]],
                    history: dict[str, Any], inbound: TokenBucket) -> None:
        """Start ``connection`` on the snapshot the other viewers have (or, as the first viewer,
        on a new one, which the next delta starts from) and keep it until it closes — or until
        it sends more than ``inbound`` lets through."""
        if not self.viewers or self.current is None:
            self.current = make_snapshot()
        message = json.dumps({"type": "full", "snapshot": self.current, "history": history}, separators=(",", ":"))
        self.last_sizes["full"] = len(message)
        self.viewers.add(connection)
        broadcast([connection], message)  # written now: no delta can overtake it
        closing: asyncio.Future[None] | None = None
        try:
            # Read on while closing: the client's close frame is behind what it sent before it,
            # and websockets stops reading a socket whose messages nobody takes.
            async for _ in connection:
                if closing is None and not inbound.take():
                    log.warning("dashboard: closing a live feed of %s: it sent too many messages",
                                connection.remote_address)
                    self.viewers.discard(connection)
                    closing = asyncio.ensure_future(connection.close(
                        CloseCode.POLICY_VIOLATION, "the live feed takes no messages: too many sent"))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.viewers.discard(connection)
            if closing is not None:
                await closing
