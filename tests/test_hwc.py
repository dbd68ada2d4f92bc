"""HWC: per-tile execution equals the model; the cycle model against the event simulation; config errors."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings

from convsched.core.arch import Architecture
from convsched.core.errors import ConvschedError
from convsched.hwc import compare_layer, run_hwc, smallest_total_buffer
from convsched.hwc.config import HWCConfig
from convsched.hwc.cycles import cycle_model, cycle_report, execute, lanes, slowdown, tile_steps
from convsched.hwc.eventsim import CYCLE_TOLERANCE, event_simulate
from convsched.core.layer import Layer
from convsched.model.closed_form import evaluate
from convsched.core.schedule import Schedule
from strategies import gapped_schedules

CFG = HWCConfig.default()


def random_schedules(seed: int, count: int):
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        try:
            L = Layer(K=rng.randint(1, 6), C=rng.randint(1, 5), OY=rng.randint(1, 7), OX=rng.randint(1, 6),
                      FY=rng.randint(1, 3), FX=rng.randint(1, 3), SY=rng.randint(1, 2), SX=rng.randint(1, 2),
                      DY=rng.randint(1, 2), PY=rng.randint(0, 1), PX=rng.randint(0, 1), N=rng.randint(1, 2))
        except ConvschedError:
            continue
        dims = [d for d in ("N", "K", "C", "OY", "OX", "FY", "FX") if L.dim_size(d) > 1]
        rng.shuffle(dims)
        order = dims[:rng.randint(0, len(dims))]
        tiles = {d: rng.randint(1, L.dim_size(d)) for d in order}
        bufs = {op: rng.randint(0, len(order)) for op in ("input", "weight", "output")}
        out.append((rng, Schedule(L, tuple(order), tiles, bufs)))
    return out


def test_tile_steps_equal_the_model():
    arch = CFG.architecture()
    for _, s in random_schedules(1, 300):
        t = evaluate(s, arch)
        st = tile_steps(s)
        tot = st.totals()
        assert tot == {"macs": s.layer.macs, "input": t.input.read, "weight": t.weight.read,
                       "readback": t.output.read, "write": t.output.write}, s.to_dict()
        assert int(st.write_words[st.write_final].sum()) == t.output_final_writes
        # bytes (16-bit words: whole bytes per step)
        ln = lanes(st, CFG)
        assert int(ln.load_bytes.sum() + ln.write_bytes.sum()) == t.total_bytes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much,
                                                                    HealthCheck.too_slow])
@given(gapped_schedules())
def test_tile_steps_equal_the_model_where_padding_meets_a_gap(s):
    """The HWC's tile steps fetch the same input blocks as the model (issue 14's windows)."""
    t = evaluate(s, CFG.architecture())
    assert tile_steps(s).totals()["input"] == t.input.read


def test_event_sim_against_cycle_model_random_schedules():
    """Traffic exact; cycles exact single-buffered; double-buffered 0 <= model - sim <= write cycles."""
    n = 0
    for rng, s in random_schedules(2, 60):
        for db in (False, True):
            cfg = replace(CFG, double_buffer=db, macs_per_cycle=rng.choice([1, 4, 16]),
                          port_bytes_per_cycle=rng.choice([1, 2, 8]), dma_setup_cycles=rng.choice([0, 3, 10]))
            t = evaluate(s, cfg.architecture())
            st = tile_steps(s)
            model = cycle_model(st, cfg)
            sim = event_simulate(s, cfg)
            assert sim.output_ok
            assert sim.bytes == t.total_bytes
            assert sim.words == {"input": t.input.read, "weight": t.weight.read, "readback": t.output.read,
                                 "write": t.output.write}
            assert sim.compute_cycles == model.compute_cycles
            if db:
                assert sim.cycles <= model.cycles <= sim.cycles + int(lanes(st, cfg).write.sum())
            else:
                assert sim.cycles == model.cycles
            n += 1
    assert n == 120


@pytest.mark.parametrize("layer,buffers", [
    (Layer(K=8, C=8, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1), (512, 256, 512)),
    (Layer(K=8, C=8, OY=7, OX=7), (256, 128, 256)),
    (Layer(K=8, C=8, G=8, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1), (512, 256, 512)),
])
@pytest.mark.parametrize("db", [True, False])
def test_optimal_schedule_executed(layer, buffers, db):
    """The optimizer's schedule on the HWC: traffic = model; event sim within the stated tolerance."""
    cfg = replace(CFG, buffers=buffers, double_buffer=db)
    run = run_hwc(layer, cfg)
    arch = cfg.architecture()
    assert arch.fits(run.traffic.buffer_words)
    assert run.traffic == evaluate(run.schedule, arch)
    st = tile_steps(run.schedule).totals()
    assert (st["input"], st["weight"], st["readback"], st["write"]) == (
        run.traffic.input.read, run.traffic.weight.read, run.traffic.output.read, run.traffic.output.write)
    assert run.report.bytes == run.traffic.total_bytes
    sim = event_simulate(run.schedule, cfg)
    assert sim.bytes == run.traffic.total_bytes and sim.output_ok
    if db:
        assert abs(sim.cycles - run.report.cycles) <= CYCLE_TOLERANCE * run.report.cycles
    else:
        assert sim.cycles == run.report.cycles


def test_report_fields_and_slowdown():
    s = Schedule(Layer(K=8, C=8, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1), ("K", "OY"), {"K": 4, "OY": 2},
                 {"input": 2, "weight": 1, "output": 2})
    ex = execute(s, CFG)
    r = ex.report
    assert r.cycles >= r.compute_cycles > 0 and r.stall_cycles == r.cycles - r.compute_cycles
    assert 0 < r.mac_utilisation <= 1
    assert r.bytes == ex.traffic.total_bytes
    assert r.peak_bandwidth_gbs >= r.full_speed_bandwidth_gbs >= r.avg_bandwidth_gbs > 0
    slow = [slowdown(ex.steps, CFG, bw) for bw in (0.01, 0.1, 1.0, 100.0)]
    assert slow == sorted(slow, reverse=True) and slow[0] > 1.0 and slow[-1] >= 1.0


def test_compare_layer_ratio():
    c = compare_layer(Layer(K=8, C=8, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1), replace(CFG, buffers=(512, 256, 512)))
    d = c.to_dict(CFG)
    assert d["ratio"] == d["hwce_bytes"] / d["hwc_bytes"] and d["ratio"] > 1


# ---- configuration ----------------------------------------------------------

def test_default_config_file_matches_dataclass_defaults():
    assert HWCConfig.default() == HWCConfig()


@pytest.mark.parametrize("data,needle", [
    ({"port_bytes_per_cycle": 0}, "port_bytes_per_cycle"),
    ({"macs_per_cycle": 0}, "macs_per_cycle"),
    ({"buffers": {"input": "0B"}}, "size"),
    ({"buffers": {"scratch": "1KiB"}}, "unknown buffer"),
    ({"bits": {"input": 0}}, "bits"),
    ({"clock_mhz": -1}, "clock_mhz"),
    ({"dma_setup_cycles": -2}, "dma_setup_cycles"),
    ({"double_buffer": "yes"}, "double_buffer"),
    ({"wat": 1}, "unknown HWC configuration key"),
    ([1, 2], "mapping"),
])
def test_config_errors_one_line(data, needle):
    with pytest.raises(ConvschedError) as e:
        HWCConfig.from_dict(data)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_buffers_too_small_names_the_smallest_total():
    L = Layer(K=8, C=8, OY=7, OX=7)
    cfg = CFG.with_total_buffer(15)
    with pytest.raises(ConvschedError) as e:
        run_hwc(L, cfg)
    need = smallest_total_buffer(L, cfg)
    assert f"{need} B" in str(e.value) and "\n" not in str(e.value)
    run_hwc(L, CFG.with_total_buffer(need))               # fits
    with pytest.raises(ConvschedError):
        run_hwc(L, CFG.with_total_buffer(need - 1))


def test_with_total_buffer_keeps_proportions():
    c = CFG.with_total_buffer(8192)
    assert c.buffers == (3072, 2048, 3072) and c.total_buffer == 8192
    assert c.with_total_buffer(16).buffers == CFG.with_total_buffer(16).buffers
    arch = c.architecture()
    assert isinstance(arch, Architecture) and arch.capacity_per_operand == (3072, 2048, 3072)
    assert arch.double_buffer and arch.input_bits == 16


def test_streamed_cycle_report_equals_full_model():
    """Chunked streaming (any chunk size) gives the same report as the full per-tile arrays."""
    for rng, s in random_schedules(5, 80):
        for db in (True, False):
            cfg = replace(CFG, double_buffer=db, dma_setup_cycles=rng.choice([0, 5]),
                          port_bytes_per_cycle=rng.choice([1, 8]), macs_per_cycle=rng.choice([1, 16]))
            full = cycle_model(tile_steps(s), cfg)
            for chunk in (1, 3):
                assert cycle_report(s, cfg, chunk=chunk) == full, s.to_dict()
