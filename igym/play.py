"""``python -m igym.play TARGET``: run an experiment file, or play any Gymnasium env.

TARGET is an experiment file (``examples/slime_volleyball/human_ai.py``) or a Gymnasium
id with an RGB-array render (``MountainCar-v0``). The data goes to one SQLite file whose
path is printed at the end. Headless runs (``--headless --autopilot``) need no display
and no person, which is how CI and smoke tests run whole experiments.

Any mistake in the target or the options ends with one line naming the problem and the
fix, and exit code 2 (:func:`igym.cli.cli_main`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from .cli import Parser, cli_main, positive_float, positive_int
from .controls import KeyMap
from .errors import ExperimentError, UsageError, warnings_as_lines
from .experiment import Experiment, Game, with_changes
from . import loader
from .loader import load_experiment


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = Parser(prog="python -m igym.play", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", nargs="?", help="experiment file (.py) or Gymnasium id")
    parser.add_argument("--connect", metavar="URL", help="play an experiment hosted by an igym server, "
                                                          "e.g. ws://127.0.0.1:8765")
    parser.add_argument("--fps", type=positive_float, help="env steps per second (overrides the scene)")
    parser.add_argument("--seat", action="append", default=[], metavar="AGENT=KIND",
                        help="seat override: AGENT=human|random|path.onnx (repeatable)")
    parser.add_argument("--keys", help="key map for human seats, e.g. 'left=0,right=2,default=1' or "
                                       "'left=[-1,0,0],up=[0,1,0],default=[0,0,0]' (+ joins keys held "
                                       "together: right+up=2)")
    parser.add_argument("--keystroke", action="store_true", help="with --keys: one action per key press")
    parser.add_argument("--data", help="SQLite file for the data (default igym-data/<experiment>.sqlite)")
    parser.add_argument("--participant", help="participant id (default: a new random id)")
    parser.add_argument("--seed", type=int, help="base seed: episode i uses SEED + i (overrides the scene)")
    parser.add_argument("--fullscreen", action="store_true", help="fullscreen window")
    parser.add_argument("--headless", action="store_true", help="no display; time runs as fast as possible")
    parser.add_argument("--autopilot", action="store_true", help="random key presses play the human seats")
    parser.add_argument("--max-steps", type=positive_int, help="stop after N env steps in all (smoke tests)")
    parser.add_argument("--screenshot", help="save the last game frame to this PNG")
    parser.add_argument("--display-fps", type=positive_float, default=60.0, help="frames drawn per second (default 60)")
    parser.add_argument("--lab", action="store_true",
                        help="lab mode: fullscreen, start screen for the experimenter, several participants in a "
                             "row, mouse hidden in games, Esc ignored (Ctrl+Shift+Q quits)")
    parser.add_argument("--condition", help="run this condition (default: balanced assignment)")
    parser.add_argument("--rerun", action="store_true", help="run a participant id that already completed again")
    parser.add_argument("--screenshots", metavar="DIR", help="save every scene (pages and games' last frames) "
                                                             "as PNGs in DIR")
    parser.add_argument("--max-participants", type=positive_int, help="lab mode: stop after N participants")
    parser.add_argument("--check", action="store_true",
                        help="play 200 headless autopilot steps of TARGET and print OK, or one line of what is "
                             "missing (exit 2)")
    return parser.parse_args(argv)


def apply_overrides(experiment: Experiment, args: argparse.Namespace, keys: KeyMap | None) -> Experiment:
    """Apply --fps, --seat, --keys and --seed to every Game scene."""
    seats_override: dict[str, str] = {}
    for item in args.seat:
        agent, _, kind = item.partition("=")
        if not agent.strip() or not kind.strip():
            raise UsageError(f"--seat {item!r}: write AGENT=human|random|path.onnx")
        seats_override[agent.strip()] = kind.strip()

    def change(scene: Game) -> Game:
        changes: dict[str, Any] = {}
        if args.fps:
            changes["fps"] = args.fps
        if keys is not None:
            changes["keys"] = keys
        if args.seed is not None:
            changes["seeds"] = args.seed
        if seats_override:
            seats = scene.seats or {}  # a Game checked its seats when it was made
            known = {str(a): a for a in seats}
            unknown = [a for a in seats_override if a not in known]
            if unknown:
                raise ExperimentError(f"--seat: no agent {unknown[0]!r} in scene {scene.name!r}; its agents "
                                      f"are {sorted(known)}")
            changes["seats"] = {a: seats_override.get(str(a), s) for a, s in seats.items()}
        return with_changes(scene, changes) if changes else scene
    return experiment.map_games(change)


def load_target(args: argparse.Namespace) -> tuple[Experiment, str | None, KeyMap | None]:
    """The experiment of TARGET (a file, or a Gymnasium id), its file path, and the --keys map."""
    keys = KeyMap.parse(args.keys, mode="keystroke" if args.keystroke else "held") if args.keys else None
    experiment = loader.load_target(args.target, keys)
    return experiment, str(experiment.source_file) if experiment.source_file else None, keys


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse at once a picture the run could write only at its end: a --screenshot whose folder
    is missing failed after the whole game, with the participant recorded as failed."""
    if args.screenshot:
        folder = Path(args.screenshot).absolute().parent
        if not folder.is_dir():
            raise UsageError(f"--screenshot {args.screenshot}: there is no folder {folder} — create it, or give a "
                             f"path in a folder that exists")
        if not os.access(folder, os.W_OK):
            raise UsageError(f"--screenshot {args.screenshot}: the folder {folder} cannot be written — give a path "
                             f"in a folder you can write")
    if args.screenshots and Path(args.screenshots).exists() and not Path(args.screenshots).is_dir():
        raise UsageError(f"--screenshots {args.screenshots}: this is a file — give a folder (it is created if "
                         f"missing)")


def default_data_path(experiment: Experiment) -> Path:
    return Path("igym-data") / f"{experiment.id}.sqlite"


async def run(args: argparse.Namespace) -> tuple[Path, bool]:
    """Run the target (one participant, or a lab session of several); returns the data file's
    path and whether Ctrl+C ended it (the run then ended as if the window was closed:
    :class:`igym.renderers.window.CtrlC`)."""
    if args.headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    experiment, experiment_file, keys = load_target(args)
    experiment = apply_overrides(experiment, args, keys)
    if args.condition is not None and args.condition not in (experiment.conditions or {}):
        known = ", ".join(experiment.conditions or ()) or "none"
        raise ExperimentError(f"--condition {args.condition!r}: the experiment's conditions are {known}")
    experiment.check_seats()  # before the data file: a mistake here records nobody

    from igym.sqlite_sink import SqliteSink
    from igym.renderers.app import Pacer, VirtualClock
    from igym.renderers.pages import start_screen
    from igym.renderers.study import StudyOptions, lab_quit, new_participant_id, run_study
    from igym.renderers.window import CtrlC, Window, fit_window

    data_path = Path(args.data) if args.data else default_data_path(experiment)
    sink = SqliteSink(data_path)
    options = StudyOptions(autopilot=args.autopilot, lab=args.lab,
                           screenshots=Path(args.screenshots) if args.screenshots else None,
                           max_steps=args.max_steps, experiment_file=experiment_file, argv=tuple(sys.argv[1:]),
                           screenshot=args.screenshot, meta=None if experiment_file else {"gym_id": args.target})
    game_first = bool(experiment.games()) and not _has_pages(experiment)
    first = experiment.games()[0].canvas if game_first else (1280, 720)
    hud = game_first and experiment.games()[0].hud is not None
    window = Window(fit_window(first, hud=hud), fullscreen=args.fullscreen or (args.lab and not args.headless),
                    title=experiment.id, headless=args.headless)
    clock = VirtualClock(args.display_fps) if args.headless else Pacer(args.display_fps)
    with CtrlC() as ctrl_c:
        try:
            if not args.lab:
                participant = args.participant or new_participant_id()
                if sink.participant_status(participant) == "completed" and not args.rerun:
                    raise ExperimentError(f"participant {participant} already completed {experiment.id} in {data_path} "
                                          f"— give another --participant, or --rerun to run them again")
                result = await run_study(window, experiment, sink, clock, participant, options=options,
                                         condition=args.condition)
                _report(result)
            else:
                done = 0
                message = ""
                while args.max_participants is None or done < args.max_participants:
                    window.resize(fit_window((1280, 720)))
                    shot = None
                    if args.screenshots and done == 0:
                        Path(args.screenshots).mkdir(parents=True, exist_ok=True)
                        shot = str(Path(args.screenshots) / "start.png")
                    choice = await start_screen(window, clock, experiment.id, list(experiment.conditions or ()),
                                                sink.participant_status, new_id=new_participant_id,
                                                theme=dict(experiment.theme) if experiment.theme else None,
                                                autopilot=args.autopilot, quit_check=lab_quit, screenshot=shot,
                                                message=message)
                    if choice.participant_id is None:
                        break
                    result = await run_study(window, experiment, sink, clock, choice.participant_id, options=options,
                                             condition=choice.condition or args.condition)
                    _report(result)
                    if ctrl_c.count:
                        break  # Ctrl+C ends the lab session, not only this participant's run
                    done += 1
                    message = f"{result.participant_id}: {result.status}"
            if args.screenshot and not Path(args.screenshot).exists():
                window.screenshot(args.screenshot)  # no game was shown: the last page
        finally:
            sink.close()
            window.close()
    return data_path, ctrl_c.count > 0


def _has_pages(experiment: Experiment) -> bool:
    return any(not isinstance(scene, Game) or scene.instructions for scene in experiment.all_scenes())


def _report(result: Any) -> None:
    code = f", completion code {result.completion_code}" if result.completion_code else ""
    print(f"participant {result.participant_id}: {result.status}{code} ({result.steps} steps)", flush=True)


CONNECT_URL = re.compile(r"^wss?://(\[[0-9A-Fa-f:.]+\]|[^\s/:\[\]?#]+)(:\d+)?([/?]\S*)?$")


def _never_answered(state: Any) -> bool:
    """Whether the client never heard from a server (nothing listens at the URL, or not igym)."""
    return (state.token is None and state.experiment_id is None and state.scene is None and state.page is None
            and not state.frames_received)


def _reachable(url: str, timeout: float = 10.0) -> None:
    """Refuse at once a URL where nothing listens: the client would otherwise retry for a minute
    (its retries are for a connection lost mid-study, not for a server that was never started)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        socket.create_connection((host, port), timeout=timeout).close()
    except ValueError:
        raise UsageError(f"--connect {url}: the port is not a number from 0 to 65535") from None
    except OSError as error:
        raise UsageError(f"--connect {url}: no igym server answered there ({error.strerror or error}) — start one "
                         f"(python -m igym.server EXPERIMENT) or check the host and port") from None


def connect(args: argparse.Namespace) -> int:
    """Play on a server: the data stays on the server, so there is no data path to print."""
    if not CONNECT_URL.match(args.connect):
        raise UsageError(f"--connect {args.connect}: give the server's WebSocket URL, e.g. ws://127.0.0.1:8765 "
                         f"(wss:// behind TLS)")
    _reachable(args.connect)
    if args.headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    from igym.renderers.client import run_client
    participant = args.participant or f"P-{uuid.uuid4().hex[:8]}"
    experiment = load_experiment(args.target) if args.target else None  # lockstep games run from it
    state = asyncio.run(run_client(args.connect, participant, headless=args.headless, fullscreen=args.fullscreen,
                                   autopilot_seed=0 if args.autopilot else None, display_fps=args.display_fps,
                                   screenshot=args.screenshot, experiment=experiment))
    outcome = (state.end or {}).get("outcome", "unknown")
    if outcome == "connection_lost" and _never_answered(state):
        raise UsageError(f"--connect {args.connect}: no igym server answered there — start one (python -m "
                         f"igym.server EXPERIMENT) or check the host and port")
    print(f"participant: {participant}\noutcome: {outcome}\nframes: {state.frames_received} "
          f"({state.bytes_received} bytes)")
    if state.end and state.end.get("outcome") == "error":
        print(state.end.get("text", ""), file=sys.stderr)
    code = (state.end or {}).get("code")
    if code:
        print(f"completion code: {code}")
    return 0 if outcome in ("played", "timed_out", "partner_left", "declined") else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m igym.play`` and ``igym-play``: a mistake is one line and exit 2, Ctrl+C exits 130."""
    return cli_main(command, argv)


def command(argv: Sequence[str] | None = None) -> int:
    """The command itself: user errors raise :class:`IgymError` (``main`` prints them)."""
    warnings_as_lines()  # an experiment's warnings (a title that shows an internal name): one line each
    args = parse_args(argv)
    if not args.target and not args.connect:
        raise UsageError("give a TARGET (experiment file or Gymnasium id) or --connect URL")
    check_outputs(args)
    if args.connect:
        return connect(args)
    if args.check:
        from .check import check

        print(check(args), flush=True)
        return 0
    data_path, interrupted = asyncio.run(run(args))
    print(f"data: {data_path.resolve()}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
