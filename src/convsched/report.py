"""Rich tables for traffic results (formatting only: no model logic, no printing)."""

from __future__ import annotations

from rich.table import Table

from .arch import OPERANDS
from .model import Traffic
from .schedule import Schedule
from .units import format_size


def schedule_summary(s: Schedule) -> str:
    loops = " ".join(f"{d}/{s.tiles[d]}" for d in s.order) or "(untiled)"
    bufs = " ".join(f"{op[0]}@{s.buffers[op]}" for op in OPERANDS)
    return f"order {loops}  buffers {bufs}"


def traffic_table(t: Traffic, title: str, reference: Traffic | None = None) -> Table:
    """Per-operand reads/writes in words and bytes, buffer sizes, totals and bytes/MAC."""
    table = Table(title=title, title_justify="left")
    for col in ("operand", "read words", "write words", "read bytes", "write bytes", "buffer words", "buffer bytes"):
        table.add_column(col, justify="left" if col == "operand" else "right")
    if reference is not None:
        table.add_column("model = measured", justify="center")
    for op in OPERANDS:
        o = t.operand(op)
        row = [op, f"{o.read:,}", f"{o.write:,}", f"{o.read_bytes:,}", f"{o.write_bytes:,}",
               f"{t.buffer_words[op]:,}", format_size(t.buffer_bytes[op])]
        if reference is not None:
            r = reference.operand(op)
            same = (o == r and t.buffer_words[op] == reference.buffer_words[op])
            row.append("[green]yes[/]" if same else "[red]NO[/]")
        table.add_row(*row)
    total_row = ["total", f"{t.total_words:,} words", "", f"{t.total_bytes:,} B", "", "",
                 format_size(t.total_buffer_bytes)]
    if reference is not None:
        total_row.append("[green]yes[/]" if t.total_bytes == reference.total_bytes else "[red]NO[/]")
    table.add_row(*total_row, style="bold")
    table.caption = f"{t.macs:,} MACs, {t.bytes_per_mac:.4f} bytes/MAC"
    return table
