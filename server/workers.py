"""``python -m igym.server EXPERIMENT --workers N``: N worker processes serving one study.

The parent starts the workers and watches them; it serves nobody itself. Every worker
listens on the study's port (``SO_REUSEPORT``: the kernel spreads new connections over the
live workers) and on a port of its own (``port + 1 + i``), where ``move`` sends the
participants it holds. They share the study's database (``--data`` or ``--database``) and a
Redis (``--redis URL``; without it the parent starts a private ``redis-server`` on a unix
socket for the workers of this one machine — several machines need a shared Redis).

Behind a reverse proxy each worker has a public address of its own (where ``move`` sends
participants): ``--public-url`` given to the parent is a template, ``{n}`` standing for the
worker's number — ``wss://study.example.org/w{n}`` gives worker 1 ``…/w1``, worker 2 ``…/w2``.
A worker's id is then the last part of its URL's path (``w1``, or ``b1`` for
``…/b{n}``), so the workers of several machines, each with its own paths, never share an id.

A worker that dies (killed, crashed) is started again after a short pause; meanwhile its
participants reconnect to the study's port, reach a live worker, and resume at their open
scene (see :mod:`.clustering`). SIGTERM/SIGINT stop every worker (each closes its data with
everything written) and then the parent.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from igym.errors import IgymError
from igym.pg_sink import redact  # any URL's password, hidden

RESTART_PAUSE_S = 1.0
REDIS_START_S = 10.0
PUBLIC_URL = "--public-url"
PLACEHOLDER = "{n}"  # in --public-url: the worker's number (1..N)
WORKER_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # what a worker id may be (as server/cluster.py checks)


class WorkerSetupError(IgymError):
    """The workers cannot be started (no Redis to coordinate them)."""


def worker_command(argv: list[str], index: int, port: int, redis_url: str) -> list[str]:
    """The command line of worker ``index``: the parent's own options (``{n}`` of ``--public-url``
    replaced by the worker's number), plus who it is."""
    number = str(index + 1)
    own = [item.replace(PLACEHOLDER, number) if at else item for item, at in zip(argv, _public_url_positions(argv))]
    template = public_url(argv)
    worker_id = f"w{number}"
    if template is not None:
        last = urlsplit(template.replace(PLACEHOLDER, number)).path.rstrip("/").rpartition("/")[2]
        worker_id = last if WORKER_ID.match(last) else worker_id
    return [sys.executable, "-m", "igym.server", *own, "--redis", redis_url, "--worker-id", worker_id,
            "--own-port", str(port + 1 + index)]


def public_url(argv: list[str]) -> str | None:
    """The ``--public-url`` value among ``argv`` (the last one, as argparse takes it), or None."""
    found = None
    for item, at in zip(argv, _public_url_positions(argv)):
        if at:
            found = item.removeprefix(PUBLIC_URL + "=")
    return found


def check_public_url(argv: list[str], workers: int) -> None:
    """Several workers cannot share one public URL: each must say where *it* is reached."""
    template = public_url(argv)
    if template is not None and workers > 1 and PLACEHOLDER not in template:
        raise WorkerSetupError(f"--public-url {template}: with --workers {workers} every worker needs its own "
                               f"address — put {PLACEHOLDER} where the worker's number goes, e.g. "
                               f"wss://study.example.org/w{PLACEHOLDER}")


def _public_url_positions(argv: list[str]) -> list[bool]:
    """For each item of ``argv``: is it the value of ``--public-url`` (``--public-url=V`` included)?"""
    marks = []
    after_flag = False
    for item in argv:
        marks.append(after_flag or item.startswith(PUBLIC_URL + "="))
        after_flag = item == PUBLIC_URL
    return marks


def private_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server for this machine's workers only: a unix socket in ``folder``, nothing on disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise WorkerSetupError("--workers needs Redis to coordinate the workers: install redis-server "
                               "(apt-get install redis-server) or give --redis redis://HOST:PORT/DB")
    sock = folder / "redis.sock"
    process = subprocess.Popen([binary, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
                                "--save", "", "--appendonly", "no", "--dir", str(folder)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + REDIS_START_S
    while not sock.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise WorkerSetupError("the private redis-server for --workers did not start: give --redis URL")
        time.sleep(0.05)
    return process, f"unix://{sock}"


def run_workers(argv: list[str], workers: int, port: int, redis_url: str | None) -> int:
    """Start ``workers`` workers with the parent's options ``argv``; restart any that dies; stop
    all on SIGTERM/SIGINT. Returns the exit status."""
    check_public_url(argv, workers)
    folder = Path(tempfile.mkdtemp(prefix="igym-workers-"))
    redis = None
    if redis_url is None:
        redis, redis_url = private_redis(folder)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    processes = {i: subprocess.Popen(worker_command(argv, i, port, redis_url)) for i in range(workers)}
    print(f"igym server: {workers} workers on port {port} (each also on {port + 1}..{port + workers}); "
          f"coordinated by {redact(redis_url)}", flush=True)
    try:
        while not stopping:
            time.sleep(0.2)
            for index, process in list(processes.items()):
                code = process.poll()
                if code is not None and not stopping:
                    print(f"igym server: worker w{index + 1} ended ({code}); starting it again", flush=True)
                    time.sleep(RESTART_PAUSE_S)
                    processes[index] = subprocess.Popen(worker_command(argv, index, port, redis_url))
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
    print("igym server: workers stopped; data closed", flush=True)
    return 0


def strip_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE`` (the parent's --workers, --redis)."""
    out: list[str] = []
    skip = False
    for item in argv:
        if skip:
            skip = False
            continue
        if item == name:
            skip = True
            continue
        if item.startswith(name + "="):
            continue
        out.append(item)
    return out

