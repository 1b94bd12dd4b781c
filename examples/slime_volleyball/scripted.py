"""Hand-written Slime Volleyball players: a competent scripted one and a random one.

They play from the 12-number observation a slime sees (its own side mirrored to positive
x, values / 10), so they can sit in any seat. The scripted player predicts where the ball
will come down on its side, stands slightly behind that point (so the ball bounces
towards the net) and jumps when the ball is close. It is the teacher of the shipped ONNX
policy and the "competent opponent" of its evaluation.
"""

from __future__ import annotations

import random

from .slime import (BACKWARD, BACKWARD_JUMP, FORWARD, FORWARD_JUMP, GRAVITY, JUMP, NOOP, REF_U, REF_W,
                    SLIME_RADIUS, TIMESTEP)

HOME_X = 8.0  # where to wait while the ball is on the other side (world units from the net)
WALL_X = REF_W / 2 - 0.5


def landing_x(bx: float, by: float, bvx: float, bvy: float, height: float) -> float:
    """Where the ball will cross ``height`` on its way down (walls reflect), by stepping physics."""
    x, y, vx, vy = bx, by, bvx, bvy
    for _ in range(120):
        if vy < 0 and y <= height:
            return x
        vy += GRAVITY * TIMESTEP
        x += vx * TIMESTEP
        y += vy * TIMESTEP
        if x > WALL_X:
            x, vx = 2 * WALL_X - x, -vx
        elif x < -WALL_X:
            x, vx = -2 * WALL_X - x, -vx
    return x


class ScriptedSlimePolicy:
    """Positions under the predicted landing point and jumps at the ball."""

    def __init__(self, offset: float = 0.6, tolerance: float = 0.3, jump_reach: float = 3.2) -> None:
        self.offset = offset
        self.tolerance = tolerance
        self.jump_reach = jump_reach

    def reset(self) -> None:
        pass

    def act(self, observation) -> int:
        x, y, _vx, _vy, bx, by, bvx, bvy = (v * 10.0 for v in observation[:8])
        land = landing_x(bx, by, bvx, bvy, REF_U + SLIME_RADIUS + 0.5)
        if land > 0 or bx > 0:
            target = max(land, 0.5) + self.offset
        else:
            target = HOME_X
        jump = False
        dx, dy = bx - x, by - y
        if bx > 0 and abs(dx) < self.jump_reach and 0 < dy < 6 and bvy < 0:
            jump = True
        if x < target - self.tolerance:
            return BACKWARD_JUMP if jump else BACKWARD
        if x > target + self.tolerance:
            return FORWARD_JUMP if jump else FORWARD
        return JUMP if jump else NOOP


class RandomSlimePolicy:
    """Uniformly random actions, seeded."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)

    def reset(self) -> None:
        pass

    def act(self, observation) -> int:
        return self.rng.randrange(6)
