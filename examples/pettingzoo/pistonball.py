"""PettingZoo's Pistonball (butterfly) with one person and 19 random pistons.

    pip install pymunk      # pistonball's physics (pygame comes from pygame-ce: do not install pygame)
    python -m igym.play examples/pettingzoo/pistonball.py

The person moves the leftmost piston with ↑ / ↓ (or W / S, or the left stick's y): the
built-in map of the pistonball family (``igym.builtin_keys``), a Box(-1, 1, (1,)) action.
This is the route for any PettingZoo ParallelEnv: a Game whose ``env`` makes it with
``render_mode="rgb_array"``, one seat per agent, a key map for the human seats, and a
canvas of the picture's size.
"""

from igym.builtin_keys import keymap_for
from igym import Experiment, Game

AGENTS = [f"piston_{i}" for i in range(20)]


def make():
    from pettingzoo.butterfly import pistonball_v6

    return pistonball_v6.parallel_env(render_mode="rgb_array", max_cycles=300)


experiment = Experiment(id="pistonball", scenes=[Game(
    name="pistonball", env=make, canvas=(880, 560), fps=30, episodes=3,
    seats={agent: "human" if agent == "piston_0" else "random" for agent in AGENTS},
    keys=keymap_for("pistonball_v6"))])
