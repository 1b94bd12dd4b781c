"""Overcooked with an AI partner: a person (blue cook) and the shipped ONNX cook (green).

    python -m igym.play examples/overcooked/human_ai.py

Arrow keys move (one step per press; a move into a counter turns you to face it), Space
interacts: pick up, put down, put an onion in the pot, take the soup with a dish, serve
it at the striped serving area. Three onions cook a soup in 30 steps (the bar under the
pot); every soup served scores 20 for the team.

First a 30-second tutorial round in Cramped Room, then two layouts (Cramped Room and
Asymmetric Advantages), each for ``EPISODES`` rounds of 60 s, always with the ONNX cook
trained for that layout (policies/overcooked_<layout>.onnx, made by train_policy.py).
Every step of both cooks lands in the study's SQLite file (agents "0" and "1").
"""

from pathlib import Path

from igym import Choice, End, Experiment, Game, KeyMap, Likert, Survey

from .draw import ATLASES, BACKGROUND, hud, layout_canvas, render
from .env import DOWN, INTERACT, LEFT, NOOP, RIGHT, UP, make

POLICIES = Path(__file__).resolve().parents[2] / "policies"
FPS = 8  # env steps per second: a cook moves at most 8 tiles a second
EPISODES = 2

# Keystroke mode: each key press is one action (held keys do not repeat), so Space picks
# up *or* puts down once, never both. Interact is CoGrid's "pick_up_or_drop" (action 4);
# "toggle" (5) only switches OvercookedV2's buttons.
KEYS = KeyMap({"up": UP, "down": DOWN, "left": LEFT, "right": RIGHT, "space": INTERACT},
              mode="keystroke", default_action=NOOP)


INSTRUCTIONS = """You are the **blue** cook; your partner, the green cook, is an AI.

- Arrow keys move (one step per press); **Space** picks up, puts down, fills the pot, serves.
- Three onions in a pot cook a soup. Take it with a dish and bring it to the serving area.
- Every soup served scores 20 points for the team.

This first round is practice (30 seconds)."""


def kitchen(name: str, layout: str, episodes: int, seconds: int, seed: int, instructions: str,
            title: str = "Next round") -> Game:
    """A Game: the person is cook 0, the layout's ONNX cook is cook 1; ``title`` heads its instructions."""
    return Game(
        name=name,
        env=make(layout),
        render=render,
        hud=hud,
        seats={0: "human", 1: str(POLICIES / f"overcooked_{layout}.onnx")},
        keys=KEYS,
        fps=FPS,
        episodes=episodes,
        max_steps=seconds * FPS,
        seeds=seed,
        canvas=layout_canvas(layout),
        background=BACKGROUND,
        atlases=ATLASES,
        instructions=instructions,
        title=title,
        countdown_s=3,
    )


experiment = Experiment(
    id="overcooked_human_ai",
    scenes=[
        kitchen("tutorial_cramped_room", "cramped_room", episodes=1, seconds=30, seed=1000,
                instructions=INSTRUCTIONS, title="How to cook"),
        kitchen("cramped_room", "cramped_room", episodes=EPISODES, seconds=60, seed=0,
                instructions="**Cramped Room**: cook and serve as many soups as you can with your partner."),
        kitchen("asymmetric_advantages", "asymmetric_advantages", episodes=EPISODES, seconds=60, seed=100,
                instructions="**Asymmetric Advantages**: a bigger kitchen; you and your partner work on "
                             "different sides."),
        Survey(name="partner", title="About your partner", questions=[
            Likert("fluent", "We worked together **fluently**."),
            Likert("contributed", "My partner **contributed** to our success."),
            Likert("trust", "I **trusted** my partner to do its part."),
            Choice("better_layout", "In which kitchen did you work better together?",
                   options=["Cramped Room", "Asymmetric Advantages", "no difference"]),
        ]),
        End(name="end", text="Thank you for cooking with us!"),
    ],
)
