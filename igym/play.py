"""``python -m igym.play TARGET``: run an experiment file, or play any Gymnasium env.

TARGET is an experiment file (``examples/slime_volleyball/human_ai.py``) or a Gymnasium
id with an RGB-array render (``MountainCar-v0``). The data goes to one SQLite file whose
path is printed at the end. Headless runs (``--headless --autopilot``) need no display
and no person, which is how CI and smoke tests run whole experiments.

Any mistake in the target or the options ends with one line naming the problem and the
fix, and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from pathlib import Path
from typing import Any, Sequence

from .controls import KeyMap
from .errors import ExperimentError, IgymError
from .experiment import Experiment, Game, with_changes
from .loader import load_experiment

# Key maps for Gymnasium envs that ship none (classic control has no get_keys_to_action).
KNOWN_KEYS: dict[str, tuple[dict[Any, int], int]] = {
    "MountainCar": ({"left": 0, "right": 2}, 1),
    "CartPole": ({"left": 0, "right": 1}, 0),
    "Acrobot": ({"left": 0, "right": 2}, 1),
    "LunarLander": ({"left": 1, "up": 2, "right": 3}, 0),
    "Taxi": ({"down": 0, "up": 1, "right": 2, "left": 3, "p": 4, "d": 5}, 0),
    "FrozenLake": ({"left": 0, "down": 1, "right": 2, "up": 3}, 0),
    "CliffWalking": ({"up": 0, "right": 1, "down": 2, "left": 3}, 0),
}
KEYSTROKE_ENVS = ("Taxi", "FrozenLake", "CliffWalking")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m igym.play", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", nargs="?", help="experiment file (.py) or Gymnasium id")
    parser.add_argument("--connect", metavar="URL", help="play an experiment hosted by an igym server, "
                                                          "e.g. ws://127.0.0.1:8765")
    parser.add_argument("--fps", type=float, help="env steps per second (overrides the scene)")
    parser.add_argument("--seat", action="append", default=[], metavar="AGENT=KIND",
                        help="seat override: AGENT=human|random|path.onnx (repeatable)")
    parser.add_argument("--keys", help="key map for human seats, e.g. 'left=0,right=2,default=1' "
                                       "(+ joins keys held together: right+up=2)")
    parser.add_argument("--keystroke", action="store_true", help="with --keys: one action per key press")
    parser.add_argument("--data", help="SQLite file for the data (default igym-data/<experiment>.sqlite)")
    parser.add_argument("--participant", help="participant id (default: a new random id)")
    parser.add_argument("--seed", type=int, help="base seed: episode i uses SEED + i (overrides the scene)")
    parser.add_argument("--fullscreen", action="store_true", help="fullscreen window")
    parser.add_argument("--headless", action="store_true", help="no display; time runs as fast as possible")
    parser.add_argument("--autopilot", action="store_true", help="random key presses play the human seats")
    parser.add_argument("--max-steps", type=int, help="stop after N env steps in all (smoke tests)")
    parser.add_argument("--screenshot", help="save the last game frame to this PNG")
    parser.add_argument("--display-fps", type=float, default=60.0, help="frames drawn per second (default 60)")
    parser.add_argument("--lab", action="store_true",
                        help="lab mode: fullscreen, start screen for the experimenter, several participants in a "
                             "row, mouse hidden in games, Esc ignored (Ctrl+Shift+Q quits)")
    parser.add_argument("--condition", help="run this condition (default: balanced assignment)")
    parser.add_argument("--rerun", action="store_true", help="run a participant id that already completed again")
    parser.add_argument("--screenshots", metavar="DIR", help="save every scene (pages and games' last frames) "
                                                             "as PNGs in DIR")
    parser.add_argument("--max-participants", type=int, help="lab mode: stop after N participants")
    return parser.parse_args(argv)


def gym_experiment(env_id: str, keys: KeyMap | None) -> Experiment:
    """An experiment of one Game that lets a person play a Gymnasium env by its id."""
    try:
        import gymnasium
        gymnasium.spec(env_id)
    except Exception as error:  # noqa: BLE001 — gymnasium raises several kinds
        raise ExperimentError(f"{env_id}: not a file and not a Gymnasium id ({error}) — give an experiment "
                              f"file path or a registered id such as MountainCar-v0") from None

    def make() -> Any:
        return gymnasium.make(env_id, render_mode="rgb_array")

    if keys is None:
        keys = _env_keys(env_id, make)
    probe = make()
    probe.reset(seed=0)
    frame = probe.render()
    probe.close()
    if frame is None or not hasattr(frame, "shape"):
        raise ExperimentError(f"{env_id}: its render_mode='rgb_array' render gives no image — igym needs "
                              f"an RGB array (or write an experiment file with a render function)")
    height, width = int(frame.shape[0]), int(frame.shape[1])
    game = Game(name=env_id, env=make, seats={"agent_0": "human"}, keys=keys, fps=30, canvas=(width, height))
    return Experiment(id=env_id.replace("/", "_"), scenes=[game])


def _env_keys(env_id: str, make: Any) -> KeyMap:
    family = env_id.split("/")[-1].split("-")[0]
    if family in KNOWN_KEYS:
        mapping, default = KNOWN_KEYS[family]
        mode = "keystroke" if family in KEYSTROKE_ENVS else "held"
        return KeyMap(mapping, default_action=default, mode=mode)
    env = make()
    get = getattr(env.unwrapped, "get_keys_to_action", None)
    env.close()
    if get is None:
        raise ExperimentError(f"{env_id} has no keys-to-action map — give one with --keys, "
                              f"e.g. --keys 'left=0,right=1,default=0'")
    import pygame
    mapping = {}
    default = 0
    for codes, action in get().items():
        names = tuple(pygame.key.name(c) if isinstance(c, int) else str(c) for c in codes)
        if not names:
            default = int(action)
            continue
        mapping[names[0] if len(names) == 1 else names] = int(action)
    return KeyMap(mapping, default_action=default)


def apply_overrides(experiment: Experiment, args: argparse.Namespace, keys: KeyMap | None) -> Experiment:
    """Apply --fps, --seat, --keys and --seed to every Game scene."""
    seats_override: dict[str, str] = {}
    for item in args.seat:
        if "=" not in item:
            raise ExperimentError(f"--seat {item!r}: write AGENT=human|random|path.onnx")
        agent, kind = item.split("=", 1)
        seats_override[agent.strip()] = kind.strip()

    def change(scene: Game) -> Game:
        if True:
            changes: dict[str, Any] = {}
            if args.fps:
                changes["fps"] = args.fps
            if keys is not None:
                changes["keys"] = keys
            if args.seed is not None:
                changes["seeds"] = args.seed
            if seats_override:
                known = {str(a): a for a in scene.seats}
                unknown = [a for a in seats_override if a not in known]
                if unknown:
                    raise ExperimentError(f"--seat: no agent {unknown[0]!r} in scene {scene.name!r}; its agents "
                                          f"are {sorted(known)}")
                changes["seats"] = {a: seats_override.get(str(a), s) for a, s in scene.seats.items()}
            return with_changes(scene, changes) if changes else scene
    return experiment.map_games(change)


def default_data_path(experiment: Experiment) -> Path:
    return Path("igym-data") / f"{experiment.id}.sqlite"


async def run(args: argparse.Namespace) -> Path:
    """Run the target (one participant, or a lab session of several); returns the data file's path."""
    if args.headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    keys = KeyMap.parse(args.keys, mode="keystroke" if args.keystroke else "held") if args.keys else None
    experiment_file = None
    if args.target.endswith(".py") or os.path.exists(args.target):
        experiment = load_experiment(args.target)
        experiment_file = str(Path(args.target).resolve())
    else:
        experiment = gym_experiment(args.target, keys)
    experiment = apply_overrides(experiment, args, keys)
    if args.condition is not None and args.condition not in (experiment.conditions or {}):
        known = ", ".join(experiment.conditions or ()) or "none"
        raise ExperimentError(f"--condition {args.condition!r}: the experiment's conditions are {known}")

    from igym.sqlite_sink import SqliteSink
    from igym.renderers.app import Pacer, VirtualClock
    from igym.renderers.pages import start_screen
    from igym.renderers.study import StudyOptions, lab_quit, new_participant_id, run_study
    from igym.renderers.window import Window, fit_window

    data_path = Path(args.data) if args.data else default_data_path(experiment)
    sink = SqliteSink(data_path)
    options = StudyOptions(autopilot=args.autopilot, lab=args.lab,
                           screenshots=Path(args.screenshots) if args.screenshots else None,
                           max_steps=args.max_steps, experiment_file=experiment_file, argv=tuple(sys.argv[1:]),
                           screenshot=args.screenshot)
    first = experiment.games()[0].canvas if experiment.games() and not _has_pages(experiment) else (1280, 720)
    window = Window(fit_window(first), fullscreen=args.fullscreen or (args.lab and not args.headless),
                    title=experiment.id, headless=args.headless)
    clock = VirtualClock(args.display_fps) if args.headless else Pacer(args.display_fps)
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
                done += 1
                message = f"{result.participant_id}: {result.status}"
        if args.screenshot and not Path(args.screenshot).exists():
            window.screenshot(args.screenshot)  # no game was shown: the last page
    finally:
        sink.close()
        window.close()
    return data_path


def _has_pages(experiment: Experiment) -> bool:
    return any(not isinstance(scene, Game) or scene.instructions for scene in experiment.all_scenes())


def _report(result: Any) -> None:
    code = f", completion code {result.completion_code}" if result.completion_code else ""
    print(f"participant {result.participant_id}: {result.status}{code} ({result.steps} steps)", flush=True)


def connect(args: argparse.Namespace) -> int:
    """Play on a server: the data stays on the server, so there is no data path to print."""
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
    print(f"participant: {participant}\noutcome: {outcome}\nframes: {state.frames_received} "
          f"({state.bytes_received} bytes)")
    if state.end and state.end.get("outcome") == "error":
        print(state.end.get("text", ""), file=sys.stderr)
    code = (state.end or {}).get("code")
    if code:
        print(f"completion code: {code}")
    return 0 if outcome in ("played", "timed_out", "partner_left", "declined") else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.target and not args.connect:
        print("igym: give a TARGET (experiment file or Gymnasium id) or --connect URL", file=sys.stderr)
        return 2
    try:
        if args.connect:
            return connect(args)
        data_path = asyncio.run(run(args))
    except IgymError as error:
        print(f"igym: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"data: {data_path.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
