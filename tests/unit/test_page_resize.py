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


# --- text scales with the window ----------------------------------------------------------

def ink_height(surface, rect):
    """How many pixel rows inside ``rect`` hold dark (text) pixels: the drawn text's height."""
    rows = 0
    for y in range(rect.top, rect.bottom):
        if any(sum(surface.get_at((x, y))[:3]) < 300 for x in range(rect.left, rect.right, 2)):
            rows += 1
    return rows


def body_and_button(page):
    """The drawn heights of the page's body text and of its Continue button's label."""
    page.update(0.0, 0.0)
    page.draw()
    body = next(e for e in page.container.get_container().elements if "#title" not in e.object_ids)
    box = body.rect.clip(page.surface.get_rect())
    button = page.main_button.rect.inflate(-8, -8)
    return ink_height(page.surface, box), ink_height(page.surface, button)


def test_page_text_is_larger_in_a_larger_window():
    from igym.renderers.pages import Page
    text = Info(title="Instructions", text="Move with the arrow keys, then press Continue.")
    heights = {}
    for size in ((1280, 720), (1920, 1080)):
        surface = pygame.display.set_mode(size)
        page = Page(surface, text)
        heights[size] = body_and_button(page)
        page.close()
    (body_small, button_small), (body_large, button_large) = heights[(1280, 720)], heights[(1920, 1080)]
    assert body_small >= 12 and button_small >= 10, heights  # drawn, at a readable size
    assert body_large >= body_small * 1.3 and button_large >= button_small * 1.3, heights


def test_a_resize_while_a_page_is_open_rescales_its_text():
    from igym.renderers.pages import Page
    window = Window((1280, 720), headless=True)
    page = Page(window.surface, Info(text="Hit the ball over the net."))
    before = body_and_button(page)
    page.relayout(pygame.display.set_mode((1920, 1080)))  # what show_page does on VIDEORESIZE
    after = body_and_button(page)
    page.close()
    window.close()
    assert after[0] >= before[0] * 1.3 and after[1] >= before[1] * 1.3, (before, after)
