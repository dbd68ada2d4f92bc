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
   (`structures.py`);
8. structures are searched best-first and pruned with lower bounds
   (`prune.py`); inside one, points are built axis by axis and dropped as
   soon as none of their completions can fit or win (`points.py`);
9. on square layers, of a structure and its row/column mirror only one is
   searched.

Every remaining candidate is evaluated exactly with the vectorised model.
The objective is least total bytes, ties broken by the smaller total buffer,
then by fewer tiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .arch import OPERANDS, Architecture
from .errors import ConvschedError
from .layer import DIMS, Layer
from .model import Traffic, evaluate
from .points import MAX_GRID, _pruned_points, _TripGroups  # noqa: F401  (MAX_GRID, _TripGroups: re-exported)
from .prune import (  # noqa: F401  (re-exported: the bounds are part of this module's interface)
    _InputFloor, _capacity_mask, _largest_fitting, _point_bound, _refined_lower_bound, _structure_bound,
    fewest_fitting_trips,
    _trips_bounds, compulsory_input_words, input_capacity_words, input_reads_bound, structure_lower_bound,
    trip_range, trips_lower_bound)
from .schedule import Schedule
from .structures import (  # noqa: F401  (re-exported)
    _MIRROR, SPATIAL_DIMS, _StructureTable, _enumerate_structures, _structure_table, _structures,
    is_canonical, reload_loops, structures)
from .vmodel import evaluate_many

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
    return smallest_per_trip_count(D, np.arange(lo, hi + 1, dtype=np.int64))


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
# the search (structures: structures.py; bounds: prune.py; grid points: points.py)


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
    from .vmodel import _bytes
    return _bytes(v.input_read, arch.input_bits) + _bytes(v.weight_read, arch.weight_bits)


_PAIRS = {"Y": ("OY", "FY"), "X": ("OX", "FX")}


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
    o_dim, f_dim = _PAIRS[axis]
    b = levels["input"]
    pos = {d: j for j, d in enumerate(order[:b])}
    key = (layer, axis, tuple(dims), pos.get(o_dim), pos.get(f_dim), b,
           o_dim in order[:levels["output"]], f_dim in order[:levels["weight"]],
           cands.key if isinstance(cands, _Candidates) else tuple(tuple(cands[d]) for d in dims))
    hit = _PAIR_CACHE.get(key)
    if hit is not None:
        return hit
    from .vmodel import layer_tables
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
        axis = next((a for a, pair in _PAIRS.items() if d in pair), None)
        if axis is None:
            groups.append(([d], cands[d].reshape(-1, 1)))
            done.add(d)
        elif d not in above_input:
            spt = (cands.smallest_per_trip(layer, d) if isinstance(cands, _Candidates)
                   else smallest_per_trip_count(layer.dim_size(d), cands[d]))
            groups.append(([d], spt.reshape(-1, 1)))
            done.add(d)
        else:
            dims = [x for x in _PAIRS[axis] if x in order and x in above_input]
            groups.append((dims, _spatial_pairs(layer, order, levels, dims, cands, axis)))
            done.update(dims)
    return groups


def _prefilter_groups(layer, arch, order, levels, groups, limit_bytes):
    """Drop candidates of one grid axis that cannot fit even with every other tile at its smallest.

    Buffers never shrink when a tile grows (F3), so the buffers with all other
    axes at their smallest tiles bound the buffers of every grid point that
    uses this candidate from below.
    """
    from .vmodel import buffer_bytes_many, buffer_words_many
    if not groups:
        return groups
    smallest = {d: int(arr[:, k].min()) for dims, arr in groups for k, d in enumerate(dims)}
    # all axes' candidates in one flat array, each with the other axes at their smallest
    n = sum(len(arr) for _, arr in groups)
    flat = {d: np.full(n, v, dtype=np.int64) for d, v in smallest.items()}
    at = 0
    for dims, arr in groups:
        for k, d in enumerate(dims):
            flat[d][at:at + len(arr)] = arr[:, k]
        at += len(arr)
    per_op = buffer_bytes_many(buffer_words_many(layer, order, levels, flat), arch)
    ok = np.broadcast_to(_capacity_mask(arch, per_op), (n,))
    if limit_bytes is not None:
        ok = ok & np.broadcast_to(sum(per_op.values()) <= limit_bytes, (n,))
    out, at = [], 0
    for dims, arr in groups:
        out.append((dims, arr[ok[at:at + len(arr)]]))
        at += len(arr)
    return out


def _search_structure(layer, arch, objective, order, levels, cands, best: _Best, lower_bound: int,
                      smallest: Mapping[str, int], seq: int = 0) -> int:
    """Find the best feasible tiles of one structure and offer them to `best` (`seq`: its rank).

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
    from .vmodel import buffer_bytes_many, buffer_words_many
    groups = _groups(layer, order, levels, cands) if order else []
    limit_bytes = None
    if best.key is not None and lower_bound == best.key[0]:
        limit_bytes = best.key[1]
    groups = _prefilter_groups(layer, arch, order, levels, groups, limit_bytes)
    if any(len(arr) == 0 for _, arr in groups):
        return 0
    if best.key is not None and _refined_lower_bound(layer, arch, objective, order, levels, groups,
                                                     smallest) > best.key[0]:
        return 0
    above_input = set(order[:levels["input"]])
    solvable = [gi for gi, (dims, arr) in enumerate(groups) if len(dims) == 1
                and (dims[0] not in SPATIAL_DIMS or dims[0] not in above_input) and len(arr) >= 3]
    e_gi = max(solvable, key=lambda gi: len(groups[gi][1])) if solvable else None
    grid = [g for gi, g in enumerate(groups) if gi != e_gi]
    e_dim = groups[e_gi][0][0] if e_gi is not None else None
    e_cands = groups[e_gi][1][:, 0] if e_gi is not None else None
    if any(len(g[1]) == 0 for g in grid) or (e_cands is not None and len(e_cands) == 0):
        return 0
    evaluated = 0
    big = np.iinfo(np.int64).max
    tie = best.key is not None and lower_bound == best.key[0]
    limit = best.key[1] if tie else None       # can at best tie the traffic: no larger buffer
    for idx, tiles, solved in _pruned_points(layer, arch, objective, order, levels, grid, e_dim, e_cands,
                                             best, limit):
        gshape = idx[0].shape if idx else (1,)
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
            fit = np.broadcast_to(_capacity_mask(arch, per_op), xshape)
            if limit is not None:
                fit = fit & (bufx <= limit)
            # every point fits at e's smallest tile (`_pruned_points` checked it)
            hi_idx = len(e_cands) - 1 - np.argmax(fit[..., ::-1], axis=-1)
            b_hi = np.take_along_axis(bufx, hi_idx[..., None], axis=-1)[..., 0]
            b_lo = bufx[..., 0]
        else:
            hi_idx, b_lo, b_hi = solved
        if e_dim is None:
            obj = np.broadcast_to(_objective(evaluate_many(layer, order, levels, tiles, arch), arch, objective),
                                  gshape)
        else:
            t_hi = e_cands[hi_idx]
            obj = np.broadcast_to(_objective(evaluate_many(layer, order, levels, {**tiles, e_dim: t_hi}, arch),
                                             arch, objective), gshape)
        omin = obj.min()
        evaluated += len(obj)
        if best.key is not None and omin > best.key[0]:
            continue
        at = np.nonzero(obj == omin)[0]          # the (few) points of least traffic
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
            chosen_tiles[e_dim] = np.where(use_lo, e_cands[0], t_hi[at])
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
    from .vmodel import _SPATIAL, _axis_keys, layer_tables
    tabs = layer_tables(layer)
    small = {d: int(cands[d].min()) for d in DIMS if len(cands[d])}
    out = np.empty(len(prefixes), dtype=np.int64)
    for n, (op, above) in enumerate(prefixes):
        pos = {d: j for j, d in enumerate(above)}
        w = 1
        for k in _axis_keys(op):
            if k in _SPATIAL:
                od, fd = _SPATIAL[k]
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


def _ranked_structures(layer: Layer, arch: Architecture, objective: str, structs, mirrored: np.ndarray,
                       cands: Mapping[str, np.ndarray]) -> list[tuple[int, int, int, np.ndarray, int]]:
    """(traffic bound, least buffer bytes, index, least buffer words per operand, bound with the
    capacity's trips) of the structures whose least buffers fit, best bound first (then fewer
    loops, less buffer, enumeration order)."""
    if not structs:
        return []
    tab = _structure_table(structs)
    words = least_buffer_words(layer, structs, cands)               # structures x operands
    bits = np.array([arch.buffer_bits(op) for op in OPERANDS], dtype=np.int64)
    nbytes = -(-(words * bits) // 8) * arch.buffer_factor
    if arch.capacity is not None:
        ok = nbytes.sum(axis=1) <= arch.capacity
    elif arch.capacity_per_operand is not None:
        ok = (nbytes <= np.array(arch.capacity_per_operand)).all(axis=1)
    else:
        ok = np.ones(len(structs), dtype=bool)
    ok &= ~mirrored
    lb = np.array([_structure_bound(layer, arch, objective, k, ikey) for k, ikey in tab.bound_keys],
                  dtype=np.int64)[tab.bound_id]
    idx = np.nonzero(ok)[0]
    buf = nbytes.sum(axis=1)
    idx = idx[np.lexsort((idx, buf[idx], tab.loops[idx], lb[idx]))]     # last key first
    _, n_max = trip_range(layer, cands)
    tlb = _trips_bounds(layer, arch, objective, tab, nbytes, fewest_fitting_trips(layer, arch, tab, words, cands),
                        n_max)
    return [(int(lb[i]), int(buf[i]), int(i), words[i], int(tlb[i])) for i in idx]


_LEAST: dict[tuple, tuple[_StructureTable, np.ndarray]] = {}


def optimize_layer(layer: Layer, arch: Architecture, constraints: Constraints | None = None,
                   objective: str = "bytes", incumbent: Schedule | None = None) -> LayerResult:
    """The optimal schedule of `layer` on `arch` (whose capacity must be set).

    `incumbent`, a schedule of the searched space known to fit (e.g. the best
    textbook dataflow), lets the bounds prune from the start; the answer is
    the same with or without it.
    """
    cons = constraints or Constraints()
    cons.check(layer)
    if objective not in OBJECTIVES:
        raise ConvschedError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    if arch.dma_granularity:
        raise ConvschedError("optimize does not search with a DMA granularity yet; drop dma_granularity "
                             "(evaluate and simulate support it)")
    from .alloc import tune_allocator
    tune_allocator()            # large grid steps: reuse heap memory instead of re-faulting it
    cands = _Candidates({d: tile_candidates(layer, d, cons) for d in DIMS})
    best = _Best()
    if incumbent is not None:
        best.seed(_incumbent_key(incumbent, arch, objective))
    n_struct = n_cand = 0
    # Best-first: structures sorted by a lower bound of their traffic; once the
    # bound exceeds the best schedule found, no later structure can win.
    # (traffic bound, least buffer): a structure whose least buffer does not fit is skipped.
    all_structs = structures(layer, cons, cands)
    mirrored = _mirror_twins(layer, cons, all_structs)
    # fewer loops first within a bound: cheap to search, and often where a good incumbent is
    for lb, min_buf, i, least, trips_lb in _ranked_structures(layer, arch, objective, all_structs, mirrored,
                                                              cands):
        if best.key is not None and lb > best.key[0]:
            break
        if best.key is not None and lb == best.key[0] and min_buf > best.key[1]:
            continue   # can at best tie the traffic, with a larger buffer
        order, levels = all_structs[i]
        need = dict(zip(OPERANDS, map(int, least)))
        if best.key is not None and trips_lb > best.key[0]:
            continue   # the capacity forces more trips than the best schedule can afford (trips_lower_bound)
        n_struct += 1
        n_cand += _search_structure(layer, arch, objective, order, levels, cands, best, lb, need, n_struct)
    if best.schedule is None and best.seeded:
        raise ConvschedError(f"the incumbent schedule {incumbent} is not in the searched space")
    if best.schedule is None:
        need = smallest_capacity(layer, arch, cons, cands)
        raise ConvschedError(
            f"no schedule of layer {layer} fits the buffer capacity; the smallest that fits is {need} bytes "
            f"({'double-buffered, ' if arch.double_buffer else ''}try --buffer {need}B or more)")
    order, levels, tiles = best.schedule
    sched = Schedule(layer, tuple(order), tiles, levels)
    return LayerResult(layer, sched, evaluate(sched, arch), n_cand, n_struct)


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
    return int(min(sum(arch.buffer_bytes(dict(zip(OPERANDS, map(int, w)))).values()) for w in words))


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
    order, levels = TEXTBOOK[name]
    cons = Constraints(orders=(order,), buffers=levels, untiled=frozenset({"FY", "FX"}))
    try:
        return optimize_layer(layer, arch, cons, objective)
    except ConvschedError:
        return None


def best_textbook(layer: Layer, arch: Architecture, objective: str = "bytes") -> tuple[str, LayerResult] | None:
    """The best of the textbook dataflows (by total bytes, then buffer), with its name."""
    found = [(name, r) for name in TEXTBOOK if (r := textbook_dataflow(layer, arch, name, objective)) is not None]
    if not found:
        return None
    return min(found, key=lambda nr: (nr[1].traffic.total_bytes, nr[1].traffic.total_buffer_bytes))
