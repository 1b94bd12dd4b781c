"""kill -9 in the middle of a real-time run, for the crash-safety tests."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from collections.abc import Callable


def count(path: Path, sql: str) -> int:
    """``sql``'s single number from a data file another process is writing (0 until it exists)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        return db.execute(sql).fetchone()[0]
    except sqlite3.Error:
        return 0


def kill_while_playing(process: subprocess.Popen, played: Callable[[], int], seconds: float,
                       wait_s: float = 90.0) -> float:
    """Wait until ``played()`` is above 0 (the first commit), let it run ``seconds`` more, then
    SIGKILL ``process``. Returns how long it ran between first sight and the kill."""
    try:
        deadline = time.monotonic() + wait_s
        while played() == 0:
            assert time.monotonic() < deadline and process.poll() is None, "the run never committed a step"
            time.sleep(0.05)
        first_seen = time.monotonic()
        time.sleep(seconds)
        process.send_signal(signal.SIGKILL)
        ran = time.monotonic() - first_seen
        process.wait(10)
        return ran
    finally:
        if process.poll() is None:
            process.kill()
