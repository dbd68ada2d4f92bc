"""Import the conv and FC layers of an ONNX model (needs the optional `onnx` package).

The model is read without its external weight files (only shapes are needed)
and run through `onnx.shape_inference`; where inference loses a dimension,
convsched propagates the shapes itself (`networks/onnx_shapes.py`: through
Slice, Split, Concat, Reshape/Transpose, Pad, pooling, Resize, elementwise
ops, normalizations, activations, and from the weights). Every compute node of
the main graph then becomes one `NetLayer`, in graph order, named after the
node (``<OpType>_<index>`` when the node has no name; the index counts all
nodes of the main graph):

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
  A conv or FC node inside a subgraph (the branches of ``If``, the body of
  ``Loop`` or ``Scan``) is not imported either: it is counted as
  ``"<op> in <parent op>"`` and named in a note.

The batch: a symbolic first dimension of a graph input takes the value given
to `load_onnx`. A convolution's input is ``N x C x ...`` by definition, so
when shapes are lost its dimension 0 is the batch (the model's: the first
dimension of its first input) and its channels follow from the weights; any
other dimension a layer needs must be known, or it is an error.

A malformed model is a one-line `ConvschedError`, never a traceback: wrong
attribute types, a stride, dilation or kernel below 1, negative pads, an
``auto_pad`` that is not UTF-8 or not one of the four values, ranks that do
not make a convolution, groups that do not divide the channels, and a weight
(initializer or ``Constant``) that declares more elements than the data the
file holds for it -- checked before anything is sized from it, so a few bytes
declaring a billion channels cannot make the optimizer allocate gigabytes.
Weights in external files are only checked when the file is present (its size
must cover them); a missing file is a note, as only shapes are needed.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from ..core.arch import bits_to_bytes
from ..core.errors import ConvschedError
from ..core.layer import Layer
from .network import NetLayer, Network
from .onnx_shapes import Attrs, GraphShapes, window_attrs, window_axis

_CONV_OPS = ("Conv", "QLinearConv", "ConvInteger")
_FC_OPS = ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul")
_STD_DOMAINS = ("", "ai.onnx", "com.microsoft")
_EXTERNAL = 1  # TensorProto.EXTERNAL
_GRAPH, _GRAPHS = 5, 10  # AttributeProto.GRAPH, GRAPHS

# TensorProto element type -> bits (only integer types are taken as quantized word sizes)
_INT_BITS = {2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 12: 32, 7: 64, 13: 64, 21: 4, 22: 4}  # UINT8 INT8 UINT16 INT16 INT32 UINT32 INT64 UINT64 UINT4 INT4

# TensorProto element type -> bits per element as stored (for checking a weight's data against its shape)
_ELEMENT_BITS = {1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64, 14: 64,
                 15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2}
_MIN_BITS = 2  # the densest packing of any element type: the most elements a byte can hold is 8 // 2


def _import_onnx():
    # onnx (and protobuf, which it brings) is optional: imported only when an .onnx model is read
    try:
        import onnx  # noqa: F401
        import onnx.shape_inference  # noqa: F401
    except ImportError:
        raise ConvschedError("reading .onnx models needs the onnx package: pip install 'convsched[onnx]'") from None
    return onnx


def _read_model(onnx, path: Path):
    from google.protobuf.message import DecodeError     # protobuf comes with the optional onnx

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
    _check_text(model, path)
    return model


# characters that would break a message or a table row: C0/C1 controls and Unicode line breaks
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _check_text(model, path: Path) -> None:
    """Every string in the model is UTF-8 text (protobuf hands back bytes where it is not), and every
    name in the graph is free of control characters (doc strings and metadata are free text)."""
    from google.protobuf.descriptor import FieldDescriptor     # protobuf comes with the optional onnx

    stack = [(model, False)]
    while stack:
        message, in_graph = stack.pop()
        for field, value in message.ListFields():
            if field.type == FieldDescriptor.TYPE_STRING:
                for text in [value] if isinstance(value, (str, bytes)) else value:
                    if not isinstance(text, str):
                        raise ConvschedError(f"{path}: the {field.name} {bytes(text)[:40]!r} is not UTF-8 text; "
                                             "the file is corrupt")
                    if in_graph and field.name != "doc_string" and _CONTROL.search(text):
                        raise ConvschedError(f"{path}: the {field.name} {text[:40]!r} holds a control character; "
                                             "the file is corrupt")
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                names = (in_graph or field.name == "graph") and field.name != "metadata_props"
                stack.extend((m, names) for m in ([value] if hasattr(value, "ListFields") else value))


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


def _model_batch(model, batch: int) -> int:
    """The model's batch: the first dimension of its first activation input (after `_fix_batch`)."""
    inits = {t.name for t in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits or not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            return dims[0].dim_value
    return batch


# ---------------------------------------------------------------- weights: declared sizes against data
def _external_file(t, folder: Path) -> tuple[str, int | None]:
    """(location, size of the external file in bytes or None when it is not there)."""
    loc = next((e.value for e in t.external_data if e.key == "location"), None)
    if not loc:
        return "(no location)", None
    try:
        p = folder / loc
        return loc, (p.stat().st_size if p.is_file() else None)
    except (OSError, ValueError):  # too long, a NUL byte, unreadable: not there for us
        return loc, None


def _external_int(t, key: str, where: str) -> int:
    text = next((e.value for e in t.external_data if e.key == key), "0")
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ConvschedError(f"{where}: external_data {key} {text[:40]!r} is not a byte count")
    return value


def _stored_elements(t) -> int:
    """How many elements the data stored in the tensor itself holds (onnx.proto's storage rules; an
    unknown element type counts as the densest, so it is never refused for want of data it has)."""
    bits = _ELEMENT_BITS.get(t.data_type, _MIN_BITS)
    raw = len(t.raw_data)
    if raw:
        return raw * 8 // bits
    entries = (len(t.float_data) + len(t.int32_data) + len(t.int64_data) + len(t.double_data)
               + len(t.uint64_data) + len(t.string_data))
    if t.data_type in (14, 15):  # COMPLEX64/128: real and imaginary parts are two entries
        return entries // 2
    return entries * (8 // bits if bits < 8 else 1)  # 4- and 2-bit types pack 2 or 4 into one int32 entry


def _weight_tensors(graph):
    for t in graph.initializer:
        yield t
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for a in node.attribute:
                if a.name == "value" and a.HasField("t"):
                    yield a.t


def _count_text(n: int) -> str:
    """A count with thousands separators; past 30 digits only its size (Python will not print 4,300)."""
    return f"{n:,}" if n < 10**30 else f"more than 2^{n.bit_length() - 1}"


def _dims_text(dims: list[int]) -> str:
    return str(dims) if len(dims) <= 8 else f"[{', '.join(map(str, dims[:8]))}, ...] ({len(dims)} dimensions)"


def _check_weights(graph, folder: Path, path: Path) -> list[str]:
    """Refuse weights whose declared size the file does not back; returns missing external files."""
    missing: set[str] = set()
    for t in _weight_tensors(graph):
        where = f"{path}: weight '{t.name}'"
        dims = list(t.dims)
        if any(d < 0 for d in dims):
            raise ConvschedError(f"{where} declares a negative dimension in {_dims_text(dims)}")
        count = math.prod(dims)
        if count == 0:
            continue
        nbytes = bits_to_bytes(count * _ELEMENT_BITS.get(t.data_type, _MIN_BITS))
        if t.data_location == _EXTERNAL:
            loc, size = _external_file(t, folder)
            if size is None:
                missing.add(loc)
                continue
            offset = _external_int(t, "offset", where)
            if offset + nbytes > size:
                raise ConvschedError(f"{where} declares {_count_text(count)} elements {_dims_text(dims)} "
                                     f"({_count_text(nbytes)} bytes) but its external file {loc} holds "
                                     f"{max(0, size - offset):,} bytes from offset {offset:,}; the weights file "
                                     "does not belong to this model")
            continue
        held = _stored_elements(t)
        if count > held:
            raise ConvschedError(f"{where} declares {_count_text(count)} elements {_dims_text(dims)} but the "
                                 f"file holds data for {held:,}; the model is truncated or was saved without "
                                 "its weights")
    return sorted(missing)


# ---------------------------------------------------------------- subgraphs
def _subgraph_layers(graph, names: list[str]) -> list[tuple[str, str, str, str]]:
    """(node name, op, parent node name, parent op) of every conv/FC node inside a subgraph."""
    found = []
    stack = []
    for node, name in zip(graph.node, names):
        stack.append((node, name))
    while stack:
        parent, parent_name = stack.pop()
        for a in parent.attribute:
            subs = [a.g] if a.type == _GRAPH or a.HasField("g") else list(a.graphs)
            for sub in subs:
                for i, node in enumerate(sub.node):
                    name = node.name or f"{node.op_type}_{i}"
                    if node.domain in _STD_DOMAINS and node.op_type in _CONV_OPS + _FC_OPS:
                        found.append((name, node.op_type, parent_name, parent.op_type))
                    stack.append((node, name))
    return sorted(found, key=lambda f: (names.index(f[2]) if f[2] in names else len(names), f[0]))


# ---------------------------------------------------------------- layers
def _bits(shapes: GraphShapes, tensor: str) -> int | None:
    return _INT_BITS.get(shapes.types.get(tensor, 0))


def _conv_layer(node, name: str, shapes: GraphShapes) -> NetLayer:
    op = node.op_type
    where = f"node '{name}' ({op})"
    x_idx, w_idx = (0, 3) if op == "QLinearConv" else (0, 1)
    if len(node.input) <= w_idx or not node.input[x_idx] or not node.input[w_idx]:
        raise ConvschedError(f"{where} has too few inputs (needs the input and the weight)")
    w = shapes.dims(node.input[w_idx], name)
    if len(w) > 4:
        raise ConvschedError(f"{where}: {len(w) - 2}-D convolutions are not supported (only 1-D and 2-D)")
    if len(w) < 3:
        raise ConvschedError(f"{where}: weight rank {len(w)} does not make a 1-D or 2-D convolution "
                             "(the weight is K x C/group x kernel)")
    a = Attrs(node, where)
    group = a.int("group", 1)
    if group < 1:
        raise ConvschedError(f"{where}: group {group} must be at least 1")
    nsp = len(w) - 2
    win = window_attrs(a, nsp, w[2:])
    # N x C x spatial by the definition of Conv: lost batch and channels come from the batch and the weights
    x = shapes.dims(node.input[x_idx], name, len(w), fill={0: shapes.batch, 1: w[1] * group})
    N, C, K = x[0], x[1], w[0]
    if C != w[1] * group:
        raise ConvschedError(f"{where}: input channels {C} != weight channels {w[1]} x group {group}")
    f: dict[str, int] = {"N": N, "G": group, "K": K, "C": C}
    axes = ["Y", "X"] if nsp == 2 else ["X"]
    if nsp == 1:
        f.update(OY=1, FY=1, SY=1, DY=1, PY=0, IY=1)
    for j, axis in enumerate(axes):
        o, pb = window_axis(where, axis, x[2 + j], win.kernel[j], win.strides[j], win.dilations[j], win.pads[j],
                            win.pads[nsp + j], win.auto_pad)
        f.update({f"O{axis}": o, f"F{axis}": win.kernel[j], f"S{axis}": win.strides[j],
                  f"D{axis}": win.dilations[j], f"P{axis}": pb, f"I{axis}": x[2 + j]})
    y = shapes.get(node.output[0]) if node.output else None
    if y and len(y) == len(x):
        want = [N, K] + ([f["OY"], f["OX"]] if nsp == 2 else [f["OX"]])
        if any(isinstance(a_, int) and a_ > 0 and a_ != b_ for a_, b_ in zip(y, want)):
            raise ConvschedError(f"{where}: output shape {y} differs from the computed {want}")
    try:
        layer = Layer(**f)
    except ConvschedError as e:
        raise ConvschedError(f"{where}: {e}") from None
    if op == "Conv":
        return NetLayer(name, "conv", layer)
    return NetLayer(name, "conv", layer, _bits(shapes, node.input[x_idx]), _bits(shapes, node.input[w_idx]))


def _fc_layer(node, name: str, shapes: GraphShapes) -> NetLayer | str:
    """An FC NetLayer, or a reason string when the node is not an FC layer (then it is skipped)."""
    op = node.op_type
    where = f"node '{name}' ({op})"
    a_idx, b_idx = (0, 3) if op == "QLinearMatMul" else (0, 1)
    if len(node.input) <= b_idx or not node.input[a_idx] or not node.input[b_idx]:
        raise ConvschedError(f"{where} has too few inputs (needs two operands)")
    A, B = node.input[a_idx], node.input[b_idx]
    if op == "Gemm":
        at = Attrs(node, where)
        trans_a, trans_b = at.int("transA", 0), at.int("transB", 0)
        b = shapes.dims(B, name, 2)
        cin_b, cout = (b[1], b[0]) if trans_b else (b[0], b[1])
        a = shapes.dims(A, name, 2, fill={0 if trans_a else 1: cin_b})  # the inner size from the weights
        rows, cin = (a[1], a[0]) if trans_a else (a[0], a[1])
        if cin != cin_b:
            raise ConvschedError(f"{where}: inner dimensions {cin} and {cin_b} differ")
        f = {"N": rows, "K": cout, "C": cin, "OY": 1, "OX": 1}
    else:
        if B not in shapes.consts:
            return f"node '{name}' ({op}) skipped: its second input '{B}' is not a constant weight"
        b = shapes.dims(B, name)
        if len(b) != 2:
            return f"node '{name}' ({op}) skipped: its constant weight '{B}' has rank {len(b)}, not 2"
        rank = len(shapes.get(A) or [])
        a = shapes.dims(A, name, fill={rank - 1: b[0]} if rank else None)
        if not a:
            raise ConvschedError(f"tensor '{A}' of node '{name}' is a scalar")
        if a[-1] != b[0]:
            raise ConvschedError(f"{where}: inner dimensions {a[-1]} and {b[0]} differ")
        n = a[0] if len(a) >= 2 else 1
        tokens = math.prod(a[1:-1]) if len(a) >= 3 else 1
        f = {"N": n, "K": b[1], "C": b[0], "OY": tokens, "OX": 1}
    try:
        layer = Layer(**f)
    except ConvschedError as e:
        raise ConvschedError(f"{where}: {e}") from None
    if op in ("Gemm", "MatMul"):
        return NetLayer(name, "fc", layer)
    return NetLayer(name, "fc", layer, _bits(shapes, A), _bits(shapes, B))


def _node_names(graph) -> list[str]:
    """Each node's name, or ``<OpType>_<index>``; a repeated name gets ``_<index>`` appended."""
    names: list[str] = []
    used: set[str] = set()
    for idx, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{idx}"
        if name in used:
            name = f"{name}_{idx}"
        used.add(name)
        names.append(name)
    return names


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
    missing = _check_weights(model.graph, path.parent, path)
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
    shapes = GraphShapes(graph, _model_batch(model, batch))
    names = _node_names(graph)
    layers: list[NetLayer] = []
    skipped: dict[str, int] = {}
    for node, name in zip(graph.node, names):
        op = node.op_type
        std = node.domain in _STD_DOMAINS
        key = op if node.domain in ("", "ai.onnx") else f"{node.domain}.{op}"
        nl: NetLayer | str | None = None
        if std and op in _CONV_OPS:
            nl = _conv_layer(node, name, shapes)
        elif std and op in _FC_OPS:
            nl = _fc_layer(node, name, shapes)
        if isinstance(nl, NetLayer):
            layers.append(nl)
            continue
        if isinstance(nl, str):
            notes.append(nl)
        skipped[key] = skipped.get(key, 0) + 1
    nested = _subgraph_layers(graph, names)
    for _, op, _, parent_op in nested:
        key = f"{op} in {parent_op}"
        skipped[key] = skipped.get(key, 0) + 1
    if nested:
        shown = ", ".join(f"'{n}' ({op}) in '{p}'" for n, op, p, _ in nested[:5])
        more = f" and {len(nested) - 5} more" if len(nested) > 5 else ""
        notes.append(f"{len(nested)} conv/FC node(s) inside If/Loop/Scan subgraphs not imported (only the main "
                     f"graph is): {shown}{more}")
    if not layers:
        ops = ", ".join(f"{k} x{v}" for k, v in sorted(skipped.items())) or "no nodes"
        raise ConvschedError(f"{path}: the graph has no conv or FC layer (ops: {ops})")
    return Network(path.stem, tuple(layers), dict(sorted(skipped.items())), tuple(notes))
