"""``python -m igym.server EXPERIMENT``: host an experiment for participants on the network.

EXPERIMENT is an experiment file or, as for ``python -m igym.play``, a Gymnasium id.

    python -m igym.server examples/slime_volleyball/human_human.py --port 8765 --data hh.sqlite
    python -m igym.server MountainCar-v0
    python -m igym.server EXPERIMENT --database postgresql://USER:PASSWORD@HOST:5432/DB   (docs/postgres.md)

Participants connect with ``python -m igym.play --connect ws://HOST:PORT``. The admin
token for ``GET /status`` and the experimenter's dashboard (``http://HOST:PORT/``) is
``--admin-token`` or a new random one printed at start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from igym.cli import Parser, cli_main, port_number
from igym.errors import UsageError, warnings_as_lines
from igym.loader import load_target
from igym.pg_sink import is_postgres_url
from igym.sinks import describe, open_sink

from .app import IgymServer, serve_forever
from .dashboard.throttle import trusted_networks


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m igym.server`` and ``igym-server``: a mistake is one line and exit 2 (igym.cli)."""
    return cli_main(command, argv)


def command(argv: Sequence[str] | None = None) -> int:
    """The command itself: user errors raise :class:`IgymError` (``main`` prints them)."""
    parser = Parser(prog="python -m igym.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", help="experiment file (.py) or Gymnasium id (one person plays the env's "
                                           "own picture, as with python -m igym.play ID)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port_number, default=8765)
    parser.add_argument("--data", help="SQLite file (default igym-data/<experiment>.sqlite)")
    parser.add_argument("--database", metavar="URL",
                        help="a PostgreSQL database instead of the SQLite file: postgresql://USER:PASSWORD@HOST/DB "
                             "(one database for many server processes; see docs/postgres.md)")
    parser.add_argument("--admin-token",
                        help="token for GET /status and the dashboard (default: a new random one, printed)")
    parser.add_argument("--trust-proxy", action="append", default=[], metavar="ADDRESS",
                        help="a reverse proxy in front of the server (an address or network, e.g. 127.0.0.1; may "
                             "be repeated): its X-Forwarded-For names the client whose wrong dashboard logins "
                             "are throttled (default: none, the header is ignored)")
    parser.add_argument("--collect", action="store_true",
                        help="accept record uploads from solo web pages (hello mode 'upload')")
    parser.add_argument("--park-after-s", type=float, default=60.0, metavar="S",
                        help="a participant away from a page this long is held in the data, not in memory (default 60)")
    parser.add_argument("--page-abandon-s", type=float, default=600.0, metavar="S",
                        help="a participant away from a page this long has left the study (default 600)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="serve the study with N worker processes sharing --port (default 1: one process, "
                             "as always; more need Redis: a private redis-server is started unless --redis is given)")
    parser.add_argument("--redis", metavar="URL",
                        help="coordinate with the other workers of this study through Redis (redis://HOST:PORT/DB): "
                             "several machines serve one study; see docs/cluster.md")
    parser.add_argument("--public-url", metavar="URL",
                        help="where participants reach this worker, e.g. wss://host.example/w1 (default "
                             "ws://HOST:PORT of its own port)")
    parser.add_argument("--worker-id", help=argparse.SUPPRESS)  # set by --workers for its children
    parser.add_argument("--own-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--simulate-delay-ms", metavar="LOW:HIGH",
                        help="lockstep games: hold each relayed input a random LOW..HIGH ms (to try a game "
                             "on a slow network before a study)")
    args = parser.parse_args(argv)
    delay = None
    if args.data and args.database:
        parser.error("--data (a SQLite file) and --database (a PostgreSQL URL): give one")
    if args.data and is_postgres_url(args.data):
        parser.error("--data takes a SQLite file; give a PostgreSQL URL with --database")
    if args.database and not is_postgres_url(args.database):
        parser.error("--database takes a postgresql:// URL; give a SQLite file with --data")
    if args.workers < 1:
        parser.error("--workers takes a number of processes, 1 or more")
    if args.park_after_s <= 0 or args.page_abandon_s <= 0:
        parser.error("--park-after-s and --page-abandon-s take a positive number of seconds")
    if args.simulate_delay_ms:
        try:
            low, high = (float(v) for v in args.simulate_delay_ms.split(":"))
            assert 0 <= low <= high
        except (ValueError, AssertionError):
            parser.error("--simulate-delay-ms takes LOW:HIGH milliseconds, e.g. 20:80")
        delay = (low, high)
    try:
        proxies = trusted_networks(args.trust_proxy)
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.workers > 1:
        from .workers import run_workers, strip_option
        own = strip_option(strip_option(list(sys.argv[1:] if argv is None else argv), "--workers"), "--redis")
        if not args.admin_token:  # one token for every worker's /status and dashboard
            args.admin_token = secrets.token_urlsafe(16)
            own += ["--admin-token", args.admin_token]
            print(f"admin token: {args.admin_token}", flush=True)
        return run_workers(own, args.workers, args.port, args.redis)
    warnings_as_lines()  # an experiment's warnings (a title that shows an internal name): one line each
    experiment = load_target(args.experiment)
    # Before the data is opened: a mistake here records nobody. A lockstep game's env runs on the
    # players' computers, never here.
    experiment.check_seats(lambda game: game.network != "lockstep")
    data = args.database or (Path(args.data) if args.data else Path("igym-data") / f"{experiment.id}.sqlite")
    sink = open_sink(data)  # written by the server's storage thread: the event loop never waits for the disk
    server = IgymServer(experiment, sink, args.admin_token, collect=args.collect, relay_delay_ms=delay,
                        park_after_s=args.park_after_s, page_abandon_s=args.page_abandon_s, trusted_proxies=proxies)

    worker = None
    if args.redis:
        own_port = args.own_port or args.port
        worker = (args.worker_id or f"{socket.gethostname()}-{args.port}"[-64:].replace(":", "-"),
                  args.public_url or f"ws://{args.host}:{own_port}")
    bound: list[int] = []

    def listening(port: int) -> None:  # printed once the socket is bound: clients may connect now
        bound.append(port)
        print(f"igym server: {experiment.id} on ws://{args.host}:{port}"
              + (f" as worker {worker[0]} ({worker[1]}, pid {os.getpid()})" if worker else ""), flush=True)
        print(f"status: http://{args.host}:{port}/status?token={server.admin_token}", flush=True)
        # One worker of many: the dashboard's login lives in that worker, so it is opened at the
        # worker's own port (it shows the whole study, merged from every worker's view).
        print(f"dashboard: http://{args.host}:{args.own_port or port}/ (log in with the admin token)", flush=True)
        print(f"data: {describe(data)}", flush=True)

    try:
        asyncio.run(_serve_until_stopped(server, args.host, args.port, listening, args.redis, worker, args.own_port))
    except KeyboardInterrupt:
        pass
    except OSError as error:
        if bound:  # after the socket was bound: not a mistake in the command line
            raise
        raise UsageError(f"cannot listen on {args.host}:{args.port} ({error.strerror or error}) — give another "
                         f"--port (0: any free one) or a --host of this machine") from None
    return 0


async def _serve_until_stopped(server: IgymServer, host: str, port: int, listening: Any, redis_url: str | None = None,
                               worker: tuple[str, str] | None = None, own_port: int | None = None) -> None:
    """Serve until SIGTERM or SIGINT (a service manager's stop, Ctrl+C), then return normally,
    so the data file is closed with everything written — even when the shell started us with
    SIGINT ignored (a background job), and under ``docker stop`` / systemd, which send SIGTERM.
    With ``redis_url`` this server is one ``worker`` (id, public URL) of a study served by many."""
    if redis_url is not None and worker is not None:
        from .cluster import Cluster
        from .clustering import WorkerCluster
        server.cluster = WorkerCluster(server, Cluster(redis_url), *worker)
    task = asyncio.create_task(serve_forever(server, host, port, on_listening=listening, own_port=own_port))
    loop = asyncio.get_running_loop()
    for stop in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        print("igym server: stopped; data closed", flush=True)


if __name__ == "__main__":
    sys.exit(main())
