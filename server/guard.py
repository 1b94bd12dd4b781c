"""Cheap rejection first: what one connection may send, checked before the server does any work.

A :class:`Guard` stands at the door of every connection. It knows the connection's phase —
before hello (one small message), playing (small messages), an accepted uploader or a
lockstep member asked for its state (large ones) — and tells websockets the largest frame
it will read, so an oversized message is refused from its header, before it is read or
decoded. Within that, every message is decoded with bounded effort, checked against
:data:`igym.wire.CLIENT_MESSAGES`, and counted: each connection has a byte budget (reading
pauses when it is spent: a flood is slowed, not decoded) and each message type its own
rate (too many closes the connection with :data:`~igym.wire.CLOSE_RATE`). Large messages
are decoded and checked on a worker thread with msgpack's pure-Python decoder, which lets
the event loop run between its steps, so even a legal 1 MiB upload never stalls a tick.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from igym import wire

INLINE_BYTES = 16384  # messages up to this size are decoded on the event loop (C decoder, < 1 ms)
BYTES_PER_S = {"hello": 4096, "play": 32768, "upload": 256 * 1024}
BYTES_BURST = {"hello": 4096, "play": 128 * 1024, "upload": 4 << 20}


class Bucket:
    """A token bucket: ``rate`` per second, holding at most ``burst``."""

    __slots__ = ("rate", "burst", "tokens", "at")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, time.monotonic()

    def _fill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def take(self, amount: float = 1.0) -> bool:
        self._fill()
        if self.tokens < amount:
            return False
        self.tokens -= amount
        return True

    def wait_for(self, amount: float) -> float:
        """Take ``amount`` (going into debt); returns how long to wait before the next read."""
        self._fill()
        self.tokens -= amount
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class Guard:
    """The door of one connection: its phase, its frame limit, its byte budget and message rates."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.phase = "hello"
        self.limit = wire.MAX_HELLO_BYTES
        self.bytes = Bucket(BYTES_PER_S["hello"], BYTES_BURST["hello"])
        self.rates = {kind: Bucket(spec.per_s, spec.burst) for kind, spec in wire.CLIENT_MESSAGES.items()}
        self._set_frame_limit(self.limit)

    def enter(self, phase: str) -> None:
        """After hello: ``play`` (small messages) or ``upload`` (batches of records)."""
        self.phase = phase
        self.limit = wire.MAX_UPLOAD_BYTES if phase == "upload" else wire.MAX_MESSAGE_BYTES
        self.bytes = Bucket(BYTES_PER_S[phase], BYTES_BURST[phase])
        self._set_frame_limit(self.limit)

    def expect_state(self, expected: bool) -> None:
        """A lockstep member asked for its state may send one large message (and then not)."""
        self.limit = wire.MAX_STATE_BYTES if expected else wire.MAX_MESSAGE_BYTES
        if expected:
            self.bytes.tokens = max(self.bytes.tokens, float(wire.MAX_STATE_BYTES))
        self._set_frame_limit(self.limit)

    def _set_frame_limit(self, limit: int) -> None:
        protocol = getattr(self.connection, "protocol", None)
        if protocol is not None:
            protocol.max_message_size = limit

    async def admit(self, data: Any) -> dict[str, Any]:
        """Decode and check one message; raises :class:`igym.wire.ProtocolError` to close."""
        size = len(data)
        if size > self.limit:
            raise wire.ProtocolError(f"message of {size} bytes is over this connection's {self.limit}-byte limit",
                                     wire.CLOSE_TOO_BIG)
        pause = self.bytes.wait_for(size)
        if pause > 0:
            await asyncio.sleep(pause)  # a flood is slowed down here, before anything is decoded
        if size <= INLINE_BYTES:
            message = wire.parse_client(data, self.limit)
        else:
            message = await asyncio.to_thread(wire.parse_client, data, self.limit, True)
        kind = message["t"]
        if not self.rates[kind].take():
            spec = wire.CLIENT_MESSAGES[kind]
            raise wire.ProtocolError(f"too many {kind} messages (at most {spec.per_s:g}/s, bursts of {spec.burst:g})",
                                     wire.CLOSE_RATE)
        return message
