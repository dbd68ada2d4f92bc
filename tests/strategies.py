"""Hypothesis strategies shared by the property tests of the model, the simulator and generated C."""

from __future__ import annotations

import math

from hypothesis import assume
from hypothesis import strategies as st

from convsched.core.arch import OPERANDS
from convsched.core.layer import DIMS, Layer
from convsched.core.schedule import Schedule

#: The simulator walks every tile; keep the walk short.
MAX_TILES = 400


@st.composite
def spatial(draw, axis: str) -> dict[str, int]:
    """O, F, S, D, P (and maybe I) of one spatial axis that make a valid layer."""
    f = draw(st.integers(1, 4))
    s = draw(st.integers(1, 3))
    d = draw(st.integers(1, 2))
    o = draw(st.integers(1, 8))
    span = (f - 1) * d + 1
    # padding from none to beyond the whole filter footprint
    p = draw(st.integers(0, span + 1))
    reach = (o - 1) * s + span - p          # one past the last input row read
    assume(reach >= 1)
    out = {"O" + axis: o, "F" + axis: f, "S" + axis: s, "D" + axis: d, "P" + axis: p}
    derived = reach - p
    # the input size: derived, or given (smaller: bottom padding; larger: rows no output reads)
    if derived < 1 or draw(st.booleans()):
        out["I" + axis] = draw(st.integers(1, reach + s - 1))
    return out


@st.composite
def gapped_spatial(draw, axis: str) -> dict[str, int]:
    """An axis whose reads leave gaps (stride or dilation > 1) with padding and a filter of 2+ taps."""
    f = draw(st.integers(2, 4))
    s, d = draw(st.sampled_from([(1, 2), (2, 1), (2, 2), (3, 1), (1, 3), (3, 2)]))
    o = draw(st.integers(1, 6))
    span = (f - 1) * d + 1
    p = draw(st.integers(1, span))
    reach = (o - 1) * s + span - p
    assume(reach >= 1)
    out = {"O" + axis: o, "F" + axis: f, "S" + axis: s, "D" + axis: d, "P" + axis: p}
    if reach - p < 1 or draw(st.booleans()):
        out["I" + axis] = draw(st.integers(1, reach + s - 1))
    return out


@st.composite
def gapped_schedules(draw, max_tiles: int = MAX_TILES) -> Schedule:
    """Schedules whose input window may end in the padding on a position the block skips.

    The case that the clipped-window rule got wrong (issue 14): a filter loop
    above the input buffer on an axis with a stride or dilation gap and
    padding. Drawn on purpose, since uniformly drawn schedules hit it rarely.
    """
    axes = draw(st.sampled_from(["Y", "X", "YX"]))
    fields = {"N": draw(st.integers(1, 2)), "K": draw(st.integers(1, 3)), "C": draw(st.integers(1, 2))}
    for a in "YX":
        fields.update(draw(gapped_spatial(a) if a in axes else spatial(a)))
    layer = Layer(**fields)
    must = [d for a in axes for d in ("F" + a, "O" + a)]
    rest = draw(st.permutations([d for d in DIMS if d not in must]))
    order = list(draw(st.permutations(must + list(rest[:draw(st.integers(0, 3))]))))
    tiles = {}
    n_tiles = 1
    for d in order:
        size = layer.dim_size(d)
        tiles[d] = draw(st.integers(1, size))
        n_tiles *= math.ceil(size / tiles[d])
    assume(n_tiles <= max_tiles)
    filter_pos = max(order.index("F" + a) for a in axes)
    buffers = {op: draw(st.integers(0, len(order))) for op in OPERANDS}
    buffers["input"] = draw(st.integers(filter_pos + 1, len(order)))
    return Schedule(layer, tuple(order), tiles, buffers)


@st.composite
def hierarchies(draw, max_levels: int = 3):
    """1-3 on-chip levels: word sizes, per-level double buffering and DMA granularity, and bypass
    (a level may hold only some operands; every operand is held somewhere)."""
    from convsched.core.hierarchy import Hierarchy, Level
    n = draw(st.integers(1, max_levels))
    holds = []
    for _ in range(n):
        ops = [op for op in OPERANDS if draw(st.integers(0, 3)) > 0]     # usually all three
        holds.append(ops or [draw(st.sampled_from(OPERANDS))])
    for op in OPERANDS:                                                 # every operand somewhere
        if not any(op in h for h in holds):
            holds[draw(st.integers(0, n - 1))].append(op)
    levels = tuple(Level(f"L{n - k}", double_buffer=draw(st.booleans()),
                         dma_granularity=draw(st.sampled_from([0, 0, 4, 16])), holds=tuple(holds[k]))
                   for k in range(n))
    word = st.sampled_from([1, 4, 8, 12, 16])
    return Hierarchy(levels, draw(word), draw(word), draw(st.sampled_from([8, 16, 24, 32])), draw(word))


@st.composite
def nests(draw, hierarchy, max_tiles: int = MAX_TILES, max_appearances: int = 3):
    """A layer and a loop nest over `hierarchy`: each dimension tiled by 0-3 loops (each tile within the
    previous one's), any order, and each operand's buffers at non-decreasing positions inward."""
    from convsched.core.nest import Loop, Nest
    kind = draw(st.sampled_from(["plain", "plain", "grouped", "depthwise"]))
    if kind == "depthwise":
        g = draw(st.integers(2, 3))
        k = c = g
    elif kind == "grouped":
        g = 2
        k, c = 2 * draw(st.integers(1, 2)), 2 * draw(st.integers(1, 2))
    else:
        g, k, c = 1, draw(st.integers(1, 6)), draw(st.integers(1, 5))
    fields = {"N": draw(st.integers(1, 2)), "G": g, "K": k, "C": c}
    for a in "YX":
        fields.update(draw(gapped_spatial(a) if draw(st.booleans()) else spatial(a)))
    layer = Layer(**fields)
    loops = []
    for d in DIMS:
        size = layer.dim_size(d)
        tile = size
        for _ in range(draw(st.integers(0, max_appearances if size > 1 else 0))):
            tile = draw(st.integers(1, tile))
            loops.append(Loop(d, tile))
    # an order that keeps each dimension's appearances in order: shuffle, then sort each dim's tiles
    perm = draw(st.permutations(range(len(loops))))
    slots = {d: [lp for lp in loops if lp.dim == d] for d in DIMS}
    ordered = []
    for i in perm:
        ordered.append(slots[loops[i].dim].pop(0))
    nest_loops = tuple(ordered)
    probe = Nest(layer, nest_loops, {"L": {}})
    assume(probe.n_tiles <= max_tiles)
    buffers = {lv.name: {} for lv in hierarchy.levels}
    for op in OPERANDS:
        pos = 0
        for name in hierarchy.holders(op):
            pos = draw(st.integers(pos, len(nest_loops)))
            buffers[name][op] = pos
    return Nest(layer, nest_loops, buffers)
