"""Chess and go with the mouse (igym.boards): clicks on the env's own picture become PettingZoo's
actions, illegal attempts are recorded and never sent, and the autopilot — a random clicker
that mostly clicks where a move is — plays whole games of legal moves only.

The sessions are the real sans-I/O Session on the real PettingZoo envs; clicks go in through
``Session.point`` in canvas coordinates, as the window loop sends them.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from igym import Game
from igym.boards import ChessPointer, GoPointer, chess_action, chess_keymap, chess_move, go_keymap
from igym.builtin_keys import keymap_for, pace_for
from igym.controls import Click, KeyMap, PointerSeat, SeatInput
from igym.errors import ExperimentError
from igym.records import EpisodeRecord, EventRecord, StepRecord
from igym.session import Session

ROOT = Path(__file__).resolve().parents[2]


def chess_env(**kwargs):
    pytest.importorskip("chess")
    from pettingzoo.classic import chess_v6

    return chess_v6.env(render_mode="rgb_array", **kwargs)


def go_env(size=9):
    from pettingzoo.classic import go_v5

    return go_v5.env(board_size=size, render_mode="rgb_array")


class Referee:
    """Wraps an AEC env's ``step``: every action sent is checked against the mover's mask."""

    def __init__(self, make):
        self.sent, self.illegal = [], []
        self.make = make

    def __call__(self):
        env = self.make()
        step = env.step

        def checked(action):
            if env.agents and not (env.terminations[env.agent_selection] or env.truncations[env.agent_selection]):
                mask = env.observe(env.agent_selection)["action_mask"]
                (self.sent if mask[action] else self.illegal).append((env.agent_selection, int(action)))
            step(action)

        env.step = checked
        return env


def board_game(make, seats, keys, canvas=(800, 800)):
    return Game(name="board", env=make, canvas=canvas, fps=30, episodes=1, pace="on_input", countdown_s=0,
                seats=seats, keys=keys, fingerprints=False)


class Player:
    """Drives a session: clicks (a press and a release), keys and ticks, collecting the records."""

    def __init__(self, session):
        self.session, self.t, self.records = session, 0.0, []
        self.tick()

    def tick(self, dt=0.05):
        self.t = round(self.t + dt, 6)
        self.session.tick(self.t)
        self.records += self.session.take_records()

    def click(self, x, y, button=1):
        self.tick()
        self.session.point(x, y, button, self.t)
        self.session.point(x, y, 0, self.t)
        self.tick()
        self.tick()  # the AI's answer comes 1 / fps after the move

    def key(self, key):
        self.tick()
        self.session.press(key, self.t)
        self.session.release(key, self.t)
        self.tick()
        self.tick()

    def steps(self, agent=None):
        return [r for r in self.records if type(r) is StepRecord]

    def events(self, kind):
        return [r.data for r in self.records if type(r) is EventRecord and r.kind == kind]

    def moves(self, agent):
        return [(s.actions[agent], s.keys[s.agents.index(agent)]) for s in self.steps()
                if s.sources[s.agents.index(agent)] == "human"]


def square(name, size=800):
    """The canvas centre of a chess square (white at the bottom, as chess_v6 draws it)."""
    file, rank = "abcdefgh".index(name[0]), int(name[1]) - 1
    return (file + 0.5) * size / 8, (7 - rank + 0.5) * size / 8


# --- the encoding ----------------------------------------------------------------------------------

def test_chess_actions_are_pettingzoos_for_both_players():
    """Every legal action of random games, for white and black, decodes to the squares python-chess
    moves between (PettingZoo's own action_to_move) and encodes back to itself."""
    chess = pytest.importorskip("chess")
    from pettingzoo.classic.chess import chess_utils

    rng = random.Random(3)
    seen = 0
    for _ in range(3):
        board = chess.Board()
        for _ in range(80):
            if board.is_game_over():
                break
            player = 0 if board.turn == chess.WHITE else 1
            for action in chess_utils.legal_moves(board):
                move = chess_utils.action_to_move(board, action, player)
                assert chess_move(action, player) == (move.from_square, move.to_square)
                if move.promotion in (None, chess.QUEEN):
                    assert chess_action(move.from_square, move.to_square, player) == action
                seen += 1
            board.push(rng.choice(list(board.legal_moves)))
    assert seen > 3000
    assert chess_action(12, 28) == 2421  # e2-e4
    assert chess_action(0, 17) is not None and chess_action(0, 25) is None  # a knight jump; no piece moves a1-b4
    # A pawn's move to the last rank is its queen promotion, for white and for black.
    for fen, uci, player in (("8/4P3/8/8/8/8/k7/7K w - - 0 1", "e7e8q", 0),
                             ("7k/8/8/8/8/8/4p3/K7 b - - 0 1", "e2e1q", 1)):
        board = chess.Board(fen)
        move = chess.Move.from_uci(uci)
        assert chess_action(move.from_square, move.to_square, player) in chess_utils.legal_moves(board)
        assert chess_utils.action_to_move(board, chess_action(move.from_square, move.to_square, player),
                                          player) == move


def test_built_in_maps_are_board_pointers_that_wait_for_the_player():
    chess = keymap_for("pettingzoo.classic.chess_v6")
    go = keymap_for("pettingzoo.classic.go_v5")
    assert isinstance(chess.pointer, ChessPointer) and chess.mode == "keystroke" and not chess.keys
    assert isinstance(go.pointer, GoPointer) and go.pointer.size == 19 and dict(go.entries)[frozenset({"p"})] == 361
    assert keymap_for("chess_v6").pointer is not chess.pointer  # each map its own pointer
    assert pace_for("pettingzoo.classic.chess_v6") == pace_for("pettingzoo.classic.go_v5") == "on_input"
    assert go.describe()["pointer"] == "GoPointer"


def test_in_a_keystroke_map_a_click_is_one_keystroke():
    """Any pointer function: asked once per button press, its action queued like a key press."""
    from gymnasium import spaces

    asked = []

    def cell(x, y, buttons):
        asked.append((x, y, buttons))
        return int(x // 100) if buttons & 1 else None

    seat = SeatInput(KeyMap({"space": 3}, mode="keystroke", pointer=cell), spaces.Discrete(4), "cells")
    seat.point(250.0, 40.0, 0, 1)
    assert not seat.pending() and asked == []  # moving is no click
    seat.point(250.0, 40.0, 1, 2)
    seat.point(150.0, 40.0, 1, 3)  # dragged with the button down: still the one click
    seat.press("space", 4)
    assert asked == [(250.0, 40.0, 1)] and seat.clicked is None
    assert seat.next_action() == (2, "human") and (seat.keys_used, seat.decided_ns) == ("click 250,40", 2)
    assert seat.next_action() == (3, "human") and seat.keys_used == "space"
    assert seat.next_action() == (0, "default")  # nothing queued: a held button plays nothing more
    seat.point(150.0, 40.0, 0, 5)
    seat.point(150.0, 40.0, 4, 6)  # the right button: asked, no action
    assert seat.clicked == Click(None, "click 150,40") and not seat.pending()
    seat.point(350.0, 40.0, 5, 7)  # left pressed while the right is held
    seat.point(350.0, 40.0, 0, 8)
    seat.point(350.0, 40.0, 1, 9, queue=False)  # the game takes no input: not asked
    assert len(asked) == 3 and seat.next_action() == (3, "human") and not seat.pending()
    seat.point(950.0, 40.0, 0, 10)
    with pytest.raises(ExperimentError, match="pointer function's action = 9"):
        seat.point(950.0, 40.0, 1, 11)


def test_a_board_pointer_is_checked_against_the_seats_space():
    from gymnasium import spaces

    place = PointerSeat("black_0", 0, (800, 800))
    SeatInput(go_keymap(9), spaces.Discrete(82), "go", place)
    with pytest.raises(ExperimentError, match=r"9×9 board.*Discrete\(82\).*Discrete\(362\).*go_keymap"):
        SeatInput(go_keymap(9), spaces.Discrete(362), "go", place)
    with pytest.raises(ExperimentError, match=r"Discrete\(4672\)"):
        SeatInput(chess_keymap(), spaces.Discrete(82), "chess", place)
    with pytest.raises(ExperimentError, match="needs the seat's place"):
        SeatInput(chess_keymap(), spaces.Discrete(4672), "chess")


# --- chess by clicks -----------------------------------------------------------------------------

def _did(clicks: list[dict]) -> list[tuple[str, str]]:
    """Each click event's name and what it did."""
    return [(c["what"], c["did"]) for c in clicks]


def test_e2_e4_is_two_clicks_and_the_first_move():
    referee = Referee(chess_env)
    player = Player(Session(board_game(referee, {"player_0": "human", "player_1": "random"}, chess_keymap()), "P"))
    player.click(*square("e2"))
    assert player.steps() == []  # a piece picked up is no move
    player.click(*square("e4"))
    assert player.moves("player_0") == [(2421, "e2-e4")]
    assert referee.sent[0] == ("player_0", 2421) and len(referee.sent) == 2  # and the AI answered
    board = player.session.env.env.unwrapped.board
    assert board.piece_at(28).symbol() == "P" and board.piece_at(12) is None  # e4, e2
    assert _did(player.events("click")) == [("e2", "picked up"), ("e2-e4", "moved")]
    second = [r for r in player.records if type(r) is EventRecord and r.kind == "click"][-1]
    human = player.steps()[0]
    assert human.key_t_ns[0] == second.t_ns > human.turn_ns  # the move's moment: its second click


def test_black_moves_are_mirrored_as_pettingzoo_encodes_them():
    referee = Referee(chess_env)
    player = Player(Session(board_game(referee, {"player_0": "random", "player_1": "human"}, chess_keymap()), "P"))
    for _ in range(3):
        player.tick()  # white (the AI) moves first
    board = player.session.env.env.unwrapped.board
    assert len(board.move_stack) == 1
    player.click(*square("e7"))  # no first move of white's stops e7-e5
    player.click(*square("e5"))
    assert board.move_stack[1].uci() == "e7e5"
    assert player.moves("player_1") == [(chess_action(52, 36, player=1), "e7-e5")]
    assert chess_action(52, 36, player=1) == chess_action(12, 28)  # mirrored: the same action as white's e2-e4
    assert not referee.illegal


def test_an_illegal_pair_is_recorded_and_never_sent():
    referee = Referee(chess_env)
    player = Player(Session(board_game(referee, {"player_0": "human", "player_1": "random"}, chess_keymap()), "P"))
    player.click(*square("e2"))
    player.click(*square("e5"))  # a queen line, but no pawn's move: PettingZoo names it, the mask forbids it
    player.click(*square("e2"))
    player.click(*square("f5"))  # no piece ever moves so: no action names it
    player.click(*square("a1"))  # the rook cannot move: nothing picked up
    player.click(*square("a3"))
    assert player.steps() == [] and referee.sent == []
    illegal = player.events("illegal_action")
    assert illegal == [{"agent": "player_0", "action": chess_action(12, 36), "keys": "e2-e5"},
                       {"agent": "player_0", "action": None, "keys": "e2-f5"}]
    # Another piece that can move picks that one up instead; clicking it again puts it down.
    player.click(*square("e2"))
    player.click(*square("d2"))
    player.click(*square("d2"))
    player.click(*square("g1"))
    player.click(*square("f3"))
    assert player.moves("player_0") == [(chess_action(6, 21), "g1-f3")]
    assert _did(player.events("click"))[-5:] == [("e2", "picked up"), ("d2", "picked up"), ("d2", "put down"),
                                                 ("g1", "picked up"), ("g1-f3", "moved")]
    assert referee.illegal == [] and referee.sent[0] == ("player_0", chess_action(6, 21))


def test_each_click_event_says_what_the_click_did():
    """A click on a piece that cannot move is no pick-up: the click events tell a real pick-up,
    a put-down, an ignored click, a move and an illegal attempt apart."""
    referee = Referee(chess_env)
    player = Player(Session(board_game(referee, {"player_0": "human", "player_1": "random"}, chess_keymap()), "P"))
    player.click(*square("a1"))  # the rook is walled in: nothing picked up ...
    player.click(*square("a3"))  # ... so this is no a1-a3 attempt
    player.click(*square("e4"))  # an empty square
    player.click(*square("e2"), button=4)  # the right button, nothing held
    player.click(-5.0, 400.0)  # beside the board
    player.click(*square("e2"))
    player.click(*square("e2"))
    player.click(*square("g1"))
    player.click(*square("g1"), button=4)
    player.click(*square("e2"))
    player.click(*square("e5"))
    player.click(*square("e2"))
    player.click(*square("e4"))
    assert _did(player.events("click")) == [
        ("a1", "ignored"), ("a3", "ignored"), ("e4", "ignored"), ("e2", "ignored"), ("off the board", "ignored"),
        ("e2", "picked up"), ("e2", "put down"), ("g1", "picked up"), ("g1", "put down"), ("e2", "picked up"),
        ("e2-e5", "illegal"), ("e2", "picked up"), ("e2-e4", "moved")]
    assert player.events("illegal_action") == [{"agent": "player_0", "action": chess_action(12, 36), "keys": "e2-e5"}]
    assert player.moves("player_0") == [(chess_action(12, 28), "e2-e4")] and referee.sent[0] == ("player_0", 2421)

    referee = Referee(lambda: go_env(9))
    game = board_game(referee, {"black_0": "human", "white_0": "random"}, go_keymap(9), canvas=(600, 600))
    player = Player(Session(game, "P"))
    tile = 600 / 9
    player.click(3, 3)  # off the board
    player.click((2 + 7 / 12) * tile, (3 + 7 / 12) * tile, button=4)  # the right button on C6
    player.click((2 + 7 / 12) * tile, (3 + 7 / 12) * tile)
    player.tick()
    player.click((2 + 7 / 12) * tile, (3 + 7 / 12) * tile)  # C6 again, taken: the env's mask refuses it
    assert _did(player.events("click")) == [("off the board", "ignored"), ("C6", "ignored"), ("C6", "moved"),
                                            ("C6", "illegal")]
    assert player.moves("black_0") == [(2 * 9 + 3, "C6")]


def test_clicks_out_of_turn_are_dropped_and_the_right_button_puts_a_piece_down():
    referee = Referee(chess_env)
    session = Session(board_game(referee, {"player_0": "human", "player_1": "random"}, chess_keymap()), "P")
    session.point(*square("e2"), 1, 0.0)  # before the game starts
    session.tick(0.0)
    records = session.take_records()
    assert [r.data for r in records if type(r) is EventRecord and r.kind == "click"] == [
        {"agent": "player_0", "x": 450.0, "y": 650.0, "what": "", "did": "ignored", "dropped": "not started"}]
    session.point(*square("e2"), 0, 0.01)
    player = Player(session)
    player.click(*square("e2"))
    player.click(*square("e4"), button=4)  # the right button: put down, no move
    player.click(*square("e4"))  # nothing picked up: no move either
    assert player.steps() == []
    player.click(*square("d2"))
    player.tick()
    player.session.point(*square("d4"), 1, player.t)  # the move, played at the next tick ...
    player.session.point(*square("d4"), 0, player.t)
    player.session.point(*square("c2"), 1, player.t)  # ... and a click between (picks c2 up: still our turn)
    player.session.point(*square("c2"), 0, player.t)
    player.tick()
    player.session.point(*square("c2"), 1, player.t)  # a click in the AI's turn, before it moves
    player.session.point(*square("c2"), 0, player.t)
    player.tick()
    assert player.moves("player_0") == [(chess_action(11, 27), "d2-d4")]
    assert _did(player.events("click"))[-2:] == [("c2", "picked up"), ("", "ignored")]
    assert player.events("click")[-1]["dropped"] == "not their turn"
    player.click(*square("c4"))  # c2 was put down when the move was played: c4 picks nothing up
    player.click(*square("e2"))
    player.click(*square("e4"))
    assert player.moves("player_0")[1:] == [(chess_action(12, 28), "e2-e4")]


def test_clicks_through_the_real_window_letterboxed_with_the_hud(tmp_path):
    """The mouse's window pixels → canvas → squares, through the window loop and the SQLite sink."""
    import asyncio
    import json
    import sqlite3

    import pygame

    from igym.renderers.app import VirtualClock, run_session
    from igym.renderers.draw import FrameRenderer
    from igym.renderers.window import Window
    from igym.sqlite_sink import SqliteSink

    game = board_game(Referee(chess_env), {"player_0": "human", "player_1": "random"}, keymap_for("chess_v6"),
                      canvas=(800, 800))
    window = Window((1000, 700), headless=True)  # smaller than the canvas, and wider: scaled and moved
    try:
        layout = FrameRenderer(window.surface, game.canvas, hud=True)
        timeline = []
        for at, name in ((0.3, "e2"), (0.6, "e4")):
            spot = tuple(map(round, layout.to_screen(*square(name))))
            timeline += [(at, pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=spot, button=1)),
                         (at + 0.05, pygame.event.Event(pygame.MOUSEBUTTONUP, pos=spot, button=1))]

        class Mouse:
            def play(self, session, now):
                while timeline and timeline[0][0] <= now:
                    pygame.event.post(timeline.pop(0)[1])

        session = Session(game, "mouse", max_total_steps=2)
        with SqliteSink(tmp_path / "mouse.sqlite") as sink:
            asyncio.run(run_session(window, session, sink, VirtualClock(60.0), autopilot=Mouse()))
    finally:
        window.close()
    db = sqlite3.connect(tmp_path / "mouse.sqlite")
    assert db.execute("SELECT action, source, keys FROM steps WHERE agent='player_0' AND step=1").fetchone() == \
        ("2421", "human", "e2-e4")
    clicks = [json.loads(d) for (d,) in db.execute("SELECT data FROM events WHERE kind='click' ORDER BY t_ns")]
    assert _did(clicks) == [("e2", "picked up"), ("e2-e4", "moved")]
    assert clicks[1]["x"] == pytest.approx(450, abs=2) and clicks[1]["y"] == pytest.approx(450, abs=2)


# --- go by clicks --------------------------------------------------------------------------------

def test_a_click_on_an_intersection_places_the_stone_there_and_p_passes():
    """On a canvas smaller than the env's picture: the stone appears where the click was."""
    referee = Referee(lambda: go_env(9))
    game = board_game(referee, {"black_0": "human", "white_0": "random"}, go_keymap(9), canvas=(600, 600))
    player = Player(Session(game, "P"))
    tile = 600 / 9
    x, y = (2 + 7 / 12) * tile + 5, (3 + 7 / 12) * tile - 7  # near column C (x), row 6 (y from the bottom)
    player.click(x, y)
    assert player.moves("black_0") == [(2 * 9 + 3, "C6")]
    env = player.session.env.env
    assert env.unwrapped._go.board[2][3] == 1  # black
    picture = env.render()  # 800 × 800: the click's spot, scaled, is on the black stone
    r, g, b = (int(v) for v in picture[int(y * 800 / 600), int(x * 800 / 600)])
    assert r + g + b < 150, (r, g, b)
    occupied = next(a for _, a in referee.sent[1:])  # where the AI put its stone
    i, j = divmod(occupied, 9)
    player.click((i + 7 / 12) * tile, (j + 7 / 12) * tile)
    assert player.events("illegal_action") == [
        {"agent": "black_0", "action": occupied, "keys": f"{'ABCDEFGHJ'[i]}{9 - j}"}]
    player.click(3, 3)  # off the board: no move
    player.key("p")
    assert player.moves("black_0")[1:] == [(81, "p")]
    assert referee.illegal == [] and len(player.moves("black_0")) == 2


# --- the autopilot: a random clicker, legal moves only reach the env ---------------------------------

@pytest.mark.parametrize("name, make, keys, seats, steps", [
    ("chess", chess_env, chess_keymap, {"player_0": "human", "player_1": "random"}, 120),
    ("go", lambda: go_env(9), lambda: go_keymap(9), {"black_0": "human", "white_0": "random"}, 120),
    ("go 19", lambda: go_env(19), lambda: keymap_for("go_v5"), {"black_0": "random", "white_0": "human"}, 60),
])
def test_an_autopilot_plays_whole_games_of_legal_moves(name, make, keys, seats, steps):
    from igym.renderers.app import autopilot_for

    referee = Referee(make)
    game = Game(name=name.replace(" ", "_"), env=referee, canvas=(640, 640), fps=30, episodes=50,
                pace="on_input", countdown_s=0, seats=seats, keys=keys(), fingerprints=False)
    session = Session(game, "auto", max_total_steps=steps, seed_source=lambda: 1)
    autopilot = autopilot_for(session, seed=7)
    assert autopilot.aim is not None
    records, t = [], 0.0
    while not session.finished and t < 2000:
        autopilot.play(session, t)
        session.tick(t)
        records += session.take_records()
        t += 1 / 60
    steps_recorded = [r for r in records if type(r) is StepRecord]
    human = next(a for a, s in seats.items() if s == "human")
    moves = [s.actions[human] for s in steps_recorded if s.sources[s.agents.index(human)] == "human"]
    assert len(steps_recorded) == steps and len(moves) >= steps // 2 - 1
    assert referee.illegal == []
    sent = [a for agent, a in referee.sent if agent == human]
    assert sent == moves  # every move recorded is what the env got, and each was legal then
    assert [r for r in records if type(r) is EventRecord and r.kind == "illegal_action"]  # it misclicks too
    assert all(type(r) is not EpisodeRecord or r.outcome in (None, "terminated", "stopped") for r in records)


# --- the sweep's experiment file and the examples, through --check -----------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("module", ["pettingzoo.classic.chess_v6", "pettingzoo.classic.go_v5"])
def test_the_sweeps_experiment_file_plays_the_board_games(module, tmp_path):
    if "chess" in module:
        pytest.importorskip("chess")
    from igym.check import check_target
    from tests.integration.test_sweep import STUDY

    name = module.split(".")[-1]
    path = tmp_path / f"pz_{name}.py"
    path.write_text(STUDY.format(module=module, name=name))
    line = check_target(str(path), steps=60, budget_s=90)
    assert line.startswith(f"OK: {path} played 60 steps (") and "human" in line and "pointer" in line, line


@pytest.mark.slow
def test_the_examples_play():
    pytest.importorskip("chess")
    from igym.check import check_target

    for example in ("chess", "go"):
        line = check_target(str(ROOT / "examples" / "pettingzoo" / f"{example}.py"), steps=40, budget_s=90)
        assert "played 40 steps" in line, line
