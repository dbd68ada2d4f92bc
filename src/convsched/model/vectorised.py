"""Vectorised model: one loop order and buffer placement, many tile-size candidates at once.

Same closed form as `model/closed_form.py` (transitions per loop, factorised
over axes), with every per-axis sum an array over candidates. For one
(layer, order, levels) the formula is worked out once as a *plan* per operand
(`traffic_plan`, `buffer_plan`): its first block and, per loop above its
buffer, the transition at that loop, each a product of `Factor`s. A factor is
either a closed form in one dimension's tile (`TileFactor`) or a table of an
input row/column axis gathered by the tile sizes (`spatialtable.TableFactor`). `evaluate_many` multiplies the plan out over arrays of tiles;
the optimizer's bounds read the same plan on intervals.

Supports the default architecture semantics without DMA granularity (a
per-step rounding does not factorise; `model.evaluate` handles it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Mapping, Sequence, Union

import numpy as np

from ..core.arch import OPERANDS, Architecture, bits_to_bytes, words_to_bytes
from ..core.dims import SPATIAL_AXES, ceil_div
from ..core.errors import ConvschedError
from ..core.layer import Layer
from .closed_form import axis_of
from .spatialtable import SpatialTable, TableFactor


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


#: The axes of each operand's blocks: a dimension, or an input row/column axis ("Y", "X").
AXIS_KEYS: dict[str, tuple[str, ...]] = {
    "input": ("N", "G", "C", "Y", "X"),
    "weight": ("G", "K", "C", "FY", "FX"),
    "output": ("N", "G", "K", "OY", "OX"),
}


@dataclass(frozen=True, slots=True)
class TileFactor:
    """A factor that is a closed form in one dimension's tile t (D: the dimension's size).

    "own": the split loop's own consecutive tiles, D - t (disjoint);
    "tile": the first tile, t (the whole D when there is one trip);
    "overlap": the overlap of tiles, 0 (D when there is one trip).
    """

    kind: Literal["own", "tile", "overlap"]
    dim: str


Factor = Union[TileFactor, TableFactor]


@lru_cache(maxsize=None)          # 3 kinds x 8 dimensions: one shared object each
def tile_factor(kind: Literal["own", "tile", "overlap"], dim: str) -> TileFactor:
    """The `TileFactor` of `kind` over `dim` (shared: plans are built often and compare factors)."""
    return TileFactor(kind, dim)


@dataclass(frozen=True, slots=True)
class Product:
    """`const * prod(factors)`."""

    const: int
    factors: tuple[Factor, ...]


@dataclass(frozen=True, slots=True)
class PlanStep:
    """The transitions of an operand's blocks at one loop above its buffer.

    Each moves `new - overlap` words (per axis: the first set inside the split
    and its overlap with the previous one, multiplied over axes). A loop the
    operand does not depend on (`reload`) repeats the inner block sequence:
    its trips multiply everything inside it.
    """

    dim: str
    reload: bool
    new: Product
    overlap: Product               # const 0: no overlap term


@dataclass(frozen=True, slots=True)
class OperandPlan:
    """One operand's traffic: its first block, then one `PlanStep` per loop above its buffer."""

    first: Product
    steps: tuple[PlanStep, ...]


@dataclass(frozen=True, slots=True)
class BufferPlan:
    """One operand's buffer words: `const * prod(tiles of tiled) * prod(spatial tables)`."""

    const: int
    tiled: tuple[str, ...]
    spatial: tuple[TableFactor, ...]


class LayerTables:
    """Everything the vectorised model precomputes for one layer: the input axes' tables."""

    def __init__(self, layer: Layer) -> None:
        self.layer = layer
        self.spatial = {"Y": SpatialTable(layer, "Y")}
        square = all(getattr(layer, a + "Y") == getattr(layer, a + "X") for a in ("O", "F", "S", "D", "P", "I"))
        # a square layer's column axis has the same tables as its row axis: build them once
        self.spatial["X"] = self.spatial["Y"] if square else SpatialTable(layer, "X")


@lru_cache(maxsize=256)
def layer_tables(layer: Layer) -> LayerTables:
    """The layer's `LayerTables` (shared by every structure searched on it)."""
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
    plan = traffic_plan(layer, tuple(order), tuple(buffers[op] for op in OPERANDS))
    size = layer.dim_sizes
    t = {d: np.asarray(tiles[d], dtype=np.int64) for d in order}
    n = {d: ceil_div(size[d], t[d]) for d in order}
    memo: dict[TileFactor, np.ndarray] = {}

    def value(f: Factor):
        if isinstance(f, TableFactor):
            return f.at(t)
        v = memo.get(f)
        if v is None:
            d = f.dim
            if f.kind == "own":
                v = size[d] - t[d]
            elif f.kind == "tile":
                v = np.where(n[d] > 1, t[d], size[d])
            else:
                v = np.where(n[d] > 1, 0, size[d])
            memo[f] = v
        return v

    def product(p: Product):
        out = p.const
        for f in p.factors:
            out = out * value(f)
        return out

    out: dict[str, np.ndarray] = {}
    for op, operand in zip(OPERANDS, plan):
        total = product(operand.first)
        mult = 1
        for step in operand.steps:
            diff = product(step.new)
            if step.overlap.const:
                diff = diff - product(step.overlap)
            if step.reload:
                total = total + mult * (n[step.dim] - 1) * diff
                mult = mult * n[step.dim]
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


@lru_cache(maxsize=256)     # the structures searched lately: a plan serves one structure's search
def traffic_plan(layer: Layer, order: tuple[str, ...], levels: tuple[int, ...]) -> tuple[OperandPlan, ...]:
    """Per operand (OPERANDS order, `levels` likewise): its `OperandPlan`, worked out once per
    (layer, order, levels)."""
    tabs = layer_tables(layer)
    plan = []
    for op, b in zip(OPERANDS, levels):
        pos = {d: j for j, d in enumerate(order[:b])}

        def factors(j: int, owner: str | None) -> tuple[Product, Product]:
            """The first set and the overlap at a split at loop j (j = -1: the first block)."""
            fc, ic, ff, iff = 1, 1, [], []
            for k in AXIS_KEYS[op]:
                if k in SPATIAL_AXES:
                    od, fd = SPATIAL_AXES[k]
                    g, h, _ = tabs.spatial[k].factors(k, pos.get(od), pos.get(fd), j, owner == k)
                    if isinstance(g, int):
                        fc *= g
                    else:
                        ff.append(g)
                    if isinstance(h, int):
                        ic *= h
                    else:
                        iff.append(h)
                    continue
                p = pos.get(k)
                D = layer.dim_size(k)
                if p is None or j > p:
                    fc *= D
                    ic *= D
                elif owner == k:
                    ff.append(tile_factor("own", k))
                    ic = 0
                else:
                    ff.append(tile_factor("tile", k))
                    iff.append(tile_factor("overlap", k))
            return Product(fc, tuple(ff)), Product(ic, tuple(iff))

        first, _ = factors(-1, None)
        steps = []
        for j in range(b):
            dim = order[j]
            owner = axis_of(op, dim)
            new, overlap = factors(j, owner)
            steps.append(PlanStep(dim, owner is None, new, overlap))
        plan.append(OperandPlan(first, tuple(steps)))
    return tuple(plan)


def buffer_words_many(layer: Layer, order: Sequence[str], buffers: Mapping[str, int],
                      tiles: Mapping[str, np.ndarray | int]) -> dict[str, np.ndarray]:
    """Each operand's largest block (product of per-axis maxima) over arrays of tile sizes."""
    bufw: dict[str, np.ndarray] = {}
    plan = buffer_plan(layer, tuple(order), tuple(buffers[op] for op in OPERANDS))
    for op, p in zip(OPERANDS, plan):
        bw = p.const
        for d in p.tiled:
            bw = bw * tiles[d]
        for f in p.spatial:
            bw = bw * f.at(tiles)
        bufw[op] = np.asarray(bw, dtype=np.int64) if not isinstance(bw, np.ndarray) else bw
    return bufw


@lru_cache(maxsize=256)     # the structures searched lately: a plan serves one structure's search
def buffer_plan(layer: Layer, order: tuple[str, ...], levels: tuple[int, ...]) -> tuple[BufferPlan, ...]:
    """Per operand, its `BufferPlan`.

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
        for k in AXIS_KEYS[op]:
            if k in SPATIAL_AXES:
                od, fd = SPATIAL_AXES[k]
                _, _, g = tabs.spatial[k].factors(k, pos.get(od), pos.get(fd), -1, False)
                if isinstance(g, int):
                    const *= g
                else:
                    spatial.append(g)
            elif k in pos:
                tiled.append(k)
            else:
                const *= layer.dim_size(k)
        plan.append(BufferPlan(const, tuple(tiled), tuple(spatial)))
    return tuple(plan)


def buffer_bytes_many(bufw: Mapping[str, np.ndarray], arch: Architecture) -> dict[str, np.ndarray]:
    """On-chip bytes per operand (doubled when double-buffered)."""
    return {op: words_to_bytes(bufw[op], arch.buffer_bits(op)) * arch.buffer_factor for op in OPERANDS}
