"""The machinery the earlier published models share: a tiled loop nest, per-operand
footprints and refetch counts, evaluated over arrays of tile sizes, and a small
exhaustive search of a model's own schedule space.

A baseline is a `LoopNestModel`: a rule for which schedules it can express
(`orders`, `levels`, `expresses`), a few switches that say how it counts
traffic (`predict`), and the schedules it picks (`choose`) or samples from
its space (`sample`). Every model here
counts words the way the cache-era analyses do:

* the footprint of an operand's block is its tile extent in every dimension
  whose loop is above the buffer, the whole tensor extent otherwise; an input
  tile of `t` output rows spans ``(t-1)*S + (F-1)*D + 1`` input rows (with
  ``halo=False``: ``t*S`` rows) and is never clipped to the image or thinned
  to the rows a stride or dilation reads (padding is counted as data);
* every tile is full size (``ceil`` trip counts times the full footprint);
* a block is refetched once per iteration of the loops above its buffer,
  except that loops the operand does not depend on and that sit below its
  innermost dependent loop keep it (``reuse=True``; Zhang et al. reload every
  tile: ``reuse=False``);
* ``overlap=True`` (Peemen et al. 2015, inter-tile reuse): when the
  innermost loop the input depends on is a spatial one, consecutive tiles
  load only their new rows (or columns);
* outputs: written once per refetch and read back for every refetch but the
  first (``psums="spill"``), written once per output tile with no read-back
  (``psums="writes"``) or written once in total (``psums="once"``), all
  at the output word size -- none of these models knows that partial sums are
  wider.

Word counts become bytes with the architecture's input, weight and output
word sizes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator, Literal, Mapping, Sequence

import numpy as np

from ...core.arch import OPERANDS, Architecture, words_to_bytes
from ...core.dims import ceil_div
from ...core.layer import Layer
from ...core.schedule import Schedule
from ...model.closed_form import RELEVANT
from ...model.vectorised import buffer_bytes_many, buffer_words_many

#: The dimensions the baselines tile (filters are never tiled by them).
CORE = ("K", "C", "OY", "OX")
OUTER = ("N", "G")

Levels = dict[str, int]
#: How a model counts the output's traffic (see the module docstring).
PsumRule = Literal["spill", "writes", "once"]
#: Which buffer levels a model allows: just below each operand's innermost loop, any, one shared level,
#: or Zhang et al.'s (input and weights one tile, the output below its innermost loop).
LevelRule = Literal["innermost", "free", "shared", "zhang"]


@dataclass(frozen=True)
class Prediction:
    """A model's predicted traffic in bytes (and words) per operand."""

    input: int
    weight: int
    output: int          # read-backs + writes
    words: int

    @property
    def total(self) -> int:
        return self.input + self.weight + self.output


@dataclass(frozen=True)
class LoopNestModel:
    """One earlier model: what it can express and how it counts."""

    name: str
    citation: str
    reuse: bool = True          # irrelevant loops below the innermost relevant one keep the block
    overlap: bool = False       # inter-tile (halo) reuse along the innermost relevant spatial loop
    halo: bool = True           # input tiles include the (F-1)*D halo
    psums: PsumRule = "spill"
    level_rule: LevelRule = "innermost"
    fixed_order: tuple[str, ...] | None = None
    tile_limit: int = 10        # tile values tried per dimension by `choose` and `sample` (`tile_values`)

    # ---- the space of schedules ---------------------------------------------
    def orders(self, layer: Layer) -> list[tuple[str, ...]]:
        """Loop orders of the space: N, G outermost, then the tiled core dimensions."""
        outer = tuple(d for d in OUTER if layer.dim_size(d) > 1)
        core = [d for d in CORE if layer.dim_size(d) > 1]
        if self.fixed_order is not None:
            return [outer + tuple(d for d in self.fixed_order if d in core)]
        return [outer + p for p in itertools.permutations(core)]

    def levels(self, order: Sequence[str]) -> list[Levels]:
        """Buffer levels the model allows for one order."""
        L = len(order)

        def innermost(op: str) -> int:
            idx = [j + 1 for j, d in enumerate(order) if d in RELEVANT[op]]
            return max(idx) if idx else 0

        if self.level_rule == "zhang":
            return [{"input": L, "weight": L, "output": innermost("output")}]
        if self.level_rule == "innermost":
            return [{op: innermost(op) for op in OPERANDS}]
        if self.level_rule == "shared":
            return [{op: b for op in OPERANDS} for b in range(L + 1)]
        choices = [[0] + [j + 1 for j, d in enumerate(order) if d in RELEVANT[op]] for op in OPERANDS]
        return [dict(zip(OPERANDS, c)) for c in itertools.product(*choices) if L == 0 or max(c) == L]

    def expresses(self, schedule: Schedule) -> bool:
        """True when `schedule` is in this model's space (its order, buffer rule, untiled filters)."""
        if any(d in schedule.order for d in ("FY", "FX")):
            return False
        order = tuple(schedule.order)
        core = tuple(d for d in order if d in CORE)
        outer = tuple(d for d in order if d in OUTER)
        if order != outer + core or outer != tuple(d for d in OUTER if d in outer):
            return False
        if self.fixed_order is not None and core != tuple(d for d in self.fixed_order if d in core):
            return False
        return dict(schedule.buffers) in self.levels(order)

    # ---- the model's prediction --------------------------------------------
    def predict_many(self, layer: Layer, order: Sequence[str], levels: Mapping[str, int],
                     tiles: Mapping[str, np.ndarray], arch: Architecture) -> dict[str, np.ndarray]:
        """Predicted words and bytes per operand over arrays of tiles (broadcast together)."""
        size = {d: layer.dim_size(d) for d in ("N", "G", "K", "C", "OY", "OX")}
        t = {d: (np.asarray(tiles[d], dtype=np.int64) if d in order else np.int64(size[d])) for d in size}
        n = {d: ceil_div(size[d], t[d]) for d in size}
        words: dict[str, np.ndarray] = {}
        for op in OPERANDS:
            b = levels[op]
            above = order[:b]
            ext = {d: (t[d] if d in above else np.int64(size[d])) for d in size}
            if op == "input":
                rows = self._rows(layer, "Y", ext["OY"], "OY" in above)
                cols = self._rows(layer, "X", ext["OX"], "OX" in above)
                fp = ext["N"] * ext["G"] * ext["C"] * rows * cols
            elif op == "weight":
                fp = ext["G"] * ext["K"] * ext["C"] * layer.FY * layer.FX
            else:
                fp = ext["N"] * ext["G"] * ext["K"] * ext["OY"] * ext["OX"]
            rel = [j for j, d in enumerate(above) if d in RELEVANT[op]]
            last = max(rel) if rel else -1
            count = np.int64(1)
            for j, d in enumerate(above):
                if not self.reuse or j <= last:
                    count = count * n[d]
            total = count * fp
            if op == "input" and self.overlap and last >= 0 and above[last] in ("OY", "OX"):
                d = above[last]
                axis = d[1]
                full = rows if axis == "Y" else cols
                step = np.minimum(full, t[d] * getattr(layer, "S" + axis))
                saved = (full - step) * (fp // np.maximum(full, 1))
                total = total - (count - count // n[d]) * saved
            words[op] = total
        O = np.int64(layer.output_words)
        if self.psums == "once":
            out_words = O + 0 * words["output"]
        elif self.psums == "writes":
            out_words = words["output"]
        else:
            out_words = 2 * words["output"] - O
        res = {"input_words": words["input"], "weight_words": words["weight"], "output_words": out_words}
        res["input"] = words_to_bytes(np.asarray(words["input"], dtype=np.int64), arch.input_bits)
        res["weight"] = words_to_bytes(np.asarray(words["weight"], dtype=np.int64), arch.weight_bits)
        res["output"] = words_to_bytes(np.asarray(out_words, dtype=np.int64), arch.output_bits)
        res["total"] = res["input"] + res["weight"] + res["output"]
        res["words"] = words["input"] + words["weight"] + out_words
        return res

    def _rows(self, layer: Layer, axis: str, t: np.ndarray, tiled: bool) -> np.ndarray:
        """Input rows (or columns) of a tile of `t` output rows, as the model counts them."""
        f, s, d, i = (getattr(layer, n + axis) for n in ("F", "S", "D", "I"))
        if not tiled:
            return np.int64(i)
        t = np.asarray(t, dtype=np.int64)
        return (t - 1) * s + (f - 1) * d + 1 if self.halo else t * s

    def choose(self, layer: Layer, arch: Architecture) -> Schedule | None:
        """The schedule the model picks: least predicted bytes among its schedules that really fit
        (exact buffer sizes), ties to shorter loop orders; None when none fits."""
        best = None
        for order, levels, tiles in candidates(self, layer, self.tile_limit):
            p = self.predict_many(layer, order, levels, tiles, arch)
            bufw = buffer_words_many(layer, order, levels, tiles)
            need = buffer_bytes_many(bufw, arch)
            if arch.capacity is not None:
                fits = sum(need.values()) <= arch.capacity
            elif arch.capacity_per_operand is not None:
                fits = np.logical_and.reduce([need[op] <= c for op, c in zip(OPERANDS, arch.capacity_per_operand)])
            else:
                fits = np.ones(1, dtype=bool)
            shape = np.broadcast_shapes(np.shape(p["total"]), np.shape(fits), *(np.shape(v) for v in tiles.values()))
            fits = np.broadcast_to(fits, shape)
            if not fits.any():
                continue
            total = np.broadcast_to(p["total"], shape)
            idx = np.flatnonzero(fits)
            k = idx[np.argmin(total.ravel()[idx])]
            key = (int(total.ravel()[k]), len(order))
            if best is None or key < best[0]:
                chosen = {d: int(np.broadcast_to(tiles[d], shape).ravel()[k]) for d in order}
                best = (key, order, levels, chosen)
        if best is None:
            return None
        _, order, levels, chosen = best
        return Schedule(layer, order, chosen, levels)

    def sample(self, layer: Layer, arch: Architecture, count: int, seed: int = 0) -> list[Schedule]:
        """Up to `count` schedules of the model's space that really fit, drawn at random (reproducibly)."""
        rng = np.random.default_rng(seed)
        pool: list[tuple[tuple[str, ...], Levels, dict[str, int]]] = []
        for order, levels, tiles in candidates(self, layer, self.tile_limit):
            bufw = buffer_words_many(layer, order, levels, tiles)
            need = sum(buffer_bytes_many(bufw, arch).values())
            size = max([len(v) for v in tiles.values()] + [1])
            fits = np.broadcast_to(need <= arch.capacity if arch.capacity is not None else True, (size,))
            idx = np.flatnonzero(fits)
            if len(idx) == 0:
                continue
            for k in rng.choice(idx, size=min(len(idx), max(1, count // 4)), replace=False):
                pool.append((order, levels, {d: int(tiles[d][k]) for d in order}))
        if not pool:
            return []
        picks = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
        return [Schedule(layer, pool[i][0], pool[i][2], pool[i][1]) for i in sorted(picks)]

    def predict(self, schedule: Schedule, arch: Architecture) -> Prediction:
        """Predicted traffic of one schedule (it should be one `expresses` accepts)."""
        tiles = {d: np.int64(schedule.tiles[d]) for d in schedule.order}
        r = self.predict_many(schedule.layer, schedule.order, schedule.buffers, tiles, arch)
        return Prediction(int(r["input"]), int(r["weight"]), int(r["output"]), int(r["words"]))


# ---------------------------------------------------------------------------
# a small exhaustive search of a model's space


def tile_values(D: int, limit: int = 10) -> np.ndarray:
    """Candidate tiles of a dimension: the smallest tile of up to `limit` trip counts (1 .. D, log-spaced)."""
    if D <= 1:
        return np.array([1], dtype=np.int64)
    trips = np.unique(np.round(np.geomspace(1, D, num=min(limit, D))).astype(np.int64))
    return np.unique(ceil_div(D, trips)).astype(np.int64)


def candidates(model: LoopNestModel, layer: Layer, limit: int = 10
               ) -> Iterator[tuple[tuple[str, ...], Levels, dict[str, np.ndarray]]]:
    """(order, levels, tile grid) for every order and level choice of the model's space."""
    for order in model.orders(layer):
        vals = [tile_values(layer.dim_size(d), limit) if d in CORE else np.array([1], dtype=np.int64)
                for d in order]
        grids = np.meshgrid(*vals, indexing="ij") if vals else []
        tiles = {d: g.ravel() for d, g in zip(order, grids)}
        for levels in model.levels(order):
            yield order, levels, tiles
