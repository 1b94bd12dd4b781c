"""The experimenter's dashboard: who is where in the study, live, in a browser.

``python -m igym.server`` serves it at ``/`` (and ``/dashboard``) behind the admin token:
a login form trades the token for a session cookie (:mod:`.auth`), the page
(``static/``) opens the WebSocket ``/dashboard/live`` and gets the study once and then
what changed every second (:mod:`.live`). What it shows is one plain-JSON snapshot
(:mod:`.snapshot`: participants by status and scene, conditions, completion codes,
lobbies, rooms, tick lateness, the data written) plus the last notable events
(:mod:`.activity`) and per-second chart points (:mod:`.history`).

:class:`Dashboard` ties these to one :class:`~igym.server.app.IgymServer`; the server
only delegates to it (plain HTTP requests, wrong ``/status`` tokens, the live path, rejected
messages) and runs :meth:`Dashboard.run`. Several workers: each one's
:meth:`Dashboard.snapshot` is plain JSON, and :func:`.snapshot.merge` makes the whole
study's from them for the same page.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from igym.records import EventRecord

from .activity import Activity
from .auth import AdminSessions
from .history import History
from .live import LiveFeed
from .pages import Pages
from .snapshot import merge, snapshot
from .throttle import TokenBucket

if TYPE_CHECKING:
    from ..app import IgymServer

log = logging.getLogger("igym.server")
LIVE_PATH = "/dashboard/live"
SERVER_EVENTS = ""  # the participant_id of the server's own events (no participant id is empty)
__all__ = ["Dashboard", "LIVE_PATH", "SERVER_EVENTS"]


class Dashboard:
    """One server's dashboard: its sessions, pages, live feed and the records it watches."""

    def __init__(self, server: IgymServer) -> None:
        self.server = server
        self.sessions = AdminSessions(server.admin_token)
        self.activity = Activity()
        self.history = History(server.stats, server.storage)
        self.feed = LiveFeed()
        self.pages = Pages(self.sessions, self.snapshot, self.record, server.trusted_proxies)
        self.clock_offset = time.time() - time.monotonic()
        self.worker = {"id": f"{socket.gethostname()}:{os.getpid()}", "started": round(time.time(), 1)}
        self.data_bytes: int | None = None
        self.overview: dict[str, Any] | None = None  # the whole study as the data has it (every 2 s)
        self.others: list[dict[str, Any]] = []  # the other workers' views, when the study has many
        self._failed = False
        server.storage.watch = self.activity.observe

    # --- what the server delegates ------------------------------------------------------------

    async def route(self, connection: ServerConnection, request: Request) -> Response | None:
        """A plain HTTP request that is not ``/status`` (see :mod:`.pages`)."""
        return await self.pages.route(connection, request)

    async def wrong_token(self, connection: ServerConnection, request: Request, reason: str) -> Response:
        """``/status`` with a wrong token: throttled like the login (see :mod:`.throttle`)."""
        return await self.pages.wrong_token(connection, request, reason)

    def record(self, kind: str, data: dict[str, Any]) -> None:
        """An event of the dashboard's door (throttled logins) into the study's data, as the
        server's own (``participant_id`` empty): the experimenter finds it with the rest."""
        self.server.storage.write([EventRecord(SERVER_EVENTS, time.monotonic_ns(), kind, data)])

    def rejected(self, participant: str | None, reason: str) -> None:
        """The server closed a connection for breaking the protocol."""
        self.activity.rejected(participant, reason)

    async def live(self, connection: ServerConnection) -> None:
        """The WebSocket at ``/dashboard/live``: only with a session cookie, from this origin."""
        request = connection.request
        assert request is not None
        if self.sessions.session(request.headers) is None:
            await connection.close(CloseCode.POLICY_VIOLATION, "log in first")
            return
        if not same_origin(request):
            await connection.close(CloseCode.POLICY_VIOLATION, "the page is not this server's")
            return
        await self.feed.serve(connection, self.snapshot, self.history.series(), TokenBucket())

    def snapshot(self) -> dict[str, Any]:
        """The study now (plain JSON; see :mod:`.snapshot`): this worker's view, merged with the
        other workers' latest when the study is served by many (:meth:`share`)."""
        own = self.own_snapshot()
        return merge([own, *self.others]) if self.others else own

    def own_snapshot(self) -> dict[str, Any]:
        """This worker's view of the study alone."""
        return snapshot(self.server, self.activity, self.history, worker=self.worker,
                        clock_offset=self.clock_offset, data_bytes=self.data_bytes, overview=self.overview)

    async def share(self) -> None:
        """One worker of many: publish this worker's view and take the others' (once a second)."""
        cluster = self.server.cluster
        if cluster is not None:
            self.others = await cluster.share_view(self.own_snapshot())

    async def refresh(self) -> None:
        """Read the whole study's counts from the data (on the storage thread)."""
        overview = getattr(self.server.sink, "study_overview", None)
        if overview is not None:
            self.overview = await self.server.storage.call(overview, self.server.experiment.id)

    # --- once a second ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Take a chart point every second; with pages open, send them what changed."""
        path = getattr(self.server.sink, "path", None)
        next_at = time.monotonic() + 1.0
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += 1.0
            try:
                if path is not None:
                    self.data_bytes = await asyncio.to_thread(data_size, Path(path))
                if self.feed.viewers or self.overview is None or self.server.cluster is not None:
                    await self.refresh()
                await self.share()
                connected = sum(p.present for p in list(self.server.participants.values()))
                point = self.history.sample(time.time(), connected)
                if self.feed.viewers:
                    self.feed.publish(self.snapshot(), point)
            except Exception:  # the dashboard must never take the study down
                if not self._failed:
                    log.exception("dashboard: the live update failed (reported once; it keeps trying)")
                self._failed = True
            if time.monotonic() > next_at + 5:  # the loop was stalled: do not try to catch up
                next_at = time.monotonic() + 1.0


def data_size(path: Path) -> int | None:
    """Bytes of an SQLite database with its write-ahead log (None if it does not exist yet)."""
    total = None
    for part in (path, path.with_name(path.name + "-wal")):
        try:
            total = (total or 0) + os.stat(part).st_size
        except OSError:
            pass
    return total


def same_origin(request: Request) -> bool:
    """Browsers send ``Origin`` with every WebSocket: it must be this server (or what a reverse
    proxy in front of it calls itself), so no other site's page can read the feed."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (a script with the cookie): SameSite does not apply to it anyway
    host = origin.partition("://")[2].rstrip("/")
    return host in {request.headers.get("Host"), request.headers.get("X-Forwarded-Host")}
