"""A short solo study with two conditions, served by several workers in the cluster tests:
consent, a survey, a 60-step Slime Volleyball game against a random AI (long enough to kill
a worker during it: CLUSTER_STEPS), end with a code."""

import os

from examples.slime_volleyball.draw import CANVAS, render
from examples.slime_volleyball.human_human import LEFT_KEYS
from examples.slime_volleyball.slime import SlimeVolleyEnv
from igym.experiment import Consent, End, Experiment, Game, Likert, Survey

STEPS = int(os.environ.get("CLUSTER_STEPS", "60"))

experiment = Experiment(
    id="cluster_study",
    conditions={"calm": {}, "busy": {}},
    scenes=[
        Consent(name="consent", text="Do you agree to play?"),
        Survey(name="before", questions=[Likert("ready", "I feel ready.", points=5)]),
        Game(name="match", env=SlimeVolleyEnv, render=render, canvas=CANVAS,
             seats={"agent_left": "human", "agent_right": "random"}, keys={"agent_left": LEFT_KEYS},
             fps=30, episodes=1, max_steps=STEPS, seeds=2),
        End(name="end", text="Thanks!"),
    ],
)
