"""Networked Slime Volleyball in lockstep for the tests, tuned through the environment.

LS_EPISODES × LS_STEPS steps at LS_FPS; LS_OBSERVERS people watch; LS_CORRUPT names a
participant whose copy of the game is knocked off course at step LS_CORRUPT_STEP of the
first episode (the ball moved by a pixel): the server must notice and correct it; with
LS_BREAK=1 that participant's game raises there instead.
LS_NO_STATE=1 hides get_state/set_state, so catching up must replay from the seed;
LS_DELAY fixes the input delay (steps) instead of measuring the round trip;
LS_SERVER_CANNOT_RUN=1 (in the server's environment) makes the env fail to start there only.
"""

import os

from examples.slime_volleyball.draw import CANVAS, render
from examples.slime_volleyball.human_human import LEFT_KEYS, RIGHT_KEYS
from examples.slime_volleyball.slime import SlimeVolleyEnv
from igym.experiment import Experiment, Game

CORRUPT = os.environ.get("LS_CORRUPT")
CORRUPT_STEP = int(os.environ.get("LS_CORRUPT_STEP", "100"))


class SlimeWithoutState(SlimeVolleyEnv):
    """The same game, but it cannot hand over its state: desyncs are only detected."""

    get_state = None
    set_state = None


def corrupt(ctx):
    """Nudge one participant's ball once (a deliberate desync), or break their game (LS_BREAK)."""
    if ctx.participant_id == CORRUPT and ctx.episode == 0 and ctx.step == CORRUPT_STEP:
        if os.environ.get("LS_BREAK"):
            raise RuntimeError("this computer's copy of the game broke")
        ctx.env.game.ball.x += 1.0


def make_env():
    if os.environ.get("LS_SERVER_CANNOT_RUN"):
        raise RuntimeError("this machine cannot run the game")
    return SlimeWithoutState() if int(os.environ.get("LS_NO_STATE", "0")) else SlimeVolleyEnv()


experiment = Experiment(
    id="lockstep_slime",
    scenes=[
        Game(name="ls", env=make_env,
             render=render, canvas=CANVAS,
             seats={"agent_left": "human", "agent_right": "human"},
             keys={"agent_left": LEFT_KEYS, "agent_right": RIGHT_KEYS},
             fps=float(os.environ.get("LS_FPS", "120")), episodes=int(os.environ.get("LS_EPISODES", "1")),
             max_steps=int(os.environ.get("LS_STEPS", "200")), seeds=7,
             network="lockstep", input_delay=int(os.environ["LS_DELAY"]) if os.environ.get("LS_DELAY") else None,
             fingerprint_every=int(os.environ.get("LS_EVERY", "30")),
             observers=int(os.environ.get("LS_OBSERVERS", "0")),
             grace_s=float(os.environ.get("LS_GRACE_S", "10")),
             on_step=corrupt if CORRUPT else None),
    ],
)
