"""Train an Overcooked AI cook for one layout and export it to ONNX (numpy + onnx, no torch).

    python -m examples.overcooked.train_policy --layout cramped_room --seed 0
    python -m examples.overcooked.train_policy --layout asymmetric_advantages --seed 0

Behaviour cloning with DAgger, as for Slime Volleyball: the teacher is the scripted cook
(scripted.py), which plans from the env's state. Round 0 records the teacher's choices
for both seats while it cooks with a scripted or a random partner; every later round lets
the *student* cook (with a scripted, random or student partner) and labels the states it
reaches with the teacher's choice, so it learns to recover from its own mistakes.

The student sees only CoGrid's own observation (892 floats per cook), so the ONNX file
plugs into a seat as it is: ``seats={1: "policies/overcooked_cramped_room.onnx"}``. The
network is ``obs * scale`` (a fixed per-input scale, part of the graph) → 128 → 128 → 7,
ReLU, trained with Adam on cross-entropy; the argmax of its 7 logits is the action.
Everything is seeded: the same --seed gives the same file. About a minute per layout.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

from ..behaviour_cloning import Mlp, train
from .env import N_ACTIONS, OBS_SIZE, OvercookedEnv
from .scripted import RandomCook, ScriptedCook

HIDDEN = 128
EPISODE_STEPS = 400


def collect(layout: str, players, episodes: int, seed: int) -> tuple[list, list]:
    """States the learner seats reach, labelled with the scripted teacher's action.

    ``players(env, episode)`` returns ``{agent: (policy, learner)}``: the policies that
    act, and for the learner seats the states to label.
    """
    states, labels = [], []
    for episode in range(episodes):
        env = OvercookedEnv(layout, max_steps=EPISODE_STEPS)
        observations, _ = env.reset(seed=seed * 1000 + episode)
        seats = players(env, episode)
        teachers = {agent: ScriptedCook(env, agent, seed=seed + episode) for agent, (_, learner) in seats.items()
                    if learner}
        while env.agents:
            actions = {}
            for agent, (policy, learner) in seats.items():
                if learner:
                    label = teachers[agent].act()
                    states.append(observations[agent])
                    labels.append(label)
                    actions[agent] = label if policy is None else policy.act(observations[agent])
                else:
                    actions[agent] = policy.act(observations[agent])
            observations, *_ = env.step(actions)
    return states, labels


def export(model: Mlp, path: Path, layout: str) -> None:
    """Write the MLP as an ONNX graph: obs [N, 892] float32 → logits [N, 7]."""
    from onnx import TensorProto, checker, helper, numpy_helper
    names = ["W0", "B0", "W1", "B1", "W2", "B2"]
    initializers = [numpy_helper.from_array(np.ascontiguousarray(p, np.float32), n)
                    for p, n in zip(model.params, names)]
    initializers.append(numpy_helper.from_array(model.scale[None, :], "S"))
    nodes = [
        helper.make_node("Mul", ["obs", "S"], ["x"]),
        helper.make_node("Gemm", ["x", "W0", "B0"], ["z0"]), helper.make_node("Relu", ["z0"], ["h0"]),
        helper.make_node("Gemm", ["h0", "W1", "B1"], ["z1"]), helper.make_node("Relu", ["z1"], ["h1"]),
        helper.make_node("Gemm", ["h1", "W2", "B2"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, f"overcooked_{layout}_mlp",
                              [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["N", OBS_SIZE])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", N_ACTIONS])],
                              initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9,
                                   producer_name="igym examples/overcooked/train_policy.py")
    checker.check_model(onnx_model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onnx_model.SerializeToString())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layout", default="cramped_room")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=4, help="DAgger rounds after the first")
    parser.add_argument("--episodes", type=int, default=6, help="episodes per kind of partner and round")
    parser.add_argument("--out", type=Path, help="default policies/overcooked_<layout>.onnx")
    args = parser.parse_args()
    out = args.out or Path(f"policies/overcooked_{args.layout}.onnx")
    started = time.time()
    rng = np.random.default_rng(args.seed)
    random.seed(args.seed)
    layout, n = args.layout, args.episodes

    def teacher_pair(env, episode):  # both seats scripted, both labelled
        return {0: (None, True), 1: (None, True)}

    def teacher_with_random(env, episode):
        me = episode % 2
        return {me: (None, True), 1 - me: (RandomCook(args.seed + episode), False)}

    states, labels = collect(layout, teacher_pair, n, args.seed)
    new_states, new_labels = collect(layout, teacher_with_random, n, args.seed + 1)
    states += new_states
    labels += new_labels
    x = np.asarray(states, np.float32)
    scale = 1.0 / np.maximum(np.abs(x).max(axis=0), 1.0)
    model = Mlp(rng, (OBS_SIZE, HIDDEN, N_ACTIONS), "relu", scale)
    for round_ in range(args.rounds + 1):
        x = np.asarray(states, np.float32)
        y = np.asarray(labels, np.int64)
        loss = train(model, x, y, epochs=8, rng=rng, lr=1e-3)
        agreement = float((np.argmax(model.forward(x)[0], axis=1) == y).mean())
        print(f"round {round_}: {len(y)} states, loss {loss:.3f}, agrees with teacher {agreement:.1%}",
              flush=True)
        if round_ == args.rounds:
            break
        base = args.seed + 100 * (round_ + 1)

        def student_with_scripted(env, episode, base=base):
            me = episode % 2
            return {me: (model, True), 1 - me: (ScriptedCook(env, 1 - me, seed=base + episode), False)}

        def student_with_random(env, episode, base=base):
            me = episode % 2
            return {me: (model, True), 1 - me: (RandomCook(base + episode), False)}

        def student_pair(env, episode):
            return {0: (model, True), 1: (model, True)}

        for players, offset in ((student_with_scripted, 1), (student_with_random, 2), (student_pair, 3)):
            new_states, new_labels = collect(layout, players, n, base + offset)
            states += new_states
            labels += new_labels
    export(model, out, layout)
    check = np.random.default_rng(1).normal(0, 1, (64, OBS_SIZE)).astype(np.float32)
    import onnxruntime
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    difference = np.abs(session.run(["logits"], {"obs": check})[0] - model.forward(check)[0]).max()
    print(f"wrote {out} in {time.time() - started:.0f} s; ONNX vs numpy max |diff| {difference:.2e}")


if __name__ == "__main__":
    main()
