"""`convsched codegen` and `convsched run-c`: C code with explicit DMA copies, compiled and checked."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..codegen import CodegenResult, generate_c, run_c
from ..codegen.dma_api import DMA_HEADER, DMA_HEADER_NAME, DMA_REF, DMA_REF_NAME
from ..codegen.kernel import c_name, emit_kernel_files
from ..core.arch import OPERANDS, Architecture
from ..core.errors import ConvschedError
from ..core.output_folder import write_folder
from ..core.schedule import Schedule
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
    command_inputs,
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
    output: Optional[str] = typer.Option(
        None, "-o", "--output",
        help="A .c file: the self-checking program ('-' or absent prints it). A folder (an existing one, or a "
             "name without .c): the kernel NAME.h/NAME.c, convsched_dma.h and convsched_dma_ref.c."),
    name: Optional[str] = typer.Option(None, "--name", help="Kernel name in a folder (conv_NAME, NAME.h); "
                                       "default: the layer's name or the schedule file's."),
) -> None:
    """Portable C99 for a schedule: the self-checking program (-o conv.c), or a kernel to deploy (-o DIR)."""
    if output is not None and output != "-" and is_folder_target(output):
        given = load_schedule(schedule, layer)
        a = load_arch(arch, bits, psum_bits, base=given.arch)
        kernel_name = c_name(name or given.name or schedule.stem)
        write_kernel_folder(output, given.schedule, a, kernel_name)
        return
    if name is not None:
        raise ConvschedError("--name names a kernel; give -o DIR (a folder) to write one")
    check_outputs(output)
    given = load_schedule(schedule, layer)
    text = generate_c(given.schedule, load_arch(arch, bits, psum_bits, base=given.arch))
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    write_text_atomic(output, text)
    text_console().print(f"wrote {output} ({len(text.splitlines()):,} lines); build with: cc -std=c99 -O2 {output}")


def is_folder_target(output: str) -> bool:
    """-o names a folder: an existing one, or a new name without the .c suffix (an existing file keeps
    today's meaning: the program is written over it)."""
    if os.path.isdir(output):
        return True
    return not os.path.lexists(output) and not output.endswith(".c")


def write_kernel_folder(folder: str, schedule: Schedule, arch: Architecture, kernel_name: str) -> None:
    """The kernel's four files into `folder`, all or none (core/output_folder.py)."""
    if kernel_name in ("convsched_dma", "convsched_dma_ref"):
        kernel_name += "_kernel"
    ks = emit_kernel_files(schedule, arch, kernel_name)
    files = {f"{ks.name}.h": ks.header, f"{ks.name}.c": ks.source, DMA_HEADER_NAME: DMA_HEADER, DMA_REF_NAME: DMA_REF}
    write_folder(folder, files, command_inputs())
    src = os.path.join(folder, f"{ks.name}.c")
    text_console().print(f"wrote {', '.join(os.path.join(folder, n) for n in files)}: {ks.function}(); "
                         f"build with: cc -std=c99 -c {src} {os.path.join(folder, DMA_REF_NAME)}")


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
            out.print(styled("note: double_buffer is set; the self-checking program is single-buffered "
                             "(no prefetch), the kernel prefetches; both move the same words", "yellow"))
        if res.kernel is not None:
            k = res.kernel
            same = k.boundary_bytes(0) == res.predicted_bytes() and k.boundary_traffic(0) == res.predicted_words()
            out.print(f"kernel {k.kernel.function}(): bytes through its DMA {'equal' if same else 'DIFFER from'} "
                      f"the model ({k.boundaries()[0]['bytes']:,} B across L1); output "
                      f"{'bit-exact' if k.output_matches else 'WRONG'} under the counting DMA, "
                      f"{'bit-exact' if k.lazy_dma_passed else 'WRONG'} under the lazy DMA")
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
