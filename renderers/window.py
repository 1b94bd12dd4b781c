"""The pygame window: display set-up, events translated to igym's plain key names.

Everything pygame-specific about input lives here, so the session only ever sees key
names such as ``"left"`` or ``"space"`` (pygame's ``key.name`` spelling). The same class
runs on the desktop, headless (``SDL_VIDEODRIVER=dummy``) and under pygbag.

Gamepads become key names too, so a key map can use them like keys:
``"joy button 0"`` … (buttons by index), ``"joy hat up"``/``down``/``left``/``right`` (the
d-pad), and ``"joy axis 0-"``/``"joy axis 0+"`` (a stick pushed past half way; axis 0 is
the left stick's x, 1 its y on most pads). With several pads, all of them drive the same
names; the events record which pad (``joy``) pressed. Stick and trigger moves also arrive as
``axis`` events with the raw value (-1..1), for key maps whose :class:`igym.controls.Axis`
drive continuous actions. The mouse arrives as ``pointer`` events: the position in window
pixels and the buttons held (bits: 1 left, 2 middle, 4 right).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any, cast

import pygame

from .draw import hud_strip_for

IS_BROWSER = sys.platform == "emscripten"
DEFAULT_MAX_WINDOW = (1280, 800)
AXIS_ON = 0.5  # a stick counts as pressed beyond this …
AXIS_OFF = 0.35  # … and released below this (hysteresis: no flicker around the threshold)
_HAT_NAMES = (((-1, 0), "joy hat left"), ((1, 0), "joy hat right"), ((0, 1), "joy hat up"), ((0, -1), "joy hat down"))


@dataclass(frozen=True, slots=True)
class InputEvent:
    """A translated event: kind is down, up, axis, pointer, quit, focus or resize."""

    kind: str
    key: str = ""
    gained: bool = False
    mods: int = 0
    axis: int = -1
    value: float = 0.0
    pos: tuple[int, int] = (0, 0)
    buttons: int = 0


def fit_window(canvas: tuple[int, int], limit: tuple[int, int] = DEFAULT_MAX_WINDOW, *,
               hud: bool = False) -> tuple[int, int]:
    """The largest window of the canvas' aspect ratio that fits ``limit`` (never upscaled);
    with ``hud``, plus the HUD strip above the canvas (see :func:`.draw.hud_height`)."""
    cw, ch = canvas
    room = limit[1] - (hud_strip_for(limit[1]) if hud else 0)
    scale = min(1.0, limit[0] / cw, room / ch)
    width, height = max(1, round(cw * scale)), max(1, round(ch * scale))
    return width, height + (hud_strip_for(height) if hud else 0)


class Window:
    """Owns the pygame display surface and turns pygame events into :class:`InputEvent`."""

    def __init__(self, size: tuple[int, int], *, fullscreen: bool = False, title: str = "igym",
                 headless: bool = False, hide_mouse: bool = False) -> None:
        if headless:
            os.environ["SDL_VIDEODRIVER"] = "dummy"
            os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        pygame.display.init()
        pygame.font.init()
        pygame.display.set_caption(title)
        flags = 0
        if fullscreen and not headless:
            flags |= pygame.FULLSCREEN
            size = (0, 0)
        elif not IS_BROWSER:
            flags |= pygame.RESIZABLE
        self.flags = flags
        self.surface = pygame.display.set_mode(size, flags)
        self.size = self.surface.get_size()
        self.resized = False
        if hide_mouse:
            pygame.mouse.set_visible(False)
        pygame.joystick.init()
        self.pads: dict[int, pygame.joystick.JoystickType] = {}
        self._pad_held: set[str] = set()
        self._buttons = 0

    def poll_raw(self) -> list[pygame.event.Event]:
        """Pending pygame events as they are (pages hand them to pygame_gui); keeps the size."""
        events = pygame.event.get()
        for event in events:
            if event.type in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED):
                self.surface = cast(pygame.Surface, pygame.display.get_surface())  # the window is open
                self.size = self.surface.get_size()
                self.resized = True
            elif event.type == pygame.JOYDEVICEADDED:
                self._add_pad(event.device_index)
        return events

    def _add_pad(self, index: int) -> None:
        pad = pygame.joystick.Joystick(index)
        self.pads[pad.get_instance_id()] = pad

    def _pad_events(self, event: pygame.event.Event) -> Iterator[InputEvent]:
        """Gamepad buttons, d-pad and sticks as key downs and ups (see the module docstring)."""
        kind = event.type
        if kind in (pygame.JOYBUTTONDOWN, pygame.JOYBUTTONUP):
            name = f"joy button {event.button}"
            yield InputEvent("down" if kind == pygame.JOYBUTTONDOWN else "up", name)
            return
        if kind == pygame.JOYHATMOTION:
            x, y = event.value
            wanted = {name for (hx, hy), name in _HAT_NAMES if (hx and hx == x) or (hy and hy == y)}
            candidates = {name for _, name in _HAT_NAMES}
        else:  # JOYAXISMOTION
            value = event.value
            yield InputEvent("axis", axis=event.axis, value=float(value))
            minus, plus = f"joy axis {event.axis}-", f"joy axis {event.axis}+"
            candidates = {minus, plus}
            wanted = {name for name in candidates if name in self._pad_held and abs(value) >= AXIS_OFF
                      and (value < 0) == (name == minus)}
            if value <= -AXIS_ON:
                wanted = {minus}
            elif value >= AXIS_ON:
                wanted = {plus}
        for name in sorted(candidates):
            if name in wanted and name not in self._pad_held:
                self._pad_held.add(name)
                yield InputEvent("down", name)
            elif name not in wanted and name in self._pad_held:
                self._pad_held.discard(name)
                yield InputEvent("up", name)

    def poll(self) -> Iterator[InputEvent]:
        """Translate pending pygame events."""
        for event in pygame.event.get():
            kind = event.type
            if kind in (pygame.JOYBUTTONDOWN, pygame.JOYBUTTONUP, pygame.JOYHATMOTION, pygame.JOYAXISMOTION):
                yield from self._pad_events(event)
            elif kind == pygame.JOYDEVICEADDED:
                self._add_pad(event.device_index)
            elif kind in (pygame.MOUSEMOTION, pygame.MOUSEBUTTONDOWN, pygame.MOUSEBUTTONUP):
                button = getattr(event, "button", 0)
                if 1 <= button <= 3:  # 4 and up are wheels
                    bit = 1 << (button - 1)
                    self._buttons = self._buttons | bit if kind == pygame.MOUSEBUTTONDOWN else self._buttons & ~bit
                yield InputEvent("pointer", pos=tuple(event.pos), buttons=self._buttons)
            elif kind == pygame.KEYDOWN:
                yield InputEvent("down", pygame.key.name(event.key), mods=event.mod)
            elif kind == pygame.KEYUP:
                yield InputEvent("up", pygame.key.name(event.key))
            elif kind == pygame.QUIT:
                yield InputEvent("quit")
            elif kind == pygame.WINDOWFOCUSLOST:
                yield InputEvent("focus", gained=False)
            elif kind == pygame.WINDOWFOCUSGAINED:
                yield InputEvent("focus", gained=True)
            elif kind in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED):
                self.surface = cast(pygame.Surface, pygame.display.get_surface())  # the window is open
                self.size = self.surface.get_size()
                self.resized = True
                yield InputEvent("resize")

    def resize(self, size: tuple[int, int]) -> None:
        """Change the window's size (not in fullscreen): a scene with another canvas arrived."""
        if self.flags & pygame.FULLSCREEN or tuple(size) == tuple(self.size):
            return
        self.surface = pygame.display.set_mode(size, self.flags)
        self.size = self.surface.get_size()

    def flip(self) -> None:
        pygame.display.flip()

    def screenshot(self, path: str) -> None:
        """Save what the window shows now as a PNG."""
        pygame.image.save(self.surface, path)

    def close(self) -> None:
        pygame.display.quit()


class CtrlC:
    """Ctrl+C (SIGINT) while a window is open closes it, as its close button and SIGTERM do.

    SDL turns SIGTERM into pygame's QUIT event, which every loop (a game, a page, the lab's
    start screen) answers by ending its visit as ``aborted`` and the run with its data
    written. SIGINT is Python's own: it raises KeyboardInterrupt — under ``asyncio.run`` it
    cancels the main task — wherever the program is, so the outcome was never recorded (the
    participant stayed ``started``, the episode without an outcome). Inside ``with CtrlC() as
    ctrl_c:`` every SIGINT posts that same QUIT event instead (a second one too: the run is
    already ending), and ``ctrl_c.count`` tells the command to exit 130 afterwards. Once a
    Ctrl+C has ended the run, later ones are ignored while the command exits: Python's shutdown
    gives SIGINT back to the system, so a press then would kill the process instead of it
    exiting 130.
    """

    def __init__(self) -> None:
        self.count = 0
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> CtrlC:
        if IS_BROWSER:  # no signals in a web page (imported here: pygbag's Python may lack them)
            return self
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._quit)
            self._installed = True
        return self

    def _quit(self, _signum: int, _frame: Any) -> None:
        self.count += 1
        if pygame.display.get_init():
            pygame.event.post(pygame.event.Event(pygame.QUIT))

    def __exit__(self, *_exc: object) -> None:
        if self._installed:
            import signal

            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, signal.SIG_IGN if self.count else previous)
            self._installed = False
