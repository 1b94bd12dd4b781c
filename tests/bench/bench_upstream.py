"""igym's server next to upstream Interactive Gym, same load, one run (issue 5's last benchmark).

For each K: K clients in K/2 two-human Slime Volleyball rooms at 30 Hz on loopback, first
igym (``bench_server.measure``: ``python -m igym.server`` in its own process, light
websockets clients here), then upstream ``interactive-gym==0.1.1`` (Flask + Flask-SocketIO +
eventlet, in its own venv ``~/.cache/igym-upstream/venv``) driven by K python-socketio
clients in a second process of that venv (``tests/bench/upstream/``). Same K, same
duration, same env code (igym's pure-Python ``examples/slime_volleyball/slime.py``).

Measured for both, over the same window length after a warm-up:

* **client-side frame jitter**: |interval between two frames arriving at one client −
  33.3 ms|, p50 / p99 over all clients. Upstream has no tick-lateness counter, so this is
  the one timing both servers can be compared on. igym additionally reports its
  server-side tick lateness (``/status``), which is not the same quantity.
* **server CPU per room** (ms of CPU per room per second, from ``/proc/<pid>/stat`` of the
  server process),
* **bytes per second per client**: frames only (igym ``frame`` messages; upstream
  ``environment_state`` events), and for upstream also everything it receives (mostly the
  per-tick ``request_pressed_keys`` that upstream broadcasts to every client).

What upstream needs to run at all (stated in the rows, details in
``tests/bench/upstream/serve.py``): ``gymnasium`` installed by hand (imported by
``remote_game.py``, not declared), ``app.run`` replaced by setting the app's globals and
calling ``socketio.run`` (``run`` looks up the public IP on the internet), a stub page
(the wheel ships no templates/JS), and — for the server-side object-dict mode — its
``render_server_game`` replaced, because as shipped it raises ``AttributeError: 'NoneType'
object has no attribute 'tobytes'`` on the first frame (a short probe shows this each run).

``python -m tests.bench.bench_upstream --clients 20 40 --seconds 15``. Bounded: every
process stops by itself or is killed after a timeout. If the upstream venv is missing,
``run()`` tries to create it (``--no-setup`` / ``setup=False`` to not) and otherwise
returns a row saying why upstream was skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.bench import bench_server

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "upstream"
VENV = Path(os.environ.get("IGYM_UPSTREAM_VENV", Path.home() / ".cache" / "igym-upstream" / "venv"))
PYTHON = VENV / "bin" / "python"
REQUIREMENTS = ["interactive-gym[server]==0.1.1", "python-socketio[asyncio_client]", "aiohttp",
                "gymnasium"]  # gymnasium: imported by interactive_gym/server/remote_game.py, not declared
FPS = 30.0
FRAME_PREFIX = b"\xa1t\xa5frame"  # msgpack "t": "frame" right after the map header


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# ---------- upstream venv ----------

def _upstream_ok() -> str | None:
    """None if the venv can import everything we need, else why not."""
    if not PYTHON.exists():
        return f"no upstream venv at {VENV}"
    try:
        with tempfile.TemporaryDirectory() as scratch:  # importing app writes ./iglog.log
            probe = subprocess.run([str(PYTHON), "-c", "import interactive_gym.server.app, socketio, aiohttp"],
                                   cwd=scratch, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as error:
        return f"upstream venv probe failed: {error}"
    if probe.returncode:
        return "upstream venv cannot import interactive_gym.server.app: " + probe.stderr.strip().splitlines()[-1]
    return None


def ensure_upstream(setup: bool = True) -> str | None:
    """Make sure the upstream venv works; returns None, or why upstream cannot run."""
    problem = _upstream_ok()
    if problem is None or not setup:
        return problem
    try:
        if not PYTHON.exists():
            VENV.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=300)
        install = subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", *REQUIREMENTS],
                                 capture_output=True, text=True, timeout=900)
        if install.returncode:
            tail = [line for line in install.stderr.splitlines() if "is ignored" not in line][-3:]
            return "pip install " + " ".join(REQUIREMENTS) + " failed: " + " | ".join(tail)
    except (OSError, subprocess.SubprocessError) as error:
        return f"could not set up {VENV}: {error}"
    return _upstream_ok()


# ---------- upstream measurement ----------

def _wait_port(port: int, server: subprocess.Popen, timeout: float = 30.0) -> bool:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def _tracebacks(log: str) -> list[str]:
    """Distinct server tracebacks: final exception (ids removed), deepest upstream frame, count.

    A traceback that is only the context of a later one ("During handling of the above
    exception ...", e.g. python-socketio first calling a disconnect handler with a reason
    argument) is folded into the final one.
    """
    import re
    counts: dict[str, int] = {}
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("Traceback"):
            continue
        j, where = i + 1, ""
        while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
            text = lines[j].strip()
            if text.startswith("File") and "interactive_gym" in text:
                where = text.split("site-packages/")[-1].replace('", line', ":").replace(", in ", " in ")
            j += 1
        if j >= len(lines):
            continue
        following = " ".join(lines[j + 1:j + 3])
        if "During handling of the above exception" in following or "direct cause" in following:
            continue
        error = re.sub(r"'[0-9a-f-]{36}'", "'<id>'", lines[j].strip())
        key = f"{error} at {where}" if where else error
        counts[key] = counts.get(key, 0) + 1
    return [f"{key} (×{n})" for key, n in counts.items()]


def measure_upstream(clients: int, seconds: float, **options) -> dict:
    """``_measure_upstream``, never raising: a failure comes back as ``{"error": ...}``."""
    try:
        return _measure_upstream(clients, seconds, **options)
    except Exception as error:  # noqa: BLE001 - run() must not fail because upstream did
        return {"clients": clients, "rooms": clients // 2, "error": f"{type(error).__name__}: {error}"}


def _measure_upstream(clients: int, seconds: float, as_shipped: bool = False, start_wait: float = 20.0,
                      replies: bool = True) -> dict:
    port = bench_server._free_port()
    scratch = Path(tempfile.mkdtemp(prefix="igym-upstream-"))
    server_log = scratch / "server.log"
    command = [str(PYTHON), str(HERE / "serve.py"), "--port", str(port)] + (["--as-shipped"] if as_shipped else [])
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # no __pycache__ in tests/bench/upstream
    with open(server_log, "w") as log:
        server = subprocess.Popen(command, cwd=scratch, stdout=log, stderr=subprocess.STDOUT, env=env)
    client = None
    result: dict = {"clients": clients, "rooms": clients // 2}
    try:
        if not _wait_port(port, server):
            result["error"] = "upstream server did not start: " + server_log.read_text()[-500:]
            return result
        client = subprocess.Popen([str(PYTHON), str(HERE / "load_client.py"), "--port", str(port), "--clients",
                                   str(clients), "--seconds", str(seconds), "--start-wait", str(start_wait),
                                   "--fps", str(FPS)] + ([] if replies else ["--no-replies"]),
                                  cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        watchdog = threading.Timer(start_wait + seconds + 60, client.kill)  # the client bounds itself; a guard
        watchdog.start()
        cpu0 = t0 = cpu = None
        window_end_offset = None
        for line in client.stdout:
            line = line.strip()
            if line == "window-start":
                cpu0, t0 = bench_server._cpu_seconds(server.pid), time.monotonic()
            elif line == "window-end" and cpu0 is not None:
                cpu = (bench_server._cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)
                window_end_offset = server_log.stat().st_size
            elif line.startswith("{"):
                result.update(json.loads(line))
        watchdog.cancel()
        if cpu is not None:
            result["server_cpu"] = cpu
            rooms = max(1, result.get("rooms_started") or clients // 2)
            result["cpu_per_room_ms_per_s"] = 1000 * cpu / rooms
    finally:
        for process in (client, server):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(5)
        time.sleep(0.3)
        log_text = server_log.read_bytes()
        cut = len(log_text) if window_end_offset is None else window_end_offset
        result["tracebacks"] = _tracebacks(log_text[:cut].decode(errors="replace"))  # up to the window's end
        result["teardown_tracebacks"] = _tracebacks(log_text[cut:].decode(errors="replace"))  # clients leaving
        # RemoteGameV2.remove_human_player looks the subject id up among the agent ids: the seat is never freed
        result["seats_not_freed"] = log_text.count(b"but player wasn't found")
        shutil.rmtree(scratch, ignore_errors=True)
    return result


# ---------- igym measurement (bench_server.measure, with arrival times recorded) ----------

class _TimedConnection:
    """Wraps a websockets connection: records when each frame arrives; nothing else changes."""

    def __init__(self, connection, log: list) -> None:
        self._connection, self.times = connection, []
        log.append(self)

    async def recv(self, *args, **kwargs):
        data = await self._connection.recv(*args, **kwargs)
        if data[1:9] == FRAME_PREFIX:
            self.times.append(time.monotonic())
        return data

    def __getattr__(self, name):
        return getattr(self._connection, name)


def measure_igym(clients: int, seconds: float) -> dict:
    """``bench_server.measure`` (its server, clients and status), plus client-side frame jitter.

    Only the ``connect`` its clients use is wrapped, to time-stamp frame arrivals.
    """
    connections: list[_TimedConnection] = []
    opened: list[float] = []
    real_connect = bench_server.connect

    @contextlib.asynccontextmanager
    async def timed_connect(*args, **kwargs):
        opened.append(time.monotonic())
        async with real_connect(*args, **kwargs) as connection:
            yield _TimedConnection(connection, connections)

    bench_server.connect = timed_connect
    try:
        result = bench_server.measure(clients, seconds)
    finally:
        bench_server.connect = real_connect
    window_start = min(opened) + 3.0 if opened else 0.0  # bench_server's warm-up
    intervals = [b - a for c in connections for a, b in zip(c.times, c.times[1:]) if a >= window_start]
    jitter = sorted(abs(i - 1 / FPS) for i in intervals)
    frames = sum(1 for c in connections for t in c.times if t >= window_start)
    result.update(jitter_p50_ms=_pct(jitter, 0.5), jitter_p99_ms=_pct(jitter, 0.99),
                  frames_per_s_per_client=frames / seconds / clients if clients else None)
    return result


def _pct(ordered: list[float], q: float) -> float | None:
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None


# ---------- rows ----------

def _ratio(a, b):
    return a / b if a is not None and b else None


def _per_step(result: dict) -> float | None:
    """Server CPU per room-step in ms: CPU / (rooms × frames per second actually delivered)."""
    rooms = result.get("rooms_started") or result.get("rooms")
    fps = result.get("frames_per_s_per_client")
    if not rooms or not fps or result.get("server_cpu") is None:
        return None
    return 1000 * result["server_cpu"] / (rooms * fps)


def run(sizes: tuple[int, ...] = (20, 40), seconds: float = 15.0, setup: bool = True,
        diagnose: bool = False) -> list[dict]:
    rows: list[dict] = []
    load_before = _loadavg()
    problem = ensure_upstream(setup)
    if problem is None:
        probe = measure_upstream(2, 2.0, as_shipped=True, start_wait=5.0)
        crash = probe.get("tracebacks") or ["no traceback"]
        rows.append({"bench": "upstream", "case": "upstream as shipped, server-side object dicts (env_to_state_fn): "
                     "frames received in 2 s, 1 room", "value": probe.get("frames_per_s_per_client", 0) * 2,
                     "unit": "frames", "target": crash[0]})
    else:
        rows.append({"bench": "upstream", "case": "upstream Interactive Gym 0.1.1 skipped", "value": 0,
                     "unit": "runs", "target": problem})
    for clients in sizes:
        mine = measure_igym(clients, seconds)
        theirs = measure_upstream(clients, seconds) if problem is None else {}
        rooms = clients // 2
        prefix = f"{clients} clients / {rooms} rooms, {seconds:g} s"
        note = (f"upstream: {theirs.get('rooms_started')} rooms started, "
                f"{theirs.get('frames_per_s_per_client') or 0:.1f} frames/s, "
                f"{theirs.get('key_requests_per_s_per_client') or 0:.0f} key requests/s per client, "
                f"client process {theirs.get('client_cpu') or 0:.2f} cores"
                + (f", errors {theirs['errors']}" if theirs.get("errors") else "")
                + (f", server tracebacks up to the window's end {theirs['tracebacks'][:2]}"
                   if theirs.get("tracebacks") else ", no server traceback up to the window's end")
                + (f", {len(theirs['teardown_tracebacks'])} tracebacks while clients left, first "
                   f"{theirs['teardown_tracebacks'][0]}" if theirs.get("teardown_tracebacks") else "")
                + (f", {theirs['seats_not_freed']} leavers whose seat was not freed" if theirs.get("seats_not_freed")
                   else "")
                + (f", {theirs['error']}" if theirs.get("error") else "")) if theirs else "upstream skipped"
        rows += [
            {"bench": "upstream", "case": f"{prefix}: client-side frame jitter p50 |Δt − 33.3 ms|",
             "value": mine["jitter_p50_ms"], "unit": "ms", "baseline": theirs.get("jitter_p50_ms"),
             "ratio": _ratio(mine["jitter_p50_ms"], theirs.get("jitter_p50_ms")),
             "target": f"igym server tick lateness p50 {mine['p50_ms']} ms (server-side, /status)"},
            {"bench": "upstream", "case": f"{prefix}: client-side frame jitter p99",
             "value": mine["jitter_p99_ms"], "unit": "ms", "baseline": theirs.get("jitter_p99_ms"),
             "ratio": _ratio(mine["jitter_p99_ms"], theirs.get("jitter_p99_ms")),
             "target": f"igym server tick lateness p99 {mine['p99_ms']} ms; igym "
                       f"{mine['frames_per_s_per_client'] or 0:.1f} frames/s per client"},
            {"bench": "upstream", "case": f"{prefix}: server CPU per room",
             "value": mine["cpu_per_room_ms_per_s"], "unit": "ms/s", "baseline": theirs.get("cpu_per_room_ms_per_s"),
             "ratio": _ratio(mine["cpu_per_room_ms_per_s"], theirs.get("cpu_per_room_ms_per_s")),
             "target": f"server CPU igym {mine['server_cpu']:.2f} / "
                       f"upstream {theirs.get('server_cpu') or 0:.2f} cores"},
            {"bench": "upstream", "case": f"{prefix}: server CPU per room-step (CPU / rooms / frames per s delivered)",
             "value": _per_step(mine), "unit": "ms", "baseline": _per_step(theirs),
             "ratio": _ratio(_per_step(mine), _per_step(theirs)),
             "target": "normalises for upstream delivering fewer than 30 frames/s when saturated"},
            {"bench": "upstream", "case": f"{prefix}: bytes/s per client, frames",
             "value": mine["bytes_per_s_per_client"], "unit": "B/s",
             "baseline": theirs.get("frame_bytes_per_s_per_client"),
             "ratio": _ratio(mine["bytes_per_s_per_client"], theirs.get("frame_bytes_per_s_per_client")),
             "target": f"upstream mean frame {theirs.get('mean_frame_bytes') or 0:.0f} B; all upstream traffic "
                       f"{theirs.get('all_bytes_per_s_per_client') or 0:.0f} B/s per client; {note}"},
        ]
    if diagnose and problem is None:
        for clients in sizes:
            quiet = measure_upstream(clients, seconds, replies=False)
            rows.append({"bench": "upstream", "case": f"diagnostic, {clients} clients: upstream with clients NOT "
                         "answering request_pressed_keys (not what a browser does): server CPU per room",
                         "value": quiet.get("cpu_per_room_ms_per_s"), "unit": "ms/s",
                         "target": f"{quiet.get('frames_per_s_per_client') or 0:.1f} frames/s per client, "
                                   f"jitter p50/p99 {quiet.get('jitter_p50_ms') or 0:.1f}/"
                                   f"{quiet.get('jitter_p99_ms') or 0:.1f} ms, "
                                   f"per room-step {_per_step(quiet) or 0:.2f} ms"})
    for row in rows:  # tests.bench's table formats every value with :.4g
        if row.get("value") is None:
            row["value"] = float("nan")
    rows.append({"bench": "upstream", "case": "machine load average (1/5/15 min) before → after", "value": 0,
                 "unit": "", "target": f"{load_before} → {_loadavg()}"})
    return rows


def _table(rows: list[dict]) -> str:
    lines = ["| bench | case | igym | upstream | ratio | notes |", "|---|---|---|---|---|---|"]
    for row in rows:
        value = f"{row['value']:.4g} {row['unit']}" if isinstance(row.get("value"), (int, float)) else "—"
        base = f"{row['baseline']:.4g} {row['unit']}" if row.get("baseline") is not None else "—"
        ratio = f"{row['ratio']:.3g}×" if row.get("ratio") is not None else "—"
        lines.append(f"| {row['bench']} | {row['case']} | {value} | {base} | {ratio} | {row.get('target', '')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--no-setup", action="store_true", help="do not create the upstream venv if missing")
    parser.add_argument("--diagnose", action="store_true",
                        help="also run upstream with clients that do not answer its per-tick key requests")
    options = parser.parse_args()
    result = run(tuple(options.clients), options.seconds, setup=not options.no_setup, diagnose=options.diagnose)
    for row in result:
        print(row)
    print()
    print(_table(result))
