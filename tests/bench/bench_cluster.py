"""Scale-out: rooms served with p99 tick lateness < 5 ms by one worker and by two.

``python -m igym.server tests/experiments/load_slime.py --workers W`` (solo rooms: one light
client against a random AI per room, so any worker hosts a room alone) on loopback, with
the load generator of :mod:`.bench_server` in this process. For W = 1 and 2 the number of
rooms grows in steps until the worst worker's p99 tick lateness (each worker's own window,
from the cluster's ``/status``) reaches 5 ms; the capacity is the last step under it, and
the ratio of the two is the scaling. Reported with the CPU each room costs. Bounded: each
step runs ``--seconds`` and stops by itself.

On a 2-core machine the load generator shares the cores with the workers, so the ratio
measured there is a lower bound of what two machines (or more cores) give.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.bench_server import EXPERIMENT, ROOT, TOKEN, _client, _cpu_seconds, _free_port, _status

STEP_ROOMS = 20
MAX_ROOMS = 400
WARMUP_S = 3.0


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def measure(workers: int, rooms: int, seconds: float) -> dict:
    port = _free_port()
    data = Path(f"/tmp/igym-bench-cluster-{port}.sqlite")
    env = {**os.environ, "LOAD_SOLO": "1", "SDL_VIDEODRIVER": "dummy"}
    command = [sys.executable, "-m", "igym.server", str(EXPERIMENT), "--port", str(port), "--data", str(data),
               "--admin-token", TOKEN]
    if workers > 1:
        command += ["--workers", str(workers)]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status = _status(port)
                if workers == 1 or len(status.get("cluster", {}).get("workers", [])) >= workers:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workers} workers did not start")
            time.sleep(0.2)
        processes = [server.pid] if workers == 1 else [p for p in _children(server.pid)
                                                       if "igym.server" in Path(f"/proc/{p}/cmdline").read_text()]
        counters = {"bytes": 0, "frames": 0}

        async def run() -> tuple[float, dict]:
            stop_at = time.monotonic() + WARMUP_S + seconds
            tasks = [asyncio.create_task(_client(f"ws://127.0.0.1:{port}", f"c{i}", stop_at, counters))
                     for i in range(rooms)]
            await asyncio.sleep(WARMUP_S)
            cpu0, load0 = sum(_cpu_seconds(p) for p in processes), time.process_time()
            started = time.monotonic()
            await asyncio.gather(*tasks, return_exceptions=True)
            elapsed = time.monotonic() - started
            load_cpu = (time.process_time() - load0) / elapsed  # the load generator's share of the cores
            cpu = (sum(_cpu_seconds(p) for p in processes) - cpu0) / elapsed
            return cpu, load_cpu, await asyncio.to_thread(_status, port)

        cpu, load_cpu, status = asyncio.run(run())
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{data}{suffix}").unlink(missing_ok=True)
    if workers == 1:
        p99 = status.get("tick_lateness", {}).get("p99_ms")
    else:
        values = [w.get("p99_ms") for w in status["cluster"]["workers"]]
        p99 = None if any(v is None for v in values) else max(values)
    return {"workers": workers, "rooms": rooms, "p99_ms": p99, "cpu": cpu, "load_cpu": load_cpu,
            "cpu_per_room_ms_per_s": 1000 * cpu / rooms}


def capacity(workers: int, seconds: float) -> tuple[int, list[dict]]:
    """The most rooms (in steps of STEP_ROOMS) with every worker's p99 tick lateness < 5 ms."""
    best, steps = 0, []
    for rooms in range(STEP_ROOMS, MAX_ROOMS + 1, STEP_ROOMS):
        result = measure(workers, rooms, seconds)
        steps.append(result)
        if result["p99_ms"] is None or result["p99_ms"] >= 5:
            break
        best = rooms
    return best, steps


def run(seconds: float = 10.0) -> list[dict]:
    rows = []
    capacities = {}
    for workers in (1, 2):
        best, steps = capacity(workers, seconds)
        capacities[workers] = best
        under = [s for s in steps if s["rooms"] == best] or steps[:1]
        rows.append({"bench": "cluster", "case": f"{workers} worker{'s' if workers > 1 else ''}: rooms with p99 < 5 ms",
                     "value": best, "unit": "rooms",
                     "target": f"at {best} rooms: p99 {under[0]['p99_ms']} ms, {under[0]['cpu']:.2f} cores "
                               f"(load generator {under[0]['load_cpu']:.2f}), "
                               f"{under[0]['cpu_per_room_ms_per_s']:.2f} ms CPU per room-second; "
                               "steps: " + ", ".join(f"{s['rooms']}→{s['p99_ms']}" for s in steps)})
    ratio = capacities[2] / capacities[1] if capacities[1] else None
    rows.append({"bench": "cluster", "case": "scaling: rooms of 2 workers / rooms of 1",
                 "value": None if ratio is None else round(ratio, 2), "unit": "×", "target": "≥ 1.8"})
    return rows


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    options = parser.parse_args()
    for row in run(options.seconds):
        print(row)
