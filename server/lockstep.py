"""Lockstep rooms: the server relays inputs, keeps the canonical log and corrects desyncs.

A Game with ``network="lockstep"`` runs on every client (see :mod:`igym.lockstep` for the
client's half and the messages). The room holds no env and no clock: it collects each
seat's input for a step, and once all are in it sends them to every member (``st``) and
stamps the step with the server's time. Clients report each step they took (rewards,
the episode's end, every ``k``-th step's state fingerprint, stalls); a step's record is
written once every connected member has gone past it, from the inputs and the report of
a member that agrees with the majority — so the file holds the canonical inputs, and a
replay of it reproduces the recorded fingerprints.

No member is trusted on its own word. A step's row is what a strict majority of the members
here reported (rewards, the episode's end, the state fingerprint on every ``k``-th step);
when there is none — two players who disagree, a player who reports nothing within
:data:`REPORT_WAIT_S` — the server's :class:`~igym.server.referee.Referee` plays the step
from the seed and the relayed inputs and its result is the row. Either way a member whose
report differs is recorded (``desync``) and gets the referee's state (``state``) to load
and catch up from. Without a referee (an env the server cannot run) a majority's member
sends its state (``get`` → ``state``), which the receiving client checks by loading it; a
tie with no referee ends the game as ``desync_unresolved``. An env without
``get_state``/``set_state`` still runs: desyncs are detected and recorded
(``correction: "none"``), not corrected. A player who sends inputs but withholds its
reports is warned, then disconnected. A member that
reconnects gets the state and the inputs since (or, without ``get_state``, the episode's
inputs from its start to replay) and catches up; meanwhile the others wait, as in any
lockstep game, and after ``grace_s`` the game ends (``dropout="end"``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from igym import wire
from igym.experiment import Game
from igym.records import EpisodeRecord, EventRecord, StepRecord
from websockets.asyncio.server import ServerConnection, broadcast

from .referee import Claim, Referee, Result, report_claim
from .rooms import GameRoom, Member

if TYPE_CHECKING:
    from igym.controls import KeyMap

    from .app import IgymServer
    from .participants import Participant

log = logging.getLogger("igym.server")
SOURCES = ("human", "default", "previous")
AHEAD_LIMIT_S = 10.0  # how far (in game time) past the last complete step a client may send inputs
REPORT_WAIT_S = 5.0  # how long a step's row waits for every member's report before deciding without them
WITHHOLD_WARN_S = 5.0  # a player this far (game time) ahead in inputs of its reports is warned …
WITHHOLD_DROP_S = 15.0  # … and disconnected at this

# One seat's input for a step: (action, keys, source index into SOURCES, key time ns, press).
_Input = tuple[Any, str, int, int | None, str | None]


class _Episode:
    """The canonical log of one episode: complete steps, partial ones, reports, rows written."""

    def __init__(self, index: int, record: EpisodeRecord, delay: int) -> None:
        self.index = index
        self.record = record
        self.delay = delay  # the input delay of this episode, in steps
        self.actions: dict[int, list[Any]] = {}  # complete steps
        self.keys: dict[int, list[str]] = {}
        self.sources: dict[int, list[str]] = {}
        self.key_times: dict[int, list[int | None]] = {}  # when each seat's keys last changed (server clock, ns)
        self.presses: dict[int, list[str | None]] = {}  # the press that made each seat's keystroke action, or None
        self.completed_ns: dict[int, int] = {}
        self.partial: dict[int, list[_Input | None]] = {}  # step → [an _Input or None per seat]
        self.newest = 0  # the newest complete step
        self.reports: dict[int, dict[str, dict[str, Any]]] = {}  # step → member name → report
        self.next_row = 1  # the next step whose record is to be written
        self.returns: dict[str, float] = {}
        self.end_step: int | None = None


class LockstepMember(Member):
    """A member of a lockstep room: how far it has played, and which correction it is on."""

    def __init__(self, participant: Participant, agent: str) -> None:
        super().__init__(participant, agent)
        self.at = (0, 0)  # the newest (episode, step) this member reported having taken
        self.sent = (0, 0)  # the newest (episode, step) this member sent its input for
        self.generation = 0  # how many states the server sent it (older reports are stale)
        self.ended: set[int] = set()  # episodes whose end this member reported
        self.warned = False


class LockstepRoom(GameRoom):
    """One group's lockstep game: the input relay, its log, the records, the corrections."""

    network = "lockstep"
    member_class = LockstepMember
    members: dict[str, LockstepMember]  # type: ignore[assignment]

    def __init__(self, server: IgymServer, scene_index: int, game: Game,
                 members: dict[str, Participant], visit_id: str | None = None) -> None:
        super().__init__(server, scene_index, game, members, visit_id)
        self.order = [str(a) for a in cast(Mapping[Any, Any], game.seats)]  # Game.__post_init__ requires seats
        self.rank = {name: i for i, name in enumerate(self.members)}
        system = random.SystemRandom()
        self.seeds = [s if (s := game.seed_for(i)) is not None else system.randrange(2**31)
                      for i in range(game.episodes)]
        self.defaults = [game.keymaps[a].default_action for a in self.order]
        self.key_changed_ns: list[int | None] = [None] * len(self.order)  # per seat, on the server's clock
        self.allowed = [_actions_of(game.keymaps[a]) for a in self.order]
        try:
            self.referee: Referee | None = Referee(game, self.seeds, self.order, "referee", game.fingerprint_every)
            env = self.referee.session.env
            self.corrects = env.get_state is not None and env.set_state is not None
            self.detects = env.state_fingerprint is not None  # without it desyncs go unnoticed: stated in the data
        except Exception as error:  # noqa: BLE001 — an env the server cannot run: the clients' majority decides
            log.warning("%r: the server cannot run this game, so there is no referee (%s: %s)", self,
                        type(error).__name__, error)
            self.referee = None
            self.corrects = self.detects = True  # the clients' copies answer get/state and send fingerprints
        self.referee_lock = asyncio.Lock()
        self.deciding = False  # the referee is deciding the next row
        self.delays: dict[int, int] = {}  # episode → input delay, decided while the episode before is played
        self.episodes: dict[int, _Episode] = {}
        self.current = 0  # the oldest episode whose records are not all written
        self.awaiting: dict[str, set[str]] = {}  # donor → members waiting for its state
        self.suspect: set[str] = set()
        self.started: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.stalls = 0
        self.desyncs = 0

    def start(self) -> None:
        self.spawn(self._start(), "start")
        self.spawn(self._watch(), "report watch")
        super().start()

    async def _watch(self) -> None:
        """Twice a second: rows whose reports are overdue are decided without them."""
        while not self.done.done():
            await asyncio.sleep(0.5)
            self._write_rows()

    # --- start ------------------------------------------------------------------------------

    async def _start(self) -> None:
        """Measure the round trips, fix the input delay, tell every member the scene."""
        rtts: dict[str, float | None] = {}
        if self.game.input_delay is None:
            measured = await asyncio.gather(*(m.participant.measure_rtt() for m in self.members.values()))
            rtts = {m.participant.pid: r for m, r in zip(self.members.values(), measured)}
        self.delays[0] = self._input_delay(rtts)
        self._episode(0)
        self._event(self.owner, "lockstep", {"input_delay": self.delays[0], "rtt_ms": rtts,
                                             "fingerprint_every": self.game.fingerprint_every,
                                             "detection": "fingerprints" if self.detects else "none",
                                             "correction": "state" if self.corrects else "none",
                                             "members": {n: m.participant.pid for n, m in self.members.items()}})
        self.started.set_result(True)  # before the sends: a client may answer its scene at once
        for member in self.members.values():
            await member.participant.send(self.scene_message(member))

    def scene_message(self, member: Member) -> dict[str, Any]:
        seat = member.agent if member.agent in self.order else None
        keymap = self.game.keymaps.get(seat) if seat else None
        run = member.participant.run
        return {"t": "scene", "i": self.scene_index, "kind": "game", "name": self.game.name, "seat": seat,
                "canvas": list(self.game.canvas), "bg": list(self.game.background),
                "keys": sorted(keymap.keys) if keymap else [], "fps": self.game.fps, "net": "lockstep",
                "seats": self.order, "seeds": self.seeds, "d": [self.delays[e] for e in sorted(self.delays)],
                "k": self.game.fingerprint_every,
                "max_steps": self.game.max_steps,
                "cond": getattr(run, "condition", None)}

    def _episode(self, index: int) -> _Episode:
        episode = self.episodes.get(index)
        if episode is None:
            now = time.monotonic()
            seats = {a: {"kind": "human", "participant": m.participant.pid}
                     for a, m in self.members.items() if a in self.order}
            record = EpisodeRecord(uuid.uuid4().hex, self.owner, self.game.name, index, self.seeds[index],
                                   time.time(), int(now * 1e9), seats, visit_id=self.visit_id)
            episode = self.episodes[index] = _Episode(index, record, self.delays[index])
            for step in range(1, episode.delay + 1):  # every client knows these: the seats' defaults
                self._complete(episode, step, [(d, "", 1, t, None) for d, t in zip(self.defaults, self.key_changed_ns)],
                               int(now * 1e9), send=False)
            self.server.storage.write([record.copy()])
            if index + 1 < self.game.episodes and index + 1 not in self.delays:
                self._announce_delay(index + 1)
        return episode

    def _input_delay(self, rtts: dict[str, float | None]) -> int:
        """``input_delay`` steps, or enough steps to cover the slowest member's round trip."""
        if self.game.input_delay is not None:
            return self.game.input_delay
        worst = max((r for r in rtts.values() if r is not None), default=None)
        if worst is None:
            return max(self.delays.values(), default=1)
        return max(1, math.ceil(worst / 1000.0 * self.game.fps))

    def _announce_delay(self, index: int) -> None:
        """Fix episode ``index``'s input delay from the latest round trips and tell everyone now,
        while the episode before is played, so no client waits for it at the episode's start."""
        rtts = {}
        for member in self.members.values():
            recent = sorted(member.participant.rtts[-5:])
            rtts[member.participant.pid] = recent[len(recent) // 2] if recent else None
        self.delays[index] = self._input_delay(rtts)
        self._event(self.owner, "input_delay", {"episode": index, "input_delay": self.delays[index], "rtt_ms": rtts})
        data = wire.pack({"t": "ep", "e": index, "d": self.delays[index]})
        broadcast(self._connections(), data)

    # --- inputs and reports ---------------------------------------------------------------------

    def key(self, member: Member, key: str, down: bool) -> None:
        raise wire.ProtocolError("this game runs in lockstep: send 'in' messages, not keys")

    def on_input(self, member: Member, message: dict[str, Any]) -> None:
        member = cast(LockstepMember, member)  # every member of this room is one (member_class)
        if not self.started.done() or self.done.done():
            return  # before the scene message went out, or after the game: nothing to do
        index = message["e"]
        if index < self.current or (index in self.episodes and self.episodes[index].end_step is not None
                                    and message.get("n", 0) > self.episodes[index].end_step):
            return  # late news of a finished episode
        newest = max(self.episodes)
        if index > newest and (index != newest + 1 or index >= self.game.episodes or newest not in member.ended):
            raise wire.ProtocolError(f"in: episode {index} has not started")  # nor has this member ended the last
        episode = self._episode(index)
        if "f" in message:
            self._input(member, episode, message)
        if "n" in message and message.get("g", 0) == member.generation:
            self._report(member, episode, message)

    def _input(self, member: LockstepMember, episode: _Episode, message: dict[str, Any]) -> None:
        seat = self.order.index(member.agent) if member.agent in self.order else None
        if seat is None:
            raise wire.ProtocolError("in: an observer sends no inputs")
        step, action = message["f"], message["a"]
        if step <= episode.delay:
            raise wire.ProtocolError(f"in: steps 1..{episode.delay} use the default actions; no input is sent for them")
        if step > episode.newest + episode.delay + AHEAD_LIMIT_S * self.game.fps:
            raise wire.ProtocolError(f"in: step {step} is too far ahead of the game (step {episode.newest})")
        if action not in self.allowed[seat]:
            raise wire.ProtocolError(f"in: {str(action)[:20]!r} is not an action of seat {member.agent!r}'s key map")
        if step in episode.actions or (episode.end_step is not None and step > episode.end_step):
            return  # already relayed (a catch-up resends what it owes), or past the episode's end
        member.sent = max(member.sent, (episode.index, step - episode.delay))
        self._check_reporting(member)
        partial = episode.partial.setdefault(step, [None] * len(self.order))
        if partial[seat] is not None:
            return
        if "kt" in message:  # the keys changed kt ms before the client sent this: date it on our clock
            self.key_changed_ns[seat] = time.monotonic_ns() - int(message["kt"] * 1e6)
        partial[seat] = (action, message.get("k", ""), message.get("s", 0), self.key_changed_ns[seat],
                         message.get("p"))
        if None not in partial:
            del episode.partial[step]
            self._complete(episode, step, cast("list[_Input]", partial), time.monotonic_ns())  # no None left

    def _complete(self, episode: _Episode, step: int, inputs: Sequence[_Input], now_ns: int, send: bool = True) -> None:
        actions = [i[0] for i in inputs]
        episode.actions[step] = actions
        episode.keys[step] = [i[1] for i in inputs]
        episode.sources[step] = [SOURCES[i[2]] for i in inputs]
        episode.key_times[step] = [i[3] for i in inputs]
        episode.presses[step] = [i[4] for i in inputs]
        episode.completed_ns[step] = now_ns
        episode.newest = max(episode.newest, step)
        if send:
            self._relay(wire.pack({"t": "st", "e": episode.index, "f": step, "a": actions}))

    def _relay(self, data: bytes) -> None:
        connections = self._connections()
        relayed = self.server.stats.relayed
        for _ in connections:
            relayed(len(data))
        delay = self.server.relay_delay_s
        if delay is None:
            broadcast(connections, data)
            return
        loop, rng = asyncio.get_running_loop(), self.server.relay_rng
        for connection in connections:  # a simulated network: each message its own random delay
            loop.call_later(rng.uniform(*delay), broadcast, [connection], data)

    def _report(self, member: LockstepMember, episode: _Episode, message: dict[str, Any]) -> None:
        step = message["n"]
        if step not in episode.actions:
            raise wire.ProtocolError(f"in: a report of step {step}, whose inputs were never relayed")
        if "w" in message:
            self.stalls += 1
            self._event(member.participant.pid, "stall", {"episode": episode.index, "step": step, "ms": message["w"]},
                        episode.record.episode_id)
        if "x" in message:  # each client's own view of the episode: its stalls and frame timing
            end = message["x"]
            self._event(member.participant.pid, "lockstep_episode",
                        {"episode": episode.index, "steps": step, "stalls": end.get("stalls"),
                         "stall_ms": end.get("stall_ms"), "timing": end.get("timing")}, episode.record.episode_id)
        if "x" in message:
            member.ended.add(episode.index)
        if step >= episode.next_row:
            episode.reports.setdefault(step, {})[member.agent] = message
        member.at = max(member.at, (episode.index, step))
        self._write_rows()

    def _check_reporting(self, member: LockstepMember) -> None:
        """A player whose inputs run far ahead of its reports is withholding them: warn, then drop."""
        sent, at = member.sent, member.at
        # Inputs of a new episode start only after this member reported the last one's end (on_input),
        # so a later episode in ``sent`` means no report of it yet.
        behind = sent[1] - at[1] if sent[0] == at[0] else (sent[1] if sent[0] > at[0] else 0)
        seconds = behind / self.game.fps
        if seconds >= WITHHOLD_DROP_S and member.participant.connection is not None:
            self._event(member.participant.pid, "reports_withheld",
                        {"behind_s": round(seconds, 1), "action": "dropped"})
            member.at = member.sent  # one drop per withholding spell
            self.spawn(member.participant.connection.close(wire.CLOSE_POLICY, "your game did not report its steps"),
                       "dropping a member who withholds reports")
        elif seconds >= WITHHOLD_WARN_S and not member.warned:
            member.warned = True
            self._event(member.participant.pid, "reports_withheld", {"behind_s": round(seconds, 1), "action": "warned"})
            self.spawn(member.participant.send({"t": "status", "text": "your game is not reporting its steps"}),
                       "warning a member who withholds reports")

    # --- records ------------------------------------------------------------------------------

    def _present(self) -> list[LockstepMember]:
        return [m for m in self.members.values() if m.present]

    def _connections(self) -> list[ServerConnection]:
        """The connections of the members here (a present member's participant has one)."""
        return [c for m in self._present() if (c := m.participant.connection) is not None]

    def _write_rows(self, flush: bool = False) -> None:
        """Write the rows of complete steps in order: each once every member here reported it (or
        its reports are overdue), from what a strict majority reported or else the referee's
        result. ``flush`` (the game is ending) writes every complete step now."""
        while not self.done.done() and not self.deciding and self.current in self.episodes:
            episode = self.episodes[self.current]
            step = episode.next_row
            if step not in episode.actions:
                return
            reports = episode.reports.get(step, {})
            present = self._present()
            if not flush and any(m.agent not in reports for m in present):
                if time.monotonic_ns() - episode.completed_ns[step] < REPORT_WAIT_S * 1e9:
                    return  # someone's report is still on its way
            agreed = self._majority(reports, present)
            if agreed is None and not flush:
                if self.referee is not None:
                    self._referee_decides(episode, step)
                    return
                if len(reports) > 1:
                    self._unresolved(episode, step, reports)
                    return
            episode.reports.pop(step, None)
            self._write_row(episode, step, reports, agreed, "majority" if agreed is not None else None)

    def _majority(self, reports: dict[str, dict[str, Any]], present: list[LockstepMember]) -> Claim | None:
        """The claim of a strict majority of the members here (or of the only member), else None."""
        if not reports:
            return None
        counts = Counter(report_claim(r) for r in reports.values())
        best, count = counts.most_common(1)[0]
        voters = max(len(present), len(reports))
        return best if count * 2 > voters and (count >= 2 or voters == 1) else None

    def _write_row(self, episode: _Episode, step: int, reports: dict[str, dict[str, Any]], canonical: Claim | None,
                   via: str | None, result: Result | None = None, state: Any = None) -> None:
        """Store step ``step`` as ``canonical`` says (rewards unknown when nobody could say) and
        correct every member whose report differs."""
        order = self.order
        dissent = {n: r for n, r in reports.items() if canonical is not None and report_claim(r) != canonical}
        agreeing = sorted((n for n in reports if n not in dissent), key=lambda n: self.rank[n])
        extra = result.columns if result is not None else (reports[agreeing[0]].get("c") if agreeing else None)
        paid, ended, fingerprint = canonical if canonical is not None else ((), None, None)
        rewards = {a: 0.0 for a in order}
        rewards.update(dict(paid))
        if canonical is None:
            extra = {**(extra or {}), "igym.unverified": "no report to believe"}
        for agent, value in rewards.items():
            episode.returns[agent] = episode.returns.get(agent, 0.0) + value
        outcome, cut, terms, truncs = ended if ended is not None else ("", False, (), ())
        self.server.storage.write([StepRecord(
            episode.record.episode_id, step, episode.completed_ns[step], tuple(order),
            dict(zip(order, episode.actions[step])), episode.sources[step], rewards,
            {a: a in terms for a in order}, {a: a in truncs for a in order}, episode.keys[step],
            episode.key_times[step], cut, extra, fingerprint, press=episode.presses[step])])
        episode.next_row = step + 1
        if dissent:
            self._desync(episode, step, reports, dissent, via, state)
        if ended is not None:
            episode.end_step = step
            episode.record.outcome = outcome
            self._end_episode(episode)

    def _desync(self, episode: _Episode, step: int, reports: dict[str, dict[str, Any]],
                dissent: dict[str, dict[str, Any]], via: str | None, state: Any) -> None:
        """Members reported another step than the row: record it and send them a correct state."""
        self.desyncs += 1
        self.suspect |= set(dissent)
        self.suspect -= set(reports) - set(dissent)
        claims = {self.members[n].participant.pid: _describe(r) for n, r in reports.items() if n in self.members}
        self._event(self.owner, "desync", {"episode": episode.index, "step": step, "resolved_by": via,
                                           "correction": "state" if self.corrects else "none", "reports": claims,
                                           "fingerprints": {pid: c.get("h") for pid, c in claims.items()}},
                    episode.record.episode_id)
        if not self.corrects:
            return
        targets = {n for n in dissent if n in self.members}
        if state is not None:
            for name in targets:
                self._send_state(self.members[name], episode.index, step, state, source="server")
        elif self.referee is not None:
            self.spawn(self._referee_corrects(episode.index, step, targets), "correcting from the referee")
        else:
            waiting = set().union(*self.awaiting.values()) if self.awaiting else set()
            donors = [m for m in self._present() if m.agent in reports and m.agent not in dissent]
            if targets - waiting and donors:
                self._ask_state(min(donors, key=lambda m: self.rank[m.agent]), targets - waiting)

    def _unresolved(self, episode: _Episode, step: int, reports: dict[str, dict[str, Any]]) -> None:
        """No majority and no referee: nobody can say what happened, so the game ends, recorded."""
        claims = {self.members[n].participant.pid: _describe(r) for n, r in reports.items() if n in self.members}
        self._event(self.owner, "desync", {"episode": episode.index, "step": step, "resolved_by": None,
                                           "correction": "none", "reports": claims}, episode.record.episode_id)
        self.outcomes = {a: "desync_unresolved" for a in self.members}
        self.abort("desync_unresolved")

    # --- the referee --------------------------------------------------------------------------

    def _referee_decides(self, episode: _Episode, step: int) -> None:
        self.deciding = True
        self.spawn(self._referee_row(episode, step), f"refereeing step {step}")

    async def _referee_row(self, episode: _Episode, step: int) -> None:
        try:
            result, state = await self._referee_play(episode, step)
        finally:
            self.deciding = False
        if self.done.done() or self.episodes.get(episode.index) is not episode or episode.next_row != step:
            return
        reports = episode.reports.pop(step, {})
        self._write_row(episode, step, reports, result.claim, "server", result, state)
        self._write_rows()

    async def _referee_play(self, episode: _Episode, step: int) -> tuple[Result, Any]:
        """Play the referee to ``step`` on a worker thread; its result there and its state (if any)."""
        referee = self.referee
        assert referee is not None
        async with self.referee_lock:
            first = referee.step + 1 if referee.episode == episode.index and step >= referee.step else 1
            actions = {f: episode.actions[f] for f in range(first, step + 1)}

            def play() -> tuple[Result, Any]:
                result = referee.play_to(episode.index, step, actions)
                return result, referee.state() if self.corrects else None

            return await asyncio.to_thread(play)

    async def _referee_corrects(self, index: int, step: int, targets: set[str]) -> None:
        episode = self.episodes.get(index)
        if episode is None:
            return
        _, state = await self._referee_play(episode, step)
        if self.done.done() or self.episodes.get(index) is not episode:
            return
        for name in targets:
            target = self.members.get(name)
            if target is not None and target.participant.present:
                self._send_state(target, index, step, state, source="server")

    def _end_episode(self, episode: _Episode) -> None:
        now = time.monotonic()
        record = episode.record
        record.ended_at = time.time()
        record.ended_ns = int(now * 1e9)
        record.steps = episode.end_step or 0
        record.returns = dict(episode.returns)
        self.server.storage.write([record.copy()])
        self.current = episode.index + 1
        del self.episodes[episode.index]
        if self.current >= self.game.episodes:
            self.finish()
        else:
            self._episode(self.current)

    def abort(self, outcome: str) -> None:
        """End now: write what was reported, and close the open episodes with ``outcome``."""
        if self.done.done():
            return
        self.deciding = False
        self._write_rows(flush=True)
        for episode in self.episodes.values():
            record = episode.record
            record.ended_at, record.ended_ns = time.time(), time.monotonic_ns()
            record.steps = episode.next_row - 1
            record.returns = dict(episode.returns)
            record.outcome = outcome
            self.server.storage.write([record.copy()])
        self.episodes.clear()
        self.finish()

    def _event(self, pid: str, kind: str, data: dict[str, Any], episode_id: str | None = None) -> None:
        self.server.storage.write([EventRecord(pid, time.monotonic_ns(), kind, data, episode_id)])

    # --- state: corrections and catch-up ---------------------------------------------------------

    def _ask_state(self, donor: LockstepMember, targets: set[str]) -> None:
        self.awaiting.setdefault(donor.agent, set()).update(targets)
        if donor.participant.guard is not None:
            donor.participant.guard.expect_state(True)  # a state may be larger than other messages
        self.spawn(donor.participant.send({"t": "get", "e": max(self.episodes)}), "asking for a state")

    def on_state(self, member: Member, message: dict[str, Any]) -> None:
        targets = self.awaiting.pop(member.agent, None)
        if targets is None:
            raise wire.ProtocolError("state: the server did not ask for it")
        if member.participant.guard is not None:
            member.participant.guard.expect_state(False)
        if self.done.done():
            return  # the game ended while the state was on its way
        index, step = message["e"], message["f"]
        if index not in self.episodes or not 0 <= step <= self.episodes[index].newest:
            for name in targets:  # the donor moved on (or back): ask again from where it is now
                self._send_replay(self.members[name])
            return
        for name in targets:
            target = self.members.get(name)
            if target is not None:
                self._send_state(target, index, step, message["s"], source=member.participant.pid)

    def on_refuse(self, member: Member, message: dict[str, Any]) -> None:
        """A client could not load a state it was sent: record it, and let it replay from the seed."""
        member = cast(LockstepMember, member)  # every member of this room is one (member_class)
        episode = self.episodes.get(message["e"])
        self._event(member.participant.pid, "state_refused", {"episode": message["e"], "step": message["f"],
                                                              "why": message["why"]},
                    episode.record.episode_id if episode is not None else None)
        if episode is not None and not self.done.done():
            self._send_state(member, episode.index, 0, None)

    def _send_state(self, target: LockstepMember, index: int, step: int, snapshot: Any,
                    source: str | None = None) -> None:
        episode = self.episodes.get(index)
        if episode is None or not target.participant.present:
            return
        if source is not None:
            self._event(self.owner, "resync", {"episode": index, "step": step, "to": target.participant.pid,
                                               "from": source}, episode.record.episode_id)
        target.generation += 1
        target.at = (index, step)
        self.suspect.discard(target.agent)
        for reports in episode.reports.values():
            reports.pop(target.agent, None)
        log_ = [episode.actions[f] for f in range(step + 1, episode.newest + 1) if f in episode.actions]
        seat = self.order.index(target.agent) if target.agent in self.order else None
        need = step + 1
        if seat is not None:
            while need in episode.actions or (need in episode.partial and episode.partial[need][seat] is not None):
                need += 1
        self.spawn(target.participant.send({"t": "state", "e": index, "f": step, "s": snapshot, "log": log_,
                                            "need": need, "g": target.generation, "d": episode.delay}),
                   "sending a state")
        self._write_rows()

    def _send_replay(self, target: LockstepMember) -> None:
        """Catch up without anyone's state: the episode's inputs from its start, replayed from the seed."""
        self._send_state(target, max(self.episodes), 0, None)

    # --- members leaving and coming back --------------------------------------------------------

    def member_gone(self, member: Member) -> None:
        waiting = self.awaiting.pop(member.agent, set())
        for name in waiting:  # the donor left: the ones it was to correct replay from the seed
            target = self.members.get(name)
            if target is not None and target.participant.present:
                self._send_replay(target)
        self._write_rows()
        self._event(member.participant.pid, "lockstep_disconnect", {"seat": member.agent})

    def member_lost(self, member: Member) -> None:
        if member.agent in self.order:
            super().member_lost(member)
            return
        self.remove(member, "disconnected")  # an observer left: the game goes on
        self._write_rows()

    async def member_back(self, member: Member) -> None:
        member = cast(LockstepMember, member)  # every member of this room is one (member_class)
        if not self.started.done():
            return  # the scene message is still to come
        await member.participant.send(self.scene_message(member))
        if self.referee is not None and self.corrects and self.episodes:
            episode = self.episodes[max(self.episodes)]
            self.spawn(self._referee_corrects(episode.index, episode.newest, {member.agent}), "catching up a member")
            return
        donors = [m for m in self._present() if m is not member and m.agent not in self.suspect]
        if self.corrects and donors:
            self._ask_state(min(donors, key=lambda m: self.rank[m.agent]), {member.agent})
        else:
            self._send_replay(member)

    def status(self) -> dict[str, Any]:
        status = super().status()
        newest = max(self.episodes) if self.episodes else None
        status.update(episode=newest, step=self.episodes[newest].newest if newest is not None else 0,
                      input_delay=self.delays.get(newest) if newest is not None else None,
                      stalls=self.stalls, desyncs=self.desyncs)
        return status


def _describe(report: dict[str, Any]) -> dict[str, Any]:
    """A report's claim, as recorded with a desync."""
    return {key: report[key] for key in ("r", "x", "h") if key in report}


def _actions_of(keymap: KeyMap) -> list[Any]:
    """Every action a seat's key map can produce (what a client may send for it)."""
    actions = [keymap.default_action]
    for _, action in keymap.entries:
        if action not in actions:
            actions.append(action)
    return actions
