"""`convsched hwc`: the HWC executing optimal schedules vs the HWCE-style engine on the same port."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..core.errors import ConvschedError
from ..hwc import HWCConfig, compare_network, totals
from ..networks import Network, load_target
from ..core.units import format_size, parse_size, parse_size_range
from ..report.plot import figure_format, plot_hwc, require_matplotlib
from ..report.tables import add_columns, new_table
from .application import app
from .common import JsonOpt, check_outputs, command_inputs, emit_json, whole_number
from .output import WideOpt, print_table, wrote
from .progress import Bar


def _sweep_sizes(text: str) -> list[int]:
    """Powers of two from the low to the high end (both ends included)."""
    lo, hi = parse_size_range(text)
    sizes, s = [lo], 1
    while s <= lo:
        s *= 2
    while s < hi:
        sizes.append(s)
        s *= 2
    if hi != lo:
        sizes.append(hi)
    return sizes


def _run(network: Network, cfg: HWCConfig, workers: int | None,
         progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    rows = compare_network(network, cfg, jobs=workers, progress=progress)
    layers = [r.to_dict(cfg) for r in rows]
    obj: dict[str, Any] = {"network": network.name, "buffer_bytes": cfg.total_buffer,
                           "buffers": dict(zip(("input", "weight", "output"), cfg.buffers)),
                           "layers": layers}
    obj.update(totals(rows, cfg))
    return obj


def _fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def _layer_table(obj: dict[str, Any], narrow: bool = False) -> Table:
    """Per layer, the two engines side by side. The narrow layout stacks each pair: the HWC's figure above
    the HWCE-style engine's, the HWCE mode under the layer name."""
    t = new_table(f"HWC vs HWCE-style engine: {obj['network']}, HWC buffers "
                  f"{'/'.join(format_size(v) for v in obj['buffers'].values())} (input/weight/output)",
                  "bytes moved on the memory port; GB/s = bandwidth needed to run at full compute speed; "
                  "ratio = HWCE bytes / HWC bytes" + ("; util. = the HWC's MAC utilisation" if narrow else ""))
    rows = []
    for d in obj["layers"]:
        sup = d["hwce_supported"]
        rows.append((Text(d["name"]), Text(d["hwce_mode"]), f"{d['hwc_bytes']:,}",
                     f"{d['hwce_bytes']:,}" if sup else "-", _fmt_ratio(d["ratio"]), f"{d['hwc_bandwidth_gbs']:.3f}",
                     f"{d['hwce_bandwidth_gbs']:.3f}" if sup else "-", f"{d['hwc_cycles']:,}",
                     f"{d['hwce_cycles']:,}" if sup else "-", f"{d['hwc_mac_utilisation']:.0%}"))
    total = (Text("total"), Text(""), f"{obj['hwc_bytes']:,}", f"{obj['hwce_bytes']:,}", _fmt_ratio(obj["ratio"]),
             f"{obj['hwc_bandwidth_gbs']:.3f}", f"{obj['hwce_bandwidth_gbs']:.3f}", f"{obj['hwc_cycles']:,}",
             f"{obj['hwce_cycles']:,}", "")
    if not narrow:
        add_columns(t, ["layer", "HWCE mode", "HWC bytes", "HWCE bytes", "ratio", "HWC GB/s", "HWCE GB/s",
                        "HWC cycles", "HWCE cycles", "HWC MAC util."], left=("HWCE mode",), fold=("layer",))
        for r in rows:
            t.add_row(*r)
        t.add_row(*total, style="bold")
        return t
    first = "layer\n  HWCE mode"
    add_columns(t, [first, "HWC bytes\nHWCE bytes", "HWC GB/s\nHWCE GB/s", "HWC cycles\nHWCE cycles", "ratio",
                    "util."], fold=(first,))
    for name, mode, hb, eb, ratio, hg, eg, hc, ec, util in [*rows, total]:
        t.add_row(Text.assemble(name, "\n  ", mode) if mode else name, f"{hb}\n{eb}", f"{hg}\n{eg}", f"{hc}\n{ec}", ratio, util,
                  style="bold" if name.plain == "total" else None)
    return t


def _sweep_table(network: str, points: list[dict[str, Any]], narrow: bool = False) -> Table:
    """Per HWC buffer size: both engines' network bytes, their ratio, and the layer with the largest ratio
    (stacked under that ratio in the narrow layout)."""
    t = new_table(f"HWC buffer sweep: {network}", "the HWCE-style engine's bytes do not depend on the HWC's buffer")
    best_header = "max layer ratio\nat layer" if narrow else "max layer ratio"
    add_columns(t, ["HWC buffer", "HWC bytes", "HWCE bytes", "ratio", best_header, *([] if narrow else ["at layer"])],
                fold=(best_header, "at layer"))
    for p in points:
        best = max((d for d in p["layers"] if d["ratio"] is not None), key=lambda d: d["ratio"], default=None)
        where = Text(best["name"] if best else "-")
        ratio = _fmt_ratio(p["max_layer_ratio"])
        t.add_row(format_size(p["buffer_bytes"]), f"{p['hwc_bytes']:,}", f"{p['hwce_bytes']:,}",
                  _fmt_ratio(p["ratio"]), *([Text(ratio + "\n") + where] if narrow else [ratio, where]))
    return t


@app.command()
def hwc(
    target: str = typer.Argument(..., help="Built-in network, .onnx/.yaml/.json file, or inline layer spec K=..,C=..,OY=..,OX=..",
                                 show_default=False),
    config: Optional[Path] = typer.Option(None, "--config", help="HWC configuration YAML (default: the built-in one, see docs/hwc.md)."),
    compare: str = typer.Option("hwce", "--compare", help="Baseline engine to compare with (only 'hwce')."),
    buffer: Optional[str] = typer.Option(None, "--buffer", help="HWC total buffer, split among input/weight/output in the config's proportions."),
    sweep: Optional[str] = typer.Option(None, "--sweep", help="Sweep the HWC total buffer over powers of two, e.g. 4KiB..256KiB."),
    workers: Optional[int] = typer.Option(None, "--workers", parser=whole_number(1), metavar="INTEGER",
                                          help="Worker processes for distinct layers (default: min(2, CPUs); "
                                               "1 = in-process; at most the CPUs)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", parser=whole_number(1), hidden=True,
                                       help="The former name of --workers."),
    json_out: Optional[str] = JsonOpt,
    plot: Optional[str] = typer.Option(None, "--plot", help="Write a figure to FILE (.png, .svg or .pdf): per-layer "
                                       "ratios, or ratio vs buffer with --sweep (needs matplotlib: "
                                       "pip install 'convsched\\[plot]')."),
    wide: bool = WideOpt,
) -> None:
    """Per layer and network: bytes moved and bandwidth needed by the HWC (optimal schedules) and by the HWCE-style engine."""
    if compare.lower() != "hwce":
        raise ConvschedError(f"unknown --compare {compare!r}; the only baseline is hwce")
    if buffer is not None and sweep is not None:
        raise ConvschedError("give either --buffer or --sweep, not both")
    if jobs is not None and workers is not None and jobs != workers:
        raise ConvschedError("--jobs is the former name of --workers; give one of them")
    workers = workers if workers is not None else jobs
    if plot is not None:            # before the work: a name that is not .png/.svg/.pdf, or no matplotlib
        figure_format(plot)
        require_matplotlib()
    check_outputs(json_out, plot)
    cfg = HWCConfig.from_file(config) if config is not None else HWCConfig.default()
    network = load_target(target)
    written = None
    if sweep is not None:
        sizes = _sweep_sizes(sweep)
        with Bar(f"HWC on {network.name}") as bar:
            points = [_run(network, cfg.with_total_buffer(s), workers,
                           bar.stage(f"HWC buffer {format_size(s)} ({i}/{len(sizes)})"))
                      for i, s in enumerate(sizes, 1)]
        obj = {"network": network.name, "config": cfg.to_dict(), "sweep": points}
        if plot:
            plot_hwc(plot, None, points, command_inputs())
            written = plot
        if emit_json(json_out, obj):
            return
        out = print_table([lambda: _sweep_table(network.name, points),
                           lambda: _sweep_table(network.name, points, narrow=True)], wide)
    else:
        if buffer is not None:
            cfg = cfg.with_total_buffer(parse_size(buffer))
        with Bar(f"HWC on {network.name}") as bar:
            obj = _run(network, cfg, workers, bar)
        obj["config"] = cfg.to_dict()
        if plot:
            plot_hwc(plot, obj, None, command_inputs())
            written = plot
        if emit_json(json_out, obj):
            return
        out = print_table([lambda: _layer_table(obj), lambda: _layer_table(obj, narrow=True)], wide)
    wrote(out, written, "figure")
    wrote(out, json_out, "JSON")
