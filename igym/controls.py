"""Key maps: which keys a person presses → which action their seat takes.

Key names are plain strings, independent of pygame ("left", "up", "space", "a",
"left shift" — pygame's ``key.name`` spelling), so the same map works on the desktop, in
the browser and for keys that arrive over the network. A map entry is a key name or a
tuple of keys held together (a composite such as ``("right", "up")`` → jump forward).

Two modes, because games differ:
- ``held``: the action follows the keys held at the moment the env steps (continuous
  control: Slime Volleyball, Mountain Car). The largest composite held wins; among
  equals, the one with the most recently pressed key.
- ``keystroke``: each press is one action, used once (grid worlds: Overcooked). A press
  between two steps is not lost; two presses make two actions on two steps.

When no mapped key applies the seat falls back to ``default_action`` (``fallback=
"default"``) or repeats its previous action (``fallback="previous"``). The source of each
action (human / default / previous) is recorded.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Iterable, Mapping

from .errors import ExperimentError

MODES = ("held", "keystroke")
FALLBACKS = ("default", "previous")


class KeyMap:
    """Maps keys (or tuples of keys held together) to actions."""

    def __init__(self, mapping: Mapping[str | tuple[str, ...], Any], *, mode: str = "held",
                 default_action: Any = 0, fallback: str = "default") -> None:
        if mode not in MODES:
            raise ExperimentError(f"KeyMap mode {mode!r} is not one of {MODES} — use 'held' for "
                                  f"continuous control or 'keystroke' for one action per press")
        if fallback not in FALLBACKS:
            raise ExperimentError(f"KeyMap fallback {fallback!r} is not one of {FALLBACKS}")
        if not mapping:
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
        self.default_action = default_action
        self.fallback = fallback
        self._single = {next(iter(k)): a for k, a in entries if len(k) == 1}
        self._has_composites = any(len(k) > 1 for k, _ in entries)

    @staticmethod
    def parse(spec: str, **options: Any) -> "KeyMap":
        """Parse ``"left=0,right=2,default=1"`` (``+`` joins keys: ``"right+up=2"``).

        Values are ints when they look like ints. ``default=`` sets the default action.
        This is the ``--keys`` syntax of ``python -m igym.play``.
        """
        mapping: dict[Any, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            if "=" not in part:
                raise ExperimentError(f"--keys entry {part!r} has no '=' — write KEY=ACTION, e.g. left=0")
            keys, value = (s.strip() for s in part.rsplit("=", 1))
            action: Any = int(value) if value.lstrip("-").isdigit() else value
            if keys == "default":
                options["default_action"] = action
            else:
                combo = tuple(k.strip() for k in keys.split("+"))
                mapping[combo[0] if len(combo) == 1 else combo] = action
        return KeyMap(mapping, **options)

    def resolve_held(self, held: Mapping[str, int]) -> Any:
        """The action for the keys held now (``held``: key → press order), or ``None``."""
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

    def describe(self) -> dict[str, Any]:
        """A JSON-safe description recorded with the data."""
        return {"mode": self.mode, "fallback": self.fallback, "default_action": self.default_action,
                "map": {"+".join(sorted(k)): a for k, a in self.entries}}


class SeatInput:
    """The live input state of one human seat: held keys, queued keystrokes, last change."""

    __slots__ = ("keymap", "held", "presses", "changed_ns", "previous_action", "_counter")

    def __init__(self, keymap: KeyMap) -> None:
        self.keymap = keymap
        self.held: dict[str, int] = {}
        self.presses: deque[dict[str, int]] = deque()
        self.changed_ns: int | None = None
        self.previous_action: Any = None
        self._counter = 0

    def press(self, key: str, t_ns: int) -> bool:
        """Note a key going down; False if this seat's map does not use the key."""
        key = key.lower()
        if key not in self.keymap.keys or key in self.held:
            return False
        self._counter += 1
        self.held[key] = self._counter
        self.changed_ns = t_ns
        if self.keymap.mode == "keystroke":
            self.presses.append(dict(self.held))
        return True

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

    def next_action(self) -> tuple[Any, str]:
        """The action for this step and who chose it: human, default or previous."""
        keymap = self.keymap
        action = None
        if keymap.mode == "held":
            action = keymap.resolve_held(self.held)
        else:
            while self.presses and action is None:
                action = keymap.resolve_held(self.presses.popleft())
        if action is not None:
            self.previous_action = action
            return action, "human"
        if keymap.fallback == "previous" and self.previous_action is not None:
            return self.previous_action, "previous"
        return keymap.default_action, "default"

    def held_names(self) -> str:
        """Held keys in press order, joined with '+' (what the participant was pressing)."""
        return "+".join(self.held)


def all_keys(keymaps: Iterable[KeyMap]) -> frozenset[str]:
    """Every key any of the maps uses (what an autopilot may press)."""
    return frozenset().union(*(k.keys for k in keymaps))
