"""``python -m igym.data report STUDY.sqlite``: a study as one HTML page to look at.

The page holds a participant funnel, visit durations, returns, answers, timing quality
and flagged participants, with every figure embedded as a PNG, so it can be mailed or
pasted into a lab meeting as one file; ``--pdf`` writes the same figures to a PDF.

Numbers come from :mod:`igym.summary` (counts, pooled frame timing) and from the rows that
:mod:`igym.studydb` reads with plain SQL; each question's answers are drawn on its declared
scale (:mod:`igym.report_questions`); figures from :mod:`igym.report_plots`, which is
imported only here, inside the functions: importing this module pulls in neither numpy
nor matplotlib (the core package also runs in a browser).
"""

from __future__ import annotations

import datetime
import os
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

from . import report_html as h
from .errors import IgymError
from .report_questions import (FROM_ANSWERS, FROM_DATA, FROM_EXPERIMENT, Definition, QuestionChart, chart, from_data,
                               from_experiment)
from .report_flags import (FOCUS_EVENTS, FOCUS_LONGEST_S, FOCUS_TOTAL_S, IDLE_GAP_S, IDLE_HUMAN_SHARE,
                           IDLE_MIN_STEPS, MIN_SECONDS_PER_QUESTION, Flag, find_flags, focus_losses, seat_inputs)
from .studydb import StudyData, count, human_seats, read_study
from .summary import number, summarize

MATPLOTLIB_HINT = "the report needs matplotlib — pip install 'igym[report]'"

TIMING_EVENTS = ("clock_skip", "rtt", "stall")
"""Event kinds the timing section plots (besides episodes.timing)."""

FRAME_SD_TARGET_MS = 1.0
"""The frame-interval SD igym aims for (README, Performance): drawn as a line to judge against."""

FREE_TEXT_EXAMPLES = 8
"""Free-text answers shown per question (the rest is counted, the export has them all)."""

PER_PARTICIPANT_MAX = 20
"""Up to this many participants, timing events are plotted one row per participant; beyond,
one row per condition (a hundred rows would not be read)."""

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8C6D31", "#F0E442")
"""Okabe–Ito colours (told apart with the common colour vision deficiencies); one per condition."""
NO_CONDITION = "(none)"
NO_CONDITION_COLOR = "#7b8794"


@dataclass
class Report:
    """A built report: the HTML page, the figures (for a PDF) and what was found."""

    html: str
    figures: list[tuple[str, Any]] = field(default_factory=list)  # (section id, matplotlib Figure)
    flags: list[Flag] = field(default_factory=list)
    participants: int = 0
    pdf_pages: list[Any] = field(default_factory=list)  # text pages leading the PDF
    charts: list[QuestionChart] = field(default_factory=list)  # what each question's figure draws


def require_matplotlib() -> None:
    """Fail with one line when matplotlib is missing (the report is the only thing that needs it)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise IgymError(MATPLOTLIB_HINT) from None


def _fmt(value: Any) -> str:
    """Short, readable numbers for tables (no exponents for ordinary sizes)."""
    if value is None:
        return "–"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e6):
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else many or word + 's'}"


class _Builder:
    """Collects one study's numbers and turns them into sections, figure by figure."""

    def __init__(self, db: Any, path: str | Path, now: datetime.datetime | None, experiment: Any = None) -> None:
        from . import report_plots

        self.plots = report_plots
        self.experiment = experiment  # an Experiment: the questions' scales for a file that lacks them
        self.experiment_file = getattr(experiment, "source_file", None) or getattr(experiment, "id", "")
        self.definitions: dict[tuple[str, str], Definition] = {}
        self.missing_scenes: list[str] = []
        self.charts: list[QuestionChart] = []
        self.db = db
        self.path = Path(path)
        self.now = now or datetime.datetime.now().astimezone()
        self.data: StudyData = read_study(db, FOCUS_EVENTS + TIMING_EVENTS)
        self.summary = summarize(db, path, self.data)
        self.figures: list[tuple[str, Any]] = []
        participants = self.data.participants
        self.condition_of = {p["participant_id"]: p["condition"] if p["condition"] is not None else NO_CONDITION
                             for p in participants}
        conditions = sorted({c for c in self.condition_of.values() if c != NO_CONDITION})
        if NO_CONDITION in self.condition_of.values() or not conditions:
            conditions.append(NO_CONDITION)
        self.colors = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(x for x in conditions if x != NO_CONDITION)}
        if NO_CONDITION in conditions:
            self.colors[NO_CONDITION] = NO_CONDITION_COLOR
        self.scene_order = self._scene_order()

    # --- helpers ---------------------------------------------------------------------------

    def condition(self, participant: str | None) -> str:
        return self.condition_of.get(participant, NO_CONDITION)

    def figure(self, section: str, fig: Any, alt: str, caption: str = "") -> str:
        self.figures.append((section, fig))
        return h.image(self.plots.png(fig), alt, caption, width_px=round(fig.get_figwidth() * 96))

    def _scene_order(self) -> list[str]:
        """Scenes in plan order: the order most participants saw (``participants.flow``), other
        scenes placed by their mean position (visits), then scenes seen only in episodes."""
        positions: dict[str, list[int]] = defaultdict(list)
        for visit in self.data.visits:
            if visit["position"] is not None:
                positions[visit["scene"]].append(int(visit["position"]))
        flows = Counter(tuple(str(s) for s in p["flow"]["scenes"]) for p in self.data.participants
                        if isinstance(p["flow"], dict) and isinstance(p["flow"].get("scenes"), list))
        order = list(dict.fromkeys(flows.most_common(1)[0][0])) if flows else []
        mean_at = {scene: statistics.fmean(at) for scene, at in positions.items()}
        for scene in sorted(positions, key=lambda s: (mean_at[s], min(positions[s]), s)):
            if scene not in order:
                before = [i for i, s in enumerate(order) if s in mean_at and mean_at[s] <= mean_at[scene]]
                order.insert(before[-1] + 1 if before else 0, scene)
        for episode in self.data.episodes:
            if episode["scene"] not in order:
                order.append(episode["scene"])
        for answer in self.data.answers:
            if answer["scene"] not in order:
                order.append(answer["scene"])
        return order

    def by_condition(self, pairs: list[tuple[str, float]]) -> dict[str, list[float]]:
        """(participant, value) pairs → values per condition, conditions in colour order."""
        grouped: dict[str, list[float]] = defaultdict(list)
        for participant, value in pairs:
            grouped[self.condition(participant)].append(value)
        return {c: grouped[c] for c in self.colors if grouped.get(c)}

    def legend(self) -> str:
        items = "".join(f'<span class="item">{h.swatch(color)}{h.text(c)}</span>' for c, color in self.colors.items())
        return f'<p class="legend">Conditions: {items}</p>'

    # --- header ----------------------------------------------------------------------------

    def header(self) -> str:
        s = self.summary
        p = s["participants"]
        experiments = sorted(e for e in p["by_experiment"] if e != "(none)") or ["(no experiment id)"]
        created = [x["created_at"] for x in self.data.participants if number(x["created_at"])]
        ended = [x["ended_at"] for x in self.data.participants if number(x["ended_at"])]
        span = ""
        if created:
            first = datetime.datetime.fromtimestamp(min(created)).astimezone()
            last = datetime.datetime.fromtimestamp(max(created + ended)).astimezone()
            span = f"Recorded {first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M}. "
        counts = [(p["count"], "participants"), (p["by_status"].get("completed", 0), "completed"),
                  (len(self.data.visits), "visits"), (len(self.data.episodes), "episodes"),
                  (s["steps"]["rows"], "steps"), (len(self.data.answers), "answers"),
                  (count(self.db, "events"), "events"), (len(self.flags_by_participant), "flagged")]
        boxes = "".join(f"<li><b>{n:,}</b><span>{h.text(label)}</span></li>" for n, label in counts)
        nav = "".join(f'<a href="#{sid}">{h.text(title)}</a>' for sid, title in SECTIONS)
        return (f"<header>\n<h1>Study report: {h.text(', '.join(experiments))}</h1>\n"
                f"<p>File <code>{h.text(self.path.name)}</code> ({h.text(str(self.path.resolve()))}). {span}"
                f"Report made {self.now:%Y-%m-%d %H:%M %Z} by <code>python -m igym.data report</code>.</p>\n"
                f'<ul class="counts">{boxes}</ul>\n{self.legend()}\n<nav>{nav}</nav>\n</header>')

    # --- 1. funnel -------------------------------------------------------------------------

    def funnel(self) -> str:
        participants = self.data.participants
        if not participants:
            return h.empty("No participants yet: nobody has started the study in this file.")
        parts = []
        conditions = list(self.colors)
        if self.data.has("visits"):
            at: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for visit in self.data.visits:
                at[int(visit["position"])].append(visit)
            stages = [("registered", dict(Counter(self.condition(x["participant_id"]) for x in participants)))]
            rows = []
            for position in sorted(at):
                visits = at[position]
                reached = {v["participant_id"] for v in visits}
                scenes = Counter(v["scene"] for v in visits)
                label = " / ".join(scenes) if len(scenes) <= 3 else f"{len(scenes)} scenes"
                by = Counter(self.condition(pid) for pid in reached)
                stages.append((f"{position} · {label}", dict(by)))
                outcomes = Counter(v["outcome"] or "(open)" for v in visits)
                scene_cell = ", ".join(f"{s} ({n})" if len(scenes) > 1 else s for s, n in scenes.items())
                rows.append([position, scene_cell, len(reached), *[by.get(c, 0) for c in conditions],
                             ", ".join(f"{o} {n}" for o, n in outcomes.most_common())])
            completed = Counter(self.condition(x["participant_id"]) for x in participants
                                if x["status"] == "completed")
            stages.append(("completed", dict(completed)))
            parts.append(self.figure("funnel", self.plots.funnel(stages, self.colors, title="Participants reaching "
                                                                 "each position of the study"),
                                     "bar chart of participants per study position",
                                     "Each bar: participants with a visit at that position (scenes shown in a "
                                     "random order share a position), coloured by condition."))
            parts.append(h.table(["position", "scene", "reached", *conditions, "outcomes"], rows,
                                 numeric=range(2, 3 + len(conditions))))
        else:
            parts.append(h.empty("This file has no visits table (written by an older igym): positions cannot "
                                 "be counted. Statuses and codes follow."))
        parts.append("<h3>Status by condition</h3>")
        statuses = ["started", "completed", "declined", "aborted"]
        status_of = [(x["status"] or "started", self.condition(x["participant_id"])) for x in participants]
        statuses += sorted({s for s, _ in status_of} - set(statuses))
        table_counts = Counter(status_of)
        rows = [[status, *[table_counts.get((status, c), 0) for c in conditions],
                 sum(table_counts.get((status, c), 0) for c in conditions)] for status in statuses]
        rows.append(["all", *[sum(1 for _, c in status_of if c == cond) for cond in conditions], len(status_of)])
        parts.append(h.table(["status", *conditions, "total"], rows, numeric=range(1, len(conditions) + 2)))
        codes = [(x["participant_id"], x["completion_code"], self.condition(x["participant_id"]))
                 for x in participants if x["completion_code"]]
        by_code = Counter(c for _, _, c in codes)
        per = ", ".join(f"{c} {by_code[c]}" for c in conditions if by_code.get(c))
        parts.append(f"<h3>Completion codes</h3><p>{_plural(len(codes), 'code')} issued"
                     f"{' (' + h.text(per) + ')' if per else ''}.</p>")
        if codes:
            listing = h.table(["participant", "code", "condition"], codes)
            parts.append(f"<details><summary>Show the codes</summary>{listing}</details>")
        return "\n".join(parts)

    # --- 2. durations ----------------------------------------------------------------------

    def durations(self) -> str:
        if not self.data.has("visits"):
            return h.empty("This file has no visits table (written by an older igym): no visit durations.")
        per_scene: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for visit in self.data.visits:
            if number(visit["duration_s"]):
                per_scene[visit["scene"]].append((visit["participant_id"], float(visit["duration_s"])))
        if not per_scene:
            return h.empty("No finished visits yet.")
        groups = [(scene, self.by_condition(per_scene[scene])) for scene in self.scene_order if scene in per_scene]
        fig = self.plots.strips(groups, self.colors, title="Time spent on each scene", xlabel="visit duration (s)")
        rows = []
        visits = self.summary["visits"]
        for scene, _ in groups:
            values = [v for _, v in per_scene[scene]]
            info = visits.get(scene, {})
            rows.append([scene, info.get("kind", ""), info.get("count", len(values)), _fmt(statistics.median(values)),
                         _fmt(min(values)), _fmt(max(values)),
                         ", ".join(f"{o} {n}" for o, n in sorted(info.get("outcomes", {}).items(),
                                                                  key=lambda kv: -kv[1]))])
        return "\n".join([
            self.figure("durations", fig, "visit durations per scene",
                        "One dot per visit (duration_s), scenes in plan order; a box when a condition has five or "
                        "more visits. The axis is logarithmic when durations differ by more than 50×."),
            h.table(["scene", "kind", "visits", "median s", "min s", "max s", "outcomes"], rows, numeric=(2, 3, 4, 5))])

    # --- 3. returns ------------------------------------------------------------------------

    def returns(self) -> str:
        if not self.data.episodes:
            return h.empty("No episodes recorded.")
        per_group: dict[str, list[tuple[str, float]]] = defaultdict(list)
        agents_of: dict[str, set[str]] = defaultdict(set)
        no_human = 0
        for episode in self.data.episodes:
            humans = human_seats(episode)
            if not humans:
                no_human += 1
            for agent in humans:
                agents_of[episode["scene"]].add(agent)
        for episode in self.data.episodes:
            returns = episode["returns"] if isinstance(episode["returns"], dict) else {}
            for agent, participant in human_seats(episode).items():
                value = returns.get(agent)
                if number(value):
                    scene = episode["scene"]
                    key = scene if len(agents_of[scene]) == 1 else f"{scene} · {agent}"
                    per_group[key].append((participant, float(value)))
        if not per_group:
            return h.empty("No returns of human seats recorded" + (f" ({_plural(no_human, 'episode')} had no human "
                                                                    f"seat)." if no_human else "."))
        keys = [k for scene in self.scene_order for k in sorted(per_group) if k == scene or
                k.startswith(scene + " · ")]
        keys += [k for k in per_group if k not in keys]
        groups = [(k, self.by_condition(per_group[k])) for k in keys]
        fig = self.plots.strips(groups, self.colors, title="Human players' returns per episode",
                                xlabel="return (sum of rewards in the episode)", log=False)
        rows = []
        for key, by in groups:
            for condition, values in by.items():
                rows.append([key, condition, len(values), _fmt(statistics.fmean(values)),
                             _fmt(statistics.stdev(values)) if len(values) > 1 else "–", _fmt(min(values)),
                             _fmt(max(values))])
        note = (f'<p class="note">{_plural(no_human, "episode")} without a human seat (AI only) '
                f"{'is' if no_human == 1 else 'are'} left out.</p>") if no_human else ""
        return "\n".join([
            self.figure("returns", fig, "returns of human seats per scene and condition",
                        "One dot per human seat per episode (episodes.returns of the agents episodes.seats marks "
                        "human). Scenes with several human seats get a row per seat."),
            h.table(["scene", "condition", "episodes", "mean", "SD", "min", "max"], rows, numeric=(2, 3, 4, 5, 6)),
            note])

    # --- 4. answers ------------------------------------------------------------------------

    def answers(self) -> str:
        if not self.data.has("answers"):
            return h.empty("This file has no answers table (written by an older igym): no questionnaire answers.")
        if not self.data.answers:
            return h.empty("No questionnaire answers recorded.")
        order: dict[tuple[str, str], int] = {}
        for visit in self.data.visits:  # the survey's own question order, as the participant saw it
            if isinstance(visit["answers"], dict):
                for question in visit["answers"]:
                    order.setdefault((visit["scene"], str(question)), len(order))
        values: dict[tuple[str, str], list[tuple[str, Any]]] = defaultdict(list)
        for answer in self.data.answers:
            values[(answer["scene"], answer["question"])].append((answer["participant_id"], answer["value"]))
        scene_rank = {s: i for i, s in enumerate(self.scene_order)}
        keys = sorted(values, key=lambda k: (scene_rank.get(k[0], len(scene_rank)), order.get(k, len(order)), k[1]))
        self._find_definitions(keys)
        parts, scene = [self._definitions_note(keys)], None
        for key in keys:
            if key[0] != scene:
                if scene is not None:
                    parts.append("</div>" + self._response_times(scene, [k for k in keys if k[0] == scene]))
                scene = key[0]
                parts.append(f"<h3>{h.text(scene)}</h3><div class=\"grid\">")
            parts.append(self._question(key, values[key]))
        assert scene is not None  # there are answers, so the loop saw a scene
        parts.append("</div>" + self._response_times(scene, [k for k in keys if k[0] == scene]))
        return "\n".join(parts)

    def _find_definitions(self, keys: list[tuple[str, str]]) -> None:
        """Each question's definition: the data file's, else the experiment file's (when given)."""
        self.definitions = from_data(self.data)
        lacking = [k for k in keys if k not in self.definitions]
        if lacking and self.experiment is not None:
            found, self.missing_scenes = from_experiment(self.data, self.experiment, lacking)
            self.definitions.update(found)

    def _response_times(self, scene: str, keys: list[tuple[str, str]]) -> str:
        """When a survey's questions were answered (answers.first_s, last_s, changes), when its
        pages timed them: a figure with one band per question and a table."""
        timed: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for answer in self.data.answers:
            if answer["scene"] == scene and number(answer["first_s"]):
                timed[(scene, answer["question"])].append(answer)
        if not timed:
            return ""
        shown = [k for k in keys if k in timed]
        groups = [(question, self.by_condition([(a["participant_id"], float(a["first_s"])) for a in timed[key]]))
                  for key in shown for question in (key[1],)]
        fig = self.plots.strips(groups, self.colors, title=f"{scene}: when each question was first answered",
                                xlabel="seconds since the page opened", log=False)
        rows = []
        for key in shown:
            items = timed[key]
            changes = [int(a["changes"] or 0) for a in items]
            rows.append([key[1], len(items), _fmt(statistics.median(float(a["first_s"]) for a in items)),
                         _fmt(statistics.median(float(a["last_s"]) for a in items)),
                         f"{sum(1 for c in changes if c)} ({_fmt(max(changes))} most)"])
        return "\n".join([
            self.figure("answers", fig, f"response times of {scene}",
                        "One dot per answer: the seconds from the page's opening to the first answer "
                        "(answers.first_s), questions in the order shown. The page timed them on the participant's "
                        "machine, whatever gave the answer (mouse, keys, typing)."),
            h.table(["question", "timed answers", "median first answer s", "median last change s",
                     "answers changed"], rows, numeric=(1, 2, 3))])

    def _question(self, key: tuple[str, str], items: list[tuple[str, Any]]) -> str:
        scene, question = key
        stats = self.summary["answers"].get(scene, {}).get(question, {})
        given = [(p, v) for p, v in items if v is not None]
        skipped = len(items) - len(given)
        line = f"n {len(given)}" + (f", skipped {skipped}" if skipped else "")
        if stats.get("mean") is not None and "values" not in stats:
            line += f", mean {_fmt(stats['mean'])}" + (f", SD {_fmt(stats['sd'])}" if stats.get("sd") else "")
        title = f"{scene} · {question}"
        alt = f"answers to {question}"
        if not given:
            return f"<div>{h.empty(f'{title}: every answer skipped.')}</div>"
        made = chart(key, self.definitions.get(key), given, self._tally, self.by_condition)
        self.charts.append(made)
        line += ", several options each" if made.several else ""
        line += f", scale from the {made.source}" if made.source != FROM_DATA and made.draw != "text" else ""
        caption = "; ".join([line, *made.notes])
        if made.text:
            caption = f"“{made.text}” — {caption}"
        if made.draw == "counts":
            fig = self.plots.count_bars(made.levels, made.counts, self.colors, title=title, xlabel=made.xlabel,
                                        horizontal=made.horizontal)
            return f"<div>{self.figure('answers', fig, alt, caption)}</div>"
        if made.draw == "dots":
            fig = self.plots.strips([(question, made.values)], self.colors, title=title, xlabel=made.xlabel,
                                    log=False, width_in=self.plots.SMALL_IN, limits=made.axis)
            return f"<div>{self.figure('answers', fig, alt, caption)}</div>"
        texts = [(p, v if isinstance(v, str) else str(v)) for p, v in given]
        shown = texts[:FREE_TEXT_EXAMPLES]
        quotes = "".join(f"<blockquote>{h.text(t)} <small>— {h.text(p)}, {h.text(self.condition(p))}"
                         f"</small></blockquote>" for p, t in shown)
        more = f'<p class="note">and {len(texts) - len(shown)} more (the export has them all)</p>' \
            if len(texts) > len(shown) else ""
        return f"<div><h4>{h.text(title)}</h4><p class=\"note\">{h.text(caption)}, free text:</p>{quotes}{more}</div>"

    def _tally(self, levels: list[Any], pairs: list[tuple[str, Any]]) -> dict[str, list[int]]:
        """Answers per level and condition, one count per level (zeros kept: a scale point or
        option nobody chose is a bar of 0); conditions without any answer are left out."""
        counts: dict[str, list[int]] = {}
        tally = Counter((self.condition(p), v) for p, v in pairs)
        for condition in self.colors:
            row = [tally.get((condition, level), 0) for level in levels]
            if any(row):
                counts[condition] = row
        return counts

    def _definitions_note(self, keys: list[tuple[str, str]]) -> str:
        """Where the questions' scales come from, said once above the answers."""
        sources = Counter(self.definitions[k].source if k in self.definitions else FROM_ANSWERS for k in keys)
        if set(sources) == {FROM_DATA}:
            return ("<p class=\"note\">Every question is drawn on its own scale, as the survey declared it (the "
                    "questions table): every point of a scale and every option, in the survey's order, answered or "
                    "not; sliders and numbers on their declared range.</p>")
        parts = []
        if sources.get(FROM_EXPERIMENT):
            parts.append(f"{_plural(sources[FROM_EXPERIMENT], 'question')} on the scales of the experiment file "
                         f"{self.experiment_file}")
        if sources.get(FROM_ANSWERS):
            hint = "" if self.experiment is not None else " (give the experiment file: report --experiment FILE)"
            parts.append(f"{_plural(sources[FROM_ANSWERS], 'question')} from the answers alone{hint} — there a "
                         f"scale runs from the smallest answer to the largest, options nobody chose are missing and "
                         f"options are in order of frequency")
        missing = f" The experiment file has no scene {', '.join(self.missing_scenes)}." if self.missing_scenes else ""
        return (f"<p class=\"note\">This file does not record every question's definition (files written before "
                f"igym recorded them). Drawn: {'; '.join(h.text(p) for p in parts)}.{h.text(missing)}</p>")

    # --- 5. timing -------------------------------------------------------------------------

    def timing(self) -> str:
        parts = ["<h3>Frame intervals</h3>"]
        per_scene: dict[str, list[tuple[str, float]]] = defaultdict(list)
        worst: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for episode in self.data.episodes:
            timing = episode["timing"]
            if isinstance(timing, dict) and number(timing.get("sd_ms")) and timing.get("frames"):
                per_scene[episode["scene"]].append((episode["participant_id"], float(timing["sd_ms"])))
                worst[episode["scene"]].append(timing)
        if per_scene:
            t = self.summary["timing"]
            parts.append(f"<p>{t['frames']:,} frames in {_plural(t['episodes'], 'episode')}: interval mean "
                         f"{t['mean_ms']:.2f} ms, SD {t['sd_ms']:.2f} ms (pooled), longest {t['max_ms']:.1f} ms; "
                         f"{t['dropped']:,} dropped ({100 * t['dropped_share']:.2f} %).</p>")
            groups = [(s, self.by_condition(per_scene[s])) for s in self.scene_order if s in per_scene]
            fig = self.plots.strips(groups, self.colors, title="Frame-interval SD per episode",
                                    xlabel="SD of the intervals between frames shown (ms)",
                                    reference=(FRAME_SD_TARGET_MS, f"{FRAME_SD_TARGET_MS:g} ms target"), log=False)
            parts.append(self.figure("timing", fig, "frame interval SD per episode",
                                     "One dot per episode (episodes.timing.sd_ms). Smooth play keeps it under "
                                     f"{FRAME_SD_TARGET_MS:g} ms."))
            rows = [[s, len(worst[s]), _fmt(max(float(x.get("max_ms") or 0) for x in worst[s])),
                     sum(int(x.get("dropped") or 0) for x in worst[s])] for s, _ in groups]
            parts.append(h.table(["scene", "episodes", "longest interval ms", "dropped frames"], rows,
                                 numeric=(1, 2, 3)))
        else:
            parts.append(h.empty("No frame timing recorded (episodes.timing is empty: e.g. games run on the "
                                 "server, whose clients time their own frames)."))
        if not self.data.has("events"):
            parts.append(h.empty("This file has no events table: clock skips, round trips and stalls unknown."))
            return "\n".join(parts)
        parts.append(self._event_plot("clock_skip", "behind_s", "s", "Clock skips", "how far behind the clock was (s)",
                                      "The game loop fell behind its schedule and skipped ahead "
                                      "(events clock_skip, data behind_s)"))
        parts.append(self._event_plot("rtt", "ms", "ms", "Round trips", "round-trip time (ms)",
                                      "Pings between the server and each participant (events rtt)"))
        parts.append(self._event_plot("stall", "ms", "ms", "Lockstep stalls", "stall (ms)",
                                      "A lockstep client waited for the other players' inputs (events stall)"))
        return "\n".join(parts)

    def _event_plot(self, kind: str, key: str, unit: str, title: str, xlabel: str, what: str) -> str:
        pairs = [(e["participant_id"], float(e["data"][key])) for e in self.data.events
                 if e["kind"] == kind and isinstance(e["data"], dict) and number(e["data"].get(key))]
        head = f"<h3>{h.text(title)}</h3><p class=\"note\">{h.text(what)}.</p>"
        if not pairs:
            return head + h.empty("None recorded.")
        people = list(dict.fromkeys(p for p, _ in pairs))
        total = sum(v for _, v in pairs)
        summary = (f"<p>{_plural(len(pairs), 'event')} from {_plural(len(people), 'participant')}; median "
                   f"{_fmt(statistics.median(v for _, v in pairs))} {unit}, largest {_fmt(max(v for _, v in pairs))}"
                   f" {unit}{f', {_fmt(total)} {unit} in all' if kind != 'rtt' else ''}.</p>")
        if len(people) <= PER_PARTICIPANT_MAX:
            order = {p["participant_id"]: i for i, p in enumerate(self.data.participants)}
            people.sort(key=lambda p: (order.get(p, len(order)), p))
            groups = [(p, self.by_condition([(q, v) for q, v in pairs if q == p])) for p in people]
            caption = "One row per participant, one dot per event."
        else:
            groups = [("all participants", self.by_condition(pairs))]
            caption = "One dot per event, one row per condition."
        fig = self.plots.strips(groups, self.colors, title=title, xlabel=xlabel)
        return head + summary + self.figure("timing", fig, f"{title} per participant", caption)

    # --- 6. flags --------------------------------------------------------------------------

    def compute_flags(self) -> None:
        self.inputs = seat_inputs(self.db, self.data)
        self.losses = focus_losses(self.data.events)
        self.flags = find_flags(self.data, self.inputs, self.losses)
        self.flags_by_participant: dict[str, list[Flag]] = defaultdict(list)
        for flag in self.flags:
            self.flags_by_participant[flag.participant_id].append(flag)

    def flags_section(self) -> str:
        rules = (f"<ul class=\"rules\">"
                 f"<li><b>long focus loss</b>: the window lost the focus for more than {FOCUS_LONGEST_S:g} s at "
                 f"once, or {FOCUS_TOTAL_S:g} s in all (focus_lost → that participant's next focus_gained).</li>"
                 f"<li><b>idle keys</b>: in an episode of at least {IDLE_MIN_STEPS} steps a key press chose the "
                 f"human seat's action in fewer than {100 * IDLE_HUMAN_SHARE:g} % of steps (the rest: the key "
                 f"map's default or previous action), or no key was held or changed for more than "
                 f"{IDLE_GAP_S:g} s of game time.</li>"
                 f"<li><b>impossible times</b>: a visit ending before it started or lasting 0 s (skipped games "
                 f"aside), a survey answered in less than {MIN_SECONDS_PER_QUESTION:g} s per question (where the "
                 f"page timed its answers: the median gap between one first answer and the next, the first from "
                 f"the page's opening; otherwise the visit's duration per answer), an episode ending before it "
                 f"started.</li></ul>")
        parts = [rules]
        if not self.data.participants:
            parts.append(h.empty("No participants yet."))
            return "\n".join(parts)
        flagged = self.flags_by_participant
        parts.append(f"<p><span class=\"{'flag' if flagged else 'ok'}\">{len(flagged)} of "
                     f"{_plural(len(self.data.participants), 'participant')} flagged</span>"
                     f"{'' if flagged else ' — nothing to look at.'}</p>")
        if flagged:
            status = {p["participant_id"]: p["status"] or "started" for p in self.data.participants}
            rows = []
            for participant, flags in flagged.items():
                kinds = "<br>".join(f'<span class="flag">{h.text(k)}</span>'
                                    for k in dict.fromkeys(f.kind for f in flags))
                details = "<ul>" + "".join(f"<li>{h.text(f.detail)}</li>" for f in flags) + "</ul>"
                rows.append([participant, self.condition(participant), status.get(participant, "?"), kinds, details])
            parts.append(h.table(["participant", "condition", "status", "reason", "numbers"], rows, raw=(3, 4)))
        if self.losses:
            rows = [[p, loss.count, _fmt(loss.total_s), _fmt(loss.longest_s), loss.not_regained]
                    for p, loss in self.losses.items()]
            parts.append("<h3>Focus losses</h3>" + h.table(
                ["participant", "losses", "total s", "longest s", "not regained"], rows, numeric=(1, 2, 3, 4)))
        points = [(s.share, s.longest_idle_s, self.condition(s.participant_id), s.participant_id)
                  for s in self.inputs if s.share is not None and s.longest_idle_s is not None]
        if points:
            fig = self.plots.input_scatter(points, self.colors, title="Key presses of human seats per episode",
                                           share_limit=IDLE_HUMAN_SHARE, gap_limit=IDLE_GAP_S)
            parts.append(self.figure("flags", fig, "key presses per episode",
                                     "One dot per human seat per episode (from the steps table). Idle seats sit "
                                     "left of or above the dashed limits."))
        return "\n".join(parts)

    # --- the page --------------------------------------------------------------------------

    def build(self) -> Report:
        self.compute_flags()
        makers: dict[str, Callable[[], str]] = {"funnel": self.funnel, "durations": self.durations,
                                                "returns": self.returns, "answers": self.answers,
                                                "timing": self.timing, "flags": self.flags_section}
        sections = [h.section(sid, title, LEADS[sid], makers[sid]()) for sid, title in SECTIONS]
        experiments = ", ".join(sorted(e for e in self.summary["participants"]["by_experiment"] if e != "(none)"))
        html = h.page(f"igym report: {experiments or self.path.name}", self.header(), sections)
        report = Report(html, self.figures, self.flags, len(self.data.participants), charts=self.charts)
        report.pdf_pages = self._pdf_front()
        return report

    def _pdf_front(self) -> list[Any]:
        s = self.summary
        p = s["participants"]
        lines = [f"File: {self.path.name}", f"Made: {self.now:%Y-%m-%d %H:%M %Z}",
                 f"Experiments: {', '.join(sorted(p['by_experiment']))}",
                 f"Participants: {p['count']} (" + ", ".join(f"{k} {v}" for k, v in sorted(p["by_status"].items()))
                 + ")", "Conditions: " + ", ".join(f"{k} {v}" for k, v in sorted(p["by_condition"].items())),
                 f"Visits {len(self.data.visits):,}, episodes {len(self.data.episodes):,}, "
                 f"steps {s['steps']['rows']:,}, answers {len(self.data.answers):,}", "",
                 f"Flagged: {len(self.flags_by_participant)} of {p['count']} participants"]
        lines += [f"  {f.participant_id} — {f.kind}: {f.detail}" for f in self.flags]
        lines += ["", "The figures follow, one per page; the HTML report has the tables."]
        title = "Study report: " + (", ".join(sorted(e for e in p["by_experiment"] if e != "(none)")) or self.path.name)
        return self.plots.text_pages(title, lines)


SECTIONS = (("funnel", "Participant funnel"), ("durations", "Durations per scene"),
            ("returns", "Returns per episode"), ("answers", "Answers per question"),
            ("timing", "Timing quality"), ("flags", "Flags"))
LEADS = {
    "funnel": "How many participants reached each position of the study, their status and completion codes.",
    "durations": "How long each visit of each scene took (visits.duration_s), scenes in plan order.",
    "returns": "Episode returns of the human players, per scene and condition.",
    "answers": "Questionnaire answers, question by question on each question's own scale, split by condition, "
               "and when each was answered.",
    "timing": "How evenly frames were shown, and clock skips, network round trips and lockstep stalls.",
    "flags": "Participants whose data deserves a look before analysis, with the rule and the numbers.",
}


def build_report(db: Any, path: str | Path, *, now: datetime.datetime | None = None,
                 experiment: Any = None) -> Report:
    """The report of the study open on ``db`` (a DB-API connection), as HTML and figures.
    ``experiment`` (an :class:`~igym.experiment.Experiment`) gives the questions' scales where
    the file does not record them (files written before schema 4)."""
    require_matplotlib()
    return _Builder(db, path, now, experiment).build()


def check_writable(out: Path) -> None:
    """Refuse an output path that cannot be written before the report is built (one line)."""
    folder = out.parent
    if out.is_dir():
        raise IgymError(f"--out {out}: is a folder — give a file name such as {out / 'report.html'}")
    if not folder.is_dir():
        raise IgymError(f"--out {out}: no folder {folder} — create it first or write elsewhere")
    if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise IgymError(f"--out {out}: not writable — choose another place")


def _write_atomic(out: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the same folder, then rename: no half-written report.
    (Made with ``open``, not ``mkstemp``: the report gets the usual permissions, to be shared.)"""
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_report(db: Any, study: str | Path, out: str | Path, *, pdf: bool = False,
                 experiment: Any = None) -> tuple[Report, list[Path]]:
    """Build the report and write ``out`` (HTML) and, with ``pdf``, ``<out stem>.pdf`` beside it."""
    out = Path(out)
    targets = [out] + ([out.with_suffix(".pdf")] if pdf else [])
    for target in targets:
        if target.resolve() == Path(study).resolve():
            raise IgymError(f"--out {out}: that would overwrite the study's data file — give an .html name")
        check_writable(target)
    report = build_report(db, study, experiment=experiment)
    _write_atomic(out, lambda name: Path(name).write_text(report.html, encoding="utf-8"))
    if pdf:
        from .report_plots import Pdf

        def write_pdf(name: Path) -> None:
            document = Pdf(name)
            try:
                for page in report.pdf_pages:
                    document.add(page)
                for _, fig in report.figures:
                    document.add(fig)
            finally:
                document.close()
        _write_atomic(targets[1], write_pdf)
    return report, targets
