"""Evaluate an ONNX Slime Volleyball policy against random and scripted opponents.

    python -m examples.slime_volleyball.evaluate_policy policies/slime_volleyball.onnx --games 100

A game is a full match (first to lose 5 lives, or 3,000 steps). The policy runs through
igym's ``OnnxPolicy`` (onnxruntime, argmax), alternating sides game by game so neither
side's serve luck decides. Prints wins, draws, losses and points for and against.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from igym.policy import OnnxPolicy

from .scripted import RandomSlimePolicy, ScriptedSlimePolicy
from .slime import SlimeVolleyEnv


@dataclass
class Tally:
    wins: int = 0
    draws: int = 0
    losses: int = 0
    scored: int = 0
    conceded: int = 0


def play_match(policy, opponent, seed: int, policy_side: str) -> tuple[int, int]:
    """Points won by the policy and by the opponent in one seeded match."""
    env = SlimeVolleyEnv()
    observations, _ = env.reset(seed=seed)
    other = "agent_right" if policy_side == "agent_left" else "agent_left"
    policy.reset()
    opponent.reset()
    mine = theirs = 0
    while env.agents:
        observations, rewards, *_ = env.step({policy_side: policy.act(observations[policy_side]),
                                              other: opponent.act(observations[other])})
        mine += rewards[policy_side] > 0
        theirs += rewards[other] > 0
    return mine, theirs


def evaluate(policy, opponent, games: int, seed: int = 0) -> Tally:
    tally = Tally()
    for game in range(games):
        side = "agent_left" if game % 2 == 0 else "agent_right"
        mine, theirs = play_match(policy, opponent, seed + game, side)
        tally.scored += mine
        tally.conceded += theirs
        if mine > theirs:
            tally.wins += 1
        elif mine < theirs:
            tally.losses += 1
        else:
            tally.draws += 1
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--games", type=int, default=100)
    parser.add_argument("--scripted-games", type=int, default=20)
    args = parser.parse_args()
    policy = OnnxPolicy(args.model)
    rows = [("random", evaluate(policy, RandomSlimePolicy(0), args.games)),
            ("scripted", evaluate(policy, ScriptedSlimePolicy(), args.scripted_games))]
    print("| opponent | games | wins | draws | losses | points for | points against |")
    print("|---|---|---|---|---|---|---|")
    for name, t in rows:
        games = t.wins + t.draws + t.losses
        print(f"| {name} | {games} | {t.wins} | {t.draws} | {t.losses} | {t.scored} | {t.conceded} |")


if __name__ == "__main__":
    main()
