"""A real-time study whose second block runs long, for the SIGKILL test."""

from examples.slime_volleyball.draw import CANVAS, render
from examples.slime_volleyball.human_ai import KEYS
from examples.slime_volleyball.slime import SlimeVolleyEnv
from igym.experiment import Experiment, Game, Info


def block(name, steps):
    return Game(name=name, env=SlimeVolleyEnv, render=render, canvas=CANVAS, keys=KEYS,
                seats={"agent_left": "human", "agent_right": "random"}, fps=30, episodes=1, max_steps=steps, seeds=3)


experiment = Experiment(id="kill_study", scenes=[
    Info(name="hello", text="Two blocks follow."),
    block("block_1", 30),
    block("block_2", 6000),
])
