"""The exhaustive optimum of the level-segmented space (search/segmented.py), the reference the multi-level
optimizer will be tested against: with one level it equals today's optimizer; on two levels its nest is
what the simulator measures, fits every level, and no nest drawn from the space beats it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convsched.core.arch import OPERANDS, Architecture
from convsched.core.errors import NoFeasibleSchedule
from convsched.core.hierarchy import Hierarchy, Level
from convsched.core.layer import Layer
from convsched.core.nest import Loop, Nest
from convsched.model.nest_model import evaluate_nest
from convsched.model.nest_simulate import simulate_nest
from convsched.search.optimizer import optimize_layer
from convsched.search.segmented import exhaustive_optimum, objective_key, segment_orders

SLOW = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


@st.composite
def tiny_layers(draw, spatial: int) -> Layer:
    """Layers with at most `spatial` + 1 dimensions above 1, so that the whole space can be enumerated."""
    k = draw(st.integers(1, 4))
    c = draw(st.integers(1, 3))
    oy = draw(st.integers(1, 4)) if spatial else 1
    fy = draw(st.sampled_from([1, 2, 3])) if spatial else 1
    py = draw(st.integers(0, (fy - 1) // 2))
    sy = draw(st.integers(1, 2))
    dims = {"K": k, "C": c, "OY": oy, "FY": fy}
    big = [d for d, v in dims.items() if v > 1]
    # keep the enumeration small: drop dimensions beyond the budget
    for d in big[spatial + 1 + 1:]:
        dims[d] = 1
    if dims["FY"] == 1:
        py = 0
    return Layer(K=dims["K"], C=dims["C"], OY=dims["OY"], OX=1, FY=dims["FY"], FX=1, SY=sy, PY=py)


def fits(traffic, hierarchy: Hierarchy) -> bool:
    return all(hierarchy.level_arch(lv.name).fits({op: traffic.buffer_words[lv.name].get(op, 0) for op in OPERANDS})
               for lv in hierarchy.levels)


def test_segment_orders_are_every_order_of_every_subset():
    orders = list(segment_orders(["K", "C", "OY"]))
    assert len(orders) == 1 + 3 + 6 + 6 and len(set(orders)) == len(orders) and orders[0] == ()


@given(data=st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=SLOW)
def test_one_level_equals_todays_optimizer(data):
    layer = data.draw(tiny_layers(spatial=1))
    capacity = data.draw(st.integers(4, 96))
    arch = Architecture(capacity=capacity)
    result = exhaustive_optimum(layer, Hierarchy.from_architecture(arch))
    try:
        best = optimize_layer(layer, arch)
    except NoFeasibleSchedule:
        assert result is None
        return
    assert result is not None
    assert result.traffic.total_bytes == best.traffic.total_bytes
    assert fits(result.traffic, Hierarchy.from_architecture(arch))


@st.composite
def two_level_hierarchies(draw) -> Hierarchy:
    l1 = draw(st.integers(8, 64))
    l2 = draw(st.integers(l1, 256))
    holds2 = draw(st.sampled_from([OPERANDS, ("input", "output"), ("weight", "output"), ("input", "weight")]))
    return Hierarchy((Level("L2", capacity=l2, holds=holds2),
                      Level("L1", capacity=l1, double_buffer=draw(st.booleans()))),
                     psum_bits=draw(st.sampled_from([8, 32])))


@st.composite
def segmented_nests(draw, layer: Layer, hierarchy: Hierarchy) -> Nest:
    """A nest drawn from the segmented space: per level an order of some dimensions, tiles within the
    tiles above, and buffers inside or at either end of the level's segment."""
    dims = [d for d in layer.dim_sizes if layer.dim_size(d) > 1]
    loops: list[Loop] = []
    buffers = {}
    current = dict(layer.dim_sizes)
    for lv in hierarchy.levels:
        start = len(loops)
        order = draw(st.permutations(dims))[:draw(st.integers(0, len(dims)))]
        for d in order:
            t = draw(st.integers(1, current[d]))
            loops.append(Loop(d, t))
            current[d] = t
        buffers[lv.name] = {op: draw(st.integers(start, len(loops))) for op in lv.holds}
    return Nest(layer, tuple(loops), buffers)


@pytest.mark.parametrize("objective", ["bytes", "energy"])
@given(data=st.data())
@settings(max_examples=10, deadline=None, suppress_health_check=SLOW)
def test_two_level_optimum_is_exact_and_unbeaten(data, objective):
    layer = data.draw(tiny_layers(spatial=0))       # K and C only: the whole two-level space in a second
    hierarchy = data.draw(two_level_hierarchies())
    result = exhaustive_optimum(layer, hierarchy, objective)
    drawn = [data.draw(segmented_nests(layer, hierarchy)) for _ in range(40)]
    fitting = [evaluate_nest(n, hierarchy) for n in drawn]
    fitting = [t for t in fitting if fits(t, hierarchy)]
    if result is None:
        assert not fitting
        return
    assert fits(result.traffic, hierarchy)
    sim = simulate_nest(result.nest, hierarchy)
    assert sim.output_ok and sim.traffic == result.traffic
    assert all(result.key <= objective_key(t, objective) for t in fitting)
