"""Exporting a study's SQLite file: tidy CSV/Parquet tables, or a Minari dataset.

Tidy tables (one file per table): ``steps`` (one row per agent per step, with the
episode's participant, scene, visit, index and seed joined in and the ``extra`` JSON
spread into one column per key), ``episodes`` (returns and timing spread into columns),
``participants``, ``visits``, ``answers`` (values decoded, with when each was given), ``questions``
(each survey visit's questions as shown: kind, text, scale, labels and options in their order,
the whole definition as JSON) and ``events``. CSV is written with the standard library and
streamed; Parquet needs pyarrow.

Minari: observations are not in the data file, so each episode is re-simulated from its
seed and the recorded actions of every agent (see :mod:`igym.replay`) and the chosen
agent's observations are collected; the dataset is written by minari's own
``create_dataset_from_buffers``. pyarrow and minari are imported only when asked for.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import warnings
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Iterator, Sequence

from .errors import IgymError
from .studydb import decode_json as _decode
from .actions import from_plain, read_space
from .replay import (EpisodeInfo, Replayer, episode_game, experiment_path, load_episode, recorded_steps,
                     table_columns)

TABLES = ("steps", "episodes", "participants", "visits", "answers", "questions", "events")
EXPORT_HINT = "pip install 'igym[export]'"


def _cell(value: Any) -> Any:
    """A value for a flat table: scalars as they are, lists and dicts as JSON text."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return value


class Table:
    """A table to write: column names and an iterator of row tuples (streamed for CSV)."""

    def __init__(self, name: str, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> None:
        self.name = name
        self.columns = columns
        self.rows = rows


def _participant_filter(db: sqlite3.Connection, participant: str | None,
                        column: str = "participant_id") -> tuple[str, tuple[str, ...]]:
    if participant is None:
        return "", ()
    return f" WHERE {column} = ?", (participant,)


def _plain_table(db: sqlite3.Connection, name: str, participant: str | None, order: str,
                 decode: tuple[str, ...] = ()) -> Table | None:
    columns = table_columns(db, name)
    if not columns:
        return None
    where, params = _participant_filter(db, participant) if "participant_id" in columns else ("", ())
    cursor = db.execute(f"SELECT * FROM {name}{where} ORDER BY {order}", params)
    return Table(name, columns, cursor)


def steps_table(db: sqlite3.Connection, participant: str | None = None) -> Table:
    """Steps joined with their episode, ``extra`` spread into one column per key."""
    scols = table_columns(db, "steps")
    ecols = table_columns(db, "episodes")
    where = " WHERE e.participant_id = ?" if participant is not None else ""
    params = (participant,) if participant is not None else ()
    try:
        keys = [k for (k,) in db.execute(
            f"SELECT DISTINCT j.key FROM steps s JOIN episodes e ON e.episode_id = s.episode_id, "
            f"json_each(s.extra) j{where} {'AND' if where else 'WHERE'} s.extra IS NOT NULL ORDER BY j.key",
            params)]
    except sqlite3.OperationalError:  # an SQLite without JSON functions: scan in Python
        found: set[str] = set()
        for (extra,) in db.execute(f"SELECT s.extra FROM steps s JOIN episodes e ON e.episode_id = s.episode_id"
                                   f"{where}", params):
            value = _decode(extra)
            if isinstance(value, dict):
                found.update(value)
        keys = sorted(found)
    base = [c for c in ("step", "agent", "t_ns", "action", "source", "reward", "terminated", "truncated",
                        "keys", "press", "key_t_ns", "fingerprint") if c in scols]
    joined = ["participant_id", "scene", "visit_id", "episode_index", "seed"]
    joined_sql = [f"e.{c}" if c in ecols else "NULL" for c in joined]
    names = ["episode_id", *joined, *base]
    taken = set(names)
    extra_names = [k if k not in taken else f"extra_{k}" for k in keys]
    has_extra = "extra" in scols
    sql = (f"SELECT s.episode_id, {', '.join(joined_sql)}, {', '.join('s.' + c for c in base)}, "
           f"{'s.extra' if has_extra else 'NULL'} FROM steps s LEFT JOIN episodes e ON e.episode_id = s.episode_id"
           f"{where} ORDER BY e.participant_id, e.started_ns, s.episode_id, s.step, s.agent")
    action_at = names.index("action") if "action" in names else None

    def rows() -> Iterator[tuple[Any, ...]]:
        for row in db.execute(sql, params):
            values = list(row[:-1])
            if action_at is not None:
                values[action_at] = _cell(_decode(values[action_at]))
            extra = _decode(row[-1]) if keys else None
            if isinstance(extra, dict):
                values.extend(_cell(extra.get(k)) for k in keys)
            else:
                values.extend([None] * len(keys))
            yield tuple(values)

    return Table("steps", names + extra_names, rows())


def episodes_table(db: sqlite3.Connection, participant: str | None = None) -> Table:
    """Episodes with the participant's condition, ``returns`` as return_<agent> and ``timing`` as timing_<key>."""
    ecols = table_columns(db, "episodes")
    pcols = table_columns(db, "participants")
    where = " WHERE e.participant_id = ?" if participant is not None else ""
    params = (participant,) if participant is not None else ()
    agents: set[str] = set()
    timing_keys: list[str] = []
    for returns, timing in db.execute(f"SELECT e.returns, e.timing FROM episodes e{where}", params):
        value = _decode(returns)
        if isinstance(value, dict):
            agents.update(value)
        value = _decode(timing)
        if isinstance(value, dict):
            timing_keys.extend(k for k in value if k not in timing_keys)
    agent_list = sorted(agents)
    plain = [c for c in ecols if c not in ("returns", "timing")]
    names = [*plain, "condition", *(f"return_{a}" for a in agent_list), *(f"timing_{k}" for k in timing_keys)]
    condition = "p.condition" if "condition" in pcols else "NULL"
    sql = (f"SELECT {', '.join('e.' + c for c in plain)}, {condition}, e.returns, e.timing FROM episodes e "
           f"LEFT JOIN participants p ON p.participant_id = e.participant_id{where} "
           f"ORDER BY e.participant_id, e.started_ns, e.episode_index")

    def rows() -> Iterator[tuple[Any, ...]]:
        for row in db.execute(sql, params):
            returns = _decode(row[-2])
            returns = returns if isinstance(returns, dict) else {}
            timing = _decode(row[-1])
            timing = timing if isinstance(timing, dict) else {}
            yield (*row[:-2], *(returns.get(a) for a in agent_list), *(_cell(timing.get(k)) for k in timing_keys))

    return Table("episodes", names, rows())


def answers_table(db: sqlite3.Connection, participant: str | None = None) -> Table | None:
    """Answers with ``value`` decoded (lists as JSON text) and ``value_num`` for numeric answers."""
    columns = table_columns(db, "answers")
    if not columns:
        return None
    where, params = _participant_filter(db, participant)
    position = columns.index("value")

    def rows() -> Iterator[tuple[Any, ...]]:
        for row in db.execute(f"SELECT * FROM answers{where} ORDER BY participant_id, visit_id, question", params):
            value = _decode(row[position])
            number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            yield (*row[:position], _cell(value), *row[position + 1:], number)

    return Table("answers", [*columns, "value_num"], rows())


def tables(db: sqlite3.Connection, participant: str | None = None) -> list[Table]:
    """Every tidy table of the file (tables an older file lacks are left out)."""
    found = [steps_table(db, participant), episodes_table(db, participant),
             _plain_table(db, "participants", participant, "created_at, participant_id"),
             _plain_table(db, "visits", participant, "participant_id, position, started_at"),
             answers_table(db, participant),
             _plain_table(db, "questions", participant, "participant_id, visit_id, position"),
             _plain_table(db, "events", participant, "event_id" if "event_id" in table_columns(db, "events")
                          else "participant_id, t_ns")]
    return [t for t in found if t is not None]


def check_participant(db: sqlite3.Connection, participant: str | None, path: str | Path) -> None:
    if participant is None:
        return
    known = db.execute("SELECT 1 FROM participants WHERE participant_id = ?", (participant,)).fetchone()
    if known is None and db.execute("SELECT 1 FROM episodes WHERE participant_id = ? LIMIT 1",
                                    (participant,)).fetchone() is None:
        count = db.execute("SELECT count(*) FROM participants").fetchone()[0]
        raise IgymError(f"no participant {participant!r} in {path} ({count} participants) — list them with: "
                        f"python -m igym.data summary {path}")


def write_csv(table: Table, folder: Path) -> tuple[Path, int]:
    path = folder / f"{table.name}.csv"
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.columns)
        for row in table.rows:
            writer.writerow(row)
            count += 1
    return path, count


def _require_pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise IgymError(f"Parquet export needs pyarrow, which is not installed — {EXPORT_HINT}") from None
    return pyarrow


def _arrow_array(pa: Any, values: list[Any]) -> Any:
    """A column of one type: inferred when the values agree, else text (strings as is, others JSON)."""
    if not any(isinstance(v, (list, dict)) for v in values):
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            pass
    return pa.array([None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values],
                    type=pa.string())


def write_parquet(table: Table, folder: Path) -> tuple[Path, int]:
    pa = _require_pyarrow()
    import pyarrow.parquet as pq

    rows = list(table.rows)
    columns = list(zip(*rows)) if rows else [()] * len(table.columns)
    arrays = [_arrow_array(pa, list(values)) if rows else pa.array([], type=pa.string()) for values in columns]
    path = folder / f"{table.name}.parquet"
    pq.write_table(pa.table(arrays, names=table.columns), str(path))
    return path, len(rows)


def export_tables(db: sqlite3.Connection, folder: str | Path, fmt: str, participant: str | None = None,
                  path: str | Path = "STUDY.sqlite") -> list[tuple[Path, int]]:
    """Write every table as ``fmt`` (csv or parquet) into ``folder``; returns (file, rows) per table."""
    check_participant(db, participant, path)
    if fmt == "parquet":
        _require_pyarrow()
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise IgymError(f"{folder} exists and is not a folder — give a folder for the export")
    folder.mkdir(parents=True, exist_ok=True)
    writer = write_csv if fmt == "csv" else write_parquet
    return [writer(table, folder) for table in tables(db, participant)]


# --- Minari -----------------------------------------------------------------------------------


def _require_minari() -> Any:
    try:
        import minari
    except ImportError:
        raise IgymError(f"Minari export needs minari, which is not installed — {EXPORT_HINT}") from None
    try:  # minari 0.5.4's storages import Pillow without declaring it
        import PIL  # noqa: F401
    except ImportError:
        raise IgymError("minari cannot write datasets without Pillow (its storage imports PIL) — pip install "
                        "pillow") from None
    return minari


def _dataset_id(scene: str, agent: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_]+", "_", f"{scene}_{agent}").strip("_") or "episodes"
    return f"igym/{clean}-v0"


def _space(getter: Any) -> Any:
    try:
        return getter()
    except Exception:  # noqa: BLE001 — some envs' space methods fail (CoGrid 0.3.2)
        return None


def observation_space_of(replayer: Replayer, agent: str) -> Any:
    """The agent's observation space from the env, or None when the env cannot tell."""
    adapter = replayer.env
    env = adapter.env
    native = adapter.agent(agent)
    if adapter.kind == "parallel":
        return _space(lambda: env.observation_space(native))
    space = _space(lambda: env.observation_space)
    spaces = getattr(space, "spaces", None)
    if adapter.kind == "dict" and isinstance(spaces, dict) and native in spaces:
        return spaces[native]
    return space


def _as_array(value: Any, space: Any) -> Any:
    import numpy

    if isinstance(value, dict):
        spaces = getattr(space, "spaces", None)
        spaces = spaces if isinstance(spaces, dict) else {}
        return {k: _as_array(v, spaces.get(k)) for k, v in value.items()}
    dtype = getattr(space, "dtype", None)
    return numpy.asarray(value, dtype=dtype) if dtype is not None else numpy.asarray(value)


def _derived_space(samples: list[Any]) -> Any:
    """A space that holds ``samples`` (a Box per array, a Dict of them for dict observations)."""
    import numpy
    from gymnasium import spaces

    first = samples[0]
    if isinstance(first, dict):
        return spaces.Dict({k: _derived_space([s[k] for s in samples]) for k in first})
    stacked = numpy.stack([numpy.asarray(s) for s in samples])
    dtype = stacked.dtype
    if numpy.issubdtype(dtype, numpy.integer) or dtype == numpy.bool_:
        low, high = stacked.min(axis=0), stacked.max(axis=0)
        return spaces.Box(low=low.astype(numpy.int64), high=high.astype(numpy.int64), shape=stacked.shape[1:],
                          dtype=numpy.int64)
    return spaces.Box(low=-numpy.inf, high=numpy.inf, shape=stacked.shape[1:], dtype=numpy.float32)


def _derived_action_space(actions: list[Any]) -> Any:
    from gymnasium import spaces

    if all(isinstance(a, int) and not isinstance(a, bool) for a in actions):
        return spaces.Discrete(max(actions) + 1)
    return _derived_space(actions)


def _stack(values: list[Any]) -> Any:
    """Per-step values as minari's buffers take them: a list, or a dict of lists for dict values."""
    if values and isinstance(values[0], dict):
        return {k: _stack([v[k] for v in values]) for k in values[0]}
    return values


def _episodes_for(db: sqlite3.Connection, agent: str, scene: str | None, participant: str | None,
                  path: str | Path) -> list[EpisodeInfo]:
    clauses, params = ["s.agent = ?"], [agent]
    if scene is not None:
        clauses.append("e.scene = ?")
        params.append(scene)
    if participant is not None:
        clauses.append("e.participant_id = ?")
        params.append(participant)
    ids = [r[0] for r in db.execute(
        f"SELECT DISTINCT e.episode_id, e.participant_id, e.started_ns, e.episode_index FROM episodes e "
        f"JOIN steps s ON s.episode_id = e.episode_id WHERE {' AND '.join(clauses)} "
        f"ORDER BY e.participant_id, e.started_ns, e.episode_index", params)]
    if not ids:
        agents = sorted(a for (a,) in db.execute("SELECT DISTINCT agent FROM steps"))
        scenes = sorted(s for (s,) in db.execute("SELECT DISTINCT scene FROM episodes"))
        within = (f" in scene {scene!r}" if scene else "") + (f" of participant {participant!r}" if participant else "")
        raise IgymError(f"no recorded steps of agent {agent!r}{within} in {path} — agents: {agents}, "
                        f"scenes: {scenes}")
    episodes = [load_episode(db, i) for i in ids]
    scenes = sorted({e.scene for e in episodes})
    if len(scenes) > 1:
        raise IgymError(f"agent {agent!r} plays in {len(scenes)} scenes ({', '.join(scenes)}) — a Minari dataset "
                        f"holds one env: choose one with --scene NAME")
    return episodes


def export_minari(db: sqlite3.Connection, folder: str | Path, agent: str, *, dataset_id: str | None = None,
                  scene: str | None = None, participant: str | None = None, experiment: str | None = None,
                  path: str | Path = "STUDY.sqlite", trust: Sequence[str | Path] = ()) -> tuple[str, Path, int, int]:
    """Write the agent's episodes as a Minari dataset under ``folder``.

    Returns (dataset id, dataset folder, episodes, steps). Load it with
    ``MINARI_DATASETS_PATH=folder`` and ``minari.load_dataset(dataset_id)``.
    """
    check_participant(db, participant, path)
    episodes = _episodes_for(db, agent, scene, participant, path)
    minari = _require_minari()
    from minari.data_collector import EpisodeBuffer

    dataset_id = dataset_id or _dataset_id(episodes[0].scene, agent)
    games: dict[tuple[str, str, str | None], Any] = {}
    buffers: list[Any] = []
    observation_space = action_space = None
    raw_observations: list[list[Any]] = []
    raw_actions: list[list[Any]] = []
    mapping: list[dict[str, Any]] = []
    total = 0
    for episode in episodes:
        named_id = experiment is not None and not str(experiment).endswith(".py") and not Path(experiment).exists()
        gym_id = (str(experiment) if named_id else
                  episode.meta.get("gym_id") if experiment is None and not episode.experiment_file else None)
        where = gym_id if isinstance(gym_id, str) else str(experiment_path(episode, experiment, trust).resolve())
        key = (where, episode.scene, episode.condition)
        if key not in games:
            games[key] = episode_game(episode, experiment, trust)
        steps = recorded_steps(db, episode.episode_id)
        replayer = Replayer(games[key], episode, steps)
        try:
            if observation_space is None:
                observation_space = observation_space_of(replayer, agent)
            if action_space is None:
                action_space = replayer.action_space(agent)
            first = replayer.reset()
            native = replayer.env.agent(agent)
            observations = [first[native]]
            actions, rewards, terms, truncs = [], [], [], []
            for done in replayer.run():
                recorded = done.recorded
                if agent not in recorded.actions:
                    continue
                actions.append(recorded.actions[agent])
                rewards.append(float(recorded.rewards[agent]))
                terms.append(recorded.terminated[agent])
                truncs.append(recorded.truncated[agent])
                observations.append(done.result.observations[native])
        finally:
            replayer.close()
        if not actions:
            continue
        if not (terms[-1] or truncs[-1]):
            truncs[-1] = True  # stopped or aborted: the episode was cut here
        raw_observations.append(observations)
        raw_actions.append(actions)
        buffers.append([episode.seed, rewards, terms, truncs])
        mapping.append({"id": len(mapping), "episode_id": episode.episode_id, "participant_id": episode.participant_id,
                        "scene": episode.scene, "episode_index": episode.episode_index, "seed": episode.seed,
                        "steps": len(actions)})
        total += len(actions)
    if not buffers:
        raise IgymError(f"agent {agent!r} has no steps to export")
    if observation_space is None:
        observation_space = _derived_space([o for obs in raw_observations for o in obs])
    if action_space is None:
        action_space = _derived_action_space([a for acts in raw_actions for a in acts])
    action_info = read_space(action_space)
    episode_buffers = []
    for i, ((seed, rewards, terms, truncs), observations, actions) in enumerate(
            zip(buffers, raw_observations, raw_actions)):
        obs = [_as_array(o, observation_space) for o in observations]
        acts = [from_plain(action_info, a) for a in actions]  # recorded floats → the very same float32s
        episode_buffers.append(EpisodeBuffer(id=i, seed=seed, observations=_stack(obs), actions=_stack(acts),
                                             rewards=rewards, terminations=terms, truncations=truncs, infos={}))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(folder.resolve())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            minari.create_dataset_from_buffers(
                dataset_id, episode_buffers, action_space=action_space, observation_space=observation_space,
                algorithm_name="igym human-in-the-loop recording",
                description=f"Agent {agent!r} of scene {episodes[0].scene!r}, re-simulated by igym from {path} "
                            f"(seeds and recorded actions of every agent). igym_episodes.json maps dataset "
                            f"episode ids to igym episode ids.",
                data_format="arrow")
    except ValueError as error:
        raise IgymError(f"minari: {error}") from None
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous
    dataset_folder = folder.resolve() / dataset_id
    (dataset_folder / "igym_episodes.json").write_text(json.dumps(mapping, indent=1))
    return dataset_id, dataset_folder, len(episode_buffers), total
