"""A networked study: consent and a questionnaire shown by each client, a two-person Slime
Volleyball game on the server, and an end page with a completion code."""

from examples.slime_volleyball.draw import CANVAS, render
from examples.slime_volleyball.human_human import LEFT_KEYS, RIGHT_KEYS
from examples.slime_volleyball.slime import SlimeVolleyEnv
from igym.experiment import Choice, Consent, End, Experiment, Game, Info, Likert, Survey

experiment = Experiment(
    id="net_study",
    scenes=[
        Consent(name="consent", text="Do you agree to play?"),
        Info(name="intro", text="You will play with another person.",
             image="../../examples/slime_volleyball/screenshot.png"),
        Survey(name="before", questions=[Likert("ready", "I feel ready.", points=5),
                                         Choice("hand", "Which hand do you use?", options=["left", "right"])]),
        Game(name="match", env=SlimeVolleyEnv, render=render, canvas=CANVAS,
             seats={"agent_left": "human", "agent_right": "human"},
             keys={"agent_left": LEFT_KEYS, "agent_right": RIGHT_KEYS},
             fps=30, episodes=1, max_steps=45, seeds=2, lobby_timeout_s=30,
             instructions="Hit the ball **over** the net."),
        End(name="end", text="Thanks!"),
    ],
)
