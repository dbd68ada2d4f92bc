"""A schedule: the tile loops (outermost first), tile sizes, and where each buffer sits.

`buffers[op]` is the number of tile loops above that operand's buffer: 0 means
the whole tensor is loaded once, `len(order)` means the buffer holds one tile.
A dimension not in `order` is not tiled (its tile is the whole dimension).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .arch import OPERANDS
from .errors import ConvschedError
from .layer import DIMS, Layer


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Schedule:
    layer: Layer
    order: tuple[str, ...]
    tiles: Mapping[str, int]
    buffers: Mapping[str, int]

    def __post_init__(self) -> None:
        order = tuple(self.order)
        object.__setattr__(self, "order", order)
        for d in order:
            if d not in DIMS:
                raise ConvschedError(f"unknown dimension {d!r} in order; use some of {' '.join(DIMS)}")
        if len(set(order)) != len(order):
            dup = sorted({d for d in order if order.count(d) > 1})
            raise ConvschedError(f"dimension(s) {', '.join(dup)} repeated in order; list each loop once")
        tiles = dict(self.tiles)
        for d, t in tiles.items():
            if d not in DIMS:
                raise ConvschedError(f"unknown dimension {d!r} in tiles; use some of {' '.join(DIMS)}")
            size = self.layer.dim_size(d)
            if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= size:
                raise ConvschedError(f"tile {d}={t!r} is out of range; it must be a whole number from 1 to {size}")
            if d not in order and t != size:
                raise ConvschedError(f"tile {d}={t} is smaller than {d}={size} but {d} has no loop in order; "
                                     f"add {d} to order or drop its tile")
        full = {d: tiles.get(d, self.layer.dim_size(d)) if d in order else self.layer.dim_size(d) for d in DIMS}
        object.__setattr__(self, "tiles", full)
        buffers = dict(self.buffers)
        unknown = sorted(map(str, set(buffers) - set(OPERANDS)))
        if unknown:
            raise ConvschedError(f"unknown operand(s) {', '.join(unknown)} in buffers; use input, weight, output")
        for op in OPERANDS:
            if op not in buffers:
                raise ConvschedError(f"buffers has no level for {op}; give input, weight and output")
            b = buffers[op]
            if isinstance(b, bool) or not isinstance(b, int) or not 0 <= b <= len(order):
                raise ConvschedError(f"buffer level {op}={b!r} is out of range; it must be from 0 to {len(order)} "
                                     "(the number of tile loops above the buffer)")
        object.__setattr__(self, "buffers", {op: buffers[op] for op in OPERANDS})

    # ---- derived -------------------------------------------------------------
    def trips(self, dim: str) -> int:
        return ceil_div(self.layer.dim_size(dim), self.tiles[dim])

    @property
    def n_tiles(self) -> int:
        n = 1
        for d in self.order:
            n *= self.trips(d)
        return n

    # ---- I/O -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer.to_dict(), "order": list(self.order),
                "tiles": {d: self.tiles[d] for d in self.order}, "buffers": dict(self.buffers)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], layer: Layer | None = None) -> "Schedule":
        if not isinstance(data, Mapping):
            raise ConvschedError("a schedule must be a JSON object with layer, order, tiles and buffers")
        unknown = sorted(map(str, set(data) - {"layer", "order", "tiles", "buffers", "name"}))
        if unknown:
            raise ConvschedError(f"unknown schedule key(s) {', '.join(unknown)}; use layer, order, tiles, buffers")
        if layer is None:
            if "layer" not in data:
                raise ConvschedError("schedule has no 'layer'; add the layer's fields, e.g. {\"K\": 64, \"C\": 64, ...}")
            layer = Layer.from_dict(data["layer"])
        order = data.get("order", [])
        if not isinstance(order, list) or not all(isinstance(d, str) for d in order):
            raise ConvschedError("'order' must be a list of dimension names, outermost first, e.g. [\"K\", \"C\"]")
        tiles = data.get("tiles", {})
        if not isinstance(tiles, Mapping):
            raise ConvschedError("'tiles' must map dimension names to tile sizes, e.g. {\"K\": 16}")
        buffers = data.get("buffers")
        if not isinstance(buffers, Mapping):
            raise ConvschedError("'buffers' must map input, weight and output to buffer levels")
        return cls(layer, tuple(order), dict(tiles), dict(buffers))

    @classmethod
    def from_file(cls, path: str | Path) -> "Schedule":
        p = Path(path)
        if not p.is_file():
            raise ConvschedError(f"schedule file {path} does not exist or is not a file")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConvschedError(f"schedule file {path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
        except UnicodeDecodeError:
            raise ConvschedError(f"schedule file {path} is not UTF-8 text; save it as UTF-8 JSON") from None
        except RecursionError:
            raise ConvschedError(f"schedule file {path} is nested too deeply to be a schedule") from None
        return cls.from_dict(data)
