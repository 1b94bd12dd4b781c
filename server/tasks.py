"""Owned background tasks: nothing the server starts can fail silently or outlive it.

``asyncio.create_task`` alone keeps only a weak reference and reports a failure as "Task
exception was never retrieved" at exit, if ever. Every task the server starts goes
through a :class:`Tasks` instead: it is kept until it ends, a failure is logged once with
what the task was doing (which participant, which room) and handed to its owner's
``on_error`` (a room ends itself with outcome ``error``; the rest of the server goes on),
and :meth:`Tasks.cancel_all` stops them all when the server shuts down.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any
from collections.abc import Callable, Coroutine

log = logging.getLogger("igym.server")


class Tasks:
    """A set of running tasks, each with a description and an error handler."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any], what: str,
              on_error: Callable[[BaseException], None] | None = None) -> asyncio.Task[Any]:
        """Run ``coroutine`` as a task that is kept, logged if it fails, and cancelled at shutdown."""
        task = asyncio.get_running_loop().create_task(coroutine, name=what)
        self._running.add(task)
        task.add_done_callback(partial(self._ended, what, on_error))
        return task

    def _ended(self, what: str, on_error: Callable[[BaseException], None] | None, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            return
        log.error("%s failed: %s: %s", what, type(error).__name__, error, exc_info=error)
        if on_error is not None:
            try:
                on_error(error)
            except Exception:  # a failing error handler must not hide the first failure
                log.exception("%s: handling its failure failed too", what)

    def __len__(self) -> int:
        return len(self._running)

    async def cancel_all(self) -> None:
        """Cancel every task and wait until they have all ended."""
        while self._running:
            running = list(self._running)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            self._running.difference_update(running)
