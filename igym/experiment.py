"""What an experiment file declares: the experiment and its scenes.

An experiment file is plain Python that builds an :class:`Experiment`; the same file runs
in the lab window, in the browser and on the server. Scenes are plain declarative objects
(jsPsych's idea: a timeline of plain objects) and are checked when they are built, so a
wrong field fails with one line that names the scene, the field and the fix — before a
participant ever sees a screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .controls import KeyMap
from .errors import ExperimentError

SEAT_KINDS = ("human", "random")


@dataclass
class HudInfo:
    """What the default HUD (and a custom ``hud`` function) can show."""

    episode: int
    episodes: int
    step: int
    max_steps: int | None
    fps: float
    returns: dict[str, float]


def default_hud(info: HudInfo) -> dict[str, str]:
    """Episode number and time left (or time played when episodes have no step limit)."""
    if info.max_steps:
        seconds = max(0, info.max_steps - info.step) / info.fps
        label = "Time left"
    else:
        seconds = info.step / info.fps
        label = "Time"
    return {"Episode": f"{info.episode + 1}/{info.episodes}",
            label: f"{int(seconds) // 60}:{int(seconds) % 60:02d}"}


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
    """

    env: Callable[[], Any] | None = None
    seats: Mapping[Any, Any] | None = None
    render: Callable[[Any], Any] | None = None
    keys: Any = None
    fps: float = 30
    episodes: int = 1
    max_steps: int | None = None
    seeds: int | Sequence[int] | None = None
    ai_every: int = 1
    canvas: tuple[int, int] = (600, 400)
    background: tuple[int, ...] = (0, 0, 0)
    hud: Callable[[HudInfo], Mapping[str, str]] | None = default_hud
    info_keys: Sequence[str] = ()
    images: Mapping[str, str] = field(default_factory=dict)
    atlases: Mapping[str, str] = field(default_factory=dict)
    name: str = "game"
    lobby_timeout_s: float = 120.0
    fill: Any = None
    grace_s: float = 10.0
    dropout: str = "end"
    max_rtt_ms: float | None = None
    base_dir: Path | None = None
    keymaps: dict[str, KeyMap] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        where = f"Game {self.name!r}"
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

    def human_agents(self) -> list[str]:
        """Names of the agents a person plays."""
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


@dataclass
class Experiment:
    """A study: an id (names its data) and the scenes a participant goes through."""

    id: str = ""
    scenes: Sequence[Any] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise ExperimentError("Experiment: field 'id' is required — a short name for the study, "
                                  "e.g. Experiment(id='slime_pilot', scenes=[...])")
        if not self.scenes:
            raise ExperimentError(f"Experiment {self.id!r}: field 'scenes' is empty — list at least one "
                                  f"scene, e.g. scenes=[Game(...)]")
        for index, scene in enumerate(self.scenes):
            if not isinstance(scene, Game):
                raise ExperimentError(f"Experiment {self.id!r}: scene {index} is a {type(scene).__name__} — "
                                      f"scenes must be igym scene objects such as Game(...)")
