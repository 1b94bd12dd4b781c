"""Per-question response times: when each question was first answered, last changed and how
often it changed — timed by the page through every input path (mouse, keys, typing, a slider,
the autopilot), carried by StudyRun, the page message and uploaded records into the answers
table; page focus changes recorded with their visit, on the desktop and over the network."""

import asyncio
import json
import math
import sqlite3
from pathlib import Path

import pygame
import pytest
import websockets

from igym import answer_times, wire
from igym.answer_times import AnswerTimes
from igym.loader import load_experiment
from igym.questions import Choice, FreeText, Likert, MultiChoice, Slider
from igym.records import VisitRecord, from_wire, to_wire
from igym.renderers.app import VirtualClock
from igym.renderers.pages import Page, show_page
from igym.renderers.window import Window
from igym.scenes import Survey
from tests.serving import RawClient, start, stop

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "tests" / "experiments" / "flow_study.py"
NET_STUDY = ROOT / "tests" / "experiments" / "net_study.py"


def rows(path, sql, *params):
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def test_the_rules_first_answer_last_change_changes():
    times = AnswerTimes(["a", "b", "c"])
    times.observe("a", None, 0.5)  # nothing yet
    times.observe("a", "", 0.7)  # still nothing (an empty text box)
    times.observe("a", "h", 1.0)
    times.observe("a", "h", 1.5)  # read again, unchanged: not a change
    times.observe("a", "hi", 2.0)
    times.observe("a", "", 2.5)  # erased: a change, and the question counts as first answered at 1.0
    times.observe("b", [], 1.0)
    times.observe("b", ["x"], 3.25)
    times.observe("nope", 1, 1.0)  # not a question of the page: ignored
    assert times.report() == {"a": {"first_s": 1.0, "last_s": 2.5, "changes": 2},
                              "b": {"first_s": 3.25, "last_s": 3.25, "changes": 0},
                              "c": {"first_s": None, "last_s": None, "changes": 0}}
    compact = answer_times.to_wire(times.report())
    assert compact == {"a": {"f": 1.0, "l": 2.5, "c": 2}, "b": {"f": 3.25, "l": 3.25, "c": 0}}
    assert answer_times.from_wire(compact) == {k: v for k, v in times.report().items() if k != "c"}


@pytest.mark.parametrize("times, wrong", [
    ({"x": {"first_s": 1.0, "last_s": 2.0, "changes": 1}}, "not a question of this page"),
    ({"a": {"first_s": 3.0, "last_s": 2.0, "changes": 1}}, "before the first answer"),
    ({"a": {"first_s": -1.0, "last_s": 2.0, "changes": 1}}, "seconds from 0"),
    ({"a": {"first_s": math.nan, "last_s": 2.0, "changes": 0}}, "seconds from 0"),
    ({"a": {"first_s": 1.0, "last_s": math.inf, "changes": 0}}, "seconds from 0"),
    ({"a": {"first_s": None, "last_s": None, "changes": 3}}, "changes only after an answer"),
    ({"a": {"first_s": 1.0, "last_s": 1.0, "changes": -1}}, "whole number"),
])
def test_times_that_cannot_be_true_are_named(times, wrong):
    assert wrong in answer_times.problem(times, ["a", "b"])
    assert answer_times.problem({"a": {"first_s": 1.0, "last_s": 2.0, "changes": 4}}, ["a", "b"]) is None


# --- the page, through every input path ------------------------------------------------------

SURVEY = Survey(questions=[Likert("l", "Rate it", points=7), Choice("c", "Pick one", options=["x", "y", "z"]),
                           MultiChoice("m", "Pick any", options=["p", "q", "r"]),
                           Slider("s", "Slide", min=0, max=10, step=1), FreeText("t", "Say something")])


def post_key(code, unicode=""):
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=code, unicode=unicode, mod=0, scancode=0))


def click(pos):
    for kind in (pygame.MOUSEBUTTONDOWN, pygame.MOUSEBUTTONUP):
        pygame.event.post(pygame.event.Event(kind, pos=pos, button=1, touch=False))


async def at(clock, t):
    while clock.now() < t:
        await asyncio.sleep(0)


def test_a_survey_page_times_each_question_through_mouse_keys_typing_and_a_slider():
    window = Window((1280, 720), headless=True)
    clock = VirtualClock(60)
    twin = Page(window.surface, SURVEY)  # the same layout, to find where the widgets are
    likert_3 = twin.questions[0].buttons[2].rect.center
    box_q = twin.questions[2].boxes[1].rect.center
    twin.close()
    events = []

    async def participant():
        await at(clock, 0.5)
        click(likert_3)  # the mouse: Likert 3
        await at(clock, 1.0)
        post_key(pygame.K_5, "5")  # a key: Likert 5 (a change)
        await at(clock, 1.5)
        post_key(pygame.K_TAB)
        post_key(pygame.K_DOWN)  # choice "y"
        await at(clock, 2.0)
        post_key(pygame.K_DOWN)  # choice "z" (a change)
        await at(clock, 2.5)
        post_key(pygame.K_TAB)
        post_key(pygame.K_SPACE)  # ticks "p"
        await at(clock, 2.8)
        click(box_q)  # ticks "q" with the mouse (a change)
        await at(clock, 3.0)
        pygame.event.post(pygame.event.Event(pygame.WINDOWFOCUSLOST))
        await at(clock, 3.1)
        pygame.event.post(pygame.event.Event(pygame.WINDOWFOCUSGAINED))
        post_key(pygame.K_TAB)
        post_key(pygame.K_RIGHT)  # the slider moves from its start (5) to 6
        await at(clock, 3.5)
        post_key(pygame.K_TAB)
        pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text="hi"))
        await at(clock, 3.7)
        pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text="!"))  # typing on: a change
        await at(clock, 4.0)
        post_key(pygame.K_RETURN)
        await at(clock, 6.0)
        pygame.event.post(pygame.event.Event(pygame.QUIT))  # never reached when the page ends

    async def main():
        helper = asyncio.create_task(participant())
        result = await show_page(window, SURVEY, clock, on_event=lambda kind, data: events.append((kind, data)))
        helper.cancel()
        return result

    result = asyncio.run(main())
    window.close()
    assert not result.quit and result.answers == {"l": 5, "c": "z", "m": ["p", "q"], "s": 6, "t": "hi!"}
    expected = {"l": (0.5, 1.0, 1), "c": (1.5, 2.0, 1), "m": (2.5, 2.8, 1), "s": (3.1, 3.1, 0), "t": (3.5, 3.7, 1)}
    for question, (first, last, changes) in expected.items():
        got = result.timings[question]
        assert got["first_s"] == pytest.approx(first, abs=0.05), (question, got)
        assert got["last_s"] == pytest.approx(last, abs=0.05), (question, got)
        assert got["changes"] == changes, (question, got)
    focus = [(kind, data["page_s"]) for kind, data in events if kind.startswith("focus")]
    assert [k for k, _ in focus[-2:]] == ["focus_lost", "focus_gained"]  # (SDL may say "gained" as it opens)
    assert focus[-2][1] == pytest.approx(3.0, abs=0.05) and focus[-1][1] == pytest.approx(3.1, abs=0.05)


def test_a_resize_is_not_an_answer_change():
    window = Window((1280, 720), headless=True)
    page = Page(window.surface, SURVEY, now=0.0)
    page.handle(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_3, unicode="3", mod=0, scancode=0), 1.0)
    page.relayout(pygame.display.set_mode((1600, 900)))  # the widgets are rebuilt and refilled
    page.handle(pygame.event.Event(pygame.MOUSEMOTION, pos=(5, 5), rel=(0, 0), buttons=(0, 0, 0), touch=False), 2.0)
    page.close()
    window.close()
    assert page.answer_times.report()["l"] == {"first_s": 1.0, "last_s": 1.0, "changes": 0}


# --- desktop: StudyRun → the answers table; focus with its visit ----------------------------------

def test_a_desktop_study_stores_each_answers_times_and_page_focus_with_its_visit(tmp_path):
    from igym.renderers.study import StudyOptions, run_study
    from igym.sqlite_sink import SqliteSink

    experiment = load_experiment(FLOW)
    data = tmp_path / "flow.sqlite"

    async def session():
        sink = SqliteSink(data)
        window = Window((1280, 720), headless=True)
        try:
            # The window loses and gets back the focus as the first page (the consent form) opens.
            pygame.event.post(pygame.event.Event(pygame.WINDOWFOCUSLOST))
            pygame.event.post(pygame.event.Event(pygame.WINDOWFOCUSGAINED))
            return await run_study(window, experiment, sink, VirtualClock(60), "T",
                                   options=StudyOptions(autopilot=True))
        finally:
            sink.close()
            window.close()

    assert asyncio.run(session()).status == "completed"
    answers = rows(data, "SELECT scene, question, first_s, last_s, changes FROM answers")
    assert len(answers) == 2 + 2 + 1  # mood twice (two questions), final
    for scene, question, first, last, changes in answers:
        assert 0 < first <= last < 1.0 and changes == 0, (scene, question, first, last)  # the autopilot: one go
    consent = rows(data, "SELECT visit_id FROM visits WHERE scene='consent'")[0][0]
    focus = rows(data, "SELECT kind, data FROM events WHERE kind LIKE 'focus%' ORDER BY event_id")
    assert "focus_lost" in [k for k, _ in focus] and focus[-1][0] == "focus_gained"
    assert all(json.loads(d)["visit"] == consent and "page_s" in json.loads(d) for _, d in focus)


# --- over the network: the page message, checked by the server ------------------------------------

async def _to_the_survey(client):
    consent = await client.wait_for("page")
    await client.connection.send(wire.pack({"t": "page", "v": consent["v"], "o": "agreed"}))
    intro = await client.wait_for("page", count=2)
    await client.connection.send(wire.pack({"t": "page", "v": intro["v"], "o": "continued"}))
    return await client.wait_for("page", count=3)


def test_a_networked_survey_stores_the_clients_times_and_focus_with_its_visit(tmp_path):
    path = tmp_path / "net.sqlite"

    async def main():
        server, task, url, _ = await start(load_experiment(NET_STUDY), path)
        try:
            client = await RawClient(url, "W").open()
            survey = await _to_the_survey(client)
            await client.connection.send(wire.pack({"t": "focus", "f": 0}))
            await client.connection.send(wire.pack({"t": "focus", "f": 1}))
            await client.connection.send(wire.pack({
                "t": "page", "v": survey["v"], "o": "continued", "a": {"ready": 4, "hand": "left"},
                "tm": {"ready": {"f": 2.5, "l": 7.25, "c": 3}, "hand": {"f": 9.0, "l": 9.0}}}))
            await client.wait_for("page", count=4)  # the game's instructions: the survey is stored
            return survey["v"]
        finally:
            await stop(server, task)

    visit = asyncio.run(main())
    times = rows(path, "SELECT question, first_s, last_s, changes FROM answers")
    assert dict((q, (f, last, c)) for q, f, last, c in times) == {"ready": (2.5, 7.25, 3), "hand": (9.0, 9.0, 0)}
    focus = rows(path, "SELECT kind, data FROM events WHERE kind LIKE 'focus%' ORDER BY event_id")
    assert [(k, json.loads(d)) for k, d in focus] == [("focus_lost", {"visit": visit}),
                                                      ("focus_gained", {"visit": visit})]


@pytest.mark.parametrize("tm, reason", [
    ({"nope": {"f": 1.0, "l": 1.0}}, "not a question of this page"),
    ({"ready": {"f": 5.0, "l": 2.0}}, "before the first answer"),
    ({"ready": {"f": -1.0, "l": 2.0}}, "field 'tm'"),  # the wire: numbers ≥ 0
    ({"ready": {"f": math.nan, "l": 2.0}}, "field 'tm'"),  # the wire: finite
    ({"ready": {"f": 1.0, "l": 2.0, "c": 1.5}}, "field 'tm'"),  # changes are whole
    ({"ready": {"l": 2.0}}, "field 'tm'"),  # a first answer is needed
])
def test_page_times_that_cannot_be_true_close_only_that_connection(tmp_path, tm, reason):
    path = tmp_path / "bad.sqlite"

    async def main():
        server, task, url, _ = await start(load_experiment(NET_STUDY), path)
        try:
            client = await RawClient(url, "X").open()
            survey = await _to_the_survey(client)
            await client.connection.send(wire.pack({"t": "page", "v": survey["v"], "o": "continued",
                                                    "a": {"ready": 4, "hand": "left"}, "tm": tm}))
            await asyncio.wait_for(client.reader, 10)
            return client.connection.close_code, client.connection.close_reason
        finally:
            await stop(server, task)

    code, why = asyncio.run(main())
    assert code == wire.CLOSE_POLICY and reason in why, why
    assert rows(path, "SELECT count(*) FROM answers") == [(0,)]


def test_times_on_a_page_without_questions_are_refused(tmp_path):
    async def main():
        server, task, url, _ = await start(load_experiment(NET_STUDY), tmp_path / "c.sqlite")
        try:
            client = await RawClient(url, "Y").open()
            consent = await client.wait_for("page")
            await client.connection.send(wire.pack({"t": "page", "v": consent["v"], "o": "agreed",
                                                    "tm": {"ready": {"f": 1.0, "l": 1.0}}}))
            await asyncio.wait_for(client.reader, 10)
            return client.connection.close_reason
        finally:
            await stop(server, task)

    assert "no questions to time" in asyncio.run(main())


def test_the_desktop_client_sends_a_pages_focus_changes(tmp_path):
    """The networked desktop client (in this process, its real window loop): the window loses
    and regains the focus on the consent page, and the server records both with that visit."""
    from igym.renderers.client import run_client
    path = tmp_path / "client.sqlite"

    async def main():
        server, task, url, _ = await start(load_experiment(NET_STUDY), path)
        client = asyncio.create_task(run_client(url, "D", headless=True))
        try:
            while not (pygame.display.get_init() and pygame.display.get_surface() is not None):
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # the consent page is on screen
            for kind in (pygame.WINDOWFOCUSLOST, pygame.WINDOWFOCUSGAINED):
                pygame.event.post(pygame.event.Event(kind))
            await asyncio.sleep(0.2)
            post_key(pygame.K_RETURN)  # agree
            deadline = asyncio.get_running_loop().time() + 10
            while not rows(path, "SELECT 1 FROM visits WHERE scene='consent' AND outcome='agreed'"):
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
        finally:
            client.cancel()
            try:
                await client
            except (asyncio.CancelledError, websockets.ConnectionClosed):
                pass
            await stop(server, task)
            pygame.display.quit()

    asyncio.run(main())
    consent = rows(path, "SELECT visit_id FROM visits WHERE scene='consent'")[0][0]
    focus = rows(path, "SELECT kind, data FROM events WHERE kind LIKE 'focus%' ORDER BY event_id")
    # (SDL's own "gained" as the window opens, before any scene, has no visit)
    assert [(k, json.loads(d)) for k, d in focus if d] == [("focus_lost", {"visit": consent}),
                                                           ("focus_gained", {"visit": consent})]


# --- uploads: the visit record's new last field -----------------------------------------------------

def test_visit_records_carry_their_times_and_records_of_older_pages_still_load():
    times = {"fun": {"first_s": 1.5, "last_s": 3.0, "changes": 1}}
    visit = VisitRecord("V", "P", 1, "s", "survey", 10.0, 20.0, "continued", {"fun": 4}, None, times)
    item = to_wire(visit)
    assert from_wire(item) == visit and wire.records_from_upload([item]) == [visit]
    older = item[:-1]  # a page built before visits had times
    assert wire.records_from_upload([older])[0].timings is None
    bad = item[:-1] + [{"fun": {"first_s": -2.0, "last_s": 3.0, "changes": 1}}]
    with pytest.raises(wire.ProtocolError, match="field 11"):
        wire.records_from_upload([bad])
    with pytest.raises(wire.ProtocolError, match="10 to 12"):  # the last: the page's question definitions
        wire.records_from_upload([item + [None, None]])


def test_an_uploaded_visit_with_times_for_unanswered_questions_is_refused(tmp_path):
    from tests.integration.test_collect import run, upload
    good = VisitRecord("V1", "up", 0, "before", "survey", 10.0, 20.0, "continued", {"ready": 4},
                       None, {"ready": {"first_s": 1.0, "last_s": 2.0, "changes": 0}})
    forged = VisitRecord("V2", "up2", 0, "before", "survey", 10.0, 20.0, "continued", {"ready": 4},
                         None, {"hand": {"first_s": 1.0, "last_s": 2.0, "changes": 0}})

    async def scenario(url):
        await upload(url, "up", [("b1", [good])])
        try:
            await upload(url, "up2", [("b2", [forged])])
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.reason

    reason = run(tmp_path, True, scenario)
    assert "not a question of this page" in reason
    assert rows(tmp_path / "collect.sqlite", "SELECT visit_id, question, first_s, last_s, changes FROM answers") == [
        ("V1", "ready", 1.0, 2.0, 0)]


@pytest.mark.parametrize("version", [2, 3])
def test_files_whose_answers_have_no_times_get_the_columns_and_keep_their_rows(tmp_path, version):
    """A version 2 file (migrated) and a version 3 file written before answers had times: the
    columns are added, the answers already there stay, untimed (NULL)."""
    from igym.sqlite_sink import SCHEMA_VERSION, SqliteSink
    path = tmp_path / f"v{version}.sqlite"
    with SqliteSink(path) as sink:
        sink.write([VisitRecord("V0", "P", 0, "s", "survey", 1.0, 2.0, "continued", {"old": 3})])
    db = sqlite3.connect(path)
    for column in ("first_s", "last_s", "changes"):
        db.execute(f"ALTER TABLE answers DROP COLUMN {column}")
    db.execute("UPDATE schema_version SET version=?", (version,))
    db.commit()
    db.close()
    with SqliteSink(path) as sink:
        sink.write([VisitRecord("V1", "P", 1, "s", "survey", 3.0, 9.0, "continued", {"new": 4}, None,
                                {"new": {"first_s": 1.5, "last_s": 2.5, "changes": 1}})])
    assert rows(path, "SELECT question, value, first_s, last_s, changes FROM answers ORDER BY question") == [
        ("new", "4", 1.5, 2.5, 1), ("old", "3", None, None, None)]
    assert rows(path, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
