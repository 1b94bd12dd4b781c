"""A participant on the server: one person across connections.

A :class:`Participant` outlives its connections: a dropped laptop or a reloaded tab comes
back with the participant id and the reconnect token and finds its place — the page on
screen, its lobby entry, its room seat. Rooms and lobbies change a participant only
through the methods here (:meth:`enter_room`, :meth:`leave_room`, :meth:`enter_lobby`,
:meth:`leave_lobby`), so where a participant is has one owner.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Any
from collections.abc import Awaitable, Callable

import websockets
from websockets.asyncio.server import ServerConnection

from igym import wire

if TYPE_CHECKING:
    from .cluster_lobby import ClusterLobby
    from .lobby import Lobby
    from .rooms import GameRoom, Member

PING_EVERY_S = 1.0
RTT_KEPT = 20  # the latest round trips a participant keeps (ms)


class Participant:
    """One person across connections: id, reconnect token, where they are in the study."""

    def __init__(self, pid: str, network_delay: Callable[[], Awaitable[None]] | None = None) -> None:
        self.pid = pid
        self.token = secrets.token_hex(12)
        self.connection: ServerConnection | None = None
        self.gone_since = 0.0  # when the last connection closed (monotonic)
        self.run: Any = None  # the participant's igym.study.StudyRun (made when their flow starts)
        self.page: dict[str, Any] | None = None  # the page message on screen (resent after a reconnect)
        self.page_answer: asyncio.Future[Any] | None = None
        self.page_scene: Any = None
        self.room: GameRoom | None = None
        self.member: Member | None = None
        self.lobby: Lobby | ClusterLobby | None = None
        self.flow: asyncio.Task[Any] | None = None
        self.finished = False
        self.last_seat: str | None = None  # the seat of the last game, for keys that arrive just after it
        self.rtts: list[float] = []  # the latest round trips, ms
        self.uploading = False  # a solo web page that runs the scenes itself and uploads records
        self.episodes: set[str] = set()  # episode ids this participant uploaded
        self.restored: dict[str, Any] | None = None  # the study run's snapshot to resume from (a parked one)
        self.guard: Any = None  # the door of the current connection (igym.server.guard.Guard)
        # One worker of many: the room this participant was placed in on this worker (when they were
        # handed over from another worker: room id, seat, members, size), and whether this worker
        # handed them over to another (then it holds them no more).
        self.placement: dict[str, Any] | None = None
        self.handed_over = False
        self._pings: dict[int, float] = {}
        self._ping_number = 0
        self._network_delay = network_delay

    @property
    def token_sha256(self) -> str:
        """What the data keeps of the reconnect token (the token itself stays in memory only)."""
        return token_sha256(self.token)

    # --- connection ---------------------------------------------------------------------

    @property
    def present(self) -> bool:
        return self.connection is not None

    def attach(self, connection: ServerConnection) -> ServerConnection | None:
        """Make ``connection`` this participant's; returns the one it replaces, if any."""
        old, self.connection = self.connection, connection
        return old if old is not connection else None

    def detach(self, connection: ServerConnection) -> bool:
        """``connection`` closed; True if it was the participant's current one (they are gone now)."""
        if self.connection is not connection:
            return False
        self.connection = None
        self.gone_since = time.monotonic()
        return True

    async def send(self, message: dict[str, Any]) -> None:
        """Send if connected; a connection closing meanwhile is not an error (they reconnect)."""
        connection = self.connection
        if connection is None:
            return
        try:
            await connection.send(wire.pack(message))
        except websockets.ConnectionClosed:
            pass

    # --- where they are -----------------------------------------------------------------

    def enter_room(self, room: GameRoom, member: Member) -> None:
        self.leave_lobby()
        self.room, self.member = room, member

    def leave_room(self) -> None:
        if self.member is not None:
            self.last_seat = self.member.agent
        self.room, self.member = None, None

    def enter_lobby(self, lobby: Lobby | ClusterLobby) -> None:
        self.lobby = lobby

    def leave_lobby(self) -> None:
        self.lobby = None

    # --- round trips ----------------------------------------------------------------------

    async def ping(self) -> None:
        """Send one ping; its pong gives a round trip (see :meth:`pong`)."""
        self._ping_number += 1
        self._pings[self._ping_number] = time.monotonic()
        if len(self._pings) > 30:
            self._pings.pop(min(self._pings))
        if self._network_delay is not None:
            await self._network_delay()
        await self.send({"t": "ping", "n": self._ping_number})

    def pong(self, number: int) -> float | None:
        """A pong arrived: the round trip in ms (None for a ping we did not send or forgot)."""
        sent = self._pings.pop(number, None)
        if sent is None:
            return None
        rtt_ms = round((time.monotonic() - sent) * 1000, 3)
        self.rtts.append(rtt_ms)
        del self.rtts[:-RTT_KEPT]
        return rtt_ms

    async def keep_pinging(self, connection: ServerConnection) -> None:
        """Ping every second while ``connection`` is the participant's (round trips are data)."""
        while self.connection is connection:
            await self.ping()
            await asyncio.sleep(PING_EVERY_S)

    async def measure_rtt(self, samples: int = 5) -> float | None:
        """Measure round trips now: a few quick pings, the median in ms (None if no answers)."""
        self.rtts = []
        for _ in range(samples):
            await self.ping()
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 3.0
        while len(self.rtts) < samples and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if not self.rtts:
            return None
        ordered = sorted(self.rtts)
        return ordered[len(ordered) // 2]

    def recent_rtt(self, samples: int = 5) -> float | None:
        """The median of the latest round trips (ms), or None before the first pong."""
        recent = sorted(self.rtts[-samples:])
        return recent[len(recent) // 2] if recent else None


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
