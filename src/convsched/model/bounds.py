"""Lower bounds on the off-chip traffic of one layer under a buffer capacity.

Every bound here is in **bytes** of the convsched semantics (docs/semantics.md)
and must never exceed the traffic of a schedule that fits the capacity;
`tests/test_bounds.py` checks that against the optimizer and the simulator.
docs/bounds.md states each formula, where it comes from, its conditions and
the restrictions added to keep it valid.

* `compulsory_bytes` -- every input element some output reads (padding and
  stride/dilation gaps excluded), every weight, every output written once at
  the output word size.
* `chen_bound_words` -- Chen, Han and Wang, "Communication Lower Bound in
  Convolution Accelerators" (HPCA 2020, arXiv 1911.05662): with sliding-window
  reuse `R` (how many filter taps can read one input element) the words moved
  are at least ``2 * MACs / sqrt(R * S)`` for an on-chip memory of `S` words.
* `matmul_bound_words` -- the classic matrix-multiply bound with the constant
  of Smith, Lowery, Langou and van de Geijn ("A Tight I/O Lower Bound for
  Matrix Multiplication", arXiv 1702.02017): ``2 * M * N * K / sqrt(S)`` for the
  im2col GEMM. It ignores window reuse, so it is only valid when no input
  element can be read by two taps (`R == 1`).
* `lower_bound_bytes(layer, arch)` -- the largest valid one.

Units. The published bounds count words in one shared on-chip memory of `S`
words. convsched's capacity is in bytes, with one word size per operand and
the output buffer at partial-sum width. `capacity_words` converts safely: the
most words the buffers can hold at once is the capacity divided by the
smallest on-chip word size (halved when double-buffered). Word bounds become
byte bounds by charging the compulsory part at each operand's own word size
and any excess at the smallest word size an extra transfer can have (input,
weight or partial sum; final output writes are compulsory): `words_to_bytes`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from ..core.arch import Architecture, bits_to_bytes
from ..core.layer import Layer

#: Bound names, in the order `LayerBounds.to_dict` lists them.
BOUND_NAMES = ("compulsory", "chen", "matmul")


# ---------------------------------------------------------------------------
# layer facts


def _axis(layer: Layer, axis: str) -> tuple[int, int, int, int, int, int]:
    return tuple(getattr(layer, n + axis) for n in ("O", "F", "S", "D", "P", "I"))  # type: ignore[return-value]


@lru_cache(maxsize=4096)
def _axis_reads(o: int, f: int, s: int, d: int, p: int, i: int) -> tuple[int, int, int]:
    """(read positions, real (output, tap) pairs, most taps reading one position) along one axis."""
    uses = [0] * i
    for oo in range(o):
        base = oo * s - p
        for ff in range(f):
            pos = base + ff * d
            if 0 <= pos < i:
                uses[pos] += 1
    read = sum(1 for u in uses if u)
    return read, sum(uses), max(uses) if uses else 0


def compulsory_words(layer: Layer) -> dict[str, int]:
    """Words every schedule moves: read inputs, all weights, each output once."""
    ry = _axis_reads(*_axis(layer, "Y"))[0]
    rx = _axis_reads(*_axis(layer, "X"))[0]
    return {"input": layer.N * layer.C * ry * rx, "weight": layer.weight_words, "output": layer.output_words}


def compulsory_bytes(layer: Layer, arch: Architecture) -> int:
    """Bytes of `compulsory_words`, each operand at its word size (outputs at the output size)."""
    w = compulsory_words(layer)
    return (bits_to_bytes(w["input"] * arch.input_bits) + bits_to_bytes(w["weight"] * arch.weight_bits)
            + bits_to_bytes(w["output"] * arch.output_bits))


def real_macs(layer: Layer) -> int:
    """MACs that read a real input element (MACs on padding read nothing and are not counted)."""
    py = _axis_reads(*_axis(layer, "Y"))[1]
    px = _axis_reads(*_axis(layer, "X"))[1]
    return layer.N * layer.K * layer.Cg * py * px


def window_reuse(layer: Layer) -> int:
    """R: the most (output, filter tap) pairs of one output channel that read one input element.

    Chen et al. write R = FY*FX / (SY*SX) (stride <= filter, no dilation); this
    is the exact maximum for any stride, dilation and padding, and 1 when the
    windows never overlap (1x1 filters, stride >= filter).
    """
    return max(1, _axis_reads(*_axis(layer, "Y"))[2] * _axis_reads(*_axis(layer, "X"))[2])


def capacity_words(arch: Architecture, capacity: int | None = None) -> int:
    """S: the most words the on-chip buffers can hold at once (see the module docstring)."""
    if capacity is None and arch.capacity is None and arch.capacity_per_operand is None:
        raise ValueError("the architecture has no buffer capacity; give one")
    factor = arch.buffer_factor
    if capacity is not None or arch.capacity is not None:
        cap = capacity if capacity is not None else arch.capacity
        smallest = min(arch.input_bits, arch.weight_bits, arch.psum_bits)
        return (cap * 8 // factor) // smallest
    caps = arch.capacity_per_operand
    return sum((c * 8 // factor) // arch.buffer_bits(op) for c, op in zip(caps, ("input", "weight", "output")))


# ---------------------------------------------------------------------------
# published bounds, in words


def chen_bound_words(layer: Layer, S: int) -> float:
    """Chen, Han, Wang (HPCA 2020): words moved >= 2 * MACs / sqrt(R * S) (leading term)."""
    return 2.0 * real_macs(layer) / math.sqrt(window_reuse(layer) * max(S, 1))


def matmul_bound_words(layer: Layer, S: int) -> float:
    """Smith et al.: words moved >= 2 * M * N * K / sqrt(S) for the im2col GEMM (M*N*K = real MACs).

    Valid for the convolution only without window reuse (`window_reuse == 1`).
    """
    return 2.0 * real_macs(layer) / math.sqrt(max(S, 1))


# ---------------------------------------------------------------------------
# bytes


def words_to_bytes(layer: Layer, arch: Architecture, total_words: float) -> int:
    """A byte bound from a bound on the total words moved (reads, read-backs and writes).

    Every schedule moves the compulsory words, each at its operand's size
    (outputs once at the output size). Any word beyond them is an input or
    weight re-read or a partial-sum spill or read-back, so it costs at least
    the smallest of the input, weight and partial-sum sizes.
    """
    comp_words = sum(compulsory_words(layer).values())
    excess = max(0.0, total_words - comp_words)
    smallest = min(arch.input_bits, arch.weight_bits, arch.psum_bits)
    return compulsory_bytes(layer, arch) + math.floor(excess * smallest / 8)


@dataclass(frozen=True)
class LayerBounds:
    """All bounds of one layer at one capacity, in bytes; `valid` names those that apply."""

    S_words: int
    window_reuse: int
    compulsory: int
    chen: int | None          # None where its conditions do not hold
    matmul: int | None
    matmul_unrestricted: int = 0   # the GEMM bound as a GEMM-based model would claim it (may be invalid)
    notes: tuple[str, ...] = ()

    @property
    def best(self) -> int:
        return max(v for v in (self.compulsory, self.chen, self.matmul) if v is not None)

    @property
    def best_name(self) -> str:
        vals = {n: getattr(self, n) for n in BOUND_NAMES if getattr(self, n) is not None}
        return max(vals, key=lambda n: (vals[n], -BOUND_NAMES.index(n)))

    def to_dict(self) -> dict:
        return {"S_words": self.S_words, "window_reuse": self.window_reuse, "compulsory": self.compulsory,
                "chen": self.chen, "matmul": self.matmul, "matmul_unrestricted": self.matmul_unrestricted,
                "lower_bound": self.best,
                "lower_bound_kind": self.best_name, "notes": list(self.notes)}


def layer_bounds(layer: Layer, arch: Architecture, capacity: int | None = None) -> LayerBounds:
    """Every bound of `layer` on `arch` (capacity in bytes; the architecture's when not given)."""
    S = capacity_words(arch, capacity)
    R = window_reuse(layer)
    comp = compulsory_bytes(layer, arch)
    notes: list[str] = []
    chen = words_to_bytes(layer, arch, chen_bound_words(layer, S))
    if R == 1:
        matmul = words_to_bytes(layer, arch, matmul_bound_words(layer, S))
    else:
        matmul = None
        notes.append(f"matmul bound not valid: an input element is read by up to {R} taps (window reuse)")
    # What the im2col GEMM bound gives if applied blindly (all MACs, padding too; no window reuse).
    unrestricted = words_to_bytes(layer, arch, 2.0 * layer.macs / math.sqrt(max(S, 1)))
    return LayerBounds(S, R, comp, chen, matmul, unrestricted, tuple(notes))


def lower_bound_bytes(layer: Layer, arch: Architecture) -> int:
    """The largest valid lower bound on the layer's traffic in bytes at the architecture's capacity."""
    return layer_bounds(layer, arch).best
