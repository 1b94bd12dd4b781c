"""Shared test set-up: headless SDL, the repo root importable (for examples.*), and the layers.

The tests live in three layers, each marked by its folder, so ``pytest -m unit`` is the
inner loop (under a minute):

- ``tests/unit``: the core and renderers with real pygame surfaces, SQLite files and ONNX
  models — no sockets, no browser;
- ``tests/integration``: real servers on 127.0.0.1, subprocesses of the commands, services;
- ``tests/browser``: headless Chromium (installed by ``tests/install_services.sh``, which the
  README's test command runs — tests never install anything).

Shared helpers (``serving.py``, ``toy_envs.py``, ``experiments/``, ``web/``) stay here.
"""

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

# Real services started by the tests that ask for them: PostgreSQL (pg_server, pg_url) and
# Redis (redis_server), each on a free loopback port in a temporary folder.
pytest_plugins = ["tests.pg_service", "tests.redis_service"]


@pytest.fixture
def summary(request):
    """``summary(text)`` prints ``text`` after the run's results (a tally worth reading even when the test passes)."""
    lines = request.config.__dict__.setdefault("_igym_summaries", [])
    return lines.append


LAYERS = ("unit", "integration", "browser")


def pytest_collection_modifyitems(config, items):
    """Every test is marked with its layer (its folder under tests/)."""
    for item in items:
        layer = Path(str(item.fspath)).parent.name
        if layer in LAYERS:
            item.add_marker(getattr(pytest.mark, layer))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for text in getattr(config, "_igym_summaries", []):
        terminalreporter.write_line(text)
