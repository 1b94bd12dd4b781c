"""The agreed top level installs as one namespace: renderers/ → igym.renderers, server/ → igym.server."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_subpackages_map_to_the_repo_folders(tmp_path):
    code = ("import igym, igym.renderers, igym.server, igym.renderers.draw\n"
            "print(igym.__file__); print(igym.renderers.__file__); print(igym.server.__file__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    core, renderers, server = (Path(line).resolve() for line in out.stdout.split())
    assert core == ROOT / "igym" / "__init__.py"
    assert renderers == ROOT / "renderers" / "__init__.py"
    assert server == ROOT / "server" / "__init__.py"


def test_two_people_on_one_keyboard(tmp_path):
    data = tmp_path / "hh.sqlite"
    out = subprocess.run([sys.executable, "-m", "igym.play", "examples/slime_volleyball/human_human.py",
                          "--headless", "--autopilot", "--max-steps", "300", "--data", str(data)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    import sqlite3
    rows = dict(sqlite3.connect(data).execute(
        "SELECT agent, group_concat(DISTINCT source) FROM steps GROUP BY agent"))
    assert set(rows) == {"agent_left", "agent_right"}
    assert all("human" in sources for sources in rows.values())


def test_the_core_imports_without_pygame_numpy_or_optional_packages():
    """The browser runs igym/ under Pyodide and pygbag: no module of the core may import
    pygame, numpy or the optional export packages when it loads — nor the renderers or the
    server, which the core's command-line entry points import only inside functions (the
    layer contracts in pyproject.toml allow exactly those imports; this checks they stay lazy).
    Every core module is imported in one fresh interpreter; a failure names the module that
    first loaded each forbidden one."""
    modules = sorted(p.stem for p in (ROOT / "igym").glob("*.py") if p.stem not in ("__init__", "__main__"))
    forbidden = ["pygame", "numpy", "pygame_gui", "pyarrow", "minari", "onnxruntime", "psycopg", "redis",
                 "igym.renderers",
                 "igym.server"]
    code = ("import sys, importlib, json\n"
            f"forbidden = {forbidden!r}\n"
            "first = {}\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module('igym.' + name)\n"
            "    for loaded in forbidden:\n"
            "        if loaded in sys.modules: first.setdefault(loaded, 'igym.' + name)\n"
            "print(json.dumps(first))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {}, f"loaded by importing (forbidden module: first importer): {out.stdout}"


def test_the_public_api_is_one_light_import(tmp_path):
    """What an experiment file needs comes from ``igym`` itself, without loading anything heavy."""
    code = ("import sys, igym\n"
            "from igym import (Experiment, Game, Info, Consent, Survey, End, RandomOrder, Repeat, Sequence, Likert,\n"
            "                  Slider, Choice, MultiChoice, FreeText, Number, KeyMap, OnnxPolicy)\n"
            "assert all(hasattr(igym, name) for name in igym.__all__)\n"
            "print(igym.__version__)\n"
            "print(sorted({'pygame', 'numpy', 'gymnasium', 'onnxruntime', 'websockets', 'msgpack', 'sqlite3'}"
            " & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    version, heavy = out.stdout.split("\n")[:2]
    from importlib.metadata import version as installed
    assert version == installed("igym") and heavy == "[]"


def test_the_dashboard_page_installs_with_the_package(tmp_path):
    """The dashboard's page, script, styles and vendored uPlot (with its licence) are package
    data of igym.server.dashboard: a wheel built from the repo carries them."""
    import zipfile
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("igym-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    static = "igym/server/dashboard/static/"
    for name in ("index.html", "login.html", "dashboard.js", "login.js", "dashboard.css", "uPlot.iife.min.js",
                 "uPlot.min.css", "LICENSE.uPlot.txt"):
        assert static + name in names, name
    assert "igym/server/dashboard/__init__.py" in names and "igym/server/dashboard/snapshot.py" in names
