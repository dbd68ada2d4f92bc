"""How the CLI prints: tables fitted to the output's width, lines of plain text, "wrote FILE" notes.

The width a table must fit:

* stdout is a terminal: the terminal's width (rich honours COLUMNS there too);
* stdout is piped or redirected: COLUMNS when it is set, otherwise no limit
  (the whole table at its natural width).

A command's table comes in layouts, the full one first, then narrower ones
(fewer columns, stacked cells); the first that fits is printed, and `--wide`
asks for the full layout whatever the width. No cell is ever cut: names too
wide are folded over lines, and when even that cannot fit (a number with
hundreds of digits) the line grows past the limit instead of losing digits.
Lines of text wrap at spaces only, for the same reason.

Every string is printed as text: these consoles have rich markup and emoji
codes off, so a layer named `[/x]` or `:smile:` prints as written.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Sequence

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

WideOpt = typer.Option(False, "--wide", help="Print the full table (every column) even when it is wider than "
                       "the terminal, or than COLUMNS when the output is piped.")

_NO_LIMIT = 1_000_000     # the width a table is measured at: wide enough for any of its layouts
_MIN_FOLD = 8             # a folded name keeps at least this many characters a line


def _break_offsets(line: str, width: int) -> list[int]:
    """Where to break `line` into lines of at most `width` characters at spaces; a word longer than the
    width (a long number) stays whole on a line of its own."""
    offsets, start = [], 0
    for word in re.finditer(r"\S+\s*", line):
        if word.start() > start and len(line[start:word.end()].rstrip()) > width:
            offsets.append(word.start())
            start = word.start()
    return offsets


class _PlainConsole(Console):
    """Lines of text wrap at spaces only: a word longer than the width (a long number) is printed whole,
    past the width, never folded or cropped."""

    def print(self, *objects, sep: str = " ", **kwargs) -> None:  # type: ignore[override]
        if not objects or not all(isinstance(o, (str, Text)) for o in objects):
            super().print(*objects, sep=sep, crop=False, **kwargs)
            return
        text = Text(sep).join(o if isinstance(o, Text) else Text(o) for o in objects)
        if not kwargs.pop("soft_wrap", self.soft_wrap):
            lines = []
            for line in text.split("\n", allow_blank=True):
                for piece in line.divide(_break_offsets(line.plain, self.width)):
                    piece.rstrip()
                    lines.append(piece)
            text = Text("\n").join(lines)
        super().print(text, soft_wrap=True, **kwargs)


def plain_console(width: int | None = None, *, soft_wrap: bool = False, stderr: bool = False) -> Console:
    """A console that prints strings as written (no markup, no emoji codes, no highlighting)."""
    return _PlainConsole(width=width, markup=False, emoji=False, highlight=False, soft_wrap=soft_wrap,
                         stderr=stderr)


def output_width() -> int | None:
    """The width stdout's tables must fit, or None for no limit (piped without COLUMNS)."""
    probe = plain_console()
    if probe.is_terminal:
        return probe.width
    columns = os.environ.get("COLUMNS", "").strip()
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def measure(table: Table) -> Measurement:
    """The narrowest and widest the table can be printed without cutting a cell."""
    return plain_console(_NO_LIMIT).measure(table)


def _widest_cell(column: Column) -> int:
    console = plain_console(_NO_LIMIT)
    return max(Measurement.get(console, console.options, x).maximum for x in [column.header, *column.cells])


def _fold_text(table: Table, limit: int) -> None:
    """Narrow the foldable text columns (overflow="fold": names, schedules), widest first, until the table
    fits `limit` if it can. Rich itself would shrink a too-wide table by cutting cells, so it is always given
    the table's full width: the columns are narrowed here, where nothing but text can fold."""
    foldable = [c for c in table.columns if c.overflow == "fold" and not c.no_wrap]
    for column in sorted(foldable, key=_widest_cell, reverse=True):
        excess = measure(table).maximum - limit
        if excess <= 0:
            return
        column.max_width = max(_MIN_FOLD, _widest_cell(column) - excess)


def choose_layout(layouts: Sequence[Callable[[], Table]], wide: bool, limit: int | None) -> Table:
    """The first layout (the full table) when asked for or when nothing limits the width; otherwise the
    first that fits `limit`, or else the last (the narrowest) with its text columns folded to fit."""
    table = layouts[0]()
    if wide or limit is None:
        return table
    for layout in layouts[1:]:
        if measure(table).maximum <= limit:
            return table
        table = layout()
    _fold_text(table, limit)
    return table


def print_table(layouts: Sequence[Callable[[], Table]], wide: bool = False) -> Console:
    """Print the layout that fits stdout (the full table first, then narrower ones; see `choose_layout`),
    its title and caption as lines of text around it; returns the console that printed those lines, for
    the lines after the table."""
    limit = output_width()
    table = choose_layout(layouts, wide, limit)
    # rich is always given the table's full width (it would cut cells to fit a narrower one)
    grid = plain_console(max(measure(table).maximum, limit or 0))
    out = text_console()
    title, caption = table.title, table.caption
    table.title = table.caption = None
    if title:
        out.print(title)
    grid.print(table)
    if caption:
        out.print(caption)
    return out


def two_layouts(build: Callable[[bool], Table]) -> list[Callable[[], Table]]:
    """The full and the narrow layout of a table builder that takes `narrow`."""
    return [lambda: build(False), lambda: build(True)]


def text_console() -> Console:
    """A console for lines of text: wrapped at the output's width, or not at all when it has no limit."""
    limit = output_width()
    return plain_console(limit, soft_wrap=limit is None)


def styled(text: str, style: str) -> Text:
    """`text` in a style (colours for PASS/FAIL and notes), never parsed as markup."""
    return Text(text, style=style)


def wrote(out: Console, path: str | None, what: str = "") -> None:
    """The line that says a file was written ('-' is stdout and None no file: nothing to say)."""
    if path is not None and path != "-":
        out.print(Text(f"wrote {path}" + (f" ({what})" if what else "")), soft_wrap=True)
