"""Slime Volleyball for two people.

On one keyboard: the left slime plays with W (jump), A and D; the right slime with the
arrow keys (↑ jumps). The networked server will seat each person at their own keyboard
with the same experiment file.

    python -m igym.play examples/slime_volleyball/human_human.py
"""

from igym import Experiment, Game, KeyMap

from .draw import CANVAS, render
from .slime import SlimeVolleyEnv

# Discrete(6): 0 noop, 1 forward, 2 forward+jump, 3 jump, 4 backward+jump, 5 backward.
# "Forward" points at the net: → for the left slime, ← for the right one.
LEFT_KEYS = KeyMap({"d": 1, "a": 5, "w": 3, ("d", "w"): 2, ("a", "w"): 4}, default_action=0)
RIGHT_KEYS = KeyMap({"left": 1, "right": 5, "up": 3, ("left", "up"): 2, ("right", "up"): 4}, default_action=0)

experiment = Experiment(
    id="slime_human_human",
    scenes=[
        Game(
            name="slime_two_players",
            env=SlimeVolleyEnv,
            render=render,
            seats={"agent_left": "human", "agent_right": "human"},
            keys={"agent_left": LEFT_KEYS, "agent_right": RIGHT_KEYS},
            fps=30,
            episodes=3,
            canvas=CANVAS,
            background=(11, 16, 19),
        )
    ],
)
