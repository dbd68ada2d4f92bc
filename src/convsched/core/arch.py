"""The architecture: word sizes, on-chip buffer capacity, double buffering, DMA granularity."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from .dims import ceil_div
from .errors import ConvschedError
from .fileio import load_user_mapping, shorten
from .int64 import check_bits, check_bytes
from .units import format_size_exact, parse_size

OPERANDS: tuple[str, ...] = ("input", "weight", "output")
#: The word sizes an architecture has: the operands', and the partial sums' (the output buffer's words).
WORDS: tuple[str, ...] = ("input", "weight", "psum", "output")


def word_sizes(bits: object) -> dict[str, int]:
    """The `bits` of an architecture or HWC file (or `--bits`) as `*_bits` fields: one number for every
    word, or a mapping of some of input, weight, psum and output to their sizes."""
    if isinstance(bits, int) and not isinstance(bits, bool):
        return {f"{w}_bits": bits for w in WORDS}
    if isinstance(bits, Mapping):
        bad = sorted(map(str, set(bits) - set(WORDS)))
        if bad:
            raise ConvschedError(f"unknown word size(s) {', '.join(bad)}; use input, weight, psum, output")
        return {f"{k}_bits": v for k, v in bits.items()}
    raise ConvschedError(f"'bits' must be a number or a mapping of input/weight/psum/output bits, "
                         f"not {shorten(repr(bits), 30)}")


@dataclass(frozen=True)
class Architecture:
    """Word sizes in bits; capacity in bytes (shared, or one per operand).

    The output buffer holds partial sums, so it is sized at `psum_bits`.
    `dma_granularity` (bytes, 0 = off) rounds each step of an operand's block
    sequence (one load, one spill, one read-back) up to a multiple of it.

    >>> from convsched import Architecture
    >>> arch = Architecture(capacity=1024)          # 8-bit data, 32-bit partial sums
    >>> words = {"input": 96, "weight": 144, "output": 48}
    >>> arch.buffer_bytes(words), arch.fits(words)
    ({'input': 96, 'weight': 144, 'output': 192}, True)
    >>> Architecture.from_dict({"bits": 16, "buffer": "64KiB"}).capacity
    65536
    """

    input_bits: int = 8
    weight_bits: int = 8
    psum_bits: int = 32
    output_bits: int = 8
    capacity: int | None = None
    capacity_per_operand: tuple[int, int, int] | None = None  # input, weight, output
    double_buffer: bool = False
    dma_granularity: int = 0

    def __post_init__(self) -> None:
        for name in ("input_bits", "weight_bits", "psum_bits", "output_bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConvschedError(f"{name}={v!r} must be a positive whole number of bits")
            check_bits(name, v)
        if self.capacity is not None and self.capacity_per_operand is not None:
            raise ConvschedError("give one shared buffer capacity or one per operand, not both")
        if self.capacity is not None:
            if self.capacity < 1:
                raise ConvschedError(f"buffer capacity {self.capacity} must be positive")
            check_bytes("buffer capacity", self.capacity)
        if self.capacity_per_operand is not None:
            if len(self.capacity_per_operand) != 3 or any(c < 1 for c in self.capacity_per_operand):
                raise ConvschedError("per-operand capacities must be three positive sizes (input, weight, output)")
            for op, c in zip(OPERANDS, self.capacity_per_operand):
                check_bytes(f"{op} buffer capacity", c)
        if self.dma_granularity < 0:
            raise ConvschedError(f"DMA granularity {self.dma_granularity} must not be negative")
        check_bytes("DMA granularity", self.dma_granularity)

    # ---- word sizes --------------------------------------------------------
    def buffer_bits(self, operand: str) -> int:
        """Bits per word as stored in the operand's on-chip buffer."""
        return {"input": self.input_bits, "weight": self.weight_bits, "output": self.psum_bits}[operand]

    @property
    def buffer_factor(self) -> int:
        return 2 if self.double_buffer else 1

    def buffer_bytes(self, buffer_words: Mapping[str, int]) -> dict[str, int]:
        """On-chip bytes each operand's buffer costs (doubled when double-buffered)."""
        return {op: bits_to_bytes(buffer_words[op] * self.buffer_bits(op)) * self.buffer_factor
                for op in OPERANDS}

    def fits(self, buffer_words: Mapping[str, int]) -> bool:
        need = self.buffer_bytes(buffer_words)
        if self.capacity is not None:
            return sum(need.values()) <= self.capacity
        if self.capacity_per_operand is not None:
            return all(need[op] <= cap for op, cap in zip(OPERANDS, self.capacity_per_operand))
        return True

    def with_capacity(self, capacity: int | None) -> "Architecture":
        return replace(self, capacity=capacity, capacity_per_operand=None)

    # ---- I/O ---------------------------------------------------------------
    @classmethod
    def from_flags(cls, bits: int | None = None, psum_bits: int | None = None, **kw: Any) -> "Architecture":
        """`--bits N` sets every word size; `--psum-bits M` then overrides partial sums."""
        sizes = word_sizes(bits) if bits is not None else {}
        if psum_bits is not None:
            sizes["psum_bits"] = psum_bits
        return cls(**sizes, **kw)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Architecture":
        if not isinstance(data, Mapping):
            raise ConvschedError("an architecture file must be a YAML mapping (bits, buffer, double_buffer, dma_granularity)")
        known = {"bits", "buffer", "double_buffer", "dma_granularity"}
        unknown = sorted(map(str, set(data) - known))
        if unknown:
            raise ConvschedError(f"unknown architecture key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        kw: dict[str, Any] = word_sizes(data.get("bits", {}))
        buf = data.get("buffer")
        if isinstance(buf, Mapping):
            bad = sorted(map(str, set(buf) - set(OPERANDS)))
            if bad or set(buf) != set(OPERANDS):
                raise ConvschedError("a per-operand 'buffer' needs exactly input, weight and output sizes")
            kw["capacity_per_operand"] = tuple(_size(f"buffer.{op}", buf[op]) for op in OPERANDS)
        elif buf is not None:
            kw["capacity"] = _size("buffer", buf)
        db = data.get("double_buffer", False)
        if not isinstance(db, bool):
            raise ConvschedError("'double_buffer' must be true or false")
        kw["double_buffer"] = db
        gran = data.get("dma_granularity", 0)
        kw["dma_granularity"] = 0 if gran is None or (type(gran) is int and gran == 0) else _size("dma_granularity", gran)
        return cls(**kw)

    @classmethod
    def from_file(cls, path: str | Path) -> "Architecture":
        return cls.from_dict(load_user_mapping(path, "architecture file"))

    def to_dict(self, sizes_with_units: bool = False) -> dict[str, Any]:
        """The `from_dict` form. Sizes are integer bytes (for JSON output), or with
        `sizes_with_units` strings like '64KiB' that an architecture file takes back."""
        size = format_size_exact if sizes_with_units else (lambda n: n)
        d: dict[str, Any] = {"bits": {"input": self.input_bits, "weight": self.weight_bits,
                                      "psum": self.psum_bits, "output": self.output_bits}}
        if self.capacity is not None:
            d["buffer"] = size(self.capacity)
        elif self.capacity_per_operand is not None:
            d["buffer"] = {op: size(c) for op, c in zip(OPERANDS, self.capacity_per_operand)}
        d["double_buffer"] = self.double_buffer
        d["dma_granularity"] = size(self.dma_granularity) if self.dma_granularity else 0
        return d


def _size(key: str, value: object) -> int:
    """A size from a file, its key named in the message when it is refused."""
    try:
        return parse_size(value)
    except ConvschedError as e:
        raise ConvschedError(f"'{key}': {e}") from None


def bits_to_bytes(bits: int) -> int:
    """Whole bytes holding `bits` (rounded up: sub-byte words pack)."""
    return ceil_div(bits, 8)


def step_bytes(words: int, bits: int, granularity: int) -> int:
    """Bytes of one DMA step (a block load, a spill, a read-back) of `words` words of `bits` bits: whole
    bytes, rounded up to a multiple of the DMA granularity when there is one (docs/semantics.md)."""
    nbytes = bits_to_bytes(words * bits)
    return ceil_div(nbytes, granularity) * granularity if granularity else nbytes


def words_to_bytes(words, bits: int):
    """Whole bytes holding `words` words of `bits` bits each (sub-byte words pack, rounded up once);
    `words` may be an integer or a numpy integer array."""
    if bits % 8 == 0:
        return words * (bits // 8)
    return ceil_div(words * bits, 8)
