"""The level-segmented space over a memory hierarchy (docs/multilevel.md), and its exhaustive optimum.

A nest of the space is one segment of loops per level, outermost first; a segment has at most one loop
per dimension, in any order, with any tile up to the dimension's tile in the segments above; each
operand's buffer at level m sits inside or at either end of segment m. With one level this is the
single-level optimizer's space.

`exhaustive_optimum` enumerates all of it: every order of every subset of the dimensions per segment,
every tile, every buffer position. It is the reference the multi-level optimizer is tested against, for
tiny layers only. Its one shortcut is exact: a level's traffic and capacity depend on its own buffer
positions only, and the objectives are sums over levels compared in an order that addition preserves
(lexicographic vectors, or energy first), so the best positions of each level are chosen on their own
for every tile candidate.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from ..core.arch import OPERANDS, words_to_bytes
from ..core.errors import ConvschedError
from ..core.hierarchy import Hierarchy
from ..core.layer import Layer
from ..core.nest import Loop, Nest
from ..model.nest_model import evaluate_nest
from ..model.nest_traffic import NestTraffic
from ..model.nest_vectorised import NestStructure, NestWordsMany, evaluate_nest_many, level_bytes_many
from .prune import capacity_mask

OBJECTIVES = ("bytes", "energy")


def segment_orders(dims: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """Every order of every subset of `dims` (the empty segment first): the loops one segment may have."""
    for n in range(len(dims) + 1):
        for subset in itertools.combinations(dims, n):
            yield from itertools.permutations(subset)


def level_fits_many(words: NestWordsMany, hierarchy: Hierarchy, level: str) -> np.ndarray:
    """Whether the buffers of `level` fit its capacity (shared, or per operand), per candidate."""
    arch = hierarchy.level_arch(level)
    held = words.buffer_words[level]
    need = {op: words_to_bytes(held[op], arch.buffer_bits(op)) * arch.buffer_factor if op in held else 0
            for op in OPERANDS}   # an operand the level does not hold takes none of it
    return capacity_mask(arch, need)


def _lex_less(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> np.ndarray:
    """Elementwise: vector `a` comes before vector `b` in lexicographic order."""
    less = np.zeros(np.broadcast_shapes(*(np.shape(x) for x in (*a, *b))), dtype=bool)
    equal = np.ones_like(less)
    for x, y in zip(a, b):
        less |= equal & (x < y)
        equal &= x == y
    return less


@dataclass(frozen=True)
class ExhaustiveResult:
    """The optimum of the whole segmented space, its traffic by the scalar model, and the work done."""

    nest: Nest
    traffic: NestTraffic
    key: tuple[float, ...]
    structures: int      # (segment orders, buffer positions) pairs evaluated
    candidates: int      # tile candidates over all segment orders


def objective_key(traffic: NestTraffic, objective: str) -> tuple[float, ...]:
    """What the optimizer minimises, compared lexicographically: `bytes` = main-memory bytes, then each
    boundary's bytes outermost first; `energy` = energy, then the same."""
    key = (float(traffic.total_bytes), *(float(b.bytes) for b in traffic.boundaries))
    return ((traffic.energy,) + key) if objective == "energy" else key


def exhaustive_optimum(layer: Layer, hierarchy: Hierarchy, objective: str = "bytes") -> ExhaustiveResult | None:
    """The best nest of the segmented space by enumerating all of it, or None when no nest fits.
    Exponential: for layers with a few small dimensions (tests, and benchmarks against the optimizer)."""
    if objective not in OBJECTIVES:
        raise ConvschedError(f"unknown objective {objective!r}; use {' or '.join(OBJECTIVES)}")
    if any(lv.dma_granularity for lv in hierarchy.levels):
        raise ConvschedError("the exhaustive search does not round DMA steps; give levels without dma_granularity")
    dims = [d for d in layer.dim_sizes if layer.dim_size(d) > 1]   # a loop over a size-1 dimension is no loop
    names = hierarchy.names
    width = 1 + len(names) + (objective == "energy")
    best_key: tuple[float, ...] | None = None
    best: tuple | None = None
    structures = candidates = 0
    for segments in itertools.product(*(list(segment_orders(dims)) for _ in names)):
        loops = [d for seg in segments for d in seg]
        # every tile of every loop, as a broadcast grid; a later loop of a dimension tiles the earlier one's tile
        grid = [np.arange(1, layer.dim_size(d) + 1).reshape([-1 if i == k else 1 for i in range(len(loops))])
                for k, d in enumerate(loops)]
        shape = np.broadcast_shapes(*(g.shape for g in grid)) if grid else ()
        valid = np.ones(shape, dtype=bool)
        for k, d in enumerate(loops):
            earlier = [j for j in range(k) if loops[j] == d]
            if earlier:
                valid &= grid[k] <= grid[earlier[-1]]
        candidates += int(valid.sum())
        total = [np.zeros(shape) for _ in range(width)]
        feasible = valid.copy()
        chosen: list[tuple[np.ndarray, list[dict[str, int]]]] = []
        start = 0
        for m, lv in enumerate(hierarchy.levels):
            end = start + len(segments[m])
            combos = [dict(zip(lv.holds, pos))
                      for pos in itertools.product(range(start, end + 1), repeat=len(lv.holds))]
            level_best: list[np.ndarray] | None = None
            level_arg = np.full(shape, -1)
            for c, positions in enumerate(combos):
                structures += 1
                words = evaluate_nest_many(layer, NestStructure(tuple(loops), {lv.name: positions}), grid,
                                           hierarchy, levels=[lv.name])
                part = level_bytes_many(words, hierarchy, layer, lv.name)
                vec = [np.zeros(shape) for _ in range(width)]
                off = 1 if objective == "energy" else 0
                if objective == "energy":
                    vec[0] = vec[0] + part.energy
                vec[off] = vec[off] + part.main_bytes
                vec[off + 1 + m] = vec[off + 1 + m] + part.bytes
                fits = np.broadcast_to(level_fits_many(words, hierarchy, lv.name), shape)
                if level_best is None:
                    level_best = [np.where(fits, v, np.inf) for v in vec]
                    level_arg = np.where(fits, c, -1)
                    continue
                better = fits & _lex_less(vec, level_best)
                level_best = [np.where(better, v, b) for v, b in zip(vec, level_best)]
                level_arg = np.where(better, c, level_arg)
            assert level_best is not None
            total = [t + b for t, b in zip(total, level_best)]
            feasible &= level_arg >= 0
            chosen.append((level_arg, combos))
            start = end
        if not feasible.any():
            continue
        flat = [np.where(feasible, t, np.inf).ravel() for t in total]
        i = int(np.lexsort(flat[::-1])[0])
        key = tuple(float(f[i]) for f in flat)
        if best_key is None or key < best_key:
            idx = np.unravel_index(i, shape) if shape else ()
            tiles = [int(np.broadcast_to(g, shape)[idx]) for g in grid]
            buffers = {lv.name: combos[int(np.broadcast_to(arg, shape)[idx])]
                       for lv, (arg, combos) in zip(hierarchy.levels, chosen)}
            best_key, best = key, (tuple(Loop(d, t) for d, t in zip(loops, tiles)), buffers)
    if best is None:
        return None
    nest = Nest(layer, best[0], best[1])
    traffic = evaluate_nest(nest, hierarchy)
    assert objective_key(traffic, objective) == best_key, (objective_key(traffic, objective), best_key)
    return ExhaustiveResult(nest, traffic, best_key, structures, candidates)
