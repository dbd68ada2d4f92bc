"""`axes.read_span`: the input positions a block really reads, against their definition."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from convsched.model.axes import read_span


def brute_span(o0: int, o1: int, f0: int, f1: int, s: int, d: int, p: int, size: int) -> tuple[int, int]:
    pos = [o * s + f * d - p for o in range(o0, o1) for f in range(f0, f1)]
    pos = [v for v in pos if 0 <= v < size]
    return (min(pos), max(pos) + 1) if pos else (0, 0)


@st.composite
def ranges(draw):
    o_size, f_size = draw(st.integers(1, 12)), draw(st.integers(1, 6))
    s, d, p = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(0, 8))
    size = draw(st.integers(1, 40))
    o0 = draw(st.integers(0, o_size - 1))
    o1 = draw(st.integers(o0 + 1, o_size))
    f0 = draw(st.integers(0, f_size - 1))
    f1 = draw(st.integers(f0 + 1, f_size))
    return o0, o1, f0, f1, s, d, p, size


@settings(max_examples=2000, deadline=None)
@given(ranges())
def test_read_span_is_the_smallest_and_largest_position_read(case):
    lo, hi = read_span(*case)
    assert (int(lo), int(hi)) == brute_span(*case)


@settings(max_examples=150, deadline=None)
@given(o_size=st.integers(1, 12), f_size=st.integers(1, 6), s=st.integers(1, 4), d=st.integers(1, 4),
       p=st.integers(0, 8), size=st.integers(1, 40))
def test_read_span_over_arrays_equals_each_block(o_size, f_size, s, d, p, size):
    """Every (output range, tap range) pair at once, as the model's tables ask (the array path
    above 64 blocks, the one-by-one path below): element by element the definition."""
    o_pairs = np.array([(a, b) for a in range(o_size) for b in range(a + 1, o_size + 1)])
    f_pairs = np.array([(a, b) for a in range(f_size) for b in range(a + 1, f_size + 1)])
    lo, hi = read_span(o_pairs[:, None, 0], o_pairs[:, None, 1], f_pairs[None, :, 0], f_pairs[None, :, 1],
                       s, d, p, size)
    assert lo.shape == hi.shape == (len(o_pairs), len(f_pairs))
    for i, (o0, o1) in enumerate(o_pairs.tolist()):
        for j, (f0, f1) in enumerate(f_pairs.tolist()):
            assert (int(lo[i, j]), int(hi[i, j])) == brute_span(o0, o1, f0, f1, s, d, p, size)


def test_issue_14_edges():
    # dilation 2: output row 2 with taps 0..1 reads rows 1 and 3; row 3 is padding (IY = 3)
    assert tuple(map(int, read_span(2, 3, 0, 2, 1, 2, 1, 3))) == (1, 2)
    # stride 2: tap 2 of outputs 0..2 reads columns 1, 3, 5; column 5 is padding (IX = 5)
    assert tuple(map(int, read_span(0, 3, 2, 3, 2, 1, 1, 5))) == (1, 4)
    # wholly in the padding: output 0, tap 0, padding 1
    assert tuple(map(int, read_span(0, 1, 0, 1, 1, 1, 1, 4))) == (0, 0)
