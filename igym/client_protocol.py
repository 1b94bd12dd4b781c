"""The client's half of the igym protocol, without I/O: one object for every kind of client.

The desktop client (``renderers/client.py``), the headless lockstep client
(:func:`igym.lockstep.run_headless`) and the web page's record uploader
(:mod:`igym.upload`) all say hello the same way, keep the reconnect token the server hands
out, answer pings, and decide after a closed connection whether to come back, when, and
where: a worker of a study served by many (a cluster) may send the client on to the worker
that holds its place (``move``; the next connection goes there at once). That logic lives
here once; each client only moves bytes (:mod:`igym.web` sockets) and
acts on the messages this object hands through.

Reconnecting follows one policy: 0.5 s doubling to 5 s, each wait jittered by ±25 % so the
participants of a server that went away do not all come back in the same instant; a
connection that got as far as ``welcome`` starts the policy over. A close code in
:data:`igym.wire.CLOSE_FINAL` (the study is over, the id already took part, a protocol
violation, another version, a newer connection) with a reason means the server meant it:
no retry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from . import wire
from .clock import SYSTEM_CLOCK, Clock

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 5.0
BACKOFF_JITTER = 0.25


@dataclass(frozen=True)
class Closed:
    """How a connection ended, as the client should take it."""

    code: int | None
    reason: str
    final: bool  # the server meant it: do not reconnect

    @property
    def took_part(self) -> bool:
        """The server refused this participant id because it already took part."""
        return self.code == wire.CLOSE_TOOK_PART


class ClientProtocol:
    """Handshake, token, pings and the reconnect policy of one participant's client.

    Per connection: send :meth:`hello`, feed every server message to :meth:`receive` (it
    returns the messages that are the client's business, and queues pong replies in
    :attr:`outbox`), and when the connection ends call :meth:`closed`, then
    :meth:`retry_delay` to learn whether and when to connect again.
    """

    def __init__(self, participant_id: str, url: str = "", *, token: str | None = None, mode: str | None = None,
                 max_reconnect_s: float | None = None, clock: Clock = SYSTEM_CLOCK,
                 rng: random.Random | None = None) -> None:
        self.participant_id = participant_id
        self.url = url  # where to connect: a cluster's worker may send us on to another (``move``)
        self.home_url = url  # where we came from: back there if the worker we were sent to is gone
        self.token = token
        self.mode = mode  # "upload" for a web page's record uploader; None for a player
        self.max_reconnect_s = max_reconnect_s  # give up after this long without a welcome
        self.clock = clock
        self.welcome: dict[str, Any] | None = None
        self.outbox: list[dict[str, Any]] = []
        self.connections = 0  # connections that got as far as welcome
        self.last_close: Closed | None = None
        self._rng = rng or random.Random()
        self._delay = BACKOFF_FIRST_S
        self._lost_since: float | None = None
        self._moved = False
        self._unproven = False  # sent on by a move, and not welcomed there yet

    def hello(self) -> dict[str, Any]:
        """The first message of every connection (with the token once we have one)."""
        message: dict[str, Any] = {"t": "hello", "v": wire.PROTOCOL_VERSION, "pid": self.participant_id}
        if self.mode is not None:
            message["mode"] = self.mode
        if self.token:
            message["token"] = self.token
        return message

    def receive(self, message: Any) -> dict[str, Any] | None:
        """Take one server message: the protocol's own (a ping) are answered here and not
        returned; everything else — ``welcome`` included, after its token is kept — is."""
        if not isinstance(message, dict):
            return None
        kind = message.get("t")
        if kind == "ping":
            self.outbox.append({"t": "pong", "n": message.get("n")})
            return None
        if kind == "move" and isinstance(message.get("url"), str):
            self.url = message["url"]
            self._moved = True
            return None
        if kind == "welcome":
            self.welcome = message
            self._unproven = False  # the worker we were sent to took us
            self.token = message.get("token") or self.token
            self.connections += 1
            self._delay, self._lost_since = BACKOFF_FIRST_S, None
        return message

    def take_outbox(self) -> list[dict[str, Any]]:
        messages, self.outbox = self.outbox, []
        return messages

    def closed(self, code: int | None, reason: str = "") -> Closed:
        """The connection ended with ``code`` (None: it never opened, or broke without a close)."""
        # The server's own closes always say why; a close without a reason is ours or the network's.
        closed = Closed(code, reason or "", code in wire.CLOSE_FINAL and bool(reason))
        self.last_close = closed
        if self._moved:
            self._unproven = True
        elif self._unproven:  # the worker we were sent to is gone (killed): any worker will do
            self.url, self._unproven = self.home_url, False
        if self._lost_since is None:
            self._lost_since = self.clock.monotonic()
        self.outbox.clear()  # pongs belong to the connection that asked
        return closed

    def retry_delay(self) -> float | None:
        """Seconds to wait before connecting again, or None: stop (the server meant it, or
        we have been without the server longer than ``max_reconnect_s``)."""
        closed = self.last_close
        if closed is not None and closed.final:
            return None
        if self._moved:  # sent on to another worker: go at once
            self._moved = False
            return 0.0
        if (self.max_reconnect_s is not None and self._lost_since is not None
                and self.clock.monotonic() - self._lost_since > self.max_reconnect_s):
            return None
        delay = self._delay * (1 - BACKOFF_JITTER + 2 * BACKOFF_JITTER * self._rng.random())
        self._delay = min(BACKOFF_MAX_S, self._delay * 2)
        return delay
