"""The server's own work cannot fail silently or stall others: owned tasks, rooms that fail
alone, and no disk (or database) call on the event loop."""

import asyncio
import logging
import sqlite3
import threading
import time

from igym.server.tasks import Tasks
from igym.sqlite_sink import SqliteSink
from tests.serving import ROOT, RawClient, load, stop

LOBBY_GAMES = ROOT / "tests" / "experiments" / "lobby_games.py"


def test_a_failing_room_ends_alone_with_outcome_error_and_is_logged_once(tmp_path, monkeypatch, caplog):
    experiment = load(monkeypatch, LOBBY_GAMES, prefix="LOBBY", game="solo", steps=90, **{"break": "broken"})
    path = tmp_path / "fail.sqlite"
    from tests.serving import start

    async def main():
        server, task, url, _ = await start(experiment, path)
        clients = [await RawClient(url, pid).open() for pid in ("ok1", "broken", "ok2")]
        ends = {c.pid: await c.wait_for("end", timeout=30) for c in clients}
        tasks_left = len(server.tasks)
        await stop(server, task)
        return ends, tasks_left

    with caplog.at_level(logging.ERROR, logger="igym.server"):
        ends, tasks_left = asyncio.run(main())
    assert {pid: e["outcome"] for pid, e in ends.items()} == {"ok1": "played", "broken": "error", "ok2": "played"}
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1 and "broken" in failures[0].getMessage(), [r.getMessage() for r in failures]
    db = sqlite3.connect(path)
    steps = dict(db.execute("SELECT e.participant_id, count(*) FROM steps s JOIN episodes e USING (episode_id) "
                            "WHERE s.agent='agent_left' GROUP BY e.participant_id"))
    assert steps == {"ok1": 90, "ok2": 90, "broken": 9}  # the broken room kept what it played
    outcome = db.execute("SELECT outcome FROM episodes WHERE participant_id='broken'").fetchone()[0]
    assert outcome == "error"


def test_tasks_are_kept_logged_once_when_they_fail_and_cancelled_together(caplog):
    failures = []

    async def fails():
        await asyncio.sleep(0.01)
        raise ValueError("boom")

    async def main():
        tasks = Tasks()
        forever = tasks.spawn(asyncio.sleep(3600), "sleeper")
        tasks.spawn(fails(), "room 7: start", on_error=failures.append)
        await asyncio.sleep(0.1)
        alive = not forever.done() and len(tasks) == 1
        await tasks.cancel_all()
        return alive, forever.cancelled(), len(tasks)

    with caplog.at_level(logging.ERROR, logger="igym.server"):
        alive, cancelled, left = asyncio.run(main())
    assert alive and cancelled and left == 0
    assert [type(e).__name__ for e in failures] == ["ValueError"]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["room 7: start failed: ValueError: boom"]


class SlowDisk(SqliteSink):
    """A sink on a disk that takes 50 ms per commit, noting which thread used it."""

    def __init__(self, path):
        super().__init__(path)
        self.threads = set()

    def commit(self):
        self.threads.add(threading.get_ident())
        time.sleep(0.05)
        super().commit()

    def write(self, records):
        self.threads.add(threading.get_ident())
        super().write(records)

    def participant_status(self, participant_id):
        self.threads.add(threading.get_ident())
        return super().participant_status(participant_id)

    def condition_counts(self, experiment):
        self.threads.add(threading.get_ident())
        return super().condition_counts(experiment)


def eight_rooms(experiment, sink):
    """Eight solo games in one in-process server writing ``sink``: the event loop's thread,
    every game's end, and the server's tick lateness percentiles."""
    from igym.server.app import IgymServer, serve_forever

    async def main():
        server = IgymServer(experiment, sink, "t")
        ready = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve_forever(server, "127.0.0.1", 0, ready))
        url = f"ws://127.0.0.1:{(await ready).sockets[0].getsockname()[1]}"
        clients = [await RawClient(url, f"P{i}").open() for i in range(8)]
        ends = [await c.wait_for("end", timeout=60) for c in clients]
        lateness = server.stats.percentiles()
        await stop(server, task)
        return threading.get_ident(), ends, lateness

    return asyncio.run(main())


def test_a_slow_disk_never_stalls_a_tick(tmp_path, monkeypatch):
    """Eight rooms play while every commit takes 50 ms: no tick waits for one (were a commit on the
    event loop, some ticks would run up to 50 ms late), and no sink call ran on the event loop's
    thread. The ticks are compared with the same eight rooms on a fast disk in this test, so a
    busy machine slows both and fails neither."""
    experiment = load(monkeypatch, LOBBY_GAMES, prefix="LOBBY", game="solo", steps=150)
    _, fast_ends, fast = eight_rooms(experiment, SqliteSink(tmp_path / "fast.sqlite"))
    sink = SlowDisk(tmp_path / "slow.sqlite")
    loop_thread, ends, lateness = eight_rooms(experiment, sink)
    print(f"p99 tick lateness with 50 ms commits: {lateness['p99_ms']} ms (max {lateness['max_ms']} ms); "
          f"on a fast disk: {fast['p99_ms']} ms (max {fast['max_ms']} ms)")
    assert [e["outcome"] for e in ends + fast_ends] == ["played"] * 16
    assert loop_thread not in sink.threads and sink.threads
    assert lateness["p99_ms"] <= max(5 * fast["p99_ms"], fast["p99_ms"] + 20), (fast, lateness)
    db = sqlite3.connect(tmp_path / "slow.sqlite")
    assert db.execute("SELECT count(*) FROM steps").fetchone()[0] == 8 * 150 * 2
