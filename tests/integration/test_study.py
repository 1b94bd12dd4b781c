"""Studies end to end: scenes, flow, conditions, hooks, lab mode, crash safety, clear errors.

Whole studies run as real processes (``python -m igym.play … --headless --autopilot``)
writing real SQLite files; the autopilot answers every questionnaire with valid random
answers through the pygame_gui widgets.
"""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from igym.errors import ExperimentError
from igym.experiment import Experiment, Game, Info, RandomOrder, Repeat, Survey
from igym.questions import Choice, FreeText, Likert, MultiChoice, Number, Slider
from igym.study import StudyRun
from tests.crash import count, kill_while_playing

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "examples" / "slime_volleyball" / "study.py"
FLOW = ROOT / "tests" / "experiments" / "flow_study.py"
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}


def play(*args):
    return subprocess.run([sys.executable, "-W", "ignore", "-m", "igym.play", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=ENV, timeout=600)


def rows(path, sql, *params):
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


@pytest.fixture(scope="module")
def slime_study(tmp_path_factory):
    """One autopilot participant through the full slime study, with screenshots of every scene."""
    folder = tmp_path_factory.mktemp("study")
    data, shots = folder / "study.sqlite", folder / "shots"
    out = play(STUDY, "--headless", "--autopilot", "--data", data, "--screenshots", shots, "--participant", "P1")
    assert out.returncode == 0, out.stderr
    return data, shots, out


def test_slime_study_records_every_visit_answer_and_step(slime_study):
    data, shots, out = slime_study
    assert "participant P1: completed, completion code" in out.stdout
    (status, condition, code, flow), = rows(data, "SELECT status, condition, completion_code, flow FROM participants")
    assert status == "completed" and condition in ("short_matches", "long_matches")
    assert len(code) == 8
    plan = json.loads(flow)
    visits = rows(data, "SELECT position, scene, kind, outcome, answers, ended_at - started_at FROM visits "
                        "ORDER BY position")
    assert [v[1] for v in visits] == plan["scenes"]  # the recorded random order is the one shown
    assert plan["scenes"][:3] == ["consent", "instructions", "practice"] and plan["scenes"][-2:] == ["about_you", "end"]
    assert {tuple(plan["scenes"][3:5]), tuple(plan["scenes"][5:7])} == {("block_weak", "survey_weak"),
                                                                       ("block_strong", "survey_strong")}
    assert [v[3] for v in visits] == ["agreed", "continued", "played", "played", "continued", "played",
                                      "continued", "continued", "closed"]
    assert all(v[5] is not None and v[5] >= 0 for v in visits)
    survey = json.loads(next(v[4] for v in visits if v[1] == "survey_weak"))
    assert set(survey) == {"skill", "enjoy", "effort", "again"}
    assert 1 <= survey["skill"] <= 7 and isinstance(survey["effort"], int)
    assert survey["again"] in ("yes", "no", "not sure")
    answers = rows(data, "SELECT scene, question, value FROM answers")
    assert len(answers) == 4 + 4 + 3
    age = json.loads(next(a[2] for a in answers if a[1] == "age"))
    assert isinstance(age, int) and 18 <= age <= 99
    # every episode points at its game visit; every step of both agents is there
    episodes = rows(data, "SELECT e.scene, v.scene, e.steps, e.outcome, e.timing FROM episodes e "
                          "JOIN visits v USING (visit_id)")
    assert len(episodes) == 5 and all(e[0] == e[1] for e in episodes) and all(e[3] for e in episodes)
    steps = dict(rows(data, "SELECT agent, count(*) FROM steps GROUP BY agent"))
    assert steps["agent_left"] == steps["agent_right"] == sum(e[2] for e in episodes)
    # the condition's change is applied and recorded on the visit
    limit = {"short_matches": 900, "long_matches": 1500}[condition]
    params = json.loads(rows(data, "SELECT params FROM visits WHERE scene='block_weak'")[0][0])
    assert params == {"max_steps": limit}
    assert all(e[2] <= limit for e in episodes if e[0].startswith("block"))
    # device facts and the experiment file are kept with the participant
    meta = json.loads(rows(data, "SELECT meta FROM participants")[0][0])
    assert meta["experiment_file"] == str(STUDY)
    assert {"window", "os", "python", "pygame", "refresh_hz_measured"} <= set(meta["device"])
    timing = json.loads(episodes[0][4])
    assert timing["frames"] > 10 and timing["sd_ms"] >= 0
    # the step hook's columns
    extra = json.loads(rows(data, "SELECT extra FROM steps LIMIT 1")[0][0])
    assert set(extra) == {"ball_x", "ball_y"}


def test_screenshots_of_pages_at_1280x720(slime_study):
    import pygame
    _, shots, _ = slime_study
    names = sorted(p.name for p in shots.iterdir())
    for scene in ("consent", "instructions", "about_you", "end", "practice_instructions"):
        assert any(scene in name for name in names), names
    consent = pygame.image.load(str(next(shots.glob("00_consent.png"))))
    assert consent.get_size() == (1280, 720)
    colours = {consent.get_at((x, y))[:3] for x in range(0, 1280, 40) for y in range(0, 720, 40)}
    assert len(colours) > 3  # text and buttons, not a blank page


def test_summary_export_and_replay_on_the_study_file(slime_study, tmp_path):
    data, _, _ = slime_study
    summary = subprocess.run([sys.executable, "-m", "igym.data", "summary", str(data), "--json"], capture_output=True,
                             text=True, cwd=ROOT, timeout=120)
    assert summary.returncode == 0, summary.stderr
    facts = json.loads(summary.stdout)
    assert facts["participants"]["count"] == 1 and facts["participants"]["by_status"] == {"completed": 1}
    visits = rows(data, "SELECT scene FROM visits")
    assert set(facts["visits"]) == {scene for (scene,) in visits}  # every scene is in the summary
    export = subprocess.run([sys.executable, "-m", "igym.data", "export", str(data), "--to", "csv", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert export.returncode == 0, export.stderr
    header = (tmp_path / "steps.csv").read_text().splitlines()[0].split(",")
    assert "ball_x" in header and "ball_y" in header  # the hook's custom columns, one per key
    episode = rows(data, "SELECT episode_id FROM episodes WHERE scene='practice'")[0][0]
    replay = subprocess.run([sys.executable, "-m", "igym.data", "replay", str(data), "--episode", episode[:8],
                             "--verify", "--headless", "--trust", str(ROOT)],
                            capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "verified" in replay.stdout


def test_completed_participant_is_not_run_again_unless_asked(slime_study, tmp_path):
    data, _, _ = slime_study
    again = play(STUDY, "--headless", "--autopilot", "--data", data, "--participant", "P1")
    assert again.returncode == 2
    assert "P1 already completed" in again.stderr and "--rerun" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_flow_repeat_random_order_conditions_and_hooks(tmp_path):
    data = tmp_path / "flow.sqlite"
    for participant in ("A", "B", "C"):
        out = play(FLOW, "--headless", "--autopilot", "--data", data, "--participant", participant)
        assert out.returncode == 0, out.stderr
    # balanced assignment: the least-used condition first, in declaration order on ties
    conditions = dict(rows(data, "SELECT participant_id, condition FROM participants"))
    assert conditions == {"A": "slow", "B": "fast", "C": "slow"}
    # Repeat: two visits of the same survey, each with its own id and answers
    mood = rows(data, "SELECT visit_id, position, answers FROM visits WHERE participant_id='A' AND scene='mood' "
                      "ORDER BY position")
    assert len(mood) == 2 and mood[0][0] != mood[1][0] and [m[1] for m in mood] == [1, 2]
    assert len(rows(data, "SELECT * FROM answers WHERE participant_id='A' AND scene='mood'")) == 4
    # the condition changed game_a's fps, and the visit says so
    params = dict(rows(data, "SELECT participant_id, params FROM visits WHERE scene='game_a'"))
    assert json.loads(params["A"]) == {"fps": 20} and json.loads(params["B"]) == {"fps": 40}
    # the random order is seeded per participant and recorded
    for participant in ("A", "B", "C"):
        flow = json.loads(rows(data, "SELECT flow FROM participants WHERE participant_id=?", participant)[0][0])
        shown = [s for (s,) in rows(data, "SELECT scene FROM visits WHERE participant_id=? ORDER BY position",
                                    participant)]
        assert shown == flow["scenes"]
    # the step hook's column is on every step of both games
    extras = rows(data, "SELECT DISTINCT json_extract(extra, '$.pos_a') IS NOT NULL FROM steps")
    assert extras == [(1,)]


def test_adaptive_hook_changes_the_partner_between_episodes(tmp_path):
    """Drive the flow study's game_a directly: two wins in a row → the partner is replaced,
    which the next episode's seats and a seat_replaced event record."""
    from igym.loader import load_experiment
    from igym.records import EpisodeRecord, EventRecord
    from igym.session import Session

    game = load_experiment(FLOW).scene("game_a")
    state: dict = {}
    # The random runner's stream comes from this participant's seat seeds (one per episode):
    # for "P1" it loses the first two races, so the hook's streak rule fires.
    session = Session(game, "P1", hook_state=state)
    t = 0.0
    session.press("right", t)  # runner a always runs right: it wins every episode
    records = []
    while not session.finished:
        session.tick(t)
        records += session.take_records()
        t += 1 / 30
    episodes = [r for r in records if isinstance(r, EpisodeRecord) and r.outcome]
    wins = [e.returns["a"] > 0 for e in episodes]
    assert len(episodes) == 4 and state["log"] == [0, 1, 2, 3]
    first_two_won = wins[0] and wins[1]
    assert first_two_won, wins
    assert episodes[0].seats["b"]["kind"] == "random" and episodes[1].seats["b"]["kind"] == "random"
    assert episodes[2].seats["b"]["kind"] == "function"  # from the third episode on
    replaced = [r for r in records if isinstance(r, EventRecord) and r.kind == "seat_replaced"]
    assert len(replaced) >= 1 and replaced[0].data["agent"] == "b"


def test_sigkill_in_the_second_block_keeps_every_step_but_the_last_second(tmp_path):
    data = tmp_path / "kill.sqlite"
    process = subprocess.Popen([sys.executable, "-m", "igym.play", "tests/experiments/kill_study.py", "--autopilot",
                                "--data", str(data)], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)

    def block_2_steps():
        return count(data, "SELECT count(*) FROM steps JOIN episodes USING (episode_id) WHERE scene='block_2' "
                           "AND agent='agent_left'")
    ran = kill_while_playing(process, block_2_steps, 2.5)
    steps = block_2_steps()
    assert steps >= ran * 30 - 30 - 3, steps  # at most one second (30 steps) lost
    db = sqlite3.connect(data)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    visits = dict(db.execute("SELECT scene, outcome FROM visits"))
    assert visits["hello"] == "continued" and visits["block_1"] == "played" and visits["block_2"] is None
    assert db.execute("SELECT count(*) FROM steps JOIN episodes USING (episode_id) WHERE scene='block_1' "
                      "AND agent='agent_left'").fetchone()[0] == 30


def test_lab_mode_runs_participants_in_a_row(tmp_path):
    data, shots = tmp_path / "lab.sqlite", tmp_path / "shots"
    out = play(FLOW, "--lab", "--headless", "--autopilot", "--max-participants", "2", "--data", data,
               "--screenshots", shots)
    assert out.returncode == 0, out.stderr
    people = rows(data, "SELECT status, condition, json_extract(meta, '$.lab') FROM participants")
    assert len(people) == 2 and all(p[0] == "completed" and p[2] == 1 for p in people)
    assert sorted(p[1] for p in people) == ["fast", "slow"]
    assert (shots / "start.png").exists()


def test_lab_keys_esc_does_not_quit_but_the_combination_does():
    import pygame
    from igym.renderers.app import escape_quits
    from igym.renderers.study import lab_quit
    from igym.renderers.window import InputEvent
    assert escape_quits(InputEvent("down", "escape"))
    assert not lab_quit(InputEvent("down", "escape"))
    assert not lab_quit(InputEvent("down", "q", mods=pygame.KMOD_CTRL))
    assert lab_quit(InputEvent("down", "q", mods=pygame.KMOD_CTRL | pygame.KMOD_SHIFT))


def test_declined_consent_ends_the_study_and_is_recorded():
    from igym.records import ParticipantRecord, VisitRecord
    from igym.loader import load_experiment
    run = StudyRun(load_experiment(FLOW), "D")
    visit = run.next_visit()
    assert visit.kind == "consent"
    run.finish_visit("declined")
    assert run.next_visit() is None and run.status == "declined" and run.completion_code is None
    records = run.take_records()
    assert [r.status for r in records if isinstance(r, ParticipantRecord)] == ["started", "declined"]
    assert [r.outcome for r in records if isinstance(r, VisitRecord)] == [None, "declined"]


# --- experiment files that are wrong: one line naming the scene and the field ---------

@pytest.mark.parametrize("body, expected", [
    ("scenes=[Info(name='intro', text='hi'), 'survey']", "scenes[1] is a str"),
    ("scenes=[Survey(name='q', questions=[Choice('pick', 'Pick one')])]", "Choice 'pick': field 'options'"),
    ("scenes=[Survey(name='q', questions=[Likert('a', 'x'), Likert('a', 'y')])]", "two questions have id 'a'"),
    ("scenes=[Info(name='a', text='x'), Info(name='a', text='y')]", "two different scenes are named 'a'"),
    ("scenes=[Info(name='a', text='x')], conditions={'c': {'nope': {'fps': 2}}}", "changes scene 'nope'"),
    ("scenes=[Info(name='a', text='[pink]x[/pink]')]", "unknown colour [pink]"),
])
def test_wrong_experiment_files_fail_with_one_line(tmp_path, body, expected):
    bad = tmp_path / "bad.py"
    bad.write_text("from igym.experiment import *\nexperiment = Experiment(id='x', " + body + ")\n")
    out = play(bad, "--headless")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "bad.py line 2" in lines[0], out.stderr


# --- questions and the page widgets ----------------------------------------------------

def test_question_validation_and_typed_answers():
    survey = Survey(questions=[Likert("l", "x", points=5), Slider("s", "x", min=0, max=10, step=0.5),
                               Choice("c", "x", options=["a", "b"]), MultiChoice("m", "x", options=["a", "b", "c"],
                                                                                max_choices=2),
                               FreeText("f", "x", required=False), Number("n", "x", min=1, max=9)])
    answers, problems = survey.check({})
    assert set(problems) == {"l", "s", "c", "m", "n"}  # the optional text may stay empty
    answers, problems = survey.check({"l": 3, "s": 7.26, "c": "b", "m": ["c", "a"], "f": "  hi ", "n": "4"})
    assert problems == {}
    assert answers == {"l": 3, "s": 7.5, "c": "b", "m": ["a", "c"], "f": "hi", "n": 4}
    _, problems = survey.check({"l": 3, "s": 1, "c": "b", "m": ["a", "b", "c"], "n": "12"})
    assert problems == {"m": "Please choose at most 2.", "n": "Please enter a number of at most 9."}
    import random
    for seed in range(20):
        assert survey.check(survey.random_answers(random.Random(seed)))[1] == {}


def test_page_keyboard_navigation_and_inline_errors():
    import pygame
    from igym.renderers.pages import Page
    pygame.display.init()
    surface = pygame.display.set_mode((1280, 720))
    survey = Survey(questions=[Likert("l", "Rate it", points=7), Choice("c", "Pick", options=["x", "y", "z"]),
                               FreeText("t", "Say something")])
    page = Page(surface, survey)

    def key(code, unicode="", mod=0):
        page.handle(pygame.event.Event(pygame.KEYDOWN, key=code, unicode=unicode, mod=mod, scancode=0), 0.0)

    key(pygame.K_RETURN)  # nothing answered: errors shown beside each question, no result
    assert page.result is None
    assert [w.error.text for w in page.questions] == ["Please choose one of the points.", "Please choose an option.",
                                                      "Please write an answer."]
    page.focus = 0
    page._show_focus()
    key(pygame.K_6, "6")
    key(pygame.K_TAB)
    key(pygame.K_DOWN)
    key(pygame.K_DOWN)
    key(pygame.K_TAB)
    page.questions[2].entry.set_text("fine")
    key(pygame.K_RETURN)
    assert page.result is not None and page.result.answers == {"l": 6, "c": "z", "t": "fine"}
    page.draw()
    page.close()


def test_info_min_time_holds_the_button():
    import pygame
    from igym.renderers.pages import Page
    pygame.display.init()
    surface = pygame.display.set_mode((1280, 720))
    page = Page(surface, Info(text="Read **this**", min_time_s=3), min_time_s=3, now=0.0)
    page.submit("continued", 1.0)
    assert page.result is None
    page.update(3.5, 0.1)
    page.submit("continued", 3.5)
    assert page.result.outcome == "continued"


def test_gamepad_events_become_key_names():
    import pygame
    from igym.renderers.window import Window
    window = Window((200, 100), headless=True)
    pygame.event.clear()
    for event in (pygame.event.Event(pygame.JOYBUTTONDOWN, button=0, joy=0, instance_id=0),
                  pygame.event.Event(pygame.JOYHATMOTION, hat=0, value=(1, 0), joy=0, instance_id=0),
                  pygame.event.Event(pygame.JOYAXISMOTION, axis=0, value=-0.8, joy=0, instance_id=0),
                  pygame.event.Event(pygame.JOYAXISMOTION, axis=0, value=-0.4, joy=0, instance_id=0),
                  pygame.event.Event(pygame.JOYAXISMOTION, axis=0, value=-0.1, joy=0, instance_id=0),
                  pygame.event.Event(pygame.JOYHATMOTION, hat=0, value=(0, 0), joy=0, instance_id=0),
                  pygame.event.Event(pygame.JOYBUTTONUP, button=0, joy=0, instance_id=0)):
        pygame.event.post(event)
    polled = list(window.poll())
    events = [(e.kind, e.key) for e in polled if e.kind in ("down", "up")]
    assert events == [("down", "joy button 0"), ("down", "joy hat right"), ("down", "joy axis 0-"),
                      ("up", "joy axis 0-"), ("up", "joy hat right"), ("up", "joy button 0")]
    assert [(e.axis, e.value) for e in polled if e.kind == "axis"] == [(0, -0.8), (0, -0.4), (0, -0.1)]
    window.close()


def test_gamepad_keys_drive_a_key_map_and_are_recorded():
    from examples.slime_volleyball.slime import SlimeVolleyEnv
    from examples.slime_volleyball.study import KEYS
    from igym.records import StepRecord
    from igym.session import Session
    game = Game(env=SlimeVolleyEnv,
                seats={"agent_left": "human", "agent_right": "random"}, keys=KEYS, render=lambda env: [], seeds=1)
    session = Session(game, "P")
    session.tick(0.0)
    session.press("joy hat left", 0.01)
    session.press("joy button 0", 0.02)
    session.tick(1 / 30)
    step = next(r for r in session.take_records() if isinstance(r, StepRecord))
    assert step.actions["agent_left"] == 4 and step.keys[0] == "joy hat left+joy button 0"


def test_study_run_order_is_seeded_per_participant():
    blocks = [Info(name=f"b{i}", text="x") for i in range(4)]
    experiment = Experiment(id="order", scenes=[RandomOrder(blocks, keep=3), Repeat(Info(name="r", text="y"), 2)])
    plans = {p: [v.name for v in experiment.plan(experiment.order_seed(p))] for p in ("p1", "p2", "p3", "p4")}
    assert all(len(plan) == 5 and plan[-2:] == ["r", "r"] for plan in plans.values())
    assert plans["p1"] == [v.name for v in experiment.plan(experiment.order_seed("p1"))]
    assert len({tuple(plan) for plan in plans.values()}) > 1
    with pytest.raises(ExperimentError, match="keep must be"):
        RandomOrder(blocks, keep=9)


def test_markup_becomes_widget_html():
    from igym.markup import plain, to_html
    text = "Hello **bold**\nand *italic* [red]red[/red] [#00ff00]g[/#00ff00] <tag>\n\n- one\n- two\n1. first"
    html = to_html(text)
    assert html == ("Hello <b>bold</b> and <i>italic</i> <font color=\"#D04040\">red</font> "
                    "<font color=\"#00ff00\">g</font> &lt;tag&gt;<br><br>  \u2022 one<br>  \u2022 two<br>  1. first")
    assert plain("**a** *b*") == "a b"


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_pages_scale_with_the_window_and_show_images(size):
    import pygame
    from igym.renderers.pages import Page
    pygame.display.init()
    surface = pygame.display.set_mode(size)
    info = Info(text="A picture of the game:", image="screenshot.png", title="Look")
    page = Page(surface, info, base_dir=ROOT / "examples" / "slime_volleyball")
    page.update(0.0, 0.0)
    page.draw()
    assert page.unit == max(14, round(size[1] / 38))  # the text size follows the window height
    assert page.main_button.rect.height >= 2 * page.unit
    # the image is drawn: some pixels carry the game's dark court colour
    dark = sum(1 for x in range(0, size[0], 16) for y in range(0, size[1], 16)
               if sum(surface.get_at((x, y))[:3]) < 120)
    assert dark > 50
    page.close()


def test_a_run_resumes_from_its_snapshot_without_repeating_visits():
    """A reloaded page resumes at the open scene, with the same visit id, order and state."""
    import json as json_
    from igym.loader import load_experiment
    from igym.records import VisitRecord
    experiment = load_experiment(FLOW)
    run = StudyRun(experiment, "R", condition="fast")
    for _ in range(2):
        visit = run.next_visit()
        run.finish_visit("agreed" if visit.kind == "consent" else "continued", {"mood": 3, "colours": ["red"]}
                         if visit.kind == "survey" else None)
    open_visit = run.next_visit()  # the second mood survey is on screen when the page reloads
    run.state["note"] = "kept"
    saved = json_.loads(json_.dumps(run.snapshot()))
    first_records = run.take_records()
    again = StudyRun.restore(experiment, saved)
    resumed = again.next_visit()
    assert (resumed.visit_id, resumed.name, resumed.position) \
        == (open_visit.visit_id, open_visit.name, open_visit.position)
    assert again.condition == "fast" and again.state["note"] == "kept" and again.plan == run.plan
    again.finish_visit("continued", {"mood": 4, "colours": []})
    rest = []
    while (visit := again.next_visit()) is not None:
        again.finish_visit("played" if visit.kind == "game" else "continued")
    rest = again.take_records()
    ends = [r for r in first_records + rest if isinstance(r, VisitRecord) and r.ended_at is not None]
    assert [r.position for r in ends] == list(range(len(run.plan)))  # every visit ended exactly once
    assert again.status == "completed"
    with pytest.raises(ExperimentError, match="cannot resume"):
        StudyRun.restore(Experiment(id="other", scenes=[Info(text="x")]), saved)


def test_run_study_resumes_a_closed_page_at_its_open_scene(tmp_path):
    """What a reloaded web page does: the run saved after every visit change is restored and
    the study goes on at the scene that was open, each visit recorded once."""
    import asyncio as asyncio_
    from igym.sqlite_sink import SqliteSink
    from igym.loader import load_experiment
    from igym.renderers.app import VirtualClock
    from igym.renderers.study import StudyOptions, run_study
    from igym.renderers.window import Window
    from igym.study import StudyRun
    from igym.web import MemoryStorage
    from igym.upload import load_run, save_run

    experiment = load_experiment(FLOW)
    storage = MemoryStorage()

    def save_then_close(run):
        save_run(run, storage)
        if run.current is not None and run.current.kind == "game":
            # The tab closes as the first game opens: the page's task is stopped (cancelled), which
            # is not the run failing (an exception from the study would mark the run failed).
            raise asyncio_.CancelledError

    def restore(experiment_, pid):
        return load_run(experiment_, pid, storage)

    async def session(save):
        sink = SqliteSink(tmp_path / "resume.sqlite")
        window = Window((640, 360), headless=True)
        try:
            options = StudyOptions(autopilot=True, restore=restore, save=save)
            return await run_study(window, experiment, sink, VirtualClock(60), "W", options=options)
        finally:
            sink.close()
            window.close()

    order = StudyRun(experiment, "W").plan
    with pytest.raises(asyncio_.CancelledError):
        asyncio_.run(session(save_then_close))
    assert load_run(experiment, "W", storage).position == 2  # saved with the game open (consent, mood, mood)
    result = asyncio_.run(session(lambda run: save_run(run, storage)))
    assert result.status == "completed"
    visits = rows(tmp_path / "resume.sqlite", "SELECT position, scene, outcome FROM visits ORDER BY position")
    assert [v[0] for v in visits] == list(range(len(order)))  # every visit once, none repeated
    assert all(v[2] for v in visits)
    assert rows(tmp_path / "resume.sqlite", "SELECT count(*) FROM participants") == [(1,)]
