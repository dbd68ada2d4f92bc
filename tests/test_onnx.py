"""ONNX import: graphs built with onnx.helper, compared field by field with hand-derived layers."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from convsched.core.errors import ConvschedError
from convsched.core.layer import Layer
from convsched.networks import NetLayer, Network, builtin_names, load_target
from convsched.networks.onnx import load_onnx

F32 = TensorProto.FLOAT


# ---------------------------------------------------------------- helpers
def ext_weight(name: str, dims, dtype=F32, location: str = "weights.bin") -> TensorProto:
    """An initializer whose data lives in an external file (that we never write): shapes only."""
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", location
    return t


def small_weight(name: str, dims, dtype=F32) -> TensorProto:
    n = 1
    for d in dims:
        n *= d
    return helper.make_tensor(name, dtype, dims, [0] * n)


def vi(name: str, shape, dtype=F32):
    return helper.make_tensor_value_info(name, dtype, shape)


def save(tmp_path: Path, nodes, inputs, outputs, inits=(), name="m.onnx", opset=17) -> Path:
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    p = tmp_path / name
    p.write_bytes(m.SerializeToString())
    return p


def conv_model(tmp_path, x_shape, w_shape, name="c", **attrs) -> Path:
    node = helper.make_node("Conv", ["x", "w"], ["y"], name=name, **attrs)
    return save(tmp_path, [node], [vi("x", x_shape)], [vi("y", None)], [small_weight("w", w_shape)])


def one(path: Path, batch: int = 1) -> NetLayer:
    net = load_onnx(path, batch)
    assert len(net.layers) == 1
    return net.layers[0]


def bottom_pad(o: int, f: int, s: int, d: int, p: int, i: int) -> int:
    """The end padding that makes ONNX produce `o` outputs for a Layer axis."""
    reach = (o - 1) * s + (f - 1) * d + 1 - p
    return max(0, reach - i)


def export_network(net: Network, path: Path) -> Path:
    """Write every layer of `net` as an independent ONNX node (Conv, Gemm or MatMul); weights external."""
    nodes, inputs, outputs, inits = [], [], [], []
    for i, nl in enumerate(net.layers):
        L = nl.layer
        x, w, y = f"x{i}", f"w{i}", f"y{i}"
        if nl.kind == "conv":
            inputs.append(vi(x, [L.N, L.C, L.IY, L.IX]))
            inits.append(ext_weight(w, [L.K, L.C // L.G, L.FY, L.FX]))
            pads = [L.PY, L.PX, bottom_pad(L.OY, L.FY, L.SY, L.DY, L.PY, L.IY),
                    bottom_pad(L.OX, L.FX, L.SX, L.DX, L.PX, L.IX)]
            nodes.append(helper.make_node("Conv", [x, w], [y], name=nl.name, group=L.G, strides=[L.SY, L.SX],
                                          dilations=[L.DY, L.DX], pads=pads, kernel_shape=[L.FY, L.FX]))
        elif L.OY == 1:
            inputs.append(vi(x, [L.N, L.C]))
            inits.append(ext_weight(w, [L.K, L.C]))
            nodes.append(helper.make_node("Gemm", [x, w], [y], name=nl.name, transB=1))
        else:
            inputs.append(vi(x, [L.N, L.OY, L.C]))
            inits.append(ext_weight(w, [L.C, L.K]))
            nodes.append(helper.make_node("MatMul", [x, w], [y], name=nl.name))
        outputs.append(vi(y, None))
    g = helper.make_graph(nodes, net.name, inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(m.SerializeToString())
    return path


# ---------------------------------------------------------------- Conv
def test_strided_symmetric_padding(tmp_path):
    nl = one(conv_model(tmp_path, [1, 3, 224, 224], [64, 3, 7, 7], name="conv1", strides=[2, 2], pads=[3, 3, 3, 3]))
    assert nl.name == "conv1" and nl.kind == "conv"
    assert nl.layer == Layer(K=64, C=3, OY=112, OX=112, FY=7, FX=7, SY=2, SX=2, PY=3, PX=3, IY=224, IX=224)
    assert nl.input_bits is None and nl.weight_bits is None
    assert nl.layer.macs == 64 * 3 * 49 * 112 * 112


def test_asymmetric_padding(tmp_path):
    nl = one(conv_model(tmp_path, [1, 4, 10, 12], [8, 4, 3, 3], pads=[1, 2, 0, 1]))
    # OY = 10+1+0-3+1 = 9, OX = 12+2+1-3+1 = 13; top/left pad kept, bottom/right implied by IY/IX
    assert nl.layer == Layer(K=8, C=4, OY=9, OX=13, FY=3, FX=3, PY=1, PX=2, IY=10, IX=12)


def test_dilated(tmp_path):
    nl = one(conv_model(tmp_path, [1, 8, 32, 32], [16, 8, 3, 3], dilations=[2, 2], pads=[2, 2, 2, 2]))
    assert nl.layer == Layer(K=16, C=8, OY=32, OX=32, FY=3, FX=3, DY=2, DX=2, PY=2, PX=2)


def test_grouped(tmp_path):
    nl = one(conv_model(tmp_path, [1, 16, 14, 14], [32, 4, 3, 3], group=4, pads=[1, 1, 1, 1]))
    assert nl.layer == Layer(K=32, C=16, G=4, OY=14, OX=14, FY=3, FX=3, PY=1, PX=1)
    assert nl.layer.macs == 32 * 4 * 9 * 14 * 14


def test_depthwise_strided(tmp_path):
    nl = one(conv_model(tmp_path, [1, 32, 28, 28], [32, 1, 3, 3], group=32, strides=[2, 2], pads=[1, 1, 1, 1]))
    assert nl.layer == Layer(K=32, C=32, G=32, OY=14, OX=14, FY=3, FX=3, SY=2, SX=2, PY=1, PX=1, IY=28, IX=28)
    assert nl.layer.is_depthwise


@pytest.mark.parametrize("auto_pad, o, p", [
    ("SAME_UPPER", 4, 1),   # total pad (4-1)*2+4-7 = 3: 1 before, 2 after
    ("SAME_LOWER", 4, 2),   # 2 before, 1 after
    ("VALID", 2, 0),        # (7-4)//2+1
    ("NOTSET", 2, 0),       # no pads given
])
def test_auto_pad(tmp_path, auto_pad, o, p):
    nl = one(conv_model(tmp_path, [1, 3, 7, 7], [4, 3, 4, 4], strides=[2, 2], auto_pad=auto_pad))
    assert nl.layer == Layer(K=4, C=3, OY=o, OX=o, FY=4, FX=4, SY=2, SX=2, PY=p, PX=p, IY=7, IX=7)


def test_conv_1d_is_height_one(tmp_path):
    nl = one(conv_model(tmp_path, [2, 6, 50], [12, 6, 5], strides=[2], pads=[2, 2]))
    assert nl.layer == Layer(N=2, K=12, C=6, OY=1, OX=25, FY=1, FX=5, SX=2, PX=2, IY=1, IX=50)


def test_begin_padding_too_large(tmp_path):
    p = conv_model(tmp_path, [1, 1, 4, 4], [1, 1, 1, 1], name="big", strides=[10, 10], pads=[6, 0, 0, 0])
    with pytest.raises(ConvschedError, match="node 'big'.*padding"):
        load_onnx(p)


def test_unnamed_nodes_get_stable_names(tmp_path):
    n0 = helper.make_node("Relu", ["x"], ["r"])
    n1 = helper.make_node("Conv", ["r", "w"], ["y"])
    p = save(tmp_path, [n0, n1], [vi("x", [1, 2, 5, 5])], [vi("y", None)], [small_weight("w", [3, 2, 1, 1])])
    net = load_onnx(p)
    assert [nl.name for nl in net.layers] == ["Conv_1"]
    assert load_onnx(p).layers == net.layers


# ---------------------------------------------------------------- FC
@pytest.mark.parametrize("trans_a, trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_gemm_transposes(tmp_path, trans_a, trans_b):
    a = [256, 4] if trans_a else [4, 256]
    b = [10, 256] if trans_b else [256, 10]
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], name="fc", transA=trans_a, transB=trans_b)
    p = save(tmp_path, [node], [vi("a", a)], [vi("y", None)], [small_weight("b", b), small_weight("c", [10])])
    nl = one(p)
    assert nl.kind == "fc" and nl.name == "fc"
    assert nl.layer == Layer(N=4, K=10, C=256, OY=1, OX=1)


def test_matmul_constant_weight(tmp_path):
    node = helper.make_node("MatMul", ["a", "w"], ["y"], name="proj")
    p = save(tmp_path, [node], [vi("a", [3, 64])], [vi("y", None)], [small_weight("w", [64, 32])])
    nl = one(p)
    assert nl.kind == "fc" and nl.layer == Layer(N=3, K=32, C=64, OY=1, OX=1)


def test_matmul_with_tokens_keeps_all_rows(tmp_path):
    node = helper.make_node("MatMul", ["a", "w"], ["y"], name="mlp")
    p = save(tmp_path, [node], [vi("a", [2, 5, 7, 64])], [vi("y", None)], [small_weight("w", [64, 128])])
    nl = one(p)
    assert nl.layer == Layer(N=2, K=128, C=64, OY=35, OX=1)
    assert nl.layer.macs == 2 * 5 * 7 * 64 * 128


def test_matmul_with_constant_node_weight(tmp_path):
    const = helper.make_node("Constant", [], ["w"], value=small_weight("wv", [8, 4]))
    node = helper.make_node("MatMul", ["a", "w"], ["y"], name="mm")
    p = save(tmp_path, [const, node], [vi("a", [1, 8])], [vi("y", None)])
    net = load_onnx(p)
    assert [nl.layer for nl in net.layers] == [Layer(K=4, C=8, OY=1, OX=1)]
    assert net.skipped == {"Constant": 1}


def test_matmul_between_activations_is_skipped(tmp_path):
    mm = helper.make_node("MatMul", ["a", "b"], ["ab"], name="attn")
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="c")
    p = save(tmp_path, [mm, conv], [vi("a", [4, 8]), vi("b", [8, 4]), vi("x", [1, 1, 3, 3])],
             [vi("ab", None), vi("y", None)], [small_weight("w", [1, 1, 1, 1])])
    net = load_onnx(p)
    assert [nl.name for nl in net.layers] == ["c"]
    assert net.skipped == {"MatMul": 1}
    assert any("attn" in n and "not a constant" in n for n in net.notes)


# ---------------------------------------------------------------- quantized
def test_qlinearconv_records_bits(tmp_path):
    u8, i8 = TensorProto.UINT8, TensorProto.INT8
    inits = [small_weight("w", [4, 3, 3, 3], i8), helper.make_tensor("xs", F32, [], [0.1]),
             helper.make_tensor("xz", u8, [], [0]), helper.make_tensor("ws", F32, [], [0.1]),
             helper.make_tensor("wz", i8, [], [0]), helper.make_tensor("ys", F32, [], [0.1]),
             helper.make_tensor("yz", u8, [], [0])]
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], name="q",
                            pads=[1, 1, 1, 1])
    p = save(tmp_path, [node], [vi("x", [1, 3, 8, 8], u8)], [vi("y", None, u8)], inits)
    nl = one(p)
    assert nl.layer == Layer(K=4, C=3, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1)
    assert (nl.input_bits, nl.weight_bits) == (8, 8)


def test_convinteger_records_bits(tmp_path):
    u8 = TensorProto.UINT8
    node = helper.make_node("ConvInteger", ["x", "w"], ["y"], name="ci", strides=[2, 2])
    p = save(tmp_path, [node], [vi("x", [1, 2, 9, 9], u8)], [vi("y", None, TensorProto.INT32)],
             [small_weight("w", [6, 2, 3, 3], u8)])
    nl = one(p)
    assert nl.layer == Layer(K=6, C=2, OY=4, OX=4, FY=3, FX=3, SY=2, SX=2, IY=9, IX=9)
    assert (nl.input_bits, nl.weight_bits) == (8, 8)


# ---------------------------------------------------------------- batch, skipped ops, totals
def test_dynamic_batch_filled(tmp_path):
    conv = helper.make_node("Conv", ["x", "w"], ["h"], name="c", pads=[1, 1, 1, 1])
    flat = helper.make_node("Flatten", ["h"], ["f"])
    fc = helper.make_node("Gemm", ["f", "fw"], ["y"], name="fc", transB=1)
    p = save(tmp_path, [conv, flat, fc], [vi("x", ["batch", 3, 4, 4])], [vi("y", ["batch", 10])],
             [small_weight("w", [8, 3, 3, 3]), small_weight("fw", [10, 128])])
    net = load_onnx(p, batch=4)
    assert [nl.layer for nl in net.layers] == [Layer(N=4, K=8, C=3, OY=4, OX=4, FY=3, FX=3, PY=1, PX=1),
                                               Layer(N=4, K=10, C=128, OY=1, OX=1)]
    assert load_target(str(p)).layers[0].layer.N == 1


def test_unknown_non_batch_dimension(tmp_path):
    p = conv_model(tmp_path, [1, 3, "H", "W"], [4, 3, 3, 3])
    with pytest.raises(ConvschedError, match="tensor 'x'.*'H'"):
        load_onnx(p)


def test_unsupported_ops_are_counted_and_macs_hand_count(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="conv_a", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("MaxPool", ["b"], ["c"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["c", "w2"], ["d"], name="conv_b", group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["d"], ["e"]),
        helper.make_node("GlobalAveragePool", ["e"], ["g"]),
        helper.make_node("Flatten", ["g"], ["h"]),
        helper.make_node("Gemm", ["h", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    inits = [small_weight("w1", [8, 3, 3, 3]), small_weight("w2", [8, 1, 3, 3]), small_weight("fw", [5, 8]),
             small_weight("fb", [5])]
    p = save(tmp_path, nodes, [vi("x", [1, 3, 32, 32])], [vi("y", None)], inits)
    net = load_onnx(p)
    assert [nl.name for nl in net.layers] == ["conv_a", "conv_b", "fc"]
    assert [nl.kind for nl in net.layers] == ["conv", "conv", "fc"]
    assert net.layers[0].layer == Layer(K=8, C=3, OY=16, OX=16, FY=3, FX=3, SY=2, SX=2, PY=1, PX=1, IY=32, IX=32)
    assert net.layers[1].layer == Layer(K=8, C=8, G=8, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1)
    assert net.layers[2].layer == Layer(K=5, C=8, OY=1, OX=1)
    assert net.skipped == {"Flatten": 1, "GlobalAveragePool": 1, "MaxPool": 1, "Relu": 2}
    # by hand: 8*3*9*16*16 + 8*1*9*8*8 + 5*8
    assert net.macs == 55296 + 4608 + 40


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", builtin_names())
def test_builtin_networks_round_trip(tmp_path, name):
    net = load_target(name)
    back = load_onnx(export_network(net, tmp_path / f"{name}.onnx"))
    assert [(nl.name, nl.kind) for nl in back.layers] == [(nl.name, nl.kind) for nl in net.layers]
    assert [nl.layer for nl in back.layers] == [nl.layer for nl in net.layers]
    assert back.macs == net.macs
    assert back.skipped == {}
    assert any("weights.bin" in n for n in back.notes)  # external weights are never written


def test_round_trip_with_batch(tmp_path):
    net = load_target("resnet18", batch=3)
    back = load_onnx(export_network(net, tmp_path / "r.onnx"))
    assert [nl.layer for nl in back.layers] == [nl.layer for nl in net.layers]


@st.composite
def layers(draw):
    def axis():
        f = draw(st.integers(1, 5))
        s = draw(st.integers(1, 3))
        d = draw(st.integers(1, 3))
        p = draw(st.integers(0, (f - 1) * d))
        o = draw(st.integers(1, 6))
        reach = (o - 1) * s + (f - 1) * d + 1 - p
        if reach < 1:
            p = (o - 1) * s + (f - 1) * d
            reach = 1
        i = draw(st.integers(max(1, reach - (f - 1) * d), reach + s - 1))
        return f, s, d, p, o, i
    fy, sy, dy, py, oy, iy = axis()
    fx, sx, dx, px, ox, ix = axis()
    g = draw(st.integers(1, 3))
    return Layer(N=draw(st.integers(1, 2)), G=g, K=g * draw(st.integers(1, 3)), C=g * draw(st.integers(1, 3)),
                 OY=oy, OX=ox, FY=fy, FX=fx, SY=sy, SX=sx, DY=dy, DX=dx, PY=py, PX=px, IY=iy, IX=ix)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(L=layers())
def test_random_conv_round_trip(tmp_path, L):
    net = Network("r", (NetLayer("c", "conv", L),))
    back = load_onnx(export_network(net, tmp_path / "r.onnx"))
    assert back.layers[0].layer == L


# ---------------------------------------------------------------- errors
def test_missing_file(tmp_path):
    with pytest.raises(ConvschedError, match="does not exist"):
        load_target(str(tmp_path / "nope.onnx"))


def test_not_onnx(tmp_path):
    p = tmp_path / "text.onnx"
    p.write_text("hello, this is not a model\n")
    with pytest.raises(ConvschedError, match="not an ONNX"):
        load_target(str(p))
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ConvschedError, match="not an ONNX"):
        load_target(str(tmp_path / "empty.onnx"))


def test_truncated(tmp_path):
    p = conv_model(tmp_path, [1, 3, 8, 8], [4, 3, 3, 3])
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConvschedError, match="truncated"):
        load_target(str(p))


def test_opset_too_new(tmp_path):
    node = helper.make_node("Conv", ["x", "w"], ["y"])
    p = save(tmp_path, [node], [vi("x", [1, 1, 3, 3])], [vi("y", None)], [small_weight("w", [1, 1, 1, 1])],
             opset=999)
    with pytest.raises(ConvschedError, match="opset 999"):
        load_target(str(p))


def test_no_layers(tmp_path):
    p = save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [vi("x", [1, 4])], [vi("y", None)])
    with pytest.raises(ConvschedError, match="no conv or FC layer.*Relu"):
        load_target(str(p))


def test_onnx_package_missing(tmp_path, monkeypatch):
    p = conv_model(tmp_path, [1, 3, 8, 8], [4, 3, 3, 3])
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ConvschedError, match=r"pip install 'convsched\[onnx\]'"):
        load_target(str(p))


def test_external_weights_present_gives_no_note(tmp_path):
    net = Network("n", (NetLayer("c", "conv", Layer(K=2, C=2, OY=3, OX=3)),))
    p = export_network(net, tmp_path / "n.onnx")
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    assert load_onnx(p).notes == ()


# ---------------------------------------------------------------- ShuffleNet V2: dimensions lost after split/shuffle
def i64(name: str, values) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_v", TensorProto.INT64,
                                                                             [len(values)], values))


def channel_split(x: str, channels: int, prefix: str, style: str) -> tuple[list, str, str]:
    """x.chunk(2, dim=1) as exporters write it; returns (nodes, first half, second half)."""
    a, b = f"{prefix}/x1", f"{prefix}/x2"
    if style == "slice":  # torch.onnx's prim::ConstantChunk: the split point computed from Shape at run time
        nodes = [helper.make_node("Shape", [x], [f"{prefix}/sh"]), i64(f"{prefix}/ax", [1]),
                 helper.make_node("Gather", [f"{prefix}/sh", f"{prefix}/ax"], [f"{prefix}/c"], axis=0),
                 i64(f"{prefix}/one", [1]), i64(f"{prefix}/two", [2]), i64(f"{prefix}/zero", [0]),
                 helper.make_node("Add", [f"{prefix}/c", f"{prefix}/one"], [f"{prefix}/c1"]),
                 helper.make_node("Div", [f"{prefix}/c1", f"{prefix}/two"], [f"{prefix}/half"]),
                 helper.make_node("Mul", [f"{prefix}/half", f"{prefix}/one"], [f"{prefix}/e1"]),
                 helper.make_node("Mul", [f"{prefix}/half", f"{prefix}/two"], [f"{prefix}/e2"]),
                 helper.make_node("Slice", [x, f"{prefix}/zero", f"{prefix}/e1", f"{prefix}/ax"], [a],
                                  name=f"{prefix}/Slice"),
                 helper.make_node("Slice", [x, f"{prefix}/e1", f"{prefix}/e2", f"{prefix}/ax"], [b],
                                  name=f"{prefix}/Slice_1")]
    elif style == "split13":  # Split with a split-sizes input
        nodes = [i64(f"{prefix}/sizes", [channels // 2, channels // 2]),
                 helper.make_node("Split", [x, f"{prefix}/sizes"], [a, b], axis=1, name=f"{prefix}/Split")]
    else:  # opset 18: num_outputs
        nodes = [helper.make_node("Split", [x], [a, b], axis=1, num_outputs=2, name=f"{prefix}/Split")]
    return nodes, a, b


def channel_shuffle(x: str, prefix: str, out: str) -> list:
    """view(b, 2, c/2, h, w) / transpose(1, 2) / view(b, -1, h, w), every size taken from Shape at run time."""
    nodes = [helper.make_node("Shape", [x], [f"{prefix}/s"]), i64(f"{prefix}/groups", [2]), i64(f"{prefix}/m1", [-1])]
    for k in range(4):
        nodes += [i64(f"{prefix}/i{k}", [k]),
                  helper.make_node("Gather", [f"{prefix}/s", f"{prefix}/i{k}"], [f"{prefix}/d{k}"], axis=0)]
    nodes += [helper.make_node("Div", [f"{prefix}/d1", f"{prefix}/groups"], [f"{prefix}/cpg"]),
              helper.make_node("Concat", [f"{prefix}/d0", f"{prefix}/groups", f"{prefix}/cpg", f"{prefix}/d2",
                                          f"{prefix}/d3"], [f"{prefix}/shape5"], axis=0),
              helper.make_node("Reshape", [x, f"{prefix}/shape5"], [f"{prefix}/r5"]),
              helper.make_node("Transpose", [f"{prefix}/r5"], [f"{prefix}/t5"], perm=[0, 2, 1, 3, 4]),
              helper.make_node("Concat", [f"{prefix}/d0", f"{prefix}/m1", f"{prefix}/d2", f"{prefix}/d3"],
                               [f"{prefix}/shape4"], axis=0),
              helper.make_node("Reshape", [f"{prefix}/t5", f"{prefix}/shape4"], [out])]
    return nodes


def shufflenet_v2_mini(tmp_path: Path, style: str) -> Path:
    """ShuffleNet V2's structure in miniature (stem, a stride-2 unit, a stride-1 unit, conv5, mean, fc), as
    exported with a dynamic batch: 32x32 input, 24 -> 48 channels."""
    nodes, inits = [], []

    def conv(name, x, y, k, c, f=1, s=1, p=0, g=1, relu=True):
        inits.append(small_weight(f"{name}.weight", [k, c // g, f, f]))
        out = y + "_pre" if relu else y
        nodes.append(helper.make_node("Conv", [x, f"{name}.weight"], [out], name=f"/{name}/Conv", group=g,
                                      strides=[s, s], pads=[p] * 4, kernel_shape=[f, f]))
        if relu:
            nodes.append(helper.make_node("Relu", [out], [y]))

    conv("conv1", "x", "c1", 24, 3, f=3, s=2, p=1)
    nodes.append(helper.make_node("MaxPool", ["c1"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4))
    # stage2.0: stride 2, both branches read the whole input
    conv("stage2.0.branch1.0", "mp", "b1a", 24, 24, f=3, s=2, p=1, g=24, relu=False)
    conv("stage2.0.branch1.2", "b1a", "b1", 24, 24)
    conv("stage2.0.branch2.0", "mp", "b2a", 24, 24)
    conv("stage2.0.branch2.3", "b2a", "b2b", 24, 24, f=3, s=2, p=1, g=24, relu=False)
    conv("stage2.0.branch2.5", "b2b", "b2", 24, 24)
    nodes.append(helper.make_node("Concat", ["b1", "b2"], ["cat0"], axis=1))
    nodes += channel_shuffle("cat0", "/stage2/stage2.0", "u0")
    # stage2.1: stride 1, the channel split
    split_nodes, x1, x2 = channel_split("u0", 48, "/stage2/stage2.1", style)
    nodes += split_nodes
    conv("stage2.1.branch2.0", x2, "s1a", 24, 24)
    conv("stage2.1.branch2.3", "s1a", "s1b", 24, 24, f=3, p=1, g=24, relu=False)
    conv("stage2.1.branch2.5", "s1b", "s1", 24, 24)
    nodes.append(helper.make_node("Concat", [x1, "s1"], ["cat1"], axis=1))
    nodes += channel_shuffle("cat1", "/stage2/stage2.1", "u1")
    conv("conv5", "u1", "c5", 64, 48)
    nodes.append(helper.make_node("ReduceMean", ["c5"], ["mean"], axes=[2, 3], keepdims=0))
    inits.append(small_weight("fc.weight", [10, 64]))
    nodes.append(helper.make_node("Gemm", ["mean", "fc.weight"], ["y"], name="/fc/Gemm", transB=1))
    opset = 18 if style == "split18" else 17
    return save(tmp_path, nodes, [vi("x", ["batch_size", 3, 32, 32])], [vi("y", ["batch_size", 10])], inits,
                name=f"shufflenet_{style}.onnx", opset=opset)


def shufflenet_v2_mini_layers(n: int) -> list[tuple[str, Layer]]:
    """Derived by hand: 32 -> conv1 (s2) 16 -> maxpool (s2) 8 -> stage2.0 (s2) 4."""
    dw = dict(G=24, K=24, C=24, FY=3, FX=3, PY=1, PX=1)
    return [
        ("/conv1/Conv", Layer(N=n, K=24, C=3, OY=16, OX=16, FY=3, FX=3, SY=2, SX=2, PY=1, PX=1, IY=32, IX=32)),
        ("/stage2.0.branch1.0/Conv", Layer(N=n, OY=4, OX=4, SY=2, SX=2, IY=8, IX=8, **dw)),
        ("/stage2.0.branch1.2/Conv", Layer(N=n, K=24, C=24, OY=4, OX=4)),
        ("/stage2.0.branch2.0/Conv", Layer(N=n, K=24, C=24, OY=8, OX=8)),
        ("/stage2.0.branch2.3/Conv", Layer(N=n, OY=4, OX=4, SY=2, SX=2, IY=8, IX=8, **dw)),
        ("/stage2.0.branch2.5/Conv", Layer(N=n, K=24, C=24, OY=4, OX=4)),
        ("/stage2.1.branch2.0/Conv", Layer(N=n, K=24, C=24, OY=4, OX=4)),
        ("/stage2.1.branch2.3/Conv", Layer(N=n, OY=4, OX=4, **dw)),
        ("/stage2.1.branch2.5/Conv", Layer(N=n, K=24, C=24, OY=4, OX=4)),
        ("/conv5/Conv", Layer(N=n, K=64, C=48, OY=4, OX=4)),
        ("/fc/Gemm", Layer(N=n, K=10, C=64, OY=1, OX=1)),
    ]


@pytest.mark.parametrize("style", ["slice", "split13", "split18"])
@pytest.mark.parametrize("batch", [1, 4])
def test_shufflenet_v2_channel_split_and_shuffle(tmp_path, style, batch):
    net = load_onnx(shufflenet_v2_mini(tmp_path, style), batch)
    assert [(nl.name, nl.layer) for nl in net.layers] == shufflenet_v2_mini_layers(batch)
    assert [nl.kind for nl in net.layers] == ["conv"] * 10 + ["fc"]
    assert net.macs == sum(L.macs for _, L in shufflenet_v2_mini_layers(batch))
    assert net.skipped["Reshape"] == 4 and net.skipped["Transpose"] == 2


def test_shufflenet_slice_loses_the_batch_in_onnx_inference(tmp_path):
    """What made the import fail: onnx's inference names the split halves' dimensions anew."""
    p = shufflenet_v2_mini(tmp_path, "slice")
    m = onnx.load(str(p))
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    info = {v.name: v.type.tensor_type.shape.dim
            for v in onnx.shape_inference.infer_shapes(m, data_prop=True).graph.value_info}
    assert not info["/stage2/stage2.1/x2"][0].HasField("dim_value")
    assert load_onnx(p).layers[6].layer.N == 1


def test_lost_batch_of_a_conv_input_is_the_batch(tmp_path):
    """A Conv input whose dimension 0 nothing can tell (an unknown op before it) takes the batch."""
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"], name="c0"),
             helper.make_node("MysteryOp", ["a"], ["b"], domain="example.custom"),
             helper.make_node("Reshape", ["b", "shape"], ["r"]),  # [0, 4, 6, 6]: the size is all it gives
             helper.make_node("Conv", ["r", "w1"], ["y"], name="c1")]
    inits = [small_weight("w0", [4, 2, 1, 1]), small_weight("w1", [8, 4, 3, 3]),
             helper.make_tensor("shape", TensorProto.INT64, [4], [0, 4, 6, 6])]
    g = helper.make_graph(nodes, "g", [vi("x", ["n", 2, 6, 6])], [vi("y", None)], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("example.custom", 1)])
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    net = load_onnx(p, batch=5)
    assert net.layers[1].layer == Layer(N=5, K=8, C=4, OY=4, OX=4, FY=3, FX=3, IY=6, IX=6)


def test_still_refuses_an_unknown_spatial_size(tmp_path):
    nodes = [helper.make_node("MysteryOp", ["x"], ["a"], domain="example.custom"),
             helper.make_node("Conv", ["a", "w"], ["y"], name="c")]
    g = helper.make_graph(nodes, "g", [vi("x", [1, 2, 6, 6])], [vi("y", None)],
                          initializer=[small_weight("w", [4, 2, 1, 1])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("example.custom", 1)])
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    with pytest.raises(ConvschedError, match="tensor 'a' .*no known shape"):
        load_onnx(p)


# ---------------------------------------------------------------- malformed models: one line, never a traceback
def conv_with(tmp_path, attributes=(), x_shape=(1, 4, 8, 8), w_shape=(6, 4, 3, 3), inputs=("x", "w")) -> Path:
    """A Conv node with raw AttributeProtos (any type, any value)."""
    node = helper.make_node("Conv", list(inputs), ["y"], name="c")
    node.attribute.extend(attributes)
    return save(tmp_path, [node], [vi("x", list(x_shape))], [vi("y", None)], [small_weight("w", list(w_shape))])


def attr(name: str, value) -> onnx.AttributeProto:
    return helper.make_attribute(name, value)


@pytest.mark.parametrize("attributes, message", [
    ([attr("strides", [0, 0])], r"strides \[0, 0\] must all be at least 1"),
    ([attr("strides", [-1, 2])], r"strides \[-1, 2\] must all be at least 1"),
    ([attr("dilations", [1, 0])], r"dilations \[1, 0\] must all be at least 1"),
    ([attr("kernel_shape", [0, 3])], r"kernel_shape \[0, 3\] does not match the weight's spatial shape \[3, 3\]"),
    ([attr("pads", [1, -1, 1, 1])], r"negative pads \[1, -1, 1, 1\]"),
    ([attr("pads", [1, 1])], r"pads \[1, 1\] has 2 value\(s\); this 2-D window needs 4"),
    ([attr("strides", [1, 1, 1])], r"strides \[1, 1, 1\] has 3 value\(s\)"),
    ([attr("auto_pad", b"\xff\xfeSAME")], r"attribute 'auto_pad' is not UTF-8 text .*NOTSET, VALID, SAME_UPPER"),
    ([attr("auto_pad", "SAME")], r"unknown auto_pad 'SAME'; write one of NOTSET"),
    ([attr("group", "two")], r"attribute 'group' is a string, expected an integer"),
    ([attr("group", 0)], r"group 0 must be at least 1"),
    ([attr("group", -2)], r"group -2 must be at least 1"),
    ([attr("strides", 2)], r"attribute 'strides' is an integer, expected a list of integers"),
    ([attr("pads", [0.5, 0.5, 0.5, 0.5])], r"attribute 'pads' is a list of floats"),
])
def test_malformed_conv_attributes(tmp_path, attributes, message):
    with pytest.raises(ConvschedError, match=r"node 'c' \(Conv\): " + message):
        load_onnx(conv_with(tmp_path, attributes))


@pytest.mark.parametrize("x_shape, w_shape, group, message", [
    ([1, 6, 8, 8], [6, 4, 3, 3], 1, r"input channels 6 != weight channels 4 x group 1"),
    ([1, 6, 8, 8], [6, 1, 3, 3], 4, r"input channels 6 != weight channels 1 x group 4"),   # group not dividing C
    ([1, 4, 8, 8], [5, 2, 3, 3], 2, r"groups G=2 must divide both K=5 and C=4"),             # ... nor K
    ([1, 4, 8, 8], [6, 4], 1, r"weight rank 2 does not make a 1-D or 2-D convolution"),
    ([1, 4, 8, 8, 8], [6, 4, 3, 3, 3], 1, r"3-D convolutions are not supported"),
    ([4, 8, 8], [6, 4, 3, 3], 1, r"tensor 'x' of node 'c' has rank 3, expected 4"),
    ([1, 4, 8, 8], [6, 4, 0, 3], 1, r"tensor 'w' \(node 'c'\) has dimension 2 of size 0"),
    ([1, 4, 2, 8], [6, 4, 3, 3], 1, r"the Y window span 3 is larger than the padded input 2"),
])
def test_malformed_conv_shapes(tmp_path, x_shape, w_shape, group, message):
    with pytest.raises(ConvschedError, match=message):
        load_onnx(conv_with(tmp_path, [attr("group", group)], x_shape, w_shape))


def test_conv_without_weight(tmp_path):
    with pytest.raises(ConvschedError, match=r"node 'c' \(Conv\) has too few inputs"):
        load_onnx(conv_with(tmp_path, inputs=("x",)))


def test_empty_graph(tmp_path):
    p = save(tmp_path, [], [], [])
    with pytest.raises(ConvschedError, match=r"no conv or FC layer \(ops: no nodes\)"):
        load_onnx(p)


def test_names_that_are_not_utf8(tmp_path):
    p = conv_model(tmp_path, [1, 3, 8, 8], [4, 3, 3, 3], name="cname")
    p.write_bytes(p.read_bytes().replace(b"cname", b"c\xff\xfeme"))
    with pytest.raises(ConvschedError, match=r"the name b'c\\xff\\xfeme' is not UTF-8 text"):
        load_onnx(p)


@pytest.mark.parametrize("bad", ["c\nnam", "c\x1bnam", "c\u2028n"])  # as long as "cname"
def test_names_with_control_characters(tmp_path, bad):
    """A newline in a name would break the one-line error and the table row."""
    p = conv_model(tmp_path, [1, 3, 8, 8], [4, 3, 3, 3], name="cname")
    p.write_bytes(p.read_bytes().replace(b"cname", bad.encode()))
    with pytest.raises(ConvschedError, match=r"the name .* holds a control character"):
        load_onnx(p)


def test_doc_strings_may_hold_newlines(tmp_path):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", doc_string="line 1\nline 2")
    p = save(tmp_path, [node], [vi("x", [1, 3, 4, 4])], [vi("y", None)], [small_weight("w", [2, 3, 1, 1])])
    assert one(p).name == "c"


# ---------------------------------------------------------------- weights: declared sizes against the data present
def dataless(name: str, dims) -> TensorProto:
    """A weight that declares its dimensions and holds no data at all."""
    t = TensorProto()
    t.name, t.data_type = name, F32
    t.dims.extend(dims)
    return t


def huge_weight_model(tmp_path: Path, as_constant: bool = False) -> Path:
    w = dataless("w", [10**9, 3, 3, 3])
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[1, 1, 1, 1])]
    if as_constant:
        nodes.insert(0, helper.make_node("Constant", [], ["w"], value=w))
    return save(tmp_path, nodes, [vi("x", [1, 3, 8, 8])], [vi("y", None)], [] if as_constant else [w])


@pytest.mark.parametrize("as_constant", [False, True])
def test_weight_declaring_a_billion_channels_without_data_is_refused(tmp_path, as_constant):
    p = huge_weight_model(tmp_path, as_constant)
    assert p.stat().st_size < 200
    with pytest.raises(ConvschedError, match=r"weight 'w' declares 27,000,000,000 elements \[1000000000, 3, 3, 3\] "
                                             r"but the file holds data for 0"):
        load_onnx(p)


def test_weight_with_too_little_data_is_refused(tmp_path):
    w = helper.make_tensor("w", F32, [4, 3, 3, 3], [0.0] * 108)
    w.dims[0] = 400  # now declares 100 times the data it holds
    p = save(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"])], [vi("x", [1, 3, 8, 8])], [vi("y", None)], [w])
    with pytest.raises(ConvschedError, match=r"declares 10,800 elements .* holds data for 108"):
        load_onnx(p)


def test_weight_with_too_many_dimensions_to_count_is_one_short_line(tmp_path):
    """2^62 x ... (300 dimensions): too many digits for Python to print; the message gives the size."""
    w = dataless("w", [2**62] * 300)
    p = save(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"])], [vi("x", [1, 3, 8, 8])], [vi("y", None)], [w])
    with pytest.raises(ConvschedError, match=r"declares more than 2\^18600 elements \[4611686018427387904, .*\] "
                                             r"\(300 dimensions\) but the file holds data for 0") as e:
        load_onnx(p)
    assert len(str(e.value)) < 350 + len(str(p))


def test_weight_with_negative_dimension_is_refused(tmp_path):
    w = dataless("w", [4, -3, 3, 3])
    p = save(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"])], [vi("x", [1, 3, 8, 8])], [vi("y", None)], [w])
    with pytest.raises(ConvschedError, match=r"weight 'w' declares a negative dimension in \[4, -3, 3, 3\]"):
        load_onnx(p)


def test_external_weights_file_too_short_is_refused(tmp_path):
    net = Network("n", (NetLayer("c", "conv", Layer(K=2, C=2, OY=3, OX=3, FY=3, FX=3)),))
    p = export_network(net, tmp_path / "n.onnx")
    (tmp_path / "weights.bin").write_bytes(b"\0" * 10)  # 2*2*3*3 floats need 144 bytes
    with pytest.raises(ConvschedError, match=r"declares 36 elements .*\(144 bytes\) but its external file weights.bin "
                                             r"holds 10 bytes"):
        load_onnx(p)
    (tmp_path / "weights.bin").write_bytes(b"\0" * 144)
    assert load_onnx(p).notes == ()


def test_dataless_weight_via_cli_optimize_is_one_line(tmp_path):
    """Before: optimize sized its arrays from the declared 10^9 channels and asked for 7.45 GiB."""
    r = cli(tmp_path, "optimize", str(huge_weight_model(tmp_path)), "--buffer", "64KiB")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and "holds data for 0" in r.stderr


# ---------------------------------------------------------------- subgraphs
def test_conv_inside_if_and_loop_is_listed_as_skipped(tmp_path):
    def branch(tag: str, with_conv: bool):
        nodes = [helper.make_node("Conv", ["x", "w"], [f"{tag}_y"], name=f"{tag}_conv")] if with_conv else \
                [helper.make_node("Identity", ["x"], [f"{tag}_y"])]
        return helper.make_graph(nodes, tag, [], [vi(f"{tag}_y", None)])
    body = helper.make_graph([helper.make_node("Identity", ["cond_in"], ["cond_out"]),
                              helper.make_node("Gemm", ["m", "fw"], ["loop_y"], name="loop_fc", transB=1)], "body",
                             [vi("i", [], TensorProto.INT64), vi("cond_in", [], TensorProto.BOOL)],
                             [vi("cond_out", [], TensorProto.BOOL), vi("loop_y", None)])
    nodes = [helper.make_node("Conv", ["x", "w"], ["main"], name="main_conv"),
             helper.make_node("If", ["cond"], ["z"], then_branch=branch("then", True),
                              else_branch=branch("else", False)),
             helper.make_node("Loop", ["", "cond"], ["scan_out"], body=body)]
    inits = [small_weight("w", [4, 3, 1, 1]), helper.make_tensor("cond", TensorProto.BOOL, [], [True]),
             small_weight("fw", [2, 3]), small_weight("m", [1, 3])]
    p = save(tmp_path, nodes, [vi("x", [1, 3, 4, 4])], [vi("main", None), vi("z", None)], inits)
    net = load_onnx(p)
    assert [nl.name for nl in net.layers] == ["main_conv"]
    assert net.skipped == {"Conv in If": 1, "Gemm in Loop": 1, "If": 1, "Loop": 1}
    note = next(n for n in net.notes if "subgraph" in n)
    assert note.startswith("2 conv/FC node(s) inside If/Loop/Scan subgraphs not imported")
    assert "'then_conv' (Conv) in 'If_1'" in note and "'loop_fc' (Gemm) in 'Loop_2'" in note


# ---------------------------------------------------------------- fuzzing
_ATTR_NAMES = ["strides", "pads", "dilations", "group", "kernel_shape", "auto_pad", "ceil_mode", "transA", "transB"]
_ATTR_VALUES = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.lists(st.integers(-3, 2**40), max_size=6),
    st.binary(max_size=12), st.sampled_from([b"SAME_UPPER", b"VALID", b"NOTSET", b"\xff"]),
    st.floats(allow_nan=True), st.lists(st.floats(-4, 4), min_size=1, max_size=4))


@st.composite
def hostile_models(draw):
    op = draw(st.sampled_from(["Conv", "Conv", "ConvInteger", "QLinearConv", "Gemm", "MatMul"]))
    if draw(st.integers(0, 3)):  # mostly a well-formed operand pair, so the attributes are what gets tested
        c, k = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        if op in ("Gemm", "MatMul"):
            x_shape, w_shape = [draw(st.integers(1, 3)), c], [c, k]
        else:
            f = draw(st.integers(1, 3))
            x_shape, w_shape = [draw(st.sampled_from([1, 2, "n"])), c, draw(st.integers(3, 9)), 8], [k, c, f, f]
    else:
        x_shape = draw(st.lists(st.one_of(st.integers(0, 9), st.sampled_from(["n", "h"])), max_size=5))
        w_shape = draw(st.lists(st.integers(-2, 9), max_size=5))
    inputs = ["x", "w"] + (["w"] * 6 if op == "QLinearConv" else [])
    node = helper.make_node(op, inputs[:draw(st.sampled_from([len(inputs), len(inputs), 1, 0]))], ["y"], name="n")
    for name in draw(st.lists(st.sampled_from(_ATTR_NAMES), max_size=4, unique=True)):
        value = draw(_ATTR_VALUES)
        if value == []:  # make_attribute cannot type an empty list
            node.attribute.append(onnx.AttributeProto(name=name, type=onnx.AttributeProto.INTS))
        else:
            node.attribute.append(helper.make_attribute(name, value))
    if any(d < 0 for d in w_shape) or math.prod(w_shape) > 10**5 or not draw(st.integers(0, 4)):
        w = dataless("w", w_shape)
    else:
        w = small_weight("w", w_shape)
    nodes = [node] + draw(st.lists(st.just(helper.make_node("Relu", ["y"], ["r"])), max_size=1))
    return save_model(nodes, x_shape, w, draw(st.sampled_from([9, 11, 13, 17, 18])))


def save_model(nodes, x_shape, w, opset) -> bytes:
    g = helper.make_graph(nodes, "g", [vi("x", x_shape)], [vi(nodes[-1].output[0], None)], initializer=[w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def loads_or_one_line_error(path: Path) -> None:
    try:
        net = load_onnx(path, batch=2)
    except ConvschedError as e:
        assert "\n" not in str(e) and str(e)
    else:
        assert net.layers


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=hostile_models())
def test_fuzz_hostile_nodes(tmp_path, data):
    p = tmp_path / "h.onnx"
    p.write_bytes(data)
    loads_or_one_line_error(p)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6))
def test_fuzz_corrupted_bytes(tmp_path, flips):
    data = bytearray((tmp_path / "base.onnx").read_bytes() if (tmp_path / "base.onnx").exists()
                     else shufflenet_v2_mini(tmp_path, "slice").rename(tmp_path / "base.onnx").read_bytes())
    for at, value in flips:
        data[at % len(data)] = value
    p = tmp_path / "c.onnx"
    p.write_bytes(bytes(data))
    loads_or_one_line_error(p)


# ---------------------------------------------------------------- through the command line
def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convsched", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.mark.parametrize("attributes, x_shape, w_shape, message", [
    ([attr("strides", [0, 0])], [1, 4, 8, 8], [6, 4, 3, 3], "strides [0, 0] must all be at least 1"),
    ([attr("auto_pad", b"SAME\xff")], [1, 4, 8, 8], [6, 4, 3, 3], "attribute 'auto_pad' is not UTF-8 text"),
    ([attr("group", 4)], [1, 6, 8, 8], [6, 1, 3, 3], "input channels 6 != weight channels 1 x group 4"),
    ([attr("dilations", "wide")], [1, 4, 8, 8], [6, 4, 3, 3], "attribute 'dilations' is a string"),
    ([], [4, 8, 8], [6, 4, 3, 3], "has rank 3, expected 4"),
])
def test_cli_layers_malformed_model_one_line_exit_2(tmp_path, attributes, x_shape, w_shape, message):
    p = conv_with(tmp_path, attributes, x_shape, w_shape)
    r = cli(tmp_path, "layers", p.name)
    assert r.returncode == 2 and r.stdout == "", (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
