"""``python -m igym.play`` end to end: headless autopilot runs, data, screenshots, clear errors."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
SLIME = ROOT / "examples" / "slime_volleyball" / "human_ai.py"
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}


def play(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "igym.play", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=ENV, timeout=300)


def test_slime_headless_autopilot_run_records_every_step(tmp_path):
    data, shot = tmp_path / "s.sqlite", tmp_path / "s.png"
    out = play(SLIME, "--headless", "--autopilot", "--max-steps", 600, "--data", data, "--screenshot", shot)
    assert out.returncode == 0, out.stderr
    assert f"data: {data.resolve()}" in out.stdout
    db = sqlite3.connect(data)
    counts = dict(db.execute("SELECT agent, count(*) FROM steps GROUP BY agent"))
    assert counts == {"agent_left": 600, "agent_right": 600}
    seeds = [s for (s,) in db.execute("SELECT seed FROM episodes")]
    assert seeds and all(isinstance(s, int) for s in seeds)
    sources = dict(db.execute("SELECT agent, group_concat(DISTINCT source) FROM steps GROUP BY agent"))
    assert set(sources["agent_left"].split(",")) <= {"human", "default"} and "human" in sources["agent_left"]
    assert sources["agent_right"] == "policy"
    times = [t for (t,) in db.execute("SELECT s.t_ns FROM steps s JOIN episodes e USING (episode_id) "
                                      "WHERE s.agent='agent_left' ORDER BY e.episode_index, s.step")]
    assert times == sorted(times)
    assert shot.stat().st_size > 1000
    import pygame
    image = pygame.image.load(str(shot))
    from igym.renderers.draw import hud_strip_for
    assert image.get_size() == (1200, 500 + hud_strip_for(500))  # the canvas and the HUD strip above it


def test_gymnasium_id_target(tmp_path):
    data = tmp_path / "mc.sqlite"
    out = play("MountainCar-v0", "--headless", "--autopilot", "--max-steps", 50, "--data", data)
    assert out.returncode == 0, out.stderr
    db = sqlite3.connect(data)
    assert db.execute("SELECT count(*), group_concat(DISTINCT agent) FROM steps").fetchone() == (50, "agent_0")
    actions = {a for (a,) in db.execute("SELECT DISTINCT action FROM steps")}
    assert actions <= {"0", "1", "2"}


def one_line_error(out):
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_missing_target_is_one_line():
    line = one_line_error(play("no/such/experiment.py", "--headless"))
    assert "no such file" in line


def test_unknown_gym_id_is_one_line():
    line = one_line_error(play("NoSuchEnv-v9", "--headless"))
    assert "not a file and not a Gymnasium id" in line


def test_experiment_missing_a_field_is_one_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from igym.experiment import Experiment, Game\n"
                   "experiment = Experiment(id='x', scenes=[Game(env=None, seats={'a': 'human'})])\n")
    line = one_line_error(play(bad, "--headless"))
    assert "line 2" in line and "'env' is required" in line


def test_experiment_without_experiment_is_one_line(tmp_path):
    bad = tmp_path / "empty.py"
    bad.write_text("x = 1\n")
    assert "experiment = Experiment(" in one_line_error(play(bad, "--headless"))


def test_onnx_input_name_mismatch_is_one_line(tmp_path):
    bad = tmp_path / "wrong_input.py"
    bad.write_text(
        "from igym.experiment import Experiment, Game\n"
        "from igym.policy import OnnxPolicy\n"
        "from examples.slime_volleyball.human_ai import KEYS, POLICY\n"
        "from examples.slime_volleyball.slime import SlimeVolleyEnv\n"
        "experiment = Experiment(id='x', scenes=[Game(env=SlimeVolleyEnv, keys=KEYS, seats={\n"
        "    'agent_left': 'human', 'agent_right': OnnxPolicy(str(POLICY), input_name='observation')})])\n")
    line = one_line_error(play(bad, "--headless", cwd=ROOT))
    assert "observation" in line and "input_name=" in line


def test_bad_seat_override_is_one_line():
    line = one_line_error(play(SLIME, "--headless", "--seat", "agent_middle=random"))
    assert "agent_middle" in line and "agent_left" in line


def test_continuous_env_plays_with_the_issues_keys_and_its_built_in_map(tmp_path):
    data = tmp_path / "mcc.sqlite"
    out = play("MountainCarContinuous-v0", "--keys", "left=-1.0,right=1.0,default=0.0", "--headless", "--autopilot",
               "--max-steps", 60, "--data", data, "--participant", "P1")
    assert out.returncode == 0, out.stderr
    actions = {a for (a,) in sqlite3.connect(data).execute("SELECT DISTINCT action FROM steps")}
    # only the map's values, and a key was pressed (the autopilot's keys come from the participant id)
    assert actions <= {"[-1.0]", "[0.0]", "[1.0]"} and actions & {"[-1.0]", "[1.0]"}
    out = play("Pendulum-v1", "--headless", "--autopilot", "--max-steps", 60, "--data", tmp_path / "p.sqlite")
    assert out.returncode == 0, out.stderr


def test_a_value_that_does_not_fit_the_action_space_is_one_line():
    line = one_line_error(play("MountainCarContinuous-v0", "--keys", "left=[-1,0],right=1.0", "--headless"))
    assert "key 'left' = [-1, 0]" in line and "Box(-1.0, 1.0, (1,), float32)" in line and "a number" in line
    try:
        import Box2D  # noqa: F401
    except ImportError:
        return
    line = one_line_error(play("CarRacing-v3", "--keys", "left=-1.0", "--headless"))
    assert "key 'left' = -1.0" in line and "a list of 3 numbers" in line and "Box(" in line


def test_an_env_without_a_key_map_says_which_keys_would_fit(tmp_path):
    env = tmp_path / "plain_env.py"
    env.write_text("import gymnasium\n"
                   "gymnasium.register('PlainBox-v0', entry_point='gymnasium.envs.classic_control:PendulumEnv')\n")
    out = subprocess.run([sys.executable, "-c", "import runpy, sys; runpy.run_path(sys.argv[1]); "
                          "from igym.play import main; sys.exit(main(['PlainBox-v0', '--headless']))", str(env)],
                         capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)
    line = one_line_error(out)
    assert "PlainBox-v0 has no built-in key map" in line and "--keys 'left=-2.0,right=2.0,default=0.0'" in line
