"""Vectorised model: one loop order and buffer placement, many tile-size candidates at once.

Same closed form as `model.py` (transitions per loop, factorised over axes),
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

from .arch import OPERANDS, Architecture, bits_to_bytes
from .axes import spatial_axis
from .errors import ConvschedError
from .layer import DIMS, Layer
from .model import RELEVANT, _read_rows

_SPATIAL = {"Y": ("OY", "FY"), "X": ("OX", "FX")}


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


def _owner(op: str, dim: str) -> str | None:
    if dim not in RELEVANT[op]:
        return None
    if op == "input" and dim in ("OY", "FY"):
        return "Y"
    if op == "input" and dim in ("OX", "FX"):
        return "X"
    return dim


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
        o, f = _SPATIAL[axis]
        self.o_size, self.f_size = layer.dim_size(o), layer.dim_size(f)
        self.args = tuple(getattr(layer, n + axis) for n in ("S", "D", "P", "I"))
        self.count_below = _read_rows(layer, axis)
        self._cache: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def table(self, o_pos: int | None, f_pos: int | None, j: int, owned: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ΣF, ΣI, max) arrays of shape (o_size+1, f_size+1) indexed by tile sizes."""
        def rel(p: int | None) -> str:
            if p is None:
                return "absent"
            return "pre" if p < j else ("own" if p == j else "suf")
        key = (rel(o_pos), rel(f_pos), owned,
               (o_pos is not None and f_pos is not None and o_pos < f_pos))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
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
        self._cache[key] = (F, I, M)
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
    tabs = layer_tables(layer)
    size = {d: layer.dim_size(d) for d in DIMS}
    t = {d: (np.asarray(tiles[d], dtype=np.int64) if d in order else np.int64(size[d])) for d in DIMS}
    n = {d: -(-size[d] // t[d]) for d in DIMS}
    out: dict[str, np.ndarray] = {}
    for op in OPERANDS:
        b = buffers[op]
        pos = {d: j for j, d in enumerate(order[:b])}
        keys = _axis_keys(op)

        def axis_sums(key: str, j: int, owned: bool) -> tuple:
            if key in _SPATIAL:
                od, fd = _SPATIAL[key]
                F, I, _ = tabs.spatial[key].table(pos.get(od), pos.get(fd), j, owned)
                return F[t[od], t[fd]], I[t[od], t[fd]]
            p = pos.get(key)
            D = size[key]
            if p is None or j > p:
                return D, D
            if owned:
                return D - t[key], 0
            many = n[key] > 1
            return np.where(many, t[key], D), np.where(many, 0, D)

        first = 1
        for k in keys:
            first = first * axis_sums(k, -1, False)[0]
        total = first
        mult = 1
        for j in range(b):
            dim = order[j]
            owner = _owner(op, dim)
            fp = ip = 1
            for k in keys:
                fs, is_ = axis_sums(k, j, owner == k)
                fp = fp * fs
                ip = ip * is_
            if owner is None:
                total = total + mult * (n[dim] - 1) * (fp - ip)
                mult = mult * n[dim]
            else:
                total = total + mult * (fp - ip)
        out[op] = total
    bufw = buffer_words_many(layer, order, buffers, tiles)
    O = layer.output_words
    writes = out["output"]
    spills = writes - O
    total_bytes = (_bytes(out["input"], arch.input_bits) + _bytes(out["weight"], arch.weight_bits)
                   + 2 * _bytes(spills, arch.psum_bits) + bits_to_bytes(O * arch.output_bits))
    buf_bytes = sum(buffer_bytes_many(bufw, arch).values())
    return VecTraffic(out["input"], out["weight"], spills, writes, bufw, total_bytes, buf_bytes)


def buffer_words_many(layer: Layer, order: Sequence[str], buffers: Mapping[str, int],
                      tiles: Mapping[str, np.ndarray | int]) -> dict[str, np.ndarray]:
    """Each operand's largest block (product of per-axis maxima) over arrays of tile sizes."""
    tabs = layer_tables(layer)
    bufw: dict[str, np.ndarray] = {}
    for op in OPERANDS:
        pos = {d: j for j, d in enumerate(order[:buffers[op]])}
        bw = 1
        for k in _axis_keys(op):
            if k in _SPATIAL:
                od, fd = _SPATIAL[k]
                _, _, M = tabs.spatial[k].table(pos.get(od), pos.get(fd), -1, False)
                to = tiles[od] if od in order else layer.dim_size(od)
                tf = tiles[fd] if fd in order else layer.dim_size(fd)
                bw = bw * M[to, tf]
            else:
                bw = bw * (np.asarray(tiles[k], dtype=np.int64) if k in pos else layer.dim_size(k))
        bufw[op] = bw
    return bufw


def buffer_bytes_many(bufw: Mapping[str, np.ndarray], arch: Architecture) -> dict[str, np.ndarray]:
    """On-chip bytes per operand (doubled when double-buffered)."""
    return {op: _bytes(bufw[op], arch.buffer_bits(op)) * arch.buffer_factor for op in OPERANDS}


def _bytes(words, bits: int):
    if bits % 8 == 0:
        return words * (bits // 8)
    return -(-(words * bits) // 8)
