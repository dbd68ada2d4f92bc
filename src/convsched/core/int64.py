"""The limits under which convsched's 64-bit integer arithmetic is provably exact (docs/limits.md).

The vectorised model, the optimizer and the HWC model compute in 64-bit
integers (numpy int64). Rather than print a figure that silently wrapped
around, every input is checked against limits under which every such
integer provably fits (the argument is in docs/limits.md):

* word sizes of at most `MAX_WORD_BITS` bits;
* buffer capacities (and DMA granularities) of at most `MAX_BUFFER_BYTES`;
* every layer field (extents, strides, dilations, paddings, input sizes) at
  most `MAX_EXTENT`;
* a layer's traffic bound (`Layer.traffic_bound`) at most `MAX_TRAFFIC_BOUND`.

The core types (`Layer`, `Architecture`) check these on construction; the
limits of the tools (the model's grid, the simulator, the generated C, the
optimizer's tables) are in `limits.py`.
"""

from __future__ import annotations

from .errors import ConvschedError

#: Where the limits are documented; every refusal names it.
DOC = "docs/limits.md"

#: Bits of a word (input, weight, partial sum, output): 64-bit accumulators are the widest real ones.
MAX_WORD_BITS = 64
#: Bytes of an on-chip buffer capacity (shared, per operand, the HWC's total) or a DMA granularity: 1 PiB.
MAX_BUFFER_BYTES = 1 << 50
#: Any one layer field: N, G, K, C, OY, OX, FY, FX, strides, dilations, paddings, IY, IX.
MAX_EXTENT = 1 << 24
#: A layer's traffic bound (`Layer.traffic_bound`): 2**48, about 2.8e14.
MAX_TRAFFIC_BOUND = 1 << 48


def axis_reach(o: int, f: int, s: int, d: int) -> int:
    """The largest number of input rows (or columns) one (output tile, filter tile) pair's blocks add
    up to per tile pair, bounded two ways (docs/limits.md): by the padded input extent and by 2S + 2D + 1."""
    return min((o - 1) * s + (f - 1) * d + 1, 2 * s + 2 * d + 1)


def check_bits(name: str, value: int) -> None:
    """Refuse a word size above MAX_WORD_BITS."""
    if value > MAX_WORD_BITS:
        raise ConvschedError(f"{name}={value:,} is above the limit of {MAX_WORD_BITS} bits per word ({DOC})")


def check_bytes(name: str, value: int) -> None:
    """Refuse a buffer size (or DMA granularity) above MAX_BUFFER_BYTES."""
    if value > MAX_BUFFER_BYTES:
        raise ConvschedError(f"{name} of {value:,} bytes is above the limit of {MAX_BUFFER_BYTES:,} bytes "
                             f"(1 PiB, {DOC})")
