"""The training loop both example policies share: Adam on cross-entropy, numpy only.

A model here is any object with ``params`` (a list of numpy arrays, updated in place) and
``gradients(states, labels) -> (loss, grads)`` — the examples' small MLPs. Behaviour
cloning and DAgger (what the examples' ``train_policy.py`` scripts do around this loop)
differ per game; this inner loop does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def train(model: Any, states: np.ndarray, labels: np.ndarray, epochs: int, rng: np.random.Generator, *,
          lr: float, batch: int = 256) -> float:
    """Adam (β 0.9 / 0.999) over shuffled minibatches; returns the last epoch's mean loss."""
    moments = [np.zeros_like(p) for p in model.params]
    squares = [np.zeros_like(p) for p in model.params]
    step, loss = 0, 0.0
    for _ in range(epochs):
        order = rng.permutation(len(states))
        losses = []
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            loss, grads = model.gradients(states[rows], labels[rows])
            losses.append(loss)
            step += 1
            for p, g, m, v in zip(model.params, grads, moments, squares):
                m *= 0.9
                m += 0.1 * g
                v *= 0.999
                v += 0.001 * g * g
                p -= lr * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
        loss = float(np.mean(losses))
    return loss
