"""An event-level simulation of the HWC on small layers: DMA queue, buffer fill/drain, compute engine.

Independent of `cycles.py`: the transfers come from the walking simulator
(`simulate.Walker`, which keeps real buffer contents and checks the layer's
output), tile by tile; then a discrete-event loop runs the machine:

* one DMA engine serves a FIFO queue of transfers (ordered by issue time;
  at equal times a write issued first goes first); a transfer of `b` bytes
  occupies the port for `dma_setup_cycles + ceil(b / port_bytes_per_cycle)`;
* one compute engine runs the tiles in order, `ceil(MACs / macs_per_cycle)`
  cycles each, and starts a tile only when every load of that tile has
  landed, the previous tile is done, and (for a new output run) its output
  slot has been drained;
* single-buffered: a tile's loads are issued when the previous tile ends
  (after that tile's write-back, if it ended a run): the buffers are busy
  while a tile computes;
* double-buffered: every buffer has two slots; tile `i+1`'s loads are issued
  when tile `i` starts computing (its slot was freed by tile `i-1`); a
  finished run is written back from its slot while the next run
  accumulates in the other one.

Agreement with the analytical model (`cycles.cycle_model`), checked by
tests/test_hwc.py: traffic exactly; cycles exactly when single-buffered, and
within 1% when double-buffered (on every case tested so far they are equal:
the FIFO port reproduces the model's stage order).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..core.arch import bits_to_bytes
from ..core.dims import ceil_div
from ..core.errors import ConvschedError
from ..core.limits import check_simulation
from ..core.schedule import Schedule
from ..model.simulate import OutputRun, Walker, random_operands, reference_conv
from .config import HWCConfig

#: tolerance of the event simulation against the analytical cycle model (double-buffered)
CYCLE_TOLERANCE = 0.01
#: the most tiles the event simulation runs (beyond them, the analytical cycle model)
MAX_EVENT_TILES = 20_000


#: What a DMA transfer moves: a block load, a read-back of partial sums, a write-back.
TransferKind = Literal["input", "weight", "readback", "write"]


@dataclass(frozen=True)
class Transfer:
    """One DMA transfer: before tile `tile` (loads, read-backs) or after it (a write)."""

    tile: int
    kind: TransferKind
    words: int
    bytes: int


@dataclass(frozen=True)
class EventSimResult:
    cycles: int
    compute_cycles: int
    words: dict[str, int]        # input, weight, readback, write
    bytes: int
    transfers: int
    output_ok: bool              # the walk computed the reference convolution
    dma_busy_cycles: int


def _walk_transfers(schedule: Schedule, cfg: HWCConfig) -> tuple[list[list[Transfer]], list[Transfer | None], list[int], bool]:
    """Per tile: loads before it, the write after it (or None), its MACs; and the output check."""
    L = schedule.layer
    x, w = random_operands(L, 0)
    walk = Walker(schedule, x, w)
    bits = {"input": cfg.input_bits, "weight": cfg.weight_bits}
    loads: list[list[Transfer]] = []
    writes: list[tuple[int, OutputRun]] = []   # (tile, run) of each run, ending after that tile
    macs: list[int] = []
    run: OutputRun | None = None
    for i, visit in enumerate(walk.tiles()):
        tl = [Transfer(i, op, words, bits_to_bytes(words * bits[op])) for op, words in visit.loads.items() if words > 0]
        if visit.run is not None:
            if run is not None:                   # the previous run ended after tile i-1
                writes.append((i - 1, run))
            run = visit.run
            if run.read_back:
                tl.append(Transfer(i, "readback", run.words, bits_to_bytes(run.words * cfg.psum_bits)))
        loads.append(tl)
        macs.append(visit.macs)
    assert run is not None                        # tile 0 starts a run
    writes.append((len(loads) - 1, run))
    last_write = {r.block: t for t, r in writes}
    write_after: list[Transfer | None] = [None] * len(loads)
    for t, r in writes:
        out_bits = cfg.output_bits if last_write[r.block] == t else cfg.psum_bits
        write_after[t] = Transfer(t, "write", r.words, bits_to_bytes(r.words * out_bits))
    ok = bool(np.array_equal(walk.output, reference_conv(L, x, w))) and walk.missing_reads == 0
    return loads, write_after, macs, ok


def event_simulate(schedule: Schedule, cfg: HWCConfig) -> EventSimResult:
    """Run `schedule` on the HWC event by event (small layers: at most MAX_EVENT_TILES tiles)."""
    if schedule.n_tiles > MAX_EVENT_TILES:
        raise ConvschedError(f"schedule has {schedule.n_tiles:,} tiles; the event simulation takes at most "
                             f"{MAX_EVENT_TILES:,} (use the analytical cycle model)")
    check_simulation(schedule)      # it walks the simulator's buffers: the same size limit
    loads, write_after, macs, ok = _walk_transfers(schedule, cfg)
    n = len(loads)
    port, setup, db = cfg.port_bytes_per_cycle, cfg.dma_setup_cycles, cfg.double_buffer
    comp = [ceil_div(m, cfg.macs_per_cycle) for m in macs]
    # run index of each tile and, per run, the tile whose write drains it
    run_of, run = [], -1
    for i in range(n):
        if i == 0 or write_after[i - 1] is not None:
            run += 1
        run_of.append(run)
    run_end_tile = [i for i in range(n) if write_after[i] is not None]

    seq = itertools.count()
    events: list[tuple[int, int, str, object]] = []   # (time, seq, kind, payload)
    queue: deque[Transfer] = deque()
    dma_idle = True
    dma_busy = 0
    pending = [len(t) for t in loads]      # loads of each tile not yet landed
    write_done = [False] * len(run_end_tile)
    run_write_idx = {t: k for k, t in enumerate(run_end_tile)}
    compute_busy = False
    next_tile = 0
    issued = [False] * n
    done_compute = -1
    words = {"input": 0, "weight": 0, "readback": 0, "write": 0}
    total_bytes = transfers = 0
    end_time = 0

    def dur(b: int) -> int:
        return setup + math.ceil(b / port - 1e-12)

    def enqueue(now: int, items) -> None:
        nonlocal dma_idle
        for tr in items:
            queue.append(tr)
        if dma_idle and queue:
            start_dma(now)

    def start_dma(now: int) -> None:
        nonlocal dma_idle, dma_busy, total_bytes, transfers
        tr = queue.popleft()
        d = dur(tr.bytes)
        dma_idle = False
        dma_busy += d
        total_bytes += tr.bytes
        transfers += 1
        words[tr.kind] += tr.words
        heapq.heappush(events, (now + d, next(seq), "dma_done", tr))

    def issue_loads(now: int, i: int) -> None:
        if 0 <= i < n and not issued[i]:
            issued[i] = True
            enqueue(now, loads[i])

    def try_compute(now: int) -> None:
        nonlocal compute_busy, next_tile
        i = next_tile
        if compute_busy or i >= n or not issued[i] or pending[i] > 0:
            return
        r = run_of[i]
        if i > 0 and run_of[i - 1] != r:      # a new run takes an output slot
            back = r - (2 if db else 1)       # the run that used this slot must be drained
            if back >= 0 and not write_done[back]:
                return
        compute_busy = True
        next_tile += 1
        if db:
            issue_loads(now, i + 1)           # prefetch into the other slots
        heapq.heappush(events, (now + comp[i], next(seq), "compute_done", i))

    issue_loads(0, 0)
    try_compute(0)
    while events:
        now, _, kind, payload = heapq.heappop(events)
        end_time = max(end_time, now)
        if kind == "dma_done":
            tr = payload
            if tr.kind == "write":
                write_done[run_write_idx[tr.tile]] = True
            else:
                pending[tr.tile] -= 1
            dma_idle = True
            if queue:
                start_dma(now)
        else:
            i = payload
            compute_busy = False
            done_compute = i
            if write_after[i] is not None:
                enqueue(now, [write_after[i]])
            if not db:
                issue_loads(now, i + 1)
        try_compute(now)
    if done_compute != n - 1 or not all(write_done):
        raise ConvschedError("event simulation deadlocked")  # a bug, never bad input
    return EventSimResult(end_time, sum(comp), words, total_bytes, transfers, ok, dma_busy)


__all__ = ["event_simulate", "EventSimResult", "CYCLE_TOLERANCE", "MAX_EVENT_TILES"]
