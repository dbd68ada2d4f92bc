"""Vectorised model: one loop order and buffer placement, many tile-size candidates at once.

Same closed form as `model/closed_form.py` (transitions per loop, factorised over axes),
with every per-axis sum an array over candidates. Axes of one tile loop have
closed forms; the input row/column axes (two loops each) come from a table
over their own (output tile, filter tile) pairs, computed once per layer and
placement pattern with the scalar `axes.GridAxis`, and then gathered.

Supports the default architecture semantics without DMA granularity (a
per-step rounding does not factorise; `model.evaluate` handles it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

from ..core.arch import OPERANDS, Architecture, bits_to_bytes, words_to_bytes
from ..core.dims import SPATIAL_AXES
from ..core.errors import ConvschedError
from ..core.layer import Layer
from .axes import spatial_axis
from .closed_form import axis_of, read_counts


@dataclass
class VecTraffic:
    """Arrays over candidates (words unless said otherwise)."""

    input_read: np.ndarray
    weight_read: np.ndarray
    output_read: np.ndarray
    output_write: np.ndarray
    buffer_words: dict[str, np.ndarray]
    total_bytes: np.ndarray
    buffer_bytes: np.ndarray   # on-chip bytes of all three buffers (doubled when double-buffered)


def _axis_keys(op: str) -> list[str]:
    if op == "input":
        return ["N", "G", "C", "Y", "X"]
    if op == "weight":
        return ["G", "K", "C", "FY", "FX"]
    return ["N", "G", "K", "OY", "OX"]


def _placement(o_pos: int | None, f_pos: int | None, j: int, owned: bool) -> tuple[str, str, bool, bool]:
    """Where an input axis's output and filter loops sit relative to the split at loop `j`."""
    def rel(p: int | None) -> str:
        if p is None:
            return "absent"
        return "pre" if p < j else ("own" if p == j else "suf")
    return rel(o_pos), rel(f_pos), owned, (o_pos is not None and f_pos is not None and o_pos < f_pos)


class SpatialTable:
    """Per-axis sums of the input row (or column) axis for every (output tile, filter tile) pair.

    Keyed by the relative placement of the axis's two loops and the split:
    each loop is 'absent' (below the buffer), 'pre' (outside the split),
    'own' (the split loop itself) or 'suf' (inside the split), and when both
    are inside the split, which is outer.
    """

    def __init__(self, layer: Layer, axis: str) -> None:
        self.L = layer
        self.axis = axis
        o, f = SPATIAL_AXES[axis]
        self.o_size, self.f_size = layer.dim_size(o), layer.dim_size(f)
        self.args = tuple(getattr(layer, n + axis) for n in ("S", "D", "P", "I"))
        self.count_below = read_counts(layer, axis)
        self._cache: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def table(self, o_pos: int | None, f_pos: int | None, j: int, owned: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ΣF, ΣI, max) arrays of shape (o_size+1, f_size+1) indexed by tile sizes."""
        key = _placement(o_pos, f_pos, j, owned)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        from .spatialtable import spatial_sums
        s, d, p, i = self.args
        out = spatial_sums(self.o_size, self.f_size, s, d, p, i, self.count_below, key[0], key[1], key[3])
        self._cache[key] = out
        return out

    def table_by_walking(self, o_pos: int | None, f_pos: int | None, j: int, owned: bool
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`table` computed pair by pair with the scalar `axes.GridAxis` (the reference for the tests)."""
        key = _placement(o_pos, f_pos, j, owned)
        # Canonical loop positions with the same relative pattern: the split sits
        # at 3 ('own' loops at 3 too); 'pre' loops at 0/1, 'suf' loops at 4/5.
        slots = {"absent": None, "pre": 0, "own": 3, "suf": 4}
        co, cf = slots[key[0]], slots[key[1]]
        if co is not None and co == cf:          # both outside or both inside the split
            o_outer = key[3]
            co, cf = (co, co + 1) if o_outer else (co + 1, co)
        cj = 3
        F = np.zeros((self.o_size + 1, self.f_size + 1), dtype=np.int64)
        I = np.zeros_like(F)
        M = np.zeros_like(F)
        s, d, p, i = self.args
        o_range = range(1, self.o_size + 1) if co is not None else [self.o_size]
        f_range = range(1, self.f_size + 1) if cf is not None else [self.f_size]
        for to in o_range:
            for tf in f_range:
                ax = spatial_axis(self.o_size, to, co, self.f_size, tf, cf, s, d, p, i, self.count_below)
                ents = ax.owned_split(cj) if owned else ax.split(cj)
                F[to, tf] = sum(a * c for a, _, c in ents)
                I[to, tf] = sum(b * c for _, b, c in ents)
                M[to, tf] = ax.max_size()
        if co is None:
            F[:, :] = F[self.o_size:self.o_size + 1, :]
            I[:, :] = I[self.o_size:self.o_size + 1, :]
            M[:, :] = M[self.o_size:self.o_size + 1, :]
        if cf is None:
            F[:, :] = F[:, self.f_size:self.f_size + 1]
            I[:, :] = I[:, self.f_size:self.f_size + 1]
            M[:, :] = M[:, self.f_size:self.f_size + 1]
        return F, I, M


class LayerTables:
    """Everything the vectorised model precomputes for one layer."""

    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        self.spatial = {"Y": SpatialTable(layer, "Y")}
        square = all(getattr(layer, a + "Y") == getattr(layer, a + "X") for a in ("O", "F", "S", "D", "P", "I"))
        # a square layer's column axis has the same tables as its row axis: build them once
        self.spatial["X"] = self.spatial["Y"] if square else SpatialTable(layer, "X")


@lru_cache(maxsize=256)
def layer_tables(layer: Layer) -> LayerTables:
    return LayerTables(layer)


def evaluate_many(layer: Layer, order: Sequence[str], buffers: Mapping[str, int],
                  tiles: Mapping[str, np.ndarray | int], arch: Architecture | None = None) -> VecTraffic:
    """Traffic for one order and buffer placement over arrays of tile sizes (broadcast together).

    `tiles` maps each dimension in `order` to an int array of candidates;
    dimensions not in `order` are untiled.
    """
    arch = arch or Architecture()
    if arch.dma_granularity:
        raise ConvschedError("the vectorised model has no DMA granularity; use model.evaluate for it")
    plan = _traffic_plan(layer, tuple(order), tuple(buffers[op] for op in OPERANDS))
    size = layer.dim_sizes
    t = {d: np.asarray(tiles[d], dtype=np.int64) for d in order}
    n = {d: -(-size[d] // t[d]) for d in order}
    memo: dict[tuple[str, str], np.ndarray] = {}

    def value(f: tuple):
        kind = f[0]
        if kind in ("g1", "g2"):
            return _gathered(f, t)
        key = (kind, f[1])
        v = memo.get(key)
        if v is None:
            d = f[1]
            if kind == "own":          # consecutive tiles of its own loop: disjoint
                v = size[d] - t[d]
            elif kind == "tile":       # first tile (the whole extent when there is one trip)
                v = np.where(n[d] > 1, t[d], size[d])
            else:                      # overlap: none unless there is one trip
                v = np.where(n[d] > 1, 0, size[d])
            memo[key] = v
        return v

    def product(const: int, factors: tuple):
        out = const
        for f in factors:
            out = out * value(f)
        return out

    out: dict[str, np.ndarray] = {}
    for op, (first, steps) in zip(OPERANDS, plan):
        total = product(*first)
        mult = 1
        for dim, reload, fc, ff, ic, iff in steps:
            fp = product(fc, ff)
            diff = fp - product(ic, iff) if ic else fp
            if reload:
                total = total + mult * (n[dim] - 1) * diff
                mult = mult * n[dim]
            else:
                total = total + mult * diff
        out[op] = total
    bufw = buffer_words_many(layer, order, buffers, tiles)
    O = layer.output_words
    writes = out["output"]
    spills = writes - O
    total_bytes = (words_to_bytes(out["input"], arch.input_bits) + words_to_bytes(out["weight"], arch.weight_bits)
                   + 2 * words_to_bytes(spills, arch.psum_bits) + bits_to_bytes(O * arch.output_bits))
    buf_bytes = sum(buffer_bytes_many(bufw, arch).values())
    return VecTraffic(out["input"], out["weight"], spills, writes, bufw, total_bytes, buf_bytes)


def _table_factor(layer: Layer, tab: np.ndarray, od: str, fd: str, above: Mapping[str, int]):
    """An input-axis table as a factor of a product over tile candidates.

    The table is constant along a loop below the buffer (not in `above`), so
    it is gathered only by the tiles of the loops above it: "g2" by both the
    output and the filter tile, "g1" by one; with neither it is a constant.
    """
    o_in, f_in = od in above, fd in above
    if o_in and f_in:
        return ("g2", tab, od, fd)
    if o_in:
        return ("g1", np.ascontiguousarray(tab[:, layer.dim_size(fd)]), od)
    if f_in:
        return ("g1", np.ascontiguousarray(tab[layer.dim_size(od), :]), fd)
    return int(tab[layer.dim_size(od), layer.dim_size(fd)])


def _gathered(f: tuple, tiles: Mapping[str, np.ndarray | int]):
    """A "g1"/"g2" factor of `_table_factor` at the given tiles."""
    return f[1][tiles[f[2]], tiles[f[3]]] if f[0] == "g2" else f[1][tiles[f[2]]]


@lru_cache(maxsize=16384)
def _traffic_plan(layer: Layer, order: tuple[str, ...], levels: tuple[int, ...]) -> tuple:
    """Per operand: its first block's factors and, per loop above its buffer, the transition's.

    Each factor list is (constant, factors, constant of overlaps, overlap
    factors); a factor is a table gathered by tile sizes ("g2": by the output
    and filter tiles, "g1": by one of them, the table being constant along a
    loop below the buffer) or an expression of one dimension's tile ("own",
    "tile", "overlap"). Worked out once per (layer, order, levels).
    """
    tabs = layer_tables(layer)
    plan = []
    for op, b in zip(OPERANDS, levels):
        pos = {d: j for j, d in enumerate(order[:b])}
        keys = _axis_keys(op)

        def factors(j: int, owner: str | None) -> tuple:
            fc, ic, ff, iff = 1, 1, [], []
            for k in keys:
                if k in SPATIAL_AXES:
                    od, fd = SPATIAL_AXES[k]
                    F, I, _ = tabs.spatial[k].table(pos.get(od), pos.get(fd), j, owner == k)
                    for tab, acc, is_f in ((F, ff, True), (I, iff, False)):
                        g = _table_factor(layer, tab, od, fd, pos)
                        if isinstance(g, int):
                            if is_f:
                                fc *= g
                            else:
                                ic *= g
                        else:
                            acc.append(g)
                    continue
                p = pos.get(k)
                D = layer.dim_size(k)
                if p is None or j > p:
                    fc *= D
                    ic *= D
                elif owner == k:
                    ff.append(("own", k))
                    ic = 0
                else:
                    ff.append(("tile", k))
                    iff.append(("overlap", k))
            return fc, tuple(ff), ic, tuple(iff)

        fc, ff, _, _ = factors(-1, None)
        steps = []
        for j in range(b):
            dim = order[j]
            owner = axis_of(op, dim)
            steps.append((dim, owner is None) + factors(j, owner))
        plan.append(((fc, ff), tuple(steps)))
    return tuple(plan)


def buffer_words_many(layer: Layer, order: Sequence[str], buffers: Mapping[str, int],
                      tiles: Mapping[str, np.ndarray | int]) -> dict[str, np.ndarray]:
    """Each operand's largest block (product of per-axis maxima) over arrays of tile sizes."""
    bufw: dict[str, np.ndarray] = {}
    plan = _buffer_plan(layer, tuple(order), tuple(buffers[op] for op in OPERANDS))
    for op, (const, tiled, spatial) in zip(OPERANDS, plan):
        bw = const
        for d in tiled:
            bw = bw * tiles[d]
        for f in spatial:
            bw = bw * _gathered(f, tiles)
        bufw[op] = np.asarray(bw, dtype=np.int64) if not isinstance(bw, np.ndarray) else bw
    return bufw


@lru_cache(maxsize=16384)
def _buffer_plan(layer: Layer, order: tuple[str, ...], levels: tuple[int, ...]) -> tuple:
    """Per operand: (constant factor, tiled dims, spatial table factors (`_table_factor`)).

    A dimension below the buffer contributes its whole extent (a constant);
    a spatial table is gathered only along the loops above the buffer (the
    table is constant along the others), so one structure's buffers cost a
    few multiplications.
    """
    tabs = layer_tables(layer)
    plan = []
    for op, b in zip(OPERANDS, levels):
        pos = {d: j for j, d in enumerate(order[:b])}
        const, tiled, spatial = 1, [], []
        for k in _axis_keys(op):
            if k in SPATIAL_AXES:
                od, fd = SPATIAL_AXES[k]
                _, _, M = tabs.spatial[k].table(pos.get(od), pos.get(fd), -1, False)
                g = _table_factor(layer, M, od, fd, pos)
                if isinstance(g, int):
                    const *= g
                else:
                    spatial.append(g)
            elif k in pos:
                tiled.append(k)
            else:
                const *= layer.dim_size(k)
        plan.append((const, tuple(tiled), tuple(spatial)))
    return tuple(plan)


def buffer_bytes_many(bufw: Mapping[str, np.ndarray], arch: Architecture) -> dict[str, np.ndarray]:
    """On-chip bytes per operand (doubled when double-buffered)."""
    return {op: words_to_bytes(bufw[op], arch.buffer_bits(op)) * arch.buffer_factor for op in OPERANDS}

