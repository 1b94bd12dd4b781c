"""Gamepad axes and the pointer through the real window and app loop: pygame events posted into
the event queue (no physical gamepad here), a real Session, a real SQLite file."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3

import numpy as np
import pygame
import pytest

from igym.controls import KeyMap
from igym.sqlite_sink import SqliteSink
from igym.experiment import Game
from igym.gymenv import gym_game
from igym.render import Rect
from igym.renderers.app import VirtualClock, run_session
from igym.renderers.draw import FrameRenderer
from igym.renderers.window import Window, fit_window
from igym.session import Session
from tests.toy_envs import LineRace


class Poster:
    """Posts pygame events at given times (what a pad or a mouse would put in the queue)."""

    def __init__(self, timeline: list[tuple[float, pygame.event.Event]]) -> None:
        self.timeline = sorted(timeline, key=lambda item: item[0])

    def play(self, session: Session, now: float) -> None:
        while self.timeline and self.timeline[0][0] <= now:
            pygame.event.post(self.timeline.pop(0)[1])


def axis_event(axis: int, value: float) -> pygame.event.Event:
    return pygame.event.Event(pygame.JOYAXISMOTION, joy=0, instance_id=0, axis=axis, value=value)


def rows(path, agent="agent_0"):
    db = sqlite3.connect(path)
    return db.execute("SELECT step, action, source, keys, extra FROM steps WHERE agent=? ORDER BY step",
                      (agent,)).fetchall()


def drive(window, session, path, poster):
    with SqliteSink(path) as sink:
        asyncio.run(run_session(window, session, sink, VirtualClock(60.0), autopilot=poster))


def test_a_stick_drives_mountain_car_continuous_and_its_raw_values_are_recorded(tmp_path):
    game = dataclasses.replace(gym_game("MountainCarContinuous-v0"), max_steps=40, seeds=1)
    window = Window(fit_window(game.canvas, hud=True), headless=True)
    try:
        session = Session(game, "pad")
        drive(window, session, tmp_path / "pad.sqlite",
              Poster([(0.2, axis_event(0, -0.8)), (0.6, axis_event(0, 0.05)), (0.9, axis_event(0, 1.0))]))
    finally:
        window.close()
    steps = rows(tmp_path / "pad.sqlite")
    assert len(steps) == 40
    by_raw = {}
    for _step, action, source, keys, extra in steps:
        raw = json.loads(extra)["axis.0"]
        by_raw.setdefault(raw, set()).add((action, source, keys))
    assert set(by_raw) == {None, -0.8, 0.05, 1.0}  # before the first move: no value yet
    # the built-in map: Axis(0, 0), dead zone 0.1, the Box's bounds -1..1
    pushed = float(np.float32(-(0.8 - 0.1) / 0.9))
    assert by_raw[-0.8] == {(json.dumps([pushed]), "human", "")}
    assert by_raw[0.05] == {("[0.0]", "default", "")}  # inside the dead zone
    assert by_raw[1.0] == {("[1.0]", "human", "")}
    assert by_raw[None] == {("[0.0]", "default", "")}


def test_pointer_clicks_become_actions_in_canvas_coordinates(tmp_path):
    def right_half(x, y, buttons):
        return 1 if buttons & 1 and x >= 300 else None

    game = Game(env=lambda: LineRace(goal=1000), seats={"a": "human", "b": "random"}, canvas=(600, 400), fps=30,
                max_steps=30, seeds=2,
                keys=KeyMap({"left": 2}, default_action=0, pointer=right_half), fingerprints=False,
                render=lambda env: [Rect("floor", 0, 0, 600, 400, (40, 40, 40))])
    window = Window((1000, 1000), headless=True)  # letterboxed: the canvas is scaled and moved
    try:
        layout = FrameRenderer(window.surface, game.canvas, hud=True)
        inside = layout.to_screen(450, 100)
        left = layout.to_screen(150, 100)
        session = Session(game, "mouse")
        press = pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=tuple(map(round, inside)), button=1)
        move = pygame.event.Event(pygame.MOUSEMOTION, pos=tuple(map(round, left)), rel=(0, 0), buttons=(1, 0, 0))
        release = pygame.event.Event(pygame.MOUSEBUTTONUP, pos=tuple(map(round, left)), button=1)
        drive(window, session, tmp_path / "mouse.sqlite", Poster([(0.2, press), (0.5, move), (0.7, release)]))
    finally:
        window.close()
    steps = [(json.loads(a), s, json.loads(e)) for _, a, s, _, e in rows(tmp_path / "mouse.sqlite", "a")]
    assert len(steps) == 30
    clicked = [(a, s, e) for a, s, e in steps if e["pointer.buttons"] == 1 and e["pointer.x"] > 300]
    dragged = [(a, s, e) for a, s, e in steps if e["pointer.buttons"] == 1 and e["pointer.x"] < 300]
    released = [(a, s, e) for a, s, e in steps if e["pointer.buttons"] == 0 and e["pointer.x"] is not None]
    assert clicked and dragged and released
    assert all(a == 1 and s == "human" for a, s, _ in clicked)
    assert all(a == 0 and s == "default" for a, s, _ in dragged + released)
    assert all(e["pointer.x"] == pytest.approx(450, abs=1) and e["pointer.y"] == pytest.approx(100, abs=1)
               for _, _, e in clicked)  # the letterbox undone


def test_the_hud_never_covers_the_env_picture():
    """FrozenLake's start cell (where the player stands) is the top-left of its picture: the whole
    picture must be on screen, pixel for pixel, with the HUD drawn."""
    game = gym_game("FrozenLake-v1")
    window = Window(fit_window(game.canvas, hud=True), headless=True)
    try:
        session = Session(game, "hud")
        session.tick(0.0)
        renderer = FrameRenderer(window.surface, game.canvas, hud=True)
        renderer.draw(session.frame)
        assert session.frame.hud and renderer.hud_rect.bottom <= renderer.view.top
        picture = session.env.render()
        view = renderer.view
        assert view.size == game.canvas  # shown at scale 1
        shown = pygame.surfarray.array3d(window.surface.subsurface(view)).transpose(1, 0, 2)
        assert np.array_equal(shown, picture)
        strip = pygame.surfarray.array3d(window.surface.subsurface(renderer.hud_rect))
        assert strip.max() > 200  # the HUD's text is there, in its own strip
    finally:
        window.close()
