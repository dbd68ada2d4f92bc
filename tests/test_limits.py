"""The documented limits (docs/limits.md): 64-bit arithmetic that provably fits, sizes refused
before anything is allocated, seeds both sides take, workers capped at the CPUs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from convsched.core import int64, limits
from convsched.core.arch import Architecture
from convsched.core.errors import ConvschedError
from convsched.core.layer import Layer
from convsched.model.closed_form import evaluate
from convsched.core.schedule import Schedule
from convsched.model.vectorised import evaluate_many
from convsched.search import network as netsearch
from convsched.search.network import optimize_network
from convsched.search.optimizer import optimize_layer
from convsched.search.prune import less_product
from convsched.search.space import (Constraints, smallest_per_trip_count, smallest_tile_per_trip_count,
                                    tile_candidates)
from clihelp import one_line_error, run


# ---- the examples: refused with the limit named, never a wrong figure ---------------
SPEC = "K=64,C=64,OY=56,OX=56,FY=3,FX=3,PY=1,PX=1"


@pytest.mark.parametrize("args, needles", [
    # an "optimal" 9.3e18 B beside a 6.7e17 B textbook schedule
    (["optimize", "N=262144,K=2097152,C=2097152,OY=1,OX=1", "--buffer", "64B"], ["traffic bound", "limits.md"]),
    (["optimize", SPEC, "--bits", "1099511627776", "--buffer", "26388279066624B"], ["64 bits", "limits.md"]),
    (["optimize", SPEC, "--buffer", "9223372036854775807B"], ["1,125,899,906,842,624 bytes"]),
    (["optimize", SPEC, "--buffer", "64KiB", "--psum-bits", str(2**62)], ["psum_bits", "64 bits"]),
    (["hwc", SPEC, "--buffer", "9223372036854775808B"], ["1,125,899,906,842,624 bytes"]),
    (["sweep", SPEC, "--buffer", "1KiB..2251799813685248B"], ["1,125,899,906,842,624 bytes"]),
    (["layers", "vgg16", "--batch", "4611686018427387904"], ["N=4,611,686,018,427,387,904", "limits.md"]),
])
def test_overflowing_inputs_are_one_line(args, needles):
    one_line_error(run(*args), *needles)


def test_hwc_config_beyond_the_limits(tmp_path):
    for text, needle in (("macs_per_cycle: 100000000000000000000000000\n", "macs_per_cycle"),
                         ("buffers: {input: 2251799813685248B}\n", "1,125,899,906,842,624 bytes"),
                         ("bits: 128\n", "64 bits"),
                         ("port_bytes_per_cycle: 0.000001\n", "port_bytes_per_cycle"),
                         ("dma_setup_cycles: 1000000000000\n", "dma_setup_cycles"),
                         ("clock_mhz: .inf\n", "clock_mhz")):
        cfg = tmp_path / "hwc.yaml"
        cfg.write_text(text)
        one_line_error(run("hwc", "K=4,C=4,OY=4,OX=4", "--config", cfg), needle)


def test_limits_are_inclusive():
    Layer(K=int64.MAX_EXTENT, C=1, OY=1, OX=1)
    with pytest.raises(ConvschedError, match="K=16,777,217 is above the limit"):
        Layer(K=int64.MAX_EXTENT + 1, C=1, OY=1, OX=1)
    with pytest.raises(ConvschedError, match=r"IY=.*derived"):
        Layer(K=1, C=1, OY=2, OX=1, SY=int64.MAX_EXTENT)
    # an FC layer's traffic bound is its MACs
    Layer(N=1 << 12, K=1 << 18, C=1 << 18, OY=1, OX=1)
    with pytest.raises(ConvschedError, match="traffic bound"):
        Layer(N=1 << 12, K=1 << 18, C=(1 << 18) + 1, OY=1, OX=1)
    Architecture(input_bits=64, psum_bits=64, capacity=int64.MAX_BUFFER_BYTES)
    with pytest.raises(ConvschedError, match="64 bits"):
        Architecture(weight_bits=65)
    with pytest.raises(ConvschedError, match="1 PiB"):
        Architecture(capacity_per_operand=(1, 1, int64.MAX_BUFFER_BYTES + 1))
    with pytest.raises(ConvschedError, match="1 PiB"):
        Architecture(dma_granularity=int64.MAX_BUFFER_BYTES + 1)


def test_traffic_bound_uses_the_tighter_reach():
    L = Layer(K=2, C=3, OY=10, OX=1, FY=3, SY=2, DY=1, PY=1)
    assert L.traffic_bound == L.macs * min(9 * 2 + 2 * 1 + 1, 2 * 2 + 2 * 1 + 1) * 1
    L = Layer(K=1, C=1, OY=1, OX=1, FY=1, SY=1000, DY=1000)      # one output row: one input row
    assert L.traffic_bound == 1


# ---- the argument of docs/limits.md, checked: int64 equals exact integers at the limits -----
def _near_limit_layers():
    """Layers whose traffic bound is within a factor 8 of MAX_TRAFFIC_BOUND."""
    def build(k, c, oy, fy, s, d, bits):
        base = Layer(K=k, C=c, OY=oy, OX=oy, FY=fy, FX=fy, SY=s, SX=s, DY=d, DX=d)
        scale = int64.MAX_TRAFFIC_BOUND // base.traffic_bound
        n = max(1, min(int64.MAX_EXTENT, scale))
        return Layer(N=n, K=k, C=c, OY=oy, OX=oy, FY=fy, FX=fy, SY=s, SX=s, DY=d, DX=d), bits
    return st.builds(build, st.integers(1, 64), st.integers(1, 64), st.integers(1, 12), st.integers(1, 3),
                     st.integers(1, 3), st.integers(1, 2), st.sampled_from([1, 7, 8, 24, 33, 64]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_near_limit_layers(), st.data())
def test_vectorised_model_is_exact_near_the_limit(layer_bits, data):
    layer, bits = layer_bits
    dims = [d for d in ("N", "K", "C", "OY", "OX", "FY", "FX") if layer.dim_size(d) > 1]
    order = data.draw(st.permutations(dims))[:data.draw(st.integers(0, len(dims)))]
    # tiles with few trips for the spatial loops (the exact model walks them), any for the others
    tiles = {d: data.draw(st.integers(max(1, layer.dim_size(d) // 4) if d in ("OY", "OX", "FY", "FX") else 1,
                                      layer.dim_size(d))) for d in order}
    levels = {op: data.draw(st.integers(0, len(order))) for op in ("input", "weight", "output")}
    arch = Architecture(input_bits=bits, weight_bits=bits, psum_bits=bits, output_bits=bits)
    sched = Schedule(layer, tuple(order), tiles, levels)
    exact = evaluate(sched, arch)
    vec = evaluate_many(layer, order, levels, {d: np.array([t]) for d, t in tiles.items()}, arch)
    first = lambda a: int(np.asarray(a).reshape(-1)[0])  # noqa: E731
    assert first(vec.input_read) == exact.input.read
    assert first(vec.weight_read) == exact.weight.read
    assert first(vec.output_write) == exact.output.write
    assert first(vec.total_bytes) == exact.total_bytes
    assert first(vec.buffer_bytes) == exact.total_buffer_bytes
    assert exact.total_bytes < 1 << 62


def test_optimum_at_the_limit_is_no_worse_than_a_textbook_dataflow():
    # the layer scaled to the limit: its optimum must beat (or tie) the textbook's
    layer = Layer(N=1 << 12, K=1 << 18, C=1 << 18, OY=1, OX=1)
    assert layer.traffic_bound == int64.MAX_TRAFFIC_BOUND
    for bits in (8, 64):
        a = Architecture.from_flags(bits).with_capacity(64)
        res = optimize_network(layer, a, workers=1)
        (e,) = res.entries
        assert e.textbook is not None and e.traffic.total_bytes <= e.textbook.traffic.total_bytes
        assert evaluate(e.result.schedule, a) == e.traffic


# ---- sizes refused before anything is allocated -----------------------------------------
def _schedule_file(tmp_path: Path, layer: dict, order, tiles, buffers) -> Path:
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"layer": layer, "order": order, "tiles": tiles, "buffers": buffers}))
    return p


def test_huge_output_rows_with_tile_one_are_refused(tmp_path):
    # the OY=10^8: refused by the extent limit; 10^7 rows by the model's grid limit
    for oy, needle in ((10**8, "OY=100,000,000 is above the limit"), (10**7, "tile iterations")):
        s = _schedule_file(tmp_path, {"K": 1, "C": 1, "OY": oy, "OX": 1}, ["OY"], {"OY": 1},
                           {"input": 1, "weight": 0, "output": 1})
        for cmd in ("evaluate", "simulate", "codegen"):
            one_line_error(run(cmd, s), needle, "limits.md")


def test_simulator_and_c_program_limits():
    big = Layer(K=64, C=64, OY=256, OX=256, FY=3, FX=3, PY=1, PX=1)     # 8.4M words
    s = Schedule(big, ("K",), {"K": 32}, {"input": 0, "weight": 1, "output": 1})
    evaluate(s)                                       # the model takes it
    from convsched.model.simulate import simulate
    with pytest.raises(ConvschedError, match="simulator's limit"):
        simulate(s)
    from convsched.codegen import generate_c
    generate_c(s, Architecture(capacity=None))        # within the C program's limits
    wide = Layer(K=1, C=1, OY=1, OX=1 << 19)
    with pytest.raises(ConvschedError, match="C program's limit"):
        generate_c(Schedule(wide, (), {}, {"input": 0, "weight": 0, "output": 0}))
    many = Layer(K=1, C=1, OY=4096, OX=2048)
    with pytest.raises(ConvschedError, match="output blocks"):
        generate_c(Schedule(many, ("OY", "OX"), {"OY": 1, "OX": 1}, {"input": 2, "weight": 0, "output": 2}))


def test_simulator_memory_error_is_one_line(monkeypatch):
    from convsched.model import simulate as sim

    def no_memory(*a, **k):
        raise MemoryError

    monkeypatch.setattr(sim, "random_operands", no_memory)
    s = Schedule(Layer(K=2, C=2, OY=2, OX=2), (), {}, {"input": 0, "weight": 0, "output": 0})
    with pytest.raises(ConvschedError, match="not enough memory to simulate"):
        sim.simulate(s)


def test_optimizer_axis_limit():
    layer = Layer(K=1, C=1, OY=1 << 18, OX=1)
    with pytest.raises(ConvschedError, match="optimizer's limit"):
        optimize_layer(layer, Architecture(capacity=1024))
    r = run("optimize", "K=1,C=1,OY=262144,OX=1", "--buffer", "1KiB")
    one_line_error(r, "layer layer1:", "optimizer's limit")


# ---- seeds: the range both the simulator and the generated C take ------------------------
@pytest.mark.parametrize("seed", [-1, 2**64, 18446744073709551616])
def test_seeds_out_of_range_are_refused(tmp_path, seed):
    from convsched.codegen import run_c
    from convsched.model.simulate import simulate
    s = Schedule(Layer(K=2, C=2, OY=2, OX=2), (), {}, {"input": 0, "weight": 0, "output": 0})
    with pytest.raises(ConvschedError, match="out of range"):
        simulate(s, seed=seed)
    with pytest.raises(ConvschedError, match="out of range"):
        run_c(s, seed=seed)


def test_largest_seed_agrees_between_c_and_numpy():
    import shutil
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    from convsched.codegen import run_c
    s = Schedule(Layer(K=2, C=2, OY=3, OX=3, FY=2, FX=2), ("K",), {"K": 1}, {"input": 0, "weight": 1, "output": 1})
    res = run_c(s, Architecture(capacity=None), seed=limits.MAX_SEED, debug=False)
    assert res.passed, res.problems


# ---- workers: never more than the CPUs ----------------------------------------------------
def test_workers_are_capped_at_the_cpus(monkeypatch):
    monkeypatch.setattr(limits, "available_cpus", lambda: 3)
    assert limits.cap_workers(300) == 3
    assert limits.cap_workers(2) == 2
    with pytest.raises(ConvschedError):
        limits.cap_workers(0)


def test_sweep_with_many_workers_starts_at_most_cpu_count_processes(monkeypatch):
    import concurrent.futures
    started = []
    real = concurrent.futures.ProcessPoolExecutor.__init__

    def spy(self, max_workers=None, *a, **k):
        started.append(max_workers)
        real(self, max_workers, *a, **k)

    monkeypatch.setattr(concurrent.futures.ProcessPoolExecutor, "__init__", spy)
    netsearch.sweep(Layer(K=8, C=8, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1), Architecture(), 512, 4096, points=8,
                    workers=300)
    assert started and max(started) <= limits.available_cpus()


def test_sweep_points_limit():
    r = run("sweep", "K=4,C=4,OY=4,OX=4", "--buffer", "1KiB..2KiB", "--points", "300000")
    one_line_error(r, "--points", "1,000")


@given(st.integers(0, 1 << 62), st.integers(0, 1 << 62), st.integers(0, 1 << 62))
def test_input_bound_difference_never_forms_an_overflowing_product(a, b, c):
    # max(a - b*c, 0) as the optimizer's input bound forms it: exact where b*c exceeds int64
    assert int(less_product(a, b, c)) == max(a - b * c, 0)
    got = less_product(np.array([a, a]), np.array([b, 0]), np.array([c, c]))
    assert got.tolist() == [max(a - b * c, 0), a]


@given(st.integers(1, 5000), st.data())
def test_smallest_tiles_per_trip_count_without_the_range(size, data):
    lo = data.draw(st.integers(1, size))
    hi = data.draw(st.integers(lo - 1, size))
    assert (smallest_tile_per_trip_count(size, lo, hi).tolist()
            == smallest_per_trip_count(size, np.arange(lo, hi + 1, dtype=np.int64)).tolist())


def test_an_extent_at_the_limit_is_searched_in_small_memory():
    # K = 2**24 took 76 s and 1.1 GB building every tile before keeping 8,190 of them
    import tracemalloc
    layer = Layer(K=int64.MAX_EXTENT, C=1, OY=1, OX=1)
    tracemalloc.start()
    try:
        cands = tile_candidates(layer, "K", Constraints())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(cands) < 2 * 4097 and cands[0] == 1 and cands[-1] == int64.MAX_EXTENT // 2
    assert peak < 16 << 20          # numpy reports its buffers to tracemalloc
