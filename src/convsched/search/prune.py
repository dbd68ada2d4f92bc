"""Bounds the optimizer prunes with: on a structure, on a grid point, on a partial point.

Every function here gives a lower bound of the traffic (or an upper bound of
what fits) that holds for every schedule it stands for; docs/optimizer.md
(facts F1-F3, rules 6 and 8) gives the arguments, and the tests check each
bound against exact traffic of fitting schedules.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ..core.arch import OPERANDS, Architecture, words_to_bytes
from ..core.layer import DIMS, Layer
from ..model.closed_form import RELEVANT
from .structures import _input_bound_key, _reload_loops, _StructureTable, reload_loops

if TYPE_CHECKING:
    from .grid import _TripGroups


def _capacity_mask(arch: Architecture, per_op: Mapping[str, np.ndarray]) -> np.ndarray:
    """Which candidates fit, from per-operand on-chip bytes."""
    if arch.capacity is not None:
        return sum(per_op.values()) <= arch.capacity
    if arch.capacity_per_operand is not None:
        ok = True
        for op, cap in zip(OPERANDS, arch.capacity_per_operand):
            ok = ok & (per_op[op] <= cap)
        return np.asarray(ok)
    return np.True_


def trip_range(layer: Layer, cands: Mapping[str, np.ndarray]) -> tuple[dict[str, int], dict[str, int]]:
    """Fewest and most trips each dimension's tile candidates give."""
    n_min = {d: -(-layer.dim_size(d) // int(c.max())) for d, c in cands.items() if len(c)}
    n_max = {d: -(-layer.dim_size(d) // int(c.min())) for d, c in cands.items() if len(c)}
    return n_min, n_max


def _bound_bytes(layer: Layer, arch: Architecture, objective: str, r_weight, r_output, input_words):
    """The objective's bytes when the weights are read `r_weight` times, each output block is written
    in `r_output` runs (every run but the first reads its partial sums back, every run but the last
    spills them, the last writes the output) and `input_words` input words are read."""
    w = words_to_bytes(layer.weight_words * r_weight, arch.weight_bits)
    x = words_to_bytes(input_words, arch.input_bits)
    if objective == "reads":
        return w + x
    O = layer.output_words
    return w + x + 2 * words_to_bytes(O * r_output - O, arch.psum_bits) + words_to_bytes(O, arch.output_bits)


def trips_lower_bound(layer, arch, objective, order, levels, n_min: Mapping[str, int],
                      n_max: Mapping[str, int], smallest: Mapping[str, int] | None = None) -> int:
    """The structure's traffic bound when each loop's trips lie in [n_min, n_max].

    Weight and output traffic (F1) is |X| times the product of the trips of
    the loops above X's buffer that X does not depend on (set A_X). Each
    buffer also bounds a product of trips: a block of Y holds at least
    |Y| / prod(trips of the loops above Y's buffer that index Y) words (set
    B_Y), so that product is at least |Y| / (Y's room). The trips of A_X that
    are also in B_Y must then make up what B_Y's other loops cannot, even at
    their most trips. (The search gives the trip ranges of the candidates
    that fit: after its prefilter none that was dropped can fit at all.)
    """
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
    return int(_bound_bytes(layer, arch, objective, r["weight"], r["output"],
                            input_reads_bound(layer, arch, order, levels, n_min.get("K", 1))))


def _trip_products_needed(layer, arch, order, levels, smallest=None) -> dict[str, tuple[list[str], int]]:
    """For weight and output: (B, c) with prod of B's trips >= c in every fitting schedule.

    B are the loops above the buffer that index the operand; c is the
    operand's full size over the most words its buffer can hold (the shared
    capacity less the other buffers at their smallest: `smallest`, words of
    every buffer with the smallest tiles; all tiles 1 when not given).
    """
    full = _full_buffer_words(layer)
    if smallest is None:
        from ..model.vectorised import buffer_words_many
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
    from ..model.vectorised import buffer_words_many
    return {op: int(w) for op, w in buffer_words_many(layer, (), {op: 0 for op in OPERANDS}, {}).items()}


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
        from ..model.vectorised import _traffic_plan
        self.layer = layer
        self.first, self.steps = _traffic_plan(layer, tuple(order), tuple(levels[op] for op in OPERANDS))[0]
        self.groups = groups
        self.axis_of = {d: i for i, g in enumerate(groups) for d in g.dims}
        self.e_dim, self.e_lo = e_dim, (int(e_cands[0]) if e_dim is not None else None)
        self.table_values: dict[tuple, tuple] = {}
        self.extent = [(int(g.arr[:, 0].min()), int(g.arr[:, 0].max())) for g in groups]

    def _table_range(self, f: tuple, step: int, pts, open_at):
        i = self.axis_of[f[2]]      # a table is gathered only by loops above the buffer: grid axes
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
        size = self.layer.dim_sizes

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
    r = {}
    for op in ("weight", "output"):
        r[op] = 1
        for d in _reload_loops(tuple(order), levels[op], op):
            r[op] = r[op] * trips[d]
    return _bound_bytes(layer, arch, objective, r["weight"], r["output"], x_words)


def _largest_fitting(layer, arch, order, levels, tiles, e_dim, e_cands, gshape, limit_bytes):
    """For every grid point, the largest candidate of the solved dim `e` that fits, in O(grid).

    Each buffer holds either e's tile (e is above it and indexes it), e's
    whole extent, or nothing of e: its words are `P * t_e` or a constant. With
    whole-byte word sizes the total bytes are therefore `A + B * t_e`, and the
    largest fitting tile is `(cap - A) // B` (cap: the capacity, and
    `limit_bytes` on the total, one for all points or one per point).
    Returns (fits at all, index of the largest fitting candidate, buffer
    bytes at the smallest candidate, at the largest fitting one), or None
    when a word size is not a whole number of bytes (the caller then checks
    every candidate).
    """
    from ..model.vectorised import _axis_keys, buffer_words_many
    tiled = [op for op in OPERANDS if e_dim in order[:levels[op]] and e_dim in _axis_keys(op)]
    if any(arch.buffer_bits(op) % 8 for op in OPERANDS):
        return None
    w1 = buffer_words_many(layer, order, levels, {**tiles, e_dim: np.int64(1)})
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
    hi_idx = np.searchsorted(e_cands, t_max, side="right") - 1
    mask = ok & (hi_idx >= 0)
    hi_idx = np.maximum(hi_idx, 0)
    return mask, hi_idx, A + B * e_cands[0], A + B * e_cands[hi_idx]


def fewest_fitting_trips(layer: Layer, arch: Architecture, tab: _StructureTable, words: np.ndarray,
                         cands: Mapping[str, np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
    """Per structure and dimension, the fewest trips a fitting schedule can have (structures x DIMS).

    For N, G, K and C: with every other tile at its smallest candidate (least
    buffers `words`, per operand) the buffers are `A + B * t` in the
    dimension's tile t (each buffer holds t, the whole extent, or nothing of
    it), so no fitting schedule has a larger tile than the largest candidate
    with `A + B * t <= capacity` (F3). Other dimensions: their largest
    candidate. Needs one shared capacity and whole-byte words, else gives the
    largest candidates' trips for all. `rows`: the table's rows `words` are of (default all).
    """
    above = tab.above_mask if rows is None else tab.above_mask[rows]
    size = layer.dim_sizes
    out = np.tile(np.array([-(-size[d] // int(cands[d].max())) if len(cands[d]) else 1 for d in DIMS],
                           dtype=np.int64), (len(words), 1))
    if arch.capacity is None or any(arch.buffer_bits(op) % 8 for op in OPERANDS):
        return out
    per = words * np.array([arch.buffer_bits(op) // 8 * arch.buffer_factor for op in OPERANDS], dtype=np.int64)
    for d in ("N", "G", "K", "C"):
        c = np.sort(cands[d])
        if len(c) == 0:
            continue
        j = DIMS.index(d)
        scaled = above[:, :, j] & np.array([d in RELEVANT[op] for op in OPERANDS])
        A = np.where(scaled, 0, per).sum(axis=1)
        B = np.where(scaled, per // int(c[0]), 0).sum(axis=1)      # those buffers hold c[0] of d now
        t_max = np.where(B > 0, (arch.capacity - A) // np.maximum(B, 1), int(c[-1]))
        at = np.clip(np.searchsorted(c, t_max, side="right") - 1, 0, len(c) - 1)
        out[:, j] = np.maximum(out[:, j], -(-size[d] // c[at]))
    return out


def _trips_bounds(layer: Layer, arch: Architecture, objective: str, tab: _StructureTable, nbytes: np.ndarray,
                  n_min: Mapping[str, int] | np.ndarray, n_max: Mapping[str, int],
                  rows: np.ndarray | None = None) -> np.ndarray:
    """`trips_lower_bound` of every structure of a table at once (least buffers `nbytes`; `n_min`:
    fewest trips per dimension, or per structure and dimension as an array; `rows`: the table's
    rows these are of, default all)."""
    sub = (lambda a: a) if rows is None else (lambda a: a[rows])
    index_mask, reload_mask, bound_id = sub(tab.index_mask), sub(tab.reload_mask), sub(tab.bound_id)
    lo = (np.asarray(n_min, dtype=np.int64) if isinstance(n_min, np.ndarray)
          else np.array([n_min.get(d, 1) for d in DIMS], dtype=np.int64))
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
        need.append((index_mask[:, o], -(-full[op] // np.maximum(room, 1)), room >= 1))
    r = []
    for o in range(2):
        A = reload_mask[:, o]
        best = prod(A, lo)
        for B, c, valid in need:
            inter = A & B
            # more trips than A ∩ B can make means no schedule of the structure fits: any bound holds,
            # and the most trips A ∩ B can make keeps the product within int64 (docs/limits.md)
            forced = np.minimum(np.maximum(prod(inter, lo), -(-c // prod(B & ~A, hi))), prod(inter, hi))
            best = np.where(inter.any(axis=1) & valid, np.maximum(best, forced * prod(A & ~B, lo)), best)
        r.append(best)
    n_k = np.broadcast_to(lo[..., DIMS.index("K")], (len(nbytes),))
    x = np.zeros(len(nbytes), dtype=np.int64)
    for b, (_, ikey) in enumerate(tab.bound_keys):
        at = bound_id == b
        x[at] = _input_bound(layer, arch, ikey, n_k[at])
    return _bound_bytes(layer, arch, objective, r[0], r[1], x)


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


@functools.lru_cache(maxsize=4096)
def _structure_bound(layer: Layer, arch: Architecture, objective: str, k: tuple[int, int], ikey: tuple) -> int:
    return int(_bound_bytes(layer, arch, objective, 1 << k[0], 1 << k[1], _input_bound(layer, arch, ikey, 2)))


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
    return np.maximum(once, _less_product(n_k * comp, n_k * n_ctx - 1, bmax))


def _less_product(a, b, c):
    """max(a - b * c, 0) for non-negative int64 (arrays), without forming a product that overflows.

    `a` and `b` fit (docs/limits.md), but b * c need not (`c` is a block size or a capacity
    in words): where b * c > a, which `b > a // c` tells without multiplying, the result is 0."""
    a, b, c = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), np.asarray(c, dtype=np.int64)
    small = (c == 0) | (b <= a // np.maximum(c, 1))
    return np.where(small, a - np.where(small, b, 0) * c, 0)


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
    from ..model.closed_form import read_counts
    return layer.N * layer.C * int(read_counts(layer, "Y")[-1]) * int(read_counts(layer, "X")[-1])
