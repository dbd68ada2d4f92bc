"""The documented limits of the tools (docs/limits.md): sizes that would take more memory or time than a
machine has, refused before anything is allocated.

The limits of 64-bit exactness (word sizes, buffer sizes, layer extents, the
traffic bound) are in `int64.py`, checked by the core types themselves. The
limits here are those of one tool each: the model's per-axis grid, the
simulator's tensors, the generated C program, the optimizer's per-axis
tables, a sweep's sizes. Each error names the limit and how to stay within it.
"""

from __future__ import annotations

import os

from .errors import ConvschedError
from .int64 import DOC
from .layer import Layer
from .schedule import Schedule

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


def check_seed(seed: int) -> None:
    """Seeds both the simulator (numpy) and the generated C (64-bit unsigned) take the same way."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConvschedError(f"seed {seed!r} is out of range; give a whole number from 0 to {MAX_SEED:,} "
                             "(2**64 - 1)")


def check_model_grid(schedule: Schedule) -> None:
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


def check_optimizer_layer(layer: Layer) -> None:
    """The optimizer tabulates each input axis over every (output tile, filter tile) pair."""
    for axis in ("Y", "X"):
        o, f = getattr(layer, "O" + axis), getattr(layer, "F" + axis)
        n = (o + 1) * (f + 1)
        if n > MAX_OPTIMIZER_AXIS:
            raise ConvschedError(
                f"(O{axis} + 1) x (F{axis} + 1) = {n:,} tile pairs, more than the optimizer's limit of "
                f"{MAX_OPTIMIZER_AXIS:,} ({DOC}); split the layer or evaluate a given schedule")


def check_simulation(schedule: Schedule) -> None:
    L = schedule.layer
    words = L.input_words + L.weight_words + L.output_words
    if words > MAX_SIM_WORDS:
        raise ConvschedError(f"layer {L} has {words:,} input, weight and output words, more than the "
                             f"simulator's limit of {MAX_SIM_WORDS:,} ({DOC}); simulate a smaller layer "
                             "(evaluate computes any size)")
    if schedule.n_tiles > MAX_SIM_TILES:
        raise ConvschedError(f"schedule has {schedule.n_tiles:,} tiles, more than the simulator's limit of "
                             f"{MAX_SIM_TILES:,} ({DOC}); use larger tiles or a smaller layer")


def check_c_program(schedule: Schedule) -> None:
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
