"""Execute a schedule on the HWC: per-tile MACs and DMA transfers, and an analytical cycle model.

Per-tile traffic (`tile_steps`) follows docs/semantics.md exactly, tile by
tile, in loop order (vectorised with numpy over all tiles):

* before tile `i` runs, the input and weight buffers load what their new
  block lacks from the last live (non-empty) block (`|new| - |new ∩ prev|`),
  and the output buffer reads back its block's partial sums when tile `i`
  starts a run of a block that was visited before;
* after tile `i`, when it ends a run of equal output blocks, the block is
  written (at partial-sum width, or output width for the block's last run).

Summed over tiles these equal `model.evaluate` exactly (words and, for word
sizes that are whole bytes, bytes; tests check it). Each non-empty step is
one DMA transfer costing `dma_setup_cycles + ceil(bytes / port_bytes_per_cycle)`.

Cycle model (`cycle_model`), with `C[i] = ceil(MACs[i] / macs_per_cycle)`,
`L[i]` the transfers before tile `i` and `W[i]` the write after it:

* single-buffered (serialised):  `T = Σ_i (L[i] + C[i] + W[i])`;
* double-buffered: a two-slot pipeline on one DMA port; while tile `i`
  computes, the DMA writes back tile `i-1`'s finished run and loads tile
  `i+1`'s blocks:
  `T = L[0] + Σ_i max(C[i], W[i-1] + L[i+1]) + W[n-1]`
  (fill `L[0]`, drain `W[n-1]`). A stage is a stall when the transfers are
  longer than the compute.

Schedules with many tiles (an FC layer with tile 1 everywhere has tens of
millions) are streamed in chunks (`iter_steps`, `cycle_report`): whether a
run's block was visited before, and whether it is the block's last run, is
read off the loop indices (a loop above the output buffer that the output
does not depend on is past its first / at its last iteration), so no chunk
needs to see the others; the input's "last live block" is carried across.
Streaming gives exactly the same report (tested for chunks of 1 and 3 tiles).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..core.arch import Architecture, words_to_bytes
from ..core.dims import ceil_div
from ..core.errors import ConvschedError
from ..core.layer import DIMS
from ..core.schedule import Schedule
from ..model.axes import read_span
from ..model.closed_form import Traffic, evaluate, read_counts
from .config import HWCConfig

#: Schedules with more tiles than this are refused by the per-tile executor.
MAX_TILES = 20_000_000
#: Tiles per chunk when the cycle model streams over a schedule with many tiles.
CHUNK = 1 << 20
#: `execute` keeps the per-tile arrays up to this many tiles, and streams beyond.
STEPS_KEPT = 4 * CHUNK
_CHUNK_NOTE = "the per-tile executor walks every tile"


@dataclass(frozen=True)
class TileSteps:
    """Per-tile arrays (length = number of tiles), in execution order."""

    macs: np.ndarray          # MACs of the tile
    input_words: np.ndarray   # words loaded into the input buffer before the tile
    weight_words: np.ndarray  # words loaded into the weight buffer before the tile
    readback_words: np.ndarray  # partial sums read back before the tile (run start of a revisited block)
    write_words: np.ndarray   # words written after the tile (run end), 0 if the run goes on
    write_final: np.ndarray   # bool: that write is the block's last (output width)

    @property
    def n(self) -> int:
        return len(self.macs)

    def totals(self) -> dict[str, int]:
        return {"macs": int(self.macs.sum()), "input": int(self.input_words.sum()),
                "weight": int(self.weight_words.sum()), "readback": int(self.readback_words.sum()),
                "write": int(self.write_words.sum())}


def _ranges(schedule: Schedule, idx: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, int | None]]:
    """Per dim: (start, stop) arrays over tiles and its loop position (None when not tiled)."""
    n = idx.shape[1] if idx.ndim == 2 else 1
    out = {}
    pos = {d: j for j, d in enumerate(schedule.order)}
    for d in DIMS:
        size, t = schedule.layer.dim_size(d), schedule.tiles[d]
        if d in pos:
            start = idx[pos[d]] * t
            out[d] = (start, np.minimum(start + t, size), pos[d])
        else:
            out[d] = (np.zeros(n, dtype=np.int64), np.full(n, size, dtype=np.int64), None)
    return out


def _block(schedule: Schedule, op: str, rng, level: int):
    """Per-axis (lo, hi, counter) of `op`'s block at every tile; counter maps (lo, hi) to a count."""
    L = schedule.layer

    def dim(d):
        s, e, p = rng[d]
        if p is None or p >= level:
            size = L.dim_size(d)
            return np.zeros_like(s), np.full_like(s, size)
        return s, e

    plain = lambda lo, hi: np.maximum(hi - lo, 0)  # noqa: E731
    if op == "input":
        axes = [(*dim(d), plain) for d in ("N", "G", "C")]
        for ax in ("Y", "X"):
            o0, o1 = dim("O" + ax)
            f0, f1 = dim("F" + ax)
            S, D, P, I = (getattr(L, n + ax) for n in ("S", "D", "P", "I"))
            lo, hi = read_span(o0, o1, f0, f1, S, D, P, I)
            cnt = read_counts(L, ax)
            axes.append((lo, hi, lambda lo, hi, cnt=cnt: np.where(hi > lo, cnt[np.maximum(hi, lo)] - cnt[lo], 0)))
        return axes
    dims = ("G", "K", "C", "FY", "FX") if op == "weight" else ("N", "G", "K", "OY", "OX")
    return [(*dim(d), plain) for d in dims]


def _loads(axes) -> np.ndarray:
    """Words each tile loads: |block| - |block ∩ last live block| (0 for empty blocks)."""
    size = np.ones_like(axes[0][0])
    for lo, hi, f in axes:
        size = size * f(lo, hi)
    n = len(size)
    live = size > 0
    ar = np.arange(n)
    last = np.maximum.accumulate(np.where(live, ar, -1))
    prev = np.concatenate([[-1], last[:-1]])
    has = prev >= 0
    pv = np.where(has, prev, 0)
    inter = np.ones_like(size)
    for lo, hi, f in axes:
        inter = inter * f(np.maximum(lo, lo[pv]), np.minimum(hi, hi[pv]))
    inter = np.where(has, inter, 0)
    return np.where(live, size - inter, 0)


def _index(schedule: Schedule, flat: np.ndarray) -> np.ndarray:
    """Loop indices (one row per loop, outermost first) of the tiles with these flat numbers."""
    trips = [schedule.trips(d) for d in schedule.order]
    if not trips:
        return np.zeros((0, len(flat)), np.int64)
    return np.stack(np.unravel_index(flat, trips)).astype(np.int64)


def _live_size(schedule: Schedule, flat: np.ndarray) -> np.ndarray:
    rng = _ranges(schedule, _index(schedule, flat))
    size = np.ones(len(flat), dtype=np.int64)
    for lo, hi, f in _block(schedule, "input", rng, schedule.buffers["input"]):
        size = size * f(lo, hi)
    return size


def _steps_range(schedule: Schedule, start: int, stop: int, carry_input: int | None) -> TileSteps:
    """Exact per-tile steps of tiles [start, stop); `carry_input` = last live input tile before start."""
    n = schedule.n_tiles
    flat = np.arange(start, stop, dtype=np.int64)
    rng = _ranges(schedule, _index(schedule, flat))
    macs = np.ones(len(flat), dtype=np.int64)
    for d in DIMS:
        s, e, _ = rng[d]
        macs = macs * (e - s)
    b = schedule.buffers
    # input/weight: prepend the last live tile before `start` so the first tile compares with it
    pre_in = np.concatenate([[carry_input], flat]) if carry_input is not None else flat
    inp = _loads(_block(schedule, "input", _ranges(schedule, _index(schedule, pre_in)), b["input"]))
    inp = inp[1:] if carry_input is not None else inp
    pre_w = np.concatenate([[start - 1], flat]) if start > 0 else flat
    wgt = _loads(_block(schedule, "weight", _ranges(schedule, _index(schedule, pre_w)), b["weight"]))
    wgt = wgt[1:] if start > 0 else wgt
    # output runs: compare each tile's block with its neighbours (one tile beyond each end)
    ext = np.arange(max(start - 1, 0), min(stop + 1, n), dtype=np.int64)
    eidx = _index(schedule, ext)
    oax = _block(schedule, "output", _ranges(schedule, eidx), b["output"])
    keys = np.stack([lo for lo, _, _ in oax], axis=1)
    size = np.ones(len(ext), dtype=np.int64)
    for lo, hi, f in oax:
        size = size * f(lo, hi)
    diff = np.any(keys[1:] != keys[:-1], axis=1)
    start_e = np.concatenate([[True], diff])   # run starts on the extended range (tile 0 starts one)
    end_e = np.concatenate([diff, [True]])
    off = 1 if start > 0 else 0
    core = slice(off, off + len(flat))
    run_start, run_end, size = start_e[core], end_e[core], size[core]
    if start > 0:
        run_start = run_start.copy()
    # a run's block was visited before iff a loop above the output buffer that the output does
    # not depend on is past its first iteration; its last run iff all those loops are at their last
    free = [j for j, d in enumerate(schedule.order[:b["output"]]) if d not in ("N", "G", "K", "OY", "OX")]
    cidx = eidx[:, core]
    trips = [schedule.trips(d) for d in schedule.order]
    revisit = np.zeros(len(flat), dtype=bool)
    last = np.ones(len(flat), dtype=bool)
    for j in free:
        revisit |= cidx[j] > 0
        last &= cidx[j] == trips[j] - 1
    readback = np.where(run_start & revisit, size, 0)
    write = np.where(run_end, size, 0)
    final = run_end & last
    return TileSteps(macs, inp, wgt, readback, write, final)


def tile_steps(schedule: Schedule) -> TileSteps:
    """MACs and words moved per tile, in loop order (see the module docstring)."""
    n = schedule.n_tiles
    if n > MAX_TILES:
        raise ConvschedError(f"schedule has {n:,} tiles, more than the {MAX_TILES:,} {_CHUNK_NOTE} at once")
    return _steps_range(schedule, 0, n, None)


@dataclass(frozen=True)
class Chunk:
    """The tiles [start, stop) of a schedule, and their steps with one neighbour on each side where there is
    one: `steps` covers tiles [first, ...), and `core` selects the chunk's own tiles in it."""

    start: int
    stop: int
    first: int
    steps: TileSteps

    @property
    def core(self) -> slice:
        return slice(self.start - self.first, self.stop - self.first)


def iter_steps(schedule: Schedule, chunk: int = CHUNK) -> Iterator[Chunk]:
    """The schedule's tiles in chunks of `chunk`, in order, in bounded memory."""
    n = schedule.n_tiles
    carry = None   # last live input tile before the extended range's first tile
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        a, e = max(start - 1, 0), min(stop + 1, n)
        yield Chunk(start, stop, a, _steps_range(schedule, a, e, carry))
        # the next extended range starts at stop - 1: the last live input tile before it
        sz = _live_size(schedule, np.arange(a, stop - 1, dtype=np.int64))
        nz = np.nonzero(sz > 0)[0]
        if len(nz):
            carry = a + int(nz[-1])


def _xfer(nbytes: np.ndarray, cfg: HWCConfig, port: float | None = None) -> np.ndarray:
    """Cycles of DMA transfers of `nbytes` each (0 bytes: no transfer)."""
    p = cfg.port_bytes_per_cycle if port is None else port
    beats = np.ceil(nbytes / p - 1e-12).astype(np.int64)
    return np.where(nbytes > 0, cfg.dma_setup_cycles + beats, 0)


@dataclass(frozen=True)
class CycleReport:
    """One layer on the HWC: cycles, utilisation, bytes and bandwidths."""

    cycles: int
    compute_cycles: int       # Σ ceil(MACs/tile / MACs per cycle)
    stall_cycles: int         # cycles - compute_cycles (waiting for the port)
    macs: int
    mac_utilisation: float    # MACs / (cycles * MACs per cycle)
    bytes: int                # traffic bytes (= model.evaluate's total_bytes)
    transfers: int            # DMA transfers issued
    avg_bandwidth_gbs: float  # bytes / cycles
    full_speed_bandwidth_gbs: float  # bytes / compute cycles: the average the port needs to never stall
    peak_bandwidth_gbs: float  # worst stage: its transfer bytes / its compute cycles
    tiles: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Lanes:
    """Per-tile cycles and bytes of executed tiles, the terms of the cycle model (module docstring)."""

    compute: np.ndarray       # C[i]: ceil(MACs / MACs per cycle)
    load: np.ndarray          # L[i]: cycles of the transfers before the tile (loads, read-back)
    write: np.ndarray         # W[i]: cycles of the write after it (0 when its run goes on)
    load_bytes: np.ndarray    # bytes of the transfers before the tile
    write_bytes: np.ndarray   # bytes of the write after it


def lanes(steps: TileSteps, cfg: HWCConfig, port: float | None = None) -> Lanes:
    """The per-tile cycles and bytes of `steps` on `cfg` (with a port of `port` bytes per cycle when given)."""
    ib = words_to_bytes(steps.input_words, cfg.input_bits)
    wb = words_to_bytes(steps.weight_words, cfg.weight_bits)
    rb = words_to_bytes(steps.readback_words, cfg.psum_bits)
    ob = np.where(steps.write_final, words_to_bytes(steps.write_words, cfg.output_bits),
                  words_to_bytes(steps.write_words, cfg.psum_bits))
    load = _xfer(ib, cfg, port) + _xfer(wb, cfg, port) + _xfer(rb, cfg, port)
    return Lanes(ceil_div(steps.macs, cfg.macs_per_cycle), load, _xfer(ob, cfg, port), ib + wb + rb, ob)


@dataclass(frozen=True)
class _Sums:
    """The cycle model's sums over some of the tiles (one chunk), added up into a CycleReport."""

    cycles: int
    compute_cycles: int
    macs: int
    bytes: int
    transfers: int
    peak: float               # the largest stage's bytes per compute cycle


def _sums(steps: TileSteps, cfg: HWCConfig, port: float | None, core: slice, first: bool, last: bool) -> _Sums:
    """The sums over the tiles `core` of `steps` (`steps` may hold one more tile on each side, the
    neighbours a double-buffered stage overlaps with); `first`/`last`: the chunk holds the first/last tile."""
    ln = lanes(steps, cfg, port)
    C, L, W = ln.compute, ln.load, ln.write
    if cfg.double_buffer:
        w_prev = np.concatenate([[0], W[:-1]])
        l_next = np.concatenate([L[1:], [0]])
        cycles = int(np.maximum(C, w_prev + l_next)[core].sum())
        cycles += int(L[0]) if first else 0       # fill
        cycles += int(W[-1]) if last else 0       # drain
        stage_bytes = (np.concatenate([[0], ln.write_bytes[:-1]]) + np.concatenate([ln.load_bytes[1:], [0]]))[core]
    else:
        cycles = int((L + C + W)[core].sum())
        stage_bytes = (ln.load_bytes + ln.write_bytes)[core]
    transfers = sum(int((x[core] > 0).sum())
                    for x in (steps.input_words, steps.weight_words, steps.readback_words, steps.write_words))
    return _Sums(cycles, int(C[core].sum()), int(steps.macs[core].sum()),
                 int(ln.load_bytes[core].sum() + ln.write_bytes[core].sum()), transfers,
                 float((stage_bytes / np.maximum(C[core], 1)).max()))


def _report(parts: list[_Sums], cfg: HWCConfig, tiles: int, total_bytes: int | None) -> CycleReport:
    """The CycleReport of the tiles whose sums are `parts`; `total_bytes` overrides their bytes."""
    cycles = sum(p.cycles for p in parts)
    comp = sum(p.compute_cycles for p in parts)
    macs = sum(p.macs for p in parts)
    nbytes = sum(p.bytes for p in parts) if total_bytes is None else total_bytes
    peak = max(p.peak for p in parts)
    return CycleReport(
        cycles=cycles, compute_cycles=comp, stall_cycles=cycles - comp, macs=macs,
        mac_utilisation=macs / (cycles * cfg.macs_per_cycle) if cycles else 0.0,
        bytes=nbytes, transfers=sum(p.transfers for p in parts),
        avg_bandwidth_gbs=cfg.gbs(nbytes, cycles), full_speed_bandwidth_gbs=cfg.gbs(nbytes, comp),
        peak_bandwidth_gbs=peak * cfg.clock_mhz * 1e6 / 1e9, tiles=tiles)


def cycle_model(steps: TileSteps, cfg: HWCConfig, port: float | None = None, total_bytes: int | None = None
                ) -> CycleReport:
    """The analytical cycle count of the executed tiles (see the module docstring)."""
    return _report([_sums(steps, cfg, port, slice(None), True, True)], cfg, steps.n, total_bytes)


def cycle_report(schedule: Schedule, cfg: HWCConfig, port: float | None = None, total_bytes: int | None = None,
                 chunk: int = CHUNK) -> CycleReport:
    """`cycle_model` streamed over chunks of tiles (bounded memory for schedules with many tiles)."""
    n = schedule.n_tiles
    parts = [_sums(c.steps, cfg, port, c.core, c.start == 0, c.stop == n) for c in iter_steps(schedule, chunk)]
    return _report(parts, cfg, n, total_bytes)


def slowdown(steps: TileSteps, cfg: HWCConfig, bandwidth_gbs: float) -> float:
    """Cycles with a port of `bandwidth_gbs` over the compute-only cycles (1.0 = never waits)."""
    if not bandwidth_gbs > 0:
        raise ConvschedError(f"available bandwidth {bandwidth_gbs!r} GB/s must be positive")
    port = bandwidth_gbs * 1e9 / (cfg.clock_mhz * 1e6)
    r = cycle_model(steps, cfg, port)
    return r.cycles / max(r.compute_cycles, 1)


@dataclass(frozen=True)
class Execution:
    """A schedule executed on the HWC: the model's traffic, per-tile steps and the cycle report."""

    schedule: Schedule
    traffic: Traffic
    steps: TileSteps | None     # None when the schedule has more than STEPS_KEPT tiles (streamed)
    report: CycleReport


def execute(schedule: Schedule, cfg: HWCConfig, arch: Architecture | None = None) -> Execution:
    """Run `schedule` on the HWC: traffic by the model, cycles by the per-tile model."""
    arch = arch or cfg.architecture()
    traffic = evaluate(schedule, arch)
    if schedule.n_tiles <= STEPS_KEPT:
        steps = tile_steps(schedule)
        return Execution(schedule, traffic, steps, cycle_model(steps, cfg, total_bytes=traffic.total_bytes))
    return Execution(schedule, traffic, None, cycle_report(schedule, cfg, total_bytes=traffic.total_bytes))


__all__ = ["TileSteps", "tile_steps", "Chunk", "iter_steps", "Lanes", "lanes", "cycle_report", "cycle_model",
           "CycleReport", "slowdown", "execute", "Execution", "MAX_TILES"]
