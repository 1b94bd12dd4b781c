"""An episode left open by a server that went away ends with what its stored steps say.

The same records through the SQLite sink and a real PostgreSQL server: an open episode with
stored steps is ended ``server_lost`` by ``end_open_episodes`` with its true step count, each
agent's return and the time of its last stored step — not ``steps = 0`` and no end — and an
episode that had no step yet ends where it started.
"""

from __future__ import annotations

import json

import pytest

from igym.records import EpisodeRecord, ParticipantRecord, StepRecord, VisitRecord
from igym.sinks import open_sink
from tests.study_cluster import rows


def _records() -> list:
    visit = VisitRecord("v1", "p1", 0, "game", "game", 100.0)
    started = EpisodeRecord("e1", "p1", "game", 0, 7, 100.5, 5_000_000_000, {"left": "human", "right": "policy"},
                            visit_id="v1")
    empty = EpisodeRecord("e2", "p1", "game", 1, 8, 200.0, 9_000_000_000, {"left": "human", "right": "policy"},
                          visit_id="v1")
    steps = [StepRecord("e1", n, 5_000_000_000 + (n + 1) * 33_000_000, ("left", "right"), {"left": 0, "right": 1},
                        ["human", "policy"], {"left": 1.0 if n == 10 else 0.0, "right": -0.5},
                        {"left": False, "right": False}, {"left": False, "right": False}, ["", ""], [None, None])
             for n in range(180)]
    return [ParticipantRecord("p1", "exp", 99.0), visit, started, *steps, empty]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_a_lost_episode_ends_with_its_true_counts(tmp_path, database, request):
    if database == "postgres":
        target = where = request.getfixturevalue("pg_url")
        read = {"url": where}
    else:
        target = str(tmp_path / "lost.sqlite")
        read = {"data": tmp_path / "lost.sqlite"}
    sink = open_sink(target)
    try:
        sink.store_batch("b1", "p1", _records())
        ended = sink.end_open_episodes("v1", "server_lost")
        again = sink.end_open_episodes("v1", "server_lost")
    finally:
        sink.close()
    assert (ended, again) == (2, 0)
    got = {r[0]: r[1:] for r in rows("SELECT episode_id, outcome, steps, ended_ns, ended_at, returns FROM episodes",
                                     **read)}
    outcome, steps, ended_ns, ended_at, returns = got["e1"]
    assert (outcome, steps, ended_ns) == ("server_lost", 180, 5_000_000_000 + 180 * 33_000_000)
    assert ended_at == pytest.approx(100.5 + 180 * 0.033)
    assert json.loads(returns) == {"left": 1.0, "right": -90.0}
    assert got["e2"][:3] == ("server_lost", 0, 9_000_000_000) and got["e2"][3] == pytest.approx(200.0)
