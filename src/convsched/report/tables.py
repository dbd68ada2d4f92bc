"""Rich tables for traffic results (formatting only: no model logic, no printing).

Tables come in a full layout and a narrow one (`narrow=True`) that reads at 80
columns; the CLI picks the one that fits (cli/output.py). Strings from the user
(layer and network names) are given to rich as `Text`, never parsed as markup.
"""

from __future__ import annotations

from rich import box
from rich.table import Table
from rich.text import Text

from ..core.arch import OPERANDS
from ..core.schedule import Schedule
from ..core.units import format_size
from ..model.closed_form import Traffic


def new_table(title: str | Text | None = None, caption: str | Text | None = None) -> Table:
    """The CLI's table style: a rule under the header, two spaces between columns, no borders."""
    return Table(title=Text(title) if isinstance(title, str) else title, title_justify="left",
                 caption=Text(caption) if isinstance(caption, str) else caption, caption_justify="left",
                 box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))


def add_columns(table: Table, headers: list[str], left: tuple[str, ...] = (), fold: tuple[str, ...] = ()) -> None:
    """Columns right-aligned and never wrapped (numbers), but those in `left` (left-aligned text) and in
    `fold` (left-aligned names that may be folded over lines when the table is too wide)."""
    for h in headers:
        if h in fold:
            table.add_column(h, justify="left", overflow="fold")
        else:
            table.add_column(h, justify="left" if h in left else "right", no_wrap=True)


def schedule_loops(s: Schedule) -> str:
    """The tile loops outermost first, as DIM/tile (`K/16 OY/8`)."""
    return " ".join(f"{d}/{s.tiles[d]}" for d in s.order) or "(untiled)"


def schedule_buffers(s: Schedule) -> str:
    """How many tile loops sit above each buffer (`i@2 w@1 o@4`)."""
    return " ".join(f"{op[0]}@{s.buffers[op]}" for op in OPERANDS)


def schedule_summary(s: Schedule) -> str:
    return f"order {schedule_loops(s)}  buffers {schedule_buffers(s)}"


def check_mark(same: bool) -> Text:
    return Text("yes", style="green") if same else Text("NO", style="bold red")


def traffic_table(t: Traffic, title: str, reference: Traffic | None = None, narrow: bool = False) -> Table:
    """Per-operand reads/writes in words and bytes, buffer sizes, totals and bytes/MAC; with `reference`,
    whether each operand equals it. The narrow layout has the operands as columns instead of rows."""
    if narrow:
        return _traffic_by_operand(t, title, reference)
    table = new_table(title, f"{t.macs:,} MACs, {t.bytes_per_mac:.4f} bytes/MAC")
    add_columns(table, ["operand", "read words", "write words", "read bytes", "write bytes", "buffer words",
                        "buffer bytes"], left=("operand",))
    if reference is not None:
        table.add_column("model = measured", justify="center", no_wrap=True)
    for op in OPERANDS:
        o = t.operand(op)
        row: list[str | Text] = [op, f"{o.read:,}", f"{o.write:,}", f"{o.read_bytes:,}", f"{o.write_bytes:,}",
                                 f"{t.buffer_words[op]:,}", format_size(t.buffer_bytes[op])]
        if reference is not None:
            row.append(check_mark(o == reference.operand(op) and t.buffer_words[op] == reference.buffer_words[op]))
        table.add_row(*row)
    total_row: list[str | Text] = ["total", f"{t.total_words:,} words", "", f"{t.total_bytes:,} B", "", "",
                                   format_size(t.total_buffer_bytes)]
    if reference is not None:
        total_row.append(check_mark(t.total_bytes == reference.total_bytes))
    table.add_row(*total_row, style="bold")
    return table


def _traffic_by_operand(t: Traffic, title: str, reference: Traffic | None) -> Table:
    """The narrow layout: one row per quantity, one column per operand and the total."""
    table = new_table(title, f"moved in all: {t.total_words:,} words, {t.total_bytes:,} B; "
                             f"{t.macs:,} MACs, {t.bytes_per_mac:.4f} bytes/MAC")
    add_columns(table, ["", *OPERANDS, "total"], left=("",))
    ops = [t.operand(op) for op in OPERANDS]
    for label, values in (("read words", [o.read for o in ops]), ("write words", [o.write for o in ops]),
                          ("read bytes", [o.read_bytes for o in ops]), ("write bytes", [o.write_bytes for o in ops])):
        table.add_row(label, *(f"{v:,}" for v in values), f"{sum(values):,}")
    table.add_row("buffer words", *(f"{t.buffer_words[op]:,}" for op in OPERANDS), "")
    table.add_row("buffer bytes", *(format_size(t.buffer_bytes[op]) for op in OPERANDS),
                  format_size(t.total_buffer_bytes))
    if reference is not None:
        table.add_row("model = measured",
                      *(check_mark(t.operand(op) == reference.operand(op)
                                   and t.buffer_words[op] == reference.buffer_words[op]) for op in OPERANDS),
                      check_mark(t.total_bytes == reference.total_bytes))
    return table
