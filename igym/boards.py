"""Board games played with the mouse: PettingZoo's chess and go.

A board pointer is a :class:`~igym.controls.KeyMap` ``pointer`` that knows where an env draws
its board. It works in ``keystroke`` maps (one click, one move: ``pace="on_input"``) and is
bound to each human seat when the session starts (:meth:`BoardPointer.for_seat`): it learns the
canvas (the env's picture is drawn over the whole canvas, so a board laid out in fractions of
the env's render size is found at the same fractions of the canvas), the seat's player number
and how to read the seat's legal moves (for the autopilot's aim and for picking up pieces).

- :class:`GoPointer` — a click on an intersection places a stone there (the action of that
  point); a key map adds a pass key (:func:`go_keymap`: ``P``).
- :class:`ChessPointer` — two clicks: the piece's square, then its target square → the action
  PettingZoo's chess encodes for that move (pawns reaching the last rank become queens). A pair
  that is no legal move is recorded as an ``illegal_action`` and never sent to the env.

Clicks are named in the records the way the picture shows the board: chess squares ``e2``,
go points by column letter (A–T without I, left to right) and row number (bottom to top).
Each ``click`` event names the click (``what``: a move ``e2-e4``/``C6`` — the step's ``keys``
— or the place clicked, ``e2``, ``off the board``) and says what it did (``did``):
``moved``, ``picked up``, ``put down``, ``illegal`` (the env's legal moves refuse it; an
``illegal_action`` event follows) or ``ignored`` (nothing there that can move, off the
board, the right button with nothing held, a click while it is not this seat's move).

Pure Python: no pygame, numpy or python-chess here (the chess encoding is PettingZoo's,
rewritten; ``tests/unit/test_boards.py`` checks it against ``chess_utils``).
"""

from __future__ import annotations

import copy
import random
from typing import Any

from .controls import Click, KeyMap, PointerSeat
from .errors import ExperimentError

FILES = "abcdefgh"
GO_COLUMNS = "ABCDEFGHJKLMNOPQRST"  # GTP's columns: no I
CHESS_ACTIONS = 8 * 8 * 73
# PettingZoo's chess planes (chess_utils.get_move_plane): 56 queen moves (7 distances × 8
# directions, the directions in this order), 8 knight jumps, 9 underpromotions.
_QUEEN_DIRS = tuple((x, y) for x in (-1, 0, 1) for y in (-1, 0, 1) if (x, y) != (0, 0))
_KNIGHT_DIRS = tuple((x, y) for x in range(-2, 3) for y in range(-2, 3) if abs(x) + abs(y) == 3)
# What a click did (the click event's ``did``; igym.controls.CLICK_DID) and where an off-board click was.
MOVED, PICKED_UP, PUT_DOWN, ILLEGAL, IGNORED = "moved", "picked up", "put down", "illegal", "ignored"
OFF_BOARD = "off the board"
_AIM_LEGAL = 0.85  # the autopilot clicks where a move is this often, anywhere on the board otherwise


def _sign(v: int) -> int:
    return (v > 0) - (v < 0)


def square_name(square: int) -> str:
    """python-chess numbering (a1 = 0, b1 = 1 … h8 = 63) → ``e2``."""
    return f"{FILES[square % 8]}{square // 8 + 1}"


def chess_action(from_square: int, to_square: int, player: int = 0) -> int | None:
    """The action PettingZoo's chess takes for moving the piece on ``from_square`` to
    ``to_square`` (python-chess numbering, a1 = 0), for ``player`` 0 (white) or 1 (black, whose
    moves PettingZoo mirrors); None when no piece can ever move so (not a queen line or a knight
    jump). A pawn's move to the last rank is its promotion to a queen."""
    if from_square == to_square or not (0 <= from_square < 64 and 0 <= to_square < 64):
        return None
    if player:
        from_square, to_square = from_square ^ 56, to_square ^ 56  # chess.square_mirror
    file, rank = from_square % 8, from_square // 8
    dx, dy = to_square % 8 - file, to_square // 8 - rank
    if (dx, dy) in _KNIGHT_DIRS:
        plane = 56 + _KNIGHT_DIRS.index((dx, dy))
    elif dx == 0 or dy == 0 or abs(dx) == abs(dy):
        plane = (max(abs(dx), abs(dy)) - 1) * 8 + _QUEEN_DIRS.index((_sign(dx), _sign(dy)))
    else:
        return None
    return (file * 8 + rank) * 73 + plane


def chess_move(action: int, player: int = 0) -> tuple[int, int]:
    """The (from, to) squares of a PettingZoo chess action for ``player`` (python-chess numbering)."""
    place, plane = divmod(int(action), 73)
    file, rank = divmod(place, 8)
    if plane < 56:
        distance, direction = divmod(plane, 8)
        dx, dy = (d * (distance + 1) for d in _QUEEN_DIRS[direction])
    elif plane < 64:
        dx, dy = _KNIGHT_DIRS[plane - 56]
    else:
        dx, dy = (plane - 64) // 3 - 1, 1  # an underpromotion: forward, or a capture to either side
    from_square, to_square = rank * 8 + file, (rank + dy) * 8 + file + dx
    if player:
        from_square, to_square = from_square ^ 56, to_square ^ 56
    return from_square, to_square


def legal_actions(mask: Any) -> list[int] | None:
    """The indices an action mask allows (numpy or a plain sequence), or None without a mask."""
    if mask is None:
        return None
    return [i for i, allowed in enumerate(mask) if allowed]


class BoardPointer:
    """A pointer for a board drawn over ``area`` (x, y, width, height in canvas coordinates;
    default: the whole canvas). Subclasses say where the cells are and what a click means."""

    name = "board"

    def __init__(self, area: tuple[float, float, float, float] | None = None) -> None:
        self.area = area
        self.seat: PointerSeat | None = None
        self.reset()

    # --- binding ----------------------------------------------------------------------------

    def for_seat(self, seat: PointerSeat | None, info: Any, where: str) -> BoardPointer:
        """A copy of this pointer for one seat (its own selection), checked against its space."""
        if seat is None:
            raise ExperimentError(f"{where}: a {self.name} pointer needs the seat's place on the canvas — "
                                  f"play it in a Session (igym.session.Session)")
        self.check_space(info, where)
        bound = copy.copy(self)
        bound.seat = seat
        bound.reset()
        return bound

    def check_space(self, info: Any, where: str) -> None:
        """Raise :class:`ExperimentError` when the seat's action space is not this board's."""

    def reset(self) -> None:
        """Forget any half-made move (a new seat, a new episode)."""

    def _box(self) -> tuple[float, float, float, float]:
        if self.area is not None:
            return tuple(float(v) for v in self.area)  # type: ignore[return-value]
        width, height = self.seat.canvas if self.seat is not None else (1.0, 1.0)
        return 0.0, 0.0, float(width), float(height)

    def fraction(self, x: float, y: float) -> tuple[float, float]:
        """Where (x, y) lies on the board: 0..1 across and down (outside: beyond those)."""
        left, top, width, height = self._box()
        return (x - left) / width, (y - top) / height

    def at(self, fx: float, fy: float) -> tuple[float, float]:
        """Canvas coordinates of a point at fractions (fx, fy) of the board."""
        left, top, width, height = self._box()
        return left + fx * width, top + fy * height

    def legal(self) -> list[int] | None:
        """The seat's legal actions now (None: the env gives no mask, or it is not the seat's turn)."""
        return legal_actions(self.seat.legal()) if self.seat is not None else None

    # --- the pointer protocol ---------------------------------------------------------------

    def __call__(self, x: float, y: float, buttons: int) -> Any:
        return self.click(x, y, buttons).action

    def click(self, x: float, y: float, buttons: int) -> Click:
        raise NotImplementedError

    def aim(self, rng: random.Random) -> tuple[float, float] | None:
        """Where a human-like random clicker clicks next (the autopilot)."""
        raise NotImplementedError


class GoPointer(BoardPointer):
    """PettingZoo go (``go_v5``): a left click on an intersection → that point's action
    (``N * column + row`` as the picture shows it). The pass (action ``N * N``) is a key:
    :func:`go_keymap`."""

    name = "go"

    def __init__(self, board_size: int = 19, area: tuple[float, float, float, float] | None = None) -> None:
        super().__init__(area)
        if not (isinstance(board_size, int) and 2 <= board_size <= 19):
            raise ExperimentError(f"GoPointer board_size must be a whole number from 2 to 19, got {board_size!r}")
        self.size = board_size

    def check_space(self, info: Any, where: str) -> None:
        n = self.size * self.size + 1
        if info.kind != "discrete" or info.n != n or info.start != 0:
            raise ExperimentError(f"{where}: the go pointer is for a {self.size}×{self.size} board, whose actions are "
                                  f"Discrete({n}), but the seat's space is {info.text} — make the key map with "
                                  f"go_keymap(board_size=...) of the env's board_size")

    # The env draws point (i, j) at ((i + 7/12) * tile, (j + 7/12) * tile), tile = width / N
    # (go_v5's render: tiles of 7/6 tile blitted at i * tile, the lines through their middles).
    _CENTRE = 7 / 12

    def point_at(self, x: float, y: float) -> tuple[int, int] | None:
        """The intersection nearest (x, y), or None off the board (more than half a tile out)."""
        fx, fy = self.fraction(x, y)
        u, v = fx * self.size - self._CENTRE, fy * self.size - self._CENTRE
        i, j = round(u), round(v)
        if not (0 <= i < self.size and 0 <= j < self.size):
            return None
        return i, j

    def centre(self, i: int, j: int) -> tuple[float, float]:
        return self.at((i + self._CENTRE) / self.size, (j + self._CENTRE) / self.size)

    def label(self, i: int, j: int) -> str:
        return f"{GO_COLUMNS[i]}{self.size - j}"

    def click(self, x: float, y: float, buttons: int) -> Click:
        found = self.point_at(x, y)
        if found is None or not buttons & 1:
            return Click(None, OFF_BOARD if found is None else self.label(*found), did=IGNORED)
        i, j = found
        return Click(i * self.size + j, self.label(i, j), did=MOVED)  # the session judges (and records) legality

    def aim(self, rng: random.Random) -> tuple[float, float] | None:
        legal = self.legal()
        if legal is None:
            return None
        points = [a for a in legal if a < self.size * self.size]
        if points and rng.random() < _AIM_LEGAL:
            i, j = divmod(rng.choice(points), self.size)
        else:
            i, j = rng.randrange(self.size), rng.randrange(self.size)
        x, y = self.centre(i, j)
        wobble = self._box()[2] / self.size / 4
        return x + rng.uniform(-wobble, wobble), y + rng.uniform(-wobble, wobble)


class ChessPointer(BoardPointer):
    """PettingZoo chess (``chess_v6``): a left click picks up a piece (a square it has a legal
    move from), a second click on another square moves it there. Clicking the piece again or
    the right button puts it down; clicking another piece that can move picks that one up.
    A pair that is no legal move is an illegal attempt: recorded, never sent. The board is
    drawn white at the bottom (a1 bottom left), as the env renders it for both players."""

    name = "chess"

    def check_space(self, info: Any, where: str) -> None:
        if info.kind != "discrete" or info.n != CHESS_ACTIONS or info.start != 0:
            raise ExperimentError(f"{where}: the chess pointer is for PettingZoo's chess, whose actions are "
                                  f"Discrete({CHESS_ACTIONS}), but the seat's space is {info.text}")

    def reset(self) -> None:
        self.selected: int | None = None

    @property
    def player(self) -> int:
        return self.seat.player if self.seat is not None else 0

    def square_at(self, x: float, y: float) -> int | None:
        """The square under (x, y) (python-chess numbering), or None off the board."""
        fx, fy = self.fraction(x, y)
        if not (0.0 <= fx < 1.0 and 0.0 <= fy < 1.0):
            return None
        return (7 - int(fy * 8)) * 8 + int(fx * 8)

    def centre(self, square: int) -> tuple[float, float]:
        return self.at((square % 8 + 0.5) / 8, (7 - square // 8 + 0.5) / 8)

    def _moves(self) -> list[tuple[int, int, int]] | None:
        legal = self.legal()
        if legal is None:
            return None
        return [(*chess_move(a, self.player), a) for a in legal]

    def click(self, x: float, y: float, buttons: int) -> Click:
        selected = self.selected
        square = self.square_at(x, y)
        where = OFF_BOARD if square is None else square_name(square)
        if not buttons & 1:  # the right (or middle) button puts the piece down
            self.selected = None
            if selected is not None:
                return Click(None, square_name(selected), did=PUT_DOWN)
            return Click(None, where, did=IGNORED)
        if square is None:
            return Click(None, where, did=IGNORED)
        moves = self._moves()
        movable = None if moves is None else {m[0] for m in moves}
        if selected is None:
            if movable is not None and square not in movable:
                return Click(None, where, did=IGNORED)  # an empty square, or a piece that cannot move
            self.selected = square
            return Click(None, where, did=PICKED_UP)
        if square == selected:
            self.selected = None
            return Click(None, where, did=PUT_DOWN)
        action = chess_action(selected, square, self.player)
        legal = moves is None or any(a == action for _, _, a in moves)
        if not legal and movable is not None and square in movable:
            self.selected = square  # another of one's own pieces: pick that one up instead
            return Click(None, where, did=PICKED_UP)
        self.selected = None
        label = f"{square_name(selected)}-{where}"
        if action is None:
            return Click(None, label, illegal=True, did=ILLEGAL)  # no piece moves so: no action to name it
        return Click(action, label, did=MOVED)  # the session judges (and records) its legality

    def aim(self, rng: random.Random) -> tuple[float, float] | None:
        moves = self._moves()
        if moves is None:
            return None
        if self.selected is None:
            choices = [m[0] for m in moves]
        else:
            choices = [m[1] for m in moves if m[0] == self.selected]
        square = rng.choice(choices) if choices and rng.random() < _AIM_LEGAL else rng.randrange(64)
        x, y = self.centre(square)
        wobble = self._box()[2] / 32
        return x + rng.uniform(-wobble, wobble), y + rng.uniform(-wobble, wobble)


def go_keymap(board_size: int = 19, pass_key: str = "p") -> KeyMap:
    """Go by mouse: click a point to place a stone, ``pass_key`` passes (one move per click or press)."""
    return KeyMap({pass_key: board_size * board_size}, mode="keystroke", default_action=board_size * board_size,
                  pointer=GoPointer(board_size))


def chess_keymap() -> KeyMap:
    """Chess by mouse: click a piece, then its target square (one move per two clicks)."""
    return KeyMap({}, mode="keystroke", default_action=0, pointer=ChessPointer())
