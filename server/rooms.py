"""Lobbies and rooms: who plays with whom, and the authoritative game of each group.

A :class:`Room` owns one sans-I/O :class:`~igym.session.Session` and its place on the
server's metronome: it wakes on absolute deadlines (``t0 + k / fps``: no drift), records
how late it woke, feeds the session, stores its records, and hands each member the newest
frame as a delta from the last frame that went into that member's connection. TCP delivers
a connection's bytes in order or not at all, so that frame is the one the client will
have decoded just before: no per-frame acknowledgement is needed (that halves the messages
a room costs). A member whose connection lags is never sent a backlog: while its send
buffer holds more than :data:`LAG_BYTES` it gets no new frames, and the next one it gets is
a delta from what it last received (or whole); a reconnected member starts with a whole frame.

A :class:`Lobby` per multiplayer Game scene groups participants first come, first served;
at the scene's timeout it fills empty seats with the scene's ``fill`` or lets the waiting
person go with outcome ``timed_out``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

from igym import render, wire
from igym.experiment import Game
from igym.session import Session
from websockets.asyncio.server import broadcast

if TYPE_CHECKING:
    from .app import IgymServer, Participant

log = logging.getLogger("igym.server")
HISTORY = 64  # frames a room remembers, so deltas can be made from any recently sent one
LAG_BYTES = 16 * 1024  # a member whose send buffer holds more than this skips frames (newest wins)


class Member:
    """A participant's place in a room: seat, newest-frame slot, last acknowledged frame."""

    def __init__(self, participant: "Participant", agent: str) -> None:
        self.participant = participant
        self.agent = agent
        self.sent = -1  # the newest frame in this member's current connection (-1: none yet)
        self.gone_since: float | None = None
        self.needs_scene = True  # the scene message must reach the client before any frame


class Room:
    """One group's game: the authoritative session, its place on the clock, its members."""

    def __init__(self, server: "IgymServer", scene_index: int, game: Game,
                 members: dict[str, "Participant"], fills: dict[str, Any], visit_id: str | None = None) -> None:
        self.server = server
        self.scene_index = scene_index
        seats = {a: ("human" if str(a) in members else fills.get(str(a), s)) for a, s in game.seats.items()}
        self.game = dataclasses.replace(game, seats=seats)
        owner = next(iter(members.values())) if members else None
        # The episodes are the room's, recorded under its first member's id and game visit;
        # every member's seat is named in the episode's ``seats``.
        if visit_id is None and owner is not None and owner.run is not None and owner.run.current is not None:
            visit_id = owner.run.current.visit_id
        self.session = Session(self.game, owner.pid if owner else "server", scene=game.name, visit_id=visit_id)
        for agent, participant in members.items():
            self.session.seats[agent] = {"kind": "human", "participant": participant.pid}
        self.members = {agent: Member(p, agent) for agent, p in members.items()}
        self.frames: dict[int, render.Frame] = {}
        self.frame_number = -1
        self._shown: render.Frame | None = None
        self.done = asyncio.get_running_loop().create_future()
        self.outcomes: dict[str, str] = {}
        self.slot = 0
        metronome = server.metronome(self.game.fps)
        self.session.tick(metronome.add(self))  # starts the first episode on its slot's grid
        self._publish()
        for member in self.members.values():
            member.participant.room = self
            member.participant.member = member

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
            self.server.sink.write(session.take_records())
        except Exception:  # noqa: BLE001 — a broken env must not take the server down
            log.exception("room %s crashed", id(self))
            session.abort(time.monotonic(), "error")
            self.outcomes = {a: "error" for a in self.members}
        if session.finished:
            self._finish()

    def _finish(self) -> None:
        self.server.metronome(self.game.fps).remove(self)
        sink = self.server.sink
        sink.write(self.session.take_records())
        sink.commit()
        for member in self.members.values():
            self.outcomes.setdefault(member.agent, "played")
        if not self.done.done():
            self.done.set_result(self.outcomes)

    def _publish(self) -> None:
        frame = self.session.frame
        if frame is None or frame is self._shown:
            return
        self._shown = frame
        self.frame_number += 1
        self.frames[self.frame_number] = frame
        self.frames.pop(self.frame_number - HISTORY, None)
        self._send_newest(list(self.members.values()))

    def _send_newest(self, members: list[Member]) -> None:
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

    async def dropped(self, member: Member) -> None:
        """A member's connection closed mid-game: pause, wait out the grace window, apply the rule."""
        if self.done.done():
            return
        now = time.monotonic()
        member.gone_since = now
        member.sent = -1
        self.session.pause(now)
        self.session.event("disconnect", now, {"agent": member.agent, "participant": member.participant.pid})
        await self._tell_others(member, "partner reconnecting")
        grace = self.game.grace_s
        deadline = now + grace
        while time.monotonic() < deadline:
            await asyncio.sleep(min(0.1, grace))
            if member.gone_since is None or self.done.done():
                return
        now = time.monotonic()
        if self.game.dropout == "ai":
            self.session.replace_seat(member.agent, self.game.fill, now)
            self.outcomes[member.agent] = "disconnected"
            del self.members[member.agent]
            member.participant.room = None
            if all(m.gone_since is None for m in self.members.values()):
                self.session.resume(now)
            await self._tell_others(member, "your partner left; an AI took their place")
        else:
            self.outcomes = {a: ("disconnected" if a == member.agent or m.gone_since is not None else "partner_left")
                             for a, m in self.members.items()}
            self.session.resume(now)
            self.session.abort(now, "partner_left")
            self._finish()

    async def rejoined(self, member: Member) -> None:
        """The member is back (same participant id and token): full frame, resume if all are here."""
        member.gone_since = None
        member.sent = -1
        member.needs_scene = True
        now = time.monotonic()
        self.session.event("reconnect", now, {"agent": member.agent, "participant": member.participant.pid})
        if self.frame_number >= 0:
            self._send_newest([member])
        if all(m.gone_since is None for m in self.members.values()):
            self.session.resume(now)
            await self._tell_others(None, "")

    async def _tell_others(self, about: Member | None, text: str) -> None:
        for other in list(self.members.values()):
            if other is not about and other.participant.connection is not None:
                await other.participant.send({"t": "status", "text": text})


class Metronome:
    """One clock for every room of a given fps, with rooms spread over phase slots.

    Deadlines are absolute (``t0 + k / fps``: no drift). A period is cut into ``SLOTS``
    phases and each new room joins the emptiest one, so rooms do not all wake on the same
    instant and wait for each other: a room's tick lateness is its own work plus that of
    its few slot-mates, not of the whole server. One timer serves all rooms; the data is
    written by the sink's own thread (see ``SqliteSink(background=True)``), so no beat
    waits for the disk.
    """

    SLOTS = 8

    def __init__(self, fps: float, stats: Any, sink: Any) -> None:
        self.period = 1.0 / fps
        self.slot_period = self.period / self.SLOTS
        self.stats = stats
        self.sink = sink
        self.slots: list[set[Room]] = [set() for _ in range(self.SLOTS)]
        self.t0 = time.monotonic()
        self.beats = 0
        self.task = asyncio.create_task(self._run())

    def add(self, room: "Room") -> float:
        """Put ``room`` in the emptiest slot; returns that slot's latest deadline (its start time)."""
        slot = min(range(self.SLOTS), key=lambda i: len(self.slots[i]))
        self.slots[slot].add(room)
        room.slot = slot
        index = int((time.monotonic() - self.t0) / self.slot_period)
        index -= (index - slot) % self.SLOTS
        return self.t0 + index * self.slot_period

    def remove(self, room: "Room") -> None:
        self.slots[room.slot].discard(room)

    async def _run(self) -> None:
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


class Lobby:
    """The waiting room of one multiplayer Game scene: first come, first served."""

    def __init__(self, server: "IgymServer", scene_index: int, game: Game) -> None:
        self.server = server
        self.scene_index = scene_index
        self.game = game
        self.seats = game.human_agents() + [f"observer {i + 1}" for i in range(game.observers)]
        self.waiting: list[tuple["Participant", float, asyncio.Future]] = []

    async def join(self, participant: "Participant") -> Room | None:
        """Wait for a group; returns the room, or None when the wait timed out with no fill."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        joined = time.monotonic()
        self.waiting.append((participant, joined, future))
        self._match()
        while not future.done():
            elapsed = time.monotonic() - joined
            if elapsed >= self.game.lobby_timeout_s:
                self._timeout(participant)
                break
            await participant.send({"t": "lobby", "waiting": len(self.seats) - len(self.waiting),
                                    "elapsed": round(elapsed, 1), "timeout": self.game.lobby_timeout_s})
            try:
                await asyncio.wait_for(asyncio.shield(future), timeout=min(1.0, self.game.lobby_timeout_s - elapsed))
            except asyncio.TimeoutError:
                pass
        return future.result()

    def leave(self, participant: "Participant") -> None:
        for entry in list(self.waiting):
            if entry[0] is participant and not entry[2].done():
                self.waiting.remove(entry)
                entry[2].set_result(None)

    def _match(self) -> None:
        while len(self.waiting) >= len(self.seats):
            group, self.waiting = self.waiting[:len(self.seats)], self.waiting[len(self.seats):]
            members = {agent: entry[0] for agent, entry in zip(self.seats, group)}
            room = self.server.new_room(self.scene_index, self.game, members)
            for entry in group:
                entry[2].set_result(room)

    def _timeout(self, participant: "Participant") -> None:
        if self.game.fill is None:
            self.leave(participant)
            return
        group = [e for e in self.waiting if not e[2].done()]
        self.waiting = []
        members = {agent: entry[0] for agent, entry in zip(self.seats, group)}
        fills = {agent: self.game.fill for agent in self.seats[len(group):]}
        room = Room(self.server, self.scene_index, self.game, members, fills)
        for entry in group:
            entry[2].set_result(room)
