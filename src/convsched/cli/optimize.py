"""`convsched optimize` and `convsched sweep`: optimal schedules per layer of a network, and over buffer sizes."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..arch import OPERANDS, Architecture
from ..errors import ConvschedError
from ..netsearch import (OBJECTIVES, NetworkResult, SweepResult, constraints_from_text, optimize_network,
                         sweep as sweep_network)
from ..networks import load_target
from ..search import TEXTBOOK
from ..units import format_size, parse_size, parse_size_range
from . import app
from .common import (ArchOpt, BitsOpt, JsonOpt, PsumBitsOpt, console, emit_json, err_console, load_arch,
                     whole_number, write_text_atomic)
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
                          help="Worker processes for distinct layers (default: min(2, CPUs); 1 = in-process).")
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


class _Bar:
    """A rich progress bar on stderr, started on the first report of more than one job (terminals only)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.progress: Progress | None = None
        self.task = None

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None:
            if total <= 1 or not err_console.is_terminal:
                return
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=err_console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total)
        self.progress.update(self.task, completed=done)

    def __enter__(self) -> "_Bar":
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()


def _check_outputs(*paths: Optional[str]) -> None:
    """Fail on an output path that cannot be written before the (long) search, not after it."""
    for path in paths:
        if path is None or path == "-":
            continue
        p = Path(path)
        if p.is_dir():
            raise ConvschedError(f"cannot write {path}: it is a folder; give a file name")
        if not p.parent.exists():
            raise ConvschedError(f"cannot write {path}: folder {p.parent} does not exist")


def _print(table: Table) -> Console:
    """Print a table at its natural width (never cut to the terminal's); returns the console used."""
    need = max(80, Console(width=1000).measure(table).maximum)
    out = console if console.is_terminal and need <= console.width else Console(width=need)
    out.print(table)
    return out


def _ratio(x: float | None) -> str:
    return f"{x:.2f}x" if x is not None else "-"


def network_table(res: NetworkResult) -> Table:
    cap = res.arch.capacity
    title = (f"{res.network.name}: optimal schedules at {format_size(cap) if cap else 'per-operand'} buffer "
             f"({res.objective}); {len(res.entries)} layer(s), {res.unique_layers} distinct")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    cols = ("layer", "order / tiles", "buffers", "buffer use", "input B", "weight B", "output B", "total B",
            "B/MAC", "best textbook", "textbook B", "saving")
    for c in cols:
        table.add_column(c, justify="left" if c in ("layer", "order / tiles", "buffers", "best textbook")
                         else "right", no_wrap=True)
    for e in res.entries:
        t, s = e.traffic, e.result.schedule
        loops = " ".join(f"{d}/{s.tiles[d]}" for d in s.order) or "(untiled)"
        bufs = " ".join(f"{op[0]}@{s.buffers[op]}" for op in OPERANDS)
        table.add_row(e.name, loops, bufs, format_size(t.total_buffer_bytes),
                      *(f"{t.operand(op).bytes:,}" for op in OPERANDS), f"{t.total_bytes:,}",
                      f"{t.bytes_per_mac:.4f}", e.textbook_name or "(none fits)",
                      f"{e.textbook.traffic.total_bytes:,}" if e.textbook else "-", _ratio(e.saving))
    ob = res.operand_bytes()
    tb = res.textbook_total_bytes
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
) -> None:
    """Optimal schedule of every layer of a network: least off-chip traffic, compared with textbook dataflows."""
    a = _arch(arch, bits, psum_bits, double_buffer, parse_size(buffer) if buffer is not None else None)
    if a.capacity is None and a.capacity_per_operand is None:
        raise ConvschedError("give the buffer capacity with --buffer SIZE (e.g. --buffer 64KiB) or in --arch FILE")
    obj = _objective(objective)
    cons = constraints_from_text(order or (), untiled, tile or (), tile_max or (), tile_min or (), buffers)
    _check_outputs(json_out, csv_out)
    if save_schedules_to is not None:
        check_schedule_folder(save_schedules_to)
    net = load_target(target, batch)
    with _Bar(f"optimizing {net.name}") as bar:
        res = optimize_network(net, a, cons, obj, workers, bar)
    if csv_out is not None:
        write_text_atomic(csv_out, res.to_csv())
    if save_schedules_to is not None:
        files, n_layers = save_schedules(res, save_schedules_to)
        print(f"wrote {len(files)} schedule file(s) for {n_layers} layer(s) to {save_schedules_to} "
              "(equal layers share one: see its used_by)", file=sys.stderr)
    if emit_json(json_out, res.to_json()):
        return
    out = _print(network_table(res))
    out.print(_summary(res), highlight=False)
    if cons is not None:
        out.print("note: the constraints apply to the optimal schedules only; the textbook dataflows are "
                  "searched unconstrained", highlight=False)


# ---------------------------------------------------------------------------


def sweep_table(res: SweepResult) -> Table:
    table = Table(title=f"{res.network.name}: off-chip bytes against buffer size ({res.objective})",
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for c in ("buffer", "optimal B", "input B", "weight B", "output B", *TEXTBOOK, "ratio"):
        table.add_column(c, justify="left" if c == "buffer" else "right", no_wrap=True)
    for p in res.points:
        df = p.dataflow_bytes()
        flows = [f"{df[n]:,}" if df[n] is not None else "-" for n in TEXTBOOK]
        if p.feasible:
            ob = p.operand_bytes()
            table.add_row(format_size(p.capacity), f"{p.total_bytes:,}", *(f"{ob[op]:,}" for op in OPERANDS),
                          *flows, _ratio(p.ratio))
        else:
            table.add_row(format_size(p.capacity), "[yellow]does not fit[/]", "", "", "", *flows, "-")
    table.caption = "ratio: the best single textbook dataflow's bytes over the optimal bytes"
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
                                       ".pdf; needs matplotlib: pip install 'convsched[plot]')."),
    json_out: Optional[str] = JsonOpt,
    csv_out: Optional[str] = CsvOpt,
) -> None:
    """Optimal network traffic (per operand) and each textbook dataflow's over log-spaced buffer sizes."""
    low, high = parse_size_range(buffer)
    a = _arch(arch, bits, psum_bits, double_buffer, None)
    obj = _objective(objective)
    if plot is not None:
        from ..plot import _format_of, _matplotlib
        _format_of(Path(plot))
        _matplotlib()   # fail before the work when matplotlib is missing
    _check_outputs(json_out, csv_out, plot)
    net = load_target(target, batch)
    with _Bar(f"sweeping {net.name}") as bar:
        res = sweep_network(net, a, low, high, points, None, obj, workers, bar)
    if csv_out is not None:
        write_text_atomic(csv_out, res.to_csv())
    if plot is not None:
        from ..plot import plot_sweep
        plot_sweep(res, plot)
    if emit_json(json_out, res.to_json()):
        return
    out = _print(sweep_table(res))
    n_ok = len(res.feasible_points)
    out.print(f"{len(res.points)} sizes, {n_ok} feasible; solved in {res.seconds:.1f} s"
              + (f"; plot written to {plot}" if plot else ""), highlight=False)
