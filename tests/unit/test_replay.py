"""``python -m igym.data replay``: re-simulating recorded Slime Volleyball episodes.

The data file is recorded by driving a Session of the example's Game (see
tests/unit/test_export.py's ``record_study``), with the env's state fingerprint after every step.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3

import pytest

from igym.data import main
from igym.replay import Replayer, find_episode, load_game, recorded_steps, verify
from tests.unit.test_export import HUMAN_AI, ROOT, cli, record_study

TRUST = ("--trust", str(ROOT))  # the recorded experiment files are the repo's examples


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return record_study(tmp_path_factory.mktemp("replay") / "study.sqlite", episodes=2, max_steps=90, seeds=11)


def episode_ids(path):
    db = sqlite3.connect(path)
    return [row[0] for row in db.execute("SELECT episode_id FROM episodes ORDER BY started_ns")]


def copy(study, tmp_path, name="copy.sqlite"):
    target = tmp_path / name
    shutil.copy(study, target)
    return target


def test_verify_passes_on_a_recorded_episode(study, capsys):
    for episode_id in episode_ids(study):
        assert main(["replay", str(study), "--episode", episode_id[:8], "--verify", *TRUST]) == 0
        assert capsys.readouterr().out.startswith("verified 90 steps")


def test_verify_names_the_first_step_that_differs_after_tampering(study, tmp_path):
    path = copy(study, tmp_path)
    episode_id = episode_ids(path)[1]
    db = sqlite3.connect(path)
    (action,) = db.execute("SELECT action FROM steps WHERE episode_id=? AND step=10 AND agent='agent_left'",
                           (episode_id,)).fetchone()
    changed = 5 if json.loads(action) in (0, 1, 2, 3) else 1  # another direction: the slime moves differently
    db.execute("UPDATE steps SET action=? WHERE episode_id=? AND step=10 AND agent='agent_left'",
               (json.dumps(changed), episode_id))
    db.commit()
    db.close()
    result = cli("replay", str(path), "--episode", episode_id[:8], "--verify", *TRUST)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("step 10: fingerprint differs — expected ")
    (expected,) = sqlite3.connect(path).execute(
        "SELECT fingerprint FROM steps WHERE episode_id=? AND step=10 LIMIT 1", (episode_id,)).fetchone()
    assert expected in result.stdout


def test_episode_without_fingerprints_cannot_be_verified(study, tmp_path):
    path = copy(study, tmp_path)
    db = sqlite3.connect(path)
    db.execute("UPDATE steps SET fingerprint=NULL")
    db.commit()
    db.close()
    result = cli("replay", str(path), "--episode", episode_ids(path)[0][:8], "--verify", *TRUST)
    assert result.returncode == 2
    assert "no recorded state fingerprints" in result.stderr and result.stderr.count("\n") == 1


def test_unknown_episode_is_one_line_pointing_at_summary(study):
    result = cli("replay", str(study), "--episode", "zzzzzzzz")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "summary" in result.stderr


def test_full_id_and_prefix_find_the_same_episode(study):
    db = sqlite3.connect(study)
    episode_id = episode_ids(study)[0]
    assert find_episode(db, episode_id).episode_id == episode_id
    assert find_episode(db, episode_id[:8].upper()).episode_id == episode_id


def test_replay_reproduces_the_recorded_rewards(study):
    db = sqlite3.connect(study)
    episode = find_episode(db, episode_ids(study)[0])
    assert episode.experiment_file == str(HUMAN_AI)
    steps = recorded_steps(db, episode.episode_id)
    replayer = Replayer(load_game(episode.experiment_file, episode.scene), episode, steps)
    replayer.reset()
    replayed = list(replayer.run())
    assert len(replayed) == len(steps) == 90
    for done in replayed:
        assert {str(a): r for a, r in done.result.rewards.items()} == done.recorded.rewards
        assert done.fingerprint == done.recorded.fingerprint
    ok, message = verify(Replayer(load_game(episode.experiment_file, episode.scene), episode, steps))
    assert ok and message.startswith("verified 90 steps")


def test_out_dir_writes_a_png_per_step_or_every_kth(study, tmp_path, capsys):
    import pygame

    episode = episode_ids(study)[0][:8]
    assert main(["replay", str(study), "--episode", episode, "--out", str(tmp_path / "all"), *TRUST]) == 0
    images = sorted((tmp_path / "all").glob("*.png"))
    assert len(images) == 90 and images[0].name == "step_0001.png"
    some = str(tmp_path / "some")
    assert main(["replay", str(study), "--episode", episode, "--out", some, "--every", "20", *TRUST]) == 0
    assert len(list((tmp_path / "some").glob("*.png"))) == math.ceil(90 / 20)
    assert "wrote 5 images" in capsys.readouterr().out
    image = pygame.image.load(str(images[-1]))
    width, height = image.get_size()
    from igym.renderers.draw import hud_strip_for
    assert (width, height) == (1200, 500 + hud_strip_for(500))  # the canvas and the HUD strip above it
    colours = {tuple(image.get_at((x, y))) for x in range(0, width, 10) for y in range(0, height, 10)}
    assert len(colours) >= 5  # court, ground, net, slimes, ball: not a blank picture


def test_experiment_override_and_missing_experiment(study, tmp_path):
    path = copy(study, tmp_path)
    db = sqlite3.connect(path)
    db.execute("UPDATE participants SET meta='{}'")
    db.commit()
    db.close()
    episode = episode_ids(path)[0][:8]
    result = cli("replay", str(path), "--episode", episode, "--verify")
    assert result.returncode == 2 and "--experiment" in result.stderr and result.stderr.count("\n") == 1
    result = cli("replay", str(path), "--episode", episode, "--verify", "--experiment", str(HUMAN_AI))
    assert result.returncode == 0 and "verified 90 steps" in result.stdout


def test_headless_window_replay(study, capsys):
    assert main(["replay", str(study), "--episode", episode_ids(study)[0][:8], "--headless", *TRUST]) == 0
    assert "replayed 90 of 90 steps" in capsys.readouterr().out


def test_gif_without_pillow_is_a_clear_error(study, tmp_path, capsys):
    try:
        import PIL  # noqa: F401
    except ImportError:
        assert main(["replay", str(study), "--episode", episode_ids(study)[0][:8], *TRUST,
                     "--out", str(tmp_path / "x.gif")]) == 2
        assert "Pillow" in capsys.readouterr().err
    else:
        assert main(["replay", str(study), "--episode", episode_ids(study)[0][:8], *TRUST,
                     "--out", str(tmp_path / "x.gif"), "--every", "10"]) == 0
        from PIL import Image
        assert Image.open(tmp_path / "x.gif").n_frames == 9

