"""Uploads from solo web pages (``--collect``): batches stored once, acked after commit, owned."""

import asyncio
import dataclasses
import json
import sqlite3

import websockets
from websockets.asyncio.client import connect

from igym import wire
from igym.sqlite_sink import SqliteSink
from igym.loader import load_experiment
from igym.records import StepRecord, to_wire
from igym.server.app import IgymServer, serve_forever
from tests.serving import stop
from igym.session import Session
from tests.serving import EXPERIMENT

SLIME = "examples/slime_volleyball/human_ai.py"


def native_records(pid):
    """A seeded solo episode run natively: what the web page would upload."""
    game = load_experiment(SLIME).scenes[0]
    game = dataclasses.replace(game, max_steps=120, episodes=1, seeds=11)
    session = Session(game, pid)
    now = 0.0
    while not session.finished:
        session.tick(now)
        now += 1 / 60
    return session.take_records()


async def upload(url, pid, batches, token=None):
    async with connect(url, compression=None, ping_interval=None, max_size=2**22) as ws:
        hello = {"t": "hello", "v": wire.PROTOCOL_VERSION, "pid": pid, "mode": "upload"}
        if token:
            hello["token"] = token
        await ws.send(wire.pack(hello))
        welcome = wire.unpack(await ws.recv())
        acked = []
        for batch_id, records in batches:
            await ws.send(wire.pack({"t": "records", "b": batch_id, "r": [to_wire(r) for r in records]}))
            while True:
                message = wire.unpack(await ws.recv())
                if message["t"] == "stored":
                    acked.append(message["b"])
                    break
        return welcome["token"], acked


def run(tmp_path, collect, scenario):
    async def main():
        sink = SqliteSink(tmp_path / "collect.sqlite")
        server = IgymServer(load_experiment(EXPERIMENT), sink, "t", collect=collect)
        ready = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve_forever(server, "127.0.0.1", 0, ready))
        port = (await ready).sockets[0].getsockname()[1]
        try:
            return await scenario(f"ws://127.0.0.1:{port}")
        finally:
            await stop(server, task)
    return asyncio.run(main())


def test_batches_are_stored_once_and_equal_the_native_run(tmp_path):
    records = native_records("web1")
    first, second = records[: len(records) // 2], records[len(records) // 2:]

    async def scenario(url):
        token, acked = await upload(url, "web1", [("b1", first)])
        _, acked_again = await upload(url, "web1", [("b1", first), ("b2", second)], token)  # a reload resends b1
        return acked + acked_again

    assert run(tmp_path, True, scenario) == ["b1", "b1", "b2"]
    db = sqlite3.connect(tmp_path / "collect.sqlite")
    stored = db.execute("SELECT step, agent, action, source, reward FROM steps ORDER BY step, agent").fetchall()
    native = sorted((record.step, agent, json.dumps(action), source, reward)
                    for record in records if isinstance(record, StepRecord)
                    for agent, action, source, reward, *_ in record.rows())
    assert stored == native and len(stored) == 240
    assert db.execute("SELECT count(*) FROM uploads").fetchone() == (2,)
    assert db.execute("SELECT outcome FROM episodes").fetchone() == ("truncated",)


def test_uploads_are_refused_without_collect_and_for_someone_else(tmp_path):
    records = native_records("web2")

    async def scenario(url):
        try:
            await upload(url, "web2", [("x", records)])
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.reason

    assert "--collect" in run(tmp_path, False, scenario)

    async def foreign(url):
        try:
            await upload(url, "intruder", [("y", records)])
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.reason

    assert "another participant" in run(tmp_path, True, foreign)
    db = sqlite3.connect(tmp_path / "collect.sqlite")
    assert db.execute("SELECT count(*) FROM steps").fetchone() == (0,)


def test_a_whole_study_uploads_participants_visits_and_answers_and_owns_them(tmp_path):
    """A web page runs the study itself (StudyRun + Session) and uploads everything; another
    participant cannot overwrite its visits or episodes by reusing their ids."""
    import dataclasses as dc
    from igym.records import EpisodeRecord, VisitRecord
    from igym.study import StudyRun
    experiment = load_experiment("tests/experiments/flow_study.py")
    run_ = StudyRun(experiment, "web3", condition="slow")
    records = []
    while (visit := run_.next_visit()) is not None:
        if visit.kind == "game":
            session = Session(visit.scene, "web3", visit_id=visit.visit_id, hook_state=run_.state)
            t = 0.0
            while not session.finished:
                session.tick(t)
                t += 1 / 30
            records += session.take_records()
            run_.finish_visit("played")
        elif visit.kind == "survey":
            import random
            run_.finish_visit("continued", visit.scene.random_answers(random.Random(1)))
        else:
            run_.finish_visit("agreed" if visit.kind == "consent" else "continued")
        records += run_.take_records()
    stolen_visit = next(r for r in records if isinstance(r, VisitRecord))
    stolen_episode = next(r for r in records if isinstance(r, EpisodeRecord))

    async def scenario(url):
        _, acked = await upload(url, "web3", [("s1", records)])
        reasons = []
        for thief, forged in (("thief1", dc.replace(stolen_visit, participant_id="thief1")),
                              ("thief2", dc.replace(stolen_episode, participant_id="thief2"))):
            try:
                await upload(url, thief, [("t-" + thief, [forged])])
            except websockets.ConnectionClosed as closed:
                reasons.append(closed.rcvd.reason)
        return acked, reasons

    acked, reasons = run(tmp_path, True, scenario)
    assert acked == ["s1"]
    assert "visit of another participant" in reasons[0] and "episode that is not yours" in reasons[1]
    db = sqlite3.connect(tmp_path / "collect.sqlite")
    assert db.execute("SELECT status, condition FROM participants WHERE participant_id='web3'").fetchone() == (
        "completed", "slow")
    assert db.execute("SELECT count(*) FROM visits WHERE participant_id='web3'").fetchone() == (len(run_.plan),)
    assert db.execute("SELECT count(*) FROM visits WHERE participant_id LIKE 'thief%'").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM answers").fetchone()[0] == 2 + 2 + 1  # mood twice (2 questions), final
    # what each page asked came with its visit: mood's scale and options, final's options, in their order
    asked = db.execute("SELECT scene, position, question, points, options FROM questions WHERE participant_id="
                       "'web3' ORDER BY scene, visit_id, position").fetchall()
    assert asked == [("final", 0, "side", None, '["left","right"]')] + [
        ("mood", 0, "mood", 5, None), ("mood", 1, "colours", None, '["red","blue","green"]')] * 2
    assert db.execute("SELECT count(DISTINCT participant_id) FROM episodes").fetchone() == (1,)
