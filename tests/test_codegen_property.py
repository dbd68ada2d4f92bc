"""Property: for generated layers and schedules, the compiled C code moves exactly the
model's words and bytes, fits its buffers and computes the reference output bit for bit.

Each hypothesis example is a batch of schedules compiled into one C program (one
release build and one checked ASan/UBSan build), so a few dozen schedules run
in well under a minute.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convsched.core.arch import Architecture
from convsched.codegen import find_compiler, run_cases
from convsched.codegen.harness import sanitizer_flags
from convsched.codegen.kernel_check import run_kernels
from convsched.model.closed_form import evaluate
from convsched.core.layer import DIMS, Layer
from convsched.core.schedule import Schedule
from strategies import gapped_schedules

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None,
                                reason="no C compiler ('cc' or $CC) on PATH")

BATCH = 6
EXAMPLES = int(os.environ.get("CONVSCHED_CODEGEN_EXAMPLES", "16"))


@st.composite
def layers(draw) -> Layer:
    kind = draw(st.sampled_from(["plain", "plain", "grouped", "depthwise"]))
    if kind == "depthwise":
        G = draw(st.integers(2, 5))
        K = C = G
    else:
        G = 1 if kind == "plain" else draw(st.integers(2, 3))
        K = G * draw(st.integers(1, 4))
        C = G * draw(st.integers(1, 4))
    kw = dict(K=K, C=C, G=G, N=draw(st.integers(1, 2)))
    for a in ("Y", "X"):
        o, f, s, d = draw(st.integers(1, 7)), draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        # symmetric padding must leave some input: 2P <= (O-1)S + (F-1)D
        p = draw(st.integers(0, min(2, ((o - 1) * s + (f - 1) * d) // 2)))
        kw.update({"O" + a: o, "F" + a: f, "S" + a: s, "D" + a: d, "P" + a: p})
    return Layer(**kw)


@st.composite
def schedules(draw) -> Schedule:
    layer = draw(layers())
    perm = draw(st.permutations(DIMS))
    order = tuple(perm[: draw(st.integers(0, len(DIMS)))])
    tiles = {d: draw(st.integers(1, layer.dim_size(d))) for d in order}
    buffers = {op: draw(st.integers(0, len(order))) for op in ("input", "weight", "output")}
    return Schedule(layer, order, tiles, buffers)


@st.composite
def archs(draw) -> Architecture:
    gran = draw(st.sampled_from([0, 0, 0, 4, 3]))
    if draw(st.booleans()):
        return Architecture(dma_granularity=gran)
    bits = draw(st.sampled_from([4, 8, 12, 16]))
    return Architecture(input_bits=bits, weight_bits=draw(st.sampled_from([bits, 8])),
                        psum_bits=draw(st.sampled_from([32, 24, 16])),
                        output_bits=draw(st.sampled_from([bits, 8, 16])), dma_granularity=gran)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(st.lists(st.tuples(schedules(), archs()), min_size=BATCH, max_size=BATCH), st.integers(0, 2**32))
def test_generated_code_matches_model_and_reference(cases, seed):
    results = run_cases(cases, seed=seed, kernel=False)   # kernels: the next test, double-buffered or not
    bad = [(r.schedule.to_json(), r.arch, r.problems) for r in results if not r.passed]
    assert not bad, bad
    for r in results:
        assert r.output_matches
        assert r.measured_words() == r.predicted_words()
        assert r.measured_bytes() == r.predicted_bytes()


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(st.lists(st.tuples(schedules(), archs(), st.booleans()), min_size=BATCH, max_size=BATCH), st.integers(0, 2**32))
def test_kernels_double_buffered_or_not_under_both_dmas(cases, seed):
    """The deployable kernels alone (issue 18): single- and double-buffered, under the counting DMA (bytes per
    boundary equal the model's, output the reference) and the lazy DMA (output the reference)."""
    pairs = [(s, dataclasses.replace(a, double_buffer=db)) for s, a, db in cases]
    cc = find_compiler()
    runs = run_kernels(pairs, [evaluate(s, a) for s, a in pairs], cc, seed, sanitizer_flags(cc))
    bad = [(r.kernel.plan.schedule.to_json(), r.kernel.double_buffered, r.problems) for r in runs if r.problems]
    assert not bad, bad
    for r, (s, a) in zip(runs, pairs):
        assert r.output_matches and r.lazy_dma_passed
        assert r.boundaries()[0]["traffic"] == evaluate(s, a).to_json()["traffic"]


@settings(max_examples=max(2, EXAMPLES // 4), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(st.lists(gapped_schedules(max_tiles=200), min_size=BATCH, max_size=BATCH), st.integers(0, 2**32))
def test_generated_code_where_padding_meets_a_gap(schedules_, seed):
    """Input windows whose end falls in the padding under a stride or dilation gap (issue 14)."""
    results = run_cases([(s, Architecture()) for s in schedules_], seed=seed)
    bad = [(r.schedule.to_json(), r.problems) for r in results if not r.passed]
    assert not bad, bad
    for r in results:
        assert r.measured_words() == r.predicted_words()
