"""A study at a glance: who took part, what they did, how well the display kept time.

``python -m igym.data summary STUDY.sqlite`` prints it as text; ``--json`` prints the same
as one JSON object. It reads only what the file has (older files lack visits and answers),
through :mod:`igym.studydb` (plain SQL, so it reads a PostgreSQL copy the same way).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, TypeGuard

from .studydb import StudyData, count, read_study

EPISODES_SHOWN = 30


def mean(values: list[float]) -> float | None:
    """The mean rounded to 6 places (so JSON output stays short), None for no values."""
    return round(sum(values) / len(values), 6) if values else None


def number(value: Any) -> TypeGuard[float]:
    """A finite int or float that is not a bool (answers and returns may hold anything JSON)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def summarize(db: Any, path: str | Path = "", data: StudyData | None = None) -> dict[str, Any]:
    """Everything the summary reports, as plain data (``data``: the study already read)."""
    data = read_study(db) if data is None else data
    participants = data.participants
    codes = sorted({p["completion_code"] for p in participants if p["completion_code"]})
    result: dict[str, Any] = {
        "file": str(path),
        "participants": {
            "count": len(participants),
            "by_status": dict(Counter(p["status"] or "started" for p in participants)),
            "by_condition": dict(Counter(p["condition"] if p["condition"] is not None else "(none)"
                                         for p in participants)),
            "by_experiment": dict(Counter(p["experiment"] or "(none)" for p in participants)),
        },
        "completion_codes": {"count": len(codes), "codes": codes},
    }

    visits: dict[str, dict[str, Any]] = {}
    grouped: dict[str, list[tuple[Any, Any, Any]]] = defaultdict(list)
    for visit in data.visits:
        grouped[visit["scene"]].append((visit["kind"], visit["duration_s"], visit["outcome"]))
    for scene, rows in grouped.items():
        durations = [d for _, d, _ in rows if d is not None]
        visits[scene] = {"count": len(rows), "kind": rows[0][0], "finished": len(durations),
                         "mean_duration_s": mean(durations),
                         "outcomes": dict(Counter(o or "(open)" for _, _, o in rows))}
    result["visits"] = visits

    episodes: dict[str, dict[str, Any]] = {}
    listing = []
    timings = []
    grouped_e: dict[str, list[tuple[Any, Any, Any]]] = defaultdict(list)
    for e in data.episodes:
        grouped_e[e["scene"]].append((e["steps"] or 0, e["returns"], e["outcome"]))
        listing.append({"episode_id": e["episode_id"], "participant_id": e["participant_id"], "scene": e["scene"],
                        "episode_index": e["episode_index"], "steps": e["steps"] or 0, "outcome": e["outcome"]})
        timing = e["timing"]
        if isinstance(timing, dict) and timing.get("frames"):
            timings.append(timing)
    for scene, rows in grouped_e.items():
        per_agent: dict[str, list[float]] = defaultdict(list)
        for _, returns, _ in rows:
            if isinstance(returns, dict):
                for agent, value in returns.items():
                    if number(value):
                        per_agent[agent].append(float(value))
        episodes[scene] = {"count": len(rows), "steps": sum(r[0] for r in rows),
                           "mean_steps": mean([float(r[0]) for r in rows]),
                           "mean_return": {a: mean(v) for a, v in sorted(per_agent.items())},
                           "outcomes": dict(Counter(o or "(open)" for _, _, o in rows))}
    result["episodes"] = episodes
    result["timing"] = pooled_timing(timings)
    result["steps"] = {"rows": count(db, "steps"), "with_fingerprint": count(db, "steps", "fingerprint")}

    answers: dict[str, dict[str, Any]] = {}
    asked = {(q["scene"], q["question"]): q["definition"] for q in data.questions if isinstance(q["definition"], dict)}
    values: dict[tuple[str, str], list[Any]] = defaultdict(list)
    times: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for answer in data.answers:
        values[(answer["scene"], answer["question"])].append(answer["value"])
        if number(answer["first_s"]):
            times[(answer["scene"], answer["question"])].append(answer)
    for (scene, question), items in values.items():
        given = [v for v in items if v is not None]
        numbers = [float(v) for v in given if number(v)]
        entry: dict[str, Any] = {"n": len(given), "skipped": len(items) - len(given)}
        if given and len(numbers) == len(given):
            entry["mean"] = mean(numbers)
            entry["sd"] = sd(numbers)
            entry["min"], entry["max"] = min(numbers), max(numbers)
        else:
            counts = Counter(v if isinstance(v, str) else json.dumps(v) for v in given)
            entry["values"] = dict(counts.most_common(10))
            if numbers:
                entry["mean"] = mean(numbers)
        definition = asked.get((scene, question))
        if definition is not None:
            entry.update(declared(definition, given))
        timed = times.get((scene, question))
        if timed:  # answers timed by their page (igym.answer_times): seconds since the page opened
            entry["first_s_median"] = round(statistics.median(float(a["first_s"]) for a in timed), 3)
            entry["last_s_median"] = round(statistics.median(float(a["last_s"]) for a in timed), 3)
            entry["changed"] = sum(1 for a in timed if (a["changes"] or 0) > 0)
        answers.setdefault(scene, {})[question] = entry
    result["answers"] = answers
    result["episode_list"] = listing
    return result


def declared(definition: dict[str, Any], given: list[Any]) -> dict[str, Any]:
    """What a question's definition adds to its summary: its kind, its scale's ends (a Likert
    scale's 1 and points, a slider's bounds) and, for choices, every option in the survey's
    order with how often it was chosen — 0 included (a summary of the answers alone would
    leave an option nobody chose out)."""
    kind = definition.get("kind")
    entry: dict[str, Any] = {"kind": kind}
    if kind == "likert":
        entry["scale"] = [1, definition.get("points")]
    elif kind in ("slider", "number") and (definition.get("min") is not None or definition.get("max") is not None):
        entry["scale"] = [definition.get("min"), definition.get("max")]
    options = definition.get("options")
    if kind in ("choice", "multichoice") and isinstance(options, list):
        chosen = Counter(str(o) for v in given for o in (v if isinstance(v, list) else [v]))
        entry["values"] = {**{str(o): chosen.pop(str(o), 0) for o in options}, **dict(chosen)}
    return entry


def sd(values: list[float]) -> float | None:
    """The sample SD rounded to 6 places, None for fewer than two values."""
    if len(values) < 2:
        return None
    average = sum(values) / len(values)
    return round(math.sqrt(sum((v - average) ** 2 for v in values) / (len(values) - 1)), 6)


def pooled_timing(timings: list[dict[str, Any]]) -> dict[str, Any]:
    """Frame intervals over all episodes: pooled mean and SD, the worst interval, dropped frames."""
    parts = [(int(t["frames"]) - 1, float(t.get("mean_ms") or 0.0), float(t.get("sd_ms") or 0.0))
             for t in timings if int(t.get("frames", 0)) >= 2]
    if not parts:
        return {"episodes": 0}
    n = sum(p[0] for p in parts)
    average = sum(k * m for k, m, _ in parts) / n
    # Pooled variance of all intervals from each episode's count, mean and SD.
    squares = sum((k - 1) * s * s + k * (m - average) ** 2 for k, m, s in parts)
    spread = math.sqrt(squares / (n - 1)) if n > 1 else 0.0
    dropped = sum(int(t.get("dropped") or 0) for t in timings)
    frames = sum(int(t["frames"]) for t in timings)
    return {"episodes": len(timings), "frames": frames, "mean_ms": round(average, 4), "sd_ms": round(spread, 4),
            "max_ms": round(max(float(t.get("max_ms") or 0.0) for t in timings), 4), "dropped": dropped,
            "dropped_share": round(dropped / frames, 6) if frames else 0.0,
            "episodes_with_drops": sum(1 for t in timings if t.get("dropped"))}


def _counts(mapping: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(mapping.items(), key=lambda kv: (-kv[1], str(kv[0])))) or "-"


def _fmt(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_text(summary: dict[str, Any]) -> str:
    """The summary as human-readable text."""
    out = [f"study: {summary['file']}"]
    p = summary["participants"]
    out.append(f"participants: {p['count']}")
    out.append(f"  by status: {_counts(p['by_status'])}")
    out.append(f"  by condition: {_counts(p['by_condition'])}")
    if len(p["by_experiment"]) > 1:
        out.append(f"  by experiment: {_counts(p['by_experiment'])}")
    codes = summary["completion_codes"]
    shown = ", ".join(codes["codes"][:10]) + (" ..." if codes["count"] > 10 else "")
    out.append(f"completion codes: {codes['count']}" + (f" ({shown})" if codes["count"] else ""))
    out.append("visits per scene:" + ("" if summary["visits"] else " none"))
    for scene, v in summary["visits"].items():
        out.append(f"  {scene} ({v['kind']}): {v['count']} visits, mean {_fmt(v['mean_duration_s'], 1)} s, "
                   f"outcomes: {_counts(v['outcomes'])}")
    out.append("episodes per scene:" + ("" if summary["episodes"] else " none"))
    for scene, e in summary["episodes"].items():
        returns = ", ".join(f"{a} {_fmt(r, 3)}" for a, r in e["mean_return"].items()) or "-"
        out.append(f"  {scene}: {e['count']} episodes, {e['steps']} steps (mean {_fmt(e['mean_steps'], 1)}), "
                   f"outcomes: {_counts(e['outcomes'])}")
        out.append(f"    mean return: {returns}")
    t = summary["timing"]
    if t.get("episodes"):
        out.append(f"timing: {t['frames']} frames in {t['episodes']} episodes; frame interval mean "
                   f"{t['mean_ms']:.2f} ms, SD {t['sd_ms']:.2f} ms, max {t['max_ms']:.2f} ms; dropped "
                   f"{t['dropped']} ({100 * t['dropped_share']:.2f}%, in {t['episodes_with_drops']} episodes)")
    else:
        out.append("timing: no frame timing recorded")
    s = summary["steps"]
    out.append(f"steps: {s['rows']} rows, {s['with_fingerprint']} with a state fingerprint")
    out.append("answers per question:" + ("" if summary["answers"] else " none"))
    for scene, questions in summary["answers"].items():
        for question, a in questions.items():
            line = f"  {scene}.{question}: n {a['n']}"
            if a.get("skipped"):
                line += f" (+{a['skipped']} skipped)"
            if "mean" in a:
                line += f", mean {_fmt(a['mean'], 3)}"
            if a.get("sd") is not None:
                line += f", SD {_fmt(a['sd'], 3)}"
            if "scale" in a:
                line += f", scale {_fmt(a['scale'][0])}..{_fmt(a['scale'][1])}"
            if "values" in a:  # a choice's options in the survey's order (its kind known), else by count
                line += ", values: " + (", ".join(f"{k} {v}" for k, v in a["values"].items()) if "kind" in a
                                        else _counts(a["values"]))
            if "first_s_median" in a:
                line += (f"; answered at {_fmt(a['first_s_median'])} s (median), last changed at "
                         f"{_fmt(a['last_s_median'])} s, {a['changed']} changed")
            out.append(line)
    listing = summary["episode_list"]
    out.append(f"episodes ({len(listing)}; replay one with: python -m igym.data replay FILE --episode ID):")
    for e in listing[:EPISODES_SHOWN]:
        out.append(f"  {e['episode_id'][:8]}  {e['participant_id']}  {e['scene']} #{e['episode_index']}  "
                   f"{e['steps']} steps  {e['outcome'] or '(open)'}")
    if len(listing) > EPISODES_SHOWN:
        out.append(f"  ... {len(listing) - EPISODES_SHOWN} more (--json lists them all)")
    return "\n".join(out)
