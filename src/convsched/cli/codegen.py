"""`convsched codegen` and `convsched run-c`: C code with explicit DMA copies, compiled and checked."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..codegen import CodegenResult, generate_c, run_c
from ..core.arch import OPERANDS
from ..core.schedule import load_schedule
from ..report.tables import add_columns, check_mark, new_table, schedule_summary
from .application import app
from .common import (
    ArchOpt,
    BitsOpt,
    JsonOpt,
    PsumBitsOpt,
    SeedOpt,
    check_outputs,
    emit_json,
    load_arch,
    write_text_atomic,
)
from .output import WideOpt, print_table, styled, text_console, two_layouts, wrote
from .progress import status
from .schedfiles import LayerOpt, SchedArg


@app.command("codegen")
def codegen(
    schedule: Path = SchedArg,
    layer: Optional[str] = LayerOpt,
    arch: Optional[Path] = ArchOpt,
    bits: Optional[int] = BitsOpt,
    psum_bits: Optional[int] = PsumBitsOpt,
    output: Optional[str] = typer.Option(None, "-o", "--output", help="C file to write; '-' or absent prints it."),
) -> None:
    """Portable C99 for a schedule: fixed-size local buffers, one counting DMA routine, the schedule's loop nest."""
    check_outputs(output)
    given = load_schedule(schedule, layer)
    text = generate_c(given.schedule, load_arch(arch, bits, psum_bits, base=given.arch))
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    write_text_atomic(output, text)
    text_console().print(f"wrote {output} ({len(text.splitlines()):,} lines); build with: cc -std=c99 -O2 {output}")


@app.command("run-c")
def run_c_command(
    schedule: Path = SchedArg,
    layer: Optional[str] = LayerOpt,
    arch: Optional[Path] = ArchOpt,
    bits: Optional[int] = BitsOpt,
    psum_bits: Optional[int] = PsumBitsOpt,
    seed: int = SeedOpt,
    json_out: Optional[str] = JsonOpt,
    wide: bool = WideOpt,
) -> None:
    """Generate the C code, compile and run it (also checked, under ASan/UBSan), compare bytes with the model."""
    check_outputs(json_out)
    given = load_schedule(schedule, layer)
    sched = given.schedule
    a = load_arch(arch, bits, psum_bits, base=given.arch)
    with status("compiling and running the generated C (plain, then under ASan/UBSan)"):
        res = run_c(sched, a, seed=seed)
    if not emit_json(json_out, res.to_json()):
        title = f"generated C: {sched.layer}\n{schedule_summary(sched)}"
        out = print_table(two_layouts(lambda narrow: result_table(res, title, narrow)), wide)
        checked = "checked build under ASan/UBSan" if res.sanitized else "checked build (no sanitizer available)"
        if res.arch.double_buffer:
            out.print(styled("note: double_buffer is set; the generated code is single-buffered "
                             "(no prefetch), which moves the same words", "yellow"))
        if res.passed:
            out.print(styled("PASS", "green") + f": output bit-exact, bytes equal the model, buffers not overrun "
                      f"({checked})")
        else:
            out.print(styled("FAIL", "red") + ": " + "; ".join(res.problems))
        wrote(out, json_out)
    if not res.passed:
        raise typer.Exit(1)


def result_table(res: CodegenResult, title: str, narrow: bool = False) -> Table:
    """Predicted against measured words and bytes per operand; the narrow layout stacks the headers."""
    bw = res.predicted.buffer_words
    table = new_table(title, "buffers (words) model / declared / largest block: "
                      + ", ".join(f"{op} {bw[op]:,}/{res.buffer_words[op]:,}/{res.peak[op]:,}" for op in OPERANDS)
                      + f"; output {'matches' if res.output_matches else 'DIFFERS from'} the reference")
    sep = "\n" if narrow else " "
    add_columns(table, ["operand", "", f"predicted{sep}words", f"measured{sep}words", f"predicted{sep}bytes",
                        f"measured{sep}bytes", "match"], left=("operand", ""))
    pw, mw, pb, mb = res.predicted_words(), res.measured_words(), res.predicted_bytes(), res.measured_bytes()
    for op in OPERANDS:
        for kind in ("read", "write"):
            if op != "output" and kind == "write":
                continue
            same = pw[op][kind] == mw[op][kind] and pb[op][kind] == mb[op][kind]
            table.add_row(op, kind, f"{pw[op][kind]:,}", f"{mw[op][kind]:,}", f"{pb[op][kind]:,}", f"{mb[op][kind]:,}",
                          check_mark(same))
    tot = lambda d: sum(v for o in d.values() for v in o.values())  # noqa: E731
    table.add_row("total", "", f"{tot(pw):,}", f"{tot(mw):,}", f"{tot(pb):,}", f"{tot(mb):,}",
                  check_mark((pw, pb) == (mw, mb)), style="bold")
    return table
