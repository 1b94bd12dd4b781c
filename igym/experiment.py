"""What an experiment file declares: the experiment and its scenes.

An experiment file is plain Python that builds an :class:`Experiment`; the same file runs
in the lab window, in the browser and on the server. Scenes are plain declarative objects
(jsPsych's idea: a timeline of plain objects) and are checked when they are built, so a
wrong field fails with one line that names the scene, the field and the fix — before a
participant ever sees a screen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
import typing
from typing import Any, ClassVar
from collections.abc import Callable, Iterator, Mapping

from .controls import KeyMap
from .errors import ExperimentError, IgymError
from .questions import Choice, FreeText, Likert, MultiChoice, Number, Slider  # noqa: F401 — one import for files
from .scenes import PAGE_TYPES, Consent, End, Info, Survey  # noqa: F401

SEAT_KINDS = ("human", "random")
NEUTRAL_TITLES = {"game": "Next round", "survey": "A few questions", "info": "Please read", "consent": "Consent",
                  "end": "Thank you"}  # what the title check suggests instead of an internal name
NETWORKS = ("authoritative", "lockstep")
PACES = ("fixed", "on_input")


@dataclass
class HudInfo:
    """What the default HUD (and a custom ``hud`` function) can show."""

    episode: int
    episodes: int
    step: int
    max_steps: int | None
    fps: float
    returns: dict[str, float]
    turn: str | None = None  # pace="on_input": whose move it is ("You", an agent's name, "AI")


def default_hud(info: HudInfo) -> dict[str, str]:
    """Episode number and time left (or time played when episodes have no step limit); whose
    move it is in games that wait for moves."""
    if info.max_steps:
        seconds = max(0, info.max_steps - info.step) / info.fps
        label = "Time left"
    else:
        seconds = info.step / info.fps
        label = "Time"
    shown = {"Episode": f"{info.episode + 1}/{info.episodes}"}
    if info.turn is not None:
        shown["Move"] = info.turn
    else:
        shown[label] = f"{int(seconds) // 60}:{int(seconds) % 60:02d}"
    return shown


@dataclass
class Game:
    """A scene in which people (and AI) play episodes of an environment.

    ``seats`` maps each agent to ``"human"``, ``"random"``, a path to an ``.onnx`` file,
    or a Policy object (anything with ``reset()`` and ``act(obs)``, or a plain function
    ``obs -> action``). ``keys`` is a :class:`~igym.controls.KeyMap` (or a plain mapping)
    for the human seat, or ``{agent: KeyMap}`` when several people share a keyboard.
    ``render(env)`` returns igym.render shapes in logical pixels of ``canvas``; without
    it the env's own RGB-array render is shown. ``max_steps`` ends an episode (recorded as
    truncated). ``seeds``: None (fresh random seeds, recorded), an int (episode i gets
    seed + i) or one seed per episode. The AI acts every ``ai_every`` steps and holds its
    action in between. ``info_keys`` names env info entries to record with each step.

    ``instructions`` (markup text) is shown before the first episode on a page titled
    ``title`` (default "Next round"), with a Start button — never titled with ``name``, which
    labels the scene in the data and may give a manipulation away ("block_strong");
    ``countdown_s`` counts down (3, 2, 1) before every episode, the game frozen meanwhile.
    Hooks — ``on_episode_start(ctx)``, ``on_step(ctx)``, ``on_episode_end(ctx)`` with an
    :class:`igym.hooks.HookContext` — run inside the session, so in every runtime:
    ``on_step`` may return a dict of custom columns for that step's record, and any hook
    may hand a seat to another player for the next episode (``ctx.set_seat``).
    ``fingerprints`` records the env's ``state_fingerprint()`` after every step when it
    has one (replay ``--verify`` checks it).

    ``pace`` says when the env steps: ``"fixed"`` (``fps`` steps a second, the default action
    when nobody presses: continuous control) or ``"on_input"`` (a step each time the people
    act — every human seat has pressed a key (keystroke key maps) —, AI seats acting on the
    same step: grid worlds, card and board games, decisions). In turn-based PettingZoo envs
    (AEC) only the agent whose turn it is acts; an AI's turn is taken ``1 / fps`` after the
    move before. ``max_wait_s`` (on_input) takes the seats' default actions, recorded as
    source ``timeout``, when nobody acted in time. Each step records when its turn began
    (``turn_ns``): ``key_t_ns - turn_ns`` is the decision time.

    On a server, ``network`` chooses how a multiplayer game runs: ``"authoritative"`` (the
    server runs the env and sends frames) or ``"lockstep"`` (every client runs the env from
    the same seed and the server only relays inputs: see :mod:`igym.lockstep`). Lockstep
    options: ``input_delay`` in steps (None: from the measured round trip),
    ``fingerprint_every`` (steps between state comparisons) and ``observers`` (people who
    watch the game without a seat).
    """

    kind: ClassVar[str] = "game"  # like the page scenes' kind, but not a dataclass field
    env: Callable[[], Any] | None = None
    seats: Mapping[Any, Any] | None = None
    render: Callable[[Any], Any] | None = None
    keys: Any = None
    fps: float = 30
    episodes: int = 1
    max_steps: int | None = None
    seeds: int | typing.Sequence[int] | None = None
    ai_every: int = 1
    canvas: tuple[int, int] = (600, 400)
    background: tuple[int, ...] = (0, 0, 0)
    hud: Callable[[HudInfo], Mapping[str, str]] | None = default_hud
    info_keys: typing.Sequence[str] = ()
    images: Mapping[str, str] = field(default_factory=dict)
    atlases: Mapping[str, str] = field(default_factory=dict)
    name: str = ""
    lobby_timeout_s: float = 120.0
    fill: Any = None
    grace_s: float = 10.0
    dropout: str = "end"
    max_rtt_ms: float | None = None
    instructions: str | None = None
    title: str = "Next round"
    countdown_s: float = 0.0
    on_episode_start: Callable[[Any], Any] | None = None
    on_step: Callable[[Any], Any] | None = None
    on_episode_end: Callable[[Any], Any] | None = None
    fingerprints: bool = True
    pace: str = "fixed"
    max_wait_s: float | None = None
    network: str = "authoritative"
    input_delay: int | None = None
    fingerprint_every: int = 30
    observers: int = 0
    base_dir: Path | None = None
    keymaps: dict[str, KeyMap] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        where = f"Game {self.name!r}" if self.name else "Game"
        if not callable(self.env):
            raise ExperimentError(f"{where}: field 'env' is required — give a function that makes a "
                                  f"new environment, e.g. env=lambda: gymnasium.make('CartPole-v1')")
        if not isinstance(self.seats, Mapping) or not self.seats:
            raise ExperimentError(f"{where}: field 'seats' is required — map each agent to 'human', "
                                  f"'random', a .onnx path or a policy, e.g. seats={{'agent_0': 'human'}}")
        for agent, seat in self.seats.items():
            if isinstance(seat, str) and seat not in SEAT_KINDS and not seat.endswith(".onnx"):
                raise ExperimentError(f"{where}: seat {agent!r} is {seat!r} — use 'human', 'random', "
                                      f"a path ending in .onnx, or a policy object")
            if not isinstance(seat, str) and not (callable(seat) or hasattr(seat, "act")):
                raise ExperimentError(f"{where}: seat {agent!r} is a {type(seat).__name__} — use "
                                      f"'human', 'random', a .onnx path, or an object with act(obs)")
        humans = self.human_agents()
        if humans and self.keys is None:
            raise ExperimentError(f"{where}: field 'keys' is required for the human seat(s) {humans} — "
                                  f"e.g. keys=KeyMap({{'left': 0, 'right': 2}}, default_action=1)")
        self.keymaps = self._keymaps(where, humans)
        if not (isinstance(self.fps, (int, float)) and self.fps > 0):
            raise ExperimentError(f"{where}: fps must be a positive number of env steps per second, got {self.fps!r}")
        if not (isinstance(self.episodes, int) and self.episodes >= 1):
            raise ExperimentError(f"{where}: episodes must be an int ≥ 1, got {self.episodes!r}")
        if self.max_steps is not None and not (isinstance(self.max_steps, int) and self.max_steps >= 1):
            raise ExperimentError(f"{where}: max_steps must be None or an int ≥ 1, got {self.max_steps!r}")
        if not (isinstance(self.ai_every, int) and self.ai_every >= 1):
            raise ExperimentError(f"{where}: ai_every must be an int ≥ 1, got {self.ai_every!r}")
        if self.seeds is not None and not isinstance(self.seeds, int):
            if not all(isinstance(s, int) for s in self.seeds) or len(self.seeds) < self.episodes:
                raise ExperimentError(f"{where}: seeds must be None, an int, or at least {self.episodes} "
                                      f"ints (one per episode), got {self.seeds!r}")
        if (len(self.canvas) != 2 or not all(isinstance(v, int) and v > 0 for v in self.canvas)):
            raise ExperimentError(f"{where}: canvas must be (width, height) in pixels, got {self.canvas!r}")
        if not (isinstance(self.lobby_timeout_s, (int, float)) and self.lobby_timeout_s > 0):
            raise ExperimentError(f"{where}: lobby_timeout_s must be a positive number of seconds")
        if not (isinstance(self.grace_s, (int, float)) and self.grace_s >= 0):
            raise ExperimentError(f"{where}: grace_s must be a number of seconds ≥ 0")
        if self.dropout not in ("ai", "end"):
            raise ExperimentError(f"{where}: dropout must be 'ai' (fill takes the seat) or 'end', got {self.dropout!r}")
        if self.max_rtt_ms is not None and not (isinstance(self.max_rtt_ms, (int, float)) and self.max_rtt_ms > 0):
            raise ExperimentError(f"{where}: max_rtt_ms must be None or a positive number of milliseconds")
        if self.dropout == "ai" and self.fill is None:
            raise ExperimentError(f"{where}: dropout='ai' needs fill= (e.g. fill='random' or a .onnx path)")
        if self.render is not None and not callable(self.render):
            raise ExperimentError(f"{where}: render must be a function env -> shapes, got {self.render!r}")
        if not (isinstance(self.countdown_s, (int, float)) and 0 <= self.countdown_s <= 60):
            raise ExperimentError(f"{where}: countdown_s must be seconds from 0 to 60, got {self.countdown_s!r}")
        if self.instructions is not None and not isinstance(self.instructions, str):
            raise ExperimentError(f"{where}: instructions must be text (markup allowed), got "
                                  f"{type(self.instructions).__name__}")
        if not isinstance(self.title, str):
            raise ExperimentError(f"{where}: title must be text (the instructions page's title, e.g. "
                                  f"title='Round 2'), got {type(self.title).__name__}")
        self._check_network(where)
        self._check_pace(where, humans)
        for hook in ("on_episode_start", "on_step", "on_episode_end"):
            if getattr(self, hook) is not None and not callable(getattr(self, hook)):
                raise ExperimentError(f"{where}: {hook} must be a function taking the hook context, e.g. "
                                      f"{hook}=lambda ctx: ...")

    def _check_pace(self, where: str, humans: list[str]) -> None:
        if self.pace not in PACES:
            raise ExperimentError(f"{where}: pace must be one of {PACES} — 'fixed' steps {self.fps} times a second, "
                                  f"'on_input' when the people act — got {self.pace!r}")
        if self.max_wait_s is not None:
            if self.pace != "on_input":
                raise ExperimentError(f"{where}: max_wait_s is how long a pace='on_input' game waits for a move — "
                                      f"set pace='on_input' or remove max_wait_s")
            if not (isinstance(self.max_wait_s, (int, float)) and self.max_wait_s > 0):
                raise ExperimentError(f"{where}: max_wait_s must be a positive number of seconds or None, got "
                                      f"{self.max_wait_s!r}")
        if self.pace == "on_input":
            held = [h for h in humans if self.keymaps[h].mode != "keystroke"]
            if held:
                raise ExperimentError(f"{where}: pace='on_input' steps when a person presses a key, so the human "
                                      f"seats need keystroke key maps — give {held} KeyMap(..., mode='keystroke')")
            if self.network == "lockstep":
                raise ExperimentError(f"{where}: pace='on_input' is not available with network='lockstep' (every "
                                      f"step's inputs are relayed on the clock) — use network='authoritative'")

    def _check_network(self, where: str) -> None:
        if self.network not in NETWORKS:
            raise ExperimentError(f"{where}: network must be one of {NETWORKS}, got {self.network!r}")
        if self.input_delay is not None and not (isinstance(self.input_delay, int) and 1 <= self.input_delay <= 60):
            raise ExperimentError(f"{where}: input_delay must be None (from the measured round trip) or 1..60 "
                                  f"steps, got {self.input_delay!r}")
        if not (isinstance(self.fingerprint_every, int) and self.fingerprint_every >= 1):
            raise ExperimentError(f"{where}: fingerprint_every must be an int ≥ 1 (steps between state "
                                  f"comparisons), got {self.fingerprint_every!r}")
        if not (isinstance(self.observers, int) and self.observers >= 0):
            raise ExperimentError(f"{where}: observers must be an int ≥ 0, got {self.observers!r}")
        if self.network != "lockstep":
            if self.observers:
                raise ExperimentError(f"{where}: observers need network='lockstep' (watchers run the game "
                                      f"themselves from the relayed inputs)")
            return
        assert self.seats is not None  # __post_init__ checked it first
        robots = [str(a) for a, seat in self.seats.items() if seat != "human"]
        if robots:
            raise ExperimentError(f"{where}: network='lockstep' needs every seat to be 'human', but {robots} "
                                  f"are not — an AI would have to act identically on every computer; use "
                                  f"network='authoritative' for games with AI seats")
        if self.fill is not None:
            raise ExperimentError(f"{where}: fill is not available with network='lockstep' (the server runs "
                                  f"no env to play an AI seat) — remove fill, or use network='authoritative'")
        if not self.fingerprints:
            raise ExperimentError(f"{where}: network='lockstep' compares the clients' state fingerprints to find "
                                  f"desyncs — remove fingerprints=False")

    def instructions_page(self) -> Info | None:
        """The page shown before the first episode (``instructions``, titled ``title``, a Start
        button), or None when there are no instructions. The desktop, the web page and the server
        all show this one page, so they cannot title it differently."""
        if not self.instructions:
            return None
        return Info(text=self.instructions, title=self.title, button="Start", name=f"{self.name}_instructions")

    def human_agents(self) -> list[str]:
        """Names of the agents a person plays."""
        assert self.seats is not None  # __post_init__ requires seats
        return [str(a) for a, seat in self.seats.items() if seat == "human"]

    def _keymaps(self, where: str, humans: list[str]) -> dict[str, KeyMap]:
        keys = self.keys
        if keys is None:
            return {}
        if isinstance(keys, KeyMap):
            return {h: keys for h in humans}
        if isinstance(keys, Mapping) and keys and all(isinstance(v, KeyMap) for v in keys.values()):
            maps = {str(a): k for a, k in keys.items()}
            missing = [h for h in humans if h not in maps]
            if missing:
                raise ExperimentError(f"{where}: keys has no KeyMap for human seat(s) {missing}")
            return maps
        if isinstance(keys, Mapping):
            try:
                keymap = KeyMap(keys)
            except ExperimentError as error:
                raise ExperimentError(f"{where}: keys: {error}") from None
            return {h: keymap for h in humans}
        raise ExperimentError(f"{where}: keys must be a KeyMap, a mapping of keys to actions, or "
                              f"{{agent: KeyMap}}, got {type(keys).__name__}")

    def seed_for(self, episode: int) -> int | None:
        """The seed schedule: which seed episode ``episode`` uses (None → draw one)."""
        if self.seeds is None:
            return None
        if isinstance(self.seeds, int):
            return self.seeds + episode
        return self.seeds[episode]


SCENE_TYPES = (Game, *PAGE_TYPES)


@dataclass
class Sequence_:
    """Scenes one after the other (a list of scenes means the same)."""

    scenes: typing.Sequence[Any] = ()
    name: str = ""


def Sequence(*scenes: Any, name: str = "") -> Sequence_:  # reads like the other scene types
    """``Sequence(a, b, c)`` or ``Sequence([a, b, c])``: the scenes in this order."""
    if len(scenes) == 1 and isinstance(scenes[0], (list, tuple)):
        scenes = tuple(scenes[0])
    return Sequence_(tuple(scenes), name)


@dataclass
class RandomOrder:
    """The scenes in an order drawn per participant (seeded, recorded); ``keep=n`` keeps
    only the first n of that order (e.g. 2 of 4 blocks)."""

    scenes: typing.Sequence[Any] = ()
    keep: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.scenes, (str, bytes)) or len(self.scenes) < 2:
            raise ExperimentError(f"RandomOrder {self.name!r}: needs at least two scenes to order")
        if self.keep is not None and not (isinstance(self.keep, int) and 1 <= self.keep <= len(self.scenes)):
            raise ExperimentError(f"RandomOrder {self.name!r}: keep must be 1..{len(self.scenes)}, got {self.keep!r}")


@dataclass
class Repeat:
    """One scene (or composition) ``times`` times in a row; every repetition is its own visit."""

    scene: Any = None
    times: int = 2
    name: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.times, int) and self.times >= 1):
            raise ExperimentError(f"Repeat {self.name!r}: times must be a whole number ≥ 1, got {self.times!r}")


COMPOSITE_TYPES = (Sequence_, RandomOrder, Repeat)


@dataclass
class Experiment:
    """A study: an id (names its data), the scenes a participant goes through, and optionally
    conditions and scene hooks.

    ``scenes`` is a list of scenes and compositions (:func:`Sequence`, :class:`RandomOrder`,
    :class:`Repeat`). ``conditions`` maps a condition name to the scene fields it changes,
    ``{"strong_ai": {"block_a": {"seats": {...}}}}``; participants are assigned the
    least-used condition first (balanced), or the one the experimenter picks.
    ``on_scene_start(ctx)`` / ``on_scene_end(ctx)`` run around every visit (see
    :class:`igym.hooks.SceneContext`); they can change scenes still to come.
    """

    id: str = ""
    scenes: typing.Sequence[Any] = ()
    conditions: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None
    on_scene_start: Callable[[Any], Any] | None = None
    on_scene_end: Callable[[Any], Any] | None = None
    theme: Mapping[str, Any] | None = None
    base_dir: Path | None = None
    source_file: Path | None = field(default=None, repr=False, compare=False)  # set by the loader

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise ExperimentError("Experiment: field 'id' is required — a short name for the study, "
                                  "e.g. Experiment(id='slime_pilot', scenes=[...])")
        if isinstance(self.scenes, (str, bytes)) or not self.scenes:
            raise ExperimentError(f"Experiment {self.id!r}: field 'scenes' is empty — list at least one "
                                  f"scene, e.g. scenes=[Game(...)]")
        self._name_scenes()
        self._check_conditions()
        for hook in ("on_scene_start", "on_scene_end"):
            if getattr(self, hook) is not None and not callable(getattr(self, hook)):
                raise ExperimentError(f"Experiment {self.id!r}: {hook} must be a function taking the scene context")
        if self.theme is not None and not isinstance(self.theme, Mapping):
            raise ExperimentError(f"Experiment {self.id!r}: theme must be a pygame_gui theme dict, e.g. "
                                  f"theme={{'defaults': {{'colours': {{'dark_bg': '#202020'}}}}}}")

    # --- scenes -----------------------------------------------------------------------

    def _name_scenes(self) -> None:
        """Check every entry is a scene, give unnamed scenes a name, refuse two scenes with one name.

        Names identify scenes in the data (visits, episodes), in conditions and in replay,
        so two different scenes may not share one; the same scene object repeated is fine.
        """
        by_name: dict[str, Any] = {}
        counts: dict[str, int] = {}
        for path, scene in _walk(self.scenes, f"Experiment {self.id!r}: scenes"):
            if not scene.name:
                counts[scene.kind] = counts.get(scene.kind, 0) + 1
                scene.name = f"{scene.kind}_{counts[scene.kind]}"
                while scene.name in by_name:
                    counts[scene.kind] += 1
                    scene.name = f"{scene.kind}_{counts[scene.kind]}"
            other = by_name.setdefault(scene.name, scene)
            if other is not scene:
                raise ExperimentError(f"Experiment {self.id!r}: two different scenes are named {scene.name!r} "
                                      f"({path}) — give each its own name=")

    def visible_names(self) -> list[str]:
        """Titles participants see that spell an internal name — a scene's, a group's
        (RandomOrder, Sequence, Repeat) or a condition's — the same or after folding case, ``_``
        and ``-``: the name labels the data ("block_strong") and may give the manipulation away.
        One message per title, naming the scene and the fix. A page type's own default title
        ("Consent" on a consent form called "consent") names nothing and is left alone. The
        loader warns with these (:class:`igym.errors.ExperimentWarning`)."""
        names: dict[str, str] = {}
        for _, scene in _walk(self.scenes, ""):
            names.setdefault(_folded(scene.name), f"scene {scene.name!r}")
        for group in _groups(self.scenes):
            if group.name:
                names.setdefault(_folded(group.name), f"the group {group.name!r}")
        for condition in self.conditions or {}:
            names.setdefault(_folded(condition), f"condition {condition!r}")
        messages = []
        for scene in self.all_scenes():
            conditions = self.conditions or {}
            versions: list[tuple[str | None, Any]] = [(None, scene)]
            versions += [(c, self._with_condition(scene, c)) for c in conditions if scene.name in conditions[c]]
            for version, shown in versions:
                title = getattr(shown, "title", "")
                if not isinstance(title, str) or not title.strip() or title == _default_title(shown):
                    continue
                what = names.get(_folded(title))
                if what is None:
                    continue
                if what == f"scene {scene.name!r}":
                    what = "this scene's name"
                under = f" (condition {version!r})" if version else ""
                page = "its instructions page" if isinstance(shown, Game) else "the page"
                messages.append(f"Experiment {self.id!r}: {shown.kind} scene {scene.name!r}{under}: the title "
                                f"{title!r} shows participants {what}, an internal name that may give the "
                                f"manipulation away — give {page} a neutral title=, e.g. "
                                f"title={NEUTRAL_TITLES.get(shown.kind, 'Next round')!r}")
                break
        return messages

    def all_scenes(self) -> list[Any]:
        """Every distinct scene, in declaration order."""
        seen: dict[int, Any] = {}
        for _, scene in _walk(self.scenes, ""):
            seen.setdefault(id(scene), scene)
        return list(seen.values())

    def map_games(self, change: Callable[[Game], Game]) -> Experiment:
        """A copy whose Game scenes are ``change(game)`` (a scene repeated stays one object)."""
        done: dict[int, Any] = {}

        def rebuild(item: Any) -> Any:
            if isinstance(item, (list, tuple)):
                return [rebuild(i) for i in item]
            if isinstance(item, Sequence_):
                return Sequence_(tuple(rebuild(list(item.scenes))), item.name)
            if isinstance(item, RandomOrder):
                return RandomOrder(rebuild(list(item.scenes)), item.keep, item.name)
            if isinstance(item, Repeat):
                return Repeat(rebuild(item.scene), item.times, item.name)
            if isinstance(item, Game):
                if id(item) not in done:
                    done[id(item)] = change(item)
                return done[id(item)]
            return item
        return dataclasses.replace(self, scenes=rebuild(list(self.scenes)))

    def games(self) -> list[Game]:
        return [scene for scene in self.all_scenes() if isinstance(scene, Game)]

    def check_seats(self, runs_here: Callable[[Game], bool] = lambda game: True) -> None:
        """Make each Game's env once and check that the scene's seats (in every condition) name
        exactly its agents. The commands run this before they record anything: a mismatch is
        then one line naming ``seats``, not a participant recorded as failed at their first
        game (the session checks the same again when a game starts). ``runs_here``: the games
        whose env this process makes (the server never makes a lockstep game's: its players'
        computers do)."""
        made: list[tuple[Any, set[str]]] = []
        for condition in (None, *(self.conditions or {})):
            for scene in self.games():
                game = self._with_condition(scene, condition)
                if not runs_here(game):
                    continue
                agents = next((names for make, names in made if make is game.env), None)
                if agents is None:
                    agents = _agent_names(game)
                    made.append((game.env, agents))
                declared = {str(agent) for agent in game.seats or {}}
                if declared != agents:
                    where = f" in condition {condition!r}" if game is not scene else ""
                    raise ExperimentError(f"Game {game.name!r}{where}: seats name {sorted(declared)} but the env's "
                                          f"agents are {sorted(agents)} — give one seat per agent")

    def scene(self, name: str, condition: str | None = None) -> Any:
        """The scene called ``name``, with ``condition``'s changes applied."""
        for scene in self.all_scenes():
            if scene.name == name:
                return self._with_condition(scene, condition)
        names = ", ".join(s.name for s in self.all_scenes())
        raise ExperimentError(f"Experiment {self.id!r}: no scene named {name!r} — its scenes are {names}")

    def find_game(self, name: str, condition: str | None = None) -> Game:
        """The Game scene called ``name`` (replay and export rebuild its env).

        Files written by the server before protocol 2 name episodes ``"<position>:<name>"``;
        that prefix is dropped unless a scene really has such a name.
        """
        scene = self.scene(name.split(":", 1)[-1] if ":" in name and not self._has(name) else name, condition)
        if not isinstance(scene, Game):
            raise ExperimentError(f"Experiment {self.id!r}: scene {name!r} is a {scene.kind} scene, not a Game")
        return scene

    def _has(self, name: str) -> bool:
        return any(scene.name == name for scene in self.all_scenes())

    # --- conditions -------------------------------------------------------------------

    def _check_conditions(self) -> None:
        if self.conditions is None:
            return
        where = f"Experiment {self.id!r}: conditions"
        if not isinstance(self.conditions, Mapping) or not self.conditions:
            raise ExperimentError(f"{where} must map condition names to scene changes, e.g. "
                                  f"conditions={{'weak_ai': {{'block': {{'seats': {{...}}}}}}}}")
        scenes = {scene.name: scene for scene in self.all_scenes()}
        for condition, changes in self.conditions.items():
            if not isinstance(condition, str) or not condition:
                raise ExperimentError(f"{where}: condition names must be non-empty strings, got {condition!r}")
            if not isinstance(changes, Mapping):
                raise ExperimentError(f"{where}: {condition!r} must map scene names to field changes")
            for scene_name, fields in changes.items():
                if scene_name not in scenes:
                    raise ExperimentError(f"{where}: {condition!r} changes scene {scene_name!r}, which does not "
                                          f"exist — scenes are {', '.join(scenes)}")
                known = {f.name for f in dataclasses.fields(scenes[scene_name]) if f.init}
                for name in fields:
                    if name not in known or name == "name":
                        raise ExperimentError(f"{where}: {condition!r} sets {scene_name}.{name}, which is not a "
                                              f"field of that {scenes[scene_name].kind} scene")
                # Building the changed scene checks the new values like any other scene.
                self._with_condition(scenes[scene_name], condition)

    def _with_condition(self, scene: Any, condition: str | None) -> Any:
        if not condition or not self.conditions:
            return scene
        if condition not in self.conditions:
            raise ExperimentError(f"Experiment {self.id!r}: no condition {condition!r} — conditions are "
                                  f"{', '.join(self.conditions)}")
        changes = self.conditions[condition].get(scene.name)
        return with_changes(scene, changes) if changes else scene

    def choose_condition(self, counts: Mapping[str, int]) -> str | None:
        """Balanced assignment: the condition with the fewest participants so far (ties: the
        first declared), so groups stay equal however many people end up taking part."""
        if not self.conditions:
            return None
        declared = list(self.conditions)
        return min(self.conditions, key=lambda name: (counts.get(name, 0), declared.index(name)))

    # --- the plan of one participant ---------------------------------------------------

    def order_seed(self, participant_id: str) -> int:
        """The seed of a participant's random orders: derived from the study and the id, so a
        participant who restarts sees the same order, and it is recorded with them."""
        digest = hashlib.sha256(f"{self.id}\0{participant_id}".encode()).hexdigest()
        return int(digest[:12], 16)

    def plan(self, seed: int) -> list[Any]:
        """The scenes one participant visits, in order, with random orders drawn from ``seed``."""
        rng = random.Random(seed)
        return list(_expand(self.scenes, rng))


def _agent_names(game: Game) -> set[str]:
    """The agents of a freshly made env of ``game`` (the env closed again)."""
    from .envs import EnvAdapter

    assert game.env is not None  # Game.__post_init__ refuses a game without one
    try:
        env = EnvAdapter(game.env())
    except IgymError:
        raise
    except Exception as error:  # noqa: BLE001 — whatever the researcher's env raises is the one line
        raise ExperimentError(f"Game {game.name!r}: making its env failed: {type(error).__name__}: {error}") from None
    try:
        return set(env.agent_names)
    finally:
        try:
            env.close()
        except Exception:  # noqa: BLE001 — a probe: an env that fails to close is found when played
            pass


def with_changes(scene: Any, changes: Mapping[str, Any]) -> Any:
    """A copy of ``scene`` with fields changed (checked like a new scene; base_dir kept)."""
    base_dir = getattr(scene, "base_dir", None)
    changed = dataclasses.replace(scene, **dict(changes))
    if base_dir is not None:
        changed.base_dir = base_dir
    return changed


def _walk(items: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every scene inside a list/composition, depth first, with where it sits (for errors)."""
    if isinstance(items, (list, tuple)):
        for index, item in enumerate(items):
            yield from _walk(item, f"{where}[{index}]")
    elif isinstance(items, Sequence_):
        yield from _walk(list(items.scenes), f"{where}.Sequence")
    elif isinstance(items, RandomOrder):
        yield from _walk(list(items.scenes), f"{where}.RandomOrder")
    elif isinstance(items, Repeat):
        yield from _walk(items.scene, f"{where}.Repeat")
    elif isinstance(items, SCENE_TYPES):
        yield where, items
    else:
        raise ExperimentError(f"{where} is a {type(items).__name__} — scenes must be Info, Consent, Survey, "
                              f"Game or End, or a Sequence, RandomOrder or Repeat of them")


def _groups(items: Any) -> Iterator[Any]:
    """Every Sequence, RandomOrder and Repeat inside a list/composition."""
    if isinstance(items, (list, tuple)):
        for item in items:
            yield from _groups(item)
    elif isinstance(items, COMPOSITE_TYPES):
        yield items
        yield from _groups(items.scene if isinstance(items, Repeat) else list(items.scenes))


def _folded(text: str) -> str:
    """A name or title as a reader compares them: case, ``_`` and ``-`` and spacing ignored."""
    return " ".join(str(text).replace("_", " ").replace("-", " ").casefold().split())


def _default_title(scene: Any) -> str | None:
    """The title a scene type gives itself when none is set ("Consent", "Thank you", "Next round")."""
    declared = getattr(type(scene), "__dataclass_fields__", {}).get("title")
    return declared.default if declared is not None else None


def _expand(items: Any, rng: random.Random) -> Iterator[Any]:
    if isinstance(items, (list, tuple)):
        for item in items:
            yield from _expand(item, rng)
    elif isinstance(items, Sequence_):
        yield from _expand(list(items.scenes), rng)
    elif isinstance(items, RandomOrder):
        order = list(items.scenes)
        rng.shuffle(order)
        for item in order[: items.keep or len(order)]:
            yield from _expand(item, rng)
    elif isinstance(items, Repeat):
        for _ in range(items.times):
            yield from _expand(items.scene, rng)
    else:
        yield items
