"""The dashboard's door: who is knocking, how often a wrong token may knock, and how much a live
feed may send.

Sans-I/O like the session: each class takes the time from an injected clock and only says
what to do; :mod:`.pages` sleeps and answers, :mod:`.live` closes.

**Failed logins** (:class:`LoginThrottle`). Every wrong admin token (the dashboard's
``/login`` and ``/status`` take the same one) fills a leaky bucket of its
client address (IPv6 addresses by their /64: one machine owns a whole /64) and one of the
whole server; each bucket forgets one failure every :data:`DRAIN_S`. While an address has
more than :data:`FREE` failures in its bucket (or everyone more than :data:`OVERALL_FREE`),
its next wrong token is answered only after a delay that doubles with every failure, up to
:data:`MAX_DELAY_S`, with ``Retry-After``; when :data:`MAX_HELD` of its answers (or
:data:`MAX_HELD_OVERALL` of everyone's) are already being held back, it is answered at once
with 429 instead, so a crowd of attackers cannot make the server hold their connections. The
right token is never throttled: it is checked first and opens a session at once, whoever
else knocks from the same address — an experimenter behind the same NAT as an attacker gets
in. That also means a throttle cannot make guessing a strong token harder than it is (the
default token has 128 random bits); what it does is slow a guessing script down, keep the
server's work per wrong token small, and tell the experimenter: the first throttled failure
of a burst is an event in the study's data (at most one per address, and one for everyone,
per :data:`EVENT_EVERY_S`).

**Client address** (:func:`client_address`). The socket's peer — unless that peer is a
reverse proxy named with ``--trust-proxy``: then the ``X-Forwarded-For`` entries are read
from the right, skipping trusted proxies, and the first other address is the client. Without
``--trust-proxy`` the header is ignored (any client could write it), and every request
through a proxy counts as the proxy's address — the overall limit still holds, and the
right token still gets in.

**The live feed** (:class:`TokenBucket`). The dashboard's page sends nothing on
``/dashboard/live``; a connection may send :data:`LIVE_BURST` messages at once and
:data:`LIVE_PER_S` a second after that, and one that sends more is closed (1008).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

FREE = 5  # wrong tokens an address may send before its next ones wait
OVERALL_FREE = 20  # wrong tokens everyone together may send before every next one waits
DRAIN_S = 12.0  # one failure is forgotten every this many seconds (5 a minute stay free)
FIRST_DELAY_S = 0.25  # the first throttled answer waits this long; each next one twice as long …
MAX_DELAY_S = 4.0  # … up to this (well under websockets' 10 s opening timeout)
CEILING = 8  # a bucket holds at most FREE + CEILING failures: throttling ends ~2 minutes after an attack
MAX_HELD = 8  # answers of one address held back at once; more are told 429 at once
MAX_HELD_OVERALL = 64  # answers held back at once in all
EVENT_EVERY_S = 600.0  # at most one recorded event per address (and one for everyone) per this long
MAX_ADDRESSES = 4096  # addresses remembered; the longest quiet ones are forgotten first
OVERALL = "*"  # the bucket of everyone's failures

LIVE_BURST = 10  # messages a live-feed connection may send at once …
LIVE_PER_S = 1.0  # … and a second after that (the dashboard's page sends none)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Verdict:
    """What to do with one wrong token."""

    delay_s: float = 0.0  # answer 401 after this long (0: at once)
    refuse: bool = False  # answer 429 at once: too many answers are held back already
    event: dict[str, Any] | None = None  # a throttled burst began: record this once

    @property
    def retry_after_s(self) -> int | None:
        """Whole seconds for a ``Retry-After`` header (None when not throttled)."""
        return max(1, math.ceil(self.delay_s)) if self.delay_s > 0 else None


class _Bucket:
    __slots__ = ("level", "at", "held", "evented")

    def __init__(self, now: float) -> None:
        self.level, self.at, self.held, self.evented = 0.0, now, 0, -math.inf


class LoginThrottle:
    """Failed logins per client address and overall (see the module's docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._overall = _Bucket(clock())

    def failed(self, address: str) -> Verdict:
        """A wrong token came from ``address``: how to answer it. A verdict with a delay holds a
        place until :meth:`answered` is called for it."""
        now = self._clock()
        key = address_key(address)
        bucket = self._bucket(key, now)
        own, overall = self._fill(bucket, now), self._fill(self._overall, now)
        excess = max(own - FREE, overall - OVERALL_FREE)
        if excess <= 0:
            return Verdict()
        delay = min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** (math.ceil(excess) - 1))
        event = self._event(key, bucket, own, overall, delay, now)
        if bucket.held >= MAX_HELD or self._overall.held >= MAX_HELD_OVERALL:
            return Verdict(delay, True, event)
        bucket.held += 1
        self._overall.held += 1
        return Verdict(delay, False, event)

    def answered(self, address: str) -> None:
        """A held-back answer to ``address`` went out: its place is free."""
        bucket = self._buckets.get(address_key(address))
        if bucket is not None and bucket.held > 0:
            bucket.held -= 1
        self._overall.held = max(0, self._overall.held - 1)

    def _event(self, key: str, bucket: _Bucket, own: float, overall: float, delay: float,
               now: float) -> dict[str, Any] | None:
        """One event per throttled burst: for the address, or — when everyone's failures are
        over the limit — one for everyone (not one per address: a crowd must not flood the data)."""
        if overall > OVERALL_FREE:
            target, scope, failures = self._overall, "overall", overall
        else:
            target, scope, failures = bucket, "address", own
        if now - target.evented < EVENT_EVERY_S:
            return None
        target.evented = now
        return {"scope": scope, "address": key, "failures": round(failures), "delay_s": delay}

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_ADDRESSES:
                self._forget(now)
            bucket = self._buckets[key] = _Bucket(now)
        else:
            self._buckets[key] = self._buckets.pop(key)  # the most recently heard of last
        return bucket

    def _forget(self, now: float) -> None:
        """Make room: drop the addresses that have drained and hold nothing, else the quietest."""
        for key in [k for k, b in self._buckets.items() if b.held == 0 and self._drained(b, now) == 0]:
            del self._buckets[key]
        while len(self._buckets) >= MAX_ADDRESSES:
            del self._buckets[next(iter(self._buckets))]

    @staticmethod
    def _drained(bucket: _Bucket, now: float) -> float:
        return max(0.0, bucket.level - (now - bucket.at) / DRAIN_S)

    def _fill(self, bucket: _Bucket, now: float) -> float:
        ceiling = FREE + CEILING if bucket is not self._overall else OVERALL_FREE + CEILING
        bucket.level = min(float(ceiling), self._drained(bucket, now) + 1.0)
        bucket.at = now
        return bucket.level


class TokenBucket:
    """``burst`` messages at once, then ``per_s`` a second: :meth:`take` says whether one more fits."""

    def __init__(self, burst: float = LIVE_BURST, per_s: float = LIVE_PER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.per_s, self._clock = burst, per_s, clock
        self._tokens, self._at = float(burst), clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_s)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


# --- who is knocking ------------------------------------------------------------------------------------

def trusted_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``--trust-proxy`` values (addresses or networks) as networks; ValueError names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"--trust-proxy {value!r} is not an IP address or network: give the reverse "
                             f"proxy's address as the server sees it, e.g. 127.0.0.1 or 10.0.0.0/24") from None
    return tuple(networks)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: tuple[Network, ...]) -> str:
    """The address a request came from: ``peer`` (the socket's), or — when ``peer`` is a trusted
    proxy — the rightmost ``X-Forwarded-For`` entry that is not a trusted proxy itself.

    Each proxy appends the address it was connected from (nginx's ``$proxy_add_x_forwarded_for``;
    Caddy replaces what an untrusted client sent), so the entries right of the client are
    proxies and anything left of it is the client's own say, never read.
    """
    address = _parse(peer)
    if address is None:
        return peer or "unknown"
    entries = [entry.strip() for header in forwarded_for for entry in header.split(",")]
    for entry in reversed(entries):
        if not _trusted(address, trusted):
            break
        forwarded = _parse(entry)
        if forwarded is None:
            break  # garbage from a trusted hop: the hop is the best we know
        address = forwarded
    return str(address)


def address_key(address: str) -> str:
    """What one client is, for counting: an IPv4 address, or an IPv6 address's /64."""
    parsed = _parse(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed) if parsed is not None else address[:64]


def _parse(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a peer or a header entry (``[::1]:80``, ``1.2.3.4:5`` and ``::ffff:1.2.3.4`` too)."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: tuple[Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)
