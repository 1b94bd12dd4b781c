"""``python -m igym.play --check TARGET``: can igym play this env?

Plays 200 headless autopilot steps of TARGET (a Gymnasium id or an experiment file) through
the real session, window loop, renderer and SQLite sink, then checks what a study would
need: every step recorded, every recorded action inside its action space, a picture that is
not blank. It prints one line — ``OK: TARGET played 200 steps (...)`` — or ends with one
line saying what is missing (exit 2): no key map, a package not installed, an env that
cannot render RGB, a value that does not fit. Researchers run it on their own envs; the
test suite runs it over Gymnasium's whole registry.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sqlite3
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .actions import from_plain, read_space
from .errors import IgymError

if TYPE_CHECKING:
    from .experiment import Game

CHECK_STEPS = 200
BUDGET_S = 120.0


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def check(args: argparse.Namespace) -> str:
    """The check of ``python -m igym.play --check`` (TARGET, --keys, --keystroke, --max-steps, --screenshot)."""
    return check_target(args.target, steps=args.max_steps or CHECK_STEPS, keys=args.keys, keystroke=args.keystroke,
                        screenshot=args.screenshot)


def check_target(target: str, steps: int = CHECK_STEPS, *, keys: str | None = None, keystroke: bool = False,
                 budget_s: float = BUDGET_S, screenshot: str | None = None) -> str:
    """Play ``steps`` autopilot steps of ``target``: the OK line, or :class:`IgymError` with the reason."""
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from .play import load_target

    try:
        import gymnasium  # noqa: F401 — first: its import adds a warnings filter of its own
    except ImportError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium's warnings are not the one line we owe
        experiment, _, _ = load_target(argparse.Namespace(target=target, keys=keys, keystroke=keystroke))
        games = experiment.games()
        if not games:
            raise IgymError(f"{target}: the experiment has no Game scene to play")
        with tempfile.TemporaryDirectory(prefix="igym-check-") as folder:
            try:
                return asyncio.run(_play(target, games, steps, budget_s, Path(folder) / "check.sqlite", screenshot))
            except IgymError as error:
                if str(error).startswith(target):
                    raise
                raise IgymError(f"{target}: {error}") from None
            except Exception as error:  # noqa: BLE001 — whatever the env raises is the one line
                raise IgymError(f"{target}: playing failed: {_first_line(error)}") from None


async def _play(target: str, games: list[Game], steps: int, budget_s: float, path: Path, screenshot: str | None) -> str:
    from .sqlite_sink import SqliteSink
    from .renderers.app import VirtualClock, autopilot_for, run_session
    from .renderers.assets import Assets
    from .renderers.draw import FrameRenderer
    from .renderers.window import Window, fit_window
    from .session import Session

    seeds = itertools.count()
    sink = SqliteSink(path)
    game = games[0]
    window = Window(fit_window(game.canvas, hud=game.hud is not None), headless=True, title="igym check")
    clock = VirtualClock(60.0)
    played = 0
    deadline = time.monotonic() + budget_s
    session = None
    try:
        for round_ in itertools.count():
            game = games[round_ % len(games)]
            window.resize(fit_window(game.canvas, hud=game.hud is not None))
            session = Session(game, "check", scene=game.name, max_total_steps=steps - played,
                              seed_source=lambda: next(seeds))
            assets = Assets(game.base_dir or Path.cwd(), dict(game.images), dict(game.atlases))
            try:
                await asyncio.wait_for(run_session(window, session, sink, clock, assets=assets,
                                                   autopilot=autopilot_for(session, seed=round_)),
                                       max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                raise IgymError(f"{target}: only {played + session.total_steps} of {steps} steps in {budget_s:.0f} s "
                                f"— too slow to play at its fps") from None
            if session.total_steps == 0:
                raise IgymError(f"{target}: scene {game.name!r} ended before its first step")
            played += session.total_steps
            if played >= steps:
                break
        renderer = FrameRenderer(window.surface, game.canvas, hud=game.hud is not None)
        colours = _colours(window.surface, renderer.view)
        if screenshot:
            window.screenshot(screenshot)
        sink.commit()
    finally:
        sink.close()
        window.close()
    if colours < 2:
        raise IgymError(f"{target}: the picture is blank (one colour) after {played} steps — check the env's "
                        f"rgb_array render or the scene's render function")
    db = sqlite3.connect(path)
    try:
        recorded = db.execute("SELECT count(*) FROM (SELECT DISTINCT episode_id, step FROM steps)").fetchone()[0]
        episodes = db.execute("SELECT count(*) FROM episodes").fetchone()[0]
        if recorded != played:
            raise IgymError(f"{target}: {played} steps played but {recorded} recorded")
        _check_actions(target, db, session)
    finally:
        db.close()
    return (f"OK: {target} played {played} steps ({episodes} episode{'s' if episodes != 1 else ''}; "
            f"{_seats(session)}; picture of {colours}+ colours)")


def _colours(surface: Any, view: Any) -> int:
    """Distinct colours on a grid of points of the canvas' part of the window."""
    step = max(1, min(view.width, view.height) // 48)
    return len({tuple(surface.get_at((x, y))) for x in range(view.left, view.right, step)
                for y in range(view.top, view.bottom, step)})


def _check_actions(target: str, db: sqlite3.Connection, session: Any) -> None:
    """Every recorded action, turned back into the env's form, is inside its agent's action space."""
    for agent in session.env.agents:
        try:
            space = session.env.action_space(agent)
        except Exception:  # noqa: BLE001 — some envs' space methods fail (CoGrid 0.3.2)
            continue
        info = read_space(space)
        contains = getattr(space, "contains", None)
        if contains is None or info.kind == "other":
            continue
        for step, action in db.execute("SELECT s.step, s.action FROM steps s JOIN episodes e USING (episode_id) "
                                       "WHERE s.agent = ? AND e.scene = ? AND s.source != 'waiting'",
                                       (str(agent), session.scene)):
            value = json.loads(action)
            if not contains(from_plain(info, value)):
                raise IgymError(f"{target}: step {step}: agent {agent}'s recorded action {value} is not in its "
                                f"action space {info.text}")


def _seats(session: Any) -> str:
    parts: list[str] = []
    others: dict[str, int] = {}
    for name, seat in session.seats.items():
        if seat == "human":
            agent = session.env.agent(name)
            keymap = session.inputs[agent].keymap
            space = session._space(agent)
            axes = f", {len(keymap.axes)} axes" if keymap.axes else ""
            axes += f", pointer {keymap.describe()['pointer']}" if keymap.pointer is not None else ""
            parts.append(f"{name}: human, {read_space(space).text}, {len(keymap.keys)} keys{axes}")
        else:
            kind = seat.get("kind", "policy") if isinstance(seat, dict) else str(seat)
            others[kind] = others.get(kind, 0) + 1
    parts += [f"{count} {kind}" for kind, count in others.items()]
    return "; ".join(parts)
