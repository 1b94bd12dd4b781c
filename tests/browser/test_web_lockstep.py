"""Lockstep across runtimes: a desktop client and a web page play one room on a real server.

The server (``python -m igym.server``) and the desktop client (``python -m igym.play
--connect --headless --autopilot``) are subprocesses on 127.0.0.1; the web client is
Pyodide in headless Chromium (the browser harness of ``tests/browser/test_web_harness.py``) running
``igym.lockstep.run_headless`` over the browser's WebSocket, with the experiment file
``tests/experiments/lockstep_slime.py`` and the slime example written into Pyodide's file
system. Both copies of the game must agree: the server's file holds every step once per
seat, no desync, the page's fingerprints equal the stored ones, and the file replays.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.integration.test_lockstep import EXPERIMENT, episodes, events, steps
from tests.browser.test_web_harness import _chromium, _node_modules

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {"LS_EPISODES": "1", "LS_STEPS": "300", "LS_FPS": "60"}
STEPS = 300
BOOT_TIMEOUT_S = 180  # Pyodide's boot and the files written into it
GAME_TIMEOUT_S = 120  # the game itself takes ~5 s at 60 fps

# The repo files the page needs beyond the harness's (igym's core and the slime example):
# the experiment file (in its package, as load_experiment imports it) and what it imports.
PAGE_FILES = ("examples/slime_volleyball/human_human.py", "tests/experiments/__init__.py",
              "tests/experiments/lockstep_slime.py")

# The page's Python (served as /src/lockstep_page.py, written to /home/pyodide).
PAGE_PY = '''
import asyncio
import os
import sys
import time
import traceback


async def main():
    import harness
    from igym import web
    params = web.query_params()
    try:
        for key in ("LS_EPISODES", "LS_STEPS", "LS_FPS"):  # before the experiment file reads them
            os.environ[key] = params[key]
        from igym.loader import load_experiment
        from igym.lockstep import run_headless
        experiment = load_experiment("/home/pyodide/tests/experiments/lockstep_slime.py")
        game = experiment.scenes[0]
        await harness.report("connecting", {
            "runtime": web.RUNTIME, "fps": game.fps, "max_steps": game.max_steps, "episodes": game.episodes,
            "modules": sorted(m for m in ("numpy", "pygame", "websockets") if m in sys.modules)})
        start = time.perf_counter()
        result = await asyncio.wait_for(
            run_headless(params["ws"], params["participant"], experiment, autopilot_seed=int(params["seed"])),
            float(params["timeout"]))
        result["played_s"] = round(time.perf_counter() - start, 3)
        result["fingerprints"] = [[e, n, h] for (e, n), h in sorted(result["fingerprints"].items())]
        await harness.report("done", result)
    except BaseException:
        await harness.report("error", traceback.format_exc())
        raise
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Output:
    """Drains a subprocess's merged stdout/stderr in a thread (the pipe never fills)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.new: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._drain, args=(proc,), daemon=True)
        self.thread.start()

    def _drain(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.append(line)
            self.new.put(line)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if (found := re.search(pattern, line)):
                return found
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line matching {pattern!r} within {timeout} s:\n{self.text()[-2000:]}")
            try:
                line = self.new.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if (found := re.search(pattern, line)):
                return found

    def text(self) -> str:
        return "".join(self.lines)


def _stop(proc: subprocess.Popen | None) -> None:
    """Interrupt (the server flushes its file on KeyboardInterrupt), then kill if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def page(tmp_path):
    """The harness's static server and headless Chromium, serving a lockstep page."""
    from tests.web.browser import Chromium
    from tests.web.serve import HERE, HarnessServer
    binary = _chromium()
    modules = _node_modules()
    html = (HERE / "harness.html").read_text()
    entry = "import harness\nawait harness.main()"
    assert entry in html, "tests/web/harness.html changed: its Python entry point is not where this test looks"
    (tmp_path / "lockstep.html").write_text(html.replace(entry, "import lockstep_page\nawait lockstep_page.main()"))
    (tmp_path / "lockstep_page.py").write_text(PAGE_PY)
    static = HarnessServer(modules)
    static.routes["web"]["lockstep.html"] = tmp_path / "lockstep.html"
    static.routes["src"]["lockstep_page.py"] = tmp_path / "lockstep_page.py"
    for name in PAGE_FILES:
        static.routes["src"][name] = REPO / name
    try:
        browser = Chromium(binary)
    except BaseException:
        static.close()
        raise
    try:
        yield static, browser
    finally:
        browser.stop()
        static.close()


def _wait_page(static, name: str, timeout: float, *procs: tuple[str, subprocess.Popen, Output]):
    """A page report, failing early when a subprocess died meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return static.wait_report(name, min(1.0, max(0.0, deadline - time.monotonic())))
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise
        for label, proc, output in procs:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the {label} exited ({proc.returncode}) while the page played:\n"
                                     f"{output.text()[-3000:]}")


def test_a_desktop_client_and_a_web_page_play_one_lockstep_room(page, tmp_path):
    static, browser = page
    data = tmp_path / "web.sqlite"
    env = {**os.environ, **SETTINGS, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy",
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    for key in ("LS_CORRUPT", "LS_NO_STATE", "LS_OBSERVERS", "LS_EVERY"):
        env.pop(key, None)
    server = desk = None
    server_out = desk_out = None
    tab = None
    start = time.monotonic()
    try:
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "igym.server", str(EXPERIMENT), "--port", str(port), "--data", str(data)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            stdin=subprocess.DEVNULL)
        server_out = Output(server)
        listening = server_out.wait_for(r"on ws://127\.0\.0\.1:(\d+)", 30)
        url = f"ws://127.0.0.1:{listening.group(1)}"

        # The web client first (Pyodide boots for a while); the desktop client once it connects.
        static.clear()
        query = {**SETTINGS, "ws": url, "participant": "web", "seed": "5", "timeout": str(GAME_TIMEOUT_S)}
        tab = browser.open(f"{static.url}/web/lockstep.html?" + urllib.parse.urlencode(query))
        connecting = _wait_page(static, "connecting", BOOT_TIMEOUT_S, ("server", server, server_out))
        booted = time.monotonic()
        assert connecting["runtime"] == "pyodide"
        assert (connecting["fps"], connecting["max_steps"], connecting["episodes"]) == (60.0, STEPS, 1)
        assert connecting["modules"] == [], "the web client must not import numpy, pygame or websockets"

        desk = subprocess.Popen(
            [sys.executable, "-m", "igym.play", str(EXPERIMENT), "--connect", url, "--headless", "--autopilot",
             "--participant", "desk"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        desk_out = Output(desk)
        result = _wait_page(static, "done", GAME_TIMEOUT_S + 10, ("server", server, server_out),
                            ("desktop client", desk, desk_out))
        played = time.monotonic()
        try:
            desk.wait(60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the desktop client did not exit:\n{desk_out.text()[-3000:]}") from None
        desk_out.thread.join(10)
        _stop(server)  # SIGINT: the server closes its SQLite file
        server_out.thread.join(10)
    finally:
        if tab is not None:
            try:
                browser.close_tab(tab)
            except OSError:
                pass
        _stop(desk)
        _stop(server)
    print(f"\nweb lockstep: page booted in {booted - start:.1f} s, played in {played - booted:.1f} s "
          f"(page: {result['played_s']} s, {result['steps']} steps, {result['stalls']} stalls, "
          f"{result['stall_ms']} ms stalled, {result['resyncs']} resyncs)")

    # Both clients played the game to its end.
    assert result["end"]["outcome"] == "played", result["end"]
    desk_text = desk_out.text()
    assert desk.returncode == 0 and "outcome: played" in desk_text, desk_text[-3000:]
    assert result["steps"] == STEPS and result["resyncs"] == 0

    # The server's file: one episode, every step once per seat, no desync, the page's states.
    assert server.returncode is not None
    (episode_id, index, count, outcome), = episodes(data)
    assert (index, count) == (0, STEPS), (count, outcome)
    by_agent, fingerprints = steps(data, episode_id)
    assert by_agent == {"agent_left": list(range(1, STEPS + 1)), "agent_right": list(range(1, STEPS + 1))}
    assert events(data, "desync") == []
    (lockstep,) = events(data, "lockstep")
    assert sorted(lockstep["members"].values()) == ["desk", "web"]
    assert sorted(fingerprints) == list(range(30, STEPS + 1, 30))
    web_fingerprints = {n: h for e, n, h in result["fingerprints"] if e == index}
    assert web_fingerprints == fingerprints, "the web client's states differ from the server's record"

    # The file replays natively to the same states.
    verify = subprocess.run(
        [sys.executable, "-m", "igym.data", "replay", str(data), "--episode", episode_id[:8], "--verify",
         "--experiment", str(EXPERIMENT)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]
