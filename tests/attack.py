"""Hostile clients for the security tests, run as their own process (as real attackers are):

    python -m tests.attack bombs URL --connections 3 --seconds 5          # 1 MiB msgpack bombs before hello
    python -m tests.attack upload-bombs URL --connections 3 --seconds 5   # the same after an upload hello
    python -m tests.attack hello-drop URL --count 10000                   # hello, then gone
    python -m tests.attack flood URL --kind focus --count 30000           # one valid message, very often

Each prints one JSON line of what it did (connections made, messages sent, how they were
closed), so a test can check the server's side of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter

import msgpack
import websockets
from websockets.asyncio.client import connect

from igym import wire

BOMB = msgpack.packb([[] for _ in range((1 << 20) - 8)])  # a 1 MiB array of empty arrays


async def _bombs(url: str, connections: int, seconds: float, upload: bool) -> dict:
    closes: Counter[str] = Counter()
    sent = 0
    deadline = time.monotonic() + seconds

    async def one(index: int) -> None:
        nonlocal sent
        while time.monotonic() < deadline:
            try:
                async with connect(url, max_size=None, compression=None, ping_interval=None,
                                   open_timeout=5) as ws:
                    if upload:
                        await ws.send(wire.pack({"t": "hello", "v": wire.PROTOCOL_VERSION,
                                                 "pid": f"bomber{index}-{sent}", "mode": "upload"}))
                        await ws.recv()
                    while time.monotonic() < deadline:
                        await ws.send(BOMB)
                        sent += 1
            except websockets.ConnectionClosed as closed:
                closes[f"{closed.rcvd.code if closed.rcvd else None}"] += 1
            except OSError:
                closes["refused"] += 1
                await asyncio.sleep(0.05)
            except Exception as error:  # noqa: BLE001 — the client library tripping over a closed socket
                closes[type(error).__name__] += 1
                await asyncio.sleep(0.05)

    await asyncio.gather(*(one(i) for i in range(connections)))
    return {"sent": sent, "closes": dict(closes)}


async def _hello_drop(url: str, count: int, prefix: str, parallel: int = 20) -> dict:
    done = 0
    errors: Counter[str] = Counter()

    async def worker(start: int) -> None:
        nonlocal done
        for index in range(start, count, parallel):
            try:
                ws = await connect(url, compression=None, ping_interval=None, open_timeout=10)
                await ws.send(wire.pack({"t": "hello", "v": wire.PROTOCOL_VERSION, "pid": f"{prefix}{index}"}))
                await ws.recv()  # welcome: the server has made the participant
                ws.transport.abort()  # gone, without a close frame
                done += 1
            except (OSError, websockets.WebSocketException) as error:
                errors[type(error).__name__] += 1

    await asyncio.gather(*(worker(i) for i in range(parallel)))
    return {"done": done, "errors": dict(errors)}


async def _flood(url: str, kind: str, count: int) -> dict:
    message = {"focus": {"t": "focus", "f": 1}, "pong": {"t": "pong", "n": 1},
               "key": {"t": "key", "seat": "agent_left", "k": "left", "d": 1}}[kind]
    data = wire.pack(message)
    sent = 0
    code = reason = None
    try:
        async with connect(url, compression=None, ping_interval=None) as ws:
            await ws.send(wire.pack({"t": "hello", "v": wire.PROTOCOL_VERSION, "pid": f"flooder-{kind}"}))
            await ws.recv()
            try:
                for _ in range(count):
                    await ws.send(data)
                    sent += 1
                await asyncio.wait_for(ws.wait_closed(), 10)
            except (TimeoutError, websockets.ConnectionClosed):
                pass
            code, reason = ws.close_code, ws.close_reason
    except websockets.ConnectionClosed as closed:
        code, reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, None)
    return {"sent": sent, "code": code, "reason": reason}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.attack")
    parser.add_argument("attack", choices=("bombs", "upload-bombs", "hello-drop", "flood"))
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--kind", default="focus")
    parser.add_argument("--prefix", default="ghost", help="hello-drop: participant ids are PREFIX0, PREFIX1, …")
    args = parser.parse_args()
    if args.attack in ("bombs", "upload-bombs"):
        result = asyncio.run(_bombs(args.url, args.connections, args.seconds, args.attack == "upload-bombs"))
    elif args.attack == "hello-drop":
        result = asyncio.run(_hello_drop(args.url, args.count, args.prefix))
    else:
        result = asyncio.run(_flood(args.url, args.kind, args.count))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
