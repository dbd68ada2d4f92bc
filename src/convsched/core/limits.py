"""The documented limits (docs/limits.md): sizes convsched computes exactly, and sizes it refuses.

The vectorised model, the optimizer and the HWC model compute in 64-bit
integers (numpy int64). Rather than print a figure that silently wrapped
around, every input is checked against limits under which every such
integer provably fits (the argument is in docs/limits.md):

* word sizes of at most `MAX_WORD_BITS` bits;
* buffer capacities (and DMA granularities) of at most `MAX_BUFFER_BYTES`;
* every layer field (extents, strides, dilations, paddings, input sizes) at
  most `MAX_EXTENT`;
* a layer's traffic bound (`traffic_bound`) at most `MAX_TRAFFIC_BOUND`.

Other limits keep a small input from allocating more memory than a machine
has: the model's per-axis grid, the simulator's tensors, the generated C
program, the optimizer's per-axis tables. They are checked before anything
is allocated; each error names the limit and how to stay within it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import ConvschedError

if TYPE_CHECKING:
    from .layer import Layer
    from .schedule import Schedule

#: Bits of a word (input, weight, partial sum, output): 64-bit accumulators are the widest real ones.
MAX_WORD_BITS = 64
#: Bytes of an on-chip buffer capacity (shared, per operand, the HWC's total) or a DMA granularity: 1 PiB.
MAX_BUFFER_BYTES = 1 << 50
#: Any one layer field: N, G, K, C, OY, OX, FY, FX, strides, dilations, paddings, IY, IX.
MAX_EXTENT = 1 << 24
#: A layer's traffic bound (`traffic_bound`): 2**48, about 2.8e14.
MAX_TRAFFIC_BOUND = 1 << 48

#: Model (`model.evaluate`): tile-loop iterations of one input axis (output tiles x filter tiles).
MAX_AXIS_GRID = 1 << 22
#: Optimizer: entries of one input axis's table, (OY + 1) x (FY + 1) (and the same for X).
MAX_OPTIMIZER_AXIS = 1 << 18
#: Simulator: words of the layer's input, weight and output tensors together.
MAX_SIM_WORDS = 1 << 22
#: Simulator: tiles walked.
MAX_SIM_TILES = 2_000_000
#: Generated C: words of the layer's tensors together (main memory of the program).
MAX_C_WORDS = 1 << 26
#: Generated C: input rows and columns (each is a table in the program text).
MAX_C_AXIS = 1 << 18
#: Generated C: output blocks (the program keeps a flag and a counter per block).
MAX_C_OUTPUT_BLOCKS = 1 << 22
#: Seeds of the random data (simulate, run-c): the generated C reads a 64-bit unsigned seed.
MAX_SEED = (1 << 64) - 1
#: Buffer sizes of one sweep (`sweep --points`).
MAX_SWEEP_POINTS = 1000

DOC = "docs/limits.md"


def _axis_reach(o: int, f: int, s: int, d: int) -> int:
    """The largest number of input rows (or columns) one (output tile, filter tile) pair's blocks add
    up to per tile pair, bounded two ways (docs/limits.md): by the padded input extent and by 2S + 2D + 1."""
    return min((o - 1) * s + (f - 1) * d + 1, 2 * s + 2 * d + 1)


def traffic_bound(layer: "Layer") -> int:
    """MACs x min(padded IY, 2 SY + 2 DY + 1) x min(padded IX, 2 SX + 2 DX + 1).

    Every per-operand word count the vectorised model and the optimizer's
    bounds form (every term of their sums, every first-block and overlap
    product) is at most this; docs/limits.md gives the argument.
    """
    L = layer
    return L.macs * _axis_reach(L.OY, L.FY, L.SY, L.DY) * _axis_reach(L.OX, L.FX, L.SX, L.DX)


def check_layer(layer: "Layer") -> None:
    """Refuse a layer beyond MAX_EXTENT or MAX_TRAFFIC_BOUND (one line, naming the limit)."""
    from dataclasses import fields
    for f in fields(layer):
        v = getattr(layer, f.name)
        if v > MAX_EXTENT:
            derived = " (derived from the output size, filter, stride, dilation and padding)" \
                if f.name in ("IY", "IX") else ""
            raise ConvschedError(f"layer field {f.name}={v:,}{derived} is above the limit of {MAX_EXTENT:,} "
                                 f"({DOC}); use a smaller layer")
    bound = traffic_bound(layer)
    if bound > MAX_TRAFFIC_BOUND:
        raise ConvschedError(
            f"layer {layer} is too large to compute exactly in 64 bits: its traffic bound (MACs x input "
            f"rows x columns a tile pair can reach) is {bound:.3g}, above the limit of {MAX_TRAFFIC_BOUND:.3g} "
            f"({DOC}); use a smaller batch or layer")


def check_bits(name: str, value: int) -> None:
    if value > MAX_WORD_BITS:
        raise ConvschedError(f"{name}={value:,} is above the limit of {MAX_WORD_BITS} bits per word ({DOC})")


def check_bytes(name: str, value: int) -> None:
    if value > MAX_BUFFER_BYTES:
        raise ConvschedError(f"{name} of {value:,} bytes is above the limit of {MAX_BUFFER_BYTES:,} bytes "
                             f"(1 PiB, {DOC})")


def check_seed(seed: int) -> None:
    """Seeds both the simulator (numpy) and the generated C (64-bit unsigned) take the same way."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConvschedError(f"seed {seed!r} is out of range; give a whole number from 0 to {MAX_SEED:,} "
                             "(2**64 - 1)")


def check_model_grid(schedule: "Schedule") -> None:
    """The exact model walks each input axis's (output tile, filter tile) loop iterations."""
    for axis in ("Y", "X"):
        n = 1
        for d in ("O" + axis, "F" + axis):
            if d in schedule.order:
                n *= schedule.trips(d)
        if n > MAX_AXIS_GRID:
            raise ConvschedError(
                f"schedule has {n:,} O{axis} x F{axis} tile iterations, more than the model's limit of "
                f"{MAX_AXIS_GRID:,} ({DOC}); use larger O{axis}/F{axis} tiles")


def check_optimizer_layer(layer: "Layer") -> None:
    """The optimizer tabulates each input axis over every (output tile, filter tile) pair."""
    for axis in ("Y", "X"):
        o, f = getattr(layer, "O" + axis), getattr(layer, "F" + axis)
        n = (o + 1) * (f + 1)
        if n > MAX_OPTIMIZER_AXIS:
            raise ConvschedError(
                f"(O{axis} + 1) x (F{axis} + 1) = {n:,} tile pairs, more than the optimizer's limit of "
                f"{MAX_OPTIMIZER_AXIS:,} ({DOC}); split the layer or evaluate a given schedule")


def check_simulation(schedule: "Schedule") -> None:
    L = schedule.layer
    words = L.input_words + L.weight_words + L.output_words
    if words > MAX_SIM_WORDS:
        raise ConvschedError(f"layer {L} has {words:,} input, weight and output words, more than the "
                             f"simulator's limit of {MAX_SIM_WORDS:,} ({DOC}); simulate a smaller layer "
                             "(evaluate computes any size)")
    if schedule.n_tiles > MAX_SIM_TILES:
        raise ConvschedError(f"schedule has {schedule.n_tiles:,} tiles, more than the simulator's limit of "
                             f"{MAX_SIM_TILES:,} ({DOC}); use larger tiles or a smaller layer")


def check_c_program(schedule: "Schedule") -> None:
    L = schedule.layer
    words = L.input_words + L.weight_words + L.output_words
    if words > MAX_C_WORDS:
        raise ConvschedError(f"layer {L} has {words:,} input, weight and output words, more than the "
                             f"generated C program's limit of {MAX_C_WORDS:,} ({DOC}); use a smaller layer")
    for name, n in (("IY", L.IY), ("IX", L.IX)):
        if n > MAX_C_AXIS:
            raise ConvschedError(f"layer {L} has {name}={n:,}, more than the generated C program's limit of "
                                 f"{MAX_C_AXIS:,} input rows or columns ({DOC})")
    for axis in ("Y", "X"):     # the read-row tables are built from every (output, filter) pair
        n = getattr(L, "O" + axis) * getattr(L, "F" + axis)
        if n > MAX_AXIS_GRID:
            raise ConvschedError(f"layer {L} has O{axis} x F{axis} = {n:,}, more than the generated C program's "
                                 f"limit of {MAX_AXIS_GRID:,} ({DOC})")
    blocks = 1
    for d in schedule.order[:schedule.buffers["output"]]:
        if d in ("N", "G", "K", "OY", "OX"):
            blocks *= schedule.trips(d)
    if blocks > MAX_C_OUTPUT_BLOCKS:
        raise ConvschedError(f"schedule has {blocks:,} output blocks, more than the generated C program's limit "
                             f"of {MAX_C_OUTPUT_BLOCKS:,} ({DOC}); use larger N/K/OY/OX tiles")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cap_workers(workers: int) -> int:
    """Worker processes: at least 1, at most the CPUs available (more only add memory, not speed)."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConvschedError(f"workers={workers!r} must be a whole number of at least 1")
    return min(workers, available_cpus())
