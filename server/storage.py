"""The server's one way to its data: every sink call runs on the storage thread.

Rooms and flows call :meth:`Storage.write` (a list append; it never blocks) and await
:meth:`Storage.commit` or :meth:`Storage.call`. One thread of its own does the rest, in
order: it writes the queued records, runs the queued calls (condition counts, ownership
checks, an uploaded batch), commits at least every ``commit_every_s`` and at once when an
episode, a visit or a participant's status ends. A slow disk — or a remote database —
therefore never stalls the event loop that ticks every room, and a read always sees every
record written before it was asked for.

Every record except steps is also shown to ``watch`` (when set) as it is queued: the
experimenter's dashboard learns connects, dropouts, lobby exits and outcomes from the
same records the data file gets, without a second path through the server.

The sink behind it is any object with ``write(records)``, ``commit()`` and ``close()``
(:class:`igym.sqlite_sink.SqliteSink`); calls run one at a time, so the sink needs no
locking of its own for the server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import deque
from functools import partial
from typing import Any
from collections.abc import Callable, Iterable

from igym.records import Record, StepRecord, ends_something

log = logging.getLogger("igym.server")


class Storage:
    """Runs a sink on a thread of its own; the event loop only queues and awaits."""

    def __init__(self, sink: Any, *, commit_every_s: float = 1.0) -> None:
        self.sink = sink
        self.commit_every_s = commit_every_s
        self.records_written = 0
        self.last_commit = time.time()  # wall clock of the newest commit (a health fact for /status)
        self.watch: Callable[[Record], None] | None = None  # sees every record but steps (the dashboard)
        self._records: list[Record] = []
        self._calls: deque[tuple[Callable[[], Any], concurrent.futures.Future[Any]]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="igym-storage", daemon=True)
        self._thread.start()

    def write(self, records: Iterable[Record]) -> None:
        """Queue records; an end (episode, visit, status) wakes the thread to commit now."""
        urgent = False
        others: list[Record] = []
        with self._lock:
            queued = self._records
            for record in records:
                queued.append(record)
                if type(record) is not StepRecord:
                    others.append(record)
                    if ends_something(record):
                        urgent = True
        if urgent:
            self._wake.set()
        watch = self.watch
        if watch is not None:
            for record in others:
                watch(record)

    def call(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``function(*args)`` on the storage thread, after every record queued so far."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            self._calls.append((partial(function, *args), future))
        self._wake.set()
        return asyncio.wrap_future(future)

    async def commit(self) -> None:
        """Return once everything queued before this call is committed."""
        await self.call(self.sink.commit)

    def close(self) -> None:
        """Write and commit what is queued, then close the sink (blocks; for shutdown)."""
        if not self._stopping:
            self._stopping = True
            self._wake.set()
            self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # --- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        last_commit = time.monotonic()
        while True:
            self._wake.wait(self.commit_every_s)
            self._wake.clear()
            with self._lock:
                records, self._records = self._records, []
                calls = list(self._calls)
                self._calls.clear()
            if records:
                self._write(records)
            for function, future in calls:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(function())
                    except BaseException as error:  # noqa: BLE001 — the caller gets it
                        future.set_exception(error)
            if records or calls or time.monotonic() - last_commit >= self.commit_every_s:
                self._commit()
                last_commit = time.monotonic()
            if self._stopping:
                with self._lock:
                    idle = not self._records and not self._calls
                if idle:
                    break
        try:
            self.sink.close()
        except Exception:  # shutting down: say it, nothing else to do
            log.exception("closing the data sink failed")

    def _write(self, records: list[Record]) -> None:
        try:
            self.sink.write(records)
            self.records_written += len(records)
        except Exception:  # the thread must outlive any failure
            log.exception("writing %d records failed", len(records))

    def _commit(self) -> None:
        try:
            self.sink.commit()
            self.last_commit = time.time()
        except Exception:  # the next round retries
            log.exception("committing the data failed; retrying")
