"""The network protocol: one table of messages for the server, desktop and web clients.

Every message is a msgpack map with a type ``t``. What a client may send is declared once,
in :data:`CLIENT_MESSAGES`: each type's fields (with their kinds and limits), its largest
size, and how often a connection may send it. :func:`parse_client` checks a message against
that table — size before decoding, then type, fields and values — and a violation raises
:class:`ProtocolError` carrying the WebSocket close code and a reason: the server closes that
one connection and everything else goes on. Whatever passes is plain JSON data (no bytes, no
NaN, no integers past 64 bits, bounded depth), so every record built from it can be stored.

Server → client messages are trusted by the clients and listed in :data:`SERVER_MESSAGES`
for reference. The protocol's constants (version, close codes, sizes) live here and only here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

from .packing import pack as _pack
from .packing import unpack as _unpack
from .scenes import PAGE_OUTCOMES as _PAGE_OUTCOMES

PROTOCOL_VERSION = 2  # 2: frames are no longer acknowledged

# WebSocket close codes (RFC 6455 and the private range): why the server closed a connection.
CLOSE_ENDED = 1000  # the study is over for this participant
CLOSE_POLICY = 1008  # a malformed message, another seat's input
CLOSE_TOO_BIG = 1009
CLOSE_BUSY = 1013  # too many connections waiting to say hello: try again later
CLOSE_VERSION = 4000  # another protocol version
CLOSE_REPLACED = 4001  # the same participant connected again elsewhere
CLOSE_RATE = 4002  # too many messages (of one type, or bytes) per second
CLOSE_TOOK_PART = 4003  # this participant id already took part (completed, declined, aborted)
CLOSE_MOVED = 4004  # served by another worker of the study: reconnect at the ``move`` message's URL
# Codes after which a client must not reconnect: the server meant it.
CLOSE_FINAL = (CLOSE_ENDED, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_VERSION, CLOSE_REPLACED, CLOSE_RATE, CLOSE_TOOK_PART)

MAX_HELLO_BYTES = 1024  # the first message of a connection
MAX_MESSAGE_BYTES = 16384  # what a playing client may send (a page of answers fits)
MAX_STATE_BYTES = 1 << 20  # a lockstep client's state, when the server asks for it
MAX_UPLOAD_BYTES = 1 << 20  # a batch of records from a web page (about a second of play)
MAX_BATCH_RECORDS = 5000
MAX_ID = 64
MAX_STEP = 2**31
INT64 = 2**63
# Any page's way out (igym.scenes.PAGE_OUTCOMES says which kind allows which).
PAGE_OUTCOMES = tuple(dict.fromkeys(o for outcomes in _PAGE_OUTCOMES.values() for o in outcomes))
SOURCES = ("human", "default", "previous", "policy", "timeout", "waiting")


class ProtocolError(Exception):
    """A client broke the protocol: close its connection with ``code`` and ``reason``."""

    def __init__(self, reason: str, code: int = CLOSE_POLICY) -> None:
        super().__init__(reason)
        self.reason = reason[:120]  # close reasons must fit in a control frame
        self.code = code


def pack(message: dict[str, Any]) -> bytes:
    return _pack(message)


def unpack(data: bytes) -> dict[str, Any]:
    """Decode a server message (the client side trusts the server's schema)."""
    message: dict[str, Any] = _unpack(data)
    return message


# --- value kinds --------------------------------------------------------------------------

class Spec:
    """A kind of value: ``check`` raises ProtocolError naming ``where`` when the value is not one."""

    text = "a value"

    def ok(self, value: Any) -> bool:
        raise NotImplementedError

    def check(self, value: Any, where: str) -> None:
        if not self.ok(value):
            raise ProtocolError(f"{where} must be {self.text}")


class Int(Spec):
    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.text = f"an int in {low}..{high}"

    def ok(self, value: Any) -> bool:
        return type(value) is int and self.low <= value <= self.high


class Num(Spec):
    """A finite number (int or float, not bool)."""

    def __init__(self, low: float = -math.inf, high: float = math.inf) -> None:
        self.low, self.high = low, high
        self.text = "a finite number" + (f" in {low}..{high}" if math.isfinite(low) or math.isfinite(high) else "")

    def ok(self, value: Any) -> bool:
        return (type(value) is float and math.isfinite(value) or type(value) is int and -INT64 <= value < INT64) \
            and self.low <= value <= self.high


class Flag(Spec):
    text = "true or false"

    def ok(self, value: Any) -> bool:
        return type(value) is bool


class Text(Spec):
    """A string of 1..``limit`` printable characters (no line breaks or control characters:
    ids and names end up in log lines and file names)."""

    def __init__(self, limit: int, printable: bool = True, empty: bool = False) -> None:
        self.limit, self.printable, self.empty = limit, printable, empty
        self.text = f"a string of {'0' if empty else '1'}..{limit} {'printable ' if printable else ''}characters"

    def ok(self, value: Any) -> bool:
        return (type(value) is str and (self.empty or value != "") and len(value) <= self.limit
                and (not self.printable or value.isprintable()))


class OneOf(Spec):
    def __init__(self, *values: Any) -> None:
        self.values = values
        self.text = f"one of {values}"

    def ok(self, value: Any) -> bool:
        return type(value) in (str, int) and value in self.values


class Anything(Spec):
    """Checked later, by whoever knows its shape (uploaded records: :func:`records_from_upload`)."""

    text = "anything"

    def ok(self, value: Any) -> bool:
        return True


class Opt(Spec):
    """``spec``, or None (nil)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.text = f"{spec.text}, or nil"

    def ok(self, value: Any) -> bool:
        return value is None or self.spec.ok(value)

    def check(self, value: Any, where: str) -> None:
        if value is not None:
            self.spec.check(value, where)


class ListOf(Spec):
    def __init__(self, item: Spec, limit: int, least: int = 0) -> None:
        self.item, self.limit, self.least = item, limit, least
        self.text = f"a list of {least}..{limit} items, each {item.text}"

    def ok(self, value: Any) -> bool:
        return type(value) is list and self.least <= len(value) <= self.limit and all(map(self.item.ok, value))

    def check(self, value: Any, where: str) -> None:
        if type(value) is not list or not self.least <= len(value) <= self.limit:
            raise ProtocolError(f"{where} must be a list of {self.least}..{self.limit} items")
        for index, item in enumerate(value):
            self.item.check(item, f"{where}[{index}]")


class MapOf(Spec):
    """A map with string keys (``key``) and values (``value``), at most ``limit`` entries."""

    def __init__(self, value: Spec, limit: int, key: Spec | None = None) -> None:
        self.key, self.value, self.limit = key or Text(MAX_ID), value, limit
        self.text = f"a map of up to {limit} names to {value.text}"

    def ok(self, value: Any) -> bool:
        return (type(value) is dict and len(value) <= self.limit
                and all(self.key.ok(k) and self.value.ok(v) for k, v in value.items()))

    def check(self, value: Any, where: str) -> None:
        if type(value) is not dict or len(value) > self.limit:
            raise ProtocolError(f"{where} must be a map of up to {self.limit} entries")
        for key, item in value.items():
            self.key.check(key, f"{where} key")
            self.value.check(item, f"{where}[{str(key)[:20]!r}]")


class Plain(Spec):
    """JSON data: nil, true/false, 64-bit ints, finite floats, strings, lists and string-keyed
    maps, nested at most ``depth`` deep with at most ``items`` values in all — what a data
    file stores as JSON (bytes, NaN or a 100-level nest would stop the writer)."""

    def __init__(self, depth: int = 6, items: int = 4096, string: int = 4096) -> None:
        self.depth, self.items, self.string = depth, items, string
        self.text = f"JSON data (at most {depth} levels, {items} values)"

    def ok(self, value: Any) -> bool:
        budget = [self.items]

        def plain(item: Any, depth: int) -> bool:
            budget[0] -= 1
            if budget[0] < 0:
                return False
            kind = type(item)
            if item is None or kind is bool or kind is str and len(item) <= self.string:
                return True
            if kind is int:
                within: bool = -INT64 <= item < INT64
                return within
            if kind is float:
                return math.isfinite(item)
            if depth <= 0:
                return False
            if kind is list:
                return all(plain(v, depth - 1) for v in item)
            if kind is dict:
                return all(type(k) is str and len(k) <= 256 and plain(v, depth - 1) for k, v in item.items())
            return False

        return plain(value, self.depth)


class Composite(Spec):
    """A kind of value checked part by part (``check`` says which part is wrong); ``ok`` asks it."""

    def ok(self, value: Any) -> bool:
        try:
            self.check(value, "")
        except ProtocolError:
            return False
        return True


class Shape(Composite):
    """A map with named fields (``required`` must be there; ``optional`` may be), nothing else."""

    def __init__(self, required: dict[str, Spec], optional: dict[str, Spec] | None = None) -> None:
        self.required, self.optional = required, optional or {}
        self.text = f"a map with {sorted(required)}" + (f" and maybe {sorted(self.optional)}" if optional else "")

    def check(self, value: Any, where: str) -> None:
        if type(value) is not dict:
            raise ProtocolError(f"{where} must be {self.text}")
        extra = set(value) - set(self.required) - set(self.optional)
        if extra:
            raise ProtocolError(f"{where}: unknown field(s) {sorted(map(str, extra))[:3]}")
        for name, spec in self.required.items():
            if name not in value:
                raise ProtocolError(f"{where}: field {name!r} is missing")
            spec.check(value[name], f"{where} field {name!r}")
        for name, spec in self.optional.items():
            if name in value:
                spec.check(value[name], f"{where} field {name!r}")


ID = Text(MAX_ID)
STEP = Int(0, MAX_STEP)
NS = Int(-INT64, INT64 - 1)
MS = Num(0, 1e9)
AGENTS = ListOf(Text(MAX_ID), 64)
COLUMNS = MapOf(Plain(depth=4, items=512, string=1024), 64, key=Text(128))
TIMING = MapOf(Opt(Num()), 16)
SECONDS = Num(0, 1e7)  # a time since a page opened (finite, ≥ 0)
CHANGES = Int(0, 1_000_000)
# A survey's times per question, as the client timed them (igym.answer_times): f first answer, l last change
# (seconds since the page opened), c changes after the first; the server checks the rest (page_done).
PAGE_TIMES = MapOf(Shape({"f": SECONDS, "l": SECONDS}, {"c": CHANGES}), 200)
EPISODE_END = Shape({"o": Text(32)}, {"te": AGENTS, "tr": AGENTS, "c": Flag(), "stalls": Int(0, MAX_STEP),
                                      "stall_ms": MS, "timing": Opt(TIMING)})


# --- client → server ----------------------------------------------------------------------

@dataclass(frozen=True)
class Message:
    """A client message type: its fields, its largest size, how often one connection may send it
    (``per_s`` on average with bursts of ``burst``), and a rule across fields."""

    fields: Shape
    max_bytes: int
    per_s: float
    burst: float
    doc: str
    rule: Callable[[dict[str, Any]], None] | None = field(default=None, compare=False)


def _lockstep_input(message: dict[str, Any]) -> None:
    """An ``in`` message: an input for a step (f, a …), a report of a step taken (n, r …), or both."""
    if "f" not in message and "n" not in message:
        raise ProtocolError("in: give an input (f, a) or a report (n), or both")
    if "f" in message and "a" not in message:
        raise ProtocolError("in: an input (f) needs its action (a)")
    if "f" not in message and any(name in message for name in ("a", "k", "p", "s", "kt")):
        raise ProtocolError("in: a, k, p, s and kt belong to an input: give its step f")
    if "n" not in message and any(name in message for name in ("r", "x", "h", "w", "c")):
        raise ProtocolError("in: r, x, h, w and c report a step taken: give its number n")
    if "f" in message and message["f"] < 1:
        raise ProtocolError("in: field 'f' counts steps from 1")
    if "n" in message and message["n"] < 1:
        raise ProtocolError("in: field 'n' counts steps from 1")


CLIENT_MESSAGES: dict[str, Message] = {
    "hello": Message(Shape({"v": Int(0, 2**16), "pid": ID}, {"token": ID, "mode": OneOf("play", "upload")}),
                     MAX_HELLO_BYTES, 0.1, 1,
                     "the first message: protocol version, participant id, reconnect token; mode 'upload' for a "
                     "page that runs the study itself and sends its records"),
    "records": Message(Shape({"b": ID, "r": ListOf(Anything(), MAX_BATCH_RECORDS, 1)}),
                       MAX_UPLOAD_BYTES, 5, 20,
                       "a batch of records (igym.records.to_wire form) from an uploading page "
                       "(servers with --collect)"),
    "key": Message(Shape({"seat": ID, "k": Text(32), "d": Int(0, 1)}), 256, 40, 120,
                   "a key went down (d=1) or up (d=0) on this connection's seat"),
    "pong": Message(Shape({"n": Int(0, 2**53)}), 64, 12, 24, "the answer to a ping"),
    "focus": Message(Shape({"f": Int(0, 1)}), 64, 4, 20, "the window gained (1) or lost (0) the focus"),
    "page": Message(Shape({"v": ID, "o": OneOf(*PAGE_OUTCOMES)}, {"a": MapOf(Plain(depth=2, items=64), 200),
                                                                 "tm": PAGE_TIMES}),
                    MAX_MESSAGE_BYTES, 2, 6, "how the page on screen was left, with the answers of a survey and "
                                             "when each was given (tm: per question f first answer, l last "
                                             "change, seconds since the page opened, c changes)"),
    "in": Message(Shape({"e": STEP}, {"n": STEP, "f": STEP, "a": Plain(depth=4, items=256, string=64),
                                      "k": Text(200, empty=True), "p": Text(200), "s": Int(0, 2), "kt": MS,
                                      "r": MapOf(Num(), 64), "x": EPISODE_END, "h": ID, "w": MS, "c": COLUMNS,
                                      "g": STEP}),
                  4096, 300, 600,
                  "lockstep: this seat's input for step f (action a, keys k, p the press that made a keystroke "
                  "action, source s, kt ms since the keys changed) and/or a report of step n taken (nonzero "
                  "rewards r, the episode's end x, the fingerprint h, w ms stalled, hook columns c, g the "
                  "correction it follows)",
                  rule=_lockstep_input),
    "state": Message(Shape({"e": STEP, "f": STEP, "s": Shape({"env": Plain(depth=12, items=200_000, string=1 << 16)},
                                                             {"returns": MapOf(Num(), 64)})}),
                     MAX_STATE_BYTES, 2, 4, "lockstep: this client's game state, when the server asked for it (get)"),
    "refuse": Message(Shape({"e": STEP, "f": STEP, "why": Text(200)}), 512, 2, 4,
                      "lockstep: a state the server sent could not be loaded here (the client asks for a replay)"),
}

SERVER_MESSAGES: dict[str, str] = {
    "welcome": "{pid, token, experiment, conditions?}: the participant is in; keep the token to reconnect",
    "scene": "{i, kind: 'game', name, seat, canvas, keys, bg, fps} (+ lockstep: net, seats, seeds, max_steps, d, k, "
             "cond)",
    "page": "{v: visit id, i: position, page: igym.scenes.page_to_wire(...), code?, image?: PNG bytes}",
    "lobby": "{waiting: people still missing, elapsed: s, timeout: s}",
    "frame": "{n: frame number, base: the frame it is a delta of (-1: whole), d: render.encode bytes}",
    "status": "{text}: 'partner reconnecting', …",
    "stored": "{b: batch id}: the batch is committed to disk; safe to forget",
    "ping": "{n}",
    "end": "{outcome, text, code?}",
    "move": "{url}: another worker of the study serves you (a cluster): reconnect there, with your token",
    "st": "lockstep {e, f, a: [action per seat]}: every seat's input for step f of episode e",
    "ep": "lockstep {e, d}: episode e's input delay, in steps",
    "get": "lockstep {e}: send your state",
    "state": "lockstep {e, f, s, log, need, g, d}: continue from this state (s nil: replay from the seed)",
}


def parse_client(data: Any, limit: int = MAX_UPLOAD_BYTES, pure: bool = False) -> dict[str, Any]:
    """Validate one message from a client (of at most ``limit`` bytes); returns it, or raises
    ProtocolError. The size is checked before any decoding; decoding itself is bounded.

    ``pure`` decodes with msgpack's pure-Python decoder: slower, but a thread running it
    lets the event loop in between (the C decoder holds the interpreter for a whole message);
    uploaded records are then rebuilt (:func:`records_from_upload`) on that thread too.
    """
    if isinstance(data, str):
        raise ProtocolError("text frames are not accepted: send binary msgpack")
    if len(data) > limit:
        raise ProtocolError(f"message of {len(data)} bytes is over this connection's {limit}-byte limit",
                            CLOSE_TOO_BIG)
    try:
        import msgpack  # the server's side: strict parsing of untrusted bytes
        import msgpack.fallback

        unpackb = msgpack.fallback.unpackb if pure else msgpack.unpackb
        message = unpackb(data, raw=False, strict_map_key=True,
                          max_bin_len=0, max_ext_len=0, max_array_len=200_000, max_map_len=200_000)
    except Exception as error:  # noqa: BLE001 — msgpack raises many kinds
        raise ProtocolError(f"not msgpack: {type(error).__name__}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a msgpack map")
    kind = message.get("t")
    if type(kind) is not str or kind not in CLIENT_MESSAGES:
        raise ProtocolError(f"unknown message type {str(kind)[:20]!r}")
    spec = CLIENT_MESSAGES[kind]
    if len(data) > spec.max_bytes:
        raise ProtocolError(f"{kind} message of {len(data)} bytes is over the {spec.max_bytes}-byte limit",
                            CLOSE_TOO_BIG)
    body = {k: v for k, v in message.items() if k != "t"}
    spec.fields.check(body, kind)
    if spec.rule is not None:
        spec.rule(message)
    if kind == "records":
        message["r"] = records_from_upload(message["r"])
    return message


# --- uploaded records -------------------------------------------------------------------------

class Definitions(Composite):
    """A page's question definitions (:func:`igym.questions.definition`): each one rebuilt as the
    question it names, so only questions a page could have shown are stored."""

    text = "a list of question definitions"

    def __init__(self, limit: int) -> None:
        self.shape = ListOf(MapOf(Plain(depth=2, items=256, string=4096), 32, key=Text(32)), limit)

    def check(self, value: Any, where: str) -> None:
        from .errors import ExperimentError
        from .questions import from_definition

        self.shape.check(value, where)
        for index, item in enumerate(value):
            try:
                from_definition(item)
            except ExperimentError as error:
                raise ProtocolError(f"{where}[{index}]: {error}") from None


_STEP = [ID, STEP, NS, AGENTS, ListOf(Plain(depth=4, items=256, string=64), 64), ListOf(OneOf(*SOURCES), 64),
         ListOf(Num(), 64), ListOf(Flag(), 64), ListOf(Flag(), 64), ListOf(Text(200, empty=True), 64),
         ListOf(Opt(NS), 64), Opt(COLUMNS), Opt(ID), Opt(NS), Opt(ListOf(Opt(Text(200)), 64))]
_EPISODE = [ID, ID, Text(MAX_ID), Int(0, MAX_STEP), Opt(NS), Num(), NS, MapOf(Plain(depth=3, items=64), 64),
            Opt(Num()), Opt(NS), Int(0, MAX_STEP), MapOf(Num(), 64), Opt(Text(32)), Opt(TIMING), Opt(ID)]
_EVENT = [ID, NS, Text(MAX_ID), Opt(Plain(depth=4, items=512, string=1024)), Opt(ID)]
_PARTICIPANT = [ID, Text(MAX_ID), Num(), Opt(Text(MAX_ID)),
                OneOf("started", "completed", "declined", "aborted", "failed"),
                Opt(Text(MAX_ID)), Opt(Num()), Opt(Plain(depth=3, items=512)), Opt(Plain(depth=4, items=512))]
_VISIT = [ID, ID, Int(0, MAX_STEP), Text(MAX_ID), Text(16), Num(), Opt(Num()), Opt(Text(32)),
          Opt(MapOf(Plain(depth=2, items=64), 200)), Opt(MapOf(Plain(depth=4, items=256), 64)),
          Opt(MapOf(Shape({"first_s": Opt(SECONDS), "last_s": Opt(SECONDS), "changes": CHANGES}), 200)),
          Opt(Definitions(200))]
RECORD_FIELDS: dict[int, list[Spec]] = {1: _STEP, 2: _EPISODE, 3: _EVENT, 4: _PARTICIPANT, 5: _VISIT}
# Fields added at the end of a record type, which pages built before them do not send: a step's
# presses, a visit's timings and question definitions.
RECORD_OPTIONAL_TAIL: dict[int, int] = {1: 1, 5: 2}


def records_from_upload(items: list[Any]) -> list[Any]:
    """Rebuild uploaded records, checking every field's kind; a malformed one is a ProtocolError."""
    from .records import from_wire
    records = []
    for index, item in enumerate(items):
        where = f"records: record {index}"
        if type(item) is not list or not item or item[0] not in RECORD_FIELDS:
            raise ProtocolError(f"{where} is not a record")
        fields = RECORD_FIELDS[item[0]]
        values = item[1:]
        least = len(fields) - RECORD_OPTIONAL_TAIL.get(item[0], 0)
        if not least <= len(values) <= len(fields):
            count = f"{least} to {len(fields)}" if least < len(fields) else str(len(fields))
            raise ProtocolError(f"{where} has {len(values)} fields, not {count}")
        for position, (spec, value) in enumerate(zip(fields, values)):
            spec.check(value, f"{where} field {position + 1}")
        if item[0] == 1 and (not len(values[3]) == len(values[4]) == len(values[5]) == len(values[6]) ==
                             len(values[7]) == len(values[8]) == len(values[9]) == len(values[10])
                             or len(values) > 14 and values[14] is not None and len(values[14]) != len(values[3])):
            raise ProtocolError(f"{where}: a step's per-agent lists differ in length")
        records.append(from_wire(item))
    return records
