"""A loop nest over a memory hierarchy: tile loops in which a dimension may appear several times, and
per level and operand the number of loops above that buffer (docs/multilevel.md).

A dimension's first appearance iterates tiles of its `tile` over the whole extent; each later
appearance iterates sub-tiles of its own `tile` inside the current tile of the previous one (the
last sub-tile smaller where the tile does not divide, so an inner loop may run fewer trips under an
edge outer tile). A single-level `Schedule` is the nest with each dimension at most once and one
level (`Nest.from_schedule`, `Nest.as_schedule`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from .arch import OPERANDS
from .dims import DIMS
from .errors import ConvschedError
from .fileio import load_user_data, shorten
from .hierarchy import SINGLE_LEVEL, Hierarchy
from .layer import Layer
from .schedule import Schedule, ScheduleInput, schedule_input_from_data


@dataclass(frozen=True)
class Loop:
    """One tile loop: over dimension `dim`, in tiles (sub-tiles) of `tile`."""

    dim: str
    tile: int


@dataclass(frozen=True)
class Nest:
    """`loops` outermost first; `buffers[level][op]` = loops above `op`'s buffer at `level`."""

    layer: Layer
    loops: tuple[Loop, ...]
    buffers: Mapping[str, Mapping[str, int]]

    def __post_init__(self) -> None:
        loops = tuple(lp if isinstance(lp, Loop) else Loop(*lp) for lp in self.loops)
        object.__setattr__(self, "loops", loops)
        last: dict[str, int] = {}
        for k, lp in enumerate(loops):
            if lp.dim not in DIMS:
                raise ConvschedError(f"loop {k + 1}: unknown dimension {lp.dim!r}; use one of {' '.join(DIMS)}")
            size = self.layer.dim_size(lp.dim)
            if isinstance(lp.tile, bool) or not isinstance(lp.tile, int) or not 1 <= lp.tile <= size:
                raise ConvschedError(f"loop {k + 1}: tile {lp.dim}={lp.tile!r} must be a whole number from 1 to {size}")
            if lp.tile > last.get(lp.dim, size):
                raise ConvschedError(f"loop {k + 1}: tile {lp.dim}={lp.tile} is larger than the tile "
                                     f"{last[lp.dim]} of the {lp.dim} loop above it; a later loop of a dimension "
                                     "tiles the earlier one's tile")
            last[lp.dim] = lp.tile
        if not isinstance(self.buffers, Mapping) or not self.buffers:
            raise ConvschedError("buffers must map each level name to the loops above its buffers, "
                                 "e.g. {\"L1\": {\"input\": 1, \"weight\": 1, \"output\": 1}}")
        buffers: dict[str, dict[str, int]] = {}
        for name, per_op in self.buffers.items():
            if not isinstance(per_op, Mapping):
                raise ConvschedError(f"buffers of level {name!r} must map operands to loop counts")
            unknown = sorted(map(str, set(per_op) - set(OPERANDS)))
            if unknown:
                raise ConvschedError(f"level {name}: unknown operand(s) {', '.join(unknown)}; use input, weight, output")
            for op, b in per_op.items():
                if isinstance(b, bool) or not isinstance(b, int) or not 0 <= b <= len(loops):
                    raise ConvschedError(f"level {name}: buffer {op}={b!r} must be a whole number from 0 to "
                                         f"{len(loops)} (the number of loops above the buffer)")
            buffers[str(name)] = {op: per_op[op] for op in OPERANDS if op in per_op}
        object.__setattr__(self, "buffers", buffers)

    # ---- against a hierarchy -----------------------------------------------------
    def check(self, hierarchy: Hierarchy) -> None:
        """The buffers name the hierarchy's levels, give a position for each operand a level holds
        and none for one it does not, and each operand's positions never decrease inward."""
        unknown = [n for n in self.buffers if n not in hierarchy.names]
        if unknown:
            raise ConvschedError(f"level(s) {', '.join(unknown)} of the schedule are not in the architecture, "
                                 f"whose levels are {', '.join(hierarchy.names)}")
        for lv in hierarchy.levels:
            given = self.buffers.get(lv.name)
            if given is None:
                raise ConvschedError(f"the schedule gives no buffers for level {lv.name}; add "
                                     f"\"{lv.name}\": {{{', '.join(f'{op!r}: N' for op in lv.holds)}}}".replace("'", '"'))
            missing = [op for op in lv.holds if op not in given]
            if missing:
                raise ConvschedError(f"level {lv.name} holds {', '.join(missing)} but the schedule gives no buffer "
                                     f"position for {'it' if len(missing) == 1 else 'them'}")
            extra = [op for op in given if op not in lv.holds]
            if extra:
                raise ConvschedError(f"level {lv.name} does not hold {', '.join(extra)} (holds: "
                                     f"{', '.join(lv.holds)}); drop {'it' if len(extra) == 1 else 'them'} from its buffers")
        for op in OPERANDS:
            prev_name, prev = None, 0
            for name in hierarchy.holders(op):
                b = self.buffers[name][op]
                if b < prev:
                    raise ConvschedError(f"the {op} buffer of level {name} sits above the one of level {prev_name} "
                                         f"({b} < {prev} loops); an inner level's buffer must be at or below the "
                                         "outer one's")
                prev_name, prev = name, b

    # ---- the nest's structure ------------------------------------------------------
    def appearances(self, dim: str) -> list[int]:
        """Positions of `dim`'s loops, outermost first."""
        return [k for k, lp in enumerate(self.loops) if lp.dim == dim]

    def position(self, level: str, op: str) -> int:
        return self.buffers[level][op]

    @property
    def n_tiles(self) -> int:
        """Iterations of the whole nest (tiles), counting each dimension's ragged sub-tiles exactly."""
        n = 1
        for d in DIMS:
            n *= len(self.tile_ranges(d))
        return n

    def tile_ranges(self, dim: str, depth: int | None = None) -> list[tuple[int, int]]:
        """The ranges of `dim` after its first `depth` appearances (all by default), in loop order."""
        size = self.layer.dim_size(dim)
        ranges = [(0, size)]
        tiles = [self.loops[k].tile for k in self.appearances(dim)]
        for t in tiles[:depth]:
            ranges = [(s, min(s + t, e)) for a, e in ranges for s in range(a, e, t)]
        return ranges

    def walk(self, depth: int | None = None) -> Iterator[dict[str, tuple[int, int]]]:
        """The dimension ranges at every iteration of the first `depth` loops (all by default), in order."""
        loops = self.loops[:depth] if depth is not None else self.loops
        current = {d: (0, self.layer.dim_size(d)) for d in DIMS}

        def rec(k: int) -> Iterator[dict[str, tuple[int, int]]]:
            if k == len(loops):
                yield dict(current)
                return
            lp = loops[k]
            a, e = current[lp.dim]
            for s in range(a, e, lp.tile):
                current[lp.dim] = (s, min(s + lp.tile, e))
                yield from rec(k + 1)
            current[lp.dim] = (a, e)

        yield from rec(0)

    # ---- single-level schedules ------------------------------------------------------
    @classmethod
    def from_schedule(cls, schedule: Schedule, level: str = SINGLE_LEVEL) -> "Nest":
        return cls(schedule.layer, tuple(Loop(d, schedule.tiles[d]) for d in schedule.order),
                   {level: dict(schedule.buffers)})

    @property
    def is_single_level(self) -> bool:
        dims = [lp.dim for lp in self.loops]
        return (len(self.buffers) == 1 and len(set(dims)) == len(dims)
                and set(next(iter(self.buffers.values()))) == set(OPERANDS))

    def as_schedule(self) -> Schedule:
        """The single-level schedule of a nest with one level holding every operand and each
        dimension at most once."""
        if not self.is_single_level:
            raise ConvschedError("this nest has several levels or a dimension tiled twice; it has no "
                                 "single-level form")
        (per_op,) = self.buffers.values()
        return Schedule(self.layer, tuple(lp.dim for lp in self.loops),
                        {lp.dim: lp.tile for lp in self.loops}, dict(per_op))

    # ---- I/O ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON of docs/multilevel.md; the single-level form when the nest has it."""
        if self.is_single_level:
            return self.as_schedule().to_dict()
        return {"layer": self.layer.to_dict(), "loops": [[lp.dim, lp.tile] for lp in self.loops],
                "buffers": {name: dict(per_op) for name, per_op in self.buffers.items()}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], level: str = SINGLE_LEVEL) -> "Nest":
        """A nest from its JSON, or a single-level schedule's JSON (`order`, `tiles`, flat `buffers`),
        whose one level is called `level`."""
        if not isinstance(data, Mapping):
            raise ConvschedError("a schedule must be a JSON object with layer, loops and buffers")
        if "loops" not in data:
            return cls.from_schedule(Schedule.from_dict(data), level)
        known = {"layer", "loops", "buffers", "name", "network", "used_by"}
        unknown = sorted(map(str, set(data) - known))
        if unknown:
            raise ConvschedError(f"unknown schedule key(s) {', '.join(unknown)}; a nest has layer, loops, buffers")
        for key in ("layer", "buffers"):
            if key not in data:
                raise ConvschedError(f"the schedule has loops but no {key!r}")
        layer = Layer.from_dict(data["layer"])
        loops = data["loops"]
        if not isinstance(loops, list) or not all(isinstance(lp, list) and len(lp) == 2 for lp in loops):
            raise ConvschedError("'loops' must be a list of [dimension, tile] pairs, outermost first, "
                                 "e.g. [[\"K\", 32], [\"OY\", 14]]")
        return cls(layer, tuple(Loop(str(d), t) for d, t in loops), data["buffers"])

    @classmethod
    def from_file(cls, path: str | Path, level: str = SINGLE_LEVEL) -> "Nest":
        return cls.from_dict(load_user_data(path, "schedule file", default="json"), level)


@dataclass(frozen=True)
class NestInput:
    """A multi-level schedule as a file gives it (`loops` and per-level `buffers`), with its name."""

    nest: Nest
    name: str | None = None


def load_schedule_or_nest(path: str | Path, layer_name: str | None = None) -> ScheduleInput | NestInput:
    """A schedule file of either form: a nest (`loops`, per-level `buffers`) as a `NestInput`, else what
    `load_schedule` reads (a single-level schedule, or one layer of `optimize --json` output)."""
    where = f"schedule file {path}"
    data = load_user_data(path, "schedule file", default="json")
    if not (isinstance(data, Mapping) and "loops" in data):
        return schedule_input_from_data(data, where, layer_name)
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ConvschedError(f"{where}: 'name' must be a string, the layer's name")
    if layer_name is not None and layer_name != name:
        raise ConvschedError(f"{where} holds one schedule, not optimize output; drop --layer {shorten(layer_name)!r}")
    try:
        return NestInput(Nest.from_dict(data), name)
    except ConvschedError as e:
        raise ConvschedError(f"{where}: {e}") from None
