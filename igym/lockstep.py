"""Lockstep play, the client's half: every client runs the env, only inputs cross the network.

A Game with ``network="lockstep"`` is not run by the server. Each client runs the same
:class:`~igym.session.Session` from the same seeds, and the server relays inputs: a
client that takes step ``f`` sends its seat's input for step ``f + d`` (``d`` is the
input delay, fixed for each episode and announced before it starts), and the server sends
every client the inputs of all seats for a step once it has them (``st``). The first ``d``
steps of every episode use each seat's default action, which every client knows without asking. A client that reaches a
step whose inputs have not arrived waits — lockstep, no prediction — and reports the stall;
afterwards its clock restarts, so the game goes on at its pace instead of fast-forwarding.

Each input message also reports the step just taken: the nonzero rewards, the episode's
end, the env's ``state_fingerprint()`` every ``k`` steps and any stall. The server writes
the step records from the inputs and these reports, compares the fingerprints and, when
one client's state has drifted, sends it the state of a client that agrees with the
majority (``get``/``state``: ``env.get_state()`` / ``env.set_state()``). A client that
reconnects gets the same ``state`` message (or, for envs without ``get_state``, the
episode's inputs from its start, replayed from its seed) and catches up.

:class:`LockstepPlayer` is sans-I/O like the Session: messages in (:meth:`receive`),
key events and time in, messages out (:meth:`take_outbox`) and frames to draw. The
desktop client, a web page and :func:`run_headless` (bots, tests) drive the same object.

Messages (see :mod:`igym.wire`):
  client → server  in    {t, e: episode, n?: step taken, f?: step of the input, a?: action,
                          k?: keys held, p?: the press that made a keystroke action,
                          s?: source 0 human / 1 default / 2 previous,
                          kt?: ms since the keys changed (sent once per change),
                          r?: {agent: reward ≠ 0}, x?: episode end, h?: fingerprint,
                          w?: ms stalled before step n, c?: hook columns}
                   state {t, e, f, s: {"env": get_state(), "returns": {...}}}   (answer to get)
  server → client  st    {t, e, f, a: [action of each seat]}
                   get   {t, e}
                   ep    {t, e, d: the input delay of episode e}     (sent while the episode before is played)
                   state {t, e, f, s: snapshot or None (replay from the seed), log: [[actions] for
                          f+1, f+2, …], need: the first step the server lacks this client's input for,
                          d: the episode's input delay, g: how many states this client has been sent}
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from .clock import SYSTEM_CLOCK, Clock
from .controls import SeatInput
from .errors import ExperimentError
from .experiment import Experiment, Game
from .records import EpisodeRecord, StepRecord
from .session import Session

SOURCES = ("human", "default", "previous")
MAX_STEPS_PER_UPDATE = 8  # steps one update may take when its clock is behind (not after a stall)


class LoggedInput:
    """A seat whose action for each step is the one the server relayed (what Session asks)."""

    __slots__ = ("action", "source", "keys", "changed_ns", "keys_used", "decided_ns", "press_used")

    def __init__(self, action: Any) -> None:
        self.action = action
        self.source = "default"
        self.keys = ""
        self.changed_ns: int | None = None
        self.keys_used = ""
        self.decided_ns: int | None = None
        self.press_used: str | None = None  # the server records each seat's press from its inputs

    def next_action(self) -> tuple[Any, str]:
        self.keys_used, self.decided_ns = self.keys, self.changed_ns
        return self.action, self.source

    def held_names(self) -> str:
        return self.keys

    def press(self, key: str, t_ns: int) -> bool:
        return False

    def release(self, key: str, t_ns: int) -> bool:
        return False

    def release_all(self, t_ns: int) -> None:
        pass


def game_for_scene(experiment: Experiment, scene: dict[str, Any]) -> Game:
    """The local copy of the server's lockstep Game. The server's numbers rule — seeds, fps,
    episodes, max_steps — so every client plays the same schedule even if its copy of the
    file differs there; a different game itself shows up as a desync."""
    game = experiment.find_game(scene["name"], scene.get("cond"))
    seats = [str(a) for a in game.seats or ()]
    if seats != list(scene["seats"]):
        raise ExperimentError(f"scene {scene['name']!r}: the server's seats {scene['seats']} differ from this "
                              f"experiment file's {seats} — run the server's version of "
                              f"the file")
    return dataclasses.replace(game, seeds=list(scene["seeds"]), fps=scene["fps"], episodes=len(scene["seeds"]),
                               max_steps=scene.get("max_steps"), base_dir=game.base_dir)


class LockstepPlayer:
    """One client's copy of a lockstep game: steps when every seat's input has arrived."""

    def __init__(self, game: Game, scene: dict[str, Any], participant_id: str, *,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.game = game
        self.clock = clock  # the driver's ``now`` must come from this clock too
        self.order: list[str] = list(scene["seats"])
        self.delays: dict[int, int] = dict(enumerate(scene["d"]))  # episode → input delay (``ep``: the next)
        self.every: int = scene["k"]
        self.seat: str | None = scene.get("seat")
        self.session = Session(game, participant_id, scene=game.name, clock=clock)
        self.defaults = [game.keymaps[a].default_action for a in self.order]
        self.logged = [LoggedInput(d) for d in self.defaults]
        for agent, source in zip(self.order, self.logged):
            self.session.use_input(agent, source)
        self.own = SeatInput(game.keymaps[self.seat]) if self.seat is not None else None
        self.inputs: dict[tuple[int, int], list[Any]] = {}  # (episode, step) → actions of every seat
        self.next_input: int | None = None  # the first step of this episode we still owe our input for
        self.fast_until: tuple[int, int] | None = None  # catching up: step as fast as inputs allow
        self.stalled_since: float | None = None
        self.stalls = 0
        self.stall_s = 0.0
        self._episode_stalls = [0, 0.0]  # this episode's stalls and seconds, reported with its end
        self.resyncs = 0
        self.refused = 0  # states from the server that would not load here
        self.generation = 0
        self._key_change_sent: int | None = None  # the key change whose age went to the server
        self.steps = 0
        self._outbox: list[dict[str, Any]] = []

    # --- input ----------------------------------------------------------------------------

    def press(self, key: str, now: float) -> None:
        if self.own is not None:
            self.own.press(key, int(now * 1e9))

    def release(self, key: str, now: float) -> None:
        if self.own is not None:
            self.own.release(key, int(now * 1e9))

    def release_all(self, now: float) -> None:
        if self.own is not None:
            self.own.release_all(int(now * 1e9))

    def receive(self, message: dict[str, Any], now: float) -> bool:
        """Take a server message meant for the game; False if it is not one of ours."""
        kind = message.get("t")
        if kind == "st":
            self.inputs[(message["e"], message["f"])] = message["a"]
        elif kind == "ep":
            self.delays[message["e"]] = message["d"]
        elif kind == "get":
            self._send_state()
        elif kind == "state":
            self._apply_state(message, now)
        else:
            return False
        return True

    def take_outbox(self) -> list[dict[str, Any]]:
        out, self._outbox = self._outbox, []
        return out

    # --- the clock --------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.session.finished

    def update(self, now: float) -> int:
        """Take the steps that are due and whose inputs are here; returns how many."""
        session = self.session
        if session.finished:
            return 0
        if session.next_step_at is None:
            session.tick(now)  # starts the first episode
            return 0
        if session.counting_down:  # never past the first step's deadline: steps wait for their inputs
            session.tick(min(now, session.next_step_at - 1e-6))
            return 0
        taken = 0
        while not session.finished and not session.counting_down:
            catching_up = self.fast_until is not None and (session.episode, session.step) < self.fast_until
            due = session.next_step_at
            if not catching_up and (now < due - 1e-9 or taken >= MAX_STEPS_PER_UPDATE):
                break
            episode, step = session.episode, session.step + 1
            actions = self._actions(episode, step)
            if actions is None:
                if self.stalled_since is None:
                    self.stalled_since = max(due, now - 0.05) if not catching_up else now
                break
            waited = 0.0
            if self.stalled_since is not None:
                waited = max(0.0, now - self.stalled_since)
                self.stalled_since = None
            if waited > 0.0:  # counted before the step: a stall at an episode's last step is that episode's
                self.stalls += 1
                self.stall_s += waited
                self._episode_stalls[0] += 1
                self._episode_stalls[1] += waited
            for seat, action in zip(self.logged, actions):
                seat.action = action
            session.tick(due)
            self._after_step(episode, step, waited)
            taken += 1
            if waited > 0.0 and not session.counting_down:
                session.reschedule(now + session.dt)  # go on at the game's pace, not fast-forward
        if self.fast_until is not None and (session.episode, session.step) >= self.fast_until:
            self.fast_until = None
            if not session.counting_down:
                session.reschedule(now + session.dt)
        return taken

    def _actions(self, episode: int, step: int) -> list[Any] | None:
        delay = self.delays.get(episode)
        if delay is None:
            return None  # the episode's input delay is not announced yet: wait for it
        if step <= delay:
            return self.defaults
        return self.inputs.get((episode, step))

    def _after_step(self, episode: int, step: int, waited: float) -> None:
        session = self.session
        self.steps += 1
        record: StepRecord | None = None
        ended: EpisodeRecord | None = None
        for item in session.take_records():  # the server keeps the data; we report what it cannot know
            if type(item) is StepRecord:
                record = item
            elif type(item) is EpisodeRecord and item.outcome is not None and item.index == episode:
                ended = item
        report: dict[str, Any] = {"t": "in", "e": episode, "n": step}
        if record is not None:
            rewards = {str(a): r for a, r in record.rewards.items() if r}
            if rewards:
                report["r"] = rewards
            if record.fingerprint is not None and step % self.every == 0:
                report["h"] = record.fingerprint
            if record.extra:
                report["c"] = record.extra
            if ended is not None:
                # How this client's episode went: its frame timing (when it draws) and its stalls.
                report["x"] = {"o": ended.outcome, "c": bool(record.cut),
                               "te": [str(a) for a, v in record.terminated.items() if v],
                               "tr": [str(a) for a, v in record.truncated.items() if v],
                               "stalls": self._episode_stalls[0], "stall_ms": round(self._episode_stalls[1] * 1000, 1),
                               **({"timing": ended.timing} if ended.timing else {})}
                self._episode_stalls = [0, 0.0]
        if waited > 0.0:
            report["w"] = round(waited * 1000, 1)
        if self.generation:
            report["g"] = self.generation  # reports made before the last correction are stale
        if ended is None:
            self._owe(episode, step, report)
        else:
            self.next_input = None
            for key in [k for k in self.inputs if k[0] <= episode]:
                del self.inputs[key]
        self._outbox.append(report)

    def _owe(self, episode: int, step: int, report: dict[str, Any] | None = None) -> None:
        """Send our input for every step up to ``step + delay`` we have not sent yet (normally one)."""
        if self.own is None:
            return
        delay = self.delays[episode]
        if self.next_input is None:
            self.next_input = delay + 1
        last = step + delay
        limit = self.game.max_steps
        if limit is not None:
            last = min(last, limit)
        while self.next_input <= last:
            action, source = self.own.next_action()
            message = report if (report is not None and self.next_input == last) else {"t": "in", "e": episode}
            message.update(f=self.next_input, a=action, s=SOURCES.index(source))
            keys = self.own.keys_used
            if keys:
                message["k"] = keys
            press = self.own.press_used
            if press:
                message["p"] = press
            changed = self.own.decided_ns
            if changed is not None and changed != self._key_change_sent:
                # How long ago the keys changed: the server dates the change on its own clock.
                self._key_change_sent = changed
                message["kt"] = round(max(0, int(self.clock.monotonic() * 1e9) - changed) / 1e6, 2)
            if message is not report:
                self._outbox.append(message)
            self.next_input += 1

    # --- corrections --------------------------------------------------------------------------

    def _send_state(self) -> None:
        session = self.session
        get_state = session.env.get_state
        if get_state is None or session.next_step_at is None:
            return
        self._outbox.append({"t": "state", "e": session.episode, "f": session.step,
                             "s": {"env": get_state(), "returns": session.returns()}})

    def _apply_state(self, message: dict[str, Any], now: float) -> None:
        """Continue from the server's snapshot (or from the episode's reset) and catch up."""
        episode, step = message["e"], message["f"]
        snapshot = message.get("s")
        session = self.session
        self.generation = message.get("g", self.generation)  # the server now ignores older reports
        if session.next_step_at is not None and episode < session.episode:
            return  # we are in a later episode already: its reset put us in step
        self.resyncs += 1
        try:
            session.jump(episode, step, snapshot["env"] if snapshot else None,
                         snapshot.get("returns") if snapshot else None, now)
        except Exception as error:
            if snapshot is None:
                raise  # the episode's own reset failed: this computer cannot play the game
            self._outbox.append({"t": "refuse", "e": episode, "f": step,
                                 "why": f"{type(error).__name__}: {error}"[:200]})
            self.refused += 1
            return
        session.take_records()
        for key in [k for k in self.inputs if k[0] < episode]:
            del self.inputs[key]
        for offset, actions in enumerate(message.get("log") or ()):
            self.inputs[(episode, step + 1 + offset)] = actions
        self.fast_until = (episode, step + len(message.get("log") or ()))
        self.stalled_since = None
        self.delays[episode] = message["d"]
        if self.own is not None:
            self.next_input = max(self.next_input or 0, message.get("need", 0))
            self._owe(episode, step)


async def run_headless(url: str, participant_id: str, experiment: Experiment, *, autopilot_seed: int | None = 0,
                       rate_hz: float = 120.0, stop_after_s: float | None = None,
                       token: str | None = None) -> dict[str, Any]:
    """Play a server's experiment without a window: lockstep game scenes with the autopilot
    (an authoritative game's frames are ignored and it presses nothing there), pages left
    the way a willing participant would. For bots, load tests and tests; it needs no
    pygame, so it runs in a browser's Python too.

    Returns what happened: the end message, steps taken, stalls, resyncs, the token and
    the fingerprints this client reported, keyed by (episode, step).
    """
    from . import web, wire
    from .autopilot import Autopilot
    from .client_protocol import ClientProtocol

    clock = SYSTEM_CLOCK
    protocol = ClientProtocol(participant_id, token=token, clock=clock)
    connection = web.WebSocket()
    await connection.connect(url)
    await connection.send(wire.pack(protocol.hello()))
    result: dict[str, Any] = {"end": None, "steps": 0, "stalls": 0, "stall_ms": 0.0, "resyncs": 0, "token": token,
                              "fingerprints": {}}
    player: LockstepPlayer | None = None
    autopilot: Autopilot | None = None
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = clock.monotonic()

    async def read() -> None:
        try:
            while True:
                queue.put_nowait(wire.unpack(await connection.recv()))
        except web.ConnectionClosed as closed:
            queue.put_nowait({"t": "_closed", "code": closed.code, "reason": closed.reason})

    async def send(message: dict[str, Any]) -> None:
        try:
            await connection.send(wire.pack(message))
        except web.ConnectionClosed:
            pass  # the server is closing: what it sent before (the end) is still to be read

    reader = asyncio.create_task(read())
    try:
        while result["end"] is None:
            if stop_after_s is not None and clock.monotonic() - started > stop_after_s:
                break
            now = clock.monotonic()
            while not queue.empty():
                message = protocol.receive(queue.get_nowait())
                for reply in protocol.take_outbox():  # pongs
                    await send(reply)
                if message is None:
                    continue
                kind = message.get("t")
                if player is not None and player.receive(message, now):
                    continue
                if kind == "welcome":
                    result["token"] = protocol.token
                elif kind == "scene" and message.get("net") == "lockstep":
                    _collect(player, result)
                    player = LockstepPlayer(game_for_scene(experiment, message), message, participant_id, clock=clock)
                    keys = sorted(player.own.keymap.keys) if player.own is not None else []
                    autopilot = Autopilot(keys, autopilot_seed) if keys and autopilot_seed is not None else None
                elif kind == "page":
                    reply = {"t": "page", "v": message["v"],
                             "o": {"consent": "agreed", "end": "closed"}.get(message["page"].get("kind"), "continued")}
                    await send(reply)
                elif kind == "end":
                    result["end"] = message
                elif kind == "_closed":
                    result["end"] = result["end"] or {"outcome": "closed", "code": message["code"],
                                                      "text": message["reason"]}
            if player is not None:
                if autopilot is not None:
                    autopilot.play(player, now)
                player.update(now)
                for message in player.take_outbox():
                    if "h" in message:
                        result["fingerprints"][(message["e"], message["n"])] = message["h"]
                    await send(message)
            await asyncio.sleep(1.0 / rate_hz)
    finally:
        reader.cancel()
        connection.close()
    _collect(player, result)
    return result


def _collect(player: LockstepPlayer | None, result: dict[str, Any]) -> None:
    if player is not None:
        result["steps"] += player.steps
        result["stalls"] += player.stalls
        result["stall_ms"] += round(player.stall_s * 1000, 1)
        result["resyncs"] += player.resyncs
