"""Bounds the optimizer prunes with: on every structure at once, on one structure, on a grid point.

Every function here gives a lower bound of the traffic (or an upper bound of
what fits) that holds for every schedule it stands for; docs/optimizer.md
(facts F1-F3, rules 6 and 8) gives the arguments, and the tests check each
bound against exact traffic of fitting schedules. The bound on a partial grid
point that reads the model on intervals is `grid.InputFloor`.
"""

from __future__ import annotations

import functools
import math
from typing import Mapping

import numpy as np

from ..core.arch import OPERANDS, Architecture, words_to_bytes
from ..core.dims import ceil_div
from ..core.layer import DIMS, Layer
from ..model.closed_form import RELEVANT, read_counts
from ..model.vectorised import buffer_words_many
from .space import Objective, StructureContext
from .structures import StructureTable, input_bound_key, reload_loops

#: A count that may be one number or an array over grid points or structures.
Count = int | np.ndarray


def capacity_mask(arch: Architecture, per_op: Mapping[str, np.ndarray]) -> np.ndarray:
    """Which candidates fit `arch`'s capacity (shared or per operand), from per-operand on-chip bytes."""
    if arch.capacity is not None:
        return sum(per_op.values()) <= arch.capacity
    if arch.capacity_per_operand is not None:
        ok = True
        for op, cap in zip(OPERANDS, arch.capacity_per_operand):
            ok = ok & (per_op[op] <= cap)
        return np.asarray(ok)
    return np.True_


def _bound_bytes(layer: Layer, arch: Architecture, objective: Objective, r_weight: Count, r_output: Count,
                 input_words: Count) -> Count:
    """The objective's bytes when the weights are read `r_weight` times, each output block is written
    in `r_output` runs (every run but the first reads its partial sums back, every run but the last
    spills them, the last writes the output) and `input_words` input words are read."""
    w = words_to_bytes(layer.weight_words * r_weight, arch.weight_bits)
    x = words_to_bytes(input_words, arch.input_bits)
    if objective == "reads":
        return w + x
    O = layer.output_words
    return w + x + 2 * words_to_bytes(O * r_output - O, arch.psum_bits) + words_to_bytes(O, arch.output_bits)


def trips_lower_bound(ctx: StructureContext, arch: Architecture, n_min: Mapping[str, int],
                      n_max: Mapping[str, int], smallest: Mapping[str, int] | None = None) -> int:
    """The structure's traffic bound on `arch` (a slot's capacity) when each loop's trips lie in
    [n_min, n_max]: F1's reload counts, raised where the capacity forces the trips of the loops
    that index another buffer (the "capacity as a product constraint" of rule 8, docs/optimizer.md).
    `smallest`: the words of every buffer at the smallest tiles (default: all tiles 1)."""
    layer, order, levels = ctx.layer, ctx.order, ctx.levels
    need = _trip_products_needed(ctx, arch, smallest)
    r = {}
    for op in ("weight", "output"):
        A = reload_loops(order, levels[op], op)
        best_r = math.prod(n_min.get(d, 1) for d in A)
        for other, (B, c) in need.items():
            inter = [d for d in A if d in B]
            if not inter:
                continue
            room = math.prod(n_max.get(d, 1) for d in B if d not in A)
            forced = max(math.prod(n_min.get(d, 1) for d in inter), ceil_div(c, room))
            best_r = max(best_r, forced * math.prod(n_min.get(d, 1) for d in A if d not in B))
        r[op] = best_r
    return int(_bound_bytes(layer, arch, ctx.objective, r["weight"], r["output"],
                            input_reads_bound(layer, arch, order, levels, n_min.get("K", 1))))


def _trip_products_needed(ctx: StructureContext, arch: Architecture, smallest: Mapping[str, int] | None = None
                          ) -> dict[str, tuple[list[str], int]]:
    """For weight and output: (B, c) with prod of B's trips >= c in every fitting schedule (B: the
    loops above the buffer that index the operand; c: its full size over the most words its buffer
    can hold beside the others at their smallest, `smallest`)."""
    layer, order, levels = ctx.layer, ctx.order, ctx.levels
    full = _full_buffer_words(layer)
    if smallest is None:
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
        out[op] = (B, ceil_div(full[op], room))
    return out


@functools.lru_cache(maxsize=256)
def _full_buffer_words(layer: Layer) -> dict[str, int]:
    """Each operand's words with no loop above its buffer (its whole tensor as the model sizes it)."""
    return {op: int(w) for op, w in buffer_words_many(layer, (), {op: 0 for op in OPERANDS}, {}).items()}


def point_bound(ctx: StructureContext, trips: Mapping[str, np.ndarray], input_words: Count | None = None,
                ctx_trips: Mapping[str, np.ndarray] | None = None, input_floor: Count | None = None) -> np.ndarray:
    """Per grid point: exact weight and output bytes from the trip counts (F1) plus the input bound.

    `input_words` (the input buffer's words at each point, or more) lets the
    input bound use the point's own block size and the trips of the loops
    outside K (`ctx_trips`, default `trips`; the bound falls as they grow,
    so give the most trips a point may take). `input_floor`: input words
    known to be read anyway (`grid.InputFloor`).
    """
    layer, arch, order, levels = ctx.layer, ctx.arch, ctx.order, ctx.levels
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
        for d in reload_loops(order, levels[op], op):
            r[op] = r[op] * trips[d]
    return _bound_bytes(layer, arch, ctx.objective, r["weight"], r["output"], x_words)


def fewest_fitting_trips(layer: Layer, arch: Architecture, tab: StructureTable, words: np.ndarray,
                         cands: Mapping[str, np.ndarray], rows: np.ndarray | None = None) -> np.ndarray:
    """Per structure and dimension, the fewest trips a fitting schedule can have (structures x DIMS).

    For N, G, K and C from the largest tile that fits beside the others at their smallest (least
    buffers `words`, per operand; rule 8 of docs/optimizer.md); other dimensions, or without one
    shared capacity and whole-byte words: the largest candidate's. `rows`: the table's rows
    `words` are of (default all).
    """
    above = tab.above_mask if rows is None else tab.above_mask[rows]
    size = layer.dim_sizes
    out = np.tile(np.array([ceil_div(size[d], int(cands[d].max())) if len(cands[d]) else 1 for d in DIMS],
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
        out[:, j] = np.maximum(out[:, j], ceil_div(size[d], c[at]))
    return out


def table_trips_bounds(layer: Layer, arch: Architecture, objective: Objective, tab: StructureTable,
                       nbytes: np.ndarray, n_min: Mapping[str, int] | np.ndarray, n_max: Mapping[str, int],
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
        need.append((index_mask[:, o], ceil_div(full[op], np.maximum(room, 1)), room >= 1))
    r = []
    for o in range(2):
        A = reload_mask[:, o]
        best = prod(A, lo)
        for B, c, valid in need:
            inter = A & B
            # more trips than A ∩ B can make means no schedule of the structure fits: any bound holds,
            # and the most trips A ∩ B can make keeps the product within int64 (docs/limits.md)
            forced = np.minimum(np.maximum(prod(inter, lo), ceil_div(c, prod(B & ~A, hi))), prod(inter, hi))
            best = np.where(inter.any(axis=1) & valid, np.maximum(best, forced * prod(A & ~B, lo)), best)
        r.append(best)
    n_k = np.broadcast_to(lo[..., DIMS.index("K")], (len(nbytes),))
    x = np.zeros(len(nbytes), dtype=np.int64)
    for b, (_, ikey) in enumerate(tab.bound_keys):
        at = bound_id == b
        x[at] = _input_bound(layer, arch, ikey, n_k[at])
    return _bound_bytes(layer, arch, objective, r[0], r[1], x)


def structure_lower_bound(layer: Layer, arch: Architecture, objective: Objective,
                          order: tuple[str, ...], levels: Mapping[str, int]) -> int:
    """A bound no tile choice of this structure can beat (ignoring capacity): `2^k |W|` weight reads,
    `2^k |O|` output writes and the input bound (rule 8 of docs/optimizer.md)."""
    k = tuple(len(reload_loops(tuple(order), levels[op], op)) for op in ("weight", "output"))
    return structure_bound(layer, arch, objective, k, input_bound_key(tuple(order), levels))


@functools.lru_cache(maxsize=4096)
def structure_bound(layer: Layer, arch: Architecture, objective: Objective, k: tuple[int, int], ikey: tuple) -> int:
    """`structure_lower_bound` from a structure's key: its reload-loop counts `k` of weight and
    output and its `input_bound_key` (many structures share one)."""
    return int(_bound_bytes(layer, arch, objective, 1 << k[0], 1 << k[1], _input_bound(layer, arch, ikey, 2)))


def input_reads_bound(layer: Layer, arch: Architecture, order: tuple[str, ...], levels: Mapping[str, int],
                      n_k: Count, bmax: Count | None = None, n_ctx: Count | None = None) -> Count:
    """Input words any tile choice of this structure reads, with at least `n_k` trips of K.

    At least the compulsory input C, C + 1 when an N, G or C loop runs inside
    K above the input buffer (one element is read twice), and
    `n_k * C - (n_k * n_ctx - 1) * bmax` when some input loop runs inside K
    (rule 8 of docs/optimizer.md; `n_ctx`: the iterations of the loops outside
    K, `bmax`: the input block's words). Without a given block size the last
    is used only when K is the outermost loop, with the capacity as `bmax`.
    Arguments may be arrays over grid points.
    """
    return _input_bound(layer, arch, input_bound_key(tuple(order), levels), n_k, bmax, n_ctx)


def _input_bound(layer: Layer, arch: Architecture, ikey: tuple, n_k: Count, bmax: Count | None = None,
                 n_ctx: Count | None = None) -> Count:
    """`input_reads_bound` from the structure's key (see `structures.input_bound_key`)."""
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
    return np.maximum(once, less_product(n_k * comp, n_k * n_ctx - 1, bmax))


def less_product(a: Count, b: Count, c: Count) -> np.ndarray:
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
    return layer.N * layer.C * int(read_counts(layer, "Y")[-1]) * int(read_counts(layer, "X")[-1])
