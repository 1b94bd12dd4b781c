"""``python -m igym.data``: export, summarise, report on and replay a study's SQLite file.

    python -m igym.data export STUDY.sqlite --to csv|parquet DIR [--participant ID]
    python -m igym.data export STUDY.sqlite --to minari DIR --agent NAME [--dataset-id ID] [--scene NAME]
    python -m igym.data summary STUDY.sqlite [--json]
    python -m igym.data report STUDY.sqlite [--out report.html] [--pdf]
    python -m igym.data replay STUDY.sqlite --episode ID [--experiment FILE | --trust DIR] [--out DIR|file.gif]
                               [--every K] [--verify] [--headless]

Every mistake ends with one line naming the problem and the fix, and exit code 2.
``replay --verify`` exits 1 when the re-simulation differs from the data.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from collections.abc import Sequence

from .errors import IgymError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (and exit code 2), like every other igym error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"igym: {self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m igym.data", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    export = commands.add_parser("export", help="write tidy tables (csv, parquet) or a Minari dataset")
    export.add_argument("study", help="the study's SQLite file")
    export.add_argument("--to", nargs=2, required=True, metavar=("FORMAT", "DIR"),
                        help="csv, parquet or minari, and the folder to write into")
    export.add_argument("--participant", help="only this participant's data")
    export.add_argument("--agent", help="minari: the agent whose episodes become the dataset")
    export.add_argument("--dataset-id", help="minari: dataset id (default igym/<scene>_<agent>-v0)")
    export.add_argument("--scene", help="minari: only episodes of this scene")
    export.add_argument("--experiment", help="minari: the experiment file that recorded the data, or its Gymnasium id")
    export.add_argument("--trust", action="append", default=[], metavar="FOLDER",
                        help="minari: run the recorded experiment file when it lies inside FOLDER (repeatable)")

    summary = commands.add_parser("summary", help="participants, visits, episodes, timing, answers")
    summary.add_argument("study", help="the study's SQLite file")
    summary.add_argument("--json", action="store_true", help="print one JSON object")

    report = commands.add_parser("report", help="one HTML page with figures: funnel, durations, returns, answers, "
                                                "timing, flags")
    report.add_argument("study", help="the study's SQLite file")
    report.add_argument("--out", metavar="FILE.html",
                        help="where to write the page (default: beside the study, <study>-report.html)")
    report.add_argument("--pdf", action="store_true", help="also write the figures to <out without .html>.pdf")

    replay = commands.add_parser("replay", help="re-simulate a recorded episode: show, write images, verify")
    replay.add_argument("study", help="the study's SQLite file")
    replay.add_argument("--episode", required=True, help="episode id (its first 8 characters suffice)")
    replay.add_argument("--experiment", help="the experiment file that recorded the data, or the Gymnasium id it "
                                             "played (e.g. Taxi-v4)")
    replay.add_argument("--trust", action="append", default=[], metavar="FOLDER",
                        help="run the recorded experiment file when it lies inside FOLDER (repeatable); data never "
                             "chooses code to run by itself")
    replay.add_argument("--out", help="a folder for one PNG per step, or a .gif file (needs Pillow)")
    replay.add_argument("--every", type=int, default=1, metavar="K", help="with --out: every K-th step only")
    replay.add_argument("--verify", action="store_true",
                        help="compare the env's state fingerprint with the recorded one after every step")
    replay.add_argument("--headless", action="store_true", help="no display, no waiting")
    replay.add_argument("--speed", type=float, default=1.0, help="playback speed factor in the window (default 1)")
    return parser.parse_args(argv)


def open_study(path: str | Path) -> sqlite3.Connection:
    """Open a study file read-only (never creates one; a missing or foreign file is one line)."""
    path = Path(path)
    if not path.is_file():
        raise IgymError(f"{path}: no such data file — give the study's .sqlite file (igym-data/<experiment>.sqlite)")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as error:
        raise IgymError(f"{path}: not an SQLite file ({error}) — give the study's .sqlite file") from None
    missing = {"participants", "episodes", "steps"} - tables
    if missing:
        raise IgymError(f"{path}: not an igym data file (no {', '.join(sorted(missing))} table)")
    return db


def cmd_export(args: argparse.Namespace) -> int:
    fmt, folder = args.to
    fmt = fmt.lower()
    db = open_study(args.study)
    if fmt in ("csv", "parquet"):
        from .export import export_tables

        written = export_tables(db, folder, fmt, args.participant, args.study)
        for path, rows in written:
            print(f"wrote {path} ({rows} rows)")
        return 0
    if fmt == "minari":
        if not args.agent:
            raise IgymError("--to minari needs --agent NAME: the agent whose episodes become the dataset")
        from .export import export_minari

        dataset_id, where, episodes, steps = export_minari(
            db, folder, args.agent, dataset_id=args.dataset_id, scene=args.scene, participant=args.participant,
            experiment=args.experiment, path=args.study, trust=args.trust)
        print(f"wrote minari dataset {dataset_id} at {where} ({episodes} episodes, {steps} steps)")
        print(f"load it with: MINARI_DATASETS_PATH={Path(folder).resolve()} and minari.load_dataset({dataset_id!r})")
        return 0
    raise IgymError(f"--to {fmt}: unknown format — use csv, parquet or minari")


def cmd_summary(args: argparse.Namespace) -> int:
    from .summary import format_text, summarize

    summary = summarize(open_study(args.study), args.study)
    print(json.dumps(summary, indent=1) if args.json else format_text(summary))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import require_matplotlib, write_report

    require_matplotlib()  # before reading anything: the one thing the researcher must install
    db = open_study(args.study)
    study = Path(args.study)
    out = Path(args.out) if args.out else study.with_name(f"{study.stem}-report.html")
    try:
        report, written = write_report(db, study, out, pdf=args.pdf)
    finally:
        db.close()
    flagged = len({f.participant_id for f in report.flags})
    for path in written:
        print(f"wrote {path} ({path.stat().st_size / 1024:,.0f} KiB)")
    print(f"{report.participants} participants, {len(report.figures)} figures, {flagged} participants flagged")
    if not report.participants:
        raise IgymError(f"{study}: no participants yet — the report at {out} says only that")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .replay import Replayer, episode_game, find_episode, recorded_steps, show, verify, write_images

    if args.every < 1:
        raise IgymError(f"--every must be 1 or more, got {args.every}")
    db = open_study(args.study)
    episode = find_episode(db, args.episode, args.study)
    steps = recorded_steps(db, episode.episode_id)
    db.close()
    if not steps:
        raise IgymError(f"episode {episode.short_id} has no recorded steps")
    if args.verify and not any(s.fingerprint for s in steps):
        raise IgymError(f"episode {episode.short_id} has no recorded state fingerprints (its env offers no "
                        f"state_fingerprint(), or igym did not record them then) — it cannot be verified")
    game = episode_game(episode, args.experiment, args.trust)
    status = 0
    if args.verify:
        replayer = Replayer(game, episode, steps)
        try:
            ok, message = verify(replayer)
        finally:
            replayer.close()
        print(message)
        status = 0 if ok else 1
    if args.out:
        replayer = Replayer(game, episode, steps)
        try:
            count, where = write_images(replayer, args.out, args.every)
        finally:
            replayer.close()
        print(f"wrote {count} {'frames to' if where.suffix.lower() == '.gif' else 'images into'} {where}")
    elif not args.verify:
        replayer = Replayer(game, episode, steps)
        try:
            shown = show(replayer, headless=args.headless, speed=args.speed)
        finally:
            replayer.close()
        print(f"replayed {shown} of {len(steps)} steps of episode {episode.short_id}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = {"export": cmd_export, "summary": cmd_summary, "report": cmd_report,
               "replay": cmd_replay}[args.command]
    try:
        return command(args)
    except IgymError as error:
        print(f"igym: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except (sqlite3.Error, OSError) as error:
        print(f"igym: {args.study}: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 — e.g. the researcher's env failing mid-replay: one line, no traceback
        print(f"igym: {args.command} failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
