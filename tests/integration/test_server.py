"""The igym server for real: websockets on 127.0.0.1, real clients, a real SQLite file."""

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import msgpack
import pytest
import websockets
from websockets.asyncio.client import connect

from igym import wire
from igym.sqlite_sink import SqliteSink
from igym.loader import load_experiment
from igym.server.app import IgymServer, serve_forever
from tests.serving import RawClient, load, start, stop

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "tests" / "experiments" / "net_slime.py"


def steps_by_agent(path):
    db = sqlite3.connect(path)
    return {a: [s for (s,) in db.execute("SELECT step FROM steps WHERE agent=? ORDER BY step", (a,))]
            for a in ("agent_left", "agent_right")}


def outcomes(path):
    db = sqlite3.connect(path)
    return {p: json.loads(d)["outcome"] for p, d in
            db.execute("SELECT participant_id, data FROM events WHERE kind='scene_outcome'")}


def test_two_desktop_clients_finish_and_every_step_is_stored(tmp_path, monkeypatch):
    experiment = load(monkeypatch, steps=90)
    path = tmp_path / "hh.sqlite"

    async def main():
        server, task, url, port = await start(experiment, path)
        # Two real desktop clients, each its own process (one pygame window per process).
        clients = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "igym.play", "--connect", url, "--headless", "--autopilot", "--participant", pid,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for pid in ("A", "B")]
        try:
            outputs = await asyncio.wait_for(asyncio.gather(*(c.communicate() for c in clients)), 60)
        except TimeoutError:
            for client in clients:
                client.kill()
            raise AssertionError(f"clients did not finish; server status: {server.status()}") from None
        states = [(c.returncode, out.decode()) for c, (out, _err) in zip(clients, outputs)]
        fetch = lambda token: urllib.request.urlopen(f"http://127.0.0.1:{port}/status?token={token}", timeout=5)  # noqa: E731
        status = json.loads((await asyncio.to_thread(fetch, "secret")).read())  # the loop must keep serving
        with pytest.raises(urllib.error.HTTPError):
            await asyncio.to_thread(fetch, "wrong")
        await stop(server, task)
        return states, status

    states, status = asyncio.run(main())
    assert all(code == 0 and "outcome: played" in text for code, text in states), states
    assert steps_by_agent(path) == {"agent_left": list(range(1, 91)), "agent_right": list(range(1, 91))}
    sources = dict(sqlite3.connect(path).execute("SELECT agent, group_concat(DISTINCT source) FROM steps "
                                                 "GROUP BY agent"))
    assert all("human" in s for s in sources.values())  # both people's keys reached their own seats
    assert outcomes(path) == {"A": "played", "B": "played"}
    assert status["participants"]["finished"] == 2 and status["tick_lateness"]["samples"] >= 90
    assert status["bytes_sent"] / status["frames_sent"] < 400


def test_lobby_timeout_fills_the_seat_with_ai(tmp_path, monkeypatch):
    experiment = load(monkeypatch, fill="random", lobby_s=1, steps=30)
    path = tmp_path / "fill.sqlite"

    async def main():
        server, task, url, _ = await start(experiment, path)
        client = await RawClient(url, "alone").open()
        await client.wait_for("lobby")
        end = await client.wait_for("end", timeout=20)
        await stop(server, task)
        return client, end

    client, end = asyncio.run(main())
    assert end["outcome"] == "played"
    assert client.seen("lobby")[0]["waiting"] == 1
    seats = json.loads(sqlite3.connect(path).execute("SELECT seats FROM episodes").fetchone()[0])
    assert seats["agent_left"]["participant"] == "alone" and seats["agent_right"]["kind"] == "random"
    assert steps_by_agent(path)["agent_right"] == list(range(1, 31))


def test_lobby_timeout_without_fill_ends_with_timed_out(tmp_path, monkeypatch):
    experiment = load(monkeypatch, lobby_s=0.5)
    path = tmp_path / "timeout.sqlite"

    async def main():
        server, task, url, _ = await start(experiment, path)
        client = await RawClient(url, "lonely").open()
        end = await client.wait_for("end", timeout=10)
        await stop(server, task)
        return end

    assert asyncio.run(main())["outcome"] == "timed_out"
    assert outcomes(path) == {"lonely": "timed_out"}


@pytest.mark.parametrize("limit_ms, outcome", [(0.001, "high_latency"), (500, "timed_out")])
def test_max_rtt_gate_before_the_lobby(tmp_path, monkeypatch, limit_ms, outcome):
    experiment = load(monkeypatch, max_rtt=limit_ms, lobby_s=0.3)
    path = tmp_path / "rtt.sqlite"

    async def main():
        server, task, url, _ = await start(experiment, path)
        client = RawClient(url, "far")
        await client.open()

        async def answer_pings():
            answered = 0
            while True:
                pings = client.seen("ping")
                for ping in pings[answered:]:
                    await client.connection.send(wire.pack({"t": "pong", "n": ping["n"]}))
                answered = len(pings)
                await asyncio.sleep(0.01)
        responder = asyncio.create_task(answer_pings())
        end = await client.wait_for("end", timeout=10)
        responder.cancel()
        await stop(server, task)
        return end

    assert asyncio.run(main())["outcome"] == outcome
    gate = sqlite3.connect(path).execute("SELECT data FROM events WHERE kind='rtt_gate'").fetchone()
    assert json.loads(gate[0])["median_ms"] > 0


def test_disconnect_pause_reconnect_finish_without_losing_or_repeating_a_step(tmp_path, monkeypatch):
    experiment = load(monkeypatch, steps=90, grace_s=5)
    path = tmp_path / "reconnect.sqlite"

    async def main():
        server, task, url, _ = await start(experiment, path)
        a, b = await RawClient(url, "A").open(), await RawClient(url, "B").open()
        await a.wait_for("frame", count=20)
        await a.connection.close()  # A's network drops mid-episode
        await b.wait_for("status")
        assert b.seen("status")[-1]["text"] == "partner reconnecting"
        frames_while_gone = len(b.seen("frame"))
        await asyncio.sleep(0.5)
        assert len(b.seen("frame")) <= frames_while_gone + 1  # the game is paused
        again = await RawClient(url, "A", token=a.token).open()
        await again.wait_for("scene")
        first = await again.wait_for("frame")
        assert first["base"] == -1  # a returning client gets a whole frame
        ends = [await c.wait_for("end", timeout=30) for c in (again, b)]
        await stop(server, task)
        return ends

    ends = asyncio.run(main())
    assert [e["outcome"] for e in ends] == ["played", "played"]
    assert steps_by_agent(path) == {"agent_left": list(range(1, 91)), "agent_right": list(range(1, 91))}
    kinds = [k for (k,) in sqlite3.connect(path).execute("SELECT kind FROM events ORDER BY event_id")]
    assert kinds.index("pause") < kinds.index("reconnect") < kinds.index("resume")


def test_gone_beyond_the_grace_window_ends_with_outcomes_for_both(tmp_path, monkeypatch):
    experiment = load(monkeypatch, steps=300, grace_s=0.5)
    path = tmp_path / "gone.sqlite"

    async def main():
        server, task, url, _ = await start(experiment, path)
        a, b = await RawClient(url, "A").open(), await RawClient(url, "B").open()
        await b.wait_for("frame", count=10)
        await a.connection.close()
        end = await b.wait_for("end", timeout=10)
        await asyncio.sleep(0.2)
        await stop(server, task)
        return end

    assert asyncio.run(main())["outcome"] == "partner_left"
    assert outcomes(path) == {"A": "disconnected", "B": "partner_left"}
    assert sqlite3.connect(path).execute("SELECT outcome FROM episodes").fetchone() == ("partner_left",)


def test_dropout_ai_takes_over_the_seat(tmp_path, monkeypatch):
    experiment = load(monkeypatch, steps=120, grace_s=0.3, fill="random", dropout="ai")
    path = tmp_path / "takeover.sqlite"

    async def main():
        server, task, url, _ = await start(experiment, path)
        a, b = await RawClient(url, "A").open(), await RawClient(url, "B").open()
        await b.wait_for("frame", count=10)
        await a.connection.close()
        end = await b.wait_for("end", timeout=20)
        await stop(server, task)
        return end

    assert asyncio.run(main())["outcome"] == "played"
    db = sqlite3.connect(path)
    sources = [s for (s,) in db.execute("SELECT source FROM steps WHERE agent='agent_left' ORDER BY step")]
    assert sources[-1] == "policy" and len(sources) == 120
    assert outcomes(path)["A"] == "disconnected"


def _garbage(rng, seat):
    choice = rng.randrange(8)
    if choice == 0:
        return rng.randbytes(rng.randrange(1, 64))
    if choice == 1:
        return msgpack.packb({"t": "ack", "n": 1, "pad": "x" * wire.MAX_MESSAGE_BYTES})  # oversized
    if choice == 2:
        return msgpack.packb({"t": "key", "seat": "agent_right", "k": "up", "d": 1})  # not its seat
    if choice == 3:
        return msgpack.packb({"t": rng.choice(["key", "ack", "x", 5]), "n": "many"})
    if choice == 4:
        return msgpack.packb([1, 2, 3])
    if choice == 5:
        return msgpack.packb({"t": "key", "seat": seat, "k": "x" * 100, "d": 1})
    if choice == 6:
        return msgpack.packb({"t": "ack", "n": -5})
    return msgpack.packb({"t": "hello", "v": 1, "pid": "again"})


def test_fuzz_closes_only_the_rogue_while_another_room_plays(tmp_path, monkeypatch):
    experiment = load(monkeypatch, steps=150, fill="random", lobby_s=0.2)
    path = tmp_path / "fuzz.sqlite"
    rng = random.Random(7)

    async def main():
        server, task, url, port = await start(experiment, path)
        honest = await RawClient(url, "honest").open()
        await honest.wait_for("frame")  # a room with an AI partner is playing
        rogue = await RawClient(url, "rogue").open()
        await rogue.wait_for("frame")
        sent = closes = 0
        connection = rogue.connection
        token = rogue.token
        while sent < 10_000:
            if rng.random() < 0.3:
                await connection.send(wire.pack({"t": "ack", "n": 0}))  # valid traffic in between
            garbage = _garbage(rng, "agent_left")
            try:
                await connection.send(garbage)
            except (websockets.ConnectionClosed, AttributeError, OSError):
                pass  # AttributeError: websockets' client can trip over a transport the server aborted
            sent += 1
            await asyncio.wait_for(connection.wait_closed(), 5)  # every bad message closes the connection
            closes += 1
            connection = await connect(url, compression=None, ping_interval=None, max_size=2**22)
            await connection.send(wire.pack({"t": "hello", "v": 1, "pid": "rogue", "token": token}))
        end = await honest.wait_for("end", timeout=60)
        rejected = server.stats.rejected
        await stop(server, task)
        return end, closes, rejected

    end, closes, rejected = asyncio.run(main())
    assert end["outcome"] == "played"
    assert closes == 10_000 and rejected == closes
    db = sqlite3.connect(path)
    (episode,) = db.execute("SELECT episode_id FROM episodes WHERE seats LIKE '%\"honest\"%'").fetchone()
    honest_steps = [s for (s,) in db.execute("SELECT step FROM steps WHERE episode_id=? AND agent='agent_left' "
                                             "ORDER BY step", (episode,))]
    assert honest_steps == list(range(1, 151))  # the honest room played every step while the rogue raged


def _free_port():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sigkill_server_keeps_what_it_committed(tmp_path):
    path = tmp_path / "killed.sqlite"
    port = _free_port()
    env = {**os.environ, "NET_STEPS": "3000", "NET_FILL": "random", "NET_LOBBY_S": "0.2"}
    server = subprocess.Popen([sys.executable, "-m", "igym.server", str(EXPERIMENT), "--port", str(port),
                               "--data", str(path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)

    async def play_then_kill():
        assert "ws://" in server.stdout.readline()
        client = await RawClient(f"ws://127.0.0.1:{port}", "K").open()
        await client.wait_for("frame", count=5)
        started = time.monotonic()
        await asyncio.sleep(3.0)
        frames = len(client.seen("frame"))
        server.send_signal(signal.SIGKILL)
        return frames, time.monotonic() - started

    try:
        frames, played_s = asyncio.run(play_then_kill())
    finally:
        server.kill()
        server.wait(5)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored = db.execute("SELECT count(*) FROM steps WHERE agent='agent_left'").fetchone()[0]
    assert stored >= frames - 30 - 3  # at most the last second (30 steps at 30 Hz) is lost
    assert db.execute("SELECT participant_id FROM participants").fetchall() == [("K",)]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_stopped_server_closes_its_file_with_every_step(tmp_path, stop):
    """A service manager's stop (SIGTERM) or Ctrl+C loses nothing — even when the server was
    started as a background job, whose SIGINT the shell sets to ignored."""
    path = tmp_path / "stopped.sqlite"
    port = _free_port()
    env = {**os.environ, "NET_STEPS": "3000", "NET_FILL": "random", "NET_LOBBY_S": "0.2"}
    server = subprocess.Popen([sys.executable, "-m", "igym.server", str(EXPERIMENT), "--port", str(port),
                               "--data", str(path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))

    async def play_then_stop():
        assert "ws://" in server.stdout.readline()
        client = await RawClient(f"ws://127.0.0.1:{port}", "S").open()
        await client.wait_for("frame", count=40)
        server.send_signal(stop)
        await client.connection.wait_closed()
        return max(m["n"] for m in client.seen("frame"))

    try:
        newest = asyncio.run(play_then_stop())
        code = server.wait(10)
        output = server.stdout.read()
    finally:
        server.kill()
        server.wait(5)
    assert code == 0 and "stopped; data closed" in output
    db = sqlite3.connect(path)
    stored = db.execute("SELECT max(step) FROM steps WHERE agent='agent_left'").fetchone()[0]
    assert stored >= newest  # every step the client saw is in the file (the first frame is step 0)


def test_a_gymnasium_id_is_served_as_igym_play_plays_it(tmp_path):
    """``python -m igym.server CartPole-v1`` hosts the one-game experiment ``python -m igym.play
    CartPole-v1`` plays (its message used to advise a Gymnasium id it then refused)."""
    path = tmp_path / "cartpole.sqlite"
    port = _free_port()
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    server = subprocess.Popen([sys.executable, "-m", "igym.server", "CartPole-v1", "--port", str(port),
                               "--data", str(path)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        lines = iter(server.stdout.readline, "")
        assert any("ws://" in line for line in lines), server.stderr.read()[-2000:]
        client = subprocess.run([sys.executable, "-m", "igym.play", "--connect", f"ws://127.0.0.1:{port}",
                                 "--headless", "--autopilot", "--participant", "G"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    finally:
        server.kill()
        server.wait(5)
    assert client.returncode == 0 and "outcome: played" in client.stdout, (client.stdout, client.stderr[-2000:])
    db = sqlite3.connect(path)
    assert db.execute("SELECT participant_id, status FROM participants").fetchall() == [("G", "completed")]
    (scene, outcome, steps), = db.execute("SELECT scene, outcome, steps FROM episodes").fetchall()
    assert scene == "CartPole-v1" and outcome in ("terminated", "truncated") and steps > 0
    assert db.execute("SELECT count(*), group_concat(DISTINCT agent) FROM steps").fetchone() == (steps, "agent_0")


NET_STUDY = ROOT / "tests" / "experiments" / "net_study.py"


def test_a_whole_study_over_the_network_pages_answers_and_the_shared_game(tmp_path):
    """Pages are shown by each desktop client, answers checked and stored by the server, the
    game played in one room; every participant ends completed with a completion code."""
    path = tmp_path / "study.sqlite"

    async def main():
        server, task, url, _ = await start(load_experiment(NET_STUDY), path)
        clients = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "igym.play", "--connect", url, "--headless", "--autopilot", "--participant", pid,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for pid in ("A", "B")]
        try:
            outputs = await asyncio.wait_for(asyncio.gather(*(c.communicate() for c in clients)), 90)
        finally:
            for client in clients:
                if client.returncode is None:
                    client.kill()
            await stop(server, task)
        return [(c.returncode, out.decode(), err.decode()) for c, (out, err) in zip(clients, outputs)]

    results = asyncio.run(main())
    assert all(code == 0 and "outcome: played" in out for code, out, _ in results), results
    db = sqlite3.connect(path)
    people = dict(db.execute("SELECT participant_id, status || ':' || (completion_code IS NOT NULL) FROM participants"))
    assert people == {"A": "completed:1", "B": "completed:1"}
    for pid in ("A", "B"):
        visits = db.execute("SELECT scene, outcome FROM visits WHERE participant_id=? ORDER BY position",
                            (pid,)).fetchall()
        assert visits == [("consent", "agreed"), ("intro", "continued"), ("before", "continued"), ("match", "played"),
                          ("end", "closed")]
        answers = dict(db.execute("SELECT question, value FROM answers WHERE participant_id=?", (pid,)))
        assert set(answers) == {"ready", "hand"} and 1 <= json.loads(answers["ready"]) <= 5
        # each answer's times, as the client's page timed them (its autopilot answers in one go):
        # seconds within the page's visit as the server saw it (sent … answer received)
        times = db.execute("SELECT a.first_s, a.last_s, a.changes, v.ended_at - v.started_at FROM answers a "
                           "JOIN visits v USING (visit_id) WHERE a.participant_id=?", (pid,)).fetchall()
        assert all(0 < first <= last <= shown_s + 0.05 and changes == 0 for first, last, changes, shown_s in times), \
            times
    episode = db.execute("SELECT e.visit_id, v.participant_id, v.scene FROM episodes e JOIN visits v USING (visit_id)"
                         ).fetchall()
    assert len(episode) == 1 and episode[0][2] == "match"  # the room's episode belongs to its game visit
    assert steps_by_agent(path) == {"agent_left": list(range(1, 46)), "agent_right": list(range(1, 46))}


def test_page_answers_that_fail_the_survey_close_only_that_connection(tmp_path):
    path = tmp_path / "bad.sqlite"

    async def main():
        server, task, url, _ = await start(load_experiment(NET_STUDY), path)
        try:
            client = await RawClient(url, "R").open()
            consent = await client.wait_for("page")
            await client.connection.send(wire.pack({"t": "page", "v": consent["v"], "o": "agreed"}))
            intro = await client.wait_for("page", count=2)
            assert intro["image"][:8] == b"\x89PNG\r\n\x1a\n"  # the Info page's image travels with it
            await client.connection.send(wire.pack({"t": "page", "v": intro["v"], "o": "continued"}))
            survey = await client.wait_for("page", count=3)
            await client.connection.send(wire.pack({"t": "page", "v": survey["v"], "o": "continued",
                                                    "a": {"ready": 9, "hand": "left"}}))
            await asyncio.wait_for(client.reader, 10)
            return client.connection.close_code, client.connection.close_reason
        finally:
            await stop(server, task)

    code, reason = asyncio.run(main())
    assert code == wire.CLOSE_POLICY and "ready" in reason
    db = sqlite3.connect(path)
    assert db.execute("SELECT scene, outcome FROM visits ORDER BY position").fetchall()[:2] == [
        ("consent", "agreed"), ("intro", "continued")]


def test_a_lagging_client_gets_no_backlog_and_then_the_newest_frame(tmp_path, monkeypatch):
    """A client that stops reading: the server stops queueing frames for it once its send
    buffer passes the limit (memory stays bounded, the room plays on), and when it reads
    again it decodes the newest frame from what it last received."""
    import socket as socket_

    from igym import render
    from igym.server.rooms import LAG_BYTES
    experiment = load(monkeypatch, steps=1800)
    path = tmp_path / "lag.sqlite"

    async def main():
        server, task, url, _ = await start(experiment, path)
        try:
            # The slow client's socket gets a small receive buffer before it connects (shrinking
            # it later can stall TCP's window), so its lag shows within seconds.
            raw = socket_.socket()
            raw.setsockopt(socket_.SOL_SOCKET, socket_.SO_RCVBUF, 4096)
            raw.connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
            slow = RawClient(url, "slow")
            slow.connection = await connect(url, sock=raw, compression=None, ping_interval=None)
            await slow.connection.send(wire.pack({"t": "hello", "v": wire.PROTOCOL_VERSION, "pid": "slow"}))
            slow.reader = asyncio.create_task(slow._read())
            fast = await RawClient(url, "fast").open()
            await slow.wait_for("frame", count=5)
            member = server.participants["slow"].member
            room = server.participants["slow"].room
            server_side = server.participants["slow"].connection.transport
            server_side.get_extra_info("socket").setsockopt(socket_.SOL_SOCKET, socket_.SO_SNDBUF, 4096)
            slow.connection.transport.pause_reading()  # the client stops reading its socket
            deadline = time.monotonic() + 40
            while room.frame_number - member.sent < 30:  # frames are being skipped for it
                assert time.monotonic() < deadline, (room.frame_number, member.sent,
                                                     server_side.get_write_buffer_size())
                await asyncio.sleep(0.1)
            buffered = server_side.get_write_buffer_size()
            skipped_from = member.sent
            await asyncio.sleep(1.0)
            assert member.sent == skipped_from  # nothing more was queued for it …
            # … so the buffer grows by a ping or two (13 B each) at most, not by frames
            assert server_side.get_write_buffer_size() <= buffered + 64
            fast_frames = len(fast.seen("frame"))
            slow.connection.transport.resume_reading()
            # the other player's game went on, and the slow one catches up with the newest picture
            # (waited for, not timed: a busy machine only makes it take longer)
            await fast.until(lambda: len(fast.seen("frame")) > fast_frames + 30, timeout=30)
            await slow.until(lambda: slow.seen("frame")[-1]["n"] > skipped_from + 30, timeout=30)
            frames = slow.seen("frame")
            decoded = None
            for message in frames:  # every frame it got decodes against the one before
                decoded = render.decode(message["d"], decoded if message["base"] >= 0 else None)
            assert frames[-1]["n"] > skipped_from + 30  # it caught up with the newest picture
            numbers = [m["n"] for m in frames]
            assert len(numbers) < frames[-1]["n"] + 1  # and skipped frames rather than replaying them all
            return buffered
        finally:
            await stop(server, task)

    buffered = asyncio.run(main())
    assert buffered < LAG_BYTES + 4096


def test_a_participant_gone_from_a_page_too_long_has_left_the_study(tmp_path):
    path = tmp_path / "gone.sqlite"

    async def main():
        sink = SqliteSink(path)
        server = IgymServer(load_experiment(NET_STUDY), sink, "secret", page_abandon_s=0.5)
        ready = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve_forever(server, "127.0.0.1", 0, ready))
        url = f"ws://127.0.0.1:{(await ready).sockets[0].getsockname()[1]}"
        try:
            client = await RawClient(url, "G").open()
            await client.wait_for("page")
            await client.connection.close()  # the tab closes on the consent page
            deadline = time.monotonic() + 15
            while "G" in server.participants:  # held until the study ends for them, then forgotten
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        finally:
            await stop(server, task)

    asyncio.run(main())
    db = sqlite3.connect(path)
    assert db.execute("SELECT status FROM participants").fetchone() == ("aborted",)
    assert db.execute("SELECT scene, outcome FROM visits").fetchall() == [("consent", "aborted")]
    assert db.execute("SELECT count(*) FROM events WHERE kind='page_abandoned'").fetchone() == (1,)
