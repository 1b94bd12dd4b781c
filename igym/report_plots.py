"""The report's figures, drawn with matplotlib's Agg renderer from plain numbers.

matplotlib is imported inside the functions, when a report is made: every module of the
core package must import without numpy or matplotlib (it also runs in a browser). Figures
are bare ``Figure`` objects on an Agg canvas — no pyplot, so making a report never changes
the backend or the state of a notebook that calls it. Every function returns a Figure
sized for a page column; :mod:`igym.report` turns it into an embedded PNG and a PDF page.
One look for all of them: white card, no top/right spines, light grid, the same colour
for a condition in every figure.
"""

from __future__ import annotations

import io
import random
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar
from collections.abc import Callable, Sequence

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

_P = ParamSpec("_P")
_R = TypeVar("_R")

WIDTH_IN = 9.0
"""Figure width in inches; at DPI below that is 1,350 px, shown 864 px wide (sharp on HiDPI screens)."""
SMALL_IN = 4.7
"""Width of the small figures (one per question) set two to a row."""
DPI = 150
TEXT = "#1f2933"
MUTED = "#6b7785"
GRID = "#e3e7ec"
ROW_IN = 0.34  # height of one strip row
STYLE: dict[RcKeyType, Any] = {
    "font.size": 9.5, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.titlelocation": "left",
    "axes.labelsize": 9.5, "axes.labelcolor": TEXT, "axes.edgecolor": "#9aa5b1", "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.color": GRID, "grid.linewidth": 0.8,
    "axes.axisbelow": True, "xtick.color": TEXT, "ytick.color": TEXT, "text.color": TEXT,
    "legend.frameon": False, "legend.fontsize": 9, "figure.facecolor": "white", "axes.facecolor": "white",
    "savefig.facecolor": "white", "font.family": "DejaVu Sans",
}


def _rc() -> Any:
    """The report's rcParams, in force while a figure is made and drawn (ticks are made at draw time)."""
    import matplotlib

    return matplotlib.rc_context(STYLE)


def figure(height_in: float, width_in: float = WIDTH_IN) -> tuple[Any, Any]:
    """A new figure with one axes on an Agg canvas, in the report's style."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _rc():
        fig = Figure(figsize=(width_in, max(1.6, height_in)), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    return fig, ax


def _styled(draw: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a drawing function inside the report's rcParams (ticks and texts read them when made)."""
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _rc():
            return draw(*args, **kwargs)
    wrapper.__doc__ = draw.__doc__
    wrapper.__name__ = draw.__name__
    return wrapper


def _legend(fig: Any, ax: Any, conditions: Sequence[str], colors: dict[str, str]) -> None:
    """Conditions' colours: beside the axes in wide figures, in a row at the bottom of small ones."""
    from matplotlib.patches import Patch

    if len(conditions) > 1 or (conditions and conditions[0] != "(none)"):
        handles = [Patch(facecolor=colors[c], edgecolor="none", label=c) for c in conditions]
        if fig.get_figwidth() < WIDTH_IN:
            fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8.5,
                       handlelength=1.0, handletextpad=0.4, columnspacing=1.2)
        else:
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="condition",
                      title_fontsize=9, borderaxespad=0.2)


def _plain_log_ticks(axis: Any) -> None:
    """Log axes labelled 0.1, 1, 10 rather than 10⁻¹, 10⁰, 10¹ (read at a glance)."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


def _log_scale_wanted(values: list[float]) -> bool:
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and len(values) > 1 and max(positive) / min(positive) > 50


@_styled
def strips(groups: Sequence[tuple[str, dict[str, list[float]]]], colors: dict[str, str], *, title: str,
           xlabel: str, reference: tuple[float, str] | None = None, log: bool | None = None,
           width_in: float = WIDTH_IN, limits: tuple[float, float] | None = None) -> Any:
    """Horizontal strip plots: one band per group (top to bottom in the given order), one
    row per condition inside it, every value a dot (jittered), a box when there are enough.
    ``limits``: the x axis spans this range (a slider's declared bounds), whatever the values.

    Dots rather than bars of means: studies are small and every participant should be seen.
    """
    conditions = sorted({c for _, by in groups for c in by}, key=list(colors).index)
    rows = sum(max(1, len(by)) for _, by in groups)
    fig, ax = figure(0.9 + ROW_IN * rows + 0.12 * len(groups), width_in)
    jitter = random.Random(0)
    y = 0.0
    ticks, labels, everything = [], [], []
    for group, by_condition in groups:
        present = [c for c in conditions if by_condition.get(c)]
        band = max(1, len(present))
        for i, condition in enumerate(present):
            values = by_condition[condition]
            everything.extend(values)
            row_y = y + i
            color = colors[condition]
            if len(values) >= 5:
                ax.boxplot([values], positions=[row_y], vert=False, widths=0.6, showfliers=False,
                           patch_artist=True, manage_ticks=False,
                           boxprops={"facecolor": color + "33", "edgecolor": color, "linewidth": 1.2},
                           medianprops={"color": color, "linewidth": 2},
                           whiskerprops={"color": color}, capprops={"color": color})
            ys = [row_y + jitter.uniform(-0.22, 0.22) for _ in values]
            ax.scatter(values, ys, s=22, color=color, alpha=0.85, edgecolors="white", linewidths=0.5, zorder=3)
        ticks.append(y + (band - 1) / 2)
        labels.append(group)
        y += band + 0.6
        if group != groups[-1][0]:
            ax.axhline(y - 0.8, color=GRID, linewidth=0.8)
    ax.set_yticks(ticks, labels if len(groups) > 1 else [""] * len(ticks))  # one group: the title names it
    ax.set_ylim(y - 0.6 - 0.5, -0.6)
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0)
    if limits is not None:
        low, high = min([limits[0], *everything]), max([limits[1], *everything])
        margin = (high - low) * 0.03 or 0.5
        ax.set_xlim(low - margin, high + margin)
    elif (log is None and _log_scale_wanted(everything)) or log:
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
    if reference is not None:
        ax.axvline(reference[0], color="#c0392b", linestyle="--", linewidth=1)
        ax.annotate(reference[1], (reference[0], 0), xycoords=("data", "axes fraction"), xytext=(3, 3),
                    textcoords="offset points", color="#c0392b", fontsize=8.5)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    _legend(fig, ax, conditions, colors)
    return fig


@_styled
def funnel(stages: Sequence[tuple[str, dict[str, int]]], colors: dict[str, str], *, title: str) -> Any:
    """How many participants reached each stage, top to bottom, stacked by condition."""
    conditions = sorted({c for _, by in stages for c in by}, key=list(colors).index)
    fig, ax = figure(0.9 + 0.36 * len(stages))
    top = max([sum(by.values()) for _, by in stages] + [1])
    for y, (_label, by_condition) in enumerate(stages):
        left = 0
        for condition in conditions:
            count = by_condition.get(condition, 0)
            if count:
                ax.barh(y, count, left=left, height=0.66, color=colors[condition], edgecolor="white", linewidth=0.6)
                left += count
        ax.text(left + top * 0.01, y, str(left), va="center", fontsize=8.5, color=TEXT)
    ax.set_yticks(range(len(stages)), [label for label, _ in stages])
    ax.set_ylim(len(stages) - 0.5, -0.6)
    ax.set_xlim(0, top * 1.12)
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("participants")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title)
    _legend(fig, ax, conditions, colors)
    return fig


@_styled
def count_bars(levels: Sequence[str], counts: dict[str, list[int]], colors: dict[str, str], *, title: str,
               xlabel: str, horizontal: bool = False, width_in: float = SMALL_IN) -> Any:
    """Counts of each answer level, one bar per condition side by side (Likert points, choices)."""
    conditions = [c for c in colors if c in counts]
    n = max(1, len(conditions))
    width = 0.8 / n
    if horizontal:
        fig, ax = figure(0.9 + 0.3 * len(levels) * max(1, n * 0.6), width_in)
    else:
        fig, ax = figure(2.3, width_in)
    for i, condition in enumerate(conditions):
        offsets = [k - 0.4 + width * (i + 0.5) for k in range(len(levels))]
        if horizontal:
            ax.barh(offsets, counts[condition], height=width * 0.92, color=colors[condition], label=condition)
        else:
            ax.bar(offsets, counts[condition], width=width * 0.92, color=colors[condition], label=condition)
    if horizontal:
        ax.set_yticks(range(len(levels)), [_short(level) for level in levels])
        ax.set_ylim(len(levels) - 0.5, -0.5)
        ax.set_xlabel("answers")
        ax.grid(axis="y", visible=False)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(xlabel)
    else:
        ax.set_xticks(range(len(levels)), [_short(level) for level in levels])
        ax.set_xlabel(xlabel)
        ax.set_ylabel("answers")
        ax.grid(axis="x", visible=False)
        ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title)
    _legend(fig, ax, conditions, colors)
    return fig


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


@_styled
def input_scatter(points: Sequence[tuple[float, float, str, str]], colors: dict[str, str], *, title: str,
                  share_limit: float, gap_limit: float) -> Any:
    """Each human seat of each episode: share of steps chosen by a key press against the
    longest stretch without keys; the flag limits drawn and the points past them named."""
    fig, ax = figure(3.0)
    conditions = [c for c in colors if any(p[2] == c for p in points)]
    for condition in conditions:
        xs = [100 * p[0] for p in points if p[2] == condition]
        ys = [p[1] for p in points if p[2] == condition]
        ax.scatter(xs, ys, s=26, color=colors[condition], alpha=0.85, edgecolors="white", linewidths=0.5, zorder=3,
                   clip_on=False)
    for share, gap, _, label in points:
        if share < share_limit or gap > gap_limit:
            ax.annotate(label, (100 * share, gap), xytext=(5, -3), textcoords="offset points", fontsize=8.5,
                        color=TEXT)
    ax.axvline(100 * share_limit, color="#c0392b", linestyle="--", linewidth=1)
    ax.axhline(gap_limit, color="#c0392b", linestyle="--", linewidth=1)
    ax.annotate("flag limits", (100 * share_limit, gap_limit), xytext=(4, 4), textcoords="offset points",
                color="#c0392b", fontsize=8.5)
    top = max([p[1] for p in points] + [gap_limit])
    ax.set_ylim(0, top * 1.15 if top > 0 else 1)
    ax.set_xlim(-1, 101)
    ax.set_xlabel("steps whose action came from a key press (%)")
    ax.set_ylabel("longest stretch without keys (s)")
    ax.set_title(title)
    _legend(fig, ax, conditions, colors)
    return fig


@_styled
def text_pages(title: str, lines: Sequence[str]) -> list[Any]:
    """A4 pages of text for the PDF (the header and the flags), which has no HTML around it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pages: list[Any] = []
    y = 0.0
    for line in [*lines] or [""]:
        for chunk in _wrap(line, 100):
            if not pages or y < 0.05:
                fig = Figure(figsize=(8.27, 11.69), dpi=DPI)
                FigureCanvasAgg(fig)
                fig.text(0.07, 0.95, title if not pages else f"{title} (continued)", fontsize=16,
                         fontweight="bold", va="top", color=TEXT)
                pages.append(fig)
                y = 0.91
            pages[-1].text(0.07, y, chunk, fontsize=9, va="top", color=TEXT)
            y -= 0.018
    return pages


def _wrap(line: str, width: int) -> list[str]:
    words, out, current = line.split(" "), [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = "   " + word
        else:
            current = f"{current} {word}" if current else word
    out.append(current)
    return out


def png(fig: Any) -> bytes:
    """The figure as PNG bytes (drawn inside the report's style: ticks are made at draw time)."""
    buffer = io.BytesIO()
    with _rc():
        fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


class Pdf:
    """The same figures, one per page, in a PDF (matplotlib's PdfPages)."""

    def __init__(self, path: Any) -> None:
        from matplotlib.backends.backend_pdf import PdfPages

        self.pages = PdfPages(path, metadata={"Creator": "igym report"})

    def add(self, fig: Any) -> None:
        with _rc():
            self.pages.savefig(fig)

    def close(self) -> None:
        self.pages.close()
