"""The PostgreSQL sink and the data tools that read PostgreSQL, against a real PostgreSQL server.

The server is the test run's own (tests/pg_service.py): started on a free 127.0.0.1 port,
one new database per test.
"""

import asyncio
import json
import multiprocessing
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from igym.errors import DataError
from igym.loader import load_experiment
from igym.pg_sink import COPY_FROM_ROWS, PostgresSink
from igym.questions import Choice, Number, definition
from igym.records import EpisodeRecord, EventRecord, ParticipantRecord, StepRecord, VisitRecord
from igym.sink_rows import COLUMNS, SCHEMA_VERSION, TABLES
from igym.sinks import open_sink
from igym.sqlite_sink import SqliteSink
from tests.pg_writer import AGENTS, condition_of, participant_ids, work

ROOT = Path(__file__).resolve().parents[2]
NET_STUDY = ROOT / "tests" / "experiments" / "net_study.py"
WALL_CLOCK = 1e9  # every timestamp the records carry is below this; above it is the sink's own time.time()
# ... and every t_ns (at most 60 ms); above 1 s it is the sink's own time.monotonic_ns() — the machine's
# uptime, which on a machine started minutes ago is far below the 10**12 this once was (the test failed then).
MONOTONIC_NS = 10**9


# --- the same records, whatever the database ------------------------------------------------------------

def step(episode, n, agents=("left", "right"), **overrides):
    record = StepRecord(episode, n, n * 1_000_000, agents, {a: i + n for i, a in enumerate(agents)},
                        ["human", "policy"][:len(agents)], {a: 0.25 * n for a in agents},
                        {a: False for a in agents}, {a: False for a in agents}, ["left", ""][:len(agents)],
                        [n * 1_000_000 - 5, None][:len(agents)], extra={"ball": [n, 2.5]}, fingerprint=f"f{n}",
                        turn_ns=None, press=["left", None][:len(agents)])
    return record._replace(**overrides)


def study_records():
    """A small study's worth of every record kind, with the odd values sinks must store alike."""
    people = [ParticipantRecord("p1", "exp", 100.0, condition="a", meta={"lab": "x"}, flow={"seed": 3}),
              ParticipantRecord("p2", "exp", 101.0, condition="b"),
              ParticipantRecord("p3", "exp", 102.0, condition="a", status="declined")]
    visit = VisitRecord("v1", "p1", 0, "survey", "survey", 110.0, params={"n": 1},
                        questions=[definition(Number("age", "Your age?", min=18)),
                                   definition(Choice("hand", "Your hand?", options=["left", "right"], required=False))])
    done = VisitRecord("v1", "p1", 0, "survey", "survey", 110.0, 112.5, "continued", {"age": 30, "hand": None},
                       {"n": 1}, {"age": {"first_s": 1.25, "last_s": 2.0, "changes": 1}})
    game = VisitRecord("v2", "p1", 1, "game", "game", 113.0)
    episode = EpisodeRecord("e1", "p1", "game", 0, 7, 113.5, 5_000, {"left": "human", "right": "policy"},
                            visit_id="v2")
    steps = [step("e1", n) for n in range(1, 6)]
    steps.append(step("e1", 6, actions={"left": None, "right": [0.5, -1.0]}, rewards={"left": float("inf")},
                      terminated={"left": True}, turn_ns=123))
    ended = episode.copy()
    ended.ended_at, ended.ended_ns, ended.steps, ended.outcome = 120.0, 9_000, 6, "played"
    ended.returns, ended.timing = {"left": 1.5, "right": float("nan")}, {"p95_ms": 3.0}
    events = [EventRecord("p1", 6_000, "key", {"key": "left"}, "e1"), EventRecord("p1", 7_000, "focus", None),
              EventRecord("p2", 8_000, "odd", {"raw": b"\xff"})]  # bytes: not JSON, quarantined
    bad_step = step("e1", 7, rewards={"left": float("nan"), "right": 0.0})  # NaN reward: NULL, refused
    # a long run of steps (PostgreSQL copies it in bulk), with a repeat and one that cannot be stored
    many = [step("e2", n) for n in range(1, 61)]
    many[30] = many[30]._replace(t_ns=2**70)
    many.append(many[5])
    assert 2 * len(many) >= COPY_FROM_ROWS  # long enough for the bulk path
    return [*people, visit, done, game, episode, *steps, steps[0], *events, bad_step, *many, ended]


def drive(sink):
    """Every public call the server makes, in the order it makes them; returns what each answered."""
    answers = {}
    sink.write(study_records())
    sink.commit()
    sink.add_participant("p4", "exp", {"via": "web"})
    sink.add_participant("p1", "exp", {"ignored": True})  # already there: kept as it was
    answers["status"] = [sink.participant_status(p) for p in ("p1", "p3", "p4", "nobody")]
    answers["conditions"] = sink.condition_counts("exp")
    answers["batch_new"] = sink.store_batch("b1", "p4", [EventRecord("p4", 1, "uploaded", {"i": 1}),
                                                         step("e4", 1, agents=("solo",))])
    answers["batch_again"] = sink.store_batch("b1", "p4", [EventRecord("p4", 1, "uploaded", {"i": 1})])
    answers["batch_bad"] = sink.store_batch("b2", "p4", [EventRecord("p4", 2, "fine", None),
                                                         EventRecord("p4", 2**70, "huge", None)])
    sink.checkpoint("p1", "hash1", {"open_visit": {"visit_id": "v2"}, "position": 1})
    sink.checkpoint("p2", "hash2", None)
    answers["resume"] = sink.resume_point("p1")
    answers["parked"] = sink.park_everyone()
    sink.forget_resume_point("p2")
    answers["ended_open"] = sink.end_open_episodes("v2", "server_lost")
    answers["abandoned"] = sink.abandon_parked(time.time() + 1)
    answers["owners"] = [sink.episode_owner("e1"), sink.visit_owner("v1"), sink.episode_owner("none")]
    overview = sink.study_overview("exp")
    answers["overview"] = {k: v for k, v in overview.items() if k != "recent"}
    answers["recent"] = sorted((r["participant"], r["status"], r["scene"]) for r in overview["recent"])
    sink.close()
    return answers


def normal(value):
    if isinstance(value, float) and WALL_CLOCK < value < float("inf"):
        return "<now>"
    return "<now_ns>" if isinstance(value, int) and value > MONOTONIC_NS else value


def dump(db):
    """Every table's rows (DB-API connection of either database): ids left out, the sink's own clock
    readings as <now>, rows in a stable order."""
    tables = {}
    for table in TABLES:
        wanted = [c for c in COLUMNS[table] if c not in ("event_id", "quarantine_id")]
        order = "event_id" if table == "events" else "quarantine_id" if table == "quarantine" else "1"
        cursor = db.cursor()
        cursor.execute(f"SELECT {', '.join(wanted)} FROM {table} ORDER BY {order}")
        rows = [tuple(normal(v) for v in row) for row in cursor.fetchall()]
        tables[table] = rows if table in ("events", "quarantine") else sorted(rows, key=repr)
    return tables


def comparable(tables):
    """``dump``'s tables with each quarantine row's reason as "has one": why a record was refused is
    each driver's own sentence."""
    return {**tables, "quarantine": [row[:-1] + (bool(row[-1]),) for row in tables["quarantine"]]}


def open_reader(kind, target):
    return sqlite3.connect(target) if kind == "sqlite" else psycopg.connect(target)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, tmp_path):
    """(kind, where) of an empty data target: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "study.sqlite")
    return "postgres", request.getfixturevalue("pg_url")


def test_the_sink_contract(target):
    """Either sink, the same calls: what each call answers and what the tables hold follow from the records."""
    kind, where = target
    sink = open_sink(where)
    assert type(sink) is (SqliteSink if kind == "sqlite" else PostgresSink)
    answers = drive(sink)
    records = study_records()
    people = {r.participant_id: r for r in records if type(r) is ParticipantRecord}
    assert answers["status"] == [people["p1"].status, people["p3"].status, "started", None]
    assert answers["conditions"] == dict(Counter(p.condition for p in people.values() if p.status != "declined"))
    assert (answers["batch_new"], answers["batch_again"], answers["batch_bad"]) == (True, False, False)
    assert answers["resume"] == ("started", ("hash1", {"open_visit": {"visit_id": "v2"}, "position": 1}))
    assert answers["parked"] == 2 and answers["abandoned"] == ["p1"] and answers["ended_open"] == 0
    assert answers["owners"] == ["p1", "p1", None]
    assert answers["overview"]["statuses"] == {"aborted": 1, "started": 2, "declined": 1}

    db = open_reader(kind, where)
    tables = dump(db)
    good_steps = {(r.episode_id, r.step): r for r in records
                  if type(r) is StepRecord and (r.episode_id, r.step) not in (("e1", 7), ("e2", 31))}
    assert len(tables["steps"]) == sum(len(r.agents) for r in good_steps.values()) + 1  # + the upload's step
    stored_steps = {(e, s, a): (action, reward) for e, s, a, _t, action, _src, reward, *_ in tables["steps"]}
    last = good_steps[("e1", 6)]
    assert stored_steps[("e1", 6, "left")] == ("null", float("inf"))
    assert stored_steps[("e1", 6, "right")] == (json.dumps(last.actions["right"], separators=(",", ":")),
                                                last.rewards.get("right", 0.0))
    episode = [row for row in tables["episodes"] if row[0] == "e1"][0]
    assert json.loads(episode[10]) == {"left": 1.5, "right": None} and episode[11] == "played"
    answers_rows = {(v, q): (value, first, last_s, changes)
                    for v, _p, _s, q, value, first, last_s, changes in tables["answers"]}
    assert answers_rows == {("v1", "age"): ("30", 1.25, 2.0, 1), ("v1", "hand"): ("null", None, None, 0)}
    asked = [(v, position, q, kind, required, options, low, high) for v, _p, _s, position, q, kind, _t, required,
             _points, _labels, options, low, high, *_ in tables["questions"]]
    assert asked == [("v1", 0, "age", "number", 1, None, 18.0, None),
                     ("v1", 1, "hand", "choice", 0, '["left","right"]', None, None)]
    assert {row[-1] for row in tables["steps"] if row[2] == "left"} == {"left"}  # the press that made the action
    visit_v2 = [row for row in tables["visits"] if row[0] == "v2"][0]
    assert visit_v2[8] == "aborted" and visit_v2[6] == "<now>"  # abandoned: its open visit ended
    quarantined = [(kind_, source) for _t, source, kind_, _r, _e in tables["quarantine"]]
    assert quarantined == [("EventRecord", "p2"), ("StepRecord", "e1"), ("StepRecord", "e2"), ("list", "upload p4 b2")]
    assert [row[3] for row in tables["events"]] == ["key", "focus", "uploaded", "page_abandoned"]
    assert tables["uploads"] == [("p4", "b1", "<now>", 2)] and tables["resume"] == []
    version = db.cursor()
    version.execute("SELECT version FROM schema_version")
    assert version.fetchall() == [(SCHEMA_VERSION,)]


def test_both_sinks_store_the_same_rows(tmp_path, pg_url):
    """Same records in, same rows out: the PostgreSQL database and the SQLite file agree to the value."""
    path = tmp_path / "study.sqlite"
    assert drive(SqliteSink(path)) == drive(PostgresSink(pg_url))
    with psycopg.connect(pg_url) as db:
        postgres = comparable(dump(db))
    sqlite = comparable(dump(sqlite3.connect(path)))
    assert sqlite == postgres
    assert [t for t in TABLES if not sqlite[t]] == ["resume"]  # every table was written (resume emptied again)


# --- many workers, one database --------------------------------------------------------------------------

def test_three_worker_processes_write_one_database_without_losing_or_doubling_a_row(pg_url):
    """Three processes open the same empty database at once (racing to create the schema), then
    write interleaved: every row arrives once, ids never collide, an uploaded batch that reaches
    every worker is stored by exactly one."""
    workers, participants, steps = 3, 4, 60
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [context.Process(target=work, args=(pg_url, w, participants, steps, barrier, results))
                 for w in range(workers)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    with psycopg.connect(pg_url) as db:
        one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
        assert one("SELECT count(*) FROM schema_version") == 1
        people = {w: participant_ids(w, participants) for w in range(workers)}
        stored_people = {pid for (pid,) in db.execute("SELECT participant_id FROM participants")}
        assert stored_people == {pid for ids in people.values() for pid in ids}
        rows = db.execute("SELECT episode_id, step, agent FROM steps").fetchall()
        expected = {(f"{pid}-e", s, a) for ids in people.values() for pid in ids for s in range(1, steps + 1)
                    for a in AGENTS}
        assert len(rows) == len(expected) and set(rows) == expected
        assert one("SELECT count(*) FROM events WHERE kind='key'") == workers * participants * steps
        assert one("SELECT count(DISTINCT event_id) FROM events") == one("SELECT count(*) FROM events")
        assert one("SELECT count(*) FROM events WHERE kind='uploaded'") == participants  # each batch once
        assert one("SELECT count(*) FROM uploads") == participants
        assert one("SELECT count(*) FROM episodes WHERE outcome='played'") == workers * participants
        assert one("SELECT count(*) FROM quarantine") == 0
    assert sum(stored for _, stored, _ in outcomes) == participants
    expected_counts = Counter(condition_of(i) for _ in range(workers) for i in range(participants))
    sink = PostgresSink(pg_url)
    try:
        assert sink.condition_counts("race") == dict(expected_counts)
    finally:
        sink.close()
    for _, _, counts in outcomes:  # each worker's own count, taken after its writes: never more than the total
        assert all(counts[c] <= expected_counts[c] for c in counts)


def test_an_upload_batch_is_stored_whole_or_not_at_all_and_once(pg_url):
    sink, other = PostgresSink(pg_url), PostgresSink(pg_url)
    try:
        good = [EventRecord("p", 1, "a", None), step("eu", 1, agents=("solo",))]
        broken = [EventRecord("p", 2, "b", None), EventRecord("p", 3, "c", {"raw": b"\x00"})]
        assert sink.store_batch("x", "p", broken) is False  # one bad record: nothing of the batch
        with psycopg.connect(pg_url) as db:
            assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 0
            assert db.execute("SELECT count(*) FROM uploads").fetchone()[0] == 0
            assert db.execute("SELECT kind, source FROM quarantine").fetchall() == [("list", "upload p x")]
        # the same batch reaching two workers at the same moment: one stores it, the other acks it
        results = []
        threads = [threading.Thread(target=lambda s=s: results.append(s.store_batch("y", "p", good)))
                   for s in (sink, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(results) == [False, True]
        with psycopg.connect(pg_url) as db:
            assert db.execute("SELECT kind FROM events").fetchall() == [("a",)]
            assert db.execute("SELECT count(*) FROM steps").fetchone()[0] == 1
    finally:
        sink.close()
        other.close()


def test_a_broken_connection_loses_nothing(pg_url):
    """The database drops the sink's connection (a restart, a network cut) mid-transaction: the sink
    reconnects, writes the uncommitted records again, and every record is stored once."""
    sink = PostgresSink(pg_url, commit_every_s=3600)  # only explicit commits and ends
    try:
        sink.write([ParticipantRecord("p", "exp", 1.0)])
        sink.write([step("e", n, agents=("solo",)) for n in range(1, 101)])
        sink.flush()  # in the open transaction, not committed
        with psycopg.connect(pg_url, autocommit=True) as admin:
            pid = sink.db.info.backend_pid
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        sink.write([step("e", n, agents=("solo",)) for n in range(51, 151)])  # 51..100 again: kept once
        sink.commit()
        assert sink.reconnects == 1
        assert sink.participant_status("p") == "started"
    finally:
        sink.close()
    with psycopg.connect(pg_url) as db:
        assert [s for (s,) in db.execute("SELECT step FROM steps ORDER BY step")] == list(range(1, 151))


def test_a_failed_statement_keeps_the_uncommitted_records(pg_url):
    """A call that fails on its own (a NULL token) aborts PostgreSQL's transaction; the records
    written into it before are written again, as SQLite would still hold them."""
    sink = PostgresSink(pg_url, commit_every_s=3600)
    try:
        sink.write([step("e", n, agents=("solo",)) for n in range(1, 11)])
        sink.flush()
        with pytest.raises(psycopg.errors.NotNullViolation):
            sink.checkpoint("p", None, None)
        sink.commit()
    finally:
        sink.close()
    with psycopg.connect(pg_url) as db:
        assert db.execute("SELECT count(*) FROM steps").fetchone()[0] == 10


# --- pulling into SQLite, the data commands on a URL ------------------------------------------------------

def data_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "igym.data", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_pull_writes_the_file_one_server_would_have_and_summary_reads_a_url_alike(tmp_path, pg_url):
    drive(PostgresSink(pg_url))
    drive(SqliteSink(tmp_path / "direct.sqlite"))
    pulled = tmp_path / "pulled.sqlite"
    result = data_cli("pull", pg_url, pulled)
    assert result.returncode == 0, result.stderr
    assert f"into {pulled}" in result.stdout
    assert comparable(dump(sqlite3.connect(pulled))) == comparable(dump(sqlite3.connect(tmp_path / "direct.sqlite")))
    with psycopg.connect(pg_url) as db:
        assert dump(sqlite3.connect(pulled)) == dump(db)  # to the letter, the refusals' reasons too
    with psycopg.connect(pg_url) as db:
        events = [row[0] for row in db.execute("SELECT event_id FROM events ORDER BY event_id")]
    assert [row[0] for row in sqlite3.connect(pulled).execute("SELECT event_id FROM events ORDER BY event_id")] \
        == events  # ids travel too
    assert sqlite3.connect(pulled).execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one file

    from_file, from_url = data_cli("summary", pulled, "--json"), data_cli("summary", pg_url, "--json")
    assert from_file.returncode == 0 and from_url.returncode == 0, from_url.stderr
    file_summary, url_summary = json.loads(from_file.stdout), json.loads(from_url.stdout)
    assert file_summary.pop("file") == str(pulled) and url_summary.pop("file") == pg_url
    assert file_summary == url_summary and file_summary["participants"]

    again = data_cli("pull", pg_url, pulled)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--force" in again.stderr
    assert data_cli("pull", pg_url, pulled, "--force").returncode == 0
    exported = data_cli("export", pg_url, "--to", "csv", tmp_path / "csv")
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "csv" / "steps.csv").read_text().count("\n") == len(dump(sqlite3.connect(pulled))["steps"]) + 1


# --- the server ------------------------------------------------------------------------------------------

def _free_port():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_server_with_database_stores_a_whole_study_of_two_clients_in_postgresql(pg_url):
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "igym.server", str(NET_STUDY), "--port", str(port),
                               "--database", pg_url], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)

    async def clients():
        processes = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "igym.play", "--connect", f"ws://127.0.0.1:{port}", "--headless", "--autopilot",
            "--participant", pid, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            for pid in ("A", "B")]
        try:
            outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), 120)
        finally:
            for process in processes:
                if process.returncode is None:
                    process.kill()
        return [(p.returncode, out.decode(), err.decode()) for p, (out, err) in zip(processes, outputs)]

    try:
        banner = [server.stdout.readline() for _ in range(4)]
        assert "ws://" in banner[0] and banner[3].strip() == f"data: {pg_url}", banner
        results = asyncio.run(clients())
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        server.kill()
        server.wait(5)
    assert all(code == 0 and "outcome: played" in out for code, out, _ in results), results
    with psycopg.connect(pg_url) as db:
        people = dict(db.execute("SELECT participant_id, status FROM participants").fetchall())
        assert people == {"A": "completed", "B": "completed"}
        codes = db.execute("SELECT count(completion_code) FROM participants").fetchone()[0]
        assert codes == 2
        for pid in ("A", "B"):
            visits = db.execute("SELECT scene, outcome FROM visits WHERE participant_id=%s ORDER BY position",
                                (pid,)).fetchall()
            assert visits == [("consent", "agreed"), ("intro", "continued"), ("before", "continued"),
                              ("match", "played"), ("end", "closed")]
        episodes = db.execute("SELECT e.steps, e.outcome FROM episodes e JOIN visits v USING (visit_id) "
                              "WHERE v.scene = 'match'").fetchall()
        game = load_experiment(NET_STUDY).games()[0]
        assert len(episodes) == 1 and episodes[0] == (game.max_steps, "truncated")  # one shared game, played out
        steps = {agent: [s for (s,) in db.execute("SELECT step FROM steps WHERE agent=%s ORDER BY step", (agent,))]
                 for agent in game.seats}
        assert steps == {agent: list(range(1, game.max_steps + 1)) for agent in game.seats}


# --- one line for what cannot be used --------------------------------------------------------------------

def test_a_bad_url_an_unreachable_server_or_a_foreign_database_is_one_line(pg_server, pg_url, tmp_path):
    closed = f"postgresql://postgres@127.0.0.1:{_free_port()}/x"
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("CREATE TABLE inventory (item TEXT)")
    cases = {"unreachable": (closed, "cannot connect"),
             "no such database": (pg_server.url("nothing_here"), "cannot connect"),
             "bad url": ("postgresql://postgres@127.0.0.1:notaport/x", "cannot connect"),
             "not igym's": (pg_url, "holds something else")}
    for name, (url, says) in cases.items():
        with pytest.raises(DataError, match=says):
            open_sink(url)
        server = subprocess.run([sys.executable, "-m", "igym.server", str(NET_STUDY), "--port", "0",
                                 "--database", url], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert server.returncode == 2 and server.stderr.startswith("igym: ") and says in server.stderr, name
        assert server.stderr.count("\n") == 1, (name, server.stderr)
        for command in (("summary", url), ("pull", url, tmp_path / f"{name}.sqlite")):
            result = data_cli(*command)
            assert result.returncode == 2 and result.stderr.count("\n") == 1 and says in result.stderr, \
                (name, command, result.stderr)
        assert not (tmp_path / f"{name}.sqlite").exists()


def test_a_database_of_the_schema_before_is_migrated_in_place_and_pulls(pg_url, tmp_path):
    """A version 3 database (no questions table, no steps.press): pulled as it is, then migrated by
    the first sink that opens it — its rows kept, the new records stored."""
    sink = PostgresSink(pg_url)
    sink.write([step("e1", n) for n in (1, 2)])
    sink.close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("DROP TABLE questions")
        db.execute("ALTER TABLE steps DROP COLUMN press")
        db.execute("UPDATE schema_version SET version = 3")
    pulled = data_cli("pull", pg_url, tmp_path / "v3.sqlite")
    assert pulled.returncode == 0 and "0 questions" in pulled.stdout, pulled.stderr
    assert sqlite3.connect(tmp_path / "v3.sqlite").execute("SELECT count(*), count(press) FROM steps").fetchone() == \
        (4, 0)
    sink = PostgresSink(pg_url)  # the migration
    visit = VisitRecord("v1", "p1", 0, "survey", "survey", 1.0, questions=[definition(Number("age", "Age?"))])
    sink.write([visit, step("e1", 3)])
    sink.close()
    with psycopg.connect(pg_url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert db.execute("SELECT step, agent, press FROM steps ORDER BY step, agent").fetchall() == [
            (1, "left", None), (1, "right", None), (2, "left", None), (2, "right", None), (3, "left", "left"),
            (3, "right", None)]
        assert db.execute("SELECT question, kind FROM questions").fetchall() == [("age", "number")]


def test_a_password_never_shows_and_a_newer_schema_is_refused(pg_server, pg_url):
    with psycopg.connect(pg_server.url(), autocommit=True) as db:
        db.execute("CREATE ROLE researcher LOGIN PASSWORD 'sesame' SUPERUSER")
    secret = pg_url.replace("postgres@", "researcher:sesame@")
    sink = open_sink(secret)
    assert "sesame" not in repr(sink) and "researcher:***@" in repr(sink)
    sink.close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(DataError, match="newer than this igym") as refused:
        open_sink(secret)
    assert "sesame" not in str(refused.value)
