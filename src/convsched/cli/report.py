"""`convsched report`: one Markdown or self-contained HTML document with the optimal
schedules, the lower bounds, the textbook dataflows and the earlier models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConvschedError
from ..htmlreport import FORMATS, build_report, render
from ..networks import load_target
from ..units import parse_size
from . import app
from .common import ArchOpt, BitsOpt, PsumBitsOpt, load_arch, whole_number, write_text_atomic
from .layers import TargetArg


def _format(fmt: Optional[str], out: Optional[str]) -> str:
    if fmt is None:
        suffix = Path(out).suffix.lower().lstrip(".") if out else ""
        fmt = {"htm": "html", "html": "html", "markdown": "md", "md": "md"}.get(suffix, "md")
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ConvschedError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    return fmt


def _check_output(out: Optional[str]) -> None:
    if out is None or out == "-":
        return
    p = Path(out)
    if p.is_dir():
        raise ConvschedError(f"cannot write {out}: it is a folder; give a file name")
    if not p.parent.exists():
        raise ConvschedError(f"cannot write {out}: folder {p.parent} does not exist")
    if p.exists() and not p.is_file():
        raise ConvschedError(f"cannot write {out}: it is not a regular file")


@app.command()
def report(
    target: str = TargetArg,
    buffer: Optional[str] = typer.Option(None, "--buffer", help="On-chip buffer capacity, e.g. 64KiB "
                                         "(overrides the capacity of --arch)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="md or html (default: from -o's suffix, else md)."),
    output: Optional[str] = typer.Option(None, "-o", "--output", help="Write the report to FILE (default: stdout)."),
    arch: Optional[Path] = ArchOpt,
    bits: Optional[int] = BitsOpt,
    psum_bits: Optional[int] = PsumBitsOpt,
    batch: int = typer.Option(1, "--batch", parser=whole_number(1), metavar="INTEGER", help="Batch size N."),
    workers: Optional[int] = typer.Option(None, "--workers", parser=whole_number(1), metavar="INTEGER",
                                          help="Worker processes for the optimizer."),
    samples: int = typer.Option(12, "--samples", parser=whole_number(0), metavar="INTEGER",
                                help="Sampled schedules per earlier model and layer."),
) -> None:
    """A report: optimal schedules per layer, lower bounds, textbook dataflows, earlier models, figures."""
    kind = _format(fmt, output)
    _check_output(output)
    a = load_arch(arch, bits, psum_bits)
    if buffer is not None:
        a = a.with_capacity(parse_size(buffer))
    if a.capacity is None:
        raise ConvschedError("give one shared buffer capacity with --buffer SIZE (e.g. --buffer 64KiB)")
    net = load_target(target, batch)
    data = build_report(net, a, workers=workers, samples=samples)
    text = render(data, kind)
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    try:
        write_text_atomic(output, text)
    except OSError as e:
        raise ConvschedError(f"cannot write {output}: {e.strerror or e}") from None
