"""The web build works from an INSTALLED igym, not only from a checkout.

A wheel has no checkout around it: webbuild.py lies in ``site-packages/igym/renderers/``, the
core in ``site-packages/igym/``. These tests install the repo (not editable) into a fresh venv,
then build a page from a folder outside the repo with that venv's Python — the way build_web.sh
runs webbuild.py — and check that the staged page holds the core, the renderers, the page's
program and the experiment. The console scripts are checked there too.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("pygbag", reason="pygbag is not installed (pip install 'igym[web]'): the build needs it")

ROOT = Path(__file__).resolve().parents[2]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
ENV.update(SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy", PYGAME_HIDE_SUPPORT_PROMPT="1")

STUDY = '''"""A study of its own, outside any igym checkout."""
from igym import Experiment, Game, KeyMap
from igym.render import Rect


class Walk:
    """One walker on a line (Gymnasium-shaped, pure Python)."""

    def __init__(self):
        from gymnasium.spaces import Discrete
        self.action_space, self.observation_space = Discrete(3), Discrete(21)
        self.x = 10

    def reset(self, seed=None, options=None):
        self.x = 10
        return self.x, {}

    def step(self, action):
        self.x = max(0, min(20, self.x + (0, 1, -1)[int(action)]))
        return self.x, float(self.x == 20), self.x == 20, False, {}


def render(env):
    return [Rect("walker", 10 * env.x, 40, 8, 8, (40, 120, 200))]


experiment = Experiment(id="my_walk", scenes=[Game(
    name="walk", env=Walk, render=render, canvas=(210, 100), seats={0: "human"},
    keys=KeyMap({"right": 1, "left": 2}, default_action=0), fps=20, episodes=1, max_steps=50)])
'''


def run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv (system site-packages, plus this Python's own) with igym installed from a copy of the repo."""
    tmp = tmp_path_factory.mktemp("installed")
    venv = tmp / "venv"
    done = run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], cwd=tmp)
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    purelib = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       cwd=tmp).stdout.strip())
    # The dependencies (and pip, setuptools) are this Python's: when the tests run in a venv
    # themselves, its site-packages is not the system's. Listed after the new venv's own.
    ours = [p for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"]]) if Path(p).is_dir()]
    (purelib / "_igym_test_deps.pth").write_text("\n".join(ours) + "\n")
    # Install from a copy: setuptools builds in the source tree (build/, *.egg-info), not in the repo's.
    source = tmp / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("igym", "renderers", "server"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    done = run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
                str(source)], cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv


def test_the_installed_package_is_a_real_copy(installed, tmp_path):
    python = installed / "bin" / "python"
    done = run([str(python), "-c", "import igym, igym.renderers.webbuild as w, igym.renderers.web_entry as e\n"
                                   "print(igym.__file__); print(w.__file__); print(e.__file__)"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for line in done.stdout.split():
        assert Path(line).is_relative_to(installed), line  # not the repo, not an editable install
    core = Path(done.stdout.split()[0]).parent
    assert not (core / "web" / "main.py.tmpl").exists() and (core / "renderers" / "web" / "index.tmpl").is_file()


def test_a_page_builds_from_the_installed_package_outside_the_repo(installed, tmp_path):
    python = installed / "bin" / "python"
    study = tmp_path / "my_walk" / "study.py"
    study.parent.mkdir()
    study.write_text(STUDY)
    webbuild = run([str(python), "-c", "import igym.renderers.webbuild as w; print(w.__file__)"], cwd=tmp_path)
    # As build_web.sh runs it (python -P path/to/webbuild.py), from a folder outside the repo.
    done = run([str(python), "-P", webbuild.stdout.strip(), "my_walk/study.py", "--offline", "--out", "out",
                "--staging", "stage"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "staged my_walk in" in done.stdout and "apk: my_walk.apk" in done.stdout
    names = set(zipfile.ZipFile(tmp_path / "out" / "my_walk.apk").namelist())
    repo_core = sorted(p.name for p in (ROOT / "igym").glob("*.py"))
    missing = [n for n in repo_core if f"assets/igym/{n}" not in names]
    assert not missing, missing  # every core module, not a page without its core
    for wanted in ("assets/main.py", "assets/page_config.py", "assets/my_walk/study.py",
                   "assets/igym/renderers/__init__.py", "assets/igym/renderers/web_entry.py",
                   "assets/igym/renderers/study.py", "assets/igym/renderers/fonts/DejaVuSans.ttf"):
        assert wanted in names, wanted
    assert not [n for n in names if n.endswith(("webbuild.py", ".tmpl")) or "/server/" in n]
    config = zipfile.ZipFile(tmp_path / "out" / "my_walk.apk").read("assets/page_config.py").decode()
    assert "EXPERIMENT_FILE = 'my_walk/study.py'" in config and "EXPERIMENT_ID = 'my_walk'" in config
    assert "<title>my_walk</title>" in (tmp_path / "out" / "index.html").read_text()


def test_a_broken_install_without_its_core_fails_loudly(installed, tmp_path):
    """A build must never stage a page without the core: a missing module is one line, exit 2."""
    python = installed / "bin" / "python"
    core = Path(run([str(python), "-c", "import igym; print(igym.__file__)"], cwd=tmp_path).stdout.strip()).parent
    broken = tmp_path / "broken" / "igym"
    shutil.copytree(core, broken, ignore=shutil.ignore_patterns("__pycache__"))
    (broken / "session.py").unlink()
    study = tmp_path / "study.py"
    study.write_text(STUDY)
    done = run([str(python), "-P", str(broken / "renderers" / "webbuild.py"), "study.py", "--stage-only",
                "--staging", "stage"], cwd=tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "igym's core is incomplete" in lines[0] and "session.py" in lines[0]
    assert not (tmp_path / "stage").exists()


def test_the_console_scripts_are_installed(installed, tmp_path):
    bin_ = installed / "bin"
    for script in ("igym-play", "igym-server", "igym-data", "igym-web"):
        done = run([str(bin_ / script), "--help"], cwd=tmp_path)
        assert done.returncode == 0 and "usage:" in done.stdout, (script, done.stderr)
    done = run([str(bin_ / "igym-data"), "summary", "missing.sqlite"], cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["igym: missing.sqlite: no such data file — give the study's .sqlite file "
                                        "(igym-data/<experiment>.sqlite)"]
