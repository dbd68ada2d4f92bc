"""Every structure of a layer ranked for the best-first search, with the bounds that skip it.

All structures at once, as arrays over the list's `StructureTable`: each
one's least buffers (every tile at its smallest candidate, F3 of
docs/optimizer.md), which capacities those fit, its capacity-free bound (the
search order) and its bound under each capacity with the trips the capacity
forces (rule 8). Mirror twins of a square layer are dropped here (rule 9).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

from ..core.arch import OPERANDS, Architecture
from ..core.dims import SPATIAL_AXES
from ..core.layer import DIMS, Layer
from ..model.vectorised import AXIS_KEYS, buffer_bytes_many, layer_tables
from .gridaxes import NO_BAR
from .prune import capacity_mask, fewest_fitting_trips, structure_bound, table_trips_bounds
from .space import Constraints, Objective, TileCandidates
from .structures import MIRROR, StructureList, StructureTable


@dataclass(frozen=True)
class Ranking:
    """The structures worth searching, in search order, with what the loop over them needs.

    Order: best capacity-free traffic bound first (the search stops at the
    first structure whose bound exceeds the best found), then fewer loops,
    less buffer, enumeration order -- the same for every capacity, so a
    structure's rank does not depend on which capacities are searched together.
    """

    index: np.ndarray      # structure indices
    bound0: np.ndarray     # capacity-free traffic bound
    buf: np.ndarray        # least buffer bytes (every tile at its smallest candidate)
    words: np.ndarray      # least buffer words per operand
    fits: np.ndarray       # capacities x positions: the least buffers fit (and not a mirror twin)
    bound: np.ndarray      # capacities x positions: the bound under each capacity (trips it forces)


def least_words(cands: TileCandidates, prefixes: Sequence[tuple[str, tuple[str, ...]]]) -> np.ndarray:
    """Words of each (operand, loops above its buffer) with every tile at its smallest candidate.

    An operand's block is the product of its axes' largest sets; with the
    smallest tiles, a dimension above the buffer gives its smallest candidate,
    one below it the whole extent, and the input rows/columns the largest
    window of the smallest output and filter tiles above the buffer.
    """
    layer = cands.layer
    tabs = layer_tables(layer)
    small = {d: int(cands[d].min()) for d in DIMS if len(cands[d])}
    out = np.empty(len(prefixes), dtype=np.int64)
    for n, (op, above) in enumerate(prefixes):
        pos = {d: j for j, d in enumerate(above)}
        w = 1
        for k in AXIS_KEYS[op]:
            if k in SPATIAL_AXES:
                od, fd = SPATIAL_AXES[k]
                _, _, M = tabs.spatial[k].table(pos.get(od), pos.get(fd), -1, False)
                w *= int(M[small[od] if od in pos else layer.dim_size(od),
                           small[fd] if fd in pos else layer.dim_size(fd)])
            else:
                w *= small[k] if k in pos else layer.dim_size(k)
        out[n] = w
    return out


@lru_cache(maxsize=256)
def _least_prefix_words(cands: TileCandidates, table: StructureTable) -> np.ndarray:
    return least_words(cands, table.prefixes)


def least_buffer_words(layer: Layer, structs: StructureList, cands: Mapping[str, np.ndarray]) -> np.ndarray:
    """Words of every structure's buffers (structures x OPERANDS) with every tile at its smallest
    candidate: the least any of its schedules needs (buffers grow with tiles, F3)."""
    if not isinstance(cands, TileCandidates):
        cands = TileCandidates(layer, cands)
    table = structs.table
    return _least_prefix_words(cands, table)[table.prefix_id]


def least_bytes(arch: Architecture, words: np.ndarray) -> np.ndarray:
    """On-chip bytes (structures x OPERANDS) of `least_buffer_words`' rows on `arch`."""
    per_op = buffer_bytes_many(dict(zip(OPERANDS, words.T)), arch)
    return np.stack([per_op[op] for op in OPERANDS], axis=1)


def is_square(layer: Layer, cons: Constraints) -> bool:
    """True when swapping rows and columns maps the layer and the constraints onto themselves."""
    if any(getattr(layer, a + "Y") != getattr(layer, a + "X") for a in ("O", "F", "S", "D", "P", "I")):
        return False
    if cons.orders is not None or cons.buffers is not None:
        return False

    def swap(d: str) -> str:
        return MIRROR.get(d, d)

    return ({swap(d) for d in cons.untiled} == set(cons.untiled)
            and all(cons.tile_min.get(swap(d)) == v for d, v in cons.tile_min.items())
            and all(cons.tile_max.get(swap(d)) == v for d, v in cons.tile_max.items()))


def mirror_twins(layer: Layer, cons: Constraints, structs: StructureList) -> np.ndarray:
    """Which structures are skipped as the row/column mirror image of one enumerated before them
    (rule 9 of docs/optimizer.md: on a square layer both move the same traffic)."""
    if not is_square(layer, cons) or not len(structs):
        return np.zeros(len(structs), dtype=bool)
    mirror = structs.table.mirror
    return (mirror >= 0) & (mirror < np.arange(len(structs)))


def rank_structures(cands: TileCandidates, archs: Sequence[Architecture], objective: Objective,
                    structs: StructureList, skip: np.ndarray, bars: Sequence[int | None]) -> Ranking:
    """Rank the structures whose least buffers fit some of `archs` (see `Ranking`), less those
    `skip` marks. The bound under a capacity is computed only where the search may need it: up to
    its bar (`bars`, a known fitting schedule's traffic, or None)."""
    layer = cands.layer
    tab = structs.table
    words = least_buffer_words(layer, structs, cands)               # structures x operands
    nbytes = least_bytes(archs[0], words)
    buf = nbytes.sum(axis=1)
    per_op = dict(zip(OPERANDS, nbytes.T))
    fits = np.stack([np.broadcast_to(capacity_mask(a, per_op), buf.shape) for a in archs]) & ~skip
    free = archs[0].with_capacity(None)
    lb0 = np.array([structure_bound(layer, free, objective, k, ikey) for k, ikey in tab.bound_keys],
                   dtype=np.int64)[tab.bound_id]
    idx = np.nonzero(fits.any(axis=0))[0]
    idx = idx[np.lexsort((idx, buf[idx], tab.loops[idx], lb0[idx]))]     # last key first
    fits, lb0 = fits[:, idx], lb0[idx]
    bound = np.full(fits.shape, NO_BAR, dtype=np.int64)
    _, n_max = cands.trip_range()
    for k, a in enumerate(archs):
        stop = len(idx) if bars[k] is None else int(np.searchsorted(lb0, bars[k], side="right"))
        pos = np.nonzero(fits[k, :stop])[0]
        rows = idx[pos]
        lb = np.array([structure_bound(layer, a, objective, kk, ikey) for kk, ikey in tab.bound_keys],
                      dtype=np.int64)[tab.bound_id[rows]]
        fewest = fewest_fitting_trips(layer, a, tab, words[rows], cands, rows)
        bound[k, pos] = np.maximum(lb, table_trips_bounds(layer, a, objective, tab, nbytes[rows], fewest, n_max,
                                                          rows))
    return Ranking(idx, lb0, buf[idx], words[idx], fits, bound)
