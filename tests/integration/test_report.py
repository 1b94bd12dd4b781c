"""``python -m igym.data report``: the HTML report of a real recorded study.

The study is made once per module the way a lab makes one: four participants run the
Slime Volleyball study headless with the autopilot (``python -m igym.play``, two
conditions). Then real records are added through :class:`igym.data.SqliteSink` so that
each flag fires for a known participant:

- P1 is the careful one: the autopilot answers a survey in a fraction of a second (which
  the report rightly flags), so P1's survey visits are stored again as 30 s long, each
  question first answered 6 s after the one before (the page's own per-question times).
- P2 leaves the window for 40 s (focus_lost → focus_gained) and has one clock skip.
- P3 gets an extra episode in which the human seat never pressed a key (400 steps).
- P4's instructions visit ends 2 s before it started.

A second file comes from a real lockstep game (the websockets server on 127.0.0.1 and
two headless clients), for round trips, stalls and server-style seats.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from igym.sqlite_sink import SqliteSink
from igym.data import main
from igym.records import EpisodeRecord, EventRecord, StepRecord, VisitRecord

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "examples" / "slime_volleyball" / "study.py"
LOCKSTEP = ROOT / "tests" / "experiments" / "lockstep_slime.py"
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
SECTIONS = ("funnel", "durations", "returns", "answers", "timing", "flags")
CONDITIONS = {"P1": "short_matches", "P2": "long_matches", "P3": "short_matches", "P4": "long_matches"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "igym.data", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=ENV)


def query(path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def add_flagged_records(path: Path) -> None:
    """The records that make P2, P3 and P4 flagged and keep P1 clean (see the module docstring)."""
    surveys = query(path, "SELECT visit_id, participant_id, position, scene, kind, started_at, outcome, params, "
                          "answers FROM visits WHERE participant_id = 'P1' AND kind = 'survey'")
    instructions = query(path, "SELECT visit_id, position, scene, kind, started_at, outcome FROM visits "
                               "WHERE participant_id = 'P4' AND scene = 'instructions'")[0]
    base = 10_000 * 10**9  # t_ns well after the recorded games
    step_ns = 33_333_333
    idle_steps = [StepRecord("idle-episode", step, base + step * step_ns, ("agent_left", "agent_right"),
                             {"agent_left": 0, "agent_right": 0}, ["default", "policy"], {}, {}, {},
                             ["", ""], [None, None]) for step in range(1, 401)]
    now = time.time()
    with SqliteSink(path) as sink:
        sink.write([VisitRecord(visit_id, pid, position, scene, kind, started, started + 30.0, outcome,
                                json.loads(answers), json.loads(params) if params else None,
                                {q: {"first_s": 6.0 * (i + 1), "last_s": 6.0 * (i + 1) + 2.5, "changes": 1}
                                 for i, q in enumerate(json.loads(answers))})
                    for visit_id, pid, position, scene, kind, started, outcome, params, answers in surveys])
        visit_id, position, scene, kind, started, outcome = instructions
        sink.write([VisitRecord(visit_id, "P4", position, scene, kind, started, started - 2.0, outcome)])
        sink.write([EventRecord("P2", base, "focus_lost", {}), EventRecord("P2", base + 40 * 10**9, "focus_gained", {}),
                    EventRecord("P2", base + 50 * 10**9, "clock_skip", {"behind_s": 0.25})])
        sink.write([EpisodeRecord("idle-episode", "P3", "practice", 1, 5, now, base,
                                  {"agent_left": "human", "agent_right": "random"})])
        sink.write(idle_steps)
        sink.write([EpisodeRecord("idle-episode", "P3", "practice", 1, 5, now, base,
                                  {"agent_left": "human", "agent_right": "random"}, now + 13.4, base + 401 * step_ns,
                                  400, {"agent_left": -1.0, "agent_right": 1.0}, "truncated",
                                  {"frames": 800, "mean_ms": 16.7, "sd_ms": 0.4, "max_ms": 21.0, "dropped": 0})])


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "study.sqlite"
    for participant, condition in CONDITIONS.items():
        result = subprocess.run(
            [sys.executable, "-W", "ignore", "-m", "igym.play", str(STUDY), "--headless", "--autopilot",
             "--max-steps", "1500", "--data", str(path), "--participant", participant, "--condition", condition],
            capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
        assert result.returncode == 0, result.stderr
    add_flagged_records(path)
    return path


@pytest.fixture(scope="module")
def made(study) -> tuple[Path, str]:
    """``report STUDY --out ... --pdf`` run once; the HTML text and where it was written."""
    out = study.parent / "out" / "report.html"
    out.parent.mkdir()
    assert main(["report", str(study), "--out", str(out), "--pdf"]) == 0
    return out, out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def lockstep_study(tmp_path_factory) -> Path:
    """A real lockstep game: server on 127.0.0.1, two headless clients, inputs held 0–30 ms."""
    from igym.loader import import_file
    from igym.lockstep import run_headless
    from tests.serving import start, stop

    settings = {"LS_EPISODES": "2", "LS_STEPS": "150", "LS_FPS": "240"}
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        for name in [n for n in sys.modules if n.endswith(LOCKSTEP.stem)]:
            del sys.modules[name]
        experiment = import_file(LOCKSTEP).experiment
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    path = tmp_path_factory.mktemp("lockstep") / "ls.sqlite"

    async def play():
        server, task, url, _ = await start(experiment, path, relay_delay_ms=(0.0, 30.0), relay_seed=3)
        try:
            return await asyncio.wait_for(asyncio.gather(
                *(run_headless(url, pid, experiment, autopilot_seed=i + 1) for i, pid in enumerate("AB"))), 60)
        finally:
            await stop(server, task)

    results = asyncio.run(play())
    assert [r["end"]["outcome"] for r in results] == ["played", "played"]
    return path


class Tables(HTMLParser):
    """The tables of one section of the report, as lists of rows of cell texts."""

    def __init__(self, section: str) -> None:
        super().__init__()
        self.section, self.inside, self.depth = section, False, 0
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.inside = dict(attrs).get("id") == self.section
        if not self.inside:
            return
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "section":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables_of(html: str, section: str) -> list[list[list[str]]]:
    parser = Tables(section)
    parser.feed(html)
    return parser.tables


def section_html(html: str, section: str) -> str:
    match = re.search(rf'<section id="{section}">(.*?)</section>', html, re.S)
    assert match, f"no section {section}"
    return match.group(1)


def test_every_section_is_there_and_every_image_is_a_real_png(made):
    _, html = made
    for section in SECTIONS:
        assert re.search(rf'<section id="{section}">\s*<h2>[^<]+</h2>', html), section
    sources = re.findall(r'<img [^>]*src="([^"]*)"', html)
    assert len(sources) >= 15  # funnel, durations, returns, a dozen questions, timing, key presses
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        data = base64.b64decode(source.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_SIGNATURE)
        image = Image.open(io.BytesIO(data))
        image.load()
        assert image.width >= 600 and image.height >= 200
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 1  # not blank
    for section in ("funnel", "durations", "returns", "answers", "timing", "flags"):
        assert "data:image/png" in section_html(html, section), f"{section} has no figure"


def test_the_page_stands_alone(made):
    _, html = made
    assert "<script" not in html.lower() and "<link" not in html.lower() and "url(" not in html
    for attribute, value in re.findall(r'\s(src|href)="([^"]*)"', html):
        assert value.startswith("data:" if attribute == "src" else "#"), (attribute, value[:60])
    assert "prefers-color-scheme: dark" in html and "@media print" in html
    assert not re.search(r'=\s*"?https?://', html)  # any address in it is text (an answer), never loaded


def test_funnel_numbers_match_the_data(made, study):
    _, html = made
    positions, statuses, _codes = tables_of(html, "funnel")
    reached = dict(query(study, "SELECT position, count(DISTINCT participant_id) FROM visits GROUP BY position"))
    head, *rows = positions
    assert head[:3] == ["position", "scene", "reached"]
    assert {int(row[0]): int(row[2]) for row in rows} == reached
    short = head.index("short_matches")
    by_condition = dict(query(study, "SELECT p.condition, count(DISTINCT v.participant_id) FROM visits v JOIN "
                                     "participants p USING (participant_id) WHERE v.position = 0 GROUP BY p.condition"))
    assert int(rows[0][short]) == by_condition["short_matches"] == 2
    status_counts = dict(query(study, "SELECT status, count(*) FROM participants GROUP BY status"))
    assert status_counts == {"completed": 4}
    head, *rows = statuses
    assert {row[0]: int(row[-1]) for row in rows if row[0] != "all"} == {
        "started": 0, "completed": 4, "declined": 0, "aborted": 0}
    (codes,) = query(study, "SELECT count(completion_code) FROM participants")[0]
    assert f"{codes} codes issued" in section_html(html, "funnel")
    for (code,) in query(study, "SELECT completion_code FROM participants"):
        assert code in section_html(html, "funnel")


def test_flags_name_the_right_participants_with_reasons_and_numbers(made):
    _, html = made
    (flags,) = tables_of(html, "flags")[:1]
    head, *rows = flags
    assert head == ["participant", "condition", "status", "reason", "numbers"]
    by_participant = {row[0]: row for row in rows}
    assert "P1" not in by_participant  # the careful one
    assert "long focus loss" in by_participant["P2"][3]
    assert "longest 40.0 s" in by_participant["P2"][4]
    assert "idle keys" in by_participant["P3"][3]
    assert "practice #1 (agent_left): a key press chose 0.0 % of 400 steps" in by_participant["P3"][4]
    assert "no key for 13.3 s of game time" in by_participant["P3"][4]
    assert "impossible times" in by_participant["P4"][3]
    assert "instructions at position 1 ended 2.000 s before it started" in by_participant["P4"][4]
    # the autopilot's surveys, judged by each answer's own time (all answered within a frame)
    assert re.search(r"survey_weak at position \d: 4 answers a median 0\.00 s apart \(each answer's own time",
                     by_participant["P2"][4]), by_participant["P2"][4]
    assert "long focus loss" not in by_participant["P4"][3] and "idle keys" not in by_participant["P4"][3]


def test_answers_returns_and_timing_show_the_recorded_values(made, study):
    _, html = made
    answers = section_html(html, "answers")
    for scene, question in query(study, "SELECT DISTINCT scene, question FROM answers"):
        assert f"{scene} · {question}" in answers or f"answers to {question}" in answers
    # when each question was answered: a figure and a table per survey, from answers.first_s/last_s/changes
    assert "survey_weak: when each question was first answered" in answers or "response times of survey_weak" in answers
    times = next(t for t in tables_of(html, "answers") if t[0][0] == "question" and t[0][1] == "timed answers")
    rows = {row[0]: row for row in times[1:]}
    assert set(rows) == {"skill", "enjoy", "effort", "again"}  # the first survey's questions, in its order
    assert list(rows) == ["skill", "enjoy", "effort", "again"]
    assert all(int(row[1]) == 4 for row in rows.values())  # every participant's answer to it was timed
    free_text = [json.loads(v) for (v,) in query(study, "SELECT value FROM answers WHERE question = 'comments'")]
    assert any(text and f"{text} <small>" in answers for text in free_text)  # free text quoted, escaped
    returns = tables_of(html, "returns")[0]
    practice = [row for row in returns[1:] if row[0] == "practice"]
    episodes = query(study, "SELECT count(*) FROM episodes WHERE scene = 'practice'")[0][0]
    assert sum(int(row[2]) for row in practice) == episodes
    timing = section_html(html, "timing")
    assert "Clock skips" in timing and "1 event from 1 participant" in timing
    assert timing.count("None recorded.") == 2  # no round trips, no stalls on the desktop


def test_pdf_holds_the_figures(made):
    out, html = made
    pdf = out.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pages == html.count("<img ") + 1  # a front page with the counts and flags, then every figure


def test_a_lockstep_study_shows_round_trips_stalls_and_both_players(lockstep_study, tmp_path):
    out = tmp_path / "ls.html"
    result = cli("report", lockstep_study, "--out", out)
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    timing = section_html(html, "timing")
    assert 'alt="Round trips per participant"' in timing and 'alt="Lockstep stalls per participant"' in timing
    assert "No frame timing recorded" in timing
    returns = tables_of(html, "returns")[0]
    assert sorted(row[0] for row in returns[1:]) == ["ls · agent_left", "ls · agent_right"]


def test_report_errors_are_one_line(study, tmp_path):
    missing = cli("report", tmp_path / "none.sqlite")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and missing.stderr.startswith("igym: ")
    assert not (tmp_path / "none.sqlite").exists()
    foreign = tmp_path / "other.sqlite"
    sqlite3.connect(foreign).execute("CREATE TABLE things (x)").connection.commit()
    result = cli("report", foreign)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "not an igym data file" in result.stderr
    nowhere = tmp_path / "no" / "such" / "folder" / "r.html"
    result = cli("report", study, "--out", nowhere)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no folder" in result.stderr
    assert "Traceback" not in missing.stderr + result.stderr
    before = study.read_bytes()
    result = cli("report", study, "--out", study)
    assert result.returncode == 2 and "overwrite the study's data file" in result.stderr
    assert study.read_bytes() == before


def test_an_empty_study_still_gets_a_report_saying_so(tmp_path):
    empty = tmp_path / "empty.sqlite"
    SqliteSink(empty).close()
    result = cli("report", empty)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no participants" in result.stderr
    html = (tmp_path / "empty-report.html").read_text(encoding="utf-8")
    assert "No participants yet" in html and all(f'<section id="{s}">' in html for s in SECTIONS)


def test_an_older_file_without_visits_answers_and_events_says_what_is_missing(study, tmp_path):
    old = tmp_path / "old.sqlite"
    source = sqlite3.connect(study)
    copy = sqlite3.connect(old)
    source.backup(copy)
    source.close()
    copy.executescript("DROP TABLE visits; DROP TABLE answers; DROP TABLE events;")
    copy.close()
    out = tmp_path / "old.html"
    result = cli("report", old, "--out", out)
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    assert "no visits table" in section_html(html, "funnel") and "no answers table" in section_html(html, "answers")
    assert "no events table" in section_html(html, "timing")
    assert "data:image/png" in section_html(html, "returns")


def test_the_core_imports_without_matplotlib_and_the_report_asks_for_it(study, tmp_path):
    code = ("import sys, igym.report, igym.report_plots, igym.data\n"
            "print(sorted(m for m in ('matplotlib', 'numpy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert result.stdout.strip() == "[]", result.stderr
    blocked = ("import sys; sys.modules['matplotlib'] = None; from igym.data import main; "
               f"sys.exit(main(['report', {str(study)!r}, '--out', {str(tmp_path / 'r.html')!r}]))")
    result = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert result.returncode == 2
    assert result.stderr == "igym: the report needs matplotlib — pip install 'igym[report]'\n"
    assert not (tmp_path / "r.html").exists()
