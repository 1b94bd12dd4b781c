"""``--workers N --public-url TEMPLATE``: each worker is told its own public address and id.

Behind a reverse proxy every worker is reached at a path of its own (``/w1``, ``/w2``, …),
where ``move`` sends the participants it holds; the parent's ``--public-url`` carries ``{n}``
for the worker's number, and the worker's id is the last part of that path, so the workers
of several machines (``/a{n}`` on one, ``/b{n}`` on another) never share an id.
"""

import sys
from pathlib import Path

import pytest

import igym.server

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "server") not in igym.server.__path__:  # this checkout's server/, from any worktree
    igym.server.__path__.insert(0, str(ROOT / "server"))

from igym.server.workers import WorkerSetupError, check_public_url, public_url, worker_command  # noqa: E402


def _who(command: list[str]) -> tuple[str | None, str, str]:
    """(public URL, worker id, own port) of a worker's command line."""
    url = public_url(command)
    return url, command[command.index("--worker-id") + 1], command[command.index("--own-port") + 1]


def test_each_worker_gets_its_number_in_the_url_and_the_last_path_part_as_its_id():
    argv = ["study.py", "--port", "8765", "--public-url", "wss://study.example.org/w{n}", "--data", "s.sqlite"]
    commands = [worker_command(argv, i, 8765, "unix:///tmp/r.sock") for i in range(3)]
    assert [_who(c) for c in commands] == [("wss://study.example.org/w1", "w1", "8766"),
                                          ("wss://study.example.org/w2", "w2", "8767"),
                                          ("wss://study.example.org/w3", "w3", "8768")]
    assert commands[1][:3] == [sys.executable, "-m", "igym.server"]
    assert commands[1][3:9] == ["study.py", "--port", "8765", "--public-url", "wss://study.example.org/w2",
                                "--data"]


def test_another_machine_with_its_own_paths_has_its_own_ids():
    argv = ["study.py", "--public-url=wss://study.example.org/b{n}/"]
    assert _who(worker_command(argv, 0, 9000, "redis://10.0.0.5:6379/0")) == (
        "wss://study.example.org/b1/", "b1", "9001")


def test_without_a_public_url_or_a_usable_path_the_id_is_w_and_the_number():
    assert _who(worker_command(["study.py"], 1, 8765, "r")) == (None, "w2", "8767")
    assert _who(worker_command(["study.py", "--public-url", "wss://w{n}.example.org"], 0, 8765, "r")) == (
        "wss://w1.example.org", "w1", "8766")


def test_one_url_for_several_workers_is_refused_in_one_line():
    with pytest.raises(WorkerSetupError, match=r"\{n\}"):
        check_public_url(["study.py", "--public-url", "wss://study.example.org/ws"], 2)
    check_public_url(["study.py", "--public-url", "wss://study.example.org/w{n}"], 2)
    check_public_url(["study.py"], 4)
