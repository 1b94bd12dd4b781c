"""AI seats: the Policy protocol, ONNX policies, random policies, plain functions.

A policy is anything with ``reset()`` (called at every episode start) and
``act(observation) -> action``; :func:`as_policy` turns what an experiment file gives into
one. :class:`OnnxPolicy` runs a model file; choosing an action from the model's scores is
done by :class:`SeededSampler`, in pure Python with ``random.Random``, because the browser
build will feed onnxruntime-web's logits into this very code: the same seed and the same
logits must give the same actions natively and in the browser, and numpy's RNG (absent
or different there) cannot promise that.

numpy and onnxruntime are imported only when an :class:`OnnxPolicy` is built, so this
module (and the core that imports it) loads in Pyodide and pygbag.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from collections.abc import Callable, Sequence

from .errors import PolicyError

SAMPLE_MODES = ("argmax", "softmax", "raw")

# ONNX element types we can feed, as numpy dtype names (the model's declared input type is
# used, so a float64 model works too; anything unknown is fed as float32).
_ONNX_TO_NUMPY = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
                  "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(bool)": "bool"}


@runtime_checkable
class Policy(Protocol):
    """What an AI seat needs: the session calls ``reset`` at every episode start, then
    ``act`` with the seat's observation whenever it needs an action."""

    def reset(self) -> None: ...

    def act(self, observation: Any) -> Any: ...


class FunctionPolicy:
    """A plain ``obs -> action`` function used as a policy (its reset does nothing)."""

    def __init__(self, function: Callable[[Any], Any], name: str | None = None) -> None:
        self.function = function
        self.name = name or getattr(function, "__qualname__", None) or repr(function)
        self.act = function  # an instance attribute: calling it costs no extra Python frame

    def reset(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"kind": "function", "name": self.name}


def as_policy(obj: Any) -> Policy:
    """What an experiment gives as a seat, as a :class:`Policy`.

    An object with ``reset()`` and ``act()`` is returned as is; an object with only
    ``act()``, or a plain callable ``obs -> action``, is wrapped (its reset does nothing).
    """
    if isinstance(obj, type):
        raise PolicyError(f"{obj.__qualname__} is a class, not a policy — pass an instance, "
                          f"e.g. {obj.__qualname__}()")
    if isinstance(obj, Policy):
        return obj
    act = getattr(obj, "act", None)
    if callable(act):
        wrapped = FunctionPolicy(act, type(obj).__name__)
        if callable(getattr(obj, "describe", None)):
            wrapped.describe = obj.describe  # type: ignore[method-assign]
        return wrapped
    if callable(obj):
        return FunctionPolicy(obj)
    raise PolicyError(f"{type(obj).__name__} {obj!r:.60} is not a policy — give an object with "
                      f"reset() and act(obs), or a function obs -> action")


class SeededSampler:
    """Pure-Python action choice from scores, reproducible from a seed on any platform.

    Only ``random.Random`` (Mersenne Twister, identical in every CPython, wasm included)
    and ``math.exp`` are used, never numpy, so the browser and the desktop draw the same
    actions from the same logits.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    @staticmethod
    def argmax(values: Sequence[float]) -> int:
        """Index of the largest value (the first one on ties, like ``numpy.argmax``)."""
        if not isinstance(values, list):
            values = list(values)
        # max + index run in C: about 0.2 µs for 6 values, faster than a Python loop,
        # ``max(range(n), key=...)`` or numpy's argmax followed by int().
        return values.index(max(values))

    def softmax_sample(self, logits: Sequence[float], temperature: float = 1.0) -> int:
        """Draw an index with probability softmax(logits / temperature).

        One ``random()`` draw per call, compared against the running sum of the
        probabilities (computed with the maximum subtracted, so large logits cannot
        overflow). ``temperature <= 0`` is the greedy limit: the argmax, no draw.
        """
        if temperature <= 0:
            return self.argmax(logits)
        exp = math.exp
        top = max(logits)
        weights = [exp((value - top) / temperature) for value in logits]
        total = sum(weights)
        if not 1.0 <= total < math.inf:  # False for NaN: a logit was NaN or infinite
            raise PolicyError(f"softmax over {list(logits)!r:.80}: the scores are not finite numbers "
                              f"— check the model's output")
        threshold = self.rng.random()
        running = 0.0
        last = 0
        for index, weight in enumerate(weights):
            if weight > 0.0:
                running += weight / total
                last = index
                if threshold < running:
                    return index
        return last  # rounding left the sum a hair under 1: the last possible action


class RandomPolicy:
    """Uniform random actions, seeded once for the whole session.

    Give ``n_actions`` for ``Discrete(n)``, or ``space``, any object with ``sample()`` and
    ``seed()`` (a gymnasium space). A ``Discrete`` space is drawn from with the pure-Python
    ``random.Random`` (and its ``start`` honoured), so random seats give the same actions
    natively and in the browser; other spaces are seeded and sampled.

    ``reset()`` does not reseed: the whole sequence is seeded once, so a seeded session is
    still reproducible as a whole, while successive episodes get different random play
    (reseeding would replay the same moves every episode). A session calls :meth:`reseed`
    at every episode start with a seed of that seat's own (:func:`igym.session.seat_seed`),
    so two random seats never share a stream. Observations with an ``action_mask`` (turn-based
    PettingZoo envs) get a legal action.
    """

    def __init__(self, n_actions: int | None = None, *, space: Any = None, seed: int | None = None) -> None:
        self.seed = seed
        self.base_seed = seed
        self.start = 0
        self.space = None
        if n_actions is None and space is not None and _is_discrete(space):
            n_actions = int(space.n)
            self.start = int(getattr(space, "start", 0))
        if n_actions is None:
            if space is None:
                raise PolicyError("RandomPolicy needs n_actions or an action space — e.g. "
                                  "RandomPolicy(4) or RandomPolicy(space=env.action_space)")
            if not (callable(getattr(space, "sample", None)) and callable(getattr(space, "seed", None))):
                raise PolicyError(f"RandomPolicy: space {space!r:.60} has no sample() and seed() — "
                                  f"give a gymnasium space or n_actions")
            self.space = space
            space.seed(seed)
        elif isinstance(n_actions, bool) or not isinstance(n_actions, int) or n_actions < 1:
            raise PolicyError(f"RandomPolicy: n_actions={n_actions!r} — give a positive whole number")
        self.n_actions = n_actions
        self.rng = random.Random(seed)

    def reset(self) -> None:
        """Nothing to do: the random sequence runs on across episodes (see the class)."""

    def reseed(self, seed: int) -> None:
        """Start a new random stream from ``seed`` (a seat's seed for one episode)."""
        self.seed = seed
        self.rng = random.Random(seed)
        if self.space is not None:
            self.space.seed(seed)

    def act(self, observation: Any) -> Any:
        mask = observation.get("action_mask") if isinstance(observation, dict) else None
        if mask is not None:
            legal = [i for i, allowed in enumerate(mask) if allowed]
            if legal:
                return self.start + legal[self.rng.randrange(len(legal))]
        if self.space is not None:
            return self.space.sample()
        assert self.n_actions is not None  # without a space, __init__ required n_actions
        return self.start + self.rng.randrange(self.n_actions)

    def describe(self) -> dict[str, Any]:
        space = None if self.space is None else repr(self.space)
        return {"kind": "random", "n_actions": self.n_actions, "start": self.start, "space": space,
                "seed": self.seed}


def _is_discrete(space: Any) -> bool:
    """A gymnasium ``Discrete`` (or a subclass), recognised without importing gymnasium."""
    return any(cls.__name__ == "Discrete" for cls in type(space).__mro__) and hasattr(space, "n")


class _OrtBackend:
    """onnxruntime on the CPU: a few microseconds per call for the small MLPs we ship.

    The part of :class:`OnnxPolicy` that depends on the runtime. A second backend (the
    browser's onnxruntime-web) provides the same: ``name``, ``input_names``,
    ``output_names``, ``input_shape(name)`` (ints, or None for a dynamic dimension),
    ``input_dtype(name)`` (a numpy dtype name) and ``run(fetch, feeds)`` returning one
    numpy array per fetched name; :func:`_open_backend` picks it.
    """

    name = "onnxruntime"

    def __init__(self, path: str, threads: int) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise PolicyError(f"OnnxPolicy({path}) needs onnxruntime — pip install onnxruntime") from None
        self.version = onnxruntime.__version__
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
        options.log_severity_level = 3  # errors only: no warnings on every session
        try:
            self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 — onnxruntime raises its own pybind types
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise PolicyError(f"OnnxPolicy({path}): onnxruntime cannot load it ({reason[:200]}) "
                              f"— check that it is an ONNX model file") from None
        self._inputs = {meta.name: meta for meta in self.session.get_inputs()}
        self.input_names = list(self._inputs)
        self.output_names = [meta.name for meta in self.session.get_outputs()]
        # The public run(): it re-validates the feed names each call (about 2.5 µs of the
        # 7 µs a slime-sized MLP costs); the private ``session._sess.run`` would skip that,
        # but the policy stays on the public API.
        self.run = self.session.run

    def input_shape(self, name: str) -> list[int | None]:
        return [dim if isinstance(dim, int) and dim >= 0 else None for dim in self._inputs[name].shape]

    def input_dtype(self, name: str) -> str:
        return _ONNX_TO_NUMPY.get(self._inputs[name].type, "float32")


class _Flat:
    """A tensor as plain Python data: a flat list of numbers and a shape (no numpy).

    What :class:`OnnxPolicy` feeds :class:`_OrtWebBackend` and gets back from it when
    numpy is missing (Pyodide's npm core has no numpy wheel).
    """

    __slots__ = ("values", "shape", "dtype")

    def __init__(self, values: list[Any], shape: list[int], dtype: str = "float32") -> None:
        self.values, self.shape, self.dtype = values, shape, dtype


# onnxruntime-web's element type names (Tensor.type, inputMetadata[].type) → numpy dtype names.
_ORT_WEB_TYPES = {"float32": "float32", "float64": "float64", "float16": "float16", "int64": "int64",
                  "int32": "int32", "bool": "bool"}
_TYPED_ARRAYS = {"float32": "Float32Array", "float64": "Float64Array", "int32": "Int32Array",
                 "int64": "BigInt64Array", "bool": "Uint8Array"}


class _OrtWebBackend:  # pragma: no cover — runs in Chromium (tests/browser/test_web_harness.py)
    """onnxruntime-web in the browser (Pyodide), with the same interface as :class:`_OrtBackend`.

    The page loads onnxruntime-web with a script tag (``<script src="ort/ort.wasm.min.js">``,
    the wasm backend only, global ``ort``) and points ``ort.env.wasm.wasmPaths`` at the
    folder serving ``ort-wasm-simd-threaded.{mjs,wasm}``. Sessions use the wasm execution
    provider with ``numThreads = 1`` (no SharedArrayBuffer or cross-origin isolation needed).

    Tensors travel as :class:`_Flat` (flat lists): no numpy. onnxruntime-web's
    ``InferenceSession.create`` and ``run`` return promises while ``OnnxPolicy.act`` is
    sync, so they are awaited with ``pyodide.ffi.run_sync`` (WebAssembly JSPI: Chromium
    ≥ 137; Python must have been entered through an async call — ``runPythonAsync`` or an
    asyncio task of the page, which is how a page's game loop runs). Without JSPI (older
    browsers, pygbag) building the policy raises a PolicyError saying so.
    """

    name = "onnxruntime-web"

    def __init__(self, path: str, threads: int) -> None:
        from . import web
        js = web.js
        ort = getattr(js, "ort", None)
        if ort is None:
            raise PolicyError(f"OnnxPolicy({path}) needs onnxruntime-web in the page — add "
                              f"<script src=\"ort/ort.wasm.min.js\"></script> and set ort.env.wasm.wasmPaths")
        if web.RUNTIME != "pyodide" or not web.can_run_sync():
            raise PolicyError(f"OnnxPolicy({path}): this browser runtime cannot wait for onnxruntime-web from "
                              f"sync code (needs Pyodide with WebAssembly JSPI, Chromium ≥ 137, and the game "
                              f"loop running in an asyncio task)")
        from pyodide.ffi import to_js
        self._js, self._to_js, self._run_sync = js, to_js, web.run_sync
        self.version = str(getattr(getattr(ort.env, "versions", None), "web", "") or "")
        try:
            ort.env.wasm.numThreads = 1  # effective before the first session
        except Exception:  # noqa: BLE001 — a frozen env after the first session
            pass
        with open(path, "rb") as model_file:
            data = model_file.read()
        options = to_js({"executionProviders": ["wasm"], "graphOptimizationLevel": "all"},
                        dict_converter=js.Object.fromEntries)
        try:
            self.session = web.run_sync(ort.InferenceSession.create(to_js(data), options))
        except Exception as error:  # noqa: BLE001 — a JS Error
            raise PolicyError(f"OnnxPolicy({path}): onnxruntime-web cannot load it ({str(error)[:200]}) "
                              f"— check that it is an ONNX model file") from None
        session = self.session
        self.input_names = [str(name) for name in session.inputNames]
        self.output_names = [str(name) for name in session.outputNames]
        self._meta: dict[str, tuple[list[int | None], str]] = {}
        for meta in (getattr(session, "inputMetadata", None) or []):
            shape = [int(d) if isinstance(d, (int, float)) and d >= 0 else None for d in (meta.shape or [])]
            self._meta[str(meta.name)] = (shape, _ORT_WEB_TYPES.get(str(meta.type), "float32"))
        self._Tensor = ort.Tensor
        self._arrays = {dtype: getattr(js, name) for dtype, name in _TYPED_ARRAYS.items()}

    def input_shape(self, name: str) -> list[int | None]:
        return list(self._meta.get(name, ([None], "float32"))[0])

    def input_dtype(self, name: str) -> str:
        return self._meta.get(name, ([None], "float32"))[1]

    def run(self, fetch: list[str], feeds: dict[str, _Flat]) -> list[_Flat]:
        js, to_js = self._js, self._to_js
        tensors = js.Object.new()
        for name, tensor in feeds.items():
            values = tensor.values
            if tensor.dtype == "int64":
                values = [js.BigInt(int(v)) for v in values]
            array = self._arrays.get(tensor.dtype, self._arrays["float32"]).new(to_js(values))
            setattr(tensors, name, self._Tensor.new(tensor.dtype if tensor.dtype in _TYPED_ARRAYS else "float32",
                                                    array, to_js(tensor.shape)))
        results = self._run_sync(self.session.run(tensors, to_js(fetch)))
        out = []
        for name in fetch:
            result = getattr(results, name)
            dtype = _ORT_WEB_TYPES.get(str(result.type), "float32")
            data = result.data
            values = [int(v) for v in js.Array.from_(data)] if dtype == "int64" else data.to_py().tolist()
            out.append(_Flat(values, [int(d) for d in result.dims], dtype))
        return out


def _open_backend(path: str, threads: int) -> Any:
    """The runtime for this platform: onnxruntime when it imports; in a Pyodide page that
    loaded onnxruntime-web and can wait for it (JSPI), :class:`_OrtWebBackend`; anywhere
    else (pygbag, a machine without onnxruntime) the pure-Python :mod:`igym.onnxlite`."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        from . import web
        if web.RUNTIME == "pyodide" and getattr(web.js, "ort", None) is not None and web.can_run_sync():
            return _OrtWebBackend(path, threads)
        from .onnxlite import LiteBackend
        return LiteBackend(path, threads)
    return _OrtBackend(path, threads)


class OnnxPolicy:
    """A policy in an ONNX file: observation in, action out.

    ``sample`` chooses how the output row becomes an action: ``"argmax"`` (an int),
    ``"softmax"`` (an int drawn at ``temperature`` by a :class:`SeededSampler` seeded with
    ``seed``) or ``"raw"`` (the row as a list of floats, for continuous actions).

    ``input_name``/``output_name`` default to the model's first input and output that are
    not recurrent state. ``state_inputs``/``state_outputs`` pair up a recurrent model's
    state tensors: they start as zeros of the declared shape (dynamic dimensions → 1) at
    every ``reset()`` and each ``act`` feeds the state in and keeps the new state.
    ``preprocess`` turns an env observation into numbers the model takes; the result is
    flattened into the input tensor, whose size is checked.

    ``reset()`` resets the recurrent state only, not the sampler: a session's softmax
    draws are reproducible from ``seed`` as a whole, like :class:`RandomPolicy`.
    """

    def __init__(self, path: str | os.PathLike[str], *, input_name: str | None = None,
                 output_name: str | None = None, state_inputs: Sequence[str] = (),
                 state_outputs: Sequence[str] = (), sample: str = "argmax", temperature: float = 1.0,
                 seed: int | None = None, preprocess: Callable[[Any], Any] | None = None,
                 threads: int = 1) -> None:
        self.path = os.fspath(path)
        where = self._where = f"OnnxPolicy({self.path})"
        if not Path(self.path).is_file():
            raise PolicyError(f"ONNX file not found: {self.path} — check the path (relative paths are "
                              f"resolved against the current folder, {os.getcwd()}; a seat given as a "
                              f"path also looks beside the experiment file)")
        if sample not in SAMPLE_MODES:
            raise PolicyError(f"{where}: sample={sample!r} is not one of {list(SAMPLE_MODES)} — "
                              f"e.g. sample='argmax'")
        if isinstance(state_inputs, str) or isinstance(state_outputs, str):
            raise PolicyError(f"{where}: state_inputs and state_outputs are lists of names — "
                              f"e.g. state_inputs=['h_in'], state_outputs=['h_out']")
        state_inputs, state_outputs = tuple(state_inputs), tuple(state_outputs)
        if len(state_inputs) != len(state_outputs):
            raise PolicyError(f"{where}: state_inputs and state_outputs must pair up, got "
                              f"{list(state_inputs)} and {list(state_outputs)} — give one output per input")
        if not isinstance(temperature, (int, float)) or not temperature > 0:
            raise PolicyError(f"{where}: temperature={temperature!r} — give a number above 0 "
                              f"(use sample='argmax' for greedy play)")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise PolicyError(f"{where}: threads={threads!r} — give a whole number ≥ 1")
        with_numpy = True
        try:
            import numpy
        except ImportError:
            from . import web
            if not web.IN_BROWSER:
                raise PolicyError(f"{where} needs numpy — pip install numpy onnxruntime") from None
            with_numpy = False  # the browser: onnxruntime-web takes plain lists (see _OrtWebBackend)
        backend = self.backend = _open_backend(self.path, threads)
        if backend.name != "onnxruntime":
            with_numpy = False  # tensors travel as plain lists (_Flat) to and from the page's runtime

        for name in state_inputs:
            _check_name(where, "state input", name, backend.input_names, "state_inputs")
        for name in state_outputs:
            _check_name(where, "state output", name, backend.output_names, "state_outputs")
        input_name = _pick(where, "input", input_name, backend.input_names, state_inputs, "observation")
        output_name = _pick(where, "output", output_name, backend.output_names, state_outputs, "action")
        if input_name in state_inputs or output_name in state_outputs:
            raise PolicyError(f"{where}: {input_name!r}/{output_name!r} cannot be both the observation "
                              f"and the state — name different tensors")

        self.input_name, self.output_name = input_name, output_name
        self.state_inputs, self.state_outputs = state_inputs, state_outputs
        self.sample, self.temperature, self.seed = sample, float(temperature), seed
        self.base_seed = seed
        self.threads = threads
        self.sampler = SeededSampler(seed)
        if sample != "softmax":
            self.reseed = None  # type: ignore[assignment]  # nothing random to seed
        self.preprocess = preprocess
        with open(self.path, "rb") as model_file:
            self.sha256 = hashlib.sha256(model_file.read()).hexdigest()

        # The observation buffer has the input's declared shape (a dynamic batch → 1) and is
        # filled in place through a flat view, so a call allocates no input array. When a
        # non-batch dimension is dynamic the size is unknown and each call builds the array.
        shape = backend.input_shape(input_name)
        if not with_numpy:
            self._init_plain(shape)
            return
        self._np = numpy
        self._dtype = numpy.dtype(backend.input_dtype(input_name))
        self._shape = [1 if dim is None else dim for dim in shape]
        known = all(dim is not None for dim in shape[1:]) and (len(shape) != 1 or shape[0] is not None)
        self.obs_size: int | None = math.prod(self._shape) if known else None
        if known:
            self._obs = numpy.zeros(self._shape, dtype=self._dtype)
            self._flat = self._obs.reshape(-1)  # a view: writing it writes _obs
        self._feeds: dict[str, Any] = {input_name: self._obs} if known else {}
        self._fetch = [output_name, *state_outputs]
        self._run = backend.run
        self._draw = self.sampler.softmax_sample
        self._state_shapes = [([1 if d is None else d for d in backend.input_shape(n)], backend.input_dtype(n))
                              for n in state_inputs]
        self.reset()

    def reseed(self, seed: int) -> None:
        """Draw from a new stream seeded with ``seed`` (a seat's seed for one episode)."""
        self.seed = seed
        self.sampler = SeededSampler(seed)
        self._draw = self.sampler.softmax_sample

    def reset(self) -> None:
        """Zero the recurrent state (the session calls this at every episode start)."""
        zeros = self._np.zeros
        for name, (shape, dtype) in zip(self.state_inputs, self._state_shapes):
            self._feeds[name] = zeros(shape, dtype=dtype)

    def scores(self, observation: Any) -> list[float]:
        """The model's output for one observation as a flat list (logits, or a continuous
        action); advances the recurrent state like ``act``."""
        if self.preprocess is not None:
            observation = self.preprocess(observation)
        flat = self._flat if self.obs_size is not None else None
        # Fast path: a flat list/tuple/array of the right length is copied into the buffer by
        # numpy in C. The length check comes first because numpy would broadcast a single
        # number (or a length-1 array) into every slot without complaint.
        try:
            if flat is None or len(observation) != self.obs_size:
                raise TypeError
            flat[:] = observation
        except (TypeError, ValueError):
            self._set_slow(observation)
        results = self._run(self._fetch, self._feeds)
        if self.state_inputs:
            feeds = self._feeds
            for name, value in zip(self.state_inputs, results[1:]):
                feeds[name] = value
        scores: list[float] = results[0].ravel().tolist()
        return scores

    def act(self, observation: Any) -> Any:
        """The action for one observation: an int (argmax, softmax) or a list of floats (raw)."""
        row = self.scores(observation)
        sample = self.sample
        if sample == "argmax":
            return row.index(max(row))  # SeededSampler.argmax, inlined: the hot path
        if sample == "softmax":
            return self._draw(row, self.temperature)
        return row

    def _set_slow(self, observation: Any) -> None:
        """Any nesting or array shape, flattened; or a clear error naming both sizes."""
        numpy = self._np
        try:
            flat = numpy.asarray(observation, dtype=self._dtype).reshape(-1)
        except (TypeError, ValueError) as error:
            raise PolicyError(f"{self._where}: the observation ({type(observation).__name__}) is not "
                              f"numbers the model's input {self.input_name!r} can take ({error}) — "
                              f"pass preprocess= to convert it") from None
        if self.obs_size is None:
            rank = len(self._shape)
            self._feeds[self.input_name] = flat.reshape(1, -1) if rank == 2 else (
                flat.reshape(1) if rank == 1 else numpy.asarray(observation, dtype=self._dtype)[None])
            return
        if flat.shape[0] != self.obs_size:
            raise PolicyError(f"{self._where}: observation has {flat.shape[0]} numbers, the model's input "
                              f"{self.input_name!r} takes {self.obs_size} (shape {self._shape}) — "
                              f"pass preprocess= to convert it")
        self._flat[:] = flat

    # --- without numpy (the browser): tensors as flat lists --------------------------------

    def _init_plain(self, shape: list[int | None]) -> None:
        backend = self.backend
        self._dtype = backend.input_dtype(self.input_name)
        self._shape = [1 if dim is None else dim for dim in shape]
        known = all(dim is not None for dim in shape[1:]) and (len(shape) != 1 or shape[0] is not None)
        self.obs_size = math.prod(self._shape) if known else None
        self._feeds = {}
        self._fetch = [self.output_name, *self.state_outputs]
        self._run = backend.run
        self._draw = self.sampler.softmax_sample
        self._state_shapes = [([1 if d is None else d for d in backend.input_shape(n)], backend.input_dtype(n))
                              for n in self.state_inputs]
        self.reset = self._reset_plain  # type: ignore[method-assign]
        self.scores = self._scores_plain  # type: ignore[method-assign]
        self.reset()

    def _reset_plain(self) -> None:
        for name, (shape, dtype) in zip(self.state_inputs, self._state_shapes):
            self._feeds[name] = _Flat([0] * math.prod(shape), shape, dtype)

    def _scores_plain(self, observation: Any) -> list[float]:
        if self.preprocess is not None:
            observation = self.preprocess(observation)
        try:
            values = _flatten(observation)
        except (TypeError, ValueError) as error:
            raise PolicyError(f"{self._where}: the observation ({type(observation).__name__}) is not "
                              f"numbers the model's input {self.input_name!r} can take ({error}) — "
                              f"pass preprocess= to convert it") from None
        if self.obs_size is None:
            shape = [1, len(values)] if len(self._shape) == 2 else [len(values)]
        else:
            if len(values) != self.obs_size:
                raise PolicyError(f"{self._where}: observation has {len(values)} numbers, the model's input "
                                  f"{self.input_name!r} takes {self.obs_size} (shape {self._shape}) — "
                                  f"pass preprocess= to convert it")
            shape = self._shape
        feeds = self._feeds
        feeds[self.input_name] = _Flat(values, shape, self._dtype)
        results = self._run(self._fetch, feeds)
        for name, value in zip(self.state_inputs, results[1:]):
            feeds[name] = value
        return list(results[0].values)

    def describe(self) -> dict[str, Any]:
        """What the data records about this AI, so a study can say which one it used."""
        return {"kind": "onnx", "path": self.path, "sha256": self.sha256, "input": self.input_name,
                "output": self.output_name, "state_inputs": list(self.state_inputs),
                "state_outputs": list(self.state_outputs), "sample": self.sample,
                "temperature": self.temperature, "seed": self.seed}

    def __repr__(self) -> str:
        return f"OnnxPolicy({self.path!r}, sample={self.sample!r})"


def _flatten(value: Any) -> list[float]:
    """Nested lists/tuples (or anything with ``tolist``) of numbers as one flat list."""
    tolist = getattr(value, "tolist", None)
    if tolist is not None:
        value = tolist()
    if isinstance(value, (int, float)):
        return [value]
    out: list[float] = []
    stack = [iter(value)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, (list, tuple)):
                stack.append(iter(item))
                break
            if not isinstance(item, (int, float)):
                raise TypeError(f"{type(item).__name__} is not a number")
            out.append(item)
        else:
            stack.pop()
    return out


def _pick(where: str, what: str, given: str | None, names: list[str], state: Sequence[str], role: str) -> str:
    """The tensor the model's ``what`` (input/output) is: ``given`` if it exists, else the first
    one that is not recurrent state."""
    if given is not None:
        _check_name(where, what, given, names, f"{what}_name")
        return given
    free = [name for name in names if name not in state]
    if not free:
        raise PolicyError(f"{where}: the model's {what}s {names} are all state — "
                          f"leave its {role} {what} out of state_{what}s")
    return free[0]


def _check_name(where: str, what: str, name: str, names: list[str], option: str) -> None:
    """A tensor name the model does not have: list the ones it has and suggest one."""
    if name not in names:
        suggestion = f" — pass {option}={names[0]!r}" if names else ""
        if option.startswith("state_") and names:
            suggestion = f" — pass {option}=[...] with names from that list"
        raise PolicyError(f"{where}: {what} {name!r} not in the model; its {what}s are {names}{suggestion}")


def load_policies(game: Any) -> dict[str, Policy]:
    """The AI seats of ``game`` that need loading — an ``.onnx`` path (read and hashed here, so
    the records can name the exact model) or a policy object — by seat name. ``"human"`` and
    ``"random"`` seats need nothing. Drivers call this before building a session, off the
    frame loop (the server on a thread), so a game's first frame never waits for a model file."""
    policies: dict[str, Policy] = {}
    for name, seat in game.seats.items():
        if seat in ("human", "random"):
            continue
        policies[str(name)] = load_policy(seat, game)
    return policies


def load_policy(seat: Any, game: Any) -> Policy:
    """One AI seat's policy: an ``.onnx`` path (beside the experiment file if relative) or an object."""
    return OnnxPolicy(_beside_experiment(seat, game)) if isinstance(seat, str) else as_policy(seat)


def _beside_experiment(path: str, game: Any) -> str:
    """A relative model path is found where it is, else next to the experiment file."""
    candidate = Path(path)
    if not candidate.is_absolute() and game.base_dir is not None and not candidate.exists():
        beside = Path(game.base_dir) / candidate
        if beside.exists():
            return str(beside)
    return str(candidate)
