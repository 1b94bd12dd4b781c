"""Key maps: which keys (and gamepad axes, and the mouse) a person uses → which action their seat takes.

Key names are plain strings, independent of pygame ("left", "up", "space", "a",
"left shift" — pygame's ``key.name`` spelling), so the same map works on the desktop, in
the browser and for keys that arrive over the network. A map entry is a key name or a
tuple of keys held together (a composite such as ``("right", "up")`` → jump forward).

Two modes, because games differ:
- ``held``: the action follows the keys held at the moment the env steps (continuous
  control: Slime Volleyball, Mountain Car). In a ``Discrete`` space the largest composite
  held wins; among equals, the one with the most recently pressed key. In other spaces the
  held entries combine (see :mod:`igym.actions`): ``Box`` values add up as offsets from the
  default, clipped to the bounds (CarRacing's gas + steer; left + right cancel),
  ``MultiBinary`` bits are ORed, and ``MultiDiscrete``/``Tuple``/``Dict`` keys set only the
  components they name (``{"steer": -1.0}``), the most recent press winning per component.
  A composite replaces the entries of its own keys.
- ``keystroke``: each press is one action, used once (grid worlds: Overcooked). A press
  between two steps is not lost; two presses make two actions on two steps.

``axes`` (:class:`Axis`) let gamepad sticks and triggers drive ``Box`` components
continuously; ``pointer`` (a function ``(x, y, buttons) -> action or None``, canvas
coordinates) lets the mouse choose actions: in a ``held`` map from where it is and the
buttons held at each step, in a ``keystroke`` map once per button press (a click is one
keystroke; a pointer with a ``click`` method returns a :class:`Click`, naming the click for
the records, and one with ``for_seat`` is bound to each seat: :mod:`igym.boards`). When
nothing applies the seat falls back to ``default_action`` (``fallback="default"``) or repeats
its previous action (``fallback="previous"``). The source of each action (human / default /
previous) is recorded.

A map is checked against the seat's action space when the session starts (before the
first frame): every value, the default and every axis, with a message naming the key, the
value and the space.
"""

from __future__ import annotations

import ast
import json
from collections import deque
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Iterable, Mapping

from .actions import ActionValueError, SpaceInfo, check, combine, neutral, read_space, to_native
from .errors import ExperimentError

MODES = ("held", "keystroke")
FALLBACKS = ("default", "previous")
_UNSET: Any = object()


@dataclass(frozen=True)
class Click:
    """What one click of a ``keystroke`` map's pointer makes: an action (None: no move, e.g. a
    chess piece picked up), its name for the records (the step's ``keys``: ``"e2-e4"``; else
    the place clicked), whether it is an attempt the action space cannot even name (recorded
    as ``illegal_action``), and what the click did (the click event's ``did``: one of
    :data:`CLICK_DID`; the session judges a move's legality and says ``illegal`` for one the
    env's action mask refuses)."""

    action: Any
    label: str = ""
    illegal: bool = False
    did: str = ""


# What a pointer's click did, as the ``click`` event's ``did`` says.
CLICK_DID = ("moved", "picked up", "put down", "illegal", "ignored")


@dataclass(frozen=True)
class PointerSeat:
    """Where a seat's pointer acts (given to a pointer's ``for_seat``): the seat's agent, its
    player number (its place in the env's agents: PettingZoo's ``player``), the canvas, and
    ``legal()``, the seat's action mask now (None when the env has none or it is not its turn)."""

    agent: str
    player: int
    canvas: tuple[float, float]
    legal: Callable[[], Any] = lambda: None


@dataclass(frozen=True)
class Axis:
    """One gamepad axis driving one number of a ``Box`` action, continuously.

    ``axis`` is the SDL joystick axis (pygame's ``JOYAXISMOTION.axis``: on Xbox/PlayStation
    pads as SDL's GameController layout numbers them, 0/1 the left stick's x/y, 2/3 the
    right stick's, 4/5 the left/right triggers). ``to`` is the component: a flat index into
    the Box, or a path into Tuple/Dict spaces (``("gas", 0)``, or ``"gas"`` for a one-number
    Box). ``low``/``high`` are the outputs at the axis' ends (default: the component's
    bounds). A stick rests in the middle, a ``trigger`` rests at -1 (its output then goes
    from ``low`` to ``high`` as it is pulled). ``dead_zone`` (a share of the travel) is
    ignored near rest; ``invert`` flips the direction (SDL's stick y is -1 when pushed up).
    What the axis adds is its output minus its output at rest, so a resting pad changes
    nothing and keys still work beside it.
    """

    axis: int
    to: int | str | tuple[int | str, ...] = 0
    low: float | None = None
    high: float | None = None
    dead_zone: float = 0.1
    invert: bool = False
    trigger: bool = False

    def offset(self, raw: float, low: float, high: float) -> float:
        """What the axis adds to its component when the pad reports ``raw`` (-1..1)."""
        raw = max(-1.0, min(1.0, float(raw)))
        zone = self.dead_zone
        if self.trigger:
            pulled = (raw + 1.0) / 2.0
            amount = 0.0 if pulled <= zone else (pulled - zone) / (1.0 - zone)
            out = amount * (high - low)
        else:
            size = abs(raw)
            amount = 0.0 if size <= zone else (size - zone) / (1.0 - zone) * (1.0 if raw > 0 else -1.0)
            out = amount * (high - low) / 2.0
        return -out if self.invert else out


class KeyMap:
    """Maps keys (or tuples of keys held together) to actions; optionally gamepad axes and the mouse."""

    def __init__(self, mapping: Mapping[str | tuple[str, ...], Any], *, mode: str = "held",
                 default_action: Any = _UNSET, fallback: str = "default", axes: Iterable[Axis] = (),
                 pointer: Callable[[float, float, int], Any] | None = None) -> None:
        if mode not in MODES:
            raise ExperimentError(f"KeyMap mode {mode!r} is not one of {MODES} — use 'held' for "
                                  f"continuous control or 'keystroke' for one action per press")
        if fallback not in FALLBACKS:
            raise ExperimentError(f"KeyMap fallback {fallback!r} is not one of {FALLBACKS}")
        self.axes: tuple[Axis, ...] = tuple(axes)
        if not all(isinstance(a, Axis) for a in self.axes):
            raise ExperimentError("KeyMap axes must be igym.controls.Axis objects, e.g. axes=[Axis(0, to=0)]")
        if pointer is not None and not callable(pointer):
            raise ExperimentError("KeyMap pointer must be a function (x, y, buttons) -> action or None")
        self.pointer = pointer
        if not mapping and not self.axes and pointer is None:
            raise ExperimentError("KeyMap is empty — map at least one key to an action, e.g. {'left': 0}")
        entries = []
        for keys, action in mapping.items():
            combo = (keys,) if isinstance(keys, str) else tuple(keys)
            if not combo or not all(isinstance(k, str) and k for k in combo):
                raise ExperimentError(f"KeyMap entry {keys!r}: keys must be key names (strings) "
                                      f"or tuples of key names, e.g. ('right', 'up')")
            entries.append((frozenset(k.lower() for k in combo), action))
        # Largest composites first so the first full match is the most specific.
        entries.sort(key=lambda e: -len(e[0]))
        self.entries: tuple[tuple[frozenset[str], Any], ...] = tuple(entries)
        self.keys: frozenset[str] = frozenset().union(*(e[0] for e in entries))
        self.mode = mode
        self.default_given = default_action is not _UNSET
        self.default_action = default_action if self.default_given else 0
        self.fallback = fallback
        self._single = {next(iter(k)): a for k, a in entries if len(k) == 1}
        self._has_composites = any(len(k) > 1 for k, _ in entries)

    @staticmethod
    def parse(spec: str, **options: Any) -> KeyMap:
        """Parse ``"left=0,right=2,default=1"`` (``+`` joins keys: ``"right+up=2"``).

        Values are numbers (``left=-1.0``), lists (``left=[-1,0,0]``; ``None`` for a
        component a key leaves alone) or dicts (``left={'steer': -1.0}``); anything else
        stays text. ``default=`` sets the default action. This is the ``--keys`` syntax of
        ``python -m igym.play``.
        """
        mapping: dict[Any, Any] = {}
        for part in _split_top(spec):
            at = _last_top_equals(part)
            if at < 0:
                raise ExperimentError(f"--keys entry {part!r} has no '=' — write KEY=ACTION, e.g. left=0")
            keys, value = part[:at].strip(), part[at + 1:].strip()
            action = _value(value)
            if keys == "default":
                options["default_action"] = action
            else:
                combo = tuple(k.strip() for k in keys.split("+"))
                mapping[combo[0] if len(combo) == 1 else combo] = action
        return KeyMap(mapping, **options)

    def resolve_held(self, held: Mapping[str, int]) -> Any:
        """The action for the keys held now (``held``: key → press order), or ``None`` (Discrete rules)."""
        if not held:
            return None
        if not self._has_composites:
            # Fast path: the most recently pressed mapped key decides.
            best, best_order = None, -1
            single = self._single
            for key, order in held.items():
                if order > best_order and key in single:
                    best, best_order = single[key], order
            return best
        best, best_size, best_order = None, 0, -1
        for combo, action in self.entries:
            size = len(combo)
            if size < best_size:
                break
            if combo.issubset(held.keys()):
                order = max(held[k] for k in combo)
                if order > best_order:
                    best, best_size, best_order = action, size, order
        return best

    def bind(self, space: Any, where: str = "KeyMap") -> Binding:
        """Check every value, the default and the axes against ``space``; the seat's resolver."""
        return Binding(self, read_space(space), where)

    def describe(self) -> dict[str, Any]:
        """A JSON-safe description recorded with the data."""
        from .records import plain

        described = {"mode": self.mode, "fallback": self.fallback, "default_action": plain(self.default_action),
                     "map": {"+".join(sorted(k)): plain(a) for k, a in self.entries}}
        if self.axes:
            described["axes"] = [{"axis": a.axis, "to": plain(a.to), "low": a.low, "high": a.high,
                                  "dead_zone": a.dead_zone, "invert": a.invert, "trigger": a.trigger}
                                 for a in self.axes]
        if self.pointer is not None:
            described["pointer"] = getattr(self.pointer, "__name__", None) or type(self.pointer).__name__
        return described


def _split_top(spec: str) -> list[str]:
    """``spec`` split at the commas outside brackets and braces."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in spec:
        if char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _last_top_equals(part: str) -> int:
    depth, found = 0, -1
    for index, char in enumerate(part):
        if char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "=" and depth == 0 and index > 0:
            found = index
    return found


def _value(text: str) -> Any:
    """A --keys value: a Python/JSON literal (numbers, lists, dicts, None/null), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(text)
    except ValueError:
        return text


class Binding:
    """A key map checked against one seat's action space: resolves held keys, axes and the
    pointer into the action the env receives (see :mod:`igym.actions`)."""

    def __init__(self, keymap: KeyMap, info: SpaceInfo, where: str) -> None:
        self.keymap = keymap
        self.info = info
        self.where = where
        known = info.kind != "other"
        if keymap.default_given:
            self.default = self._check(keymap.default_action, "default_action", partial=False) if known \
                else keymap.default_action
        else:
            self.default = neutral(info) if known else keymap.default_action
        self.entries = tuple((combo, self._check(value, "+".join(sorted(combo)), partial=True) if known else value)
                             for combo, value in keymap.entries)
        self.axes = tuple(self._axis(axis) for axis in keymap.axes)
        self.pointer = keymap.pointer
        # Discrete (and unknown) spaces keyed only: the map's own rules, values as given.
        self.simple = info.kind in ("discrete", "other") and not self.axes and self.pointer is None
        self.default_native = to_native(info, self.default) if known and self.simple else None

    def _fail(self, what: str, value: Any, reason: str) -> ExperimentError:
        return ExperimentError(f"{self.where}: {what} = {value!r} does not fit the action space {self.info.text} "
                               f"— {reason}")

    def _check(self, value: Any, key: str, *, partial: bool) -> Any:
        try:
            return check(self.info, value, partial=partial)
        except ActionValueError as error:
            what = "default_action" if key == "default_action" else f"key {key!r}"
            raise self._fail(what, value, str(error)) from None

    def _axis(self, axis: Axis) -> tuple[Axis, tuple[int | str, ...], float, float]:
        steps = list(axis.to) if isinstance(axis.to, tuple) else [axis.to]
        info, keys = self.info, []
        while info.kind in ("tuple", "dict") and steps:
            part = info.part(steps[0])
            if part is None:
                raise self._fail(f"Axis({axis.axis}) to", axis.to, "it names no component of the space")
            keys.append(steps.pop(0))
            info = part
        if info.kind != "box":
            raise self._fail(f"Axis({axis.axis}) to", axis.to, "axes drive numbers of a Box space")
        index = steps[0] if steps else 0
        if len(steps) > 1 or isinstance(index, bool) or not isinstance(index, int):
            raise self._fail(f"Axis({axis.axis}) to", axis.to, "give the Box component's flat index (an int)")
        if not 0 <= index < info.size:
            raise self._fail(f"Axis({axis.axis}) to", axis.to, f"the Box has components 0 to {info.size - 1}")
        low = info.low[index] if axis.low is None else float(axis.low)
        high = info.high[index] if axis.high is None else float(axis.high)
        if not (low > float("-inf") and high < float("inf")):
            raise self._fail(f"Axis({axis.axis}) low/high", (axis.low, axis.high),
                             "the component is unbounded: give low= and high=")
        if not 0.0 <= axis.dead_zone < 1.0:
            raise self._fail(f"Axis({axis.axis}) dead_zone", axis.dead_zone, "give a share of the travel from 0 to 1")
        return axis, (*keys, index), low, high

    def resolve(self, held: Mapping[str, int], axes: Mapping[int, float],
                pointer: tuple[float, float, int] | None) -> Any:
        """The internal value for what is held, pushed and pointed at now, or None when nothing is."""
        if self.pointer is not None and pointer is not None:
            chosen = self.pointer(*pointer)
            if chosen is not None:
                try:
                    return check(self.info, chosen) if self.info.kind != "other" else chosen
                except ActionValueError as error:
                    raise self._fail("the pointer function's action", chosen, str(error)) from None
        active: list[tuple[int, Any]] = []
        if held:
            consumed: set[str] = set()
            for combo, value in self.entries:
                if combo <= held.keys() and not (combo & consumed):
                    active.append((max(held[k] for k in combo), value))
                    consumed |= combo
        offsets: dict[tuple[int | str, ...], float] = {}
        for axis, path, low, high in self.axes:
            raw = axes.get(axis.axis)
            if raw is not None:
                offset = axis.offset(raw, low, high)
                if offset:
                    offsets[path] = offsets.get(path, 0.0) + offset
        if not active and not offsets:
            return None
        return combine(self.info, self.default, active, offsets)

    def native(self, value: Any) -> Any:
        return to_native(self.info, value) if self.info.kind != "other" else value


class SeatInput:
    """The live input state of one human seat: held keys, queued keystrokes, axes, pointer, last change."""

    __slots__ = ("keymap", "binding", "held", "presses", "changed_ns", "previous_action", "axes", "pointer",
                 "keys_used", "press_used", "decided_ns", "clicked", "_counter", "_default", "_axis_ids")

    def __init__(self, keymap: KeyMap, space: Any = None, where: str = "KeyMap",
                 seat: PointerSeat | None = None) -> None:
        self.keymap = keymap
        self.binding: Binding | None = keymap.bind(space, where) if space is not None else None
        self.held: dict[str, int] = {}
        # keystrokes: (keys held, when pressed, None, the key pressed) or a click's (label, when, (action,), label)
        self.presses: deque[tuple[Any, int, Any, str]] = deque()
        self.clicked: Click | None = None  # what the latest point() made of a button press, if it was one
        self.changed_ns: int | None = None
        self.keys_used = ""  # the keys held for the latest action (keystroke: at its press; held: at the step)
        self.press_used: str | None = None  # the key (or click) whose press made the latest action (keystroke)
        self.decided_ns: int | None = None  # when they were pressed: the action's reaction time
        self.previous_action: Any = None
        self.axes: dict[int, float] = {}
        self.pointer: tuple[float, float, int] | None = None
        self._counter = 0
        binding = self.binding
        self._default = (keymap.default_action if binding is None else
                         binding.default_native if binding.simple and binding.default_native is not None else
                         binding.default)
        self._axis_ids = frozenset(a.axis for a in keymap.axes)
        if binding is not None and binding.simple:
            self.binding = None  # the Discrete fast path; the checked default stays
        elif binding is None and (keymap.axes or keymap.pointer is not None):
            raise ExperimentError(f"{where}: axes and pointer need the seat's action space (a Box for axes)")
        for_seat = getattr(keymap.pointer, "for_seat", None)
        if for_seat is not None and self.binding is not None:
            if keymap.mode != "keystroke":
                raise ExperimentError(f"{where}: this pointer makes one move per click — give it a keystroke map "
                                      f"(KeyMap(..., mode='keystroke'))")
            self.binding.pointer = for_seat(seat, self.binding.info, where)  # the seat's own (its selection)

    def press(self, key: str, t_ns: int, queue: bool = True) -> bool:
        """Note a key going down; False if this seat's map does not use the key. ``queue=False``
        (the game does not take input yet: a countdown, a pause) holds the key but makes no
        keystroke of it — a press made before the game starts is not played after it."""
        key = key.lower()
        if key not in self.keymap.keys or key in self.held:
            return False
        self._counter += 1
        self.held[key] = self._counter
        self.changed_ns = t_ns
        if queue and self.keymap.mode == "keystroke":
            self.presses.append((dict(self.held), t_ns, None, key))
        return True

    def pending(self) -> bool:
        """A keystroke is waiting to be played (what a game that steps on input waits for)."""
        return bool(self.presses)

    def drop_pending(self, before_ns: int | None = None) -> list[tuple[str, int]]:
        """Forget keystrokes not played yet (all, or those pressed before ``before_ns``: a turn
        that is over); each one dropped as (the key or click, when it was pressed), so its record
        keeps the moment of the press itself."""
        if before_ns is None:
            dropped = [(press[3], press[1]) for press in self.presses]
            self.presses.clear()
            self._reset_pointer()  # a half-made move (a chess piece picked up) is not carried into the next game
            return dropped
        dropped = [(press[3], press[1]) for press in self.presses if press[1] < before_ns]
        if dropped:
            self.presses = deque(press for press in self.presses if press[1] >= before_ns)
        return dropped

    def _reset_pointer(self) -> None:
        bound = self.binding.pointer if self.binding is not None else None
        reset = getattr(bound, "reset", None) if bound is not self.keymap.pointer else None
        if reset is not None:
            reset()

    def release(self, key: str, t_ns: int) -> bool:
        """Note a key going up; False if it was not held."""
        key = key.lower()
        if self.held.pop(key, None) is None:
            return False
        self.changed_ns = t_ns
        return True

    def release_all(self, t_ns: int) -> None:
        """Forget held keys (window focus lost: the key-up events will never come)."""
        if self.held:
            self.held.clear()
            self.changed_ns = t_ns

    def axis(self, index: int, value: float, t_ns: int) -> bool:
        """A gamepad axis moved; False if this seat's map has no such axis. The change time is
        when the axis leaves or comes back into its dead zone (its onset: reaction times)."""
        if index not in self._axis_ids:
            return False
        before = self._driving(index)
        self.axes[index] = float(value)
        if self._driving(index) != before:
            self.changed_ns = t_ns
        return True

    def _driving(self, index: int) -> bool:
        raw = self.axes.get(index)
        if raw is None or self.binding is None:
            return False
        return any(axis.axis == index and axis.offset(raw, low, high) for axis, _, low, high in self.binding.axes)

    def point(self, x: float, y: float, buttons: int, t_ns: int, queue: bool = True) -> bool:
        """The pointer moved or a button changed (canvas coordinates); False if the map has no pointer.

        In a ``keystroke`` map a button going down is a click: the pointer function is asked
        once, and the action it makes is queued like a key press (``queue=False``: the game takes
        no input now — the click is noted in ``clicked`` but asks nothing and plays nothing)."""
        if self.keymap.pointer is None:
            return False
        before = self.pointer[2] if self.pointer is not None else 0
        if self.pointer is None or before != buttons:
            self.changed_ns = t_ns
        self.pointer = (float(x), float(y), int(buttons))
        self.clicked = None
        if buttons & ~before and self.keymap.mode == "keystroke":
            self.clicked = self._click(float(x), float(y), int(buttons), t_ns) if queue else Click(None)
        return True

    def _click(self, x: float, y: float, buttons: int, t_ns: int) -> Click:
        binding = self.binding
        pointer = binding.pointer if binding is not None else self.keymap.pointer
        assert pointer is not None  # point() reaches here only for a map with a pointer
        clicker = getattr(pointer, "click", None)
        made = (clicker(x, y, buttons) if clicker is not None
                else Click(pointer(x, y, buttons), f"click {x:.0f},{y:.0f}"))
        if not isinstance(made, Click):
            raise ExperimentError(f"{self.keymap.describe().get('pointer')}: click() must return an "
                                  f"igym.controls.Click")
        if made.action is not None and not made.illegal:
            action = made.action
            if binding is not None and binding.info.kind != "other":
                try:
                    action = check(binding.info, action)
                except ActionValueError as error:
                    raise binding._fail("the pointer function's action", action, str(error)) from None
            self.presses.append((made.label, t_ns, (action,), made.label))
        return made

    def aim(self, rng: Any) -> tuple[float, float] | None:
        """Where an autopilot clicks next, if this seat's pointer can say (:mod:`igym.boards`)."""
        pointer = self.binding.pointer if self.binding is not None else None
        aim = getattr(pointer, "aim", None)
        return aim(rng) if aim is not None else None

    def next_action(self) -> tuple[Any, str]:
        """The action for this step and who chose it: human, default or previous."""
        keymap = self.keymap
        binding = self.binding
        action = None
        pressed: tuple[Any, ...] | None = None  # (keys or label, press time, (action,) of a click or None, press)
        if binding is None:
            if keymap.mode == "held":
                action = keymap.resolve_held(self.held)
            else:
                while self.presses and action is None:
                    pressed = self.presses.popleft()
                    action = keymap.resolve_held(pressed[0])
        else:
            if keymap.mode == "held":
                action = binding.resolve(self.held, self.axes, self.pointer)
            else:  # the pointer plays by its clicks, queued with the key presses
                while self.presses and action is None:
                    pressed = self.presses.popleft()
                    action = pressed[2][0] if pressed[2] is not None else binding.resolve(pressed[0], self.axes, None)
                if action is None:
                    pressed = None
                    action = binding.resolve({}, self.axes, None)
            if action is not None:
                action = binding.native(action)
        if pressed is not None and action is not None:  # a keystroke: keys held at its press, its key, its time
            keys = pressed[0]
            self.keys_used, self.decided_ns = keys if isinstance(keys, str) else "+".join(keys), pressed[1]
            self.press_used = pressed[3]
            if keymap.pointer is not None:
                self._reset_pointer()  # the move is made: its turn's clicks are over
        else:
            self.keys_used, self.decided_ns, self.press_used = "+".join(self.held), self.changed_ns, None
        if action is not None:
            self.previous_action = action
            return action, "human"
        if keymap.fallback == "previous" and self.previous_action is not None:
            return self.previous_action, "previous"
        default = self._default
        return (binding.native(default) if binding is not None else default), "default"

    def held_names(self) -> str:
        """Held keys in press order, joined with '+' (what the participant was pressing)."""
        return "+".join(self.held)


def all_keys(keymaps: Iterable[KeyMap]) -> frozenset[str]:
    """Every key any of the maps uses (what an autopilot may press)."""
    return frozenset().union(*(k.keys for k in keymaps))


def all_axes(keymaps: Iterable[KeyMap]) -> tuple[Axis, ...]:
    """Every gamepad axis any of the maps uses, one per axis number (what an autopilot may push)."""
    seen: dict[int, Axis] = {}
    for keymap in keymaps:
        for axis in keymap.axes:
            seen.setdefault(axis.axis, axis)
    return tuple(seen[i] for i in sorted(seen))
