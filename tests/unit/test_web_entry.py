"""The web page's program (igym.renderers.web_entry) runs natively, headless, on a shipped example.

Under pygbag the staged main.py calls this module with the staged page_config; here it runs
without any build, through its own command line, on SDL's dummy display — the same program
the browser runs: the page's data notice, the game, the download page (a real SQLite file's path).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
EXAMPLE = "examples/mountain_car/shapes.py"


def web_entry(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "igym.renderers.web_entry", *args], cwd=cwd, capture_output=True,
                          text=True, env=ENV, timeout=300)


def test_the_page_program_plays_a_shipped_example_headless(tmp_path):
    data = tmp_path / "page.sqlite"
    done = web_entry("--experiment", EXAMPLE, "--headless", "--autopilot", "--max-steps", "40", "--data", str(data),
                     "--participant", "web-1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "participant web-1: completed (40 steps)" in done.stdout
    assert f"data: {data}" in done.stdout  # natively the download is the file's path
    assert "igym web: completed" in done.stdout
    with sqlite3.connect(data) as db:
        assert db.execute("select participant_id, status from participants").fetchall() == [("web-1", "completed")]
        assert db.execute("select count(*) from steps").fetchone()[0] >= 40
        visits = [name for (name,) in db.execute("select scene from visits order by rowid")]
        episodes = db.execute("select scene, steps from episodes").fetchall()
        meta = db.execute("select meta from participants").fetchone()[0]
    assert visits == ["mountain_car_shapes"] and episodes == [("mountain_car_shapes", 40)]
    assert f'"experiment_file":"{EXAMPLE}"' in meta


def test_without_an_experiment_or_a_staged_config_it_says_what_to_give(tmp_path):
    done = web_entry("--headless", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "page_config" in lines[0] and "--experiment FILE" in lines[0], done.stderr
