"""Participants never see internal names: a game's instructions page has a title of its own
(default "Next round"), on the desktop and over the network, and a title that spells a scene,
group or condition name is warned about when the experiment loads — in one line from the
command-line tools."""

import asyncio
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pygame
import pytest

from igym import wire
from igym.controls import KeyMap
from igym.errors import ExperimentWarning
from igym.experiment import Consent, End, Experiment, Game, Info, Likert, RandomOrder, Survey
from igym.loader import load_experiment
from tests.serving import RawClient, start, stop
from tests.toy_envs import LineRace

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
SHIPPED = sorted(p for p in (ROOT / "examples").rglob("*.py")
                 if "experiment = Experiment(" in p.read_text() or "experiment=Experiment(" in p.read_text())


LEAKY = "from igym import Experiment, Info\nexperiment = Experiment(id='leaky', scenes=[Info(name='about_you', " \
        "title='About you', text='Hello.')])\n"


def race(name, **more):
    return Game(name=name, env=lambda: LineRace(goal=3), canvas=(200, 100), render=lambda env: [],
                seats={"a": "human", "b": "random"}, keys=KeyMap({"right": 1}, default_action=0), fps=30,
                episodes=1, max_steps=20, seeds=1, **more)


def test_a_games_instructions_page_has_its_own_title_never_the_scene_name():
    blind = race("block_strong", instructions="A new opponent. Play as well as you can.")
    page = blind.instructions_page()
    assert page.title == "Next round" and page.button == "Start" and page.text == blind.instructions
    assert race("block_weak", instructions="x", title="Round 2").instructions_page().title == "Round 2"
    assert race("block_weak").instructions_page() is None  # no instructions, no page
    with pytest.raises(Exception, match="title must be text"):
        race("b", instructions="x", title=3)


def test_the_desktop_draws_the_title_and_not_the_scene_name(tmp_path):
    """The study driver's screenshot of the instructions page is pixel for pixel the page with the
    neutral title, and not the one titled with the scene's name (as it was)."""
    from igym.renderers.app import VirtualClock
    from igym.renderers.pages import Page
    from igym.renderers.study import StudyOptions, run_study
    from igym.renderers.window import Window
    from igym.sqlite_sink import SqliteSink

    game = race("block_strong", instructions="A new opponent. Play as well as you can.")
    experiment = Experiment(id="blind", scenes=[game])
    shots = tmp_path / "shots"

    async def session():
        sink = SqliteSink(tmp_path / "blind.sqlite")
        window = Window((1280, 720), headless=True)
        try:
            await run_study(window, experiment, sink, VirtualClock(60), "P",
                            options=StudyOptions(autopilot=True, screenshots=shots))
        finally:
            sink.close()

    asyncio.run(session())
    shown = pygame.image.load(str(shots / "00_block_strong_instructions.png"))

    def drawn(title):
        surface = pygame.display.set_mode((1280, 720))
        page = Page(surface, Info(text=game.instructions, title=title, button="Start"))
        page.update(0.0, 0.0)
        page.draw()
        picture = surface.copy()
        page.close()
        return picture

    def same(a, b):
        return pygame.image.tobytes(a, "RGB") == pygame.image.tobytes(b, "RGB")

    assert same(shown, drawn("Next round"))
    assert not same(shown, drawn("Block strong"))
    pygame.display.quit()


def test_pages_over_the_network_carry_no_scene_names(tmp_path):
    """What the server sends a participant's machine: the instructions page titled "Next round",
    and no page (survey or instructions) with the scene's name in it."""
    from examples.slime_volleyball.study import KEYS
    from examples.slime_volleyball.slime import SlimeVolleyEnv
    experiment = Experiment(id="blind_net", scenes=[
        Survey(name="survey_strong", title="A few questions", questions=[Likert("fun", "It was fun.", points=5)]),
        Game(name="block_strong", env=SlimeVolleyEnv, seats={"agent_left": "human", "agent_right": "random"},
             keys=KEYS, fps=30, max_steps=30, seeds=1, instructions="A new opponent."),
        End(name="end"),
    ])

    async def main():
        server, task, url, _ = await start(experiment, tmp_path / "net.sqlite")
        try:
            client = await RawClient(url, "N").open()
            survey = await client.wait_for("page")
            await client.connection.send(wire.pack({"t": "page", "v": survey["v"], "o": "continued",
                                                    "a": {"fun": 4}}))
            intro = await client.wait_for("page", count=2)
            return survey, intro
        finally:
            await stop(server, task)

    survey, intro = asyncio.run(main())
    assert intro["page"]["kind"] == "info" and intro["page"]["fields"]["title"] == "Next round"
    assert b"block_strong" not in wire.pack(intro) and b"block strong" not in wire.pack(intro).lower()
    assert b"survey_strong" not in wire.pack(survey) and survey["page"]["fields"]["title"] == "A few questions"


# --- the warning ------------------------------------------------------------------------------

@pytest.mark.parametrize("scenes, conditions, named", [
    ([Survey(name="about_you", title="About you", questions=[Likert("a", "x")])], None, "about_you"),
    ([Info(name="intro", title="Block strong", text="x"), race("block_strong")], None, "scene 'block_strong'"),
    ([race("round", instructions="x", title="Strong AI")], {"strong_ai": {"round": {"max_steps": 5}}},
     "condition 'strong_ai'"),
    ([RandomOrder([race("a", instructions="x", title="Blocks"), race("b")], name="blocks")], None,
     "the group 'blocks'"),
    ([race("a", instructions="x")], {"c": {"a": {"title": "A"}}}, "condition 'c'"),  # a title a condition sets
])
def test_a_title_that_spells_an_internal_name_is_named_with_the_fix(scenes, conditions, named):
    messages = Experiment(id="leaky", scenes=scenes, conditions=conditions).visible_names()
    assert len(messages) == 1 and named in messages[0] and "title=" in messages[0], messages


def test_loading_a_file_with_such_a_title_warns(tmp_path):
    leaky = tmp_path / "leaky_load.py"
    leaky.write_text(LEAKY)
    with pytest.warns(ExperimentWarning, match="'about_you'"):
        load_experiment(leaky)


def test_neutral_and_default_titles_are_fine():
    fine = Experiment(id="fine", scenes=[Consent(name="consent", text="x"),
                                         Info(name="instructions", title="How to play", text="x"),
                                         race("practice", instructions="x"), End(name="thank_you")])
    assert fine.visible_names() == []


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(ROOT)) for p in SHIPPED])
def test_shipped_experiments_show_no_internal_names(path):
    if "overcooked" in str(path):
        pytest.importorskip("cogrid")
    if "pettingzoo" in str(path):
        pytest.importorskip("pymunk")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        experiment = load_experiment(path)
    assert not [str(w.message) for w in caught if issubclass(w.category, ExperimentWarning)]
    assert experiment.visible_names() == []


def test_play_prints_the_warning_as_one_line(tmp_path):
    leaky = tmp_path / "leaky.py"
    leaky.write_text(LEAKY)
    out = subprocess.run([sys.executable, "-m", "igym.play", str(leaky), "--headless", "--autopilot", "--data",
                          str(tmp_path / "d.sqlite")], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("igym: warning: ") and "'about_you'" in lines[0], out.stderr
    assert "title=" in lines[0]


def test_the_server_prints_the_warning_as_one_line(tmp_path):
    leaky = tmp_path / "leaky.py"
    leaky.write_text(LEAKY)
    server = subprocess.Popen([sys.executable, "-m", "igym.server", str(leaky), "--port", "0", "--data",
                               str(tmp_path / "s.sqlite")], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert "igym server" in server.stdout.readline()
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    warned = [line for line in err.splitlines() if "warning" in line.lower()]
    assert len(warned) == 1 and warned[0].startswith("igym: warning: ") and "'about_you'" in warned[0], err
    assert "Traceback" not in err and "warnings.warn" not in err
