"""Mountain Car both ways: igym shapes (shapes.py) and the env's own RGB picture (rgb.py).
Real gymnasium, real pygame surfaces (dummy video driver), real SQLite files."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygame
import pytest

from examples.mountain_car import rgb, shapes
from igym.render import Circle, Frame, Image, Line, Polygon
from igym.renderers.draw import FrameRenderer
from igym.session import Session

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}


@pytest.fixture(scope="module")
def screen():
    pygame.display.init()
    yield pygame.display.set_mode(shapes.CANVAS)
    pygame.display.quit()


def close(color, expected, tolerance=10):
    return all(abs(a - b) <= tolerance for a, b in zip(color[:3], expected[:3]))


def test_shapes_golden_pixels(screen):
    env = shapes.make_env()
    env.reset(seed=0)
    env.unwrapped.state = np.array([-0.5, 0.0])  # the car near the valley floor
    renderer = FrameRenderer(screen, shapes.CANVAS, background=shapes.SKY)
    renderer.draw(Frame.of(shapes.render(env)))
    assert close(screen.get_at((300, 60)), shapes.SKY)          # sky above the valley
    assert close(screen.get_at((300, 395)), shapes.HILL)        # hill (Line fill="below")
    assert close(screen.get_at((20, 390)), shapes.HILL)
    x, y = shapes.to_canvas(-0.5, shapes.height(-0.5))
    assert close(screen.get_at((round(x), round(y - shapes.CLEARANCE - shapes.CAR_H / 2))), shapes.CAR)
    fx, fy = shapes.to_canvas(shapes.GOAL_X, shapes.height(shapes.GOAL_X))
    assert close(screen.get_at((round(fx) + 8, round(fy) - 44)), shapes.FLAG)


def test_shapes_render_function():
    env = shapes.make_env()
    env.reset(seed=0)
    drawn = shapes.render(env)
    by_id = {s.id: s for s in drawn}
    hill = by_id["hill"]
    assert isinstance(hill, Line) and hill.fill == "below" and hill.static
    assert isinstance(by_id["car"], Polygon) and isinstance(by_id["wheel_0"], Circle)
    assert [s.id for s in drawn if s.static] == ["sky", "hill", "flag_pole", "flag"]
    again = shapes.render(env)
    assert all(a is b for a, b in zip(drawn, again))  # same state → the same objects
    env.step(2)
    env.step(2)
    moved = {s.id: s for s in shapes.render(env)}
    assert moved["car"] != by_id["car"] and moved["hill"] is hill


def test_rgb_scene_shows_the_env_picture():
    session = Session(rgb.experiment.scenes[0], "tester", max_total_steps=5)
    session.tick(0.0)
    frame = session.frame
    assert len(frame.shapes) == 1 and isinstance(frame.shapes[0], Image)
    assert frame.shapes[0].size == (600, 400)


@pytest.mark.parametrize("name", ["shapes", "rgb"])
def test_headless_play(name, tmp_path):
    data, shot = tmp_path / "mc.sqlite", tmp_path / "mc.png"
    out = subprocess.run([sys.executable, "-m", "igym.play", f"examples/mountain_car/{name}.py", "--headless",
                          "--autopilot", "--max-steps", "200", "--data", str(data), "--screenshot", str(shot)],
                         capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr
    db = sqlite3.connect(data)
    assert db.execute("SELECT count(*), group_concat(DISTINCT agent) FROM steps").fetchone() == (200, "agent_0")
    actions = {a for (a,) in db.execute("SELECT DISTINCT action FROM steps")}
    assert actions <= {"0", "1", "2"} and "1" in actions
    from igym.renderers.draw import hud_strip_for
    assert pygame.image.load(str(shot)).get_size() == (600, 400 + hud_strip_for(400))  # canvas + HUD strip
