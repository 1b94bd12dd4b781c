"""One participant's whole study — consent, information, questionnaire, a game with its
instructions page, end — run the same by the desktop app and by the server."""

from examples.slime_volleyball.draw import CANVAS, render
from examples.slime_volleyball.human_human import LEFT_KEYS
from examples.slime_volleyball.slime import SlimeVolleyEnv
from igym.experiment import Choice, Consent, End, Experiment, Game, Info, Likert, Survey

experiment = Experiment(
    id="one_flow",
    scenes=[
        Consent(name="consent", text="Do you agree to play?"),
        Info(name="intro", text="You will play against the computer."),
        Survey(name="before", questions=[Likert("ready", "I feel ready.", points=5),
                                         Choice("hand", "Which hand do you use?", options=["left", "right"])]),
        Game(name="match", env=SlimeVolleyEnv, render=render, canvas=CANVAS,
             seats={"agent_left": "human", "agent_right": "random"}, keys={"agent_left": LEFT_KEYS},
             fps=30, episodes=1, max_steps=45, seeds=2, instructions="Hit the ball **over** the net."),
        End(name="end", text="Thanks!"),
    ],
)
