"""Overcooked frames: igym's renderer and the example's draw function, next to raw pygame-ce.

Cases (Asymmetric Advantages, 560×350 canvas on a 560×350 dummy display, two scripted
cooks, 40 consecutive steps):
- igym ``FrameRenderer.draw`` of the example's frames (45 static tiles, cooks, held
  items, pots, items on counters; interpolated halfway between steps; HUD) vs raw
  pygame-ce doing the same picture: blit a pre-drawn background of the tiles, blit each
  moving sprite (pre-converted surfaces) at its interpolated position, draw the bars, blit
  the HUD strip and cached texts;
- the same vs raw pygame-ce blitting all 45 tiles every frame (no background cache);
- the example's draw function (``render(env)``: state arrays → shapes) per frame, next to
  one CoGrid step (what the env costs per frame anyway); once with its caches warm (the
  40 states replayed), once with every cache emptied before each call (worst case).
Median of repeats after warm-up.
"""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import pygame

from igym import render as r
from igym.experiment import HudInfo
from igym.renderers.assets import Assets
from igym.renderers.draw import FrameRenderer
from tests.bench.bench_render import _timeit

LAYOUT = "asymmetric_advantages"


def _episode(steps: int = 41):
    from examples.overcooked.draw import hud, render
    from examples.overcooked.env import OvercookedEnv
    from examples.overcooked.scripted import ScriptedCook
    env = OvercookedEnv(LAYOUT)
    env.reset(seed=3)
    cooks = [ScriptedCook(env, 0, seed=1), ScriptedCook(env, 1, seed=2)]
    for _ in range(60):  # get the pots going
        env.step({0: cooks[0].act(), 1: cooks[1].act()})
    states, frames = [], []
    returns = 0.0
    for step in range(steps):
        _, rewards, *_ = env.step({0: cooks[0].act(), 1: cooks[1].act()})
        returns += rewards[0]
        states.append(env._env_state)
        info = HudInfo(0, 2, step, 480, 8, {"0": returns, "1": returns})
        frames.append(r.Frame(tuple(render(env)), tuple(hud(info).items()), 0, step))
    return env, states, frames, cooks


def _frame_rows(screen: pygame.Surface, frames: list[r.Frame], canvas, assets: Assets) -> list[dict]:
    from examples.overcooked.draw import BACKGROUND
    renderer = FrameRenderer(screen, canvas, assets, background=BACKGROUND)

    def ours(i: int) -> None:
        k = i % 40
        renderer.draw(frames[k + 1], frames[k], 0.5)

    # Raw pygame-ce: the same sprites, pre-scaled and converted once.
    surfaces: dict[tuple, pygame.Surface] = {}

    def surface(s: r.Sprite) -> pygame.Surface:
        key = (s.frame, round(s.w), round(s.h))
        if key not in surfaces:
            base = assets.surface(s.image, s.frame)
            surfaces[key] = base if base.get_size() == key[1:] else pygame.transform.smoothscale(base, key[1:])
        return surfaces[key]

    statics = [s for s in frames[0].shapes if s.static]
    background = pygame.Surface(canvas).convert()
    background.fill(BACKGROUND)
    for s in statics:
        background.blit(surface(s), (s.x, s.y))
    font = pygame.freetype.Font(None, 18)
    texts: dict[str, pygame.Surface] = {}
    strip = pygame.Surface((canvas[0], 30), pygame.SRCALPHA)
    strip.fill((0, 0, 0, 140))

    def dynamic(i: int):
        k = i % 40
        before = {s.id: s for s in frames[k].shapes}
        out = []
        for s in frames[k + 1].shapes:
            if s.static:
                continue
            old = before.get(s.id, s)
            out.append((s, (old.x + s.x) / 2, (old.y + s.y) / 2))
        return frames[k + 1], out

    prepared = [dynamic(i) for i in range(40)]

    def hud(frame):
        screen.blit(strip, (0, 0))
        x = 10
        for label, text in frame.hud:
            line = f"{label}: {text}"
            if line not in texts:
                texts[line] = font.render(line, (235, 235, 235))[0]
            screen.blit(texts[line], (x, 6))
            x += texts[line].get_width() + 24

    def moving(items):
        for s, x, y in items:
            if type(s) is r.Sprite:
                screen.blit(surface(s), (round(x), round(y)))
            else:
                pygame.draw.rect(screen, s.color, (round(x), round(y), round(s.w), round(s.h)))

    def raw(i: int) -> None:
        frame, items = prepared[i % 40]
        screen.blit(background, (0, 0))
        moving(items)
        hud(frame)

    def raw_tiles(i: int) -> None:
        frame, items = prepared[i % 40]
        screen.fill(BACKGROUND)
        for s in statics:
            screen.blit(surface(s), (s.x, s.y))
        moving(items)
        hud(frame)

    a, b, c = _timeit(ours, frames=200), _timeit(raw, frames=200), _timeit(raw_tiles, frames=200)
    n_static = len(statics)
    n_moving = len(prepared[0][1])
    return [
        {"bench": "overcooked", "case": f"frame ({n_static} static tiles, {n_moving} moving shapes, interpolated, "
                                        f"HUD) vs raw blits over a cached background", "value": a, "baseline": b,
         "ratio": a / b, "unit": "ms", "target": "≤ 1.5×"},
        {"bench": "overcooked", "case": "same vs raw blits of every tile each frame", "value": a, "baseline": c,
         "ratio": a / c, "unit": "ms"},
    ]


def _draw_function_rows(env, states, cooks) -> list[dict]:
    from examples.overcooked.draw import render

    def draw(i: int) -> None:
        env._env_state = states[i % len(states)]
        render(env)

    value = _timeit(draw, frames=400) * 1000
    from examples.overcooked import draw as module

    def draw_cold(i: int) -> None:  # every cache emptied first: the cost of a never-seen state
        env._env_state = states[i % len(states)]
        module._KITCHENS.clear()
        module._BY_LAYOUT.clear()
        for cached in (module._item, module._chef, module._held):
            cached.cache_clear()
        render(env)

    cold = _timeit(draw_cold, frames=100) * 1000
    env.reset(seed=5)
    actions = [{0: cooks[0].act(), 1: cooks[1].act()} for _ in range(1)]

    def step(i: int) -> None:
        env.step(actions[0])
        if not env.agents:
            env.reset(seed=5)

    baseline = _timeit(step, frames=100, repeats=5) * 1000
    return [{"bench": "overcooked", "case": "draw function render(env) per frame vs one CoGrid step",
             "value": value, "baseline": baseline, "ratio": value / baseline, "unit": "µs",
             "target": "< 0.5 ms"},
            {"bench": "overcooked", "case": "draw function, all caches emptied before each call (worst case)",
             "value": cold, "baseline": baseline, "ratio": cold / baseline, "unit": "µs"}]


def run() -> list[dict]:
    from examples.overcooked.draw import ATLASES, HERE, layout_canvas
    pygame.display.init()
    pygame.freetype.init()
    canvas = layout_canvas(LAYOUT)
    screen = pygame.display.set_mode(canvas)
    assets = Assets(HERE, atlases=ATLASES)
    env, states, frames, cooks = _episode()
    rows = _frame_rows(screen, frames, canvas, assets)
    rows += _draw_function_rows(env, states, cooks)
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
