"""The shapes of an ONNX graph's tensors, for the importer (`networks/onnx.py`).

onnx's own shape inference runs first. Where it gives up it names each lost
dimension anew (``unk__4``): a ``Slice`` whose ends are computed from ``Shape``
through a ``Div``, or a ``Reshape`` whose target is assembled from ``Shape``,
``Gather`` and ``Concat`` -- which is how exporters write ShuffleNet's channel
split and channel shuffle when the batch is dynamic. `GraphShapes` then walks
the graph once, in node order, and computes every output shape it can from the
shapes of the inputs, from the small integer tensors that such shape
arithmetic passes around (folded as the walk goes) and from the weights. A
dimension that inference knows is kept; the walk only fills what it lost.

Operators that define their first input as ``N x C x ...`` (convolutions,
pooling, batch/instance normalization, LRN) take an unknown dimension 0 as the
batch. A rule that cannot tell an output (an unfolded value, an unknown
operator, a malformed node) leaves it as inference had it: propagation never
fails, and a layer that needs an unknown size reports it then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from ..core.dims import ceil_div
from ..core.errors import ConvschedError

Dim = int | str | None     # a size; a symbol's name when inference named an unknown; None when unknown
Shape = list[Dim]
Value = list[Any]          # the elements of a folded scalar or 1-D tensor (int, float, or None if unknown)

_MAX_FOLDED = 64           # shape arithmetic folds tensors of at most this many elements
_INT64_MAX = 2**63 - 1     # ONNX sizes are int64
_STD = ("", "ai.onnx")
_EXTERNAL = 1              # TensorProto.EXTERNAL
_INT_TYPES = frozenset({2, 3, 4, 5, 6, 7, 12, 13})  # UINT8 INT8 UINT16 INT16 INT32 INT64 UINT32 UINT64
_FLOAT_TYPES = frozenset({1, 10, 11, 16})            # FLOAT FLOAT16 DOUBLE BFLOAT16

# AttributeProto types (onnx.AttributeProto.AttributeType), named for messages
_A_FLOAT, _A_INT, _A_STRING, _A_TENSOR, _A_FLOATS, _A_INTS = 1, 2, 3, 4, 6, 7
_A_NAMES = {0: "undefined", 1: "a float", 2: "an integer", 3: "a string", 4: "a tensor", 5: "a graph",
            6: "a list of floats", 7: "a list of integers", 8: "a list of strings", 9: "a list of tensors",
            10: "a list of graphs", 11: "a sparse tensor", 12: "a list of sparse tensors"}


class _Unknown(Exception):
    """A propagation rule cannot tell an output; the node keeps what inference found."""


def _attr_type(a) -> int:
    """The attribute's type; an old model may leave it undefined and only fill one field."""
    if a.type:
        return a.type
    for t, present in ((_A_INTS, len(a.ints)), (_A_FLOATS, len(a.floats)), (_A_INT, a.HasField("i")),
                       (_A_FLOAT, a.HasField("f")), (_A_STRING, a.HasField("s")), (_A_TENSOR, a.HasField("t"))):
        if present:
            return t
    return 0


class Attrs:
    """Typed access to one node's attributes: a wrong type is a one-line error naming the node."""

    def __init__(self, node, where: str) -> None:
        self._by_name = {a.name: a for a in node.attribute}
        self.where = where

    def _get(self, name: str, want: int):
        a = self._by_name.get(name)
        if a is None:
            return None
        t = _attr_type(a)
        if t != want:
            raise ConvschedError(f"{self.where}: attribute '{name}' is {_A_NAMES.get(t, f'of type {t}')}, "
                                 f"expected {_A_NAMES[want]}")
        return a

    def int(self, name: str, default: int) -> int:
        a = self._get(name, _A_INT)
        return default if a is None else int(a.i)

    def ints(self, name: str, default: list[int] | None) -> list[int] | None:
        a = self._get(name, _A_INTS)
        return default if a is None else [int(v) for v in a.ints]

    def floats(self, name: str) -> list[float] | None:
        a = self._get(name, _A_FLOATS)
        return None if a is None else [float(v) for v in a.floats]

    def string(self, name: str, default: str, choices: Sequence[str] = ()) -> str:
        a = self._get(name, _A_STRING)
        if a is None:
            return default
        try:
            return a.s.decode("utf-8")
        except UnicodeDecodeError:
            hint = f"write one of {', '.join(choices)}" if choices else "write one of its documented values"
            raise ConvschedError(f"{self.where}: attribute '{name}' is not UTF-8 text ({bytes(a.s[:40])!r}); "
                                 f"{hint}") from None


# ---------------------------------------------------------------- convolution and pooling geometry
_AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")


@dataclass(frozen=True)
class WindowAttrs:
    """The sliding-window attributes of a Conv or pooling node, checked."""

    kernel: list[int]
    strides: list[int]
    dilations: list[int]
    pads: list[int]        # begins of every spatial axis, then ends
    auto_pad: str
    ceil_mode: bool = False


def window_attrs(a: Attrs, nsp: int, kernel: list[int] | None) -> WindowAttrs:
    """Read and check kernel_shape/strides/dilations/pads/auto_pad for `nsp` spatial axes.

    `kernel` is the weight's spatial shape for a Conv (kernel_shape must agree) or None for a pooling
    node (kernel_shape is required)."""
    where = a.where
    ks = a.ints("kernel_shape", kernel)
    if ks is None:
        raise ConvschedError(f"{where}: attribute 'kernel_shape' is missing")
    if kernel is not None and ks != kernel:
        raise ConvschedError(f"{where}: kernel_shape {ks} does not match the weight's spatial shape {kernel}")
    strides = a.ints("strides", [1] * nsp)
    dil = a.ints("dilations", [1] * nsp)
    pads = a.ints("pads", [0] * (2 * nsp))
    for what, vals, n in (("kernel_shape", ks, nsp), ("strides", strides, nsp), ("dilations", dil, nsp),
                          ("pads", pads, 2 * nsp)):
        if len(vals) != n:
            raise ConvschedError(f"{where}: {what} {vals} has {len(vals)} value(s); this {nsp}-D window "
                                 f"needs {n}")
    for what, vals in (("kernel_shape", ks), ("strides", strides), ("dilations", dil)):
        if any(v < 1 for v in vals):
            raise ConvschedError(f"{where}: {what} {vals} must all be at least 1")
    if any(p < 0 for p in pads):
        raise ConvschedError(f"{where}: negative pads {pads} are not supported; pads must be 0 or more")
    auto = a.string("auto_pad", "NOTSET", _AUTO_PADS) or "NOTSET"
    if auto not in _AUTO_PADS:
        raise ConvschedError(f"{where}: unknown auto_pad {auto!r}; write one of {', '.join(_AUTO_PADS)}")
    ceil_mode = a.int("ceil_mode", 0)
    if ceil_mode not in (0, 1):
        raise ConvschedError(f"{where}: ceil_mode {ceil_mode} must be 0 or 1")
    return WindowAttrs(ks, strides, dil, pads, auto, bool(ceil_mode))


def window_axis(where: str, axis: str, i: int, f: int, s: int, d: int, pb: int, pe: int, auto: str,
                ceil_mode: bool = False) -> tuple[int, int]:
    """(output size, begin pad) of one spatial axis, per the ONNX Conv / pooling definitions."""
    span = (f - 1) * d + 1
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        o = ceil_div(i, s)
        total = max(0, (o - 1) * s + span - i)
        return o, (total // 2 if auto == "SAME_UPPER" else total - total // 2)
    if auto == "VALID":
        pb = pe = 0
    room = i + pb + pe - span
    # ceil_mode as the ONNX pooling spec and onnx's shape inference have it (PyTorch and onnx's
    # reference runtime drop a last window that would start in the end padding; the spec does not)
    o = (ceil_div(room, s) if ceil_mode else room // s) + 1
    if o < 1:
        raise ConvschedError(f"{where}: the {axis} window span {span} is larger than the padded input {i + pb + pe}")
    return o, pb


# ---------------------------------------------------------------- helpers
def _known(d: Dim) -> bool:
    return isinstance(d, int) and d >= 0


def _prod(dims: Iterable[Dim]) -> int | None:
    dims = list(dims)
    return math.prod(dims) if all(_known(d) for d in dims) else None


def _axis(axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise _Unknown
    return a


def _input(node, i: int) -> str:
    return node.input[i] if len(node.input) > i else ""


def _broadcast(shapes: Sequence[Shape]) -> Shape:
    rank = max(len(s) for s in shapes)
    out: Shape = []
    for j in range(rank):
        col = [s[len(s) - rank + j] for s in shapes if len(s) - rank + j >= 0]
        big = {d for d in col if _known(d) and d != 1}
        if len(big) > 1:
            raise _Unknown  # incompatible: the model is malformed; leave it to inference
        if big:
            out.append(big.pop())
        elif all(d == 1 for d in col):
            out.append(1)
        else:
            named = {d for d in col if d != 1}
            out.append(named.pop() if len(named) == 1 and isinstance(next(iter(named)), str) else None)
    return out


def _int_div(x: int, y: int) -> int:
    """ONNX integer Div: the quotient truncated toward zero."""
    q = abs(x) // abs(y)
    return -q if (x < 0) != (y < 0) else q


_BINARY_VALUES: dict[str, Callable[[Any, Any], Any]] = {
    "Add": lambda x, y: x + y, "Sub": lambda x, y: x - y, "Mul": lambda x, y: x * y,
    "Div": lambda x, y: _int_div(x, y) if isinstance(x, int) and isinstance(y, int) else x / y,
    "Max": max, "Min": min,
}


def tensor_value(t) -> Value | None:
    """The elements of a small scalar or 1-D numeric tensor stored in the model, else None."""
    if t.data_location == _EXTERNAL or len(t.dims) > 1 or any(d < 0 for d in t.dims):
        return None
    if math.prod(t.dims) > _MAX_FOLDED or t.data_type not in _INT_TYPES | _FLOAT_TYPES:
        return None
    from onnx import numpy_helper       # onnx is optional: only an .onnx model being read gets here

    try:
        arr = numpy_helper.to_array(t)
    except (ValueError, TypeError):  # data that does not match the declared shape: nothing to fold
        return None
    cast = int if t.data_type in _INT_TYPES else float
    return [cast(v) for v in arr.reshape(-1).tolist()]


# ---------------------------------------------------------------- the shape table
class GraphShapes:
    """Element types, shapes and folded small values of every tensor of one graph."""

    def __init__(self, graph, batch: int) -> None:
        self.batch = batch
        self.types: dict[str, int] = {}
        self.shapes: dict[str, Shape | None] = {}
        self.consts: set[str] = set()       # initializers and Constant outputs
        self.values: dict[str, Value] = {}  # folded scalars and 1-D tensors
        self._read_declared(graph)
        self._propagate(graph)

    # ------------------------------------------------ what the model and inference say
    def _read_declared(self, graph) -> None:
        for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
            tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
            if tt is None:
                continue
            self.types[vi.name] = tt.elem_type
            if tt.HasField("shape"):
                self.shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                                        for d in tt.shape.dim]
            else:
                self.shapes.setdefault(vi.name, None)
        for t in graph.initializer:
            self._constant(t.name, t)
        for node in graph.node:  # Constant outputs are weights wherever the node stands
            if node.op_type == "Constant" and node.domain in _STD and node.output:
                self._constant_node(node)

    def _constant(self, name: str, t) -> None:
        self.types[name] = t.data_type
        self.shapes[name] = list(t.dims)
        self.consts.add(name)
        value = tensor_value(t)
        if value is not None:
            self.values[name] = value

    def _constant_node(self, node) -> None:
        out = node.output[0]
        for a in node.attribute:
            t = _attr_type(a)
            if a.name == "value" and t == _A_TENSOR:
                self._constant(out, a.t)
            elif a.name == "sparse_value" and a.HasField("sparse_tensor"):
                self.types[out] = a.sparse_tensor.values.data_type
                self.shapes[out] = list(a.sparse_tensor.dims)
                self.consts.add(out)
            elif a.name in ("value_int", "value_float") and t in (_A_INT, _A_FLOAT):
                self.shapes[out], self.values[out] = [], [a.i if t == _A_INT else a.f]
                self.types[out] = 7 if t == _A_INT else 1
                self.consts.add(out)
            elif a.name in ("value_ints", "value_floats") and t in (_A_INTS, _A_FLOATS):
                vals = list(a.ints) if t == _A_INTS else list(a.floats)
                self.shapes[out] = [len(vals)]
                if len(vals) <= _MAX_FOLDED:
                    self.values[out] = vals
                self.types[out] = 7 if t == _A_INTS else 1
                self.consts.add(out)

    # ------------------------------------------------ our own propagation
    def get(self, name: str) -> Shape | None:
        s = self.shapes.get(name) if name else None
        return None if s is None else list(s)

    def _batch_first(self, name: str) -> Shape | None:
        """The shape of an N x C x ... input, an unknown dimension 0 taken as the batch."""
        s = self.get(name)
        if s and not _known(s[0]):
            s[0] = self.batch
        return s

    def _value(self, name: str) -> Value:
        v = self.values.get(name) if name else None
        if v is None:
            raise _Unknown
        return v

    def _ints(self, name: str) -> list[int]:
        v = self._value(name)
        if not all(isinstance(x, int) for x in v):
            raise _Unknown
        return list(v)

    def _learn(self, name: str, ours: Shape) -> None:
        """Keep every dimension inference knows; fill the others from our rule."""
        ours = [d if not isinstance(d, int) or 0 <= d <= _INT64_MAX else None for d in ours]
        known = self.shapes.get(name)
        if known is None or len(known) != len(ours):
            merged = ours if known is None else known
        else:
            merged = [k if _known(k) else (o if _known(o) else k) for k, o in zip(known, ours)]
        self.shapes[name] = merged

    def _set_value(self, name: str, value: Value) -> None:
        if name and len(value) <= _MAX_FOLDED:  # ONNX shape arithmetic is int64: what leaves it is unknown
            self.values[name] = [v if not isinstance(v, int) or abs(v) <= _INT64_MAX else None for v in value]

    def _propagate(self, graph) -> None:
        for node in graph.node:
            if node.domain not in _STD or node.op_type == "Constant":
                continue
            rule = _RULES.get(node.op_type)
            if rule is None:
                continue
            try:
                outs = rule(self, node, Attrs(node, f"node '{node.name}' ({node.op_type})"))
            except (_Unknown, ValueError, ArithmeticError):  # incl. ConvschedError: bad attributes
                continue
            for name, shape in zip(node.output, outs):
                if name and shape is not None:
                    self._learn(name, shape)

    # ------------------------------------------------ what a layer asks for
    def dims(self, tensor: str, node: str, rank: int | tuple[int, ...] | None = None,
             fill: dict[int, int] | None = None) -> list[int]:
        """The sizes of `tensor`, every one known and positive, else a one-line error.

        `fill` gives sizes for dimensions that are unknown (the batch, channels from the weights)."""
        s = self.get(tensor)
        if s is None:
            raise ConvschedError(f"tensor '{tensor}' (input of node '{node}') has no known shape; "
                                 "give a model with fixed input shapes (only the batch may be symbolic)")
        if rank is not None:
            ranks = (rank,) if isinstance(rank, int) else rank
            if len(s) not in ranks:
                raise ConvschedError(f"tensor '{tensor}' of node '{node}' has rank {len(s)}, expected "
                                     f"{' or '.join(map(str, ranks))}")
        for i, d in enumerate(s):
            if not isinstance(d, int) and fill and i in fill:
                s[i] = d = fill[i]
            if isinstance(d, str) or d is None:
                what = f"a symbolic ('{d}')" if isinstance(d, str) else "an unknown"
                raise ConvschedError(f"tensor '{tensor}' (node '{node}') has {what} dimension {i}; give a model "
                                     "with fixed input shapes (only the batch may be symbolic)")
            if d < 1:
                raise ConvschedError(f"tensor '{tensor}' (node '{node}') has dimension {i} of size {d}; "
                                     "sizes must be at least 1")
        return s


# ---------------------------------------------------------------- rules: node -> output shapes
Rule = Callable[[GraphShapes, Any, Attrs], list]


def _same(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    if s is None:
        raise _Unknown
    if node.op_type in ("Identity", "Cast") and _input(node, 0) in g.values:
        v = g.values[_input(node, 0)]
        to = a.int("to", 0) if node.op_type == "Cast" else 0
        if to in _INT_TYPES:
            v = [None if x is None else int(x) for x in v]
        g._set_value(node.output[0], v)
    return [s]


def _batch_first_same(g: GraphShapes, node, a: Attrs) -> list:
    s = g._batch_first(_input(node, 0))
    if s is None:
        raise _Unknown
    return [s]


def _elementwise(g: GraphShapes, node, a: Attrs) -> list:
    shapes = [g.get(n) for n in node.input if n]
    if not shapes or any(s is None for s in shapes):
        raise _Unknown
    out = _broadcast(shapes)
    fold = _BINARY_VALUES.get(node.op_type)
    if fold and len(node.input) == 2 and all(n in g.values for n in node.input) and len(out) <= 1:
        x, y = g.values[node.input[0]], g.values[node.input[1]]
        n = max(len(x), len(y))
        if len(x) in (1, n) and len(y) in (1, n):
            vals = []
            for i in range(n):
                xi, yi = x[i if len(x) > 1 else 0], y[i if len(y) > 1 else 0]
                try:
                    vals.append(None if xi is None or yi is None else fold(xi, yi))
                except ArithmeticError:
                    vals.append(None)
            g._set_value(node.output[0], vals)
    return [out]


def _conv(g: GraphShapes, node, a: Attrs) -> list:
    x_idx, w_idx = (0, 3) if node.op_type == "QLinearConv" else (0, 1)
    w = g.get(_input(node, w_idx))
    if w is None or len(w) < 3 or not all(_known(d) for d in w):
        raise _Unknown
    nsp = len(w) - 2
    x = g._batch_first(_input(node, x_idx))
    if x is None or len(x) != len(w):
        x = [g.batch] + [None] * (len(w) - 1)
    p = window_attrs(a, nsp, w[2:])
    out: Shape = [x[0], w[0]]
    for j in range(nsp):
        i = x[2 + j]
        out.append(window_axis(a.where, "", i, p.kernel[j], p.strides[j], p.dilations[j], p.pads[j],
                               p.pads[nsp + j], p.auto_pad)[0] if _known(i) and i > 0 else None)
    return [out]


def _pool(g: GraphShapes, node, a: Attrs) -> list:
    x = g._batch_first(_input(node, 0))
    if x is None or len(x) < 3:
        raise _Unknown
    nsp = len(x) - 2
    p = window_attrs(a, nsp, None)
    out: Shape = x[:2]
    for j in range(nsp):
        i = x[2 + j]
        out.append(window_axis(a.where, "", i, p.kernel[j], p.strides[j], p.dilations[j], p.pads[j],
                               p.pads[nsp + j], p.auto_pad, p.ceil_mode)[0] if _known(i) and i > 0 else None)
    return [out, out]  # MaxPool's optional Indices have the output's shape


def _global_pool(g: GraphShapes, node, a: Attrs) -> list:
    x = g._batch_first(_input(node, 0))
    if x is None or len(x) < 3:
        raise _Unknown
    return [x[:2] + [1] * (len(x) - 2)]


def _gemm(g: GraphShapes, node, a: Attrs) -> list:
    A, B = g.get(_input(node, 0)), g.get(_input(node, 1))
    if A is None or B is None or len(A) != 2 or len(B) != 2:
        raise _Unknown
    m = A[1] if a.int("transA", 0) else A[0]
    n = B[0] if a.int("transB", 0) else B[1]
    return [[m, n]]


def _matmul(g: GraphShapes, node, a: Attrs) -> list:
    b_idx = 3 if node.op_type == "QLinearMatMul" else 1
    A, B = g.get(_input(node, 0)), g.get(_input(node, b_idx))
    if not A or not B:
        raise _Unknown
    a2 = [1] + A if len(A) == 1 else A
    b2 = B + [1] if len(B) == 1 else B
    batch = _broadcast([a2[:-2], b2[:-2]]) if len(a2) > 2 or len(b2) > 2 else []
    out = batch + [a2[-2], b2[-1]]
    if len(A) == 1:
        out.pop(-2)
    if len(B) == 1:
        out.pop(-1)
    return [out]


def _flatten(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    if s is None:
        raise _Unknown
    axis = a.int("axis", 1)
    axis = axis + len(s) if axis < 0 else axis
    if not 0 <= axis <= len(s):
        raise _Unknown
    return [[_prod(s[:axis]), _prod(s[axis:])]]


def _reshape(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    # a target assembled from Shape may have unknown entries: those sizes stay unknown
    target = g._value(_input(node, 1)) if len(node.input) > 1 else a.ints("shape", None)
    if target is None or not all(t is None or isinstance(t, int) for t in target):
        raise _Unknown
    allowzero = a.int("allowzero", 0)
    out: Shape = []
    free = [j for j, t in enumerate(target) if t == -1]
    if len(free) > 1 or any(t is not None and t < -1 for t in target):
        raise _Unknown
    for j, t in enumerate(target):
        if t is None:
            out.append(None)
        elif t == 0 and not allowzero:  # copies the input's size
            if s is not None and j >= len(s):
                raise _Unknown
            out.append(None if s is None else s[j])
        else:
            out.append(t)
    if free:
        total = None if s is None else _prod(s)
        rest = _prod(d for j, d in enumerate(out) if j != free[0])
        if total is None or not rest:
            out[free[0]] = None
        elif total % rest:
            raise _Unknown
        else:
            out[free[0]] = total // rest
    total, total_out = (None if s is None else _prod(s)), _prod(out)
    if total is not None and total_out is not None and total != total_out:  # not a reshape of this tensor
        raise _Unknown
    if _input(node, 0) in g.values and len(out) <= 1:
        g._set_value(node.output[0], g.values[_input(node, 0)])
    return [out]


def _transpose(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    if s is None:
        raise _Unknown
    perm = a.ints("perm", list(range(len(s)))[::-1])
    if sorted(perm) != list(range(len(s))):
        raise _Unknown
    return [[s[p] for p in perm]]


def _concat(g: GraphShapes, node, a: Attrs) -> list:
    shapes = [g.get(n) for n in node.input if n]
    if not shapes or any(s is None for s in shapes) or len({len(s) for s in shapes}) != 1:
        raise _Unknown
    rank = len(shapes[0])
    axis = _axis(a.int("axis", 0), rank)
    out: Shape = []
    for j in range(rank):
        col = [s[j] for s in shapes]
        if j == axis:
            out.append(sum(col) if all(_known(d) for d in col) else None)
        else:
            out.append(next((d for d in col if _known(d)), col[0]))
    if rank == 1 and all(n in g.values for n in node.input if n):
        g._set_value(node.output[0], [v for n in node.input if n for v in g.values[n]])
    return [out]


def _split(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    if s is None:
        raise _Unknown
    axis = _axis(a.int("axis", 0), len(s))
    n_out = len(node.output)
    if _input(node, 1):
        sizes: list[int] | None = g._ints(_input(node, 1))
    else:
        sizes = a.ints("split", None)
    d = s[axis]
    if sizes is None:
        if not _known(d):
            raise _Unknown
        parts = a.int("num_outputs", n_out)
        if parts < 1:
            raise _Unknown
        if a.int("num_outputs", 0):  # opset 18: equal parts, the last one smaller
            step = ceil_div(d, parts)
            sizes = [min(step, max(0, d - step * i)) for i in range(parts)]
        elif d % parts:
            raise _Unknown
        else:
            sizes = [d // parts] * parts
    if len(sizes) != n_out or any(v < 0 for v in sizes) or (_known(d) and sum(sizes) != d):
        raise _Unknown
    return [s[:axis] + [v] + s[axis + 1:] for v in sizes]


def _slice_len(dim: int, start: int, end: int, step: int) -> range:
    if step == 0:
        raise _Unknown
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return range(start, end, step)


def _slice(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    if s is None:
        raise _Unknown
    if len(node.input) >= 3:  # opset 10+: starts, ends, axes, steps are inputs
        starts, ends = g._value(_input(node, 1)), g._value(_input(node, 2))
        axes = g._ints(_input(node, 3)) if _input(node, 3) else list(range(len(starts)))
        steps = g._value(_input(node, 4)) if _input(node, 4) else [1] * len(starts)
    else:
        starts, ends = a.ints("starts", None), a.ints("ends", None)
        if starts is None or ends is None:
            raise _Unknown
        axes = a.ints("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise _Unknown
    out = list(s)
    picked: range | None = None
    for start, end, axis, step in zip(starts, ends, axes, steps):
        j = _axis(axis, len(s))
        if not _known(s[j]) or not all(isinstance(v, int) for v in (start, end, step)):
            out[j] = None
            continue
        picked = _slice_len(s[j], start, end, step)
        out[j] = len(picked)
    if len(s) == 1 and picked is not None and _input(node, 0) in g.values:
        v = g.values[_input(node, 0)]
        g._set_value(node.output[0], [v[i] for i in picked])
    return [out]


def _pad(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    if s is None:
        raise _Unknown
    pads = g._ints(_input(node, 1)) if _input(node, 1) else a.ints("pads", None)
    axes = g._ints(_input(node, 3)) if _input(node, 3) else list(range(len(s)))
    if pads is None or len(pads) != 2 * len(axes):
        raise _Unknown
    out = list(s)
    for k, axis in enumerate(axes):
        j = _axis(axis, len(s))
        d = s[j]
        out[j] = d + pads[k] + pads[len(axes) + k] if _known(d) else None
        if out[j] is not None and out[j] < 0:
            raise _Unknown
    return [out]


def _resize(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    if s is None:
        raise _Unknown
    if node.op_type == "Upsample" or len(node.input) == 2:  # Upsample; Resize of opset 10: (X, scales)
        scales_name, sizes_name = _input(node, 1), ""
    else:
        scales_name, sizes_name = _input(node, 2), _input(node, 3)
    if a.string("coordinate_transformation_mode", "") == "tf_crop_and_resize":
        raise _Unknown
    if a.string("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise _Unknown
    axes = a.ints("axes", list(range(len(s))))
    axes = [_axis(x, len(s)) for x in axes]
    out = list(s)
    sizes = g.values.get(sizes_name) if sizes_name else None
    scales = g.values.get(scales_name) if scales_name else a.floats("scales")
    if sizes:  # an empty tensor means "not given"
        if len(sizes) != len(axes):
            raise _Unknown
        for j, v in zip(axes, sizes):
            out[j] = v if isinstance(v, int) and v >= 0 else None
    elif scales:
        if len(scales) != len(axes):
            raise _Unknown
        for j, v in zip(axes, scales):
            out[j] = math.floor(s[j] * v) if _known(s[j]) and v is not None and v > 0 else None
    else:
        raise _Unknown
    return [out]


def _axes(g: GraphShapes, node, a: Attrs) -> list[int] | None:
    return g._ints(_input(node, 1)) if _input(node, 1) else a.ints("axes", None)


def _squeeze(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    if s is None:
        raise _Unknown
    axes = _axes(g, node, a)
    if axes is None:
        if not all(_known(d) for d in s):
            raise _Unknown
        drop = {j for j, d in enumerate(s) if d == 1}
    else:
        drop = {_axis(x, len(s)) for x in axes}
    out = [d for j, d in enumerate(s) if j not in drop]
    if _input(node, 0) in g.values and len(out) <= 1:
        g._set_value(node.output[0], g.values[_input(node, 0)])
    return [out]


def _unsqueeze(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    axes = _axes(g, node, a)
    if s is None or axes is None:
        raise _Unknown
    rank = len(s) + len(axes)
    new = {_axis(x, rank) for x in axes}
    if len(new) != len(axes):  # a repeated axis
        raise _Unknown
    rest = iter(s)
    out = [1 if j in new else next(rest) for j in range(rank)]
    if _input(node, 0) in g.values and len(out) <= 1:
        g._set_value(node.output[0], g.values[_input(node, 0)])
    return [out]


def _reduce(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    if s is None:
        raise _Unknown
    axes = _axes(g, node, a) if node.op_type not in ("ArgMax", "ArgMin") else [a.int("axis", 0)]
    keep = a.int("keepdims", 1)
    if not axes:
        if a.int("noop_with_empty_axes", 0):
            return [s]
        axes = list(range(len(s)))
    drop = {_axis(x, len(s)) for x in axes}
    return [[1 if j in drop else d for j, d in enumerate(s)] if keep else
            [d for j, d in enumerate(s) if j not in drop]]


def _shape(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    if s is None:
        raise _Unknown
    start, end = a.int("start", 0), a.int("end", len(s))
    dims = s[slice(start, end)]
    g._set_value(node.output[0], [d if _known(d) else None for d in dims])
    return [[len(dims)]]


def _size(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    if s is not None:
        g._set_value(node.output[0], [_prod(s)])
    return [[]]


def _gather(g: GraphShapes, node, a: Attrs) -> list:
    s, q = g.get(_input(node, 0)), g.get(_input(node, 1))
    if s is None or q is None:
        raise _Unknown
    axis = _axis(a.int("axis", 0), len(s))
    data, idx = g.values.get(_input(node, 0)), g.values.get(_input(node, 1))
    if len(s) == 1 and data is not None and idx is not None and len(q) <= 1:
        picked = [data[i] if isinstance(i, int) and -len(data) <= i < len(data) else None for i in idx]
        g._set_value(node.output[0], picked)
    return [s[:axis] + q + s[axis + 1:]]


def _constant_of_shape(g: GraphShapes, node, a: Attrs) -> list:
    shape = g._ints(_input(node, 0))
    if any(d < 0 for d in shape):
        raise _Unknown
    return [list(shape)]


def _expand(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    target = g._ints(_input(node, 1))
    if s is None or any(d < 0 for d in target):
        raise _Unknown
    return [_broadcast([s, list(target)])]


def _tile(g: GraphShapes, node, a: Attrs) -> list:
    s = g.get(_input(node, 0))
    reps = g._value(_input(node, 1))
    if s is None or len(reps) != len(s) or any(isinstance(r, int) and r < 0 for r in reps):
        raise _Unknown
    return [[d * r if _known(d) and isinstance(r, int) else None for d, r in zip(s, reps)]]


_SAME = ("Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Celu", "Gelu",
         "Mish", "Softplus", "Softsign", "ThresholdedRelu", "Shrink", "Clip", "Exp", "Log", "Neg", "Abs", "Sqrt",
         "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Erf", "Sin", "Cos", "Not", "IsNaN", "IsInf",
         "Identity", "Cast", "CastLike", "Dropout", "LayerNormalization", "MeanVarianceNormalization", "Softmax",
         "LogSoftmax", "Hardmax", "QuantizeLinear", "DequantizeLinear", "CumSum", "Trilu")
_BATCH_FIRST_SAME = ("BatchNormalization", "InstanceNormalization", "LRN", "GroupNormalization")
_ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu", "Where", "Equal",
                "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Mod", "BitShift")

_RULES: dict[str, Rule] = {
    **{op: _same for op in _SAME},
    **{op: _batch_first_same for op in _BATCH_FIRST_SAME},
    **{op: _elementwise for op in _ELEMENTWISE},
    **{op: _conv for op in ("Conv", "ConvInteger", "QLinearConv")},
    **{op: _pool for op in ("MaxPool", "AveragePool", "LpPool")},
    **{op: _global_pool for op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")},
    **{op: _reduce for op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                              "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax",
                              "ArgMin")},
    "Gemm": _gemm, "MatMul": _matmul, "MatMulInteger": _matmul, "QLinearMatMul": _matmul,
    "Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose, "Concat": _concat, "Split": _split,
    "Slice": _slice, "Pad": _pad, "Resize": _resize, "Upsample": _resize, "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze, "Shape": _shape, "Size": _size, "Gather": _gather,
    "ConstantOfShape": _constant_of_shape, "Expand": _expand, "Tile": _tile,
}
