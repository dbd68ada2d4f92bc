"""An output check independent of the generated C: replay the program's seeded data in numpy,
convolve with the simulator's reference, truncate like the C code, and hash like the C code."""

from __future__ import annotations

import numpy as np

from ..model.simulate import reference_conv
from .emit import KernelPlan

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, exactly as `cs_mix` in the C runtime (uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def random_values(seed: int, stream: int, n: int, r: int) -> np.ndarray:
    """`cs_random(seed, stream, i, r)` for i in 0..n-1: uniform in [-r, r-1]."""
    with np.errstate(over="ignore"):
        base = _mix(np.array([(seed * 4 + stream) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
        z = _mix(base + np.arange(n, dtype=np.uint64))
    return (z % np.uint64(2 * r)).astype(np.int64) - r


def wrap(v: np.ndarray, bits: int) -> np.ndarray:
    """Two's complement truncation to `bits` (as `cs_wrap`)."""
    m = (1 << bits) - 1
    u = v & m
    return np.where(u >> (bits - 1), u - (m + 1), u)


def output_hash(plan: KernelPlan, seed: int) -> int:
    """The hash the C program prints for a correct output."""
    L = plan.schedule.layer
    x = random_values(seed, 0, L.input_words, plan.in_range).reshape(L.N, L.G, L.Cg, L.IY, L.IX)
    w = random_values(seed, 1, L.weight_words, plan.w_range).reshape(L.G, L.Kg, L.Cg, L.FY, L.FX)
    y = np.rint(reference_conv(L, x.astype(np.float64), w.astype(np.float64))).astype(np.int64)
    y = wrap(y.reshape(-1), plan.arch.output_bits)
    with np.errstate(over="ignore"):
        h = (y.astype(np.uint64) * _mix(np.arange(y.size, dtype=np.uint64))).sum(dtype=np.uint64)
    return int(h)
