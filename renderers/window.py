"""The pygame window: display set-up, events translated to igym's plain key names.

Everything pygame-specific about input lives here, so the session only ever sees key
names such as ``"left"`` or ``"space"`` (pygame's ``key.name`` spelling). The same class
runs on the desktop, headless (``SDL_VIDEODRIVER=dummy``) and under pygbag.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Iterator

import pygame

IS_BROWSER = sys.platform == "emscripten"
DEFAULT_MAX_WINDOW = (1280, 800)


@dataclass(frozen=True, slots=True)
class InputEvent:
    """A translated event: kind is down, up, quit, focus or resize."""

    kind: str
    key: str = ""
    gained: bool = False


def fit_window(canvas: tuple[int, int], limit: tuple[int, int] = DEFAULT_MAX_WINDOW) -> tuple[int, int]:
    """The largest window of the canvas' aspect ratio that fits ``limit`` (never upscaled)."""
    cw, ch = canvas
    scale = min(1.0, limit[0] / cw, limit[1] / ch)
    return max(1, round(cw * scale)), max(1, round(ch * scale))


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

    def poll(self) -> Iterator[InputEvent]:
        """Translate pending pygame events."""
        for event in pygame.event.get():
            kind = event.type
            if kind == pygame.KEYDOWN:
                yield InputEvent("down", pygame.key.name(event.key))
            elif kind == pygame.KEYUP:
                yield InputEvent("up", pygame.key.name(event.key))
            elif kind == pygame.QUIT:
                yield InputEvent("quit")
            elif kind == pygame.WINDOWFOCUSLOST:
                yield InputEvent("focus", gained=False)
            elif kind == pygame.WINDOWFOCUSGAINED:
                yield InputEvent("focus", gained=True)
            elif kind in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED):
                self.surface = pygame.display.get_surface()
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
