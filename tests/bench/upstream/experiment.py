"""Upstream Interactive Gym (PyPI ``interactive-gym==0.1.1``) hosting igym's Slime Volleyball.

Runs **inside the upstream venv** (``~/.cache/igym-upstream/venv``), never in igym's
environment: it imports ``interactive_gym`` and loads igym's pure-Python
``examples/slime_volleyball/slime.py`` by file path (stdlib only), so both servers step
the very same physics.

The experiment is the upstream way of writing a two-human server-side game:
``StartScene`` → ``GymScene`` (two ``"human"`` seats, env stepped on the server at 30 Hz,
``env_to_state_fn`` turning the env into upstream object dicts every tick, sent to the
room as ``environment_state``) → ``EndScene``. Like ``tests/experiments/load_slime.py``
on the igym side, the rooms are endless (``max_steps`` huge, many episodes).

The render function is ours, written against upstream's documented object vocabulary
(``interactive_gym.configurations.object_contexts``): positions relative to the canvas,
sizes in pixels, static shapes sent once with ``permanent=True`` when ``env.t == 0``,
every moving shape re-sent each frame as a whole object (upstream has no deltas). Slimes
are 31-point half-disc polygons (upstream has no half-circle shape), eyes and pupils
circles, the score goes into ``hud_text`` (upstream's place for it).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

from interactive_gym.configurations import configuration_constants, experiment_config, object_contexts
from interactive_gym.scenes import gym_scene, stager, static_scene

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("igym_slime", ROOT / "examples" / "slime_volleyball" / "slime.py")
slime = sys.modules["igym_slime"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(slime)

WIDTH, HEIGHT = 600, 250  # upstream's Slime Volleyball canvas (600×250 at 30 fps)
FPS = 30
# Same as igym's examples (forward = towards the net for both seats). Upstream has one
# action mapping per scene, not per seat; composite keys are declared as upstream expects
# (tuples), although its server never matches them (it compares tuples with strings).
ACTION_MAPPING = {"ArrowRight": 1, "ArrowLeft": 5, "ArrowUp": 3,
                  ("ArrowRight", "ArrowUp"): 2, ("ArrowLeft", "ArrowUp"): 4}
KEYS = ("ArrowLeft", "ArrowRight", "ArrowUp")


def make_env(render_mode: str | None = None, **_):
    """Upstream builds the env as ``env_creator(**env_config, render_mode="rgb_array")``."""
    env = slime.SlimeVolleyEnv(max_steps=10**9)
    env.render_mode = render_mode
    return env


def _x(x: float) -> float:
    return x / slime.REF_W + 0.5


def _y(y: float) -> float:
    return 1 - y / slime.REF_W * (WIDTH / HEIGHT)  # 1 world unit = WIDTH/REF_W px both ways


PX = WIDTH / slime.REF_W


def _half_disc(name: str, x: float, y: float, r: float, color: str) -> dict:
    points = [(_x(x + r * math.cos(math.pi * i / 30)), _y(y + r * math.sin(math.pi * i / 30))) for i in range(31)]
    return object_contexts.Polygon(uuid=name, color=color, points=points, depth=1).as_dict()


def _eyes(name: str, agent, facing: int, ball) -> list[dict]:
    ex = agent.x + facing * 0.6 * agent.r * math.cos(math.radians(60))
    ey = agent.y + 0.6 * agent.r * math.sin(math.radians(60))
    dx, dy = ball.x - ex, ball.y - ey
    d = math.hypot(dx, dy) or 1.0
    return [object_contexts.Circle(uuid=f"{name}_eye", color="#FFFFFF", x=_x(ex), y=_y(ey),
                                   radius=0.3 * agent.r * PX, depth=2).as_dict(),
            object_contexts.Circle(uuid=f"{name}_pupil", color="#000000", x=_x(ex + 0.15 * agent.r * dx / d),
                                   y=_y(ey + 0.15 * agent.r * dy / d), radius=0.15 * agent.r * PX, depth=3).as_dict()]


def env_to_state(env, scene) -> list[dict]:
    """``GymScene.env_to_state_fn``: the env as upstream object dicts, every tick."""
    game = env.game
    objects = []
    if env.t == 0:  # the court, once per episode
        ground_y = _y(slime.REF_U)
        objects.append(object_contexts.Line(uuid="ground", color="#747275", points=[(0, ground_y), (1, ground_y)],
                                            width=2, fill_below=True, permanent=True).as_dict())
        objects.append(object_contexts.Line(uuid="fence", color="#663823",
                                            points=[(0.5, _y(slime.REF_WALL_HEIGHT)), (0.5, ground_y)],
                                            width=slime.REF_WALL_WIDTH * PX, permanent=True).as_dict())
        objects.append(object_contexts.Circle(uuid="fence_top", color="#663823", x=0.5, y=_y(slime.REF_WALL_HEIGHT),
                                              radius=0.5 * PX, permanent=True).as_dict())
    ball, left, right = game.ball, game.agent_left, game.agent_right
    objects.append(object_contexts.Circle(uuid="ball", color="#D94F00", x=_x(ball.x), y=_y(ball.y),
                                          radius=ball.r * PX, depth=5).as_dict())
    objects.append(_half_disc("left", left.x, left.y, left.r, "#235DBC"))
    objects += _eyes("left", left, +1, ball)
    objects.append(_half_disc("right", right.x, right.y, right.r, "#FFEC00"))
    objects += _eyes("right", right, -1, ball)
    return objects


def hud_text(game) -> str:
    env = game.env
    return f"{env.game.agent_right.max_lives - env.game.agent_right.lives} : " \
           f"{env.game.agent_left.max_lives - env.game.agent_left.lives}"


def build(port: int) -> experiment_config.ExperimentConfig:
    start = static_scene.StartScene().scene(scene_id="start", should_export_metadata=False).display(
        scene_header="Slime Volleyball (load benchmark)", scene_body="<p>Press Continue.</p>")
    game = (
        gym_scene.GymScene()
        .scene(scene_id="slime_hh", experiment_config={})
        .environment(env_creator=make_env, env_config={})
        .rendering(fps=FPS, env_to_state_fn=env_to_state, hud_text_fn=hud_text, game_width=WIDTH,
                   game_height=HEIGHT, background="#0B1013")
        .policies(policy_mapping={"agent_left": configuration_constants.PolicyTypes.Human,
                                  "agent_right": configuration_constants.PolicyTypes.Human})
        .gameplay(action_mapping=ACTION_MAPPING, default_action=0, num_episodes=1000,
                  input_mode=configuration_constants.InputModes.PressedKeys,
                  action_population_method=configuration_constants.ActionSettings.PreviousSubmittedAction)
        .user_experience(scene_header="Slime Volleyball", waitroom_timeout=600_000)
    )
    end = static_scene.EndScene().scene(scene_id="end").display(scene_header="Thanks")
    return (experiment_config.ExperimentConfig()
            .experiment(experiment_id="igym_bench_slime_hh", stager=stager.Stager(scenes=[start, game, end]),
                        save_experiment_data=False)
            .hosting(host="127.0.0.1", port=port))
