"""The server's storage thread: the event loop only queues records and awaits calls."""

import asyncio
import sqlite3
import threading
import time

from igym.records import EpisodeRecord, StepRecord
from igym.server.storage import Storage
from igym.sqlite_sink import SqliteSink


def step(episode, number):
    return StepRecord(episode, number, number, ("a",), {"a": 0}, ["human"], {"a": 0.0}, {"a": False},
                      {"a": False}, [""], [None])


def test_storage_commits_from_its_thread_within_a_second_and_at_once_after_an_end(tmp_path):
    path = tmp_path / "bg.sqlite"
    storage = Storage(SqliteSink(path), commit_every_s=0.2)

    def committed_steps():
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True).execute("SELECT count(*) FROM steps").fetchone()[0]

    episode = EpisodeRecord("e1", "P", "scene", 0, 1, time.time(), 0, {})
    storage.write([episode])
    for number in range(1, 301):
        storage.write([step("e1", number)])
    deadline = time.monotonic() + 30  # waited for, not timed: without the thread nothing is ever committed
    while committed_steps() < 300:  # committed by the thread, nobody called commit()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    ended = EpisodeRecord("e1", "P", "scene", 0, 1, episode.started_at, 0, {}, time.time(), 300, 300, {}, "terminated")
    storage.commit_every_s = 60.0  # from now on only an episode end wakes the thread early
    time.sleep(0.3)
    storage.write([ended])
    deadline = time.monotonic() + 20  # "at once": long before the 60 s timer would, however busy the machine
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    while db.execute("SELECT outcome FROM episodes").fetchone() != ("terminated",):
        assert time.monotonic() < deadline, "an episode end must be committed at once"
        time.sleep(0.02)
    storage.write([step("e2", 1)])
    storage.close()
    assert committed_steps() == 301


def test_calls_run_on_the_storage_thread_after_the_writes_queued_before_them(tmp_path):
    sink = SqliteSink(tmp_path / "calls.sqlite")
    storage = Storage(sink, commit_every_s=60.0)
    loop_thread = threading.get_ident()

    async def main():
        storage.write([EpisodeRecord("e1", "P", "scene", 0, 1, time.time(), 0, {})])
        owner = await storage.call(sink.episode_owner, "e1")  # sees the episode queued just before
        where = await storage.call(threading.get_ident)
        try:
            await storage.call(sink.episode_owner, None, "too many arguments")
        except TypeError:
            pass
        else:
            raise AssertionError("a failing call must raise in its caller")
        await storage.commit()  # the thread survived the failure
        return owner, where

    owner, where = asyncio.run(main())
    storage.close()
    assert owner == "P" and where != loop_thread
