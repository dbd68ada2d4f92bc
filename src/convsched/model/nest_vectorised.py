"""The multi-level model over arrays of tile candidates for one nest structure (the optimizer's form).

Same method as `model.nest_model` (docs/multilevel.md), with every tile an array (broadcast together):

* a plain axis keeps, per depth, a short list of (length array, count array) classes -- a loop of
  tile t cuts each class into `L // t` ranges of t and one of `L % t` -- so each of its sums is a
  few array operations;
* an input row (column) axis depends on where its ranges sit, so its sums are computed per distinct
  combination of its own tiles (`SpatialAxis` of the scalar model, cached) and gathered back onto
  the candidates.

DMA granularity is not vectorised (each step is rounded on its own): use `evaluate_nest` for it.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..core.arch import words_to_bytes
from ..core.dims import DIMS, SPATIAL_AXES
from ..core.errors import ConvschedError
from ..core.hierarchy import Hierarchy
from ..core.layer import Layer
from .closed_form import axis_of
from .nest_model import SpatialAxis
from .nest_traffic import MAIN, energy_weight, source_of

Array = np.ndarray


@dataclass(frozen=True)
class NestStructure:
    """A nest without its tile sizes: the loops' dimensions, outermost first, and the buffer positions."""

    dims: tuple[str, ...]
    buffers: Mapping[str, Mapping[str, int]]


class _PlainAxis:
    """`nest_model.PlainAxis` over arrays of tiles."""

    def __init__(self, size: int, positions: Sequence[int], tiles: Sequence[Array]) -> None:
        self.positions = list(positions)
        self.tiles = list(tiles)
        self.depths: list[list[tuple[Array, Array]]] = [[(np.asarray(size, dtype=np.int64), np.int64(1))]]
        for t in self.tiles:
            classes = [(t, sum(c * (n // t) for n, c in self.depths[-1]))]
            classes += [(n % t, c * (n % t > 0)) for n, c in self.depths[-1]]
            self.depths.append(classes)
        self.size = size

    def depth_before(self, j: int) -> int:
        return sum(1 for p in self.positions if p < j)

    def ranges(self, depth: int) -> Array:
        return sum(c for _, c in self.depths[depth])

    def _leaf(self, n: Array) -> Array:
        return np.minimum(n, self.tiles[-1]) if self.tiles else n

    def max_size(self) -> Array:
        return self._leaf(np.asarray(self.size, dtype=np.int64))

    def first(self) -> Array:
        return self._leaf(np.asarray(self.size, dtype=np.int64))

    def split(self, j: int) -> tuple[Array, Array]:
        q = self.depth_before(j)
        if q == len(self.tiles):
            s = sum(n * c for n, c in self.depths[q])
            return s, s
        tm = self.tiles[-1]
        return (sum(np.minimum(n, tm) * c for n, c in self.depths[q]),
                sum(np.where(n <= tm, n, 0) * c for n, c in self.depths[q]))

    def owned_split(self, j: int) -> tuple[Array, Array]:
        k = self.positions.index(j)
        t = self.tiles[k]
        first = 0
        for n, c in self.depths[k]:
            full, rest = n // t, n % t
            first = first + c * (np.maximum(full - 1, 0) * self._leaf(t) + ((full >= 1) & (rest > 0)) * self._leaf(rest))
        return first, 0


@functools.lru_cache(maxsize=65536)
def _spatial_sums(layer: Layer, axis: str, loops: tuple[tuple[int, str, int], ...], splits: tuple[int, ...]
                  ) -> tuple[int, int, tuple[tuple[int, int], ...]]:
    """(first block's set size, largest set size, (ΣF, ΣI) for each split in `splits`) of a spatial axis;
    a split `j` that is one of the axis's own loops is its owned split."""
    ax = SpatialAxis(layer, axis, loops)
    own = {p for p, _, _ in loops}
    out = []
    for j in splits:
        ents = ax.owned_split(j) if j in own else ax.split(j)
        out.append((sum(f * c for f, _, c in ents), sum(i * c for _, i, c in ents)))
    first = ax.split(-1)
    return sum(f * c for f, _, c in first), ax.max_size(), tuple(out)


def clear_caches() -> None:
    """Empty the per-layer input-row tables (for cold-start measurements)."""
    _spatial_sums.cache_clear()


class _SpatialAxis:
    """The input rows (columns) over arrays of tiles: scalar sums per distinct tile combination."""

    def __init__(self, layer: Layer, axis: str, loops: Sequence[tuple[int, str, Array]], splits: Sequence[int]
                 ) -> None:
        self.splits = list(splits)
        # Only this axis's own tiles matter: work on their joint broadcast shape (small on a grid of
        # candidates), and let numpy broadcast the results onto the others.
        sub = np.broadcast_shapes(*(np.shape(t) for _, _, t in loops)) if loops else ()
        tiles = [np.broadcast_to(t, sub).ravel() for _, _, t in loops]
        if tiles:
            combos, inverse = np.unique(np.stack(tiles, axis=1), axis=0, return_inverse=True)
        else:
            combos, inverse = np.zeros((1, 0), dtype=np.int64), np.zeros(1, dtype=np.int64)
        inverse = inverse.reshape(-1)
        first, largest = np.empty(len(combos), np.int64), np.empty(len(combos), np.int64)
        sums = np.empty((len(combos), len(self.splits), 2), np.int64)
        for u, combo in enumerate(combos.tolist()):
            spec = tuple((p, d, int(t)) for (p, d, _), t in zip(loops, combo))
            f, m, s = _spatial_sums(layer, axis, spec, tuple(self.splits))
            first[u], largest[u] = f, m
            sums[u] = s
        self._first = first[inverse].reshape(sub)
        self._max = largest[inverse].reshape(sub)
        self._sums = sums[inverse].reshape(sub + (len(self.splits), 2))

    def first(self) -> Array:
        return self._first

    def max_size(self) -> Array:
        return self._max

    def split(self, j: int) -> tuple[Array, Array]:
        k = self.splits.index(j)
        return self._sums[..., k, 0], self._sums[..., k, 1]

    owned_split = split


@dataclass(frozen=True)
class NestWordsMany:
    """Per level and operand held there: words across the boundary above it (reads, writes) and its
    buffer words, each an array over the candidates."""

    reads: dict[str, dict[str, Array]]
    writes: dict[str, dict[str, Array]]
    buffer_words: dict[str, dict[str, Array]]


def _product(factors) -> Array | int:
    """The product of arrays that broadcast together, grown only as far as the factors need (a grid of
    candidates stays in its small per-loop shapes until the factors meet)."""
    return functools.reduce(operator.mul, factors, 1)


def _operand_words(layer: Layer, dims: Sequence[str], tiles: Sequence[Array], op: str, position: int
                   ) -> tuple[Array | int, Array | int]:
    """(words of the block sequence, largest block) of `op`'s buffer below the first `position` loops."""
    above = list(range(position))
    plain = {}
    for d in DIMS:
        ks = [k for k in above if dims[k] == d]
        plain[d] = _PlainAxis(layer.dim_size(d), ks, [tiles[k] for k in ks])
    if op == "input":
        axes: dict[str, _PlainAxis | _SpatialAxis] = {d: plain[d] for d in ("N", "G", "C")}
        for axis, pair in SPATIAL_AXES.items():
            loops = [(k, dims[k], tiles[k]) for k in above if dims[k] in pair]
            axes[axis] = _SpatialAxis(layer, axis, loops, [-1, *above])
    else:
        keys = ("G", "K", "C", "FY", "FX") if op == "weight" else ("N", "G", "K", "OY", "OX")
        axes = {d: plain[d] for d in keys}
    total = _product(a.first() for a in axes.values())
    for j in above:
        dim = dims[j]
        owner = axis_of(op, dim)
        mult = _product(plain[e].ranges(plain[e].depth_before(j)) for e in DIMS
                        if axis_of(op, e) is None and e != dim)
        fs, is_ = [], []
        for key, a in axes.items():
            f, i = a.owned_split(j) if key == owner else a.split(j)
            fs.append(f)
            is_.append(i)
        step = _product(fs) - _product(is_)
        if owner is None:
            p = plain[dim]
            k = p.positions.index(j)
            step = step * (p.ranges(k + 1) - p.ranges(k))
        total = total + mult * step
    return total, _product(a.max_size() for a in axes.values())


def evaluate_nest_many(layer: Layer, structure: NestStructure, tiles: Sequence[Array | int],
                       hierarchy: Hierarchy, levels: Sequence[str] | None = None) -> NestWordsMany:
    """Words per boundary and buffer words per level for every candidate: `tiles[k]` are the tile sizes of
    loop k (arrays broadcast together). Candidates must be valid nests (each tile at most the previous
    tile of its dimension); use `evaluate_nest` for one nest with every check and a DMA granularity.
    `levels` limits the work to those levels (a level's figures depend on its own buffers only), and
    `structure.buffers` need only name them."""
    if len(tiles) != len(structure.dims):
        raise ConvschedError(f"{len(tiles)} tile arrays for {len(structure.dims)} loops; give one per loop")
    arrays = [np.asarray(t, dtype=np.int64) for t in tiles]
    shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
    reads: dict[str, dict[str, Array]] = {}
    writes: dict[str, dict[str, Array]] = {}
    bufw: dict[str, dict[str, Array]] = {}
    for lv in hierarchy.levels:
        if levels is not None and lv.name not in levels:
            continue
        reads[lv.name], writes[lv.name], bufw[lv.name] = {}, {}, {}
        for op in lv.holds:
            words, largest = _operand_words(layer, structure.dims, arrays, op, structure.buffers[lv.name][op])
            words = np.broadcast_to(np.asarray(words, dtype=np.int64), shape)
            if op == "output":
                reads[lv.name][op], writes[lv.name][op] = words - layer.output_words, words
            else:
                reads[lv.name][op], writes[lv.name][op] = words, np.broadcast_to(np.int64(0), shape)
            bufw[lv.name][op] = np.broadcast_to(np.asarray(largest, dtype=np.int64), shape)
    return NestWordsMany(reads, writes, bufw)


@dataclass(frozen=True)
class LevelBytesMany:
    """What the operands held at one level move across the boundary above it, per candidate: the bytes,
    those of them that leave main memory, and their energy."""

    bytes: Array
    main_bytes: Array
    energy: Array


def level_bytes_many(words: NestWordsMany, hierarchy: Hierarchy, layer: Layer, level: str) -> LevelBytesMany:
    """The bytes across the boundary above `level` (no DMA granularity): input and weights at their word
    size; outputs as partial sums written and read back at psum bits, plus one final write each at
    output bits (docs/semantics.md). Each operand's bytes count as main memory's when it comes from there."""
    bits = {"input": hierarchy.input_bits, "weight": hierarchy.weight_bits}
    total: Array | int = 0
    main: Array | int = 0
    energy: Array | float = 0.0
    for op in hierarchy.level(level).holds:
        if op == "output":
            spills = words.reads[level][op]
            b = 2 * words_to_bytes(spills, hierarchy.psum_bits) + words_to_bytes(layer.output_words,
                                                                                hierarchy.output_bits)
        else:
            b = words_to_bytes(words.reads[level][op], bits[op])
        src = source_of(hierarchy, level, op)
        if src == MAIN:
            main = main + b
        energy = energy + b * energy_weight(hierarchy, src)
        total = total + b
    return LevelBytesMany(np.asarray(total), np.asarray(main), np.asarray(energy, dtype=float))


def nest_bytes_many(words: NestWordsMany, hierarchy: Hierarchy, layer: Layer) -> tuple[Array, Array, dict[str, Array]]:
    """(main-memory bytes, energy, bytes per boundary) of every candidate (no DMA granularity)."""
    parts = {lv: level_bytes_many(words, hierarchy, layer, lv) for lv in hierarchy.names}
    main = sum(p.main_bytes for p in parts.values())
    energy = sum(p.energy for p in parts.values())
    return main, energy, {lv: p.bytes for lv, p in parts.items()}


def buffer_bytes_many(words: NestWordsMany, hierarchy: Hierarchy) -> dict[str, Array]:
    """On-chip bytes per level (the sum over its operands, doubled where it double-buffers)."""
    out = {}
    for lv in hierarchy.levels:
        if lv.name not in words.buffer_words:
            continue
        arch = hierarchy.level_arch(lv.name)
        out[lv.name] = sum(words_to_bytes(words.buffer_words[lv.name][op], arch.buffer_bits(op)) * arch.buffer_factor
                           for op in lv.holds)
    return out

