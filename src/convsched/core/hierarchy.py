"""A memory hierarchy: main memory, then on-chip levels outermost first (docs/multilevel.md).

Each on-chip level has a capacity (shared by its operands, or one per operand), its own double
buffering and DMA granularity, and the operands it holds (an operand that bypasses a level moves
between the nearest outer and inner levels that hold it). Word sizes are global. `energy` weights
the bytes that cross the boundary above each level. A single-level `Architecture` is the one-level
case (`Hierarchy.from_architecture`), and every single-level architecture file is a valid
hierarchy file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from .arch import OPERANDS, Architecture
from .errors import ConvschedError
from .fileio import load_user_mapping

#: Relative cost of one byte across the boundary to main memory, and across every other boundary
#: (the normalised access energies of Eyeriss, Chen et al., ISCA 2016: DRAM 200, global buffer 6).
MAIN_MEMORY_ENERGY = 200.0
ON_CHIP_ENERGY = 6.0

#: The name of the one level of a single-level architecture.
SINGLE_LEVEL = "L1"


@dataclass(frozen=True)
class Level:
    """One on-chip level: its name, capacity in bytes (shared, or input/weight/output), double
    buffering, DMA granularity in bytes (0 = off) and the operands it holds."""

    name: str
    capacity: int | None = None
    capacity_per_operand: tuple[int, int, int] | None = None
    double_buffer: bool = False
    dma_granularity: int = 0
    holds: tuple[str, ...] = OPERANDS

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or not self.name.isprintable():
            raise ConvschedError(f"level name {self.name!r} must be a non-empty line of text, e.g. L1")
        holds = tuple(self.holds)
        bad = [op for op in holds if op not in OPERANDS]
        if bad:
            raise ConvschedError(f"level {self.name}: unknown operand(s) {', '.join(map(str, bad))} in holds; "
                                 "use input, weight, output")
        if not holds:
            raise ConvschedError(f"level {self.name} holds no operand; list at least one in holds")
        object.__setattr__(self, "holds", tuple(op for op in OPERANDS if op in holds))


@dataclass(frozen=True)
class Hierarchy:
    """Word sizes (bits) and the on-chip levels, outermost first; `energy[level]` weights the bytes
    crossing the boundary above `level` (defaults: 200 for the first level, 6 for the others)."""

    levels: tuple[Level, ...]
    input_bits: int = 8
    weight_bits: int = 8
    psum_bits: int = 32
    output_bits: int = 8
    energy: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        levels = tuple(self.levels)
        if not levels:
            raise ConvschedError("a hierarchy needs at least one on-chip level")
        names = [lv.name for lv in levels]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConvschedError(f"level name(s) {', '.join(dup)} used twice; give every level its own name")
        for op in OPERANDS:
            if not any(op in lv.holds for lv in levels):
                raise ConvschedError(f"no level holds the {op}; add it to some level's holds")
        object.__setattr__(self, "levels", levels)
        # word sizes, capacities and granularities are checked once, by the per-level architectures
        for lv in levels:
            self.level_arch(lv.name)
        energy = dict(self.energy)
        unknown = sorted(map(str, set(energy) - set(names)))
        if unknown:
            raise ConvschedError(f"energy for unknown level(s) {', '.join(unknown)}; the levels are {', '.join(names)}")
        for name, w in energy.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0 or w == float("inf"):
                raise ConvschedError(f"energy weight {name}={w!r} must be a number of at least 0")
        full = {lv.name: float(energy.get(lv.name, MAIN_MEMORY_ENERGY if k == 0 else ON_CHIP_ENERGY))
                for k, lv in enumerate(levels)}
        object.__setattr__(self, "energy", full)

    # ---- levels ----------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(lv.name for lv in self.levels)

    def level(self, name: str) -> Level:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise ConvschedError(f"unknown level {name!r}; the levels are {', '.join(self.names)}")

    def holders(self, op: str) -> tuple[str, ...]:
        """The levels that hold `op`, outermost first."""
        return tuple(lv.name for lv in self.levels if op in lv.holds)

    def level_arch(self, name: str) -> Architecture:
        """Level `name` as a single-level architecture: the word sizes, its capacity, double buffering
        and DMA granularity (how its buffers are sized and its boundary's steps rounded)."""
        lv = self.level(name)
        return Architecture(self.input_bits, self.weight_bits, self.psum_bits, self.output_bits,
                            lv.capacity, lv.capacity_per_operand, lv.double_buffer, lv.dma_granularity)

    @property
    def is_single_level(self) -> bool:
        return len(self.levels) == 1 and self.levels[0].holds == OPERANDS

    # ---- conversions -------------------------------------------------------------
    @classmethod
    def from_architecture(cls, arch: Architecture, name: str = SINGLE_LEVEL) -> "Hierarchy":
        """A single-level architecture as a one-level hierarchy."""
        level = Level(name, arch.capacity, arch.capacity_per_operand, arch.double_buffer, arch.dma_granularity)
        return cls((level,), arch.input_bits, arch.weight_bits, arch.psum_bits, arch.output_bits)

    def architecture(self) -> Architecture:
        """The single-level architecture of a one-level hierarchy that holds every operand."""
        if not self.is_single_level:
            raise ConvschedError(f"the hierarchy has levels {', '.join(self.names)}; a single-level architecture "
                                 "has one level holding input, weight and output")
        return self.level_arch(self.levels[0].name)

    def with_capacity(self, name: str, capacity: int) -> "Hierarchy":
        """The same hierarchy with level `name`'s shared capacity replaced."""
        lv = self.level(name)
        levels = tuple(replace(x, capacity=capacity, capacity_per_operand=None) if x is lv else x
                       for x in self.levels)
        return replace(self, levels=levels)

    # ---- I/O ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Hierarchy":
        """The YAML form of docs/multilevel.md (`bits`, `levels`, `energy`), or a single-level
        architecture (`bits`, `buffer`, `double_buffer`, `dma_granularity`)."""
        if not isinstance(data, Mapping):
            raise ConvschedError("an architecture file must be a YAML mapping (bits and buffer, or bits and levels)")
        if "levels" not in data:
            return cls.from_architecture(Architecture.from_dict(data))
        known = {"bits", "levels", "energy"}
        unknown = sorted(map(str, set(data) - known))
        if unknown:
            raise ConvschedError(f"unknown architecture key(s) {', '.join(unknown)} beside 'levels'; "
                                 f"known: {', '.join(sorted(known))}")
        bits = Architecture.from_dict({"bits": data["bits"]} if "bits" in data else {})
        raw_levels = data["levels"]
        if not isinstance(raw_levels, list) or not raw_levels:
            raise ConvschedError("'levels' must be a list of levels, outermost first, each with a name and a buffer")
        levels = tuple(_level_from_dict(k, item) for k, item in enumerate(raw_levels))
        energy = data.get("energy", {}) or {}
        if not isinstance(energy, Mapping):
            raise ConvschedError("'energy' must map level names to weights, e.g. {L2: 200, L1: 6}")
        return cls(levels, bits.input_bits, bits.weight_bits, bits.psum_bits, bits.output_bits, dict(energy))

    @classmethod
    def from_file(cls, path: str | Path) -> "Hierarchy":
        return cls.from_dict(load_user_mapping(path, "architecture file"))

    def to_dict(self, sizes_with_units: bool = False) -> dict[str, Any]:
        """The `from_dict` form (the single-level form for a single-level hierarchy with default energy)."""
        if self.is_single_level and self.energy == {self.levels[0].name: MAIN_MEMORY_ENERGY} \
                and self.levels[0].name == SINGLE_LEVEL:
            return self.architecture().to_dict(sizes_with_units)
        levels = []
        for lv in self.levels:
            one = self.level_arch(lv.name).to_dict(sizes_with_units)
            item: dict[str, Any] = {"name": lv.name}
            if "buffer" in one:
                item["buffer"] = one["buffer"]
            item["double_buffer"] = lv.double_buffer
            item["dma_granularity"] = one["dma_granularity"]
            if lv.holds != OPERANDS:
                item["holds"] = list(lv.holds)
            levels.append(item)
        return {"bits": {"input": self.input_bits, "weight": self.weight_bits, "psum": self.psum_bits,
                         "output": self.output_bits},
                "levels": levels, "energy": dict(self.energy)}


def _level_from_dict(k: int, item: Any) -> Level:
    if not isinstance(item, Mapping):
        raise ConvschedError(f"level {k + 1} must be a mapping with a name and a buffer, e.g. {{name: L1, buffer: 64KiB}}")
    known = {"name", "buffer", "double_buffer", "dma_granularity", "holds"}
    unknown = sorted(map(str, set(item) - known))
    if unknown:
        raise ConvschedError(f"level {k + 1}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if "name" not in item:
        raise ConvschedError(f"level {k + 1} has no name; give each level a name, e.g. name: L2")
    name = item["name"]
    if not isinstance(name, str):
        raise ConvschedError(f"level {k + 1}: name {name!r} must be text, e.g. L2")
    try:
        one = Architecture.from_dict({key: item[key] for key in ("buffer", "double_buffer", "dma_granularity")
                                      if key in item})
    except ConvschedError as e:
        raise ConvschedError(f"level {name}: {e}") from None
    holds = item.get("holds", list(OPERANDS))
    if not isinstance(holds, list) or not all(isinstance(op, str) for op in holds):
        raise ConvschedError(f"level {name}: holds must be a list of operands, e.g. [input, output]")
    return Level(name, one.capacity, one.capacity_per_operand, one.double_buffer, one.dma_granularity, tuple(holds))


# ---- built-in hierarchies ----------------------------------------------------------
# Sources (docs/multilevel-presets.md): GreenWaves GAP8 and GAP9 product documentation (L2 and the
# cluster's shared L1), and DORY (Burrello et al., IEEE Trans. Computers 2021), which tiles between
# L2 and L1 with double-buffered L1 transfers. 8-bit data and 32-bit accumulators as in DORY's
# quantized networks.
PRESETS: dict[str, Hierarchy] = {
    "single": Hierarchy.from_architecture(Architecture()),
    "gap8": Hierarchy((Level("L2", capacity=512 * 1024), Level("L1", capacity=64 * 1024, double_buffer=True))),
    "gap9": Hierarchy((Level("L2", capacity=1536 * 1024), Level("L1", capacity=128 * 1024, double_buffer=True))),
}


def load_hierarchy(text: str | Path) -> Hierarchy:
    """`--arch NAME|FILE`: a built-in hierarchy by name (single, gap8, gap9), else an architecture file."""
    key = str(text)
    if key in PRESETS:
        return PRESETS[key]
    if not Path(key).suffix and not Path(key).exists():
        raise ConvschedError(f"unknown architecture {key!r}; give a built-in one ({', '.join(PRESETS)}) "
                             "or a YAML architecture file")
    return Hierarchy.from_file(key)
