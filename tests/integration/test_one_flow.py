"""The study flow exists once (:class:`igym.study.StudyRun`): the desktop app and the server
are thin drivers of it, and the same scripted participant leaves the same records through
either (the rules themselves: tests/unit/test_flow_rules.py). And a participant who already
took part is refused with its own close code, after which no client retries."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from igym import wire
from igym.client_protocol import ClientProtocol
from igym.study import END_TEXTS

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "tests" / "experiments" / "one_flow_study.py"
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}


def flow_rows(path: Path) -> dict:
    db = sqlite3.connect(path)
    try:
        return {
            "participant": db.execute("SELECT status, condition, completion_code IS NOT NULL "
                                      "FROM participants").fetchall(),
            "visits": db.execute("SELECT position, scene, kind, outcome FROM visits ORDER BY position").fetchall(),
            "questions": sorted(r[0] for r in db.execute("SELECT question FROM answers")),
            "asked": db.execute("SELECT scene, position, question, kind, definition FROM questions "
                                "ORDER BY scene, position").fetchall(),
            "episodes": db.execute("SELECT e.scene, e.ended_at IS NOT NULL, count(s.step) FROM episodes e "
                                   "JOIN steps s USING (episode_id) GROUP BY e.episode_id").fetchall(),
        }
    finally:
        db.close()


@pytest.mark.slow
def test_desktop_and_server_leave_the_same_flow_records(tmp_path):
    desktop = tmp_path / "desktop.sqlite"
    out = subprocess.run([sys.executable, "-m", "igym.play", str(STUDY), "--headless", "--autopilot",
                          "--participant", "P1", "--data", str(desktop)], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr

    from renderers.client import run_client
    from tests.serving import load, start, stop

    served = tmp_path / "served.sqlite"

    async def main():
        server, task, url, _ = await start(load(pytest.MonkeyPatch(), STUDY), served)
        try:
            state = await asyncio.wait_for(run_client(url, "P1", headless=True, autopilot_seed=3), 240)
        finally:
            await stop(server, task)
        return state

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    state = asyncio.run(main())
    assert state.end["outcome"] == "played" and state.end["text"] == END_TEXTS["played"] and state.end.get("code")

    here, there = flow_rows(desktop), flow_rows(served)
    assert here == there
    assert [v[1:] for v in here["visits"]] == [("consent", "consent", "agreed"), ("intro", "info", "continued"),
                                               ("before", "survey", "continued"), ("match", "game", "played"),
                                               ("end", "end", "closed")]
    assert here["participant"] == [("completed", None, 1)] and here["questions"] == ["hand", "ready"]
    # both recorded what the page asked, as declared (the server from the pages it sent)
    assert [(scene, question, kind) for scene, _, question, kind, _ in here["asked"]] == [
        ("before", "ready", "likert"), ("before", "hand", "choice")]
    assert here["episodes"] == [("match", 1, 90)]  # 45 steps, a row for each of the two agents


def test_a_participant_who_took_part_is_refused_with_its_own_code(tmp_path):
    from igym.records import ParticipantRecord
    from tests.serving import RawClient, load, start, stop

    async def main():
        server, task, url, _ = await start(load(pytest.MonkeyPatch(), STUDY), tmp_path / "d.sqlite")
        try:
            server.sink.write([ParticipantRecord("done", server.experiment.id, 1.0, None, "completed", "CODE", 2.0,
                                                 None, None)])
            server.sink.commit()
            client = await RawClient(url, "done").open()
            await client.reader  # until the server closes the connection
            return client.connection.close_code, client.connection.close_reason
        finally:
            await stop(server, task)

    code, reason = asyncio.run(main())
    protocol = ClientProtocol("done")
    closed = protocol.closed(code, reason)
    assert code == wire.CLOSE_TOOK_PART and "already took part" in reason
    assert closed.final and closed.took_part and protocol.retry_delay() is None
