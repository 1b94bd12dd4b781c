"""A real ``python -m igym.server EXPERIMENT --workers N`` for tests, and reading its data.

Started on a run of free ports (the study's, then each worker's own), with the supervisor's
output in ``server.log``; stopped with SIGTERM, as an operator would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.redis_service import free_port_run

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "tests" / "experiments" / "cluster_study.py"
PAIRS = ROOT / "tests" / "experiments" / "cluster_pairs.py"
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
TOKEN = "cluster-admin"


class StudyCluster:
    """``python -m igym.server EXPERIMENT --workers N`` on free ports, stopped (SIGTERM) at the end.

    ``steps``: the games' length (``CLUSTER_STEPS`` of the test experiments); ``env``: more
    settings for the experiment file (``CLUSTER_NET=lockstep``)."""

    def __init__(self, tmp_path: Path, workers: int, *extra: str, experiment: Path = STUDY, steps: int = 60,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port_run(workers + 1)
        self.experiment = experiment
        self.env = {**ENV, "CLUSTER_STEPS": str(steps), **(env or {})}
        self.log = tmp_path / "server.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "igym.server", str(experiment), "--workers", str(workers), "--port", str(self.port),
             "--admin-token", TOKEN, *extra], cwd=ROOT, env=self.env, stdout=open(self.log, "w"),
            stderr=subprocess.STDOUT)
        self.url = f"ws://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while len(self.workers()) < workers:
            assert self.process.poll() is None and time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.2)

    def own_url(self, number: int) -> str:
        """Worker ``number``'s own address (1-based: w1 listens on the study's port + 1)."""
        return f"ws://127.0.0.1:{self.port + number}"

    def workers(self) -> dict[str, int]:
        """Worker id → pid, of the workers that said they listen (restarts included: the last)."""
        return {m[0]: int(m[1]) for m in re.findall(r"as worker (\S+) \(\S+, pid (\d+)\)", self.log.read_text())}

    def starts(self, worker: str) -> int:
        """How many times ``worker`` came up (said it listens)."""
        return len(re.findall(rf"as worker {re.escape(worker)} \(", self.log.read_text()))

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status?token={TOKEN}", timeout=10) as reply:
            return json.loads(reply.read())

    def client(self, pid: str, log: Path) -> subprocess.Popen[bytes]:
        """A headless desktop client (``python -m igym.play --connect``) playing with its autopilot."""
        return subprocess.Popen([sys.executable, "-m", "igym.play", "--connect", self.url, "--headless", "--autopilot",
                                 "--participant", pid], cwd=ROOT, env=self.env, stdout=open(log, "w"),
                                stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def rows(query: str, data: Path | None = None, url: str | None = None) -> list[tuple[Any, ...]]:
    """``query``'s rows from the study's SQLite file (``data``) or PostgreSQL database (``url``)."""
    if url is not None:
        import psycopg
        with psycopg.connect(url) as db:
            return [tuple(r) for r in db.execute(query).fetchall()]
    db = sqlite3.connect(data)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()
