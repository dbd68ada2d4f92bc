"""`convsched optimize` and `convsched sweep`: optimal schedules per layer of a network, and over buffer sizes."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..core.arch import OPERANDS, Architecture
from ..core.errors import ConvschedError
from ..core.units import format_size, parse_size, parse_size_range
from ..networks import load_target
from ..report.plot import figure_format, plot_sweep, require_matplotlib
from ..report.tables import add_columns, new_table, schedule_buffers, schedule_loops
from ..search.network import OBJECTIVES, NetworkResult, SweepResult, optimize_network
from ..search.network import sweep as sweep_network
from ..search.optimizer import TEXTBOOK
from .application import app
from .constraints import constraints_from_text
from .common import (
    ArchOpt,
    BitsOpt,
    JsonOpt,
    PsumBitsOpt,
    check_outputs,
    command_inputs,
    emit_json,
    load_arch,
    whole_number,
    write_text_atomic,
)
from .output import WideOpt, print_table, two_layouts, wrote
from .progress import Bar
from .schedfiles import SaveSchedulesOpt, check_schedule_folder, save_schedules

TargetArg = typer.Argument(
    ..., show_default=False,
    help="A built-in network (alexnet, zfnet, vgg16, resnet18, resnet50, mobilenet_v2, googlenet), "
         "an .onnx model, a .yaml/.json layer file, or an inline spec like K=64,C=64,OY=56,OX=56,FY=3,FX=3,PY=1,PX=1.")
DoubleBufferOpt = typer.Option(False, "--double-buffer", help="Buffers are double-buffered (each costs twice its size).")
ObjectiveOpt = typer.Option(
    "bytes", "--objective",
    help="What to minimise per layer: 'bytes' (all traffic), 'reads' (input + weight reads only), or "
         "'bytes-per-mac' (ranks each layer exactly like 'bytes': a layer's MACs are fixed and each layer "
         "gets the whole capacity).")
BatchOpt = typer.Option(1, "--batch", parser=whole_number(1), metavar="INTEGER", help="Batch size N.")
WorkersOpt = typer.Option(None, "--workers", parser=whole_number(1), metavar="INTEGER",
                          help="Worker processes for distinct layers (default: min(2, CPUs); 1 = in-process; "
                               "more than the CPUs are capped at their number).")
CsvOpt = typer.Option(None, "--csv", help="Also write one CSV row per layer (optimize) or per size (sweep) to PATH.")


def _arch(arch: Optional[Path], bits: Optional[int], psum_bits: Optional[int], double_buffer: bool,
          buffer: Optional[int]) -> Architecture:
    a = load_arch(arch, bits, psum_bits)
    if double_buffer:
        a = replace(a, double_buffer=True)
    if buffer is not None:
        a = a.with_capacity(buffer)
    return a


def _objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise ConvschedError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    return objective




def _ratio(x: float | None) -> str:
    return f"{x:.2f}x" if x is not None else "-"


def network_table(res: NetworkResult, narrow: bool = False) -> Table:
    """One row per layer: its optimal schedule, buffer use, bytes, and the best textbook dataflow. The narrow
    layout stacks each row on two lines (schedule under the name, B/MAC under the bytes, the dataflow under
    its bytes) and leaves out the bytes per operand."""
    cap = res.arch.capacity
    title = (f"{res.network.name}: optimal schedules at {format_size(cap) if cap else 'per-operand'} buffer "
             f"({res.objective}); {len(res.entries)} layer(s), {res.unique_layers} distinct")
    ob, tb = res.operand_bytes(), res.textbook_total_bytes
    if narrow:
        table = new_table(title, "tile loops outermost first (DIM/tile); buffers: tile loops above each buffer "
                                 "(i@ input, w@ weight, o@ output) and the bytes they use; saving: textbook B over "
                                 "total B; --wide adds the bytes per operand")
        add_columns(table, ["layer\n  tile loops", "buffers\nuse", "total B\nB/MAC", "textbook B\nbest textbook",
                            "saving"], fold=("layer\n  tile loops",))
        for e in res.entries:
            t, s = e.traffic, e.result.schedule
            table.add_row(Text(e.name) + "\n  " + schedule_loops(s),
                          f"{schedule_buffers(s)}\n{format_size(t.total_buffer_bytes)}",
                          f"{t.total_bytes:,}\n{t.bytes_per_mac:.4f}",
                          (f"{e.textbook.traffic.total_bytes:,}" if e.textbook else "-")
                          + "\n" + (e.textbook_name or "(none fits)"), _ratio(e.saving))
        table.add_row("total", "", f"{res.total_bytes:,}\n{res.bytes_per_mac:.4f}",
                      f"{tb:,}" if tb is not None else "-", _ratio(res.saving), style="bold")
        return table
    table = new_table(title)
    add_columns(table, ["layer", "order / tiles", "buffers", "buffer use", "input B", "weight B", "output B",
                        "total B", "B/MAC", "best textbook", "textbook B", "saving"],
                left=("order / tiles", "buffers", "best textbook"), fold=("layer",))
    for e in res.entries:
        t, s = e.traffic, e.result.schedule
        table.add_row(Text(e.name), schedule_loops(s), schedule_buffers(s), format_size(t.total_buffer_bytes),
                      *(f"{t.operand(op).bytes:,}" for op in OPERANDS), f"{t.total_bytes:,}",
                      f"{t.bytes_per_mac:.4f}", e.textbook_name or "(none fits)",
                      f"{e.textbook.traffic.total_bytes:,}" if e.textbook else "-", _ratio(e.saving))
    table.add_row("total", "", "", "", *(f"{ob[op]:,}" for op in OPERANDS), f"{res.total_bytes:,}",
                  f"{res.bytes_per_mac:.4f}", "", f"{tb:,}" if tb is not None else "-", _ratio(res.saving),
                  style="bold")
    return table


def _summary(res: NetworkResult) -> str:
    a = res.arch
    words = f"{a.input_bits}/{a.weight_bits}/{a.psum_bits}/{a.output_bits}-bit input/weight/psum/output"
    line = (f"{len(res.entries)} layer(s), {res.macs:,} MACs; optimal {res.total_bytes:,} bytes "
            f"({format_size(res.total_bytes)}, {res.bytes_per_mac:.4f} B/MAC)")
    if res.textbook_total_bytes is not None:
        line += f"; best textbook per layer {res.textbook_total_bytes:,} bytes, saving {_ratio(res.saving)}"
    return f"{line}\n{words}{', double-buffered' if a.double_buffer else ''}; solved in {res.seconds:.1f} s"


@app.command()
def optimize(
    target: str = TargetArg,
    buffer: Optional[str] = typer.Option(None, "--buffer", help="On-chip buffer capacity, e.g. 512B, 64KiB, 1MiB, 64kB "
                                         "(overrides the capacity of --arch)."),
    arch: Optional[Path] = ArchOpt,
    bits: Optional[int] = BitsOpt,
    psum_bits: Optional[int] = PsumBitsOpt,
    double_buffer: bool = DoubleBufferOpt,
    objective: str = ObjectiveOpt,
    order: Optional[List[str]] = typer.Option(None, "--order", help="Allowed loop order, outermost first, e.g. "
                                              "K,C,OY,OX (repeat for a set of orders; listed dims may stay untiled)."),
    untiled: Optional[str] = typer.Option(None, "--untiled", help="Dimensions that must not be tiled, e.g. FY,FX."),
    tile: Optional[List[str]] = typer.Option(None, "--tile", help="Fixed tile size, e.g. K=16 (repeatable)."),
    tile_max: Optional[List[str]] = typer.Option(None, "--tile-max", help="Largest tile size, e.g. K=32 (repeatable)."),
    tile_min: Optional[List[str]] = typer.Option(None, "--tile-min", help="Smallest tile size, e.g. OY=2 (repeatable)."),
    buffers: Optional[str] = typer.Option(None, "--buffers", help="Fixed buffer levels, e.g. input=2,weight=1,output=4 "
                                          "(loops above each buffer; needs exactly one --order)."),
    batch: int = BatchOpt,
    workers: Optional[int] = WorkersOpt,
    json_out: Optional[str] = JsonOpt,
    csv_out: Optional[str] = CsvOpt,
    save_schedules_to: Optional[str] = SaveSchedulesOpt,
    wide: bool = WideOpt,
) -> None:
    """Optimal schedule of every layer of a network: least off-chip traffic, compared with textbook dataflows."""
    a = _arch(arch, bits, psum_bits, double_buffer, parse_size(buffer) if buffer is not None else None)
    if a.capacity is None and a.capacity_per_operand is None:
        raise ConvschedError("give the buffer capacity with --buffer SIZE (e.g. --buffer 64KiB) or in --arch FILE")
    obj = _objective(objective)
    cons = constraints_from_text(order or (), untiled, tile or (), tile_max or (), tile_min or (), buffers)
    check_outputs(json_out, csv_out)
    if save_schedules_to is not None:
        check_schedule_folder(save_schedules_to)
    net = load_target(target, batch)
    with Bar(f"optimizing {net.name}") as bar:
        res = optimize_network(net, a, cons, obj, workers, bar)
    if csv_out is not None:
        write_text_atomic(csv_out, res.to_csv())
    if save_schedules_to is not None:
        files, n_layers = save_schedules(res, save_schedules_to)
        print(f"wrote {len(files)} schedule file(s) for {n_layers} layer(s) to {save_schedules_to} "
              "(equal layers share one: see its used_by)", file=sys.stderr)
    if emit_json(json_out, res.to_json()):
        return
    out = print_table(two_layouts(lambda narrow: network_table(res, narrow)), wide)
    out.print(_summary(res))
    if cons is not None:
        out.print("note: the constraints apply to the optimal schedules only; the textbook dataflows are "
                  "searched unconstrained")
    wrote(out, json_out, "JSON")
    wrote(out, csv_out, "CSV")


# ---------------------------------------------------------------------------


def sweep_table(res: SweepResult, narrow: bool = False) -> Table:
    """One row per buffer size: the optimal bytes (per operand in the full layout), each textbook dataflow's,
    and the best dataflow's over the optimum."""
    title = f"{res.network.name}: off-chip bytes against buffer size ({res.objective})"
    flows_header = [name.replace("-", "-\n", 1) for name in TEXTBOOK] if narrow else list(TEXTBOOK)
    operands = [] if narrow else [f"{op} B" for op in OPERANDS]
    table = new_table(title, "ratio: the best single textbook dataflow's bytes over the optimal bytes"
                      + ("; --wide adds the optimal bytes per operand" if narrow else ""))
    add_columns(table, ["buffer", "optimal B", *operands, *flows_header, "ratio"], left=("buffer",))
    for p in res.points:
        df = p.dataflow_bytes()
        flows = [f"{df[n]:,}" if df[n] is not None else "-" for n in TEXTBOOK]
        if p.feasible:
            ob = p.operand_bytes()
            per_op = [] if narrow else [f"{ob[op]:,}" for op in OPERANDS]
            table.add_row(format_size(p.capacity), f"{p.total_bytes:,}", *per_op, *flows, _ratio(p.ratio))
        else:
            table.add_row(format_size(p.capacity), Text("does not fit", style="yellow"), *[""] * len(operands),
                          *flows, "-")
    return table


@app.command()
def sweep(
    target: str = TargetArg,
    buffer: str = typer.Option(..., "--buffer", help="Range of buffer capacities, e.g. 8KiB..1MiB.",
                               show_default=False),
    points: int = typer.Option(16, "--points", parser=whole_number(1), metavar="INTEGER",
                               help="Number of log-spaced buffer sizes (ends included)."),
    arch: Optional[Path] = ArchOpt,
    bits: Optional[int] = BitsOpt,
    psum_bits: Optional[int] = PsumBitsOpt,
    double_buffer: bool = DoubleBufferOpt,
    objective: str = ObjectiveOpt,
    batch: int = BatchOpt,
    workers: Optional[int] = WorkersOpt,
    plot: Optional[str] = typer.Option(None, "--plot", help="Draw traffic against buffer size to FILE (.png, .svg or "
                                       ".pdf; needs matplotlib: pip install 'convsched\\[plot]')."),
    json_out: Optional[str] = JsonOpt,
    csv_out: Optional[str] = CsvOpt,
    wide: bool = WideOpt,
) -> None:
    """Optimal network traffic (per operand) and each textbook dataflow's over log-spaced buffer sizes."""
    low, high = parse_size_range(buffer)
    a = _arch(arch, bits, psum_bits, double_buffer, None)
    obj = _objective(objective)
    if plot is not None:            # fail before the work: a name that is not .png/.svg/.pdf, or no matplotlib
        figure_format(plot)
        require_matplotlib()
    check_outputs(json_out, csv_out, plot)
    net = load_target(target, batch)
    with Bar(f"sweeping {net.name}") as bar:
        res = sweep_network(net, a, low, high, points, None, obj, workers, bar)
    if csv_out is not None:
        write_text_atomic(csv_out, res.to_csv())
    if plot is not None:
        plot_sweep(res, plot, inputs=command_inputs())
    if emit_json(json_out, res.to_json()):
        return
    out = print_table(two_layouts(lambda narrow: sweep_table(res, narrow)), wide)
    n_ok = len(res.feasible_points)
    out.print(f"{len(res.points)} sizes, {n_ok} feasible; solved in {res.seconds:.1f} s")
    wrote(out, plot, "figure")
    wrote(out, json_out, "JSON")
    wrote(out, csv_out, "CSV")
