"""Action spaces read by duck typing, and the actions people's inputs make in them.

The core runs in the browser without gymnasium or numpy, so a space is recognised by its
class name and attributes (``n``/``start``, ``shape``/``low``/``high``/``dtype``, ``nvec``,
``spaces``) and read once into a plain :class:`SpaceInfo`. This module owns what a key map
needs to know about actions:

- **checking** a value a key map gives (``left=[-1, 0, 0]``) against the space before the
  first frame, with a reason that says what the space takes;
- **combining** the values of the keys (and gamepad axes) held at once, per kind of space:
  ``Box`` values add up as offsets from the default and are clipped to the bounds (gas and
  steer together; opposite keys cancel), ``MultiBinary`` ORs bits, ``Discrete`` takes the
  most recent, ``MultiDiscrete``/``Tuple``/``Dict`` work per component (a key names the
  components it sets: ``{"steer": -1.0}``, ``{1: 2}`` or ``[None, 2]``);
- **converting** the combined value into what the env takes (numpy arrays of the space's
  dtype — numpy is imported only then) and back into plain Python for the records, so the
  recorded action is exactly what the env received and a replay feeds the same floats.

Internally a Box value is a flat tuple of floats, a MultiDiscrete/Tuple/Dict value a dict
of the components it names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from collections.abc import Mapping

KINDS = ("discrete", "box", "multi_binary", "multi_discrete", "tuple", "dict", "other")


@dataclass(frozen=True)
class SpaceInfo:
    """A space as plain data: its kind, bounds and parts (see :func:`read_space`)."""

    kind: str
    text: str
    shape: tuple[int, ...] = ()
    n: int = 0
    start: int = 0
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    integer: bool = False
    nvec: tuple[int, ...] = ()
    starts: tuple[int, ...] = ()
    parts: tuple[tuple[Any, SpaceInfo], ...] = ()
    space: Any = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def part(self, key: Any) -> SpaceInfo | None:
        for name, info in self.parts:
            if name == key:
                return info
        return None


def _names(space: Any) -> set[str]:
    return {cls.__name__ for cls in type(space).__mro__}


def _flat(value: Any) -> list[Any]:
    """A nested list (or numpy array) as one flat list."""
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        value = tolist()
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    return [value]


def read_space(space: Any) -> SpaceInfo:
    """What kind of space ``space`` is, read from its class names and attributes."""
    if space is None:
        return SpaceInfo("other", "an unknown space")
    names = _names(space)
    text = str(space)
    try:
        if "Discrete" in names and hasattr(space, "n"):
            return SpaceInfo("discrete", text, n=int(space.n), start=int(getattr(space, "start", 0)), space=space)
        if "Box" in names:
            dtype = str(getattr(space, "dtype", "float32"))
            return SpaceInfo("box", text, shape=tuple(int(s) for s in space.shape),
                             low=tuple(float(v) for v in _flat(space.low)),
                             high=tuple(float(v) for v in _flat(space.high)),
                             integer=dtype.startswith(("int", "uint", "bool")), space=space)
        if "MultiBinary" in names:
            return SpaceInfo("multi_binary", text, shape=tuple(int(s) for s in space.shape), space=space)
        if "MultiDiscrete" in names:
            nvec = tuple(int(v) for v in _flat(space.nvec))
            start = getattr(space, "start", None)
            starts = tuple(int(v) for v in _flat(start)) if start is not None else (0,) * len(nvec)
            return SpaceInfo("multi_discrete", text, shape=tuple(int(s) for s in space.shape), nvec=nvec,
                             starts=starts, space=space)
        if "Tuple" in names and hasattr(space, "spaces"):
            return SpaceInfo("tuple", text, parts=tuple((i, read_space(s)) for i, s in enumerate(space.spaces)),
                             space=space)
        if "Dict" in names and isinstance(getattr(space, "spaces", None), Mapping):
            return SpaceInfo("dict", text, parts=tuple((k, read_space(s)) for k, s in space.spaces.items()),
                             space=space)
    except (AttributeError, TypeError, ValueError):
        pass
    return SpaceInfo("other", text, space=space)


class ActionValueError(ValueError):
    """A value that does not fit a space; the message says what the space takes."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        item = getattr(value, "item", None)  # a numpy scalar
        if item is None or getattr(value, "ndim", 0) != 0:
            return None
        value = item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
    return float(value)


def _whole(value: Any) -> int | None:
    number = _number(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def _shape_of(value: Any) -> tuple[int, ...] | None:
    """The shape of a nested list of numbers (None when ragged)."""
    tolist = getattr(value, "tolist", None)
    if tolist is not None and not isinstance(value, (list, tuple)):
        value = tolist()
    if not isinstance(value, (list, tuple)):
        return ()
    shapes = {_shape_of(v) for v in value}
    if len(shapes) > 1:
        return None
    inner = shapes.pop() if shapes else ()
    if inner is None:
        return None
    return (len(value), *inner)


def _example(info: SpaceInfo) -> str:
    if info.kind == "discrete":
        return str(info.start)
    if info.kind == "box":
        values = [min(max(0.0, lo), hi) for lo, hi in zip(info.low, info.high)]
        if info.size == 1:
            return repr(round(values[0], 3))
        return "[" + ",".join(repr(round(v, 3)) for v in values[:6]) + (",..." if info.size > 6 else "") + "]"
    if info.kind == "multi_binary":
        return "[" + ",".join("0" for _ in range(min(info.size, 6))) + "]"
    if info.kind == "multi_discrete":
        return "[" + ",".join(str(s) for s in info.starts[:6]) + "]"
    return "..."


def check(info: SpaceInfo, value: Any, *, partial: bool = False) -> Any:
    """``value`` in this module's internal form, or :class:`ActionValueError` saying why not.

    ``partial`` allows values that name only some components (a key of a Tuple, Dict or
    MultiDiscrete space); a default action must name them all.
    """
    kind = info.kind
    if kind == "discrete":
        whole = _whole(value)
        if whole is None or not info.start <= whole < info.start + info.n:
            raise ActionValueError(f"it takes a whole number from {info.start} to {info.start + info.n - 1}")
        return whole
    if kind == "box":
        return _check_box(info, value)
    if kind == "multi_binary":
        flat = _flat(value) if _shape_of(value) in (info.shape, (info.size,)) else None
        bits = [_whole(v) for v in flat] if flat is not None else None
        if bits is None or any(b not in (0, 1) for b in bits):
            raise ActionValueError(f"it takes a list of {info.size} bits (0 or 1), e.g. {_example(info)}")
        return tuple(bits)
    if kind == "multi_discrete":
        return _check_components(info, value, partial, range(info.size), _md_component)
    if kind in ("tuple", "dict"):
        keys = [k for k, _ in info.parts]
        return _check_components(info, value, partial, keys,
                                 lambda i, k, v: check(i.part(k), v, partial=partial))
    return value


def _check_box(info: SpaceInfo, value: Any) -> tuple[float, ...]:
    shape = _shape_of(value)
    if shape == () and info.size == 1:
        flat = [value]
    elif shape is not None and shape in (info.shape, (info.size,)) and shape != ():
        flat = _flat(value)
    else:
        what = "a number" if info.size == 1 else f"a list of {info.size} numbers"
        raise ActionValueError(f"it takes {what} (shape {info.shape}), e.g. {_example(info)}")
    numbers = [_number(v) for v in flat]
    for index, (number, lo, hi) in enumerate(zip(numbers, info.low, info.high)):
        if number is None or math.isnan(number):
            raise ActionValueError(f"component {index} is {flat[index]!r}, not a number")
        if not lo <= number <= hi:
            where = "" if info.size == 1 else f"component {index} = {number!r}: "
            raise ActionValueError(f"{where}outside the bounds [{lo!r}, {hi!r}]")
        if info.integer and not number.is_integer():
            raise ActionValueError(f"component {index} = {number!r}: the space holds whole numbers")
    return tuple(numbers)  # type: ignore[arg-type]


def _md_component(info: SpaceInfo, index: int, value: Any) -> int:
    whole = _whole(value)
    low = info.starts[index]
    if whole is None or not low <= whole < low + info.nvec[index]:
        raise ActionValueError(f"component {index} = {value!r}: it takes a whole number from {low} to "
                               f"{low + info.nvec[index] - 1}")
    return whole


def _check_components(info: SpaceInfo, value: Any, partial: bool, keys: Any, check_one: Any) -> dict[Any, Any]:
    keys = list(keys)
    if isinstance(value, Mapping):
        named = dict(value)
    elif isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = _flat(value) if info.kind == "multi_discrete" else list(value)
        if len(items) != len(keys):
            raise ActionValueError(f"it takes {len(keys)} components (None for a component a key leaves alone), "
                                   f"got {len(items)}")
        named = {k: v for k, v in zip(keys, items) if v is not None}
    else:
        hint = "{" + repr(keys[0]) + ": ...}" if keys else "{}"
        raise ActionValueError(f"it takes one value per component, e.g. {hint} for only some of them")
    named = {int(k) if k not in keys and isinstance(k, str) and k.lstrip("-").isdigit() and int(k) in keys else k: v
             for k, v in named.items()}  # {"1": 2} from JSON names component 1
    unknown = [k for k in named if k not in keys]
    if unknown:
        raise ActionValueError(f"it has no component {unknown[0]!r}; its components are {keys}")
    missing = [k for k in keys if k not in named]
    if missing and not partial:
        raise ActionValueError(f"component {missing[0]!r} is missing (a default action names every component)")
    out = {}
    for key in keys:
        if key in named:
            try:
                out[key] = check_one(info, key, named[key])
            except ActionValueError as error:
                inner = str(error)
                raise ActionValueError(inner if inner.startswith("component") else
                                       f"component {key!r}: {inner}") from None
    return out


def neutral(info: SpaceInfo) -> Any:
    """The action of a seat nobody is pressing, when the key map gives no default:
    Discrete's first action, a Box's zeros (clipped into its bounds), no bits, the first
    value of every MultiDiscrete component."""
    kind = info.kind
    if kind == "discrete":
        return info.start
    if kind == "box":
        return tuple(min(max(0.0, lo), hi) for lo, hi in zip(info.low, info.high))
    if kind == "multi_binary":
        return (0,) * info.size
    if kind == "multi_discrete":
        return dict(enumerate(info.starts))
    if kind in ("tuple", "dict"):
        return {k: neutral(part) for k, part in info.parts}
    return 0


def combine(info: SpaceInfo, default: Any, contributions: list[tuple[int, Any]],
            offsets: Mapping[tuple[Any, ...], float] | None = None) -> Any:
    """The action of the entries held at once: ``contributions`` are (press order, value)
    of each active key-map entry, ``offsets`` what gamepad axes add to Box components
    (by path: component keys, then the flat index)."""
    kind = info.kind
    if kind == "box":
        out = list(default)
        for _, value in contributions:
            for i, (v, d) in enumerate(zip(value, default)):
                if v != d:
                    out[i] += v - d
        if offsets:
            for path, offset in offsets.items():
                out[path[-1]] += offset
        return tuple(min(max(v, lo), hi) for v, lo, hi in zip(out, info.low, info.high))
    if kind == "multi_binary":
        bits = list(default)
        for _, value in contributions:
            bits = [a | b for a, b in zip(bits, value)]
        return tuple(bits)
    if kind == "multi_discrete":
        merged = dict(default)
        for _, value in sorted(contributions, key=lambda c: c[0]):
            merged.update(value)
        return merged
    if kind in ("tuple", "dict"):
        parts: dict[Any, Any] = {}
        for key, part in info.parts:
            sub = [(order, value[key]) for order, value in contributions if key in value]
            sub_offsets = {p[1:]: o for p, o in offsets.items() if p[0] == key} if offsets else None
            parts[key] = combine(part, default[key], sub, sub_offsets) if sub or sub_offsets else default[key]
        return parts
    if not contributions:
        return default
    return max(contributions, key=lambda c: c[0])[1]


def to_native(info: SpaceInfo, value: Any) -> Any:
    """An internal value as the env takes it: arrays of the space's dtype and shape, tuples, dicts."""
    kind = info.kind
    if kind == "discrete":
        return int(value)
    if kind in ("box", "multi_binary", "multi_discrete"):
        import numpy

        flat = [value[i] for i in range(info.size)] if kind == "multi_discrete" else value
        return numpy.asarray(flat, dtype=getattr(info.space, "dtype", None)).reshape(info.shape)
    if kind == "tuple":
        return tuple(to_native(part, value[k]) for k, part in info.parts)
    if kind == "dict":
        return {k: to_native(part, value[k]) for k, part in info.parts}
    return value


def from_plain(info: SpaceInfo, value: Any) -> Any:
    """A recorded (JSON) action as the env takes it — the inverse of ``records.plain``; a
    float recorded from a float32 array becomes the very same float32 again."""
    kind = info.kind
    if kind in ("box", "multi_binary", "multi_discrete"):
        import numpy

        return numpy.asarray(value, dtype=getattr(info.space, "dtype", None)).reshape(info.shape)
    if kind == "tuple" and isinstance(value, (list, tuple)):
        return tuple(from_plain(part, v) for (_, part), v in zip(info.parts, value))
    if kind == "dict" and isinstance(value, Mapping):
        return {k: from_plain(part, value[k]) if k in value else None for k, part in info.parts}
    if kind == "discrete" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    return value
