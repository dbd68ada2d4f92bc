"""The closed-form model over a memory hierarchy and a loop nest (docs/multilevel.md).

Every boundary is counted with the single-level rules, the outer holder playing main memory: its
traffic is that of the inner buffer's block sequence, which depends only on the loops above that
buffer. So the model is `model.closed_form`'s method (transitions per loop, summed per axis and
multiplied across axes, docs/semantics.md "How the closed form works") generalised to loops that
tile a dimension several times:

* a dimension tiled by loops of tiles t1 >= t2 >= ... splits its extent into a tree of ranges;
  every range of one depth has one of a handful of lengths, so a plain axis (batch, group,
  channels, filter taps of the weights, output rows and columns of the output) keeps, per depth,
  a histogram {length: ranges}, and its first/last/overlap entries follow from the lengths alone
  (`PlainAxis`);
* an input row (column) axis depends on the positions of its output and filter ranges (padding,
  read rows), so it walks its own points -- one per (output range, filter range) pair at the
  innermost depths above the buffer, in loop order -- as `axes.GridAxis` does for one loop each
  (`SpatialAxis`);
* a loop over a dimension the operand does not depend on multiplies: its transitions number
  `sum over its outer ranges of (trips - 1)` = ranges at its depth minus ranges at the depth above.

Its cost grows with the ranges of each axis, never with the product over the nest's loops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..core.arch import OPERANDS, bits_to_bytes
from ..core.dims import DIMS, SPATIAL_AXES
from ..core.hierarchy import Hierarchy
from ..core.layer import Layer
from ..core.nest import Nest
from .axes import Entry, combine, merge_entries, read_span
from .closed_form import OperandTraffic, axis_of, read_counts
from .nest_traffic import BoundaryTraffic, NestTraffic, nest_energy, source_of


def _split_lengths(hist: dict[int, int], tile: int) -> dict[int, int]:
    """The ranges one more loop of `tile` cuts each range of `hist` into (the last one smaller)."""
    out: dict[int, int] = {}
    for length, count in hist.items():
        full, rest = divmod(length, tile)
        if full:
            out[tile] = out.get(tile, 0) + count * full
        if rest:
            out[rest] = out.get(rest, 0) + count
    return out


class PlainAxis:
    """An axis whose sets are the ranges of one dimension, cut by its loops above the buffer."""

    def __init__(self, size: int, positions: Sequence[int], tiles: Sequence[int]) -> None:
        self.positions = list(positions)
        self.tiles = list(tiles)
        self.depths = [{size: 1}]                # depth k: histogram of range lengths after k loops
        for t in self.tiles:
            self.depths.append(_split_lengths(self.depths[-1], t))
        self.size = size

    def _leaf(self, length: int) -> int:
        """Length of the first innermost range inside a range of `length`."""
        return min(length, self.tiles[-1]) if self.tiles else length

    def _depth_before(self, j: int) -> int:
        return sum(1 for p in self.positions if p < j)

    def ranges(self, depth: int) -> int:
        return sum(self.depths[depth].values())

    def max_size(self) -> int:
        return max(self.depths[-1])

    def split(self, j: int) -> list[Entry]:
        """A transition at a loop that is not this axis's: per range at the depth outside `j`, the first
        innermost range inside it and its overlap with the last one (all of it when there is one)."""
        q = self._depth_before(j)
        if q == len(self.tiles):
            return [(n, n, c) for n, c in self.depths[q].items()]
        tm = self.tiles[-1]
        return merge_entries([(min(n, tm), n if n <= tm else 0, c) for n, c in self.depths[q].items()])

    def owned_split(self, j: int) -> list[Entry]:
        """Its own loop at `j` advances: each next range's first innermost range, disjoint from the last."""
        k = self.positions.index(j)
        t = self.tiles[k]
        out: list[Entry] = []
        for n, c in self.depths[k].items():
            full, rest = divmod(n, t)
            if full >= 2:
                out.append((self._leaf(t), 0, c * (full - 1)))
            if full >= 1 and rest:
                out.append((self._leaf(rest), 0, c))
        return merge_entries(out)


class SpatialAxis:
    """The input rows (or columns): one point per (output range, filter range) at the innermost depths
    above the buffer, in loop order; its set is the read rows inside the point's span."""

    def __init__(self, layer: Layer, axis: str, loops: Sequence[tuple[int, str, int]]) -> None:
        o_dim, f_dim = SPATIAL_AXES[axis]
        self.positions = [p for p, _, _ in loops]
        stride, dil, pad, size = (getattr(layer, n + axis) for n in ("S", "D", "P", "I"))
        self.count = read_counts(layer, axis)
        index: list[tuple[int, ...]] = []
        spans: list[tuple[int, int, int, int]] = []
        rng = {o_dim: (0, layer.dim_size(o_dim)), f_dim: (0, layer.dim_size(f_dim))}
        path: list[int] = []

        def rec(k: int) -> None:
            if k == len(loops):
                index.append(tuple(path))
                spans.append((*rng[o_dim], *rng[f_dim]))
                return
            _, dim, tile = loops[k]
            a, e = rng[dim]
            for i, s in enumerate(range(a, e, tile)):
                rng[dim] = (s, min(s + tile, e))
                path.append(i)
                rec(k + 1)
                path.pop()
            rng[dim] = (a, e)

        rec(0)
        self.index = np.array(index, dtype=np.int64).reshape(len(index), len(loops))
        sp = np.array(spans, dtype=np.int64)
        self.lo, self.hi = read_span(sp[:, 0], sp[:, 1], sp[:, 2], sp[:, 3], stride, dil, pad, size)
        cnt = self.count
        self.sizes = np.where(self.hi > self.lo, cnt[np.maximum(self.hi, self.lo)] - cnt[self.lo], 0)

    def max_size(self) -> int:
        return int(self.sizes.max())

    def _inter(self, a: int, b: int) -> int:
        lo, hi = max(self.lo[a], self.lo[b]), min(self.hi[a], self.hi[b])
        return int(self.count[hi] - self.count[lo]) if hi > lo else 0

    def _groups(self, q: int) -> list[range]:
        """Runs of consecutive points that share their first `q` loop indices."""
        n = len(self.sizes)
        if q == 0:
            return [range(n)]
        change = np.nonzero(np.any(self.index[1:, :q] != self.index[:-1, :q], axis=1))[0] + 1
        bounds = [0, *change.tolist(), n]
        return [range(a, b) for a, b in zip(bounds, bounds[1:])]

    def _first_last(self, points: range) -> tuple[int, int] | None:
        live = np.nonzero(self.sizes[points.start:points.stop] > 0)[0]
        return None if live.size == 0 else (points.start + int(live[0]), points.start + int(live[-1]))

    def split(self, j: int) -> list[Entry]:
        q = sum(1 for p in self.positions if p < j)
        out = []
        for g in self._groups(q):
            fl = self._first_last(g)
            if fl is not None:
                out.append((int(self.sizes[fl[0]]), self._inter(fl[0], fl[1]), 1))
        return merge_entries(out)

    def owned_split(self, j: int) -> list[Entry]:
        q = self.positions.index(j)
        out = []
        for g in self._groups(q):
            prev_last = None
            sub = np.nonzero(np.any(self.index[g.start + 1:g.stop, :q + 1] != self.index[g.start:g.stop - 1, :q + 1],
                                    axis=1))[0] + 1 + g.start
            bounds = [g.start, *sub.tolist(), g.stop]
            for a, b in zip(bounds, bounds[1:]):
                fl = self._first_last(range(a, b))
                if fl is None:
                    continue
                if prev_last is not None:
                    out.append((int(self.sizes[fl[0]]), self._inter(fl[0], prev_last), 1))
                prev_last = fl[1]
        return merge_entries(out)


Axis = PlainAxis | SpatialAxis


@dataclass(frozen=True)
class BufferAxes:
    """An operand's axes for the loops above one of its buffers, and every dimension's range counts."""

    axes: dict[str, Axis]
    plain: dict[str, PlainAxis]          # every dimension as a plain axis (range counts per depth)
    loops: tuple[tuple[str, int], ...]   # (dim, tile) above the buffer


def buffer_axes(nest: Nest, op: str, position: int) -> BufferAxes:
    """The axes of `op`'s block for the loops above a buffer at `position`."""
    layer = nest.layer
    above = nest.loops[:position]
    plain = {}
    for d in DIMS:
        ks = [k for k, lp in enumerate(above) if lp.dim == d]
        plain[d] = PlainAxis(layer.dim_size(d), ks, [above[k].tile for k in ks])
    axes: dict[str, Axis] = {}
    if op == "input":
        for d in ("N", "G", "C"):
            axes[d] = plain[d]
        for axis, (o_dim, f_dim) in SPATIAL_AXES.items():
            loops = [(k, lp.dim, lp.tile) for k, lp in enumerate(above) if lp.dim in (o_dim, f_dim)]
            axes[axis] = SpatialAxis(layer, axis, loops)
    else:
        dims = ("G", "K", "C", "FY", "FX") if op == "weight" else ("N", "G", "K", "OY", "OX")
        axes = {d: plain[d] for d in dims}
    return BufferAxes(axes, plain, tuple((lp.dim, lp.tile) for lp in above))


def block_steps(ba: BufferAxes, op: str, step_cost: Callable[[int], int] | None = None) -> int:
    """Σ over the steps of the block sequence of the words each moves (or `step_cost` of them):
    the first live block, then per loop j its transitions (docs/semantics.md, generalised above)."""
    keys = list(ba.axes)
    axes = [ba.axes[k] for k in keys]
    total = combine(axes, [[(f, 0, c) for f, _, c in ba.axes[k].split(-1)] for k in keys], step_cost)
    for j, (dim, _) in enumerate(ba.loops):
        owner = axis_of(op, dim)
        # ranges of every irrelevant dimension outside loop j (its transitions repeat under each)
        mult = math.prod(ba.plain[e].ranges(ba.plain[e]._depth_before(j))
                         for e in DIMS if axis_of(op, e) is None and e != dim)
        if owner is None:
            p = ba.plain[dim]
            k = p.positions.index(j)
            transitions = p.ranges(k + 1) - p.ranges(k)
            if transitions:
                total += mult * transitions * combine(axes, [a.split(j) for a in axes], step_cost)
        else:
            ents = [ba.axes[k].owned_split(j) if k == owner else ba.axes[k].split(j) for k in keys]
            total += mult * combine(axes, ents, step_cost)
    return total


def buffer_words(ba: BufferAxes) -> int:
    return math.prod(a.max_size() for a in ba.axes.values())


def _block_costs(ba: BufferAxes, cost: Callable[[int], int]) -> int:
    """Σ over the distinct blocks of an operand with plain axes only (the output) of `cost(size)`."""
    hist = {1: 1}
    for a in ba.axes.values():
        assert isinstance(a, PlainAxis)
        new: dict[int, int] = {}
        for s, c in hist.items():
            for n, k in a.depths[-1].items():
                new[s * n] = new.get(s * n, 0) + c * k
        hist = new
    return sum(c * cost(s) for s, c in hist.items())


def _cost(bits: int, gran: int) -> Callable[[int], int]:
    def cost(words: int) -> int:
        if words <= 0:
            return 0
        b = bits_to_bytes(words * bits)
        return -(-b // gran) * gran
    return cost


def boundary_operand(nest: Nest, hierarchy: Hierarchy, level: str, op: str) -> tuple[OperandTraffic, int]:
    """Traffic of `op` across the boundary above `level` and its buffer words at `level`."""
    lv = hierarchy.level(level)
    ba = buffer_axes(nest, op, nest.position(level, op))
    gran = lv.dma_granularity
    words = block_steps(ba, op)
    if op != "output":
        bits = hierarchy.input_bits if op == "input" else hierarchy.weight_bits
        nbytes = block_steps(ba, op, _cost(bits, gran)) if gran else bits_to_bytes(words * bits)
        return OperandTraffic(words, 0, nbytes, 0), buffer_words(ba)
    # runs end in a write (the last of each block final, at output bits); all but a block's first
    # run start with a read-back: writes = Σ runs |b|, read-backs = writes - |O|
    out_words = nest.layer.output_words
    spills = words - out_words
    if gran:
        psum, final = _cost(hierarchy.psum_bits, gran), _cost(hierarchy.output_bits, gran)
        runs_psum = block_steps(ba, op, psum)
        blocks_psum, blocks_final = _block_costs(ba, psum), _block_costs(ba, final)
        read_b = runs_psum - blocks_psum
        write_b = runs_psum - blocks_psum + blocks_final
    else:
        read_b = bits_to_bytes(spills * hierarchy.psum_bits)
        write_b = bits_to_bytes(spills * hierarchy.psum_bits) + bits_to_bytes(out_words * hierarchy.output_bits)
    return OperandTraffic(spills, words, read_b, write_b), buffer_words(ba)


def evaluate_nest(nest: Nest, hierarchy: Hierarchy) -> NestTraffic:
    """Exact traffic across every boundary, buffer sizes per level, energy and MACs of `nest` on `hierarchy`."""
    nest.check(hierarchy)
    boundaries = []
    buffer_words_: dict[str, dict[str, int]] = {}
    buffer_bytes: dict[str, dict[str, int]] = {}
    for lv in hierarchy.levels:
        ops: dict[str, OperandTraffic] = {}
        words: dict[str, int] = {}
        for op in OPERANDS:
            if op in lv.holds:
                ops[op], words[op] = boundary_operand(nest, hierarchy, lv.name, op)
            else:
                ops[op] = OperandTraffic(0, 0, 0, 0)
        boundaries.append(BoundaryTraffic(lv.name, ops, {op: source_of(hierarchy, lv.name, op) for op in OPERANDS}))
        full = {op: words.get(op, 0) for op in OPERANDS}
        buffer_words_[lv.name] = words
        buffer_bytes[lv.name] = {op: b for op, b in hierarchy.level_arch(lv.name).buffer_bytes(full).items()
                                 if op in lv.holds}
    bounds = tuple(boundaries)
    return NestTraffic(bounds, buffer_words_, buffer_bytes, nest.layer.macs, nest_energy(hierarchy, bounds))

