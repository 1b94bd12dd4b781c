"""The registry sweep: ``python -m igym.play --check`` over every env id Gymnasium registers and
over PettingZoo's butterfly, classic and sisl envs (through experiment files, the documented
route for PettingZoo).

Each target either plays 200 headless autopilot steps (every step recorded, every recorded
action inside its space, a picture that is not blank) or is refused with one line saying what
is missing — never a traceback, never a hang. Two worker processes run the checks in-process
(a per-env time budget inside, a timeout around each worker); the tally is printed after the
test run's results and kept in the README.
"""

from __future__ import annotations

import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

from igym.builtin_keys import builtin

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
WORKER_TIMEOUT_S = 900
ALWAYS_PLAYABLE = ("CartPole-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1", "Acrobot-v1",
                   "FrozenLake-v1", "Taxi-v4", "CliffWalking-v1", "Blackjack-v1")  # gymnasium alone suffices
BOX2D = ("LunarLander-v3", "LunarLanderContinuous-v3", "BipedalWalker-v3", "BipedalWalkerHardcore-v3", "CarRacing-v3")
PETTINGZOO_FAMILIES = ("butterfly", "classic", "sisl")

STUDY = '''"""PettingZoo {module}: the first agent a person (its family's built-in keys), the others random."""
import importlib

from igym.builtin_keys import keymap_for, pace_for
from igym.experiment import Experiment, Game

MODULE = importlib.import_module({module!r})
make_env = getattr(MODULE, "parallel_env", None) or MODULE.env  # AEC-only modules play turn by turn


def make():
    return make_env(render_mode="rgb_array")


probe = make()
probe.reset(seed=0)
frame = probe.render()
agents = list(probe.possible_agents)
probe.close()
experiment = Experiment(id={name!r}, scenes=[Game(
    name={name!r}, env=make, canvas=(int(frame.shape[1]), int(frame.shape[0])), fps=30,
    seats={{a: "human" if i == 0 else "random" for i, a in enumerate(agents)}}, keys=keymap_for({module!r}),
    pace=pace_for({module!r}))])
'''


def gymnasium_ids() -> list[str]:
    import gymnasium

    return list(gymnasium.registry)


def pettingzoo_modules() -> list[str]:
    import importlib

    modules = []
    for family in PETTINGZOO_FAMILIES:
        package = importlib.import_module(f"pettingzoo.{family}")
        modules += [f"pettingzoo.{family}.{m.name}" for m in pkgutil.iter_modules(package.__path__)
                    if re.search(r"_v\d+$", m.name)]
    return modules


def study_files(folder: Path) -> dict[str, str]:
    """One experiment file per PettingZoo module: target path → module name."""
    files = {}
    for module in pettingzoo_modules():
        name = module.split(".")[-1]
        path = folder / f"pz_{name}.py"
        path.write_text(STUDY.format(module=module, name=name))
        files[str(path)] = module
    return files


def sweep(targets: list[str], workers: int = 2) -> dict[str, tuple[str, str]]:
    """target → (played | refused | crashed | hung, its one line)."""
    chunks = [targets[i::workers] for i in range(workers)]
    processes = [subprocess.Popen([sys.executable, "-m", "tests.sweep_worker", *chunk], cwd=ROOT, env=ENV,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for chunk in chunks]
    results: dict[str, tuple[str, str]] = {}
    for process in processes:
        try:
            out, _ = process.communicate(timeout=WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        for line in out.splitlines():
            if line.startswith("RESULT\t"):
                _, target, verdict, text, _seconds = line.split("\t")
                results[target] = (verdict, text)
    for target in targets:
        results.setdefault(target, ("hung", "no result: the worker was stopped after it"))
    return results


def tally(results: dict[str, tuple[str, str]], names: dict[str, str]) -> str:
    played = sorted(names.get(t, t) for t, (v, _) in results.items() if v == "played")
    refused: dict[str, list[str]] = {}
    for target, (verdict, text) in results.items():
        if verdict != "played":
            reason = re.sub(r"^( line \d+)?: ", "", text[len(f"igym: {target}"):]) if verdict == "refused" \
                else f"{verdict}: {text}"
            reason = re.sub(r"\(https?://\S+\)", "", reason)[:110].strip()
            refused.setdefault(reason, []).append(names.get(target, target))
    lines = [f"registry sweep: {len(played)} played, {len(results) - len(played)} refused, of {len(results)}",
             f"  played: {', '.join(played)}"]
    for reason, targets in sorted(refused.items(), key=lambda r: (-len(r[1]), r[0])):
        lines.append(f"  refused ({len(targets)}): {reason} — {', '.join(sorted(targets))}")
    return "\n".join(lines)


@pytest.mark.slow
def test_registry_sweep_plays_or_refuses_every_env_with_one_line(tmp_path, summary):
    gym = gymnasium_ids()
    studies = study_files(tmp_path)
    names = {path: module.replace("pettingzoo.", "pz:") for path, module in studies.items()}
    results = sweep(gym + list(studies))
    summary(tally(results, names))
    assert len(results) == len(gym) + len(studies) and len(gym) > 40
    for target, (verdict, text) in results.items():
        assert verdict in ("played", "refused"), (target, verdict, text)  # never a traceback, never a hang
        if verdict == "played":
            assert text.startswith(f"OK: {target} played 200 steps ("), text
        else:
            assert text.startswith(f"igym: {target}") and "Traceback" not in text, text
    for env_id in gym:  # an env with a built-in map is refused only for a package that is not installed
        verdict, text = results[env_id]
        if builtin(env_id) is not None and verdict == "refused":
            assert "cannot make the env" in text, text
    for env_id in ALWAYS_PLAYABLE:
        assert results[env_id][0] == "played", results[env_id]
    try:
        import Box2D  # noqa: F401
    except ImportError:
        pass
    else:
        for env_id in BOX2D:
            assert results[env_id][0] == "played", results[env_id]
    try:
        import pymunk  # noqa: F401
    except ImportError:
        pass
    else:  # butterfly's parallel envs play
        for path, module in studies.items():
            if module.startswith("pettingzoo.butterfly."):
                assert results[path][0] == "played", results[path]
    # classic's turn-based (AEC) board games play turn by turn with their built-in keys (chess and
    # go with the mouse: a random clicker), chess where python-chess is installed
    try:
        import chess  # noqa: F401
    except ImportError:
        boards = ("tictactoe_v3", "connect_four_v3", "go_v5")
    else:
        boards = ("tictactoe_v3", "connect_four_v3", "go_v5", "chess_v6")
    for path, module in studies.items():
        if module.split(".")[-1] in boards:
            assert results[path][0] == "played", results[path]


def one_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "igym.play", "--check", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)


def test_check_command_prints_one_ok_line():
    out = check("Pendulum-v1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines() == [out.stdout.strip()]
    assert out.stdout.startswith("OK: Pendulum-v1 played 200 steps (") and "Box(-2.0, 2.0, (1,), float32)" in out.stdout


def test_check_command_names_what_is_missing():
    line = one_line(check("MountainCarContinuous-v0", "--keys", "left=-3.0,right=1.0"))
    assert "'left'" in line and "-3.0" in line and "Box(-1.0, 1.0, (1,), float32)" in line and "bounds" in line
    line = one_line(check("NoSuchEnv-v0"))
    assert "NoSuchEnv-v0" in line and "not a Gymnasium id" in line
