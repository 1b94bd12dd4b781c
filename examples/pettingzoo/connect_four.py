"""Connect Four (PettingZoo classic, turn-based) for two people on one keyboard, or one person
per machine through the server.

    python -m igym.play examples/pettingzoo/connect_four.py
    python -m igym.server examples/pettingzoo/connect_four.py    # then --connect from two machines

Keys 1-7 drop a disc into a column; only the player whose turn it is moves (a key pressed in
the other's turn is recorded as ``key_dropped`` and ignored), and a full column is no move
(``illegal_action``).
"""

from igym import Experiment, Game
from igym.builtin_keys import keymap_for


def make():
    from pettingzoo.classic import connect_four_v3

    return connect_four_v3.env(render_mode="rgb_array")


experiment = Experiment(id="connect_four", scenes=[Game(
    name="connect_four", env=make, canvas=(891, 774), fps=4, episodes=2, pace="on_input",
    seats={"player_0": "human", "player_1": "human"}, keys=keymap_for("connect_four"),
    instructions="Four in a row wins. Keys **1**-**7** drop a disc into a column; wait for your turn.")])
