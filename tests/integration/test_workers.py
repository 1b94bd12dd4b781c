"""One study served by several worker processes (``--workers N``), coordinated by Redis, with
one database: real ``python -m igym.server`` supervisors, real headless desktop clients
(``python -m igym.play --connect``), real redis-server and PostgreSQL.

- Two workers carry a study together: everyone completes, every step is stored once,
  conditions are balanced exactly across workers, ``/status`` on the study's port shows
  both workers.
- A worker killed (SIGKILL) during a participant's game: the participant reconnects, lands
  on a live worker, and resumes — the lost game ends ``server_lost`` with its committed
  steps kept, and the study goes on to its end.
- Redis killed for 5 s: a running game goes on; a participant arriving meanwhile is told
  the server is busy, retries, and gets in once Redis is back.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.study_cluster import PAIRS, ROOT, TOKEN, StudyCluster as Cluster, rows as _rows


pytestmark = pytest.mark.slow


def _finish(clients: dict[str, subprocess.Popen], logs: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    for pid, process in clients.items():
        try:
            process.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
        text = (logs / f"{pid}.log").read_text()
        assert process.returncode == 0 and "completion code:" in text, (pid, text[-1500:])


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_two_workers_serve_one_study_with_balanced_conditions_and_every_step_once(tmp_path, database, request):
    if database == "postgres":
        url = request.getfixturevalue("pg_url")
        target, where = ["--database", url], {"url": url}
    else:
        data = tmp_path / "study.sqlite"
        target, where = ["--data", str(data)], {"data": data}
    cluster = Cluster(tmp_path, 2, *target)
    try:
        clients = {f"P{i}": cluster.client(f"P{i}", tmp_path / f"P{i}.log") for i in range(8)}
        _finish(clients, tmp_path)
        deadline = time.monotonic() + 15  # the cluster's view is refreshed every second
        while (status := cluster.status())["cluster"].get("completed") != 8 and time.monotonic() < deadline:
            time.sleep(0.3)
    finally:
        cluster.stop()
    people = _rows("SELECT participant_id, status, condition FROM participants", **where)
    assert sorted(p[0] for p in people) == sorted(clients) and {p[1] for p in people} == {"completed"}
    conditions = [p[2] for p in people]
    assert conditions.count("calm") == conditions.count("busy") == 4  # exact, though two workers assigned them
    steps = _rows("SELECT e.participant_id, s.agent, count(*), count(DISTINCT s.step), min(s.step), max(s.step) "
                  "FROM steps s JOIN episodes e ON e.episode_id = s.episode_id "
                  "GROUP BY e.participant_id, s.agent", **where)
    assert len(steps) == 16 and all(row[2:] == (60, 60, 1, 60) for row in steps), steps
    live = status["cluster"]["workers"]
    assert sorted(w["worker"] for w in live) == ["w1", "w2"], status["cluster"]
    assert status["cluster"]["conditions"] == {"calm": 4, "busy": 4} and status["cluster"]["completed"] == 8


def test_a_worker_killed_during_a_game_loses_nobody(tmp_path):
    data = tmp_path / "study.sqlite"
    cluster = Cluster(tmp_path, 2, "--data", str(data), steps=900)  # a 30 s game
    try:
        client = cluster.client("K1", tmp_path / "K1.log")
        deadline = time.monotonic() + 60
        while True:  # until K1 plays (steps committed) on some worker
            assert time.monotonic() < deadline, (tmp_path / "K1.log").read_text()
            held = {w: p for w, p in cluster.status()["cluster"]["participants_by_worker"].items() if "K1" in p}
            if held and _rows("SELECT count(DISTINCT step) FROM steps", data=data)[0][0] >= 30:
                break
            time.sleep(0.3)
        owner = next(iter(held))
        os.kill(cluster.workers()[owner], signal.SIGKILL)
        _finish({"K1": client}, tmp_path)
    finally:
        cluster.stop()
    assert _rows("SELECT status FROM participants", data=data) == [("completed",)]
    visits = _rows("SELECT scene, outcome FROM visits ORDER BY position", data=data)
    assert visits == [("consent", "agreed"), ("before", "continued"), ("match", "server_lost"), ("end", "closed")]
    kept = _rows("SELECT count(DISTINCT step), max(step) FROM steps", data=data)[0]
    assert kept[0] >= 30 and kept[0] == kept[1]  # what was committed before the kill is all there, no gaps
    lost = _rows("SELECT data FROM events WHERE kind = 'scene_outcome'", data=data)
    assert json.loads(lost[0][0])["outcome"] == "server_lost"


def test_without_redis_for_five_seconds_games_go_on_and_newcomers_wait(tmp_path, redis_server):
    data = tmp_path / "study.sqlite"
    cluster = Cluster(tmp_path, 2, "--data", str(data), "--redis", redis_server.url, steps=450)  # a 15 s game
    try:
        first = cluster.client("R1", tmp_path / "R1.log")
        deadline = time.monotonic() + 60
        while _rows("SELECT count(*) FROM steps", data=data)[0][0] < 30:
            assert time.monotonic() < deadline, (tmp_path / "R1.log").read_text()
            time.sleep(0.2)
        redis_server.kill()
        later = cluster.client("R2", tmp_path / "R2.log")  # arrives while Redis is away
        time.sleep(5)
        assert later.poll() is None  # waiting, not failed
        redis_server.start()
        _finish({"R1": first, "R2": later}, tmp_path)
    finally:
        cluster.stop()
    assert sorted(_rows("SELECT participant_id, status FROM participants", data=data)) == [
        ("R1", "completed"), ("R2", "completed")]
    assert _rows("SELECT outcome FROM visits WHERE scene = 'match' ORDER BY participant_id", data=data) == [
        ("played",), ("played",)]  # R1's game went on through the outage


async def _participant(url: str, pid: str, timeout: float = 180) -> dict | None:
    """A light scripted participant (the one client protocol object, no window): agrees, waits
    for a partner, plays without keys, follows ``move`` to another worker, returns the end."""
    import websockets
    from websockets.asyncio.client import connect

    from igym import wire
    from igym.client_protocol import ClientProtocol

    protocol = ClientProtocol(pid, url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, reason = None, ""
        try:
            async with connect(protocol.url, compression=None, ping_interval=None, max_size=2**22) as ws:
                await ws.send(wire.pack(protocol.hello()))
                try:
                    async for data in ws:
                        message = protocol.receive(wire.unpack(data))
                        for reply in protocol.take_outbox():
                            await ws.send(wire.pack(reply))
                        if message is None:
                            continue
                        if message["t"] == "page":
                            kind = message["page"].get("kind")
                            outcome = {"consent": "agreed", "end": "closed"}.get(kind, "continued")
                            await ws.send(wire.pack({"t": "page", "v": message["v"], "o": outcome}))
                        elif message["t"] == "end":
                            return message
                except websockets.ConnectionClosed:
                    pass
                code, reason = ws.close_code, ws.close_reason or ""
        except OSError:
            pass
        protocol.closed(code, reason)
        delay = protocol.retry_delay()
        if delay is None:
            return None
        await asyncio.sleep(delay)
    return None


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_twenty_pairs_arriving_at_three_workers_form_twenty_rooms_nobody_seated_twice(tmp_path, database, request):
    if database == "postgres":
        url = request.getfixturevalue("pg_url")
        target, where = ["--database", url], {"url": url}
    else:
        data = tmp_path / "pairs.sqlite"
        target, where = ["--data", str(data)], {"data": data}
    cluster = Cluster(tmp_path, 3, *target, experiment=PAIRS)
    try:
        async def everyone():
            return await asyncio.gather(*(_participant(cluster.url, f"D{i:02d}") for i in range(40)))

        ends = asyncio.run(everyone())
    finally:
        cluster.stop()
    assert [e and e["outcome"] for e in ends] == ["played"] * 40, ends
    duels = _rows("SELECT participant_id, outcome FROM visits WHERE scene = 'duel'", **where)
    assert sorted(d[0] for d in duels) == [f"D{i:02d}" for i in range(40)] and {d[1] for d in duels} == {"played"}
    rooms = _rows("SELECT episode_id, count(DISTINCT agent), count(DISTINCT step) FROM steps GROUP BY episode_id",
                  **where)
    assert len(rooms) == 20 and all(r[1:] == (2, 60) for r in rooms), rooms
    left = [json.loads(d[0]) for d in _rows("SELECT data FROM events WHERE kind = 'lobby_left'", **where)]
    assert len(left) == 40 and {x["reason"] for x in left} == {"matched"}
    handed = _rows("SELECT count(DISTINCT participant_id) FROM events WHERE kind = 'resumed'", **where)[0][0]
    print(f"20 pairs on 3 workers: {handed} participants were handed over to their room's worker")


def test_lockstep_pairs_meet_across_workers(tmp_path):
    """Lockstep rooms the same: the desktop clients run the game from their copy of the
    experiment file; the room's worker relays their inputs, wherever they first arrived."""
    data = tmp_path / "lockstep.sqlite"
    cluster = Cluster(tmp_path, 2, "--data", str(data), experiment=PAIRS, env={"CLUSTER_NET": "lockstep"})
    try:
        clients = {pid: subprocess.Popen([sys.executable, "-m", "igym.play", str(PAIRS), "--connect", cluster.url,
                                          "--headless", "--autopilot", "--participant", pid], cwd=ROOT,
                                         env=cluster.env, stdout=open(tmp_path / f"{pid}.log", "w"),
                                         stderr=subprocess.STDOUT) for pid in ("L1", "L2", "L3", "L4")}
        _finish(clients, tmp_path)
    finally:
        cluster.stop()
    assert _rows("SELECT outcome, count(*) FROM visits WHERE scene = 'duel' GROUP BY outcome", data=data) == [
        ("played", 4)]
    rooms = _rows("SELECT episode_id, count(DISTINCT agent), count(DISTINCT step) FROM steps GROUP BY episode_id",
                  data=data)
    assert len(rooms) == 2 and all(r[1:] == (2, 60) for r in rooms), rooms


def test_the_dashboard_of_one_worker_shows_the_whole_study(tmp_path):
    """Each worker publishes its dashboard snapshot; the one the experimenter opens (at a
    worker's own port, where its login lives) merges them: participants and rooms of both."""
    data = tmp_path / "study.sqlite"
    cluster = Cluster(tmp_path, 2, "--data", str(data), steps=900)
    try:
        one, two = (f"ws://127.0.0.1:{cluster.port + i}" for i in (1, 2))  # each worker's own address
        clients = [subprocess.Popen([sys.executable, "-m", "igym.play", "--connect", url, "--headless", "--autopilot",
                                     "--participant", pid], cwd=ROOT, env=cluster.env,
                                    stdout=open(tmp_path / f"{pid}.log", "w"), stderr=subprocess.STDOUT)
                   for pid, url in (("V1", one), ("V2", two))]
        request = urllib.request.Request(f"http://127.0.0.1:{cluster.port + 1}/login",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            cookie = reply.headers["Set-Cookie"].split(";")[0]
        deadline = time.monotonic() + 60
        while True:
            with urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{cluster.port + 1}/dashboard/snapshot", headers={"Cookie": cookie}),
                    timeout=10) as reply:
                view = json.loads(reply.read())
            rooms = {m["participant"] for room in view["rooms"] for m in room["members"]}
            if rooms == {"V1", "V2"}:
                break
            assert time.monotonic() < deadline, view
            asyncio.run(asyncio.sleep(0.5))
        assert view["worker"]["id"] == "all" and len(view["worker"]["workers"]) == 2
        assert {"V1", "V2"} <= set(view["participants"]) and view["counts"]["rooms"] == 2
    finally:
        for client in clients:
            client.kill()
        cluster.stop()
