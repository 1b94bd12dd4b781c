"""Draws igym Frames with pygame: scaled, letterboxed, interpolated, static layer cached.

Shapes come in logical pixels of the scene's canvas; one uniform scale maps them into the
window, centred, with bars on the sides that do not fit. The HUD has a strip of its own
above the canvas (its height a share of the window's, see :func:`hud_height`): it never
covers the game. Static shapes are drawn once
per episode into a cached background layer. Moving shapes are drawn every frame, their
positions interpolated between the last two env steps, so a 30 Hz game moves smoothly
at 60 Hz. Text surfaces and scaled sprites are cached; drawing a frame of sprites costs
little more than the blits themselves (see tests/bench/bench_render.py). Text shapes without
a font of their own, and the HUD, use igym's bundled font (:mod:`.typeface`), which has the
arrows and accents pygame's default font lacks.
"""

from __future__ import annotations

from typing import Any, cast
from collections.abc import Callable, Sequence

import pygame
import pygame.freetype

from igym.render import Circle, Color, Ellipse, Frame, Image, Line, Point, Polygon, Rect, Shape, Sprite, Text

from .assets import Assets
from .typeface import BOLD

_POSITIONED = frozenset({Rect, Circle, Ellipse, Text, Sprite, Image})
_Positioned = Rect | Circle | Ellipse | Text | Sprite | Image  # the shapes of _POSITIONED, for mypy
SNAP_FRACTION = 0.25  # a shape that jumps more than this share of the canvas width is not interpolated
TEXT_CACHE_LIMIT = 2048
HUD_SHARE = 0.05  # the HUD strip's share of the window height …
HUD_MIN, HUD_MAX = 20, 40  # … within these pixels
HUD_BACKGROUND = (24, 24, 24)
HUD_TEXT = (235, 235, 235)
# The session's countdown digit (igym.session: white, over the episode's first picture) is
# drawn with a dark outline, so it reads over a light picture (Taxi) as over a dark one.
COUNTDOWN_ID = "__countdown"
OUTLINE = (16, 16, 16)


def hud_height(window_height: int) -> int:
    """The HUD strip's height in a window (or surface) this many pixels high."""
    return max(HUD_MIN, min(HUD_MAX, round(window_height * HUD_SHARE)))


def hud_strip_for(view_height: int) -> int:
    """The strip a window needs above a canvas shown ``view_height`` pixels high, so that
    :func:`hud_height` of the whole window gives that strip back (used to size windows)."""
    strip = HUD_MIN
    while hud_height(view_height + strip) != strip:  # monotone in strip, slope 0.05: a few rounds
        strip = hud_height(view_height + strip)
    return strip

_QUADRANTS = {
    "top": dict(draw_top_left=True, draw_top_right=True),
    "bottom": dict(draw_bottom_left=True, draw_bottom_right=True),
    "left": dict(draw_top_left=True, draw_bottom_left=True),
    "right": dict(draw_top_right=True, draw_bottom_right=True),
}


class FrameRenderer:
    """Draws Frames onto a target surface (usually the window)."""

    def __init__(self, target: pygame.Surface, canvas: tuple[int, int], assets: Assets | None = None,
                 background: tuple[int, ...] = (0, 0, 0), letterbox_color: tuple[int, ...] = (0, 0, 0),
                 font_path: str | None = None, hud: bool = False) -> None:
        if not pygame.freetype.get_init():
            pygame.freetype.init()
        self.canvas = canvas
        self.assets = assets or Assets()
        self.background = background
        self.letterbox_color = letterbox_color
        self.font_path = font_path or str(BOLD)  # bold, like pygame's default font it replaces
        self.static_rebuilds = 0
        self.hud = hud  # reserve the HUD strip (turned on by the first frame that has a HUD)
        self._fonts: dict[tuple[str | None, int], pygame.freetype.Font] = {}
        self._texts: dict[tuple[object, ...], tuple[pygame.Surface, pygame.Rect]] = {}
        self._sprites: dict[tuple[object, ...], pygame.Surface] = {}
        self._draw: dict[type, Callable[..., None]] = {
            Rect: self._rect, Circle: self._circle, Ellipse: self._ellipse, Line: self._line,
            Polygon: self._polygon, Text: self._text, Sprite: self._sprite, Image: self._image}
        self.set_target(target)

    # --- geometry ---------------------------------------------------------------------

    def set_target(self, target: pygame.Surface) -> None:
        """Draw onto ``target`` from now on (after a window resize): rescale, drop caches."""
        self.target = target
        width, height = target.get_size()
        cw, ch = self.canvas
        strip = hud_height(height) if self.hud else 0
        self.scale = min(width / cw, max(1, height - strip) / ch)
        self.view = pygame.Rect(0, 0, round(cw * self.scale), round(ch * self.scale))
        top = (height - self.view.height - strip) // 2
        self.view.topleft = ((width - self.view.width) // 2, top + strip)
        self.hud_rect = pygame.Rect(self.view.x, top, self.view.width, strip) if strip else None
        self.ox, self.oy = self.view.x, self.view.y
        self._bars = [r for r in (pygame.Rect(0, 0, width, self.view.top),
                                  pygame.Rect(0, self.view.bottom, width, height - self.view.bottom),
                                  pygame.Rect(0, 0, self.view.left, height),
                                  pygame.Rect(self.view.right, 0, width - self.view.right, height))
                      if r.width > 0 and r.height > 0]
        self._texts.clear()
        self._sprites.clear()
        self._static_key: tuple[int, tuple[Shape, ...]] | None = None
        self._layer: pygame.Surface | None = None
        self._previous_id: int | None = None
        self._previous_by_id: dict[str, Any] = {}

    def to_screen(self, x: float, y: float) -> tuple[float, float]:
        """Canvas coordinates → target pixel coordinates."""
        return self.ox + x * self.scale, self.oy + y * self.scale

    def to_canvas(self, px: float, py: float) -> tuple[float, float]:
        """Target pixel coordinates (a mouse position) → canvas coordinates (outside the canvas
        they are outside 0..width, 0..height)."""
        return (px - self.ox) / self.scale, (py - self.oy) / self.scale

    # --- frames -----------------------------------------------------------------------

    def draw(self, frame: Frame, previous: Frame | None = None, alpha: float = 1.0) -> None:
        """Draw ``frame``; positions move from ``previous`` by ``alpha`` (0..1) if consecutive."""
        if frame.hud and not self.hud:
            self.hud = True
            self.set_target(self.target)
        target = self.target
        for bar in self._bars:
            target.fill(self.letterbox_color, bar)
        shapes = frame.shapes
        lowest_dynamic = min((s.depth for s in shapes if not s.static), default=None)
        statics = tuple(s for s in shapes if s.static and (lowest_dynamic is None or s.depth <= lowest_dynamic))
        self._blit_static(frame.episode, statics)
        interpolate = (previous is not None and alpha < 1.0 and previous.episode == frame.episode
                       and previous.step == frame.step - 1)
        if interpolate and previous is not None:  # interpolate says previous is a Frame; mypy needs it here
            if id(previous) != self._previous_id:
                self._previous_id = id(previous)
                self._previous_by_id = {s.id: s for s in previous.shapes if not s.static}
            before = self._previous_by_id
        if len(statics) == sum(1 for s in shapes if s.static):
            drawn = [s for s in shapes if not s.static]
        else:  # static shapes above moving ones are drawn every frame, in depth order
            layered = {s.id for s in statics}
            drawn = [s for s in shapes if not (s.static and s.id in layered)]
        drawn.sort(key=_depth)
        ox, oy, scale, draw = self.ox, self.oy, self.scale, self._draw
        if not interpolate:
            for shape in drawn:
                draw[type(shape)](target, shape, ox, oy, scale)
        else:
            snap = SNAP_FRACTION * self.canvas[0]
            keep = 1.0 - alpha
            for shape in drawn:
                old = before.get(shape.id)
                sox: float = ox
                soy: float = oy
                if old is not None and old is not shape and type(old) is type(shape):
                    if type(shape) in _POSITIONED:
                        # Interpolating a position = drawing with a shifted origin: no new objects.
                        was, at = cast(_Positioned, old), cast(_Positioned, shape)
                        dx, dy = (was.x - at.x) * keep, (was.y - at.y) * keep
                        if abs(dx) < snap * keep and abs(dy) < snap * keep:
                            sox += dx * scale
                            soy += dy * scale
                    else:
                        shape = _between(old, shape, alpha)
                draw[type(shape)](target, shape, sox, soy, scale)
        if frame.hud:
            self._hud(frame.hud)

    def _blit_static(self, episode: int, statics: tuple[Shape, ...]) -> None:
        if not statics:
            self.target.fill(self.background, self.view)
            return
        key = self._static_key
        if (key is None or key[0] != episode or len(key[1]) != len(statics)
                or any(a is not b and a != b for a, b in zip(key[1], statics))):
            self._static_key = (episode, statics)
            layer = pygame.Surface(self.view.size).convert() if pygame.display.get_surface() else \
                pygame.Surface(self.view.size)
            layer.fill(self.background)
            draw = self._draw
            for shape in sorted(statics, key=_depth):
                draw[type(shape)](layer, shape, 0, 0, self.scale)
            self._layer = layer
            self.static_rebuilds += 1
        self.target.blit(cast(pygame.Surface, self._layer), self.view.topleft)  # built with _static_key

    # --- shapes -----------------------------------------------------------------------

    def _with_alpha(self, target: pygame.Surface, box: pygame.Rect,
                    draw: Callable[[pygame.Surface, float, float], object]) -> None:
        """Draw a translucent shape via a small SRCALPHA surface so it blends."""
        box = box.clip(target.get_rect())
        if box.width <= 0 or box.height <= 0:
            return
        scratch = pygame.Surface(box.size, pygame.SRCALPHA)
        draw(scratch, -box.x, -box.y)
        target.blit(scratch, box.topleft)

    def _rect(self, target: pygame.Surface, s: Rect, ox: float, oy: float, scale: float) -> None:
        rect = pygame.Rect(round(ox + s.x * scale), round(oy + s.y * scale), round(s.w * scale), round(s.h * scale))
        width = round(s.width * scale) if s.width else 0
        radius = round(s.radius * scale) if s.radius else -1
        if len(s.color) == 4 and s.color[3] < 255:
            self._with_alpha(target, rect, lambda surf, dx, dy: pygame.draw.rect(
                surf, s.color, rect.move(dx, dy), width, radius))
        else:
            pygame.draw.rect(target, s.color, rect, width, radius)

    def _circle(self, target: pygame.Surface, s: Circle, ox: float, oy: float, scale: float) -> None:
        center = (ox + s.x * scale, oy + s.y * scale)
        radius = s.r * scale
        width = max(1, round(s.width * scale)) if s.width else 0
        parts = _QUADRANTS.get(s.part, {})
        if len(s.color) == 4 and s.color[3] < 255:
            box = pygame.Rect(0, 0, 2 * radius + 2, 2 * radius + 2)
            box.center = (round(center[0]), round(center[1]))
            self._with_alpha(target, box, lambda surf, dx, dy: pygame.draw.circle(
                surf, s.color, (center[0] + dx, center[1] + dy), radius, width, **parts))
        else:
            pygame.draw.circle(target, s.color, center, radius, width, **parts)

    def _ellipse(self, target: pygame.Surface, s: Ellipse, ox: float, oy: float, scale: float) -> None:
        rect = pygame.Rect(round(ox + s.x * scale), round(oy + s.y * scale), round(s.w * scale), round(s.h * scale))
        width = max(1, round(s.width * scale)) if s.width else 0
        if len(s.color) == 4 and s.color[3] < 255:
            self._with_alpha(target, rect, lambda surf, dx, dy: pygame.draw.ellipse(
                surf, s.color, rect.move(dx, dy), width))
        else:
            pygame.draw.ellipse(target, s.color, rect, width)

    def _points(self, points: Sequence[Point], ox: float, oy: float, scale: float) -> list[tuple[float, float]]:
        return [(ox + x * scale, oy + y * scale) for x, y in points]

    def _line(self, target: pygame.Surface, s: Line, ox: float, oy: float, scale: float) -> None:
        points = self._points(s.points, ox, oy, scale)
        translucent = len(s.color) == 4 and s.color[3] < 255
        if s.fill is not None and len(points) >= 2:
            edge = oy + (self.canvas[1] * scale if s.fill == "below" else 0)
            area = [(points[0][0], edge), *points, (points[-1][0], edge)]
            self._polygon_points(target, area, s.color, 0, translucent)
        width = max(1, round(s.width * scale))
        if translucent:
            box = _bounds(points, width)
            self._with_alpha(target, box, lambda surf, dx, dy: pygame.draw.lines(
                surf, s.color, False, [(x + dx, y + dy) for x, y in points], width))
        elif len(points) >= 2:
            pygame.draw.lines(target, s.color, False, points, width)

    def _polygon(self, target: pygame.Surface, s: Polygon, ox: float, oy: float, scale: float) -> None:
        points = self._points(s.points, ox, oy, scale)
        width = max(1, round(s.width * scale)) if s.width else 0
        self._polygon_points(target, points, s.color, width, len(s.color) == 4 and s.color[3] < 255)

    def _polygon_points(self, target: pygame.Surface, points: list[tuple[float, float]], color: Color, width: int,
                        translucent: bool) -> None:
        if len(points) < 3:
            return
        if translucent:
            box = _bounds(points, width)
            self._with_alpha(target, box, lambda surf, dx, dy: pygame.draw.polygon(
                surf, color, [(x + dx, y + dy) for x, y in points], width))
        else:
            pygame.draw.polygon(target, color, points, width)

    def _font(self, name: str | None, size: int) -> pygame.freetype.Font:
        key = (name, size)
        font = self._fonts.get(key)
        if font is None:
            path = name if name and name.endswith((".ttf", ".otf")) else self.font_path
            font = pygame.freetype.Font(path, size)
            font.pad = True
            self._fonts[key] = font
        return font

    def _text(self, target: pygame.Surface, s: Text, ox: float, oy: float, scale: float) -> None:
        size = max(1, round(s.size * scale))
        outlined = s.id == COUNTDOWN_ID
        key = (s.text, size, s.color, s.font, outlined)
        cached = self._texts.get(key)
        if cached is None:
            if len(self._texts) > TEXT_CACHE_LIMIT:
                self._texts.clear()
            font = self._font(s.font, size)
            surface, rect = font.render(s.text, s.color)
            if outlined:
                surface = _outlined(surface, font.render(s.text, OUTLINE)[0], max(2, round(size / 14)))
            cached = (surface, rect)
            self._texts[key] = cached
        surface = cached[0]
        box = surface.get_rect()
        setattr(box, s.anchor, (round(ox + s.x * scale), round(oy + s.y * scale)))
        target.blit(surface, box)

    def _sprite(self, target: pygame.Surface, s: Sprite, ox: float, oy: float, scale: float) -> None:
        w, h = round(s.w * scale), round(s.h * scale)
        key = (s.image, s.frame, w, h, s.angle, s.alpha)
        surface = self._sprites.get(key)
        if surface is None:
            surface = self.assets.surface(s.image, s.frame)
            if surface.get_size() != (w, h):
                surface = pygame.transform.smoothscale(surface, (max(1, w), max(1, h)))
            if s.angle:
                surface = pygame.transform.rotate(surface, s.angle)
            if s.alpha < 255:
                surface = surface.copy()
                surface.set_alpha(s.alpha)
            self._sprites[key] = surface
        if s.angle:
            box = surface.get_rect(center=(round(ox + (s.x + s.w / 2) * scale), round(oy + (s.y + s.h / 2) * scale)))
            target.blit(surface, box)
        else:
            target.blit(surface, (round(ox + s.x * scale), round(oy + s.y * scale)))

    def _image(self, target: pygame.Surface, s: Image, ox: float, oy: float, scale: float) -> None:
        picture = pygame.image.frombuffer(s.pixels, s.size, "RGB")
        size = (max(1, round(s.w * scale)), max(1, round(s.h * scale)))
        if picture.get_size() != size:
            picture = pygame.transform.scale(picture, size)
        target.blit(picture, (round(ox + s.x * scale), round(oy + s.y * scale)))

    def _hud(self, items: tuple[tuple[str, str], ...]) -> None:
        """The HUD line in its own strip above the canvas, its text sized to the strip (and
        smaller when the line would not fit the width)."""
        strip = self.hud_rect
        if strip is None:
            return
        key = ("hud", items, strip.size)
        line = self._sprites.get(key)
        if line is None:
            if len(self._sprites) > TEXT_CACHE_LIMIT:
                self._sprites.clear()
            texts = [f"{label}: {text}" for label, text in items]
            size = max(8, round(strip.height * 0.6))
            room = strip.width - 20
            for _ in range(3):  # shrink until the line fits the width
                font = self._font(None, size)
                gap = size
                wide = sum(font.get_rect(t).width for t in texts) + gap * (len(texts) - 1)
                if wide <= room or size <= 8:
                    break
                size = max(8, int(size * room / wide))
            line = pygame.Surface(strip.size)
            line.fill(HUD_BACKGROUND)
            x = 10
            for text in texts:
                surface, _ = font.render(text, HUD_TEXT)
                line.blit(surface, (x, (strip.height - surface.get_height()) // 2))
                x += surface.get_width() + gap
            self._sprites[key] = line
        self.target.blit(line, strip)

    def screenshot(self, path: str) -> None:
        """Save the target surface as a PNG."""
        pygame.image.save(self.target, path)


def _outlined(text: pygame.Surface, dark: pygame.Surface, width: int) -> pygame.Surface:
    """``text`` over ``dark`` (the same text in the outline colour) blitted all around it,
    ``width`` pixels out: a text that reads over any picture."""
    out = pygame.Surface((text.get_width() + 2 * width, text.get_height() + 2 * width), pygame.SRCALPHA)
    for dx in range(-width, width + 1):
        for dy in range(-width, width + 1):
            if dx * dx + dy * dy <= width * width:
                out.blit(dark, (width + dx, width + dy))
    out.blit(text, (width, width))
    return out


def _depth(shape: Shape) -> int:
    return shape.depth


def _bounds(points: list[tuple[float, float]], pad: int) -> pygame.Rect:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    left, top = int(min(xs)) - pad - 1, int(min(ys)) - pad - 1
    return pygame.Rect(left, top, int(max(xs)) - left + pad + 2, int(max(ys)) - top + pad + 2)


def _between(old: Any, new: Any, alpha: float) -> Any:
    """A Line/Polygon whose points moved from ``old`` towards ``new`` by ``alpha``."""
    points_old, points_new = old.points, new.points
    if len(points_old) != len(points_new) or points_old == points_new:
        return new
    return _replace(new, points=tuple((a[0] + (b[0] - a[0]) * alpha, a[1] + (b[1] - a[1]) * alpha)
                                      for a, b in zip(points_old, points_new)))


def _replace(shape: Any, **changes: Any) -> Any:
    """A cheap dataclasses.replace for our slotted shapes (skips __post_init__ machinery)."""
    cls = type(shape)
    values = {name: getattr(shape, name) for name in cls.__slots__}
    values.update(changes)
    return cls(**values)
