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
from .vmodel import _bytes, evaluate_many

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
    def compute():
        return list(_enumerate_structures(tileable, must, orders, cons_buffers))
    if orders is not None or len(tileable) < 6:
        return compute()          # fast enough to enumerate every time
    # Six or more free loops take 0.2 s (seven: 3 s) per process: keep the list on disk,
    # keyed by the enumeration's own source so a change of the rules never reads a stale list.
    fingerprint = _enumeration_fingerprint()
    if fingerprint is None:
        return compute()
    from .diskcache import cached
    key = (tileable, tuple(sorted(must)), buffers, fingerprint)
    structs = cached("structures", key, compute)
    if len(_DISK_KEYS) > 64:
        _DISK_KEYS.clear()       # only a cache hint for `_structure_table`
    _DISK_KEYS[id(structs)] = (structs, key)
    return structs


@functools.lru_cache(maxsize=1)
def _enumeration_fingerprint() -> str | None:
    """A hash of the code and tables the structure list follows from (None: source unavailable)."""
    import hashlib
    import inspect
    try:
        src = "".join(inspect.getsource(f) for f in (_enumerate_structures, _canonical_levels, is_canonical))
    except (OSError, TypeError):
        return None
    src += repr((DIMS, sorted((k, sorted(v)) for k, v in RELEVANT.items()), sorted(SPATIAL_DIMS), sorted(_NGC)))
    return hashlib.sha256(src.encode()).hexdigest()


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


MAX_GRID = 1 << 21     # grid points per vectorised step (memory: a few arrays of this many int64)
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


def trip_range(layer: Layer, cands: Mapping[str, np.ndarray]) -> tuple[dict[str, int], dict[str, int]]:
    """Fewest and most trips each dimension's tile candidates give."""
    n_min = {d: -(-layer.dim_size(d) // int(c.max())) for d, c in cands.items() if len(c)}
    n_max = {d: -(-layer.dim_size(d) // int(c.min())) for d, c in cands.items() if len(c)}
    return n_min, n_max


def _refined_lower_bound(layer, arch, objective, order, levels, groups, smallest) -> int:
    """The structure's traffic bound with the fewest trips the capacity allows.

    After the prefilter every remaining candidate of an axis fits with the
    other axes at their smallest, and none that was dropped can fit at all;
    so a loop's trip count lies between the fewest and the most trips among
    its remaining candidates. Weight and output traffic (F1) is |X| times the
    product of the trips of the loops above X's buffer that X does not depend
    on (set A_X). Each buffer also bounds a product of trips: a block of Y
    holds at least |Y| / prod(trips of the loops above Y's buffer that index
    Y) words (set B_Y), so that product is at least |Y| / (Y's room). The
    trips of A_X that are also in B_Y must then make up what B_Y's other
    loops cannot, even at their most trips.
    """
    n_min: dict[str, int] = {}
    n_max: dict[str, int] = {}
    for dims, arr in groups:
        for k, d in enumerate(dims):
            n_min[d] = int(-(-layer.dim_size(d) // int(arr[:, k].max())))
            n_max[d] = int(-(-layer.dim_size(d) // int(arr[:, k].min())))
    return trips_lower_bound(layer, arch, objective, order, levels, n_min, n_max, smallest)


def trips_lower_bound(layer, arch, objective, order, levels, n_min: Mapping[str, int],
                      n_max: Mapping[str, int], smallest: Mapping[str, int] | None = None) -> int:
    """The structure's traffic bound when each loop's trips lie in [n_min, n_max] (see above)."""
    need = _trip_products_needed(layer, arch, order, levels, smallest)
    r = {}
    for op in ("weight", "output"):
        A = _reload_loops(tuple(order), levels[op], op)
        best_r = math.prod(n_min.get(d, 1) for d in A)
        for other, (B, c) in need.items():
            inter = [d for d in A if d in B]
            if not inter:
                continue
            room = math.prod(n_max.get(d, 1) for d in B if d not in A)
            forced = max(math.prod(n_min.get(d, 1) for d in inter), -(-c // room))
            best_r = max(best_r, forced * math.prod(n_min.get(d, 1) for d in A if d not in B))
        r[op] = best_r
    w = _bytes(layer.weight_words * r["weight"], arch.weight_bits)
    x = _bytes(input_reads_bound(layer, arch, order, levels, n_min.get("K", 1)), arch.input_bits)
    if objective == "reads":
        return int(w + x)
    O = layer.output_words
    return int(w + x + 2 * _bytes(O * r["output"] - O, arch.psum_bits) + _bytes(O, arch.output_bits))


def _trip_products_needed(layer, arch, order, levels, smallest=None) -> dict[str, tuple[list[str], int]]:
    """For weight and output: (B, c) with prod of B's trips >= c in every fitting schedule.

    B are the loops above the buffer that index the operand; c is the
    operand's full size over the most words its buffer can hold (the shared
    capacity less the other buffers at their smallest: `smallest`, words of
    every buffer with the smallest tiles; all tiles 1 when not given).
    """
    full = _full_buffer_words(layer)
    if smallest is None:
        from .vmodel import buffer_words_many
        smallest = {op: int(w) for op, w in buffer_words_many(layer, order, levels, {d: 1 for d in order}).items()}
    small_bytes = arch.buffer_bytes(smallest)
    out = {}
    for op in ("weight", "output"):
        if arch.capacity is not None:
            room_bytes = arch.capacity - sum(b for o, b in small_bytes.items() if o != op)
        elif arch.capacity_per_operand is not None:
            room_bytes = arch.capacity_per_operand[OPERANDS.index(op)]
        else:
            continue
        room = (room_bytes // arch.buffer_factor) * 8 // arch.buffer_bits(op)
        if room < 1:
            continue
        B = [d for d in order[:levels[op]] if d in RELEVANT[op]]
        out[op] = (B, -(-full[op] // room))
    return out


@functools.lru_cache(maxsize=256)
def _full_buffer_words(layer: Layer) -> dict[str, int]:
    """Each operand's words with no loop above its buffer (its whole tensor as the model sizes it)."""
    from .vmodel import buffer_words_many
    return {op: int(w) for op, w in buffer_words_many(layer, (), {op: 0 for op in OPERANDS}, {}).items()}


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


#: an axis's candidates grouped by trip counts (see `_pruned_points`)
@dataclass(frozen=True)
class _TripGroups:
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


def _pruned_points(layer, arch, objective, order, levels, grid, e_dim, e_cands, best, limit_bytes):
    """The grid points that may fit and win: (index per grid axis, tiles, e's solution), in steps.

    Each axis's candidates are grouped by their trip counts: weight and output
    traffic (F1) depend on trips only, so every member of a group has the
    same. The points are built one axis at a time, first as groups (each
    standing for its members by their per-dimension smallest tiles, which no
    member's buffers undercut (F3), and largest), then the groups are opened
    into their members. A partial point is dropped when it cannot fit even
    with the axes not yet chosen at their smallest tiles, or when its traffic
    bound (`_point_bound`) exceeds the best found even with them at their
    fewest trips and largest blocks. e is solved at every step: its largest
    tile that fits beside the others' smallest bounds its trips from below.

    At most MAX_GRID points are built at a time. The last step's points are
    complete; with them come e's largest fitting candidate index and the
    buffer bytes at e's smallest and at that candidate (None: word sizes
    that are not whole bytes, the caller checks every candidate).
    """
    from .vmodel import buffer_bytes_many, buffer_words_many
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

    def keep(step: int, pts: list[np.ndarray]):
        small, large, few, many = tiles_of(step, pts)
        shape = pts[0].shape if pts else (1,)
        solved = None
        if e_dim is not None:
            # e's largest tile that fits beside the others' smallest: no member fits a larger one
            solved = _largest_fitting(layer, arch, order, levels, small, e_dim, e_cands, shape, limit_bytes)
        if solved is not None:
            ok, hi_idx = solved[0], solved[1]
            few[e_dim] = -(-size[e_dim] // e_cands[hi_idx])
            large[e_dim] = e_cands[hi_idx]
        else:
            per_op = buffer_bytes_many(buffer_words_many(layer, order, levels, small), arch)
            ok = np.broadcast_to(_capacity_mask(arch, per_op), shape)
            if limit_bytes is not None:
                ok = ok & (sum(per_op.values()) <= limit_bytes)
        if best.key is not None:
            # the input block is at most its size at the largest tiles (and e's largest fitting)
            in_words = buffer_words_many(layer, order, levels, large)["input"] if k_inside else None
            ok = ok & (_point_bound(layer, arch, objective, order, levels, few, in_words, many) <= best.key[0])
            if ok.any():
                # then the input with its halos, where the cheaper bound left points
                t_hi = large[e_dim] if e_dim is not None else None
                floor = in_floor.words(step, pts, open_at, t_hi, few)
                ok = ok & (_point_bound(layer, arch, objective, order, levels, few, in_words, many, floor)
                           <= best.key[0])
        return np.broadcast_to(ok, shape), (solved, small)

    def grow(step: int, pts: list[np.ndarray], s: int, e: int) -> list[np.ndarray]:
        out = [a[s:e] for a in pts]
        for kind, i in steps[step]:
            g = groups[i]
            if kind == "add":
                # an axis that is never opened has single-member groups: put the member in directly
                col = np.arange(len(g.counts)) if i in open_at else g.members
                p = len(out[0]) if out else 1
                out = [np.repeat(a, len(col)) for a in out] + [np.tile(col, p)]
            else:
                c = g.counts[out[i]]
                first = np.repeat(np.cumsum(c) - c, c)
                at = np.repeat(g.starts[out[i]], c) + np.arange(len(first)) - first
                out = [np.repeat(a, c) for a in out]
                out[i] = g.members[at]
        return out

    def fan_out(step: int, pts: list[np.ndarray]) -> np.ndarray:
        """Points each parent turns into at this step."""
        n = np.ones(len(pts[0]) if pts else 1, dtype=np.int64)
        for kind, i in steps[step]:
            n = n * (len(groups[i].counts) if kind == "add" else groups[i].counts[pts[i]])
        return n

    def walk(step: int, pts: list[np.ndarray]):
        sizes = fan_out(step, pts)
        ends = np.cumsum(sizes)
        s = 0
        while s < len(sizes):
            # as many parents as keep the step within MAX_GRID points (at least one)
            e = max(s + 1, int(np.searchsorted(ends, (ends[s] - sizes[s]) + MAX_GRID, side="right")))
            new = grow(step, pts, s, e)
            s = e
            ok, (solved, small) = keep(step, new)
            if not ok.any():
                continue
            sub = np.nonzero(ok)
            new = [a[sub] for a in new]
            if step < last:
                yield from walk(step + 1, new)
                continue
            tiles = {d: (small[d][sub] if np.ndim(small[d]) else np.full(len(sub[0]), small[d]))
                     for dims, _ in grid for d in dims}
            if solved is not None:
                _, hi_idx, b_lo, b_hi = solved
                solved = (hi_idx[sub], b_lo[sub], b_hi[sub])
            yield new, tiles, solved

    if not grid:
        ok, (solved, small) = keep(-1, [])
        if ok.all():
            yield [], {}, (None if solved is None else tuple(a.reshape(1) for a in solved[1:]))
        return
    yield from walk(0, [])


class _InputFloor:
    """Input words every completion of a partial point reads, from the model with intervals.

    The input's traffic is `first + sum_j mult_j * (prod_a F_ja - prod_a I_ja)`
    (vmodel), every factor non-negative and each difference too (per axis a
    block's first set is no smaller than its overlap). With each factor
    known only to lie in an interval -- a group of spatial tile pairs: the
    least and largest of its members' table entries; an axis not chosen yet:
    over all its candidates; e: between its smallest tile and its largest
    that fits -- each term is at least `mult_lo * max(0, prod F_lo - prod I_hi)`.
    Unlike the compulsory-input bound this sees the halos small spatial tiles
    read again.
    """

    def __init__(self, layer: Layer, order, levels, groups: list["_TripGroups"], e_dim, e_cands) -> None:
        from .vmodel import _traffic_plan
        self.layer = layer
        self.first, self.steps = _traffic_plan(layer, tuple(order), tuple(levels[op] for op in OPERANDS))[0]
        self.groups = groups
        self.axis_of = {d: i for i, g in enumerate(groups) for d in g.dims}
        self.e_dim, self.e_lo = e_dim, (int(e_cands[0]) if e_dim is not None else None)
        self.table_values: dict[tuple, tuple] = {}
        self.extent = [(int(g.arr[:, 0].min()), int(g.arr[:, 0].max())) for g in groups]

    def _table_range(self, f: tuple, step: int, pts, open_at):
        if f[2] not in self.axis_of:
            # solved spatial e: below the input buffer, so the table is constant along it
            v = f[1][self.e_lo]
            return v, v
        i = self.axis_of[f[2]]
        g = self.groups[i]
        key = (id(f[1]), f[2], f[3] if f[0] == "g2" else None)
        hit = self.table_values.get(key)
        if hit is None:
            col = {d: g.arr[:, k] for k, d in enumerate(g.dims)}
            v = f[1][col[f[2]], col[f[3]]] if f[0] == "g2" else f[1][col[f[2]]]
            vm = v[g.members]
            hit = (v, np.minimum.reduceat(vm, g.starts), np.maximum.reduceat(vm, g.starts),
                   int(v.min()), int(v.max()))
            self.table_values[key] = hit
        v, g_min, g_max, v_min, v_max = hit
        if i >= len(pts):
            return v_min, v_max
        if i not in open_at or open_at[i] <= step:
            x = v[pts[i]]
            return x, x
        return g_min[pts[i]], g_max[pts[i]]

    def _dim_range(self, d: str, pts, t_hi):
        """Least and largest tile of a non-spatial dim over the completions."""
        if d == self.e_dim:
            return self.e_lo, t_hi
        i = self.axis_of[d]
        g = self.groups[i]
        if i >= len(pts):
            return self.extent[i]
        t = g.arr[pts[i], 0]
        return t, t

    def words(self, step: int, pts, open_at, t_hi, fewest_trips):
        size = self.layer._dim_sizes

        seen: dict[int, tuple] = {}

        def rng(f):
            hit = seen.get(id(f))
            if hit is None:
                hit = seen[id(f)] = factor_range(f)
            return hit

        def factor_range(f):
            if f[0] in ("g2", "g1"):
                return self._table_range(f, step, pts, open_at)
            t_lo, t_up = self._dim_range(f[1], pts, t_hi)
            D = size[f[1]]
            # every candidate has >= 2 trips: the first tile is the tile, overlaps are empty
            if f[0] == "own":
                return D - t_up, D - t_lo
            if f[0] == "tile":
                return t_lo, t_up
            return 0, 0

        def prod(const, factors, upper):
            out = const
            for f in factors:
                out = out * rng(f)[1 if upper else 0]
            return out

        total = prod(*self.first, False)
        mult = 1
        for dim, reload, fc, ff, ic, iff in self.steps:
            diff = prod(fc, ff, False)
            if ic:
                diff = np.maximum(diff - prod(ic, iff, True), 0)
            if reload:
                n = fewest_trips[dim]
                total = total + mult * (n - 1) * diff
                mult = mult * n
            else:
                total = total + mult * diff
        return total


def _point_bound(layer, arch, objective, order, levels, trips, input_words=None, ctx_trips=None,
                 input_floor=None):
    """Per grid point: exact weight and output bytes from the trip counts (F1) plus the input bound.

    `input_words` (the input buffer's words at each point, or more) lets the
    input bound use the point's own block size and the trips of the loops
    outside K (`ctx_trips`, default `trips`; the bound falls as they grow,
    so give the most trips a point may take). `input_floor`: input words
    known to be read anyway (`_InputFloor`).
    """
    n_ctx = None
    if input_words is not None and "K" in order[:levels["input"]]:
        n_ctx = math.prod((ctx_trips or trips)[d] for d in order[:order.index("K")])
    else:
        input_words = None
    x_words = input_reads_bound(layer, arch, order, levels, trips.get("K", 1), input_words, n_ctx)
    if input_floor is not None:
        x_words = np.maximum(x_words, input_floor)
    x_bound = _bytes(x_words, arch.input_bits)
    r = {}
    for op in ("weight", "output"):
        r[op] = 1
        for d in _reload_loops(tuple(order), levels[op], op):
            r[op] = r[op] * trips[d]
    w = _bytes(layer.weight_words * r["weight"], arch.weight_bits)
    if objective == "reads":
        return w + x_bound
    O = layer.output_words
    return w + x_bound + 2 * _bytes(O * r["output"] - O, arch.psum_bits) + _bytes(O, arch.output_bits)


def _largest_fitting(layer, arch, order, levels, tiles, e_dim, e_cands, gshape, limit_bytes):
    """For every grid point, the largest candidate of the solved dim `e` that fits, in O(grid).

    Each buffer holds either e's tile (e is above it and indexes it), e's
    whole extent, or nothing of e: its words are `P * t_e` or a constant. With
    whole-byte word sizes the total bytes are therefore `A + B * t_e`, and the
    largest fitting tile is `(cap - A) // B`. Returns (fits at all, index of
    the largest fitting candidate, buffer bytes at the smallest candidate,
    at the largest fitting one), or None when a word size is not a whole
    number of bytes (the caller then checks every candidate).
    """
    from .vmodel import _axis_keys, buffer_words_many
    tiled = [op for op in OPERANDS if e_dim in order[:levels[op]] and e_dim in _axis_keys(op)]
    if any(arch.buffer_bits(op) % 8 for op in OPERANDS):
        return None
    w1 = buffer_words_many(layer, order, levels, {**tiles, e_dim: np.int64(1)})
    per = {op: w1[op] * (arch.buffer_bits(op) // 8 * arch.buffer_factor) for op in OPERANDS}
    A = np.broadcast_to(sum((per[op] for op in OPERANDS if op not in tiled), np.int64(0)), gshape)
    B = np.broadcast_to(sum((per[op] for op in tiled), np.int64(0)), gshape)
    big = np.int64(1) << 62
    caps = [c for c in (arch.capacity, limit_bytes) if c is not None]
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
        cap = min(caps)                  # every bound on the total: the tightest
        ok = A <= cap
        t_max = np.where(B > 0, (cap - A) // np.maximum(B, 1), big) if tiled else np.full(gshape, big)
    else:
        ok = np.ones(gshape, dtype=bool)
        t_max = np.full(gshape, big, dtype=np.int64)
    hi_idx = np.searchsorted(e_cands, t_max, side="right") - 1
    mask = ok & (hi_idx >= 0)
    hi_idx = np.maximum(hi_idx, 0)
    return mask, hi_idx, A + B * e_cands[0], A + B * e_cands[hi_idx]


_MIRROR = {"OY": "OX", "OX": "OY", "FY": "FX", "FX": "FY"}


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


@dataclass(frozen=True)
class _StructureTable:
    """What the ranking needs of every structure of a list, as arrays (pure functions of (order, levels)).

    prefix_id[i, o]: the loops above operand o's buffer, as an index into `prefixes`;
    bound_id[i]: (reload-loop counts of weight and output, input-bound key) as an index into `bound_keys`;
    mirror[i]: the index of the structure with rows and columns swapped (-1: not in the list).
    """

    prefixes: list[tuple[str, tuple[str, ...]]]
    prefix_id: np.ndarray
    bound_keys: list[tuple]
    bound_id: np.ndarray
    loops: np.ndarray
    mirror: np.ndarray
    reload_mask: np.ndarray     # [i, o, d]: loop d multiplies weight (o=0) / output (o=1) traffic (F1)
    index_mask: np.ndarray      # [i, o, d]: loop d is above that buffer and indexes the operand


def _build_structure_table(structs) -> _StructureTable:
    prefixes: dict[tuple, int] = {}
    bound_keys: dict[tuple, int] = {}
    pid = np.zeros((len(structs), len(OPERANDS)), dtype=np.int64)
    bid = np.zeros(len(structs), dtype=np.int64)
    reload_mask = np.zeros((len(structs), 2, len(DIMS)), dtype=bool)
    index_mask = np.zeros_like(reload_mask)
    index = {}
    for i, (order, levels) in enumerate(structs):
        for o, op in enumerate(OPERANDS):
            pid[i, o] = prefixes.setdefault((op, tuple(order[:levels[op]])), len(prefixes))
        k = tuple(len(reload_loops(order, levels[op], op)) for op in ("weight", "output"))
        bid[i] = bound_keys.setdefault((k, _input_bound_key(order, levels)), len(bound_keys))
        index[(order, tuple(levels[op] for op in OPERANDS))] = i
        for o, op in enumerate(("weight", "output")):
            for d in reload_loops(order, levels[op], op):
                reload_mask[i, o, _DIM_INDEX[d]] = True
            for d in order[:levels[op]]:
                if d in RELEVANT[op]:
                    index_mask[i, o, _DIM_INDEX[d]] = True
    mirror = np.full(len(structs), -1, dtype=np.int64)
    for (order, lv), i in index.items():
        mirror[i] = index.get((tuple(_MIRROR.get(d, d) for d in order), lv), -1)
    return _StructureTable(list(prefixes), pid, list(bound_keys), bid,
                           np.array([len(o) for o, _ in structs], dtype=np.int64), mirror,
                           reload_mask, index_mask)


_DIM_INDEX = {d: i for i, d in enumerate(DIMS)}


def _trips_bounds(layer: Layer, arch: Architecture, objective: str, tab: _StructureTable, nbytes: np.ndarray,
                  n_min: Mapping[str, int], n_max: Mapping[str, int]) -> np.ndarray:
    """`trips_lower_bound` of every structure of a table at once (least buffers `nbytes`)."""
    lo = np.array([n_min.get(d, 1) for d in DIMS], dtype=np.int64)
    hi = np.array([n_max.get(d, 1) for d in DIMS], dtype=np.int64)
    prod = lambda mask, v: np.where(mask, v, 1).prod(axis=-1)
    full = _full_buffer_words(layer)
    need = []
    for o, op in enumerate(("weight", "output")):
        if arch.capacity is not None:
            room_bytes = arch.capacity - (nbytes.sum(axis=1) - nbytes[:, OPERANDS.index(op)])
        elif arch.capacity_per_operand is not None:
            room_bytes = np.full(len(nbytes), arch.capacity_per_operand[OPERANDS.index(op)])
        else:
            continue
        room = (room_bytes // arch.buffer_factor) * 8 // arch.buffer_bits(op)
        need.append((tab.index_mask[:, o], -(-full[op] // np.maximum(room, 1)), room >= 1))
    r = []
    for o in range(2):
        A = tab.reload_mask[:, o]
        best = prod(A, lo)
        for B, c, valid in need:
            inter = A & B
            forced = np.maximum(prod(inter, lo), -(-c // prod(B & ~A, hi)))
            best = np.where(inter.any(axis=1) & valid, np.maximum(best, forced * prod(A & ~B, lo)), best)
        r.append(best)
    w = _bytes(layer.weight_words * r[0], arch.weight_bits)
    x = np.array([_bytes(_input_bound(layer, arch, ikey, n_min.get("K", 1)), arch.input_bits)
                  for _, ikey in tab.bound_keys], dtype=np.int64)[tab.bound_id]
    if objective == "reads":
        return w + x
    O = layer.output_words
    return w + x + 2 * _bytes(O * r[1] - O, arch.psum_bits) + _bytes(O, arch.output_bits)


def _structure_table(structs) -> _StructureTable:
    hit = _TABLES.get(id(structs))
    if hit is not None and hit[0] is structs:     # the structure lists are shared (lru_cache)
        return hit[1]
    disk = _DISK_KEYS.get(id(structs))
    fingerprint = _table_fingerprint()
    if disk is not None and disk[0] is structs and fingerprint is not None:
        # a list kept on disk has its table kept beside it (building it walks every structure)
        from .diskcache import cached
        table = cached("structure-table", (disk[1], fingerprint), lambda: _build_structure_table(structs))
    else:
        table = _build_structure_table(structs)
    if len(_TABLES) > 64:
        _TABLES.clear()
    _TABLES[id(structs)] = (structs, table)
    return table


@functools.lru_cache(maxsize=1)
def _table_fingerprint() -> str | None:
    """A hash of the code the structure table follows from (None: source unavailable)."""
    import hashlib
    import inspect
    try:
        src = "".join(inspect.getsource(f) for f in (_build_structure_table, _StructureTable, reload_loops,
                                                     _input_bound_key))
    except (OSError, TypeError):
        return None
    return hashlib.sha256((src + repr(sorted(_MIRROR.items()))).encode()).hexdigest()


_TABLES: dict[int, tuple[list, _StructureTable]] = {}
_DISK_KEYS: dict[int, tuple[list, tuple]] = {}    # structure lists loaded from disk -> their cache key


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


def _ranked_structures(layer: Layer, arch: Architecture, objective: str, structs, mirrored: np.ndarray,
                       cands: Mapping[str, np.ndarray]) -> list[tuple[int, int, int, np.ndarray, int]]:
    """(traffic bound, least buffer bytes, index, least buffer words per operand, bound with the
    capacity's trips) of the structures whose least buffers fit, best bound first (then fewer
    loops, less buffer, enumeration order)."""
    if not structs:
        return []
    tab = _structure_table(structs)
    key = (layer, cands.key if isinstance(cands, _Candidates) else None, id(tab))
    least = _LEAST.get(key) if key[1] is not None else None
    if least is None or least[0] is not tab:
        least = (tab, _least_words(layer, cands, tab.prefixes))
        if key[1] is not None:
            if len(_LEAST) > 256:
                _LEAST.clear()
            _LEAST[key] = least
    words = least[1][tab.prefix_id]                                 # structures x operands
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
    n_min, n_max = trip_range(layer, cands)
    tlb = _trips_bounds(layer, arch, objective, tab, nbytes, n_min, n_max)
    return [(int(lb[i]), int(buf[i]), int(i), words[i], int(tlb[i])) for i in idx]


_LEAST: dict[tuple, tuple[_StructureTable, np.ndarray]] = {}


def _min_buffer_words(layer: Layer, order: Sequence[str], levels: Mapping[str, int],
                      cands: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Buffers of a structure with every tile at its smallest candidate (buffers grow with tiles)."""
    from .vmodel import buffer_words_many
    tiles = {d: int(cands[d].min()) for d in order}
    return {op: int(w) for op, w in buffer_words_many(layer, order, levels, tiles).items()}


def reload_loops(order: Sequence[str], level: int, op: str) -> list[str]:
    """The loops whose trips multiply a weight or output buffer's traffic (F1).

    Those above the buffer that the operand does not depend on and that lie
    outside its innermost loop it does depend on: a loop inside that one
    only repeats the resident block (rule 3 moves buffers past such loops,
    but fixed buffer levels need not be canonical).
    """
    return list(_reload_loops(tuple(order), level, op))


@functools.lru_cache(maxsize=1 << 16)
def _reload_loops(order: tuple[str, ...], level: int, op: str) -> tuple[str, ...]:
    above = order[:level]
    inner = max((j for j, d in enumerate(above) if d in RELEVANT[op]), default=0)
    return tuple(d for d in above[:inner] if d not in RELEVANT[op])


def structure_lower_bound(layer: Layer, arch: Architecture, objective: str,
                          order: Sequence[str], levels: Mapping[str, int]) -> int:
    """A bound no tile choice of this structure can beat (ignoring capacity).

    Weight and output blocks never overlap, so each is loaded once per
    iteration of the loops above its buffer that it does not depend on, and
    every loop has >= 2 trips: weight reads >= 2^k |W|, output writes >= 2^k |O|
    (k such loops). The input moves at least every element it reads once.
    """
    k = tuple(len(reload_loops(order, levels[op], op)) for op in ("weight", "output"))
    return _structure_bound(layer, arch, objective, k, _input_bound_key(order, levels))


def _input_bound_key(order: Sequence[str], levels: Mapping[str, int]) -> tuple:
    """What `input_reads_bound` looks at in a structure, as a small hashable key."""
    return _input_key(tuple(order), levels["input"])


@functools.lru_cache(maxsize=1 << 16)
def _input_key(order: tuple[str, ...], level: int) -> tuple:
    above = order[:level]
    if "K" not in above:
        return ()
    pk = above.index("K")
    return (pk == 0, pk == len(above) - 1, any(d in _NGC for d in above[pk + 1:]))


@functools.lru_cache(maxsize=4096)
def _structure_bound(layer: Layer, arch: Architecture, objective: str, k: tuple[int, int], ikey: tuple) -> int:
    from .vmodel import _bytes
    w = _bytes(layer.weight_words << k[0], arch.weight_bits)
    x = _bytes(_input_bound(layer, arch, ikey, 2), arch.input_bits)
    if objective == "reads":
        return int(w + x)
    O = layer.output_words
    spills = (O << k[1]) - O
    return int(w + x + 2 * _bytes(spills, arch.psum_bits) + _bytes(O, arch.output_bits))


def input_reads_bound(layer: Layer, arch: Architecture, order: Sequence[str], levels: Mapping[str, int],
                      n_k, bmax=None, n_ctx=None):
    """Input words any tile choice of this structure reads, with at least `n_k` trips of K.

    C is the compulsory input (every element some output needs, once).
    * When an N, G or C loop runs inside K above the input buffer, at least
      one element is read twice: at the start of K's second iteration the
      resident block is from that loop's last tile, disjoint from its first
      tile, whose needed elements are all read again. So at least C + 1.
    * When some input loop runs inside K above the input buffer, split the
      iterations into runs: one per value of K and of the loops outside K
      (`n_ctx` combinations of those). Each run sweeps the input of its
      outer-loop context, and over the contexts these cover every needed
      element, so the runs' needs add up to `n_k * C`. A run must load all it
      needs except what the one resident block (at most `bmax` words) already
      holds, and the first run starts empty: at least
      `n_k * C - (n_k * n_ctx - 1) * bmax`.
    Without a given block size (`bmax`) the last bound is used only when K is
    the outermost loop (`n_ctx` = 1) with the capacity as `bmax`. Arguments
    may be arrays over grid points.
    """
    return _input_bound(layer, arch, _input_bound_key(order, levels), n_k, bmax, n_ctx)


def _input_bound(layer: Layer, arch: Architecture, ikey: tuple, n_k, bmax=None, n_ctx=None):
    """`input_reads_bound` from the structure's key (see `_input_bound_key`)."""
    comp = compulsory_input_words(layer)
    if not ikey:
        return comp                    # K not above the input buffer
    k_first, k_last, ngc_inside = ikey
    once = comp + 1 if comp and ngc_inside else comp
    if k_last:
        return once                    # K right above the buffer: no input loop inside it
    if bmax is None:
        bmax = input_capacity_words(arch)
        if bmax is None or not k_first:
            return once
        n_ctx = 1
    return np.maximum(once, n_k * comp - (n_k * n_ctx - 1) * bmax)


def input_capacity_words(arch: Architecture) -> int | None:
    """The most input words a block can have under the capacity (None: no capacity)."""
    if arch.capacity is not None:
        cap = arch.capacity
    elif arch.capacity_per_operand is not None:
        cap = arch.capacity_per_operand[0]
    else:
        return None
    return (cap // arch.buffer_factor) * 8 // arch.input_bits


@functools.lru_cache(maxsize=1024)
def compulsory_input_words(layer: Layer) -> int:
    """Input elements some output reads (padding excluded, stride/dilation gaps excluded)."""
    from .model import _read_rows
    return layer.N * layer.C * int(_read_rows(layer, "Y")[-1]) * int(_read_rows(layer, "X")[-1])


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
