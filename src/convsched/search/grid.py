"""The grid points of one structure that may fit and win, built one axis at a time.

Grid axes are the non-spatial loops and the input's (output, filter) tile
pairs; one non-spatial loop (e) is solved per point rather than enumerated.
Candidates are taken by groups of equal trip counts first and opened into
their members last; a partial point is dropped as soon as no completion of it
can fit or beat the best schedule found (docs/optimizer.md, rule 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.layer import DIMS, Layer
from .prune import _capacity_mask, _InputFloor, _largest_fitting, _point_bound
from .structures import SPATIAL_DIMS

MAX_GRID = 1 << 21     # grid points per vectorised step (memory: a few arrays of this many int64)
NO_BAR = np.int64(1) << 62   # per-slot arrays: no best found yet / no byte limit


@dataclass(frozen=True)
class _TripGroups:
    """One grid axis's candidates grouped by their trip counts (see `_pruned_points`)."""

    dims: list[str]
    arr: np.ndarray        # candidates x dims
    members: np.ndarray    # candidate indices, grouped
    counts: np.ndarray     # members per group
    starts: np.ndarray     # first position of each group in `members`
    lo: np.ndarray         # per group and dim: the smallest tile
    hi: np.ndarray         # the largest tile
    trips: np.ndarray      # the trips (the same for every member)

    @classmethod
    def cached(cls, layer: Layer, dims: list[str], arr: np.ndarray) -> "_TripGroups":
        """`of`, remembered: many structures share an axis's (prefiltered) candidates."""
        key = (layer, tuple(dims), arr.shape, arr.tobytes())
        hit = _GROUPS.get(key)
        if hit is None:
            if len(_GROUPS) > 4096:
                _GROUPS.clear()
            hit = _GROUPS[key] = cls.of(layer, dims, arr)
        return hit

    @classmethod
    def of(cls, layer: Layer, dims: list[str], arr: np.ndarray) -> "_TripGroups":
        sizes = np.array([layer.dim_size(d) for d in dims])
        trips = -(-sizes // arr)
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


_GROUPS: dict[tuple, "_TripGroups"] = {}


def _pruned_points(layer, arch, objective, order, levels, grid, e_dim, e_cands, bests, limits):
    """The grid points that may fit and win: (index per grid axis, tiles, e's solution, slot), in steps.

    The structure is searched for several capacities at once (a sweep): slot
    s has its best found so far `bests[s]` and its byte limit `limits[s]`
    (the capacity, or less when the structure can at best tie); every point
    carries its slot, and the fit and the bounds are per point. `arch` gives
    the word sizes (and per-operand capacities, when those are used).

    Each axis's candidates are grouped by their trip counts: weight and output
    traffic (F1) depend on trips only, so every member of a group has the
    same. The points are built one axis at a time, first as groups (each
    standing for its members by their per-dimension smallest tiles, which no
    member's buffers undercut (F3), and largest), then the groups are opened
    into their members. A partial point is dropped when it cannot fit even
    with the axes not yet chosen at their smallest tiles, or when its traffic
    bound (`_point_bound`) exceeds the best found even with them at their
    fewest trips and largest blocks -- where that leaves points, with the
    input's traffic from the model on intervals (`_InputFloor`). e is solved
    at every step: its largest tile that fits beside the others' smallest
    bounds its trips from below.

    At most MAX_GRID points are built at a time. The last step's points are
    complete; with them come e's largest fitting candidate index and the
    buffer bytes at e's smallest and at that candidate (None: word sizes
    that are not whole bytes, the caller checks every candidate), and the
    points' slots.
    """
    from ..model.vectorised import buffer_bytes_many, buffer_words_many
    size = {d: layer.dim_size(d) for d in DIMS}
    if not grid:
        groups: list[_TripGroups] = []
    else:
        groups = [_TripGroups.cached(layer, dims, arr) for dims, arr in grid]
    lo = {d: int(arr[:, k].min()) for dims, arr in grid for k, d in enumerate(dims)}
    hi = {d: int(arr[:, k].max()) for dims, arr in grid for k, d in enumerate(dims)}
    if e_dim is not None:
        lo[e_dim], hi[e_dim] = int(e_cands[0]), int(e_cands[-1])
    fewest = {d: -(-size[d] // hi[d]) for d in order}
    most = {d: -(-size[d] // lo[d]) for d in order}
    m = len(groups)
    opened = [i for i in range(m) if groups[i].counts.max() > 1]
    # steps: ("add", axis) puts an axis in (as groups when it is opened later), ("open", axis)
    # opens its groups; small adds are merged so that the per-step overhead stays small
    steps: list[list[tuple[str, int]]] = []
    run = 1
    for i in range(m):
        n = len(groups[i].counts)
        if steps and steps[-1][0][0] == "add" and run * n <= 2048:
            steps[-1].append(("add", i))
            run *= n
        else:
            steps.append([("add", i)])
            run = n
    run = 0
    for i in opened:
        c = int(groups[i].counts.max())
        if run and run * c <= 8:          # opening small groups together: one check for both
            steps[-1].append(("open", i))
            run *= c
        else:
            steps.append([("open", i)])
            run = c
    open_at = {i: k for k, st in enumerate(steps) for kind, i in st if kind == "open"}
    k_inside = "K" in order[:levels["input"] - 1]      # some input loop inside K: block-size bound
    last = len(steps) - 1
    in_floor = _InputFloor(layer, order, levels, groups, e_dim, e_cands)

    def tiles_of(step: int, pts: list[np.ndarray]) -> tuple[dict, dict, dict, dict]:
        """(smallest tiles, largest tiles, fewest trips, most trips) of each partial point."""
        small, large, few, many = dict(lo), dict(hi), dict(fewest), dict(most)
        for i, v in enumerate(pts):
            g = groups[i]
            exact = i not in open_at or open_at[i] <= step
            for k, d in enumerate(g.dims):
                if exact:
                    small[d] = large[d] = t = g.arr[v, k]
                    few[d] = many[d] = -(-size[d] // t)
                else:
                    small[d], large[d] = g.lo[v, k], g.hi[v, k]
                    few[d] = many[d] = g.trips[v, k]
        return small, large, few, many

    def keep(step: int, pts: list[np.ndarray], slot: np.ndarray):
        small, large, few, many = tiles_of(step, pts)
        shape = slot.shape
        limit = limits[slot]
        solved = None
        if e_dim is not None:
            # e's largest tile that fits beside the others' smallest: no member fits a larger one
            solved = _largest_fitting(layer, arch, order, levels, small, e_dim, e_cands, shape, limit)
        if solved is not None:
            ok, hi_idx = solved[0], solved[1]
            few[e_dim] = -(-size[e_dim] // e_cands[hi_idx])
            large[e_dim] = e_cands[hi_idx]
        else:
            per_op = buffer_bytes_many(buffer_words_many(layer, order, levels, small), arch)
            ok = np.broadcast_to(_capacity_mask(arch, per_op), shape) & (sum(per_op.values()) <= limit)
        bars = np.array([NO_BAR if b.key is None else b.key[0] for b in bests], dtype=np.int64)
        if (bars < NO_BAR).any():
            bar = bars[slot]
            # the input block is at most its size at the largest tiles (and e's largest fitting)
            in_words = buffer_words_many(layer, order, levels, large)["input"] if k_inside else None
            ok = ok & (_point_bound(layer, arch, objective, order, levels, few, in_words, many) <= bar)
            if ok.any():
                # then the input with its halos, where the cheaper bound left points
                t_hi = large[e_dim] if e_dim is not None else None
                floor = in_floor.words(step, pts, open_at, t_hi, few)
                ok = ok & (_point_bound(layer, arch, objective, order, levels, few, in_words, many, floor)
                           <= bar)
        return np.broadcast_to(ok, shape), (solved, small)

    def grow(step: int, pts: list[np.ndarray], slot: np.ndarray, s: int, e: int):
        out = [a[s:e] for a in pts]
        slot = slot[s:e]
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

    def walk(step: int, pts: list[np.ndarray], slot: np.ndarray):
        sizes = fan_out(step, pts, slot)
        ends = np.cumsum(sizes)
        s = 0
        while s < len(sizes):
            # as many parents as keep the step within MAX_GRID points (at least one)
            e = max(s + 1, int(np.searchsorted(ends, (ends[s] - sizes[s]) + MAX_GRID, side="right")))
            new, new_slot = grow(step, pts, slot, s, e)
            s = e
            ok, (solved, small) = keep(step, new, new_slot)
            if not ok.any():
                continue
            sub = np.nonzero(ok)
            new = [a[sub] for a in new]
            new_slot = new_slot[sub]
            if step < last:
                yield from walk(step + 1, new, new_slot)
                continue
            tiles = {d: (small[d][sub] if np.ndim(small[d]) else np.full(len(sub[0]), small[d]))
                     for dims, _ in grid for d in dims}
            if solved is not None:
                _, hi_idx, b_lo, b_hi = solved
                solved = (hi_idx[sub], b_lo[sub], b_hi[sub])
            yield new, tiles, solved, new_slot

    root = np.arange(len(bests))         # one root point per slot
    if not grid:
        ok, (solved, _) = keep(-1, [], root)
        if ok.any():
            yield [], {}, (None if solved is None else tuple(np.broadcast_to(a, root.shape)[ok]
                                                             for a in solved[1:])), root[ok]
        return
    yield from walk(0, [], root)
