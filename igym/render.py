"""The render description: what a frame shows, as plain data, and its wire form.

An environment's render function returns shapes in *logical pixels* of the canvas its
scene declares (for example 600×400). The same shapes are drawn by the pygame renderer
on the desktop and in the browser, stored for replay, and sent over the network. They
are plain frozen dataclasses so the core stays pure Python (it runs under Pyodide and
pygbag) and so equality is cheap: the delta encoder sends only shapes that changed, and
of those only the fields that changed.

Every shape has:
- ``id``: a string unique within the frame. Shapes with the same id in consecutive
  frames are the same object: the renderer interpolates their positions between env
  steps, and the encoder sends only their changed fields.
- ``depth``: drawing order, low first (ties keep the order of the frame).
- ``static``: the shape does not change during an episode (court, walls, floor tiles).
  The renderer draws static shapes once per episode into a cached layer.

Colours are ``(r, g, b)`` or ``(r, g, b, a)`` tuples of ints 0–255.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, fields
from typing import Any, ClassVar, NamedTuple
from collections.abc import Iterable, Mapping, Sequence

from .errors import RenderError
from .packing import pack, unpack

Color = tuple[int, ...]
Point = tuple[float, float]

WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)

ANCHORS = (
    "topleft", "midtop", "topright",
    "midleft", "center", "midright",
    "bottomleft", "midbottom", "bottomright",
)
LINE_FILLS = (None, "below", "above")
CIRCLE_PARTS = ("full", "top", "bottom", "left", "right")


@dataclass(frozen=True, slots=True)
class Rect:
    """An axis-aligned rectangle; ``x, y`` is its top-left corner.

    ``radius`` rounds the corners; ``width`` > 0 draws only the outline.
    """

    id: str
    x: float
    y: float
    w: float
    h: float
    color: Color = WHITE
    radius: float = 0
    width: float = 0
    depth: int = 0
    static: bool = False
    kind: ClassVar[int] = 1


@dataclass(frozen=True, slots=True)
class Circle:
    """A circle centred on ``x, y``. ``width`` > 0 draws only the outline.

    ``part`` draws only half of it (``"top"``, ``"bottom"``, ``"left"``, ``"right"``):
    a slime is one moving half-disc, not a polygon whose every point changes.
    """

    id: str
    x: float
    y: float
    r: float
    color: Color = WHITE
    width: float = 0
    part: str = "full"
    depth: int = 0
    static: bool = False
    kind: ClassVar[int] = 2


@dataclass(frozen=True, slots=True)
class Ellipse:
    """An ellipse filling the box whose top-left corner is ``x, y``."""

    id: str
    x: float
    y: float
    w: float
    h: float
    color: Color = WHITE
    width: float = 0
    depth: int = 0
    static: bool = False
    kind: ClassVar[int] = 3


@dataclass(frozen=True, slots=True)
class Line:
    """A polyline through ``points``.

    ``fill="below"`` (or ``"above"``) fills the area between the line and the bottom
    (or top) of the canvas: one shape draws terrain such as Mountain Car's hill.
    """

    id: str
    points: tuple[Point, ...]
    color: Color = WHITE
    width: float = 1
    fill: str | None = None
    depth: int = 0
    static: bool = False
    kind: ClassVar[int] = 4


@dataclass(frozen=True, slots=True)
class Polygon:
    """A closed polygon. ``width`` > 0 draws only the outline."""

    id: str
    points: tuple[Point, ...]
    color: Color = WHITE
    width: float = 0
    depth: int = 0
    static: bool = False
    kind: ClassVar[int] = 5


@dataclass(frozen=True, slots=True)
class Text:
    """Text placed so that its ``anchor`` point lies at ``x, y``.

    ``font`` is None for the default font, or the name of a font asset the scene
    declares; ``size`` is in logical pixels.
    """

    id: str
    x: float
    y: float
    text: str
    size: float = 16
    color: Color = WHITE
    font: str | None = None
    anchor: str = "topleft"
    depth: int = 0
    static: bool = False
    kind: ClassVar[int] = 6


@dataclass(frozen=True, slots=True)
class Sprite:
    """An image asset (or one ``frame`` of a sprite atlas) scaled to ``w × h``.

    ``x, y`` is the top-left corner of the unrotated box; ``angle`` (degrees,
    counter-clockwise) rotates it about its centre. ``alpha`` fades the whole sprite.
    """

    id: str
    x: float
    y: float
    w: float
    h: float
    image: str
    frame: str | None = None
    angle: float = 0
    alpha: int = 255
    depth: int = 0
    static: bool = False
    kind: ClassVar[int] = 7


@dataclass(frozen=True, slots=True)
class Image:
    """Raw RGB pixels (``size`` = pixel width, height) shown in the box ``x, y, w, h``.

    This is how an env's ``render()`` returning an RGB array is shown; build it with
    :func:`image_from_array` so the core never needs numpy.
    """

    id: str
    x: float
    y: float
    w: float
    h: float
    pixels: bytes
    size: tuple[int, int]
    depth: int = 0
    static: bool = False
    kind: ClassVar[int] = 8


Shape = Rect | Circle | Ellipse | Line | Polygon | Text | Sprite | Image
SHAPE_TYPES: tuple[type[Shape], ...] = (Rect, Circle, Ellipse, Line, Polygon, Text, Sprite, Image)
_BY_KIND: dict[int, type[Shape]] = {t.kind: t for t in SHAPE_TYPES}
_FIELD_NAMES: dict[type[Shape], tuple[str, ...]] = {t: tuple(f.name for f in fields(t)) for t in SHAPE_TYPES}


class Frame(NamedTuple):
    """One picture of the game: shapes plus HUD lines (label → text).

    ``episode`` and ``step`` say which env step the frame shows, so the renderer only
    interpolates between consecutive steps of one episode. (A NamedTuple: one is built
    every env step, and tuples are the cheapest immutable objects Python makes.)
    """

    shapes: tuple[Shape, ...] = ()
    hud: tuple[tuple[str, str], ...] = ()
    episode: int = 0
    step: int = 0

    @staticmethod
    def of(shapes: Iterable[Shape], hud: Mapping[str, str] | None = None,
           episode: int = 0, step: int = 0) -> Frame:
        """Build a frame from any iterable of shapes and a HUD mapping."""
        return Frame(tuple(shapes), tuple((hud or {}).items()), episode, step)


def image_from_array(array: Any, id: str = "image", x: float = 0, y: float = 0,
                     w: float | None = None, h: float | None = None, depth: int = 0,
                     where: str = "the env's render() picture") -> Image:
    """Wrap an ``(H, W, 3)`` uint8 array (numpy or anything with ``shape``/``tobytes``).

    Anything else is a :class:`RenderError` naming ``where`` it came from and the fix — a float
    image or a grayscale one would otherwise fail later, inside pygame, far from its cause."""
    if not hasattr(array, "shape") or not hasattr(array, "tobytes"):
        raise RenderError(f"{where} is a {type(array).__name__}, not an image — give an (H, W, 3) uint8 numpy "
                          f"array (e.g. numpy.asarray(picture, dtype=numpy.uint8))")
    shape = tuple(int(n) for n in array.shape)
    if len(shape) != 3 or shape[2] != 3 or not shape[0] or not shape[1]:
        raise RenderError(f"{where} has shape {shape} — give an (H, W, 3) RGB array (a grayscale (H, W) one: "
                          f"numpy.stack([a, a, a], axis=-1); drop an alpha channel: a[..., :3])")
    dtype = str(getattr(array, "dtype", "uint8"))
    if dtype != "uint8":
        raise RenderError(f"{where} has dtype {dtype} — give uint8 values 0-255 (floats 0-1: "
                          f"(a * 255).astype(numpy.uint8))")
    height, width = shape[0], shape[1]
    pixels = array.tobytes()
    if len(pixels) != width * height * 3:
        raise RenderError(f"{where} gives {len(pixels)} bytes for {width}×{height} RGB pixels — give a "
                          f"C-contiguous uint8 array (numpy.ascontiguousarray(a))")
    return Image(id, x, y, float(width if w is None else w), float(height if h is None else h),
                 pixels, (width, height), depth)


# --- wire form -----------------------------------------------------------------------
#
# A message is a msgpack array: [episode, step, hud, changed, removed, order]
#   hud      None when unchanged, else [[label, text], ...]
#   changed  full shapes  [kind, id, field2, field3, ...]   (new id, or its kind changed)
#            and patches  [id, {field_index: value, ...}]    (same id and kind)
#   removed  ids no longer present
#   order    None when the id order is "previous minus removed, then new ones", else all ids
# Tuples travel as arrays and come back as tuples, so decode(encode(f, p), p) == f.


def _from_wire(name: str, value: Any) -> Any:
    if name == "points":
        return tuple((p[0], p[1]) for p in value)
    if name in ("color", "size") and isinstance(value, list):
        return tuple(value)
    return value


def _shape_to_wire(shape: Shape) -> list[Any]:
    return [shape.kind, *(getattr(shape, n) for n in _FIELD_NAMES[type(shape)])]


def _shape_from_wire(item: Sequence[Any]) -> Shape:
    cls = _BY_KIND[item[0]]
    names = _FIELD_NAMES[cls]
    return cls(*(_from_wire(n, v) for n, v in zip(names, item[1:])))


def _patch(old: Shape, new: Shape) -> dict[int, Any]:
    changes = {}
    for index, name in enumerate(_FIELD_NAMES[type(new)]):
        value = getattr(new, name)
        if getattr(old, name) != value:
            changes[index] = value
    return changes


def encode(frame: Frame, previous: Frame | None = None) -> bytes:
    """The msgpack delta from ``previous`` to ``frame`` (a whole frame if None)."""
    before = {s.id: s for s in previous.shapes} if previous is not None else {}
    changed: list[list[Any]] = []
    ids: list[str] = []
    for shape in frame.shapes:
        ids.append(shape.id)
        old = before.get(shape.id)
        if old is shape:
            continue  # the same object (a static court): nothing to compare
        if old is None or type(old) is not type(shape):
            changed.append(_shape_to_wire(shape))
        elif old != shape:
            changed.append([shape.id, _patch(old, shape)])
    present = set(ids)
    if len(present) != len(ids):
        raise ValueError("shape ids must be unique within a frame")
    removed = [i for i in before if i not in present]
    expected = [i for i in before if i in present]
    expected += [i for i in ids if i not in before]
    order = None if expected == ids else ids
    hud = None if previous is not None and previous.hud == frame.hud else [list(p) for p in frame.hud]
    return pack([frame.episode, frame.step, hud, changed, removed, order])


def decode(data: bytes, previous: Frame | None = None) -> Frame:
    """Rebuild the frame that :func:`encode` turned into ``data`` against ``previous``."""
    episode, step, hud, changed, removed, order = unpack(data)
    shapes: dict[str, Shape] = {s.id: s for s in previous.shapes} if previous is not None else {}
    for gone in removed:
        del shapes[gone]
    for item in changed:
        if isinstance(item[0], str):
            old = shapes[item[0]]
            names = _FIELD_NAMES[type(old)]
            updates = {names[i]: _from_wire(names[i], v) for i, v in item[1].items()}
            shapes[item[0]] = dataclasses.replace(old, **updates)
        else:
            shape = _shape_from_wire(item)
            shapes[shape.id] = shape
    if order is not None:
        ordered = tuple(shapes[i] for i in order)
    else:
        ordered = tuple(shapes.values())
    if hud is None:
        hud_items = previous.hud if previous is not None else ()
    else:
        hud_items = tuple((label, text) for label, text in hud)
    return Frame(ordered, hud_items, episode, step)


SHAPE_NAMES = "Rect, Circle, Ellipse, Line, Polygon, Text, Sprite, Image"
_NUMBER_FIELDS = {"x", "y", "w", "h", "r", "radius", "width", "size", "angle", "depth", "alpha"}


def validate_shapes(shapes: Any, where: str = "render") -> tuple[Shape, ...]:
    """Check what a render function returned, with a message that names the field and the fix.

    Every problem is a :class:`RenderError` (an ExperimentError, and a TypeError/ValueError as before)."""
    if isinstance(shapes, (str, bytes)) or shapes is None or not isinstance(shapes, Iterable):
        what = "None" if shapes is None else f"{type(shapes).__name__} {_short(shapes)}"
        raise RenderError(f"{where} returned {what} — return a list of igym.render shapes ({SHAPE_NAMES})")
    if hasattr(shapes, "shape") and hasattr(shapes, "dtype"):
        raise RenderError(f"{where} returned an array of shape {tuple(shapes.shape)} — to show a picture return "
                          f"[igym.render.image_from_array(picture)], or give the Game no render function (the env's "
                          f"render() is shown)")
    result = tuple(shapes)
    seen: set[str] = set()
    for shape in result:
        if not isinstance(shape, SHAPE_TYPES):
            raise RenderError(f"{where} returned {type(shape).__name__} {_short(shape)} in its list — return "
                              f"igym.render shapes ({SHAPE_NAMES})")
        kind = type(shape).__name__
        if not isinstance(shape.id, str):
            raise RenderError(f"{where}: {kind} id {shape.id!r} is a {type(shape.id).__name__} — give each shape a "
                              f"string id")
        if shape.id in seen:
            raise RenderError(f"{where} returned two shapes with id {shape.id!r} — give each shape its own id")
        seen.add(shape.id)
        for name in _FIELD_NAMES[type(shape)]:
            value = getattr(shape, name)
            if name in _NUMBER_FIELDS and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
                raise RenderError(f"{where}: {kind} {shape.id!r} field {name} is {type(value).__name__} "
                                  f"{_short(value)} — give a number")
            if name == "color" and not _is_color(value):
                raise RenderError(f"{where}: {kind} {shape.id!r} field color is {_short(value)} — give (r, g, b) or "
                                  f"(r, g, b, a) with numbers 0-255")
            if name == "points" and not _are_points(value):
                raise RenderError(f"{where}: {kind} {shape.id!r} field points is {_short(value)} — give a tuple of "
                                  f"(x, y) number pairs")
        if isinstance(shape, Text) and shape.anchor not in ANCHORS:
            raise RenderError(f"Text {shape.id!r}: anchor {shape.anchor!r} is not one of {ANCHORS}")
        if isinstance(shape, Text) and not isinstance(shape.text, str):
            raise RenderError(f"{where}: Text {shape.id!r} field text is {type(shape.text).__name__} — give a string "
                              f"(str(value) or an f-string)")
        if isinstance(shape, Circle) and shape.part not in CIRCLE_PARTS:
            raise RenderError(f"Circle {shape.id!r}: part must be one of {CIRCLE_PARTS}")
        if isinstance(shape, Line) and shape.fill not in LINE_FILLS:
            raise RenderError(f"Line {shape.id!r}: fill must be None, 'below' or 'above'")
    return result


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_color(value: Any) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) in (3, 4)
            and all(isinstance(c, numbers.Real) and not isinstance(c, bool) and 0 <= float(c) <= 255 for c in value))


def _are_points(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(
        isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(c, numbers.Real) for c in p) for p in value)
