"""UploadSink natively (igym.web's native WebSocket) against the real server with --collect."""

import asyncio
import dataclasses
import json
import sqlite3

import msgpack
import pytest

from igym import web
from igym.sqlite_sink import SqliteSink
from igym.loader import load_experiment
from igym.records import StepRecord
from igym.server.app import IgymServer, serve_forever
from tests.serving import stop
from igym.session import Session
from igym.study import StudyRun
from igym.upload import UploadSink, load_run, save_run

SLIME = "examples/slime_volleyball/human_ai.py"


def native_records(pid, steps=120):
    game = load_experiment(SLIME).scenes[0]
    game = dataclasses.replace(game, max_steps=steps, episodes=1, seeds=11)
    session = Session(game, pid)
    now = 0.0
    out = []
    while not session.finished:
        session.tick(now)
        out.append(session.take_records())
        now += 1 / 30
    return [r for chunk in out for r in chunk]


def step_keys(records):
    return sorted((r.step, agent, json.dumps(action), source, reward)
                  for r in records if isinstance(r, StepRecord)
                  for agent, action, source, reward, *_ in r.rows())


async def with_server(tmp_path, scenario):
    sink = SqliteSink(tmp_path / "collect.sqlite")
    server = IgymServer(load_experiment(SLIME), sink, "t", collect=True)
    ready = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_forever(server, "127.0.0.1", 0, ready))
    port = (await asyncio.wait_for(ready, 10)).sockets[0].getsockname()[1]
    try:
        return await asyncio.wait_for(scenario(f"ws://127.0.0.1:{port}", server), 60)
    finally:
        await stop(server, task)


def stored_steps(tmp_path):
    db = sqlite3.connect(tmp_path / "collect.sqlite")
    rows = db.execute("SELECT step, agent, action, source, reward FROM steps ORDER BY step, agent").fetchall()
    uploads = db.execute("SELECT count(*), sum(records) FROM uploads").fetchone()
    db.close()
    return rows, uploads


def test_small_codec_writes_what_msgpack_writes():
    values = [None, True, 0, 127, 128, 2**16, 2**40, -1, -33, -2**40, 0.5, 1.0, "", "x" * 40, "é" * 300,
              b"\x00" * 300, [1] * 20, {"t": "records", "b": "id", "r": [[1, "e", 3, 1_700_000_000_000_000_000]]}]
    for value in values:
        packed = web.small_packb(value)
        assert packed == msgpack.packb(value, use_bin_type=True)
        assert web.small_unpackb(packed) == value


def test_query_params_and_participant(monkeypatch):
    monkeypatch.setenv("IGYM_QUERY", "?PROLIFIC_PID=abc&STUDY_ID=s1&SESSION_ID=x&condition=fast&pid=zzz")
    assert web.participant_from_url() == "abc"
    assert web.study_facts() == {"study_id": "s1", "session_id": "x", "condition": "fast"}
    assert web.participant_from_url({"participant": "p1", "PROLIFIC_PID": "q"}) == "p1"
    assert web.participant_from_url({"participant": " ", "pid": "p9"}) == "p9"
    assert web.participant_from_url({"pid": "x" * 65}) is None
    assert web.participant_from_url({}) is None


def test_batches_are_acked_after_commit_and_equal_the_native_run(tmp_path):
    records = native_records("up1")
    storage = web.MemoryStorage()

    async def scenario(url, server):
        sink = UploadSink(url, "up1", "slime_human_ai", storage=storage, batch_s=0.05)
        for i in range(0, len(records), 7):
            sink.write(records[i:i + 7])
            await asyncio.sleep(0.005)
        assert await sink.aclose(20)
        return sink

    sink = asyncio.run(with_server(tmp_path, scenario))
    rows, (batches, count) = stored_steps(tmp_path)
    assert rows == step_keys(records) and len(rows) == 240
    assert batches == sink.acked and count == len(records) and batches >= 2
    assert storage.keys("igym:slime_human_ai:up1:b:") == []  # acked batches are forgotten


def test_a_dropped_connection_loses_and_duplicates_nothing(tmp_path):
    records = native_records("up2", steps=200)
    storage = web.MemoryStorage()

    async def scenario(url, server):
        sink = UploadSink(url, "up2", "slime_human_ai", storage=storage, batch_s=0.02)
        for i in range(0, len(records), 5):
            sink.write(records[i:i + 5])
            if i in (100, 250, 400):
                sink.flush()
                sink.disconnect()  # mid-way, with batches in flight
            await asyncio.sleep(0.004)
        assert await sink.aclose(30)
        return sink

    sink = asyncio.run(with_server(tmp_path, scenario))
    rows, (batches, count) = stored_steps(tmp_path)
    assert rows == step_keys(records)  # every step exactly once
    assert count == len(records)
    assert sink.connections >= 2


def test_a_reload_resends_what_local_storage_kept_and_resumes_the_run(tmp_path):
    """Page 1 cuts batches while the server is unreachable, then "reloads" (a new sink on
    the same storage): page 2 sends them all, once, and resumes the StudyRun."""
    records = native_records("up3")
    storage = web.MemoryStorage()
    experiment = load_experiment(SLIME)

    async def scenario(url, server):
        run = StudyRun(experiment, "up3")
        visit = run.next_visit()
        save_run(run, storage)
        page1 = UploadSink(url, "up3", "slime_human_ai", storage=storage, batch_s=0.01)
        page1.write(records[:50])
        assert await page1.drain(10)  # some batches got through
        page1.server_url = "ws://127.0.0.1:9/"  # the network goes away ...
        page1.disconnect()
        page1.write(records[50:])
        page1.flush()
        kept = len(storage.keys("igym:slime_human_ai:up3:b:"))
        page1._task.cancel()  # ... and the tab is closed
        await asyncio.sleep(0.05)

        page2 = UploadSink(url, "up3", "slime_human_ai", storage=storage)
        assert page2.resumed_batches == kept >= 1
        resumed = load_run(experiment, "up3", storage)
        again = resumed.next_visit()
        assert (again.visit_id, again.name) == (visit.visit_id, visit.name)
        assert page2.participant_status("up3") == "started"
        assert await page2.aclose(20)
        return kept

    assert asyncio.run(with_server(tmp_path, scenario)) >= 1
    rows, (_, count) = stored_steps(tmp_path)
    assert rows == step_keys(records) and count == len(records)
    assert storage.keys("igym:slime_human_ai:up3:b:") == []


def test_a_refused_participant_stops_retrying(tmp_path):
    storage = web.MemoryStorage()

    async def scenario(url, server):
        first = UploadSink(url, "up4", "slime_human_ai", storage=storage)
        first.write(native_records("up4", steps=5))
        assert await first.aclose(10)
        # Another browser (no token) claims the same participant id: the server refuses it.
        other = UploadSink(url, "up4", "slime_human_ai", storage=web.MemoryStorage())
        other.write(native_records("up4", steps=5)[:1])
        assert not await other.drain(5)
        await other.aclose(0.1)
        return other.refused

    assert "token" in asyncio.run(with_server(tmp_path, scenario))


@pytest.mark.parametrize("runtime", ["native"])
def test_runtime_is_native(runtime):
    assert web.RUNTIME == runtime and not web.IN_BROWSER and web.run_sync(asyncio.sleep(0, 3)) == 3
