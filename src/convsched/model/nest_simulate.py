"""The walking simulator over a memory hierarchy: the ground truth of the multi-level model.

It walks every tile of a loop nest in order. Every level keeps a real array per operand it holds,
with exactly the elements of its current block (everything else NaN). When a level's block changes,
it copies in from its outer holder only the elements it lacks (the outer holder must have them:
checked), outer levels first. Output blocks form runs per level: at a change the runs end innermost
first, each writing its partial sums to its outer holder, then new runs start outermost first, a
block this level saw before first reading its partial sums back from the outer holder. Each tile's
MACs read only the innermost buffers, and the output assembled in main memory is compared with the
reference convolution. Sets are boolean masks, loads are `new & ~resident`: it counts, it does not
use the model's formulas (docs/multilevel.md states the rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.arch import OPERANDS, bits_to_bytes
from ..core.errors import ConvschedError
from ..core.hierarchy import Hierarchy
from ..core.layer import Layer
from ..core.limits import MAX_SIM_TILES, check_seed
from ..core.nest import Nest
from .closed_form import RELEVANT, OperandTraffic
from .nest_traffic import MAIN, BoundaryTraffic, NestTraffic, nest_energy, source_of
from .simulate import accumulate_tile, layer_read_mask, random_operands, read_span_mask, reference_conv


@dataclass(frozen=True)
class NestSimResult:
    traffic: NestTraffic      # measured, same structure as the model's
    output_ok: bool
    max_abs_error: float
    missing_reads: int        # MAC operands that were not in an innermost buffer (must be 0)
    missing_loads: int        # elements a level loaded that its outer holder did not have (must be 0)
    tiles: int


@dataclass
class _Buffer:
    """One level's buffer of one operand."""

    values: np.ndarray
    resident: np.ndarray
    key: tuple | None = None
    peak: int = 0
    seen: set = field(default_factory=set)


@dataclass
class _Counts:
    """Steps across one boundary for one operand: loads (input, weight) or read-backs and writes (output)."""

    loads: list[int] = field(default_factory=list)
    readbacks: list[int] = field(default_factory=list)
    writes: list[tuple[tuple, int]] = field(default_factory=list)   # (block key, words)


class _Walk:
    def __init__(self, nest: Nest, hierarchy: Hierarchy, x: np.ndarray, w: np.ndarray) -> None:
        self.nest, self.h, self.L = nest, hierarchy, nest.layer
        L = self.L
        self.main = {"input": x, "weight": w, "output": np.zeros((L.N, L.G, L.Kg, L.OY, L.OX))}
        self.read_y = layer_read_mask(L.OY, L.FY, L.SY, L.DY, L.PY, L.IY)
        self.read_x = layer_read_mask(L.OX, L.FX, L.SX, L.DX, L.PX, L.IX)
        self.holders = {op: hierarchy.holders(op) for op in OPERANDS}
        self.buf = {(op, lv): _Buffer(np.full(self.main[op].shape, np.nan), np.zeros(self.main[op].shape, bool))
                    for op in OPERANDS for lv in self.holders[op]}
        self.counts = {(op, lv): _Counts() for op in OPERANDS for lv in self.holders[op]}
        self.missing_reads = 0
        self.missing_loads = 0

    # ---- blocks ----------------------------------------------------------------
    def block(self, op: str, r: dict[str, tuple[int, int]]) -> tuple[tuple, np.ndarray]:
        L = self.L
        key = tuple(r[d] for d in sorted(RELEVANT[op]))
        m = np.zeros(self.main[op].shape, dtype=bool)
        sl = lambda d: slice(*r[d])  # noqa: E731
        if op == "input":
            rows = read_span_mask(r["OY"], r["FY"], L.SY, L.DY, L.PY, L.IY) & self.read_y
            cols = read_span_mask(r["OX"], r["FX"], L.SX, L.DX, L.PX, L.IX) & self.read_x
            m[sl("N"), sl("G"), sl("C")] = rows[:, None] & cols[None, :]
        elif op == "weight":
            m[sl("G"), sl("K"), sl("C"), sl("FY"), sl("FX")] = True
        else:
            m[sl("N"), sl("G"), sl("K"), sl("OY"), sl("OX")] = True
        return key, m

    def outer(self, op: str, lv: str) -> np.ndarray | _Buffer:
        src = source_of(self.h, lv, op)
        return self.main[op] if src == MAIN else self.buf[(op, src)]

    # ---- one tile ----------------------------------------------------------------
    def tile(self, depth_ranges: list[dict[str, tuple[int, int]]]) -> None:
        for op in ("input", "weight"):
            for lv in self.holders[op]:                       # outer levels first
                self.load(op, lv, depth_ranges[self.nest.position(lv, op)])
        self.visit_output(depth_ranges)
        self.compute(depth_ranges[-1])

    def load(self, op: str, lv: str, r: dict[str, tuple[int, int]]) -> None:
        b = self.buf[(op, lv)]
        key, mask = self.block(op, r)
        if key == b.key or not mask.any():   # unchanged, or wholly in the padding: nothing moves
            return
        new = mask & ~b.resident
        outer = self.outer(op, lv)
        if isinstance(outer, _Buffer):
            self.missing_loads += int((new & ~outer.resident).sum())
            src = outer.values
        else:
            src = outer
        b.values[~mask] = np.nan
        b.values[new] = src[new]
        b.resident, b.key = mask, key
        b.peak = max(b.peak, int(mask.sum()))
        self.counts[(op, lv)].loads.append(int(new.sum()))

    def visit_output(self, depth_ranges: list[dict[str, tuple[int, int]]]) -> None:
        levels = self.holders["output"]
        new = {lv: self.block("output", depth_ranges[self.nest.position(lv, "output")]) for lv in levels}
        changed = [lv for lv in levels if new[lv][0] != self.buf[("output", lv)].key]
        for lv in reversed(changed):                          # runs end innermost first
            self.flush(lv)
        for lv in changed:                                    # new runs start outermost first
            key, mask = new[lv]
            b = self.buf[("output", lv)]
            outer = self.outer("output", lv)
            b.values[:] = np.nan
            if key in b.seen:
                src = outer.values if isinstance(outer, _Buffer) else outer
                if isinstance(outer, _Buffer):
                    self.missing_loads += int((mask & ~outer.resident).sum())
                b.values[mask] = src[mask]
                self.counts[("output", lv)].readbacks.append(int(mask.sum()))
            else:
                b.values[mask] = 0.0
            b.seen.add(key)
            b.key, b.resident = key, mask
            b.peak = max(b.peak, int(mask.sum()))

    def flush(self, lv: str) -> None:
        b = self.buf[("output", lv)]
        if b.key is None:
            return
        outer = self.outer("output", lv)
        dst = outer.values if isinstance(outer, _Buffer) else outer
        if isinstance(outer, _Buffer):
            self.missing_loads += int((b.resident & ~outer.resident).sum())
        dst[b.resident] = b.values[b.resident]
        self.counts[("output", lv)].writes.append((b.key, int(b.resident.sum())))

    def compute(self, r: dict[str, tuple[int, int]]) -> None:
        """The tile's MACs from the innermost buffers only."""
        xb = self.buf[("input", self.holders["input"][-1])].values
        wb = self.buf[("weight", self.holders["weight"][-1])].values
        yb = self.buf[("output", self.holders["output"][-1])].values
        self.missing_reads += accumulate_tile(self.L, r, xb, wb, yb)

    def finish(self) -> None:
        for lv in reversed(self.holders["output"]):
            self.flush(lv)


def _walk_nest(nest: Nest, visit) -> int:
    """Call `visit(ranges at depth 0..len(loops))` at every tile, in loop order; the number of tiles."""
    L = nest.layer
    current = {d: (0, L.dim_size(d)) for d in ("N", "G", "K", "C", "OY", "OX", "FY", "FX")}
    stack = [dict(current)]
    tiles = 0

    def rec(k: int) -> None:
        nonlocal tiles
        if k == len(nest.loops):
            visit(stack)
            tiles += 1
            return
        lp = nest.loops[k]
        a, e = current[lp.dim]
        for s in range(a, e, lp.tile):
            current[lp.dim] = (s, min(s + lp.tile, e))
            stack.append(dict(current))
            rec(k + 1)
            stack.pop()
        current[lp.dim] = (a, e)

    rec(0)
    return tiles


def _kind_bytes(steps: list[int], bits: int, gran: int) -> int:
    """Bytes of one kind of step (loads, read-backs, partial-sum or final writes) across a boundary:
    without a DMA granularity the words are rounded up to whole bytes once, with one each step is
    rounded up to a multiple of it (docs/semantics.md)."""
    if not gran:
        return bits_to_bytes(sum(steps) * bits)
    return sum(-(-bits_to_bytes(n * bits) // gran) * gran for n in steps if n)


def simulate_nest(nest: Nest, hierarchy: Hierarchy, seed: int = 0, max_tiles: int = MAX_SIM_TILES) -> NestSimResult:
    """Walk every tile of `nest` over `hierarchy`, count every word across every boundary, check the output."""
    nest.check(hierarchy)
    check_seed(seed)
    if nest.n_tiles > max_tiles:
        raise ConvschedError(f"the nest has {nest.n_tiles:,} tiles, more than the simulator's limit of "
                             f"{max_tiles:,}; use larger tiles or a smaller layer")
    L: Layer = nest.layer
    x, w = random_operands(L, seed)
    walk = _Walk(nest, hierarchy, x, w)
    tiles = _walk_nest(nest, walk.tile)
    walk.finish()
    ref = reference_conv(L, x, w)
    err = float(np.max(np.abs(walk.main["output"] - ref))) if ref.size else 0.0
    traffic = _measured(nest, hierarchy, walk)
    ok = err == 0.0 and walk.missing_reads == 0 and walk.missing_loads == 0
    return NestSimResult(traffic, ok, err, walk.missing_reads, walk.missing_loads, tiles)


def _measured(nest: Nest, hierarchy: Hierarchy, walk: _Walk) -> NestTraffic:
    bits = {"input": hierarchy.input_bits, "weight": hierarchy.weight_bits}
    boundaries = []
    buffer_words: dict[str, dict[str, int]] = {}
    buffer_bytes: dict[str, dict[str, int]] = {}
    for lv in hierarchy.levels:
        arch = hierarchy.level_arch(lv.name)
        gran = lv.dma_granularity
        ops: dict[str, OperandTraffic] = {}
        for op in OPERANDS:
            if op not in lv.holds:
                ops[op] = OperandTraffic(0, 0, 0, 0)
                continue
            c = walk.counts[(op, lv.name)]
            if op in bits:
                ops[op] = OperandTraffic(sum(c.loads), 0, _kind_bytes(c.loads, bits[op], gran), 0)
                continue
            last = {}                                  # the last write of each block at this boundary is final
            for k, (key, _) in enumerate(c.writes):
                last[key] = k
            final = set(last.values())
            finals = [n for k, (_, n) in enumerate(c.writes) if k in final]
            spills = [n for k, (_, n) in enumerate(c.writes) if k not in final]
            write_b = _kind_bytes(finals, hierarchy.output_bits, gran) + _kind_bytes(spills, hierarchy.psum_bits, gran)
            ops[op] = OperandTraffic(sum(c.readbacks), sum(n for _, n in c.writes),
                                     _kind_bytes(c.readbacks, hierarchy.psum_bits, gran), write_b)
        sources = {op: source_of(hierarchy, lv.name, op) for op in OPERANDS}
        boundaries.append(BoundaryTraffic(lv.name, ops, sources))
        words = {op: walk.buf[(op, lv.name)].peak for op in lv.holds}
        full = {op: words.get(op, 0) for op in OPERANDS}
        buffer_words[lv.name] = words
        buffer_bytes[lv.name] = {op: b for op, b in arch.buffer_bytes(full).items() if op in lv.holds}
    bounds = tuple(boundaries)
    return NestTraffic(bounds, buffer_words, buffer_bytes, nest.layer.macs, nest_energy(hierarchy, bounds))
