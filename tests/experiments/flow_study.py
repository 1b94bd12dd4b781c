"""A small study over a pure-Python toy env, for the flow tests: consent, a repeated survey,
two games in random order, conditions, and hooks (a step column, an adaptive seat)."""

from igym.controls import KeyMap
from igym.experiment import (Choice, Consent, End, Experiment, Game, Likert, MultiChoice, RandomOrder, Repeat,
                             Survey)
from igym.render import Rect
from tests.toy_envs import LineRace


def render(env):
    return [Rect("floor", 0, 90, 200, 10, (90, 90, 90), static=True)] + [
        Rect(agent, 100 + 10 * env.pos[agent], 60 + 15 * i, 8, 8, (200, 80, 40))
        for i, agent in enumerate(env.possible_agents)]


def positions(ctx):
    """Step hook: where runner a is (a custom column)."""
    return {"pos_a": ctx.env.pos["a"]}


def harder_after_two_wins(ctx):
    """Episode hook: after two episodes won by the person, the partner plays always-right."""
    won = ctx.returns.get("a", 0) > 0
    ctx.state["streak"] = ctx.state.get("streak", 0) + 1 if won else 0
    ctx.state.setdefault("log", []).append(ctx.episode)
    if ctx.state["streak"] >= 2:
        ctx.set_seat("b", lambda obs: 1)


def game(name, **more):
    return Game(name=name, env=lambda: LineRace(goal=3), render=render, canvas=(200, 100),
                seats={"a": "human", "b": "random"}, keys=KeyMap({"right": 1, "left": 2}, default_action=0),
                fps=30, episodes=4, max_steps=40, seeds=10, on_step=positions, **more)


def remember_answers(ctx):
    if ctx.answers:
        ctx.state.setdefault("answered", []).append(ctx.scene.name)


experiment = Experiment(
    id="flow_study",
    scenes=[
        Consent(name="consent", text="Do you agree?"),
        Repeat(Survey(name="mood", questions=[Likert("mood", "I feel good.", points=5),
                                              MultiChoice("colours", "Colours you like",
                                                          options=["red", "blue", "green"])]),
               times=2),
        RandomOrder([game("game_a", on_episode_end=harder_after_two_wins), game("game_b")], name="games"),
        Survey(name="final", questions=[Choice("side", "Which side?", options=["left", "right"])]),
        End(name="end", text="Done."),
    ],
    conditions={"slow": {"game_a": {"fps": 20}}, "fast": {"game_a": {"fps": 40}}},
    on_scene_end=remember_answers,
)
