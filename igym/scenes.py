"""The page scenes of a study: Info, Consent, Survey and End.

They are plain declarative objects (jsPsych's idea: a timeline of plain objects), checked
when built, and drawn by whatever runtime runs the study (the pygame window with
pygame_gui widgets on the desktop and in the browser). The outcome of a visit — agreed,
declined, the answers — is decided here, not in the drawing code, so every runtime
records the same thing: :meth:`Survey.check` is the one validation of a page of answers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping, Sequence

from .errors import ExperimentError
from .markup import unknown_colors
from .questions import QUESTION_TYPES, definition, from_definition


def _check_text(where: str, name: str, value: Any, required: bool = True) -> None:
    if not isinstance(value, str) or (required and not value.strip()):
        raise ExperimentError(f"{where}: field {name!r} is required — the text the participant reads "
                              f"(markup: **bold**, *italic*, [red]colour[/red], '- ' bullets)")
    bad = unknown_colors(value)
    if bad:
        raise ExperimentError(f"{where}: field {name!r} uses unknown colour [{bad[0]}] — use a name such as "
                              f"[red] or a hex colour such as [#d04040]")


# How a page of each kind can be left (what a client may report; the server checks it).
PAGE_OUTCOMES: dict[str, tuple[str, ...]] = {"info": ("continued",), "consent": ("agreed", "declined"),
                                             "survey": ("continued",), "end": ("closed",)}


@dataclass
class Info:
    """A page of text (instructions, a debriefing) with a Continue button.

    ``min_time_s`` keeps the button disabled for that long, so instructions are not
    clicked away unread; ``image`` (a PNG path, relative to the experiment file) is
    shown under the text.
    """

    text: str = ""
    title: str = ""
    image: str | None = None
    min_time_s: float = 0.0
    button: str = "Continue"
    name: str = ""
    kind: str = field(default="info", init=False)

    def __post_init__(self) -> None:
        where = f"Info {self.name or self.title!r}"
        _check_text(where, "text", self.text)
        if not isinstance(self.min_time_s, (int, float)) or self.min_time_s < 0:
            raise ExperimentError(f"{where}: min_time_s must be a number of seconds ≥ 0, got {self.min_time_s!r}")
        if self.image is not None and not str(self.image).lower().endswith(".png"):
            raise ExperimentError(f"{where}: image must be a .png file, got {self.image!r}")


@dataclass
class Consent:
    """The consent form: Agree continues, Decline ends the study with ``declined_text``.

    The choice is recorded as the visit's outcome (``agreed``/``declined``) and a decline
    marks the participant ``declined`` (they never get a completion code).
    """

    text: str = ""
    title: str = "Consent"
    agree: str = "I agree"
    decline: str = "I do not agree"
    declined_text: str = "You did not give consent, so the study ends here. Thank you for your time."
    name: str = ""
    kind: str = field(default="consent", init=False)

    def __post_init__(self) -> None:
        where = f"Consent {self.name or self.title!r}"
        _check_text(where, "text", self.text)
        _check_text(where, "declined_text", self.declined_text)


@dataclass
class Survey:
    """A page of questions (see :mod:`igym.questions`), answered before Continue works.

    Question ids must be unique within the survey; each answer is stored typed, one row
    per question in the ``answers`` table and all together on the visit.
    """

    questions: Sequence[Any] = ()
    title: str = ""
    intro: str = ""
    button: str = "Continue"
    name: str = ""
    kind: str = field(default="survey", init=False)

    def __post_init__(self) -> None:
        where = f"Survey {self.name or self.title!r}"
        if isinstance(self.questions, (str, bytes)) or not isinstance(self.questions, Sequence) or not self.questions:
            raise ExperimentError(f"{where}: field 'questions' needs at least one question, e.g. "
                                  f"questions=[Likert('fun', 'The game was fun.')]")
        seen = set()
        for index, question in enumerate(self.questions):
            if not isinstance(question, QUESTION_TYPES):
                raise ExperimentError(f"{where}: question {index} is a {type(question).__name__} — use Likert, "
                                      f"Slider, Choice, MultiChoice, FreeText or Number from igym.questions")
            if question.id in seen:
                raise ExperimentError(f"{where}: two questions have id {question.id!r} — ids name the answers' "
                                      f"columns, so each must be different")
            seen.add(question.id)
        _check_text(where, "intro", self.intro, required=False)

    def check(self, raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Typed answers and, per question, the message to show where an answer is not valid."""
        answers: dict[str, Any] = {}
        problems: dict[str, str] = {}
        for question in self.questions:
            value = question.parse(raw.get(question.id))
            answers[question.id] = value
            message = question.validate(value)
            if message:
                problems[question.id] = message
        return answers, problems

    def random_answers(self, rng: random.Random) -> dict[str, Any]:
        """Valid answers drawn at random (the autopilot's; also answers optional questions)."""
        return {question.id: question.random_answer(rng) for question in self.questions}


@dataclass
class End:
    """The last page: thanks, the participant's completion code, and where to go next.

    ``redirect`` is a URL template with ``{code}`` and ``{participant}`` (e.g. Prolific's
    completion URL). The desktop shows it; the browser opens it. ``code=False`` shows no
    code (lab studies that do not pay by code).
    """

    text: str = "Thank you for taking part."
    title: str = "Thank you"
    code: bool = True
    redirect: str | None = None
    name: str = ""
    kind: str = field(default="end", init=False)

    def __post_init__(self) -> None:
        where = f"End {self.name or self.title!r}"
        _check_text(where, "text", self.text)
        if self.redirect is not None:
            try:
                self.redirect.format(code="X", participant="P")
            except (KeyError, IndexError, ValueError, AttributeError) as error:
                raise ExperimentError(f"{where}: redirect {self.redirect!r} is not a valid template ({error}) — "
                                      f"use {{code}} and {{participant}}, e.g. "
                                      f"'https://example.org/done?cc={{code}}'") from None

    def redirect_url(self, code: str | None, participant: str) -> str | None:
        """The redirect with this participant's code and id filled in."""
        if self.redirect is None:
            return None
        return self.redirect.format(code=code or "", participant=participant)


PAGE_TYPES = (Info, Consent, Survey, End)


# --- pages over the network ----------------------------------------------------------
# The server runs the study and a remote client shows its pages: a page travels as plain
# data (its kind and fields, its questions' kinds and fields) and is rebuilt — and so
# checked again — on the other side with the very classes above.

def page_to_wire(scene: Any) -> dict[str, Any]:
    """A page scene as plain msgpack/JSON-safe data (see :func:`page_from_wire`). The scene's
    ``name`` stays on the server: it labels the data, and the participant's machine has no use
    for it (a name such as "survey_strong" may give the manipulation away)."""
    from dataclasses import fields
    data: dict[str, Any] = {f.name: getattr(scene, f.name) for f in fields(scene) if f.init and f.name != "name"}
    if isinstance(scene, Survey):
        data["questions"] = [definition(q) for q in scene.questions]
    return {"kind": scene.kind, "fields": {k: _plain(v) for k, v in data.items()}}


def page_from_wire(data: dict[str, Any]) -> Any:
    """Rebuild a page scene sent by :func:`page_to_wire` (raises ExperimentError if malformed)."""
    kinds = {cls.__dataclass_fields__["kind"].default: cls for cls in PAGE_TYPES}
    try:
        cls = kinds[data["kind"]]
        fields_ = dict(data["fields"])
        if cls is Survey:
            fields_["questions"] = [from_definition(q) for q in fields_["questions"]]
        return cls(**fields_)
    except (KeyError, TypeError, ValueError) as error:
        raise ExperimentError(f"page data is malformed ({type(error).__name__}: {error})") from None


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
