"""Draw the Overcooked sprite atlas with pygame: assets/overcooked.png + overcooked.json.

    python -m examples.overcooked.make_atlas

Every frame is a 60×60 tile (drawn at 4× and smooth-scaled down, so edges are
anti-aliased). The JSON is TexturePacker's "hash" form, which igym's ``Assets`` reads:
``Game(atlases={"overcooked": "assets/overcooked.json"})``. Frames:

- tiles: ``floor``, ``counter``, ``onion_box`` (onion dispenser), ``dish_rack`` (dish
  dispenser), ``serve`` (delivery area), ``pot`` (an empty pot on a counter);
- pot contents drawn over ``pot``: ``pot_onion_1`` … ``pot_onion_3``, ``pot_cooking``,
  ``pot_ready``;
- items (on counters, on the floor, or held, scaled down): ``onion``, ``dish``, ``soup``,
  ``tomato``, ``tomato_soup``;
- cooks: ``chef_blue_{up,down,left,right}`` and ``chef_green_{…}`` (facing direction).

Only this script imports pygame; the env and draw modules stay pure Python + numpy. Its
output is committed, so nobody needs to run it unless the art changes. The colours at the
tile centres are listed in ``CENTRES`` (tests check them on screen).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TILE = 60
SS = 4  # supersampling factor
S = TILE * SS
HERE = Path(__file__).resolve().parent
OUT_PNG = HERE / "assets" / "overcooked.png"
OUT_JSON = HERE / "assets" / "overcooked.json"

FLOOR = (226, 212, 180)
FLOOR_LINE = (208, 192, 158)
COUNTER = (163, 112, 70)
COUNTER_TOP = (190, 140, 94)
COUNTER_EDGE = (120, 80, 48)
BOX = (110, 150, 72)
RACK = (120, 130, 150)
SERVE = (70, 78, 90)
SERVE_STRIPE = (240, 200, 60)
POT = (58, 62, 70)
POT_RIM = (120, 126, 136)
ONION = (200, 150, 60)
ONION_DARK = (150, 100, 36)
ONION_TOP = (110, 160, 70)
DISH = (245, 245, 240)
DISH_RIM = (200, 200, 196)
SOUP = (222, 120, 40)
TOMATO = (210, 50, 40)
TOMATO_SOUP = (190, 40, 30)
WATER = (150, 160, 140)
STEAM = (240, 240, 240)
HAT = (250, 250, 250)
SKIN = (240, 200, 160)
CHEFS = {"blue": (52, 110, 210), "green": (60, 170, 90)}

# The colour at the centre of each tile frame (before any item is drawn on it).
CENTRES = {"floor": FLOOR, "counter": COUNTER_TOP, "serve": SERVE, "pot": POT, "onion_box": ONION,
           "dish_rack": DISH, "onion": ONION, "dish": DISH, "soup": SOUP}


def _frames(pygame):
    """name → a function drawing that frame on an S×S transparent surface."""
    draw = pygame.draw

    def floor(s):
        s.fill(FLOOR)
        draw.line(s, FLOOR_LINE, (0, 2), (S, 2), 6)
        draw.line(s, FLOOR_LINE, (2, 0), (2, S), 6)

    def counter(s):
        s.fill(COUNTER_EDGE)
        draw.rect(s, COUNTER, (8, 8, S - 16, S - 16), border_radius=16)
        draw.rect(s, COUNTER_TOP, (24, 24, S - 48, S - 48), border_radius=20)

    def onion_at(s, cx, cy, r):
        draw.circle(s, ONION_DARK, (cx, cy), r)
        draw.circle(s, ONION, (cx - r // 10, cy - r // 10), int(r * 0.88))
        draw.polygon(s, ONION_TOP, [(cx - r // 4, cy - r + 4), (cx + r // 4, cy - r + 4), (cx, cy - r - r // 2)])

    def onion_box(s):
        counter(s)
        draw.rect(s, BOX, (28, 40, S - 56, S - 68), border_radius=12)
        for cx, cy in ((84, 100), (156, 100), (120, 150), (120, S // 2)):
            onion_at(s, cx, cy, 34)

    def dish_at(s, cx, cy, r):
        draw.circle(s, DISH_RIM, (cx, cy), r)
        draw.circle(s, DISH, (cx, cy), int(r * 0.8))

    def dish_rack(s):
        counter(s)
        draw.rect(s, RACK, (32, 32, S - 64, S - 64), border_radius=14)
        for k in range(3):
            draw.ellipse(s, DISH_RIM, (52, 140 - k * 26, S - 104, 44))
            draw.ellipse(s, DISH, (60, 144 - k * 26, S - 120, 34))
        draw.circle(s, DISH, (S // 2, S // 2), 10)

    def serve(s):
        s.fill(SERVE)
        for x in range(-S, S, 48):
            draw.line(s, SERVE_STRIPE, (x, S), (x + S, 0), 12)
        draw.rect(s, SERVE, (40, 40, S - 80, S - 80), border_radius=18)
        draw.rect(s, SERVE_STRIPE, (40, 40, S - 80, S - 80), 8, border_radius=18)

    def pot(s):
        counter(s)
        draw.circle(s, POT_RIM, (S // 2, S // 2), 92)
        draw.circle(s, POT, (S // 2, S // 2), 78)
        draw.rect(s, POT_RIM, (S // 2 - 116, S // 2 - 14, 28, 28), border_radius=6)
        draw.rect(s, POT_RIM, (S // 2 + 88, S // 2 - 14, 28, 28), border_radius=6)

    def pot_onions(n):
        def frame(s):
            draw.circle(s, WATER, (S // 2, S // 2), 70)
            for cx, cy in ((96, 104), (144, 104), (120, 146))[:n]:
                onion_at(s, cx, cy, 26)
        return frame

    def pot_cooking(s):
        draw.circle(s, SOUP, (S // 2, S // 2), 70)
        for cx, cy in ((96, 110), (140, 98), (128, 146)):
            draw.circle(s, ONION_DARK, (cx, cy), 12)

    def pot_ready(s):
        pot_cooking(s)
        for x in (88, 120, 152):
            draw.arc(s, STEAM, (x - 18, 20, 36, 60), 1.2, 4.6, 8)
            draw.arc(s, STEAM, (x - 18, -20, 36, 60), -1.9, 1.6, 8)

    def onion(s):
        onion_at(s, S // 2, S // 2 + 16, 64)

    def dish(s):
        dish_at(s, S // 2, S // 2, 84)

    def soup(s):
        dish_at(s, S // 2, S // 2, 84)
        draw.circle(s, SOUP, (S // 2, S // 2), 56)
        draw.circle(s, ONION_DARK, (100, 110), 10)
        draw.circle(s, ONION_DARK, (140, 134), 10)

    def tomato(s):
        draw.circle(s, TOMATO, (S // 2, S // 2 + 10), 62)
        draw.polygon(s, ONION_TOP, [(100, 70), (140, 70), (120, 100)])

    def tomato_soup(s):
        dish_at(s, S // 2, S // 2, 84)
        draw.circle(s, TOMATO_SOUP, (S // 2, S // 2), 56)

    def chef(color, facing):
        # top view: shoulders (the colour), hands towards the facing side, a white hat
        dx, dy = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}[facing]
        px, py = -dy, dx  # perpendicular

        def frame(s):
            c = S // 2
            draw.circle(s, (0, 0, 0, 60), (c + 6, c + 10), 96)  # shadow
            draw.circle(s, color, (c, c), 92)
            for side in (-1, 1):
                hx, hy = c + dx * 72 + px * side * 56, c + dy * 72 + py * side * 56
                draw.circle(s, SKIN, (hx, hy), 20)
            draw.circle(s, SKIN, (c + dx * 30, c + dy * 30), 48)  # face peeking out under the hat
            draw.circle(s, HAT, (c - dx * 8, c - dy * 8), 50)
            draw.circle(s, (225, 225, 225), (c - dx * 8, c - dy * 8), 50, 6)
            for side in (-1, 1):  # eyes on the facing side
                ex, ey = c + dx * 54 + px * side * 18, c + dy * 54 + py * side * 18
                draw.circle(s, (30, 30, 30), (ex, ey), 7)
        return frame

    frames = {"floor": floor, "counter": counter, "onion_box": onion_box, "dish_rack": dish_rack,
              "serve": serve, "pot": pot}
    frames.update({f"pot_onion_{n}": pot_onions(n) for n in (1, 2, 3)})
    frames.update({"pot_cooking": pot_cooking, "pot_ready": pot_ready, "onion": onion, "dish": dish,
                   "soup": soup, "tomato": tomato, "tomato_soup": tomato_soup})
    for name, color in CHEFS.items():
        for facing in ("up", "down", "left", "right"):
            frames[f"chef_{name}_{facing}"] = chef(color, facing)
    return frames


def main() -> None:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame
    frames = _frames(pygame)
    columns = 8
    rows = (len(frames) + columns - 1) // columns
    sheet = pygame.Surface((columns * TILE, rows * TILE), pygame.SRCALPHA)
    table = {}
    for index, (name, paint) in enumerate(frames.items()):
        big = pygame.Surface((S, S), pygame.SRCALPHA)
        paint(big)
        x, y = index % columns * TILE, index // columns * TILE
        sheet.blit(pygame.transform.smoothscale(big, (TILE, TILE)), (x, y))
        table[name] = {"frame": {"x": x, "y": y, "w": TILE, "h": TILE}, "rotated": False, "trimmed": False,
                       "spriteSourceSize": {"x": 0, "y": 0, "w": TILE, "h": TILE},
                       "sourceSize": {"w": TILE, "h": TILE}}
    OUT_PNG.parent.mkdir(parents=True, exist_ok=True)
    pygame.image.save(sheet, str(OUT_PNG))
    meta = {"app": "igym examples/overcooked/make_atlas.py", "image": OUT_PNG.name, "format": "RGBA8888",
            "size": {"w": sheet.get_width(), "h": sheet.get_height()}, "scale": "1"}
    OUT_JSON.write_text(json.dumps({"frames": table, "meta": meta}, indent=1) + "\n")
    print(f"wrote {OUT_PNG} ({sheet.get_width()}×{sheet.get_height()}, {len(table)} frames) and {OUT_JSON}")


if __name__ == "__main__":
    main()
