"""The dashboard's plain-HTTP side: the pages, the login and logout, the snapshot as JSON.

websockets answers plain HTTP through ``process_request`` (GET only), which hands every
request but ``/status`` to :meth:`Pages.route`:

========================  =====================================================================
``GET /``, ``/dashboard``  the dashboard with a live session cookie, else the login form
``GET /login``             ``Authorization: Bearer TOKEN`` → 200 and the session cookie; else 401
                           (throttled: later, or 429; see :mod:`.throttle`)
``GET /logout``            ends the session, clears the cookie, back to ``/``
``GET /dashboard/snapshot``  the snapshot as JSON (session cookie), else 401
``GET /dashboard/static/NAME``  the page's script, styles and the vendored uPlot (no data in them)
WebSocket upgrades         passed on (participants on any path, the live feed on ``/dashboard/live``)
========================  =====================================================================

Pages carry a strict Content-Security-Policy (scripts, styles and connections from this
origin only), are never cached, and may not be framed.
"""

from __future__ import annotations

import asyncio
import http
import json
from pathlib import Path
from typing import Any
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .auth import AdminSessions, bearer, clear_cookie, set_cookie
from .throttle import LoginThrottle, Network, client_address

STATIC_DIR = Path(__file__).resolve().parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8"}
STATIC_NAMES = ("dashboard.js", "login.js", "dashboard.css", "uPlot.iife.min.js", "uPlot.min.css", "LICENSE.uPlot.txt")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
COMMON = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def load_static() -> dict[str, bytes]:
    """The page files, read once at start (small; served from memory)."""
    names = ("index.html", "login.html", *STATIC_NAMES)
    return {name: (STATIC_DIR / name).read_bytes() for name in names}


def response(status: int, body: bytes, content_type: str, **headers: str) -> Response:
    values = Headers({"Content-Type": content_type, "Content-Length": str(len(body)), **COMMON})
    for name, value in headers.items():
        values[name.replace("_", "-")] = value
    return Response(status, http.HTTPStatus(status).phrase, values, body)


def is_upgrade(request: Request) -> bool:
    return any("websocket" in value.lower() for value in request.headers.get_all("Upgrade"))


def is_secure(connection: ServerConnection, request: Request) -> bool:
    """Came the request over TLS (here, or at a reverse proxy that says so)?"""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    transport = connection.transport
    return forwarded == "https" or (transport is not None and transport.get_extra_info("sslcontext") is not None)


class Pages:
    """Routes of the dashboard's HTTP side."""

    def __init__(self, sessions: AdminSessions, snapshot: Callable[[], dict[str, Any]],
                 record: Callable[[str, dict[str, Any]], None], trusted_proxies: tuple[Network, ...] = ()) -> None:
        self.sessions = sessions
        self.snapshot = snapshot
        self.record = record  # an event of the server's own into the study's data
        self.trusted_proxies = trusted_proxies
        self.throttle = LoginThrottle()
        self.files = load_static()

    async def route(self, connection: ServerConnection, request: Request) -> Response | None:
        if is_upgrade(request):
            return None  # a WebSocket: the server's handler decides by path
        path = request.path.partition("?")[0]
        logged_in = self.sessions.session(request.headers) is not None
        if path in ("/", "/dashboard", "/dashboard/"):
            return self._page("index.html" if logged_in else "login.html")
        if path == "/login":
            return await self._login(connection, request)
        if path == "/logout":
            self.sessions.logout(request.headers)
            return response(303, b"", "text/plain", Location="/", Cache_Control="no-store",
                            Set_Cookie=clear_cookie(is_secure(connection, request)))
        if path == "/dashboard/snapshot":
            if not logged_in:
                return self._unauthorized("log in at / first")
            body = json.dumps(self.snapshot()).encode()
            return response(200, body, "application/json", Cache_Control="no-store")
        if path.startswith("/dashboard/static/"):
            name = path.removeprefix("/dashboard/static/")
            if name in STATIC_NAMES:
                return response(200, self.files[name], TYPES[Path(name).suffix], Cache_Control="no-cache")
        return response(404, b"not found\n", TYPES[".txt"])

    def _page(self, name: str) -> Response:
        return response(200, self.files[name], TYPES[".html"], Cache_Control="no-store",
                        Content_Security_Policy=CSP)

    async def _login(self, connection: ServerConnection, request: Request) -> Response:
        """The right token opens a session at once, always; a wrong one is answered as the
        throttle says (at once, later, or 429 at once)."""
        if not self.sessions.token_ok(bearer(request.headers)):
            return await self.wrong_token(connection, request, "wrong or missing token")
        session = self.sessions.login()
        return response(200, b'{"ok": true}', "application/json", Cache_Control="no-store",
                        Set_Cookie=set_cookie(session, is_secure(connection, request), self.sessions.lifetime_s))

    async def wrong_token(self, connection: ServerConnection, request: Request, reason: str) -> Response:
        """401 for a wrong admin token (the login's, and ``/status``'s: one token, one door),
        as the throttle says: at once, after a wait (with ``Retry-After``), or 429 at once."""
        peer = connection.remote_address[0] if connection.remote_address else None
        address = client_address(peer, request.headers.get_all("X-Forwarded-For"), self.trusted_proxies)
        verdict = self.throttle.failed(address)
        if verdict.event is not None:
            self.record("login_throttled", verdict.event)
        retry = verdict.retry_after_s
        if verdict.refuse:
            body = json.dumps({"error": f"too many wrong tokens: try again in {retry} s"}).encode()
            return response(429, body, "application/json", Cache_Control="no-store", Retry_After=str(retry))
        if verdict.delay_s > 0:
            try:
                await asyncio.sleep(verdict.delay_s)
            finally:
                self.throttle.answered(address)
            return self._unauthorized(reason, Retry_After=str(retry))
        return self._unauthorized(reason)

    @staticmethod
    def _unauthorized(reason: str, **headers: str) -> Response:
        body = json.dumps({"error": reason}).encode()
        return response(401, body, "application/json", Cache_Control="no-store", **headers)
