"""A small pure-Python ONNX evaluator for feed-forward policies, where no ONNX runtime exists.

pygbag's browser Python cannot wait for onnxruntime-web's promises from the sync
``OnnxPolicy.act`` (it has no WebAssembly JSPI), and a machine may lack onnxruntime. For
the policies studies use — MLPs: Gemm/MatMul, Add/Sub/Mul, Relu/Tanh/Sigmoid/Softmax —
this module reads the ``.onnx`` file itself (a minimal protobuf reader: no ``onnx`` or
``protobuf`` package) and evaluates the graph with plain Python lists. Weights are the
file's float32 values; arithmetic is in double precision, so scores match onnxruntime to
about 1e-6 and argmax actions match except on exact ties (tested on the shipped models).
A graph with any other operator is refused with a PolicyError naming it.

It offers the backend interface of :mod:`igym.policy` (``input_names``, ``output_names``,
``input_shape``, ``input_dtype``, ``run(fetch, feeds)`` with flat-list tensors). Cost:
about 0.1 ms per action for the slime MLP natively, a few ms for Overcooked's 892-input one.
"""

from __future__ import annotations

import math
import struct
from operator import mul
from typing import Any
from collections.abc import Iterable, Iterator

from .errors import PolicyError

_FLOAT, _INT64, _DOUBLE, _INT32 = 1, 7, 11, 6
_ELEMENT_NAMES = {1: "float32", 6: "int32", 7: "int64", 11: "float64", 9: "bool", 10: "float16"}


# --- a minimal protobuf reader ----------------------------------------------------------

def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message: ints for varints, bytes otherwise."""
    i, end = 0, len(data)
    while i < end:
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = data[i:i + size], i + size
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wire}")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _ints(wire: int, value: Any) -> list[int]:
    """A repeated int64 field entry, packed or not."""
    if wire == 0:
        return [_signed(value)]
    out, i = [], 0
    while i < len(value):
        item, i = _varint(value, i)
        out.append(_signed(item))
    return out


def _tensor(data: bytes) -> tuple[str, list[float], list[int]]:
    """A TensorProto: name, flat values, dims."""
    name, dims, kind, raw, floats, ints, doubles = "", [], _FLOAT, None, [], [], []
    for number, wire, value in _fields(data):
        if number == 1:
            dims += _ints(wire, value)
        elif number == 2:
            kind = value
        elif number == 4:
            floats += list(struct.unpack(f"<{len(value) // 4}f", value)) if wire == 2 else \
                list(struct.unpack("<f", value))
        elif number == 7:
            ints += _ints(wire, value)
        elif number == 8:
            name = value.decode()
        elif number == 9:
            raw = value
        elif number == 10:
            doubles += list(struct.unpack(f"<{len(value) // 8}d", value)) if wire == 2 else \
                list(struct.unpack("<d", value))
    if raw is not None:
        formats = {_FLOAT: "f", _DOUBLE: "d", _INT64: "q", _INT32: "i"}
        if kind not in formats:
            raise PolicyError(f"onnxlite: tensor {name!r} has element type {kind}, not float or int")
        code = formats[kind]
        values = list(struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw))
    else:
        values = floats or doubles or ints
    return name, values, dims


def _value_info(data: bytes) -> tuple[str, list[int | None], str]:
    """A ValueInfoProto: name, shape (None for a symbolic dimension), element type name."""
    name, shape, element = "", [], "float32"
    for number, _, value in _fields(data):
        if number == 1:
            name = value.decode()
        elif number == 2:
            for t_number, _, t_value in _fields(value):
                if t_number != 1:  # tensor_type
                    continue
                for tt_number, _, tt_value in _fields(t_value):
                    if tt_number == 1:
                        element = _ELEMENT_NAMES.get(tt_value, "float32")
                    elif tt_number == 2:
                        for _, _, dim in _fields(tt_value):
                            size = None
                            for d_number, _, d_value in _fields(dim):
                                if d_number == 1:
                                    size = _signed(d_value)
                            shape.append(size)
    return name, shape, element


def _node(data: bytes) -> tuple[str, list[str], list[str], dict[str, Any]]:
    op, inputs, outputs, attributes = "", [], [], {}
    for number, _, value in _fields(data):
        if number == 1:
            inputs.append(value.decode())
        elif number == 2:
            outputs.append(value.decode())
        elif number == 4:
            op = value.decode()
        elif number == 5:
            name, attr = "", None
            for a_number, _a_wire, a_value in _fields(value):
                if a_number == 1:
                    name = a_value.decode()
                elif a_number == 2:
                    attr = struct.unpack("<f", a_value)[0]
                elif a_number == 3:
                    attr = _signed(a_value)
            attributes[name] = attr
    return op, inputs, outputs, attributes


# --- the evaluator ----------------------------------------------------------------------

class Tensor:
    """A flat list of values with a shape (row-major)."""

    __slots__ = ("values", "shape")

    def __init__(self, values: list[float], shape: list[int]) -> None:
        self.values, self.shape = values, shape

    def rows(self) -> list[list[float]]:
        width = self.shape[-1] if self.shape else 1
        return [self.values[i:i + width] for i in range(0, len(self.values), width)] or [[]]


SUPPORTED = ("Gemm", "MatMul", "Add", "Sub", "Mul", "Relu", "Tanh", "Sigmoid", "Softmax", "Identity")


class LiteModel:
    """An ONNX feed-forward graph evaluated with plain Python."""

    def __init__(self, path: str) -> None:
        with open(path, "rb") as file:
            data = file.read()
        try:
            graph = next(value for number, _, value in _fields(data) if number == 7)
            nodes, initializers, inputs, outputs = [], {}, [], []
            for number, _, value in _fields(graph):
                if number == 1:
                    nodes.append(_node(value))
                elif number == 5:
                    name, values, dims = _tensor(value)
                    initializers[name] = Tensor(values, dims)
                elif number == 11:
                    inputs.append(_value_info(value))
                elif number == 12:
                    outputs.append(_value_info(value))
        except (StopIteration, IndexError, ValueError, struct.error, UnicodeDecodeError) as error:
            raise PolicyError(f"OnnxPolicy({path}): not a readable ONNX model ({type(error).__name__})") from None
        unsupported = sorted({op for op, *_ in nodes if op not in SUPPORTED})
        if unsupported:
            raise PolicyError(f"OnnxPolicy({path}): the pure-Python evaluator (used where onnxruntime is missing) "
                              f"supports {', '.join(SUPPORTED)}, not {', '.join(unsupported)}")
        self.nodes = nodes
        self.initializers = initializers
        self.inputs = [(name, shape, element) for name, shape, element in inputs if name not in initializers]
        self.outputs = outputs
        # Weight matrices transposed once into columns, so a matrix product is one C-level
        # sum(map(mul, row, column)) per output.
        self._columns: dict[tuple[str, bool], list[list[float]]] = {}

    def _weight_columns(self, name: str, tensor: Tensor, transposed: bool) -> list[list[float]]:
        key = (name, transposed)
        columns = self._columns.get(key)
        if columns is None:
            rows, cols = tensor.shape
            values = tensor.values
            if transposed:  # B is [N, K]: its rows are the columns we need
                columns = [values[n * cols:(n + 1) * cols] for n in range(rows)]
            else:
                columns = [values[n::cols] for n in range(cols)]
            self._columns[key] = columns
        return columns

    def run(self, feeds: dict[str, Tensor]) -> dict[str, Tensor]:
        env: dict[str, Tensor] = {**self.initializers, **feeds}
        for op, inputs, outputs, attributes in self.nodes:
            args = [env[name] for name in inputs if name]
            if op in ("Gemm", "MatMul"):
                result = self._matmul(op, inputs, args, attributes)
            elif op in ("Add", "Sub", "Mul"):
                result = _broadcast(op, args[0], args[1])
            elif op == "Relu":
                result = Tensor([v if v > 0.0 else 0.0 for v in args[0].values], args[0].shape)
            elif op == "Tanh":
                result = Tensor([math.tanh(v) for v in args[0].values], args[0].shape)
            elif op == "Sigmoid":
                result = Tensor([1.0 / (1.0 + math.exp(-v)) for v in args[0].values], args[0].shape)
            elif op == "Softmax":
                result = Tensor([p for row in args[0].rows() for p in _softmax(row)], args[0].shape)
            else:  # Identity
                result = args[0]
            env[outputs[0]] = result
        return env

    def _matmul(self, op: str, names: list[str], args: list[Tensor], attributes: dict[str, Any]) -> Tensor:
        a, b = args[0], args[1]
        trans_a = bool(attributes.get("transA", 0)) if op == "Gemm" else False
        trans_b = bool(attributes.get("transB", 0)) if op == "Gemm" else False
        rows = a.rows()
        if trans_a:
            rows = [list(column) for column in zip(*rows)]
        if names[1] in self.initializers:
            columns = self._weight_columns(names[1], b, trans_b)
        else:
            matrix = b.rows()
            columns = matrix if trans_b else [list(column) for column in zip(*matrix)]
        out = [sum(map(mul, row, column)) for row in rows for column in columns]
        result = Tensor(out, [len(rows), len(columns)])
        if op == "Gemm":
            alpha, beta = attributes.get("alpha", 1.0), attributes.get("beta", 1.0)
            if alpha != 1.0:
                result.values = [alpha * v for v in result.values]
            if len(args) > 2:
                c = args[2] if beta == 1.0 else Tensor([beta * v for v in args[2].values], args[2].shape)
                result = _broadcast("Add", result, c)
        return result


def _softmax(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


def _broadcast(op: str, a: Tensor, b: Tensor) -> Tensor:
    """Elementwise ``op`` where one side is the same size, a scalar, or a trailing vector."""
    if len(b.values) > len(a.values):
        if op == "Sub":
            return Tensor([-v for v in _broadcast("Sub", b, a).values], b.shape)
        a, b = b, a
    x, y = a.values, b.values
    n = len(y)
    pairs: Iterable[tuple[float, float]]
    if n == len(x):
        pairs = zip(x, y)
    elif n == 1:
        pairs = ((v, y[0]) for v in x)
    elif len(x) % n == 0:
        pairs = zip(x, y * (len(x) // n))
    else:
        raise PolicyError(f"onnxlite: cannot broadcast shapes {a.shape} and {b.shape}")
    if op == "Add":
        values = [p + q for p, q in pairs]
    elif op == "Sub":
        values = [p - q for p, q in pairs]
    else:
        values = [p * q for p, q in pairs]
    return Tensor(values, a.shape)


class LiteBackend:
    """The :mod:`igym.policy` backend over :class:`LiteModel` (tensors as flat lists)."""

    name = "igym-onnxlite"
    version = "1"

    def __init__(self, path: str, threads: int = 1) -> None:
        self.model = LiteModel(path)
        self.input_names = [name for name, _, _ in self.model.inputs]
        self.output_names = [name for name, _, _ in self.model.outputs]
        self._meta = {name: (shape, element) for name, shape, element in self.model.inputs}

    def input_shape(self, name: str) -> list[int | None]:
        return list(self._meta[name][0])

    def input_dtype(self, name: str) -> str:
        return self._meta[name][1]

    def run(self, fetch: list[str], feeds: dict[str, Any]) -> list[Any]:
        from .policy import _Flat
        env = self.model.run({name: Tensor([float(v) for v in t.values], list(t.shape)) for name, t in feeds.items()})
        return [_Flat(env[name].values, env[name].shape, "float64") for name in fetch]
