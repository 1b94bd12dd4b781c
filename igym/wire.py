"""The network protocol: one msgpack message schema for server, desktop and web clients.

Every message is a msgpack map with a type ``t``. Everything a client sends is checked by
:func:`parse_client` before the server acts on it — size, type, fields, value ranges —
and a violation raises :class:`ProtocolError` carrying the WebSocket close code and a
reason; the server closes that one connection and everything else goes on.

Client → server:
  hello  {t, v: protocol version, pid: participant id, token?: reconnect token,
          mode?: "play" (default: the server runs the scenes) | "upload" (a solo web page
          runs them and only sends its records)}
  records {t, b: batch id, r: [records in igym.records.to_wire form]}   (servers run with --collect)
  key    {t, seat: agent, k: key name, d: 1 down / 0 up}
  pong   {t, n: ping number}
  focus  {t, f: 1 gained / 0 lost}
  page   {t, v: visit id, o: outcome (continued, agreed, declined, closed), a?: {question: answer}}
  ready  {t}                                  (leave an info screen / start)
  in     {t, e, n?, f?, a?, …}                 (lockstep: an input and/or a report; see igym.lockstep)
  state  {t, e, f, s}                          (lockstep: this client's state, when the server asks)

Server → client:
  welcome {t, pid, token, experiment}
  scene   {t, i: scene index, kind: "game", name, seat, canvas: [w, h], keys: [...], bg: [r, g, b], fps,
           and for lockstep games net: "lockstep", seats: [agents], seeds: [one per episode], max_steps,
           d: [input delay (steps) of each episode decided so far], k: steps between fingerprints,
           cond: the participant's condition}
  page    {t, v: visit id, i: position, page: igym.scenes.page_to_wire(...), code?: completion code,
           image?: PNG bytes of an Info page's image}
  lobby   {t, waiting: people still missing, elapsed: s, timeout: s}
  frame   {t, n: frame number, base: the frame it is a delta of (-1: whole), d: render.encode bytes}
          (base is the previous frame sent on this connection: TCP delivers in order, so the
          client has it; frames are not acknowledged — that would double a room's messages)
  status  {t, text}                           ("partner reconnecting", ...)
  stored  {t, b: batch id}                    (the batch is committed to disk; safe to forget)
  ping    {t, n}
  end     {t, outcome, text}
  error   {t, reason}
  st      {t, e, f, a: [action per seat]}     (lockstep: every seat's input for step f of episode e)
  ep      {t, e, d}                           (lockstep: episode e's input delay, in steps)
  get     {t, e}                              (lockstep: send your state)
  state   {t, e, f, s, log, need, g}          (lockstep: continue from this state; see igym.lockstep)
"""

from __future__ import annotations

from typing import Any

from .packing import pack as _pack
from .packing import unpack as _unpack

PROTOCOL_VERSION = 2  # 2: frames are no longer acknowledged
MAX_MESSAGE_BYTES = 16384  # what a client may send (a page of answers fits); server frames are not capped
MAX_UPLOAD_BYTES = 1 << 20  # a batch of records from a web page (about a second of play)
MAX_BATCH_RECORDS = 5000
MAX_KEY_NAME = 32
MAX_ID = 64

# WebSocket close codes (RFC 6455 and the private range).
CLOSE_POLICY = 1008  # malformed message, wrong seat
CLOSE_TOO_BIG = 1009
CLOSE_VERSION = 4000
CLOSE_REPLACED = 4001  # the same participant connected again elsewhere
CLOSE_ENDED = 1000


PAGE_OUTCOMES = ("continued", "agreed", "declined", "closed")


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
    return _unpack(data)


def _int(message: dict, field: str, low: int, high: int) -> int:
    value = message.get(field)
    if type(value) is not int or not low <= value <= high:
        raise ProtocolError(f"{message.get('t')}: field {field!r} must be an int in {low}..{high}")
    return value


def _str(message: dict, field: str, limit: int, optional: bool = False) -> str | None:
    value = message.get(field)
    if value is None and optional:
        return None
    if type(value) is not str or not 0 < len(value) <= limit:
        raise ProtocolError(f"{message.get('t')}: field {field!r} must be a string of 1..{limit} characters")
    return value


_FIELDS = {
    "hello": {"t", "v", "pid", "token", "mode"},
    "records": {"t", "b", "r"},
    "key": {"t", "seat", "k", "d"},
    "pong": {"t", "n"},
    "focus": {"t", "f"},
    "page": {"t", "v", "o", "a"},
    "ready": {"t"},
    "in": {"t", "e", "n", "f", "a", "k", "s", "kt", "r", "x", "h", "w", "c", "g"},
    "state": {"t", "e", "f", "s"},
}
MAX_STEP = 2**31


def parse_client(data: Any) -> dict[str, Any]:
    """Validate one message from a client; returns it, or raises ProtocolError."""
    if isinstance(data, str):
        raise ProtocolError("text frames are not accepted: send binary msgpack")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ProtocolError(f"message of {len(data)} bytes is over the {MAX_UPLOAD_BYTES}-byte limit",
                            CLOSE_TOO_BIG)
    try:
        import msgpack  # the server's side: strict parsing of untrusted bytes

        message = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as error:  # noqa: BLE001 — msgpack raises many kinds
        raise ProtocolError(f"not msgpack: {type(error).__name__}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a msgpack map")
    kind = message.get("t")
    if kind not in _FIELDS:
        raise ProtocolError(f"unknown message type {str(kind)[:20]!r}")
    if kind not in ("records", "state") and len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"{kind} message of {len(data)} bytes is over the {MAX_MESSAGE_BYTES}-byte limit",
                            CLOSE_TOO_BIG)
    extra = set(message) - _FIELDS[kind]
    if extra:
        raise ProtocolError(f"{kind}: unknown field(s) {sorted(map(str, extra))[:3]}")
    if kind == "hello":
        _int(message, "v", 0, 2**16)
        _str(message, "pid", MAX_ID)
        _str(message, "token", MAX_ID, optional=True)
        if message.get("mode", "play") not in ("play", "upload"):
            raise ProtocolError("hello: mode must be 'play' or 'upload'")
    elif kind == "key":
        _str(message, "seat", MAX_ID)
        _str(message, "k", MAX_KEY_NAME)
        _int(message, "d", 0, 1)
    elif kind == "pong":
        _int(message, "n", 0, 2**53)
    elif kind == "focus":
        _int(message, "f", 0, 1)
    elif kind == "page":
        _str(message, "v", MAX_ID)
        if message.get("o") not in PAGE_OUTCOMES:
            raise ProtocolError(f"page: outcome must be one of {PAGE_OUTCOMES}")
        answers = message.get("a")
        if answers is not None and (type(answers) is not dict or len(answers) > 200
                                    or not all(type(k) is str and len(k) <= MAX_ID for k in answers)):
            raise ProtocolError("page: field 'a' must map question ids to answers")
    elif kind == "in":
        _check_lockstep_input(message)
    elif kind == "state":
        _int(message, "e", 0, MAX_STEP)
        _int(message, "f", 0, MAX_STEP)
        if not isinstance(message.get("s"), dict):
            raise ProtocolError("state: field 's' must be a map (the env's get_state() and the returns)")
    elif kind == "records":
        _str(message, "b", MAX_ID)
        records = message.get("r")
        if type(records) is not list or not 0 < len(records) <= MAX_BATCH_RECORDS:
            raise ProtocolError(f"records: field 'r' must be a list of 1..{MAX_BATCH_RECORDS} records")
    return message


def _check_lockstep_input(message: dict[str, Any]) -> None:
    """An ``in`` message: an input for a step, a report of a step taken, or both."""
    _int(message, "e", 0, MAX_STEP)
    if "f" not in message and "n" not in message:
        raise ProtocolError("in: give an input (f, a) or a report (n), or both")
    if "f" in message:
        _int(message, "f", 1, MAX_STEP)
        if "a" not in message:
            raise ProtocolError("in: an input (f) needs its action (a)")
        if "k" in message:
            _str(message, "k", 200)
        if "s" in message:
            _int(message, "s", 0, 2)
        age = message.get("kt")
        if age is not None and (type(age) not in (int, float) or not 0 <= age < 1e9):
            raise ProtocolError("in: field 'kt' must be the milliseconds since the keys changed (≥ 0)")
    elif any(field in message for field in ("a", "k", "s", "kt")):
        raise ProtocolError("in: a, k, s and kt belong to an input: give its step f")
    if "n" in message:
        _int(message, "n", 1, MAX_STEP)
    elif any(field in message for field in ("r", "x", "h", "w", "c")):
        raise ProtocolError("in: r, x, h, w and c report a step taken: give its number n")
    if "g" in message:
        _int(message, "g", 0, MAX_STEP)
    rewards = message.get("r")
    if rewards is not None and (type(rewards) is not dict or len(rewards) > 64 or not all(
            type(k) is str and type(v) in (int, float) and v == v for k, v in rewards.items())):
        raise ProtocolError("in: field 'r' must map agent names to numbers")
    end = message.get("x")
    if end is not None and (type(end) is not dict or type(end.get("o")) is not str
                            or not all(type(end.get(f, [])) is list for f in ("te", "tr"))):
        raise ProtocolError("in: field 'x' must be {o: outcome, te: [...], tr: [...], c: cut}")
    if "h" in message:
        _str(message, "h", MAX_ID)
    stall = message.get("w")
    if stall is not None and (type(stall) not in (int, float) or not 0 <= stall < 1e9):
        raise ProtocolError("in: field 'w' must be the milliseconds stalled (≥ 0)")
    columns = message.get("c")
    if columns is not None and (type(columns) is not dict or len(columns) > 64):
        raise ProtocolError("in: field 'c' must map column names to values")


def records_from_upload(items: list) -> list:
    """Rebuild uploaded records, checking their shape; a malformed one is a ProtocolError."""
    from .records import EpisodeRecord, EventRecord, ParticipantRecord, StepRecord, VisitRecord, from_wire
    records = []
    for item in items:
        try:
            record = from_wire(item)
        except Exception as error:  # noqa: BLE001 — any malformed record
            raise ProtocolError(f"records: a malformed record ({type(error).__name__})") from None
        if type(record) is StepRecord:
            ok = (type(record.episode_id) is str and type(record.step) is int and type(record.t_ns) is int
                  and len(record.agents) == len(record.sources) == len(record.keys) == len(record.key_t_ns)
                  and all(type(a) is str for a in record.agents))
        elif type(record) is EpisodeRecord:
            ok = type(record.episode_id) is str and type(record.participant_id) is str and type(record.index) is int
        elif type(record) is VisitRecord:
            ok = (type(record.visit_id) is str and type(record.participant_id) is str and type(record.position) is int
                  and type(record.scene) is str and type(record.kind) is str
                  and type(record.started_at) in (int, float) and (record.answers is None or type(record.answers) is dict))
        elif type(record) is ParticipantRecord:
            ok = (type(record.participant_id) is str and type(record.experiment) is str
                  and record.status in ("started", "completed", "declined", "aborted")
                  and type(record.created_at) in (int, float))
        elif type(record) is EventRecord:
            ok = type(record.participant_id) is str and type(record.kind) is str and type(record.t_ns) is int
        else:
            ok = False
        if not ok:
            raise ProtocolError("records: a record has fields of the wrong type")
        records.append(record)
    return records
