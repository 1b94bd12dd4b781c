"""What the workers serving one study share, kept in Redis: one :class:`Cluster` per worker.

With ``--workers N --redis URL`` many worker processes, on one machine or many, serve one
study, and a participant may connect to any of them. A room lives on exactly one worker;
everything the workers must agree on is small and lives here:

* **presence** — each worker's heartbeat (a hash that expires without it) and its load;
* **lobbies** — per study and Game scene, first come first served among the waiters who
  are *here* (a waiter whose connection closed, or whose worker died, keeps their place
  for the grace window but is never matched);
* **rooms** — a group forms in one atomic step that also places the room on the
  least-loaded live worker and gives each member a one-time seat reservation, posted to
  the member's mailbox (the worker holding their connection tells the client where to go);
* **study state** — balanced condition counters, who completed, reconnect tokens, each
  participant's :class:`igym.study.StudyRun` snapshot, and which worker serves whom.

Every step two workers could race on is one Lua script (:mod:`.cluster_scripts`). When
Redis cannot be reached every call raises :class:`ClusterUnavailable` within
``op_timeout_s`` — it never hangs — and the same object works again once Redis is back.
The key layout, lifetimes and failure behaviour are in ``docs/cluster.md``. The one-worker
server never imports this module (it needs the ``redis`` package: ``pip install
igym[cluster]``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from . import cluster_scripts as lua

log = logging.getLogger("igym.server.cluster")
T = TypeVar("T")
WORKER_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_UNREACHABLE = (rexc.ConnectionError, rexc.TimeoutError, OSError, TimeoutError)


# Redis could not be reached, or did not answer within ``op_timeout_s``. After a timeout the call
# may still have been done: every call is safe to repeat (``docs/cluster.md``). Defined where the
# server can catch it without importing redis (the one-worker server never loads this module).
from .cluster_errors import ClusterUnavailable as ClusterUnavailable  # noqa: E402  (re-exported)


class WorkerIdInUse(Exception):
    """Another live registration holds this worker id (two workers started with one id)."""


def esc(name: str) -> str:
    """A name made safe as one part of a key (``:`` separates parts): study "a:b" and scene
    "c" never meet study "a" and scene "b:c". The Lua scripts escape the same way."""
    return name.replace("%", "%25").replace(":", "%3A")


def token_sha256(token: str) -> str:
    """What Redis keeps of a one-time token (the token itself travels only in a mailbox)."""
    return hashlib.sha256(token.encode()).hexdigest()


# --- what calls return --------------------------------------------------------------------

@dataclass(frozen=True)
class Load:
    """What a worker reports with each heartbeat: what it hosts and how late its ticks run."""

    rooms: int = 0
    participants: int = 0
    p99_ms: float | None = None


@dataclass(frozen=True)
class WorkerInfo:
    """A live worker as the cluster sees it."""

    worker_id: str
    url: str
    load: Load
    placed_rooms: int  # rooms placed on it that have not ended (counted the moment they are placed)
    beat_age_s: float  # since its last heartbeat
    up_s: float  # since this registration of it
    incarnation: str = ""  # this registration of it (the fencing token of what it owns)

    def as_dict(self) -> dict[str, Any]:
        return {"worker": self.worker_id, "url": self.url, "rooms": self.load.rooms,
                "participants": self.load.participants, "p99_ms": self.load.p99_ms,
                "placed_rooms": self.placed_rooms, "beat_age_s": self.beat_age_s, "up_s": self.up_s}


def rank(worker: WorkerInfo) -> tuple[int, int, float, str]:
    """Least loaded first: rooms, participants, p99 lateness, id — the order the FORM script
    places rooms by (``pick_worker`` in :mod:`.cluster_scripts`)."""
    return (max(worker.placed_rooms, worker.load.rooms), worker.load.participants, worker.load.p99_ms or 0.0,
            worker.worker_id)


@dataclass(frozen=True)
class Joined:
    """The answer to :meth:`Cluster.join`."""

    since: float | None  # arrival in line (Redis clock, epoch seconds); None when seated
    new: bool  # False: they were already waiting (their place kept)
    room: str | None  # the room they are seated in (not put in line): their mailbox has it


@dataclass(frozen=True)
class Seat:
    """One member's seat in a newly formed room: its index, the reservation token, the wait."""

    participant: str
    seat: int
    token: str
    waited_s: float


@dataclass(frozen=True)
class Placement:
    """A room just formed: where it lives and who sits where (members in seat order)."""

    room_id: str
    study: str
    scene: str
    worker_id: str
    worker_url: str
    size: int
    seats: tuple[Seat, ...]
    reason: str  # "matched" (every seat a waiter) or "filled" (the rest for the scene's fill)
    created: float  # Redis clock, seconds since the epoch
    incarnation: str = ""  # the registration of the worker the room lives on (its fencing token)

    @property
    def members(self) -> list[str]:
        return [seat.participant for seat in self.seats]

    @property
    def empty_seats(self) -> int:
        return self.size - len(self.seats)


@dataclass(frozen=True)
class RoomInfo:
    """A placed room as stored (until its worker ends it, or a survivor reaps it)."""

    room_id: str
    study: str
    scene: str
    worker_id: str
    worker_url: str
    members: tuple[str, ...]
    size: int
    reason: str
    created: float
    incarnation: str = ""  # the registration of the worker the room was placed on

    @classmethod
    def from_hash(cls, h: Mapping[str, Any]) -> RoomInfo:
        return cls(h["room"], h["study"], h["scene"], h["worker"], h["url"], tuple(json.loads(h["members"])),
                   int(h["size"]), h["reason"], int(h["created_ms"]) / 1000, h.get("incarnation", ""))


@dataclass(frozen=True)
class Reservation:
    """A claimed seat reservation: the member, the room and seat, on this worker."""

    room_id: str
    study: str
    scene: str
    participant: str
    seat: int
    worker_id: str


@dataclass(frozen=True)
class OwnerClaim:
    """The answer to :meth:`Cluster.claim_participant`: whose the participant is now."""

    ok: bool
    owner: str
    owner_url: str | None = None  # when not ok: where the participant's live worker (or their room's) is
    previous: str | None = None  # when ok: the worker that served them before (dead, or none)
    took_over: bool = False  # when ok: taken from a dead registration (an earlier run of this id too)


# --- the coordination layer ---------------------------------------------------------------

class Cluster:
    """One worker's handle on the shared state of the workers serving a study.

    ``url`` is a Redis URL (``redis://HOST:PORT/DB``). ``worker_ttl_s``: a worker that stops
    heartbeating is gone after this long (heartbeats every ``worker_ttl_s / 3``).
    ``reservation_ttl_s``: how long a seat reservation (and a mailbox) waits to be claimed.
    ``connect_timeout_s``/``op_timeout_s`` bound every call when Redis is down or stuck.
    ``poll_s``: a waiting :meth:`next_message` also looks at its mailbox this often, so a
    missed notification (pub/sub is fire-and-forget) costs at most this much delay.
    """

    def __init__(self, url: str, *, prefix: str = "igym", worker_ttl_s: float = 3.0, reservation_ttl_s: float = 30.0,
                 connect_timeout_s: float = 1.0, op_timeout_s: float = 3.0, poll_s: float = 1.0) -> None:
        self.url = url
        self.worker_ttl_s = worker_ttl_s
        self.reservation_ttl_s = reservation_ttl_s
        self.op_timeout_s = op_timeout_s
        self.poll_s = poll_s
        self.worker_id: str | None = None
        self.public_url: str | None = None
        self.incarnation = ""
        self._load = Load()
        self._p = f"{esc(prefix)}:"
        # One retry, at once, and only when the connection broke (a pooled connection to a
        # Redis that restarted fails on first use): never after a timeout, when a stuck Redis
        # may still run the command. A Redis that is down fails in about connect_timeout_s;
        # every call is bounded by op_timeout_s. The scripts are safe to run twice (FORM with
        # the same room id returns the same room), so the retry cannot seat anyone twice.
        # Any: redis-py's types do not know decode_responses=True (every reply here is str).
        self._redis: Any = aioredis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=connect_timeout_s, socket_timeout=op_timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(rexc.ConnectionError,)),
            retry_on_error=[rexc.ConnectionError], health_check_interval=0)
        self._scripts = {name: self._redis.register_script(getattr(lua, name)) for name in (
            "HEARTBEAT", "UNREGISTER", "WORKERS", "JOIN", "MARK_ABSENT", "BACK", "FORM", "EXPIRE_ABSENT", "LOBBY",
            "CLAIM_RESERVATION", "CLAIM_PARTICIPANT", "RELEASE_PARTICIPANT", "ASSIGN_CONDITION",
            "UNASSIGN_CONDITION", "SET_TOKEN", "END_ROOM", "DEAD_ROOMS")}
        self._mail_waiters: dict[str, set[asyncio.Event]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._pubsub: Any = None  # the mail listener's current redis.asyncio.client.PubSub
        self._closing = False

    @property
    def where(self) -> str:
        """The Redis URL without its password (for messages)."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    async def close(self) -> None:
        """Stop listening for mail and close the connections (presence is left to expire).

        The mail listener is stopped by a flag and by closing its connection under it, not
        only by cancelling: a cancellation that lands inside redis-py's own read timeout can
        be lost, leaving the read blocked — so closing is bounded either way."""
        self._closing = True
        listener, self._listener = self._listener, None
        if listener is not None:
            pubsub = self._pubsub
            if pubsub is not None and pubsub.connection is not None:
                try:
                    await pubsub.connection.disconnect(nowait=True)
                except Exception as error:  # noqa: BLE001 — closing: the connection may be broken already
                    log.debug("closing the mail connection: %r", error)
            done, _ = await asyncio.wait({listener}, timeout=self.poll_s + self.op_timeout_s)
            if not done:
                listener.cancel()
                await asyncio.wait({listener}, timeout=self.op_timeout_s)
            if listener.done() and not listener.cancelled() and listener.exception() is not None:
                log.debug("mail listener ended with %r", listener.exception())
        await self._redis.aclose()

    async def _do(self, call: Awaitable[T]) -> T:
        """Run one Redis call, bounded by ``op_timeout_s``; an unreachable Redis is
        :class:`ClusterUnavailable`, whatever layer noticed it."""
        try:
            async with asyncio.timeout(self.op_timeout_s):
                return await call
        except _UNREACHABLE as error:
            await self._drop_idle_connections()
            raise ClusterUnavailable(f"Redis at {self.where} is unavailable: {error or type(error).__name__}") \
                from error

    async def _drop_idle_connections(self) -> None:
        """After a failure, forget the pooled connections: they may lead to a Redis that is
        gone (killed, restarted), and the first call after it is back should not find out."""
        try:
            async with asyncio.timeout(self.op_timeout_s):
                await self._redis.connection_pool.disconnect(inuse_connections=False)
        except Exception as error:  # noqa: BLE001 — broken connections may fail to close: they are dropped anyway
            log.debug("dropping pooled connections: %r", error)

    async def _run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await self._do(self._scripts[script](keys=list(keys), args=list(args)))

    def _s(self, study: str) -> str:
        return f"{self._p}s:{esc(study)}:"

    def _lobby_keys(self, study: str, scene: str) -> list[str]:
        base = f"{self._s(study)}l:{esc(scene)}:"
        return [base + "q", base + "since", base + "worker", base + "absent", base + "seq"]

    def _mailbox(self, study: str, participant: str) -> str:
        return f"{self._s(study)}mail:{esc(participant)}"

    # --- presence ---------------------------------------------------------------------------

    async def register(self, worker_id: str, public_url: str, load: Load | None = None,
                       wait_s: float | None = None) -> None:
        """Announce this worker (``public_url``: where clients reach it); a new registration
        (incarnation), so rooms and participants of an earlier run under the same id count as
        a dead worker's.

        A worker restarted after it died (killed, crashed) finds its predecessor's presence
        still there for up to ``worker_ttl_s``: it waits that out (``wait_s``, default
        ``worker_ttl_s`` and a heartbeat more) instead of failing, since a dead process cannot
        heartbeat. An id still held after that belongs to a live worker: :class:`WorkerIdInUse`."""
        if not WORKER_ID.match(worker_id):
            raise ValueError(f"worker id {worker_id!r}: use 1–64 of A-Z a-z 0-9 . _ -")
        self.worker_id, self.public_url, self.incarnation = worker_id, public_url, uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.worker_ttl_s * 4 / 3 if wait_s is None else wait_s)
        while True:
            try:
                await self.heartbeat(load)
                return
            except WorkerIdInUse:
                if loop.time() >= deadline:
                    self.worker_id = None
                    raise WorkerIdInUse(f"worker id {worker_id!r} belongs to a live worker: give each worker its "
                                        f"own id") from None
                await asyncio.sleep(min(0.2, self.worker_ttl_s / 10))

    async def heartbeat(self, load: Load | None = None) -> int:
        """Say this worker is alive, with its load: 1 = it was, 0 = its presence had lapsed
        (Redis restarted, or no heartbeat for ``worker_ttl_s``) and is back now; raises
        :class:`WorkerIdInUse` if another registration took the id meanwhile."""
        if self.worker_id is None or self.public_url is None:
            raise RuntimeError("register() the worker first")
        if load is not None:
            self._load = load
        load = self._load
        state = int(await self._run("HEARTBEAT", [f"{self._p}w:{self.worker_id}", f"{self._p}workers"], [
            self.worker_id, self.public_url, load.rooms, load.participants,
            "" if load.p99_ms is None else load.p99_ms, self.incarnation, int(self.worker_ttl_s * 1000)]))
        if state < 0:
            raise WorkerIdInUse(f"worker id {self.worker_id!r} was taken by another registration")
        return state

    async def keep_alive(self, load: Callable[[], Load] | None = None, every_s: float | None = None) -> NoReturn:
        """Heartbeat forever (cancel to stop), every ``worker_ttl_s / 3`` by default. Redis
        being away is logged, not fatal: the next heartbeat after it is back re-registers."""
        every = every_s if every_s is not None else self.worker_ttl_s / 3
        task = asyncio.current_task()
        while True:
            try:
                if await self.heartbeat(load() if load is not None else None) == 0:
                    log.warning("worker %s: presence had lapsed; registered again", self.worker_id)
            except ClusterUnavailable as error:
                log.warning("worker %s: heartbeat failed: %s", self.worker_id, error)
            if task is not None and task.cancelling():
                raise asyncio.CancelledError  # asked to stop while redis-py was reading (it can lose that)
            await asyncio.sleep(every)

    async def unregister(self) -> None:
        """Leave the cluster now (a clean shutdown): no new rooms are placed here."""
        if self.worker_id is not None:
            await self._run("UNREGISTER", [f"{self._p}w:{self.worker_id}"], [self.incarnation])

    async def workers(self) -> list[WorkerInfo]:
        """The live workers, least loaded first."""
        data = json.loads(await self._run("WORKERS", [], [self._p]))
        return sorted((WorkerInfo(w, url, Load(int(rooms), int(people), float(p99) if p99 else None),
                                  int(placed), beat / 1000, up / 1000, incarnation)
                       for w, url, rooms, people, p99, placed, beat, up, incarnation in data["workers"] or []),
                      key=rank)

    async def least_loaded(self) -> WorkerInfo | None:
        """Where the next room would be placed (None: no live worker)."""
        live = await self.workers()
        return live[0] if live else None

    # --- lobbies ------------------------------------------------------------------------------

    async def join(self, study: str, scene: str, participant: str, worker_id: str, present: bool = True) -> Joined:
        """``participant`` waits in the lobby of ``scene``, their connection on ``worker_id``.
        ``present=False``: their connection is closed already — they keep a place for the grace
        window but nobody is matched with them until they are :meth:`back`.
        Idempotent: someone already waiting keeps their place (present as said), so a
        worker may re-assert its waiters (after Redis restarted empty). Someone seated in a
        room that has not ended is not put in line again (``Joined.room``)."""
        keys = [*self._lobby_keys(study, scene), self._s(study) + "seated"]
        state, value = await self._run("JOIN", keys, [participant, worker_id, self._s(study) + "lobbies", scene,
                                                      "1" if present else "0"])
        if int(state) < 0:
            return Joined(None, False, value)
        return Joined(int(value) / 1000, bool(int(state)), None)

    async def leave(self, study: str, scene: str, participant: str) -> bool:
        """Take a waiter out of line (timed out, gone); False if they were not waiting — maybe
        just placed in a room: then their mailbox has it."""
        q, since, worker, absent, _ = self._lobby_keys(study, scene)
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(q, participant).hdel(since, participant).hdel(worker, participant).hdel(absent, participant)
        removed, *_ = await self._do(pipe.execute())
        return bool(removed)

    async def mark_absent(self, study: str, scene: str, participant: str) -> bool:
        """The waiter's connection closed: keep their place, match them with nobody, and start
        their grace window (the first mark counts). False if they were not waiting."""
        return bool(await self._run("MARK_ABSENT", self._lobby_keys(study, scene), [participant]))

    async def back(self, study: str, scene: str, participant: str, worker_id: str) -> bool:
        """The waiter reconnected (to ``worker_id``) within grace: their place, present again."""
        return bool(await self._run("BACK", self._lobby_keys(study, scene), [participant, worker_id]))

    async def try_form(self, study: str, scene: str, group_size: int) -> Placement | None:
        """Atomically take the first ``group_size`` present waiters, in arrival order, and
        place their room on the least-loaded live worker; each member's seat reservation goes
        to their mailbox. None when fewer are present (or no worker is alive)."""
        return await self._form(study, scene, group_size, group_size, "")

    async def try_fill(self, study: str, scene: str, participant: str, group_size: int) -> Placement | None:
        """At ``participant``'s lobby timeout, with the scene's ``fill``: atomically form a room
        of them and up to ``group_size - 1`` other present waiters (arrival order); the empty
        seats are for the fill. None if they are no longer waiting (placed meanwhile, gone) or
        absent."""
        return await self._form(study, scene, group_size, 1, participant)

    async def _form(self, study: str, scene: str, size: int, least: int, include: str, room_id: str | None = None,
                    tokens: Sequence[str] | None = None) -> Placement | None:
        if size < 1:
            raise ValueError("a group has at least one seat")
        tokens = list(tokens) if tokens is not None else [secrets.token_urlsafe(24) for _ in range(size)]
        room_id = room_id or uuid.uuid4().hex
        args: list[Any] = [self._p, self._s(study), study, scene, size, least, include, room_id,
                           int(self.reservation_ttl_s * 1000), int(self.reservation_ttl_s * 1000)]
        for token in tokens:
            args += [token, token_sha256(token)]
        raw = await self._run("FORM", self._lobby_keys(study, scene)[:4], args)
        if raw is None:
            return None
        data = json.loads(raw)
        if data.get("error") == "no_worker":
            log.warning("lobby %s/%s: a group is ready but no worker is alive to host it", study, scene)
            return None
        seats = tuple(Seat(pid, index, tokens[index], waited / 1000)
                      for index, (pid, waited) in enumerate(data["seats"]))
        return Placement(data["room"], study, scene, data["worker"], data["url"], int(data["size"]), seats,
                         data["reason"], data["created_ms"] / 1000, data.get("incarnation", ""))

    async def expire_absent(self, study: str, scene: str, grace_s: float) -> list[tuple[str, float]]:
        """Waiters absent for ``grace_s`` or more leave the line (outcome ``disconnected``):
        [(participant, seconds waited)]. Waiters of a dead worker count as absent from the
        first time any call sees it dead. Any worker may sweep; each waiter goes once."""
        raw = await self._run("EXPIRE_ABSENT", self._lobby_keys(study, scene)[:4], [self._p, int(grace_s * 1000)])
        return [(pid, waited / 1000) for pid, waited in json.loads(raw)]

    async def lobby(self, study: str, scene: str) -> list[dict[str, Any]]:
        """Who waits for ``scene``, in arrival order: since when, on which worker, present or
        away (and for how long)."""
        data = json.loads(await self._run("LOBBY", self._lobby_keys(study, scene)[:4], [self._p]))
        now = data["now"]
        return [{"participant": pid, "since": since / 1000, "waited_s": round((now - since) / 1000, 3),
                 "worker": worker or None, "present": bool(present),
                 "away_s": None if away is False else round((now - away) / 1000, 3)}
                for pid, since, worker, present, away in data["waiting"] or []]

    # --- mailboxes -------------------------------------------------------------------------------

    async def post(self, study: str, participant: str, message: Mapping[str, Any]) -> None:
        """Leave ``message`` in ``participant``'s mailbox (kept ``reservation_ttl_s``) and wake
        whichever worker waits on it."""
        box = self._mailbox(study, participant)
        pipe = self._redis.pipeline(transaction=True)
        pipe.rpush(box, json.dumps(dict(message))).pexpire(box, int(self.reservation_ttl_s * 1000))
        pipe.publish(f"{self._p}mail", box)
        await self._do(pipe.execute())

    async def next_message(self, study: str, participant: str, timeout_s: float) -> dict[str, Any] | None:
        """The next message in ``participant``'s mailbox (a formed room: ``{"t": "room",
        "room", "worker", "url", "token", "seat", "members", "size", "reason", "waited_ms"}``),
        waiting up to ``timeout_s``; None if none came. Woken by pub/sub, and it also looks
        every ``poll_s``, so a lost notification only delays."""
        box = self._mailbox(study, participant)
        self._listen()
        event = asyncio.Event()
        self._mail_waiters.setdefault(box, set()).add(event)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while True:
                event.clear()
                raw = await self._do(self._redis.lpop(box))
                if raw is not None:
                    mail: dict[str, Any] = json.loads(raw)  # a mailbox holds JSON objects
                    return mail
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                try:
                    await asyncio.wait_for(event.wait(), min(remaining, self.poll_s))
                except TimeoutError:
                    pass
        finally:
            waiters = self._mail_waiters.get(box)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._mail_waiters[box]

    def _listen(self) -> None:
        if self._closing:
            raise RuntimeError("this Cluster is closed")
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen_forever(), name="cluster mail")

    async def _listen_forever(self) -> None:
        """Wake local waiters when a mailbox of theirs gets mail; survives Redis going away."""
        channel = f"{self._p}mail"
        task = asyncio.current_task()
        while not self._closing:
            pubsub = self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await self._do(pubsub.subscribe(channel))
                while not self._closing:
                    message = await pubsub.get_message(timeout=self.poll_s)
                    if task is not None and task.cancelling():
                        raise asyncio.CancelledError  # a cancellation redis-py's read lost
                    if message is not None and message.get("type") == "message":
                        for event in self._mail_waiters.get(message["data"], ()):
                            event.set()
            except (ClusterUnavailable, rexc.RedisError, OSError) as error:
                if self._closing:
                    return
                log.debug("mail listener: %s; again shortly", error)
                for waiters in self._mail_waiters.values():  # they poll; let them look now
                    for event in waiters:
                        event.set()
                await asyncio.sleep(min(self.poll_s, 0.5))
            finally:
                self._pubsub = None
                try:
                    await asyncio.wait_for(pubsub.aclose(), self.op_timeout_s)
                except Exception as error:  # noqa: BLE001 — a broken connection cannot close cleanly
                    log.debug("closing the mail subscription: %r", error)

    # --- reservations and rooms ---------------------------------------------------------------------

    async def claim_reservation(self, token: str, worker_id: str, incarnation: str | None = None) -> Reservation | None:
        """The member's client presented ``token`` to ``worker_id`` (its registration
        ``incarnation``, this object's own by default): their seat, once, and only on the
        registration of the worker the room was placed on (elsewhere the reservation stays
        claimable); the participant is that worker's from now on. None: unknown, used,
        expired or wrong worker."""
        incarnation = self.incarnation if incarnation is None else incarnation
        raw = await self._run("CLAIM_RESERVATION", [f"{self._p}resv:{token_sha256(token)}"],
                              [worker_id, incarnation, self._p])
        if raw is None:
            return None
        data = json.loads(raw)
        if "error" in data:
            return None
        return Reservation(data["room"], data["study"], data["scene"], data["participant"], int(data["seat"]),
                           data["worker"])

    async def room(self, room_id: str) -> RoomInfo | None:
        """A placed room that has not ended."""
        data = await self._do(self._redis.hgetall(f"{self._p}room:{room_id}"))
        return RoomInfo.from_hash(data) if data else None

    async def room_of(self, study: str, participant: str) -> str | None:
        """The room ``participant`` is seated in (placed and not ended), if any."""
        return await self._do(self._redis.hget(self._s(study) + "seated", participant))

    async def room_ended(self, room_id: str, worker_id: str) -> RoomInfo | None:
        """The hosting worker (this registration of it) ends its room: it no longer counts
        toward its load."""
        return await self._end_room(room_id, "end", worker_id)

    async def rooms_of_dead_workers(self) -> list[RoomInfo]:
        """Rooms whose worker is gone (no heartbeat for ``worker_ttl_s``, or restarted since):
        their members' games are lost (``server_lost``)."""
        return [RoomInfo.from_hash(h) for h in json.loads(await self._run("DEAD_ROOMS", [], [self._p]))]

    async def reap_room(self, room_id: str) -> RoomInfo | None:
        """Take a dead worker's room off the books; exactly one caller gets it (and records
        ``server_lost`` for its members), None for the rest or if its worker is alive."""
        return await self._end_room(room_id, "reap", "")

    async def _end_room(self, room_id: str, mode: str, worker_id: str) -> RoomInfo | None:
        raw = await self._run("END_ROOM", [f"{self._p}room:{room_id}"],
                              [self._p, room_id, mode, worker_id, self.incarnation])
        return RoomInfo.from_hash(json.loads(raw)) if raw is not None else None

    # --- study-wide state -------------------------------------------------------------------------------

    async def assign_condition(self, study: str, participant: str, conditions: Sequence[str]) -> str | None:
        """Balanced assignment: the least-used of ``conditions`` (ties: the first declared, as
        :meth:`igym.experiment.Experiment.choose_condition`), counted atomically across
        workers; the same answer every time for one participant. None without conditions."""
        if not conditions:
            return None
        s = self._s(study)
        condition: str | None = await self._run("ASSIGN_CONDITION", [s + "cond", s + "cond_n"],
                                                [participant, *conditions])
        return condition

    async def unassign_condition(self, study: str, participant: str) -> str | None:
        """Stop counting ``participant`` (a declined consent); returns the condition they had."""
        s = self._s(study)
        condition: str | None = await self._run("UNASSIGN_CONDITION", [s + "cond", s + "cond_n"], [participant])
        return condition

    async def condition_counts(self, study: str) -> dict[str, int]:
        """Participants per condition, as assigned through the cluster."""
        counts = await self._do(self._redis.hgetall(self._s(study) + "cond_n"))
        return {name: int(n) for name, n in counts.items()}

    async def init_condition_counts(self, study: str, counts: Mapping[str, int]) -> None:
        """Start the counters from the study's data (a study resumed with a fresh Redis); a
        counter already in Redis is kept, so every worker may call this at start."""
        if counts:
            pipe = self._redis.pipeline(transaction=True)
            for name, n in counts.items():
                pipe.hsetnx(self._s(study) + "cond_n", name, int(n))
            await self._do(pipe.execute())

    async def mark_completed(self, study: str, participant: str) -> bool:
        """``participant`` finished the study (True the first time)."""
        return bool(await self._do(self._redis.sadd(self._s(study) + "completed", participant)))

    async def has_completed(self, study: str, participant: str) -> bool:
        return bool(await self._do(self._redis.sismember(self._s(study) + "completed", participant)))

    async def set_token(self, study: str, participant: str, sha256: str) -> None:
        """Remember ``participant``'s reconnect token (its sha256), replacing an older one, so
        any worker can accept them when they come back."""
        s = self._s(study)
        await self._run("SET_TOKEN", [s + "tokens", s + "token_pids"], [participant, sha256])

    async def token_of(self, study: str, participant: str) -> str | None:
        """The sha256 of ``participant``'s reconnect token."""
        return await self._do(self._redis.hget(self._s(study) + "tokens", participant))

    async def token_participant(self, study: str, sha256: str) -> str | None:
        """Whose reconnect token has this sha256."""
        return await self._do(self._redis.hget(self._s(study) + "token_pids", sha256))

    async def publish_view(self, study: str, view: Mapping[str, Any], ttl_s: float = 3.0) -> None:
        """This worker's picture of the study (its dashboard snapshot) for the others to merge;
        it expires with ``ttl_s`` so a dead worker's view goes away by itself."""
        if self.worker_id is None:
            raise RuntimeError("register() the worker first")
        await self._do(self._redis.set(f"{self._s(study)}view:{esc(self.worker_id)}", json.dumps(dict(view)),
                                       px=int(ttl_s * 1000)))

    async def views(self, study: str) -> list[dict[str, Any]]:
        """The published pictures of every live worker but this one."""
        others = [w.worker_id for w in await self.workers() if w.worker_id != self.worker_id]
        if not others:
            return []
        raw = await self._do(self._redis.mget([f"{self._s(study)}view:{esc(w)}" for w in others]))
        return [json.loads(r) for r in raw if r is not None]

    async def save_snapshot(self, study: str, participant: str, snapshot: Mapping[str, Any]) -> None:
        """Keep ``participant``'s :meth:`igym.study.StudyRun.snapshot` (JSON), after every
        scene change, so whichever worker serves them next resumes where they were."""
        await self._do(self._redis.hset(self._s(study) + "snapshots", participant, json.dumps(snapshot)))

    async def load_snapshot(self, study: str, participant: str) -> dict[str, Any] | None:
        raw = await self._do(self._redis.hget(self._s(study) + "snapshots", participant))
        return json.loads(raw) if raw is not None else None

    async def forget_snapshot(self, study: str, participant: str) -> None:
        """The run ended: nothing to resume."""
        await self._do(self._redis.hdel(self._s(study) + "snapshots", participant))

    async def claim_participant(self, study: str, participant: str, worker_id: str) -> OwnerClaim:
        """Serve ``participant`` on ``worker_id`` (this registration of it) — if nobody does, or
        their worker is dead (a predecessor under the same id included). While another live
        worker serves them, or their room lives on another live worker, the claim fails with
        that worker's id and URL (send the client there). One participant, one worker at a time."""
        s = self._s(study)
        reply = await self._run("CLAIM_PARTICIPANT", [s + "owners", s + "owner_incs", s + "seated"],
                                [participant, worker_id, self.incarnation, self._p])
        if int(reply[0]) == 1:
            return OwnerClaim(True, worker_id, previous=reply[1] or None, took_over=int(reply[2]) == 1)
        return OwnerClaim(False, reply[1], owner_url=reply[2] or None)

    async def release_participant(self, study: str, participant: str, worker_id: str) -> bool:
        """``worker_id`` (this registration of it) no longer serves ``participant`` (ended,
        parked, moved); only the owner can release."""
        s = self._s(study)
        return bool(await self._run("RELEASE_PARTICIPANT", [s + "owners", s + "owner_incs"],
                                    [participant, worker_id, self.incarnation]))

    async def owner_of(self, study: str, participant: str) -> str | None:
        return await self._do(self._redis.hget(self._s(study) + "owners", participant))

    # --- status --------------------------------------------------------------------------------------

    async def status(self, study: str) -> dict[str, Any]:
        """The cluster's part of ``/status``, the same on every worker: live workers and their
        load, participants by worker, lobbies (who waits, since when), rooms by worker, rooms
        of dead workers, conditions and completions."""
        s = self._s(study)
        live = await self.workers()
        alive = {w.worker_id: w.incarnation for w in live}
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(s + "owners").hgetall(s + "owner_incs").smembers(s + "lobbies").smembers(s + "rooms")
        pipe.hgetall(s + "cond_n").scard(s + "completed")
        owners, owner_incs, scenes, room_ids, counts, completed = await self._do(pipe.execute())
        by_worker: dict[str, list[str]] = {w.worker_id: [] for w in live}
        orphaned: list[str] = []
        for pid, worker in sorted(owners.items()):
            served = worker in alive and owner_incs.get(pid, alive[worker]) == alive[worker]
            (by_worker[worker] if served else orphaned).append(pid)
        lobbies = {}
        for scene in sorted(scenes):
            waiting = await self.lobby(study, scene)
            if waiting:
                lobbies[scene] = waiting
        rooms: dict[str, list[dict[str, Any]]] = {w.worker_id: [] for w in live}
        lost: list[dict[str, Any]] = []
        lost_ids = {room.room_id for room in await self.rooms_of_dead_workers()}
        if room_ids:
            pipe = self._redis.pipeline(transaction=False)
            for room_id in sorted(room_ids):
                pipe.hgetall(f"{self._p}room:{room_id}")
            for h in await self._do(pipe.execute()):
                if not h:
                    continue
                room = RoomInfo.from_hash(h)
                entry = {"room": room.room_id, "scene": room.scene, "members": list(room.members),
                         "size": room.size, "reason": room.reason, "created": room.created}
                if room.room_id in lost_ids or room.worker_id not in rooms:
                    lost.append({**entry, "worker": room.worker_id})
                else:
                    rooms[room.worker_id].append(entry)
        return {"workers": [w.as_dict() for w in live],
                "participants_by_worker": by_worker, "participants_without_live_worker": orphaned,
                "lobbies": lobbies, "rooms_by_worker": rooms, "rooms_of_dead_workers": lost,
                "conditions": {k: int(v) for k, v in counts.items()}, "completed": completed}
