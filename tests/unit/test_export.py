"""``python -m igym.data export`` and ``summary`` on real recordings of the Slime Volleyball example.

Two data files are made once per module: one by a real headless run of ``python -m igym.play``
(a subprocess, exactly as a researcher would), one by driving a Session of the example's
Game directly (two short episodes with ``info_keys``, state fingerprints, a participant
meta naming the experiment file, and one questionnaire visit written through the sink).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from examples.slime_volleyball.slime import SlimeVolleyEnv
from igym.autopilot import Autopilot
from igym.controls import all_keys
from igym.sqlite_sink import SqliteSink
from igym.data import main
from igym.loader import load_experiment
from igym.records import StepRecord, VisitRecord
from igym.session import Session

ROOT = Path(__file__).resolve().parents[2]
HUMAN_AI = ROOT / "examples" / "slime_volleyball" / "human_ai.py"
SCENE = "slime_vs_ai"
AGENTS = ("agent_left", "agent_right")
# When the survey's questions were answered (seconds since its page opened); "tags" was never timed.
TIMES = {"fun": {"first_s": 2.25, "last_s": 4.5, "changes": 2},
         "comment": {"first_s": 6.0, "last_s": 9.75, "changes": 7}}


class FingerprintedSlime(SlimeVolleyEnv):
    """The example's env, noting its state fingerprint after every step (for sessions that do not)."""

    def __init__(self) -> None:
        super().__init__()
        self.fingerprints: list[str] = []

    def step(self, actions):
        result = super().step(actions)
        self.fingerprints.append(self.state_fingerprint())
        return result


def slime_game(**changes):
    experiment = load_experiment(HUMAN_AI)
    finder = getattr(experiment, "find_game", None)
    game = finder(SCENE) if finder is not None else next(s for s in experiment.scenes if s.name == SCENE)
    return experiment, dataclasses.replace(game, **changes)


def record_study(path: Path, *, participant: str = "P1", episodes: int = 2, max_steps: int = 120,
                 seeds: int = 7) -> Path:
    """Drive a Session of the example's Game (autopilot on the human seat) into an SQLite file."""
    experiment, game = slime_game(env=FingerprintedSlime, episodes=episodes, max_steps=max_steps, seeds=seeds,
                                  info_keys=["lives"])
    with SqliteSink(path) as sink:
        sink.add_participant(participant, experiment.id, {"experiment_file": str(HUMAN_AI)})
        session = Session(game, participant, scene=SCENE)
        env = session.env.env
        autopilot = Autopilot(all_keys(seat.keymap for seat in session.inputs.values()), seed=3)
        now, used = 0.0, 0
        while not session.finished:
            autopilot.play(session, now)
            session.tick(now)
            records = []
            for record in session.take_records():
                if type(record) is StepRecord:
                    fingerprint = env.fingerprints[used]
                    used += 1
                    if record.fingerprint is None:
                        record = record._replace(fingerprint=fingerprint)
                records.append(record)
            sink.write(records)
            now += 1 / 60
            session.note_frame(now)  # the frame is shown: frame intervals become timing data
        started = time.time()
        sink.write([VisitRecord("V-survey", participant, 1, "survey", "survey", started, started + 12.5, "done",
                                {"fun": 5, "comment": "nice", "tags": ["a", "b"]}, None, TIMES)])
        sink.commit()
    return path


def headless_run(path: Path, steps: int = 600) -> Path:
    subprocess.run([sys.executable, "-m", "igym.play", str(HUMAN_AI), "--headless", "--autopilot", "--max-steps",
                    str(steps), "--data", str(path)], check=True, cwd=ROOT, capture_output=True, timeout=300,
                   env={**os.environ, "SDL_VIDEODRIVER": "dummy"})
    return path


@pytest.fixture(scope="module")
def played(tmp_path_factory) -> Path:
    return headless_run(tmp_path_factory.mktemp("played") / "study.sqlite")


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    return record_study(tmp_path_factory.mktemp("study") / "study.sqlite")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "igym.data", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "SDL_VIDEODRIVER": "dummy"})


def test_csv_export_of_a_headless_run_has_one_row_per_agent_per_step(played, tmp_path):
    out = tmp_path / "csv"
    result = cli("export", str(played), "--to", "csv", str(out))
    assert result.returncode == 0, result.stderr
    db = sqlite3.connect(played)
    total_steps = db.execute("SELECT sum(steps) FROM episodes").fetchone()[0]
    assert total_steps == 600
    steps = read_csv(out / "steps.csv")
    assert len(steps) == len(AGENTS) * total_steps
    assert f"steps.csv ({len(steps)} rows)" in result.stdout
    episode = db.execute("SELECT episode_id, participant_id, scene, episode_index, seed FROM episodes").fetchone()
    first = steps[0]
    assert (first["episode_id"], first["participant_id"], first["scene"], first["episode_index"],
            first["seed"]) == tuple(str(v) for v in episode)
    assert first["step"] == "1" and {r["agent"] for r in steps} == set(AGENTS)
    assert {r["source"] for r in steps if r["agent"] == "agent_right"} == {"policy"}
    for table in ("episodes", "participants", "events"):
        rows = read_csv(out / f"{table}.csv")
        assert len(rows) == db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        assert f"{table}.csv ({len(rows)} rows)" in result.stdout
    episodes = read_csv(out / "episodes.csv")
    returns = json.loads(db.execute("SELECT returns FROM episodes").fetchone()[0])
    assert float(episodes[0]["return_agent_left"]) == returns["agent_left"]
    assert episodes[0]["timing_frames"]


def test_parquet_export_matches_the_sqlite_file(study, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    assert main(["export", str(study), "--to", "parquet", str(tmp_path)]) == 0
    db = sqlite3.connect(study)
    steps = pq.read_table(tmp_path / "steps.parquet")
    total = db.execute("SELECT sum(steps) FROM episodes").fetchone()[0]
    assert steps.num_rows == len(AGENTS) * total == db.execute("SELECT count(*) FROM steps").fetchone()[0]
    columns = steps.column_names
    for name in ("participant_id", "scene", "visit_id", "episode_index", "seed", "action", "fingerprint"):
        assert name in columns
    assert str(steps.schema.field("action").type) == "int64"
    recorded = [json.loads(a) for (a,) in db.execute(
        "SELECT action FROM steps s JOIN episodes e USING (episode_id) ORDER BY e.started_ns, s.step, s.agent")]
    assert steps.column("action").to_pylist() == recorded
    assert pq.read_table(tmp_path / "episodes.parquet").num_rows == 2
    answers = pq.read_table(tmp_path / "answers.parquet").to_pylist()
    assert {a["question"]: a["value"] for a in answers} == {"fun": "5", "comment": "nice", "tags": '["a","b"]'}
    assert {a["question"]: a["value_num"] for a in answers}["fun"] == 5.0
    assert {a["question"]: (a["first_s"], a["last_s"], a["changes"]) for a in answers} == {
        "fun": (2.25, 4.5, 2), "comment": (6.0, 9.75, 7), "tags": (None, None, 0)}


def test_extra_is_spread_into_one_column_per_key(study, tmp_path):
    assert main(["export", str(study), "--to", "csv", str(tmp_path)]) == 0
    rows = read_csv(tmp_path / "steps.csv")
    assert "extra" not in rows[0]
    assert {"lives.agent_left", "lives.agent_right"} <= set(rows[0])
    db = sqlite3.connect(study)
    for row in rows[::37]:
        (extra,) = db.execute("SELECT extra FROM steps WHERE episode_id=? AND step=? AND agent=?",
                              (row["episode_id"], int(row["step"]), row["agent"])).fetchone()
        extra = json.loads(extra)
        assert row["lives.agent_left"] == str(extra["lives.agent_left"])
        assert row["lives.agent_right"] == str(extra["lives.agent_right"])
    pq = pytest.importorskip("pyarrow.parquet")
    assert main(["export", str(study), "--to", "parquet", str(tmp_path / "pq")]) == 0
    table = pq.read_table(tmp_path / "pq" / "steps.parquet")
    assert set(table.column("lives.agent_left").to_pylist()) <= {0, 1, 2, 3, 4, 5}


def test_answers_and_visits_are_decoded(study, tmp_path):
    assert main(["export", str(study), "--to", "csv", str(tmp_path)]) == 0
    answers = {a["question"]: a for a in read_csv(tmp_path / "answers.csv")}
    assert answers["fun"]["value"] == "5" and answers["fun"]["value_num"] == "5.0"
    assert answers["comment"]["value"] == "nice" and answers["comment"]["value_num"] == ""
    assert json.loads(answers["tags"]["value"]) == ["a", "b"]
    # each answer's times: the page timed "fun" and "comment"; "tags" it did not (never answered there)
    assert (answers["fun"]["first_s"], answers["fun"]["last_s"], answers["fun"]["changes"]) == ("2.25", "4.5", "2")
    assert (answers["comment"]["first_s"], answers["comment"]["changes"]) == ("6.0", "7")
    assert (answers["tags"]["first_s"], answers["tags"]["last_s"], answers["tags"]["changes"]) == ("", "", "0")
    visits = read_csv(tmp_path / "visits.csv")
    assert [(v["visit_id"], v["scene"], float(v["duration_s"])) for v in visits] == [("V-survey", "survey", 12.5)]


def test_participant_filter(study, tmp_path, capsys):
    assert main(["export", str(study), "--to", "csv", str(tmp_path), "--participant", "P1"]) == 0
    assert len(read_csv(tmp_path / "participants.csv")) == 1
    capsys.readouterr()
    assert main(["export", str(study), "--to", "csv", str(tmp_path / "x"), "--participant", "nobody"]) == 2
    err = capsys.readouterr().err
    assert "no participant 'nobody'" in err and err.count("\n") == 1


def test_minari_export_loads_with_minari_and_holds_the_recorded_actions(study, tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    pytest.importorskip("PIL", reason="minari 0.5.4's storage imports Pillow (not declared by minari)")
    out = tmp_path / "minari"
    assert main(["export", str(study), "--to", "minari", str(out), "--agent", "agent_left",
                 "--dataset-id", "igym/slime-left-v0", "--trust", str(ROOT)]) == 0
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(out))
    dataset = minari.load_dataset("igym/slime-left-v0")
    db = sqlite3.connect(study)
    episodes = db.execute("SELECT episode_id, steps, seed FROM episodes ORDER BY started_ns").fetchall()
    assert dataset.total_episodes == len(episodes) == 2
    assert dataset.total_steps == sum(e[1] for e in episodes)
    assert str(dataset.action_space) == "Discrete(6)" and dataset.observation_space.shape == (12,)
    for (episode_id, steps, seed), data in zip(episodes, dataset.iterate_episodes()):
        recorded = [json.loads(a) for (a,) in db.execute(
            "SELECT action FROM steps WHERE episode_id=? AND agent='agent_left' ORDER BY step", (episode_id,))]
        assert [int(a) for a in data.actions] == recorded
        assert data.observations.shape == (steps + 1, 12)
        first, _ = SlimeVolleyEnv().reset(seed=seed)
        assert list(data.observations[0]) == pytest.approx(first["agent_left"], abs=1e-6)
        rewards = [r for (r,) in db.execute("SELECT reward FROM steps WHERE episode_id=? AND agent='agent_left' "
                                            "ORDER BY step", (episode_id,))]
        assert list(data.rewards) == rewards
        assert bool(data.truncations[-1]) or bool(data.terminations[-1])
    mapping = json.loads((out / "igym" / "slime-left-v0" / "igym_episodes.json").read_text())
    assert [m["episode_id"] for m in mapping] == [e[0] for e in episodes]


def test_minari_export_errors_are_one_line(study, tmp_path, capsys):
    assert main(["export", str(study), "--to", "minari", str(tmp_path)]) == 2
    assert "--agent" in capsys.readouterr().err
    assert main(["export", str(study), "--to", "minari", str(tmp_path), "--agent", "nobody"]) == 2
    err = capsys.readouterr().err
    assert "no recorded steps of agent 'nobody'" in err and err.count("\n") == 1


def test_summary_text(study):
    result = cli("summary", str(study))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "participants: 1" in text
    assert f"{SCENE}: 2 episodes, 240 steps" in text
    assert "mean return: agent_left" in text
    assert "timing:" in text and "frame interval mean" in text
    assert "survey.fun: n 1, mean 5.000" in text
    assert "answered at 2.25 s (median), last changed at 4.50 s, 1 changed" in text
    assert "survey (survey): 1 visits, mean 12.5 s" in text
    db = sqlite3.connect(study)
    for (episode_id,) in db.execute("SELECT episode_id FROM episodes"):
        assert episode_id[:8] in text


def test_summary_json(study, capsys):
    assert main(["summary", str(study), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["participants"]["count"] == 1
    assert summary["participants"]["by_status"] == {"started": 1}
    episodes = summary["episodes"][SCENE]
    assert episodes["count"] == 2 and episodes["steps"] == 240
    assert episodes["outcomes"] == {"truncated": 2}
    db = sqlite3.connect(study)
    left = [json.loads(r)["agent_left"] for (r,) in db.execute("SELECT returns FROM episodes")]
    assert episodes["mean_return"]["agent_left"] == pytest.approx(sum(left) / 2)
    assert summary["timing"]["episodes"] == 2 and summary["timing"]["mean_ms"] > 0
    assert summary["steps"] == {"rows": 480, "with_fingerprint": 480}
    assert summary["answers"]["survey"]["fun"] == {"n": 1, "skipped": 0, "mean": 5.0, "sd": None, "min": 5.0,
                                                   "max": 5.0, "first_s_median": 2.25, "last_s_median": 4.5,
                                                   "changed": 1}
    assert "first_s_median" not in summary["answers"]["survey"]["tags"]  # not timed: nothing made up
    assert summary["visits"]["survey"]["mean_duration_s"] == 12.5
    assert len(summary["episode_list"]) == 2


def test_missing_file_is_one_line(tmp_path):
    result = cli("summary", str(tmp_path / "none.sqlite"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "none.sqlite").exists()
