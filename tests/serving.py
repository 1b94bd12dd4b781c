"""Starting and stopping the real igym server inside a test's event loop."""

import asyncio

from igym.server.app import IgymServer, serve_forever
from igym.sqlite_sink import SqliteSink


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
