"""Per-axis pieces of the traffic model.

An operand's block is a box: a product of one set per axis (batch, group,
channel, input rows, input columns, ...). Each axis is controlled by at most
two tile loops (input rows by the OY and FY loops). Everything the model
needs from an axis, for the loops above a buffer split at loop position `j`,
is a small histogram of `(first, overlap, count)` entries:

* `first`   -- size of the axis set of the first live block of the loops
               inside `j` (the "suffix"), for one combination of the axis's
               loops outside `j` (the "prefix");
* `overlap` -- size of its intersection with the last live block before it;
* `count`   -- how many prefix combinations give that pair.

A block is *live* when it is non-empty; only input row/column sets can be
empty (a tile wholly in the padding). Because liveness and sets of distinct
axes depend on disjoint loops, the first live block of a loop suffix is the
product of each axis's first live set, which is what lets the model multiply
per-axis sums instead of walking the tile iterations.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..core.dims import ceil_div

Entry = tuple[int, int, int]  # (first, overlap, count)


def merge_entries(entries: list[Entry]) -> list[Entry]:
    """The entries with equal (first, overlap) summed into one, empty ones dropped."""
    acc: dict[tuple[int, int], int] = {}
    for f, i, c in entries:
        if c:
            acc[(f, i)] = acc.get((f, i), 0) + c
    return [(f, i, c) for (f, i), c in acc.items()]


@dataclass(frozen=True)
class TileAxis:
    """An axis controlled by one tile loop whose tiles are disjoint and never empty."""

    size: int        # extent of the dimension
    tile: int        # tile size
    pos: int | None  # position of its loop among the loops above the buffer, None if below

    @property
    def trips(self) -> int:
        return ceil_div(self.size, self.tile) if self.pos is not None else 1

    @property
    def last(self) -> int:
        return self.size - (self.trips - 1) * self.tile if self.pos is not None else self.size

    def max_size(self) -> int:
        return self.tile if self.pos is not None else self.size

    def split(self, j: int) -> list[Entry]:
        if self.pos is None:
            return [(self.size, self.size, 1)]
        n, t, last = self.trips, self.tile, self.last
        if j < self.pos:     # loop inside the split: first tile vs last tile
            return [(t if n > 1 else last, last if n == 1 else 0, 1)]
        # loop outside the split: every tile is its own first and last
        return merge_entries([(t, t, n - 1), (last, last, 1)])

    def owned_split(self, j: int) -> list[Entry]:
        """Consecutive tiles of its own loop (at position j): tile l+1 after tile l, disjoint."""
        n, t, last = self.trips, self.tile, self.last
        return merge_entries([(t, 0, n - 2), (last, 0, 1)]) if n >= 2 else []


class GridAxis:
    """An axis controlled by up to two loops; sets are `V ∩ [lo, hi)` for a read set V.

    Used for input rows (loops OY, FY) and columns (OX, FX). `lo`/`hi` are
    arrays over the axis's own tile grid, indexed in loop-position order;
    `count_below[x]` is the number of read positions below `x`.
    """

    def __init__(self, positions: Sequence[int], trips: Sequence[int],
                 lo: np.ndarray, hi: np.ndarray, count_below: np.ndarray) -> None:
        self.positions = list(positions)
        self.trips = list(trips)
        self.lo, self.hi, self.cnt = lo, hi, count_below
        self.sizes = np.where(hi > lo, count_below[np.maximum(hi, lo)] - count_below[lo], 0)

    def max_size(self) -> int:
        return int(self.sizes.max())

    def _inter(self, a: tuple[int, ...], b: tuple[int, ...]) -> int:
        lo = max(self.lo[a], self.lo[b])
        hi = min(self.hi[a], self.hi[b])
        return int(self.cnt[hi] - self.cnt[lo]) if hi > lo else 0

    def _first_last(self, fixed: dict[int, int]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """First and last live grid points (lexicographic) with some loop indices fixed."""
        ranges = [range(fixed[k], fixed[k] + 1) if k in fixed else range(self.trips[k])
                  for k in range(len(self.positions))]
        first = last = None
        for idx in itertools.product(*ranges):
            if self.sizes[idx] > 0:
                if first is None:
                    first = idx
                last = idx
        return None if first is None else (first, last)

    def split(self, j: int) -> list[Entry]:
        prefix = [k for k, p in enumerate(self.positions) if p < j]
        entries: list[Entry] = []
        for vals in itertools.product(*(range(self.trips[k]) for k in prefix)):
            fl = self._first_last(dict(zip(prefix, vals)))
            if fl is not None:
                entries.append((int(self.sizes[fl[0]]), self._inter(fl[0], fl[1]), 1))
        return merge_entries(entries)

    def owned_split(self, j: int) -> list[Entry]:
        own = self.positions.index(j)
        prefix = [k for k, p in enumerate(self.positions) if p < j]
        entries: list[Entry] = []
        for vals in itertools.product(*(range(self.trips[k]) for k in prefix)):
            fixed = dict(zip(prefix, vals))
            prev_last = None
            for l in range(self.trips[own]):
                fl = self._first_last({**fixed, own: l})
                if fl is None:
                    continue
                if prev_last is not None:
                    entries.append((int(self.sizes[fl[0]]), self._inter(fl[0], prev_last), 1))
                prev_last = fl[1]
        return merge_entries(entries)


def read_positions(o: int, f: int, s: int, d: int, p: int, i: int) -> np.ndarray:
    """`count_below` for the input positions some output reads: {oy*s + fy*d - p} ∩ [0, i)."""
    used = np.zeros(i, dtype=bool)
    for fy in range(f):
        start = fy * d - p
        rows = np.arange(start, start + o * s, s)
        used[rows[(rows >= 0) & (rows < i)]] = True
    return np.concatenate([[0], np.cumsum(used)]).astype(np.int64)


_SMALL = 64   # read_span: up to this many blocks, one by one in Python


def _one_span(o0: int, o1: int, f0: int, f1: int, stride: int, dilation: int, pad: int, size: int
              ) -> tuple[int, int]:
    """`read_span` of one block, in Python integers."""
    lo = o0 * stride + f0 * dilation - pad
    hi = (o1 - 1) * stride + (f1 - 1) * dilation - pad + 1
    if o1 <= o0 or f1 <= f0:              # no block (a padded grid entry): empty, safe to index
        return 0, 0
    if lo >= 0 and hi <= size:
        return lo, hi
    first, last = size, -1
    for f in range(f0, f1):
        base = f * dilation - pad
        o_min = max(o0, -(base // stride))
        o_max = min(o1 - 1, (size - 1 - base) // stride)
        if o_min <= o_max:
            first = min(first, o_min * stride + base)
            last = max(last, o_max * stride + base)
    return (first, last + 1) if first <= last else (0, 0)


def read_span(o0, o1, f0, f1, stride: int, dilation: int, pad: int, size: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """`[lo, hi)`: the smallest and one past the largest input position a block reads.

    The block of output positions `[o0, o1)` with filter taps `[f0, f1)` reads
    `{o*stride + f*dilation - pad}` inside `[0, size)` (docs/semantics.md).
    Where the window `[o0*stride + f0*dilation - pad, (o1-1)*stride +
    (f1-1)*dilation - pad + 1)` lies inside the input, its ends are read and
    it is exact; where an end falls in the padding, clipping it to the input
    could land on a position this block never reads (a stride or dilation
    leaves gaps), so the true end is found tap by tap: for each filter tap the
    first and last output whose position is inside the input. Blocks that read
    only padding get `lo == hi == 0`. Arguments broadcast (numpy arrays or ints).
    """
    o0, o1, f0, f1 = np.broadcast_arrays(*(np.asarray(a, dtype=np.int64) for a in (o0, o1, f0, f1)))
    if o0.size <= _SMALL:
        # the scalar model's few tiles: plain integers cost less than a dozen array operations
        spans = [_one_span(*v, stride, dilation, pad, size)
                 for v in zip(o0.ravel().tolist(), o1.ravel().tolist(), f0.ravel().tolist(), f1.ravel().tolist())]
        out = np.array(spans, dtype=np.int64).reshape(o0.shape + (2,))
        return out[..., 0], out[..., 1]
    lo = o0 * stride + f0 * dilation - pad
    hi = (o1 - 1) * stride + (f1 - 1) * dilation - pad + 1
    lo, hi = np.broadcast_to(lo, o0.shape), np.broadcast_to(hi, o0.shape)
    shape = o0.shape
    o0, o1, f0, f1, lo, hi = (a.ravel() for a in (o0, o1, f0, f1, lo, hi))
    edge = ((lo < 0) | (hi > size)) & (o1 > o0) & (f1 > f0)
    lo, hi = np.minimum(np.maximum(lo, 0), size), np.minimum(np.maximum(hi, 0), size)
    if edge.any():
        idx = np.nonzero(edge)
        a0, a1, b0, b1 = o0[idx], o1[idx], f0[idx], f1[idx]
        first = np.full(a0.shape, size, dtype=np.int64)    # smallest position read (size: none)
        last = np.full(a0.shape, -1, dtype=np.int64)       # largest position read (-1: none)
        for k in range(int((b1 - b0).max())):
            f = b0 + k
            base = f * dilation - pad                      # position of output 0 under tap f
            o_min = np.maximum(a0, -(base // stride))       # first output at or after position 0
            o_max = np.minimum(a1 - 1, (size - 1 - base) // stride)  # last output before `size`
            reads = (f < b1) & (o_min <= o_max)
            first = np.where(reads, np.minimum(first, o_min * stride + base), first)
            last = np.where(reads, np.maximum(last, o_max * stride + base), last)
        lo[idx], hi[idx] = first, last + 1
    empty = hi <= lo
    if empty.any():
        lo, hi = np.where(empty, 0, lo), np.where(empty, 0, hi)
    return lo.reshape(shape), hi.reshape(shape)


def spatial_axis(o_size: int, o_tile: int, o_pos: int | None,
                 f_size: int, f_tile: int, f_pos: int | None,
                 stride: int, dilation: int, pad: int, in_size: int,
                 count_below: np.ndarray | None = None) -> GridAxis:
    """The input row (or column) axis for output tiles and filter tiles of one schedule."""
    if count_below is None:
        count_below = read_positions(o_size, f_size, stride, dilation, pad, in_size)
    loops = []  # (position, kind)
    if o_pos is not None:
        loops.append((o_pos, "o"))
    if f_pos is not None:
        loops.append((f_pos, "f"))
    loops.sort()
    ranges: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for kind, size, tile, pos in (("o", o_size, o_tile, o_pos), ("f", f_size, f_tile, f_pos)):
        if pos is None:
            ranges[kind] = (np.array([0]), np.array([size]))
        else:
            starts = np.arange(0, size, tile)
            ranges[kind] = (starts, np.minimum(starts + tile, size))
    (o0, o1), (f0, f1) = ranges["o"], ranges["f"]
    # grid over (o, f); transpose afterwards if the f loop is the outer one
    lo, hi = read_span(o0[:, None], o1[:, None], f0[None, :], f1[None, :], stride, dilation, pad, in_size)
    kinds = [k for _, k in loops]
    if kinds == ["f", "o"]:
        lo, hi = lo.T, hi.T
    # drop the grid dimensions of loops that are not above the buffer
    if o_pos is None and f_pos is None:
        lo, hi = lo.reshape(()), hi.reshape(())
    elif o_pos is None:
        lo, hi = lo.reshape(-1), hi.reshape(-1)
    elif f_pos is None:
        lo, hi = lo.reshape(-1), hi.reshape(-1)
    trips = [len(ranges[k][0]) for k in kinds]
    return GridAxis([p for p, _ in loops], trips, lo, hi, count_below)


Axis = TileAxis | GridAxis


def combine(axes: Sequence[Axis], entries: Sequence[list[Entry]],
            step_cost: Callable[[int], int] | None = None) -> int:
    """Σ over combinations of per-axis entries of cost(Π first − Π overlap) × Π count.

    Without `step_cost` the sum factorises into products of per-axis sums.
    With it (DMA granularity: each step rounded up), combinations are walked
    explicitly -- histograms are small, a handful of entries per axis.
    """
    if step_cost is None:
        firsts = overlaps = 1
        for ents in entries:
            firsts *= sum(f * c for f, _, c in ents)
            overlaps *= sum(i * c for _, i, c in ents)
        return firsts - overlaps
    total = 0
    for combo in itertools.product(*entries):
        f = i = c = 1
        for ef, ei, ec in combo:
            f, i, c = f * ef, i * ei, c * ec
        total += step_cost(f - i) * c
    return total
