"""AI seats: the Policy protocol, ONNX policies, random policies, plain functions.

A policy is anything with ``reset()`` (called at every episode start) and
``act(observation) -> action``. :class:`OnnxPolicy` runs a model file with onnxruntime
natively; sampling from its outputs is done by :class:`SeededSampler`, in pure Python, so
the same seed and the same logits give the same actions wherever the model ran (the
browser will feed onnxruntime-web's logits into this very code).

numpy and onnxruntime are imported only when an ONNX policy is built, so the core still
imports in Pyodide and pygbag.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from .errors import PolicyError

SAMPLE_MODES = ("argmax", "softmax", "raw")


@runtime_checkable
class Policy(Protocol):
    """What an AI seat needs."""

    def reset(self) -> None: ...

    def act(self, observation: Any) -> Any: ...


class FunctionPolicy:
    """A plain ``obs -> action`` function used as a policy (its reset does nothing)."""

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function
        self.act = function

    def reset(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"kind": "function", "name": getattr(self.function, "__qualname__", repr(self.function))}


def as_policy(obj: Any) -> Policy:
    """A Policy as is; a plain callable wrapped; anything else is a PolicyError."""
    if hasattr(obj, "act") and hasattr(obj, "reset"):
        return obj
    if callable(obj):
        return FunctionPolicy(obj)
    raise PolicyError(f"{obj!r} is not a policy — give an object with reset() and act(obs), "
                      f"or a function obs -> action")


class SeededSampler:
    """Pure-Python action choice from scores, reproducible from a seed on any platform."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)

    @staticmethod
    def argmax(values: Sequence[float]) -> int:
        """Index of the largest value (the first one on ties)."""
        best, best_value = 0, values[0]
        for index in range(1, len(values)):
            if values[index] > best_value:
                best, best_value = index, values[index]
        return best

    def softmax_sample(self, logits: Sequence[float], temperature: float = 1.0) -> int:
        """Draw an index with probability softmax(logits / temperature)."""
        if temperature <= 0:
            return self.argmax(logits)
        top = max(logits)
        weights = [math.exp((v - top) / temperature) for v in logits]
        threshold = self.rng.random() * sum(weights)
        running = 0.0
        for index, weight in enumerate(weights):
            running += weight
            if threshold < running:
                return index
        return len(weights) - 1


class RandomPolicy:
    """Uniform random actions, seeded once for the whole session.

    ``reset()`` does not reseed: a seeded session is reproducible as a whole, while
    successive episodes still get different random play.
    """

    def __init__(self, n_actions: int | None = None, *, space: Any = None, seed: int | None = None) -> None:
        if n_actions is None and space is not None and hasattr(space, "n") and not hasattr(space, "nvec"):
            n_actions = int(space.n)
            start = int(getattr(space, "start", 0))
        else:
            start = 0
        self.n_actions = n_actions
        self.start = start
        self.space = space if n_actions is None else None
        if n_actions is None and space is None:
            raise PolicyError("RandomPolicy needs n_actions or an action space")
        self.rng = random.Random(seed)
        if self.space is not None:
            self.space.seed(seed)
        self.seed = seed

    def reset(self) -> None:
        pass

    def act(self, observation: Any) -> Any:
        if self.space is not None:
            return self.space.sample()
        return self.start + self.rng.randrange(self.n_actions)

    def describe(self) -> dict[str, Any]:
        return {"kind": "random", "n_actions": self.n_actions, "seed": self.seed}


class _OrtBackend:
    """onnxruntime on the CPU, one thread: a few microseconds per call for small MLPs."""

    def __init__(self, path: str, threads: int) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise PolicyError("OnnxPolicy needs onnxruntime — pip install onnxruntime") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 — onnxruntime raises its own exception types
            raise PolicyError(f"OnnxPolicy({path}): onnxruntime cannot load it ({str(error).splitlines()[0]}) "
                              f"— check that it is an ONNX model file") from None
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.run = self.session.run

    def input_shape(self, name: str) -> list[Any]:
        return list(self.inputs[name].shape)


class OnnxPolicy:
    """A policy in an ONNX file: observation in, action out (argmax, softmax sample, or raw).

    ``state_inputs``/``state_outputs`` name a recurrent model's state tensors: they start
    as zeros at every ``reset()`` and carry over between ``act`` calls. ``preprocess``
    turns an env observation into the flat vector the model expects.
    """

    def __init__(self, path: str | Path, *, input_name: str | None = None, output_name: str | None = None,
                 state_inputs: Sequence[str] = (), state_outputs: Sequence[str] = (),
                 sample: str = "argmax", temperature: float = 1.0, seed: int | None = None,
                 preprocess: Callable[[Any], Any] | None = None, threads: int = 1) -> None:
        self.path = str(path)
        where = f"OnnxPolicy({self.path})"
        if not Path(self.path).is_file():
            raise PolicyError(f"ONNX file not found: {self.path} — check the path (relative paths are "
                              f"resolved against the working folder, then the experiment file's folder)")
        if sample not in SAMPLE_MODES:
            raise PolicyError(f"{where}: sample={sample!r} is not one of {SAMPLE_MODES}")
        if len(state_inputs) != len(state_outputs):
            raise PolicyError(f"{where}: state_inputs and state_outputs must pair up, got "
                              f"{list(state_inputs)} and {list(state_outputs)}")
        import numpy
        self._np = numpy
        backend = _OrtBackend(self.path, threads)
        self.backend = backend
        model_inputs = [n for n in backend.inputs if n not in state_inputs]
        model_outputs = [n for n in backend.outputs if n not in state_outputs]
        for name in state_inputs:
            _check_name(where, "state input", name, list(backend.inputs), "state_inputs")
        for name in state_outputs:
            _check_name(where, "state output", name, backend.outputs, "state_outputs")
        if input_name is None:
            if not model_inputs:
                raise PolicyError(f"{where}: the model has no observation input besides its state")
            input_name = model_inputs[0]
        _check_name(where, "input", input_name, list(backend.inputs), "input_name")
        if output_name is None:
            output_name = model_outputs[0]
        _check_name(where, "output", output_name, backend.outputs, "output_name")
        self.input_name = input_name
        self.output_name = output_name
        self.state_inputs = tuple(state_inputs)
        self.state_outputs = tuple(state_outputs)
        self.sample = sample
        self.temperature = temperature
        self.seed = seed
        self.sampler = SeededSampler(seed)
        self.preprocess = preprocess
        shape = backend.input_shape(input_name)
        size = 1
        for dim in shape[1:]:
            size *= dim if isinstance(dim, int) and dim > 0 else 1
        self.obs_size = size if all(isinstance(d, int) for d in shape[1:]) else None
        self._obs = numpy.zeros((1, self.obs_size or 1), dtype=numpy.float32)
        self._feeds: dict[str, Any] = {input_name: self._obs}
        self._fetch = [output_name, *self.state_outputs]
        self.reset()

    def reset(self) -> None:
        """Zero the recurrent state (every episode start)."""
        numpy = self._np
        for name in self.state_inputs:
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in self.backend.input_shape(name)]
            self._feeds[name] = numpy.zeros(shape, dtype=numpy.float32)

    def _set_observation(self, observation: Any) -> None:
        if self.preprocess is not None:
            observation = self.preprocess(observation)
        flat = self._np.asarray(observation, dtype=self._np.float32).reshape(-1)
        if self.obs_size is None:
            self._obs = flat.reshape(1, -1)
            self._feeds[self.input_name] = self._obs
            return
        if flat.shape[0] != self.obs_size:
            raise PolicyError(f"OnnxPolicy({self.path}): observation has {flat.shape[0]} numbers, the model's "
                              f"input {self.input_name!r} takes {self.obs_size} — pass preprocess= to convert it")
        self._obs[0] = flat

    def scores(self, observation: Any) -> list[float]:
        """The model's output row for one observation (logits, or a continuous action)."""
        self._set_observation(observation)
        results = self.backend.run(self._fetch, self._feeds)
        for name, value in zip(self.state_outputs, results[1:]):
            self._feeds[self.state_inputs[self.state_outputs.index(name)]] = value
        return results[0][0].tolist()

    def act(self, observation: Any) -> Any:
        """The action for one observation."""
        row = self.scores(observation)
        if self.sample == "argmax":
            return SeededSampler.argmax(row)
        if self.sample == "softmax":
            return self.sampler.softmax_sample(row, self.temperature)
        return row

    def describe(self) -> dict[str, Any]:
        """What the data records about this AI: file, tensors, sampling."""
        return {"kind": "onnx", "path": self.path, "input": self.input_name, "output": self.output_name,
                "sample": self.sample, "temperature": self.temperature, "seed": self.seed}


def _check_name(where: str, what: str, name: str, names: list[str], option: str) -> None:
    if name not in names:
        suggestion = f" — pass {option}={names[0]!r}" if names else ""
        raise PolicyError(f"{where}: {what} {name!r} not in the model; its {what}s are {names}{suggestion}")
