"""Server load, authoritative vs lockstep: the same N two-player Slime Volleyball rooms at 30 Hz.

One run measures both modes of the same game (``tests/bench/lockstep_rooms.py``:
``load_slime``'s game with only ``network`` changed), each against its own server
process (``python -m igym.server``), one after the other:

* authoritative — ``bench_server.measure``: the server runs the envs and sends frames;
  the load is bench_server's light in-process clients (they decode nothing).
* lockstep — the server only relays inputs; the load is real lockstep clients
  (:func:`igym.lockstep.run_headless` with the autopilot) that step the env themselves,
  in ``--client-procs`` separate processes (many clients per asyncio loop), so their CPU
  is not the server's. They still share the machine's cores with the server.

Reported per mode, over the same ``--seconds`` window after a warm-up: server CPU ms per
room-second (from /proc), bytes per client per second received from the server (and,
for lockstep, sent), the game steps per client per second, and the stalls the lockstep
clients counted (waiting for an input that had not arrived). Everything binds to
127.0.0.1 and stops by itself; every subprocess is killed at the end.

    python -m tests.bench.bench_lockstep --rooms 20 --seconds 20
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.bench import bench_server
from tests.bench.bench_server import TOKEN, _cpu_seconds, _free_port, _status

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "tests" / "bench" / "lockstep_rooms.py"
WARMUP_S = 5.0  # lockstep: connect, lobby, round-trip measurement, first countdown
CLIENT_GRACE_S = 0.5  # clients play on this long after the window, so it ends with everyone playing


# --- the lockstep client processes --------------------------------------------------------------

def _worker(port: int, prefix: str, count: int, rate_hz: float) -> None:
    """Run ``count`` lockstep clients in one asyncio loop; print one JSON line of results.

    Protocol with the parent: print ``ready`` once imported; read ``T_START T_END``
    (time.monotonic, the same clock in every process) from stdin; play until
    T_END + grace; print the counters at T_START and at T_END and run_headless's results.
    """
    os.environ["IGYM_BENCH_NETWORK"] = "lockstep"
    from igym import lockstep, web
    from igym.loader import load_experiment

    experiment = load_experiment(EXPERIMENT)
    counters = {"recv_bytes": 0, "sent_bytes": 0, "recv_msgs": 0, "sent_msgs": 0}
    players: list = []

    class CountingWebSocket(web.WebSocket):  # the bytes each client receives and sends
        async def send(self, data: bytes) -> None:
            counters["sent_bytes"] += len(data)
            counters["sent_msgs"] += 1
            await super().send(data)

        async def recv(self) -> bytes:
            data = await super().recv()
            counters["recv_bytes"] += len(data)
            counters["recv_msgs"] += 1
            return data

    class RecordedPlayer(lockstep.LockstepPlayer):  # to read stalls and steps inside the window
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            players.append(self)

    web.WebSocket = CountingWebSocket  # run_headless looks both up at call time
    lockstep.LockstepPlayer = RecordedPlayer

    def snapshot() -> dict:
        return {**counters, "steps": sum(p.steps for p in players), "stalls": sum(p.stalls for p in players),
                "stall_s": sum(p.stall_s for p in players), "resyncs": sum(p.resyncs for p in players),
                "players": len(players), "delays": sorted({d for p in players for d in p.delays.values()})}

    print("ready", flush=True)
    t_start, t_end = (float(v) for v in sys.stdin.readline().split())

    async def main() -> dict:
        url = f"ws://127.0.0.1:{port}"
        stop_after = t_end + CLIENT_GRACE_S - time.monotonic()
        tasks = [asyncio.create_task(lockstep.run_headless(url, f"{prefix}{i}", experiment, autopilot_seed=i,
                                                           rate_hz=rate_hz, stop_after_s=stop_after))
                 for i in range(count)]
        await asyncio.sleep(max(0.0, t_start - time.monotonic()))
        first = snapshot()
        await asyncio.sleep(max(0.0, t_end - time.monotonic()))
        last = snapshot()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), CLIENT_GRACE_S + 15)
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        done = [r for r in results if not isinstance(r, BaseException)]
        return {"start": first, "end": last, "errors": errors,
                "ended_early": [r["end"] for r in done if r["end"] is not None][:5],
                "total": {k: sum(r[k] for r in done) for k in ("steps", "stalls", "stall_ms", "resyncs")}}

    print(json.dumps(asyncio.run(main())), flush=True)


# --- the parent -------------------------------------------------------------------------------

def _start_server(network: str, port: int, data: Path) -> subprocess.Popen:
    env = {**os.environ, "IGYM_BENCH_NETWORK": network}
    server = subprocess.Popen([sys.executable, "-m", "igym.server", str(EXPERIMENT), "--port", str(port),
                               "--data", str(data), "--admin-token", TOKEN], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    server.stdout.readline()  # "igym server: ... on ws://..." once the socket is bound
    return server


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        pass


def _remove(data: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{data}{suffix}").unlink(missing_ok=True)


def measure_lockstep(rooms: int, seconds: float, client_procs: int = 2, rate_hz: float = 60.0) -> dict:
    clients = 2 * rooms
    port = _free_port()
    data = Path(f"/tmp/igym-bench-lockstep-{port}.sqlite")
    processes: list[subprocess.Popen] = []
    try:
        server = _start_server("lockstep", port, data)
        processes.append(server)
        client_procs = max(1, min(client_procs, clients))
        shares = [clients // client_procs + (i < clients % client_procs) for i in range(client_procs)]
        workers = []
        for w, share in enumerate(shares):
            worker = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_lockstep", "--worker", str(port),
                                       f"w{w}c", str(share), str(rate_hz)], cwd=ROOT,
                                      env={**os.environ, "IGYM_BENCH_NETWORK": "lockstep"},
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            processes.append(worker)
            workers.append(worker)
        for worker in workers:
            if worker.stdout.readline().strip() != "ready":
                raise RuntimeError("a lockstep client process did not start")
        t_start = time.monotonic() + WARMUP_S
        t_end = t_start + seconds
        for worker in workers:
            worker.stdin.write(f"{t_start} {t_end}\n")
            worker.stdin.flush()
        time.sleep(max(0.0, t_start - time.monotonic()))
        server_cpu0 = _cpu_seconds(server.pid)
        client_cpu0 = sum(_cpu_seconds(w.pid) for w in workers)
        status0 = _status(port)
        began = time.monotonic()
        time.sleep(max(0.0, t_end - time.monotonic()))
        server_cpu1 = _cpu_seconds(server.pid)
        client_cpu1 = sum(_cpu_seconds(w.pid) for w in workers)
        elapsed = time.monotonic() - began
        status1 = _status(port)
        reports = []
        for worker in workers:
            out, _ = worker.communicate(timeout=CLIENT_GRACE_S + 30)
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in reversed(processes):
            _stop(process)
        _remove(data)

    def delta(key: str) -> float:
        return sum(r["end"][key] - r["start"][key] for r in reports)

    window = t_end - t_start
    return {
        "mode": "lockstep", "rooms": rooms, "clients": clients,
        "server_cpu": (server_cpu1 - server_cpu0) / elapsed,
        "cpu_per_room_ms_per_s": 1000 * (server_cpu1 - server_cpu0) / elapsed / rooms,
        "client_cpu": (client_cpu1 - client_cpu0) / elapsed,
        "recv_per_client": delta("recv_bytes") / window / clients,
        "sent_per_client": delta("sent_bytes") / window / clients,
        "msgs_recv_per_client": delta("recv_msgs") / window / clients,
        "msgs_sent_per_client": delta("sent_msgs") / window / clients,
        "server_bytes_per_client": (status1["bytes_sent"] - status0["bytes_sent"]) / elapsed / clients,
        "steps_per_client": delta("steps") / window / clients,
        "stalls": delta("stalls"), "stall_ms": 1000 * delta("stall_s"), "resyncs": delta("resyncs"),
        "players": sum(r["end"]["players"] for r in reports),
        "delays": sorted({d for r in reports for d in r["end"]["delays"]}),
        "total": {k: sum(r["total"][k] for r in reports) for k in ("steps", "stalls", "stall_ms", "resyncs")},
        "errors": [e for r in reports for e in r["errors"]],
        "ended_early": [e for r in reports for e in r["ended_early"]],
        "rooms_live": status1.get("rooms"), "rate_hz": rate_hz, "client_procs": len(workers),
    }


def measure_authoritative(rooms: int, seconds: float) -> dict:
    """bench_server's own measurement (its clients, its server command) on the same game."""
    result = bench_server.measure(2 * rooms, seconds)  # bench_server's load_slime.py: the authoritative variant
    return {"mode": "authoritative", "rooms": rooms, "clients": 2 * rooms, "server_cpu": result["server_cpu"],
            "cpu_per_room_ms_per_s": result["cpu_per_room_ms_per_s"],
            "recv_per_client": result["bytes_per_s_per_client"], "p50_ms": result["p50_ms"],
            "p99_ms": result["p99_ms"]}


def compare(rooms: int = 20, seconds: float = 20.0, client_procs: int = 2, rate_hz: float = 60.0) -> list[dict]:
    return [measure_authoritative(rooms, seconds), measure_lockstep(rooms, seconds, client_procs, rate_hz)]


def table(results: list[dict], seconds: float) -> str:
    auth, lock = results
    n = lambda v, f=".2f": "—" if v is None else format(v, f)  # noqa: E731
    lines = [
        f"{auth['rooms']} two-player Slime Volleyball rooms at 30 Hz, {seconds:g} s measured per mode "
        f"({os.cpu_count()} cores; lockstep clients in {lock['client_procs']} processes on the same cores, "
        f"run_headless at {lock['rate_hz']:g} Hz; other work on the machine makes the numbers noisy)",
        "",
        "| | authoritative | lockstep |",
        "|---|---|---|",
        f"| server CPU per room-second | {n(auth['cpu_per_room_ms_per_s'])} ms | "
        f"{n(lock['cpu_per_room_ms_per_s'])} ms |",
        f"| server CPU (cores) | {n(auth['server_cpu'], '.3f')} | {n(lock['server_cpu'], '.3f')} |",
        f"| bytes/s per client received from server | {n(auth['recv_per_client'], '.0f')} (frames) | "
        f"{n(lock['recv_per_client'], '.0f')} (all messages; {n(lock['msgs_recv_per_client'], '.1f')} msg/s) |",
        f"| bytes/s per client sent to server | — (key changes only, not counted) | "
        f"{n(lock['sent_per_client'], '.0f')} ({n(lock['msgs_sent_per_client'], '.1f')} msg/s) |",
        f"| game steps/s per client | — (server-side) | {n(lock['steps_per_client'], '.1f')} |",
        f"| tick lateness p50 / p99 | {auth['p50_ms']} / {auth['p99_ms']} ms | — (no server ticks) |",
        f"| stalls in window (count / total ms) | — | {lock['stalls']} / {lock['stall_ms']:.0f} ms "
        f"({lock['stalls'] / lock['clients'] / seconds * 60:.2f} per client-minute) |",
        f"| stalls whole run incl. warm-up (run_headless) | — | {lock['total']['stalls']} / "
        f"{lock['total']['stall_ms']:.0f} ms; resyncs {lock['total']['resyncs']} |",
        f"| lockstep client CPU (cores, all clients) | — | {n(lock['client_cpu'], '.3f')} |",
        "",
        f"lockstep: input delay {lock['delays']} steps; {lock['players']} players for {lock['clients']} clients; "
        f"server counted {lock['server_bytes_per_client']:.0f} B/s per client sent (st relays); "
        f"client errors {len(lock['errors'])}{': ' + lock['errors'][0] if lock['errors'] else ''}; "
        f"ended early {len(lock['ended_early'])}{': ' + str(lock['ended_early'][0]) if lock['ended_early'] else ''}",
    ]
    return "\n".join(lines)


def run(rooms: int = 20, seconds: float = 10.0) -> list[dict]:
    """Rows for ``python -m tests.bench`` (a shorter window than the command line's default)."""
    auth, lock = compare(rooms, seconds)
    note = "lockstep clients share the cores"
    return [
        {"bench": "lockstep", "case": f"{rooms} rooms: server CPU per room-second, authoritative",
         "value": auth["cpu_per_room_ms_per_s"], "unit": "ms",
         "target": f"{auth['recv_per_client']:.0f} B/s per client"},
        {"bench": "lockstep", "case": f"{rooms} rooms: server CPU per room-second, lockstep",
         "value": lock["cpu_per_room_ms_per_s"], "unit": "ms",
         "target": f"{lock['recv_per_client']:.0f} B/s in, {lock['sent_per_client']:.0f} B/s out per client; "
                   f"{lock['stalls']} stalls / {lock['stall_ms']:.0f} ms; "
                   f"{lock['steps_per_client']:.1f} steps/s; {note}"},
    ]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
        sys.exit(0)
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--client-procs", type=int, default=2, help="processes running the lockstep clients")
    parser.add_argument("--rate-hz", type=float, default=60.0, help="each lockstep client's loop rate")
    options = parser.parse_args()
    results = compare(options.rooms, options.seconds, options.client_procs, options.rate_hz)
    print(table(results, options.seconds))
