"""A two-person study for the cluster tests: consent, a 60-step Slime Volleyball game of two
people (authoritative; ``CLUSTER_NET=lockstep`` for lockstep), end with a code. People reach
any worker; the shared lobby pairs them and their room is placed on one worker."""

import os

from examples.slime_volleyball.draw import CANVAS, render
from examples.slime_volleyball.human_human import LEFT_KEYS, RIGHT_KEYS
from examples.slime_volleyball.slime import SlimeVolleyEnv
from igym.experiment import Consent, End, Experiment, Game

experiment = Experiment(
    id="cluster_pairs",
    scenes=[
        Consent(name="consent", text="Do you agree to play with another person?"),
        Game(name="duel", env=SlimeVolleyEnv, render=render, canvas=CANVAS,
             seats={"agent_left": "human", "agent_right": "human"},
             keys={"agent_left": LEFT_KEYS, "agent_right": RIGHT_KEYS}, fps=30, episodes=1,
             max_steps=int(os.environ.get("CLUSTER_STEPS", "60")), seeds=2, lobby_timeout_s=60,
             network=os.environ.get("CLUSTER_NET", "authoritative"), instructions="Play with another person."),
        End(name="end", text="Thanks!"),
    ],
)
