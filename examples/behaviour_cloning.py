"""The student network and training loop both example policies share, numpy only.

:class:`Mlp` is the examples' small network (two hidden layers, tanh or ReLU) with its own
backward pass; :func:`train` is Adam on cross-entropy for any object with ``params`` (a
list of numpy arrays, updated in place) and ``gradients(states, labels) -> (loss, grads)``.
Behaviour cloning and DAgger (what the examples' ``train_policy.py`` scripts do around
these) differ per game; the network and the inner loop do not.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Mlp:
    """``(obs * scale)`` → activation → activation → logits; ``act`` is the argmax.

    ``activation`` is ``"tanh"`` (weights drawn with SD 1/√n_in) or ``"relu"`` (SD √(2/n_in));
    ``scale`` (per input, optional) is part of the network, so the ONNX export carries it.
    """

    def __init__(self, rng: np.random.Generator, sizes: tuple[int, int, int], activation: str,
                 scale: np.ndarray | None = None) -> None:
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {activation!r}")
        self.activation = activation

        def layer(n_in: int, n_out: int) -> list[np.ndarray]:
            sd = 1 / np.sqrt(n_in) if activation == "tanh" else np.sqrt(2 / n_in)
            return [rng.normal(0, sd, (n_in, n_out)).astype(np.float32), np.zeros(n_out, np.float32)]
        n_in, hidden, n_out = sizes
        self.scale = None if scale is None else scale.astype(np.float32)
        self.params = [*layer(n_in, hidden), *layer(hidden, hidden), *layer(hidden, n_out)]

    def _activate(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z) if self.activation == "tanh" else np.maximum(z, 0)

    def _slope(self, h: np.ndarray) -> np.ndarray:
        """The activation's derivative, from its output."""
        return (1 - h ** 2) if self.activation == "tanh" else (h > 0)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, tuple]:
        w0, b0, w1, b1, w2, b2 = self.params
        if self.scale is not None:
            x = x * self.scale
        h0 = self._activate(x @ w0 + b0)
        h1 = self._activate(h0 @ w1 + b1)
        return h1 @ w2 + b2, (x, h0, h1)

    def act(self, observation: Any) -> int:
        logits, _ = self.forward(np.asarray(observation, np.float32)[None])
        return int(np.argmax(logits[0]))

    def reset(self) -> None:
        pass

    def gradients(self, x: np.ndarray, labels: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Mean cross-entropy of ``labels`` and its gradient for every parameter."""
        w0, b0, w1, b1, w2, b2 = self.params
        logits, (x, h0, h1) = self.forward(x)
        logits = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        n = len(x)
        loss = float(-np.log(probs[np.arange(n), labels] + 1e-9).mean())
        d2 = probs
        d2[np.arange(n), labels] -= 1
        d2 /= n
        g_w2, g_b2 = h1.T @ d2, d2.sum(0)
        d1 = (d2 @ w2.T) * self._slope(h1)
        g_w1, g_b1 = h0.T @ d1, d1.sum(0)
        d0 = (d1 @ w1.T) * self._slope(h0)
        g_w0, g_b0 = x.T @ d0, d0.sum(0)
        return loss, [g_w0, g_b0, g_w1, g_b1, g_w2, g_b2]


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
