"""Lobbies shared by every worker of a study, and the gathering of a placed room's members.

With one worker, :class:`.lobby.Lobby` matches the people connected to it. With many, two
people who want to play together may have reached different workers, so the line is kept
in Redis (:class:`.cluster.Cluster`): :class:`ClusterLobby` puts the participant in it and
waits for their mailbox. Any worker may form a group (one atomic step that also places the
room on the least-loaded live worker). Then:

- a member whose connection is on that worker joins the room's :class:`Gathering` here;
- a member on another worker is handed over: their place is checkpointed in the shared
  database (the game's visit still open), the worker lets go of them, and their client is
  sent on (``move``) to the room's worker, which resumes them from the checkpoint straight
  into the same :class:`Gathering` (no second instructions page, the same visit id).

A gathering forms the room when every member is there, or after ``GATHER_TIMEOUT_S`` with
the scene's ``fill`` in the seats of those who did not come (without a fill, the ones who
came leave with ``partner_left``). Every way out of the line is a ``lobby_left`` event, as
with one worker. Redis away: the waiters keep waiting (and are told so) until it is back.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from igym import wire
from igym.experiment import Game
from igym.records import EventRecord

from .cluster_errors import ClusterUnavailable

if TYPE_CHECKING:
    from .app import IgymServer
    from .participants import Participant
    from .rooms import GameRoom

GATHER_TIMEOUT_S = 20.0
MOVED = "moved"  # the participant went on to another worker: their flow continues there


class Moved(Exception):
    """The participant was handed over to another worker: this worker's flow for them ends quietly."""


@dataclass
class LocalWaiter:
    """A participant of this worker in the shared line (what the dashboard shows of a lobby)."""

    participant: Participant
    joined: float = field(default_factory=time.monotonic)
    result: None = None  # the line itself is in Redis; nothing to wait on here

    @property
    def present(self) -> bool:
        return self.participant.present


class ClusterLobby:
    """The study-wide line of one multiplayer Game scene (the interface of :class:`.lobby.Lobby`)."""

    def __init__(self, server: IgymServer, game: Game) -> None:
        assert server.cluster is not None
        self.server = server
        self.game = game
        self.seats = game.human_agents() + [f"observer {i + 1}" for i in range(game.observers)]
        self.cluster = server.cluster.cluster
        self.study = server.experiment.id
        self.waiting: list[LocalWaiter] = []  # this worker's participants in the shared line

    async def wait(self, participant: Participant, scene_index: int, visit_id: str | None) -> GameRoom | str:
        """Wait for a group; returns the room (here), or the outcome of leaving (``timed_out``,
        ``disconnected``); raises :class:`Moved` when the room is on another worker."""
        game, pid, worker = self.game, participant.pid, self.server.cluster.worker_id  # type: ignore[union-attr]
        waiter = LocalWaiter(participant)
        joined = waiter.joined
        self.waiting.append(waiter)
        participant.enter_lobby(self)
        try:
            await self._join(participant, worker)
            while True:
                now = time.monotonic()
                elapsed = now - joined
                try:
                    if participant.present:
                        await self.cluster.try_form(self.study, game.name, len(self.seats))
                    message = await self.cluster.next_message(self.study, pid, max(0.05, min(
                        1.0, game.lobby_timeout_s - elapsed)))
                    if message is not None and message.get("t") == "room":
                        if not await self._room_lives(message):
                            await self._join(participant, worker)  # placed on a worker that died: in line again
                            continue
                        self._record(pid, joined, message.get("reason", "matched"))
                        return await self._placed(participant, scene_index, visit_id, message)
                    away = now - participant.gone_since if not participant.present and participant.gone_since else 0
                    if away >= game.grace_s:
                        if await self.cluster.leave(self.study, game.name, pid):
                            self._record(pid, joined, "disconnected")
                            return "disconnected"
                        continue  # placed meanwhile: the mailbox has the room
                    if elapsed >= game.lobby_timeout_s:
                        if game.fill is not None and participant.present:
                            if await self.cluster.try_fill(self.study, game.name, pid, len(self.seats)) is not None:
                                continue  # our room is in the mailbox now
                        if await self.cluster.leave(self.study, game.name, pid):
                            self._record(pid, joined, "timed_out")
                            return "timed_out"
                        continue
                    if participant.present:
                        await participant.send({"t": "lobby", "waiting": len(self.seats) - 1,
                                                "elapsed": round(elapsed, 1), "timeout": game.lobby_timeout_s})
                except ClusterUnavailable:
                    if participant.present:
                        await participant.send({"t": "status", "text": "waiting for the study's coordinator…"})
                    await asyncio.sleep(1.0)
        finally:
            self.waiting.remove(waiter)
            if participant.lobby is self:
                participant.leave_lobby()

    async def _join(self, participant: Participant, worker: str) -> None:
        """Put the participant in the shared line — as absent if their connection closed on the
        way here (they keep a place for the grace window, but nobody is matched with a ghost).
        Asked again after the join, since the close may have come while it ran."""
        game, pid = self.game, participant.pid
        await self._retry(lambda: self.cluster.join(self.study, game.name, pid, worker, participant.present),
                          participant)
        if not participant.present:
            await self._retry(lambda: self.cluster.mark_absent(self.study, game.name, pid), participant)

    async def _room_lives(self, message: dict[str, Any]) -> bool:
        """Is the room in this mailbox message on a live worker (the registration it was placed
        on)? A room placed on a worker that died before its members arrived is reaped here (its
        members are unseated) and they go back in line, rather than into a lost game."""
        try:
            if await self.cluster.reap_room(message["room"]) is not None:
                return False
            return await self.cluster.room(message["room"]) is not None
        except ClusterUnavailable:
            return True  # cannot tell: go on; a dead room's members resume as server_lost

    async def _placed(self, participant: Participant, scene_index: int, visit_id: str | None,
                      message: dict[str, Any]) -> GameRoom | str:
        server = self.server
        assert server.cluster is not None
        if server.cluster.hosts(message["worker"], message.get("incarnation", "")):
            gathering = server.gathering(message["room"], self.game, scene_index, list(message["members"]),
                                         int(message["size"]))
            return await gathering.arrive(participant, int(message["seat"]), visit_id)
        await hand_over(server, participant, message["url"])
        raise Moved(message["url"])

    async def _retry(self, call: Any, participant: Participant) -> Any:
        while True:
            try:
                return await call()
            except ClusterUnavailable:
                if participant.present:
                    await participant.send({"t": "status", "text": "waiting for the study's coordinator…"})
                await asyncio.sleep(1.0)

    # --- the Lobby interface the server calls ------------------------------------------------

    def absent(self, participant: Participant) -> None:
        """Their connection closed: keep their place, matched with nobody (grace starts)."""
        self.server.tasks.spawn(self._quietly(self.cluster.mark_absent(self.study, self.game.name, participant.pid)),
                                f"lobby absence of {participant.pid!r}")

    def back(self, participant: Participant) -> None:
        worker = self.server.cluster.worker_id  # type: ignore[union-attr]
        self.server.tasks.spawn(self._quietly(self.cluster.back(self.study, self.game.name, participant.pid, worker)),
                                f"lobby return of {participant.pid!r}")

    def present(self) -> list[LocalWaiter]:
        return [w for w in self.waiting if w.present]

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {"game": self.game.name, "seats": len(self.seats), "shared": True,
                "waiting": [{"participant": w.participant.pid, "waited_s": round(now - w.joined, 1),
                             "present": w.present} for w in self.waiting]}

    async def _quietly(self, call: Any) -> None:
        try:
            await call
        except ClusterUnavailable:
            pass  # the waiter's presence in Redis lapses with its worker's, or the next call fixes it

    def _record(self, pid: str, joined: float, reason: str) -> None:
        self.server.storage.write([EventRecord(pid, time.monotonic_ns(), "lobby_left",
                                               {"game": self.game.name, "reason": reason,
                                                "wait_s": round(time.monotonic() - joined, 3)})])


class Gathering:
    """The members of a room placed on this worker, arriving from here and from other workers."""

    def __init__(self, server: IgymServer, room_id: str, game: Game, scene_index: int, members: list[str],
                 size: int) -> None:
        self.server = server
        self.room_id = room_id
        self.game = game
        self.scene_index = scene_index
        self.members = members
        self.size = size
        self.seats = game.human_agents() + [f"observer {i + 1}" for i in range(game.observers)]
        self.arrived: dict[int, tuple[Participant, str | None]] = {}
        self.result: asyncio.Future[GameRoom | str] = asyncio.get_running_loop().create_future()
        self.timer = server.tasks.spawn(self._deadline(), f"gathering of room {room_id}")

    async def arrive(self, participant: Participant, seat: int, visit_id: str | None) -> GameRoom | str:
        self.arrived[seat] = (participant, visit_id)
        if len(self.arrived) == len(self.members):
            self._form()
        return await asyncio.shield(self.result)

    async def _deadline(self) -> None:
        await asyncio.sleep(GATHER_TIMEOUT_S)
        if not self.result.done():
            if self.game.fill is None and len(self.arrived) < len(self.members):
                self.result.set_result("partner_left")
                self.server.gatherings.pop(self.room_id, None)
                await self._room_ended()
            else:
                self._form()

    def _form(self) -> None:
        if self.result.done():
            return
        self.timer.cancel()
        members = {self.seats[i]: p for i, (p, _) in sorted(self.arrived.items())}
        fills = {seat: self.game.fill for seat in self.seats[:self.size] if seat not in members}
        first_visit = next((v for _, (_, v) in sorted(self.arrived.items())), None)
        room = self.server.new_room(self.scene_index, self.game, members, fills, first_visit)
        self.server.gatherings.pop(self.room_id, None)
        room.done.add_done_callback(lambda _: self.server.tasks.spawn(self._room_ended(), f"end of {self.room_id}"))
        self.result.set_result(room)

    async def _room_ended(self) -> None:
        cluster = self.server.cluster
        if cluster is not None:
            try:
                await cluster.cluster.room_ended(self.room_id, cluster.worker_id)
            except ClusterUnavailable:
                pass  # a survivor reaps it (rooms_of_dead_workers) or it expires with the study's state


async def hand_over(server: IgymServer, participant: Participant, url: str) -> None:
    """Give ``participant`` to the worker at ``url``: checkpoint their place (the open game visit
    included) in the shared database, let go of them here, and send their client on."""
    from .flow import checkpoint_now
    await checkpoint_now(server, participant)
    cluster = server.cluster
    assert cluster is not None
    await cluster.cluster.release_participant(server.experiment.id, participant.pid, cluster.worker_id)
    connection = participant.connection
    participant.handed_over = True
    if connection is not None:
        await participant.send({"t": "move", "url": url})
        await connection.close(wire.CLOSE_MOVED, "your game is on another worker of this study")
    server.forget(participant, release=False)
