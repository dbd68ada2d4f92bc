"""The optimizer against brute force: every schedule of the space, checked by the simulator."""

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from convsched.arch import OPERANDS, Architecture
from convsched.errors import ConvschedError
from convsched.layer import DIMS, Layer
from convsched.model import evaluate
from convsched.schedule import Schedule
from convsched.search import Constraints, optimize_layer
from convsched.simulate import simulate
from convsched.vmodel import evaluate_many


def brute_force(layer: Layer, arch: Architecture, objective: str = "bytes"):
    """(bytes, buffer bytes, tiles) of the best schedule over EVERY order, level and tile (no reduction)."""
    dims = [d for d in DIMS if layer.dim_size(d) > 1]
    best = None
    for k in range(len(dims) + 1):
        for order in itertools.permutations(dims, k):
            grids = np.meshgrid(*[np.arange(1, layer.dim_size(d) + 1) for d in order], indexing="ij")
            tiles = {d: g.ravel() for d, g in zip(order, grids)}
            ntiles = np.ones(len(grids[0].ravel()) if order else 1, dtype=np.int64)
            for d in order:
                ntiles = ntiles * (-(-layer.dim_size(d) // tiles[d]))
            for lv in itertools.product(range(k + 1), repeat=3):
                levels = dict(zip(OPERANDS, lv))
                v = evaluate_many(layer, order, levels, tiles, arch)
                shape = ntiles.shape
                fits = np.broadcast_to(v.buffer_bytes <= arch.capacity, shape)
                if not fits.any():
                    continue
                obj = v.total_bytes if objective == "bytes" else v.input_read * arch.input_bits // 8 + v.weight_read * arch.weight_bits // 8
                keys = zip(np.broadcast_to(obj, shape)[fits], np.broadcast_to(v.buffer_bytes, shape)[fits], ntiles[fits])
                m = min(keys)
                best = m if best is None or m < best else best
    return best


@st.composite
def small_case(draw):
    G = draw(st.sampled_from([1, 1, 2]))
    while True:
        try:
            layer = Layer(K=G * draw(st.integers(1, 3)), C=G * draw(st.integers(1, 3)), G=G,
                          OY=draw(st.integers(1, 5)), OX=draw(st.integers(1, 3)), FY=draw(st.integers(1, 3)),
                          FX=draw(st.integers(1, 2)), SY=draw(st.integers(1, 2)), PY=draw(st.integers(0, 1)),
                          PX=draw(st.integers(0, 1)), DY=draw(st.integers(1, 2)))
            break
        except ConvschedError:
            continue
    if sum(layer.dim_size(d) > 1 for d in DIMS) > 5:
        layer = Layer(K=layer.K, C=layer.C, G=layer.G, OY=layer.OY, OX=1, FY=layer.FY, SY=layer.SY, PY=layer.PY)
    full = evaluate(Schedule(layer, (), {}, {op: 0 for op in OPERANDS}), Architecture()).total_buffer_bytes
    cap = draw(st.integers(max(4, full // 12), full + 8))
    return layer, cap


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_case())
@example((Layer(K=2, C=2, OY=1, OX=1, FX=2), 9))  # the optimum has a spatial loop before C below the input buffer
def test_optimum_equals_brute_force(case):
    layer, cap = case
    arch = Architecture(capacity=cap)
    expected = brute_force(layer, arch)
    if expected is None:
        with pytest.raises(ConvschedError, match="smallest that fits"):
            optimize_layer(layer, arch)
        return
    res = optimize_layer(layer, arch)
    got = (res.traffic.total_bytes, res.traffic.total_buffer_bytes, res.schedule.n_tiles)
    assert got == tuple(int(x) for x in expected)
    sim = simulate(res.schedule, arch)
    assert sim.output_ok and sim.traffic == res.traffic
    assert arch.fits(res.traffic.buffer_words)


def test_reads_objective_equals_brute_force():
    layer = Layer(K=4, C=2, OY=4, OX=1, FY=3, PY=1)
    arch = Architecture(capacity=40)
    res = optimize_layer(layer, arch, objective="reads")
    got = res.traffic.input.read_bytes + res.traffic.weight.read_bytes
    assert got == brute_force(layer, arch, "reads")[0]


def test_no_schedule_fits_names_the_smallest_capacity():
    layer = Layer(K=4, C=4, OY=4, OX=4, FY=3, FX=3, PY=1, PX=1)
    with pytest.raises(ConvschedError) as e:
        optimize_layer(layer, Architecture(capacity=3))
    assert "smallest that fits is 6 bytes" in str(e.value)  # 1 input + 1 weight byte + one 4-byte partial sum
    optimize_layer(layer, Architecture(capacity=6))


def test_constraints_fixed_order_and_untiled():
    layer = Layer(K=8, C=8, OY=6, OX=6, FY=3, FX=3, PY=1, PX=1)
    arch = Architecture(capacity=300)
    res = optimize_layer(layer, arch, Constraints(orders=(("K", "C", "OY", "OX"),), untiled=frozenset({"FY", "FX"})))
    assert set(res.schedule.order) <= {"K", "C", "OY", "OX"}
    assert list(res.schedule.order) == [d for d in ("K", "C", "OY", "OX") if d in res.schedule.order]
    free = optimize_layer(layer, arch)
    assert free.traffic.total_bytes <= res.traffic.total_bytes


def test_contradicting_constraints_are_refused():
    layer = Layer(K=8, C=8, OY=6, OX=6)
    with pytest.raises(ConvschedError, match="contradict"):
        optimize_layer(layer, Architecture(capacity=300), Constraints(tile_min={"K": 4}, tile_max={"K": 2}))
    with pytest.raises(ConvschedError, match="untiled"):
        optimize_layer(layer, Architecture(capacity=300), Constraints(untiled=frozenset({"K"}), tile_max={"K": 2}))
