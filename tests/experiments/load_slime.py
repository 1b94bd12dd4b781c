"""Endless two-player Slime Volleyball rooms for the server load benchmark (``LOAD_SOLO=1``:
rooms of one player against a random AI, which any worker of a cluster can host alone)."""

import os

from examples.slime_volleyball.draw import CANVAS, render
from examples.slime_volleyball.human_human import LEFT_KEYS, RIGHT_KEYS
from examples.slime_volleyball.slime import SlimeVolleyEnv
from igym.experiment import Experiment, Game

experiment = Experiment(
    id="load_slime",
    scenes=[Game(name="load", env=lambda: SlimeVolleyEnv(max_steps=10**9), render=render, canvas=CANVAS,
                 seats={"agent_left": "human", "agent_right": "random" if os.environ.get("LOAD_SOLO") else "human"},
                 keys={"agent_left": LEFT_KEYS, "agent_right": RIGHT_KEYS} if not os.environ.get("LOAD_SOLO")
                 else {"agent_left": LEFT_KEYS},
                 fps=30, episodes=1000, lobby_timeout_s=600, grace_s=1)],
)
