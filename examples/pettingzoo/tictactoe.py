"""Tic-tac-toe (PettingZoo classic, turn-based) against a random player.

    python -m igym.play examples/pettingzoo/tictactoe.py

Keys 1-9 mark a square in reading order (1 2 3 the top row, 7 8 9 the bottom). The game
waits for your move (``pace="on_input"``); the AI answers half a second later (``fps=2``).
An occupied square is not a move: it is recorded (``illegal_action``) and you move again.
Every step records when the move was asked for (``turn_ns``), so ``key_t_ns - turn_ns`` is
the decision time of each of your moves.
"""

from igym import Experiment, Game
from igym.builtin_keys import keymap_for


def make():
    from pettingzoo.classic import tictactoe_v3

    return tictactoe_v3.env(render_mode="rgb_array")


experiment = Experiment(id="tictactoe", scenes=[Game(
    name="tictactoe", env=make, canvas=(600, 600), fps=2, episodes=3, pace="on_input", countdown_s=0,
    seats={"player_1": "human", "player_2": "random"}, keys=keymap_for("tictactoe"),
    instructions="Get three in a row. Keys **1**-**9** mark a square: 1 2 3 the top row, 4 5 6 the middle, "
                 "7 8 9 the bottom. You play X and move first.")])
