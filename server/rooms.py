"""Rooms: one group's game on the server, behind one interface.

:class:`GameRoom` is what the rest of the server knows of a room, whichever way it runs:
its members (the room's own :class:`Member` objects), keys and lockstep messages from
them, a member dropping and coming back (pause, grace window, the scene's ``dropout``
rule), failing (outcome ``error`` for that room alone), and a status for ``/status``.
Two kinds implement it: :class:`Room` here (authoritative: the server runs the session and
sends frames) and :class:`igym.server.lockstep.LockstepRoom` (the clients run it). Rooms
are built in one place, :meth:`igym.server.app.IgymServer.new_room`.

An authoritative :class:`Room` owns one sans-I/O :class:`~igym.session.Session` and its
place on the server's :class:`Metronome`: it wakes on absolute deadlines (``t0 + k / fps``:
no drift), records how late it woke, feeds the session, stores its records, and hands each
member the newest frame as a delta from the last frame that went into that member's
connection. TCP delivers a connection's bytes in order or not at all, so that frame is the
one the client will have decoded just before: no per-frame acknowledgement is needed
(that halves the messages a room costs). A member whose connection lags is never sent a
backlog: while its send buffer holds more than :data:`LAG_BYTES` it gets no new frames,
and the next one it gets is a delta from what it last received (or whole); a reconnected
member starts with a whole frame.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any, cast
from collections.abc import Coroutine, Mapping

from igym import render, wire
from igym.experiment import Game
from igym.session import Session
from websockets.asyncio.server import broadcast

if TYPE_CHECKING:
    from .app import IgymServer
    from .participants import Participant

log = logging.getLogger("igym.server")
HISTORY = 64  # frames a room remembers, so deltas can be made from any recently sent one
LAG_BYTES = 16 * 1024  # a member whose send buffer holds more than this skips frames (newest wins)
_room_numbers = itertools.count(1)


class Member:
    """A participant's seat in a room (an agent's name, or ``observer N``)."""

    def __init__(self, participant: Participant, agent: str) -> None:
        self.participant = participant
        self.agent = agent
        self.gone_since: float | None = None
        self.back = asyncio.Event()  # set when the member returns within the grace window

    @property
    def present(self) -> bool:
        return self.gone_since is None and self.participant.present


class GameRoom:
    """What every room offers the server: members, input, dropouts, failure, status."""

    network = "authoritative"
    member_class: type[Member] = Member

    def __init__(self, server: IgymServer, scene_index: int, game: Game,
                 members: dict[str, Participant], visit_id: str | None = None) -> None:
        self.number = next(_room_numbers)
        self.server = server
        self.scene_index = scene_index
        self.game = game
        self.members: dict[str, Member] = {agent: self.member_class(p, agent) for agent, p in members.items()}
        owner = next(iter(members.values()), None)
        # The episodes are the room's, recorded under its first member's id and game visit;
        # every member's seat is named in the episode's ``seats``.
        if visit_id is None and owner is not None and owner.run is not None and owner.run.current is not None:
            visit_id = owner.run.current.visit_id
        self.owner = owner.pid if owner is not None else "server"
        self.visit_id = visit_id
        self.done: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self.outcomes: dict[str, str] = {}
        self.created = time.monotonic()
        for member in self.members.values():
            member.participant.enter_room(self, member)

    def __repr__(self) -> str:
        return f"room {self.number} ({self.game.name}: {', '.join(m.participant.pid for m in self.members.values())})"

    def start(self) -> None:
        """Begin; a member whose connection closed while the room was being formed is a dropout."""
        for member in list(self.members.values()):
            if not member.participant.present:
                self.spawn(self.dropped(member), "dropout")

    # --- input (rooms that take none refuse it) ---------------------------------------------

    def key(self, member: Member, key: str, down: bool) -> None:
        raise wire.ProtocolError("this game takes no key messages")

    def on_input(self, member: Member, message: dict[str, Any]) -> None:
        raise wire.ProtocolError("in: only lockstep games take 'in' messages")

    def on_state(self, member: Member, message: dict[str, Any]) -> None:
        raise wire.ProtocolError("state: only lockstep games take 'state' messages")

    def on_refuse(self, member: Member, message: dict[str, Any]) -> None:
        raise wire.ProtocolError("refuse: only lockstep games take 'refuse' messages")

    # --- tasks and failure ---------------------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """A task of this room: if it fails, the room ends with outcome ``error``, nothing else."""
        return self.server.tasks.spawn(coroutine, f"{self!r}: {what}", on_error=self.fail)

    def fail(self, error: BaseException) -> None:
        """Something of this room broke: end it for its members with outcome ``error``.

        The failure was logged by whoever caught it; ending the game may fail as well (the
        same broken env), and the room still ends and lets its members' flows go on.
        """
        if self.done.done():
            return
        self.outcomes = {agent: "error" for agent in self.members}
        try:
            self.abort("error")
        except Exception:  # already failing: record what we can, end anyway
            log.exception("%r: ending the game after its failure failed too", self)
        self.release()
        self.finish()

    def abort(self, outcome: str) -> None:
        """End the game now with ``outcome`` for the open episode (records kept)."""
        raise NotImplementedError

    def release(self) -> None:
        """Give back what the room holds on the server (its clock slot); safe to call twice."""

    def finish(self) -> None:
        """Hand every member their outcome (``played`` unless set) and let their flows go on."""
        for member in self.members.values():
            self.outcomes.setdefault(member.agent, "played")
        if not self.done.done():
            self.done.set_result(self.outcomes)

    # --- members leaving and coming back ------------------------------------------------------

    async def dropped(self, member: Member) -> None:
        """A member's connection closed: the game waits ``grace_s`` for them, then the scene's rule."""
        if self.done.done() or member.agent not in self.members:
            return
        member.gone_since = time.monotonic()
        member.back = asyncio.Event()
        self.member_gone(member)
        await self.tell_others(member, "partner reconnecting")
        try:
            await asyncio.wait_for(member.back.wait(), self.game.grace_s)
            return
        except TimeoutError:
            pass
        if not self.done.done() and member.gone_since is not None:
            self.member_lost(member)

    async def rejoined(self, member: Member) -> None:
        """The member is back (same participant id and token) within the grace window."""
        member.gone_since = None
        member.back.set()
        if self.done.done():
            return
        await self.member_back(member)
        if all(m.gone_since is None for m in self.members.values()):
            await self.tell_others(None, "")

    def member_gone(self, member: Member) -> None:
        """The game's side of a member's connection closing (pause, …)."""

    def member_lost(self, member: Member) -> None:
        """The member did not come back within the grace window: apply the scene's dropout rule."""
        self.outcomes = {a: ("disconnected" if a == member.agent or m.gone_since is not None else "partner_left")
                         for a, m in self.members.items()}
        self.abort("partner_left")

    async def member_back(self, member: Member) -> None:
        """The game's side of a member coming back (resend the scene, resume, …)."""

    def remove(self, member: Member, outcome: str) -> None:
        """Take ``member`` out of the game (an AI took their seat, an observer left)."""
        del self.members[member.agent]
        self.outcomes[member.agent] = outcome
        member.participant.leave_room()

    async def tell_others(self, about: Member | None, text: str) -> None:
        for other in list(self.members.values()):
            if other is not about and other.participant.present:
                await other.participant.send({"t": "status", "text": text})

    # --- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``/status`` (and the dashboard) shows of this room."""
        return {"room": self.number, "game": self.game.name, "network": self.network,
                "age_s": round(time.monotonic() - self.created, 1),
                "members": [{"participant": m.participant.pid, "seat": m.agent, "present": m.present,
                             "rtt_ms": m.participant.recent_rtt()} for m in self.members.values()]}


class FrameMember(Member):
    """A member of an authoritative room: which frame went into its connection last."""

    def __init__(self, participant: Participant, agent: str) -> None:
        super().__init__(participant, agent)
        self.sent = -1  # the newest frame in this member's current connection (-1: none yet)
        self.needs_scene = True  # the scene message must reach the client before any frame


class Room(GameRoom):
    """One group's authoritative game: the session, its place on the clock, its members."""

    member_class = FrameMember
    members: dict[str, FrameMember]  # type: ignore[assignment]

    def __init__(self, server: IgymServer, scene_index: int, game: Game,
                 members: dict[str, Participant], fills: dict[str, Any], visit_id: str | None = None) -> None:
        declared = cast(Mapping[Any, Any], game.seats)  # Game.__post_init__ requires seats
        seats = {a: ("human" if str(a) in members else fills.get(str(a), s)) for a, s in declared.items()}
        super().__init__(server, scene_index, dataclasses.replace(game, seats=seats), members, visit_id)
        self.session = Session(self.game, self.owner, scene=game.name, visit_id=self.visit_id,
                               study=server.experiment.id)
        for agent, participant in members.items():
            self.session.seats[agent] = {"kind": "human", "participant": participant.pid}
        self.frames: dict[int, render.Frame] = {}
        self.frame_number = -1
        self._shown: render.Frame | None = None
        self.slot = 0
        self.metronome = server.metronome(self.game.fps)
        self.session.tick(self.metronome.add(self))  # starts the first episode on its slot's grid
        self._publish()

    # --- clock --------------------------------------------------------------------------

    def tick(self, deadline: float) -> None:
        """One beat of the server's metronome: step the game to ``deadline``, publish, store."""
        session = self.session
        if self.done.done():
            return
        try:
            if not session.paused:
                # The session's clock is the ideal grid time: steps are stamped on their deadlines.
                steps = session.tick(deadline)
                session.note_frame(time.monotonic())
                if steps:
                    self._publish()
            self.server.storage.write(session.take_records())
        except Exception as error:  # a broken env or render must not take the server down
            log.error("%r failed: %s: %s", self, type(error).__name__, error, exc_info=error)
            self.fail(error)
            return
        if session.finished:
            self._end()

    def abort(self, outcome: str) -> None:
        now = time.monotonic()
        self.session.resume(now)
        self.session.abort(now, outcome)
        self._end()

    def _end(self) -> None:
        self.release()
        self.server.storage.write(self.session.take_records())
        self.finish()

    def release(self) -> None:
        self.metronome.remove(self)

    def _publish(self) -> None:
        frame = self.session.frame
        if frame is None or frame is self._shown:
            return
        self._shown = frame
        self.frame_number += 1
        self.frames[self.frame_number] = frame
        self.frames.pop(self.frame_number - HISTORY, None)
        self._send_newest(list(self.members.values()))

    def _send_newest(self, members: list[FrameMember]) -> None:
        """Send the newest frame, as a delta from the frame each member last received.

        Members with the same base share one encoding, and ``broadcast`` never waits. A
        member whose send buffer is backed up skips this frame; its next frame is a delta
        from what it last got — a lagging client gets the newest picture, never a queue.
        """
        number = self.frame_number
        groups: dict[int, list[Any]] = {}
        for member in members:
            connection = member.participant.connection
            if connection is None:
                continue
            if member.needs_scene:
                member.needs_scene = False
                broadcast([connection], wire.pack(self.scene_message(member)))
            transport = connection.transport
            if transport is None or transport.get_write_buffer_size() > LAG_BYTES:
                continue
            base = member.sent if member.sent in self.frames else -1
            member.sent = number
            groups.setdefault(base, []).append(connection)
        stats = self.server.stats
        for base, connections in groups.items():
            data = render.encode(self.frames[number], self.frames[base] if base >= 0 else None)
            message = wire.pack({"t": "frame", "n": number, "base": base, "d": data})
            broadcast(connections, message)
            for _ in connections:
                stats.sent(len(message))

    def key(self, member: Member, key: str, down: bool) -> None:
        now = time.monotonic()
        if down:
            self.session.press(key, now, member.agent)
        else:
            self.session.release(key, now, member.agent)

    def scene_message(self, member: Member) -> dict[str, Any]:
        keymap = self.game.keymaps.get(member.agent)
        return {"t": "scene", "i": self.scene_index, "kind": "game", "name": self.game.name,
                "seat": member.agent, "canvas": list(self.game.canvas), "bg": list(self.game.background),
                "keys": sorted(keymap.keys) if keymap else [], "fps": self.game.fps}

    # --- members leaving and coming back ------------------------------------------------------

    def member_gone(self, member: Member) -> None:
        now = time.monotonic()
        assert isinstance(member, FrameMember)
        member.sent = -1
        self.session.pause(now)
        self.session.event("disconnect", now, {"agent": member.agent, "participant": member.participant.pid})

    def member_lost(self, member: Member) -> None:
        if self.game.dropout != "ai":
            super().member_lost(member)
            return
        now = time.monotonic()
        self.session.replace_seat(member.agent, self.game.fill, now)
        self.remove(member, "disconnected")
        if all(m.gone_since is None for m in self.members.values()):
            self.session.resume(now)
        self.spawn(self.tell_others(member, "your partner left; an AI took their place"), "status message")

    async def member_back(self, member: Member) -> None:
        assert isinstance(member, FrameMember)
        member.sent = -1
        member.needs_scene = True
        now = time.monotonic()
        self.session.event("reconnect", now, {"agent": member.agent, "participant": member.participant.pid})
        if self.frame_number >= 0:
            self._send_newest([member])
        if all(m.gone_since is None for m in self.members.values()):
            self.session.resume(now)

    def status(self) -> dict[str, Any]:
        status = super().status()
        status.update(episode=self.session.episode, step=self.session.step, paused=self.session.paused)
        return status


class Metronome:
    """One clock for every room of a given fps, with rooms spread over phase slots.

    Deadlines are absolute (``t0 + k / fps``: no drift). A period is cut into ``SLOTS``
    phases and each new room joins the emptiest one, so rooms do not all wake on the same
    instant and wait for each other: a room's tick lateness is its own work plus that of
    its few slot-mates, not of the whole server. One timer serves all rooms; the data is
    written by the storage thread (:mod:`igym.server.storage`), so no beat waits for the disk.
    """

    SLOTS = 8

    def __init__(self, fps: float, stats: Any) -> None:
        self.period = 1.0 / fps
        self.slot_period = self.period / self.SLOTS
        self.stats = stats
        self.slots: list[set[Room]] = [set() for _ in range(self.SLOTS)]
        self.t0 = time.monotonic()
        self.beats = 0

    def add(self, room: Room) -> float:
        """Put ``room`` in the emptiest slot; returns that slot's latest deadline (its start time)."""
        slot = min(range(self.SLOTS), key=lambda i: len(self.slots[i]))
        self.slots[slot].add(room)
        room.slot = slot
        index = int((time.monotonic() - self.t0) / self.slot_period)
        index -= (index - slot) % self.SLOTS
        return self.t0 + index * self.slot_period

    def remove(self, room: Room) -> None:
        self.slots[room.slot].discard(room)

    async def run(self) -> None:
        while True:
            self.beats += 1
            deadline = self.t0 + self.beats * self.slot_period
            delay = deadline - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            rooms = self.slots[self.beats % self.SLOTS]
            if not rooms:
                continue
            lateness = self.stats.lateness
            for room in list(rooms):
                lateness(time.monotonic() - deadline)
                room.tick(deadline)
