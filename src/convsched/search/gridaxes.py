"""The grid axes of one structure and their tile candidates.

A structure's tiles form a grid: one axis per non-spatial loop, and one per
input row/column axis whose output and filter loops lie above the input
buffer, with (output tile, filter tile) pairs as candidates, reduced to the
undominated pairs (rule 5 of docs/optimizer.md). A spatial loop below the
input buffer is an axis of its own with the smallest tile per trip count
(rule 4). Before any point is built, each axis loses the candidates that
cannot fit even with every other axis at its smallest tile (F3).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..core.dims import SPATIAL_AXES, ceil_div
from ..model.vectorised import buffer_bytes_many, buffer_words_many, layer_tables
from .prune import capacity_mask
from .space import SPATIAL_DIMS, StructureContext, TileCandidates

#: Per-slot arrays: no best found yet / no byte limit.
NO_BAR = np.int64(1) << 62


@dataclass(frozen=True, eq=False)
class GridAxis:
    """One grid axis: its dimensions (one, or an input axis's output and filter dims) and its
    candidates (candidates x dims)."""

    dims: tuple[str, ...]
    tiles: np.ndarray


@dataclass(frozen=True)
class TripRange:
    """Per dimension of the grid, the fewest and most trips among the candidates that fit a slot."""

    fewest: dict[str, int]
    most: dict[str, int]


def grid_axes(ctx: StructureContext) -> list[GridAxis]:
    """Grid axes of one structure: each non-spatial dim alone, each input axis's (output, filter) pair
    above the input buffer; a spatial loop below it alone, like N, G, K, C (rule 4)."""
    axes: list[GridAxis] = []
    done: set[str] = set()
    for d in ctx.order:
        if d in done:
            continue
        axis = next((a for a, pair in SPATIAL_AXES.items() if d in pair), None)
        if axis is None:
            axes.append(GridAxis((d,), ctx.cands[d].reshape(-1, 1)))
            done.add(d)
        elif d not in ctx.above_input:
            axes.append(GridAxis((d,), ctx.cands.smallest_per_trip(d).reshape(-1, 1)))
            done.add(d)
        else:
            dims = tuple(x for x in SPATIAL_AXES[axis] if x in ctx.order and x in ctx.above_input)
            axes.append(GridAxis(dims, spatial_pairs(ctx, dims, axis)))
            done.update(dims)
    return axes


def spatial_pairs(ctx: StructureContext, dims: tuple[str, ...], axis: str) -> np.ndarray:
    """Candidate tile pairs of one input axis (rule 5): the undominated (output, filter) tile pairs
    of `dims` (the axis's loops above the input buffer), one column per dim."""
    o_dim, f_dim = SPATIAL_AXES[axis]
    b = ctx.levels["input"]
    pos = {d: j for j, d in enumerate(ctx.order[:b])}
    # what the pairs depend on: many structures share it
    return _undominated_pairs(ctx.cands, axis, dims, pos.get(o_dim), pos.get(f_dim), b,
                              o_dim in ctx.order[:ctx.levels["output"]], f_dim in ctx.order[:ctx.levels["weight"]])


@lru_cache(maxsize=20000)
def _undominated_pairs(cands: TileCandidates, axis: str, dims: tuple[str, ...], o_pos: int | None,
                       f_pos: int | None, b: int, output_buffered: bool, weight_buffered: bool) -> np.ndarray:
    """`spatial_pairs` from the placement of the axis's loops (at `o_pos`, `f_pos` among the `b` loops
    above the input buffer) and whether the output / weight buffer sits below the output / filter
    loop: the pairs no other pair dominates in trips, buffers and per-split sums (rule 5)."""
    layer = cands.layer
    o_dim, f_dim = SPATIAL_AXES[axis]
    lists = [cands[d] if d in dims else np.array([layer.dim_size(d)]) for d in (o_dim, f_dim)]
    to, tf = (g.ravel() for g in np.meshgrid(*lists, indexing="ij"))
    cols = [i for i, d in enumerate((o_dim, f_dim)) if d in dims]
    if len(to) <= 1:
        return np.stack([to, tf], axis=1)[:, cols]
    table = layer_tables(layer).spatial[axis]
    feats = [ceil_div(layer.dim_size(o_dim), to), ceil_div(layer.dim_size(f_dim), tf)]   # trips: W/O traffic
    if output_buffered:
        feats.append(to)       # output buffer
    if weight_buffered:
        feats.append(tf)       # weight buffer
    for j in range(-1, b):
        F, I, M = table.table(o_pos, f_pos, j, j >= 0 and j in (o_pos, f_pos))
        feats.append(F[to, tf])
        if j >= 0:
            feats.append(-I[to, tf])
        else:
            feats.append(M[to, tf])   # input buffer
    sel = np.nonzero(undominated(np.stack(feats, axis=1)))[0]
    pairs = np.stack([to[sel], tf[sel]], axis=1)[:, cols]
    return np.unique(pairs, axis=0)


def undominated(X: np.ndarray) -> np.ndarray:
    """Which rows of X no other row beats: <= in every column, and < in one or earlier in X.

    (Of equal rows the first is kept.) A row that beats another has no
    larger sum, so rows are taken in order of their sums (stable: equal rows
    in their order), each checked against the kept rows found so far -- a
    beaten row's own beater beats whatever it beats -- and against the
    earlier rows of its block.
    """
    order = np.argsort(X.sum(axis=1), kind="stable")
    cols = X.T.copy()                        # column-wise: one comparison pass per feature
    keep = np.zeros(len(X), dtype=bool)
    front: list[int] = []
    for start in range(0, len(X), 256):
        idx = order[start:start + 256]
        beaten = np.zeros(len(idx), dtype=bool)
        if front:
            le = np.ones((len(front), len(idx)), dtype=bool)      # le[a, b]: front row a no worse than b
            for c in cols:
                le &= c[front][:, None] <= c[idx][None, :]
            beaten = le.any(axis=0)
        le = np.ones((len(idx), len(idx)), dtype=bool)
        lt = np.zeros_like(le)
        for c in cols:
            a, b = c[idx][:, None], c[idx][None, :]
            le &= a <= b
            lt |= a < b
        inner = le & (lt | np.tri(len(idx), k=-1, dtype=bool).T)      # equal rows: the earlier one wins
        beaten |= inner.any(axis=0)
        keep[idx[~beaten]] = True
        front.extend(idx[~beaten].tolist())
    return keep


def solved_axis(ctx: StructureContext, axes: list[GridAxis]) -> int | None:
    """The axis whose tile is solved per point, not enumerated (rule 6): the N, G, K or C axis (or a
    spatial loop below the input buffer) with the most candidates, at least three; None if none.
    Chosen before the capacity prefilter, so that it is the same whichever capacities are searched."""
    solvable = [i for i, a in enumerate(axes) if len(a.dims) == 1
                and (a.dims[0] not in SPATIAL_DIMS or a.dims[0] not in ctx.above_input) and len(a.tiles) >= 3]
    return max(solvable, key=lambda i: len(axes[i].tiles)) if solvable else None


def prefilter(ctx: StructureContext, axes: list[GridAxis], limits: np.ndarray
              ) -> tuple[list[GridAxis], list[TripRange | None]]:
    """Drop candidates of one grid axis that cannot fit even with every other tile at its smallest (F3).

    `limits`: each slot's byte limit. Returns the axes with the candidates
    that fit under some limit, and per slot the trip ranges among those that
    fit under its limit (None when some axis has none).
    """
    if not axes:
        return axes, [TripRange({}, {})] * len(limits)
    layer, arch = ctx.layer, ctx.arch
    # all axes' candidates in one flat array (a row per dim), each with the other axes at their smallest
    names = [d for a in axes for d in a.dims]
    axis_at = [i for i, a in enumerate(axes) for _ in a.dims]
    lengths = [len(a.tiles) for a in axes]
    starts = np.cumsum([0] + lengths[:-1])
    tiles = np.empty((len(names), sum(lengths)), dtype=np.int64)
    row = 0
    for a, at, n_a in zip(axes, starts.tolist(), lengths):
        for k in range(len(a.dims)):
            tiles[row] = a.tiles[:, k].min()
            tiles[row, at:at + n_a] = a.tiles[:, k]
            row += 1
    flat = dict(zip(names, tiles))
    per_op = buffer_bytes_many(buffer_words_many(layer, ctx.order, ctx.levels, flat), arch)
    ok = np.broadcast_to(sum(per_op.values()), tiles.shape[1:])[None, :] <= limits[:, None]
    if arch.capacity is not None or arch.capacity_per_operand is not None:
        ok = ok & capacity_mask(arch, per_op)
    some = ok.any(axis=0)
    # per slot, axis and dim: the fewest and most trips among the candidates that fit, from their
    # largest and smallest tiles (one reduction each; a dim's own candidates are in its axis's segment)
    at_axis = (slice(None), np.arange(len(names)), axis_at)
    largest = np.maximum.reduceat(np.where(ok[:, None, :], tiles, 0), starts, axis=2)[at_axis]
    least = np.minimum.reduceat(np.where(ok[:, None, :], tiles, NO_BAR), starts, axis=2)[at_axis]
    sizes = np.array([layer.dim_sizes[d] for d in names])
    few = ceil_div(sizes, np.maximum(largest, 1))
    most = ceil_div(sizes, least)
    empty = (largest == 0).any(axis=1).tolist()
    kept = [GridAxis(a.dims, a.tiles[some[at:at + len(a.tiles)]]) for a, at in zip(axes, starts.tolist())]
    return kept, [None if e else TripRange(dict(zip(names, lo)), dict(zip(names, hi)))
                  for e, lo, hi in zip(empty, few.tolist(), most.tolist())]
