"""ONNX import: graphs built with onnx.helper, compared field by field with hand-derived layers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from convsched.errors import ConvschedError  # noqa: E402
from convsched.layer import Layer  # noqa: E402
from convsched.networks import NetLayer, Network, builtin_names, load_target  # noqa: E402
from convsched.networks.onnx import load_onnx  # noqa: E402

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
