"""Info, Consent, Survey and End pages (and the lab's start screen), drawn with pygame_gui.

A page is a column of pygame_gui widgets in a scrolling container centred in the window,
with its buttons fixed at the bottom. Sizes follow the window's height (readable at
1280×720 and at 1920×1080). What a page *means* — valid answers, the outcome — is decided
by the scene objects of :mod:`igym.scenes`; this module only shows them and collects input.

Keyboard: Tab / Shift+Tab move between questions (the current one is marked), ←/→ or
digit keys choose a Likert point or move a slider, ↑/↓ move through choices, Space
ticks a choice, Enter presses the main button. An autopilot fills pages with valid
random answers through the same code paths the widgets use.

A survey page times its questions (:class:`igym.answer_times.AnswerTimes`): after every
input, and when the autopilot fills it, each question's value is read and compared with the
last one, so the first answer, the last change and the number of changes are timed the same
whichever way the answer came (a click, a key, typing, a slider's drag).
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field
from typing import Any, cast
from collections.abc import Callable, Sequence

import pygame
import pygame_gui
from pygame_gui.elements import (UIButton, UICheckBox, UIHorizontalSlider, UIImage, UILabel, UIScrollingContainer,
                                 UITextBox, UITextEntryBox, UITextEntryLine)

from igym.answer_times import AnswerTimes
from igym.markup import to_html
from igym.questions import Choice, FreeText, Likert, MultiChoice, Number, Slider
from igym.scenes import Consent, End, Info, Survey

from .typeface import FAMILY, theme_font

BASE_THEME: dict[str, Any] = {
    "defaults": {
        "colours": {"dark_bg": "#F4F4F2", "normal_text": "#1E1E1E", "normal_bg": "#E2E2E2",
                    "hovered_bg": "#CFD8EA", "selected_bg": "#3A6FD8", "selected_text": "#FFFFFF",
                    "active_bg": "#3A6FD8", "disabled_bg": "#ECECEC", "disabled_text": "#A0A0A0",
                    "normal_border": "#B8B8B8", "hovered_border": "#3A6FD8", "selected_border": "#2A5FC8",
                    "text_cursor": "#1E1E1E", "filled_bar": "#3A6FD8", "unfilled_bar": "#D0D0D0"},
    },
    "text_box": {"colours": {"dark_bg": "#00000000", "normal_border": "#00000000"},
                 "misc": {"border_width": "0", "shadow_width": "0", "padding": "2,2"}},
    # A multi-line answer box is a text box too: it gets its own border and background back, or
    # the participant sees no box to type in.
    "text_entry_box": {"colours": {"dark_bg": "#F4F4F2", "normal_border": "#B8B8B8"},
                       "misc": {"border_width": "1", "shadow_width": "0", "padding": "4,4"}},
    "scrolling_container": {"colours": {"dark_bg": "#F4F4F2"}},
    "label": {"colours": {"dark_bg": "#00000000", "normal_text": "#1E1E1E"}},
    "#error": {"colours": {"normal_text": "#C02828"}},
    "#title": {"colours": {"normal_text": "#111111"}},
    "#small": {"colours": {"normal_text": "#555555"}},
    "#point_label": {"colours": {"normal_text": "#555555"}, "misc": {"text_horiz_alignment": "center"}},
    # A slider's end labels sit at its two ends: the first starts where the track starts, the
    # second ends where it ends (a centred label stood under a quarter of the track).
    "#scale_start": {"colours": {"normal_text": "#555555"},
                     "misc": {"text_horiz_alignment": "left", "text_horiz_alignment_padding": "0"}},
    "#scale_end": {"colours": {"normal_text": "#555555"},
                   "misc": {"text_horiz_alignment": "right", "text_horiz_alignment_padding": "0"}},
}
PAGE_BG = (244, 244, 242)


# The widget types a page or the start screen uses: each gets the page font explicitly,
# because pygame_gui reads fonts only from a widget type's (or object id's) own block — a
# font under "defaults" is ignored, and the widgets then kept the toolkit's 14 pt Noto Sans
# at every window size (and drew arrows as empty boxes).
WIDGET_TYPES = ("button", "label", "text_box", "text_entry_line", "text_entry_box", "check_box", "drop_down_menu",
                "selection_list", "tool_tip")


def text_size(height: int) -> int:
    """The page's body text size in points at a window height (1280×720: 19, 1920×1080: 28)."""
    return max(14, round(height / 38))


def theme_for(height: int, custom: dict[str, Any] | None = None) -> dict[str, Any]:
    """The page theme at a window height: the bundled font (see :mod:`.typeface`) at sizes that
    scale with the height; ``custom`` (an experiment's theme, pygame_gui's format) overrides any
    entry."""
    size = text_size(height)
    theme = {key: {k: dict(v) if isinstance(v, dict) else v for k, v in value.items()}
             for key, value in BASE_THEME.items()}
    for widget in WIDGET_TYPES:
        theme.setdefault(widget, {})["font"] = theme_font(size)
    theme["#title"]["font"] = theme_font(round(size * 1.5), bold=True)
    theme["#small"]["font"] = theme_font(round(size * 0.8))
    theme["#point_label"]["font"] = theme_font(round(size * 0.8))
    theme["#scale_start"]["font"] = theme_font(round(size * 0.8))
    theme["#scale_end"]["font"] = theme_font(round(size * 0.8))
    theme["#error"]["font"] = theme_font(round(size * 0.85))
    for key, value in (custom or {}).items():
        theme.setdefault(key, {}).update(value)
    return theme


def make_manager(size: tuple[int, int], custom: dict[str, Any] | None) -> pygame_gui.UIManager:
    """A UI manager with the page theme and its fonts loaded up front (no stall on first use)."""
    manager = pygame_gui.UIManager(size, theme_for(size[1], custom))
    base = text_size(size[1])
    fonts: list[dict[str, str | int | float]] = []
    for point in {base, round(base * 1.5), round(base * 0.8), round(base * 0.85)}:
        for style in ("regular", "bold", "italic", "bold_italic"):
            fonts.append({"name": FAMILY, "point_size": point, "style": style})
    with warnings.catch_warnings():  # the theme has loaded some already; loading is what we want
        warnings.simplefilter("ignore", UserWarning)
        manager.preload_fonts(fonts)
    return manager


@dataclass
class PageResult:
    """How a page ended: its outcome, typed answers (surveys), or the window closed."""

    outcome: str
    answers: dict[str, Any] | None = None
    quit: bool = False
    timings: dict[str, dict[str, Any]] | None = None  # surveys: per question first_s, last_s, changes
    values: dict[str, Any] = field(default_factory=dict)  # start screen: participant id, condition…


class _QuestionWidgets:
    """The widgets of one question and how to read or set its raw value."""

    def __init__(self, question: Any) -> None:
        self.question = question
        self.raw: Any = None
        self.buttons: list[UIButton] = []
        self.boxes: list[UICheckBox] = []
        self.slider: UIHorizontalSlider | None = None
        self.value_label: UILabel | None = None
        self.entry: Any = None
        self.error: UILabel | None = None
        self.marker: UILabel | None = None
        self.cursor = 0  # keyboard position among options

    def set(self, value: Any) -> None:
        """Set the answer as if the participant had given it (also the autopilot's way)."""
        q = self.question
        if isinstance(q, (Likert, Choice)):
            index = (value - 1) if isinstance(q, Likert) else q.options.index(value)
            for i, button in enumerate(self.buttons):
                if i == index:
                    button.select()
                else:
                    button.unselect()
            self.cursor = index
            self.raw = value
        elif isinstance(q, MultiChoice):
            chosen = set(value or ())
            for option, box in zip(q.options, self.boxes):
                box.set_state(option in chosen)
            self.raw = [o for o in q.options if o in chosen]
        elif isinstance(q, Slider):
            assert self.slider is not None
            self.slider.set_current_value(value, warn=False)
            self.raw = value
            self._show_slider()
        else:
            self.entry.set_text("" if value is None else str(value))
            self.raw = value

    def read(self) -> Any:
        q = self.question
        if isinstance(q, MultiChoice):
            return [o for o, box in zip(q.options, self.boxes) if box.get_state() is True]
        if isinstance(q, (FreeText, Number)):
            return self.entry.get_text()
        return self.raw

    def _show_slider(self) -> None:
        if self.value_label is not None and self.raw is not None:
            self.value_label.set_text(str(self.question.parse(self.raw)))


class Page:
    """One page on screen: build the widgets, feed events, tell when it is done."""

    def __init__(self, surface: pygame.Surface, scene: Any, *, theme: dict[str, Any] | None = None,
                 base_dir: Any = None, code: str | None = None, participant: str = "",
                 min_time_s: float = 0.0, now: float = 0.0, text_override: str | None = None) -> None:
        if not pygame.font.get_init():
            pygame.font.init()  # pygame_gui loads its fonts through pygame.font
        self.surface = surface
        self.scene = scene
        self.size = surface.get_size()
        self.theme = theme
        self.manager = make_manager(self.size, theme)
        self.result: PageResult | None = None
        self.questions: list[_QuestionWidgets] = []
        self.buttons: dict[Any, str] = {}
        self.main_button: UIButton | None = None
        self.focus = 0
        self.opened_at = now
        self.min_time_s = min_time_s
        self.code = code
        self.participant = participant
        self.base_dir = base_dir
        self.text_override = text_override
        self.answer_times = AnswerTimes(q.id for q in scene.questions) if isinstance(scene, Survey) else None
        self._build()

    # --- layout -----------------------------------------------------------------------

    def relayout(self, surface: pygame.Surface) -> None:
        """Lay the page out again for a resized window, keeping what the participant did:
        their answers, which question has the focus, and the page's clock (``opened_at`` and
        the minimum time are not restarted)."""
        values = [widgets.read() for widgets in self.questions]
        self.manager.clear_and_reset()
        self.surface = surface
        self.size = surface.get_size()
        self.manager = make_manager(self.size, self.theme)
        self.questions, self.buttons, self.main_button = [], {}, None
        self._build()
        for widgets, value in zip(self.questions, values):
            if value is not None and value != "" and value != []:
                widgets.set(value)
        self._show_focus()

    def _build(self) -> None:
        width, height = self.size
        unit = max(14, round(height / 38))
        self.unit = unit
        page_w = min(width - 2 * unit, max(640, round(width * 0.62)))
        left = (width - page_w) // 2
        bar_h = round(unit * 3.4)
        self.container = UIScrollingContainer(pygame.Rect(left, unit, page_w, height - unit - bar_h),
                                              self.manager, allow_scroll_x=False)
        self.inner_w = page_w - 2 * unit
        self.y = 0
        scene = self.scene
        title = getattr(scene, "title", "")
        if title:
            self._textbox(f"<b>{_escape(title)}</b>", object_id="#title")
        text = self.text_override if self.text_override is not None else _page_text(scene)
        if text:
            self._textbox(to_html(text))
        if isinstance(scene, Info) and scene.image:
            self._image(scene.image)
        if isinstance(scene, End) and self.text_override is None:
            self._end_details()
        if isinstance(scene, Survey):
            for question in scene.questions:
                self._question(question)
        self.container.set_scrollable_area_dimensions((page_w - 20, self.y + unit))
        self._button_bar(left, page_w, height - bar_h, bar_h)

    def _textbox(self, html: str, object_id: str | None = None, x: int = 0, w: int | None = None) -> UITextBox:
        box = UITextBox(html, pygame.Rect(x, self.y, w or self.inner_w, -1), self.manager,
                        container=self.container, object_id=object_id)
        self.y += box.rect.height + self.unit // 3
        return box

    def _image(self, path: str) -> None:
        from pathlib import Path
        file = Path(path)
        if not file.is_absolute() and self.base_dir is not None:
            file = Path(self.base_dir) / file
        image = pygame.image.load(str(file))
        scale = min(1.0, self.inner_w / image.get_width(), (self.size[1] * 0.45) / image.get_height())
        w, h = round(image.get_width() * scale), round(image.get_height() * scale)
        UIImage(pygame.Rect((self.inner_w - w) // 2, self.y, w, h), pygame.transform.smoothscale(image, (w, h)),
                self.manager, container=self.container)
        self.y += h + self.unit

    def _end_details(self) -> None:
        scene: End = self.scene
        if self.code:
            self._textbox(f"Your completion code: <b>{_escape(self.code)}</b>")
        url = scene.redirect_url(self.code, self.participant)
        if url:
            self._textbox(f"Continue here: {_escape(url)}", object_id="#small")

    def _question(self, question: Any) -> None:
        widgets = _QuestionWidgets(question)
        unit, c, m = self.unit, self.container, self.manager
        marker_y = self.y
        star = "" if not question.required else " <font color='#C02828'>*</font>"
        self._textbox(to_html(question.text) + star, x=unit, w=self.inner_w - unit)
        widgets.marker = UILabel(pygame.Rect(0, marker_y, unit, unit * 2), "", m, container=c)
        row_h = round(unit * 2.2)
        if isinstance(question, (Likert, Choice)):
            labels = ([str(p) for p in range(1, question.points + 1)] if isinstance(question, Likert)
                      else list(question.options))
            if isinstance(question, Likert):
                gap = unit // 2
                bw = min(round(unit * 6), (self.inner_w - (len(labels) - 1) * gap) // len(labels))
                x0 = (self.inner_w - (bw * len(labels) + gap * (len(labels) - 1))) // 2
                for i, label in enumerate(labels):
                    button = UIButton(pygame.Rect(x0 + i * (bw + gap), self.y, bw, row_h), label, m, container=c)
                    widgets.buttons.append(button)
                    self.buttons[button] = f"q:{question.id}:{i}"
                self.y += row_h + 2
                self._likert_labels(question, x0, bw, gap)
            else:
                for i, label in enumerate(labels):
                    button = UIButton(pygame.Rect(unit, self.y, self.inner_w - 2 * unit, row_h), label, m,
                                      container=c)
                    widgets.buttons.append(button)
                    self.buttons[button] = f"q:{question.id}:{i}"
                    self.y += row_h + 4
        elif isinstance(question, MultiChoice):
            for option in question.options:
                box = UICheckBox(pygame.Rect(unit, self.y + unit // 4, unit + 4, unit + 4), option, m, container=c)
                widgets.boxes.append(box)
                self.y += row_h
        elif isinstance(question, Slider):
            start = cast(float, question.start)  # Slider.__post_init__ fills a missing start
            slider = UIHorizontalSlider(pygame.Rect(unit, self.y, self.inner_w - 5 * unit, row_h), start,
                                        (question.min, question.max), m, container=c,
                                        click_increment=question.step)
            widgets.slider = slider
            widgets.value_label = UILabel(pygame.Rect(self.inner_w - 3.6 * unit, self.y, 3.4 * unit, row_h), "–",
                                          m, container=c)
            self.y += row_h + 2
            if question.labels:
                track = slider.relative_rect
                half = track.width // 2
                UILabel(pygame.Rect(track.left, self.y, half, unit * 1.4), question.labels[0], m, container=c,
                        object_id="#scale_start")
                UILabel(pygame.Rect(track.left + half, self.y, track.width - half, unit * 1.4), question.labels[1],
                        m, container=c, object_id="#scale_end")
                self.y += round(unit * 1.4)
        elif isinstance(question, FreeText) and question.lines > 1:
            widgets.entry = UITextEntryBox(pygame.Rect(unit, self.y, self.inner_w - 2 * unit,
                                                       round(unit * 1.6 * question.lines) + 12), "", m, container=c)
            widgets.entry.rebuild_from_changed_theme_data()  # it was themed as a plain text box: no border
            self.y += widgets.entry.rect.height
        else:
            widgets.entry = UITextEntryLine(pygame.Rect(unit, self.y, min(self.inner_w - 2 * unit, 22 * unit), row_h),
                                            m, container=c)
            if isinstance(question, Number):
                widgets.entry.set_allowed_characters(list("0123456789") + ([] if question.integer else [".", ","])
                                                     + ["-"])
            else:
                widgets.entry.set_text_length_limit(question.max_length)
            self.y += row_h
        widgets.error = UILabel(pygame.Rect(unit, self.y, self.inner_w - unit, round(unit * 1.5)), "", m,
                                container=c, object_id="#error")
        self.y += round(unit * 1.5) + unit // 2
        self.questions.append(widgets)

    def _likert_labels(self, question: Likert, x0: int, bw: int, gap: int) -> None:
        labels = cast("Sequence[str]", question.labels)  # Likert.__post_init__ fills missing labels
        h = round(self.unit * 1.5)
        if len(labels) == question.points:
            for i in range(question.points):
                box = UITextBox(_escape(labels[i]),
                                pygame.Rect(x0 + i * (bw + gap) - gap // 2, self.y, bw + gap, -1), self.manager,
                                container=self.container, object_id="#point_label")
                h = max(h, box.rect.height)
        else:
            UILabel(pygame.Rect(x0, self.y, bw * 3, self.unit * 1.4), labels[0], self.manager,
                    container=self.container, object_id="#small")
            right = x0 + question.points * (bw + gap) - gap
            UILabel(pygame.Rect(right - bw * 3, self.y, bw * 3, self.unit * 1.4), labels[1],
                    self.manager, container=self.container, object_id="#small")
            h = round(self.unit * 1.5)
        self.y += h

    def _button_bar(self, left: int, page_w: int, top: int, bar_h: int) -> None:
        unit = self.unit
        bh, bw = round(unit * 2.3), round(unit * 11)
        y = top + (bar_h - bh) // 2
        scene = self.scene
        if isinstance(scene, Consent) and self.text_override is None:
            decline = UIButton(pygame.Rect(left + unit, y, bw, bh), scene.decline, self.manager)
            self.buttons[decline] = "declined"
            self.main_button = UIButton(pygame.Rect(left + page_w - unit - bw, y, bw, bh), scene.agree, self.manager)
            self.buttons[self.main_button] = "agreed"
        elif isinstance(scene, End) or self.text_override is not None:
            self.main_button = UIButton(pygame.Rect(left + page_w - unit - bw, y, bw, bh), "Close", self.manager)
            self.buttons[self.main_button] = "closed"
        else:
            label = getattr(scene, "button", "Continue")
            self.main_button = UIButton(pygame.Rect(left + page_w - unit - bw, y, bw, bh), label, self.manager)
            self.buttons[self.main_button] = "continued"
        if self.min_time_s > 0:
            self.main_button.disable()
        self._show_focus()

    # --- input ------------------------------------------------------------------------

    def handle(self, event: pygame.event.Event, now: float) -> None:
        """Feed one pygame event (widgets first, then page keys and button presses)."""
        self.manager.process_events(event)
        if event.type == pygame_gui.UI_BUTTON_PRESSED:
            action = self.buttons.get(event.ui_element)
            if action is not None:
                self._action(action, now)
        elif event.type == pygame_gui.UI_HORIZONTAL_SLIDER_MOVED:
            for widgets in self.questions:
                if widgets.slider is event.ui_element:
                    widgets.raw = event.value
                    widgets._show_slider()
        elif event.type == pygame.KEYDOWN:
            self._key(event, now)
        self._observe(now)

    def _observe(self, now: float) -> None:
        """Time every question whose answer changed (whatever changed it)."""
        if self.answer_times is not None:
            for widgets in self.questions:
                self.answer_times.observe(widgets.question.id, widgets.read(), now - self.opened_at)

    def _action(self, action: str, now: float) -> None:
        if action.startswith("q:"):
            _, question_id, index = action.split(":")
            for position, widgets in enumerate(self.questions):
                if widgets.question.id == question_id:
                    q = widgets.question
                    widgets.set(int(index) + 1 if isinstance(q, Likert) else q.options[int(index)])
                    self.focus = position
                    self._show_focus()
            return
        self.submit(action, now)

    def submit(self, outcome: str, now: float) -> None:
        """Press a page button: surveys first check every answer and show what is missing."""
        if outcome in ("continued", "agreed") and now - self.opened_at < self.min_time_s:
            return
        self._observe(now)
        if isinstance(self.scene, Survey) and outcome == "continued":
            answers, problems = self.scene.check({w.question.id: w.read() for w in self.questions})
            for widgets in self.questions:
                cast(UILabel, widgets.error).set_text(problems.get(widgets.question.id, ""))  # made by _question
            if problems:
                first = next(i for i, w in enumerate(self.questions) if w.question.id in problems)
                self.focus = first
                self._show_focus()
                return
            times = cast(AnswerTimes, self.answer_times)  # a survey has its answer times
            self.result = PageResult(outcome, answers, timings=times.report())
            return
        self.result = PageResult(outcome)

    def _key(self, event: pygame.event.Event, now: float) -> None:
        key = event.key
        typing = any(w.entry is not None and w.entry.is_focused for w in self.questions)
        if key == pygame.K_TAB and self.questions:
            step = -1 if event.mod & pygame.KMOD_SHIFT else 1
            self.focus = (self.focus + step) % len(self.questions)
            self._show_focus()
            return
        if key in (pygame.K_RETURN, pygame.K_KP_ENTER):
            focused = self.questions[self.focus] if self.questions else None
            multiline = focused is not None and isinstance(focused.entry, UITextEntryBox) and focused.entry.is_focused
            if not multiline and self.main_button is not None:
                self.submit(self.buttons[self.main_button], now)
            return
        if typing or not self.questions:
            return
        widgets = self.questions[self.focus]
        q = widgets.question
        if isinstance(q, Likert):
            digit = event.unicode if event.unicode.isdigit() else ""
            if digit and 1 <= int(digit) <= q.points:
                widgets.set(int(digit))
            elif key in (pygame.K_LEFT, pygame.K_RIGHT):
                current = widgets.raw or (q.points + 1) // 2
                widgets.set(min(q.points, max(1, current + (1 if key == pygame.K_RIGHT else -1))))
        elif isinstance(q, Slider) and key in (pygame.K_LEFT, pygame.K_RIGHT):
            current = widgets.raw if widgets.raw is not None else cast(float, q.start)  # filled by __post_init__
            widgets.set(q.parse(current + (q.step if key == pygame.K_RIGHT else -q.step)))
        elif isinstance(q, (Choice, MultiChoice)) and key in (pygame.K_UP, pygame.K_DOWN, pygame.K_SPACE):
            count = len(q.options)
            if key != pygame.K_SPACE:
                widgets.cursor = (widgets.cursor + (1 if key == pygame.K_DOWN else -1)) % count
            if isinstance(q, Choice):
                widgets.set(q.options[widgets.cursor])
            elif key == pygame.K_SPACE:
                box = widgets.boxes[widgets.cursor]
                box.set_state(not box.get_state())
            self._show_focus()

    def _show_focus(self) -> None:
        for position, widgets in enumerate(self.questions):
            if widgets.marker is not None:
                widgets.marker.set_text(">" if position == self.focus else "")
            if position == self.focus and widgets.entry is not None:
                widgets.entry.focus()
            elif widgets.entry is not None:
                widgets.entry.unfocus()

    # --- each frame -------------------------------------------------------------------

    def update(self, now: float, dt: float) -> None:
        if self.main_button is not None and self.min_time_s > 0 and now - self.opened_at >= self.min_time_s:
            self.main_button.enable()
            self.min_time_s = 0
        self.manager.update(dt)

    def draw(self) -> None:
        self.surface.fill(PAGE_BG)
        self.manager.draw_ui(self.surface)

    def autofill(self, rng: random.Random, now: float | None = None) -> dict[str, Any]:
        """Valid random answers set through the widgets (what the autopilot does), timed at ``now``."""
        answers = self.scene.random_answers(rng) if isinstance(self.scene, Survey) else {}
        for widgets in self.questions:
            widgets.set(answers[widgets.question.id])
        self._observe(self.opened_at if now is None else now)
        return answers

    def close(self) -> None:
        self.manager.clear_and_reset()


def _page_text(scene: Any) -> str:
    return getattr(scene, "text", None) or getattr(scene, "intro", "") or ""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def show_page(window: Any, scene: Any, clock: Any, *, theme: dict[str, Any] | None = None,
                    autopilot: random.Random | None = None, screenshot: str | None = None,
                    base_dir: Any = None, code: str | None = None, participant: str = "",
                    text_override: str | None = None, quit_check: Callable[[Any], bool] | None = None,
                    on_event: Callable[[str, dict[str, Any]], None] | None = None) -> PageResult:
    """Show ``scene`` as a page until the participant leaves it (or the window closes).

    ``autopilot`` answers with valid random values and presses the main button (agree on
    consent pages) after a few frames; ``screenshot`` saves the page, answers filled in,
    before it is left. ``quit_check(event)`` says whether a key event quits (lab mode's
    experimenter combination); ``on_event`` receives focus and resize events to record (a focus
    event with ``page_s``, the seconds since the page opened: the clock of the answers' times).
    """
    now = clock.now()
    min_time = getattr(scene, "min_time_s", 0.0) if text_override is None else 0.0
    page = Page(window.surface, scene, theme=theme, base_dir=base_dir, code=code, participant=participant,
                min_time_s=min_time, now=now, text_override=text_override)
    frames = 0
    last = now
    try:
        while page.result is None:
            now = clock.now()
            for event in window.poll_raw():
                if event.type == pygame.QUIT or (quit_check is not None and quit_check(event)):
                    return PageResult("aborted", quit=True)
                if event.type in (pygame.WINDOWFOCUSLOST, pygame.WINDOWFOCUSGAINED) and on_event is not None:
                    on_event("focus_gained" if event.type == pygame.WINDOWFOCUSGAINED else "focus_lost",
                             {"page_s": round(now - page.opened_at, 3)})  # on the clock of the answers' times
                if event.type in (pygame.VIDEORESIZE, pygame.WINDOWSIZECHANGED):
                    if window.surface.get_size() != page.size:
                        page.relayout(window.surface)
                        if on_event is not None:
                            on_event("resize", {"size": list(page.size)})
                    continue
                page.handle(event, now)
            if autopilot is not None and frames == 2:
                page.autofill(autopilot, now)
            page.update(now, max(0.0, now - last))
            last = now
            page.draw()
            if autopilot is not None and frames >= 3 and now - page.opened_at >= min_time:
                if screenshot:
                    pygame.image.save(window.surface, screenshot)
                    screenshot = None
                page.submit(page.buttons[page.main_button] if page.main_button else "continued", now)
            await clock.wait_frame()
            window.flip()
            frames += 1
        if screenshot:
            pygame.image.save(window.surface, screenshot)
        return page.result
    finally:
        page.close()


@dataclass
class StartChoice:
    """What the experimenter entered on the lab start screen."""

    participant_id: str | None  # None: the experimenter quit the lab session
    condition: str | None = None
    rerun: bool = False


async def start_screen(window: Any, clock: Any, experiment_id: str, conditions: list[str],
                       status_of: Callable[[str], str | None], *, new_id: Callable[[], str],
                       theme: dict[str, Any] | None = None, autopilot: bool = False,
                       quit_check: Callable[[Any], bool] | None = None, screenshot: str | None = None,
                       message: str = "") -> StartChoice:
    """The lab's start screen: the experimenter types (or generates) the participant id and
    may pick a condition; an id that already completed the study is refused unless
    "run again" is ticked. Returns the choice, or ``participant_id=None`` to end the session.
    """
    from pygame_gui.elements import UIDropDownMenu

    surface = window.surface
    width, height = surface.get_size()
    if not pygame.font.get_init():
        pygame.font.init()
    manager = make_manager((width, height), theme)
    unit = max(14, round(height / 38))
    w = min(width - 2 * unit, 34 * unit)
    left, y = (width - w) // 2, 2 * unit
    UILabel(pygame.Rect(left, y, w, unit * 2.5), f"{experiment_id} — new participant", manager, object_id="#title")
    y += unit * 4
    UILabel(pygame.Rect(left, y, w, unit * 1.6), "Participant id", manager, object_id="#small")
    y += unit * 1.7
    entry = UITextEntryLine(pygame.Rect(left, y, w - 10 * unit, unit * 2.3), manager)
    generate = UIButton(pygame.Rect(left + w - 9 * unit, y, 9 * unit, unit * 2.3), "Generate", manager)
    y += unit * 3.4
    menu = None
    automatic = "balanced (automatic)"
    if conditions:
        UILabel(pygame.Rect(left, y, w, unit * 1.6), "Condition", manager, object_id="#small")
        y += unit * 1.7
        menu = UIDropDownMenu([automatic, *conditions], automatic, pygame.Rect(left, y, w, unit * 2.3), manager)
        y += unit * 3.4
    rerun = UICheckBox(pygame.Rect(left, y + unit // 4, unit + 4, unit + 4), "Run again although this id completed",
                       manager)
    y += unit * 2.4
    note = UILabel(pygame.Rect(left, y, w, unit * 1.8), message, manager, object_id="#error")
    y += unit * 2.6
    start = UIButton(pygame.Rect(left + w - 11 * unit, y, 11 * unit, unit * 2.5), "Start", manager)
    UILabel(pygame.Rect(left, height - 2.5 * unit, w, unit * 1.6), "Ctrl+Shift+Q ends the lab session",
            manager, object_id="#small")
    entry.focus()
    choice: StartChoice | None = None
    last = clock.now()
    frames = 0

    def try_start() -> StartChoice | None:
        pid = entry.get_text().strip()
        if not pid:
            note.set_text("Type a participant id or press Generate.")
            return None
        if len(pid) > 64 or any(c in pid for c in "/\\\0"):
            note.set_text("Ids are at most 64 characters, without / or \\.")
            return None
        status = status_of(pid)
        if status == "completed" and not rerun.get_state():
            note.set_text(f"{pid} already completed this study. Tick 'run again' to run it anyway.")
            return None
        # the menu's choice: (text, object id) in recent pygame_gui versions, the text alone in older ones
        condition: str | tuple[str, str] | None = menu.selected_option if menu is not None else None
        if isinstance(condition, tuple):
            condition = condition[0]
        return StartChoice(pid, None if condition in (None, automatic) else condition,
                           rerun=status is not None)

    try:
        while choice is None:
            now = clock.now()
            for event in window.poll_raw():
                if event.type == pygame.QUIT or (quit_check is not None and quit_check(event)):
                    return StartChoice(None)
                manager.process_events(event)
                if event.type == pygame_gui.UI_BUTTON_PRESSED:
                    if event.ui_element is generate:
                        entry.set_text(new_id())
                    elif event.ui_element is start:
                        choice = try_start()
                elif event.type == pygame.KEYDOWN and event.key in (pygame.K_RETURN, pygame.K_KP_ENTER):
                    choice = try_start()
            if autopilot and frames == 2:
                entry.set_text(new_id())
            manager.update(max(0.0, now - last))
            last = now
            surface.fill(PAGE_BG)
            manager.draw_ui(surface)
            if autopilot and frames >= 3 and choice is None:
                if screenshot:
                    pygame.image.save(surface, screenshot)
                choice = try_start()
            await clock.wait_frame()
            window.flip()
            frames += 1
        return choice
    finally:
        manager.clear_and_reset()
