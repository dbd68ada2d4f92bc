"""An event-level simulation of the HWC on small layers: DMA queue, buffer fill/drain, compute engine.

Independent of `cycles.py`: the transfers come from the walking simulator
(`simulate._Walker`, which keeps real buffer contents and checks the layer's
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

import numpy as np

from ..core.errors import ConvschedError
from ..core.schedule import Schedule
from ..model.simulate import _Walker, random_operands, reference_conv
from .config import HWCConfig

#: tolerance of the event simulation against the analytical cycle model (double-buffered)
CYCLE_TOLERANCE = 0.01
MAX_SIM_TILES = 20_000


@dataclass(frozen=True)
class Transfer:
    tile: int
    kind: str      # "input", "weight", "readback", "write"
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
    walk = _Walker(schedule, x, w)
    order = schedule.order
    loads: list[list[Transfer]] = []
    writes: list[tuple[int, tuple, int] | None] = []   # (tile, key, words) of the run ending after the tile
    macs: list[int] = []
    for i, combo in enumerate(itertools.product(*(range(schedule.trips(d)) for d in order))):
        idx = dict(zip(order, combo))
        tl: list[Transfer] = []
        for op, bits in (("input", cfg.input_bits), ("weight", cfg.weight_bits)):
            before = len(walk.steps[op])
            walk.visit_read_operand(op, idx)
            if len(walk.steps[op]) > before and walk.steps[op][-1] > 0:
                words = walk.steps[op][-1]
                tl.append(Transfer(i, op, words, math.ceil(words * bits / 8)))
        runs_before = len(walk.out_runs)
        walk.visit_output(idx)
        if len(walk.out_runs) > runs_before:
            key, words, read_back = walk.out_runs[-1]
            if runs_before:                       # the previous run ended after tile i-1
                pk, pw, _ = walk.out_runs[-2]
                writes.append((i - 1, pk, pw))
            if read_back:
                tl.append(Transfer(i, "readback", words, math.ceil(words * cfg.psum_bits / 8)))
        walk.compute_tile(idx)
        loads.append(tl)
        r = walk.ranges(idx, len(order))
        macs.append(int(np.prod([r[d][1] - r[d][0] for d in r])))
    walk.flush_output()
    key, words, _ = walk.out_runs[-1]
    writes.append((len(loads) - 1, key, words))
    last_write = {k: t for t, k, _ in writes}
    write_after: list[Transfer | None] = [None] * len(loads)
    for t, k, words in writes:
        bits = cfg.output_bits if last_write[k] == t else cfg.psum_bits
        write_after[t] = Transfer(t, "write", words, math.ceil(words * bits / 8))
    ok = bool(np.array_equal(walk.y_mem, reference_conv(L, x, w))) and walk.missing == 0
    return loads, write_after, macs, ok


def event_simulate(schedule: Schedule, cfg: HWCConfig) -> EventSimResult:
    """Run `schedule` on the HWC event by event (small layers: at most MAX_SIM_TILES tiles)."""
    if schedule.n_tiles > MAX_SIM_TILES:
        raise ConvschedError(f"schedule has {schedule.n_tiles:,} tiles; the event simulation takes at most "
                             f"{MAX_SIM_TILES:,} (use the analytical cycle model)")
    from ..core.limits import check_simulation
    check_simulation(schedule)      # it walks the simulator's buffers: the same size limit
    loads, write_after, macs, ok = _walk_transfers(schedule, cfg)
    n = len(loads)
    port, setup, db = cfg.port_bytes_per_cycle, cfg.dma_setup_cycles, cfg.double_buffer
    comp = [-(-m // cfg.macs_per_cycle) for m in macs]
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
    dma_free_at = 0
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


__all__ = ["event_simulate", "EventSimResult", "CYCLE_TOLERANCE", "MAX_SIM_TILES"]
