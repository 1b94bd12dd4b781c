"""Short networked Slime Volleyball games for the server tests (2 s episodes, quick timeouts)."""

import os

from examples.slime_volleyball.human_human import LEFT_KEYS, RIGHT_KEYS
from examples.slime_volleyball.draw import CANVAS, render
from examples.slime_volleyball.slime import SlimeVolleyEnv
from igym.experiment import Experiment, Game

# The tests tune the rules through the environment, so one file serves every case.
FILL = os.environ.get("NET_FILL") or None
DROPOUT = os.environ.get("NET_DROPOUT", "end")

experiment = Experiment(
    id="net_slime",
    scenes=[
        Game(name="net", env=SlimeVolleyEnv, render=render, canvas=CANVAS,
             seats={"agent_left": "human", "agent_right": "human"},
             keys={"agent_left": LEFT_KEYS, "agent_right": RIGHT_KEYS},
             fps=30, episodes=1, max_steps=int(os.environ.get("NET_STEPS", "60")), seeds=1,
             lobby_timeout_s=float(os.environ.get("NET_LOBBY_S", "20")), fill=FILL,
             grace_s=float(os.environ.get("NET_GRACE_S", "3")), dropout=DROPOUT,
             max_rtt_ms=float(os.environ["NET_MAX_RTT"]) if os.environ.get("NET_MAX_RTT") else None),
    ],
)
