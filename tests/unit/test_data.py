"""The study's SQLite file: one row per agent per step, episodes, events, commits."""

import json
import sqlite3

import pytest

from igym.controls import KeyMap
from igym.sqlite_sink import SCHEMA_VERSION, SqliteSink
from igym.experiment import Game
from igym.records import EventRecord, StepRecord, VisitRecord, from_wire, to_wire
from igym.session import Session
from tests.toy_envs import LineRace


def run_session(sink, max_steps=20, episodes=2):
    session = Session(Game(env=lambda: LineRace(goal=1000), seats={"a": "human", "b": "random"}, render=lambda env: (),
                           keys=KeyMap({"right": 1}), fps=10, seeds=5, max_steps=max_steps,
                           episodes=episodes, info_keys=["pos"]), "P1")
    now = 0.0
    while not session.finished:
        if round(now * 10) == 3:
            session.press("right", now)
        session.tick(now)
        sink.write(session.take_records())
        now += 0.05
    sink.commit()


def test_rows_per_agent_per_step_and_episodes(tmp_path):
    path = tmp_path / "study.sqlite"
    with SqliteSink(path) as sink:
        sink.add_participant("P1", "toy", {"note": "x"})
        run_session(sink)
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    assert db.execute("SELECT count(*) FROM steps").fetchone() == (2 * 2 * 20,)
    episodes = db.execute("SELECT episode_id, seed, steps, outcome, returns, seats FROM episodes "
                          "ORDER BY episode_index").fetchall()
    assert [(e[1], e[2], e[3]) for e in episodes] == [(5, 20, "truncated"), (6, 20, "truncated")]
    assert json.loads(episodes[0][5])["a"] == "human"
    for episode_id, *_ in episodes:
        for agent in ("a", "b"):
            rows = db.execute("SELECT step, t_ns FROM steps WHERE episode_id=? AND agent=? ORDER BY step",
                              (episode_id, agent)).fetchall()
            assert [r[0] for r in rows] == list(range(1, 21))
            assert all(b[1] > a[1] for a, b in zip(rows, rows[1:]))
    human = db.execute("SELECT action, source, keys, extra FROM steps WHERE agent='a' AND step=5 "
                       "AND episode_id=?", (episodes[0][0],)).fetchone()
    assert human[:3] == ("1", "human", "right") and "pos.a" in json.loads(human[3])
    kinds = {k for (k,) in db.execute("SELECT kind FROM events")}
    assert "key_down" in kinds
    assert db.execute("SELECT meta FROM participants").fetchone() == ('{"note":"x"}',)


def test_duplicate_steps_are_ignored(tmp_path):
    record = StepRecord("e1", 1, 10, ("a",), {"a": 0}, ["human"], {"a": 0.0}, {"a": False}, {"a": False}, [""],
                        [None])
    with SqliteSink(tmp_path / "d.sqlite") as sink:
        sink.write([record, record])
        sink.write([record])
    db = sqlite3.connect(tmp_path / "d.sqlite")
    assert db.execute("SELECT count(*) FROM steps").fetchone() == (1,)


def test_commits_within_a_second_without_close(tmp_path):
    path = tmp_path / "live.sqlite"
    sink = SqliteSink(path, commit_every_s=0.0)
    sink.write([EventRecord("P1", 1, "focus_lost")])
    other = sqlite3.connect(path)  # another reader sees it while the writer is still open
    assert other.execute("SELECT kind FROM events").fetchall() == [("focus_lost",)]
    sink.close()


def test_records_survive_the_wire_form():
    record = StepRecord("e1", 3, 10, ("a", "b"), {"a": 1, "b": [0, 1]}, ["human", "policy"], {"a": 1.0, "b": -1.0},
                        {"a": False, "b": True}, {"a": False, "b": False}, ["left+up", ""], [5, None], True, {"x": 1})
    again = from_wire(to_wire(record))
    assert again.rows() == record.rows() and again.extra == record.extra and again.t_ns == 10
    assert [row[5] for row in again.rows()] == [True, True]  # a max_steps cut is a truncation


def test_presses_and_question_definitions_travel_in_uploads_and_older_forms_still_load():
    """A web page's records carry the new fields (a step's presses, a visit's question
    definitions); records of pages built before them still load; a definition that is no
    question is refused, naming where."""
    from igym import wire
    from igym.questions import Likert, Slider, definition

    step = StepRecord("e1", 3, 10, ("a", "b"), {"a": 4, "b": 1}, ["human", "policy"], {"a": 0.0, "b": 0.0},
                      {"a": False, "b": False}, {"a": False, "b": False}, ["6+5", ""], [7, None], press=["5", None])
    questions = [definition(Likert("fun", "It was fun.")), definition(Slider("sure", "How sure?", min=0, max=10))]
    visit = VisitRecord("V", "P", 1, "s", "survey", 10.0, params=None, questions=questions)
    items = [to_wire(step), to_wire(visit)]
    assert wire.records_from_upload(items) == [step, visit]
    older = [items[0][:-1], items[1][:-2]]  # a step without presses; a visit without times or questions
    again = wire.records_from_upload(older)
    assert again[0].press is None and again[1].questions is None and again[1].timings is None
    bad = items[1][:-1] + [[{**questions[0], "points": 40}]]
    with pytest.raises(wire.ProtocolError, match=r"field 12\[0\].*points"):
        wire.records_from_upload([bad])
    with pytest.raises(wire.ProtocolError, match="differ in length"):
        wire.records_from_upload([items[0][:-1] + [["5"]]])
