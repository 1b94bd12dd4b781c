"""Chess (PettingZoo classic, turn-based) against a random player, with the mouse.

    pip install chess                 # python-chess: PettingZoo's chess needs it
    python -m igym.play examples/pettingzoo/chess.py

Click one of your pieces, then the square it moves to (a pawn reaching the last rank becomes
a queen; castle by moving the king two squares). Clicking the piece again or the right button
puts it down; clicking another of your pieces picks that one up. A move the rules do not allow
is recorded (``illegal_action``, with the squares clicked) and never played: you move again.
Every click is recorded (``click`` events), and each move's step holds the squares
(``keys``: ``e2-e4``) and when the move was asked for (``turn_ns``). You play white, at the
bottom; the AI answers half a second later (``fps=2``).
"""

from igym import Experiment, Game
from igym.builtin_keys import keymap_for


def make():
    from pettingzoo.classic import chess_v6

    return chess_v6.env(render_mode="rgb_array")  # an 800 × 800 picture, white at the bottom


experiment = Experiment(id="chess", scenes=[Game(
    name="chess", env=make, canvas=(800, 800), fps=2, episodes=1, pace="on_input", countdown_s=0,
    seats={"player_0": "human", "player_1": "random"}, keys=keymap_for("chess"),
    instructions="You play white against a random player. Click one of your pieces, then the square "
                 "it moves to. A pawn reaching the last rank becomes a queen; castle by moving the king "
                 "two squares. Click the piece again (or the right button) to put it down.")])
