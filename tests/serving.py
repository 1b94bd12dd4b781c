"""Starting and stopping the real igym server inside a test's event loop."""

import asyncio
import sys
import time
from pathlib import Path

import websockets
from websockets.asyncio.client import connect

from igym import wire
from igym.loader import import_file
from igym.server.app import IgymServer, serve_forever
from igym.sqlite_sink import SqliteSink

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "tests" / "experiments" / "net_slime.py"


def load(monkeypatch, experiment=EXPERIMENT, prefix="NET", **settings):
    """The test experiment file, re-read with ``PREFIX_KEY=value`` settings in the environment."""
    for key, value in settings.items():
        monkeypatch.setenv(f"{prefix}_{key.upper()}", str(value))
    for name in [n for n in sys.modules if n.endswith(Path(experiment).stem)]:
        del sys.modules[name]  # re-read the rules from the environment
    return import_file(experiment).experiment


async def start(experiment, path, **options):
    """A server for ``experiment`` writing ``path``, on a free port of 127.0.0.1."""
    server = IgymServer(experiment, SqliteSink(path), "secret", **options)
    ready = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_forever(server, "127.0.0.1", 0, ready))
    ws_server = await asyncio.wait_for(ready, 20)
    port = ws_server.sockets[0].getsockname()[1]
    return server, task, f"ws://127.0.0.1:{port}", port


async def stop(server, task):
    """Stop serving: every task of the server ends and its data file is closed, all written."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


class RawClient:
    """A hand-driven client: hello, then whatever the test sends."""

    def __init__(self, url, pid, token=None):
        self.url, self.pid, self.token = url, pid, token
        self.messages = []

    async def open(self):
        self.connection = await connect(self.url, compression=None, ping_interval=None)
        hello = {"t": "hello", "v": wire.PROTOCOL_VERSION, "pid": self.pid}
        if self.token:
            hello["token"] = self.token
        await self.connection.send(wire.pack(hello))
        self.reader = asyncio.create_task(self._read())
        return self

    async def _read(self):
        try:
            async for data in self.connection:
                message = wire.unpack(data)
                self.messages.append(message)
                if message["t"] == "welcome":
                    self.token = message["token"]
        except websockets.ConnectionClosed:
            pass

    def seen(self, kind):
        return [m for m in self.messages if m["t"] == kind]

    async def wait_for(self, kind, timeout=20, count=1):
        deadline = time.monotonic() + timeout
        while len(self.seen(kind)) < count:
            assert time.monotonic() < deadline, f"{self.pid}: no {kind} ({[m['t'] for m in self.messages][-5:]})"
            await asyncio.sleep(0.02)
        return self.seen(kind)[count - 1]

    async def abort(self):
        """Drop the connection the way a killed client or a closed laptop does: no close frame."""
        self.connection.transport.abort()
        await self.reader

    async def until(self, condition, timeout=20):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"{self.pid}: waited in vain ({[m['t'] for m in self.messages][-5:]})"
            await asyncio.sleep(0.02)
