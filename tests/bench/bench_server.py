"""Server load: K clients in K/2 Slime Volleyball rooms at 30 Hz on loopback.

The server runs in its own process (``python -m igym.server``); the clients are light
asyncio WebSocket clients in this process (they decode nothing, answer pings and change
keys every 0.2–0.6 s, like the autopilot). For each K the run lasts ``--seconds`` (default 20; the
issue's protocol is 60). Reported per K: p50/p99 tick lateness from the server's
``/status``, server CPU per room (from /proc), bytes per second per client. The largest
K with p99 < 5 ms is the capacity. Bounded: every run stops by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from websockets.asyncio.client import connect

from igym import wire

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "tests" / "experiments" / "load_slime.py"
TOKEN = "bench"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _client(url: str, pid: str, stop_at: float, counters: dict) -> None:
    rng = random.Random(pid)
    async with connect(url, compression=None, ping_interval=None, max_size=2**22) as connection:
        await connection.send(wire.pack({"t": "hello", "v": wire.PROTOCOL_VERSION, "pid": pid}))
        seat, keys, held, next_change = None, [], set(), 0.0
        while time.monotonic() < stop_at:
            try:
                data = await asyncio.wait_for(connection.recv(), timeout=max(0.01, stop_at - time.monotonic()))
            except TimeoutError:
                break
            message = wire.unpack(data)
            kind = message["t"]
            if kind == "frame":
                counters["bytes"] += len(data)
                counters["frames"] += 1
                now = time.monotonic()
                if seat and now >= next_change:
                    next_change = now + rng.uniform(0.2, 0.6)
                    wanted = set(rng.sample(keys, rng.choice((0, 1, 2))))
                    for key in sorted(held - wanted):
                        await connection.send(wire.pack({"t": "key", "seat": seat, "k": key, "d": 0}))
                    for key in sorted(wanted - held):
                        await connection.send(wire.pack({"t": "key", "seat": seat, "k": key, "d": 1}))
                    held = wanted
            elif kind == "scene":
                seat, keys = message["seat"], message["keys"]
            elif kind == "ping":
                await connection.send(wire.pack({"t": "pong", "n": message["n"]}))


def _status(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status?token={TOKEN}", timeout=5) as response:
        return json.loads(response.read())


def measure(clients: int, seconds: float) -> dict:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "igym.server", str(EXPERIMENT), "--port", str(port),
                               "--data", os.devnull + ".sqlite" if False else f"/tmp/igym-bench-{port}.sqlite",
                               "--admin-token", TOKEN], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        server.stdout.readline()
        counters = {"bytes": 0, "frames": 0}
        warmup = 3.0

        async def run() -> tuple[float, float, dict]:
            stop_at = time.monotonic() + warmup + seconds
            tasks = [asyncio.create_task(_client(f"ws://127.0.0.1:{port}", f"c{i}", stop_at, counters))
                     for i in range(clients)]
            await asyncio.sleep(warmup)
            cpu0, bytes0 = _cpu_seconds(server.pid), counters["bytes"]
            await asyncio.to_thread(_status, port)  # touch it once so the call path is warm
            started = time.monotonic()
            await asyncio.gather(*tasks, return_exceptions=True)
            elapsed = time.monotonic() - started
            status = await asyncio.to_thread(_status, port)
            return (_cpu_seconds(server.pid) - cpu0) / elapsed, (counters["bytes"] - bytes0) / elapsed, status

        cpu, bytes_per_s, status = asyncio.run(run())
    finally:
        server.kill()
        server.wait(5)
        Path(f"/tmp/igym-bench-{port}.sqlite").unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"/tmp/igym-bench-{port}.sqlite{suffix}").unlink(missing_ok=True)
    rooms = clients // 2
    late = status.get("tick_lateness", {})
    return {"clients": clients, "rooms": rooms, "p50_ms": late.get("p50_ms"), "p99_ms": late.get("p99_ms"),
            "cpu_per_room_ms_per_s": 1000 * cpu / rooms, "server_cpu": cpu,
            "bytes_per_s_per_client": bytes_per_s / clients}


def run(sizes: tuple[int, ...] = (20, 100, 200, 300), seconds: float = 20.0) -> list[dict]:
    rows = []
    best = 0
    for clients in sizes:
        result = measure(clients, seconds)
        if result["p99_ms"] is not None and result["p99_ms"] < 5:
            best = max(best, result["rooms"])
        rows.append({"bench": "server", "case": f"{clients} clients / {result['rooms']} rooms: tick lateness p50 / p99",
                     "value": result["p99_ms"], "unit": "ms", "baseline": None,
                     "target": f"p50 {result['p50_ms']} ms; server CPU {result['server_cpu']:.2f} cores; "
                               f"{result['cpu_per_room_ms_per_s']:.2f} ms CPU per room per s; "
                               f"{result['bytes_per_s_per_client']:.0f} B/s per client"})
        if result["server_cpu"] > 0.97:
            break
    rows.append({"bench": "server", "case": "largest measured room count with p99 < 5 ms", "value": best,
                 "unit": "rooms", "target": "≥ 300 per core"})
    return rows


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, nargs="+", default=[20, 100, 200, 300])
    parser.add_argument("--seconds", type=float, default=20.0)
    options = parser.parse_args()
    for row in run(tuple(options.clients), options.seconds):
        print(row)
