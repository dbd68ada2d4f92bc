"""The optimizer: a provably optimal schedule per layer, by exhaustive-equivalent search.

The space is every schedule of the semantics: any order of the tiled
dimensions, any tile sizes (no divisibility), any buffer level per operand,
subject to the capacity. It is reduced only by exact equivalences and
dominance arguments (docs/optimizer.md gives the proofs):

1. a loop with one trip changes nothing -> only dimensions with >= 2 trips
   appear in an order;
2. loops below the deepest buffer change no block -> the deepest buffer sits
   below the innermost loop;
3. a buffer just below a loop its operand does not depend on holds the same
   blocks one level up -> each buffer sits at 0 or just below a loop its
   operand depends on;
4. for N, G, K and C the traffic depends on the trip count only, and buffers
   grow with the tile -> only the smallest tile of each trip count;
5. for the spatial dimensions, within one trip count, a tile pair whose
   per-axis sums are dominated (no smaller first-block sums, no larger
   overlaps, no smaller buffer) by another is dropped;
6. one non-spatial tile per point is solved (the largest that fits, or the
   smallest), not enumerated;
7. loop orders that another structure matches or beats are not enumerated
   (`search/structures.py`);
8. structures are searched best-first and pruned with lower bounds
   (`search/prune.py`); inside one, points are built axis by axis and dropped as
   soon as none of their completions can fit or win (`search/grid.py`);
9. on square layers, of a structure and its row/column mirror only one is
   searched.

Every remaining candidate is evaluated exactly with the vectorised model.
The objective is least total bytes, ties broken by the smaller total buffer,
then by fewer tiles. `optimize_capacities` searches several capacities (a
sweep) in one pass over the structures, with the same answer for each as
`optimize_layer` gives it alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..core.arch import OPERANDS, Architecture, words_to_bytes
from ..core.dims import SPATIAL_AXES
from ..core.errors import ConvschedError, NoFeasibleSchedule
from ..core.layer import DIMS, Layer
from ..core.limits import check_optimizer_layer
from ..core.schedule import Schedule
from ..model.closed_form import Traffic, evaluate
from ..model.vectorised import evaluate_many
from .grid import NO_BAR, _pruned_points
from .prune import (
    _capacity_mask,
    _structure_bound,
    _trips_bounds,
    fewest_fitting_trips,
    trip_range,
    trips_lower_bound,
)
from .structures import _MIRROR, SPATIAL_DIMS, _structure_table, _StructureTable, structures

OBJECTIVES = ("bytes", "reads")


@dataclass(frozen=True)
class Constraints:
    """User restrictions of the search space."""

    orders: tuple[tuple[str, ...], ...] | None = None   # allowed loop orders (dims may stay untiled)
    untiled: frozenset[str] = frozenset()               # dimensions that must not be tiled
    tile_min: Mapping[str, int] = field(default_factory=dict)
    tile_max: Mapping[str, int] = field(default_factory=dict)
    buffers: Mapping[str, int] | None = None            # fixed buffer levels (with a fixed order)

    def check(self, layer: Layer) -> None:
        for d in set(self.untiled) | set(self.tile_min) | set(self.tile_max):
            if d not in DIMS:
                raise ConvschedError(f"unknown dimension {d!r} in constraints; use some of {' '.join(DIMS)}")
        for d in DIMS:
            lo, hi = self.tile_min.get(d, 1), self.tile_max.get(d, layer.dim_size(d))
            if lo < 1 or hi < 1:
                raise ConvschedError(f"tile bounds for {d} must be positive")
            if lo > hi:
                raise ConvschedError(f"tile bounds for {d} contradict each other: minimum {lo} > maximum {hi}")
            if lo > layer.dim_size(d):
                raise ConvschedError(f"tile minimum {d}>={lo} is larger than the layer's {d}={layer.dim_size(d)}")
            if d in self.untiled and hi < layer.dim_size(d):
                raise ConvschedError(f"{d} is both untiled and bounded to tiles <= {hi}; drop one of them")
        if self.orders is not None:
            for order in self.orders:
                for d in order:
                    if d not in DIMS:
                        raise ConvschedError(f"unknown dimension {d!r} in order; use some of {' '.join(DIMS)}")
                if len(set(order)) != len(order):
                    raise ConvschedError(f"order {' '.join(order)} repeats a dimension")
        if self.buffers is not None:
            if self.orders is None or len(self.orders) != 1:
                raise ConvschedError("fixed buffer levels need exactly one fixed loop order")
            n = len(self.orders[0])
            for op, b in self.buffers.items():
                if op not in OPERANDS:
                    raise ConvschedError(f"unknown operand {op!r} in buffer levels; use input, weight, output")
                if not 0 <= b <= n:
                    raise ConvschedError(f"buffer level {op}={b} is out of range 0..{n} for the fixed order")


@dataclass(frozen=True)
class LayerResult:
    layer: Layer
    schedule: Schedule
    traffic: Traffic
    candidates: int      # tile candidates evaluated
    structures: int      # (order, buffer placement) pairs searched


# ---------------------------------------------------------------------------
# candidate tiles


def tile_candidates(layer: Layer, dim: str, cons: Constraints) -> np.ndarray:
    """Tiles that give >= 2 trips, within the bounds; the smallest per trip count for non-spatial dims."""
    D = layer.dim_size(dim)
    lo, hi = cons.tile_min.get(dim, 1), min(cons.tile_max.get(dim, D), D - 1)
    if dim in cons.untiled or hi < lo:
        return np.zeros(0, dtype=np.int64)
    if dim in SPATIAL_DIMS:
        return np.arange(lo, hi + 1, dtype=np.int64)
    return smallest_tile_per_trip_count(D, lo, hi)


def smallest_tile_per_trip_count(size: int, lo: int, hi: int) -> np.ndarray:
    """`smallest_per_trip_count(size, arange(lo, hi + 1))` without building the range: about
    2 sqrt(size) tiles, found by jumping from a tile to the first one with fewer trips."""
    out = []
    t = lo
    while t <= hi:
        out.append(t)
        n = -(-size // t)
        if n == 1:
            break
        t = max(t + 1, -(-size // (n - 1)))      # the smallest tile with at most n - 1 trips
    return np.array(out, dtype=np.int64)


class _Candidates(dict):
    """Tile candidates per dimension (dim -> array), with a cheap identity for the caches keyed by them."""

    def __init__(self, items: Mapping[str, np.ndarray]) -> None:
        super().__init__(items)
        self.key = tuple((d, self[d].tobytes()) for d in DIMS)     # bytes cache their hash
        self.memo: dict[tuple, np.ndarray] = {}

    def smallest_per_trip(self, layer: Layer, dim: str) -> np.ndarray:
        hit = self.memo.get(("spt", dim))
        if hit is None:
            hit = self.memo[("spt", dim)] = smallest_per_trip_count(layer.dim_size(dim), self[dim])
        return hit


def smallest_per_trip_count(size: int, tiles: np.ndarray) -> np.ndarray:
    """Of the given tiles, the smallest of each trip count (rule 4)."""
    if len(tiles) == 0:
        return tiles
    tiles = np.unique(tiles)                                    # sorted: trips non-increasing
    _, first = np.unique(-(-size // tiles), return_index=True)  # first (smallest) tile of each count
    return tiles[np.sort(first)]


# ---------------------------------------------------------------------------
# the search (structures: search/structures.py; bounds: search/prune.py; grid points: search/grid.py)


class _Best:
    """The best (objective bytes, buffer bytes, tiles) key found so far and its schedule.

    A seed (a known feasible schedule, e.g. a textbook dataflow's best) only
    sets the bar: the first searched schedule with an equal key replaces it,
    so the search returns exactly what it would without the seed, sooner.
    """

    def __init__(self) -> None:
        self.key: tuple[int, int, int] | None = None
        self.schedule: tuple | None = None
        self.rank: tuple[int, int] = (0, 0)
        self.seeded = False

    def seed(self, key: tuple[int, int, int]) -> None:
        self.key, self.schedule, self.seeded = key, None, True

    def offer(self, key: tuple[int, int, int], order, levels, tiles, rank: tuple[int, int]) -> None:
        """Keep the least key; among equal keys the least rank (structure, grid position) found."""
        if (self.key is None or key < self.key or (self.seeded and key == self.key)
                or (key == self.key and rank < self.rank)):
            self.key, self.schedule, self.rank = key, (order, dict(levels), dict(tiles)), rank
            self.seeded = False


def _objective(v, arch: Architecture, objective: str):
    if objective == "bytes":
        return v.total_bytes
    return words_to_bytes(v.input_read, arch.input_bits) + words_to_bytes(v.weight_read, arch.weight_bits)




def _spatial_pairs(layer: Layer, order: Sequence[str], levels: Mapping[str, int], dims: Sequence[str],
                   cands: Mapping[str, np.ndarray], axis: str) -> np.ndarray:
    """Candidate tile pairs of one input axis (rule 5): drop dominated (output, filter) tile pairs.

    The input's traffic is linear in this axis's per-split sums with
    non-negative coefficients (+ for first-block sums, - for overlaps); the
    weight traffic grows with the output-tile trip count only, the output
    traffic with the filter-tile trip count only; buffers grow with the
    tiles. A pair that is no better in every one of these than another pair
    (and has no fewer trips) can never be strictly better.
    """
    o_dim, f_dim = SPATIAL_AXES[axis]
    b = levels["input"]
    pos = {d: j for j, d in enumerate(order[:b])}
    key = (layer, axis, tuple(dims), pos.get(o_dim), pos.get(f_dim), b,
           o_dim in order[:levels["output"]], f_dim in order[:levels["weight"]],
           cands.key if isinstance(cands, _Candidates) else tuple(tuple(cands[d]) for d in dims))
    hit = _PAIR_CACHE.get(key)
    if hit is not None:
        return hit
    from ..model.vectorised import layer_tables
    lists = [cands[d] if d in dims else np.array([layer.dim_size(d)]) for d in (o_dim, f_dim)]
    to, tf = (g.ravel() for g in np.meshgrid(*lists, indexing="ij"))
    cols = [i for i, d in enumerate((o_dim, f_dim)) if d in dims]
    if len(to) <= 1:
        return np.stack([to, tf], axis=1)[:, cols]
    table = layer_tables(layer).spatial[axis]
    feats = [-(-layer.dim_size(o_dim) // to), -(-layer.dim_size(f_dim) // tf)]   # trips: tiles, W/O traffic
    if key[6]:
        feats.append(to)       # output buffer
    if key[7]:
        feats.append(tf)       # weight buffer
    for j in range(-1, b):
        owned = j >= 0 and order[j] in (o_dim, f_dim)
        F, I, M = table.table(pos.get(o_dim), pos.get(f_dim), j, owned)
        feats.append(F[to, tf])
        if j >= 0:
            feats.append(-I[to, tf])
        else:
            feats.append(M[to, tf])   # input buffer
    sel = np.nonzero(_undominated(np.stack(feats, axis=1)))[0]
    pairs = np.stack([to[sel], tf[sel]], axis=1)[:, cols]
    out = np.unique(pairs, axis=0)
    if len(_PAIR_CACHE) > 20000:
        _PAIR_CACHE.clear()
    _PAIR_CACHE[key] = out
    return out


_PAIR_CACHE: dict[tuple, np.ndarray] = {}


def _undominated(X: np.ndarray) -> np.ndarray:
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


def _groups(layer, order, levels, cands) -> list[tuple[list[str], np.ndarray]]:
    """Grid axes of one structure: each non-spatial dim alone, each input axis's (output, filter) pair.

    A spatial loop below the input buffer does not change the input's blocks:
    like N, G, K, C it then moves traffic through its trip count only (F2), so
    it is its own axis with the smallest tile per trip count (rule 4).
    """
    groups: list[tuple[list[str], np.ndarray]] = []
    done: set[str] = set()
    above_input = set(order[:levels["input"]])
    for d in order:
        if d in done:
            continue
        axis = next((a for a, pair in SPATIAL_AXES.items() if d in pair), None)
        if axis is None:
            groups.append(([d], cands[d].reshape(-1, 1)))
            done.add(d)
        elif d not in above_input:
            spt = (cands.smallest_per_trip(layer, d) if isinstance(cands, _Candidates)
                   else smallest_per_trip_count(layer.dim_size(d), cands[d]))
            groups.append(([d], spt.reshape(-1, 1)))
            done.add(d)
        else:
            dims = [x for x in SPATIAL_AXES[axis] if x in order and x in above_input]
            groups.append((dims, _spatial_pairs(layer, order, levels, dims, cands, axis)))
            done.update(dims)
    return groups


def _prefilter_groups(layer, arch, order, levels, groups, limits: np.ndarray):
    """Drop candidates of one grid axis that cannot fit even with every other tile at its smallest.

    Buffers never shrink when a tile grows (F3), so the buffers with all other
    axes at their smallest tiles bound the buffers of every grid point that
    uses this candidate from below. `limits`: each slot's byte limit. Returns
    the groups with the candidates that fit under some limit, and per slot
    the fewest and most trips of each dimension among those that fit under
    its limit (None when some axis has none).
    """
    from ..model.vectorised import buffer_bytes_many, buffer_words_many
    if not groups:
        return groups, [({}, {})] * len(limits)
    # all axes' candidates in one flat array (a row per dim), each with the other axes at their smallest
    names = [d for dims, _ in groups for d in dims]
    axis_of = [gi for gi, (dims, _) in enumerate(groups) for _ in dims]
    lengths = [len(arr) for _, arr in groups]
    starts = np.cumsum([0] + lengths[:-1])
    tiles = np.empty((len(names), sum(lengths)), dtype=np.int64)
    row = 0
    for (dims, arr), at, n_g in zip(groups, starts.tolist(), lengths):
        for k in range(len(dims)):
            tiles[row] = arr[:, k].min()
            tiles[row, at:at + n_g] = arr[:, k]
            row += 1
    flat = dict(zip(names, tiles))
    per_op = buffer_bytes_many(buffer_words_many(layer, order, levels, flat), arch)
    ok = np.broadcast_to(sum(per_op.values()), tiles.shape[1:])[None, :] <= limits[:, None]
    if arch.capacity is not None or arch.capacity_per_operand is not None:
        ok = ok & _capacity_mask(arch, per_op)
    some = ok.any(axis=0)
    # per slot, axis and dim: the fewest and most trips among the candidates that fit, from their
    # largest and smallest tiles (one reduction each; a dim's own candidates are in its axis's segment)
    at_axis = (slice(None), np.arange(len(names)), axis_of)
    largest = np.maximum.reduceat(np.where(ok[:, None, :], tiles, 0), starts, axis=2)[at_axis]
    least = np.minimum.reduceat(np.where(ok[:, None, :], tiles, NO_BAR), starts, axis=2)[at_axis]
    sizes = np.array([layer.dim_sizes[d] for d in names])
    few = -(-sizes // np.maximum(largest, 1))
    most = -(-sizes // least)
    empty = (largest == 0).any(axis=1).tolist()
    out = [(dims, arr[some[at:at + len(arr)]]) for (dims, arr), at in zip(groups, starts.tolist())]
    return out, [None if e else (dict(zip(names, lo)), dict(zip(names, hi)))
                 for e, lo, hi in zip(empty, few.tolist(), most.tolist())]


def _search_structure(layer, arch, archs, caps, objective, order, levels, cands, bests: list[_Best],
                      bounds, smallest: Mapping[str, int], seq: int = 0) -> np.ndarray:
    """Find the best feasible tiles of one structure for each slot and offer them to its `bests[s]`.

    A slot is one capacity of a sweep (`archs[s]`, whose shared capacity is
    `caps[s]`; `bounds[s]`: the structure's traffic bound there); `arch` has
    the word sizes and no shared capacity (the slots' limits carry it).
    `seq` is the structure's rank. Returns the points evaluated per slot.

    Grid axes are the non-spatial dims and the input axes' (output, filter)
    tile pairs; the points that may fit and win are built axis by axis
    (`_pruned_points`). One non-spatial dim `e` is solved, not enumerated
    (rule 6 of docs/optimizer.md): with the other tiles fixed, the traffic is
    affine and non-decreasing in e's trip count while buffers grow with e's
    tile, so the best e is either its largest tile that fits (when the
    traffic depends on it) or its smallest (when it does not). The traffic
    is the one at the largest fitting tile either way; the smallest tile is
    evaluated only at the points of least traffic, to choose the buffer.
    """
    from ..model.vectorised import buffer_bytes_many, buffer_words_many
    evaluated = np.zeros(len(bests), dtype=np.int64)
    groups = _groups(layer, order, levels, cands) if order else []
    # e is chosen before the prefilter, so that it is the same whichever capacities are searched together
    above_input = set(order[:levels["input"]])
    solvable = [gi for gi, (dims, arr) in enumerate(groups) if len(dims) == 1
                and (dims[0] not in SPATIAL_DIMS or dims[0] not in above_input) and len(arr) >= 3]
    e_gi = max(solvable, key=lambda gi: len(groups[gi][1])) if solvable else None
    # a slot where the structure can at best tie the traffic takes no larger buffer than its best
    limits = np.array([min(c, b.key[1]) if b.key is not None and lb == b.key[0] else c
                       for c, b, lb in zip(caps, bests, bounds)], dtype=np.int64)
    groups, ranges = _prefilter_groups(layer, arch, order, levels, groups, limits)
    # the capacity's trips: bound again with the trips of the candidates that fit
    live = [s for s, r in enumerate(ranges) if r is not None and (
        bests[s].key is None
        or trips_lower_bound(layer, archs[s], objective, order, levels, *r, smallest) <= bests[s].key[0])]
    if not live:
        return evaluated
    bests_live = [bests[s] for s in live]
    limits_live = limits[live]
    grid = [g for gi, g in enumerate(groups) if gi != e_gi]
    e_dim = groups[e_gi][0][0] if e_gi is not None else None
    e_cands = groups[e_gi][1][:, 0] if e_gi is not None else None
    big = np.iinfo(np.int64).max
    for idx, tiles, solved, slot in _pruned_points(layer, arch, objective, order, levels, grid, e_dim, e_cands,
                                                   bests_live, limits_live):
        gshape = slot.shape
        if e_dim is None:
            per_op = buffer_bytes_many(buffer_words_many(layer, order, levels, tiles), arch)
            buf = np.broadcast_to(sum(per_op.values()), gshape)
        elif solved is None:
            # word sizes that are not whole bytes: feasibility over all of e's candidates
            ext = {d: np.expand_dims(t, -1) for d, t in tiles.items()}
            ext[e_dim] = e_cands.reshape(1, -1)
            per_op = buffer_bytes_many(buffer_words_many(layer, order, levels, ext), arch)
            xshape = gshape + (len(e_cands),)
            bufx = np.broadcast_to(sum(per_op.values()), xshape)
            fit = np.broadcast_to(_capacity_mask(arch, per_op), xshape) & (bufx <= limits_live[slot][:, None])
            # every point fits at e's smallest tile (`_pruned_points` checked it)
            hi_idx = len(e_cands) - 1 - np.argmax(fit[..., ::-1], axis=-1)
            b_hi = np.take_along_axis(bufx, hi_idx[..., None], axis=-1)[..., 0]
            b_lo = bufx[..., 0]
        else:
            hi_idx, b_lo, b_hi = solved
        full = tiles if e_dim is None else {**tiles, e_dim: e_cands[hi_idx]}
        obj = np.broadcast_to(_objective(evaluate_many(layer, order, levels, full, arch), arch, objective), gshape)
        for s in np.unique(slot).tolist():
            best = bests_live[s]
            mine = np.nonzero(slot == s)[0]
            evaluated[live[s]] += len(mine)
            omin = obj[mine].min()
            if best.key is not None and omin > best.key[0]:
                continue
            at = mine[obj[mine] == omin]          # the (few) points of least traffic
            chosen_tiles = {d: np.broadcast_to(t, gshape)[at] for d, t in tiles.items()}
            if e_dim is None:
                buf_at = buf[at]
            else:
                # the same traffic at e's smallest tile: e does not matter -> the smaller buffer
                # (ties: fewer tiles, e's largest); traffic never falls below the largest tile's (rule 6)
                o_lo = np.broadcast_to(_objective(evaluate_many(layer, order, levels,
                                                                {**chosen_tiles, e_dim: e_cands[0]}, arch),
                                                  arch, objective), at.shape)
                use_lo = (o_lo == omin) & (b_lo[at] < b_hi[at])
                buf_at = np.where(use_lo, b_lo[at], b_hi[at])
                chosen_tiles[e_dim] = np.where(use_lo, e_cands[0], e_cands[hi_idx[at]])
            # least buffer, then fewest tiles, then first in the grid (row-major position)
            sel = buf_at == buf_at.min()
            ntiles = np.ones(len(at), dtype=np.int64)
            for d in order:
                ntiles = ntiles * (-(-layer.dim_size(d) // chosen_tiles[d]))
            sel &= ntiles == np.where(sel, ntiles, big).min()
            lin = np.zeros(len(at), dtype=np.int64)
            for gi, (_, arr) in enumerate(grid):
                lin = lin * len(arr) + idx[gi][at]
            k = int(np.argmin(np.where(sel, lin, big)))
            chosen = {d: int(chosen_tiles[d][k]) for d in order}
            best.offer((int(omin), int(buf_at[k]), int(ntiles[k])), order, levels, chosen, (seq, int(lin[k])))
    return evaluated


def _is_square(layer: Layer, cons: Constraints) -> bool:
    """True when swapping rows and columns maps the layer and the constraints onto themselves."""
    if any(getattr(layer, a + "Y") != getattr(layer, a + "X") for a in ("O", "F", "S", "D", "P", "I")):
        return False
    if cons.orders is not None or cons.buffers is not None:
        return False
    swap = lambda d: _MIRROR.get(d, d)
    return ({swap(d) for d in cons.untiled} == set(cons.untiled)
            and all(cons.tile_min.get(swap(d)) == v for d, v in cons.tile_min.items())
            and all(cons.tile_max.get(swap(d)) == v for d, v in cons.tile_max.items()))


def _mirror_twins(layer: Layer, cons: Constraints, structs) -> np.ndarray:
    """Which structures are skipped as the row/column mirror image of one enumerated before them.

    On a square layer (same size, filter, stride, dilation, padding along
    rows and columns) the model is symmetric: a structure and its mirror (OY
    and OX, FY and FX swapped, tiles swapped with them) move the same traffic
    with the same buffers and tiles, so only one of each pair is searched.
    """
    if not _is_square(layer, cons) or not structs:
        return np.zeros(len(structs), dtype=bool)
    mirror = _structure_table(structs).mirror
    return (mirror >= 0) & (mirror < np.arange(len(structs)))


def _least_words(layer: Layer, cands: Mapping[str, np.ndarray], prefixes) -> np.ndarray:
    """Words of each (operand, loops above its buffer) with every tile at its smallest candidate.

    An operand's block is the product of its axes' largest sets; with the
    smallest tiles, a dimension above the buffer gives its smallest candidate,
    one below it the whole extent, and the input rows/columns the largest
    window of the smallest output and filter tiles above the buffer.
    """
    from ..model.vectorised import _axis_keys, layer_tables
    tabs = layer_tables(layer)
    small = {d: int(cands[d].min()) for d in DIMS if len(cands[d])}
    out = np.empty(len(prefixes), dtype=np.int64)
    for n, (op, above) in enumerate(prefixes):
        pos = {d: j for j, d in enumerate(above)}
        w = 1
        for k in _axis_keys(op):
            if k in SPATIAL_AXES:
                od, fd = SPATIAL_AXES[k]
                _, _, M = tabs.spatial[k].table(pos.get(od), pos.get(fd), -1, False)
                w *= int(M[small[od] if od in pos else layer.dim_size(od),
                           small[fd] if fd in pos else layer.dim_size(fd)])
            else:
                w *= small[k] if k in pos else layer.dim_size(k)
        out[n] = w
    return out


def least_buffer_words(layer: Layer, structs, cands: Mapping[str, np.ndarray]) -> np.ndarray:
    """Words of every structure's buffers (structures x OPERANDS) with every tile at its smallest
    candidate: the least any of its schedules needs (buffers grow with tiles, F3)."""
    tab = _structure_table(structs)
    key = (layer, cands.key if isinstance(cands, _Candidates) else None, id(tab))
    least = _LEAST.get(key) if key[1] is not None else None
    if least is None or least[0] is not tab:
        least = (tab, _least_words(layer, cands, tab.prefixes))
        if key[1] is not None:
            if len(_LEAST) > 256:
                _LEAST.clear()
            _LEAST[key] = least
    return least[1][tab.prefix_id]


_LEAST: dict[tuple, tuple[_StructureTable, np.ndarray]] = {}


@dataclass(frozen=True)
class _Ranking:
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


def least_bytes(arch: Architecture, words: np.ndarray) -> np.ndarray:
    """On-chip bytes (structures x OPERANDS) of `least_buffer_words`' rows on `arch`."""
    from ..model.vectorised import buffer_bytes_many
    per_op = buffer_bytes_many(dict(zip(OPERANDS, words.T)), arch)
    return np.stack([per_op[op] for op in OPERANDS], axis=1)


def _rank(layer: Layer, archs: Sequence[Architecture], objective: str, structs, mirrored: np.ndarray,
          cands: Mapping[str, np.ndarray], bars: Sequence[int | None]) -> _Ranking:
    """Rank the structures whose least buffers fit some of `archs` (see `_Ranking`). The bound under a
    capacity is computed only where the search may need it: up to its bar (`bars`, a known fitting
    schedule's traffic, or None)."""
    tab = _structure_table(structs)
    words = least_buffer_words(layer, structs, cands)               # structures x operands
    nbytes = least_bytes(archs[0], words)
    buf = nbytes.sum(axis=1)
    per_op = dict(zip(OPERANDS, nbytes.T))
    fits = np.stack([np.broadcast_to(_capacity_mask(a, per_op), buf.shape) for a in archs]) & ~mirrored
    free = archs[0].with_capacity(None)
    lb0 = np.array([_structure_bound(layer, free, objective, k, ikey) for k, ikey in tab.bound_keys],
                   dtype=np.int64)[tab.bound_id]
    idx = np.nonzero(fits.any(axis=0))[0]
    idx = idx[np.lexsort((idx, buf[idx], tab.loops[idx], lb0[idx]))]     # last key first
    fits, lb0 = fits[:, idx], lb0[idx]
    bound = np.full(fits.shape, NO_BAR, dtype=np.int64)
    _, n_max = trip_range(layer, cands)
    for k, a in enumerate(archs):
        stop = len(idx) if bars[k] is None else int(np.searchsorted(lb0, bars[k], side="right"))
        pos = np.nonzero(fits[k, :stop])[0]
        rows = idx[pos]
        lb = np.array([_structure_bound(layer, a, objective, kk, ikey) for kk, ikey in tab.bound_keys],
                      dtype=np.int64)[tab.bound_id[rows]]
        fewest = fewest_fitting_trips(layer, a, tab, words[rows], cands, rows)
        bound[k, pos] = np.maximum(lb, _trips_bounds(layer, a, objective, tab, nbytes[rows], fewest, n_max, rows))
    return _Ranking(idx, lb0, buf[idx], words[idx], fits, bound)


def optimize_layer(layer: Layer, arch: Architecture, constraints: Constraints | None = None,
                   objective: str = "bytes", incumbent: Schedule | None = None) -> LayerResult:
    """The optimal schedule of `layer` on `arch` (whose capacity must be set).

    `incumbent`, a schedule of the searched space known to fit (e.g. the best
    textbook dataflow), lets the bounds prune from the start; the answer is
    the same with or without it.
    """
    (result,) = optimize_capacities(layer, [arch], constraints, objective, [incumbent])
    if isinstance(result, ConvschedError):
        raise result
    return result


def optimize_capacities(layer: Layer, archs: Sequence[Architecture], constraints: Constraints | None = None,
                        objective: str = "bytes", incumbents: Sequence[Schedule | None] | None = None
                        ) -> list[LayerResult | ConvschedError]:
    """`optimize_layer` for each of `archs` at once (a sweep): the same answers, in one pass.

    The architectures may differ only in their shared capacity. Each
    structure is searched once for all capacities whose bounds it passes, so
    its set-up and every pruning step are shared. Returns per architecture
    its result, or the error `optimize_layer` would raise (no fit).
    """
    cons = constraints or Constraints()
    cons.check(layer)
    try:
        check_optimizer_layer(layer)      # its per-axis tables stay within docs/limits.md
    except ConvschedError as e:
        raise ConvschedError(f"layer {layer}: {e}") from None
    archs = list(archs)
    if objective not in OBJECTIVES:
        raise ConvschedError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    if any(a.dma_granularity for a in archs):
        raise ConvschedError("optimize does not search with a DMA granularity yet; drop dma_granularity "
                             "(evaluate and simulate support it)")
    if len(archs) > 1 and any(a.capacity is None or a.with_capacity(None) != archs[0].with_capacity(None)
                              for a in archs):
        raise ValueError("architectures searched together may differ only in their shared capacity")
    from .alloc import tune_allocator
    tune_allocator()            # large grid steps: reuse heap memory instead of re-faulting it
    cands = _Candidates({d: tile_candidates(layer, d, cons) for d in DIMS})
    bests = [_Best() for _ in archs]
    incumbents = list(incumbents) if incumbents is not None else [None] * len(archs)
    if len(incumbents) != len(archs):
        raise ValueError(f"{len(incumbents)} incumbents for {len(archs)} architectures; give one (or None) each")
    for best, arch, inc in zip(bests, archs, incumbents):
        if inc is not None:
            best.seed(_incumbent_key(inc, arch, objective))
    n_struct = [0] * len(archs)
    n_cand = [0] * len(archs)
    all_structs = structures(layer, cons, cands)
    rank = _rank(layer, archs, objective, all_structs, _mirror_twins(layer, cons, all_structs), cands,
                 [b.key[0] if b.key is not None else None for b in bests])
    # the vectorised steps take each capacity as a per-point byte limit
    walk_arch = archs[0].with_capacity(None) if archs[0].capacity is not None else archs[0]
    caps = [a.capacity if a.capacity is not None else int(NO_BAR) for a in archs]
    live = list(range(len(archs)))
    # Best-first: once a structure's capacity-free bound exceeds a capacity's best, no later one can win
    # there. Positions are screened a block at a time against the bests as they stand (a superset of
    # what the exact check below keeps, since the bests only improve).
    block = 256
    for start in range(0, len(rank.index), block):
        bars = np.array([NO_BAR if b.key is None else b.key[0] for b in bests], dtype=np.int64)
        live = [k for k in live if rank.bound0[start] <= bars[k]]
        if not live:
            break
        end = min(start + block, len(rank.index))
        lk = np.array(live)
        screen = (rank.fits[lk, start:end] & (rank.bound[lk, start:end] <= bars[lk, None])
                  & (rank.bound0[start:end] <= bars[lk, None])).any(axis=0)
        at = np.nonzero(screen)[0]
        # plain lists for the exact check, which runs once per screened position
        fits, bounds = rank.fits[:, start + at].T.tolist(), rank.bound[:, start + at].T.tolist()
        bound0, least_buf = rank.bound0[start + at].tolist(), rank.buf[start + at].tolist()
        for j, p in enumerate((start + at).tolist()):
            act = []
            for k in list(live):
                key = bests[k].key
                if key is not None and bound0[j] > key[0]:
                    live.remove(k)
                    continue
                bound = bounds[j][k]
                if not fits[j][k] or key is not None and (
                        bound > key[0] or (bound == key[0] and least_buf[j] > key[1])):
                    continue   # the capacity's trips cost more than the best, or at best a tie with more buffer
                act.append(k)
            if not act:
                continue
            order, levels = all_structs[rank.index[p]]
            need = dict(zip(OPERANDS, rank.words[p].tolist()))
            found = _search_structure(layer, walk_arch, [archs[k] for k in act], [caps[k] for k in act],
                                      objective, order, levels, cands, [bests[k] for k in act],
                                      [bounds[j][k] for k in act], need, p)
            for k, f in zip(act, found.tolist()):
                n_struct[k] += 1
                n_cand[k] += f
    out: list[LayerResult | ConvschedError] = []
    for k, (arch, best) in enumerate(zip(archs, bests)):
        if best.schedule is None and best.seeded:
            out.append(ConvschedError(f"the incumbent schedule {incumbents[k]} is not in the searched space"))
        elif best.schedule is None:
            need_bytes = smallest_capacity(layer, arch, cons, cands)
            out.append(NoFeasibleSchedule(
                f"no schedule of layer {layer} fits the buffer capacity; the smallest that fits is {need_bytes} "
                f"bytes ({'double-buffered, ' if arch.double_buffer else ''}try --buffer {need_bytes}B or more)",
                layer, need_bytes))
        else:
            order, levels, tiles = best.schedule
            sched = Schedule(layer, tuple(order), tiles, levels)
            out.append(LayerResult(layer, sched, evaluate(sched, arch), int(n_cand[k]), int(n_struct[k])))
    return out


def _incumbent_key(sched: Schedule, arch: Architecture, objective: str) -> tuple[int, int, int]:
    """The search's key of a schedule that must fit `arch`."""
    t = evaluate(sched, arch)
    if not arch.fits(t.buffer_words):
        raise ConvschedError("the incumbent schedule does not fit the buffer capacity")
    return schedule_key(t, sched, objective)


def schedule_key(traffic: Traffic, sched: Schedule, objective: str) -> tuple[int, int, int]:
    """What the search minimises: (objective bytes, on-chip buffer bytes, tiles)."""
    obj = traffic.total_bytes if objective == "bytes" else traffic.input.read_bytes + traffic.weight.read_bytes
    return int(obj), int(traffic.total_buffer_bytes), int(sched.n_tiles)


def smallest_capacity(layer: Layer, arch: Architecture, cons: Constraints,
                      cands: Mapping[str, np.ndarray] | None = None) -> int:
    """Least on-chip bytes any schedule of the constrained space needs (buffers grow with tiles)."""
    cands = cands or {d: tile_candidates(layer, d, cons) for d in DIMS}
    words = least_buffer_words(layer, structures(layer, cons, cands), cands)
    return int(least_bytes(arch, words).sum(axis=1).min())


# ---------------------------------------------------------------------------
# textbook dataflows: fixed loop order and buffer placement, best tiles

#: name -> (loop order, buffer levels). Filters are not tiled. The stationary
#: operand's buffer sits above the loops it does not depend on, so its block
#: stays on chip while those loops run; the other two buffers hold one tile.
TEXTBOOK: dict[str, tuple[tuple[str, ...], dict[str, int]]] = {
    "weight-stationary": (("G", "K", "C", "N", "OY", "OX"), {"weight": 3, "input": 6, "output": 6}),
    "output-stationary": (("N", "G", "K", "OY", "OX", "C"), {"output": 5, "input": 6, "weight": 6}),
    "input-stationary": (("N", "G", "C", "OY", "OX", "K"), {"input": 5, "weight": 6, "output": 6}),
}


def textbook_dataflow(layer: Layer, arch: Architecture, name: str, objective: str = "bytes") -> LayerResult | None:
    """The best schedule of one textbook dataflow (None when none of its schedules fits)."""
    return textbook_dataflows(layer, [arch], name, objective)[0]


def textbook_dataflows(layer: Layer, archs: Sequence[Architecture], name: str,
                       objective: str = "bytes") -> list[LayerResult | None]:
    """`textbook_dataflow` for architectures that differ only in their shared capacity, in one pass."""
    order, levels = TEXTBOOK[name]
    cons = Constraints(orders=(order,), buffers=levels, untiled=frozenset({"FY", "FX"}))
    try:
        found = optimize_capacities(layer, archs, cons, objective)
    except ConvschedError:
        return [None] * len(archs)
    return [None if isinstance(r, ConvschedError) else r for r in found]


def best_textbook(layer: Layer, arch: Architecture, objective: str = "bytes") -> tuple[str, LayerResult] | None:
    """The best of the textbook dataflows (by total bytes, then buffer), with its name."""
    found = [(name, r) for name in TEXTBOOK if (r := textbook_dataflow(layer, arch, name, objective)) is not None]
    if not found:
        return None
    return min(found, key=lambda nr: (nr[1].traffic.total_bytes, nr[1].traffic.total_buffer_bytes))
