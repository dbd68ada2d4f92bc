"""Byte sizes with units: `512B`, `64KiB`, `1MiB`, `64kB`, and ranges `8KiB..1MiB`.

A size always carries its unit. A bare number (`64`) and a bare `K`/`M`/`G`
(`64K`) are refused, because each is read two ways in the wild (64 bytes or
64 KiB; 65,536 or 64,000 bytes): the message suggests `64KiB` or `64KB`.
KiB/MiB/GiB/TiB are powers of 1024, kB/MB/GB/TB powers of 1000 (the unit's
letters are case-insensitive once it names one of these). The largest size
accepted is `MAX_SIZE` (1 PiB): beyond any on-chip buffer, and far inside
the 64-bit integers the optimizer computes with.
"""

from __future__ import annotations

import re
from fractions import Fraction

from .errors import ConvschedError
from .fileio import shorten
from .int64 import MAX_BUFFER_BYTES

#: The largest size convsched accepts anywhere (1 PiB = 2**50 bytes): the buffer limit of docs/limits.md.
MAX_SIZE = MAX_BUFFER_BYTES

_UNITS = {
    "b": 1,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
}
# Units that are read two ways (kibi- or kilo-): refused with both spellings suggested.
_AMBIGUOUS = {"k", "m", "g", "t"}
# ASCII digits only (`\d` would take any script's digits); a bounded number of them, so
# a 5,000-digit number is refused by its length instead of converted.
_SIZE = re.compile(r"^\s*([0-9]{1,30}(?:\.[0-9]{1,30})?)\s*([a-zA-Z]*)\s*$")
_DIGITS = re.compile(r"^\s*[0-9][0-9.]*\s*[a-zA-Z]*\s*$")


def _example(number: str) -> str:
    return f"{number}KiB or {number}KB"


def parse_size(text: str) -> int:
    """Bytes in `text`, e.g. '512B', '64KiB', '1.5MiB', '64kB' (the unit is required)."""
    if isinstance(text, bool) or not isinstance(text, str):
        if isinstance(text, int) and not isinstance(text, bool) and text <= 0:
            raise ConvschedError(f"size {text} must be positive; write e.g. 64KiB")
        if isinstance(text, int) and not isinstance(text, bool):
            raise ConvschedError(f"size {text} has no unit; write {text}B for bytes, or e.g. {_example(str(text))}")
        raise ConvschedError(f"size {shorten(repr(text))} is not a size; write e.g. 64KiB")
    shown = text if len(text) <= 40 else text[:37] + "..."
    m = _SIZE.match(text)
    if not m:
        if _DIGITS.match(text):
            raise ConvschedError(f"size {shown!r} has too many digits; the largest size is 1PiB "
                                 f"({MAX_SIZE:,} bytes)")
        raise ConvschedError(f"size {shown!r} is not a number with a unit; write e.g. 512B, 64KiB, 1MiB or 64kB")
    number, unit = m.groups()
    if Fraction(number) == 0:
        raise ConvschedError(f"size {text!r} must be a positive whole number of bytes")
    if not unit:
        raise ConvschedError(f"size {text!r} has no unit; write {number}B for bytes, or e.g. {_example(number)}")
    if unit.lower() in _AMBIGUOUS:
        big = unit.upper()
        raise ConvschedError(f"size {text!r}: a bare {unit!r} is ambiguous; write {number}{big}iB "
                             f"(powers of 1024) or {number}{big}B (powers of 1000)")
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ConvschedError(f"unknown unit {unit!r} in size {text!r}; use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB")
    value = Fraction(number) * factor          # exact: no float rounding
    if value.denominator != 1 or value <= 0:
        raise ConvschedError(f"size {text!r} must be a positive whole number of bytes")
    if value > MAX_SIZE:
        raise ConvschedError(f"size {shown!r} is too large; the largest size is 1PiB ({MAX_SIZE:,} bytes)")
    return int(value)


def parse_size_range(text: str) -> tuple[int, int]:
    """`8KiB..1MiB` -> (8192, 1048576); the low end must not exceed the high end."""
    parts = str(text).split("..")
    if len(parts) != 2:
        raise ConvschedError(f"size range {text!r} must look like 8KiB..1MiB")
    low, high = parse_size(parts[0]), parse_size(parts[1])
    if low > high:
        raise ConvschedError(f"size range {text!r} runs the wrong way round; write {parts[1]}..{parts[0]}")
    return low, high


def format_size(n: float) -> str:
    """Human-readable bytes, binary units (exact when a whole multiple), rounded to a tenth.

    Whole numbers are divided in integer arithmetic, so a size of any magnitude
    prints (a float quotient overflows beyond 1e308); the tenth is rounded half
    to even, as a float's format would.
    """
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor:
            if isinstance(n, int):
                whole, rest = divmod(n, factor)
                if rest == 0:
                    return f"{whole}{unit}"
                tenths, r = divmod(n * 10, factor)
                if 2 * r > factor or (2 * r == factor and tenths % 2):
                    tenths += 1
                return f"{tenths // 10}.{tenths % 10}{unit}"
            q = n / factor
            return f"{q:.0f}{unit}" if q == int(q) else f"{q:.1f}{unit}"
    return f"{n:.0f}B"


def format_size_exact(n: int) -> str:
    """`n` bytes as a size `parse_size` reads back to exactly `n`: the largest unit dividing it."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024),
                         ("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if n >= factor and n % factor == 0:
            return f"{n // factor}{unit}"
    return f"{n}B"
