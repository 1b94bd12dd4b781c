"""Slime Volleyball as igym shapes: court, net, ball, slimes whose eyes follow the ball, score.

World units (x from -24 to 24, y up from the floor) map to a 1200×500 canvas at 25 px
per unit, the original game's window. The court and net are static (drawn once per
episode); the ball, slimes, eyes and score move. Slimes are half-discs (``Circle`` with
``part="top"``), so a moving slime costs two numbers on the wire, not a polygon.
"""

from __future__ import annotations

import functools
import math

from igym.render import Circle, Rect, Text

from .slime import REF_U, REF_W, SlimeVolleyEnv

CANVAS = (1200, 500)
SCALE = CANVAS[0] / REF_W  # 25 px per world unit

BACKGROUND = (11, 16, 19)
BALL = (217, 79, 0)
LEFT = (35, 93, 188)
RIGHT = (255, 236, 0)
FENCE = (102, 56, 35)
GROUND = (116, 114, 117)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
COIN = FENCE

# The court: these shapes never change, so they are built once.
COURT = (
    Rect("sky", 0, 0, CANVAS[0], CANVAS[1], BACKGROUND, depth=-10, static=True),
    Rect("ground", 0, CANVAS[1] - REF_U * SCALE, CANVAS[0], REF_U * SCALE, GROUND, depth=-5, static=True),
    Rect("fence", CANVAS[0] / 2 - 0.5 * SCALE, CANVAS[1] - 3.5 * SCALE, 1.0 * SCALE, 2.0 * SCALE, FENCE,
         depth=-5, static=True),
    Circle("fence_top", CANVAS[0] / 2, CANVAS[1] - 3.5 * SCALE, 0.5 * SCALE, FENCE, depth=-5, static=True),
)


def sx(x: float) -> float:
    """World x → canvas x (rounded to 0.01 px: keeps wire floats short, invisible on screen)."""
    return round((x + REF_W / 2) * SCALE, 2)


def sy(y: float) -> float:
    """World y (up) → canvas y (down)."""
    return round(CANVAS[1] - y * SCALE, 2)


EYE_DX, EYE_DY = 0.6 * math.cos(math.radians(60)), 0.6 * math.sin(math.radians(60))
_CIRCLES: dict[tuple, Circle] = {}


def _circle(key: tuple) -> Circle:
    """The Circle for ``key`` = (id, x, y, r, color, part, depth), made once and reused.

    A slime standing still, or an eye whose pupil did not move, is then the very same
    object as in the last frame, so the renderer and the wire encoder skip it by identity
    (and no frozen dataclass is built). The memo is bounded: cleared past 4,096 entries.
    """
    shape = _CIRCLES.get(key)
    if shape is None:
        if len(_CIRCLES) > 4096:
            _CIRCLES.clear()
        shape = _CIRCLES[key] = Circle(key[0], key[1], key[2], key[3], key[4], part=key[5], depth=key[6])
    return shape


def _slime(name: str, agent, color, facing: int, ball_x: float, ball_y: float) -> list:
    x, y, r = agent.x, agent.y, agent.r
    eye_x = x + facing * EYE_DX * r
    eye_y = y + EYE_DY * r
    dx, dy = ball_x - eye_x, ball_y - eye_y
    distance = math.hypot(dx, dy) or 1.0
    pupil_x = eye_x + 0.15 * r * dx / distance
    pupil_y = eye_y + 0.15 * r * dy / distance
    return [
        _circle((name, sx(x), sy(y), r * SCALE, color, "top", 1)),
        _circle((f"{name}_eye", sx(eye_x), sy(eye_y), 0.3 * r * SCALE, WHITE, "full", 2)),
        _circle((f"{name}_pupil", sx(pupil_x), sy(pupil_y), 0.15 * r * SCALE, BLACK, "full", 3)),
    ]


@functools.cache
def _coins(name: str, lives: int, left_side: bool) -> tuple:
    """Lives as coins. Cached: unchanged shapes are the same objects frame after frame, so
    the renderer and the wire encoder skip them by identity."""
    return tuple(Circle(f"{name}_life{i}", 20 + i * 24 if left_side else CANVAS[0] - 20 - i * 24, 56, 8, COIN,
                        depth=4) for i in range(lives))


@functools.cache
def _score(left_points: int, right_points: int) -> Text:
    return Text("score", CANVAS[0] / 2, 44, f"{left_points} : {right_points}", 28, WHITE, anchor="midtop", depth=4)


def render(env: SlimeVolleyEnv) -> list:
    """The shapes of the current state of ``env``."""
    game = env.game
    ball, left, right = game.ball, game.agent_left, game.agent_right
    shapes = list(COURT)
    shapes.append(Circle("ball", sx(ball.x), sy(ball.y), ball.r * SCALE, BALL, depth=5))
    shapes += _slime("left", left, LEFT, +1, ball.x, ball.y)
    shapes += _slime("right", right, RIGHT, -1, ball.x, ball.y)
    shapes += _coins("left", left.lives, True)
    shapes += _coins("right", right.lives, False)
    shapes.append(_score(right.max_lives - right.lives, left.max_lives - left.lives))
    return shapes
