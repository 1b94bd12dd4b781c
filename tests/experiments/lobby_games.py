"""Games for the lobby and room tests: one (against a random AI), two, three and lockstep seats,
short, with quick rules: LOBBY_GAME picks one, LOBBY_BREAK breaks one participant's game;
LOBBY_TIMEOUT_S, LOBBY_GRACE_S, LOBBY_COUNTDOWN_S, LOBBY_STEPS and LOBBY_OBSERVERS tune it."""

import os

from examples.slime_volleyball.draw import CANVAS, render
from examples.slime_volleyball.human_human import LEFT_KEYS, RIGHT_KEYS
from examples.slime_volleyball.slime import SlimeVolleyEnv
from igym.controls import KeyMap
from igym.experiment import Experiment, Game
from igym.render import Rect


class Trio:
    """A three-player ParallelEnv: each step every player moves a marker left or right."""

    metadata = {"name": "trio_v0"}

    def __init__(self):
        self.possible_agents = ["red", "green", "blue"]
        self.agents = []
        self.x = {}

    def action_space(self, agent):
        from gymnasium.spaces import Discrete
        return Discrete(3)

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.x = {a: 100 + 200 * i for i, a in enumerate(self.agents)}
        return {a: [self.x[a]] for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        for agent, action in actions.items():
            self.x[agent] += (0, 5, -5)[int(action)]
        obs = {a: [self.x[a]] for a in self.agents}
        return obs, {a: 0.0 for a in self.agents}, {a: False for a in self.agents}, \
            {a: False for a in self.agents}, {a: {} for a in self.agents}


def break_for(ctx):
    """LOBBY_BREAK names a participant whose game raises at step 10 (one room fails, others go on)."""
    if ctx.participant_id == os.environ.get("LOBBY_BREAK") and ctx.step == 10:
        raise RuntimeError("the env broke in this room")


def draw_trio(env):
    colours = {"red": (220, 60, 60), "green": (60, 200, 90), "blue": (70, 110, 230)}
    return [Rect(agent, env.x[agent], 150, 30, 30, color=colours[agent]) for agent in env.possible_agents]


GAME = os.environ.get("LOBBY_GAME", "pair")
rules = dict(fps=30, episodes=1, max_steps=int(os.environ.get("LOBBY_STEPS", "60")), seeds=1,
             lobby_timeout_s=float(os.environ.get("LOBBY_TIMEOUT_S", "20")),
             grace_s=float(os.environ.get("LOBBY_GRACE_S", "1.5")),
             countdown_s=float(os.environ.get("LOBBY_COUNTDOWN_S", "0")))
trio_keys = KeyMap({"right": 1, "left": 2}, default_action=0)
games = {
    "pair": Game(name="pair", env=SlimeVolleyEnv, render=render, canvas=CANVAS,
                 seats={"agent_left": "human", "agent_right": "human"},
                 keys={"agent_left": LEFT_KEYS, "agent_right": RIGHT_KEYS}, **rules),
    "solo": Game(name="solo", env=SlimeVolleyEnv, render=render, canvas=CANVAS,
                 seats={"agent_left": "human", "agent_right": "random"}, keys={"agent_left": LEFT_KEYS},
                 on_step=break_for, **rules),
    "trio": Game(name="trio", env=Trio, render=draw_trio, canvas=(600, 300),
                 seats={"red": "human", "green": "human", "blue": "human"}, keys=trio_keys, **rules),
    "lockstep": Game(name="lockstep_pair", env=SlimeVolleyEnv, render=render, canvas=CANVAS,
                     seats={"agent_left": "human", "agent_right": "human"},
                     keys={"agent_left": LEFT_KEYS, "agent_right": RIGHT_KEYS}, network="lockstep",
                     input_delay=2, observers=int(os.environ.get("LOBBY_OBSERVERS", "0")), **rules),
}
experiment = Experiment(id=f"lobby_{GAME}", scenes=[games[GAME]])
