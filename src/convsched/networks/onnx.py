"""Import the conv and FC layers of an ONNX model (needs the optional `onnx` package).

The model is read without its external weight files (only shapes are needed)
and run through `onnx.shape_inference`; every compute node then becomes one
`NetLayer`, in graph order, named after the node (``<OpType>_<index>`` when
the node has no name; the index counts all nodes of the main graph):

* ``Conv``, ``QLinearConv``, ``ConvInteger`` -> ``kind="conv"`` with groups,
  strides, dilations, ``pads`` and ``auto_pad`` (``NOTSET``, ``VALID``,
  ``SAME_UPPER``, ``SAME_LOWER``). The input size is always given
  (``IY``/``IX``) and the top/left padding becomes ``PY``/``PX``; a
  bottom/right padding is then implied by the input and output sizes. A 1-D
  convolution is a 2-D one of height 1. Quantized convolutions record the
  bit widths of their input and weight element types.
* ``Gemm`` (with ``transA``/``transB``), and ``MatMul`` / ``MatMulInteger`` /
  ``QLinearMatMul`` whose second input is a constant 2-D weight (an
  initializer or a ``Constant`` node) -> ``kind="fc"``, a 1x1 convolution.
  A ``MatMul`` over ``[batch, tokens..., features]`` keeps all its rows: the
  batch (first dimension) becomes ``N``, the product of the token dimensions
  becomes ``OY``, and ``OX = 1``. A 2-D ``[rows, features]`` operand has
  ``N = rows`` and ``OY = 1``.
* Every other node is skipped and counted per op type in `Network.skipped`.

A symbolic first dimension of a graph input is the batch and takes the value
given to `load_onnx`; any other unknown dimension a layer needs is an error.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from ..errors import ConvschedError
from ..layer import Layer
from . import NetLayer, Network

_CONV_OPS = ("Conv", "QLinearConv", "ConvInteger")
_FC_OPS = ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul")
_STD_DOMAINS = ("", "ai.onnx", "com.microsoft")

# TensorProto element type -> bits (only integer types are taken as quantized word sizes)
_INT_BITS = {2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 12: 32, 7: 64, 13: 64, 21: 4, 22: 4}  # UINT8 INT8 UINT16 INT16 INT32 UINT32 INT64 UINT64 UINT4 INT4


def _import_onnx():
    try:
        import onnx  # noqa: F401
        import onnx.shape_inference  # noqa: F401
    except ImportError:
        raise ConvschedError("reading .onnx models needs the onnx package: pip install 'convsched[onnx]'") from None
    return onnx


def _read_model(onnx, path: Path):
    from google.protobuf.message import DecodeError

    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConvschedError(f"cannot read {path}: {e.strerror or e}") from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        if data[:1] == b"\x08" and len(data) > 1:  # starts like a model (ir_version field)
            raise ConvschedError(f"{path}: truncated or corrupt ONNX file (protobuf parse failed)") from None
        raise ConvschedError(f"{path}: not an ONNX file") from None
    if model.ir_version == 0 or not model.HasField("graph"):
        raise ConvschedError(f"{path}: not an ONNX file (no IR version or graph)")
    return model


def _check_versions(onnx, model, path: Path) -> None:
    if model.ir_version > onnx.IR_VERSION:
        raise ConvschedError(f"{path}: ONNX IR version {model.ir_version} is newer than the installed onnx "
                             f"package reads ({onnx.IR_VERSION}, onnx {onnx.__version__}); upgrade: pip install -U onnx")
    top = onnx.defs.onnx_opset_version()
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx") and op.version > top:
            raise ConvschedError(f"{path}: the model uses opset {op.version} of ai.onnx, but the installed onnx "
                                 f"package ({onnx.__version__}) reads up to opset {top}; upgrade: pip install -U onnx")


def _fix_batch(model, batch: int) -> str | None:
    """Give every symbolic first dimension of a graph input the batch; returns the batch's param name."""
    inits = {t.name for t in model.graph.initializer}
    params: set[str] = set()
    for vi in model.graph.input:
        if vi.name in inits or not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            if dims[0].dim_param:
                params.add(dims[0].dim_param)
            dims[0].dim_value = batch
    if params:  # the same symbol elsewhere (outputs, value_info) is the same batch
        for vi in list(model.graph.output) + list(model.graph.value_info) + list(model.graph.input):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
                for d in vi.type.tensor_type.shape.dim:
                    if d.HasField("dim_param") and d.dim_param in params:
                        d.dim_value = batch
    return ", ".join(sorted(params)) or None


def _missing_external(model, folder: Path) -> list[str]:
    missing: set[str] = set()
    for t in model.graph.initializer:
        if t.data_location == 1:  # TensorProto.EXTERNAL
            loc = next((e.value for e in t.external_data if e.key == "location"), None)
            if loc is None or not (folder / loc).is_file():
                missing.add(loc or "(no location)")
    return sorted(missing)


class _Shapes:
    """Element types and shapes of every tensor the graph knows after inference."""

    def __init__(self, graph) -> None:
        self.types: dict[str, int] = {}
        self.shapes: dict[str, list[Any] | None] = {}
        self.consts: set[str] = set()
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
            self.types[t.name] = t.data_type
            self.shapes[t.name] = list(t.dims)
            self.consts.add(t.name)
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                for a in node.attribute:
                    if a.name == "value" and a.HasField("t"):
                        self.shapes[node.output[0]] = list(a.t.dims)
                        self.types[node.output[0]] = a.t.data_type
                        self.consts.add(node.output[0])

    def shape(self, tensor: str, node: str, rank: int | tuple[int, ...] | None = None) -> list[int]:
        s = self.shapes.get(tensor)
        if s is None:
            raise ConvschedError(f"tensor '{tensor}' (input of node '{node}') has no known shape; "
                                 "give a model with fixed input shapes")
        for i, d in enumerate(s):
            if not isinstance(d, int) or d < 1:
                what = f"'{d}'" if isinstance(d, str) else "unknown"
                raise ConvschedError(f"tensor '{tensor}' (node '{node}') has an {what} dimension {i}; only the "
                                     "batch (first dimension of a graph input) may be symbolic")
        if rank is not None:
            ranks = (rank,) if isinstance(rank, int) else rank
            if len(s) not in ranks:
                raise ConvschedError(f"tensor '{tensor}' of node '{node}' has rank {len(s)}, expected "
                                     f"{' or '.join(map(str, ranks))}")
        return list(s)


def _attrs(onnx, node) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _bits(shapes: _Shapes, tensor: str) -> int | None:
    return _INT_BITS.get(shapes.types.get(tensor, 0))


def _conv_axis(name: str, axis: str, i: int, f: int, s: int, d: int, pb: int, pe: int, auto: str) -> tuple[int, int]:
    """(output size, top/left pad) of one spatial axis per ONNX Conv semantics."""
    span = (f - 1) * d + 1
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        o = -(-i // s)
        total = max(0, (o - 1) * s + span - i)
        pb = total // 2 if auto == "SAME_UPPER" else total - total // 2
        return o, pb
    if auto == "VALID":
        pb = pe = 0
    elif auto not in ("NOTSET", ""):
        raise ConvschedError(f"node '{name}': unknown auto_pad {auto!r}")
    if i + pb + pe < span:
        raise ConvschedError(f"node '{name}': the {axis} filter span {span} is larger than the padded input {i + pb + pe}")
    return (i + pb + pe - span) // s + 1, pb


def _conv_layer(onnx, node, name: str, shapes: _Shapes) -> NetLayer:
    op = node.op_type
    x_idx, w_idx = (0, 3) if op == "QLinearConv" else (0, 1)
    if len(node.input) <= w_idx:
        raise ConvschedError(f"node '{name}' ({op}) has too few inputs")
    x = shapes.shape(node.input[x_idx], name)
    w = shapes.shape(node.input[w_idx], name)
    if len(x) != len(w) or len(x) not in (3, 4):
        if len(x) == len(w) and len(x) > 4:
            raise ConvschedError(f"node '{name}' ({op}): {len(x) - 2}-D convolutions are not supported (only 1-D and 2-D)")
        raise ConvschedError(f"node '{name}' ({op}): input rank {len(x)} and weight rank {len(w)} do not make a 1-D or 2-D convolution")
    a = _attrs(onnx, node)
    nsp = len(x) - 2
    group = int(a.get("group", 1))
    ks = list(a.get("kernel_shape", w[2:]))
    strides = list(a.get("strides", [1] * nsp))
    dil = list(a.get("dilations", [1] * nsp))
    pads = list(a.get("pads", [0] * (2 * nsp)))
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if ks != w[2:] or len(strides) != nsp or len(dil) != nsp or len(pads) != 2 * nsp:
        raise ConvschedError(f"node '{name}' ({op}): kernel_shape/strides/dilations/pads do not match the weight {w}")
    if any(p < 0 for p in pads):
        raise ConvschedError(f"node '{name}' ({op}): negative pads {pads} are not supported")
    N, C = x[0], x[1]
    K = w[0]
    if group < 1 or C != w[1] * group:
        raise ConvschedError(f"node '{name}' ({op}): input channels {C} != weight channels {w[1]} x group {group}")
    f: dict[str, int] = {"N": N, "G": group, "K": K, "C": C}
    axes = ["Y", "X"] if nsp == 2 else ["X"]
    if nsp == 1:
        f.update(OY=1, FY=1, SY=1, DY=1, PY=0, IY=1)
    for j, axis in enumerate(axes):
        o, pb = _conv_axis(name, axis, x[2 + j], ks[j], strides[j], dil[j], pads[j], pads[nsp + j], auto)
        f.update({f"O{axis}": o, f"F{axis}": ks[j], f"S{axis}": strides[j], f"D{axis}": dil[j],
                  f"P{axis}": pb, f"I{axis}": x[2 + j]})
    y = shapes.shapes.get(node.output[0]) if node.output else None
    if y and len(y) == len(x):
        want = [N, K] + ([f["OY"], f["OX"]] if nsp == 2 else [f["OX"]])
        if any(isinstance(a_, int) and a_ > 0 and a_ != b_ for a_, b_ in zip(y, want)):
            raise ConvschedError(f"node '{name}' ({op}): output shape {y} differs from the computed {want}")
    try:
        layer = Layer(**f)
    except ConvschedError as e:
        raise ConvschedError(f"node '{name}' ({op}): {e}") from None
    if op == "Conv":
        return NetLayer(name, "conv", layer)
    return NetLayer(name, "conv", layer, _bits(shapes, node.input[x_idx]), _bits(shapes, node.input[w_idx]))


def _fc_layer(onnx, node, name: str, shapes: _Shapes) -> NetLayer | str:
    """An FC NetLayer, or a reason string when the node is not an FC layer (then it is skipped)."""
    op = node.op_type
    a_idx, b_idx = (0, 3) if op == "QLinearMatMul" else (0, 1)
    if len(node.input) <= b_idx:
        raise ConvschedError(f"node '{name}' ({op}) has too few inputs")
    A, B = node.input[a_idx], node.input[b_idx]
    if op == "Gemm":
        at = _attrs(onnx, node)
        a = shapes.shape(A, name, 2)
        b = shapes.shape(B, name, 2)
        rows, cin = (a[1], a[0]) if at.get("transA", 0) else (a[0], a[1])
        cin_b, cout = (b[1], b[0]) if at.get("transB", 0) else (b[0], b[1])
        if cin != cin_b:
            raise ConvschedError(f"node '{name}' (Gemm): inner dimensions {cin} and {cin_b} differ")
        f = {"N": rows, "K": cout, "C": cin, "OY": 1, "OX": 1}
    else:
        if B not in shapes.consts:
            return f"node '{name}' ({op}) skipped: its second input '{B}' is not a constant weight"
        b = shapes.shape(B, name)
        if len(b) != 2:
            return f"node '{name}' ({op}) skipped: its constant weight '{B}' has rank {len(b)}, not 2"
        a = shapes.shape(A, name)
        if not a:
            raise ConvschedError(f"tensor '{A}' of node '{name}' is a scalar")
        if a[-1] != b[0]:
            raise ConvschedError(f"node '{name}' ({op}): inner dimensions {a[-1]} and {b[0]} differ")
        n = a[0] if len(a) >= 2 else 1
        tokens = math.prod(a[1:-1]) if len(a) >= 3 else 1
        f = {"N": n, "K": b[1], "C": b[0], "OY": tokens, "OX": 1}
    try:
        layer = Layer(**f)
    except ConvschedError as e:
        raise ConvschedError(f"node '{name}' ({op}): {e}") from None
    if op in ("Gemm", "MatMul"):
        return NetLayer(name, "fc", layer)
    return NetLayer(name, "fc", layer, _bits(shapes, A), _bits(shapes, B))


def load_onnx(path: str | os.PathLike, batch: int = 1) -> Network:
    """The conv and FC layers of the ONNX model at `path` (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise ConvschedError(f"file {path} does not exist")
    if not path.is_file():
        raise ConvschedError(f"{path} is not a file")
    onnx = _import_onnx()
    model = _read_model(onnx, path)
    _check_versions(onnx, model, path)
    notes: list[str] = []
    missing = _missing_external(model, path.parent)
    if missing:
        notes.append(f"external weight file(s) not found: {', '.join(missing)} (only shapes are needed)")
    batch_param = _fix_batch(model, batch)
    if batch_param is None and batch != 1:
        notes.append(f"the model has a fixed batch; --batch {batch} is ignored")
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as e:  # onnx raises several types (InferenceError, ValidationError, RuntimeError)
        msg = " ".join(str(e).split())
        raise ConvschedError(f"{path}: ONNX shape inference failed: {msg[:300]}") from None
    graph = inferred.graph
    shapes = _Shapes(graph)
    layers: list[NetLayer] = []
    skipped: dict[str, int] = {}
    used: set[str] = set()
    for idx, node in enumerate(graph.node):
        op = node.op_type
        std = node.domain in _STD_DOMAINS
        key = op if node.domain in ("", "ai.onnx") else f"{node.domain}.{op}"
        name = node.name or f"{op}_{idx}"
        if name in used:
            name = f"{name}_{idx}"
        nl: NetLayer | str | None = None
        if std and op in _CONV_OPS:
            nl = _conv_layer(onnx, node, name, shapes)
        elif std and op in _FC_OPS:
            nl = _fc_layer(onnx, node, name, shapes)
        if isinstance(nl, NetLayer):
            used.add(name)
            layers.append(nl)
            continue
        if isinstance(nl, str):
            notes.append(nl)
        skipped[key] = skipped.get(key, 0) + 1
    if not layers:
        ops = ", ".join(f"{k} x{v}" for k, v in sorted(skipped.items())) or "no nodes"
        raise ConvschedError(f"{path}: the graph has no conv or FC layer (ops: {ops})")
    return Network(path.stem, tuple(layers), dict(sorted(skipped.items())), tuple(notes))
