"""Renderer cost per frame next to raw pygame-ce drawing the same things on the same surface.

Cases (800×600 dummy display, canvas 800×600 so sprites keep their size):
- 60-sprite grid: a 10×6 grid of 48×48 sprites from one atlas, 20 of them moving each
  frame; igym ``FrameRenderer.draw`` vs raw ``fill`` + 60 ``blit`` of the same converted
  sprites (and vs ``fblits``). Target: ≤ 1.5× raw blits.
- the same with all 60 moving and interpolated between two steps (what a 30 Hz game on a
  60 Hz display costs);
- 100 mixed objects (circles, rects, lines, polygons, sprites, text) vs raw draw calls;
- a real Slime Volleyball frame (draw.py) vs raw pygame drawing the same primitives.
Median of repeats after warm-up.
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import pygame

from igym import render as r
from igym.renderers.assets import Assets
from igym.renderers.draw import FrameRenderer

SIZE = (800, 600)
COLORS = [(200, 60, 60), (60, 200, 60), (60, 60, 200), (200, 200, 60), (60, 200, 200), (200, 60, 200)]


def _timeit(function, frames: int = 300, repeats: int = 7) -> float:
    """Median ms per call of ``function(i)`` over ``repeats`` runs of ``frames`` calls, after a warm-up."""
    for _ in range(max(1, frames // 10)):
        function(0)
    results = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        for i in range(frames):
            function(i)
        results.append((time.perf_counter_ns() - started) / frames / 1e6)
    return statistics.median(results)


def _atlas() -> Assets:
    sheet = pygame.Surface((48 * 6, 48), pygame.SRCALPHA)
    for i, color in enumerate(COLORS):
        pygame.draw.circle(sheet, color, (i * 48 + 24, 24), 22)
        pygame.draw.rect(sheet, (255, 255, 255), (i * 48 + 16, 16, 16, 16))
    sheet = sheet.convert_alpha()
    return Assets.from_surfaces({"atlas": sheet}, {"atlas": {f"t{i}": (i * 48, 0, 48, 48) for i in range(6)}})


def _grid(step: int, moving: int) -> r.Frame:
    shapes = []
    for i in range(60):
        col, row = i % 10, i // 10
        shift = (step % 20) if i < moving else 0
        shapes.append(r.Sprite(f"s{i}", col * 70 + 30 + shift, row * 90 + 40, 48, 48, "atlas", f"t{i % 6}"))
    return r.Frame(tuple(shapes), (), 0, step)


def _grid_rows(screen: pygame.Surface, assets: Assets, moving: int, interpolate: bool) -> list[dict]:
    renderer = FrameRenderer(screen, SIZE, assets, background=(30, 30, 30))
    frames = [_grid(i, moving) for i in range(41)]

    def ours(i: int) -> None:
        k = i % 40
        if interpolate:
            renderer.draw(frames[k + 1], frames[k], 0.5)
        else:
            renderer.draw(frames[k + 1])

    surfaces = [assets.surface("atlas", f"t{i % 6}") for i in range(60)]

    def raw(i: int) -> None:
        screen.fill((30, 30, 30))
        frame = frames[i % 40 + 1]
        for surface, shape in zip(surfaces, frame.shapes):
            screen.blit(surface, (shape.x, shape.y))

    def raw_fblits(i: int) -> None:
        screen.fill((30, 30, 30))
        frame = frames[i % 40 + 1]
        screen.fblits([(surface, (shape.x, shape.y)) for surface, shape in zip(surfaces, frame.shapes)])

    a, b, c = _timeit(ours), _timeit(raw), _timeit(raw_fblits)
    label = f"60 sprites, {moving} moving" + (", interpolated" if interpolate else "")
    return [{"bench": "render", "case": f"{label} vs raw blit", "value": a, "baseline": b, "ratio": a / b,
             "unit": "ms", "target": "≤ 1.5×" if not interpolate else ""},
            {"bench": "render", "case": f"{label} vs raw fblits", "value": a, "baseline": c, "ratio": a / c,
             "unit": "ms"}]


def _mixed(step: int) -> r.Frame:
    shapes = []
    for i in range(100):
        x, y = (i * 37 + step) % 760 + 20, (i * 53) % 560 + 20
        kind = i % 6
        color = COLORS[i % 6]
        if kind == 0:
            shapes.append(r.Circle(f"o{i}", x, y, 10, color))
        elif kind == 1:
            shapes.append(r.Rect(f"o{i}", x, y, 20, 10, color))
        elif kind == 2:
            shapes.append(r.Polygon(f"o{i}", ((x, y), (x + 12, y + 20), (x - 12, y + 20)), color))
        elif kind == 3:
            shapes.append(r.Line(f"o{i}", ((x, y), (x + 25, y + 10)), color, 2))
        elif kind == 4:
            shapes.append(r.Sprite(f"o{i}", x, y, 32, 32, "atlas", f"t{i % 6}"))
        else:
            shapes.append(r.Text(f"o{i}", x, y, f"Score: {i}", 14, color))
    return r.Frame(tuple(shapes), (), 0, step)


def _mixed_rows(screen: pygame.Surface, assets: Assets) -> list[dict]:
    renderer = FrameRenderer(screen, SIZE, assets, background=(0, 0, 0))
    frames = [_mixed(i) for i in range(40)]
    font = pygame.freetype.Font(None, 14)
    texts = {}
    sprite32 = {f"t{i}": pygame.transform.smoothscale(assets.surface("atlas", f"t{i}"), (32, 32)) for i in range(6)}

    def ours(i: int) -> None:
        renderer.draw(frames[i % 40])

    def raw(i: int) -> None:
        screen.fill((0, 0, 0))
        for s in frames[i % 40].shapes:
            t = type(s)
            if t is r.Circle:
                pygame.draw.circle(screen, s.color, (s.x, s.y), s.r)
            elif t is r.Rect:
                pygame.draw.rect(screen, s.color, (s.x, s.y, s.w, s.h))
            elif t is r.Polygon:
                pygame.draw.polygon(screen, s.color, s.points)
            elif t is r.Line:
                pygame.draw.lines(screen, s.color, False, s.points, 2)
            elif t is r.Sprite:
                screen.blit(sprite32[s.frame], (s.x, s.y))
            else:
                key = (s.text, s.color)
                if key not in texts:
                    texts[key] = font.render(s.text, s.color)[0]
                screen.blit(texts[key], (s.x, s.y))

    a, b = _timeit(ours), _timeit(raw)
    return [{"bench": "render", "case": "100 mixed objects vs raw draw calls (cached text)", "value": a,
             "baseline": b, "ratio": a / b, "unit": "ms"}]


def _slime_rows() -> list[dict]:
    from examples.slime_volleyball.draw import CANVAS, render
    from examples.slime_volleyball.slime import SlimeVolleyEnv
    screen = pygame.display.set_mode(CANVAS)
    env = SlimeVolleyEnv()
    env.reset(seed=1)
    frames = []
    for step in range(40):
        env.step({"agent_left": step % 6, "agent_right": (step * 7) % 6})
        frames.append(r.Frame(tuple(render(env)), (("Time", "0:12"),), 0, step))
    renderer = FrameRenderer(screen, CANVAS, background=(11, 16, 19))
    font = pygame.freetype.Font(None, 28)
    texts = {}

    def ours(i: int) -> None:
        k = i % 39
        renderer.draw(frames[k + 1], frames[k], 0.5)

    def raw(i: int) -> None:
        screen.fill((11, 16, 19))
        for s in frames[i % 39 + 1].shapes:
            t = type(s)
            if t is r.Circle:
                if s.part == "top":
                    pygame.draw.circle(screen, s.color, (s.x, s.y), s.r, draw_top_left=True, draw_top_right=True)
                else:
                    pygame.draw.circle(screen, s.color, (s.x, s.y), s.r)
            elif t is r.Rect:
                pygame.draw.rect(screen, s.color, (s.x, s.y, s.w, s.h))
            elif t is r.Text:
                if s.text not in texts:
                    texts[s.text] = font.render(s.text, s.color)[0]
                screen.blit(texts[s.text], (s.x, s.y))

    a, b = _timeit(ours), _timeit(raw)
    return [{"bench": "render", "case": "slime frame (interpolated, HUD) vs raw draw calls", "value": a,
             "baseline": b, "ratio": a / b, "unit": "ms"}]


def run() -> list[dict]:
    pygame.display.init()
    pygame.freetype.init()
    screen = pygame.display.set_mode(SIZE)
    assets = _atlas()
    rows = _grid_rows(screen, assets, moving=20, interpolate=False)
    rows += _grid_rows(screen, assets, moving=60, interpolate=True)[:1]
    rows += _mixed_rows(screen, assets)
    rows += _slime_rows()
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
