"""The walking simulator: the ground truth the model is checked against.

It walks every tile iteration in loop order. Each operand's buffer is a real
array holding exactly the elements of its current block (everything else is
NaN); moving to a new block copies in only the elements the buffer lacks and
drops the rest. The output buffer holds partial sums for the current block;
a run of equal blocks ends by writing it back, and a block seen before is
first read back. Every tile's MACs read operands from the buffers only (a
missing element would show up as NaN), and the layer output assembled in
main memory is compared with a direct reference convolution.

It counts, it does not compute formulas: sets are boolean masks over the
tensors, and a load is `new_block & ~resident`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterator, Mapping

import numpy as np

from ..core.arch import OPERANDS, Architecture, bits_to_bytes, step_bytes
from ..core.cache import BoundedCache
from ..core.dims import DIMS
from ..core.errors import ConvschedError
from ..core.layer import Layer
from ..core.limits import check_seed, check_simulation
from ..core.schedule import Schedule
from .closed_form import RELEVANT, OperandTraffic, Traffic


@dataclass(frozen=True)
class SimResult:
    """What the walk of one schedule measured: its traffic (the model's `Traffic`, counted word by
    word), the largest block of each operand, and whether the output equals the reference convolution.

    >>> from convsched import Layer, Schedule, simulate
    >>> layer = Layer(K=8, C=4, OY=6, OX=6, FY=3, FX=3, PY=1, PX=1)
    >>> s = Schedule(layer, ("K", "OY"), {"K": 4, "OY": 2}, {"input": 2, "weight": 1, "output": 2})
    >>> result = simulate(s)
    >>> result.output_ok, result.missing_reads, result.tiles
    (True, 0, 6)
    >>> result.peak_words
    {'input': 96, 'weight': 144, 'output': 48}
    """

    traffic: Traffic          # measured, same structure as the model's
    peak_words: dict[str, int]
    output_ok: bool
    max_abs_error: float
    missing_reads: int        # MAC operands that were not in a buffer (must be 0)
    tiles: int


def reference_conv(layer: Layer, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Direct convolution; x (N,G,Cg,IY,IX), w (G,Kg,Cg,FY,FX) -> y (N,G,Kg,OY,OX)."""
    L = layer
    pb_y = max(0, (L.OY - 1) * L.SY + (L.FY - 1) * L.DY + 1 - L.PY - L.IY)
    pb_x = max(0, (L.OX - 1) * L.SX + (L.FX - 1) * L.DX + 1 - L.PX - L.IX)
    xp = np.pad(x, ((0, 0), (0, 0), (0, 0), (L.PY, pb_y), (L.PX, pb_x)))
    y = np.zeros((L.N, L.G, L.Kg, L.OY, L.OX))
    for fy in range(L.FY):
        for fx in range(L.FX):
            r0, c0 = fy * L.DY, fx * L.DX
            patch = xp[:, :, :, r0:r0 + (L.OY - 1) * L.SY + 1:L.SY, c0:c0 + (L.OX - 1) * L.SX + 1:L.SX]
            y += np.einsum("ngcyx,gkc->ngkyx", patch, w[:, :, :, fy, fx])
    return y


def random_operands(layer: Layer, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Small random integers (exact in float64)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-8, 8, size=(layer.N, layer.G, layer.Cg, layer.IY, layer.IX)).astype(np.float64)
    w = rng.integers(-8, 8, size=(layer.G, layer.Kg, layer.Cg, layer.FY, layer.FX)).astype(np.float64)
    return x, w


#: Memory the walker may keep in block masks it has seen (a cache: beyond it, masks are rebuilt).
_MASK_CACHE_BYTES = 256 << 20
_MASK_CACHE_ENTRIES = 20_000


def accumulate_tile(layer: Layer, r: Mapping[str, tuple[int, int]], x: np.ndarray, w: np.ndarray, y: np.ndarray) -> int:
    """Add the MACs of the tile with ranges `r` into `y`, reading only the on-chip copies `x` and `w`
    (full-size arrays, NaN where an element is not held); padding is made as zeros, never read. Returns
    how many operand reads found no element in a buffer (0 for a correct walk)."""
    L = layer
    n, g, k, c = (slice(*r[d]) for d in ("N", "G", "K", "C"))
    oy, ox = np.arange(*r["OY"]), np.arange(*r["OX"])
    acc = np.zeros((r["N"][1] - r["N"][0], r["G"][1] - r["G"][0], r["K"][1] - r["K"][0], len(oy), len(ox)))
    missing = 0
    for fy in range(*r["FY"]):
        rows = oy * L.SY + fy * L.DY - L.PY
        rv = (rows >= 0) & (rows < L.IY)
        for fx in range(*r["FX"]):
            cols = ox * L.SX + fx * L.DX - L.PX
            cv = (cols >= 0) & (cols < L.IX)
            patch = np.zeros((acc.shape[0], acc.shape[1], r["C"][1] - r["C"][0], len(oy), len(ox)))
            sub = x[n, g, c][:, :, :, np.clip(rows, 0, L.IY - 1)][:, :, :, :, np.clip(cols, 0, L.IX - 1)]
            valid = rv[:, None] & cv[None, :]
            patch[..., valid] = sub[..., valid]
            wt = w[g, k, c, fy, fx]
            missing += int(np.isnan(patch).sum()) + int(np.isnan(wt).sum())
            acc += np.einsum("ngcyx,gkc->ngkyx", np.nan_to_num(patch), np.nan_to_num(wt))
    out = y[n, g, k, slice(*r["OY"]), slice(*r["OX"])]
    missing += int(np.isnan(out).sum())
    y[n, g, k, slice(*r["OY"]), slice(*r["OX"])] = out + acc
    return missing


def layer_read_mask(o: int, f: int, s: int, d: int, p: int, i: int) -> np.ndarray:
    """Positions (rows or columns, in [0, i)) some output of the layer reads: o outputs, f taps, stride s,
    dilation d, padding p."""
    used = np.zeros(i, dtype=bool)
    pos = (np.arange(o)[:, None] * s + np.arange(f)[None, :] * d - p).ravel()
    used[pos[(pos >= 0) & (pos < i)]] = True
    return used


def read_span_mask(o: tuple[int, int], f: tuple[int, int], s: int, d: int, p: int, i: int) -> np.ndarray:
    """Mask of the positions from the smallest to the largest one the block really reads.

    Computed from every (output, tap) pair of the block, not from the window's
    ends: an end in the padding must not pull in a position the block skips.
    """
    pos = (np.arange(*o)[:, None] * s + np.arange(*f)[None, :] * d - p).ravel()
    pos = pos[(pos >= 0) & (pos < i)]
    span = np.zeros(i, dtype=bool)
    if pos.size:
        span[pos.min():pos.max() + 1] = True
    return span


@dataclass(frozen=True)
class OutputRun:
    """A run of equal output blocks: the block (its range per output dimension), its words, and whether
    the run starts by reading back the block's partial sums (the block was visited before)."""

    block: tuple[tuple[int, int], ...]
    words: int
    read_back: bool


@dataclass(frozen=True)
class TileVisit:
    """What the walk moved for one tile, in loop order."""

    loads: dict[str, int]      # words loaded into the input/weight buffer before the tile (operands that moved)
    run: OutputRun | None      # the output run the tile starts; None when it continues the previous one
    macs: int


class Walker:
    """The walk of one schedule over real operands `x`, `w` (see the module docstring).

    `tiles()` walks every tile in loop order and yields what each moved. After
    the walk: `output` is the layer output assembled in main memory, `steps[op]`
    the words of each step of the input and weight block sequences, `runs` the
    output runs, `peak[op]` the largest block of each operand, and
    `missing_reads` the MAC operands that were not in a buffer (must be 0).
    """

    def __init__(self, schedule: Schedule, x: np.ndarray, w: np.ndarray):
        self.s = schedule
        self.L = L = schedule.layer
        self.x, self.w = x, w
        self.output = np.zeros((L.N, L.G, L.Kg, L.OY, L.OX))
        self.read_y = layer_read_mask(L.OY, L.FY, L.SY, L.DY, L.PY, L.IY)
        self.read_x = layer_read_mask(L.OX, L.FX, L.SX, L.DX, L.PX, L.IX)
        shapes = {"input": x.shape, "weight": w.shape, "output": self.output.shape}
        self.buf = {op: np.full(shapes[op], np.nan) for op in OPERANDS}
        self.resident = {op: np.zeros(shapes[op], dtype=bool) for op in OPERANDS}
        self.key: dict[str, tuple | None] = {op: None for op in OPERANDS}
        self.peak = {op: 0 for op in OPERANDS}
        self.steps: dict[str, list[int]] = {"input": [], "weight": []}
        self.runs: list[OutputRun] = []
        self.visited: set[tuple] = set()
        self.missing_reads = 0
        self._masks: BoundedCache[tuple, np.ndarray] = BoundedCache(_MASK_CACHE_ENTRIES, _MASK_CACHE_BYTES,
                                                                    lambda m: m.nbytes)

    def tiles(self) -> Iterator[TileVisit]:
        """Walk every tile in loop order (then write the last output run back)."""
        order = self.s.order
        for combo in itertools.product(*(range(self.s.trips(d)) for d in order)):
            idx = dict(zip(order, combo))
            loads = {}
            for op in ("input", "weight"):
                words = self._visit_read_operand(op, idx)
                if words is not None:
                    loads[op] = words
            run = self._visit_output(idx)
            yield TileVisit(loads, run, self._compute_tile(idx))
        self._flush_output()

    # ranges of every dimension for the loops above a level
    def _ranges(self, idx: dict[str, int], level: int) -> dict[str, tuple[int, int]]:
        r = {}
        above = self.s.order[:level]
        for d in DIMS:
            size, t = self.L.dim_size(d), self.s.tiles[d]
            if d in above:
                r[d] = (idx[d] * t, min(idx[d] * t + t, size))
            else:
                r[d] = (0, size)
        return r

    def _block_mask(self, op: str, r: dict[str, tuple[int, int]]) -> np.ndarray:
        L = self.L
        key = (op,) + tuple(sorted(r.items()))
        hit = self._masks.get(key)
        if hit is not None:
            return hit
        m = np.zeros(self.buf[op].shape, dtype=bool)
        sl = lambda d: slice(*r[d])  # noqa: E731
        if op == "input":
            rows = read_span_mask(r["OY"], r["FY"], L.SY, L.DY, L.PY, L.IY) & self.read_y
            cols = read_span_mask(r["OX"], r["FX"], L.SX, L.DX, L.PX, L.IX) & self.read_x
            sub = np.zeros((r["N"][1] - r["N"][0], r["G"][1] - r["G"][0], r["C"][1] - r["C"][0], L.IY, L.IX), bool)
            sub[:] = rows[:, None] & cols[None, :]
            m[sl("N"), sl("G"), sl("C")] = sub
        elif op == "weight":
            m[sl("G"), sl("K"), sl("C"), sl("FY"), sl("FX")] = True
        else:
            m[sl("N"), sl("G"), sl("K"), sl("OY"), sl("OX")] = True
        m.flags.writeable = False          # shared by every visit of the block
        self._masks.put(key, m)
        return m

    def _visit_read_operand(self, op: str, idx: dict[str, int]) -> int | None:
        """Move `op`'s buffer to the tile's block; the words loaded, None when the block did not change."""
        level = self.s.buffers[op]
        r = self._ranges(idx, level)
        key = tuple(r[d] for d in sorted(RELEVANT[op]))
        if key == self.key[op]:
            return None
        mask = self._block_mask(op, r)
        if not mask.any():  # wholly in the padding: nothing moves, the buffer stays as it was
            return None
        self.key[op] = key
        new = mask & ~self.resident[op]
        words = int(new.sum())
        self.steps[op].append(words)
        src = self.x if op == "input" else self.w
        buf = self.buf[op]
        buf[~mask] = np.nan                 # drop what the new block does not need
        buf[new] = src[new]                 # DMA in only what is missing
        self.resident[op] = mask
        self.peak[op] = max(self.peak[op], int(mask.sum()))
        return words

    def _visit_output(self, idx: dict[str, int]) -> OutputRun | None:
        """Move the output buffer to the tile's block; the run it starts, None when the block did not change."""
        r = self._ranges(idx, self.s.buffers["output"])
        key = tuple(r[d] for d in sorted(RELEVANT["output"]))
        if key == self.key["output"]:
            return None
        self._flush_output()
        mask = self._block_mask("output", r)
        buf = self.buf["output"]
        buf[:] = np.nan
        read_back = key in self.visited
        buf[mask] = self.output[mask] if read_back else 0.0
        run = OutputRun(key, int(mask.sum()), read_back)
        self.runs.append(run)
        self.visited.add(key)
        self.key["output"] = key
        self.resident["output"] = mask
        self.peak["output"] = max(self.peak["output"], int(mask.sum()))
        return run

    def _flush_output(self) -> None:
        if self.key["output"] is not None:
            mask = self.resident["output"]
            self.output[mask] = self.buf["output"][mask]

    def _compute_tile(self, idx: dict[str, int]) -> int:
        """The tile's MACs, from the buffers only; returns how many."""
        r = self._ranges(idx, len(self.s.order))
        self.missing_reads += accumulate_tile(self.L, r, self.buf["input"], self.buf["weight"], self.buf["output"])
        return math.prod(hi - lo for lo, hi in r.values())


def simulate(schedule: Schedule, arch: Architecture | None = None, seed: int = 0) -> SimResult:
    """Walk every tile of `schedule`, count every word moved, and check the output.

    Layers and schedules beyond the simulator's limits (docs/limits.md: tensor
    words, tiles) are refused before anything is allocated; `seed` must be a
    seed the generated C takes too (0 to 2**64 - 1).

    >>> from convsched import Architecture, Layer, Schedule, evaluate, simulate
    >>> layer = Layer(K=8, C=4, OY=6, OX=6, FY=3, FX=3, PY=1, PX=1)
    >>> s = Schedule(layer, ("K", "OY"), {"K": 4, "OY": 2}, {"input": 2, "weight": 1, "output": 2})
    >>> arch = Architecture(capacity=1024)
    >>> result = simulate(s, arch)
    >>> result.output_ok, result.traffic == evaluate(s, arch)     # the walk moves what the model says
    (True, True)
    """
    arch = arch or Architecture()
    L = schedule.layer
    check_seed(seed)
    check_simulation(schedule)
    try:
        return _simulate(schedule, arch, seed)
    except MemoryError:
        raise ConvschedError(f"not enough memory to simulate layer {L}; simulate a smaller layer "
                             "(evaluate computes any size)") from None


def _simulate(schedule: Schedule, arch: Architecture, seed: int) -> SimResult:
    L = schedule.layer
    x, w = random_operands(L, seed)
    walk = Walker(schedule, x, w)
    for _ in walk.tiles():
        pass
    ref = reference_conv(L, x, w)
    err = float(np.max(np.abs(walk.output - ref))) if ref.size else 0.0
    traffic = _measured_traffic(schedule, arch, walk)
    return SimResult(traffic, walk.peak, err == 0.0 and walk.missing_reads == 0, err, walk.missing_reads,
                     schedule.n_tiles)


def _measured_traffic(schedule: Schedule, arch: Architecture, walk: Walker) -> Traffic:
    gran = arch.dma_granularity
    ops: dict[str, OperandTraffic] = {}
    for op, bits in (("input", arch.input_bits), ("weight", arch.weight_bits)):
        words = sum(walk.steps[op])
        nbytes = (sum(step_bytes(s, bits, gran) for s in walk.steps[op] if s) if gran
                  else bits_to_bytes(words * bits))
        ops[op] = OperandTraffic(words, 0, nbytes, 0)
    last_run = {run.block: i for i, run in enumerate(walk.runs)}
    reads = writes = final = 0
    read_b = psum_w = final_w = 0
    for i, run in enumerate(walk.runs):
        words, read_back = run.words, run.read_back
        writes += words
        is_final = last_run[run.block] == i
        if read_back:
            reads += words
        if is_final:
            final += words
        if gran:
            if read_back:
                read_b += step_bytes(words, arch.psum_bits, gran)
            if is_final:
                final_w += step_bytes(words, arch.output_bits, gran)
            else:
                psum_w += step_bytes(words, arch.psum_bits, gran)
    if not gran:
        read_b = bits_to_bytes(reads * arch.psum_bits)
        psum_w = bits_to_bytes((writes - final) * arch.psum_bits)
        final_w = bits_to_bytes(final * arch.output_bits)
    ops["output"] = OperandTraffic(reads, writes, read_b, psum_w + final_w)
    bw = dict(walk.peak)
    return Traffic(ops["input"], ops["weight"], ops["output"], bw, arch.buffer_bytes(bw),
                   schedule.layer.macs, output_final_writes=final)
