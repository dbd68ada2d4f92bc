"""The vectorised model equals the scalar model for every candidate it evaluates."""

import numpy as np
from hypothesis import assume, given, settings, strategies as st

from convsched.core.errors import ConvschedError
from convsched.core.layer import DIMS, Layer
from convsched.model.closed_form import evaluate
from convsched.core.schedule import Schedule
from convsched.model.spatialtable import SpatialTable
from convsched.model.vectorised import evaluate_many


@st.composite
def layer_and_candidates(draw):
    G = draw(st.sampled_from([1, 1, 2, 3]))
    while True:
        try:
            layer = Layer(N=draw(st.integers(1, 2)), G=G, K=G * draw(st.integers(1, 5)), C=G * draw(st.integers(1, 5)),
                          OY=draw(st.integers(1, 14)), OX=draw(st.integers(1, 9)), FY=draw(st.integers(1, 5)),
                          FX=draw(st.integers(1, 3)), SY=draw(st.integers(1, 3)), SX=draw(st.integers(1, 2)),
                          DY=draw(st.integers(1, 2)), DX=draw(st.integers(1, 2)), PY=draw(st.integers(0, 4)),
                          PX=draw(st.integers(0, 2)))
            break
        except ConvschedError:
            continue
    dims = draw(st.permutations(DIMS))[: draw(st.integers(0, 8))]
    buffers = {op: draw(st.integers(0, len(dims))) for op in ("input", "weight", "output")}
    cands = [{d: draw(st.integers(1, layer.dim_size(d))) for d in dims} for _ in range(4)]
    return layer, tuple(dims), buffers, cands


@settings(max_examples=150, deadline=None)
@given(layer_and_candidates())
def test_vectorised_equals_scalar(case):
    layer, order, buffers, cands = case
    v = evaluate_many(layer, order, buffers, {d: np.array([c[d] for c in cands]) for d in order})
    for i, c in enumerate(cands):
        m = evaluate(Schedule(layer, order, c, buffers))
        pick = lambda a: int(np.broadcast_to(a, (len(cands),))[i])  # noqa: E731
        assert pick(v.input_read) == m.input.read
        assert pick(v.weight_read) == m.weight.read
        assert pick(v.output_read) == m.output.read
        assert pick(v.output_write) == m.output.write
        assert pick(v.total_bytes) == m.total_bytes
        assert pick(v.buffer_bytes) == m.total_buffer_bytes
        for op in ("input", "weight", "output"):
            assert pick(v.buffer_words[op]) == m.buffer_words[op]


_PLACEMENTS = [(op, fp, j, j in (op, fp)) for op in (None, 0, 1, 3) for fp in (None, 0, 1, 3)
               if op is None or op != fp for j in (-1, 1, 2, 3)]


@settings(max_examples=60, deadline=None)
@given(o=st.integers(1, 20), f=st.integers(1, 7), s=st.integers(1, 3), d=st.integers(1, 2), p=st.integers(0, 6),
       extra=st.integers(0, 3), placement=st.sampled_from(_PLACEMENTS))
def test_spatial_tables_equal_walking_every_tile_pair(o, f, s, d, p, extra, placement):
    """The array-built input-axis tables equal the per-pair walk of axes.GridAxis, for every pair."""
    try:        # extra input rows that no output reads (up to stride - 1), padding up to the whole filter
        layer = Layer(K=1, C=1, OY=o, OX=1, FY=f, SY=s, DY=d, PY=p, IY=(o - 1) * s + (f - 1) * d + 1 - 2 * p
                      + min(extra, s - 1))
    except ConvschedError:
        assume(False)
    table = SpatialTable(layer, "Y")
    for got, want in zip(table.table(*placement), table.table_by_walking(*placement)):
        np.testing.assert_array_equal(got, want)
