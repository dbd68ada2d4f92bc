"""Rich tables for a loop nest over a memory hierarchy: traffic per boundary, buffers per level
(formatting only; the narrow layouts read at 80 columns)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from ..core.arch import OPERANDS
from ..core.hierarchy import Hierarchy
from ..core.nest import Nest
from ..core.units import format_size
from ..model.nest_traffic import NestTraffic
from .tables import add_columns, check_mark, new_table


def nest_loops(nest: Nest) -> str:
    """The loops outermost first as DIM/tile, with each level's buffers marked where they sit
    (`L2[i w o] K/32 OY/14 L1[w] C/16 L1[i o] ...`)."""
    marks: dict[int, list[str]] = {}
    for level, per_op in nest.buffers.items():
        at: dict[int, list[str]] = {}
        for op in OPERANDS:
            if op in per_op:
                at.setdefault(per_op[op], []).append(op[0])
        for pos, ops in at.items():
            marks.setdefault(pos, []).append(f"{level}[{' '.join(ops)}]")
    parts: list[str] = []
    for k in range(len(nest.loops) + 1):
        parts.extend(marks.get(k, []))
        if k < len(nest.loops):
            parts.append(f"{nest.loops[k].dim}/{nest.loops[k].tile}")
    return " ".join(parts)


def boundary_table(t: NestTraffic, title: str, reference: NestTraffic | None = None,
                   narrow: bool = False) -> Table:
    """Reads and writes per boundary and operand (outermost first), where each operand comes from,
    and the boundary's bytes; with `reference`, whether each count equals it. The narrow layout
    gives bytes once per operand instead of read and write bytes."""
    per_mac = t.total_bytes / t.macs
    table = new_table(title, f"main memory: {t.total_bytes:,} B ({per_mac:.4f} B/MAC); energy {t.energy:,.0f}; "
                             f"{t.macs:,} MACs")
    headers = ["boundary", "operand", "from", "read words", "write words"]
    headers += ["bytes"] if narrow else ["read bytes", "write bytes"]
    add_columns(table, headers, left=("boundary", "operand", "from"))
    if reference is not None:
        table.add_column("=" if narrow else "model = measured", justify="center", no_wrap=True)
    for b in t.boundaries:
        first = True
        for op in OPERANDS:
            source = b.sources[op]
            if source is None:
                continue
            o = b.operand(op)
            row: list[str | Text] = [Text(b.level) if first else "", op, Text(source), f"{o.read:,}", f"{o.write:,}"]
            row += [f"{o.bytes:,}"] if narrow else [f"{o.read_bytes:,}", f"{o.write_bytes:,}"]
            if reference is not None:
                row.append(check_mark(o == reference.boundary(b.level).operand(op)))
            table.add_row(*row)
            first = False
        total: list[str | Text] = ["", "total", "", f"{b.words:,} words", ""]
        total += [f"{b.bytes:,} B"] if narrow else [f"{b.bytes:,} B", ""]
        if reference is not None:
            total.append(check_mark(b.bytes == reference.boundary(b.level).bytes))
        table.add_row(*total, style="bold", end_section=True)
    return table


def level_buffer_table(t: NestTraffic, hierarchy: Hierarchy, reference: NestTraffic | None = None) -> Table:
    """Buffer words per level and operand ('-' where the level does not hold it), the level's bytes
    (doubled where it double-buffers) and its capacity."""
    table = new_table("buffers per level")
    add_columns(table, ["level", *OPERANDS, "bytes", "capacity"], left=("level",))
    if reference is not None:
        table.add_column("=", justify="center", no_wrap=True)
    for lv in hierarchy.levels:
        words = t.buffer_words[lv.name]
        if lv.capacity is not None:
            capacity = format_size(lv.capacity)
        elif lv.capacity_per_operand is not None:
            capacity = "/".join(format_size(c) for c in lv.capacity_per_operand)
        else:
            capacity = "unlimited"
        row: list[str | Text] = [Text(lv.name), *(f"{words[op]:,}" if op in words else "-" for op in OPERANDS),
                                 format_size(sum(t.buffer_bytes[lv.name].values())), capacity]
        if reference is not None:
            row.append(check_mark(dict(words) == dict(reference.buffer_words[lv.name])))
        table.add_row(*row)
    return table


def over_capacity(t: NestTraffic, hierarchy: Hierarchy) -> list[str]:
    """The levels whose buffers do not fit their capacity."""
    return [lv.name for lv in hierarchy.levels
            if not hierarchy.level_arch(lv.name).fits({op: t.buffer_words[lv.name].get(op, 0) for op in OPERANDS})]
