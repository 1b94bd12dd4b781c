"""Shared test set-up: headless SDL, the repo root importable (for examples.*)."""

import os
import sys
from pathlib import Path

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


import pytest  # noqa: E402


@pytest.fixture
def summary(request):
    """``summary(text)`` prints ``text`` after the run's results (a tally worth reading even when the test passes)."""
    lines = request.config.__dict__.setdefault("_igym_summaries", [])
    return lines.append


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for text in getattr(config, "_igym_summaries", []):
        terminalreporter.write_line(text)
