"""A schedule: the tile loops (outermost first), tile sizes, and where each buffer sits.

`buffers[op]` is the number of tile loops above that operand's buffer: 0 means
the whole tensor is loaded once, `len(order)` means the buffer holds one tile.
A dimension not in `order` is not tiled (its tile is the whole dimension); a
dimension in `order` needs its tile in `tiles` when read from a file.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .arch import OPERANDS, Architecture
from .dims import ceil_div
from .errors import ConvschedError
from .fileio import load_user_data, shorten
from .layer import DIMS, Layer


@dataclass(frozen=True)
class Schedule:
    """A layer's tile loops (`order`, outermost first), their tile sizes, and the loop level each
    operand's buffer sits at (0: above every loop, `len(order)`: inside the innermost); validated on
    construction. A dimension with no loop is not tiled (its tile is the whole dimension).

    >>> from convsched import Layer, Schedule
    >>> layer = Layer(K=8, C=4, OY=6, OX=6, FY=3, FX=3, PY=1, PX=1)
    >>> s = Schedule(layer, ("K", "OY"), {"K": 4, "OY": 2}, {"input": 2, "weight": 1, "output": 2})
    >>> s.n_tiles, s.tiles["K"], s.tiles["C"]
    (6, 4, 4)
    >>> Schedule(layer, ("K", "K"), {}, {"input": 0, "weight": 0, "output": 0})
    Traceback (most recent call last):
    convsched.core.errors.ConvschedError: dimension(s) K repeated in order; list each loop once
    """

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
        """A schedule from its JSON form; the file's other keys (`name`, `arch`, ...) are left to
        `schedule_input_from_data`."""
        if not isinstance(data, Mapping):
            raise ConvschedError("a schedule must be a JSON object with layer, order, tiles and buffers")
        unknown = sorted(map(str, set(data) - set(SCHEDULE_KEYS) - set(_FILE_KEYS)))
        if unknown:
            raise ConvschedError(f"unknown schedule key(s) {', '.join(unknown)}; use layer, order, tiles, buffers "
                                 f"(and optionally {', '.join(_FILE_KEYS)})")
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
        schedule = cls(layer, tuple(order), dict(tiles), dict(buffers))
        for d in schedule.order:
            # a loop without a tile size is not taken as untiled: the file says what it means
            if d not in tiles:
                size = layer.dim_size(d)
                raise ConvschedError(f"'order' has {d} but 'tiles' gives no size for it; add \"{d}\": T "
                                     f"(T from 1 to {size}; {size} leaves {d} untiled) or drop {d} from order")
        return schedule

    @classmethod
    def from_file(cls, path: str | Path) -> "Schedule":
        """The schedule in a schedule file (see `load_schedule` for what it may hold)."""
        return load_schedule(path).schedule


# ---- schedule files ------------------------------------------------------------------------
#: The keys of a schedule proper.
SCHEDULE_KEYS: tuple[str, ...] = ("layer", "order", "tiles", "buffers")
# What a schedule file may carry beside it (`optimize --save-schedules` writes them all):
# the layer's name, its network, the architecture it was optimised for, and the network's
# layers of the same shape this schedule serves.
_FILE_KEYS: tuple[str, ...] = ("name", "network", "arch", "used_by")


@dataclass(frozen=True)
class ScheduleInput:
    """A schedule as a file gives it, with its layer's name and the architecture it was made
    for when the file says (a saved schedule, or a layer of `optimize --json` output)."""

    schedule: Schedule
    name: str | None = None
    arch: Architecture | None = None


def load_schedule(path: str | Path, layer_name: str | None = None) -> ScheduleInput:
    """The schedule in a file: a schedule (JSON; YAML when named .yaml/.yml), or one layer,
    chosen by `layer_name`, of `convsched optimize --json` output."""
    data = load_user_data(path, "schedule file", default="json")
    return schedule_input_from_data(data, f"schedule file {path}", layer_name)


def schedule_input_from_data(data: Any, where: str, layer_name: str | None = None) -> ScheduleInput:
    """`load_schedule` on parsed data; `where` names the source in messages."""
    if isinstance(data, Mapping) and "network" in data and "points" in data:
        raise ConvschedError(f"{where} is 'convsched sweep' output: network totals per buffer size, no schedules; "
                             "save schedules with: convsched optimize TARGET --buffer SIZE --save-schedules DIR")
    if isinstance(data, Mapping) and "network" in data and isinstance(data.get("layers"), list):
        return _from_optimize_output(data, where, layer_name)
    if not isinstance(data, Mapping):
        raise ConvschedError(f"{where}: a schedule must be a JSON object with layer, order, tiles and buffers")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ConvschedError(f"{where}: 'name' must be a string, the layer's name")
    for key, kind in (("network", str), ("used_by", list)):
        if key in data and not isinstance(data[key], kind):
            raise ConvschedError(f"{where}: '{key}' must be a {'string' if kind is str else 'list of layer names'}")
    if layer_name is not None and layer_name != name:
        held = f" (layer {shorten(name)!r})" if name else ""
        raise ConvschedError(f"{where} holds one schedule{held}, not optimize output; drop --layer "
                             f"{shorten(layer_name)!r}")
    arch = _arch(data["arch"], where) if "arch" in data else None
    return ScheduleInput(Schedule.from_dict(data), name, arch)


def _arch(data: Any, where: str) -> Architecture:
    try:
        return Architecture.from_dict(data)
    except ConvschedError as e:
        raise ConvschedError(f"{where}: 'arch': {e}") from None


def _few(names: Sequence[Any], n: int = 5) -> str:
    shown = ", ".join(shorten(str(x), 40) for x in names[:n])
    return shown + (f", ... ({len(names)} in all)" if len(names) > n else "")


def _from_optimize_output(data: Mapping[str, Any], where: str, layer_name: str | None) -> ScheduleInput:
    entries = [e for e in data["layers"] if isinstance(e, Mapping)]
    names = [e.get("name") for e in entries]
    if not entries:
        raise ConvschedError(f"{where}: optimize output without layers")
    if layer_name is None:
        if len(entries) > 1:
            raise ConvschedError(f"{where} is optimize output with {len(entries)} layers; choose one with "
                                 f"--layer NAME, e.g. --layer {shorten(str(names[0]), 40)} "
                                 f"(names: {_few(names)})")
        entry = entries[0]
    else:
        matches = [e for e in entries if e.get("name") == layer_name]
        if not matches:
            close = difflib.get_close_matches(layer_name, [str(x) for x in names], n=3)
            raise ConvschedError(f"no layer {shorten(layer_name, 40)!r} in {where}; "
                                 f"{'did you mean' if close else 'its layers are'} {_few(close or names)}")
        entry = matches[0]
    name = str(entry.get("name"))
    sched = entry.get("schedule")
    if not isinstance(sched, Mapping):
        raise ConvschedError(f"{where}: layer {shorten(name)!r} has no 'schedule'; give optimize --json output")
    if set(sched) - set(SCHEDULE_KEYS):
        raise ConvschedError(f"{where}: layer {shorten(name)!r}: unknown schedule key(s) "
                             f"{', '.join(sorted(map(str, set(sched) - set(SCHEDULE_KEYS))))}")
    try:
        schedule = Schedule.from_dict({"layer": entry.get("layer"), **sched})
    except ConvschedError as e:
        raise ConvschedError(f"{where}: layer {shorten(name)!r}: {e}") from None
    # JSON output gives sizes as integer bytes: written back with the unit they mean
    arch_data = entry.get("arch", data.get("arch"))
    arch = _arch(_sizes_in_bytes(arch_data), where) if arch_data is not None else None
    return ScheduleInput(schedule, name, arch)


def _sizes_in_bytes(arch: Any) -> Any:
    """An architecture as JSON output writes it (sizes in integer bytes), sizes given their unit."""
    if not isinstance(arch, Mapping):
        return arch
    out = dict(arch)
    as_bytes = lambda v: f"{v}B" if type(v) is int and v > 0 else v  # noqa: E731
    buf = out.get("buffer")
    out["buffer"] = {k: as_bytes(v) for k, v in buf.items()} if isinstance(buf, Mapping) else as_bytes(buf)
    if out["buffer"] is None:
        del out["buffer"]
    if "dma_granularity" in out:
        out["dma_granularity"] = as_bytes(out["dma_granularity"])
    return out


def schedule_file_dict(schedule: Schedule, name: str, arch: Architecture, network: str | None = None,
                       used_by: Sequence[str] = ()) -> dict[str, Any]:
    """What `optimize --save-schedules` writes for one layer: name, network, the architecture
    (sizes with units), the schedule, and the network's layers it serves."""
    d: dict[str, Any] = {"name": name}
    if network is not None:
        d["network"] = network
    d["arch"] = arch.to_dict(sizes_with_units=True)
    d.update(schedule.to_dict())
    if used_by:
        d["used_by"] = list(used_by)
    return d
