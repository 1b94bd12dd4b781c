"""``python -m igym.data``: export, summarise, report on and replay a study's SQLite file.

    python -m igym.data export STUDY.sqlite --to csv|parquet DIR [--participant ID]
    python -m igym.data export STUDY.sqlite --to minari DIR --agent NAME [--dataset-id ID] [--scene NAME]
    python -m igym.data summary STUDY.sqlite [--json]
    python -m igym.data report STUDY.sqlite [--out report.html] [--pdf] [--experiment FILE]
    python -m igym.data replay STUDY.sqlite --episode ID [--experiment FILE | --trust DIR] [--out DIR|file.gif]
                               [--every K] [--verify] [--headless]
    python -m igym.data pull postgresql://USER@HOST/DB STUDY.sqlite [--force]

STUDY.sqlite may also be a postgresql:// URL (the server's ``--database``): the command then
reads a temporary copy pulled from it (see :mod:`igym.pg_pull`), the same rows ``pull`` writes.

Every mistake ends with one line naming the problem and the fix, and exit code 2
(:func:`igym.cli.cli_main`). ``replay --verify`` exits 1 when the re-simulation differs from
the data.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from collections.abc import Sequence
from urllib.parse import urlsplit

from .cli import Parser, cli_main, positive_float, positive_int
from .errors import DataError, IgymError
from .pg_sink import is_postgres_url


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = Parser(prog="python -m igym.data", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

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
    report.add_argument("--experiment", metavar="FILE",
                        help="the experiment file that recorded the data: the questions' scales for a file written "
                             "before igym recorded them (it is run to read its scenes)")

    replay = commands.add_parser("replay", help="re-simulate a recorded episode: show, write images, verify")
    replay.add_argument("study", help="the study's SQLite file")
    replay.add_argument("--episode", required=True, help="episode id (its first 8 characters suffice)")
    replay.add_argument("--experiment", help="the experiment file that recorded the data, or the Gymnasium id it "
                                             "played (e.g. Taxi-v4)")
    replay.add_argument("--trust", action="append", default=[], metavar="FOLDER",
                        help="run the recorded experiment file when it lies inside FOLDER (repeatable); data never "
                             "chooses code to run by itself")
    replay.add_argument("--out", help="a folder for one PNG per step, or a .gif file (needs Pillow)")
    replay.add_argument("--every", type=positive_int, default=1, metavar="K", help="with --out: every K-th step only")
    replay.add_argument("--verify", action="store_true",
                        help="compare the env's state fingerprint with the recorded one after every step")
    replay.add_argument("--headless", action="store_true", help="no display, no waiting")
    replay.add_argument("--speed", type=positive_float, default=1.0,
                        help="playback speed factor in the window (default 1)")

    pull = commands.add_parser("pull", help="copy a PostgreSQL study database into one SQLite file (to archive and "
                                            "analyse)")
    pull.add_argument("study", metavar="URL", help="the database: postgresql://USER@HOST:PORT/DB")
    pull.add_argument("out", metavar="FILE.sqlite", help="the new SQLite file")
    pull.add_argument("--force", action="store_true", help="replace FILE.sqlite if it exists")
    return parser.parse_args(argv)


def open_study(path: str | Path) -> sqlite3.Connection:
    """Open a study file read-only (never creates one; a missing or foreign file is one line).
    A ``postgresql://`` URL is read through a temporary copy pulled from the database."""
    if is_postgres_url(path):
        from .pg_pull import pulled_copy

        path = pulled_copy(str(path))
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data file — give the study's .sqlite file (igym-data/<experiment>.sqlite)")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as error:
        raise DataError(f"{path}: not an SQLite file ({error}) — give the study's .sqlite file") from None
    missing = {"participants", "episodes", "steps"} - tables
    if missing:
        raise DataError(f"{path}: not an igym data file (no {', '.join(sorted(missing))} table)")
    from .sqlite_sink import SCHEMA_VERSION

    row = db.execute("SELECT max(version) FROM schema_version").fetchone() if "schema_version" in tables else None
    if row and row[0] is not None and row[0] > SCHEMA_VERSION:
        raise DataError(f"{path} has schema version {row[0]}, newer than this igym's {SCHEMA_VERSION} — read it with "
                        f"the igym version that wrote it (pip install -U igym)")
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
    experiment = None
    if args.experiment:
        import warnings

        from .errors import ExperimentWarning
        from .loader import load_experiment

        with warnings.catch_warnings():  # its scenes' scales are all the report reads: no advice about titles
            warnings.simplefilter("ignore", ExperimentWarning)
            experiment = load_experiment(args.experiment)
    db = open_study(args.study)
    study = Path(args.study)
    out = Path(args.out) if args.out else study.with_name(f"{study.stem}-report.html")
    if not args.out and is_postgres_url(args.study):  # a database's report goes to the current folder
        out = Path(f"{urlsplit(args.study).path.strip('/') or 'study'}-report.html")
    try:
        report, written = write_report(db, study, out, pdf=args.pdf, experiment=experiment)
    finally:
        db.close()
    flagged = len({f.participant_id for f in report.flags})
    for path in written:
        print(f"wrote {path} ({path.stat().st_size / 1024:,.0f} KiB)")
    print(f"{report.participants} participants, {len(report.figures)} figures, {flagged} participants flagged")
    if not report.participants:
        raise IgymError(f"{study}: no participants yet — the report at {out} says only that")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from .pg_pull import pull
    from .pg_sink import redact

    counts = pull(args.study, args.out, force=args.force)
    print(f"pulled {redact(args.study)} into {args.out}: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .replay import Replayer, episode_game, find_episode, recorded_steps, show, verify, write_images

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
    """``python -m igym.data`` and ``igym-data``: a mistake is one line and exit 2, Ctrl+C exits 130, and
    anything else (a bug) keeps its traceback — the same ending as every igym command."""
    return cli_main(command, argv)


def command(argv: Sequence[str] | None = None) -> int:
    """The command itself: user errors raise :class:`IgymError` (``main`` prints them)."""
    args = parse_args(argv)
    handler = {"export": cmd_export, "summary": cmd_summary, "report": cmd_report,
               "replay": cmd_replay, "pull": cmd_pull}[args.command]
    try:
        return handler(args)
    except sqlite3.DatabaseError as error:  # a study file that is damaged, locked or half-written
        raise DataError(f"{args.study}: cannot be read ({error}) — give an intact copy of the study's "
                        f".sqlite file") from None
    except OSError as error:  # a file or folder the researcher named: missing, read-only, full disk
        where = error.filename or args.study
        raise DataError(f"{where}: {error.strerror or error} — give a path you can read and write") from None


if __name__ == "__main__":
    sys.exit(main())
