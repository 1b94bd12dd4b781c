"""Runs a whole study in the pygame window: start screen, pages, games, end — and the lab loop.

The flow itself (which scene, conditions, random orders, outcomes, records) is
:class:`igym.study.StudyRun`; this module only shows each visit — a page with
:mod:`.pages`, a game with :func:`.app.run_session` — and hands back what happened. Every
visit's records are committed before the next scene is shown (data is sacred).
"""

from __future__ import annotations

import platform
import random
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict
from collections.abc import Callable

import pygame

from igym.errors import ExperimentError, IgymError
from igym.experiment import Experiment
from igym.records import EventRecord
from igym.policy import load_policies
from igym.session import Session, frame_timing
from igym.study import StudyRun

from .app import autopilot_for, escape_quits, run_session
from .assets import Assets
from .pages import show_page
from .window import InputEvent, Window, fit_window


@dataclass
class StudyOptions:
    """How the study is run (from ``python -m igym.play``'s flags)."""

    autopilot: bool = False
    lab: bool = False
    screenshots: Path | None = None
    screenshot: str | None = None  # the last game frame of the run, as one PNG
    max_steps: int | None = None
    experiment_file: str | None = None
    argv: tuple[str, ...] = ()
    meta: dict[str, Any] | None = None  # more participant facts (a web page's STUDY_ID, SESSION_ID)
    # A web page resumes after a reload: ``restore(experiment, pid)`` gives the saved run or
    # None, ``save(run)`` keeps it after every visit change (igym.upload.load_run / save_run).
    restore: Callable[[Any, str], Any] | None = None
    save: Callable[[Any], None] | None = None


class _PageArgs(TypedDict):
    """The arguments every page of a run gets from :func:`run_study` (for :func:`.pages.show_page`)."""

    theme: dict[str, Any] | None
    autopilot: random.Random | None
    quit_check: Callable[[Any], bool] | None
    on_event: Callable[[str, dict[str, Any]], None] | None
    participant: str


@dataclass
class StudyResult:
    participant_id: str
    status: str
    completion_code: str | None
    quit: bool
    steps: int


def lab_quit(event: Any) -> bool:
    """The experimenter's way out in lab mode: Ctrl+Shift+Q (Esc alone does nothing)."""
    if isinstance(event, InputEvent):
        key, mods = event.key, event.mods
    else:
        if event.type != pygame.KEYDOWN:
            return False
        key, mods = pygame.key.name(event.key), event.mod
    return key == "q" and bool(mods & pygame.KMOD_CTRL) and bool(mods & pygame.KMOD_SHIFT)


def device_facts(window: Window, measured_refresh_hz: float | None = None) -> dict[str, Any]:
    """What a study should report about the machine a participant used."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        gui_version = version("pygame_gui")
    except PackageNotFoundError:  # vendored copies (the web build) carry no metadata
        gui_version = None
    try:
        refresh = pygame.display.get_current_refresh_rate()
    except (pygame.error, AttributeError):
        refresh = 0
    try:
        desktops = [list(size) for size in pygame.display.get_desktop_sizes()]
    except pygame.error:
        desktops = []
    return {"window": list(window.size), "desktops": desktops, "refresh_hz_reported": refresh or None,
            "refresh_hz_measured": measured_refresh_hz, "video_driver": pygame.display.get_driver(),
            "os": platform.platform(), "python": platform.python_version(), "pygame": pygame.version.ver,
            "sdl": ".".join(map(str, pygame.get_sdl_version())), "pygame_gui": gui_version,
            "runtime": "browser" if sys.platform == "emscripten" else "desktop"}


async def measure_refresh(window: Window, clock: Any, frames: int = 30) -> float | None:
    """Frames per second the display loop really achieves (a participant-level timing fact)."""
    times = []
    for _ in range(frames):
        await clock.wait_frame()
        window.flip()
        times.append(clock.now())
    timing = frame_timing(times)
    return None if not timing or not timing["mean_ms"] else round(1000.0 / timing["mean_ms"], 2)


async def run_study(window: Window, experiment: Experiment, sink: Any, clock: Any, participant_id: str, *,
                    options: StudyOptions, condition: str | None = None) -> StudyResult:
    """One participant through every scene of ``experiment``; returns how it ended."""
    quit_check: Callable[[Any], bool] = lab_quit if options.lab else escape_quits
    page_quit = lab_quit if options.lab else None
    refresh = await measure_refresh(window, clock)
    meta = {"experiment_file": options.experiment_file, "experiment_sha256": _sha256(options.experiment_file),
            "device": device_facts(window, refresh),
            "argv": list(options.argv), "lab": options.lab, **(options.meta or {})}
    run = options.restore(experiment, participant_id) if options.restore is not None else None
    if run is None:
        if condition is not None:  # the experimenter's (--condition, the lab's start screen)
            run = StudyRun(experiment, participant_id, condition=condition, meta=meta, clock=clock)
        else:  # balanced over who took part so far (a page: the server's counts in its welcome)
            run = StudyRun(experiment, participant_id, condition=experiment.choose_condition(
                sink.condition_counts(experiment.id)), assigned_by="balanced", meta=meta, clock=clock)
    save = options.save or (lambda run: None)
    rng = random.Random(run.order_seed)
    sink.write(run.take_records())
    steps_left = options.max_steps
    total_steps = 0
    quit = False

    def record_event(kind: str, data: dict[str, Any]) -> None:
        sink.write([EventRecord(participant_id, int(clock.now() * 1e9), kind, data)])

    def shot(visit: Any, suffix: str = "") -> str | None:
        if options.screenshots is None:
            return None
        options.screenshots.mkdir(parents=True, exist_ok=True)
        return str(options.screenshots / f"{visit.position:02d}_{visit.name}{suffix}.png")

    session: Session | None = None
    visit = None
    try:
        while not quit and (show := run.next_show()) is not None:
            visit, scene = show.visit, show.scene
            save(run)
            sink.write(run.take_records())

            def page_event(kind: str, data: dict[str, Any], visit_id: str = visit.visit_id) -> None:
                record_event(kind, {**data, "visit": visit_id})  # a page's focus and resize belong to its visit

            page_args = _PageArgs(theme=dict(experiment.theme) if experiment.theme else None,
                                  autopilot=rng if options.autopilot else None,
                                  quit_check=page_quit, on_event=page_event, participant=participant_id)
            if show.part == "game":
                outcome = "played"
                if steps_left is not None and steps_left <= 0:
                    outcome = "skipped"  # the run's --max-steps budget is used up
                else:
                    window.resize(fit_window(scene.canvas, hud=scene.hud is not None))
                    if options.lab and not any(k.pointer is not None for k in scene.keymaps.values()):
                        pygame.mouse.set_visible(False)  # unless a seat points with it
                    session = Session(scene, participant_id, scene=scene.name, max_total_steps=steps_left,
                                      study=experiment.id, visit_id=visit.visit_id, hook_state=run.state,
                                      condition=run.condition, clock=clock, policies=load_policies(scene))
                    assets = Assets(scene.base_dir or Path.cwd(), dict(scene.images), dict(scene.atlases))
                    autopilot = autopilot_for(session, seed=rng.randrange(2**31)) if options.autopilot else None
                    result = await run_session(window, session, sink, clock, autopilot=autopilot, assets=assets,
                                               quit_check=quit_check)
                    pygame.mouse.set_visible(True)
                    path = shot(visit)
                    if path:
                        window.screenshot(path)
                    if options.screenshot:
                        window.screenshot(options.screenshot)
                    total_steps += session.total_steps
                    if steps_left is not None:
                        steps_left -= session.total_steps
                    if result.quit:
                        quit = True
                        outcome = "aborted"
                run.shown(outcome)
            else:
                window.resize(fit_window((1280, 720)))
                code = run.completion_code if scene.kind == "end" else None
                base_dir = visit.scene.base_dir if show.part == "instructions" else _base_dir(experiment)
                page = await show_page(window, scene, clock, base_dir=base_dir, code=code,
                                       screenshot=shot(visit, "_instructions" if show.part == "instructions" else ""),
                                       **page_args)
                quit = page.quit
                run.shown("aborted" if page.quit else page.outcome, page.answers, page.timings)
                if run.status == "declined" and run.ending is not None:
                    sink.write(run.take_records())
                    sink.commit()
                    await show_page(window, scene, clock, text_override=run.ending.text, **page_args)
            save(run)
            sink.write(run.take_records())
            sink.commit()  # the next scene starts only with this one on disk
    except Exception as error:
        # A run that breaks (an env that fails to start, a broken hook) is marked failed in the
        # data — not left as a participant who "started" with an empty episode — then reported.
        if session is not None and not session.finished:
            try:
                session.abort(clock.now(), "failed")
            except Exception:  # noqa: BLE001 — the same broken env or hook: the episode stays as recorded
                pass
            sink.write(session.take_records())
        run.fail(f"{type(error).__name__}: {error}")
        sink.write(run.take_records())
        sink.commit()
        if isinstance(error, IgymError):
            raise
        where = f"scene {visit.name!r}" if visit is not None else "the study"
        raise ExperimentError(f"{where} failed: {type(error).__name__}: {error} (the participant is recorded as "
                              f"failed)") from error
    if quit:
        run.abort()
    save(run)
    sink.write(run.take_records())
    sink.commit()
    return StudyResult(participant_id, run.status, run.completion_code, quit, total_steps)


def _sha256(path: str | None) -> str | None:
    """The experiment file's hash, recorded so a replay can tell it still has the same file."""
    if not path:
        return None
    from igym.replay import file_sha256
    try:
        return file_sha256(path)
    except OSError:
        return None


def _base_dir(experiment: Experiment) -> Any:
    return experiment.base_dir


def new_participant_id() -> str:
    return f"P-{uuid.uuid4().hex[:8]}"
