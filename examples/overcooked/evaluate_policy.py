"""Soups per episode of an ONNX Overcooked cook with three kinds of partner.

    python -m examples.overcooked.evaluate_policy policies/overcooked_cramped_room.onnx \\
        --layout cramped_room --episodes 10

Partners: the same AI (AI+AI), a uniformly random cook and the scripted cook. Episodes
are 400 steps, seeded (episode i uses seed i), with the AI in seat 0 on even episodes and
seat 1 on odd ones. The AI runs through igym's ``OnnxPolicy`` (argmax). The last row is
the scripted cook with itself, for scale. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics

from igym.policy import OnnxPolicy

from .env import DELIVERY_REWARD, OvercookedEnv
from .scripted import RandomCook, ScriptedCook

EPISODE_STEPS = 400


def play_episode(layout: str, make_seats, seed: int, steps: int = EPISODE_STEPS) -> int:
    """Soups delivered in one seeded episode; ``make_seats(env)`` returns ``{agent: policy}``."""
    env = OvercookedEnv(layout, max_steps=steps)
    observations, _ = env.reset(seed=seed)
    seats = make_seats(env)
    for policy in seats.values():
        policy.reset()
    score = 0.0
    while env.agents:
        observations, rewards, *_ = env.step({a: p.act(observations[a]) for a, p in seats.items()})
        score += rewards[0]
    return round(score / DELIVERY_REWARD)


def evaluate(model: str, layout: str, partner: str, episodes: int, seed: int = 0) -> list[int]:
    """Soups per episode of ``model`` with ``partner`` (ai, random, scripted or scripted-pair)."""
    results = []
    for episode in range(episodes):
        me = episode % 2

        def seats(env, episode=episode, me=me):
            if partner == "scripted-pair":
                return {0: ScriptedCook(env, 0, seed=seed + episode),
                        1: ScriptedCook(env, 1, seed=seed + 500 + episode)}
            ai = OnnxPolicy(model)
            if partner == "ai":
                other = OnnxPolicy(model)
            elif partner == "random":
                other = RandomCook(seed + episode)
            else:
                other = ScriptedCook(env, 1 - me, seed=seed + episode)
            return {me: ai, 1 - me: other}

        results.append(play_episode(layout, seats, seed + episode))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--layout", default="cramped_room")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"layout {args.layout}, {args.episodes} episodes of {EPISODE_STEPS} steps\n")
    print("| partner | soups per episode (mean) | min | max | all |")
    print("|---|---|---|---|---|")
    for partner, label in (("ai", "same AI (AI+AI)"), ("random", "random"), ("scripted", "scripted"),
                           ("scripted-pair", "scripted + scripted (no AI, for scale)")):
        soups = evaluate(args.model, args.layout, partner, args.episodes, args.seed)
        print(f"| {label} | {statistics.mean(soups):.1f} | {min(soups)} | {max(soups)} | "
              f"{' '.join(map(str, soups))} |", flush=True)


if __name__ == "__main__":
    main()
