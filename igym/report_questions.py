"""What the report draws for each question: its answers on the question's real scale.

A chart drawn from the answers alone misleads: a 7-point Likert scale answered 1–6 would be
drawn 1–6, a 0–100 slider from the smallest answer to the largest, and a choice's options
in order of frequency with the unchosen ones missing. So each question is drawn from its
*definition* — the kind, the scale's points and labels, the options in the survey's order,
a slider's bounds — which the data file keeps for every survey visit (the ``questions``
table, schema 4). For an older file the definitions come from the experiment file when the
researcher names one (``report --experiment FILE``: each visit's scene with the changes its
conditions and hooks made, ``visits.params``), and only failing that from the answers; every
chart says where its scale came from (:attr:`QuestionChart.source`).

This module computes plain data (:class:`QuestionChart`), which the report draws with
:mod:`igym.report_plots` and tests can read; it imports neither numpy nor matplotlib.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Iterable, Mapping

from .errors import IgymError
from .studydb import StudyData
from .summary import number

CHOICE_MAX_LEVELS = 12
"""Without a definition: a text question with at most this many different answers, some given
more than once, is shown as counts (a choice); otherwise as a list of examples (free text)."""

LIKERT_MAX_LEVELS = 11
"""Without a definition: whole-number answers spanning at most this many points are counted
point by point (Likert scales have 2–11 points); wider ones (sliders, ages) are shown as dots."""

FROM_DATA, FROM_EXPERIMENT, FROM_ANSWERS = "data file", "experiment file", "answers"
"""Where a chart's scale came from (:attr:`QuestionChart.source`)."""

Key = tuple[str, str]  # (scene, question id)


@dataclass
class Definition:
    """The definition a question is drawn with, where it came from, and how many visits showed
    another one (a condition or hook that changed the question: the most common one is drawn)."""

    data: dict[str, Any]
    source: str
    differing: int = 0


@dataclass
class QuestionChart:
    """One question's figure as data: ``draw`` is ``counts`` (a bar per level — every point or
    option in the declared order, zero bars included — per condition), ``dots`` (one dot per
    answer, on ``axis``: the declared bounds) or ``text`` (free text, quoted)."""

    scene: str
    question: str
    draw: str
    kind: str = ""  # likert, slider, choice, multichoice, number, text; "" when nothing says
    text: str = ""  # the question as asked ("" when unknown)
    source: str = FROM_ANSWERS
    levels: list[str] = field(default_factory=list)
    counts: dict[str, list[int]] = field(default_factory=dict)  # condition → a count per level
    values: dict[str, list[float]] = field(default_factory=dict)  # condition → answers (dots)
    axis: tuple[float, float] | None = None  # dots: the declared range; None: the answers' own
    xlabel: str = "answer"
    horizontal: bool = False
    several: bool = False  # a multiple choice: each answer counts once per option chosen
    notes: list[str] = field(default_factory=list)


# --- where the definitions come from ----------------------------------------------------------------------

def _most_common(found: Mapping[Key, list[dict[str, Any]]], source: str) -> dict[Key, Definition]:
    chosen: dict[Key, Definition] = {}
    for key, definitions in found.items():
        texts = Counter(json.dumps(d, sort_keys=True) for d in definitions)
        text, count = texts.most_common(1)[0]
        chosen[key] = Definition(json.loads(text), source, len(definitions) - count)
    return chosen


def from_data(data: StudyData) -> dict[Key, Definition]:
    """The definitions the data file recorded (the ``questions`` table), per scene and question."""
    found: dict[Key, list[dict[str, Any]]] = {}
    for row in data.questions:
        if isinstance(row["definition"], dict):
            found.setdefault((row["scene"], row["question"]), []).append(row["definition"])
    return _most_common(found, FROM_DATA)


def from_experiment(data: StudyData, experiment: Any, wanted: Iterable[Key]) -> tuple[dict[Key, Definition], list[str]]:
    """Definitions of the ``wanted`` questions from an experiment file: each survey visit's
    scene as that visit showed it (its ``params``: what conditions and hooks changed). Returns
    them and the scenes the file does not have."""
    from .experiment import with_changes
    from .questions import definition

    wanted = set(wanted)
    scenes = {scene for scene, _ in wanted}
    found: dict[Key, list[dict[str, Any]]] = {}
    missing: list[str] = []
    for visit in data.visits:
        name = visit["scene"]
        if name not in scenes or name in missing:
            continue
        try:
            scene = experiment.scene(name)
            params = visit["params"]
            if isinstance(params, dict) and params:
                scene = with_changes(scene, params)
        except IgymError:
            missing.append(name)
            continue
        for question in getattr(scene, "questions", ()) or ():
            key = (name, question.id)
            if key in wanted:
                found.setdefault(key, []).append(definition(question))
    return _most_common(found, FROM_EXPERIMENT), missing


# --- a question's chart -----------------------------------------------------------------------------------

Tally = Callable[[list[Any], list[tuple[str, Any]]], dict[str, list[int]]]


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _ends(low: Any, high: Any, labels: Any) -> str:
    """``1 = Strongly disagree … 7 = Strongly agree``: a scale's ends and what they mean."""
    if isinstance(labels, list) and len(labels) >= 2 and labels[0] and labels[-1]:
        return f"{_fmt(low)} = {labels[0]} … {_fmt(high)} = {labels[-1]}"
    return ""


def chart(key: Key, definition: Definition | None, given: list[tuple[str, Any]], tally: Tally,
          by_condition: Callable[[list[tuple[str, float]]], dict[str, list[float]]]) -> QuestionChart:
    """The chart of one question's answers (``given``: (participant, value), skipped ones left
    out), on its definition's scale, or — without one — on what the answers suggest.

    ``tally(levels, pairs)`` counts ``(participant, level)`` pairs per condition (one count per
    level, in order); ``by_condition`` groups ``(participant, number)`` pairs per condition.
    """
    if definition is None:
        return _inferred(key, given, tally, by_condition)
    d = definition.data
    kind = str(d.get("kind", ""))
    made = QuestionChart(key[0], key[1], "counts", kind, str(d.get("text", "")), definition.source)
    if definition.differing:
        made.notes.append(f"{definition.differing} visits showed another version of this question (changed by a "
                          f"condition or hook); drawn on the most common one")
    if kind == "likert" and isinstance(d.get("points"), int):
        points = list(range(1, d["points"] + 1))
        made.xlabel = _ends(1, d["points"], d.get("labels")) or "answer"
        _count(made, points, [str(p) for p in points], given, tally)
    elif kind in ("choice", "multichoice") and isinstance(d.get("options"), list):
        options = [str(o) for o in d["options"]]
        made.several = kind == "multichoice"
        pairs = ([(p, str(o)) for p, v in given for o in (v if isinstance(v, list) else [v])] if made.several
                 else [(p, str(v)) for p, v in given])
        made.horizontal = made.several or len(options) > 6 or max(map(len, options)) > 12
        made.xlabel = "option"
        _count(made, options, options, pairs, tally)
    elif kind in ("slider", "number"):
        made.draw = "dots"
        numbers = [(p, float(v)) for p, v in given if number(v)]
        made.values = by_condition(numbers)
        low, high = d.get("min"), d.get("max")
        seen = [v for _, v in numbers]
        if number(low) or number(high):
            made.axis = (float(low) if number(low) else min(seen, default=0.0),
                         float(high) if number(high) else max(seen, default=1.0))
        made.xlabel = _ends(low, high, d.get("labels")) or "answer"
    else:
        made.draw = "text"
    return made


def _count(made: QuestionChart, values: list[Any], levels: list[str], pairs: list[tuple[str, Any]],
           tally: Tally) -> None:
    """Counts on the declared levels; answers outside them (a definition changed since) are kept,
    as extra bars after the declared ones, and said."""
    known = set(values)
    extra = list(dict.fromkeys(v for _, v in pairs if v not in known))
    if extra:
        made.notes.append(f"{len(extra)} answer value(s) outside the declared scale or options: "
                          f"{', '.join(map(str, extra[:5]))}")
    made.levels = levels + [str(v) for v in extra]
    made.counts = tally(values + extra, pairs)


def _inferred(key: Key, given: list[tuple[str, Any]], tally: Tally,
              by_condition: Callable[[list[tuple[str, float]]], dict[str, list[float]]]) -> QuestionChart:
    """Without a definition: a scale from the answers (the smallest to the largest), options in
    order of frequency — what an older file allows, and the chart says so."""
    made = QuestionChart(key[0], key[1], "counts")
    values = [v for _, v in given]
    if all(isinstance(v, bool) for v in values):  # a yes/no answer: counted, not averaged
        made.levels, made.counts = ["True", "False"], tally([True, False], given)
    elif all(number(v) for v in values):
        ints = all(isinstance(v, int) or float(v).is_integer() for v in values)
        low, high = min(values), max(values)
        if ints and high - low < LIKERT_MAX_LEVELS:
            start = 1 if 1 <= low and high <= LIKERT_MAX_LEVELS else int(low)
            points = list(range(start, int(high) + 1))
            made.levels, made.counts = [str(p) for p in points], tally(points, [(p, int(v)) for p, v in given])
        else:
            made.draw, made.values = "dots", by_condition([(p, float(v)) for p, v in given])
    elif all(isinstance(v, list) for v in values):
        chosen = [(p, str(o)) for p, v in given for o in v]
        levels = [o for o, _ in Counter(o for _, o in chosen).most_common()]
        made.levels, made.counts, made.horizontal, made.several = levels, tally(levels, chosen), True, True
        made.xlabel = "option"
    else:
        texts = [(p, v if isinstance(v, str) else str(v)) for p, v in given]
        distinct = Counter(t for _, t in texts)
        if len(distinct) <= CHOICE_MAX_LEVELS and len(distinct) < len(texts):
            levels = [t for t, _ in distinct.most_common()]
            made.levels, made.counts = levels, tally(levels, texts)
            made.horizontal = max(len(t) for t in levels) > 12 or len(levels) > 6
        else:
            made.draw = "text"
    return made
