"""The vectorised multi-level model equals the scalar one on every candidate of generated nest structures."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import hierarchies, nests

from convsched.core.hierarchy import Hierarchy, Level
from convsched.core.nest import Loop, Nest
from convsched.model.nest_model import evaluate_nest
from convsched.model.nest_vectorised import NestStructure, buffer_bytes_many, evaluate_nest_many, nest_bytes_many

SLOW = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


@st.composite
def structures_with_candidates(draw):
    """A nest structure (from a generated nest, without granularity) and a few tile candidates per loop,
    each candidate a valid nest (a dimension's later tile at most its earlier one)."""
    h = draw(hierarchies())
    h = Hierarchy(tuple(Level(lv.name, double_buffer=lv.double_buffer, holds=lv.holds) for lv in h.levels),
                  h.input_bits, h.weight_bits, h.psum_bits, h.output_bits)
    nest = draw(nests(h, max_tiles=10 ** 9))
    n = draw(st.integers(1, 6))
    cands = []
    for _ in range(n):
        last: dict[str, int] = {}
        row = []
        for lp in nest.loops:
            t = draw(st.integers(1, last.get(lp.dim, nest.layer.dim_size(lp.dim))))
            last[lp.dim] = t
            row.append(t)
        cands.append(row)
    return nest, h, np.array(cands, dtype=np.int64).reshape(n, len(nest.loops))


@settings(max_examples=400, deadline=None, suppress_health_check=SLOW)
@given(structures_with_candidates())
def test_vectorised_equals_scalar_on_every_candidate(case):
    nest, h, cands = case
    structure = NestStructure(tuple(lp.dim for lp in nest.loops), nest.buffers)
    many = evaluate_nest_many(nest.layer, structure, [cands[:, k] for k in range(cands.shape[1])], h)
    main, energy, per_level = nest_bytes_many(many, h, nest.layer)
    buf = buffer_bytes_many(many, h)
    for i, row in enumerate(cands.tolist()):
        one = Nest(nest.layer, tuple(Loop(lp.dim, t) for lp, t in zip(nest.loops, row)), nest.buffers)
        t = evaluate_nest(one, h)
        for lv in h.levels:
            b = t.boundary(lv.name)
            for op in lv.holds:
                assert int(np.broadcast_to(many.reads[lv.name][op], (len(cands),))[i]) == b.operand(op).read
                assert int(np.broadcast_to(many.writes[lv.name][op], (len(cands),))[i]) == b.operand(op).write
                assert int(np.broadcast_to(many.buffer_words[lv.name][op], (len(cands),))[i]) == \
                    t.buffer_words[lv.name][op]
            assert int(np.broadcast_to(per_level[lv.name], (len(cands),))[i]) == b.bytes
            assert int(np.broadcast_to(buf[lv.name], (len(cands),))[i]) == sum(t.buffer_bytes[lv.name].values())
        assert int(np.broadcast_to(main, (len(cands),))[i]) == t.total_bytes
        assert float(np.broadcast_to(energy, (len(cands),))[i]) == t.energy
