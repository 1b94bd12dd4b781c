"""The sans-I/O game session: inputs and time in, frames and records out.

A :class:`Session` plays the episodes of one :class:`~igym.experiment.Game` scene for one
participant. It never sleeps, reads a socket or touches pygame: a driver feeds it key
events (``press``/``release``) and the current time (``tick(now)``), then reads
``frame``/``previous_frame`` to draw and ``take_records()`` to store. The desktop window,
the pygbag page and the server's rooms are thin drivers around this one object, which is
why one test suite covers all three (the websockets library's sans-I/O design).

Time: the env steps on a fixed clock of ``game.fps`` steps per second against absolute
deadlines, so it does not drift with the display rate. If the driver falls far behind
(a stalled window), the clock skips ahead instead of fast-forwarding the game, and the
skip is recorded.
"""

from __future__ import annotations

import math
import random
from typing import Any
from collections.abc import Callable, Mapping

from .clock import SYSTEM_CLOCK, Clock
from .controls import PointerSeat, SeatInput
from .envs import EnvAdapter
from .errors import ExperimentError
from .experiment import Game, HudInfo
from .hooks import HookContext
from .policy import Policy, RandomPolicy, as_policy, load_policy
from .records import EpisodeRecord, EventRecord, Record, StepRecord, plain
from .render import Frame, Text, image_from_array, validate_shapes

MAX_CATCH_UP_S = 0.25


class Session:
    """Plays one Game scene for one participant, driven by ``press``/``release``/``tick``."""

    def __init__(self, game: Game, participant_id: str = "anonymous", *, scene: str | None = None,
                 max_total_steps: int | None = None, seed_source: Callable[[], int] | None = None,
                 visit_id: str | None = None, hook_state: dict[str, Any] | None = None,
                 condition: str | None = None, study: str = "", clock: Clock = SYSTEM_CLOCK,
                 policies: Mapping[str, Any] | None = None) -> None:
        self.game = game
        # The AI seats' policies, loaded by the driver beforehand (ONNX files are read and hashed
        # there, off the frame loop: igym.policy.load_policies); built here only if it did not.
        self._loaded = dict(policies) if policies is not None else None
        self.clock = clock  # wall time and ids for the records (the driver passes "now" to tick)
        self.study = study  # the experiment's id: part of every AI seat's seed
        self.participant_id = participant_id
        self.scene = scene or game.name or "game"
        self.visit_id = visit_id
        self.max_total_steps = max_total_steps
        self._seed_source = seed_source or (lambda: random.SystemRandom().randrange(2**31))
        assert game.env is not None  # Game.__post_init__ refuses a game without one
        self.env = EnvAdapter(game.env())
        self.dt = 1.0 / game.fps
        self.seats: dict[str, Any] = {}
        self.policies: dict[Any, Any] = {}
        self.inputs: dict[Any, SeatInput] = {}
        self._axes: dict[int, float] = {}  # raw gamepad axis values, recorded as axis.N with each step
        self._pointer: tuple[float, float, int] | None = None
        if self.env.turn_based and game.pace != "on_input":
            raise ExperimentError(f"Game {game.name!r}: its env is turn-based (a PettingZoo AEC env) — give the "
                                  f"scene pace='on_input' (and keystroke key maps), so each move waits for its player")
        self._build_seats()
        self._agents = self.env.agents
        self._replan()
        self.frame: Frame | None = None
        self.previous_frame: Frame | None = None
        self.finished = False
        self.paused = False
        self.episode = -1
        self.step = 0
        self.total_steps = 0
        self._next_step_at: float | None = None
        self._origin = 0.0
        self._ticks = 0
        self._records: list[Record] = []
        self._episode: EpisodeRecord | None = None
        self._held_actions: dict[Any, Any] = {}
        self._frame_times: list[float] = []
        self._returns: dict[Any, float] = {}
        self._hud: tuple[tuple[str, str], ...] = ()
        self._hud_second = -1
        self._pending_seats: dict[str, Any] = {}
        self._countdown_until: float | None = None
        self._countdown_shown = 0
        self._turn_started: float | None = None  # pace="on_input": when the current move was asked for
        hooked = game.on_episode_start or game.on_step or game.on_episode_end
        self.hooks = HookContext(self, hook_state if hook_state is not None else {}, condition) if hooked else None
        self._fingerprint = self.env.state_fingerprint if game.fingerprints else None

    # --- set-up -----------------------------------------------------------------------

    def _build_seats(self) -> None:
        game, env = self.game, self.env
        seats = game.seats
        assert seats is not None  # Game.__post_init__ refuses a game without them
        names = set(env.agent_names)
        declared = {str(a) for a in seats}
        if declared != names:
            raise ExperimentError(
                f"Game {game.name!r}: seats name {sorted(declared)} but the env's agents are "
                f"{sorted(names)} — give one seat per agent")
        for agent in env.agents:
            self._assign(agent, seats.get(agent, seats.get(str(agent))))

    def _assign(self, agent: Any, seat: Any) -> None:
        game, name = self.game, str(agent)
        if seat == "human":
            # Checked against the seat's action space here, before the first frame.
            place = PointerSeat(name, self.env.agents.index(agent), (float(game.canvas[0]), float(game.canvas[1])),
                                lambda: self.env.action_mask(agent))  # where its pointer acts (igym.boards)
            self.inputs[agent] = SeatInput(game.keymaps[name], self._space(agent),
                                           f"Game {game.name!r}, seat {name}, keys", place)
            self.seats[name] = "human"
            return
        policy: Policy
        if seat == "random":
            policy = RandomPolicy(space=self.env.action_space(agent))  # seeded per episode (_seed_seats)
        elif isinstance(seat, str):  # an .onnx path: loaded by the driver, or here if it did not
            declared = (game.seats or {}).get(name)
            loaded = self._loaded.get(name) if self._loaded is not None and declared == seat else None
            policy = loaded if loaded is not None else load_policy(seat, game)
        else:
            policy = as_policy(seat)
        self.policies[agent] = policy
        describe = getattr(policy, "describe", None)
        self.seats[name] = describe() if describe else {"kind": type(policy).__name__}

    def _space(self, agent: Any) -> Any:
        try:
            return self.env.action_space(agent)
        except Exception:  # noqa: BLE001 — some envs' space methods fail (CoGrid 0.3.2): keys unchecked
            return None

    def _replan(self) -> None:
        """Who chooses each agent's action, resolved once: (agent, human seat or None, policy or None);
        and which raw inputs (gamepad axes, the pointer) each step records."""
        # (agent, its human seat or None, its policy — Any: exactly one of the two is set)
        self._plan: tuple[tuple[Any, SeatInput | None, Any], ...] = tuple(
            (a, self.inputs.get(a), self.policies.get(a)) for a in self._agents)
        maps = [getattr(seat, "keymap", None) for seat in self.inputs.values()]
        self._axis_ids = tuple(sorted({a.axis for m in maps if m is not None for a in m.axes}))
        self._pointed = any(m is not None and m.pointer is not None for m in maps)

    # --- input ------------------------------------------------------------------------

    @property
    def taking_input(self) -> bool:
        """Whether key presses play now (not before the episode, during its countdown, or paused)."""
        return self._next_step_at is not None and self._countdown_until is None and not self.paused

    def press(self, key: str, now: float, agent: Any = None) -> None:
        """A key went down (pygame-style key name): to ``agent``'s seat, or every human seat that maps it.

        A keystroke made while the game takes no input (its countdown, a pause) is not kept for
        later — it is recorded (``key_dropped``) and dropped; a key held into the game still counts
        as held."""
        t_ns = int(now * 1e9)
        taking = self.taking_input
        turns = self.env.active() if taking and self.env.turn_based else None
        for mover, seat in self._seats_for(agent):
            queue = taking and (turns is None or mover in turns)  # a turn-based game: only the mover's keys
            if seat.press(key, t_ns, queue):
                self._records.append(EventRecord(self.participant_id, t_ns, "key_down",
                                                 {"key": key, "agent": str(mover)}, self._episode_id()))
                if not queue and seat.keymap.mode == "keystroke":
                    why = self._not_taking() if not taking else "not their turn"
                    self._records.append(EventRecord(self.participant_id, t_ns, "key_dropped",
                                                     {"key": key, "agent": str(mover), "why": why},
                                                     self._episode_id()))

    def release(self, key: str, now: float, agent: Any = None) -> None:
        """A key went up."""
        t_ns = int(now * 1e9)
        for mover, seat in self._seats_for(agent):
            if seat.release(key, t_ns):
                self._records.append(EventRecord(self.participant_id, t_ns, "key_up",
                                                 {"key": key, "agent": str(mover)}, self._episode_id()))

    def axis(self, index: int, value: float, now: float, agent: Any = None) -> None:
        """A gamepad axis moved (SDL's -1..1): to ``agent``'s seat, or every human seat that maps it."""
        self._axes[index] = float(value)
        t_ns = int(now * 1e9)
        for _, seat in self._seats_for(agent):
            axis = getattr(seat, "axis", None)
            if axis is not None:
                axis(index, value, t_ns)

    def point(self, x: float, y: float, buttons: int, now: float, agent: Any = None) -> None:
        """The pointer is at (x, y) in canvas coordinates with ``buttons`` held (bits: 1 left,
        2 middle, 4 right). In a keystroke map a button press is a click, recorded (``click``)
        and played like a key press — only in the seat's turn, while the game takes input."""
        self._pointer = (float(x), float(y), int(buttons))
        t_ns = int(now * 1e9)
        taking = self.taking_input
        turns = self.env.active() if taking and self.env.turn_based else None
        for mover, seat in self._seats_for(agent):
            point = getattr(seat, "point", None)
            queue = taking and (turns is None or mover in turns)  # like press(): clicks play in the mover's turn
            if point is not None and point(x, y, buttons, t_ns, queue) and getattr(seat, "clicked", None) is not None:
                self._click(mover, seat.clicked, x, y, t_ns, None if queue else
                            self._not_taking() if not taking else "not their turn")

    def _click(self, agent: Any, click: Any, x: float, y: float, t_ns: int, dropped: str | None) -> None:
        """A click of a keystroke map's pointer: a ``click`` event (what it made of it, or why it
        was dropped); an attempt the action space cannot name is an ``illegal_action`` too."""
        did = click.did or ("moved" if click.action is not None else "ignored")
        if dropped is not None:
            did = "ignored"
        elif did == "moved" and not self.env.legal(agent, click.action):
            did = "illegal"  # the step will refuse it too (and record its illegal_action)
        data = {"agent": str(agent), "x": round(float(x), 1), "y": round(float(y), 1), "what": click.label,
                "did": did}
        if dropped is not None:
            data["dropped"] = dropped
        self._records.append(EventRecord(self.participant_id, t_ns, "click", data, self._episode_id()))
        if click.illegal and dropped is None:
            self._records.append(EventRecord(self.participant_id, t_ns, "illegal_action",
                                             {"agent": str(agent), "action": None, "keys": click.label},
                                             self._episode_id()))

    def _input_columns(self) -> dict[str, Any]:
        """The raw axis values and pointer state of this step (``steps.extra``)."""
        columns: dict[str, Any] = {f"axis.{i}": self._axes.get(i) for i in self._axis_ids}
        if self._pointed:
            x, y, buttons = self._pointer if self._pointer is not None else (None, None, 0)
            columns.update({"pointer.x": x, "pointer.y": y, "pointer.buttons": buttons})
        return columns

    def _not_taking(self) -> str:
        return "paused" if self.paused else "countdown" if self._countdown_until is not None else "not started"

    def _seats_for(self, agent: Any) -> Any:
        if agent is None:
            return self.inputs.items()
        seat = self.inputs.get(self.env.agent(agent))
        return () if seat is None else ((self.env.agent(agent), seat),)

    def replace_seat(self, agent: Any, seat: Any, now: float) -> None:
        """Hand a seat to someone else mid-game (an AI taking over from a player who left)."""
        native = self.env.agent(agent)
        self.inputs.pop(native, None)
        self.policies.pop(native, None)
        self._held_actions.pop(native, None)
        self._assign(native, seat)
        self._replan()
        self.event("seat_replaced", now, {"agent": str(agent), "by": self.seats[str(native)]})

    def request_seat(self, agent: Any, seat: Any) -> None:
        """Hand a seat to another player at the next episode start (what hooks call)."""
        name = str(agent)
        if name not in self.env.agent_names:
            raise ExperimentError(f"Game {self.game.name!r}: set_seat({agent!r}) — no such agent; the agents "
                                  f"are {list(self.env.agent_names)}")
        self._pending_seats[name] = seat

    def _apply_pending_seats(self, now: float) -> None:
        pending, self._pending_seats = self._pending_seats, {}
        for name, seat in pending.items():
            if seat == "human" and name not in self.game.keymaps:
                raise ExperimentError(f"Game {self.game.name!r}: set_seat({name!r}, 'human') — the scene has no "
                                      f"key map for that agent")
            self.replace_seat(name, seat, now)
            policy = self.policies.get(self.env.agent(name))
            if policy is not None:
                policy.reset()

    def release_all(self, now: float) -> None:
        """Forget held keys, e.g. when the window loses focus and key-ups will never arrive."""
        for seat in self.inputs.values():
            seat.release_all(int(now * 1e9))

    def event(self, kind: str, now: float, data: dict[str, Any] | None = None) -> None:
        """Record something a driver saw (focus lost, window resized, latency sample)."""
        self._records.append(EventRecord(self.participant_id, int(now * 1e9), kind, data, self._episode_id()))

    def note_frame(self, now: float) -> None:
        """The driver showed a frame at ``now``: frame intervals become timing-quality data."""
        self._frame_times.append(now)

    # --- clock ------------------------------------------------------------------------

    def pause(self, now: float) -> None:
        """Stop the game clock (a dropped partner, a dialog); ``resume`` restarts it."""
        if not self.paused:
            self.paused = True
            self.event("pause", now)

    def resume(self, now: float) -> None:
        """Restart the clock; a pause during the countdown starts the countdown again."""
        if self.paused:
            self.paused = False
            if self._countdown_until is not None:
                self._countdown_until = now + self.game.countdown_s
                self._countdown_shown = 0
                self._restart_clock(self._countdown_until + self.dt)
            else:
                self._restart_clock(now + self.dt)
            self._turn_started = None  # a move asked for before the pause is asked for again
            self.event("resume", now)

    def tick(self, now: float) -> int:
        """Advance the game to ``now``; returns how many env steps were taken."""
        if self.finished or self.paused:
            return 0
        if self._next_step_at is None:
            self._start_episode(now)
            return 0
        if self._countdown_until is not None:
            if now < self._countdown_until:
                self._show_countdown(now)
                return 0
            self._countdown_until = None
            self.frame = self._render()
        if self.game.pace == "on_input":
            return self._tick_on_input(now)
        if now - self._next_step_at > MAX_CATCH_UP_S:
            behind = now - self._next_step_at
            self.event("clock_skip", now, {"behind_s": round(behind, 4)})
            self._restart_clock(now)
        steps = 0
        while now >= self._next_step_at - 1e-9 and not self.finished:  # 1 ns: float round-off
            self._step(self._next_step_at)
            self._ticks += 1
            # origin + k / fps, not repeated += dt: deadlines stay exact, no drift.
            self._next_step_at = self._origin + self._ticks / self.game.fps
            steps += 1
        return steps

    def _tick_on_input(self, now: float) -> int:
        """pace="on_input": a step when every human seat that is to move has a keystroke waiting
        (an illegal move is recorded and waits for another), an AI's turn ``1 / fps`` after the
        move before, the default actions after ``max_wait_s`` without a move."""
        if self._turn_started is None:
            self._turn_started = self._origin - self.dt  # the move is asked for when the game starts taking input
        steps = 0
        wait = self.game.max_wait_s
        while not self.finished and steps < 8:
            asked = self._turn_started
            if asked is None:  # paused meanwhile: the move is asked for again after it
                break
            humans = [self.inputs[a] for a in self.env.active() if a in self.inputs]
            timed_out = False
            if humans:
                if all(seat.pending() for seat in humans):
                    at = now
                elif wait is not None and now >= asked + wait:
                    at, timed_out = asked + wait, True
                else:
                    break
            elif self._next_step_at is not None and now >= self._next_step_at - 1e-9:
                at = self._next_step_at
            else:
                break
            turn_ns = int(asked * 1e9)
            if self._step(at, turn_ns, timed_out):
                steps += 1
                if not self.counting_down:
                    self._turn_started = at
                    self._next_step_at = at + self.dt
                self._drop_stale(int(at * 1e9))
        return steps

    def _drop_stale(self, turn_ns: int) -> None:
        """Keystrokes made before this turn began were meant for a turn that is over: recorded and
        dropped, so every move is a press made for it (and its decision time is never negative)."""
        for agent, seat in self.inputs.items():
            self._dropped(agent, seat.drop_pending(turn_ns) if hasattr(seat, "drop_pending") else (), "turn over")

    def _dropped(self, agent: Any, presses: Any, why: str) -> None:
        """One ``key_dropped`` event per keystroke dropped unplayed, at the moment of its press
        (not when it was dropped: two presses 250 ms apart stay 250 ms apart in the data)."""
        for key, t_ns in presses:
            self._records.append(EventRecord(self.participant_id, t_ns, "key_dropped",
                                             {"key": key, "agent": str(agent), "why": why}, self._episode_id()))

    def _show_countdown(self, now: float) -> None:
        """Put the seconds left (3, 2, 1) over the frozen first frame of the episode."""
        until = self._countdown_until
        assert until is not None  # only shown during a countdown
        left = max(1, math.ceil(until - now - 1e-9))
        if left != self._countdown_shown or self.frame is None:
            self._countdown_shown = left
            base = self._render()
            w, h = self.game.canvas
            number = Text("__countdown", w / 2, h / 2, str(left), size=max(24, h // 4), color=(255, 255, 255),
                          anchor="center", depth=1_000_000)
            self.previous_frame = None
            self.frame = Frame((*base.shapes, number), base.hud, base.episode, base.step)

    def _restart_clock(self, first_deadline: float) -> None:
        self._origin = first_deadline
        self._ticks = 0
        self._next_step_at = first_deadline

    # --- driven step by step (lockstep play: igym.lockstep) ------------------------------

    @property
    def next_step_at(self) -> float | None:
        """When the next env step is due (None before the first episode starts)."""
        return self._next_step_at

    @property
    def counting_down(self) -> bool:
        return self._countdown_until is not None

    def reschedule(self, first_deadline: float) -> None:
        """Restart the step clock from ``first_deadline``: after a lockstep stall the game goes
        on at its normal pace instead of fast-forwarding the time it waited."""
        self._restart_clock(first_deadline)

    def use_input(self, agent: Any, source: Any) -> None:
        """Take ``agent``'s actions from ``source`` (anything with SeatInput's ``next_action``,
        ``held_names``, ``changed_ns`` and, read after each action, ``keys_used``, ``decided_ns``
        and ``press_used``) instead of this computer's keyboard."""
        native = self.env.agent(agent)
        self.inputs[native] = source
        self._replan()

    def jump(self, episode: int, step: int, state: Any, returns: dict[str, float] | None, now: float) -> None:
        """Continue from step ``step`` of episode ``episode``, with the env in ``state`` (an
        ``env.get_state()`` snapshot), or from the episode's reset when ``state`` is None.

        This is how a lockstep client is corrected after a desync and how a rejoining one
        catches up; the episode's seed comes from the scene's seed schedule as usual.
        """
        if episode != self.episode or self._episode is None or self.finished:
            self.finished = False
            self.episode = episode - 1
            self._start_episode(now)
        elif state is None:
            self.env.reset(seed=self._episode.seed)
        self._countdown_until = None
        if state is not None:
            if self.env.set_state is None:
                raise ExperimentError(f"Game {self.game.name!r}: the env has no set_state() — it cannot be "
                                      f"resynchronised")
            self.env.set_state(state)
            self.env.done = False
        self.step = step
        agents = {str(a): a for a in self._agents}
        self._returns = {a: 0.0 for a in self._agents}
        for name, value in (returns or {}).items():
            if name in agents:
                self._returns[agents[name]] = float(value)
        self._held_actions.clear()
        self.previous_frame = None
        self.frame = self._render(validate=False)
        self._restart_clock(now + self.dt)

    def returns(self) -> dict[str, float]:
        """The episode's returns so far, by agent name."""
        return {str(a): v for a, v in self._returns.items()}

    def alpha(self, now: float) -> float:
        """How far ``now`` is between the last step and the next (for interpolation)."""
        if self._next_step_at is None or self.paused or self._countdown_until is not None:
            return 1.0
        return min(1.0, max(0.0, 1.0 - (self._next_step_at - now) / self.dt))

    def take_records(self) -> list[Record]:
        """Hand over the records produced since the last call (the driver stores them)."""
        records, self._records = self._records, []
        return records

    def abort(self, now: float, outcome: str = "aborted") -> None:
        """End now (window closed, participant left): the open episode is recorded as such."""
        if not self.finished:
            if self._episode is not None and self._episode.outcome is None:
                self._end_episode(now, outcome)
            self.finished = True

    # --- episodes ---------------------------------------------------------------------

    def _episode_id(self) -> str | None:
        return self._episode.episode_id if self._episode is not None else None

    def _start_episode(self, now: float) -> None:
        self.episode += 1
        self.step = 0
        seed = self.game.seed_for(self.episode)
        if seed is None:
            seed = self._seed_source()
        self._apply_pending_seats(now)
        self.env.reset(seed=seed)  # the adapter keeps the observations for the first step
        for policy in self.policies.values():
            policy.reset()
        self._seed_seats()
        self._turn_started = None
        for agent, seat in self.inputs.items():  # pressed after the last move of the episode before: not a move
            self._dropped(agent, seat.drop_pending() if hasattr(seat, "drop_pending") else (), "episode ended")
        self._held_actions.clear()
        self._returns = {agent: 0.0 for agent in self._agents}
        self._frame_times = []
        self._episode = EpisodeRecord(
            episode_id=self.clock.new_id(), participant_id=self.participant_id, scene=self.scene,
            index=self.episode, seed=seed, started_at=self.clock.wall(), started_ns=int(now * 1e9),
            seats=dict(self.seats), visit_id=self.visit_id)
        if self.hooks is not None and self.game.on_episode_start is not None:
            self.hooks.outcome = None
            self.game.on_episode_start(self.hooks)
            if self._pending_seats:
                self._apply_pending_seats(now)
                self._episode.seats = dict(self.seats)
        self._records.append(self._episode.copy())
        self.previous_frame = None
        self.frame = self._render(validate=True)
        countdown = self.game.countdown_s
        if countdown > 0:
            self._countdown_until = now + countdown
            self._countdown_shown = 0
            self._show_countdown(now)
            self._restart_clock(self._countdown_until + self.dt)
        else:
            self._restart_clock(now + self.dt)

    def _seed_seats(self) -> None:
        """Give every AI seat its own seed for this episode — derived from the study, the
        participant, the scene, the episode and the seat — and record it with the seat: random
        seats play independent streams, and the same seeds replay the same streams."""
        for agent, policy in self.policies.items():
            reseed = getattr(policy, "reseed", None)
            if reseed is None:
                continue
            seed = seat_seed(self.study, self.participant_id, self.scene, self.episode, str(agent),
                             getattr(policy, "base_seed", None))
            reseed(seed)
            name = str(agent)
            seat = self.seats.get(name)
            self.seats[name] = {**seat, "seed": seed} if isinstance(seat, dict) else {"kind": seat, "seed": seed}

    def _end_episode(self, now: float, outcome: str) -> None:
        episode = self._episode
        assert episode is not None
        episode.ended_at = self.clock.wall()
        episode.ended_ns = int(now * 1e9)
        episode.steps = self.step
        episode.returns = {str(a): v for a, v in self._returns.items()}
        episode.outcome = outcome
        episode.timing = frame_timing(self._frame_times)
        self._records.append(episode.copy())
        if self.hooks is not None and self.game.on_episode_end is not None:
            self.hooks.outcome = outcome
            self.game.on_episode_end(self.hooks)

    def _step(self, at: float, turn_ns: int | None = None, timed_out: bool = False) -> bool:
        """One env step (False: a person's move was illegal, recorded, and nothing stepped).
        This is the hot path: keep it lean (see tests/bench/bench_session.py)."""
        env = self.env
        observations = env.observations
        active = env.active()
        actions: dict[Any, Any] = {}
        sources: list[str] = []
        keys: list[str] = []
        key_times: list[int | None] = []
        presses: list[str | None] = []
        held = self._held_actions
        ai_turn = self.step % self.game.ai_every == 0
        plan = self._plan if len(active) == len(self._plan) else [p for p in self._plan if p[0] in active]
        for agent, seat, policy in plan:
            if seat is None:
                if ai_turn or agent not in held:
                    held[agent] = policy.act(observations[agent])
                actions[agent] = held[agent]
                sources.append("policy")
                keys.append("")
                key_times.append(None)
                presses.append(None)
            else:
                actions[agent], source = seat.next_action()
                sources.append("timeout" if timed_out else source)
                keys.append(seat.keys_used)
                key_times.append(seat.decided_ns)
                presses.append(seat.press_used)
        if turn_ns is not None and not timed_out and not self._legal(actions, keys, at):
            return False
        if env.turn_based:  # every agent's row: the mover's move, the others' rewards of it
            actions, sources, keys, key_times, presses, active = self._turn_rows(active, actions, sources, keys,
                                                                                 key_times, presses)
        result = env.step(actions)
        self.step += 1
        self.total_steps += 1
        rewards = result.rewards
        scored = False
        returns = self._returns
        for agent in active:
            reward = rewards.get(agent, 0.0)
            if reward:
                returns[agent] += float(reward)  # numpy rewards (Box2D: float32) → JSON-safe
                scored = True
        limit = self.game.max_steps
        cut = limit is not None and self.step >= limit and not env.done
        extra = self._extra(result.infos, active) if self.game.info_keys else None
        if self.hooks is not None and self.game.on_step is not None:
            columns = self.game.on_step(self.hooks)
            if columns:
                extra = {**extra, **columns} if extra else dict(columns)
        if self._axis_ids or self._pointed:
            raw = self._input_columns()
            extra = {**extra, **raw} if extra else raw
        fingerprint = self._fingerprint() if self._fingerprint is not None else None
        assert self._episode is not None  # a step belongs to the episode _start_episode opened
        self._records.append(StepRecord(
            self._episode.episode_id, self.step, int(at * 1e9), active, actions, sources, dict(rewards),
            dict(result.terminations), dict(result.truncations), keys, key_times, cut, extra, fingerprint, turn_ns,
            presses))
        self.previous_frame = self.frame
        self.frame = self._render(refresh_hud=scored or self.game.pace == "on_input")  # whose move: every step
        ended = env.done or cut
        if ended:
            terms = result.terminations
            outcome = "terminated" if any(terms.get(a, False) for a in active) else "truncated"
            self._end_episode(at, outcome)
        if self.max_total_steps is not None and self.total_steps >= self.max_total_steps:
            if not ended:
                self._end_episode(at, "stopped")
            self.finished = True
        elif ended:
            if self.episode + 1 >= self.game.episodes:
                self.finished = True
            else:
                self._start_episode(at)
        return True

    def _legal(self, actions: dict[Any, Any], keys: list[str], at: float) -> bool:
        """Whether every person's move is legal (the env's action mask); an illegal one is recorded
        (``illegal_action``) and taken back — the player is to move again."""
        legal = self.env.legal
        illegal = [(agent, action) for agent, action in actions.items()
                   if agent in self.inputs and not legal(agent, action)]
        for agent, action in illegal:
            self._records.append(EventRecord(self.participant_id, int(at * 1e9), "illegal_action",
                                             {"agent": str(agent), "action": plain(action),
                                              "keys": self.inputs[agent].keys_used}, self._episode_id()))
        return not illegal

    def _turn_rows(self, active: tuple[Any, ...], actions: dict[Any, Any], sources: list[str], keys: list[str],
                   key_times: list[int | None], presses: list[str | None]
                   ) -> tuple[dict[Any, Any], list[str], list[str], list[Any], list[str | None], tuple[Any, ...]]:
        """In a turn-based env, a step's rows are every agent's: the mover's move, and for the
        others no action (source ``waiting``) but their reward of it (a win is the other's loss)."""
        mover = active[0] if active else None
        everyone = tuple(a for a in self._agents)
        rows_actions = {a: (actions[a] if a == mover else None) for a in everyone}
        index = {a: i for i, a in enumerate(active)}
        rows_sources = [sources[index[a]] if a in index else "waiting" for a in everyone]
        rows_keys = [keys[index[a]] if a in index else "" for a in everyone]
        rows_times = [key_times[index[a]] if a in index else None for a in everyone]
        rows_presses = [presses[index[a]] if a in index else None for a in everyone]
        return rows_actions, rows_sources, rows_keys, rows_times, rows_presses, everyone

    def _extra(self, infos: dict[Any, Any], active: tuple[Any, ...]) -> dict[str, Any]:
        """The scene's ``info_keys`` of each agent's info, as ``key.agent`` columns."""
        extra = {}
        for agent in active:
            info = infos.get(agent)
            if isinstance(info, dict):
                for key in self.game.info_keys:
                    if key in info:
                        extra[f"{key}.{agent}"] = plain(info[key])
        return extra

    # --- drawing ----------------------------------------------------------------------

    def _turn_label(self) -> str | None:
        """Whose move it is (pace="on_input"): "You" when a person is to move (their seat's name
        when several people share the keyboard), "AI" when a policy is."""
        if self.game.pace != "on_input" or self._countdown_until is not None:
            return None  # nobody is asked to move before the game starts
        movers = self.env.active()
        humans = [a for a in movers if a in self.inputs]
        if not humans:
            return "AI" if movers else None
        return "You" if len(self.inputs) == 1 else ", ".join(str(a) for a in humans)

    def _render(self, validate: bool = False, refresh_hud: bool = True) -> Frame:
        game = self.game
        if game.hud is not None:
            second = int(self.step / game.fps)
            if refresh_hud or validate or second != self._hud_second:
                self._hud_second = second
                returns = {str(a): v for a, v in self._returns.items()}
                self._hud = tuple(game.hud(HudInfo(self.episode, game.episodes, self.step, game.max_steps,
                                                   game.fps, returns, self._turn_label())).items())
        if game.render is None:
            array = self.env.render()
            if array is None:
                raise ExperimentError(f"Game {game.name!r}: the env's render() returned None — make the env "
                                      f"with render_mode='rgb_array' or give the scene a render function")
            w, h = game.canvas
            shapes: tuple[Any, ...] = (image_from_array(array, w=w, h=h),)
        else:
            drawn = game.render(self.env.env)
            if isinstance(drawn, Frame):
                return Frame(drawn.shapes, drawn.hud or self._hud, self.episode, self.step)
            shapes = validate_shapes(drawn, f"Game {game.name!r} render") if validate else tuple(drawn)
        return Frame(shapes, self._hud, self.episode, self.step)


def seat_seed(study: str, participant: str, scene: str, episode: int, agent: str, base: int | None = None) -> int:
    """The seed of one AI seat in one episode: the same inputs, the same seed — on any platform."""
    import hashlib
    text = f"{study}\0{participant}\0{scene}\0{episode}\0{agent}\0{'' if base is None else base}"
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def frame_timing(times: list[float]) -> dict[str, float] | None:
    """Mean, SD and max frame interval (ms) and frames later than 1.5 intervals."""
    if len(times) < 3:
        return None
    intervals = [(b - a) * 1000.0 for a, b in zip(times, times[1:])]
    n = len(intervals)
    mean = sum(intervals) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in intervals) / (n - 1))
    return {"frames": n + 1, "mean_ms": round(mean, 4), "sd_ms": round(sd, 4),
            "max_ms": round(max(intervals), 4), "dropped": sum(1 for x in intervals if x > 1.5 * mean)}
