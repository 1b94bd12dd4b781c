"""A page survives a window resize: what the participant typed and the page's clock stay."""

import asyncio

import pygame

from igym.questions import FreeText, Likert, MultiChoice
from igym.renderers.app import VirtualClock
from igym.renderers.pages import show_page
from igym.renderers.window import Window
from igym.scenes import Info, Survey


def key(code, unicode=""):
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=code, unicode=unicode, mod=0, scancode=0))


def resize(size):
    pygame.display.set_mode(size, pygame.RESIZABLE)
    pygame.event.post(pygame.event.Event(pygame.VIDEORESIZE, size=size, w=size[0], h=size[1]))


async def at(clock, t):
    while clock.now() < t:
        await asyncio.sleep(0)


def test_answers_survive_a_resize():
    window = Window((1280, 720), headless=True)
    clock = VirtualClock(60)
    survey = Survey(questions=[Likert("l", "Rate it", points=7), FreeText("t", "Say something"),
                               MultiChoice("m", "Pick any", options=["x", "y", "z"])])
    events = []

    async def participant():
        await at(clock, 0.1)
        key(pygame.K_6, "6")
        key(pygame.K_TAB)
        await at(clock, 0.2)
        pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text="fine"))
        key(pygame.K_TAB)
        key(pygame.K_SPACE)  # ticks x
        await at(clock, 0.4)
        resize((1920, 1080))
        await at(clock, 0.6)
        key(pygame.K_RETURN)
        await at(clock, 1.5)
        pygame.event.post(pygame.event.Event(pygame.QUIT))  # answers lost: the page would never end

    async def main():
        helper = asyncio.create_task(participant())
        result = await show_page(window, survey, clock, on_event=lambda kind, data: events.append((kind, data)))
        helper.cancel()
        return result

    result = asyncio.run(main())
    window.close()
    assert not result.quit and result.answers == {"l": 6, "t": "fine", "m": ["x"]}
    assert ("resize", {"size": [1920, 1080]}) in events


def test_a_resize_does_not_restart_the_minimum_time():
    window = Window((1280, 720), headless=True)
    clock = VirtualClock(60)
    info = Info(text="Read **this** first.", min_time_s=2)

    async def participant():
        await at(clock, 1.0)
        resize((1600, 900))
        await at(clock, 1.5)
        key(pygame.K_RETURN)  # too early: ignored
        await at(clock, 2.2)
        key(pygame.K_RETURN)
        await at(clock, 3.5)
        key(pygame.K_RETURN)  # a restarted clock would only let this one through

    async def main():
        helper = asyncio.create_task(participant())
        result = await show_page(window, info, clock)
        helper.cancel()
        return result, clock.now()

    result, ended = asyncio.run(main())
    window.close()
    assert result.outcome == "continued"
    assert ended < 2.5  # a restarted clock (at 1.0) would have held the button until 3.0
