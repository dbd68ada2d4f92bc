"""Lower bounds: exact facts on hand-checked layers, and never above a real schedule (hypothesis)."""

import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from convsched.core.arch import OPERANDS, Architecture
from convsched.model.bounds import (capacity_words, chen_bound_words, compulsory_bytes, compulsory_words,
                                       layer_bounds, lower_bound_bytes, matmul_bound_words, real_macs,
                                       window_reuse)
from convsched.core.errors import ConvschedError
from convsched.core.layer import DIMS, Layer
from convsched.model.closed_form import evaluate
from convsched.core.schedule import Schedule
from convsched.search.optimizer import optimize_layer
from convsched.search.prune import compulsory_input_words
from convsched.model.simulate import simulate


def test_compulsory_is_the_untiled_schedule():
    for layer in (Layer(K=4, C=3, OY=6, OX=5, FY=3, FX=3, PY=1, PX=1),
                  Layer(K=2, C=2, OY=4, OX=4, SY=2, SX=2),            # 1x1 stride 2: a quarter of the input
                  Layer(K=4, C=4, G=4, OY=5, OX=5, FY=3, FX=3, DY=2, PY=2)):
        arch = Architecture(capacity=1 << 20)
        untiled = evaluate(Schedule(layer, (), {}, {op: 0 for op in OPERANDS}), arch)
        assert compulsory_bytes(layer, arch) == untiled.total_bytes
        assert compulsory_words(layer)["input"] == compulsory_input_words(layer)
        assert lower_bound_bytes(layer, arch) == untiled.total_bytes   # everything fits: the bound is tight


def test_window_reuse_and_real_macs():
    assert window_reuse(Layer(K=1, C=1, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1)) == 9
    assert window_reuse(Layer(K=1, C=1, OY=8, OX=8, FY=3, FX=3, SY=2, SX=2)) == 4       # ceil(3/2)^2 >= 9/4
    assert window_reuse(Layer(K=1, C=1, OY=8, OX=8, FY=2, FX=2, SY=3, SX=3)) == 1       # stride > filter
    assert window_reuse(Layer(K=1, C=1, OY=8, OX=8)) == 1
    assert window_reuse(Layer(K=1, C=1, OY=8, OX=1, FY=3, DY=2)) == 3
    # padded MACs are not real: 3x3 'same' on 2x2 reads 4 taps per output in each corner... 2x2 of 3x3
    L = Layer(K=1, C=1, OY=2, OX=2, FY=3, FX=3, PY=1, PX=1)
    assert L.macs == 36 and real_macs(L) == 16


def test_published_formulas_and_units():
    L = Layer(K=64, C=64, OY=56, OX=56, FY=3, FX=3, PY=1, PX=1)
    S = 16384
    assert chen_bound_words(L, S) == pytest.approx(2 * real_macs(L) / math.sqrt(9 * S))
    assert matmul_bound_words(L, S) == pytest.approx(2 * real_macs(L) / math.sqrt(S))
    # S in words: capacity over the smallest on-chip word; halved when double-buffered; per-operand sums
    assert capacity_words(Architecture(capacity=64 * 1024)) == 65536
    assert capacity_words(Architecture(input_bits=16, weight_bits=16, psum_bits=32, capacity=1024)) == 512
    assert capacity_words(Architecture(capacity=1024, double_buffer=True)) == 512
    assert capacity_words(Architecture(capacity_per_operand=(100, 100, 400))) == 100 + 100 + 100
    b = layer_bounds(L, Architecture(capacity=16 * 1024))
    assert b.matmul is None and b.window_reuse == 9            # GEMM bound invalid with window reuse
    assert b.matmul_unrestricted > b.best                       # ... and it would claim more than the optimum may need
    assert b.best == max(b.compulsory, b.chen)
    one = layer_bounds(Layer(K=64, C=64, OY=28, OX=28), Architecture(capacity=1024))
    assert one.matmul is not None and one.matmul == one.chen   # R = 1: the two coincide


def test_bound_below_optimum_on_a_real_layer():
    L = Layer(K=16, C=8, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1)
    for cap, bites in ((128, True), (4096, False)):
        arch = Architecture(capacity=cap)
        res = optimize_layer(L, arch)
        b = layer_bounds(L, arch)
        assert b.best <= res.traffic.total_bytes
        assert (b.best > b.compulsory) == bites   # at small buffers the published bound bites


@st.composite
def case(draw):
    G = draw(st.sampled_from([1, 1, 1, 2]))
    while True:
        try:
            layer = Layer(K=G * draw(st.integers(1, 3)), C=G * draw(st.integers(1, 3)), G=G,
                          OY=draw(st.integers(1, 6)), OX=draw(st.integers(1, 4)),
                          FY=draw(st.sampled_from([1, 2, 3, 5])), FX=draw(st.sampled_from([1, 2, 3])),
                          SY=draw(st.sampled_from([1, 1, 2, 3])), SX=draw(st.sampled_from([1, 2])),
                          DY=draw(st.sampled_from([1, 1, 2])), PY=draw(st.integers(0, 2)), PX=draw(st.integers(0, 1)),
                          N=draw(st.sampled_from([1, 1, 1, 2])))
            break
        except ConvschedError:
            continue
    if sum(layer.dim_size(d) > 1 for d in DIMS) > 5:   # keep the exact search quick: at most 5 loops
        layer = Layer(K=layer.K, C=layer.C, G=layer.G, OY=layer.OY, OX=1, FY=layer.FY, SY=layer.SY,
                      DY=layer.DY, PY=layer.PY, N=layer.N)
    bits = draw(st.sampled_from([(8, 8, 32, 8), (8, 8, 8, 8), (16, 16, 32, 16), (4, 4, 16, 4), (8, 16, 32, 4)]))
    arch = Architecture(*bits, double_buffer=draw(st.booleans()))
    cap = draw(st.sampled_from([4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512, 2048]))
    return layer, arch.with_capacity(cap)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case())
def test_no_schedule_beats_the_bound(c):
    layer, arch = c
    try:
        res = optimize_layer(layer, arch)
    except ConvschedError:
        return   # nothing fits: no schedule to compare with
    b = layer_bounds(layer, arch)
    total = res.traffic.total_bytes
    for name in ("compulsory", "chen", "matmul"):
        v = getattr(b, name)
        assert v is None or v <= total, (name, v, total, b.to_dict())
    assert lower_bound_bytes(layer, arch) == b.best <= total
    # the word form of the published bounds too (they count every word moved)
    S = capacity_words(arch)
    assert chen_bound_words(layer, S) <= res.traffic.total_words + 1e-9
    if window_reuse(layer) == 1:
        assert matmul_bound_words(layer, S) <= res.traffic.total_words + 1e-9
    # the optimum really moves what the model says (so the bound is checked against real traffic)
    if res.schedule.n_tiles <= 400:
        sim = simulate(res.schedule, arch)
        assert sim.output_ok and sim.traffic == res.traffic
