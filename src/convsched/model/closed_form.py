"""The exact analytical traffic model (closed form over the loop nest).

Semantics are those of docs/semantics.md (from design.md): each operand's
buffer holds its current block; a new block loads only what the previous live
block lacks; output blocks form runs that end with a write and, when the block
was visited before, start with a read-back of its partial sums.

How it is computed without walking the tile iterations: with loops `0..b-1`
above an operand's buffer, every step of its block sequence is a transition
at some loop `j` (loop `j` advances, the loops inside it restart). Summing
`|new block| - |new block ∩ previous block|` over all transitions at `j`
factorises over the operand's axes, because blocks are boxes and each axis
depends on its own loops only (see `model/axes.py`). Loops the operand does not
depend on only multiply the count of transitions. The cost is a handful of
per-axis sums per loop; the product of the trip counts is never enumerated.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..core.arch import OPERANDS, Architecture, bits_to_bytes, step_bytes
from ..core.layer import Layer
from ..core.limits import check_model_grid
from ..core.schedule import Schedule
from .axes import Axis, Entry, GridAxis, TileAxis, combine, read_positions, spatial_axis

#: The dimensions each operand's elements depend on.
RELEVANT: dict[str, frozenset[str]] = {
    "input": frozenset({"N", "G", "C", "OY", "OX", "FY", "FX"}),
    "weight": frozenset({"G", "K", "C", "FY", "FX"}),
    "output": frozenset({"N", "G", "K", "OY", "OX"}),
}


@dataclass(frozen=True)
class OperandTraffic:
    read: int          # words read from main memory
    write: int         # words written to main memory
    read_bytes: int
    write_bytes: int

    @property
    def words(self) -> int:
        return self.read + self.write

    @property
    def bytes(self) -> int:
        return self.read_bytes + self.write_bytes


@dataclass(frozen=True)
class Traffic:
    """Words and bytes moved per operand, buffer sizes and MACs of one schedule (what `evaluate` and
    `simulate` give).

    >>> from convsched import Architecture, Layer, Schedule, evaluate
    >>> layer = Layer(K=8, C=4, OY=6, OX=6, FY=3, FX=3, PY=1, PX=1)
    >>> s = Schedule(layer, ("K", "OY"), {"K": 4, "OY": 2}, {"input": 2, "weight": 1, "output": 2})
    >>> t = evaluate(s, Architecture(capacity=1024))
    >>> t.input.read, t.weight.read, t.output.write, t.output.read    # words
    (288, 288, 288, 0)
    >>> t.total_bytes, t.buffer_words
    (864, {'input': 96, 'weight': 144, 'output': 48})
    """

    input: OperandTraffic
    weight: OperandTraffic
    output: OperandTraffic
    buffer_words: dict[str, int]
    buffer_bytes: dict[str, int]   # on-chip bytes, doubled when double-buffered
    macs: int
    output_final_writes: int = 0   # of output.write, the words written at output width
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def operand(self, op: str) -> OperandTraffic:
        return getattr(self, op)

    @property
    def total_words(self) -> int:
        return sum(self.operand(op).words for op in OPERANDS)

    @property
    def total_bytes(self) -> int:
        return sum(self.operand(op).bytes for op in OPERANDS)

    @property
    def bytes_per_mac(self) -> float:
        return self.total_bytes / self.macs

    @property
    def total_buffer_bytes(self) -> int:
        return sum(self.buffer_bytes.values())

    def to_json(self) -> dict[str, Any]:
        """The JSON contract of `evaluate --json`: words per operand, buffers, totals, MACs."""
        return {
            "traffic": {op: {"read": self.operand(op).read, "write": self.operand(op).write} for op in OPERANDS},
            "buffer_words": dict(self.buffer_words),
            "total_words": self.total_words,
            "total_bytes": self.total_bytes,
            "macs": self.macs,
        }

    def to_full_json(self) -> dict[str, Any]:
        d = self.to_json()
        d["traffic_bytes"] = {op: {"read": self.operand(op).read_bytes, "write": self.operand(op).write_bytes}
                              for op in OPERANDS}
        d["buffer_bytes"] = dict(self.buffer_bytes)
        d["bytes_per_mac"] = self.bytes_per_mac
        return d


# ---------------------------------------------------------------------------
# Axes of each operand for one schedule


def operand_axes(schedule: Schedule, op: str, level: int | None = None) -> dict[str, Axis]:
    """The axes of `op`'s block, keyed by the dimension(s) that control them."""
    layer, tiles = schedule.layer, schedule.tiles
    b = schedule.buffers[op] if level is None else level
    pos = {d: j for j, d in enumerate(schedule.order[:b])}

    def tile_axis(d: str) -> TileAxis:
        return TileAxis(layer.dim_size(d), tiles[d], pos.get(d))

    if op == "input":
        return {
            "N": tile_axis("N"), "G": tile_axis("G"), "C": tile_axis("C"),
            "Y": spatial_axis(layer.OY, tiles["OY"], pos.get("OY"), layer.FY, tiles["FY"], pos.get("FY"),
                              layer.SY, layer.DY, layer.PY, layer.IY, read_counts(layer, "Y")),
            "X": spatial_axis(layer.OX, tiles["OX"], pos.get("OX"), layer.FX, tiles["FX"], pos.get("FX"),
                              layer.SX, layer.DX, layer.PX, layer.IX, read_counts(layer, "X")),
        }
    dims = ("G", "K", "C", "FY", "FX") if op == "weight" else ("N", "G", "K", "OY", "OX")
    return {d: tile_axis(d) for d in dims}


def read_counts(layer: Layer, axis: str) -> np.ndarray:
    """`count_below` of the input rows ("Y") or columns ("X") some output of the layer reads
    (`axes.read_positions`), computed once per distinct axis."""
    return _read_counts(*(getattr(layer, n + axis) for n in ("O", "F", "S", "D", "P", "I")))


@functools.lru_cache(maxsize=4096)
def _read_counts(o: int, f: int, s: int, d: int, p: int, i: int) -> np.ndarray:
    counts = read_positions(o, f, s, d, p, i)
    counts.flags.writeable = False      # shared by every caller: nobody may change it
    return counts


def axis_of(op: str, dim: str) -> str | None:
    """Key of the axis of `op` that the loop over `dim` controls, None if irrelevant."""
    if dim not in RELEVANT[op]:
        return None
    if op == "input" and dim in ("OY", "FY"):
        return "Y"
    if op == "input" and dim in ("OX", "FX"):
        return "X"
    return dim


def block_steps(schedule: Schedule, op: str, step_cost: Callable[[int], int] | None = None) -> int:
    """Σ over the steps of `op`'s block sequence of the words each step moves (or `step_cost` of them).

    Step 0 loads the first live block; each later step loads what the new
    block lacks from the last live one. For the output this counts one write
    per run of equal blocks.
    """
    order = schedule.order
    b = schedule.buffers[op]
    axes = operand_axes(schedule, op)
    keys = list(axes)
    # the first live block: every axis's first live set
    first_entries = [[(f, 0, c) for f, _, c in axes[k].split(-1)] for k in keys]
    total = combine([axes[k] for k in keys], first_entries, step_cost)
    multiplier = 1  # product of the trips of irrelevant loops outside the current one
    for j in range(b):
        dim = order[j]
        trips = schedule.trips(dim)
        owner = axis_of(op, dim)
        if trips > 1:
            if owner is None:
                ents = [axes[k].split(j) for k in keys]
                total += multiplier * (trips - 1) * combine([axes[k] for k in keys], ents, step_cost)
            else:
                ents = [axes[k].owned_split(j) if k == owner else axes[k].split(j) for k in keys]
                total += multiplier * combine([axes[k] for k in keys], ents, step_cost)
        if owner is None:
            multiplier *= trips
    return total


def buffer_words(schedule: Schedule, op: str) -> int:
    """The operand's largest block (the product of each axis's largest set)."""
    n = 1
    for axis in operand_axes(schedule, op).values():
        n *= axis.max_size()
    return n


def _step_cost(bits: int, gran: int) -> Callable[[int], int]:
    """`step_bytes` of a step of `words` words of `bits` bits."""
    return lambda words: step_bytes(words, bits, gran)


def evaluate(schedule: Schedule, arch: Architecture | None = None) -> Traffic:
    """Exact traffic and buffer sizes of `schedule` on `arch` (defaults: 8-bit data, 32-bit partial sums).

    A schedule whose input axes have more tile iterations than the model
    walks (docs/limits.md) is refused before anything is allocated.

    >>> from convsched import Architecture, Layer, Schedule, evaluate
    >>> layer = Layer(K=8, C=4, OY=6, OX=6, FY=3, FX=3, PY=1, PX=1)
    >>> s = Schedule(layer, ("K", "OY"), {"K": 4, "OY": 2}, {"input": 2, "weight": 1, "output": 2})
    >>> traffic = evaluate(s, Architecture(capacity=1024))
    >>> traffic.total_bytes, traffic.macs
    (864, 10368)
    """
    check_model_grid(schedule)
    arch = arch or Architecture()
    layer = schedule.layer
    gran = arch.dma_granularity
    reads: dict[str, OperandTraffic] = {}
    for op, bits in (("input", arch.input_bits), ("weight", arch.weight_bits)):
        words = block_steps(schedule, op)
        nbytes = block_steps(schedule, op, _step_cost(bits, gran)) if gran else bits_to_bytes(words * bits)
        reads[op] = OperandTraffic(words, 0, nbytes, 0)

    # Output: every block is visited the same number of runs r; each run ends in a
    # write, all but a block's first run start with a read-back, its last write is final.
    writes = block_steps(schedule, "output")
    out_words = layer.output_words
    spills = writes - out_words
    if gran:
        runs = writes // out_words
        psum, final = _step_cost(arch.psum_bits, gran), _step_cost(arch.output_bits, gran)
        hist = _block_size_histogram(schedule, "output")
        read_b = sum(c * (runs - 1) * psum(s) for s, c in hist)
        write_b = sum(c * ((runs - 1) * psum(s) + final(s)) for s, c in hist)
    else:
        read_b = bits_to_bytes(spills * arch.psum_bits)
        write_b = bits_to_bytes(spills * arch.psum_bits) + bits_to_bytes(out_words * arch.output_bits)
    output = OperandTraffic(spills, writes, read_b, write_b)

    bw = {op: buffer_words(schedule, op) for op in OPERANDS}
    return Traffic(reads["input"], reads["weight"], output, bw, arch.buffer_bytes(bw), layer.macs,
                   output_final_writes=out_words)


def _block_size_histogram(schedule: Schedule, op: str) -> list[tuple[int, int]]:
    """(size, number of distinct blocks) for an operand whose axes are all tile axes."""
    hist: dict[int, int] = {1: 1}
    for axis in operand_axes(schedule, op).values():
        assert isinstance(axis, TileAxis)
        sizes = ([(axis.tile, axis.trips - 1), (axis.last, 1)] if axis.pos is not None else [(axis.size, 1)])
        new: dict[int, int] = {}
        for s, c in hist.items():
            for t, k in sizes:
                if k:
                    new[s * t] = new.get(s * t, 0) + c * k
        hist = new
    return list(hist.items())


__all__ = ["Traffic", "OperandTraffic", "evaluate", "block_steps", "buffer_words", "RELEVANT",
           "Entry", "GridAxis"]
