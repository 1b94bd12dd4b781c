"""The igym server: participants connect over WebSocket and play the experiment's scenes.

One asyncio process. :class:`IgymServer` accepts connections, knows the participants
(:mod:`.participants`), starts each one's flow through the study (:mod:`.flow`), forms
groups in lobbies (:mod:`.lobby`) and builds rooms (:mod:`.rooms`, :mod:`.lockstep`) in
one place, :meth:`IgymServer.new_room`. Every message from a client is validated by
:mod:`igym.wire`; a violation closes that connection with a close code and a reason, is
logged and counted, and nothing else is disturbed. Every task the server starts is owned
(:mod:`.tasks`): a failure is logged once and ends only what it belongs to. Every database
read and write goes through the storage thread (:mod:`.storage`), never the event loop.

``GET /status?token=...`` returns JSON (rooms, participants, lobbies, tick lateness
percentiles, bytes sent, messages rejected, the data's health); the token is
``--admin-token`` or printed at start. There is no default password, and wrong tokens are
slowed down like the dashboard's login (:mod:`.dashboard.throttle`). Every other plain
HTTP request, and the WebSocket at ``/dashboard/live``, belongs to the experimenter's
dashboard (:mod:`.dashboard`), behind the same token.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import random
import secrets
import time
from typing import TYPE_CHECKING, Any

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from igym import answer_times, wire
from igym.experiment import Experiment, Game
from igym.replay import file_sha256
from igym.records import EpisodeRecord, EventRecord, ParticipantRecord, StepRecord, VisitRecord

from .cluster_errors import ClusterUnavailable
from .dashboard import LIVE_PATH, Dashboard
from .dashboard.throttle import Network
from .flow import page_done, run_flow
from .guard import Guard
from .lobby import Lobby
from .lockstep import LockstepRoom
from .participants import Participant, token_sha256
from .rooms import GameRoom, Metronome, Room
from .storage import Storage
from .tasks import Tasks

if TYPE_CHECKING:
    from .cluster_lobby import ClusterLobby, Gathering
    from .clustering import WorkerCluster

log = logging.getLogger("igym.server")
HELLO_TIMEOUT_S = 5.0
MAX_WAITING_FOR_HELLO = 256  # connections open without a hello yet; more are turned away (busy)
PAGE_ABANDON_S = 600.0  # a participant gone this long from a page has left the study
PARK_AFTER_S = 60.0  # a participant gone this long from a page is no longer held in memory (they can resume)


class Stats:
    """Counters for /status: tick lateness (a sorted sample window), bytes of frames and of
    relayed inputs sent, rejections."""

    def __init__(self, window: int = 20000) -> None:
        self.window = window
        self._late: list[float] = []
        self.bytes_sent = 0
        self.frames_sent = 0
        self.inputs_relayed = 0
        self.rejected = 0
        self.ticks = 0  # lateness samples ever taken (a mark for lateness_since)
        self.started = time.monotonic()

    def lateness(self, seconds: float) -> None:
        self.ticks += 1
        self._late.append(seconds)
        if len(self._late) > self.window:
            del self._late[: self.window // 2]

    def sent(self, size: int) -> None:
        """A frame went to a client (authoritative rooms)."""
        self.bytes_sent += size
        self.frames_sent += 1

    def relayed(self, size: int) -> None:
        """A step's inputs went to a client (lockstep rooms)."""
        self.bytes_sent += size
        self.inputs_relayed += 1

    def lateness_since(self, mark: int) -> tuple[list[float], int]:
        """The lateness samples (s) taken after ``mark`` and the new mark: the dashboard's
        per-second percentiles, without sorting the whole window on the event loop."""
        new = min(self.ticks - mark, len(self._late))
        return (self._late[-new:] if new > 0 else []), self.ticks

    def percentiles(self) -> dict[str, float]:
        values = sorted(self._late)
        if not values:
            return {}

        def pick(q: float) -> float:
            return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 3)

        return {"p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99), "max_ms": round(values[-1] * 1000, 3),
                "samples": len(values)}


class IgymServer:
    """Hosts one experiment for participants who connect over WebSocket.

    ``sink`` is the study's data sink (:class:`igym.sqlite_sink.SqliteSink`); the server
    runs it on its storage thread and closes it in :meth:`close`.
    """

    def __init__(self, experiment: Experiment, sink: Any, admin_token: str | None = None,
                 collect: bool = False, page_abandon_s: float = PAGE_ABANDON_S, park_after_s: float = PARK_AFTER_S,
                 relay_delay_ms: tuple[float, float] | None = None, relay_seed: int | None = None,
                 trusted_proxies: tuple[Network, ...] = ()) -> None:
        self.experiment = experiment
        source = experiment.source_file
        self.experiment_file = str(source) if source is not None else None
        self.experiment_sha256 = file_sha256(source) if source is not None and source.is_file() else None
        self.collect = collect
        self.page_abandon_s = page_abandon_s
        self.park_after_s = park_after_s
        self.sink = sink
        self.storage = Storage(sink)
        self.tasks = Tasks()
        self.admin_token = admin_token or secrets.token_urlsafe(16)
        self.stats = Stats()
        self.participants: dict[str, Participant] = {}
        self.lobbies: dict[str, Lobby | ClusterLobby] = {}
        self.rooms: set[GameRoom] = set()
        self.waiting_for_hello = 0
        self.finished = 0  # participants whose study ended since the server started
        self.parked = 0  # participants parked (away from a page, out of memory) since the server started
        self._metronomes: dict[float, Metronome] = {}
        # A simulated slow network for lockstep rooms: each relayed input waits a random time in this range.
        self.relay_delay_s = (relay_delay_ms[0] / 1000, relay_delay_ms[1] / 1000) if relay_delay_ms else None
        self.relay_rng = random.Random(relay_seed)
        self.trusted_proxies = trusted_proxies  # reverse proxies whose X-Forwarded-For is believed (--trust-proxy)
        self.dashboard = Dashboard(self)
        self.cluster: WorkerCluster | None = None  # set when this server is one worker of many (--redis)
        self.gatherings: dict[str, Gathering] = {}  # rooms placed here by the cluster, their members arriving

    # --- the one place rooms and lobbies are made ------------------------------------------

    def new_room(self, index: int, game: Game, members: dict[str, Participant], fills: dict[str, Any] | None = None,
                 visit_id: str | None = None) -> GameRoom:
        """The room a group plays ``game`` in: lockstep (clients run the env) or authoritative."""
        room: GameRoom
        if game.network == "lockstep":
            room = LockstepRoom(self, index, game, members, visit_id)
        else:
            room = Room(self, index, game, members, fills or {}, visit_id)
        self.rooms.add(room)
        room.done.add_done_callback(lambda _: self.rooms.discard(room))
        room.start()
        return room

    def lobby(self, game: Game) -> Lobby | ClusterLobby:
        """The lobby of a multiplayer Game (by name: random orders reach it at different positions);
        one worker of many shares it with the others (:mod:`.cluster_lobby`)."""
        lobby = self.lobbies.get(game.name)
        if lobby is None:
            if self.cluster is not None:
                from .cluster_lobby import ClusterLobby
                lobby = self.lobbies[game.name] = ClusterLobby(self, game)
            else:
                lobby = self.lobbies[game.name] = Lobby(self, game)
        return lobby

    def gathering(self, room_id: str, game: Game, scene_index: int, members: list[str], size: int) -> Gathering:
        """The members of room ``room_id``, placed on this worker by the cluster, arriving."""
        from .cluster_lobby import Gathering
        found = self.gatherings.get(room_id)
        if found is None:
            found = self.gatherings[room_id] = Gathering(self, room_id, game, scene_index, members, size)
        return found

    def metronome(self, fps: float) -> Metronome:
        """The shared clock of all rooms that step at ``fps``."""
        metronome = self._metronomes.get(fps)
        if metronome is None:
            metronome = self._metronomes[fps] = Metronome(fps, self.stats)
            self.tasks.spawn(metronome.run(), f"metronome at {fps} Hz")
        return metronome

    async def network_delay(self) -> None:
        """With ``relay_delay_ms``, pings wait like relayed inputs, so the measured round trip
        (and the lockstep input delay derived from it) sees the simulated network too."""
        if self.relay_delay_s is not None:
            await asyncio.sleep(self.relay_rng.uniform(*self.relay_delay_s))

    def forget(self, participant: Participant, release: bool = True) -> None:
        """Hold ``participant`` in memory no more (their study ended, or they are away and parked):
        what they need to come back is in the data. ``release``: tell the cluster this worker lets
        go of them (not needed when they were handed over: that let go already)."""
        if self.participants.get(participant.pid) is participant:
            del self.participants[participant.pid]
            if self.cluster is not None and release:
                self.cluster.release(participant.pid, completed=participant.finished)

    async def sweep(self) -> None:
        """Parked participants away longer than ``page_abandon_s`` have left the study (their visit
        and status end as aborted); a restarted server parks everyone it finds resumable — unless it
        is one worker of many: the others' participants are not away, and whoever comes back is
        claimed by the worker they reach."""
        if self.cluster is None:
            await self.storage.call(self.sink.park_everyone)
        while True:
            await self.storage.call(self.sink.abandon_parked, time.time() - self.page_abandon_s)
            await asyncio.sleep(min(30.0, max(0.2, self.page_abandon_s / 4)))

    async def close(self) -> None:
        """Stop every task (flows, rooms, clocks) and close the data with everything written."""
        await self.tasks.cancel_all()
        if self.cluster is not None:
            await self.cluster.stop()
        await asyncio.to_thread(self.storage.close)

    # --- HTTP -----------------------------------------------------------------------------

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer ``GET /status`` over plain HTTP, the dashboard's pages; let WebSocket upgrades through."""
        path, _, query = request.path.partition("?")
        if path != "/status":
            return await self.dashboard.route(connection, request)
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        token = params.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not secrets.compare_digest(token.encode("utf-8", "replace"), self.admin_token.encode()):
            return await self.dashboard.wrong_token(connection, request, "status needs ?token=ADMIN_TOKEN")
        body = json.dumps(self.status()).encode()
        return Response(200, "OK", Headers({"Content-Type": "application/json",
                                             "Content-Length": str(len(body))}), body)

    def status(self) -> dict[str, Any]:
        live = [r for r in self.rooms if not r.done.done()]
        participants = self.participants.values()
        return {
            "experiment": self.experiment.id,
            "uptime_s": round(time.monotonic() - self.stats.started, 1),
            "rooms": len(live),
            "participants": {"connected": sum(p.present for p in participants), "known": len(self.participants),
                             "finished": self.finished, "parked": self.parked},
            "lobbies": {name: len(lobby.present()) for name, lobby in self.lobbies.items()},
            "tick_lateness": self.stats.percentiles(),
            "bytes_sent": self.stats.bytes_sent,
            "frames_sent": self.stats.frames_sent,
            "inputs_relayed": self.stats.inputs_relayed,
            "messages_rejected": self.stats.rejected,
            "tasks": len(self.tasks),
            "storage": {"alive": self.storage.alive, "records_written": self.storage.records_written,
                        "last_commit_s_ago": round(time.time() - self.storage.last_commit, 3)},
            **({"cluster": self.cluster.last_status} if self.cluster is not None else {}),
        }

    # --- WebSocket ------------------------------------------------------------------------

    async def handler(self, connection: ServerConnection) -> None:
        if connection.request is not None and connection.request.path.partition("?")[0] == LIVE_PATH:
            return await self.dashboard.live(connection)
        participant: Participant | None = None
        if self.waiting_for_hello >= MAX_WAITING_FOR_HELLO:
            self.stats.rejected += 1
            await connection.close(wire.CLOSE_BUSY, "the server is busy: try again in a moment")
            return
        guard = Guard(connection)
        try:
            self.waiting_for_hello += 1
            try:
                hello = await guard.admit(await asyncio.wait_for(connection.recv(), HELLO_TIMEOUT_S))
            finally:
                self.waiting_for_hello -= 1
            if hello["t"] != "hello":
                raise wire.ProtocolError("the first message must be hello")
            if hello["v"] != wire.PROTOCOL_VERSION:
                raise wire.ProtocolError(f"protocol version {hello['v']} is not {wire.PROTOCOL_VERSION}: "
                                         f"update the client", wire.CLOSE_VERSION)
            uploading = hello.get("mode") == "upload"
            if uploading and not self.collect:
                raise wire.ProtocolError("this server does not collect uploads — start it with --collect")
            known = None
            if self.cluster is not None and hello["pid"] not in self.participants:
                # Before any claim: during a hand-over the participant belongs to no worker for a
                # moment, and a stranger's hello must not take them.
                known = await self._known(hello)
                if await self._elsewhere(hello["pid"], connection):
                    return
            participant = await self._attach(hello, connection, known)
            guard.enter("upload" if uploading else "play")
            participant.guard = guard
            welcome = {"t": "welcome", "pid": participant.pid, "token": participant.token,
                       "experiment": self.experiment.id}
            if uploading:  # a page that runs the study itself balances conditions with this
                welcome["conditions"] = await self.storage.call(self.sink.condition_counts, self.experiment.id)
            await participant.send(welcome)
            if participant.room is not None and participant.member is not None:
                await participant.room.rejoined(participant.member)
            elif participant.lobby is not None:
                participant.lobby.back(participant)
            if participant.page is not None:
                await participant.send(participant.page)
            if uploading:
                participant.uploading = True
                await self.storage.call(self.sink.checkpoint, participant.pid, participant.token_sha256, None, True)
            elif participant.flow is None:
                participant.flow = self.tasks.spawn(run_flow(self, participant), f"flow of {participant.pid!r}")
            pinger = self.tasks.spawn(participant.keep_pinging(connection), f"pings of {participant.pid!r}")
            try:
                async for data in connection:
                    await self._dispatch(participant, await guard.admit(data))
            finally:
                pinger.cancel()
        except wire.ProtocolError as error:
            self.stats.rejected += 1
            self.dashboard.rejected(participant.pid if participant else None, error.reason)
            log.warning("closing %s: %s", participant.pid if participant else connection.remote_address, error.reason)
            if participant is not None:
                self._record(participant, "rejected", {"code": error.code, "reason": error.reason})
            await connection.close(error.code, error.reason)
        except (TimeoutError, websockets.ConnectionClosed):
            pass
        finally:
            if participant is not None and participant.handed_over:
                pass  # sent on to another worker of the study: nothing of theirs is here any more
            elif participant is not None and participant.detach(connection):
                self._record(participant, "disconnect", {})
                room, member = participant.room, participant.member
                if room is not None and member is not None and not participant.finished:
                    room.spawn(room.dropped(member), f"dropout of {participant.pid!r}")
                elif participant.lobby is not None:
                    participant.lobby.absent(participant)
                if participant.uploading or participant.finished:
                    self.forget(participant)  # an uploader's place is in its page; a finished one has none

    async def _known(self, hello: dict[str, Any]) -> tuple[str | None, tuple[str, Any] | None]:
        """What the data knows of the hello's participant — their status and resume point (token
        hash, snapshot) — after refusing a hello that is not theirs: a known participant without
        their token, or one who took part already."""
        pid, token = hello["pid"], hello.get("token")
        status, point = await self.storage.call(self.sink.resume_point, pid)
        if point is not None:
            if token is None or token_sha256(token) != point[0]:
                raise wire.ProtocolError(f"participant {pid} is known: reconnect with its token")
        elif status not in (None, "started"):
            raise wire.ProtocolError(f"participant {pid} already took part in this study ({status})",
                                     wire.CLOSE_TOOK_PART)
        return status, point

    async def _elsewhere(self, pid: str, connection: ServerConnection) -> bool:
        """One worker of many: is ``pid`` served by another live worker? Then send them there."""
        assert self.cluster is not None
        try:
            owner_url = await self.cluster.admit(pid)
        except ClusterUnavailable:
            await connection.close(wire.CLOSE_BUSY, "the study's coordinator is unreachable: try again in a moment")
            return True
        if owner_url is None:
            return False
        await connection.send(wire.pack({"t": "move", "url": owner_url}))
        await connection.close(wire.CLOSE_MOVED, "served by another worker of this study")
        return True

    async def _attach(self, hello: dict[str, Any], connection: ServerConnection,
                      known: tuple[str | None, tuple[str, Any] | None] | None = None) -> Participant:
        """The participant this hello is: in memory, resumed from the data (parked, or a restarted
        server), or new. A known participant must show their reconnect token. ``known``: what
        :meth:`_known` already read of them."""
        pid, token = hello["pid"], hello.get("token")
        reconnect = token is not None
        participant = self.participants.get(pid)
        if participant is None:
            _, point = known if known is not None else await self._known(hello)
            participant = self.participants.get(pid)  # someone with this id may have arrived meanwhile
            if participant is None and point is not None:
                participant = self.participants[pid] = Participant(pid, self.network_delay)
                participant.token, participant.restored = hello["token"], point[1]  # _known checked it
            elif participant is None:
                participant = self.participants[pid] = Participant(pid, self.network_delay)
                await self.storage.call(self.sink.add_participant, pid, self.experiment.id,
                                        {"remote": str(connection.remote_address)})
                token = participant.token  # the one who made it needs no token
        if token != participant.token:
            if participant.finished:
                raise wire.ProtocolError(f"participant {pid} already completed this study", wire.CLOSE_TOOK_PART)
            raise wire.ProtocolError(f"participant {pid} is known: reconnect with its token")
        old = participant.attach(connection)
        if old is not None:
            self.tasks.spawn(old.close(wire.CLOSE_REPLACED, "replaced by a newer connection"),
                             f"closing {pid!r}'s old connection")
        self._record(participant, "connect", {"reconnect": reconnect})
        return participant

    async def _dispatch(self, participant: Participant, message: dict[str, Any]) -> None:
        kind = message["t"]
        member, room = participant.member, participant.room
        if kind == "key":
            seat = member.agent if member is not None else participant.last_seat
            if message["seat"] != seat:
                raise wire.ProtocolError(f"key for seat {message['seat']!r}, but this connection plays {seat!r}")
            if member is not None and room is not None:
                room.key(member, message["k"], message["d"] == 1)  # between scenes keys mean nothing
        elif kind in ("in", "state", "refuse"):
            if room is None or member is None:
                if participant.last_seat is not None:
                    return  # the game just ended: its last messages mean nothing
                raise wire.ProtocolError(f"{kind}: only lockstep games take '{kind}' messages")
            {"in": room.on_input, "state": room.on_state, "refuse": room.on_refuse}[kind](member, message)
        elif kind == "pong":
            rtt_ms = participant.pong(message["n"])
            if rtt_ms is not None:
                self._record(participant, "rtt", {"ms": rtt_ms})
        elif kind == "focus":
            visit = getattr(participant.run, "current", None)  # the page or game on screen, if any
            self._record(participant, "focus_gained" if message["f"] else "focus_lost",
                         {"visit": visit.visit_id} if visit is not None else {})
        elif kind == "records":
            await self._store_upload(participant, message)
        elif kind == "page":
            page_done(participant, message)
        elif kind == "hello":
            raise wire.ProtocolError("hello twice on one connection")

    async def _store_upload(self, participant: Participant, message: dict[str, Any]) -> None:
        """Check an uploaded batch is this participant's own, commit it, acknowledge it."""
        if not participant.uploading:
            raise wire.ProtocolError("records need hello with mode='upload' on a server started with --collect")
        records = message["r"]  # rebuilt and checked by the guard
        pid = participant.pid
        for record in records:
            kind = type(record)
            if kind is EpisodeRecord:
                if record.participant_id != pid:
                    raise wire.ProtocolError("records: an episode of another participant")
                await self._own_episode(participant, record.episode_id, new=True)
            elif kind is StepRecord:
                await self._own_episode(participant, record.episode_id)
            elif record.participant_id != pid:
                raise wire.ProtocolError(f"records: a {kind.__name__} of another participant")
            elif kind is VisitRecord:
                if await self.storage.call(self.sink.visit_owner, record.visit_id) not in (None, pid):
                    raise wire.ProtocolError("records: a visit of another participant")
                if record.timings is not None:  # the page's own report: its form is all we can check
                    wrong = answer_times.problem(record.timings, record.answers or {})
                    if wrong:
                        raise wire.ProtocolError(f"records: a visit's {wrong}")
            elif kind is EventRecord and record.episode_id is not None:
                await self._own_episode(participant, record.episode_id)
            elif kind is ParticipantRecord:
                # What the page says of itself is kept apart from what the server knows: replay and
                # export never take a path to run from a participant's own words.
                record.meta = {"source": "upload", "client": record.meta, "experiment_file": self.experiment_file,
                               "experiment_sha256": self.experiment_sha256}
        await self.storage.call(self.sink.store_batch, message["b"], pid, records)
        await participant.send({"t": "stored", "b": message["b"]})

    async def _own_episode(self, participant: Participant, episode_id: str, new: bool = False) -> None:
        """An uploaded record names ``episode_id``: it must be the uploader's (or, for an episode
        record, not yet anyone's)."""
        if episode_id in participant.episodes:
            return
        owner = await self.storage.call(self.sink.episode_owner, episode_id)
        if owner != participant.pid and not (new and owner is None):
            raise wire.ProtocolError("records: an episode that is not yours")
        participant.episodes.add(episode_id)

    def _record(self, participant: Participant, kind: str, data: dict[str, Any]) -> None:
        self.storage.write([EventRecord(participant.pid, time.monotonic_ns(), kind, data or None)])


async def serve_forever(server: IgymServer, host: str, port: int, ready: asyncio.Future[Server] | None = None,
                        on_listening: Any = None, own_port: int | None = None) -> None:
    """Listen on ``host:port`` and serve until cancelled; ``ready``/``on_listening`` fire once bound.

    When cancelled, every task of the server is cancelled and the data is closed with
    everything written. The cyclic garbage collector is tuned for a soft-real-time loop:
    what exists at start (modules, the experiment) is frozen out of collection, and full
    collections are rarer, so a collection pass never stalls every room's tick (they showed
    as 20–40 ms spikes).
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)
    options: dict[str, Any] = dict(process_request=server.process_request, compression=None,
                                   max_size=wire.MAX_HELLO_BYTES, ping_interval=None)
    try:
        if server.cluster is not None:
            await server.cluster.start()  # registered before the first hello is served
        # One worker of many on a machine shares the study's port with its siblings (the kernel
        # spreads new connections over them) and has a port of its own, where ``move`` sends
        # the participants it holds.
        async with serve(server.handler, host, port, reuse_port=own_port is not None, **options) as ws_server, \
                _own_listener(server, host, own_port, options):
            server.tasks.spawn(server.sweep(), "sweeping parked participants")
            server.tasks.spawn(server.dashboard.run(), "dashboard")
            if ready is not None:
                ready.set_result(ws_server)
            if on_listening is not None:
                on_listening(ws_server.sockets[0].getsockname()[1])
            await asyncio.Future()
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def _own_listener(server: IgymServer, host: str, port: int | None, options: dict[str, Any]) -> Any:
    if port is None:
        yield None
        return
    async with serve(server.handler, host, port, **options) as own:
        yield own
