"""`convsched report`: one Markdown or self-contained HTML document with the optimal
schedules, the lower bounds, the textbook dataflows and the earlier models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..core.errors import ConvschedError
from ..core.outputs import write_output
from ..core.units import parse_size
from ..networks import load_target
from ..report.html import FORMATS, Rendered, build_report, render
from .application import app
from .common import (
    ArchOpt,
    BitsOpt,
    PsumBitsOpt,
    check_outputs,
    command_inputs,
    load_arch,
    whole_number,
    write_text_atomic,
)
from .layers import TargetArg
from .output import plain_console, text_console, wrote
from .progress import Bar


def _format(fmt: Optional[str], out: Optional[str]) -> str:
    if fmt is None:
        suffix = Path(out).suffix.lower().lstrip(".") if out else ""
        fmt = {"htm": "html", "html": "html", "markdown": "md", "md": "md"}.get(suffix, "md")
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ConvschedError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    return fmt


def _check_stdout(output: Optional[str]) -> None:
    """A report is a document: to a terminal it would be a torrent of markup (HTML's inline figures, or
    Markdown without its figures); refuse that before the work, and say how to write it."""
    if (output is None or output == "-") and plain_console().is_terminal:
        raise ConvschedError("a report is a document, not terminal output: write it with -o report.html "
                             "(or -o report.md, its figures written next to it), or redirect it "
                             "(> report.html)")


def _write(output: str, rendered: Rendered) -> list[str]:
    """The document and its figure files (Markdown), each whole; when one fails, the figures written
    before it are removed again. Returns the files written."""
    folder = Path(output).parent
    written: list[Path] = []
    try:
        for name, data in rendered.figures.items():
            write_output(folder / name, data, command_inputs())     # the rule of core/outputs.py
            written.append(folder / name)
        write_text_atomic(output, rendered.text)
    except ConvschedError:
        for p in written:
            if p.is_file() and not p.is_symlink():
                p.unlink()
        raise
    return [output, *map(str, written)]


@app.command()
def report(
    target: str = TargetArg,
    buffer: Optional[str] = typer.Option(None, "--buffer", help="On-chip buffer capacity, e.g. 64KiB "
                                         "(overrides the capacity of --arch)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="md or html (default: from -o's suffix, else md)."),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="Write the report to FILE (a Markdown report's "
                                         "figures go next to it: report.md -> report-*.png). Without -o the report "
                                         "goes to stdout, which must then be a file or a pipe (Markdown without "
                                         "figures)."),
    arch: Optional[Path] = ArchOpt,
    bits: Optional[int] = BitsOpt,
    psum_bits: Optional[int] = PsumBitsOpt,
    batch: int = typer.Option(1, "--batch", parser=whole_number(1), metavar="INTEGER", help="Batch size N."),
    workers: Optional[int] = typer.Option(None, "--workers", parser=whole_number(1), metavar="INTEGER",
                                          help="Worker processes for the optimizer (at most the CPUs)."),
    samples: int = typer.Option(12, "--samples", parser=whole_number(0), metavar="INTEGER",
                                help="Sampled schedules per earlier model and layer."),
) -> None:
    """A report: summary and figures first, then optimal schedules per layer, lower bounds, textbook dataflows
    and earlier models."""
    kind = _format(fmt, output)
    check_outputs(output)
    _check_stdout(output)
    a = load_arch(arch, bits, psum_bits)
    if buffer is not None:
        a = a.with_capacity(parse_size(buffer))
    if a.capacity is None:
        raise ConvschedError("give one shared buffer capacity with --buffer SIZE (e.g. --buffer 64KiB)")
    net = load_target(target, batch)
    with Bar(f"report on {net.name}") as bar:
        data = build_report(net, a, workers=workers, samples=samples,
                            progress=lambda stage, done, total: bar.stage(stage)(done, total))
    to_file = output is not None and output != "-"
    rendered = render(data, kind, Path(output).stem if to_file else None)
    if not to_file:
        sys.stdout.write(rendered.text)
        return
    files = _write(output, rendered)
    figures = f"; {len(files) - 1} figures next to it, {Path(output).stem}-*.png" if len(files) > 1 else ""
    wrote(text_console(), output, f"{kind.upper()}, {len(rendered.text.encode()):,} bytes{figures}")
