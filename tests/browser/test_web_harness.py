"""The web path in a real browser: Pyodide (npm) in headless Chromium, offline, on 127.0.0.1.

The page (tests/web/harness.html + harness.py) boots Pyodide without numpy or pygame,
writes igym's core, the slime volleyball example and its ONNX policy into Pyodide's file
system and plays a seeded episode with a scripted key schedule, the AI through
onnxruntime-web, uploading with UploadSink over the browser's WebSocket to a real
``IgymServer(collect=True)``. The same episode is then played natively (onnxruntime) by the
same driver code and the server's rows must equal the native records.

Set-up: Chromium from apt (``/usr/bin/chromium``) and the npm packages of
tests/web/package.json in ``$IGYM_WEB_CACHE`` (default ``~/.cache/igym-web``), installed by
``tests/install_services.sh`` (the README's test command runs it), never by the tests: a
missing one fails the test with that instruction. Every wait has a timeout; Chromium and
the servers are stopped at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.web import harness

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("IGYM_WEB_CACHE", Path.home() / ".cache" / "igym-web"))
NEEDED = ("pyodide/pyodide.mjs", "pyodide/pyodide.asm.wasm", "onnxruntime-web/dist/ort.wasm.min.js",
          "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm", "@msgpack/msgpack/dist.umd/msgpack.min.js")
PAGE_TIMEOUT_S = 180


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if not found:
        pytest.fail("Chromium is missing: run tests/install_services.sh (the README's test command does)")
    return found


def _node_modules() -> Path:
    modules = CACHE / "node_modules"
    if not all((modules / name).is_file() for name in NEEDED):
        pytest.fail(f"the browser-side npm packages are missing in {CACHE}: run tests/install_services.sh "
                    f"(the README's test command does)")
    return modules


class ServerThread:
    """The real igym server (--collect) on 127.0.0.1, in its own thread and event loop."""

    def __init__(self, path: Path) -> None:
        from igym.sqlite_sink import SqliteSink
        from igym.loader import load_experiment
        from igym.server.app import IgymServer, serve_forever
        self.path = path
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        port: list[int] = []

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.sink = SqliteSink(path)
            server = IgymServer(load_experiment(harness.SLIME), self.sink, "t", collect=True)
            self.task = self.loop.create_task(serve_forever(server, "127.0.0.1", 0,
                                                            on_listening=lambda p: (port.append(p), ready.set())))
            try:
                self.loop.run_until_complete(self.task)  # closes the data when cancelled
            except asyncio.CancelledError:
                pass

        self.thread = threading.Thread(target=run, name="igym-server", daemon=True)
        self.thread.start()
        assert ready.wait(20), "the igym server did not start"
        self.url = f"ws://127.0.0.1:{port[0]}"

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    from tests.web.browser import Chromium
    from tests.web.serve import HarnessServer
    binary = _chromium()
    modules = _node_modules()
    import msgpack
    extra = {f"msgpack/{name}": Path(msgpack.__file__).parent / name
             for name in ("__init__.py", "exceptions.py", "ext.py", "fallback.py")}
    server = ServerThread(tmp_path_factory.mktemp("web") / "collect.sqlite")
    static = HarnessServer(modules, extra)
    browser = Chromium(binary)
    try:
        yield server, static, browser
    finally:
        browser.stop()
        static.close()
        server.stop()


def _open(static, browser, **params):
    static.clear()
    url = f"{static.url}/web/harness.html?" + urllib.parse.urlencode(params)
    return browser.open(url)


def test_web_units_in_the_browser(web):
    server, static, browser = web
    tab = _open(static, browser, scenario="units", PROLIFIC_PID="prolific-1", STUDY_ID="st", SESSION_ID="se",
                condition="fast")
    try:
        result = static.wait_report("done", PAGE_TIMEOUT_S)
    finally:
        browser.close_tab(tab)
    print("\nweb units:", json.dumps({k: v for k, v in result.items() if k != "onnx"}, indent=1))
    print("downloaded bytes by folder:", static.served)
    assert result["runtime"] == "pyodide" and result["python"].startswith("3.14")
    assert result["participant"] == "prolific-1"
    assert result["facts"] == {"study_id": "st", "session_id": "se", "condition": "fast"}
    assert result["storage_get"] == {"x": [1, 2.5, None, "é"]}
    assert result["storage_keys"] == ["igym:test:a", "igym:test:b"]
    assert result["storage_after_remove"] == ["igym:test:a"]
    assert json.loads(result["storage_raw"]) == {"x": [1, 2.5, None, "é"]}
    assert result["wait"] == 42 and result["can_run_sync"] and result["run_sync_in_task"] == "sync ok"
    assert result["modules"] == [], "the page must not import numpy, pygame, onnxruntime or websockets"
    assert result["msgpack_backend"] == "igym.packing" and not result["msgpack"]["msgpack_importable"]
    assert result["msgpack"]["fallback_same_bytes"] is True

    # The ONNX policy on onnxruntime-web: the same scores (float32) and the same actions,
    # argmax and seeded softmax, as natively.
    from igym.policy import OnnxPolicy
    onnx = result["onnx"]
    assert onnx["backend"] == "onnxruntime-web"
    path = REPO / "policies" / "slime_volleyball.onnx"
    native, soft = OnnxPolicy(path), OnnxPolicy(path, sample="softmax", seed=9, temperature=0.7)
    import random
    rng = random.Random(3)
    observations = [[rng.uniform(-2, 2) for _ in range(12)] for _ in range(50)]
    for web_row, obs in zip(onnx["scores"], observations):
        assert web_row == pytest.approx(native.scores(obs), abs=1e-5)
    assert onnx["argmax"] == [native.act(o) for o in observations]
    assert onnx["softmax"] == [soft.act(o) for o in observations]
    native_us = harness._time(lambda: native.act(observations[0]), 2000)
    print(f"onnx act: browser {onnx['act_us']} µs (create {onnx['create_ms']} ms), native {native_us:.1f} µs")
    print("msgpack:", result["msgpack"])


def _stored_steps(server, participant):
    db = server.db()
    try:
        rows = db.execute(
            "SELECT s.episode_id, s.step, s.agent, s.t_ns, s.action, s.source, s.reward, s.terminated, s.truncated, "
            "s.keys, s.key_t_ns, s.fingerprint FROM steps s JOIN episodes e USING (episode_id) "
            "WHERE e.participant_id=? ORDER BY e.started_at, s.step, s.agent", (participant,)).fetchall()
        episodes = db.execute("SELECT episode_id, steps, returns, outcome, visit_id FROM episodes "
                              "WHERE participant_id=? ORDER BY started_at", (participant,)).fetchall()
        events = db.execute("SELECT episode_id, t_ns, kind, data FROM events "
                            "WHERE participant_id=? AND kind LIKE 'key_%' ORDER BY rowid", (participant,)).fetchall()
    finally:
        db.close()
    return rows, episodes, events


def _native_rows(participant, max_steps=harness.MAX_STEPS):
    from igym.sqlite_sink import step_rows
    from igym.loader import load_experiment
    from igym.records import StepRecord
    game = harness.seeded_game(load_experiment(harness.SLIME).scenes[0], max_steps)
    sink = harness.ListSink()
    start = time.perf_counter()
    session = asyncio.run(harness.play(game, participant, sink))
    elapsed = time.perf_counter() - start
    rows = []
    for record in sink.records:
        if isinstance(record, StepRecord):
            for row in step_rows(record):
                rows.append(row)
    return rows, sink.records, session, elapsed


def _comparable(rows):
    """(step, agent, t_ns, action, source, reward, terminated, truncated, keys, key_t_ns, fingerprint)."""
    return [tuple(row[1:]) for row in rows]


def test_browser_episode_uploads_exactly_the_native_records(web):
    server, static, browser = web
    tab = _open(static, browser, scenario="episode", participant="web-parity", ws=server.url)
    try:
        result = static.wait_report("done", PAGE_TIMEOUT_S)
    finally:
        browser.close_tab(tab)
    assert result["acked_all"] and result["policy"]["kind"] == "onnx", result
    rows, episodes, events = _stored_steps(server, "web-parity")
    native_rows, native_records, session, native_s = _native_rows("web-parity")
    print(f"\nbrowser episode: {result}; native {native_s:.3f} s")
    # step_rows: (episode_id, step, agent, t_ns, action, source, reward, term, trunc, keys, key_t_ns, extra, fp)
    native = [(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[12]) for r in native_rows]
    assert len(rows) == len(native) == 2 * result["steps"] and result["steps"] > 500
    assert _comparable(rows) == native
    assert [(steps, json.loads(returns), outcome) for _, steps, returns, outcome, _ in episodes] == [
        (session.total_steps, {k: float(v) for k, v in native_records[-1].returns.items()}, native_records[-1].outcome)]
    native_events = [(r.t_ns, r.kind, r.data) for r in native_records if type(r).__name__ == "EventRecord"]
    assert [(t, kind, json.loads(data)) for _, t, kind, data in events] == native_events


def test_a_reloaded_page_resends_its_batches_and_resumes(web):
    server, static, browser = web
    pid = "web-reload"
    tab = _open(static, browser, scenario="reload", phase="1", participant=pid, ws=server.url)
    ready = static.wait_report("ready", PAGE_TIMEOUT_S)
    progress = static.reports["progress"][-1]
    browser.close_tab(tab)  # mid-episode, with unacknowledged batches in localStorage
    time.sleep(0.5)
    assert ready["saved_batches"] >= 1 and progress["acked"] >= 1
    tab = _open(static, browser, scenario="reload", phase="2", participant=pid, ws=server.url)
    try:
        result = static.wait_report("done", PAGE_TIMEOUT_S)
    finally:
        browser.close_tab(tab)
    print(f"\nreload: phase 1 {ready}; phase 2 {result}")
    assert result["resumed"] and result["resumed_batches"] >= ready["saved_batches"]
    assert result["visit_id"] == ready["visit_id"] and result["acked_all"] and result["left_in_storage"] == 0
    assert result["status"] == "completed" and result["next"]

    rows, episodes, events = _stored_steps(server, pid)
    assert len(episodes) == 2 and {e[4] for e in episodes} == {ready["visit_id"]}
    first, second = episodes[0][0], episodes[1][0]
    # The interrupted episode: a contiguous prefix of steps (nothing lost before the close),
    # at least as far as the page had batched; no step twice.
    steps = [(r[1], r[2]) for r in rows if r[0] == first]
    n = len(steps) // 2
    assert steps == [(s, a) for s in range(1, n + 1) for a in ("agent_left", "agent_right")] and n >= ready["step"]
    # Key events are not de-duplicated by the database: each scheduled event exactly once.
    first_events = [(t, kind, data) for ep, t, kind, data in events if ep == first]
    assert len(first_events) == len(set(first_events))
    schedule = harness.key_schedule(10 * 300)
    dt = 1 / 30
    expected = [(int(i * dt * 1e9), "key_down" if kind == "press" else "key_up")
                for i, evs in sorted(schedule.items()) for kind, _ in evs if i <= n]
    assert [(t, kind) for t, kind, _ in first_events] == expected  # batches end between loop iterations
    # The resumed episode is the whole seeded episode, equal to the native one.
    native_rows, *_ = _native_rows(pid, 300)
    native = [(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[12]) for r in native_rows]
    assert _comparable([r for r in rows if r[0] == second]) == native
    db = server.db()
    try:
        visits = db.execute("SELECT visit_id, outcome FROM visits WHERE participant_id=?", (pid,)).fetchall()
        status = db.execute("SELECT status FROM participants WHERE participant_id=?", (pid,)).fetchone()
    finally:
        db.close()
    assert visits == [(ready["visit_id"], "played")] and status == ("completed",)


@pytest.mark.parametrize("name", ["igym", "examples.slime_volleyball.slime", "examples.slime_volleyball.human_ai"])
def test_the_core_imports_without_numpy_and_pygame(name):
    """What the page imports must not need numpy or pygame (checked natively too)."""
    code = ("import sys; sys.modules['numpy'] = None; sys.modules['pygame'] = None; "
            f"import importlib; importlib.import_module({name!r}); "
            "import igym.session, igym.upload, igym.web, igym.study, igym.loader")
    done = subprocess.run([os.sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-500:]


def test_the_solo_page_imports_without_msgpack():
    code = ("import sys; sys.modules['msgpack'] = None; import examples.slime_volleyball.human_ai, "
            "igym.session, igym.upload, igym.study, igym.loader")
    done = subprocess.run([os.sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-300:]
