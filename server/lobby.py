"""Lobbies: who plays with whom — first come, first served, among the people who are here.

A :class:`Lobby` per multiplayer Game scene (keyed by the scene's name, so people who reach
it at different positions of a random order still meet) holds the participants waiting
for a group. Membership follows the connection: a participant whose connection closes
stays in line for the scene's ``grace_s`` but is never matched while absent; back in time,
they keep their place; not back, they leave with outcome ``disconnected``. A group forms
only of members connected at that moment. At a participant's ``lobby_timeout_s`` the
scene's ``fill`` takes the empty seats, or they leave with outcome ``timed_out``. Every
way out is recorded as a ``lobby_left`` event with the time waited.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from igym.experiment import Game
from igym.records import EventRecord

if TYPE_CHECKING:
    from .app import IgymServer
    from .participants import Participant
    from .rooms import GameRoom


@dataclass
class Waiter:
    """One participant in line: since when, for which visit, and whether they are here."""

    participant: Participant
    scene_index: int
    visit_id: str | None
    joined: float = field(default_factory=time.monotonic)
    gone_since: float | None = None
    result: asyncio.Future[GameRoom | str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def present(self) -> bool:
        return self.gone_since is None and self.participant.present


class Lobby:
    """The waiting line of one multiplayer Game scene."""

    def __init__(self, server: IgymServer, game: Game) -> None:
        self.server = server
        self.game = game
        self.seats = game.human_agents() + [f"observer {i + 1}" for i in range(game.observers)]
        self.waiting: list[Waiter] = []

    async def wait(self, participant: Participant, scene_index: int, visit_id: str | None) -> GameRoom | str:
        """Wait for a group; returns the room, or the outcome of leaving (``timed_out``, ``disconnected``)."""
        waiter = Waiter(participant, scene_index, visit_id)
        self.waiting.append(waiter)
        participant.enter_lobby(self)
        try:
            self._match()
            game = self.game
            while not waiter.result.done():
                now = time.monotonic()
                elapsed = now - waiter.joined
                if waiter.gone_since is not None and now - waiter.gone_since >= game.grace_s:
                    self._leave(waiter, "disconnected")
                    break
                if elapsed >= game.lobby_timeout_s:
                    self._timeout(waiter)
                    break
                if waiter.present:
                    await participant.send({"t": "lobby", "waiting": len(self.seats) - len(self.present()),
                                            "elapsed": round(elapsed, 1), "timeout": game.lobby_timeout_s})
                wake = min(1.0, game.lobby_timeout_s - elapsed)
                if waiter.gone_since is not None:
                    wake = min(wake, game.grace_s - (now - waiter.gone_since))
                try:
                    await asyncio.wait_for(asyncio.shield(waiter.result), max(0.01, wake))
                except TimeoutError:
                    pass
            return waiter.result.result()
        finally:
            if waiter in self.waiting:  # the flow was cancelled (server shutting down)
                self.waiting.remove(waiter)
            if participant.lobby is self:
                participant.leave_lobby()

    def present(self) -> list[Waiter]:
        """Who is waiting and connected, in order of arrival."""
        return [w for w in self.waiting if w.present and not w.result.done()]

    def absent(self, participant: Participant) -> None:
        """The participant's connection closed: keep their place, but match nobody absent."""
        for waiter in self.waiting:
            if waiter.participant is participant:
                waiter.gone_since = time.monotonic()

    def back(self, participant: Participant) -> None:
        """The participant reconnected within the grace window: their place, and maybe a group now."""
        for waiter in self.waiting:
            if waiter.participant is participant:
                waiter.gone_since = None
        self._match()

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {"game": self.game.name, "seats": len(self.seats),
                "waiting": [{"participant": w.participant.pid, "waited_s": round(now - w.joined, 1),
                             "present": w.present} for w in self.waiting]}

    # --- forming groups -------------------------------------------------------------------

    def _match(self) -> None:
        while True:
            here = self.present()
            if len(here) < len(self.seats):
                return
            self._form(here[:len(self.seats)], {}, "matched")

    def _timeout(self, waiter: Waiter) -> None:
        if self.game.fill is None or not waiter.present:
            self._leave(waiter, "timed_out")
            return
        group = self.present()[:len(self.seats)]
        fills = {seat: self.game.fill for seat in self.seats[len(group):]}
        self._form(group, fills, "filled")

    def _form(self, group: list[Waiter], fills: dict[str, Any], reason: str) -> None:
        first = group[0]
        members = {seat: waiter.participant for seat, waiter in zip(self.seats, group)}
        for waiter in group:
            self.waiting.remove(waiter)
            self._record(waiter, reason)
        room = self.server.new_room(first.scene_index, self.game, members, fills, first.visit_id)
        for waiter in group:
            waiter.result.set_result(room)

    def _leave(self, waiter: Waiter, outcome: str) -> None:
        self.waiting.remove(waiter)
        self._record(waiter, outcome)
        waiter.result.set_result(outcome)

    def _record(self, waiter: Waiter, reason: str) -> None:
        self.server.storage.write([EventRecord(
            waiter.participant.pid, time.monotonic_ns(), "lobby_left",
            {"game": self.game.name, "reason": reason, "wait_s": round(time.monotonic() - waiter.joined, 3)})])
