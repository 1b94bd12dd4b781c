"""Overcooked (CoGrid 0.3.2) in igym: adapter, replay fingerprint, sprites on screen, the ONNX
cooks, and the experiment files played headless end to end. Real CoGrid, real pygame
surfaces (dummy video driver), real ONNX models, real SQLite files."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pygame
import pytest

from examples.overcooked import draw, human_ai, human_human
from examples.overcooked.env import INTERACT, NOOP, OBS_SIZE, OvercookedEnv
from examples.overcooked.evaluate_policy import play_episode
from examples.overcooked.make_atlas import CENTRES, CHEFS, SOUP
from examples.overcooked.scripted import RandomCook, ScriptedCook
from igym.envs import EnvAdapter
from igym.policy import OnnxPolicy
from igym.render import Frame, Sprite, validate_shapes
from igym.renderers.assets import Assets
from igym.renderers.draw import FrameRenderer

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}


# --- the env through igym's adapter -------------------------------------------------------

def test_adapter_runs_cogrid_with_int_agents_and_fingerprints():
    adapter = EnvAdapter(OvercookedEnv("cramped_room", max_steps=20))
    assert adapter.kind == "parallel" and adapter.agents == (0, 1) and adapter.agent_names == ("0", "1")
    assert adapter.agent("1") == 1
    assert adapter.action_space(0).n == 7
    assert adapter.env.action_set[INTERACT] == "pick_up_or_drop" and adapter.env.action_set[NOOP] == "no-op"
    assert adapter.env.observation_space(0).shape == (OBS_SIZE,)  # CoGrid 0.3.2 itself raises here
    observations = adapter.reset(seed=3)
    assert set(observations) == {0, 1} and observations[0].shape == (OBS_SIZE,)
    first = adapter.state_fingerprint()
    assert len(first) == 16
    steps = 0
    while not adapter.done:
        result = adapter.step({0: 3, 1: 2})
        steps += 1
    assert steps == 20 and result.truncations == {0: True, 1: True}
    assert adapter.state_fingerprint() != first


def test_same_seed_same_actions_same_fingerprints_and_set_state_replays():
    def run(seed):
        env = OvercookedEnv("asymmetric_advantages")
        env.reset(seed=seed)
        cooks = [ScriptedCook(env, 0, seed=1), RandomCook(2)]
        prints = []
        for _ in range(60):
            env.step({0: cooks[0].act(), 1: cooks[1].act()})
            prints.append(env.state_fingerprint())
        return env, prints

    env_a, prints_a = run(5)
    _, prints_b = run(5)
    assert prints_a == prints_b and len(set(prints_a)) > 10
    snapshot = env_a.get_state()
    other = OvercookedEnv("asymmetric_advantages")
    other.reset(seed=99)
    other.set_state(snapshot)
    assert other.state_fingerprint() == env_a.state_fingerprint()
    for action in (0, 3, 4, 1, 2, 4):
        env_a.step({0: action, 1: 6})
        other.step({0: action, 1: 6})
        assert other.state_fingerprint() == env_a.state_fingerprint()


def test_delivery_only_rewards_score_twenty_per_soup():
    soups = play_episode("cramped_room", lambda env: {0: ScriptedCook(env, 0, seed=0), 1: ScriptedCook(env, 1, seed=1)},
                         seed=0, steps=200)
    assert soups >= 2
    assert OvercookedEnv("cramped_room", rewards="shaped").config["rewards"] != \
        OvercookedEnv("cramped_room").config["rewards"]


# --- drawing ---------------------------------------------------------------------------

def known_kitchen():
    """Cramped Room, seed 0 (cook 0 at row 2 col 3 facing left, cook 1 at row 1 col 3 facing
    down), then: an onion on the top-left counter, a cooking pot, cook 0 holding a dish."""
    env = OvercookedEnv("cramped_room")
    env.reset(seed=0)
    state = env.get_state()
    state["object_state_map"][0][0] = 8
    state["extra_state"]["overcooked.pot_contents"]["data"] = [[8, 8, 8]]
    state["extra_state"]["overcooked.pot_timer"]["data"] = [10]
    state["agent_inv"] = [[12], [-1]]
    env.set_state(state)
    return env


@pytest.fixture(scope="module")
def screen():
    pygame.display.init()
    yield pygame.display.set_mode(draw.layout_canvas("cramped_room"))
    pygame.display.quit()


def close(color, expected, tolerance=14):
    return all(abs(a - b) <= tolerance for a, b in zip(color[:3], expected[:3]))


def test_golden_pixels_at_tile_centres(screen):
    env = known_kitchen()
    renderer = FrameRenderer(screen, draw.layout_canvas("cramped_room"),
                             Assets(draw.HERE, atlases=draw.ATLASES), background=draw.BACKGROUND)
    renderer.draw(Frame.of(draw.render(env)))
    x0, y0 = draw.origin(4, 5)

    def centre(r, c, dx=0, dy=0):
        half = draw.TILE // 2
        return tuple(screen.get_at((x0 + c * draw.TILE + half + dx, y0 + r * draw.TILE + half + dy)))

    expected = {
        (2, 1): CENTRES["floor"], (2, 0): CENTRES["counter"], (3, 3): CENTRES["serve"],
        (3, 1): CENTRES["dish_rack"], (1, 0): CENTRES["onion_box"], (0, 0): CENTRES["onion"],  # onion on a counter
        (0, 2): SOUP,  # the cooking pot
    }
    for (r, c), color in expected.items():
        assert close(centre(r, c), color), ((r, c), centre(r, c), color)
    assert close(centre(2, 3, 15, -15), CHEFS["blue"]), centre(2, 3, 15, -15)   # cook 0's shoulders
    assert close(centre(1, 3, 15, -15), CHEFS["green"]), centre(1, 3, 15, -15)  # cook 1's shoulders
    # cook 0 faces left and holds a dish: white, left of its centre
    assert close(centre(2, 3, -20, 0), CENTRES["dish"], 20), centre(2, 3, -20, 0)
    # the cooking bar under the pot: 20 of 30 steps done, orange up to two thirds
    bar_y = y0 + draw.TILE - 8
    assert close(tuple(screen.get_at((x0 + 2 * draw.TILE + 12, bar_y))), draw.BAR_COOKING)
    assert close(tuple(screen.get_at((x0 + 2 * draw.TILE + 50, bar_y))), draw.BAR_BACK)


def test_render_shapes_ids_static_layer_and_identity():
    env = known_kitchen()
    shapes = validate_shapes(draw.render(env))
    ids = {s.id for s in shapes}
    assert {"chef0", "chef1", "held0", "pot0", "pot0_bar", "item_0_0"} <= ids
    statics = [s for s in shapes if s.static]
    assert len(statics) == 20 and all(isinstance(s, Sprite) for s in statics)
    again = draw.render(env)
    assert all(a is b for a, b in zip(shapes, again))  # unchanged → the very same objects
    env.step({0: NOOP, 1: 2})  # cook 1 moves a tile left; cook 0 and the tiles stay
    moved = {s.id: s for s in draw.render(env)}
    before = {s.id: s for s in shapes}
    assert moved["chef1"] is not before["chef1"] and moved["chef1"].x == before["chef1"].x - draw.TILE
    assert moved["chef0"] is before["chef0"] and moved["tile_0_0"] is before["tile_0_0"]


def test_render_is_pure_python_and_numpy():
    source = (ROOT / "examples" / "overcooked" / "draw.py").read_text() + \
        (ROOT / "examples" / "overcooked" / "env.py").read_text()
    assert "import pygame" not in source


# --- the AI cooks -------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["cramped_room", "asymmetric_advantages"])
def test_onnx_cook_serves_soup_with_the_scripted_partner(layout):
    model = POLICIES / f"overcooked_{layout}.onnx"
    policy = OnnxPolicy(model)
    assert (policy.input_name, policy.output_name, policy.obs_size) == ("obs", "logits", OBS_SIZE)
    soups = play_episode(layout, lambda env: {1: OnnxPolicy(model), 0: ScriptedCook(env, 0, seed=7)}, seed=7)
    assert soups >= 1


def test_onnx_cook_serves_soup_with_itself():
    model = POLICIES / "overcooked_cramped_room.onnx"
    assert play_episode("cramped_room", lambda env: {0: OnnxPolicy(model), 1: OnnxPolicy(model)}, seed=11) >= 1


# --- experiment files ----------------------------------------------------------------------

def test_keys_interact_is_pick_up_or_drop():
    for keymap in (human_ai.KEYS, human_human.ARROWS, human_human.WASD):
        assert keymap.mode == "keystroke" and keymap.default_action == NOOP
    assert human_ai.KEYS.resolve_held({"space": 1}) == INTERACT
    assert human_human.WASD.resolve_held({"left shift": 1}) == INTERACT
    scenes = human_human.experiment.scenes
    assert all(set(s.keymaps) == {"0", "1"} for s in scenes)


def play(target, steps, tmp_path):
    data, shot = tmp_path / "oc.sqlite", tmp_path / "oc.png"
    out = subprocess.run([sys.executable, "-m", "igym.play", str(target), "--headless", "--autopilot",
                          "--max-steps", str(steps), "--data", str(data), "--screenshot", str(shot)],
                         capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr
    db = sqlite3.connect(data)
    counts = dict(db.execute("SELECT agent, count(*) FROM steps GROUP BY agent"))
    sources = dict(db.execute("SELECT agent, group_concat(DISTINCT source) FROM steps GROUP BY agent"))
    image = pygame.image.load(str(shot))
    return counts, sources, image


def test_human_ai_headless(tmp_path):
    counts, sources, image = play(ROOT / "examples" / "overcooked" / "human_ai.py", 400, tmp_path)
    assert counts == {"0": 400, "1": 400}
    assert sources["1"] == "policy" and "human" in sources["0"]
    from igym.renderers.draw import hud_strip_for
    width, height = draw.layout_canvas("cramped_room")
    assert image.get_size() == (width, height + hud_strip_for(height))  # the canvas and the HUD strip


def test_human_human_headless(tmp_path):
    counts, sources, _ = play(ROOT / "examples" / "overcooked" / "human_human.py", 120, tmp_path)
    assert counts == {"0": 120, "1": 120}
    assert "human" in sources["0"] and "human" in sources["1"]
