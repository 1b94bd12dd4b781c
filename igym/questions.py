"""Survey questions: what is asked, which answers are valid, and a random valid answer.

Each question is a plain declarative object with an ``id`` (the column name of its
answer in the data), the ``text`` shown, and ``required``. ``validate(value)`` returns a
message to show beside the question (or None when the answer is fine) — the same rule
on the desktop, in the browser and when an autopilot answers — and ``parse`` turns what
a widget holds into the typed value stored (int for Likert, float/int for sliders and
numbers, str, list of str), so analyses never re-parse strings.

Questions are checked when built: a wrong field fails with one line naming the
question, the field and the fix.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, fields
from typing import Any
from collections.abc import Mapping, Sequence

from .errors import ExperimentError
from .markup import unknown_colors

AGREEMENT_7 = ("Strongly disagree", "Disagree", "Somewhat disagree", "Neither agree nor disagree",
               "Somewhat agree", "Agree", "Strongly agree")
AGREEMENT_5 = ("Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree")


def _check_common(question: Any) -> str:
    kind = type(question).__name__
    if not isinstance(question.id, str) or not question.id.strip() or not question.id.replace("_", "").isalnum():
        raise ExperimentError(f"{kind} question {question.id!r}: field 'id' must be a short name of letters, "
                              f"digits and _ (it becomes the answer's column), e.g. id='partner_skill'")
    where = f"{kind} {question.id!r}"
    if not isinstance(question.text, str) or not question.text.strip():
        raise ExperimentError(f"{where}: field 'text' is required — the question as the participant reads it")
    bad = unknown_colors(question.text)
    if bad:
        raise ExperimentError(f"{where}: text uses unknown colour [{bad[0]}] — use a name such as [red] or "
                              f"a hex colour such as [#d04040]")
    return where


@dataclass
class Likert:
    """A rating on ``points`` ordered points (answer: int 1..points).

    ``labels`` names every point (``len(labels) == points``) or only the two ends
    (two labels); the default for 5 and 7 points is the usual agreement scale.
    """

    id: str
    text: str
    points: int = 7
    labels: Sequence[str] | None = None
    required: bool = True
    kind: str = field(default="likert", init=False)

    def __post_init__(self) -> None:
        where = _check_common(self)
        if not isinstance(self.points, int) or not 2 <= self.points <= 11:
            raise ExperimentError(f"{where}: points must be a whole number from 2 to 11, got {self.points!r}")
        if self.labels is None:
            self.labels = {7: AGREEMENT_7, 5: AGREEMENT_5}.get(self.points, (str(1), str(self.points)))
        self.labels = tuple(str(label) for label in self.labels)
        if len(self.labels) not in (2, self.points):
            raise ExperimentError(f"{where}: labels has {len(self.labels)} entries — give one per point "
                                  f"({self.points}) or two (the ends of the scale)")

    def point_label(self, point: int) -> str:
        """The label under point ``point`` (1-based): every point's, or the ends' only."""
        labels = self.labels
        assert labels is not None  # __post_init__ filled it in
        if len(labels) == self.points:
            return labels[point - 1]
        return labels[0] if point == 1 else labels[1] if point == self.points else ""

    def parse(self, raw: Any) -> Any:
        return None if raw is None else int(raw)

    def validate(self, value: Any) -> str | None:
        if value is None:
            return "Please choose one of the points." if self.required else None
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= self.points:
            return f"Choose a point from 1 to {self.points}."
        return None

    def random_answer(self, rng: random.Random) -> Any:
        return rng.randint(1, self.points)


@dataclass
class Slider:
    """A value on a continuous (or stepped) scale from ``min`` to ``max``.

    A required slider must be moved by the participant (``start`` alone is no answer),
    so a default position never passes for an opinion.
    """

    id: str
    text: str
    min: float = 0
    max: float = 100
    step: float = 1
    start: float | None = None
    labels: Sequence[str] = ()
    required: bool = True
    kind: str = field(default="slider", init=False)

    def __post_init__(self) -> None:
        where = _check_common(self)
        if not all(isinstance(v, (int, float)) for v in (self.min, self.max, self.step)) or self.max <= self.min:
            raise ExperimentError(f"{where}: needs numbers min < max, got min={self.min!r} max={self.max!r}")
        if not self.step > 0:
            raise ExperimentError(f"{where}: step must be above 0, got {self.step!r}")
        if self.start is None:
            self.start = self.min + round((self.max - self.min) / 2 / self.step) * self.step
        if not self.min <= self.start <= self.max:
            raise ExperimentError(f"{where}: start={self.start!r} lies outside {self.min}..{self.max}")
        self.labels = tuple(str(label) for label in self.labels)
        if len(self.labels) not in (0, 2):
            raise ExperimentError(f"{where}: labels are the two ends of the scale, e.g. labels=('never', 'always')")

    @property
    def integer(self) -> bool:
        return all(float(v).is_integer() for v in (self.min, self.max, self.step))

    def parse(self, raw: Any) -> Any:
        if raw is None:
            return None
        value = self.min + round((float(raw) - self.min) / self.step) * self.step
        value = min(self.max, max(self.min, value))
        return int(round(value)) if self.integer else round(value, 10)

    def validate(self, value: Any) -> str | None:
        if value is None:
            return "Please move the slider to your answer." if self.required else None
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not self.min <= value <= self.max:
            return f"Choose a value from {self.min} to {self.max}."
        return None

    def random_answer(self, rng: random.Random) -> Any:
        return self.parse(rng.uniform(self.min, self.max))


@dataclass
class Choice:
    """One option out of ``options`` (answer: the option's text)."""

    id: str
    text: str
    options: Sequence[str] = ()
    required: bool = True
    kind: str = field(default="choice", init=False)

    def __post_init__(self) -> None:
        where = _check_common(self)
        _check_options(where, self.options)
        self.options = tuple(str(o) for o in self.options)

    def parse(self, raw: Any) -> Any:
        return None if raw in (None, "") else str(raw)

    def validate(self, value: Any) -> str | None:
        if value is None:
            return "Please choose an option." if self.required else None
        return None if value in self.options else "Choose one of the options."

    def random_answer(self, rng: random.Random) -> Any:
        return rng.choice(self.options)


@dataclass
class MultiChoice:
    """Any number of ``options`` (answer: list of the chosen options, in the order shown).

    ``min_choices``/``max_choices`` bound how many; a required question needs at least one.
    """

    id: str
    text: str
    options: Sequence[str] = ()
    min_choices: int = 0
    max_choices: int | None = None
    required: bool = True
    kind: str = field(default="multichoice", init=False)

    def __post_init__(self) -> None:
        where = _check_common(self)
        _check_options(where, self.options)
        self.options = tuple(str(o) for o in self.options)
        high = self.max_choices if self.max_choices is not None else len(self.options)
        if not (isinstance(self.min_choices, int) and isinstance(high, int) and 0 <= self.min_choices <= high
                <= len(self.options)):
            raise ExperimentError(f"{where}: need 0 ≤ min_choices ≤ max_choices ≤ {len(self.options)} options")
        if self.required and self.min_choices == 0:
            self.min_choices = 1
        self.max_choices = high

    def parse(self, raw: Any) -> Any:
        chosen = set(raw or ())
        return [o for o in self.options if o in chosen]

    def validate(self, value: Any) -> str | None:
        chosen = value or []
        if any(o not in self.options for o in chosen):
            return "Choose from the options shown."
        if not chosen and not self.required:
            return None
        if len(chosen) < self.min_choices:
            return f"Please choose at least {self.min_choices}."
        assert self.max_choices is not None  # __post_init__ filled it in
        if len(chosen) > self.max_choices:
            return f"Please choose at most {self.max_choices}."
        return None

    def random_answer(self, rng: random.Random) -> Any:
        assert self.max_choices is not None  # __post_init__ filled it in
        count = rng.randint(max(self.min_choices, 1 if self.required else 0), self.max_choices)
        return self.parse(rng.sample(list(self.options), count))


@dataclass
class FreeText:
    """Typed text (answer: str, surrounding spaces removed). ``lines`` > 1 gives a text box."""

    id: str
    text: str
    max_length: int = 500
    lines: int = 1
    required: bool = True
    kind: str = field(default="text", init=False)

    def __post_init__(self) -> None:
        where = _check_common(self)
        if not isinstance(self.max_length, int) or self.max_length < 1:
            raise ExperimentError(f"{where}: max_length must be a whole number ≥ 1")
        if not isinstance(self.lines, int) or not 1 <= self.lines <= 10:
            raise ExperimentError(f"{where}: lines must be 1 to 10")

    def parse(self, raw: Any) -> Any:
        text = "" if raw is None else str(raw).strip()
        return text or None

    def validate(self, value: Any) -> str | None:
        if value is None:
            return "Please write an answer." if self.required else None
        if len(value) > self.max_length:
            return f"Please keep it to {self.max_length} characters."
        return None

    def random_answer(self, rng: random.Random) -> Any:
        words = ["fine", "fast", "hard", "fun", "the", "partner", "was", "good", "slow", "ok"]
        return " ".join(rng.choice(words) for _ in range(rng.randint(1, 6)))


@dataclass
class Number:
    """A typed number (answer: int when ``integer``, else float), optionally within bounds."""

    id: str
    text: str
    min: float | None = None
    max: float | None = None
    integer: bool = True
    required: bool = True
    kind: str = field(default="number", init=False)

    def __post_init__(self) -> None:
        where = _check_common(self)
        for name in ("min", "max"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (int, float)):
                raise ExperimentError(f"{where}: {name} must be a number or None, got {value!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ExperimentError(f"{where}: min {self.min} is above max {self.max}")

    def parse(self, raw: Any) -> Any:
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return int(raw) if self.integer and float(raw).is_integer() else raw
        text = str(raw).strip().replace(",", ".")
        try:
            return int(text) if self.integer else float(text)
        except ValueError:
            return text  # kept as typed so validate can say what is wrong

    def validate(self, value: Any) -> str | None:
        if value is None:
            return "Please enter a number." if self.required else None
        if isinstance(value, str) or isinstance(value, bool):
            return "Please enter a whole number." if self.integer else "Please enter a number."
        if self.integer and not isinstance(value, int):
            return "Please enter a whole number."
        if not math.isfinite(value):  # "nan" and "inf" parse as floats but are no answer
            return "Please enter a number."
        if self.min is not None and value < self.min:
            return f"Please enter a number of at least {self.min}."
        if self.max is not None and value > self.max:
            return f"Please enter a number of at most {self.max}."
        return None

    def random_answer(self, rng: random.Random) -> Any:
        low = self.min if self.min is not None else 0
        high = self.max if self.max is not None else low + 100
        return rng.randint(int(low), int(high)) if self.integer else round(rng.uniform(low, high), 3)


def _check_options(where: str, options: Any) -> None:
    if isinstance(options, str) or not isinstance(options, Sequence) or len(options) < 2:
        raise ExperimentError(f"{where}: field 'options' needs at least two choices, e.g. "
                              f"options=['yes', 'no']")
    if len(set(map(str, options))) != len(options):
        raise ExperimentError(f"{where}: options repeat — each choice must be different")


Question = Likert | Slider | Choice | MultiChoice | FreeText | Number
QUESTION_TYPES = (Likert, Slider, Choice, MultiChoice, FreeText, Number)
KINDS: dict[str, type[Question]] = {"likert": Likert, "slider": Slider, "choice": Choice, "multichoice": MultiChoice,
                                    "text": FreeText, "number": Number}  # each class's ``kind``


def definition(question: Question) -> dict[str, Any]:
    """A question as plain JSON-safe data: its ``kind`` and every field it was built with, after
    the defaults were filled in (a Likert's labels, a slider's start), lists for tuples.

    This is what travels to a remote page and what the data file keeps of each question shown
    (the ``questions`` table), so the scale, the labels and the options in their order are
    known to an analysis even where nobody chose them. :func:`from_definition` rebuilds it."""
    data: dict[str, Any] = {"kind": question.kind}
    for f in fields(question):
        if f.init:
            value = getattr(question, f.name)
            data[f.name] = list(value) if isinstance(value, tuple) else value
    return data


def from_definition(data: Mapping[str, Any]) -> Question:
    """The question :func:`definition` describes, built — and so checked — again; a malformed
    one raises :class:`ExperimentError` naming the problem."""
    try:
        fields_ = dict(data)
        cls = KINDS[fields_.pop("kind")]
        return cls(**fields_)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ExperimentError(f"question data is malformed ({type(error).__name__}: {error})") from None
