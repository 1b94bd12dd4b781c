"""build_web.sh: the staged folder, the pygbag build (offline, real pygbag) and the staged main.py.

The page itself cannot run here (pygbag's runtime lives on its CDN), so these tests check
what we own: the apk's contents, index.html, that the repo is left untouched, and that
the generated main.py runs the study to completion natively from the staged files only.
"""

from __future__ import annotations

import hashlib
import os
import re
import site
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("pygbag", reason="pygbag is not installed (pip install pygbag): build_web.sh needs it")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "build_web.sh"
EXAMPLE = "examples/slime_volleyball/human_ai.py"
SERVER = "wss://study.example.org/igym"
FORBIDDEN = ("tests/", ".pytest_cache", "node_modules", "__pycache__", ".sqlite", ".git/", ".pyc")
NATIVE = ("numpy", "numpy.libs", "pygame", "pygame_ce.libs", "onnxruntime")


def link_native(folder: Path, names) -> Path:
    """A folder of links to the compiled packages, from whichever site-packages has them (a venv
    may see the system's)."""
    folder.mkdir()
    for name in names:
        found = [Path(p) / name for p in site.getsitepackages() if (Path(p) / name).exists()]
        if found:
            (folder / name).symlink_to(found[0])
    return folder


def build_web(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, env=env,
                          timeout=600)


def tree_state() -> dict[str, str]:
    """Hashes of every file of the example's package and policies/, untracked ones (caches) included."""
    files = [ROOT / "examples" / "__init__.py", *(ROOT / "examples" / "slime_volleyball").rglob("*"),
             *(ROOT / "policies").rglob("*")]
    return {str(f.relative_to(ROOT)): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(files) if f.is_file()}


@pytest.fixture(scope="module")
def offline_build(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    before = tree_state()
    done = build_web(EXAMPLE, "--offline", "--out", str(tmp / "out"), "--server", SERVER,
                     "--staging", str(tmp / "stage"))
    after = tree_state()
    return tmp, done, before, after


def test_offline_build_makes_the_page_and_a_clean_apk(offline_build):
    tmp, done, before, after = offline_build
    assert done.returncode == 0, done.stderr
    out = tmp / "out"
    index = (out / "index.html").read_text()
    apk = out / "slime_human_ai.apk"
    assert apk.is_file() and (out / "favicon.png").is_file()
    assert "<title>slime_human_ai</title>" in index
    assert f'<meta name="igym-server" content="{SERVER}">' in index
    assert "pythons.js" in index and 'archive: "slime_human_ai"' in index and "{{cookiecutter" not in index
    names = zipfile.ZipFile(apk).namelist()
    for wanted in ("assets/main.py", "assets/igym/__init__.py", "assets/igym/session.py",
                   "assets/igym/renderers/__init__.py", "assets/igym/renderers/study.py",
                   "assets/examples/__init__.py", "assets/examples/slime_volleyball/__init__.py",
                   "assets/examples/slime_volleyball/human_ai.py", "assets/examples/slime_volleyball/slime.py",
                   "assets/policies/slime_volleyball.onnx", "assets/pygame_gui/__init__.py",
                   "assets/msgpack/fallback.py", "assets/igym/renderers/fonts/DejaVuSans.ttf",
                   "assets/igym/renderers/fonts/DejaVuSans-Bold.ttf", "assets/igym/renderers/fonts/LICENSE_DEJAVU"):
        assert wanted in names, wanted  # the page font travels with the page (its arrows and accents)
    assert not [n for n in names if any(bad in n for bad in FORBIDDEN)]
    assert not [n for n in names if n.startswith(("assets/server/", "assets/igym/server/", "assets/numpy/",
                                                  "assets/pygame/", "assets/onnxruntime/", "assets/build/"))]
    assert not [n for n in names if n.endswith((".so", "webbuild.py", "index.tmpl", "make_fonts.py"))]
    main = zipfile.ZipFile(apk).read("assets/main.py").decode()
    config = zipfile.ZipFile(apk).read("assets/page_config.py").decode()
    assert '# dependencies = ["numpy"]' in main and f"SERVER_URL = {SERVER!r}" in config
    assert "asyncio.run(main(config=page_config))" in main and "assets/igym/renderers/web_entry.py" in names
    assert "apk: slime_human_ai.apk" in done.stdout and "KiB in all" in done.stdout
    assert before == after  # the build touched no file of the example or the policies


def test_build_without_server_names_none(tmp_path):
    done = build_web(EXAMPLE, "--offline", "--no-vendor", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    index = (tmp_path / "out" / "index.html").read_text()
    assert '<meta name="igym-server" content="">' in index
    names = zipfile.ZipFile(tmp_path / "out" / "slime_human_ai.apk").namelist()
    assert "assets/main.py" in names and not [n for n in names if n.startswith("assets/pygame_gui/")]
    assert "SERVER_URL = None" in zipfile.ZipFile(tmp_path / "out" / "slime_human_ai.apk").read(
        "assets/page_config.py").decode()


def test_staged_main_runs_natively_from_the_staged_files_only(tmp_path):
    done = build_web(EXAMPLE, "--staging", str(tmp_path / "stage"), "--stage-only")
    assert done.returncode == 0, done.stderr
    app = tmp_path / "stage" / "slime_human_ai"
    # Only the compiled packages come from this environment; everything pure-Python is staged.
    native = link_native(tmp_path / "native", NATIVE)
    data = tmp_path / "run.sqlite"
    boot = (f"import sys, runpy\n"
            f"sys.path[:0] = [{str(app)!r}, {str(native)!r}]\n"
            f"sys.argv = ['main.py', '--headless', '--autopilot', '--max-steps', '240', '--data', {str(data)!r}]\n"
            f"try:\n"
            f"    runpy.run_path({str(app / 'main.py')!r}, run_name='__main__')\n"
            f"finally:\n"
            f"    outside = sorted({{m.__name__ for m in list(sys.modules.values())\n"
            f"                      if (getattr(m, '__file__', None) or '').startswith({str(ROOT)!r})}})\n"
            f"    print('FROM-REPO', outside)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    # -I -S: no site-packages, no PYTHONPATH, no script folder: only the paths set above.
    run = subprocess.run([sys.executable, "-I", "-S", "-c", boot], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "FROM-REPO []" in run.stdout
    assert "completed (240 steps)" in run.stdout
    with sqlite3.connect(data) as db:
        assert db.execute("select status from participants").fetchall() == [("completed",)]
        assert db.execute("select count(*) from steps").fetchone()[0] >= 240
        meta = db.execute("select meta from participants").fetchone()[0]
    assert '"experiment_file":"examples/slime_volleyball/human_ai.py"' in meta


def test_wrong_experiment_path_is_one_line_and_exit_2(tmp_path):
    done = build_web("examples/no_such_game/human_ai.py", "--offline", "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "examples/no_such_game/human_ai.py" in lines[0] and "no such file" in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_staged_page_plays_a_lockstep_room_with_a_desktop_client(tmp_path):
    """A page of an experiment where people play together plays through the server: here the
    staged main.py (natively, from the staged files only) and a desktop client share a room."""
    import socket

    done = build_web("examples/slime_volleyball/lockstep.py", "--staging", str(tmp_path / "stage"), "--stage-only")
    assert done.returncode == 0, done.stderr
    app = tmp_path / "stage" / "slime_lockstep"
    native = link_native(tmp_path / "native", (*NATIVE, "websockets"))  # natively the page's WebSocket is websockets
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = tmp_path / "room.sqlite"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "XDG_CACHE_HOME": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "igym.server", "tests/experiments/short_lockstep.py",
                               "--port", str(port), "--data", str(data)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    processes = [server]
    try:
        assert "igym server" in server.stdout.readline()
        url = f"ws://127.0.0.1:{port}"
        boot = (f"import sys, runpy\n"
                f"sys.path[:0] = [{str(app)!r}, {str(native)!r}]\n"
                f"sys.argv = ['main.py', '--headless', '--autopilot', '--participant', 'page']\n"
                f"runpy.run_path({str(app / 'main.py')!r}, run_name='__main__')\n")
        page_env = {k: v for k, v in env.items() if not k.startswith("PYTHON")}
        page_env["IGYM_SERVER"] = url
        page = subprocess.Popen([sys.executable, "-I", "-S", "-c", boot], cwd=tmp_path, env=page_env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        desk = subprocess.Popen([sys.executable, "-m", "igym.play", "examples/slime_volleyball/lockstep.py",
                                 "--connect", url, "--headless", "--autopilot", "--participant", "desk"],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        processes += [page, desk]
        page_out, _ = page.communicate(timeout=400)
        desk_out, _ = desk.communicate(timeout=60)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)
    assert "igym web: participant page: played" in page_out, page_out[-3000:]
    assert "outcome: played" in desk_out, desk_out[-3000:]
    with sqlite3.connect(data) as db:
        assert db.execute("select count(*) from events where kind='desync'").fetchone()[0] == 0
        members = db.execute("select data from events where kind='lockstep'").fetchone()[0]
        episodes = db.execute("select steps, outcome from episodes").fetchall()
    assert '"page"' in members and '"desk"' in members
    assert episodes == [(300, "truncated")]  # the server's schedule ruled the page's copy of the game


COUNTER_CIRCUIT_STUDY = '''"""A study outside examples/ that reuses the Overcooked draw module (its atlas) and env."""
from igym.controls import KeyMap
from igym.experiment import Experiment, Game
from examples.overcooked.draw import ATLASES, BACKGROUND, hud, layout_canvas, render
from examples.overcooked.env import DOWN, INTERACT, LEFT, NOOP, RIGHT, UP, make

experiment = Experiment(id="counter_circuit_study", scenes=[Game(
    name="counter_circuit", env=make("counter_circuit"), render=render, hud=hud, atlases=ATLASES,
    seats={0: "human", 1: "random"}, fps=8, episodes=1, max_steps=80, seeds=3,
    keys=KeyMap({"up": UP, "down": DOWN, "left": LEFT, "right": RIGHT, "space": INTERACT},
                mode="keystroke", default_action=NOOP),
    canvas=layout_canvas("counter_circuit"), background=BACKGROUND)])
'''


def shared_study(folder: Path) -> Path:
    study = folder / "my_study" / "counter_circuit.py"
    study.parent.mkdir(parents=True)
    study.write_text(COUNTER_CIRCUIT_STUDY)
    return study


def test_a_study_elsewhere_reusing_the_overcooked_draw_module_plays_and_stages_its_assets(tmp_path):
    pytest.importorskip("cogrid")
    import pygame

    study = shared_study(tmp_path)
    shot, data = tmp_path / "cc.png", tmp_path / "cc.sqlite"
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    played = subprocess.run([sys.executable, "-m", "igym.play", str(study), "--headless", "--autopilot",
                             "--max-steps", "40", "--data", str(data), "--screenshot", str(shot)],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert played.returncode == 0, played.stderr  # not "atlas file not found: <study folder>/assets/..."
    picture = pygame.image.load(str(shot))
    colours = {tuple(picture.get_at((x, y))) for x in range(0, picture.get_width(), 7)
               for y in range(0, picture.get_height(), 7)}
    assert len(colours) > 20  # sprites from the atlas, not bare background

    done = build_web(str(study), "--staging", str(tmp_path / "stage"), "--stage-only")
    assert done.returncode == 0, done.stderr
    app = tmp_path / "stage" / "counter_circuit_study"
    for wanted in ("my_study/counter_circuit.py", "examples/__init__.py", "examples/overcooked/__init__.py",
                   "examples/overcooked/draw.py", "examples/overcooked/env.py",
                   "examples/overcooked/assets/overcooked.json", "examples/overcooked/assets/overcooked.png"):
        assert (app / wanted).is_file(), wanted
    assert not (app / "examples" / "slime_volleyball").exists()  # only the folders the study imports from
    assert "examples/overcooked" in done.stdout
    # The staged page runs from the staged files alone (the atlas found beside the staged draw module).
    native = link_native(tmp_path / "native", NATIVE)
    run_data = tmp_path / "run.sqlite"
    boot = (f"import sys, runpy\n"
            f"sys.path[:0] = [{str(app)!r}, {str(native)!r}]\n"
            f"sys.argv = ['main.py', '--headless', '--autopilot', '--max-steps', '24', '--data', {str(run_data)!r}]\n"
            f"try:\n"
            f"    runpy.run_path({str(app / 'main.py')!r}, run_name='__main__')\n"
            f"finally:\n"
            f"    outside = sorted({{m.__name__ for m in list(sys.modules.values())\n"
            f"                      if (getattr(m, '__file__', None) or '').startswith({str(ROOT)!r})}})\n"
            f"    print('FROM-REPO', outside)\n")
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    run_env.update(SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    run = subprocess.run([sys.executable, "-I", "-S", "-c", boot], cwd=tmp_path, capture_output=True, text=True,
                         env=run_env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "FROM-REPO []" in run.stdout and "completed (24 steps)" in run.stdout


def test_a_self_hosted_runtime_replaces_every_third_party_host(tmp_path):
    """--runtime-url: the page loads pygbag's runtime from the study's own site (ethics boards
    that forbid third-party hosts), and names no other host."""
    runtime = "https://study.example.org/pygbag/0.9.3/"
    done = build_web(EXAMPLE, "--offline", "--no-vendor", "--out", str(tmp_path / "out"),
                     "--runtime-url", runtime.rstrip("/"))
    assert done.returncode == 0, done.stderr
    index = (tmp_path / "out" / "index.html").read_text()
    assert f'src="{runtime}pythons.js"' in index and f'cdn: "{runtime}"' in index
    hosts = set(re.findall(r"https?://([^/\"'\s]+)", index))
    assert hosts == {"study.example.org"}, hosts
    wrong = build_web(EXAMPLE, "--offline", "--out", str(tmp_path / "x"), "--runtime-url", "not a url")
    assert wrong.returncode == 2 and "--runtime-url" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
