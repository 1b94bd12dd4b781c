"""A complete Slime Volleyball study: consent, instructions, practice, two blocks against AI
opponents of different skill in random order, a questionnaire after each block, and an
end page with a completion code.

    python -m igym.play examples/slime_volleyball/study.py            # one participant
    python -m igym.play examples/slime_volleyball/study.py --lab      # lab session, fullscreen
    python -m igym.play examples/slime_volleyball/study.py --headless --autopilot --data /tmp/study.sqlite

Two conditions (balanced: each new participant gets the less-used one) differ in how
long a match lasts. The strong opponent is the shipped ONNX policy playing greedily; the
weak one samples from the same network at a high temperature and reacts every third
step. In the practice game an adaptive hook makes the opponent strong after the
participant wins two matches in a row; every step records the ball's position through a
step hook (columns ``ball_x`` and ``ball_y`` in the steps export).
"""

from pathlib import Path

from igym import (Choice, Consent, End, Experiment, FreeText, Game, Info, KeyMap, Likert, Number, OnnxPolicy,
                  RandomOrder, Slider, Survey)

from .draw import CANVAS, render
from .slime import SlimeVolleyEnv

POLICY = Path(__file__).resolve().parents[2] / "policies" / "slime_volleyball.onnx"
KEYS = KeyMap({"right": 1, "left": 5, "up": 3, ("right", "up"): 2, ("left", "up"): 4,
               "joy hat right": 1, "joy hat left": 5, "joy button 0": 3,
               ("joy hat right", "joy button 0"): 2, ("joy hat left", "joy button 0"): 4}, default_action=0)


def weak_opponent() -> OnnxPolicy:
    return OnnxPolicy(POLICY, sample="softmax", temperature=3.0, seed=7)


def ball_position(ctx):
    """Step hook: the ball's position in world units, recorded as custom step columns."""
    ball = ctx.env.game.ball
    return {"ball_x": round(ball.x, 3), "ball_y": round(ball.y, 3)}


def adapt_difficulty(ctx):
    """Episode hook: two wins in a row against the weak opponent → the strong one from now on."""
    won = ctx.returns.get("agent_left", 0) > 0
    ctx.state["wins_in_a_row"] = ctx.state.get("wins_in_a_row", 0) + 1 if won else 0
    if ctx.state["wins_in_a_row"] >= 2 and ctx.state.get("opponent") != "strong":
        ctx.state["opponent"] = "strong"
        ctx.set_seat("agent_right", str(POLICY))


def game(name: str, opponent, episodes: int, max_steps: int, **more) -> Game:
    return Game(name=name, env=SlimeVolleyEnv, render=render, canvas=CANVAS, background=(11, 16, 19),
                seats={"agent_left": "human", "agent_right": opponent}, keys=KEYS, fps=30,
                episodes=episodes, max_steps=max_steps, countdown_s=3, on_step=ball_position, **more)


def block_survey(block: str) -> Survey:
    return Survey(name=f"survey_{block}", title="About the last block", questions=[
        Likert("skill", "My opponent was **skilled**."),
        Likert("enjoy", "I **enjoyed** playing against this opponent."),
        Slider("effort", "How much effort did you put in?", min=0, max=100, labels=("none", "all I had")),
        Choice("again", "Would you play this opponent again?", options=["yes", "no", "not sure"]),
    ])


CONSENT = """You are invited to take part in a study on how people play a simple ball game against
computer opponents.

- You will play **Slime Volleyball** with the arrow keys (or a gamepad) for about 10 minutes.
- We record your key presses and the game, and your answers to a few questions.
- Your data is stored under a random id, not your name. You may stop at any time.

Do you agree to take part?"""

INSTRUCTIONS = """Move your slime (blue, on the **left**) with **←** and **→**; **↑** jumps.

Hit the ball over the net. A match ends when one side has lost 5 points, or after a time limit.
First a short **practice**, then two blocks against two different opponents."""

practice = game("practice", weak_opponent(), episodes=1, max_steps=900, title="Practice round",
                instructions="Practice: get a feel for the controls. The result does not count.",
                on_episode_end=adapt_difficulty)
block_weak = game("block_weak", weak_opponent(), episodes=2, max_steps=1200,
                  instructions="Block: a new opponent. Play as well as you can.")
block_strong = game("block_strong", str(POLICY), episodes=2, max_steps=1200,
                    instructions="Block: a new opponent. Play as well as you can.")

experiment = Experiment(
    id="slime_study",
    scenes=[
        Consent(name="consent", title="Consent", text=CONSENT),
        Info(name="instructions", title="How to play", text=INSTRUCTIONS, min_time_s=3),
        practice,
        RandomOrder([[block_weak, block_survey("weak")], [block_strong, block_survey("strong")]], name="blocks"),
        Survey(name="about_you", title="A few questions about you", questions=[
            Number("age", "Your age in years", min=18, max=99),
            Choice("games", "How often do you play video games?",
                   options=["never", "a few times a year", "monthly", "weekly", "daily"]),
            FreeText("comments", "Anything you would like to tell us?", lines=3, required=False),
        ]),
        End(name="end", text="Thank you for taking part! Please enter this code to confirm you finished.",
            redirect="https://app.prolific.com/submissions/complete?cc={code}"),
    ],
    conditions={
        "short_matches": {"block_weak": {"max_steps": 900}, "block_strong": {"max_steps": 900}},
        "long_matches": {"block_weak": {"max_steps": 1500}, "block_strong": {"max_steps": 1500}},
    },
)
