"""Lobby membership follows the connection: nobody is ever matched with a partner who is not there.

The scenario that used to corrupt a human-human condition: A waits, A's client is killed
(a closed laptop), B arrives and plays a whole game against A's ghost. Now A is held in
line for the scene's grace window but never matched while absent; back in time, A keeps
their place; not back, A leaves with ``disconnected`` (event ``lobby_left``).
"""

import asyncio
import json
import sqlite3
import subprocess
import sys

from tests.serving import ROOT, RawClient, load, start, stop

LOBBY_GAMES = ROOT / "tests" / "experiments" / "lobby_games.py"


def games(monkeypatch, game, **settings):
    return load(monkeypatch, LOBBY_GAMES, prefix="LOBBY", game=game, **settings)


def lobby_events(path):
    db = sqlite3.connect(path)
    return {pid: json.loads(data) for pid, data in
            db.execute("SELECT participant_id, data FROM events WHERE kind='lobby_left'")}


def count(path, sql):
    return sqlite3.connect(path).execute(sql).fetchone()[0]


async def waiting(server, game, present):
    """Until ``present`` people are in the lobby of ``game`` and connected."""
    for _ in range(1000):
        lobby = server.lobbies.get(game)
        if lobby is not None and len(lobby.present()) == present:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"lobby {game} never had {present} present: {server.status()['lobbies']}")


def test_a_killed_client_in_the_lobby_is_never_matched(tmp_path, monkeypatch):
    experiment = games(monkeypatch, "pair", timeout_s=4, grace_s=1.5)
    path = tmp_path / "ghost.sqlite"

    async def main():
        server, task, url, _ = await start(experiment, path)
        # A is a real desktop client, killed with SIGKILL while it waits.
        a = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "igym.play", "--connect", url, "--headless", "--participant", "A", cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await waiting(server, "pair", 1)
        a.kill()
        await a.wait()
        for _ in range(500):
            if not server.participants["A"].present:
                break
            await asyncio.sleep(0.02)
        status = server.status()
        b = await RawClient(url, "B").open()  # arrives while A is still inside A's grace window
        end = await b.wait_for("end", timeout=20)
        await stop(server, task)
        return status, end, b

    status, end, b = asyncio.run(main())
    assert status["participants"]["connected"] == 0 and status["lobbies"]["pair"] == 0
    assert end["outcome"] == "timed_out", end
    assert not b.seen("scene") and not b.seen("frame")  # no game against a ghost
    assert count(path, "SELECT count(*) FROM episodes") == 0
    left = lobby_events(path)
    assert left["A"]["reason"] == "disconnected" and 1.5 <= left["A"]["wait_s"] < 4
    assert left["B"]["reason"] == "timed_out" and left["B"]["wait_s"] >= 4


def test_back_within_the_grace_window_keeps_the_place_and_is_matched(tmp_path, monkeypatch):
    experiment = games(monkeypatch, "pair", grace_s=5, steps=45)
    path = tmp_path / "back.sqlite"

    async def main():
        server, task, url, _ = await start(experiment, path)
        a = await RawClient(url, "A").open()
        await a.wait_for("lobby")
        await a.abort()
        b = await RawClient(url, "B").open()
        await b.wait_for("lobby")
        await asyncio.sleep(0.5)
        unmatched = not b.seen("scene")
        a = await RawClient(url, "A", token=a.token).open()  # back, with the reconnect token
        ends = [await client.wait_for("end", timeout=30) for client in (a, b)]
        scenes = [client.seen("scene")[0]["seat"] for client in (a, b)]
        await stop(server, task)
        return unmatched, ends, scenes

    unmatched, ends, scenes = asyncio.run(main())
    assert unmatched  # B waited while A was away
    assert scenes == ["agent_left", "agent_right"]  # A kept the first place in line
    assert [e["outcome"] for e in ends] == ["played", "played"]
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(DISTINCT step), count(*) FROM steps").fetchone() == (45, 90)
    seats = json.loads(db.execute("SELECT seats FROM episodes").fetchone()[0])
    assert {s["participant"] for s in seats.values()} == {"A", "B"}
    assert {pid: e["reason"] for pid, e in lobby_events(path).items()} == {"A": "matched", "B": "matched"}


def test_a_three_seat_game_waits_for_three_present_people(tmp_path, monkeypatch):
    experiment = games(monkeypatch, "trio", grace_s=5, steps=30)
    path = tmp_path / "trio.sqlite"

    async def main():
        server, task, url, _ = await start(experiment, path)
        a = await RawClient(url, "A").open()
        b = await RawClient(url, "B").open()
        await waiting(server, "trio", 2)
        await b.abort()
        c = await RawClient(url, "C").open()
        await waiting(server, "trio", 2)  # A and C; B is held in line but absent
        await asyncio.sleep(0.5)
        unmatched = not (a.seen("scene") or c.seen("scene"))
        b = await RawClient(url, "B", token=b.token).open()
        ends = [await client.wait_for("end", timeout=30) for client in (a, b, c)]
        seats = [client.seen("scene")[0]["seat"] for client in (a, b, c)]
        await stop(server, task)
        return unmatched, ends, seats

    unmatched, ends, seats = asyncio.run(main())
    assert unmatched
    assert seats == ["red", "green", "blue"]  # in order of arrival: B kept its place before C
    assert [e["outcome"] for e in ends] == ["played"] * 3
    assert count(path, "SELECT count(*) FROM steps") == 90


def test_lockstep_lobby_with_an_observer_matches_only_present_people(tmp_path, monkeypatch):
    experiment = games(monkeypatch, "lockstep", grace_s=1, timeout_s=30, observers=1)
    path = tmp_path / "lockstep.sqlite"

    async def main():
        server, task, url, _ = await start(experiment, path)
        a = await RawClient(url, "A").open()
        b = await RawClient(url, "B").open()
        await waiting(server, "lockstep_pair", 2)
        await b.abort()
        c = await RawClient(url, "C").open()
        await waiting(server, "lockstep_pair", 2)
        await asyncio.sleep(1.6)  # B's grace window ends: B leaves the line
        unmatched = not (a.seen("scene") or c.seen("scene"))
        d = await RawClient(url, "D").open()
        scenes = [(await client.wait_for("scene", timeout=20)) for client in (a, c, d)]
        await stop(server, task)
        return unmatched, scenes

    unmatched, scenes = asyncio.run(main())
    assert unmatched
    assert [s["net"] for s in scenes] == ["lockstep"] * 3
    assert [s["seat"] for s in scenes] == ["agent_left", "agent_right", None]  # D watches
    assert lobby_events(path)["B"]["reason"] == "disconnected"


def test_a_partner_who_drops_during_the_countdown_gets_the_grace_window(tmp_path, monkeypatch):
    experiment = games(monkeypatch, "pair", grace_s=1, countdown_s=3)
    path = tmp_path / "countdown.sqlite"

    async def main():
        server, task, url, _ = await start(experiment, path)
        a = await RawClient(url, "A").open()
        b = await RawClient(url, "B").open()
        await a.wait_for("frame")
        await a.abort()  # during the 3-2-1
        status = await b.wait_for("status")
        end = await b.wait_for("end", timeout=20)
        await stop(server, task)
        return status, end

    status, end = asyncio.run(main())
    assert status["text"] == "partner reconnecting"
    assert end["outcome"] == "partner_left"
    db = sqlite3.connect(path)
    assert db.execute("SELECT steps, outcome FROM episodes").fetchone() == (0, "partner_left")
    kinds = [k for (k,) in db.execute("SELECT kind FROM events WHERE kind IN ('pause', 'disconnect') ORDER BY t_ns")]
    assert "pause" in kinds
