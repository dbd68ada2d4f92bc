"""The search constraints as the command line writes them (`--order`, `--untiled`, `--tile`,
`--tile-max`, `--tile-min`, `--buffers`), parsed into the library's `Constraints`."""

from __future__ import annotations

import re
from typing import Sequence

from ..core.arch import OPERANDS
from ..core.errors import ConvschedError
from ..core.layer import DIMS
from ..search.space import Constraints


def _dim_list(text: str, what: str) -> tuple[str, ...]:
    items = [t.strip().upper() for t in str(text).replace(" ", ",").split(",")]
    items = [t for t in items if t]
    if not items:
        raise ConvschedError(f"{what} {text!r} names no dimension; write e.g. K,C,OY,OX")
    for d in items:
        if d not in DIMS:
            raise ConvschedError(f"unknown dimension {d!r} in {what} {text!r}; use some of {' '.join(DIMS)}")
    dup = sorted({d for d in items if items.count(d) > 1})
    if dup:
        raise ConvschedError(f"{what} {text!r} repeats {', '.join(dup)}; list each dimension once")
    return tuple(items)


def _assignments(texts: Sequence[str], what: str, keys: Sequence[str], upper: bool = True) -> dict[str, int]:
    out: dict[str, int] = {}
    for text in texts:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise ConvschedError(f"{what} {part!r} is not NAME=NUMBER; write e.g. {keys[0]}=2")
            name, value = (s.strip() for s in part.split("=", 1))
            name = name.upper() if upper else name.lower()
            if name not in keys:
                kind = "dimension" if upper else "operand"
                raise ConvschedError(f"unknown {kind} {name!r} in {what} {part!r}; use some of {' '.join(keys)}")
            if name in out:
                raise ConvschedError(f"{what} gives {name} twice; give it once")
            # plain ASCII digits as written: int() would also take '1_6' and '٣'
            if not re.fullmatch(r"-?[0-9]{1,40}", value):
                raise ConvschedError(f"{what} {part!r}: {value!r} is not a whole number; write digits 0-9")
            out[name] = int(value)
    return out


def constraints_from_text(orders: Sequence[str] = (), untiled: str | None = None, tile: Sequence[str] = (),
                          tile_max: Sequence[str] = (), tile_min: Sequence[str] = (),
                          buffers: str | None = None) -> Constraints | None:
    """Constraints from the CLI's text: `--order K,C,OY,OX` (repeatable), `--untiled FY,FX`,
    `--tile K=16` (fixed), `--tile-max K=32`, `--tile-min OY=2`, `--buffers input=2,weight=1,output=4`.

    None when nothing is constrained. Contradictions that need no layer are
    caught here; the rest (e.g. a tile larger than the layer) by `Constraints.check`.
    """
    order_t = tuple(_dim_list(o, "--order") for o in orders) or None
    if order_t is not None and len(set(order_t)) != len(order_t):
        raise ConvschedError("the same --order is given twice; give each allowed order once")
    unt = frozenset(_dim_list(untiled, "--untiled")) if untiled else frozenset()
    fixed = _assignments(tile, "--tile", DIMS)
    hi = _assignments(tile_max, "--tile-max", DIMS)
    lo = _assignments(tile_min, "--tile-min", DIMS)
    for name, vals in (("--tile", fixed), ("--tile-max", hi), ("--tile-min", lo)):
        for d, v in vals.items():
            if v < 1:
                raise ConvschedError(f"{name} {d}={v} must be at least 1")
    both = sorted(set(fixed) & (set(hi) | set(lo)), key=DIMS.index)
    if both:
        raise ConvschedError(f"{', '.join(both)} has a fixed --tile and a --tile-min/--tile-max; give one of them")
    clash = sorted(unt & (set(fixed) | set(hi) | set(lo)), key=DIMS.index)
    if clash:
        raise ConvschedError(f"{', '.join(clash)} is both --untiled and given a tile size; drop one of them")
    for d, v in fixed.items():
        lo[d] = hi[d] = v
    levels = None
    if buffers is not None:
        if order_t is None or len(order_t) != 1:
            raise ConvschedError("--buffers needs exactly one --order (levels count the loops of that order)")
        levels = _assignments([buffers], "--buffers", OPERANDS, upper=False)
        missing = [op for op in OPERANDS if op not in levels]
        if missing:
            raise ConvschedError(f"--buffers misses {', '.join(missing)}; give input=..,weight=..,output=..")
    if order_t is None and not unt and not lo and not hi and levels is None:
        return None
    return Constraints(orders=order_t, untiled=unt, tile_min=lo, tile_max=hi, buffers=levels)
