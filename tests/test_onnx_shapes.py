"""Shape propagation of the ONNX importer (networks/onnx_shapes.py), checked against two independent
sources: onnx's own shape inference on graphs with fixed shapes, and real execution (onnx's reference
runtime) on graphs whose shapes are computed at run time. Our rules run on the raw graph, without
onnx's inference, so every shape compared here is one they computed themselves."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from hypothesis import HealthCheck, given, reject, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from convsched.core.errors import ConvschedError
from convsched.networks.onnx_shapes import Attrs, GraphShapes

F32 = TensorProto.FLOAT


def const(name: str, values, dtype=np.int64):
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(values, dtype=dtype)))


def weight(name: str, dims):
    return helper.make_tensor(name, F32, dims, np.zeros(int(np.prod(dims)), np.float32))


def model(nodes, x_shape, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F32, x_shape)],
                          [helper.make_empty_tensor_value_info(nodes[-1].output[0])], initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def outputs(m) -> list[str]:
    return [o for n in m.graph.node if n.op_type != "Constant" for o in n.output if o]


def inferred(m) -> dict[str, list]:
    g = onnx.shape_inference.infer_shapes(m, strict_mode=True, data_prop=True).graph
    return {vi.name: [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
            for vi in list(g.value_info) + list(g.output)}


def executed(m, x_shape) -> dict[str, list]:
    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    del m2.graph.output[:]
    names = outputs(m)
    m2.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in names)
    results = ReferenceEvaluator(m2).run(None, {"x": np.zeros(x_shape, np.float32)})
    return {n: list(np.shape(r)) for n, r in zip(names, results)}


def ours(m, batch: int = 1) -> GraphShapes:
    return GraphShapes(m.graph, batch)  # the raw graph: no onnx inference ran


def assert_same_as(m, truth: dict[str, list], batch: int = 1) -> None:
    shapes = ours(m, batch)
    for name in outputs(m):
        assert truth[name] and None not in truth[name], (name, truth[name])  # the reference knows it
        assert shapes.get(name) == truth[name], name


# ---------------------------------------------------------------- operators with fixed shapes
X = [2, 6, 9, 10]
CASES = {
    "pad_input": ([const("p", [0, 1, 2, 0, 0, 1, 0, 3]), helper.make_node("Pad", ["x", "p"], ["y"])], 17),
    "pad_axes": ([const("p", [1, 2, 3, 4]), const("ax", [-1, 2]),
                  helper.make_node("Pad", ["x", "p", "", "ax"], ["y"])], 18),
    "pad_attr": ([helper.make_node("Pad", ["x"], ["y"], pads=[0, 0, 1, 1, 0, 0, 2, 2])], 9),
    "maxpool_ceil": ([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 3], ceil_mode=1)], 17),
    "maxpool_pads_dil": ([helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2], pads=[1, 0, 1, 2],
                                           dilations=[2, 3])], 17),
    "avgpool_same_upper": ([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2],
                                             auto_pad="SAME_UPPER")], 17),
    "avgpool_same_lower_1d_ish": ([helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[1, 4], strides=[1, 3],
                                                    auto_pad="SAME_LOWER")], 17),
    "lppool_valid": ([helper.make_node("LpPool", ["x"], ["y"], kernel_shape=[2, 3], auto_pad="VALID")], 18),
    "global_pools": ([helper.make_node("GlobalAveragePool", ["x"], ["a"]),
                      helper.make_node("GlobalMaxPool", ["a"], ["y"])], 17),
    "resize_scales": ([const("s", [1, 1, 2, 1.5], np.float32),
                       helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest")], 13),
    "resize_sizes": ([const("z", [2, 6, 4, 21]), helper.make_node("Resize", ["x", "", "", "z"], ["y"])], 13),
    "resize_axes": ([const("z", [5, 7]), helper.make_node("Resize", ["x", "", "", "z"], ["y"], axes=[3, 2])], 18),
    "upsample": ([const("s", [1, 1, 2, 3], np.float32), helper.make_node("Upsample", ["x", "s"], ["y"])], 9),
    "flatten_axes": ([helper.make_node("Flatten", ["x"], ["a"], axis=2),
                      helper.make_node("Flatten", ["a"], ["y"], axis=0)], 17),
    "reshape_zero_minus_one": ([const("s", [0, -1, 5]), helper.make_node("Reshape", ["x", "s"], ["y"])], 17),
    "transpose_default_and_perm": ([helper.make_node("Transpose", ["x"], ["a"]),
                                    helper.make_node("Transpose", ["a"], ["y"], perm=[1, 3, 0, 2])], 17),
    "concat_negative_axis": ([helper.make_node("Relu", ["x"], ["a"]),
                              helper.make_node("Concat", ["x", "a", "x"], ["y"], axis=-3)], 17),
    "split_input": ([const("s", [1, 2, 3]), helper.make_node("Split", ["x", "s"], ["a", "b", "y"], axis=1)], 13),
    "split_attr": ([helper.make_node("Split", ["x"], ["a", "y"], axis=3, split=[7, 3])], 11),
    "split_equal": ([helper.make_node("Split", ["x"], ["a", "b", "y"], axis=1)], 13),
    "split_num_outputs_uneven": ([helper.make_node("Split", ["x"], ["a", "b", "y"], axis=3, num_outputs=3)], 18),
    "slice_negative_steps": ([const("st", [-1, 8, 0]), const("en", [-100, 1, 10]), const("ax", [1, 2, -1]),
                              const("sp", [-2, -3, 4]),
                              helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], 13),
    "slice_attrs": ([helper.make_node("Slice", ["x"], ["y"], starts=[1, -3], ends=[1000, -1], axes=[1, 3])], 9),
    "squeeze_unsqueeze_inputs": ([const("u", [0, 3]), helper.make_node("Unsqueeze", ["x", "u"], ["a"]),
                                  const("q", [3]), helper.make_node("Squeeze", ["a", "q"], ["y"])], 13),
    "squeeze_unsqueeze_attrs": ([helper.make_node("Unsqueeze", ["x"], ["a"], axes=[-1]),
                                 helper.make_node("Squeeze", ["a"], ["y"], axes=[4])], 11),
    "reduce_keepdims": ([helper.make_node("ReduceMean", ["x"], ["a"], axes=[2, 3], keepdims=0),
                         helper.make_node("ReduceMax", ["x"], ["y"], axes=[1])], 13),
    "reduce_axes_input": ([const("ax", [-1]), helper.make_node("ReduceSum", ["x", "ax"], ["y"], keepdims=0)], 13),
    "argmax": ([helper.make_node("ArgMax", ["x"], ["y"], axis=2, keepdims=0)], 13),
    "gather_activation": ([const("i", [0, 3, 5, 1]), helper.make_node("Gather", ["x", "i"], ["y"], axis=3)], 13),
    "gather_scalar": ([const("i", 2), helper.make_node("Gather", ["x", "i"], ["y"], axis=1)], 13),
    "expand_tile": ([const("e", [3, 1, 1, 1, 1]), helper.make_node("Expand", ["x", "e"], ["a"]),
                     const("t", [1, 2, 1, 1, 3]), helper.make_node("Tile", ["a", "t"], ["y"])], 13),
    "constant_of_shape": ([helper.make_node("Shape", ["x"], ["s"]),
                           helper.make_node("ConstantOfShape", ["s"], ["y"])], 13),
    "elementwise_broadcast": ([helper.make_node("Add", ["x", "bias"], ["a"]),
                               helper.make_node("Mul", ["bias", "a"], ["c"]),
                               helper.make_node("Where", ["c", "x", "bias"], ["y"])], 17),
    "norms_and_activations": ([helper.make_node("BatchNormalization", ["x", "bn_s", "bn_b", "bn_m", "bn_v"], ["a"]),
                               helper.make_node("HardSwish", ["a"], ["c"]), helper.make_node("Clip", ["c"], ["d"]),
                               helper.make_node("InstanceNormalization", ["d", "bn_s", "bn_b"], ["e"]),
                               helper.make_node("Softmax", ["e"], ["y"], axis=1)], 17),
    "conv_same_lower_grouped": ([helper.make_node("Conv", ["x", "w"], ["y"], group=3, strides=[2, 3], dilations=[2, 1],
                                                  auto_pad="SAME_LOWER")], 17),
    "gemm_matmul": ([const("s", [2, -1]), helper.make_node("Reshape", ["x", "s"], ["a"]),
                     helper.make_node("Gemm", ["a", "fw"], ["c"], transB=1),
                     helper.make_node("MatMul", ["x", "mw"], ["y"])], 17),
}


def case_inits():
    return [numpy_helper.from_array(np.zeros([6, 1, 1], np.float32), "bias"),
            *(numpy_helper.from_array(np.ones(6, np.float32), n) for n in ("bn_s", "bn_b", "bn_m", "bn_v")),
            weight("w", [9, 2, 3, 2]), weight("fw", [4, 540]), weight("mw", [10, 7])]


@pytest.mark.parametrize("case", sorted(CASES))
def test_rules_agree_with_onnx_inference(case):
    nodes, opset = CASES[case]
    m = model(nodes, X, case_inits(), opset)
    assert_same_as(m, inferred(m))


@pytest.mark.parametrize("case", ["pad_input", "maxpool_pads_dil", "resize_sizes", "reshape_zero_minus_one",
                                  "split_num_outputs_uneven", "slice_negative_steps", "gather_activation",
                                  "expand_tile", "conv_same_lower_grouped", "gemm_matmul"])
def test_rules_agree_with_execution(case):
    nodes, opset = CASES[case]
    m = model(nodes, X, case_inits(), max(opset, 13))
    assert_same_as(m, executed(m, X))


# ---------------------------------------------------------------- shapes computed at run time
def chunk_and_shuffle(channels: int = 10):
    """ShuffleNet V2's channel split and shuffle as torch.onnx writes them for a dynamic batch: the split
    points come from Shape/Gather/Add/Div/Mul, the shuffle's target shapes from Shape/Gather/Concat."""
    return [
        helper.make_node("Shape", ["x"], ["sh"]), const("ax", [1]), helper.make_node("Gather", ["sh", "ax"], ["cdim"]),
        const("one", [1]), helper.make_node("Add", ["cdim", "one"], ["c1"]), const("two", [2]),
        helper.make_node("Div", ["c1", "two"], ["half"]), const("zero", [0]),
        helper.make_node("Mul", ["half", "one"], ["e1"]), helper.make_node("Slice", ["x", "zero", "e1", "ax"], ["x1"]),
        helper.make_node("Mul", ["half", "two"], ["e2"]), helper.make_node("Slice", ["x", "e1", "e2", "ax"], ["x2"]),
        helper.make_node("Relu", ["x2"], ["r"]),
        helper.make_node("Concat", ["x1", "r"], ["cat"], axis=1),
        helper.make_node("Shape", ["cat"], ["s2"]),
        *(const(f"i{k}", [k]) for k in range(4)),
        *(helper.make_node("Gather", ["s2", f"i{k}"], [f"d{k}"], axis=0) for k in range(4)),
        helper.make_node("Div", ["d1", "two"], ["cpg"]),
        helper.make_node("Concat", ["d0", "two", "cpg", "d2", "d3"], ["shape5"], axis=0),
        helper.make_node("Reshape", ["cat", "shape5"], ["r5"]),
        helper.make_node("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 3, 4]),
        const("m1", [-1]), helper.make_node("Concat", ["d0", "m1", "d2", "d3"], ["shape4"], axis=0),
        helper.make_node("Reshape", ["t5", "shape4"], ["y"]),
    ]


def test_chunk_and_shuffle_agree_with_execution():
    shape = [3, 10, 5, 4]
    m = model(chunk_and_shuffle(), shape)
    truth = executed(m, shape)
    assert truth["x2"] == [3, 5, 5, 4] and truth["y"] == shape
    assert_same_as(m, truth)
    # onnx's own inference loses these shapes (the reason for our propagation)
    assert None in inferred(m)["x2"]


def test_unknown_batch_of_a_conv_input_is_the_batch():
    """A Conv's input is N x C x H x W by definition: a lost dimension 0 is the batch."""
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Conv", ["a", "w"], ["y"], pads=[1, 1, 1, 1])]
    m = model(nodes, ["n", 2, 5, 5], [weight("w", [4, 2, 3, 3])])
    assert ours(m, batch=7).get("y") == [7, 4, 5, 5]


def test_channels_of_a_conv_output_come_from_the_weights():
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2])]
    m = model(nodes, [1, "c", 9, 9], [weight("w", [8, 3, 3, 3])])
    assert ours(m).get("y") == [1, 8, 4, 4]


def test_matmul_rows_are_not_guessed():
    """Rows of a matrix product are not by definition the batch: an unknown stays unknown."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    m = model(nodes, ["rows", 4], [weight("w", [4, 3])])
    assert ours(m, batch=5).get("y") == ["rows", 3]


@pytest.mark.parametrize("nodes", [
    [const("z", [0]), helper.make_node("Slice", ["x", "z", "z", "z", "z"], ["y"])],  # step 0
    [const("s", [-1, -1]), helper.make_node("Reshape", ["x", "s"], ["y"])],          # two free sizes
    [const("s", [7, -1]), helper.make_node("Reshape", ["x", "s"], ["y"])],           # does not divide
    [const("s", [1, 6, 10**9, 1]), helper.make_node("Reshape", ["x", "s"], ["y"])],  # not the element count
    [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 0, 1, 2])],                # not a permutation
    [helper.make_node("Concat", ["x", "x"], ["y"], axis=9)],                          # no such axis
    [helper.make_node("Split", ["x"], ["a", "y"], axis=1, split=[1, 1])],             # sizes do not add up
    [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[0, 0])],
    [helper.make_node("Flatten", ["x"], ["y"], axis="one")],
    [helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=b"\xff")],
])
def test_malformed_nodes_leave_shapes_unknown_and_never_raise(nodes):
    m = model(nodes, [1, 6, 4, 4], [weight("w", [2, 6, 1, 1])])
    shapes = ours(m)  # must not raise
    y = shapes.get("y")
    assert y is None or None in y


def test_sizes_beyond_int64_are_unknown():
    """ONNX sizes are int64: a Tile whose repeats overflow it (here 2^62 squared) gives an unknown size."""
    nodes = [const("r", [1, 2**62, 1, 1]), helper.make_node("Mul", ["r", "r"], ["rr"]),
             helper.make_node("Tile", ["x", "rr"], ["y"])]
    shapes = ours(model(nodes, [1, 2, 3, 3]))
    assert shapes.values["rr"] == [1, None, 1, 1]
    assert shapes.get("y") == [1, None, 3, 3]


def test_attribute_of_wrong_type_is_one_line():
    node = helper.make_node("Conv", ["x", "w"], ["y"], strides=2)
    with pytest.raises(ConvschedError, match="attribute 'strides' is an integer, expected a list of integers"):
        Attrs(node, "node 'c' (Conv)").ints("strides", None)
    node = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=b"SAME\xff")
    with pytest.raises(ConvschedError, match="not UTF-8 text.*NOTSET"):
        Attrs(node, "node 'c' (Conv)").string("auto_pad", "NOTSET", ("NOTSET", "VALID"))


# ---------------------------------------------------------------- random chains
@st.composite
def chains(draw):
    """A chain of 1..6 shape-changing operators on an N x C x H x W tensor, with valid parameters."""
    shape = [draw(st.integers(1, 3)), draw(st.integers(1, 8)), draw(st.integers(4, 12)), draw(st.integers(4, 12))]
    nodes = []
    cur = "x"
    for k in range(draw(st.integers(1, 6))):
        out = f"t{k}"
        op = draw(st.sampled_from(["Slice", "Pad", "MaxPool", "AveragePool", "Resize", "Transpose", "Concat",
                                   "Split", "Reshape", "GlobalAveragePool"]))
        if op == "Slice":
            axis = draw(st.integers(0, 3))
            start, end = draw(st.integers(-6, 6)), draw(st.integers(-6, 20))
            step = draw(st.sampled_from([1, 2, 3, -1, -2]))
            nodes += [const(f"s{k}", [start]), const(f"e{k}", [end]), const(f"a{k}", [axis]), const(f"p{k}", [step]),
                      helper.make_node("Slice", [cur, f"s{k}", f"e{k}", f"a{k}", f"p{k}"], [out])]
        elif op == "Pad":
            pads = draw(st.lists(st.integers(0, 3), min_size=8, max_size=8))
            nodes += [const(f"p{k}", pads), helper.make_node("Pad", [cur, f"p{k}"], [out])]
        elif op in ("MaxPool", "AveragePool"):
            kernel = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
            attrs = dict(kernel_shape=kernel, strides=[draw(st.integers(1, 3)), draw(st.integers(1, 3))])
            auto = draw(st.sampled_from(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
            if auto == "NOTSET":
                attrs["pads"] = [draw(st.integers(0, k_ - 1)) for k_ in kernel * 2]
                attrs["ceil_mode"] = draw(st.integers(0, 1))
            else:
                attrs["auto_pad"] = auto
            nodes.append(helper.make_node(op, [cur], [out], **attrs))
        elif op == "Resize":
            scales = [1.0, 1.0, draw(st.sampled_from([0.5, 1.0, 1.5, 2.0])), draw(st.sampled_from([0.75, 1.0, 3.0]))]
            nodes += [const(f"r{k}", scales, np.float32), helper.make_node("Resize", [cur, "", f"r{k}"], [out])]
        elif op == "Transpose":
            perm = draw(st.permutations([1, 2, 3]))
            nodes.append(helper.make_node("Transpose", [cur], [out], perm=[0, *perm]))
        elif op == "Concat":
            nodes += [helper.make_node("Relu", [cur], [f"c{k}"]),
                      helper.make_node("Concat", [cur, f"c{k}"], [out], axis=draw(st.integers(-4, 3)))]
        elif op == "Split":
            nodes.append(helper.make_node("Split", [cur], [out, f"rest{k}"], axis=draw(st.integers(1, 3)),
                                          num_outputs=2))
        elif op == "Reshape":
            nodes += [const(f"z{k}", [0, -1]), helper.make_node("Reshape", [cur, f"z{k}"], [f"flat{k}"]),
                      const(f"u{k}", [2, 3]), helper.make_node("Unsqueeze", [f"flat{k}", f"u{k}"], [out])]
        else:
            nodes.append(helper.make_node("GlobalAveragePool", [cur], [out]))
        cur = out
    nodes.append(helper.make_node("Identity", [cur], ["y"]))
    return shape, nodes


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the runtime averaging an empty window
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(chain=chains())
def test_random_chains_agree_with_onnx_inference(chain):
    shape, nodes = chain
    m = model(nodes, shape, opset=18)
    try:  # an invalid chain (a window larger than its input, an empty slice) is not a case
        ran = executed(m, shape)
        truth = inferred(m)
    except Exception:
        reject()
    if any(d < 1 for s in ran.values() for d in s):
        reject()
    assert_same_as(m, truth)
