"""Slime Volleyball: a person (left, arrow keys) against the ONNX AI (right).

    python -m igym.play examples/slime_volleyball/human_ai.py

Up jumps; left/right move. Three matches; a match ends when one side has lost 5 points (or after
3,000 steps = 100 s). Every step of both players lands in the study's SQLite file.
"""

from pathlib import Path

from igym import Experiment, Game, KeyMap

from .draw import CANVAS, render
from .slime import SlimeVolleyEnv

POLICY = Path(__file__).resolve().parents[2] / "policies" / "slime_volleyball.onnx"

# Discrete(6) actions of the env: see slime.py. For the left slime "forward" is →.
KEYS = KeyMap({"right": 1, "left": 5, "up": 3, ("right", "up"): 2, ("left", "up"): 4}, default_action=0)

experiment = Experiment(
    id="slime_human_ai",
    scenes=[
        Game(
            name="slime_vs_ai",
            env=SlimeVolleyEnv,
            render=render,
            seats={"agent_left": "human", "agent_right": str(POLICY)},
            keys=KEYS,
            fps=30,
            episodes=3,
            canvas=CANVAS,
            background=(11, 16, 19),
        )
    ],
)
