"""Train the shipped Slime Volleyball AI and export it to ONNX (numpy + onnx, no torch).

    python -m examples.slime_volleyball.train_policy --seed 0 --out policies/slime_volleyball.onnx

Behaviour cloning with DAgger: the teacher is the scripted player (scripted.py). Round 0
records the teacher's choices in matches against random and scripted opponents; every
later round lets the *student* play and labels the states it reaches with the teacher's
choice, so the student learns to recover from its own mistakes. The network is a small
MLP (12 → 32 → 32 → 6, tanh) trained with Adam on cross-entropy; the argmax of its 6
logits is the Discrete(6) action. Everything is seeded: the same --seed gives the same
file. About a minute on one core.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

from ..behaviour_cloning import Mlp, train
from .scripted import RandomSlimePolicy, ScriptedSlimePolicy
from .slime import SlimeVolleyEnv

HIDDEN = 32


def collect(player, opponent, teacher, matches: int, seed: int, side_swap: bool) -> tuple[list, list]:
    """States ``player`` reaches (as left or right) labelled with the teacher's action."""
    states, labels = [], []
    for match in range(matches):
        env = SlimeVolleyEnv()
        observations, _ = env.reset(seed=seed * 10_000 + match)
        me, other = ("agent_right", "agent_left") if side_swap and match % 2 else ("agent_left", "agent_right")
        while env.agents:
            mine = observations[me]
            states.append(mine)
            labels.append(teacher.act(mine))
            observations, *_ = env.step({me: player.act(mine), other: opponent.act(observations[other])})
    return states, labels


def export(model: Mlp, path: Path) -> None:
    """Write the MLP as an ONNX graph: obs [N, 12] float32 → logits [N, 6]."""
    from onnx import TensorProto, checker, helper, numpy_helper
    w0, b0, w1, b1, w2, b2 = model.params
    names = ["W0", "B0", "W1", "B1", "W2", "B2"]
    initializers = [numpy_helper.from_array(np.ascontiguousarray(p, np.float32), n)
                    for p, n in zip(model.params, names)]
    nodes = [
        helper.make_node("Gemm", ["obs", "W0", "B0"], ["z0"]), helper.make_node("Tanh", ["z0"], ["h0"]),
        helper.make_node("Gemm", ["h0", "W1", "B1"], ["z1"]), helper.make_node("Tanh", ["z1"], ["h1"]),
        helper.make_node("Gemm", ["h1", "W2", "B2"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "slime_volleyball_mlp",
                              [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["N", 12])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 6])],
                              initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9,
                                   producer_name="igym examples/slime_volleyball/train_policy.py")
    checker.check_model(onnx_model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onnx_model.SerializeToString())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=4, help="DAgger rounds after the first")
    parser.add_argument("--out", type=Path, default=Path("policies/slime_volleyball.onnx"))
    args = parser.parse_args()
    started = time.time()
    rng = np.random.default_rng(args.seed)
    random.seed(args.seed)
    teacher = ScriptedSlimePolicy()
    model = Mlp(rng, (12, HIDDEN, 6), "tanh")
    states, labels = [], []
    for opponent_seed in range(2):
        new_states, new_labels = collect(teacher, RandomSlimePolicy(args.seed + opponent_seed), teacher, 20,
                                         args.seed + opponent_seed, True)
        states += new_states
        labels += new_labels
    new_states, new_labels = collect(teacher, ScriptedSlimePolicy(), teacher, 6, args.seed + 7, True)
    states += new_states
    labels += new_labels
    for round_ in range(args.rounds + 1):
        x = np.asarray(states, np.float32)
        y = np.asarray(labels, np.int64)
        loss = train(model, x, y, epochs=6, rng=rng, lr=3e-3)
        agreement = float((np.argmax(model.forward(x)[0], axis=1) == y).mean())
        print(f"round {round_}: {len(y)} states, loss {loss:.3f}, agrees with teacher {agreement:.1%}")
        if round_ == args.rounds:
            break
        new_states, new_labels = collect(model, RandomSlimePolicy(1000 + round_), teacher, 12,
                                         args.seed + 100 + round_, True)
        states += new_states
        labels += new_labels
        new_states, new_labels = collect(model, ScriptedSlimePolicy(), teacher, 4, args.seed + 200 + round_, True)
        states += new_states
        labels += new_labels
    export(model, args.out)
    check = np.random.default_rng(1).normal(0, 1, (64, 12)).astype(np.float32)
    import onnxruntime
    session = onnxruntime.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
    difference = np.abs(session.run(["logits"], {"obs": check})[0] - model.forward(check)[0]).max()
    print(f"wrote {args.out} in {time.time() - started:.0f} s; ONNX vs numpy max |diff| {difference:.2e}")


if __name__ == "__main__":
    main()
