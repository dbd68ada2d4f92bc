"""Byte sizes with units: `512B`, `64KiB`, `1MiB`, `64kB`, and ranges `8KiB..1MiB`."""

from __future__ import annotations

import re

from .errors import ConvschedError

_UNITS = {
    "": 1, "b": 1,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3,
    "k": 1024, "m": 1024**2,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int) -> int:
    """Bytes in `text`; KiB/MiB/GiB are powers of 1024, kB/MB/GB powers of 1000."""
    if isinstance(text, bool):
        raise ConvschedError(f"size {text!r} is not a size; write e.g. 64KiB")
    if isinstance(text, int):
        if text <= 0:
            raise ConvschedError(f"size {text} must be positive; write e.g. 64KiB")
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise ConvschedError(f"size {text!r} is not a number with a unit; write e.g. 512B, 64KiB, 1MiB or 64kB")
    number, unit = m.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ConvschedError(f"unknown unit {unit!r} in size {text!r}; use B, KiB, MiB, GiB, kB, MB or GB")
    value = float(number) * factor
    if value != int(value) or value <= 0:
        raise ConvschedError(f"size {text!r} must be a positive whole number of bytes")
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
