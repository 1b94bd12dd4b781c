"""K python-socketio clients that play upstream Interactive Gym like browsers do.

Runs inside the upstream venv (needs ``python-socketio[asyncio_client]``):
``~/.cache/igym-upstream/venv/bin/python tests/bench/upstream/load_client.py --port P
--clients K --seconds S``. Bounded: it stops by itself after the warm-up plus ``S``.

Each client does what upstream's page script (``static/js/index.js`` at git HEAD; the
0.1.1 wheel ships no JS) does, minus the drawing:

1. ``GET /<subject_id>`` (the server builds that participant's stager),
2. Socket.IO connect (WebSocket transport), ``register_subject{subject_id}``,
3. on ``activate_scene`` of the StartScene: ``advance_scene{session_id}`` (the Continue
   button); on ``activate_scene`` of the GymScene: ``join_game{session_id}`` (the Start
   button — a browser waits for ~6 pings before enabling it; these clients do not),
4. answers **every** ``request_pressed_keys`` with ``send_pressed_keys{pressed_keys,
   session_id}`` (the held keys; upstream broadcasts that request to every connected
   client on every tick of every game), changes its held keys every 0.2–0.6 s like igym's
   load client, ``ping{ping_ms, document_in_focus}`` once a second,
5. on ``game_reset`` waits ``timeout`` ms and sends ``reset_complete{room, session_id}``.

Hot path: frames (``environment_state``) and ``request_pressed_keys`` are handled on the
raw WebSocket text before python-socketio would decode them — frames are counted and
time-stamped, never parsed (igym's load client does not decode frames either), and the
key reply is the exact text python-socketio would send. Everything else goes through
python-socketio normally. Without this, one asyncio process cannot keep up with the
request/reply traffic upstream generates (K × rooms × 30 messages per second each way).

Measured over the window after every room has started (plus 1 s): bytes received per
client (frames, and everything), ``environment_state`` inter-arrival intervals per client
(upstream has no tick-lateness counter; jitter = |interval − 1/30 s|), frames per second,
median ping round trip, this process's CPU. Prints ``window-start`` and ``window-end``
lines when the window opens/closes (the parent samples server CPU then) and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time

import aiohttp
import socketio

FRAME = '42["environment_state"'
REQUEST = '42["request_pressed_keys"'
KEYS = ("ArrowLeft", "ArrowRight", "ArrowUp")


class Player:
    def __init__(self, base: str, index: int, stats: dict) -> None:
        self.base, self.subject = base, f"bench-{index}-{random.randrange(10**9)}"
        self.rng = random.Random(index)
        self.stats = stats
        self.session_id = None
        self.started = asyncio.Event()
        self.held: list[str] = []
        self.reply = self._encode_reply()
        self.next_change = 0.0
        self.last_frame = None
        self.counting = False
        self.frames = self.frame_bytes = self.all_bytes = self.requests = 0
        self.intervals: list[float] = []
        self.rtts: list[float] = []
        self.ping_sent = 0.0
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("connect", self.on_connect)
        self.sio.on("server_session_id", self.on_session)
        self.sio.on("activate_scene", self.on_activate)
        self.sio.on("start_game", self.on_start)
        self.sio.on("game_reset", self.on_reset)
        self.sio.on("pong", self.on_pong)
        self.sio.on("end_game", self.on_end)

    def _encode_reply(self) -> str:
        return "42" + json.dumps(["send_pressed_keys", {"pressed_keys": self.held, "session_id": self.session_id}],
                                 separators=(",", ":"))

    async def on_connect(self):
        await self.sio.emit("register_subject", {"subject_id": self.subject})

    async def on_session(self, data):
        self.session_id = data["session_id"]
        self.reply = self._encode_reply()

    async def on_activate(self, data):
        kind = data.get("scene_type")
        if kind == "StartScene":
            await self.sio.emit("advance_scene", {"session_id": self.session_id})
        elif kind == "GymScene":
            await self.sio.emit("join_game", {"session_id": self.session_id})

    async def on_start(self, data):
        self.started.set()

    async def on_reset(self, data):
        self.stats["resets"] += 1
        await asyncio.sleep(data.get("timeout", 3000) / 1000)
        await self.sio.emit("reset_complete", {"room": data.get("room"), "session_id": self.session_id})

    async def on_pong(self, data):
        self.rtts.append(time.monotonic() - self.ping_sent)

    async def on_end(self, data=None):
        self.stats["ended"] += 1

    async def ping_loop(self, stop_at: float):
        while time.monotonic() < stop_at and self.sio.connected:
            self.ping_sent = time.monotonic()
            median = round(1000 * statistics.median(self.rtts[-20:])) if self.rtts else None
            await self.sio.emit("ping", {"ping_ms": median, "document_in_focus": True})
            await asyncio.sleep(1.0)

    def hook(self) -> None:
        """Wrap the WebSocket's receive: count everything, take frames and key requests."""
        ws = self.sio.eio.ws
        receive = ws.receive

        async def counted_receive(*args, **kwargs):
            while True:
                message = await receive(*args, **kwargs)
                data = message.data
                if isinstance(data, (str, bytes)):
                    size = len(data.encode()) if isinstance(data, str) else len(data)
                    if self.counting:
                        self.all_bytes += size
                    if isinstance(data, str):
                        if data.startswith(FRAME):
                            now = time.monotonic()
                            if self.counting:
                                self.frames += 1
                                self.frame_bytes += size
                                if self.last_frame is not None:
                                    self.intervals.append(now - self.last_frame)
                            self.last_frame = now
                            if now >= self.next_change:
                                self.next_change = now + self.rng.uniform(0.2, 0.6)
                                self.held = sorted(self.rng.sample(KEYS, self.rng.choice((0, 1, 2))))
                                self.reply = self._encode_reply()
                            continue
                        if data.startswith(REQUEST):
                            if self.counting:
                                self.requests += 1
                            if self.stats["replies"]:
                                await ws.send_str(self.reply)
                            continue
                return message

        ws.receive = counted_receive

    async def run(self, stop_at: float) -> None:
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{self.base}/{self.subject}") as response:
                    await response.read()
            await self.sio.connect(self.base, transports=["websocket"], wait_timeout=10)
            self.hook()
            pinger = asyncio.create_task(self.ping_loop(stop_at))
            await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
            pinger.cancel()
        except Exception as error:  # noqa: BLE001 - reported, not raised: the run must finish
            self.stats["errors"].append(f"{type(error).__name__}: {error}")
        finally:
            try:
                await asyncio.wait_for(self.sio.disconnect(), 2)
            except Exception:  # noqa: BLE001
                pass


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(port: int, clients: int, seconds: float, start_wait: float, fps: float, replies: bool = True) -> dict:
    base = f"http://127.0.0.1:{port}"
    stats = {"errors": [], "resets": 0, "ended": 0, "replies": replies}
    players = [Player(base, i, stats) for i in range(clients)]
    stop_at = time.monotonic() + start_wait + 1.0 + seconds + 5.0  # hard bound; the window ends earlier
    tasks = [asyncio.create_task(p.run(stop_at)) for p in players]
    began = time.monotonic()
    deadline = began + start_wait
    while time.monotonic() < deadline and not all(p.started.is_set() for p in players) \
            and not all(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    started = sum(p.started.is_set() for p in players)
    join_s = time.monotonic() - began
    await asyncio.sleep(1.0)
    for p in players:
        p.counting, p.last_frame = True, None
    cpu0, t0 = os.times(), time.monotonic()
    print("window-start", flush=True)
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - t0
    cpu1 = os.times()
    for p in players:
        p.counting = False
    print("window-end", flush=True)
    for p in players:  # stop early: the window is over
        try:
            await asyncio.wait_for(p.sio.disconnect(), 2)
        except Exception:  # noqa: BLE001
            pass
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    intervals = [i for p in players for i in p.intervals]
    period = 1 / fps
    jitter = [abs(i - period) for i in intervals]
    rtts = [r for p in players for r in p.rtts]
    return {
        "clients": clients, "rooms_started": started // 2, "clients_started": started, "join_s": join_s,
        "window_s": elapsed, "frames_per_s_per_client": sum(p.frames for p in players) / elapsed / clients,
        "frame_bytes_per_s_per_client": sum(p.frame_bytes for p in players) / elapsed / clients,
        "all_bytes_per_s_per_client": sum(p.all_bytes for p in players) / elapsed / clients,
        "key_requests_per_s_per_client": sum(p.requests for p in players) / elapsed / clients,
        "mean_frame_bytes": sum(p.frame_bytes for p in players) / max(1, sum(p.frames for p in players)),
        "interval_p50_ms": 1000 * _pct(intervals, 0.5) if intervals else None,
        "interval_p99_ms": 1000 * _pct(intervals, 0.99) if intervals else None,
        "jitter_p50_ms": 1000 * _pct(jitter, 0.5) if jitter else None,
        "jitter_p99_ms": 1000 * _pct(jitter, 0.99) if jitter else None,
        "ping_median_ms": 1000 * statistics.median(rtts) if rtts else None,
        "client_cpu": (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / elapsed,
        "resets": stats["resets"], "ended": stats["ended"], "errors": stats["errors"][:5],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--start-wait", type=float, default=15.0, help="max seconds for every room to start")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--no-replies", action="store_true",
                        help="diagnostic only: ignore request_pressed_keys (a browser answers every one)")
    options = parser.parse_args()
    result = asyncio.run(main(options.port, options.clients, options.seconds, options.start_wait, options.fps,
                              replies=not options.no_replies))
    print(json.dumps(result), flush=True)
    sys.exit(0)
