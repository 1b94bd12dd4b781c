"""Slime Volleyball, faithful to David Ha's slimevolleygym 0.1.0, in pure Python.

Pure Python (``math`` and ``random`` only) so the same env runs natively, in the browser
(Pyodide / pygbag) and on the server. The physics follows the published game step for
step — the same constants, the same order of updates, the same quirks (the observation is
not refreshed on the step a point is scored; the ball is frozen for 30 frames after each
serve) — so trajectories agree with the original to floating-point precision; a test
checks 1,000 steps against the original package.

The env is a PettingZoo-style ``ParallelEnv`` (agents ``agent_left`` and ``agent_right``)
implemented by duck typing: importing gymnasium would import numpy, so its spaces are
built only when ``action_space``/``observation_space`` are called.

World: x from -24 (left wall) to 24 (right wall), y up from 0; the floor is 1.5 high,
the fence 1 wide and 3.5 high with a round stub on top.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from dataclasses import dataclass
from typing import Any

REF_W = 48.0
REF_H = 48.0
REF_U = 1.5  # floor height
REF_WALL_WIDTH = 1.0
REF_WALL_HEIGHT = 3.5
PLAYER_SPEED_X = 17.5
PLAYER_SPEED_Y = 13.5
MAX_BALL_SPEED = 22.5
TIMESTEP = 1 / 30.0
NUDGE = 0.1
FRICTION = 1.0
INIT_DELAY_FRAMES = 30
GRAVITY = -29.4
MAX_LIVES = 5
SLIME_RADIUS = 1.5
BALL_RADIUS = 0.5
T_LIMIT = 3000

# Discrete(6) actions, as (forward, backward, jump) buttons. "Forward" is towards the net
# for both slimes (→ for the left one, ← for the right one).
NOOP, FORWARD, FORWARD_JUMP, JUMP, BACKWARD_JUMP, BACKWARD = range(6)
ACTION_BUTTONS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 0, 1), (0, 1, 1), (0, 1, 0))
ACTION_NAMES = ("noop", "forward", "forward_jump", "jump", "backward_jump", "backward")
AGENTS = ("agent_left", "agent_right")


@dataclass
class Ball:
    """A moving disc: the ball (and, standing still, the fence's round stub)."""

    x: float
    y: float
    vx: float
    vy: float
    r: float
    prev_x: float = 0.0
    prev_y: float = 0.0

    def __post_init__(self) -> None:
        self.prev_x, self.prev_y = self.x, self.y

    def move(self) -> None:
        self.prev_x, self.prev_y = self.x, self.y
        self.x += self.vx * TIMESTEP
        self.y += self.vy * TIMESTEP

    def accelerate(self, ax: float, ay: float) -> None:
        self.vx += ax * TIMESTEP
        self.vy += ay * TIMESTEP

    def cap_speed(self, max_speed: float) -> None:
        speed2 = self.vx * self.vx + self.vy * self.vy
        if speed2 > max_speed * max_speed:
            speed = math.sqrt(speed2)
            self.vx = self.vx / speed * max_speed
            self.vy = self.vy / speed * max_speed

    def touches(self, other: Ball | Slime) -> bool:
        dx, dy = other.x - self.x, other.y - self.y
        reach = self.r + other.r
        return reach * reach > dx * dx + dy * dy

    def bounce_off(self, other: Ball | Slime) -> None:
        """Push out along the normal in NUDGE steps, then reflect the relative velocity (×2)."""
        nx, ny = self.x - other.x, self.y - other.y
        length = math.sqrt(nx * nx + ny * ny)
        nx /= length
        ny /= length
        step_x, step_y = nx * NUDGE, ny * NUDGE
        while self.touches(other):
            self.x += step_x
            self.y += step_y
        ux, uy = self.vx - other.vx, self.vy - other.vy
        normal_speed = ux * nx + uy * ny
        ux -= nx * (normal_speed * 2.0)
        uy -= ny * (normal_speed * 2.0)
        self.vx = ux + other.vx
        self.vy = uy + other.vy

    def hit_edges(self) -> int:
        """Bounce off walls, ceiling and fence; -1 / +1 when it lands on the left / right floor."""
        r = self.r
        if self.x <= r - REF_W / 2:
            self.vx *= -FRICTION
            self.x = r - REF_W / 2 + NUDGE * TIMESTEP
        if self.x >= REF_W / 2 - r:
            self.vx *= -FRICTION
            self.x = REF_W / 2 - r - NUDGE * TIMESTEP
        if self.y <= r + REF_U:
            self.vy *= -FRICTION
            self.y = r + REF_U + NUDGE * TIMESTEP
            return -1 if self.x <= 0 else 1
        if self.y >= REF_H - r:
            self.vy *= -FRICTION
            self.y = REF_H - r - NUDGE * TIMESTEP
        face = REF_WALL_WIDTH / 2 + r
        if self.x <= face and self.prev_x > face and self.y <= REF_WALL_HEIGHT:
            self.vx *= -FRICTION
            self.x = face + NUDGE * TIMESTEP
        if self.x >= -face and self.prev_x < -face and self.y <= REF_WALL_HEIGHT:
            self.vx *= -FRICTION
            self.x = -face - NUDGE * TIMESTEP
        return 0


@dataclass
class Slime:
    """One player. ``side`` is -1 for the left slime and +1 for the right one."""

    side: int
    x: float
    y: float = REF_U
    vx: float = 0.0
    vy: float = 0.0
    r: float = SLIME_RADIUS
    desired_vx: float = 0.0
    desired_vy: float = 0.0
    lives: int = MAX_LIVES
    max_lives: int = MAX_LIVES

    def press(self, buttons: tuple[int, int, int] | list) -> None:
        forward, backward, jump = buttons[0] > 0, buttons[1] > 0, buttons[2] > 0
        self.desired_vx = 0.0
        self.desired_vy = 0.0
        if forward and not backward:
            self.desired_vx = -PLAYER_SPEED_X
        if backward and not forward:
            self.desired_vx = PLAYER_SPEED_X
        if jump:
            self.desired_vy = PLAYER_SPEED_Y

    def update(self) -> None:
        self.vy += GRAVITY * TIMESTEP
        if self.y <= REF_U + NUDGE * TIMESTEP:
            self.vy = self.desired_vy
        self.vx = self.desired_vx * self.side
        self.x += self.vx * TIMESTEP
        self.y += self.vy * TIMESTEP
        if self.y <= REF_U:
            self.y = REF_U
            self.vy = 0.0
        near = REF_WALL_WIDTH / 2 + self.r
        if self.x * self.side <= near:
            self.vx = 0.0
            self.x = self.side * near
        far = REF_W / 2 - self.r
        if self.x * self.side >= far:
            self.vx = 0.0
            self.x = self.side * far


class SlimeGame:
    """The physics of one match: two slimes, a ball, a fence stub, serve delays."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.fence_stub = Ball(0.0, REF_WALL_HEIGHT, 0.0, 0.0, REF_WALL_WIDTH / 2)
        self.agent_left = Slime(-1, -REF_W / 4)
        self.agent_right = Slime(1, REF_W / 4)
        self.ball = self._serve()
        self.delay = INIT_DELAY_FRAMES
        self.observations: dict[str, list[float]] = {}
        self._observe()

    def _serve(self) -> Ball:
        vx = self.rng.uniform(-20, 20)
        vy = self.rng.uniform(10, 25)
        return Ball(0.0, REF_W / 4, vx, vy, BALL_RADIUS)

    def _observe(self) -> None:
        ball, left, right = self.ball, self.agent_left, self.agent_right
        self.observations = {"agent_left": _observation(left, ball, right),
                             "agent_right": _observation(right, ball, left)}

    def step(self, left_buttons: Any, right_buttons: Any) -> int:
        """Advance one frame; +1 if the right slime won a point, -1 if the left one did."""
        left, right, ball = self.agent_left, self.agent_right, self.ball
        left.press(left_buttons)
        right.press(right_buttons)
        left.update()
        right.update()
        if self.delay == 0:
            ball.accelerate(0.0, GRAVITY)
            ball.cap_speed(MAX_BALL_SPEED)
            ball.move()
        else:
            self.delay -= 1
        if ball.touches(left):
            ball.bounce_off(left)
        if ball.touches(right):
            ball.bounce_off(right)
        if ball.touches(self.fence_stub):
            ball.bounce_off(self.fence_stub)
        result = -ball.hit_edges()
        if result != 0:
            self.ball = self._serve()
            self.delay = INIT_DELAY_FRAMES
            if result < 0:
                right.lives -= 1
            else:
                left.lives -= 1
            return result  # the original keeps the previous observation on a scoring step
        self._observe()
        return result


def _observation(me: Slime, ball: Ball, other: Slime) -> list[float]:
    side = me.side
    return [me.x * side / 10.0, me.y / 10.0, me.vx * side / 10.0, me.vy / 10.0,
            ball.x * side / 10.0, ball.y / 10.0, ball.vx * side / 10.0, ball.vy / 10.0,
            other.x * -side / 10.0, other.y / 10.0, other.vx * -side / 10.0, other.vy / 10.0]


def buttons_of(action: Any) -> tuple[int, int, int] | list:
    """A Discrete(6) action (int) or a 3-button list → buttons."""
    if isinstance(action, (list, tuple)):
        if len(action) != 3:
            raise ValueError(f"a button action needs 3 entries (forward, backward, jump), got {action!r}")
        return action
    index = int(action)
    if not 0 <= index < 6:
        raise ValueError(f"action {action!r} is not in 0..5")
    return ACTION_BUTTONS[index]


_FINGERPRINT = struct.Struct("<12d4q")  # ball, left, right (x, y, vx, vy); delay, lives ×2, t


class SlimeVolleyEnv:
    """Two-player Slime Volleyball as a PettingZoo ParallelEnv (duck-typed, numpy-free).

    Rewards are +1 / -1 per point from each slime's own view. An episode terminates when
    a slime has lost all ``MAX_LIVES`` lives and is truncated after ``max_steps`` steps.
    ``obs_as="numpy"`` returns float32 arrays (for PettingZoo's API checks); the default
    returns lists of floats.
    """

    metadata = {"name": "slime_volleyball_v0", "render_modes": [], "is_parallelizable": True}
    possible_agents = list(AGENTS)

    def __init__(self, max_steps: int = T_LIMIT, obs_as: str = "list") -> None:
        if obs_as not in ("list", "numpy"):
            raise ValueError("obs_as must be 'list' or 'numpy'")
        self.max_steps = max_steps
        self.obs_as = obs_as
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self.rng = random.Random()
        self.game = SlimeGame(self.rng)
        self.t = 0
        self._spaces: dict[str, Any] = {}

    @property
    def unwrapped(self) -> SlimeVolleyEnv:
        return self

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def max_num_agents(self) -> int:
        return len(self.possible_agents)

    def state(self) -> Any:
        raise NotImplementedError("SlimeVolleyEnv has no global state observation; use get_state()")

    # --- spaces (gymnasium imported only when asked) ---

    def action_space(self, agent: str) -> Any:
        if "action" not in self._spaces:
            from gymnasium.spaces import Discrete
            self._spaces["action"] = Discrete(6)
        return self._spaces["action"]

    def observation_space(self, agent: str) -> Any:
        if "observation" not in self._spaces:
            from gymnasium.spaces import Box
            self._spaces["observation"] = Box(-100.0, 100.0, (12,))
        return self._spaces["observation"]

    # --- episode ---

    def _obs(self) -> dict[str, Any]:
        observations = self.game.observations
        if self.obs_as == "numpy":
            import numpy
            return {a: numpy.asarray(observations[a], dtype=numpy.float32) for a in self.agents}
        return {a: list(observations[a]) for a in self.agents}

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        if seed is not None:
            self.rng.seed(seed)
        self.game = SlimeGame(self.rng)
        self.t = 0
        self.agents = list(AGENTS)
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise RuntimeError("step() after the episode ended — call reset()")
        self.t += 1
        result = self.game.step(buttons_of(actions["agent_left"]), buttons_of(actions["agent_right"]))
        left, right = self.game.agent_left, self.game.agent_right
        rewards = {"agent_left": float(-result), "agent_right": float(result)}
        over = left.lives <= 0 or right.lives <= 0
        cut = self.t >= self.max_steps and not over
        observations = self._obs()
        agents = self.agents
        terminations = {a: over for a in agents}
        truncations = {a: cut for a in agents}
        infos = {"agent_left": {"lives": left.lives, "opponent_lives": right.lives},
                 "agent_right": {"lives": right.lives, "opponent_lives": left.lives}}
        if over or cut:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> None:
        """Drawing is done by igym's render function (draw.py), from ``self.game``."""
        return None

    def close(self) -> None:
        pass

    # --- state, for replay checks and networked lockstep ---

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue this episode identically (JSON-safe)."""
        g = self.game
        version, internal, gauss = self.rng.getstate()
        return {
            "t": self.t, "agents": list(self.agents), "delay": g.delay,
            "ball": [g.ball.x, g.ball.y, g.ball.vx, g.ball.vy, g.ball.prev_x, g.ball.prev_y],
            "slimes": [[s.x, s.y, s.vx, s.vy, s.desired_vx, s.desired_vy, s.lives]
                       for s in (g.agent_left, g.agent_right)],
            "observations": {a: list(v) for a, v in g.observations.items()},
            "rng": [version, list(internal), gauss],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`get_state` snapshot."""
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        g = self.game
        self.t = state["t"]
        self.agents = list(state["agents"])
        g.delay = state["delay"]
        bx, by, bvx, bvy, px, py = state["ball"]
        g.ball = Ball(bx, by, bvx, bvy, BALL_RADIUS)
        g.ball.prev_x, g.ball.prev_y = px, py
        for slime, values in zip((g.agent_left, g.agent_right), state["slimes"]):
            (slime.x, slime.y, slime.vx, slime.vy, slime.desired_vx, slime.desired_vy, slime.lives) = values
        g.observations = {a: list(v) for a, v in state["observations"].items()}

    def state_fingerprint(self) -> str:
        """A short hash of the exact physics state (the floats' bits, not rounded values).

        The numbers are packed as little-endian doubles, so the hash is the same on every
        platform (desktop, wasm32 in the browser) and costs about 2 µs: it is recorded on
        every step.
        """
        g = self.game
        ball, left, right = g.ball, g.agent_left, g.agent_right
        packed = _FINGERPRINT.pack(ball.x, ball.y, ball.vx, ball.vy, left.x, left.y, left.vx, left.vy,
                                   right.x, right.y, right.vx, right.vy, int(g.delay), left.lives, right.lives, self.t)
        return hashlib.sha1(packed).hexdigest()[:16]
