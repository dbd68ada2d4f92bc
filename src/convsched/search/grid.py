"""The grid points of one structure that may fit and win, built one axis at a time.

Grid axes (`search/gridaxes.py`) are the non-spatial loops and the input's
(output, filter) tile pairs; one non-spatial loop (e) is solved per point
rather than enumerated (rule 6 of docs/optimizer.md). Candidates are taken by
groups of equal trip counts first (`TripGroups`) and opened into their members
last; a partial point is dropped as soon as no completion of it can fit or
beat the best schedule found (rule 8): with the others' smallest tiles it does
not fit, or its bound (`prune.point_bound`, then the input's traffic on
intervals, `InputFloor`) exceeds the best.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Literal, Mapping, Sequence

import numpy as np

from ..core.arch import OPERANDS
from ..core.dims import ceil_div
from ..core.layer import DIMS, Layer
from ..model.spatialtable import TableFactor
from ..model.vectorised import AXIS_KEYS, Product, buffer_bytes_many, buffer_words_many, traffic_plan
from .best import Best
from .gridaxes import NO_BAR, GridAxis
from .prune import capacity_mask, point_bound
from .space import SPATIAL_DIMS, StructureContext

MAX_GRID = 1 << 21     # grid points per vectorised step (memory: a few arrays of this many int64)


@dataclass(frozen=True, eq=False)
class SolvedDim:
    """The dimension whose tile is solved per point (rule 6) and its candidates, ascending."""

    dim: str
    tiles: np.ndarray


@dataclass(frozen=True, eq=False)
class SolvedTiles:
    """Per point, e's largest fitting candidate (an index into `SolvedDim.tiles`) and the buffer
    bytes at e's smallest candidate and at that one."""

    largest: np.ndarray
    bytes_at_smallest: np.ndarray
    bytes_at_largest: np.ndarray

    def __getitem__(self, at) -> SolvedTiles:
        return SolvedTiles(self.largest[at], self.bytes_at_smallest[at], self.bytes_at_largest[at])


@dataclass(frozen=True, eq=False)
class PointBatch:
    """Complete grid points that may fit and win, one entry per point.

    `index[i]`: the candidate of grid axis i; `tiles`: each grid dimension's
    tile; `solved`: e's solution (None when there is no e, or when a word size
    is not a whole number of bytes: the caller then checks every candidate);
    `slot`: the capacity the point is searched for.
    """

    index: list[np.ndarray]
    tiles: dict[str, np.ndarray]
    solved: SolvedTiles | None
    slot: np.ndarray


@dataclass(frozen=True, eq=False)
class TripGroups:
    """One grid axis's candidates grouped by their trip counts (see `candidate_points`)."""

    dims: tuple[str, ...]
    arr: np.ndarray        # candidates x dims
    members: np.ndarray    # candidate indices, grouped
    counts: np.ndarray     # members per group
    starts: np.ndarray     # first position of each group in `members`
    lo: np.ndarray         # per group and dim: the smallest tile
    hi: np.ndarray         # the largest tile
    trips: np.ndarray      # the trips (the same for every member)

    @classmethod
    def cached(cls, layer: Layer, axis: GridAxis) -> TripGroups:
        """`of`, remembered: many structures share an axis's (prefiltered) candidates."""
        a = axis.tiles
        return _trip_groups(layer, axis.dims, a.shape, a.dtype.str, a.tobytes())

    @classmethod
    def of(cls, layer: Layer, dims: Sequence[str], arr: np.ndarray) -> TripGroups:
        """The groups of the candidates `arr` (candidates x dims) of the axis over `dims`."""
        dims = tuple(dims)
        sizes = np.array([layer.dim_size(d) for d in dims])
        trips = ceil_div(sizes, arr)
        if len(dims) == 1 and (dims[0] not in SPATIAL_DIMS or len(arr) < 2 or (np.diff(trips[:, 0]) != 0).all()):
            # one candidate per trip count (rule 4): every group is a single candidate
            one = np.ones(len(arr), dtype=np.int64)
            return cls(dims, arr, np.arange(len(arr)), one, np.arange(len(arr)), arr, arr, trips)
        key = trips[:, 0] if len(dims) == 1 else trips[:, 0] * (sizes[1] + 1) + trips[:, 1]
        _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
        if len(counts) == len(arr):             # one member per group (N, G, K, C; single spatial loops)
            members = np.argsort(inv, kind="stable")
            return cls(dims, arr, members, counts, np.arange(len(arr)), arr[members], arr[members],
                       trips[members])
        members = np.argsort(inv, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return cls(dims, arr, members, counts, starts, np.minimum.reduceat(arr[members], starts, axis=0),
                   np.maximum.reduceat(arr[members], starts, axis=0), trips[members[starts]])


@lru_cache(maxsize=4096)
def _trip_groups(layer: Layer, dims: tuple[str, ...], shape: tuple[int, ...], dtype: str, data: bytes
                 ) -> TripGroups:
    return TripGroups.of(layer, dims, np.frombuffer(data, dtype=dtype).reshape(shape))


class InputFloor:
    """Input words every completion of a partial point reads: the vectorised model's input plan
    evaluated on intervals (rule 8 of docs/optimizer.md), each factor between its least and largest
    value over a trip-count group, an axis not chosen yet, or e up to its largest fitting tile.
    Unlike the compulsory-input bound this sees the halos small spatial tiles read again.
    """

    def __init__(self, ctx: StructureContext, groups: list[TripGroups], e: SolvedDim | None) -> None:
        self.layer = ctx.layer
        self.plan = traffic_plan(ctx.layer, ctx.order, ctx.level_tuple)[OPERANDS.index("input")]
        self.groups = groups
        self.axis_of = {d: i for i, g in enumerate(groups) for d in g.dims}
        self.e_dim, self.e_lo = (e.dim, int(e.tiles[0])) if e is not None else (None, None)
        self.table_values: dict[TableFactor, tuple] = {}
        self.extent = [(int(g.arr[:, 0].min()), int(g.arr[:, 0].max())) for g in groups]

    def _table_range(self, f: TableFactor, step: int, pts: list[np.ndarray], open_at: dict[int, int]
                     ) -> tuple[int | np.ndarray, int | np.ndarray]:
        """Least and largest value of an input-axis table over the completions."""
        i = self.axis_of[f.dims[0]]      # a table is gathered only by loops above the buffer: grid axes
        g = self.groups[i]
        hit = self.table_values.get(f)
        if hit is None:
            v = f.at({d: g.arr[:, k] for k, d in enumerate(g.dims)})
            vm = v[g.members]
            hit = (v, np.minimum.reduceat(vm, g.starts), np.maximum.reduceat(vm, g.starts),
                   int(v.min()), int(v.max()))
            self.table_values[f] = hit
        v, g_min, g_max, v_min, v_max = hit
        if i >= len(pts):
            return v_min, v_max
        if i not in open_at or open_at[i] <= step:
            x = v[pts[i]]
            return x, x
        return g_min[pts[i]], g_max[pts[i]]

    def _dim_range(self, d: str, pts: list[np.ndarray], t_hi: int | np.ndarray | None
                   ) -> tuple[int | np.ndarray, int | np.ndarray]:
        """Least and largest tile of a non-spatial dim over the completions."""
        if d == self.e_dim:
            return self.e_lo, t_hi
        i = self.axis_of[d]
        g = self.groups[i]
        if i >= len(pts):
            return self.extent[i]
        t = g.arr[pts[i], 0]
        return t, t

    def words(self, step: int, pts: list[np.ndarray], open_at: dict[int, int], t_hi: int | np.ndarray | None,
              fewest_trips: Mapping[str, int]) -> np.ndarray:
        """The floor per partial point: `pts[i]` the chosen candidate (or, for an axis opened at a
        later step than `step`, group) of axis i, the axes past `len(pts)` not chosen yet; `t_hi`:
        e's largest fitting tile; `fewest_trips`: each dimension's fewest trips."""
        size = self.layer.dim_sizes
        seen: dict = {}

        def rng(f):
            hit = seen.get(f)
            if hit is None:
                hit = seen[f] = factor_range(f)
            return hit

        def factor_range(f):
            if isinstance(f, TableFactor):
                return self._table_range(f, step, pts, open_at)
            t_lo, t_up = self._dim_range(f.dim, pts, t_hi)
            D = size[f.dim]
            # every candidate has >= 2 trips: the first tile is the tile, overlaps are empty
            if f.kind == "own":
                return D - t_up, D - t_lo
            if f.kind == "tile":
                return t_lo, t_up
            return 0, 0

        def prod(p: Product, upper: bool):
            out = p.const
            for f in p.factors:
                out = out * rng(f)[1 if upper else 0]
            return out

        total = prod(self.plan.first, False)
        mult = 1
        for s in self.plan.steps:
            diff = prod(s.new, False)
            if s.overlap.const:
                diff = np.maximum(diff - prod(s.overlap, True), 0)
            if s.reload:
                n = fewest_trips[s.dim]
                total = total + mult * (n - 1) * diff
                mult = mult * n
            else:
                total = total + mult * diff
        return total


def _largest_fitting(ctx: StructureContext, tiles: dict, e: SolvedDim, gshape: tuple[int, ...],
                     limit_bytes: np.ndarray | None) -> tuple[np.ndarray, SolvedTiles] | None:
    """For every grid point, the largest candidate of the solved dim `e` that fits, in O(grid): the
    buffer bytes are `A + B * t_e` (docs/optimizer.md, "Implementation of rule 6") under the
    capacity and `limit_bytes` (one for all points or one per point). Returns (fits at all, e's
    solution), or None when a word size is not a whole number of bytes (the caller then checks
    every candidate).
    """
    layer, arch, order, levels = ctx.layer, ctx.arch, ctx.order, ctx.levels
    tiled = [op for op in OPERANDS if e.dim in order[:levels[op]] and e.dim in AXIS_KEYS[op]]
    if any(arch.buffer_bits(op) % 8 for op in OPERANDS):
        return None
    w1 = buffer_words_many(layer, order, levels, {**tiles, e.dim: np.int64(1)})
    per = {op: w1[op] * (arch.buffer_bits(op) // 8 * arch.buffer_factor) for op in OPERANDS}
    A = np.broadcast_to(sum((per[op] for op in OPERANDS if op not in tiled), np.int64(0)), gshape)
    B = np.broadcast_to(sum((per[op] for op in tiled), np.int64(0)), gshape)
    big = np.int64(1) << 62
    caps = [c for c in (arch.capacity, limit_bytes) if c is not None]
    if len(caps) == 2:
        caps = [np.minimum(*caps)]
    if arch.capacity is None and arch.capacity_per_operand is not None:
        t_max = np.full(gshape, big, dtype=np.int64)
        ok = np.ones(gshape, dtype=bool)
        for op, cap in zip(OPERANDS, arch.capacity_per_operand):
            if op in tiled:
                t_max = np.minimum(t_max, cap // np.maximum(np.broadcast_to(per[op], gshape), 1))
            else:
                ok = ok & (np.broadcast_to(per[op], gshape) <= cap)
        if limit_bytes is not None:      # the total as well
            ok = ok & (A <= limit_bytes)
            t_max = np.minimum(t_max, np.where(B > 0, (limit_bytes - A) // np.maximum(B, 1), big))
    elif caps:
        cap = caps[0]                    # every bound on the total: the tightest
        ok = A <= cap
        t_max = np.where(B > 0, (cap - A) // np.maximum(B, 1), big) if tiled else np.full(gshape, big)
    else:
        ok = np.ones(gshape, dtype=bool)
        t_max = np.full(gshape, big, dtype=np.int64)
    hi_idx = np.searchsorted(e.tiles, t_max, side="right") - 1
    mask = ok & (hi_idx >= 0)
    hi_idx = np.maximum(hi_idx, 0)
    return mask, SolvedTiles(hi_idx, A + B * e.tiles[0], A + B * e.tiles[hi_idx])


#: A step of the construction: put an axis in (as groups when it is opened later), or open its groups.
Step = tuple[Literal["add", "open"], int]


def _steps(groups: list[TripGroups]) -> list[list[Step]]:
    """The construction's steps: every axis added, then the grouped ones opened; small adds (and
    opens) are merged so that the per-step overhead stays small."""
    steps: list[list[Step]] = []
    run = 1
    for i, g in enumerate(groups):
        n = len(g.counts)
        if steps and steps[-1][0][0] == "add" and run * n <= 2048:
            steps[-1].append(("add", i))
            run *= n
        else:
            steps.append([("add", i)])
            run = n
    run = 0
    for i, g in enumerate(groups):
        c = int(g.counts.max())
        if c <= 1:
            continue
        if run and run * c <= 8:          # opening small groups together: one check for both
            steps[-1].append(("open", i))
            run *= c
        else:
            steps.append([("open", i)])
            run = c
    return steps


def candidate_points(ctx: StructureContext, grid: list[GridAxis], e: SolvedDim | None,
                     bests: Sequence[Best], limits: np.ndarray) -> Iterator[PointBatch]:
    """The grid points that may fit and win, in batches of at most MAX_GRID points per step.

    The structure is searched for several capacities at once (a sweep): slot
    s has its best found so far `bests[s]` and its byte limit `limits[s]`
    (the capacity, or less when the structure can at best tie); every point
    carries its slot, and the fit and the bounds are per point. `ctx.arch`
    gives the word sizes (and per-operand capacities, when those are used).

    The points are built one axis at a time, first as trip-count groups, then
    opened into their members; a partial point is dropped as soon as no
    completion of it can fit or win (rule 8 of docs/optimizer.md).
    """
    layer, order, levels = ctx.layer, ctx.order, ctx.levels
    size = {d: layer.dim_size(d) for d in DIMS}
    groups = [TripGroups.cached(layer, axis) for axis in grid]
    lo = {d: int(a.tiles[:, k].min()) for a in grid for k, d in enumerate(a.dims)}
    hi = {d: int(a.tiles[:, k].max()) for a in grid for k, d in enumerate(a.dims)}
    if e is not None:
        lo[e.dim], hi[e.dim] = int(e.tiles[0]), int(e.tiles[-1])
    fewest = {d: ceil_div(size[d], hi[d]) for d in order}
    most = {d: ceil_div(size[d], lo[d]) for d in order}
    steps = _steps(groups)
    open_at = {i: k for k, st in enumerate(steps) for kind, i in st if kind == "open"}
    k_inside = "K" in order[:levels["input"] - 1]      # some input loop inside K: block-size bound
    last = len(steps) - 1
    in_floor = InputFloor(ctx, groups, e)

    def tiles_of(step: int, pts: list[np.ndarray]) -> tuple[dict, dict, dict, dict]:
        """(smallest tiles, largest tiles, fewest trips, most trips) of each partial point."""
        small, large, few, many = dict(lo), dict(hi), dict(fewest), dict(most)
        for i, v in enumerate(pts):
            g = groups[i]
            exact = i not in open_at or open_at[i] <= step
            for k, d in enumerate(g.dims):
                if exact:
                    small[d] = large[d] = t = g.arr[v, k]
                    few[d] = many[d] = ceil_div(size[d], t)
                else:
                    small[d], large[d] = g.lo[v, k], g.hi[v, k]
                    few[d] = many[d] = g.trips[v, k]
        return small, large, few, many

    def keep(step: int, pts: list[np.ndarray], slot: np.ndarray) -> tuple[np.ndarray, SolvedTiles | None, dict]:
        """Which partial points may still fit and win; e's solution at each; their smallest tiles."""
        small, large, few, many = tiles_of(step, pts)
        shape = slot.shape
        limit = limits[slot]
        fitting = _largest_fitting(ctx, small, e, shape, limit) if e is not None else None
        solved = None
        if fitting is not None:
            ok, solved = fitting
            few[e.dim] = ceil_div(size[e.dim], e.tiles[solved.largest])
            large[e.dim] = e.tiles[solved.largest]
        else:
            per_op = buffer_bytes_many(buffer_words_many(layer, order, levels, small), ctx.arch)
            ok = np.broadcast_to(capacity_mask(ctx.arch, per_op), shape) & (sum(per_op.values()) <= limit)
        bars = np.array([NO_BAR if b.key is None else b.key[0] for b in bests], dtype=np.int64)
        if (bars < NO_BAR).any():
            bar = bars[slot]
            # the input block is at most its size at the largest tiles (and e's largest fitting)
            in_words = buffer_words_many(layer, order, levels, large)["input"] if k_inside else None
            ok = ok & (point_bound(ctx, few, in_words, many) <= bar)
            if ok.any():
                # then the input with its halos, where the cheaper bound left points
                t_hi = large[e.dim] if e is not None else None
                floor = in_floor.words(step, pts, open_at, t_hi, few)
                ok = ok & (point_bound(ctx, few, in_words, many, floor) <= bar)
        return np.broadcast_to(ok, shape), solved, small

    def grow(step: int, pts: list[np.ndarray], slot: np.ndarray, s: int, end: int):
        out = [a[s:end] for a in pts]
        slot = slot[s:end]
        for kind, i in steps[step]:
            g = groups[i]
            if kind == "add":
                # an axis that is never opened has single-member groups: put the member in directly
                col = np.arange(len(g.counts)) if i in open_at else g.members
                out = [np.repeat(a, len(col)) for a in out] + [np.tile(col, len(slot))]
                slot = np.repeat(slot, len(col))
            else:
                c = g.counts[out[i]]
                first = np.repeat(np.cumsum(c) - c, c)
                at = np.repeat(g.starts[out[i]], c) + np.arange(len(first)) - first
                out = [np.repeat(a, c) for a in out]
                out[i] = g.members[at]
                slot = np.repeat(slot, c)
        return out, slot

    def fan_out(step: int, pts: list[np.ndarray], slot: np.ndarray) -> np.ndarray:
        """Points each parent turns into at this step."""
        n = np.ones(len(slot), dtype=np.int64)
        for kind, i in steps[step]:
            n = n * (len(groups[i].counts) if kind == "add" else groups[i].counts[pts[i]])
        return n

    def walk(step: int, pts: list[np.ndarray], slot: np.ndarray) -> Iterator[PointBatch]:
        sizes = fan_out(step, pts, slot)
        ends = np.cumsum(sizes)
        s = 0
        while s < len(sizes):
            # as many parents as keep the step within MAX_GRID points (at least one)
            end = max(s + 1, int(np.searchsorted(ends, (ends[s] - sizes[s]) + MAX_GRID, side="right")))
            new, new_slot = grow(step, pts, slot, s, end)
            s = end
            ok, solved, small = keep(step, new, new_slot)
            if not ok.any():
                continue
            sub = np.nonzero(ok)
            new = [a[sub] for a in new]
            new_slot = new_slot[sub]
            if step < last:
                yield from walk(step + 1, new, new_slot)
                continue
            tiles = {d: (small[d][sub] if np.ndim(small[d]) else np.full(len(sub[0]), small[d]))
                     for a in grid for d in a.dims}
            yield PointBatch(new, tiles, None if solved is None else solved[sub], new_slot)

    root = np.arange(len(bests))         # one root point per slot
    if not grid:
        ok, solved, _ = keep(-1, [], root)
        if ok.any():
            if solved is not None:
                solved = SolvedTiles(*(np.broadcast_to(a, root.shape)[ok] for a in
                                       (solved.largest, solved.bytes_at_smallest, solved.bytes_at_largest)))
            yield PointBatch([], {}, solved, root[ok])
        return
    yield from walk(0, [], root)
