"""Who may see the dashboard: the admin token, traded once for a session cookie.

The browser never puts the token in a URL (URLs end up in histories, proxy logs and
``Referer`` headers). The login page's script sends it in an ``Authorization: Bearer``
header to ``GET /login`` — websockets' HTTP side takes GET only — and gets back a cookie
holding a random session id, not the token: ``HttpOnly`` (no script can read it),
``SameSite=Strict`` (no other site can make the browser send it), ``Secure`` when the
request came over TLS. Sessions end after :data:`SESSION_S` or at logout.

With several workers the session table belongs in the coordination layer (like the
reconnect tokens); one worker keeps it in memory.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from websockets.datastructures import Headers

COOKIE = "igym_admin"
SESSION_S = 12 * 3600.0
MAX_SESSIONS = 256  # logins kept at once; the oldest goes first


class AdminSessions:
    """The admin token and the sessions it opened."""

    def __init__(self, token: str, lifetime_s: float = SESSION_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._token = token.encode("utf-8")
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._sessions: dict[str, float] = {}  # session id → when it expires (monotonic)

    def token_ok(self, given: str | None) -> bool:
        """Constant-time comparison of the bytes the client sent with the token.

        websockets decodes header values as ISO-8859-1, so ``given.encode("latin-1")`` gives
        back the bytes on the wire whatever they were (a UTF-8 token sent by curl matches;
        stray non-ASCII bytes simply do not).
        """
        if not given:
            return False
        try:
            raw = given.encode("latin-1")
        except UnicodeEncodeError:
            return False
        return secrets.compare_digest(raw, self._token)

    def login(self) -> str:
        """A new session id (the cookie's value)."""
        self._expire()
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        session = secrets.token_urlsafe(32)
        self._sessions[session] = self._clock() + self.lifetime_s
        return session

    def session(self, headers: Headers) -> str | None:
        """The live session named by the request's cookie, or None."""
        now = self._clock()
        for value in cookie_values(headers, COOKIE):
            expires = self._sessions.get(value)
            if expires is not None:
                if expires > now:
                    return value
                del self._sessions[value]
        return None

    def logout(self, headers: Headers) -> None:
        for value in cookie_values(headers, COOKIE):
            self._sessions.pop(value, None)

    def _expire(self) -> None:
        now = self._clock()
        for session in [s for s, expires in self._sessions.items() if expires <= now]:
            del self._sessions[session]

    def __len__(self) -> int:
        return len(self._sessions)


def bearer(headers: Headers) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, if there is one."""
    value = headers.get("Authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def cookie_values(headers: Headers, name: str) -> list[str]:
    """Every value of cookie ``name`` in the request (tolerant of malformed cookie headers)."""
    found = []
    for header in headers.get_all("Cookie"):
        for part in header.split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name:
                found.append(value.strip().strip('"'))
    return found


def set_cookie(session: str, secure: bool, max_age_s: float = SESSION_S) -> str:
    return (f"{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={int(max_age_s)}"
            + ("; Secure" if secure else ""))


def clear_cookie(secure: bool) -> str:
    return f"{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0" + ("; Secure" if secure else "")
