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
   overlaps, no smaller buffer) by another is dropped.

Every remaining candidate is evaluated exactly with the vectorised model.
The objective is least total bytes, ties broken by the smaller total buffer,
then by fewer tiles.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from .arch import OPERANDS, Architecture
from .errors import ConvschedError
from .layer import DIMS, Layer
from .model import RELEVANT, Traffic, evaluate
from .schedule import Schedule
from .vmodel import evaluate_many

SPATIAL_DIMS = frozenset({"OY", "OX", "FY", "FX"})
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


def smallest_per_trip_count(size: int, tiles: np.ndarray) -> np.ndarray:
    """Of the given tiles, the smallest of each trip count (rule 4)."""
    if len(tiles) == 0:
        return tiles
    trips = -(-size // tiles)
    keep = np.ones(len(tiles), dtype=bool)
    order = np.argsort(tiles)
    seen: set[int] = set()
    for i in order:
        n = int(trips[i])
        keep[i] = n not in seen
        seen.add(n)
    return np.sort(tiles[keep])


def _must_tile(layer: Layer, dim: str, cons: Constraints) -> bool:
    """True when the bounds exclude the untiled (full) tile."""
    return cons.tile_max.get(dim, layer.dim_size(dim)) < layer.dim_size(dim)


# ---------------------------------------------------------------------------
# structures: (order, buffer levels)


def _canonical_levels(order: Sequence[str]) -> Iterator[dict[str, int]]:
    L = len(order)
    choices = []
    for op in OPERANDS:
        choices.append([0] + [j + 1 for j, d in enumerate(order) if d in RELEVANT[op]])
    for levels in itertools.product(*choices):
        if L == 0 or max(levels) == L:
            yield dict(zip(OPERANDS, levels))


_RANK = {d: i for i, d in enumerate(DIMS)}
_NGC = frozenset({"N", "G", "C"})


def is_canonical(order: Sequence[str], levels: Mapping[str, int]) -> bool:
    """False for an (order, levels) that another enumerated structure provably matches or beats.

    Segments are the runs of loops between consecutive buffer levels. With
    buffers canonical (rule 3), the weight and output traffic depend only on
    which loops lie above their buffers, never on the order inside a segment;
    only the input's halo reuse depends on order. Hence (docs/optimizer.md):
    a. adjacent N/G/C loops in one segment above the input buffer commute for
       every operand -> sorted;
    b. a spatial loop directly followed by an N/G/C loop in one segment above
       the input buffer is never better than the swapped pair (the inner
       spatial loop gains the sliding-window overlap; nothing else changes);
    c. a segment below the input buffer is seen by weight/output only, so its
       order is free: keep one representative (sorted, ending with the first
       dimension relevant to the buffer right below it);
    d. a loop in the deepest segment that the deepest operand does not depend
       on only repeats that operand's block sequence -> it is dropped.
    """
    L = len(order)
    if L == 0:
        return True
    cuts = sorted(set(levels.values()) | {0, L})
    in_level = levels["input"]
    for a, b in zip(cuts, cuts[1:]):
        seg = order[a:b]
        below = [op for op in OPERANDS if levels[op] == b]
        if b <= in_level:                                      # segments the input sees
            for x, y in zip(seg, seg[1:]):
                if x in _NGC and y in _NGC and _RANK[x] > _RANK[y]:
                    return False                               # rule a
                if x in SPATIAL_DIMS and y in _NGC:
                    return False                               # rule b
        if b == L:                                             # rule d
            if any(d not in RELEVANT[op] for op in below for d in seg):
                return False
        if a >= in_level:                                      # rule c
            ok_last = [d for d in seg if all(d in RELEVANT[op] for op in below)]
            if not ok_last:
                return False
            last = min(ok_last, key=_RANK.__getitem__)
            rest = [d for d in seg if d != last]
            if seg[-1] != last or list(seg[:-1]) != sorted(rest, key=_RANK.__getitem__):
                return False
    return True


def structures(layer: Layer, cons: Constraints, cands: Mapping[str, np.ndarray]) -> list[tuple[tuple[str, ...], dict[str, int]]]:
    """All canonical (order, buffer levels) pairs; they depend only on which dims can be tiled."""
    tileable = tuple(d for d in DIMS if len(cands[d]))
    must = frozenset(d for d in DIMS if _must_tile(layer, d, cons))
    orders = None if cons.orders is None else tuple(cons.orders)
    buffers = None if cons.buffers is None else tuple(sorted(cons.buffers.items()))
    return _structures(tileable, must, orders, buffers)


@functools.lru_cache(maxsize=64)
def _structures(tileable: tuple[str, ...], must: frozenset[str], orders, buffers
                ) -> list[tuple[tuple[str, ...], dict[str, int]]]:
    cons_buffers = dict(buffers) if buffers is not None else None
    return list(_enumerate_structures(tileable, must, orders, cons_buffers))


def _enumerate_structures(tileable, must, orders, fixed_buffers) -> Iterator[tuple[tuple[str, ...], dict[str, int]]]:
    if orders is None:
        for k in range(len(tileable) + 1):
            for order in itertools.permutations(tileable, k):
                if not must <= set(order):
                    continue
                yield from ((order, lv) for lv in _canonical_levels(order) if is_canonical(order, lv))
        return
    seen = set()
    for template in orders:
        keep_ok = [d for d in template if d in tileable]
        for k in range(len(keep_ok) + 1):
            for sub in itertools.combinations(keep_ok, k):
                if not must <= set(sub):
                    continue
                if fixed_buffers is not None:
                    lv = {op: sum(1 for d in template[:b] if d in sub) for op, b in fixed_buffers.items()}
                    key = (sub, tuple(sorted(lv.items())))
                    if key not in seen:
                        seen.add(key)
                        yield sub, lv
                else:
                    for lv in _canonical_levels(sub):
                        key = (sub, tuple(sorted(lv.items())))
                        if key not in seen:
                            seen.add(key)
                            yield sub, lv


# ---------------------------------------------------------------------------
# the search


class _Best:
    def __init__(self) -> None:
        self.key: tuple[int, int, int] | None = None
        self.schedule: tuple | None = None

    def offer(self, key: tuple[int, int, int], order, levels, tiles) -> None:
        if self.key is None or key < self.key:
            self.key, self.schedule = key, (order, dict(levels), dict(tiles))


def _capacity_mask(arch: Architecture, per_op: Mapping[str, np.ndarray]) -> np.ndarray:
    """Which candidates fit, from per-operand on-chip bytes."""
    if arch.capacity is not None:
        return sum(per_op.values()) <= arch.capacity
    if arch.capacity_per_operand is not None:
        ok = True
        for op, cap in zip(OPERANDS, arch.capacity_per_operand):
            ok = ok & (per_op[op] <= cap)
        return np.asarray(ok)
    return np.ones_like(sum(per_op.values()), dtype=bool)


def _objective(v, arch: Architecture, objective: str):
    if objective == "bytes":
        return v.total_bytes
    from .vmodel import _bytes
    return _bytes(v.input_read, arch.input_bits) + _bytes(v.weight_read, arch.weight_bits)


MAX_GRID = 1 << 23
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
           tuple(tuple(cands[d]) for d in dims))
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
    X = np.unique(np.stack(feats, axis=1), axis=0, return_index=True)
    Xu, first = X
    keep = np.ones(len(Xu), dtype=bool)
    for start in range(0, len(Xu), 256):
        blk = Xu[start:start + 256]
        le = (Xu[:, None, :] <= blk[None, :, :]).all(axis=2)     # le[a, b]: a no worse than b
        le[start + np.arange(len(blk)), np.arange(len(blk))] = False
        keep[start:start + len(blk)] = ~le.any(axis=0)
    sel = first[keep]
    pairs = np.stack([to[sel], tf[sel]], axis=1)[:, cols]
    out = np.unique(pairs, axis=0)
    if len(_PAIR_CACHE) > 20000:
        _PAIR_CACHE.clear()
    _PAIR_CACHE[key] = out
    return out


_PAIR_CACHE: dict[tuple, np.ndarray] = {}


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
            groups.append(([d], smallest_per_trip_count(layer.dim_size(d), cands[d]).reshape(-1, 1)))
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
    out = []
    for dims, arr in groups:
        tiles = dict(smallest)
        for k, d in enumerate(dims):
            tiles[d] = arr[:, k]
        per_op = buffer_bytes_many(buffer_words_many(layer, order, levels, tiles), arch)
        ok = np.broadcast_to(_capacity_mask(arch, per_op), (len(arr),))
        if limit_bytes is not None:
            ok = ok & np.broadcast_to(sum(per_op.values()) <= limit_bytes, (len(arr),))
        out.append((dims, arr[ok]))
    return out


def _refined_lower_bound(layer, arch, objective, order, levels, groups) -> int:
    """The structure's traffic bound with the fewest trips the capacity allows.

    After the prefilter every remaining candidate of an axis fits with the
    other axes at their smallest, and none that was dropped can fit at all;
    so a loop's trip count is at least the smallest among its remaining
    candidates, and weight and output traffic (F1) at least |X| times the
    product of those minima over the loops above X's buffer that X does not
    depend on.
    """
    from .vmodel import _bytes
    n_min: dict[str, int] = {}
    for dims, arr in groups:
        for k, d in enumerate(dims):
            n_min[d] = int(-(-layer.dim_size(d) // int(arr[:, k].max())))
    r = {}
    for op in ("weight", "output"):
        r[op] = 1
        for d in order[:levels[op]]:
            if d not in RELEVANT[op]:
                r[op] *= n_min.get(d, 1)
    w = _bytes(layer.weight_words * r["weight"], arch.weight_bits)
    x = _bytes(compulsory_input_words(layer), arch.input_bits)
    if objective == "reads":
        return int(w + x)
    O = layer.output_words
    return int(w + x + 2 * _bytes(O * r["output"] - O, arch.psum_bits) + _bytes(O, arch.output_bits))


def _search_structure(layer, arch, objective, order, levels, cands, best: _Best, lower_bound: int) -> int:
    """Find the best feasible tiles of one structure and offer them to `best`.

    Grid axes are the non-spatial dims and the input axes' (output, filter)
    tile pairs. One non-spatial dim `e` is solved, not enumerated (rule 6 of
    docs/optimizer.md): with the other tiles fixed, the traffic is affine and
    non-decreasing in e's trip count while buffers grow with e's tile, so the
    best e is either its largest tile that fits (when the traffic depends on
    it) or its smallest (when it does not) -- two evaluations, not one per tile.
    """
    from .vmodel import buffer_bytes_many, buffer_words_many
    groups = _groups(layer, order, levels, cands) if order else []
    limit_bytes = None
    if best.key is not None and lower_bound == best.key[0]:
        limit_bytes = best.key[1]
    groups = _prefilter_groups(layer, arch, order, levels, groups, limit_bytes)
    if any(len(arr) == 0 for _, arr in groups):
        return 0
    if best.key is not None and _refined_lower_bound(layer, arch, objective, order, levels, groups) > best.key[0]:
        return 0
    above_input = set(order[:levels["input"]])
    solvable = [gi for gi, (dims, arr) in enumerate(groups) if len(dims) == 1
                and (dims[0] not in SPATIAL_DIMS or dims[0] not in above_input) and len(arr) >= 3]
    e_gi = max(solvable, key=lambda gi: len(groups[gi][1])) if solvable else None
    grid = [g for gi, g in enumerate(groups) if gi != e_gi]
    e_dim = groups[e_gi][0][0] if e_gi is not None else None
    e_cands = groups[e_gi][1][:, 0] if e_gi is not None else None
    sizes = [len(g[1]) for g in grid]
    total = math.prod(sizes) * (len(e_cands) if e_cands is not None else 1)
    if total == 0:
        return 0
    lead = 0
    rest = math.prod(sizes)
    limit = MAX_GRID // (len(e_cands) if e_cands is not None else 1)
    while rest > limit and lead < len(grid) - 1:
        rest //= sizes[lead]
        lead += 1
    ndim = len(grid) - lead
    evaluated = 0
    big = np.iinfo(np.int64).max
    for prefix in itertools.product(*(range(s) for s in sizes[:lead])):
        tiles: dict[str, np.ndarray] = {}
        for gi, (dims, arr) in enumerate(grid):
            for k, d in enumerate(dims):
                if gi < lead:
                    tiles[d] = np.int64(arr[prefix[gi], k])
                else:
                    shape = [1] * ndim
                    shape[gi - lead] = len(arr)
                    tiles[d] = arr[:, k].reshape(shape)
        gshape = np.broadcast_shapes(*(np.shape(tiles[d]) for d in order if d != e_dim)) if order else ()
        if e_dim is None:
            per_op = buffer_bytes_many(buffer_words_many(layer, order, levels, tiles), arch)
            buf = np.broadcast_to(sum(per_op.values()), gshape)
            mask = np.broadcast_to(_capacity_mask(arch, per_op), gshape)
            if best.key is not None and lower_bound == best.key[0]:
                mask = mask & (buf <= best.key[1])
            if not np.any(mask):
                continue
            v = evaluate_many(layer, order, levels, tiles, arch)
            obj = np.broadcast_to(_objective(v, arch, objective), gshape)
            chosen_tiles = {d: np.broadcast_to(tiles[d], gshape) for d in order}
        else:
            # feasibility over the grid x all of e's candidates (buffers only, cheap)
            ext = {d: (np.expand_dims(t, -1) if np.ndim(t) else t) for d, t in tiles.items()}
            ext[e_dim] = e_cands.reshape((1,) * ndim + (-1,))
            per_op = buffer_bytes_many(buffer_words_many(layer, order, levels, ext), arch)
            xshape = gshape + (len(e_cands),)
            bufx = np.broadcast_to(sum(per_op.values()), xshape)
            fit = np.broadcast_to(_capacity_mask(arch, per_op), xshape)
            if best.key is not None and lower_bound == best.key[0]:
                fit = fit & (bufx <= best.key[1])
            mask = fit.any(axis=-1)
            if not np.any(mask):
                continue
            hi_idx = len(e_cands) - 1 - np.argmax(fit[..., ::-1], axis=-1)
            t_hi = e_cands[hi_idx]
            v_hi = evaluate_many(layer, order, levels, {**tiles, e_dim: t_hi}, arch)
            v_lo = evaluate_many(layer, order, levels, {**tiles, e_dim: e_cands[0]}, arch)
            o_hi = np.broadcast_to(_objective(v_hi, arch, objective), gshape)
            o_lo = np.broadcast_to(_objective(v_lo, arch, objective), gshape)
            b_hi = np.take_along_axis(bufx, hi_idx[..., None], axis=-1)[..., 0]
            b_lo = bufx[..., 0]
            # same traffic at both ends: e does not matter -> the smaller buffer (ties: fewer tiles)
            use_lo = (o_lo == o_hi) & (b_lo < b_hi)
            obj = np.where(use_lo, o_lo, o_hi)
            buf = np.where(use_lo, b_lo, b_hi)
            chosen_tiles = {d: np.broadcast_to(tiles[d], gshape) for d in order if d != e_dim}
            chosen_tiles[e_dim] = np.where(use_lo, e_cands[0], t_hi)
            v = None
        o = np.where(mask, obj, big)
        omin = o.min()
        evaluated += int(mask.sum())
        if best.key is not None and omin > best.key[0]:
            continue
        sel = o == omin
        bsel = np.where(sel, buf if e_dim is not None else np.broadcast_to(v.buffer_bytes, gshape), big)
        bmin = bsel.min()
        sel &= bsel == bmin
        ntiles = np.ones(gshape, dtype=np.int64)
        for d in order:
            ntiles = ntiles * (-(-layer.dim_size(d) // chosen_tiles[d]))
        flat_k = int(np.argmin(np.where(sel, ntiles, big)))
        k = np.unravel_index(flat_k, gshape) if gshape else ()
        chosen = {d: int(chosen_tiles[d][k]) for d in order}
        best.offer((int(omin), int(bmin), int(ntiles[k])), order, levels, chosen)
    return evaluated


def _min_buffer_words(layer: Layer, order: Sequence[str], levels: Mapping[str, int],
                      cands: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Buffers of a structure with every tile at its smallest candidate (buffers grow with tiles)."""
    from .vmodel import buffer_words_many
    tiles = {d: int(cands[d].min()) for d in order}
    return {op: int(w) for op, w in buffer_words_many(layer, order, levels, tiles).items()}


def structure_lower_bound(layer: Layer, arch: Architecture, objective: str,
                          order: Sequence[str], levels: Mapping[str, int]) -> int:
    """A bound no tile choice of this structure can beat (ignoring capacity).

    Weight and output blocks never overlap, so each is loaded once per
    iteration of the loops above its buffer that it does not depend on, and
    every loop has >= 2 trips: weight reads >= 2^k |W|, output writes >= 2^k |O|
    (k such loops). The input moves at least every element it reads once.
    """
    from .vmodel import _bytes
    k = {op: sum(1 for d in order[:levels[op]] if d not in RELEVANT[op]) for op in ("weight", "output")}
    w = _bytes(layer.weight_words << k["weight"], arch.weight_bits)
    x = _bytes(compulsory_input_words(layer), arch.input_bits)
    if objective == "reads":
        return int(w + x)
    O = layer.output_words
    spills = (O << k["output"]) - O
    return int(w + x + 2 * _bytes(spills, arch.psum_bits) + _bytes(O, arch.output_bits))


def compulsory_input_words(layer: Layer) -> int:
    """Input elements some output reads (padding excluded, stride/dilation gaps excluded)."""
    from .model import _read_rows
    return layer.N * layer.C * int(_read_rows(layer, "Y")[-1]) * int(_read_rows(layer, "X")[-1])


def optimize_layer(layer: Layer, arch: Architecture, constraints: Constraints | None = None,
                   objective: str = "bytes") -> LayerResult:
    """The optimal schedule of `layer` on `arch` (whose capacity must be set)."""
    cons = constraints or Constraints()
    cons.check(layer)
    if objective not in OBJECTIVES:
        raise ConvschedError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    if arch.dma_granularity:
        raise ConvschedError("optimize does not search with a DMA granularity yet; drop dma_granularity "
                             "(evaluate and simulate support it)")
    cands = {d: tile_candidates(layer, d, cons) for d in DIMS}
    best = _Best()
    n_struct = n_cand = 0
    # Best-first: structures sorted by a lower bound of their traffic; once the
    # bound exceeds the best schedule found, no later structure can win.
    # (traffic bound, least buffer): a structure whose least buffer does not fit is skipped.
    ranked = []
    for i, (o, lv) in enumerate(structures(layer, cons, cands)):
        need = _min_buffer_words(layer, o, lv, cands)
        if arch.fits(need):
            min_buf = sum(arch.buffer_bytes(need).values())
            ranked.append((structure_lower_bound(layer, arch, objective, o, lv), len(o), min_buf, i, o, lv))
    # fewer loops first within a bound: cheap to search, and often where a good incumbent is
    ranked.sort(key=lambda r: r[:4])
    for lb, _, min_buf, _, order, levels in ranked:
        if best.key is not None and lb > best.key[0]:
            break
        if best.key is not None and lb == best.key[0] and min_buf > best.key[1]:
            continue   # can at best tie the traffic, with a larger buffer
        n_struct += 1
        n_cand += _search_structure(layer, arch, objective, order, levels, cands, best, lb)
    if best.schedule is None:
        need = smallest_capacity(layer, arch, cons, cands)
        raise ConvschedError(
            f"no schedule of layer {layer} fits the buffer capacity; the smallest that fits is {need} bytes "
            f"({'double-buffered, ' if arch.double_buffer else ''}try --buffer {need}B or more)")
    order, levels, tiles = best.schedule
    sched = Schedule(layer, tuple(order), tiles, levels)
    return LayerResult(layer, sched, evaluate(sched, arch), n_cand, n_struct)


def smallest_capacity(layer: Layer, arch: Architecture, cons: Constraints,
                      cands: Mapping[str, np.ndarray] | None = None) -> int:
    """Least on-chip bytes any schedule of the constrained space needs (buffers grow with tiles)."""
    cands = cands or {d: tile_candidates(layer, d, cons) for d in DIMS}
    need = [sum(arch.buffer_bytes(_min_buffer_words(layer, o, lv, cands)).values())
            for o, lv in structures(layer, cons, cands)]
    return int(min(need))


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
