"""The web page's data sink: records go to the server in acknowledged batches.

:class:`UploadSink` stands in for :class:`igym.sqlite_sink.SqliteSink` on a solo web page (the
study runs in the browser; the server was started with ``--collect``). It has the methods
the study driver calls — ``write``, ``commit``, ``flush``, ``close``,
``participant_status``, ``condition_counts`` — and never blocks a frame: ``write`` only
appends; sending runs in an asyncio task.

The guarantee is *every record stored once*:

1. Records are cut into batches: at most ``batch_s`` (1 s) of records, and at once at
   every episode end, visit end and participant status change (what ``SqliteSink``
   commits at once) and at every ``commit``/``flush``.
2. Each batch gets a unique id and is written to ``localStorage`` (records in
   :func:`igym.records.to_wire` form, as JSON) *before* it is sent.
3. It is sent as ``{t: "records", b, r}`` after ``{t: "hello", v, pid, mode: "upload",
   token?}``, and removed from ``localStorage`` only when the server's
   ``{t: "stored", b}`` arrives — which the server sends after committing it to disk.
4. On every (re)connect, and after a reload (a new ``UploadSink`` with the same
   participant and experiment finds them in ``localStorage``), every unacknowledged batch is
   sent again, in order; the server stores a batch id once and acknowledges repeats.
5. A lost connection is retried by :class:`igym.client_protocol.ClientProtocol`'s policy
   (0.5 s doubling to 5 s, jittered), like every igym client. The reconnect token from
   ``welcome`` is kept in ``localStorage`` too, so a
   reloaded page is let back in as the same participant.

What can still be lost: records written in the last ``batch_s`` before the tab is closed
without a ``flush()`` — call ``sink.flush()`` from the page's ``pagehide`` handler (the
page glue in ``tests/web/harness.py`` shows how) — and everything if the participant
clears site data or the browser's storage quota (~5 MB) is full while offline (then the
batch is kept in memory only; ``storage_errors`` counts it).

``participant_status(pid)`` answers from the run saved in ``localStorage`` by
:func:`save_run` (``started``/``completed``/...) or ``"completed"`` after the server
refused the participant as already done; otherwise None (unknown here: the server knows).
``condition_counts(experiment)`` answers from ``welcome["conditions"]`` if the server sends
it, else ``{}`` — so a web page draws its condition from its own (empty) counts unless the
URL gives ``condition``; balance across participants by assigning conditions in the
recruiting link, or by a server that sends its counts.

:func:`save_run`/:func:`load_run` keep a :class:`~igym.study.StudyRun`'s snapshot in
``localStorage`` so a reloaded page resumes at the open scene (same visit id, order,
condition): call ``save_run(run)`` after every ``next_visit``/``finish_visit``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any
from collections.abc import Callable, Iterable

from . import web
from .client_protocol import ClientProtocol
from .records import Record, StepRecord, ends_something, to_wire

log = logging.getLogger("igym.upload")

MAX_BATCH_RECORDS = 2000  # the server takes up to 5000 records and 1 MiB per batch
WELCOME_TIMEOUT_S = 15.0


def _key_prefix(experiment_id: str, participant_id: str) -> str:
    return f"igym:{experiment_id}:{participant_id}:"


class UploadSink:
    """Sends records to ``server_url`` (``ws://`` or ``wss://``) in acknowledged batches."""

    def __init__(self, server_url: str, participant_id: str, experiment_id: str, *,
                 storage: Any = None, batch_s: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 socket: Callable[[], Any] | None = None) -> None:
        self.participant_id = participant_id
        self.experiment_id = experiment_id
        self.storage = web.local_storage if storage is None else storage
        self.batch_s = batch_s
        self.clock = clock
        self._socket_factory = socket or web.WebSocket
        self.prefix = _key_prefix(experiment_id, participant_id)
        self._pending: list[Record] = []
        self._pending_since = 0.0
        self._cut_now = False
        self._seq = int(self.storage.get(self.prefix + "seq", 0))
        # Unacknowledged batches: storage key → message, in the order they were cut.
        self._unacked: dict[str, dict[str, Any]] = {}
        for key in self.storage.keys(self.prefix + "b:"):
            message = self.storage.get(key)
            if isinstance(message, dict) and "b" in message and "r" in message:
                self._unacked[key] = message
        self._by_id = {message["b"]: key for key, message in self._unacked.items()}
        self.resumed_batches = len(self._unacked)
        self.protocol = ClientProtocol(participant_id, server_url, token=self.storage.get(self.prefix + "token"),
                                       mode="upload")
        self.connected = False
        self.acked = 0
        self.sent = 0
        self.storage_errors = 0
        self.last_error: str | None = None
        self.refused: str | None = None  # the server will not take this participant (reason)
        self.took_part = False  # … because this participant id already took part
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._ws: Any = None
        self._ensure_task()

    @property
    def token(self) -> str | None:
        return self.protocol.token

    @property
    def welcome(self) -> dict[str, Any] | None:
        return self.protocol.welcome

    @property
    def connections(self) -> int:
        """Connections that got as far as the server's welcome."""
        return self.protocol.connections

    # --- what the study driver calls --------------------------------------------------

    def write(self, records: Iterable[Record]) -> None:
        """Take records; they leave in the next batch (at most ``batch_s`` later)."""
        pending = self._pending
        for record in records:
            if not pending:
                self._pending_since = self.clock()
            pending.append(record)
            if type(record) is not StepRecord and ends_something(record):
                self._cut_now = True
        if pending and (self._cut_now or self.clock() - self._pending_since >= self.batch_s):
            self._cut()
        self._ensure_task()

    def flush(self) -> None:
        """Cut a batch of what is pending now: it is in ``localStorage`` when this returns."""
        self._cut()
        self._ensure_task()

    def commit(self) -> None:
        """As ``flush`` (the batch is sent at once; the server's ack means it is on disk)."""
        self.flush()

    def close(self) -> None:
        """Flush; the sender stops once every batch is acknowledged (what is left waits in
        ``localStorage`` for the next page load). ``await aclose()`` waits for that."""
        self.flush()
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is None or self._task.done():
            self._drop_socket()

    async def aclose(self, timeout: float = 10.0) -> bool:
        """Close and wait up to ``timeout`` s for the acks; True if nothing is left unsent."""
        self.close()
        done = await self.drain(timeout)
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._drop_socket()
        return done

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every batch cut so far is acknowledged (True) or ``timeout`` passes."""
        self.flush()
        deadline = time.monotonic() + timeout
        while self._unacked:
            if time.monotonic() >= deadline or self.refused:
                return False
            await asyncio.sleep(0.02)
        return True

    @property
    def unacked(self) -> int:
        """Batches cut but not yet acknowledged by the server."""
        return len(self._unacked)

    def participant_status(self, participant_id: str) -> str | None:
        """What this page knows of the participant's status (see the module docstring)."""
        if participant_id == self.participant_id and self.took_part:
            return "completed"
        saved = self.storage.get(_key_prefix(self.experiment_id, participant_id) + "run")
        return saved.get("status") if isinstance(saved, dict) else None

    def condition_counts(self, experiment: str) -> dict[str, int]:
        """The server's counts if its ``welcome`` carried them, else ``{}``."""
        counts = (self.welcome or {}).get("conditions")
        return dict(counts) if isinstance(counts, dict) and experiment == self.experiment_id else {}

    # --- batches ----------------------------------------------------------------------

    def _cut(self) -> None:
        self._cut_now = False
        records, self._pending = self._pending, []
        for start in range(0, len(records), MAX_BATCH_RECORDS):
            chunk = records[start:start + MAX_BATCH_RECORDS]
            self._seq += 1
            batch_id = f"{uuid.uuid4().hex}-{self._seq}"
            key = f"{self.prefix}b:{self._seq:010d}"
            message = {"t": "records", "b": batch_id, "r": [to_wire(record) for record in chunk]}
            try:
                self.storage.set(key, message)  # saved before it is ever sent
                self.storage.set(self.prefix + "seq", self._seq)
            except OSError as error:
                self.storage_errors += 1
                log.warning("batch %s kept in memory only: %s", batch_id, error)
            self._unacked[key] = message
            self._by_id[batch_id] = key
        if records and self._wake is not None:
            self._wake.set()

    def _acknowledged(self, batch_id: str) -> None:
        key = self._by_id.pop(batch_id, None)
        if key is None:
            return
        self._unacked.pop(key, None)
        self.storage.remove(key)
        self.acked += 1

    # --- the sender task --------------------------------------------------------------

    def _ensure_task(self) -> None:
        if self._task is not None and not self._task.done():
            return
        if self.refused:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: batches wait in storage; the first call inside the loop starts it
        if self._closing and not self._unacked:
            return
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._run())

    def _drop_socket(self) -> None:
        ws, self._ws = self._ws, None
        self.connected = False
        if ws is not None:
            ws.close()

    @property
    def server_url(self) -> str:
        """Where the batches go (the protocol's address: a cluster's worker may move it)."""
        return self.protocol.url

    @server_url.setter
    def server_url(self, url: str) -> None:
        """Send to ``url`` from the next connection on (a server moved; a test's network going away)."""
        self.protocol.url = self.protocol.home_url = url

    def disconnect(self) -> None:
        """Drop the connection now (as a network failure would); the sender reconnects."""
        self._drop_socket()

    async def _run(self) -> None:
        protocol = self.protocol
        while not (self._closing and not self._unacked) and not self.refused:
            code, reason = None, ""
            try:
                await self._session()
            except asyncio.CancelledError:
                self._drop_socket()
                raise
            except web.ConnectionClosed as closed:
                code, reason = closed.code, closed.reason or ""
                self.last_error = str(closed)
            except Exception as error:  # noqa: BLE001 — keep trying whatever the network does
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("upload connection failed: %s", self.last_error)
            self._drop_socket()
            ended = protocol.closed(code, reason)
            if ended.final and code is not None:
                # The server refused us for good (already took part, protocol, version).
                self.refused, self.took_part = ended.reason or str(code), ended.took_part
                log.error("upload refused by the server: %s", self.refused)
            if self.refused or (self._closing and not self._unacked):
                break
            delay = protocol.retry_delay()
            if delay is None:
                break
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        """One connection: hello, welcome, resend what is unacknowledged, then send as cut."""
        ws = self._socket_factory()
        self._ws = ws
        await ws.connect(self.protocol.url)
        await ws.send(web.pack(self.protocol.hello()))
        welcome = self.protocol.receive(web.unpack(await asyncio.wait_for(ws.recv(), WELCOME_TIMEOUT_S)))
        if welcome is None or welcome.get("t") != "welcome":
            raise web.ConnectionClosed(None, f"expected welcome, got {str(welcome)[:80]}")
        if self.token:
            self.storage.set(self.prefix + "token", self.token)
        self.connected = True
        reader = asyncio.ensure_future(self._read(ws))
        sent: set[str] = set()
        wake = self._wake
        assert wake is not None
        try:
            while True:
                for message in list(self._unacked.values()):
                    if message["b"] not in sent:
                        if reader.done():
                            break
                        await ws.send(web.pack(message))
                        sent.add(message["b"])
                        self.sent += 1
                if self._closing and not self._unacked:
                    return
                wake.clear()
                waiter = asyncio.ensure_future(wake.wait())
                done, _ = await asyncio.wait([reader, waiter], timeout=self.batch_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                if not waiter.done():
                    waiter.cancel()
                if reader in done:
                    reader.result()  # raises why the connection ended
                    return
                if self._pending and self.clock() - self._pending_since >= self.batch_s:
                    self._cut()  # the page stopped writing: do not hold the last records
        finally:
            if not reader.done():
                reader.cancel()
            self.connected = False

    async def _read(self, ws: Any) -> None:
        while True:
            message = self.protocol.receive(web.unpack(await ws.recv()))
            for reply in self.protocol.take_outbox():  # pongs
                await ws.send(web.pack(reply))
            kind = message.get("t") if message is not None else None
            if message is not None and kind == "stored":
                self._acknowledged(str(message.get("b")))
            elif kind in ("error", "end"):
                log.warning("server says %s", message)


# --- resuming after a reload ------------------------------------------------------------

def save_run(run: Any, storage: Any = None) -> None:
    """Keep ``run.snapshot()`` in ``localStorage`` (call after every visit change)."""
    storage = web.local_storage if storage is None else storage
    storage.set(_key_prefix(run.experiment.id, run.participant_id) + "run", run.snapshot())


def load_run(experiment: Any, participant_id: str, storage: Any = None) -> Any:
    """The :class:`~igym.study.StudyRun` saved for this participant, restored; or None."""
    from .study import StudyRun
    storage = web.local_storage if storage is None else storage
    snapshot = storage.get(_key_prefix(experiment.id, participant_id) + "run")
    if not isinstance(snapshot, dict):
        return None
    return StudyRun.restore(experiment, snapshot)


