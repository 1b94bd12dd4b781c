"""When each question of a survey page was answered: response times per item, sans I/O.

A visit's duration says how long a page was open, not how it was answered. jsPsych and
PsychoPy record a response time per item; igym records, per question, the time of the first
answer (``first_s``), of the last change (``last_s``) — both in seconds since the page
opened — and how many times the answer changed after the first (``changes``; for text, every
edit). The page (desktop, web, networked client) feeds every value it reads to
:class:`AnswerTimes` whatever changed it — mouse, keyboard, the autopilot — so one rule
times every input path. The times travel with the answers (``StudyRun.finish_visit``, the
``page`` message, uploaded visit records) and land in the ``answers`` table's ``first_s``,
``last_s`` and ``changes`` columns. Over the network they are the client's own report: the
server checks their form (:func:`problem`), it cannot check the clock they were read from.
"""

from __future__ import annotations

import math
from typing import Any
from collections.abc import Iterable, Mapping

FIELDS = ("first_s", "last_s", "changes")
MAX_SECONDS = 1e7  # about 4 months: any page open longer is not a time a participant took
MAX_CHANGES = 1_000_000


def _value(value: Any) -> Any:
    """An answer as compared: empty answers (None, "", []) are all "no answer"."""
    if value is None or value == "" or value == []:
        return None
    return list(value) if isinstance(value, (list, tuple)) else value


class AnswerTimes:
    """Per question: when it was first answered, when it last changed, how often it changed."""

    def __init__(self, question_ids: Iterable[str]) -> None:
        self._values: dict[str, Any] = {}
        self._times: dict[str, dict[str, Any]] = {}
        for question in question_ids:
            self._values[question] = None
            self._times[question] = {"first_s": None, "last_s": None, "changes": 0}

    def observe(self, question: str, value: Any, t: float) -> None:
        """The answer to ``question`` reads ``value`` at ``t`` seconds after the page opened
        (called after every input; a value that did not change is nothing)."""
        value = _value(value)
        if question not in self._values or value == self._values[question]:
            return
        self._values[question] = value
        times = self._times[question]
        t = round(max(0.0, t), 3)
        if times["first_s"] is None:
            if value is None:
                return
            times["first_s"] = t
        else:
            times["changes"] += 1
        times["last_s"] = t

    def report(self) -> dict[str, dict[str, Any]]:
        """Every question's ``{"first_s", "last_s", "changes"}`` (None, None, 0: never answered)."""
        return {question: dict(times) for question, times in self._times.items()}


def to_wire(times: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The compact form of the ``page`` message (``f``, ``l``, ``c``; unanswered questions left out)."""
    return {question: {"f": t["first_s"], "l": t["last_s"], "c": t["changes"]}
            for question, t in times.items() if t.get("first_s") is not None}


def from_wire(compact: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The times of :func:`to_wire`'s form under their own names (questions it leaves out were
    never answered: the data says 0 changes and no times for them)."""
    return {question: {"first_s": t.get("f"), "last_s": t.get("l"), "changes": t.get("c", 0)}
            for question, t in compact.items()}


def problem(times: Any, question_ids: Iterable[str]) -> str | None:
    """What is wrong with a page's times (None: nothing): only that survey's questions, numbers
    that are finite and ≥ 0, a last change no earlier than the first answer, changes only after one."""
    if not isinstance(times, Mapping):
        return "times must map question ids to their times"
    known = set(question_ids)
    for question, t in times.items():
        if question not in known:
            return f"times for {str(question)[:40]!r}, which is not a question of this page"
        if not isinstance(t, Mapping) or set(t) - set(FIELDS):
            return f"times of {question!r} must hold only {', '.join(FIELDS)}"
        first, last, changes = t.get("first_s"), t.get("last_s"), t.get("changes", 0)
        for name, number in (("first_s", first), ("last_s", last)):
            if number is not None and not (type(number) in (int, float) and math.isfinite(number)
                                           and 0 <= number <= MAX_SECONDS):
                return f"{name} of {question!r} must be seconds from 0 to {MAX_SECONDS:g}"
        if not (type(changes) is int and 0 <= changes <= MAX_CHANGES):
            return f"changes of {question!r} must be a whole number from 0 to {MAX_CHANGES}"
        if (first is None) != (last is None) or (first is None and changes):
            return f"times of {question!r}: first_s and last_s come together, and changes only after an answer"
        if first is not None and last < first:
            return f"times of {question!r}: the last change ({last}) is before the first answer ({first})"
    return None
