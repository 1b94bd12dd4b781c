"""Replaying a recorded episode: rebuild its env, reset with its seed, apply its actions.

The SQLite file holds every agent's action of every step and the episode's seed, and the
experiment file says how the env is made, so an episode can be re-simulated exactly (for
deterministic envs). ``python -m igym.data replay`` uses this to show an episode again, to
write it as images, and to verify that the re-simulation reproduces the recorded state
fingerprints step by step; the Minari export uses it to recover observations, which the
data file does not store.

pygame and numpy are imported only inside the functions that draw or convert arrays, so
this module imports with the pure-Python core.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator, Sequence

from .actions import SpaceInfo, from_plain, read_space
from .envs import EnvAdapter, StepResult
from .errors import IgymError
from .studydb import decode_json


@dataclass
class EpisodeInfo:
    """One row of ``episodes`` plus what replaying it needs from ``participants``."""

    episode_id: str
    participant_id: str
    scene: str
    episode_index: int
    seed: int | None
    steps: int
    outcome: str | None
    condition: str | None = None
    experiment_file: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def short_id(self) -> str:
        return self.episode_id[:8]


@dataclass
class RecordedStep:
    """One recorded env step: each active agent's row (action, reward, flags, fingerprint)."""

    step: int
    actions: dict[str, Any]
    rewards: dict[str, float]
    terminated: dict[str, bool]
    truncated: dict[str, bool]
    fingerprint: str | None


@dataclass
class ReplayedStep:
    """A recorded step after it was applied to the rebuilt env."""

    recorded: RecordedStep
    result: StepResult
    fingerprint: str | None  # the rebuilt env's state_fingerprint() after the step, if it has one


def table_columns(db: sqlite3.Connection, table: str) -> list[str]:
    """The columns of ``table`` (empty when the file has no such table: older schema versions)."""
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def find_episode(db: sqlite3.Connection, ref: str, path: str | Path = "STUDY.sqlite") -> EpisodeInfo:
    """The episode whose id is ``ref`` or starts with it (the first 8 hex characters suffice)."""
    ref = ref.strip().lower()
    hint = f"list the episode ids with: python -m igym.data summary {path}"
    if not ref:
        raise IgymError(f"give an episode id — {hint}")
    rows = db.execute("SELECT episode_id FROM episodes WHERE episode_id = ?", (ref,)).fetchall()
    if not rows:
        rows = db.execute("SELECT episode_id FROM episodes WHERE substr(episode_id, 1, ?) = ? ORDER BY episode_id",
                          (len(ref), ref)).fetchall()
    if not rows:
        raise IgymError(f"no episode {ref!r} in {path} — {hint}")
    if len(rows) > 1:
        ids = ", ".join(r[0][:12] for r in rows[:5])
        raise IgymError(f"episode id {ref!r} is ambiguous in {path}: it starts {len(rows)} episode ids ({ids}"
                        f"{', ...' if len(rows) > 5 else ''}) — give more characters")
    return load_episode(db, rows[0][0])


def load_episode(db: sqlite3.Connection, episode_id: str) -> EpisodeInfo:
    """An episode's row joined with its participant's condition and meta."""
    pcols = set(table_columns(db, "participants"))
    condition = "p.condition" if "condition" in pcols else "NULL"
    row = db.execute(f"SELECT e.episode_id, e.participant_id, e.scene, e.episode_index, e.seed, e.steps, e.outcome, "
                     f"{condition}, p.meta FROM episodes e LEFT JOIN participants p "
                     f"ON p.participant_id = e.participant_id WHERE e.episode_id = ?", (episode_id,)).fetchone()
    if row is None:
        raise IgymError(f"no episode {episode_id!r} in the data file")
    meta = decode_json(row[8])
    meta = meta if isinstance(meta, dict) else {}
    experiment_file = meta.get("experiment_file")
    return EpisodeInfo(row[0], row[1], row[2], row[3], row[4], row[5] or 0, row[6], row[7],
                       experiment_file if isinstance(experiment_file, str) else None, meta)


def recorded_steps(db: sqlite3.Connection, episode_id: str) -> list[RecordedStep]:
    """The episode's steps in order, every active agent's row grouped by step."""
    has_fp = "fingerprint" in table_columns(db, "steps")
    fp = "fingerprint" if has_fp else "NULL"
    steps: list[RecordedStep] = []
    for step, agent, action, reward, term, trunc, fingerprint in db.execute(
            f"SELECT step, agent, action, reward, terminated, truncated, {fp} FROM steps WHERE episode_id = ? "
            f"ORDER BY step, agent", (episode_id,)):
        if not steps or steps[-1].step != step:
            steps.append(RecordedStep(step, {}, {}, {}, {}, None))
        current = steps[-1]
        current.actions[agent] = json.loads(action)
        current.rewards[agent] = reward
        current.terminated[agent] = bool(term)
        current.truncated[agent] = bool(trunc)
        if fingerprint is not None and current.fingerprint is None:
            current.fingerprint = fingerprint
    return steps


# --- rebuilding the env -----------------------------------------------------------------


def experiment_path(episode: EpisodeInfo, override: str | Path | None = None,
                    trust: Sequence[str | Path] = ()) -> Path:
    """The experiment file to rebuild the episode's env from — a file is run, so only one the
    analyst chose: ``override`` (``--experiment``), or the recorded one when it lies inside a
    ``trust`` folder (``--trust``) and still has the recorded SHA-256. A data file's contents
    (a participant's metadata, an uploaded record) never choose code to run by themselves."""
    if override:
        path = Path(override)
        if not path.is_file():
            raise IgymError(f"experiment file {override} (--experiment) does not exist — give the right one with "
                            f"--experiment FILE")
        return path
    recorded = episode.experiment_file
    if not recorded:
        raise IgymError(f"the data does not say which experiment file participant {episode.participant_id} ran "
                        f"(no experiment_file in participants.meta) — give it with --experiment FILE")
    path = Path(recorded)
    folders = [Path(folder).resolve() for folder in trust]
    if not folders:
        raise IgymError(f"the data names the experiment file {recorded}: running it needs your say-so — give "
                        f"--experiment FILE, or --trust FOLDER to run recorded files inside FOLDER")
    resolved = path.resolve()
    if not any(resolved.is_relative_to(folder) for folder in folders):
        raise IgymError(f"the recorded experiment file {recorded} is not inside a --trust folder "
                        f"({', '.join(map(str, folders))}) — give --experiment FILE or --trust its folder")
    if not path.is_file():
        raise IgymError(f"experiment file {recorded} (participants.meta.experiment_file) does not exist — give the "
                        f"right one with --experiment FILE")
    digest = episode.meta.get("experiment_sha256")
    if isinstance(digest, str) and file_sha256(path) != digest:
        raise IgymError(f"{recorded} has changed since it recorded this data (its SHA-256 differs) — give the file "
                        f"that recorded it with --experiment FILE")
    return path


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, recorded with the data so a replay can tell it is the same file."""
    import hashlib
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_game(experiment_file: str | Path, scene: str, condition: str | None = None) -> Any:
    """The Game scene named ``scene`` of an experiment file (for ``condition``, if it has conditions)."""
    from .loader import load_experiment

    experiment = load_experiment(experiment_file)
    try:
        game = experiment.find_game(scene, condition)
    except IgymError as error:
        raise IgymError(f"{experiment_file}: {error} — is it the experiment file that recorded this data? "
                        f"(give another with --experiment FILE)") from None
    if getattr(game, "base_dir", None) is None:
        game.base_dir = Path(experiment_file).resolve().parent
    return game


def episode_game(episode: EpisodeInfo, override: str | Path | None = None, trust: Sequence[str | Path] = ()) -> Any:
    """The Game that made ``episode``: from ``override`` or the trusted recorded experiment file
    (see :func:`experiment_path`), or — for ``python -m igym.play ENV_ID`` runs — rebuilt
    from the recorded Gymnasium id (a registered id only: ``module:Env`` ids would import code)."""
    gym_id = episode.meta.get("gym_id")
    if override is not None and not str(override).endswith(".py") and not Path(override).exists():
        gym_id = str(override)  # --experiment Taxi-v4: the analyst names a Gymnasium id
    elif override is not None or episode.experiment_file:
        gym_id = None
    if isinstance(gym_id, str) and ":" not in gym_id:
        from .gymenv import gym_game

        return gym_game(gym_id, human=False)
    return load_game(experiment_path(episode, override, trust), episode.scene, episode.condition)


class Replayer:
    """Re-simulates one recorded episode in a fresh env made by its Game scene."""

    def __init__(self, game: Any, episode: EpisodeInfo, steps: list[RecordedStep]) -> None:
        if episode.seed is None:
            raise IgymError(f"episode {episode.short_id} has no recorded seed — it cannot be re-simulated")
        self.game = game
        self.episode = episode
        self.steps = steps
        try:
            self.env = EnvAdapter(game.env())
        except IgymError:
            raise
        except Exception as error:  # noqa: BLE001 — whatever the researcher's env raises
            raise IgymError(f"Game {episode.scene!r}: making its env failed: {type(error).__name__}: {error}") from None
        self._spaces: dict[str, Any] = {}
        self._infos: dict[str, SpaceInfo] = {}

    def action_space(self, agent: str) -> Any:
        if agent not in self._spaces:
            try:
                self._spaces[agent] = self.env.action_space(self.env.agent(agent))
            except IgymError:
                raise
            except Exception:  # noqa: BLE001 — some envs' space methods fail (CoGrid 0.3.2)
                self._spaces[agent] = None
        return self._spaces[agent]

    def reset(self) -> dict[Any, Any]:
        return self.env.reset(seed=self.episode.seed)

    def fingerprint(self) -> str | None:
        return None if self.env.state_fingerprint is None else str(self.env.state_fingerprint())

    def run(self) -> Iterator[ReplayedStep]:
        """Apply the recorded steps one by one (call :meth:`reset` first)."""
        env = self.env
        for recorded in self.steps:
            if env.done:
                raise ReplayDiverged(recorded.step, f"the rebuilt env's episode ended after step {recorded.step - 1} "
                                                    f"but the data has steps up to {self.steps[-1].step}")
            actions = {}
            for agent, action in recorded.actions.items():
                if action is None:
                    continue  # a turn-based game: this agent waited while another moved
                info = self._infos.get(agent)
                if info is None:
                    info = self._infos[agent] = read_space(self.action_space(agent))
                actions[env.agent(agent)] = from_plain(info, action)
            result = env.step(actions)
            yield ReplayedStep(recorded, result, self.fingerprint())

    def close(self) -> None:
        self.env.close()


class ReplayDiverged(IgymError):
    """The re-simulation stopped matching the data (step ``step``)."""

    def __init__(self, step: int, message: str) -> None:
        super().__init__(f"step {step}: {message}")
        self.step = step


# --- verify -----------------------------------------------------------------------------


def verify(replayer: Replayer) -> tuple[bool, str]:
    """Compare the rebuilt env's fingerprint with the recorded one after every step.

    Returns (True, "verified N steps") or (False, the first differing step). Raises
    IgymError when there is nothing to compare (no recorded fingerprints, or an env
    without ``state_fingerprint()``).
    """
    steps = replayer.steps
    if not steps:
        raise IgymError(f"episode {replayer.episode.short_id} has no recorded steps — nothing to verify")
    if not any(s.fingerprint for s in steps):
        raise IgymError(f"episode {replayer.episode.short_id} has no recorded state fingerprints (its env offers "
                        f"no state_fingerprint(), or igym did not record them then) — it cannot be verified")
    if replayer.env.state_fingerprint is None:
        raise IgymError(f"the env of scene {replayer.episode.scene!r} offers no state_fingerprint() now, but the "
                        f"data has fingerprints — is this the experiment file that recorded it?")
    replayer.reset()
    checked = 0
    try:
        for done in replayer.run():
            expected = done.recorded.fingerprint
            if expected is None:
                continue
            if done.fingerprint != expected:
                return False, (f"step {done.recorded.step}: fingerprint differs — expected {expected}, "
                               f"got {done.fingerprint}")
            checked += 1
    except ReplayDiverged as error:
        return False, str(error)
    return True, f"verified {checked} steps of episode {replayer.episode.short_id} ({len(steps)} steps)"


# --- drawing ------------------------------------------------------------------------------


class FramePainter:
    """Turns the rebuilt env into igym Frames and draws them with the pygame renderer."""

    def __init__(self, replayer: Replayer, target: Any = None) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        from igym.renderers.assets import Assets
        from igym.renderers.draw import FrameRenderer

        game = replayer.game
        self.replayer = replayer
        self.game = game
        self.total = len(replayer.steps)
        if target is None:
            from igym.renderers.draw import hud_strip_for

            width, height = game.canvas
            target = pygame.Surface((width, height + hud_strip_for(height)))  # the canvas and the HUD strip
        assets = Assets(game.base_dir or Path.cwd(), dict(game.images), dict(game.atlases))
        self.renderer = FrameRenderer(target, tuple(game.canvas), assets, background=game.background, hud=True)
        self.target = target

    def frame(self, step: int) -> Any:
        from .render import Frame, image_from_array

        game, env = self.game, self.replayer.env
        hud = (("Replay", self.replayer.episode.short_id), ("Step", f"{step}/{self.total}"))
        if game.render is None:
            array = env.render()
            if array is None:
                raise IgymError(f"Game {game.name!r}: the env's render() returned None and the scene has no render "
                                f"function — nothing to draw")
            w, h = game.canvas
            return Frame((image_from_array(array, w=w, h=h),), hud, 0, step)
        drawn = game.render(env.env)
        if isinstance(drawn, Frame):
            return Frame(drawn.shapes, drawn.hud or hud, 0, step)
        return Frame(tuple(drawn), hud, 0, step)

    def draw(self, step: int) -> Any:
        self.renderer.draw(self.frame(step))
        return self.target


def _selected(step: int, every: int) -> bool:
    return (step - 1) % every == 0


def write_images(replayer: Replayer, out: str | Path, every: int = 1) -> tuple[int, Path]:
    """Write one PNG per step (or every ``every``-th step) into a folder, or a GIF; returns (count, path)."""
    out = Path(out)
    gif = out.suffix.lower() == ".gif"
    frombytes: Callable[[str, tuple[int, int], bytes], Any] | None = None
    if gif:
        try:
            from PIL.Image import frombytes  # optional: only used when installed
        except ImportError:
            raise IgymError("writing a GIF needs Pillow, which is not installed (pip install pillow) — or give "
                            "--out DIR to write PNG images") from None
        out.parent.mkdir(parents=True, exist_ok=True)
    else:
        if out.exists() and not out.is_dir():
            raise IgymError(f"--out {out}: exists and is not a folder — give a folder for PNGs or a .gif file")
        out.mkdir(parents=True, exist_ok=True)
    os.environ["SDL_VIDEODRIVER"] = os.environ.get("SDL_VIDEODRIVER") or "dummy"
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    pygame.display.init()
    painter = FramePainter(replayer)
    replayer.reset()
    frames: list[Any] = []
    count = 0
    width = max(4, len(str(len(replayer.steps))))
    try:
        for done in replayer.run():
            step = done.recorded.step
            if not _selected(step, every):
                continue
            surface = painter.draw(step)
            if frombytes is not None:  # a GIF
                data = pygame.image.tobytes(surface, "RGB")
                frames.append(frombytes("RGB", surface.get_size(), data))
            else:
                pygame.image.save(surface, str(out / f"step_{step:0{width}d}.png"))
            count += 1
    finally:
        pygame.display.quit()
    if gif:
        if not frames:
            raise IgymError("no steps to write")
        duration = max(20, round(1000.0 * every / float(replayer.game.fps)))
        frames[0].save(str(out), save_all=True, append_images=frames[1:], duration=duration, loop=0)
    return count, out


def show(replayer: Replayer, *, headless: bool = False, speed: float = 1.0) -> int:
    """Play the episode in a window at the scene's fps (space pauses, escape closes); returns steps shown."""
    if headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from igym.renderers.window import Window, fit_window

    game = replayer.game
    window = Window(fit_window(tuple(game.canvas), hud=True), title=f"igym replay {replayer.episode.short_id}",
                    headless=headless)
    shown = 0
    try:
        painter = FramePainter(replayer, window.surface)
        period = 1.0 / (float(game.fps) * speed)
        replayer.reset()
        painter.draw(0)
        window.flip()
        deadline = time.perf_counter()
        paused = False
        for done in replayer.run():
            while True:
                quit_now = False
                for event in window.poll():
                    if event.kind == "quit" or (event.kind == "down" and event.key in ("escape", "q")):
                        quit_now = True
                    elif event.kind == "down" and event.key == "space":
                        paused = not paused
                    elif event.kind == "resize":
                        painter.renderer.set_target(window.surface)
                if quit_now:
                    return shown
                if not paused or headless:
                    break
                time.sleep(0.02)
                deadline = time.perf_counter()
            painter.draw(done.recorded.step)
            if not headless:
                deadline += period
                wait = deadline - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                else:
                    deadline = time.perf_counter()
            window.flip()
            shown += 1
    finally:
        window.close()
    return shown
