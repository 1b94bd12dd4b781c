"""Every question on its real scale: the data file keeps what each page asked (schema 4), the
report draws from it, exports carry it, and files of the schema before still open, summarise,
report and replay — read as they are, and migrated in place when a sink opens them.

The study is a small real one (a survey of every question kind, a keystroke game of a
pure-Python env, an end page). Participants with chosen answers go through
:class:`igym.study.StudyRun` — the flow every driver runs (desktop window, web page, server)
— into a real :class:`SqliteSink`; one more is played by ``python -m igym.play --headless
--autopilot``, the desktop driver itself.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from igym.data import main
from igym.loader import load_experiment
from igym.questions import definition
from igym.report import build_report, write_report
from igym.session import Session
from igym.sqlite_sink import SCHEMA_VERSION, SqliteSink
from igym.study import StudyRun

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
GAMES = ["daily", "weekly", "monthly", "rarely", "never"]
KINDS = ["board", "card", "video", "sport"]

STUDY = '''
from igym import Experiment, Game, KeyMap
from igym.experiment import Choice, End, FreeText, Likert, MultiChoice, Number, Slider, Survey
from igym.render import Rect
from tests.toy_envs import LineRace


def render(env):
    return [Rect(agent, 100 + 10 * env.pos[agent], 40 + 20 * i, 8, 8, (200, 80, 40))
            for i, agent in enumerate(env.possible_agents)]


experiment = Experiment(id="scales", scenes=[
    Survey(name="habits", title="About you", questions=[
        Likert("fun", "Games are fun.", points=7),
        Choice("games", "How often do you play?", options=GAMES),
        Slider("sure", "How sure are you?", min=0, max=100, labels=("not at all", "completely")),
        MultiChoice("kinds", "Which kinds do you play?", options=KINDS),
        Number("age", "Your age", min=18, max=99),
        FreeText("note", "Anything else?", required=False)]),
    Game(name="race", env=lambda: LineRace(goal=3), render=render, canvas=(200, 100),
         seats={"a": "human", "b": "random"},
         keys=KeyMap({"right": 1, "left": 2}, mode="keystroke", default_action=0),
         fps=30, episodes=1, max_steps=45, seeds=4),
    End(name="end", text="Thank you."),
])
'''.replace("options=GAMES", f"options={GAMES!r}").replace("options=KINDS", f"options={KINDS!r}")

# The schema of version 3, as igym wrote it before question definitions and presses were recorded.
SCHEMA_V3 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE participants (participant_id TEXT PRIMARY KEY, experiment TEXT, created_at REAL NOT NULL, meta TEXT,
    condition TEXT, status TEXT, completion_code TEXT, ended_at REAL, flow TEXT);
CREATE TABLE visits (visit_id TEXT PRIMARY KEY, participant_id TEXT NOT NULL, position INTEGER NOT NULL,
    scene TEXT NOT NULL, kind TEXT NOT NULL, started_at REAL NOT NULL, ended_at REAL, duration_s REAL, outcome TEXT,
    params TEXT, answers TEXT);
CREATE TABLE answers (visit_id TEXT NOT NULL, participant_id TEXT NOT NULL, scene TEXT NOT NULL,
    question TEXT NOT NULL, value TEXT, first_s REAL, last_s REAL, changes INTEGER,
    PRIMARY KEY (visit_id, question)) WITHOUT ROWID;
CREATE TABLE episodes (episode_id TEXT PRIMARY KEY, participant_id TEXT NOT NULL, scene TEXT NOT NULL,
    episode_index INTEGER NOT NULL, seed INTEGER, started_at REAL NOT NULL, started_ns INTEGER NOT NULL,
    ended_at REAL, ended_ns INTEGER, steps INTEGER NOT NULL DEFAULT 0, returns TEXT, outcome TEXT, seats TEXT,
    timing TEXT, visit_id TEXT);
CREATE TABLE steps (episode_id TEXT NOT NULL, step INTEGER NOT NULL, agent TEXT NOT NULL, t_ns INTEGER NOT NULL,
    action TEXT NOT NULL, source TEXT NOT NULL, reward REAL NOT NULL, terminated INTEGER NOT NULL,
    truncated INTEGER NOT NULL, keys TEXT, key_t_ns INTEGER, extra TEXT, fingerprint TEXT, turn_ns INTEGER,
    PRIMARY KEY (episode_id, step, agent)) WITHOUT ROWID;
CREATE TABLE events (event_id INTEGER PRIMARY KEY AUTOINCREMENT, participant_id TEXT NOT NULL, episode_id TEXT,
    t_ns INTEGER NOT NULL, kind TEXT NOT NULL, data TEXT);
CREATE INDEX events_by_participant ON events (participant_id, t_ns);
CREATE TABLE uploads (participant_id TEXT NOT NULL, batch_id TEXT NOT NULL, received_at REAL NOT NULL,
    records INTEGER NOT NULL, PRIMARY KEY (participant_id, batch_id)) WITHOUT ROWID;
CREATE TABLE resume (participant_id TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL, snapshot TEXT,
    updated_at REAL NOT NULL, parked_at REAL);
CREATE TABLE quarantine (quarantine_id INTEGER PRIMARY KEY AUTOINCREMENT, received_at REAL NOT NULL, source TEXT,
    kind TEXT NOT NULL, record TEXT NOT NULL, error TEXT NOT NULL);
INSERT INTO schema_version VALUES (3);
"""

# What three participants answered: the 7-point scale only from 2 to 6, two of five options never chosen.
ANSWERS = {"P1": {"fun": 2, "games": "weekly", "sure": 40, "kinds": ["card"], "age": 30, "note": "fine"},
           "P2": {"fun": 5, "games": "never", "sure": 55, "kinds": ["card", "video"], "age": 41, "note": None},
           "P3": {"fun": 6, "games": "daily", "sure": 61, "kinds": ["video"], "age": 25, "note": "more please"}}


@pytest.fixture(scope="module")
def study_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scales") / "scales_study.py"
    path.write_text(STUDY)
    return path


def take_part(experiment, participant: str, answers: dict, sink: SqliteSink) -> None:
    """One participant through the study as every driver takes them: StudyRun says what to show,
    the page is answered (``answers``), the game played by a Session."""
    run = StudyRun(experiment, participant)
    sink.write(run.take_records())
    while (show := run.next_show()) is not None:
        sink.write(run.take_records())
        if show.is_game:
            session = Session(show.scene, participant, scene=show.scene.name, visit_id=show.visit.visit_id)
            now = 0.0
            while not session.finished:
                if round(now * 30) % 9 == 0:
                    session.press("right", now)
                    session.release("right", now)
                session.tick(now)
                now += 1 / 30
            sink.write(session.take_records())
            run.shown("played")
        elif show.scene.kind == "survey":
            typed, problems = show.scene.check(answers)
            assert not problems, problems
            run.shown("continued", typed)
        else:
            run.shown("closed" if show.scene.kind == "end" else "continued")
        sink.write(run.take_records())
    sink.commit()


@pytest.fixture(scope="module")
def answered(study_file) -> Path:
    experiment = load_experiment(study_file)
    path = study_file.with_name("answered.sqlite")
    with SqliteSink(path) as sink:
        for participant, answers in ANSWERS.items():
            take_part(experiment, participant, answers, sink)
    return path


def figure_titled(report, title: str):
    return next(fig for _, fig in report.figures if fig.axes and fig.axes[0].get_title("left") == title)


def test_the_report_draws_every_question_on_its_declared_scale(answered, tmp_path):
    db = sqlite3.connect(answered)
    report = build_report(db, answered)
    charts = {c.question: c for c in report.charts}
    assert all(c.source == "data file" for c in charts.values())
    fun = charts["fun"]  # answered 2, 5 and 6: every point of the 7 is a bar, the unchosen ones 0
    assert (fun.kind, fun.draw, fun.text) == ("likert", "counts", "Games are fun.")
    assert fun.levels == ["1", "2", "3", "4", "5", "6", "7"] and fun.counts == {"(none)": [0, 1, 0, 0, 1, 1, 0]}
    assert fun.xlabel == "1 = Strongly disagree … 7 = Strongly agree"
    games = charts["games"]  # the options in the survey's order, not by frequency; unchosen ones at 0
    assert games.levels == GAMES and games.counts == {"(none)": [1, 1, 0, 0, 1]}
    kinds = charts["kinds"]
    assert kinds.several and kinds.levels == KINDS and kinds.counts == {"(none)": [0, 2, 2, 0]}
    sure = charts["sure"]  # a slider on its declared 0–100, not from 40 to 61
    assert sure.draw == "dots" and sure.axis == (0.0, 100.0) and sorted(sure.values["(none)"]) == [40.0, 55.0, 61.0]
    assert sure.xlabel == "0 = not at all … 100 = completely"
    assert charts["age"].axis == (18.0, 99.0) and charts["note"].draw == "text"
    # ... and the figures are drawn so: every point's tick, every option's bar, the slider's range
    ax = figure_titled(report, "habits · fun").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == fun.levels
    assert [round(p.get_height()) for p in ax.patches] == [0, 1, 0, 0, 1, 1, 0]
    ax = figure_titled(report, "habits · games").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == GAMES
    low, high = figure_titled(report, "habits · sure").axes[0].get_xlim()
    assert low <= 0 and high >= 100 and high - low < 110
    # the page and the PDF render, each question with its wording and where its scale came from
    out = tmp_path / "report.html"
    write_report(db, answered, out, pdf=True)
    html = out.read_text(encoding="utf-8")
    assert "“Games are fun.” — n 3" in html and "drawn on its own scale, as the survey declared it" in html
    assert "scale from the" not in html
    pdf = out.with_suffix(".pdf").read_bytes()
    assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf)) == html.count("<img ") + 1


def test_the_summary_counts_every_option_and_names_each_scale(answered, capsys):
    assert main(["summary", str(answered), "--json"]) == 0
    habits = json.loads(capsys.readouterr().out)["answers"]["habits"]
    assert habits["games"]["values"] == {"daily": 1, "weekly": 1, "monthly": 0, "rarely": 0, "never": 1}
    assert habits["kinds"]["values"] == {"board": 0, "card": 2, "video": 2, "sport": 0}
    assert (habits["fun"]["kind"], habits["fun"]["scale"]) == ("likert", [1, 7])
    assert habits["sure"]["scale"] == [0, 100] and habits["age"]["scale"] == [18, 99]
    assert main(["summary", str(answered)]) == 0
    assert "habits.games: n 3, values: daily 1, weekly 1, monthly 0, rarely 0, never 1" in capsys.readouterr().out


def test_exports_carry_the_question_definitions(answered, tmp_path):
    assert main(["export", str(answered), "--to", "csv", str(tmp_path / "csv")]) == 0
    with open(tmp_path / "csv" / "questions.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 6  # every participant's survey visit, every question
    first = [r for r in rows if r["participant_id"] == "P1"]
    assert [r["question"] for r in first] == ["fun", "games", "sure", "kinds", "age", "note"]
    by_id = {r["question"]: r for r in first}
    assert (by_id["fun"]["kind"], by_id["fun"]["points"], by_id["fun"]["min_value"], by_id["fun"]["max_value"]) == \
        ("likert", "7", "1.0", "7.0")
    assert json.loads(by_id["fun"]["labels"])[0] == "Strongly disagree"
    assert json.loads(by_id["games"]["options"]) == GAMES and json.loads(by_id["kinds"]["options"]) == KINDS
    assert (by_id["sure"]["min_value"], by_id["sure"]["max_value"], by_id["sure"]["step"]) == ("0.0", "100.0", "1.0")
    assert json.loads(by_id["note"]["definition"]) == {"kind": "text", "id": "note", "text": "Anything else?",
                                                       "max_length": 500, "lines": 1, "required": False}
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    assert main(["export", str(answered), "--to", "parquet", str(tmp_path / "pq")]) == 0
    table = pq.read_table(tmp_path / "pq" / "questions.parquet").to_pylist()
    assert [(r["question"], r["kind"]) for r in table if r["participant_id"] == "P1"] == [
        (r["question"], r["kind"]) for r in first]


def make_v3(new: Path, old: Path) -> None:
    """``old``: the file igym before schema 4 would have written for the same study (its DDL, the
    rows of its columns)."""
    db = sqlite3.connect(old)
    db.executescript(SCHEMA_V3)
    db.execute("ATTACH DATABASE ? AS new", (str(new),))
    for table in ("participants", "visits", "answers", "episodes", "steps", "events"):
        columns = ", ".join(row[1] for row in db.execute(f"PRAGMA main.table_info({table})"))
        db.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM new.{table}")
    db.commit()
    db.execute("DETACH DATABASE new")
    db.close()


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "igym.data", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=ENV)


def test_an_older_file_opens_summarises_reports_and_replays_and_migrates(study_file, tmp_path):
    new = tmp_path / "played.sqlite"
    played = subprocess.run([sys.executable, "-m", "igym.play", str(study_file), "--headless", "--autopilot",
                             "--participant", "A1", "--data", str(new)], cwd=ROOT, env=ENV, capture_output=True,
                            text=True, timeout=300)
    assert played.returncode == 0, played.stderr
    # the desktop driver recorded what the page asked, question by question, as the file declares it
    survey = load_experiment(study_file).scene("habits")
    recorded = sqlite3.connect(new).execute("SELECT position, question, definition FROM questions ORDER BY position")
    assert [(p, q, json.loads(d)) for p, q, d in recorded] == [
        (i, q.id, definition(q)) for i, q in enumerate(survey.questions)]

    old = tmp_path / "old.sqlite"
    make_v3(new, old)
    episode = sqlite3.connect(old).execute("SELECT episode_id FROM episodes").fetchone()[0]
    counts = {t: sqlite3.connect(old).execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("participants", "visits", "answers", "episodes", "steps", "events")}

    def reads(path: Path, migrated: bool) -> None:
        summary = cli("summary", path, "--json")
        assert summary.returncode == 0, summary.stderr
        assert json.loads(summary.stdout)["answers"]["habits"]["fun"]["n"] == 1
        out = tmp_path / f"{path.stem}-{migrated}.html"
        report = cli("report", path, "--out", out)
        assert report.returncode == 0, report.stderr
        html = out.read_text(encoding="utf-8")
        assert "does not record every question's definition" in html and "6 questions from the answers alone" in html
        with_file = cli("report", path, "--out", out, "--experiment", study_file)
        assert with_file.returncode == 0, with_file.stderr
        assert "6 questions on the scales of the experiment file" in out.read_text(encoding="utf-8")
        charts = {c.question: c for c in build_report(sqlite3.connect(path), path,
                                                      experiment=load_experiment(study_file)).charts}
        assert charts["fun"].levels == [str(p) for p in range(1, 8)] and charts["fun"].source == "experiment file"
        assert charts["games"].levels == GAMES and charts["sure"].axis == (0.0, 100.0)
        replay = cli("replay", path, "--episode", episode[:8], "--verify", "--trust", study_file.parent)
        assert replay.returncode == 0 and "verified" in replay.stdout, replay.stdout + replay.stderr
        export = cli("export", path, "--to", "csv", tmp_path / f"csv-{migrated}")
        assert export.returncode == 0, export.stderr

    reads(old, migrated=False)  # read as it is: the readers never change a file
    db = sqlite3.connect(old)
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(3,)]
    assert "questions" not in {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()

    SqliteSink(old).close()  # a sink opening it (a server or study resuming into it) migrates it in place
    db = sqlite3.connect(old)
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert "press" in {row[1] for row in db.execute("PRAGMA table_info(steps)")}
    assert db.execute("SELECT count(*) FROM questions").fetchone() == (0,)  # nothing recorded them then
    assert db.execute("SELECT count(*) FROM steps WHERE press IS NOT NULL").fetchone() == (0,)
    assert {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in counts} == counts
    db.close()
    reads(old, migrated=True)
    with SqliteSink(old) as sink:  # and it takes the new records
        take_part(load_experiment(study_file), "P9", ANSWERS["P1"], sink)
    db = sqlite3.connect(old)
    assert db.execute("SELECT count(*) FROM questions WHERE participant_id = 'P9'").fetchone() == (6,)
    assert db.execute("SELECT count(*) FROM steps s JOIN episodes e USING (episode_id) WHERE "
                      "e.participant_id = 'P9' AND s.press = 'right'").fetchone()[0] > 0
