"""Overcooked for two people: Cramped Room, then Asymmetric Advantages.

On one keyboard: cook 0 (blue) uses the arrow keys and Space, cook 1 (green) uses
W/A/S/D and Left Shift. Over the network each person plays at their own keyboard with
the same file (each client sends only its own seat's keys):

    python -m igym.play examples/overcooked/human_human.py
    python -m igym.server examples/overcooked/human_human.py      # then: python -m igym.play --connect ws://HOST:8765

Keys are per agent (``{agent: KeyMap}``), one action per key press; Space / Left Shift
interact (CoGrid's pick_up_or_drop).
"""

from igym import Experiment, Game, KeyMap

from .draw import ATLASES, BACKGROUND, hud, layout_canvas, render
from .env import DOWN, INTERACT, LEFT, NOOP, RIGHT, UP, make

FPS = 8
EPISODES = 2

ARROWS = KeyMap({"up": UP, "down": DOWN, "left": LEFT, "right": RIGHT, "space": INTERACT},
                mode="keystroke", default_action=NOOP)
WASD = KeyMap({"w": UP, "s": DOWN, "a": LEFT, "d": RIGHT, "left shift": INTERACT},
              mode="keystroke", default_action=NOOP)


def kitchen(layout: str, seed: int) -> Game:
    return Game(
        name=layout,
        env=make(layout),
        render=render,
        hud=hud,
        seats={0: "human", 1: "human"},
        keys={0: ARROWS, 1: WASD},
        fps=FPS,
        episodes=EPISODES,
        max_steps=60 * FPS,
        seeds=seed,
        canvas=layout_canvas(layout),
        background=BACKGROUND,
        atlases=ATLASES,
    )


experiment = Experiment(
    id="overcooked_human_human",
    scenes=[kitchen("cramped_room", 0), kitchen("asymmetric_advantages", 100)],
)
