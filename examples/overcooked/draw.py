"""CoGrid Overcooked as igym sprites: kitchen tiles, pots, items, two cooks, HUD.

A kitchen of H×W tiles is drawn at ``TILE`` = 60 logical px per tile on a canvas of
``canvas(layout)`` (the kitchen centred; the HUD has its own strip above the canvas). Every
sprite is a frame of the project's own atlas (``assets/overcooked.json``, drawn by
make_atlas.py); the scene declares it as ``atlases=ATLASES``, whose path is absolute (this
module's folder), so a study anywhere can import this module and find the atlas.

- Tiles (floor, counters, onion and dish dispensers, pots, the serving area) are
  ``static=True``: drawn once per episode into the renderer's cached layer. They are
  built once per layout and the same tuple is returned every frame, so the renderer
  recognises them by identity.
- Cooks (``chef0``, ``chef1``: blue and green, facing their direction), what they hold
  (``held0``, ``held1``), items on counters or the floor (``item_<r>_<c>``) and pot
  contents (``pot<k>`` and a cooking bar ``pot<k>_bar``) keep stable ids, so the renderer
  slides the cooks from tile to tile between env steps. Every shape comes from a cache
  keyed by what it shows: an unchanged shape is the very same object frame after frame
  (free for the renderer and the wire encoder).

It reads CoGrid's state arrays (``env._env_state``: ``object_type_map``,
``object_state_map``, ``agent_pos``/``agent_dir``/``agent_inv``, ``pot_contents``,
``pot_timer``, ``pot_positions``). Pure Python + numpy-free reads (``tolist``/``tobytes``
on the env's arrays); no pygame. About 2 µs per frame once the caches know the state's
pieces, 150 µs for a never-seen state (tests/bench/bench_overcooked.py), against ~2.2 ms
for one CoGrid step.
"""

from __future__ import annotations

import functools
from pathlib import Path

from igym.experiment import HudInfo
from igym.render import Rect, Sprite

from .env import DELIVERY_REWARD, LAYOUT_SIZES

TILE = 60
PAD = 10
MIN_WIDTH = 540
ATLAS = "overcooked"
HERE = Path(__file__).resolve().parent
ATLASES = {ATLAS: str(HERE / "assets" / "overcooked.json")}  # where it is declared, not where a study is
BACKGROUND = (46, 40, 36)
COOK_TIME = 30  # CoGrid's pot timer counts 30 → 0 once three onions are in

# CoGrid type ids → atlas frames
TILE_FRAMES = {2: "counter", 7: "serve", 11: "onion_box", 13: "dish_rack", 14: "pot", 18: "onion_box"}
ITEM_FRAMES = {8: "onion", 9: "soup", 12: "dish", 15: "tomato", 16: "tomato_soup"}
CHEF_COLORS = ("blue", "green")
FACING = ("right", "down", "left", "up")  # CoGrid agent_dir: Right=0, Down=1, Left=2, Up=3
FACING_OFFSET = ((1, 0), (0, 1), (-1, 0), (0, -1))
ITEM_SIZE = 44
HELD_SIZE = 34
BAR_BACK = (30, 30, 30)
BAR_COOKING = (240, 170, 40)
BAR_READY = (90, 200, 90)


def canvas(height: int, width: int) -> tuple[int, int]:
    """The canvas for a kitchen of ``height`` × ``width`` tiles."""
    return max(width * TILE + 2 * PAD, MIN_WIDTH), height * TILE + 2 * PAD


def layout_canvas(layout: str) -> tuple[int, int]:
    """The canvas for a layout by name (``Game(canvas=layout_canvas("cramped_room"))``)."""
    return canvas(*LAYOUT_SIZES[layout])


def origin(height: int, width: int) -> tuple[int, int]:
    """Canvas position of the kitchen's top-left corner."""
    return (canvas(height, width)[0] - width * TILE) // 2, PAD


class Kitchen:
    """Everything about one layout that does not change in an episode."""

    def __init__(self, types: list[list[int]]) -> None:
        self.height, self.width = len(types), len(types[0])
        self.x0, self.y0 = origin(self.height, self.width)
        self.static = tuple(
            Sprite(f"tile_{r}_{c}", self.x0 + c * TILE, self.y0 + r * TILE, TILE, TILE, ATLAS,
                   TILE_FRAMES.get(t, "floor"), depth=-10, static=True)
            for r, row in enumerate(types) for c, t in enumerate(row))
        self.items: dict[bytes, tuple] = {}
        self.pots: dict[bytes, tuple] = {}

    def xy(self, r: int, c: int) -> tuple[int, int]:
        return self.x0 + c * TILE, self.y0 + r * TILE


_KITCHENS: dict[bytes, Kitchen] = {}
_BY_LAYOUT: dict[tuple, Kitchen] = {}


def kitchen(types_array) -> Kitchen:
    """The Kitchen of this type map (cached by its bytes; items dropped on the floor change the
    map's bytes but not the tiles, so equal tiles share one Kitchen and one static tuple)."""
    key = types_array.tobytes()
    found = _KITCHENS.get(key)
    if found is None:
        types = [[t if t in TILE_FRAMES else 0 for t in row] for row in types_array.tolist()]
        layout_key = tuple(map(tuple, types))
        found = _BY_LAYOUT.get(layout_key)
        if found is None:
            found = _BY_LAYOUT[layout_key] = Kitchen(types)
        _KITCHENS[key] = found
    return found


@functools.lru_cache(maxsize=4096)
def _item(k: Kitchen, r: int, c: int, item: int) -> Sprite:
    x, y = k.xy(r, c)
    off = (TILE - ITEM_SIZE) / 2
    return Sprite(f"item_{r}_{c}", x + off, y + off, ITEM_SIZE, ITEM_SIZE, ATLAS, ITEM_FRAMES[item], depth=1)


@functools.lru_cache(maxsize=4096)
def _chef(k: Kitchen, agent: int, r: int, c: int, direction: int) -> Sprite:
    x, y = k.xy(r, c)
    return Sprite(f"chef{agent}", x, y, TILE, TILE, ATLAS,
                  f"chef_{CHEF_COLORS[agent % 2]}_{FACING[direction]}", depth=5)


@functools.lru_cache(maxsize=4096)
def _held(k: Kitchen, agent: int, r: int, c: int, direction: int, item: int) -> Sprite:
    x, y = k.xy(r, c)
    dx, dy = FACING_OFFSET[direction]
    off = (TILE - HELD_SIZE) / 2
    return Sprite(f"held{agent}", x + off + dx * 20, y + off + dy * 20, HELD_SIZE, HELD_SIZE, ATLAS,
                  ITEM_FRAMES[item], depth=6)


def _items(k: Kitchen, types: list, items: list) -> tuple:
    shapes = []
    for r, (type_row, item_row) in enumerate(zip(types, items)):
        for c, (t, i) in enumerate(zip(type_row, item_row)):
            if i in ITEM_FRAMES:
                shapes.append(_item(k, r, c, i))
            elif t in ITEM_FRAMES:
                shapes.append(_item(k, r, c, t))
    return tuple(shapes)


def _pots(k: Kitchen, positions: list, contents: list, timers: list) -> tuple:
    shapes = []
    for index, ((r, c), inside, timer) in enumerate(zip(positions, contents, timers)):
        n = sum(1 for v in inside if v > 0)
        if n == 0:
            continue
        x, y = k.xy(r, c)
        if n < 3:
            frame = f"pot_onion_{n}"
        else:
            frame = "pot_ready" if timer == 0 else "pot_cooking"
        shapes.append(Sprite(f"pot{index}", x, y, TILE, TILE, ATLAS, frame, depth=1))
        if n == 3:
            done = 1.0 if timer <= 0 else max(0.0, (COOK_TIME - timer) / COOK_TIME)
            shapes.append(Rect(f"pot{index}_bar_back", x + 6, y + TILE - 11, TILE - 12, 7, BAR_BACK, depth=2))
            shapes.append(Rect(f"pot{index}_bar", x + 7, y + TILE - 10, round((TILE - 14) * done, 1), 5,
                               BAR_READY if timer == 0 else BAR_COOKING, depth=3))
    return tuple(shapes)


def render(env) -> list:
    """The shapes of the kitchen ``env`` (an OvercookedEnv / CoGridEnv) shows now."""
    state = env._env_state
    types_array, items_array = state.object_type_map, state.object_state_map
    k = kitchen(types_array)
    shapes = list(k.static)
    key = types_array.tobytes() + items_array.tobytes()
    items = k.items.get(key)
    if items is None:
        if len(k.items) > 4096:
            k.items.clear()
        items = k.items[key] = _items(k, types_array.tolist(), items_array.tolist())
    shapes += items
    extra = state.extra_state
    contents, timers = extra["overcooked.pot_contents"], extra["overcooked.pot_timer"]
    key = contents.tobytes() + timers.tobytes()
    pots = k.pots.get(key)
    if pots is None:
        if len(k.pots) > 4096:
            k.pots.clear()
        pots = k.pots[key] = _pots(k, extra["overcooked.pot_positions"].tolist(), contents.tolist(),
                                   timers.tolist())
    shapes += pots
    for agent, ((r, c), direction, (held,)) in enumerate(zip(state.agent_pos.tolist(), state.agent_dir.tolist(),
                                                             state.agent_inv.tolist())):
        shapes.append(_chef(k, agent, r, c, direction))
        if held in ITEM_FRAMES:
            shapes.append(_held(k, agent, r, c, direction, held))
    return shapes


def hud(info: HudInfo) -> dict[str, str]:
    """Score (20 per soup, shared by the two cooks), soups served, time left, round."""
    score = info.returns.get("0", 0.0)
    seconds = max(0, (info.max_steps or 0) - info.step) / info.fps
    return {"Score": f"{score:.0f}", "Soups": f"{round(score / DELIVERY_REWARD)}",
            "Time left": f"{int(seconds) // 60}:{int(seconds) % 60:02d}",
            "Round": f"{info.episode + 1}/{info.episodes}"}
