"""What the optimizer searches: the user's constraints, each dimension's tile candidates, and the
context one structure (a loop order with buffer levels) is searched in.

The space is every schedule of the semantics (docs/optimizer.md): any order of
the tiled dimensions, any tile sizes, any buffer level per operand, within the
constraints. Tile candidates already apply rule 4 of docs/optimizer.md to N, G,
K and C (the smallest tile of each trip count); spatial tiles are all kept
here and reduced per structure (`search/gridaxes.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator, Literal, Mapping

import numpy as np

from ..core.arch import OPERANDS, Architecture
from ..core.dims import ceil_div
from ..core.errors import ConvschedError
from ..core.layer import DIMS, Layer

#: What a search minimises: all traffic, or the input and weight reads only.
Objective = Literal["bytes", "reads"]
OBJECTIVES: tuple[Objective, ...] = ("bytes", "reads")

#: The dimensions that index the input's rows and columns (their tiles change its halos).
SPATIAL_DIMS = frozenset({"OY", "OX", "FY", "FX"})


@dataclass(frozen=True)
class Constraints:
    """User restrictions of the search space.

    >>> from convsched import Architecture, Layer, optimize_layer
    >>> layer = Layer(K=16, C=8, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1)
    >>> keep = Constraints(untiled=frozenset({"FY", "FX"}), tile_max={"K": 8})
    >>> best = optimize_layer(layer, Architecture(capacity=1024), keep)
    >>> best.schedule.tiles["FY"], best.schedule.tiles["K"] <= 8, best.traffic.total_bytes
    (3, True, 2688)
    """

    orders: tuple[tuple[str, ...], ...] | None = None   # allowed loop orders (dims may stay untiled)
    untiled: frozenset[str] = frozenset()               # dimensions that must not be tiled
    tile_min: Mapping[str, int] = field(default_factory=dict)
    tile_max: Mapping[str, int] = field(default_factory=dict)
    buffers: Mapping[str, int] | None = None            # fixed buffer levels (with a fixed order)

    def check(self, layer: Layer) -> None:
        """Raise ConvschedError when the constraints contradict themselves or the layer."""
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

    def must_tile(self, layer: Layer, dim: str) -> bool:
        """True when the bounds exclude the untiled (full) tile of `dim`."""
        return self.tile_max.get(dim, layer.dim_size(dim)) < layer.dim_size(dim)


def check_searchable(arch: Architecture) -> None:
    """Refuse what the search does not cover: a DMA granularity (each step rounded up) is evaluated
    exactly by the model but not searched."""
    if arch.dma_granularity:
        raise ConvschedError("optimize does not search with a DMA granularity yet; drop dma_granularity "
                             "(evaluate and simulate support it)")


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
        n = ceil_div(size, t)
        if n == 1:
            break
        t = max(t + 1, ceil_div(size, n - 1))      # the smallest tile with at most n - 1 trips
    return np.array(out, dtype=np.int64)


def smallest_per_trip_count(size: int, tiles: np.ndarray) -> np.ndarray:
    """Of the given tiles, the smallest of each trip count (rule 4)."""
    if len(tiles) == 0:
        return tiles
    tiles = np.unique(tiles)                                    # sorted: trips non-increasing
    _, first = np.unique(ceil_div(size, tiles), return_index=True)  # first (smallest) tile of each count
    return tiles[np.sort(first)]


class TileCandidates(Mapping[str, np.ndarray]):
    """Each dimension's tile candidates (dim -> sorted array; empty: untiled) of one layer's search.

    Hashable by content, so that the caches of what is derived from the
    candidates (a structure's spatial pairs, the least buffers) can key on it.
    """

    def __init__(self, layer: Layer, tiles: Mapping[str, np.ndarray]) -> None:
        self.layer = layer
        self._tiles = {d: tiles[d] for d in DIMS}
        self.key = (layer, tuple(self._tiles[d].tobytes() for d in DIMS))     # bytes cache their hash
        self._hash = hash(self.key)
        self._smallest: dict[str, np.ndarray] = {}

    @classmethod
    def of(cls, layer: Layer, cons: Constraints) -> TileCandidates:
        """The candidates of every dimension of `layer` under `cons`."""
        return cls(layer, {d: tile_candidates(layer, d, cons) for d in DIMS})

    def __getitem__(self, dim: str) -> np.ndarray:
        return self._tiles[dim]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tiles)

    def __len__(self) -> int:
        return len(self._tiles)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, TileCandidates) and self.key == other.key)

    def smallest_per_trip(self, dim: str) -> np.ndarray:
        """`smallest_per_trip_count` of the dimension's candidates (rule 4; remembered)."""
        hit = self._smallest.get(dim)
        if hit is None:
            hit = self._smallest[dim] = smallest_per_trip_count(self.layer.dim_size(dim), self._tiles[dim])
        return hit

    def trip_range(self) -> tuple[dict[str, int], dict[str, int]]:
        """Fewest and most trips each tiled dimension's candidates give."""
        size = self.layer.dim_sizes
        n_min = {d: ceil_div(size[d], int(c.max())) for d, c in self._tiles.items() if len(c)}
        n_max = {d: ceil_div(size[d], int(c.min())) for d, c in self._tiles.items() if len(c)}
        return n_min, n_max


@dataclass(frozen=True, eq=False)
class StructureContext:
    """One structure (loop order, buffer levels) of one layer's search: what its every step reads.

    `arch` gives the word sizes, the double buffering and per-operand
    capacities; a shared capacity is not part of it (a sweep searches several
    at once, each a slot with its own byte limit). `rank` is the structure's
    position in the search order: of equal schedules, the earlier wins.
    """

    layer: Layer
    arch: Architecture
    objective: Objective
    order: tuple[str, ...]
    levels: Mapping[str, int]
    cands: TileCandidates
    rank: int = 0

    @cached_property
    def level_tuple(self) -> tuple[int, ...]:
        """The levels in OPERANDS order (the key of the model's plans)."""
        return tuple(self.levels[op] for op in OPERANDS)

    @cached_property
    def above_input(self) -> frozenset[str]:
        """The loops above the input buffer."""
        return frozenset(self.order[:self.levels["input"]])
