"""Go (PettingZoo classic, turn-based) on a 9 × 9 board against a random player, with the mouse.

    python -m igym.play examples/pettingzoo/go.py

Click an intersection to place a stone there; P passes. Two passes in a row end the game
(Tromp-Taylor scoring, komi 7.5). A point where no stone may go (taken, suicide, ko) is
recorded (``illegal_action``) and you move again. Every click is recorded (``click`` events,
named as the picture shows the board: columns A-J without I, rows 1-9 from the bottom), and
each move's step holds the point (``keys``) and when the move was asked for (``turn_ns``).
"""

from igym import Experiment, Game
from igym.boards import go_keymap

SIZE = 9


def make():
    from pettingzoo.classic import go_v5

    return go_v5.env(board_size=SIZE, render_mode="rgb_array")  # an 800 × 800 picture


experiment = Experiment(id="go", scenes=[Game(
    name="go", env=make, canvas=(800, 800), fps=2, episodes=1, pace="on_input", countdown_s=0,
    seats={"black_0": "human", "white_0": "random"}, keys=go_keymap(board_size=SIZE),
    instructions="You play black on a 9 × 9 board and move first. Click an intersection to place a stone; "
                 "press **P** to pass. Two passes in a row end the game.")])
