"""``python -m igym.server EXPERIMENT``: host an experiment for participants on the network.

    python -m igym.server examples/slime_volleyball/human_human.py --port 8765 --data hh.sqlite

Participants connect with ``python -m igym.play --connect ws://HOST:PORT``. The admin
token for ``GET /status`` and the experimenter's dashboard (``http://HOST:PORT/``) is
``--admin-token`` or a new random one printed at start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from igym.errors import IgymError, warnings_as_lines
from igym.loader import load_experiment
from igym.sqlite_sink import SqliteSink

from .app import IgymServer, serve_forever


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m igym.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", help="experiment file (.py)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--data", help="SQLite file (default igym-data/<experiment>.sqlite)")
    parser.add_argument("--admin-token",
                        help="token for GET /status and the dashboard (default: a new random one, printed)")
    parser.add_argument("--collect", action="store_true",
                        help="accept record uploads from solo web pages (hello mode 'upload')")
    parser.add_argument("--park-after-s", type=float, default=60.0, metavar="S",
                        help="a participant away from a page this long is held in the data, not in memory (default 60)")
    parser.add_argument("--page-abandon-s", type=float, default=600.0, metavar="S",
                        help="a participant away from a page this long has left the study (default 600)")
    parser.add_argument("--simulate-delay-ms", metavar="LOW:HIGH",
                        help="lockstep games: hold each relayed input a random LOW..HIGH ms (to try a game "
                             "on a slow network before a study)")
    args = parser.parse_args(argv)
    delay = None
    if args.park_after_s <= 0 or args.page_abandon_s <= 0:
        parser.error("--park-after-s and --page-abandon-s take a positive number of seconds")
    if args.simulate_delay_ms:
        try:
            low, high = (float(v) for v in args.simulate_delay_ms.split(":"))
            assert 0 <= low <= high
        except (ValueError, AssertionError):
            parser.error("--simulate-delay-ms takes LOW:HIGH milliseconds, e.g. 20:80")
        delay = (low, high)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    warnings_as_lines()  # an experiment's warnings (a title that shows an internal name): one line each
    try:
        experiment = load_experiment(args.experiment)
    except IgymError as error:
        print(f"igym: {error}", file=sys.stderr)
        return 2
    data = Path(args.data) if args.data else Path("igym-data") / f"{experiment.id}.sqlite"
    try:
        sink = SqliteSink(data)  # written by the server's storage thread: the event loop never waits for the disk
    except IgymError as error:
        print(f"igym: {error}", file=sys.stderr)
        return 2
    server = IgymServer(experiment, sink, args.admin_token, collect=args.collect, relay_delay_ms=delay,
                        park_after_s=args.park_after_s, page_abandon_s=args.page_abandon_s)

    def listening(port: int) -> None:  # printed once the socket is bound: clients may connect now
        print(f"igym server: {experiment.id} on ws://{args.host}:{port}", flush=True)
        print(f"status: http://{args.host}:{port}/status?token={server.admin_token}", flush=True)
        print(f"dashboard: http://{args.host}:{port}/ (log in with the admin token)", flush=True)
        print(f"data: {data.resolve()}", flush=True)

    try:
        asyncio.run(_serve_until_stopped(server, args.host, args.port, listening))
    except KeyboardInterrupt:
        pass
    return 0


async def _serve_until_stopped(server: IgymServer, host: str, port: int, listening: Any) -> None:
    """Serve until SIGTERM or SIGINT (a service manager's stop, Ctrl+C), then return normally,
    so the data file is closed with everything written — even when the shell started us with
    SIGINT ignored (a background job), and under ``docker stop`` / systemd, which send SIGTERM."""
    task = asyncio.create_task(serve_forever(server, host, port, on_listening=listening))
    loop = asyncio.get_running_loop()
    for stop in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        print("igym server: stopped; data closed", flush=True)


if __name__ == "__main__":
    sys.exit(main())
