"""The igym server: participants connect over WebSocket and play the experiment's scenes.

One asyncio process. Each participant has a flow task that walks them through the
experiment's scenes (lobby → room → next scene → end) independently of their connection,
so a dropped connection can come back (same participant id + reconnect token) and pick up
where it was. A game scene is played in a room: an authoritative one (``rooms.Room``: the
server runs the session and sends frames) or, for ``network="lockstep"``, a
``lockstep.LockstepRoom`` (the clients run it; the server relays their inputs). Every
message from a client is validated by :mod:`igym.wire`; a violation closes that
connection with a close code and a reason, is logged and counted, and nothing else is
disturbed. Data goes to one SQLite file in the desktop's schema.

``GET /status?token=...`` returns JSON (rooms, participants, lobby sizes, tick lateness
percentiles, bytes sent, messages rejected); the token is ``--admin-token`` or printed at
start. There is no default password.
"""

from __future__ import annotations

import asyncio
import gc
import http
import json
import logging
import random
import secrets
import time
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from igym import wire
from igym.data import SqliteSink
from igym.experiment import Experiment, Game

from .lockstep import LockstepRoom
from .rooms import Lobby, Member, Metronome, Room

log = logging.getLogger("igym.server")
PING_EVERY_S = 1.0
HELLO_TIMEOUT_S = 10.0
PAGE_ABANDON_S = 600.0  # a participant gone this long from a page has left the study


class Stats:
    """Counters for /status: tick lateness (a sorted sample window), bytes of frames and of
    relayed inputs sent, rejections."""

    def __init__(self, window: int = 20000) -> None:
        self.window = window
        self._late: list[float] = []
        self._late_sorted: list[float] = []
        self.bytes_sent = 0
        self.frames_sent = 0
        self.inputs_relayed = 0
        self.rejected = 0
        self.started = time.monotonic()

    def lateness(self, seconds: float) -> None:
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

    def percentiles(self) -> dict[str, float]:
        values = sorted(self._late)
        if not values:
            return {}
        pick = lambda q: round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 3)  # noqa: E731
        return {"p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99), "max_ms": round(values[-1] * 1000, 3),
                "samples": len(values)}


class Participant:
    """One person across connections: id, reconnect token, where they are in the experiment."""

    def __init__(self, pid: str) -> None:
        self.pid = pid
        self.token = secrets.token_hex(12)
        self.connection: ServerConnection | None = None
        self.run: Any = None  # the participant's igym.study.StudyRun (made when their flow starts)
        self.page: dict[str, Any] | None = None  # the page message on screen (resent after a reconnect)
        self.page_answer: asyncio.Future | None = None
        self.page_scene: Any = None
        self.gone_since = 0.0  # when the last connection closed
        self.room: Room | None = None
        self.member: Member | None = None
        self.flow: asyncio.Task | None = None
        self.outcomes: list[str] = []
        self.finished = False
        self.ping_sent: dict[int, float] = {}
        self.last_seat: str | None = None  # the seat of the last game, for keys that arrive just after it
        self.rtts: list[float] = []  # the latest round trips, ms
        self.uploading = False  # a solo web page that runs the scenes itself and uploads records
        self.episodes: set[str] = set()  # episode ids this participant uploaded

    async def send(self, message: dict[str, Any]) -> None:
        connection = self.connection
        if connection is None:
            return
        try:
            await connection.send(wire.pack(message))
        except websockets.ConnectionClosed:
            pass


class IgymServer:
    """Hosts one experiment for participants who connect over WebSocket."""

    def __init__(self, experiment: Experiment, sink: SqliteSink, admin_token: str | None = None,
                 collect: bool = False, page_abandon_s: float = PAGE_ABANDON_S,
                 relay_delay_ms: tuple[float, float] | None = None, relay_seed: int | None = None) -> None:
        self.experiment = experiment
        self.collect = collect
        self.page_abandon_s = page_abandon_s
        self.sink = sink
        self.admin_token = admin_token or secrets.token_urlsafe(16)
        self.stats = Stats()
        self.participants: dict[str, Participant] = {}
        self.lobbies: dict[str, Lobby] = {}
        self.rooms: set[Room] = set()
        self._metronomes: dict[float, Metronome] = {}
        # A simulated slow network for lockstep rooms: each relayed input waits a random time in this range.
        self.relay_delay_s = (relay_delay_ms[0] / 1000, relay_delay_ms[1] / 1000) if relay_delay_ms else None
        self.relay_rng = random.Random(relay_seed)

    def new_room(self, index: int, game: Game, members: dict[str, Participant],
                 visit_id: str | None = None) -> Room | LockstepRoom:
        """The room a group plays ``game`` in: lockstep (clients run the env) or authoritative."""
        if game.network == "lockstep":
            return LockstepRoom(self, index, game, members, visit_id)
        return Room(self, index, game, members, {}, visit_id)

    def metronome(self, fps: float) -> Metronome:
        """The shared clock of all rooms that step at ``fps``."""
        if fps not in self._metronomes:
            self._metronomes[fps] = Metronome(fps, self.stats, self.sink)
        return self._metronomes[fps]

    # --- HTTP -----------------------------------------------------------------------------

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer ``GET /status`` over plain HTTP; let WebSocket upgrades through."""
        path, _, query = request.path.partition("?")
        if path != "/status":
            return None
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        token = params.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not secrets.compare_digest(token, self.admin_token):
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "status needs ?token=ADMIN_TOKEN\n")
        body = json.dumps(self.status()).encode()
        return Response(200, "OK", Headers({"Content-Type": "application/json",
                                             "Content-Length": str(len(body))}), body)

    def status(self) -> dict[str, Any]:
        live = [r for r in self.rooms if not r.done.done()]
        return {
            "experiment": self.experiment.id,
            "uptime_s": round(time.monotonic() - self.stats.started, 1),
            "rooms": len(live),
            "participants": {"connected": sum(p.connection is not None for p in self.participants.values()),
                             "known": len(self.participants),
                             "finished": sum(p.finished for p in self.participants.values())},
            "lobbies": {str(i): len(lobby.waiting) for i, lobby in self.lobbies.items()},
            "tick_lateness": self.stats.percentiles(),
            "bytes_sent": self.stats.bytes_sent,
            "frames_sent": self.stats.frames_sent,
            "inputs_relayed": self.stats.inputs_relayed,
            "messages_rejected": self.stats.rejected,
        }

    # --- WebSocket ------------------------------------------------------------------------

    async def handler(self, connection: ServerConnection) -> None:
        participant: Participant | None = None
        try:
            hello = wire.parse_client(await asyncio.wait_for(connection.recv(), HELLO_TIMEOUT_S))
            if hello["t"] != "hello":
                raise wire.ProtocolError("the first message must be hello")
            if hello["v"] != wire.PROTOCOL_VERSION:
                raise wire.ProtocolError(f"protocol version {hello['v']} is not {wire.PROTOCOL_VERSION}: "
                                         f"update the client", wire.CLOSE_VERSION)
            participant = self._attach(hello, connection)
            welcome = {"t": "welcome", "pid": participant.pid, "token": participant.token,
                       "experiment": self.experiment.id}
            if hello.get("mode") == "upload":  # a page that runs the study itself balances conditions with this
                welcome["conditions"] = self.sink.condition_counts(self.experiment.id)
            await participant.send(welcome)
            if participant.room is not None and participant.member is not None:
                await participant.room.rejoined(participant.member)
            if participant.page is not None:
                await participant.send(participant.page)
            if hello.get("mode") == "upload":
                if not self.collect:
                    raise wire.ProtocolError("this server does not collect uploads — start it with --collect")
                participant.uploading = True
            elif participant.flow is None:
                participant.flow = asyncio.create_task(self._flow(participant))
            pinger = asyncio.create_task(self._ping(participant, connection))
            try:
                async for data in connection:
                    self._dispatch(participant, wire.parse_client(data))
            finally:
                pinger.cancel()
        except wire.ProtocolError as error:
            self.stats.rejected += 1
            log.warning("closing %s: %s", participant.pid if participant else connection.remote_address, error.reason)
            await connection.close(error.code, error.reason)
        except (asyncio.TimeoutError, websockets.ConnectionClosed):
            pass
        finally:
            if participant is not None and participant.connection is connection:
                participant.connection = None
                participant.gone_since = time.monotonic()
                self._record(participant, "disconnect", {})
                if participant.room is not None and participant.member is not None and not participant.finished:
                    asyncio.create_task(participant.room.dropped(participant.member))

    def _attach(self, hello: dict[str, Any], connection: ServerConnection) -> Participant:
        pid = hello["pid"]
        participant = self.participants.get(pid)
        if participant is None:
            participant = Participant(pid)
            self.participants[pid] = participant
            self.sink.add_participant(pid, self.experiment.id, {"remote": str(connection.remote_address)})
        elif hello.get("token") != participant.token:
            if participant.finished:
                raise wire.ProtocolError(f"participant {pid} already completed this study", wire.CLOSE_ENDED)
            raise wire.ProtocolError(f"participant {pid} is known: reconnect with its token")
        old = participant.connection
        participant.connection = connection
        if old is not None:
            asyncio.create_task(old.close(wire.CLOSE_REPLACED, "replaced by a newer connection"))
        self._record(participant, "connect", {"reconnect": "token" in hello})
        return participant

    def _dispatch(self, participant: Participant, message: dict[str, Any]) -> None:
        kind = message["t"]
        member, room = participant.member, participant.room
        if kind == "key":
            seat = member.agent if member is not None else participant.last_seat
            if message["seat"] != seat:
                raise wire.ProtocolError(f"key for seat {message['seat']!r}, but this connection plays {seat!r}")
            if member is not None and room is not None:
                room.key(member, message["k"], message["d"] == 1)  # between scenes keys mean nothing
        elif kind in ("in", "state"):
            if room is None or member is None or getattr(room, "network", None) != "lockstep":
                if room is None and participant.last_seat is not None:
                    return  # the game just ended: its last messages mean nothing
                raise wire.ProtocolError(f"{kind}: only lockstep games take '{kind}' messages")
            (room.on_input if kind == "in" else room.on_state)(member, message)
        elif kind == "pong":
            sent = participant.ping_sent.pop(message["n"], None)
            if sent is not None:
                rtt_ms = round((time.monotonic() - sent) * 1000, 3)
                participant.rtts.append(rtt_ms)
                del participant.rtts[:-20]
                self._record(participant, "rtt", {"ms": rtt_ms})
        elif kind == "focus":
            self._record(participant, "focus_gained" if message["f"] else "focus_lost", {})
        elif kind == "records":
            self._store_upload(participant, message)
        elif kind == "page":
            self._page_done(participant, message)
        elif kind == "hello":
            raise wire.ProtocolError("hello twice on one connection")

    def _store_upload(self, participant: Participant, message: dict[str, Any]) -> None:
        """Check an uploaded batch is this participant's own, commit it, acknowledge it."""
        from igym.records import EpisodeRecord, StepRecord, VisitRecord
        if not participant.uploading:
            raise wire.ProtocolError("records need hello with mode='upload' on a server started with --collect")
        records = wire.records_from_upload(message["r"])
        pid = participant.pid
        for record in records:
            if type(record) is EpisodeRecord:
                if record.participant_id != pid:
                    raise wire.ProtocolError("records: an episode of another participant")
                if record.episode_id not in participant.episodes:
                    if self.sink.episode_owner(record.episode_id) not in (None, pid):
                        raise wire.ProtocolError("records: an episode id that belongs to someone else")
                    participant.episodes.add(record.episode_id)
            elif type(record) is VisitRecord:
                if record.participant_id != pid or self.sink.visit_owner(record.visit_id) not in (None, pid):
                    raise wire.ProtocolError("records: a visit of another participant")
            elif type(record) is StepRecord:
                if record.episode_id not in participant.episodes:
                    if self.sink.episode_owner(record.episode_id) != pid:
                        raise wire.ProtocolError("records: a step of an episode that is not yours")
                    participant.episodes.add(record.episode_id)
            elif record.participant_id != pid:
                raise wire.ProtocolError("records: an event of another participant")
        self.sink.store_batch(message["b"], pid, records)
        asyncio.create_task(participant.send({"t": "stored", "b": message["b"]}))

    async def _ping(self, participant: Participant, connection: ServerConnection) -> None:
        number = 0
        while participant.connection is connection:
            number += 1
            participant.ping_sent[number] = time.monotonic()
            if len(participant.ping_sent) > 30:
                participant.ping_sent.pop(min(participant.ping_sent))
            await self._simulated_network()
            await participant.send({"t": "ping", "n": number})
            await asyncio.sleep(PING_EVERY_S)

    async def _simulated_network(self) -> None:
        """With ``relay_delay_ms``, pings wait like relayed inputs, so the measured round trip
        (and the lockstep input delay derived from it) sees the simulated network too."""
        if self.relay_delay_s is not None:
            await asyncio.sleep(self.relay_rng.uniform(*self.relay_delay_s))

    def _record(self, participant: Participant, kind: str, data: dict[str, Any]) -> None:
        from igym.records import EventRecord
        self.sink.write([EventRecord(participant.pid, time.monotonic_ns(), kind, data or None)])

    # --- the experiment -----------------------------------------------------------------

    async def _flow(self, participant: Participant) -> None:
        """Walk one participant through the study: pages are shown by their client, games are
        played in rooms; each visit's records are written before the next scene starts."""
        from igym.study import StudyRun
        run = participant.run = StudyRun(self.experiment, participant.pid,
                                          condition_counts=self.sink.condition_counts(self.experiment.id),
                                          meta={"remote": True})
        outcome = "played"
        text = ""
        try:
            while (visit := run.next_visit()) is not None:
                self.sink.write(run.take_records())
                if isinstance(visit.scene, Game):
                    if visit.scene.instructions:
                        from igym.scenes import Info
                        intro = Info(text=visit.scene.instructions, title=visit.name.replace("_", " ").capitalize(),
                                     button="Start", name=f"{visit.name}_instructions")
                        if (await self._show_page(participant, visit, intro))[0] == "aborted":
                            run.finish_visit("aborted")
                            outcome = "disconnected"
                            break
                    outcome = await self._play(participant, visit)
                    self._record(participant, "scene_outcome", {"scene": visit.position, "name": visit.name,
                                                                "outcome": outcome})
                    participant.outcomes.append(outcome)
                    run.finish_visit(outcome)
                    if outcome != "played":
                        run.abort()
                        break
                else:
                    page_outcome, answers = await self._show_page(participant, visit, visit.scene)
                    run.finish_visit(page_outcome, answers)
                    if page_outcome == "declined":
                        outcome, text = "declined", visit.scene.declined_text
                    elif page_outcome == "aborted":
                        outcome = "disconnected"
                        break
                self.sink.write(run.take_records())
                self.sink.commit()
        except Exception:  # noqa: BLE001 — one participant's broken scene must not stop the server
            log.exception("flow of %s failed", participant.pid)
            run.abort()
            outcome = "error"
        self.sink.write(run.take_records())
        participant.finished = True
        self.sink.commit()
        texts = {"played": "Thank you — the study is complete.",
                 "timed_out": "Nobody else arrived in time to play. Thank you for waiting.",
                 "partner_left": "Your partner left the game. Thank you for playing.",
                 "disconnected": "You were away too long, so the game ended.",
                 "error": "Something went wrong on the server; your data so far is saved.",
                 "high_latency": "Your connection is too slow for this study. Thank you for your time."}
        await participant.send({"t": "end", "outcome": outcome, "text": text or texts.get(outcome, outcome),
                                **({"code": run.completion_code} if run.completion_code else {})})
        if participant.connection is not None:
            await participant.connection.close(wire.CLOSE_ENDED, "study complete")

    async def _show_page(self, participant: Participant, visit: Any, scene: Any) -> tuple[str, dict[str, Any] | None]:
        """Show a page on the participant's client and wait for how they left it. The page is
        resent when they reconnect; what they answered is checked here with the survey's rules."""
        from pathlib import Path

        from igym.scenes import page_to_wire
        message: dict[str, Any] = {"t": "page", "v": visit.visit_id, "i": visit.position,
                                   "page": page_to_wire(scene)}
        if scene.kind == "end" and participant.run.completion_code:
            message["code"] = participant.run.completion_code
        image = getattr(scene, "image", None)
        if image:
            path = Path(image) if Path(image).is_absolute() else Path(self.experiment.base_dir or ".") / image
            message["image"] = path.read_bytes()
        participant.page = message
        participant.page_scene = scene
        participant.page_answer = asyncio.get_running_loop().create_future()
        await participant.send(message)
        try:
            while True:  # the page stays open across reconnects; a participant gone too long has left
                try:
                    return await asyncio.wait_for(asyncio.shield(participant.page_answer),
                                                  min(5.0, self.page_abandon_s))
                except asyncio.TimeoutError:
                    if (participant.connection is None
                            and time.monotonic() - participant.gone_since >= self.page_abandon_s):
                        self._record(participant, "page_abandoned", {"visit": visit.visit_id})
                        return "aborted", None
        finally:
            participant.page = None
            participant.page_answer = None

    def _page_done(self, participant: Participant, message: dict[str, Any]) -> None:
        """A client left its page: only the page on screen, only the outcomes it has, valid answers."""
        page, answer = participant.page, participant.page_answer
        if page is None or answer is None or answer.done() or message["v"] != page["v"]:
            raise wire.ProtocolError("page: that page is not the one shown")
        scene = participant.page_scene
        allowed = {"info": ("continued",), "consent": ("agreed", "declined"), "survey": ("continued",),
                   "end": ("closed",)}[scene.kind]
        if message["o"] not in allowed:
            raise wire.ProtocolError(f"page: a {scene.kind} page ends with {' or '.join(allowed)}")
        answers = None
        if scene.kind == "survey":
            answers, problems = scene.check(message.get("a") or {})
            if problems:
                raise wire.ProtocolError(f"page: answers fail the survey's checks ({', '.join(sorted(problems))})")
        answer.set_result((message["o"], answers))

    async def _median_rtt(self, participant: Participant, samples: int = 5) -> float | None:
        """Measure round trips now: a few quick pings, the median in ms (None if no answers)."""
        participant.rtts = []
        for _ in range(samples):
            number = 10**9 + len(participant.ping_sent) + int(time.monotonic() * 1000)
            participant.ping_sent[number] = time.monotonic()
            await self._simulated_network()
            await participant.send({"t": "ping", "n": number})
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + 3.0
        while len(participant.rtts) < samples and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if not participant.rtts:
            return None
        ordered = sorted(participant.rtts)
        return ordered[len(ordered) // 2]

    async def _play(self, participant: Participant, visit: Any) -> str:
        game, index = visit.scene, visit.position
        if game.max_rtt_ms is not None:
            rtt = await self._median_rtt(participant)
            self._record(participant, "rtt_gate", {"median_ms": rtt, "max_ms": game.max_rtt_ms})
            if rtt is None or rtt > game.max_rtt_ms:
                return "high_latency"
        humans = game.human_agents()
        if len(humans) <= 1 and not game.observers:
            room = self.new_room(index, game, {humans[0]: participant} if humans else {}, visit.visit_id)
        else:
            # Grouped by scene name: with random orders, people reach the same game at different positions.
            lobby = self.lobbies.setdefault(game.name, Lobby(self, index, game))
            room = await lobby.join(participant)
            if room is None:
                return "timed_out"
        self.rooms.add(room)
        outcomes = await asyncio.shield(room.done)
        self.rooms.discard(room)
        member = participant.member
        participant.room = None
        participant.member = None
        if member is not None:
            participant.last_seat = member.agent
        return outcomes.get(member.agent, "played") if member is not None else "disconnected"


async def serve_forever(server: IgymServer, host: str, port: int, ready: asyncio.Future | None = None,
                        on_listening: Any = None) -> None:
    """Listen on ``host:port`` and serve until cancelled; ``ready``/``on_listening`` fire once bound.

    The cyclic garbage collector is tuned for a soft-real-time loop: what exists at start
    (modules, the experiment) is frozen out of collection, and full collections are rarer,
    so a collection pass never stalls every room's tick (they showed as 20–40 ms spikes).
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)
    async with serve(server.handler, host, port, process_request=server.process_request, compression=None,
                     max_size=wire.MAX_UPLOAD_BYTES, ping_interval=None) as ws_server:
        if ready is not None:
            ready.set_result(ws_server)
        if on_listening is not None:
            on_listening(ws_server.sockets[0].getsockname()[1])
        await asyncio.Future()
