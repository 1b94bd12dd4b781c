"""A networked two-person study for the dashboard's screenshots: consent, instructions that
differ by condition, a questionnaire, a 20-second Slime Volleyball match for two people,
a questionnaire about the partner and an end page with a completion code."""

from examples.slime_volleyball.draw import CANVAS, render
from examples.slime_volleyball.human_human import LEFT_KEYS, RIGHT_KEYS
from examples.slime_volleyball.slime import SlimeVolleyEnv
from igym import Choice, Consent, End, Experiment, Game, Info, Likert, Survey

experiment = Experiment(
    id="slime_pairs",
    scenes=[
        Consent(name="consent", text="Do you agree to play two short matches with another person?"),
        Info(name="instructions", text="Hit the ball over the net."),
        Survey(name="before", questions=[Likert("ready", "I feel ready.", points=5),
                                         Choice("hand", "Which hand do you use?", options=["left", "right"])]),
        Game(name="match", env=SlimeVolleyEnv, render=render, canvas=CANVAS,
             seats={"agent_left": "human", "agent_right": "human"},
             keys={"agent_left": LEFT_KEYS, "agent_right": RIGHT_KEYS},
             fps=30, episodes=2, max_steps=300, lobby_timeout_s=120, grace_s=10),
        Survey(name="partner", questions=[Likert("fun", "Playing with my partner was fun.", points=5)]),
        End(name="end", text="Thank you!"),
    ],
    conditions={"competitive": {"instructions": {"text": "Win as many points as you can."}},
                "cooperative": {"instructions": {"text": "Keep the rally going together."}}},
)
