"""Careless inputs to every igym command end the same way: one line naming the problem, exit 2.

Each row of the table is a mistake a researcher makes on a busy day — a render function that
returns a string, a data file of another program, ``--max-steps -5``, a typo in ``--keys``,
a port that is taken — run as a real subprocess of the real command (``python -m igym.play``,
``python -m igym.server``, ``python -m igym.data``, ``build_web.sh``) on real files. Every row
asserts: exit code 2, exactly one line on stderr, no traceback, and words that name the problem.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}

# A small experiment over a pure-Python env; RENDER_BODY and ENV_RENDER are swapped per row.
EXPERIMENT = '''
from igym.controls import KeyMap
from igym.experiment import Experiment, Game
from igym.render import Rect


class Runner:
    """Two runners on a line (PettingZoo-parallel shaped, no numpy)."""

    possible_agents = ["a", "b"]

    def __init__(self):
        self.agents = []
        self.t = 0

    def action_space(self, agent):
        from gymnasium.spaces import Discrete
        return Discrete(3)

    def observation_space(self, agent):
        from gymnasium.spaces import Discrete
        return Discrete(100)

    def reset(self, seed=None, options=None):
        self.agents, self.t = list(self.possible_agents), 0
        return {a: 0 for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        done = self.t >= 30
        return ({a: self.t for a in self.agents}, {a: 0.0 for a in self.agents}, {a: done for a in self.agents},
                {a: False for a in self.agents}, {a: {} for a in self.agents})

    def render(self):
        ENV_RENDER


def render(env):
    RENDER_BODY


experiment = Experiment(id="careless", scenes=[Game(
    name="race", env=Runner, render=RENDER, canvas=(200, 100), seats={"a": "human", "b": "random"},
    keys=KeyMap({"right": 1, "left": 2}, default_action=0), fps=30, episodes=1, max_steps=30, seeds=1)])
'''


def experiment_file(folder: Path, name: str, *, render_body: str = "return [Rect('box', 10, 10, 5, 5, (200, 0, 0))]",
                    env_render: str = "return None", render: str = "render") -> Path:
    path = folder / f"{name}.py"
    path.write_text(EXPERIMENT.replace("RENDER_BODY", render_body).replace("ENV_RENDER", env_render)
                    .replace("render=RENDER", f"render={render}"))
    return path


@dataclass(frozen=True)
class Case:
    name: str
    command: tuple[str, ...]  # {placeholders} are the files of the `files` fixture
    words: tuple[str, ...]  # each must appear in the one line (case-insensitive)


PLAY = ("-m", "igym.play")
RUN = ("--headless", "--autopilot", "--data", "{tmp}/run.sqlite")
DATA = ("-m", "igym.data")
SERVER = ("-m", "igym.server")
WEB = ("build_web.sh",)

CASES = [
    # igym.play: the experiment file
    Case("missing experiment file", (*PLAY, "{tmp}/no_such_study.py", *RUN), ("no_such_study.py", "no such file")),
    Case("experiment file with a syntax error", (*PLAY, "{syntax}", *RUN),
         ("syntax_error.py", "line 3", "syntax error")),
    Case("experiment file without `experiment`", (*PLAY, "{no_experiment}", *RUN),
         ("no_experiment.py", "named 'experiment'")),
    Case("experiment file raising at import", (*PLAY, "{raises}", *RUN), ("raises.py", "line 1", "NameError")),
    Case("unknown Gymnasium id", (*PLAY, "NoSuchEnv-v0", "--headless"), ("NoSuchEnv-v0",)),
    # igym.play: what the render function returns
    Case("render function returns a string", (*PLAY, "{render_str}", *RUN),
         ("render returned str", "list of igym.render shapes")),
    Case("render function returns None", (*PLAY, "{render_none}", *RUN), ("render returned None —", "return a list")),
    Case("render function returns a numpy array", (*PLAY, "{render_array}", *RUN),
         ("array of shape", "image_from_array")),
    Case("render shape with a string coordinate", (*PLAY, "{render_field}", *RUN),
         ("Rect 'box' field x", "give a number")),
    Case("render shape with a colour name", (*PLAY, "{render_colour}", *RUN), ("field color", "(r, g, b)")),
    Case("env's render() gives floats", (*PLAY, "{env_floats}", *RUN), ("dtype float64", "uint8")),
    Case("env's render() gives grayscale", (*PLAY, "{env_gray}", *RUN), ("shape (4, 6)", "(H, W, 3)")),
    # igym.play: options
    Case("--max-steps -5", (*PLAY, "{good}", *RUN, "--max-steps", "-5"), ("--max-steps", "-5", "1 or more")),
    Case("--max-steps 0", (*PLAY, "{good}", *RUN, "--max-steps", "0"), ("--max-steps", "1 or more")),
    Case("--fps 0", (*PLAY, "{good}", *RUN, "--fps", "0"), ("--fps", "above 0")),
    Case("--fps negative", (*PLAY, "{good}", *RUN, "--fps", "-30"), ("--fps", "above 0")),
    Case("--fps not a number", (*PLAY, "{good}", *RUN, "--fps", "fast"), ("--fps", "'fast'", "not a number")),
    Case("--display-fps 0", (*PLAY, "{good}", *RUN, "--display-fps", "0"), ("--display-fps", "above 0")),
    Case("--max-participants 0", (*PLAY, "{good}", "--lab", *RUN, "--max-participants", "0"),
         ("--max-participants", "1 or more")),
    Case("--seed not a number", (*PLAY, "{good}", *RUN, "--seed", "abc"), ("--seed", "invalid int")),
    Case("unknown option", (*PLAY, "{good}", *RUN, "--speed", "2"), ("unrecognized arguments: --speed",)),
    Case("no target", PLAY, ("give a TARGET",)),
    Case("unknown --seat agent", (*PLAY, "{good}", *RUN, "--seat", "c=human"),
         ("--seat", "no agent 'c'", "['a', 'b']")),
    Case("--seat without =", (*PLAY, "{good}", *RUN, "--seat", "human"), ("--seat 'human'", "AGENT=")),
    Case("--seat with a missing policy", (*PLAY, "{good}", *RUN, "--seat", "b={tmp}/no_policy.onnx"),
         ("no_policy.onnx",)),
    Case("bad --keys grammar", (*PLAY, "{good}", *RUN, "--keys", "left:2"), ("--keys", "'left:2'", "KEY=ACTION")),
    Case("--keys value out of the action space", (*PLAY, "{good}", *RUN, "--keys", "left=7"), ("left", "7")),
    Case("unknown --condition", (*PLAY, "{good}", *RUN, "--condition", "fast"), ("--condition 'fast'", "none")),
    # igym.play: the data file
    Case("--data of another schema version", (*PLAY, "{good}", "--headless", "--autopilot", "--data", "{newer}"),
         ("schema version 99", "newer")),
    Case("--data on a non-SQLite file", (*PLAY, "{good}", "--headless", "--autopilot", "--data", "{text_file}"),
         ("notes.txt", "cannot be used as a data file")),
    Case("--data of another program", (*PLAY, "{good}", "--headless", "--autopilot", "--data", "{foreign}"),
         ("foreign.sqlite", "something else")),
    Case("--data under a path that cannot be created",
         (*PLAY, "{good}", "--headless", "--autopilot", "--data", "{text_file}/sub/run.sqlite"),
         ("notes.txt/sub/run.sqlite", "cannot be used as a data file")),
    Case("--connect to a URL that is not ws://", (*PLAY, "--connect", "127.0.0.1:8765", "--headless"),
         ("--connect", "ws://")),
    Case("--connect where no server listens", (*PLAY, "--connect", "ws://127.0.0.1:{free_port}", "--headless"),
         ("--connect", "no igym server")),
    # igym.data
    Case("data summary of a missing file", (*DATA, "summary", "{tmp}/missing.sqlite"),
         ("missing.sqlite", "no such data file")),
    Case("data summary of a non-igym SQLite file", (*DATA, "summary", "{foreign}"),
         ("foreign.sqlite", "not an igym data file")),
    Case("data summary of a non-SQLite file", (*DATA, "summary", "{text_file}"), ("notes.txt", "not an SQLite file")),
    Case("data summary of a newer igym's file", (*DATA, "summary", "{newer}"), ("schema version 99", "newer")),
    Case("data export with an unknown --to", (*DATA, "export", "{study}", "--to", "xlsx", "{tmp}/out"),
         ("--to xlsx", "csv, parquet or minari")),
    Case("data export into a file", (*DATA, "export", "{study}", "--to", "csv", "{text_file}"), ("notes.txt",)),
    Case("data replay of an unknown episode", (*DATA, "replay", "{study}", "--episode", "abc123", "--headless"),
         ("no episode 'abc123'",)),
    Case("data replay --every 0", (*DATA, "replay", "{study}", "--episode", "abc", "--every", "0"),
         ("--every", "1 or more")),
    Case("data without a command", DATA, ("required: command",)),
    # igym.server
    Case("server with a port out of range", (*SERVER, "{good}", "--port", "99999"), ("--port", "99999", "0 to 65535")),
    Case("server with a port that is not a number", (*SERVER, "{good}", "--port", "http"), ("--port", "'http'")),
    Case("server with a missing experiment", (*SERVER, "{tmp}/no_such_study.py"), ("no_such_study.py", "no such file")),
    Case("server on a port that is taken", (*SERVER, "{good}", "--port", "{taken_port}", "--data", "{tmp}/srv.sqlite"),
         ("cannot listen", "{taken_port}", "--port")),
    Case("server with a bad --simulate-delay-ms", (*SERVER, "{good}", "--simulate-delay-ms", "80:20"),
         ("--simulate-delay-ms", "LOW:HIGH")),
    Case("server --data on a non-SQLite file", (*SERVER, "{good}", "--data", "{text_file}"),
         ("notes.txt", "data file")),
    Case("server with an unknown Gymnasium id", (*SERVER, "NoSuchEnv-v0", "--data", "{tmp}/srv_id.sqlite"),
         ("NoSuchEnv-v0", "Gymnasium id")),
    Case("server with a seat the env does not have", (*SERVER, "{seat_mismatch}", "--data", "{tmp}/srv_seats.sqlite"),
         ("seats", "['a', 'c']", "['a', 'b']", "one seat per agent")),
    # build_web.sh
    Case("web build of a missing experiment", (*WEB, "{tmp}/no_such_study.py", "--offline"),
         ("no_such_study.py", "no such file")),
    Case("web build of a file that is not Python", (*WEB, "{text_file}", "--offline"), ("notes.txt", "not a .py file")),
    Case("web build with a bad --server", (*WEB, "{good}", "--server", "http://host", "--offline"),
         ("--server", "wss://")),
    Case("web build --stage-only without --staging", (*WEB, "{good}", "--stage-only"), ("--stage-only", "--staging")),
    Case("web build of an experiment with a syntax error", (*WEB, "{syntax}", "--stage-only", "--staging", "{tmp}/st"),
         ("syntax_error.py", "syntax error")),
    Case("web build with a bad --port", (*WEB, "{good}", "--port", "-1"), ("--port", "0 to 65535")),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """The files and ports the table's commands name (written once, read by every row)."""
    tmp = tmp_path_factory.mktemp("careless")
    paths = {
        "tmp": tmp,
        "good": experiment_file(tmp, "good"),
        "render_str": experiment_file(tmp, "render_str", render_body="return 'ball at 3, 4'"),
        "render_none": experiment_file(tmp, "render_none", render_body="pass"),
        "render_array": experiment_file(
            tmp, "render_array", render_body="import numpy\n    return numpy.zeros((4, 6, 3), dtype=numpy.uint8)"),
        "render_field": experiment_file(tmp, "render_field", render_body="return [Rect('box', '10', 10, 5, 5)]"),
        "render_colour": experiment_file(tmp, "render_colour",
                                         render_body="return [Rect('box', 10, 10, 5, 5, 'blue')]"),
        "env_floats": experiment_file(tmp, "env_floats", render="None", env_render="import numpy\n        return "
                                                                              "numpy.zeros((4, 6, 3))"),
        "env_gray": experiment_file(tmp, "env_gray", render="None", env_render="import numpy\n        return "
                                                                          "numpy.zeros((4, 6), dtype=numpy.uint8)"),
    }
    mismatch = experiment_file(tmp, "seat_mismatch")  # seats a and c; the env's agents are a and b
    mismatch.write_text(mismatch.read_text().replace('"b": "random"', '"c": "random"'))
    paths["seat_mismatch"] = mismatch
    (tmp / "syntax_error.py").write_text("from igym import Experiment\n\nexperiment = Experiment(id='x', scenes=[\n")
    paths["syntax"] = tmp / "syntax_error.py"
    (tmp / "no_experiment.py").write_text("from igym import Experiment\n\nstudy = None\n")
    paths["no_experiment"] = tmp / "no_experiment.py"
    (tmp / "raises.py").write_text("make_env()\n")
    paths["raises"] = tmp / "raises.py"
    (tmp / "notes.txt").write_text("participant P1 was late\n")
    paths["text_file"] = tmp / "notes.txt"
    with sqlite3.connect(tmp / "foreign.sqlite") as db:  # another program's database
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    paths["foreign"] = tmp / "foreign.sqlite"
    from igym.sqlite_sink import SqliteSink

    SqliteSink(tmp / "study.sqlite").close()  # a real, empty igym data file
    paths["study"] = tmp / "study.sqlite"
    SqliteSink(tmp / "newer.sqlite").close()
    with sqlite3.connect(tmp / "newer.sqlite") as db:  # as a later igym would have written it
        db.execute("UPDATE schema_version SET version = 99")
    paths["newer"] = tmp / "newer.sqlite"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        paths["free_port"] = probe.getsockname()[1]
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    paths["taken_port"] = taken.getsockname()[1]
    yield {key: str(value) for key, value in paths.items()}
    taken.close()


def run_command(command: tuple[str, ...], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """A row's command as a real subprocess: ``python -m …`` or ``bash build_web.sh …``."""
    env = env or ENV
    if command[0] == "build_web.sh":
        argv = ["bash", str(ROOT / "build_web.sh"), *command[1:]]
        env = {**env, "PYTHON": env.get("PYTHON", sys.executable)}
    else:
        argv = [sys.executable, *command]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)


def assert_one_line(done: subprocess.CompletedProcess, words: tuple[str, ...]) -> str:
    """Exit 2, one stderr line starting ``igym:``, no traceback, naming every word."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("igym: "), line
    for word in words:
        assert word.lower() in line.lower(), (word, line)
    return line


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_careless_input_is_one_line_and_exit_2(case: Case, files: dict[str, str], tmp_path, summary):
    command = tuple(part.format(**files) for part in case.command)
    words = tuple(word.format(**files) for word in case.words)
    line = assert_one_line(run_command(command, cwd=tmp_path), words)
    summary(f"careless input · {case.name}: {line}")


def test_a_screenshot_into_a_missing_folder_is_refused_before_anything_is_recorded(files, tmp_path):
    """It used to fail after the whole game, the participant recorded as failed."""
    data = tmp_path / "shot.sqlite"
    done = run_command((*PLAY, files["good"], "--headless", "--autopilot", "--data", str(data),
                        "--screenshot", str(tmp_path / "no_folder" / "last.png")), cwd=tmp_path)
    assert_one_line(done, ("--screenshot", "no_folder", "create it"))
    assert not data.exists()


def test_a_seat_the_env_does_not_have_is_refused_before_anything_is_recorded(files, tmp_path):
    """Seats are matched to the env's agents before the data file is opened: no participant row of
    someone who "failed" at a mistake in the experiment file."""
    data = tmp_path / "seats.sqlite"
    done = run_command((*PLAY, files["seat_mismatch"], "--headless", "--autopilot", "--data", str(data)),
                       cwd=tmp_path)
    assert_one_line(done, ("Game 'race'", "seats", "['a', 'c']", "['a', 'b']", "one seat per agent"))
    assert not data.exists()


def test_the_table_covers_every_command():
    """Twenty-plus rows, and each command has its own."""
    assert len(CASES) >= 20
    kinds = {c.command[1] if c.command[0] == "-m" else c.command[0] for c in CASES}
    assert kinds == {"igym.play", "igym.data", "igym.server", "build_web.sh"}


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> str:
    """A Python without pygbag (nor anything else installed): a fresh venv."""
    folder = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=300)
    return str(folder / "bin" / "python")


def test_a_web_build_without_pygbag_says_which_extra_to_install(files, bare_python, tmp_path):
    done = run_command(("build_web.sh", files["good"], "--offline", "--out", str(tmp_path / "out")), cwd=tmp_path,
                       env={**ENV, "PYTHON": bare_python})
    assert_one_line(done, ("pygbag", "pip install 'igym[web]'"))
    assert not (tmp_path / "out").exists()


def test_ctrl_c_exits_130_without_a_traceback(files, tmp_path):
    """Ctrl+C in the middle of a game (1 step a second, in a window on SDL's dummy display): exit 130,
    quietly (no traceback, no error line)."""
    import signal
    import time

    process = subprocess.Popen([sys.executable, "-m", "igym.play", files["good"], "--autopilot",
                                "--data", str(tmp_path / "run.sqlite"), "--fps", "1"],
                               cwd=tmp_path, env={**ENV, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "run.sqlite").exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, (process.returncode, out[-1000:], err[-2000:])
    assert "Traceback" not in err and not err.strip(), err
