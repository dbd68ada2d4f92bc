"""What moves across each boundary of a memory hierarchy under a loop nest (docs/multilevel.md).

A boundary is named by its inner level (`L2`: main memory <-> L2, `L1`: L2 <-> L1). An operand that
bypasses a level crosses the boundary of the next level that holds it, from the nearest outer level
that holds it (or main memory): `sources[level][op]` names that outer holder. The bytes whose outer
holder is main memory are the main-memory traffic (`total_bytes`). A byte's energy weight is the one
of the boundary just below its outer holder, so a weight that bypasses L2 on its way from main
memory to L1 costs what a main-memory byte costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..core.arch import OPERANDS
from ..core.hierarchy import Hierarchy
from .closed_form import OperandTraffic, Traffic

#: The outer holder's name when it is main memory.
MAIN = "main"


@dataclass(frozen=True)
class BoundaryTraffic:
    """Words and bytes per operand across the boundary above `level`; `sources[op]` is the outer holder
    each operand comes from (MAIN or a level name), None for an operand that does not cross here."""

    level: str
    operands: Mapping[str, OperandTraffic]
    sources: Mapping[str, str | None]

    def operand(self, op: str) -> OperandTraffic:
        return self.operands[op]

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.operands.values())

    @property
    def words(self) -> int:
        return sum(t.words for t in self.operands.values())

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level,
                "traffic": {op: {"read": self.operands[op].read, "write": self.operands[op].write} for op in OPERANDS},
                "bytes": self.bytes}


def source_of(hierarchy: Hierarchy, level: str, op: str) -> str | None:
    """The nearest outer holder of `op` above `level` (MAIN when none), None when `level` does not hold it."""
    if op not in hierarchy.level(level).holds:
        return None
    holders = hierarchy.holders(op)
    k = holders.index(level)
    return holders[k - 1] if k else MAIN


def energy_weight(hierarchy: Hierarchy, source: str) -> float:
    """The energy of one byte that leaves `source` for a level below it: the weight of the boundary
    just below `source`."""
    names = hierarchy.names
    below = names[0] if source == MAIN else names[names.index(source) + 1]
    return hierarchy.energy[below]


@dataclass(frozen=True)
class NestTraffic:
    """Traffic per boundary (outermost first), buffer words and bytes per level and operand, MACs."""

    boundaries: tuple[BoundaryTraffic, ...]
    buffer_words: Mapping[str, Mapping[str, int]]
    buffer_bytes: Mapping[str, Mapping[str, int]]   # doubled where the level double-buffers
    macs: int
    energy: float

    def boundary(self, level: str) -> BoundaryTraffic:
        for b in self.boundaries:
            if b.level == level:
                return b
        raise KeyError(level)

    @property
    def total_bytes(self) -> int:
        """Bytes between main memory and the chip (the bytes whose outer holder is main memory)."""
        return sum(b.operands[op].bytes for b in self.boundaries for op in OPERANDS if b.sources[op] == MAIN)

    def to_json(self) -> dict[str, Any]:
        """The JSON contract of `evaluate --json` for a hierarchy: `boundaries`, `buffer_words` (per
        level, per operand), `total_bytes` (main memory), `energy`, `macs`."""
        return {"boundaries": [b.to_json() for b in self.boundaries],
                "buffer_words": {lv: dict(per_op) for lv, per_op in self.buffer_words.items()},
                "total_bytes": self.total_bytes, "energy": self.energy, "macs": self.macs}


def nest_energy(hierarchy: Hierarchy, boundaries: tuple[BoundaryTraffic, ...]) -> float:
    """Sum over boundaries and operands of bytes times the energy weight of their outer holder."""
    return float(sum(b.operands[op].bytes * energy_weight(hierarchy, b.sources[op])
                     for b in boundaries for op in OPERANDS if b.sources[op] is not None))


def single_level_traffic(traffic: Traffic, hierarchy: Hierarchy) -> NestTraffic:
    """A single-level result as the one boundary of a one-level hierarchy (what `evaluate` adds to
    today's keys): the same words and bytes, every operand from main memory."""
    (level,) = hierarchy.names
    boundary = BoundaryTraffic(level, {op: traffic.operand(op) for op in OPERANDS}, {op: MAIN for op in OPERANDS})
    return NestTraffic((boundary,), {level: dict(traffic.buffer_words)}, {level: dict(traffic.buffer_bytes)},
                       traffic.macs, nest_energy(hierarchy, (boundary,)))
