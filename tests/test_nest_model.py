"""The multi-level model against the multi-level walking simulator, and against the single-level model.

Generated layers (batch, groups, depthwise, stride, dilation, padding with gaps), hierarchies (1-3
levels, bypass, per-level double buffering and DMA granularity, word sizes) and nests (each dimension
tiled by up to three loops, edge tiles, any order, buffers anywhere at non-decreasing positions):
every count of every boundary, every buffer size, and the output, exactly.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convsched.core.hierarchy import Hierarchy
from convsched.core.nest import Nest
from convsched.model.closed_form import evaluate
from convsched.model.nest_model import evaluate_nest
from convsched.model.nest_simulate import simulate_nest
from strategies import hierarchies, nests
from test_model_property import architectures, schedules

SLOW = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


@st.composite
def cases(draw):
    h = draw(hierarchies())
    return draw(nests(h, max_tiles=300)), h


@settings(max_examples=1200, deadline=None, suppress_health_check=SLOW)
@given(cases())
def test_model_equals_walk_on_every_boundary(case):
    nest, h = case
    model = evaluate_nest(nest, h)
    sim = simulate_nest(nest, h)
    assert sim.output_ok, (sim.max_abs_error, sim.missing_reads, sim.missing_loads)
    assert model == sim.traffic, (nest.to_dict(), h)


@settings(max_examples=600, deadline=None, suppress_health_check=SLOW)
@given(s=schedules(), arch=architectures())
def test_one_level_gives_the_single_level_figures(s, arch):
    t = evaluate(s, arch)
    r = evaluate_nest(Nest.from_schedule(s), Hierarchy.from_architecture(arch))
    b = r.boundary("L1")
    for op in ("input", "weight", "output"):
        assert b.operand(op) == t.operand(op)
    assert r.buffer_words["L1"] == t.buffer_words and r.buffer_bytes["L1"] == t.buffer_bytes
    assert r.total_bytes == t.total_bytes and r.energy == 200 * t.total_bytes
