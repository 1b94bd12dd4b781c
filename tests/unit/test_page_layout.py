"""Where a page puts things, on a real (dummy-driver) window: read from the pixels drawn."""

import numpy
import pygame
import pytest

from igym.questions import Slider
from igym.renderers.pages import Page
from igym.renderers.window import Window
from igym.scenes import Survey


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (800, 600)])
def test_a_sliders_end_labels_sit_at_the_ends_of_its_track(size):
    """The first label starts where the track starts, the second ends where it ends (they sat
    under 25 % and 75 % of the track)."""
    window = Window(size, headless=True)
    try:
        page = Page(window.surface, Survey(questions=[Slider("warm", "How warm is the room?",
                                                             labels=("freezing", "far too hot"))]))
        page.update(0.0, 0.0)
        page.draw()
        track = page.questions[0].slider.rect  # pygame_gui: on-screen coordinates
        row = pygame.surfarray.array3d(window.surface)[:, track.bottom + 2:track.bottom + 2 + 2 * page.unit]
        ink = numpy.flatnonzero((row @ numpy.array([0.299, 0.587, 0.114]) < 160).any(axis=1))  # the labels' text
        page.close()
    finally:
        window.close()
    left = [x for x in ink if x < track.centerx]
    right = [x for x in ink if x > track.centerx]
    assert left and right, ink
    slack = page.unit // 2  # the glyphs' own side bearings
    assert abs(left[0] - track.left) <= slack, (left[0], track)
    assert abs(right[-1] - (track.right - 1)) <= slack, (right[-1], track)
