"""Hand-overs between the workers of one study, held open and broken on purpose.

Real ``python -m igym.server --workers 2`` supervisors with their private Redis, a real SQLite
file, and scripted participants speaking the real protocol (:class:`Person`), each sent to
the worker the test chooses — so the moments between two workers can be held open:

- a worker killed mid-game is restarted under the same id: its game is lost (``server_lost``,
  its episode closed with its true counts), never replayed; the restart comes up at once;
- a stranger's token-less hello during a hand-over takes nobody's seat;
- a client that reaches the wrong worker during a hand-over is sent on to its room;
- a participant whose connection closed before the lobby is never matched (no ghosts).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import connect

from igym import wire
from tests.study_cluster import PAIRS, StudyCluster, rows

pytestmark = pytest.mark.slow

PAGE_OUTCOMES = {"consent": "agreed", "end": "closed"}


@dataclass
class Visit:
    """How one connection ended: ``move`` (with the URL), ``end`` (the study's end message),
    ``closed`` (code, reason) or ``aborted`` (we dropped it on purpose)."""

    how: str
    url: str | None = None
    end: dict[str, Any] | None = None
    code: int | None = None
    reason: str = ""


@dataclass
class Person:
    """A scripted participant: hello (with their token once they have one), pongs, each page
    left as a person would. Which worker they connect to, and when, is the test's choice."""

    pid: str
    token: str | None = None
    seen: list[str] = field(default_factory=list)

    async def visit(self, url: str, *, with_token: bool = True, drop_after_pages: int | None = None) -> Visit:
        """One connection to ``url``, until the server moves us on, ends the study, or closes;
        ``drop_after_pages``: drop the connection (no close frame) right after leaving that
        many pages, as a closed laptop does."""
        pages = 0
        try:
            async with connect(url, compression=None, ping_interval=None, max_size=2 ** 22) as ws:
                hello = {"t": "hello", "v": wire.PROTOCOL_VERSION, "pid": self.pid}
                if with_token and self.token:
                    hello["token"] = self.token
                await ws.send(wire.pack(hello))
                try:
                    async for data in ws:
                        message = wire.unpack(data)
                        kind = message["t"]
                        self.seen.append(kind)
                        if kind == "ping":
                            await ws.send(wire.pack({"t": "pong", "n": message["n"]}))
                        elif kind == "welcome":
                            self.token = message["token"]
                        elif kind == "move":
                            return Visit("move", url=message["url"])
                        elif kind == "end":
                            return Visit("end", end=message)
                        elif kind == "page":
                            outcome = PAGE_OUTCOMES.get(message["page"].get("kind"), "continued")
                            await ws.send(wire.pack({"t": "page", "v": message["v"], "o": outcome}))
                            pages += 1
                            if drop_after_pages is not None and pages >= drop_after_pages:
                                ws.transport.abort()
                                return Visit("aborted")
                except websockets.ConnectionClosed:
                    pass
                return Visit("closed", code=ws.close_code, reason=ws.close_reason or "")
        except OSError:
            return Visit("closed")

    async def take_part(self, url: str, timeout: float = 120) -> dict[str, Any] | None:
        """Connect to ``url`` and go on — follow moves at once, come back to the same address
        after a drop (a killed worker's restart answers there) — until the study ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            visit = await self.visit(url)
            if visit.how == "end":
                return visit.end
            if visit.how == "move":
                url = visit.url
                continue
            if visit.code in wire.CLOSE_FINAL and visit.reason:
                return None
            await asyncio.sleep(0.3)
        return None

    async def until_moved(self, url: str) -> str:
        """Connect to ``url`` and go through the pages until the server sends us on; the URL."""
        visit = await self.visit(url)
        assert visit.how == "move", (self.pid, visit, self.seen[-8:])
        return visit.url


def _pairs(tmp_path, steps: int = 60) -> tuple[StudyCluster, Any]:
    data = tmp_path / "pairs.sqlite"
    return StudyCluster(tmp_path, 2, "--data", str(data), experiment=PAIRS, steps=steps), data


def _duels(data) -> list[tuple[str, str]]:
    return sorted(rows("SELECT participant_id, outcome FROM visits WHERE scene = 'duel'", data=data))


def _statuses(data) -> list[tuple[str, str]]:
    return sorted(rows("SELECT participant_id, status FROM participants", data=data))


def _run(coroutine, timeout: float = 240):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def _moved_pair(cluster: StudyCluster) -> tuple[Person, str, Person, Any, str]:
    """A at worker 1's own address, B at worker 2's: their room is placed on one of the two and
    the other is sent on. Returns the one sent on (held: not yet at the room's worker), the
    worker they were at, the one already there (playing on in the background), and the room's
    worker's URL."""
    a, b = Person("A"), Person("B")
    one, two = cluster.own_url(1), cluster.own_url(2)
    visits = {"A": asyncio.create_task(a.visit(one)), "B": asyncio.create_task(b.visit(two))}
    done, _ = await asyncio.wait(visits.values(), return_when=asyncio.FIRST_COMPLETED, timeout=60)
    moved = next(task for task in done)
    pid = next(p for p, task in visits.items() if task is moved)
    visit = moved.result()
    assert visit.how == "move", (pid, visit)
    held, stayed = (a, b) if pid == "A" else (b, a)
    was_at = one if pid == "A" else two
    stayed_url = two if pid == "A" else one
    # The one already at the room's worker goes on as a person would (their visit continues).
    stayed_task = visits[stayed.pid]
    playing = asyncio.create_task(_go_on(stayed, stayed_task, stayed_url))
    return held, was_at, stayed, playing, visit.url


async def _go_on(person: Person, first: asyncio.Task, url: str) -> dict[str, Any] | None:
    visit = await first
    if visit.how == "end":
        return visit.end
    return await person.take_part(visit.url if visit.how == "move" else url)


def test_a_restarted_worker_never_replays_the_dead_workers_game(tmp_path):
    """Items 1, 2 and 6: SIGKILL of the worker hosting a game; the supervisor restarts it under
    the same id and the players reconnect to that very address. The game is lost — both end it
    ``server_lost`` and go on to the end — with its one episode closed at its true step count
    and end time; no second episode in the same visit; the restart comes up the first time."""
    cluster, data = _pairs(tmp_path, steps=3000)  # a 100 s game: killed long before its end

    async def main():
        a, b = Person("A"), Person("B")
        # Both at worker 1's own address: the room is placed on one worker, the other member is
        # moved there; either way both end up connected to the room's worker's own address.
        players = [asyncio.create_task(p.take_part(cluster.own_url(1), timeout=200)) for p in (a, b)]
        deadline = time.monotonic() + 90
        while not rows("SELECT count(DISTINCT step) >= 60 FROM steps", data=data)[0][0]:
            assert time.monotonic() < deadline and not any(p.done() for p in players), cluster.log.read_text()[-2000:]
            await asyncio.sleep(0.3)
        host = next(w for w, rooms in cluster.status()["cluster"]["rooms_by_worker"].items() if rooms)
        os.kill(cluster.workers()[host], signal.SIGKILL)
        return host, await asyncio.gather(*players)

    try:
        host, ends = _run(main())
    finally:
        cluster.stop()
    log = cluster.log.read_text()
    assert [bool(e and e.get("code")) for e in ends] == [True, True], (ends, log[-3000:])  # to the end page
    assert _statuses(data) == [("A", "completed"), ("B", "completed")]
    assert _duels(data) == [("A", "server_lost"), ("B", "server_lost")]
    episodes = rows("SELECT episode_id, outcome, steps, started_at, ended_at, started_ns, ended_ns FROM episodes",
                    data=data)
    assert len(episodes) == 1, episodes  # never played again from episode 0
    episode_id, outcome, steps, started_at, ended_at, started_ns, ended_ns = episodes[0]
    stored, last_ns = rows(f"SELECT count(DISTINCT step), max(t_ns) FROM steps WHERE episode_id = '{episode_id}'",
                           data=data)[0]
    assert outcome == "server_lost" and steps == stored >= 60
    assert ended_ns == last_ns and ended_at == pytest.approx(started_at + (last_ns - started_ns) / 1e9)
    assert "WorkerIdInUse" not in log and "Traceback" not in log, log[-3000:]
    assert cluster.starts(host) == 2  # started, killed, started again once


def test_a_strangers_hello_without_token_during_a_hand_over_takes_no_seat(tmp_path):
    """Item 3: between the worker that let a participant go and the room's worker, a hello for
    their id without their token is refused before anything is claimed; the participant then
    reaches their room and both play."""
    cluster, data = _pairs(tmp_path)

    async def main():
        held, was_at, stayed, playing, room_url = await _moved_pair(cluster)
        stranger = await Person(held.pid).visit(was_at, with_token=False)
        end = await held.take_part(room_url)
        return stranger, end, await playing

    try:
        stranger, held_end, stayed_end = _run(main())
    finally:
        cluster.stop()
    assert stranger.how == "closed" and stranger.code == wire.CLOSE_POLICY and "token" in stranger.reason
    assert held_end is not None and stayed_end is not None
    assert _statuses(data) == [("A", "completed"), ("B", "completed")]
    assert _duels(data) == [("A", "played"), ("B", "played")]


def test_a_client_at_the_wrong_worker_during_a_hand_over_is_sent_on_to_its_room(tmp_path):
    """Item 4: a participant sent on to their room's worker who reaches another worker instead
    (the study's URL after a failed move, a proxy's choice) is sent on again — not resumed
    there as ``server_lost`` — and both play."""
    cluster, data = _pairs(tmp_path)

    async def main():
        held, was_at, stayed, playing, room_url = await _moved_pair(cluster)
        wrong = await held.visit(was_at)
        end = await held.take_part(wrong.url) if wrong.how == "move" else None
        return wrong, room_url, end, await playing

    try:
        wrong, room_url, held_end, stayed_end = _run(main())
    finally:
        cluster.stop()
    assert wrong.how == "move" and wrong.url == room_url, wrong
    assert held_end is not None and stayed_end is not None
    assert _statuses(data) == [("A", "completed"), ("B", "completed")]
    assert _duels(data) == [("A", "played"), ("B", "played")]
    assert not rows("SELECT * FROM events WHERE kind = 'scene_outcome' AND data LIKE '%server_lost%'", data=data)


def test_a_participant_gone_before_the_lobby_is_never_matched(tmp_path):
    """Item 5: G agrees, reads the instructions and closes the laptop at once: their flow reaches
    the shared lobby without them. R, who arrives next, is not matched with the ghost: R plays
    with R2, who comes after; G's game ends ``disconnected`` when their grace runs out."""
    cluster, data = _pairs(tmp_path)

    async def main():
        ghost = await Person("G").visit(cluster.own_url(1), drop_after_pages=2)  # consent, instructions
        deadline = time.monotonic() + 20
        while "G" not in _waiting(cluster):
            assert time.monotonic() < deadline, cluster.status()["cluster"]
            await asyncio.sleep(0.2)
        line = _waiting(cluster)
        r = asyncio.create_task(Person("R").take_part(cluster.own_url(2)))
        deadline = time.monotonic() + 20
        while _waiting(cluster).get("R") is not True:  # R waits in line, present: not matched with the ghost
            assert time.monotonic() < deadline and not r.done(), (_waiting(cluster), r.done())
            await asyncio.sleep(0.2)
        r2 = asyncio.create_task(Person("R2").take_part(cluster.own_url(1)))
        return ghost, line, await r, await r2

    try:
        ghost, line, r_end, r2_end = _run(main())
        deadline = time.monotonic() + 30  # the ghost's grace (10 s) runs out; their flow ends the visit
        while ("G", "disconnected") not in _duels(data):
            assert time.monotonic() < deadline, _duels(data)
            time.sleep(0.5)
    finally:
        cluster.stop()
    assert ghost.how == "aborted" and line["G"] is False  # in line, never counted present
    assert r_end is not None and r2_end is not None
    assert _statuses(data)[1:] == [("R", "completed"), ("R2", "completed")]
    assert _duels(data) == [("G", "disconnected"), ("R", "played"), ("R2", "played")]
    left = {pid: json.loads(d)["reason"] for pid, d in rows("SELECT participant_id, data FROM events WHERE "
                                                             "kind = 'lobby_left'", data=data)}
    assert left == {"G": "disconnected", "R": "matched", "R2": "matched"}


def _waiting(cluster: StudyCluster) -> dict[str, bool]:
    """Who waits in the shared lobby, and whether they count as present."""
    lobbies = cluster.status()["cluster"].get("lobbies", {})
    return {w["participant"]: w["present"] for line in lobbies.values() for w in line}
