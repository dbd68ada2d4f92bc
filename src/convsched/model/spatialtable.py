"""The input row (or column) axis's per-split sums for every (output tile, filter tile) pair at once.

The vectorised model (`model/vectorised.py`) needs, for one placement pattern
of an input axis's two loops (output loop `o`, filter loop `f`), three numbers
per tile pair: the sum of first-block sizes, the sum of overlaps, and the
largest block. `SpatialTable` holds them per layer and axis. `axes.GridAxis`
computes them for one pair by walking its loop indices (`SpatialTable.
table_by_walking`, the tests' reference); `spatial_sums` computes the same
for all pairs with array operations. The blocks of a pair sit on a padded grid
of loop indices `(outer loop, inner loop)`, padded entries masked out:

* a loop outside the split ("pre", or absent: one index) fixes a prefix;
* for a split not owned by the axis, each prefix contributes the first live
  block of the loops inside the split and its overlap with the last one;
* for a split owned by one of the loops (`own`), each prefix walks that
  loop's indices, and each live index contributes its first block and the
  overlap with the previous live index's last block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal, Mapping, NamedTuple

import numpy as np

from ..core.dims import SPATIAL_AXES, ceil_div
from ..core.layer import Layer
from .axes import read_span, spatial_axis
from .closed_form import read_counts

#: Where a loop of an input axis sits relative to the split at loop j: below the buffer, outside
#: the split, the split loop itself, inside it.
Place = Literal["absent", "pre", "own", "suf"]


class Placement(NamedTuple):
    """The relative placement an input axis's table depends on (hashable: a table's key)."""

    output: Place          # the output-tile loop's place
    filter: Place          # the filter-tile loop's place
    owned: bool            # the split loop is one of the axis's own loops
    output_outer: bool     # both loops present and the output loop is the outer one


def placement(o_pos: int | None, f_pos: int | None, j: int, owned: bool) -> Placement:
    """Where an input axis's output and filter loops (at `o_pos`, `f_pos`; None: below the buffer)
    sit relative to the split at loop `j`."""
    def rel(p: int | None) -> Place:
        if p is None:
            return "absent"
        return "pre" if p < j else ("own" if p == j else "suf")
    return Placement(rel(o_pos), rel(f_pos), owned, o_pos is not None and f_pos is not None and o_pos < f_pos)


@dataclass(frozen=True, eq=False, slots=True)      # compared and hashed by identity: it holds an array
class TableFactor:
    """An input-axis table as a factor, gathered by the tiles of the loops above the buffer.

    "pair": `table[t_output, t_filter]` (both loops above the buffer);
    "one": `table[t]` of `dims[0]`'s tile (the other loop below the buffer, the table being
    constant along it).
    """

    kind: Literal["pair", "one"]
    table: np.ndarray
    dims: tuple[str, ...]          # (output dim, filter dim), or the one dim that gathers it

    def at(self, tiles: Mapping[str, np.ndarray | int]) -> np.ndarray:
        """The factor at the given tiles."""
        if self.kind == "pair":
            return self.table[tiles[self.dims[0]], tiles[self.dims[1]]]
        return self.table[tiles[self.dims[0]]]


class SpatialTable:
    """Per-split sums of the input row (or column) axis for every (output tile, filter tile) pair.

    Keyed by the relative placement of the axis's two loops and the split
    (`Placement`); each placement's tables are computed once, when first asked.
    """

    def __init__(self, layer: Layer, axis: str) -> None:
        self.axis = axis
        o, f = SPATIAL_AXES[axis]
        self.o_size, self.f_size = layer.dim_size(o), layer.dim_size(f)
        self.args = tuple(getattr(layer, n + axis) for n in ("S", "D", "P", "I"))
        self.count_below = read_counts(layer, axis)
        # finitely many keys each: by placement, and by the loop positions that give it
        self._tables: dict[Placement, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._at: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._factors: dict[tuple, tuple[TableFactor | int, ...]] = {}

    def table(self, o_pos: int | None, f_pos: int | None, j: int, owned: bool
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ΣF, ΣI, max) arrays of shape (o_size+1, f_size+1) indexed by tile sizes, for the output
        loop at `o_pos` and the filter loop at `f_pos` (None: below the buffer) and the split at loop
        `j` (-1: the first block), `owned` when the split loop is one of the two."""
        hit = self._at.get((o_pos, f_pos, j, owned))
        if hit is None:
            key = placement(o_pos, f_pos, j, owned)
            hit = self._tables.get(key)
            if hit is None:
                s, d, p, i = self.args
                hit = self._tables[key] = spatial_sums(self.o_size, self.f_size, s, d, p, i, self.count_below,
                                                       key.output, key.filter, key.output_outer)
            self._at[(o_pos, f_pos, j, owned)] = hit
        return hit

    def factors(self, axis: str, o_pos: int | None, f_pos: int | None, j: int, owned: bool
                ) -> tuple[TableFactor | int, TableFactor | int, TableFactor | int]:
        """`table`'s three arrays as factors of a product over tile candidates, gathered by the
        tiles of `axis`'s loops (a square layer's two axes share one table).

        A table is constant along a loop below the buffer (position None), so
        it is gathered only by the tiles of the loops above it; with neither it
        is a constant.
        """
        key = (axis, o_pos, f_pos, j, owned)
        hit = self._factors.get(key)
        if hit is None:
            o, f = SPATIAL_AXES[axis]
            hit = self._factors[key] = tuple(
                _as_factor(tab, o, f, o_pos is not None, f_pos is not None, self.o_size, self.f_size)
                for tab in self.table(o_pos, f_pos, j, owned))
        return hit

    def table_by_walking(self, o_pos: int | None, f_pos: int | None, j: int, owned: bool
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`table` computed pair by pair with the scalar `axes.GridAxis` (the reference for the tests)."""
        key = placement(o_pos, f_pos, j, owned)
        # Canonical loop positions with the same relative pattern: the split sits
        # at 3 ('own' loops at 3 too); 'pre' loops at 0/1, 'suf' loops at 4/5.
        slots = {"absent": None, "pre": 0, "own": 3, "suf": 4}
        co, cf = slots[key.output], slots[key.filter]
        if co is not None and co == cf:          # both outside or both inside the split
            co, cf = (co, co + 1) if key.output_outer else (co + 1, co)
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


def _as_factor(tab: np.ndarray, o: str, f: str, o_above: bool, f_above: bool, o_size: int, f_size: int
               ) -> TableFactor | int:
    """`tab` gathered by the output and filter tiles that are above the buffer (a constant if neither)."""
    if o_above and f_above:
        return TableFactor("pair", tab, (o, f))
    if o_above:
        return TableFactor("one", np.ascontiguousarray(tab[:, f_size]), (o,))
    if f_above:
        return TableFactor("one", np.ascontiguousarray(tab[o_size, :]), (f,))
    return int(tab[o_size, f_size])


_RANK = {"pre": 0, "absent": 0, "own": 1, "suf": 2}
_CHUNK = 1 << 21            # padded grid entries per step (memory: a few int64 arrays of this size)


def _tile_grid(size: int, tiles: np.ndarray, present: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, valid) per tile value and loop index; an absent loop has one block, the whole range."""
    if not present:
        return np.zeros((1, 1), np.int64), np.full((1, 1), size, np.int64), np.ones((1, 1), bool)
    n_max = ceil_div(size, int(tiles.min()))
    idx = np.arange(n_max)
    start = tiles[:, None] * idx[None, :]
    valid = start < size
    return start, np.minimum(start + tiles[:, None], size), valid


def spatial_sums(o_size: int, f_size: int, stride: int, dilation: int, pad: int, in_size: int,
                 count_below: np.ndarray, rel_o: Place, rel_f: Place, o_outer: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ΣF, ΣI, max) of shape (o_size+1, f_size+1), indexed by (output tile, filter tile).

    `rel_o`, `rel_f`: each loop's place relative to the split: "absent" (below
    the buffer), "pre" (outside it), "own" (the split loop itself) or "suf"
    (inside it); `o_outer` orders two loops of the same place.
    """
    F = np.zeros((o_size + 1, f_size + 1), dtype=np.int64)
    I = np.zeros_like(F)
    M = np.zeros_like(F)
    o_present, f_present = rel_o != "absent", rel_f != "absent"
    to_all = np.arange(1, o_size + 1) if o_present else np.array([o_size])
    tf_all = np.arange(1, f_size + 1) if f_present else np.array([f_size])
    f0, f1, vf = _tile_grid(f_size, tf_all, f_present)
    # outer loop first: by place, then (same place) by o_outer
    o_first = (_RANK[rel_o], 0 if o_outer else 1) <= (_RANK[rel_f], 1 if o_outer else 0)
    kinds = (rel_o, rel_f) if o_first else (rel_f, rel_o)
    kinds = tuple("pre" if k == "absent" else k for k in kinds)
    cnt = count_below
    for to in _chunks(to_all, o_size, f0.size):
        o0, o1, vo = _tile_grid(o_size, to, o_present)
        lo, hi = read_span(o0[:, None, :, None], o1[:, None, :, None], f0[None, :, None, :],
                           f1[None, :, None, :], stride, dilation, pad, in_size)
        valid = vo[:, None, :, None] & vf[None, :, None, :]
        size = np.where(valid & (hi > lo), cnt[np.maximum(hi, lo)] - cnt[lo], 0)
        live = size > 0
        if not o_first:        # grid axes in loop order: (outer, inner)
            lo, hi, size, live = (np.swapaxes(a, 2, 3) for a in (lo, hi, size, live))
        fs, is_ = _sums(kinds, lo, hi, size, live, cnt)
        rows = to if o_present else np.array([o_size])
        cols = tf_all
        F[np.ix_(rows, cols)] = fs
        I[np.ix_(rows, cols)] = is_
        M[np.ix_(rows, cols)] = size.max(axis=(2, 3))
    if not o_present:
        F[:, :], I[:, :], M[:, :] = F[o_size], I[o_size], M[o_size]
    if not f_present:
        F[:, :], I[:, :], M[:, :] = F[:, f_size:f_size + 1], I[:, f_size:f_size + 1], M[:, f_size:f_size + 1]
    return F, I, M


def _chunks(tiles: np.ndarray, size: int, per_block: int) -> Iterator[np.ndarray]:
    """Output tiles in runs whose trip counts are within a factor of two (little padding), bounded in size."""
    start = 0
    while start < len(tiles):
        t0 = int(tiles[start])
        trips = ceil_div(size, t0)
        end = start + 1
        while (end < len(tiles) and int(tiles[end]) < 2 * t0
               and (end - start + 1) * trips * per_block <= _CHUNK):
            end += 1
        yield tiles[start:end]
        start = end


def _inter(lo_a: np.ndarray, hi_a: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Elements (counted by the prefix sums `cnt`) in the overlap of [lo_a, hi_a) and [lo_b, hi_b)."""
    lo, hi = np.maximum(lo_a, lo_b), np.minimum(hi_a, hi_b)
    return np.where(hi > lo, cnt[np.maximum(hi, lo)] - cnt[lo], 0)


def _first_last(live: np.ndarray, *arrays: np.ndarray, axis: int
                ) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Per line along `axis`: any live, and each array at the first and at the last live entry."""
    n = live.shape[axis]
    any_live = live.any(axis=axis)
    first = np.expand_dims(np.argmax(live, axis=axis), axis)
    last = np.expand_dims(n - 1 - np.argmax(np.flip(live, axis=axis), axis=axis), axis)
    at = lambda a, i: np.take_along_axis(a, i, axis=axis).squeeze(axis)
    return any_live, [(at(a, first), at(a, last)) for a in arrays]


def _sums(kinds: tuple[str, str], lo: np.ndarray, hi: np.ndarray, size: np.ndarray, live: np.ndarray,
          cnt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ΣF and ΣI over the blocks' (outer, inner) grid (axes 2, 3) for each tile pair (axes 0, 1)."""
    outer, inner = kinds
    if (outer, inner) == ("pre", "pre"):                 # every live block is its own first and last
        return size.sum(axis=(2, 3)), size.sum(axis=(2, 3))
    if (outer, inner) == ("pre", "suf"):                 # per outer index: first/last live inner block
        any_live, [(lo_a, lo_b), (hi_a, hi_b), (s_a, _)] = _first_last(live, lo, hi, size, axis=3)
        ov = _inter(lo_a, hi_a, lo_b, hi_b, cnt)
        return np.where(any_live, s_a, 0).sum(axis=2), np.where(any_live, ov, 0).sum(axis=2)
    if (outer, inner) == ("suf", "suf"):                 # one sweep: first/last live block in loop order
        shp = lo.shape[:2] + (-1,)
        any_live, [(lo_a, lo_b), (hi_a, hi_b), (s_a, _)] = _first_last(
            live.reshape(shp), lo.reshape(shp), hi.reshape(shp), size.reshape(shp), axis=2)
        ov = _inter(lo_a, hi_a, lo_b, hi_b, cnt)
        return np.where(any_live, s_a, 0), np.where(any_live, ov, 0)
    if (outer, inner) == ("pre", "own"):                 # per outer index, consecutive live own-loop blocks
        any_live, firsts, lasts = live, (lo, hi, size), (lo, hi)
        l_axis = 3
    elif (outer, inner) == ("own", "suf"):               # own loop outer: first/last inner block per index
        any_live, [(lo_a, lo_b), (hi_a, hi_b), (s_a, _)] = _first_last(live, lo, hi, size, axis=3)
        firsts, lasts = (lo_a, hi_a, s_a), (lo_b, hi_b)
        l_axis = 2
    else:                                                # pragma: no cover - placements never built
        raise ValueError(f"no table for loop places {kinds}")
    n = any_live.shape[l_axis]
    shape = [1] * any_live.ndim
    shape[l_axis] = n
    idx = np.where(any_live, np.arange(n).reshape(shape), -1)
    seen = np.maximum.accumulate(idx, axis=l_axis)
    prev = np.concatenate([np.full_like(np.take(seen, [0], axis=l_axis), -1),
                           np.take(seen, np.arange(n - 1), axis=l_axis)], axis=l_axis)
    has_prev = any_live & (prev >= 0)
    p = np.maximum(prev, 0)
    lo_p = np.take_along_axis(lasts[0], p, axis=l_axis)
    hi_p = np.take_along_axis(lasts[1], p, axis=l_axis)
    ov = _inter(firsts[0], firsts[1], lo_p, hi_p, cnt)
    axes = tuple(range(2, any_live.ndim))
    return np.where(has_prev, firsts[2], 0).sum(axis=axes), np.where(has_prev, ov, 0).sum(axis=axes)
