"""Mountain Car drawn with igym shapes (the other half of rgb.py).

    python -m igym.play examples/mountain_car/shapes.py

Gymnasium's ``MountainCar-v0``: ← pushes left, → pushes right, no key = no push
(action 1). Reach the flag within 200 steps by rocking back and forth.

The render function draws the hill as one ``Line`` with ``fill="below"`` and the flag
(both static: drawn once per episode), and the car as a body polygon tilted with the
slope plus two wheels (moving: interpolated between env steps). Compare rgb.py, which
has no render function and shows the env's own ``rgb_array`` picture.
"""

from __future__ import annotations

import functools
import math

import gymnasium

from igym import Experiment, Game, KeyMap
from igym.render import Circle, Line, Polygon, Rect

CANVAS = (600, 400)
MIN_X, MAX_X, GOAL_X = -1.2, 0.6, 0.5
SCALE = CANVAS[0] / (MAX_X - MIN_X)  # px per world unit along x
SCALE_Y = 300  # px per world unit of height (a little flatter than the env's own picture)
GROUND = 20  # px from the bottom of the canvas to height 0
SKY = (200, 225, 245)
HILL = (95, 150, 80)
CAR = (200, 60, 50)
WHEEL = (40, 40, 40)
POLE = (90, 90, 90)
FLAG = (240, 200, 40)
CAR_W, CAR_H, CLEARANCE, WHEEL_R = 40, 20, 10, 6


def height(x: float) -> float:
    """The hill's height at position ``x`` (MountainCarEnv's own curve)."""
    return math.sin(3 * x) * 0.45 + 0.55


def to_canvas(x: float, y: float) -> tuple[float, float]:
    return round((x - MIN_X) * SCALE, 2), round(CANVAS[1] - GROUND - y * SCALE_Y, 2)


SCENERY = (
    Rect("sky", 0, 0, CANVAS[0], CANVAS[1], SKY, depth=-10, static=True),
    Line("hill", tuple(to_canvas(MIN_X + i * (MAX_X - MIN_X) / 120, height(MIN_X + i * (MAX_X - MIN_X) / 120))
                       for i in range(121)), HILL, width=3, fill="below", depth=-5, static=True),
    Line("flag_pole", (to_canvas(GOAL_X, height(GOAL_X)), (to_canvas(GOAL_X, height(GOAL_X))[0],
                                                          to_canvas(GOAL_X, height(GOAL_X))[1] - 50)),
         POLE, width=2, depth=-4, static=True),
    Polygon("flag", ((to_canvas(GOAL_X, height(GOAL_X))[0], to_canvas(GOAL_X, height(GOAL_X))[1] - 50),
                     (to_canvas(GOAL_X, height(GOAL_X))[0], to_canvas(GOAL_X, height(GOAL_X))[1] - 38),
                     (to_canvas(GOAL_X, height(GOAL_X))[0] + 25, to_canvas(GOAL_X, height(GOAL_X))[1] - 44)),
            FLAG, depth=-4, static=True),
)


@functools.lru_cache(maxsize=2048)
def _car(position: float) -> tuple:
    """Body and wheels at ``position`` (rounded: a car standing still is the same objects)."""
    angle = math.atan(3 * 0.45 * math.cos(3 * position) * SCALE_Y / SCALE)  # the slope on screen
    cos, sin = math.cos(angle), math.sin(angle)
    base_x, base_y = to_canvas(position, height(position))

    def at(dx: float, dy: float) -> tuple[float, float]:  # car frame (x along the slope, y up) → canvas
        return round(base_x + dx * cos - dy * sin, 2), round(base_y - (dx * sin + dy * cos), 2)

    body = Polygon("car", (at(-CAR_W / 2, CLEARANCE), at(CAR_W / 2, CLEARANCE), at(CAR_W / 2, CLEARANCE + CAR_H),
                           at(-CAR_W / 2, CLEARANCE + CAR_H)), CAR, depth=1)
    wheels = tuple(Circle(f"wheel_{i}", *at(dx, WHEEL_R), WHEEL_R, WHEEL, depth=2)
                   for i, dx in enumerate((-CAR_W / 4, CAR_W / 4)))
    return (body, *wheels)


def render(env) -> list:
    position = float(env.unwrapped.state[0])
    return [*SCENERY, *_car(round(position, 4))]


def make_env():
    return gymnasium.make("MountainCar-v0")


experiment = Experiment(
    id="mountain_car_shapes",
    scenes=[
        Game(
            name="mountain_car_shapes",
            env=make_env,
            render=render,
            seats={"agent_0": "human"},
            keys=KeyMap({"left": 0, "right": 2}, default_action=1),
            fps=30,
            episodes=3,
            seeds=0,
            canvas=CANVAS,
            background=SKY,
        )
    ],
)
