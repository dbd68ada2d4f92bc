"""The best tiles of one structure, for each capacity searched: its grid, pruned, then evaluated.

Steps: the structure's grid axes (`gridaxes.grid_axes`), e chosen (rule 6 of
docs/optimizer.md), each axis prefiltered to the candidates that can fit, the
structure's bound refined with the trips those allow (`prune.trips_lower_bound`),
the points that may fit and win built (`grid.candidate_points`) and evaluated
with the vectorised model; per capacity the best point is offered to its `Best`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..core.arch import Architecture, words_to_bytes
from ..core.dims import ceil_div
from ..model.vectorised import VecTraffic, buffer_bytes_many, buffer_words_many, evaluate_many
from .best import Best
from .grid import PointBatch, SolvedDim, candidate_points
from .gridaxes import GridAxis, grid_axes, prefilter, solved_axis
from .prune import capacity_mask, trips_lower_bound
from .space import Objective, StructureContext


@dataclass(frozen=True)
class Slot:
    """One capacity of a search: its architecture (with the shared capacity), the capacity in
    bytes as a limit, and its best schedule so far."""

    arch: Architecture
    capacity: int
    best: Best


def objective_bytes(v: VecTraffic, arch: Architecture, objective: Objective) -> np.ndarray:
    """The objective's bytes of the evaluated points."""
    if objective == "bytes":
        return v.total_bytes
    return words_to_bytes(v.input_read, arch.input_bits) + words_to_bytes(v.weight_read, arch.weight_bits)


def search_structure(ctx: StructureContext, slots: Sequence[Slot], bounds: Sequence[int],
                     least_words: Mapping[str, int]) -> np.ndarray:
    """Find the best feasible tiles of one structure for each slot and offer them to its best.

    `bounds[s]`: the structure's traffic bound under slot s's capacity;
    `least_words`: its buffers' words with every tile at its smallest.
    Returns the points evaluated per slot.
    """
    evaluated = np.zeros(len(slots), dtype=np.int64)
    axes = grid_axes(ctx) if ctx.order else []
    e_at = solved_axis(ctx, axes)
    # a slot where the structure can at best tie the traffic takes no larger buffer than its best
    limits = np.array([min(s.capacity, s.best.key[1]) if s.best.key is not None and lb == s.best.key[0]
                       else s.capacity for s, lb in zip(slots, bounds)], dtype=np.int64)
    axes, ranges = prefilter(ctx, axes, limits)
    # the capacity's trips: bound again with the trips of the candidates that fit
    live = [k for k, r in enumerate(ranges) if r is not None and (
        slots[k].best.key is None
        or trips_lower_bound(ctx, slots[k].arch, r.fewest, r.most, least_words) <= slots[k].best.key[0])]
    if not live:
        return evaluated
    bests = [slots[k].best for k in live]
    limits = limits[live]
    grid = [a for i, a in enumerate(axes) if i != e_at]
    e = SolvedDim(axes[e_at].dims[0], axes[e_at].tiles[:, 0]) if e_at is not None else None
    for batch in candidate_points(ctx, grid, e, bests, limits):
        _evaluate(ctx, grid, e, batch, bests, limits, live, evaluated)
    return evaluated


def _evaluate(ctx: StructureContext, grid: list[GridAxis], e: SolvedDim | None, batch: PointBatch, bests: list[Best],
              limits: np.ndarray, live: list[int], evaluated: np.ndarray) -> None:
    """Evaluate a batch of points exactly and offer each slot's best of them.

    With a solved dim e (rule 6), the traffic is the one at e's largest fitting
    tile; the smallest tile is evaluated only at the points of least traffic,
    to choose the buffer.
    """
    layer, arch, order, levels, objective = ctx.layer, ctx.arch, ctx.order, ctx.levels, ctx.objective
    tiles, slot = batch.tiles, batch.slot
    gshape = slot.shape
    big = np.iinfo(np.int64).max
    if e is None:
        per_op = buffer_bytes_many(buffer_words_many(layer, order, levels, tiles), arch)
        buf = np.broadcast_to(sum(per_op.values()), gshape)
    elif batch.solved is None:
        # word sizes that are not whole bytes: feasibility over all of e's candidates
        ext = {d: np.expand_dims(t, -1) for d, t in tiles.items()}
        ext[e.dim] = e.tiles.reshape(1, -1)
        per_op = buffer_bytes_many(buffer_words_many(layer, order, levels, ext), arch)
        xshape = gshape + (len(e.tiles),)
        bufx = np.broadcast_to(sum(per_op.values()), xshape)
        fit = np.broadcast_to(capacity_mask(arch, per_op), xshape) & (bufx <= limits[slot][:, None])
        # every point fits at e's smallest tile (`candidate_points` checked it)
        hi_idx = len(e.tiles) - 1 - np.argmax(fit[..., ::-1], axis=-1)
        b_hi = np.take_along_axis(bufx, hi_idx[..., None], axis=-1)[..., 0]
        b_lo = bufx[..., 0]
    else:
        hi_idx, b_lo, b_hi = batch.solved.largest, batch.solved.bytes_at_smallest, batch.solved.bytes_at_largest
    full = tiles if e is None else {**tiles, e.dim: e.tiles[hi_idx]}
    obj = np.broadcast_to(objective_bytes(evaluate_many(layer, order, levels, full, arch), arch, objective), gshape)
    for s in np.unique(slot).tolist():
        best = bests[s]
        mine = np.nonzero(slot == s)[0]
        evaluated[live[s]] += len(mine)
        omin = obj[mine].min()
        if best.key is not None and omin > best.key[0]:
            continue
        at = mine[obj[mine] == omin]          # the (few) points of least traffic
        chosen_tiles = {d: np.broadcast_to(t, gshape)[at] for d, t in tiles.items()}
        if e is None:
            buf_at = buf[at]
        else:
            # the same traffic at e's smallest tile: e does not matter -> the smaller buffer
            # (ties: fewer tiles, e's largest); traffic never falls below the largest tile's (rule 6)
            o_lo = np.broadcast_to(objective_bytes(evaluate_many(layer, order, levels,
                                                                 {**chosen_tiles, e.dim: e.tiles[0]}, arch),
                                                   arch, objective), at.shape)
            use_lo = (o_lo == omin) & (b_lo[at] < b_hi[at])
            buf_at = np.where(use_lo, b_lo[at], b_hi[at])
            chosen_tiles[e.dim] = np.where(use_lo, e.tiles[0], e.tiles[hi_idx[at]])
        # least buffer, then fewest tiles, then first in the grid (row-major position)
        sel = buf_at == buf_at.min()
        ntiles = np.ones(len(at), dtype=np.int64)
        for d in order:
            ntiles = ntiles * ceil_div(layer.dim_size(d), chosen_tiles[d])
        sel &= ntiles == np.where(sel, ntiles, big).min()
        lin = np.zeros(len(at), dtype=np.int64)
        for gi, axis in enumerate(grid):
            lin = lin * len(axis.tiles) + batch.index[gi][at]
        k = int(np.argmin(np.where(sel, lin, big)))
        chosen = {d: int(chosen_tiles[d][k]) for d in order}
        best.offer((int(omin), int(buf_at[k]), int(ntiles[k])), order, levels, chosen, (ctx.rank, int(lin[k])))
