"""The central property: the closed-form model equals the walking simulator, exactly.

For generated layers (batch, groups incl. depthwise, stride, dilation, padding
up to beyond the filter, given input sizes incl. extra bottom rows, edge
tiles), generated schedules (random subsets and orders of the loops, random
tiles and buffer levels) and generated architectures (word sizes, partial-sum
bits, DMA granularity, double buffering), `model.evaluate` must equal the
traffic the simulator counts -- every word, every byte, every buffer size --
and the simulator's output must equal the reference convolution.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convsched.core.arch import OPERANDS, Architecture, bits_to_bytes
from convsched.core.layer import DIMS, Layer
from convsched.model.closed_form import evaluate
from convsched.core.schedule import Schedule
from convsched.model.simulate import simulate
from strategies import MAX_TILES, gapped_schedules, spatial

@st.composite
def layers(draw) -> Layer:
    kind = draw(st.sampled_from(["plain", "grouped", "depthwise"]))
    if kind == "depthwise":
        g = draw(st.integers(2, 4))
        k = c = g
    elif kind == "grouped":
        g = draw(st.integers(2, 3))
        k = g * draw(st.integers(1, 2))
        c = g * draw(st.integers(1, 2))
    else:
        g, k, c = 1, draw(st.integers(1, 6)), draw(st.integers(1, 6))
    fields = {"N": draw(st.integers(1, 2)), "G": g, "K": k, "C": c}
    fields.update(draw(spatial("Y")))
    fields.update(draw(spatial("X")))
    return Layer(**fields)


@st.composite
def schedules(draw) -> Schedule:
    layer = draw(layers())
    dims = list(DIMS)
    order = draw(st.permutations(dims))
    order = order[:draw(st.integers(0, len(dims)))]
    tiles = {}
    n_tiles = 1
    for d in order:
        size = layer.dim_size(d)
        t = draw(st.integers(1, size))
        tiles[d] = t
        n_tiles *= math.ceil(size / t)
    assume(n_tiles <= MAX_TILES)
    levels = st.integers(0, len(order))
    buffers = {op: draw(levels) for op in OPERANDS}
    return Schedule(layer, tuple(order), tiles, buffers)


@st.composite
def architectures(draw) -> Architecture:
    word = st.sampled_from([1, 3, 4, 8, 12, 16, 32])
    return Architecture(
        input_bits=draw(word), weight_bits=draw(word), output_bits=draw(word),
        psum_bits=draw(st.sampled_from([8, 16, 20, 24, 32])),
        double_buffer=draw(st.booleans()),
        dma_granularity=draw(st.sampled_from([0, 4, 16, 64])),
    )


def check_model_equals_walk(s: Schedule, arch: Architecture) -> None:
    model = evaluate(s, arch)
    sim = simulate(s, arch)
    assert sim.missing_reads == 0, "a MAC read an operand that was not in its buffer"
    assert sim.output_ok, f"walk output differs from the reference (max error {sim.max_abs_error})"
    meas = sim.traffic
    for op in OPERANDS:
        assert model.operand(op) == meas.operand(op), (op, model.operand(op), meas.operand(op))
    # buffer size is the largest block: the simulator's peak occupancy
    assert model.buffer_words == sim.peak_words
    assert model.buffer_words == meas.buffer_words
    assert model.buffer_bytes == meas.buffer_bytes
    assert model.output_final_writes == meas.output_final_writes
    assert model == meas  # everything at once (extra is excluded from equality)


def check_consistency(s: Schedule, arch: Architecture) -> None:
    t = evaluate(s, arch)
    L = s.layer
    assert t.macs == L.macs
    assert t.input.write == 0 and t.weight.write == 0
    assert t.total_words == t.input.read + t.weight.read + t.output.read + t.output.write
    assert t.total_bytes == (t.input.read_bytes + t.weight.read_bytes
                             + t.output.read_bytes + t.output.write_bytes)
    assert t.bytes_per_mac == t.total_bytes / L.macs
    # every output element is written finally once, at output width
    assert t.output_final_writes == L.output_words
    assert t.output.write == t.output.read + L.output_words
    # without DMA granularity bytes are words times word size (rounded up to whole bytes)
    if arch.dma_granularity == 0:
        assert t.input.read_bytes == bits_to_bytes(t.input.read * arch.input_bits)
        assert t.weight.read_bytes == bits_to_bytes(t.weight.read * arch.weight_bits)
        assert t.output.read_bytes == bits_to_bytes(t.output.read * arch.psum_bits)
        assert t.output.write_bytes == (bits_to_bytes(t.output.read * arch.psum_bits)
                                        + bits_to_bytes(L.output_words * arch.output_bits))
    else:
        g = arch.dma_granularity
        for op in OPERANDS:
            o = t.operand(op)
            assert o.read_bytes % g == 0 and o.write_bytes % g == 0
    # buffer bytes: words at the buffer's word size, doubled when double-buffered
    f = 2 if arch.double_buffer else 1
    assert t.buffer_bytes == {op: bits_to_bytes(t.buffer_words[op] * arch.buffer_bits(op)) * f
                              for op in OPERANDS}
    # the buffers hold blocks of the tensors
    assert 1 <= t.buffer_words["weight"] <= L.weight_words
    assert 1 <= t.buffer_words["output"] <= L.output_words
    assert 0 <= t.buffer_words["input"] <= L.input_words
    # nothing is fetched that no output reads; at least every read element once
    assert t.weight.read >= L.weight_words
    # JSON contract: the same numbers
    j = t.to_json()
    assert j["total_words"] == t.total_words and j["total_bytes"] == t.total_bytes and j["macs"] == t.macs


@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                    HealthCheck.too_slow])
@given(s=schedules(), arch=architectures())
def test_model_equals_walk(s: Schedule, arch: Architecture) -> None:
    check_model_equals_walk(s, arch)
    check_consistency(s, arch)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                     HealthCheck.too_slow])
@given(s=gapped_schedules(), arch=architectures())
def test_model_equals_walk_where_padding_meets_a_gap(s: Schedule, arch: Architecture) -> None:
    check_model_equals_walk(s, arch)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                    HealthCheck.too_slow])
@given(s=schedules(), arch=architectures())
def test_model_consistency(s: Schedule, arch: Architecture) -> None:
    """Cheap invariants of the model alone (no walk): totals, bytes, buffer bytes."""
    check_consistency(s, arch)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                   HealthCheck.too_slow])
@given(s=schedules())
def test_buffer_levels_zero_and_innermost(s: Schedule) -> None:
    """The two extreme buffer levels: the whole tensor once, and one tile per buffer."""
    for level in (0, len(s.order)):
        t = Schedule(s.layer, s.order, {d: s.tiles[d] for d in s.order},
                     {op: level for op in OPERANDS})
        check_model_equals_walk(t, Architecture())
    whole = Schedule(s.layer, s.order, {d: s.tiles[d] for d in s.order}, {op: 0 for op in OPERANDS})
    t = evaluate(whole)
    L = s.layer
    # level 0: each read element exactly once, each output written once, no read-back
    assert t.weight.read == L.weight_words
    assert t.output.read == 0 and t.output.write == L.output_words
    assert t.buffer_words["input"] == t.input.read


@pytest.mark.parametrize("gran", [0, 4, 16, 64])
def test_example_like_depthwise_edge_tiles(gran: int) -> None:
    """A fixed depthwise, stride-2, padded schedule with edge tiles in every loop."""
    layer = Layer(N=1, G=3, K=3, C=3, OY=5, OX=4, FY=3, FX=3, SY=2, SX=2, PY=1, PX=1)
    s = Schedule(layer, ("OY", "G", "FY", "OX"), {"OY": 2, "G": 2, "FY": 2, "OX": 3},
                 {"input": 3, "weight": 2, "output": 1})
    check_model_equals_walk(s, Architecture(psum_bits=24, dma_granularity=gran))


def _derivable(layer: Layer) -> bool:
    """The input size follows from symmetric padding on both axes (Layer.to_dict needs it, see below)."""
    return all((getattr(layer, "O" + a) - 1) * getattr(layer, "S" + a)
               + (getattr(layer, "F" + a) - 1) * getattr(layer, "D" + a) + 1 - 2 * getattr(layer, "P" + a) >= 1
               for a in "YX")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                    HealthCheck.too_slow])
@given(s=schedules())
def test_schedule_json_round_trip(s: Schedule) -> None:
    assume(_derivable(s.layer))
    import json
    back = Schedule.from_dict(json.loads(s.to_json()))
    assert back == s
    assert evaluate(back) == evaluate(s)


def test_round_trip_layer_with_given_small_input() -> None:
    layer = Layer(K=1, C=1, OY=1, OX=2, PX=1, IX=1)   # valid: column 0 plus padding left and right
    assert Layer.from_dict(layer.to_dict()) == layer
    assert str(layer)
