"""`convsched hwc`: the HWC executing optimal schedules vs the HWCE-style engine on the same port."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from ..errors import ConvschedError
from ..units import format_size, parse_size, parse_size_range
from . import app
from .common import JsonOpt, console, emit_json, whole_number


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


def _run(network, cfg, workers: int | None) -> dict[str, Any]:
    from ..hwc import compare_network, totals
    rows = compare_network(network, cfg, jobs=workers)
    layers = [r.to_dict(cfg) for r in rows]
    obj: dict[str, Any] = {"network": network.name, "buffer_bytes": cfg.total_buffer,
                           "buffers": dict(zip(("input", "weight", "output"), cfg.buffers)),
                           "layers": layers}
    obj.update(totals(rows, cfg))
    return obj


def _fmt_ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


def _layer_table(obj: dict[str, Any]) -> Table:
    t = Table(title=f"HWC vs HWCE-style engine: {obj['network']}, HWC buffers "
                    f"{'/'.join(format_size(v) for v in obj['buffers'].values())} (input/weight/output)",
              title_justify="left")
    for col in ("layer", "HWCE mode", "HWC bytes", "HWCE bytes", "ratio", "HWC GB/s", "HWCE GB/s",
                "HWC cycles", "HWCE cycles", "HWC MAC util."):
        t.add_column(col, justify="left" if col in ("layer", "HWCE mode") else "right")
    for d in obj["layers"]:
        sup = d["hwce_supported"]
        t.add_row(d["name"], d["hwce_mode"], f"{d['hwc_bytes']:,}", f"{d['hwce_bytes']:,}" if sup else "-",
                  _fmt_ratio(d["ratio"]), f"{d['hwc_bandwidth_gbs']:.3f}",
                  f"{d['hwce_bandwidth_gbs']:.3f}" if sup else "-", f"{d['hwc_cycles']:,}",
                  f"{d['hwce_cycles']:,}" if sup else "-", f"{d['hwc_mac_utilisation']:.0%}")
    t.add_row("total", "", f"{obj['hwc_bytes']:,}", f"{obj['hwce_bytes']:,}", _fmt_ratio(obj["ratio"]),
              f"{obj['hwc_bandwidth_gbs']:.3f}", f"{obj['hwce_bandwidth_gbs']:.3f}", f"{obj['hwc_cycles']:,}",
              f"{obj['hwce_cycles']:,}", "", style="bold")
    t.caption = ("bytes moved on the memory port; GB/s = bandwidth needed to run at full compute speed; "
                 "ratio = HWCE bytes / HWC bytes")
    return t


def _sweep_table(network: str, points: list[dict[str, Any]]) -> Table:
    t = Table(title=f"HWC buffer sweep: {network}", title_justify="left")
    for col in ("HWC buffer", "HWC bytes", "HWCE bytes", "ratio", "max layer ratio", "at layer"):
        t.add_column(col, justify="right")
    for p in points:
        best = max((d for d in p["layers"] if d["ratio"] is not None), key=lambda d: d["ratio"], default=None)
        t.add_row(format_size(p["buffer_bytes"]), f"{p['hwc_bytes']:,}", f"{p['hwce_bytes']:,}",
                  _fmt_ratio(p["ratio"]), _fmt_ratio(p["max_layer_ratio"]), best["name"] if best else "-")
    t.caption = "the HWCE-style engine's bytes do not depend on the HWC's buffer"
    return t


def _plot(path: str, single: dict[str, Any] | None, sweep: list[dict[str, Any]] | None) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConvschedError("--plot needs matplotlib; install it with: pip install 'convsched[plot]'") from None
    fig, ax = plt.subplots(figsize=(10, 4.5))
    if sweep:
        xs = [p["buffer_bytes"] / 1024 for p in sweep]
        ax.plot(xs, [p["ratio"] for p in sweep], "o-", label="network total")
        ax.plot(xs, [p["max_layer_ratio"] for p in sweep], "s--", label="best layer")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("HWC total buffer (KiB)")
        ax.set_title(f"{sweep[0]['network']}: HWCE bytes / HWC bytes")
        ax.legend()
    else:
        rows = [d for d in single["layers"] if d["ratio"] is not None]
        ax.bar(range(len(rows)), [d["ratio"] for d in rows])
        ax.set_xticks(range(len(rows)), [d["name"] for d in rows], rotation=90, fontsize=7)
        ax.axhline(14, color="red", linestyle=":", label="14x (paper)")
        ax.set_title(f"{single['network']}: HWCE bytes / HWC bytes per layer (total {single['ratio']:.2f}x)")
        ax.legend()
    ax.set_ylabel("ratio")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path)
    except (OSError, ValueError) as e:
        raise ConvschedError(f"cannot write plot {path}: {e}") from None
    finally:
        plt.close(fig)


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
                                               "1 = in-process)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", parser=whole_number(1), hidden=True,
                                       help="The former name of --workers."),
    json_out: Optional[str] = JsonOpt,
    plot: Optional[str] = typer.Option(None, "--plot", help="Write a figure (matplotlib): per-layer ratios, or ratio vs buffer with --sweep."),
) -> None:
    """Per layer and network: bytes moved and bandwidth needed by the HWC (optimal schedules) and by the HWCE-style engine."""
    from ..hwc import HWCConfig
    from ..networks import load_target
    if compare.lower() != "hwce":
        raise ConvschedError(f"unknown --compare {compare!r}; the only baseline is hwce")
    if buffer is not None and sweep is not None:
        raise ConvschedError("give either --buffer or --sweep, not both")
    if jobs is not None and workers is not None and jobs != workers:
        raise ConvschedError("--jobs is the former name of --workers; give one of them")
    workers = workers if workers is not None else jobs
    cfg = HWCConfig.from_file(config) if config is not None else HWCConfig.default()
    network = load_target(target)
    if sweep is not None:
        points = [_run(network, cfg.with_total_buffer(s), workers) for s in _sweep_sizes(sweep)]
        obj = {"network": network.name, "config": cfg.to_dict(), "sweep": points}
        if plot:
            _plot(plot, None, points)
        if emit_json(json_out, obj):
            return
        console.print(_sweep_table(network.name, points))
        return
    if buffer is not None:
        cfg = cfg.with_total_buffer(parse_size(buffer))
    obj = _run(network, cfg, workers)
    obj["config"] = cfg.to_dict()
    if plot:
        _plot(plot, obj, None)
    if emit_json(json_out, obj):
        return
    console.print(_layer_table(obj))
