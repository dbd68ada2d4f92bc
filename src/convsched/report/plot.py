"""Figures (matplotlib, the optional `plot` extra; Agg canvas, no global backend state).

`plot_sweep` draws a buffer-size sweep: optimal network traffic against the
buffer capacity on log-log axes, its per-operand breakdown, and each
textbook dataflow as a reference line. `plot_hwc` draws the HWC against the
HWCE-style engine: per-layer ratios, or the ratio against the buffer size.

matplotlib is imported inside the functions that draw: it is optional, and
slow to import for the commands that draw nothing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..core.arch import OPERANDS
from ..core.errors import ConvschedError
from ..core.outputs import check_output, open_output
from ..core.units import format_size
from ..search.network import SweepResult
from ..search.optimizer import TEXTBOOK

FORMATS = ("png", "svg", "pdf")


def matplotlib_classes() -> tuple[type, type] | None:
    """matplotlib's `Figure` and Agg canvas classes; None when matplotlib is not installed."""
    try:        # matplotlib is optional (module docstring)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure, FigureCanvasAgg


def require_matplotlib() -> tuple[type, type]:
    """`matplotlib_classes`, or a one-line error saying how to install matplotlib (checked before long work)."""
    classes = matplotlib_classes()
    if classes is None:
        raise ConvschedError("plotting needs matplotlib; install it with: pip install 'convsched[plot]'")
    return classes


def size_ticks(low: float, high: float, max_ticks: int = 8) -> list[int]:
    """Byte values for the ticks of a log axis over [low, high] (> 0) that binary units name exactly:
    powers of two (every one, or every few, at most about `max_ticks`) when the range spans two or more
    octaves; otherwise the multiples of the largest power of two that gives three ticks or more (16MiB,
    20MiB, 24MiB), never finer than an eighth of the octave."""
    lo, hi = math.floor(math.log2(low)), math.ceil(math.log2(high))
    if math.log2(high / low) >= 2:
        step = max(1, math.ceil((hi - lo) / max_ticks))
        first = lo - lo % step
        return [2 ** k for k in range(first, hi + step, step)]
    for j in range(hi - 1, max(lo - 3, 0) - 1, -1):
        unit = 2 ** j
        ticks = list(range(math.ceil(low / unit) * unit, math.floor(high / unit) * unit + 1, unit))
        if len(ticks) >= 3:
            return ticks
    return [2 ** k for k in range(lo, hi + 1)]


def log_size_axis(axis, values: Sequence[float]) -> None:
    """Label a log-scaled byte axis at powers of two in binary units (64KiB, 1MiB), which they name exactly.
    (matplotlib's own log ticks are powers of ten, which binary units can only round.)"""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator   # optional (module docstring)
    positive = [v for v in values if v > 0]
    if not positive:
        return
    axis.set_major_locator(FixedLocator(size_ticks(min(positive), max(positive))))
    axis.set_major_formatter(FuncFormatter(lambda x, pos=None: format_size(int(x)) if x >= 1 else ""))
    axis.set_minor_locator(NullLocator())


def figure_format(path: str | Path) -> str:
    """The figure format a file name asks for: .png, .svg or .pdf (no other name is guessed at)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConvschedError(f"plot file {path} must end in {', '.join('.' + f for f in FORMATS)}")
    return fmt


def plot_sweep(result: SweepResult, path: str | Path, title: str | None = None,
               inputs: Iterable[str | Path] = ()) -> Path:
    """Write the sweep figure to `path` (.png, .svg or .pdf) by the output rule of `core/outputs.py`
    (a regular file whole or not at all; `inputs` are refused as the target); returns the path."""
    p = Path(path)
    fmt = figure_format(p)
    check_output(p, inputs)
    Figure, FigureCanvasAgg = require_matplotlib()

    pts = result.feasible_points
    if not pts:
        raise ConvschedError("the sweep has no buffer size that fits; nothing to plot")
    xs = [pt.capacity for pt in pts]
    fig = Figure(figsize=(7.5, 5.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(xs, [pt.total_bytes for pt in pts], "-o", color="black", lw=2.2, ms=4, label="optimal (total)")
    colors = {"input": "tab:blue", "weight": "tab:green", "output": "tab:red"}
    labels = {"input": "optimal: input reads", "weight": "optimal: weight reads",
              "output": "optimal: output reads + writes"}
    for op in OPERANDS:
        ys = [pt.operand_bytes()[op] for pt in pts]
        if any(ys):
            ax.plot(xs, ys, "-", color=colors[op], lw=1.2, alpha=0.85, label=labels[op])
    styles = ["--", "-.", ":"]
    for i, name in enumerate(TEXTBOOK):
        line = [(pt.capacity, pt.dataflow_bytes()[name]) for pt in result.points
                if pt.dataflow_bytes()[name] is not None]
        if line:
            ax.plot([x for x, _ in line], [y for _, y in line], styles[i % len(styles)], color="tab:gray",
                    lw=1.4, label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    log_size_axis(ax.xaxis, xs + [pt.capacity for pt in result.points])
    log_size_axis(ax.yaxis, [y for line in ax.get_lines() for y in line.get_ydata()])
    ax.set_xlabel("on-chip buffer capacity")
    ax.set_ylabel("off-chip traffic")
    ax.grid(True, which="both", lw=0.4, alpha=0.5)
    ax.set_title(title or f"{result.network.name}: off-chip traffic vs buffer size")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()

    with open_output(p, binary=True, inputs=inputs) as f:
        fig.savefig(f, format=fmt)
    return p


def plot_hwc(path: str | Path, single: Mapping[str, Any] | None, sweep: Sequence[Mapping[str, Any]] | None,
             inputs: Iterable[str | Path] = ()) -> Path:
    """Write the HWC figure to `path` (.png, .svg or .pdf) by the output rule of `core/outputs.py`: with
    `sweep` (the points of `hwc --sweep --json`) the HWCE / HWC bytes ratio against the HWC's buffer,
    else the ratio of each layer of `single` (`hwc --json`); returns the path."""
    p = Path(path)
    fmt = figure_format(p)
    check_output(p, inputs)
    Figure, FigureCanvasAgg = require_matplotlib()
    fig = Figure(figsize=(10, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if sweep:
        xs = [pt["buffer_bytes"] / 1024 for pt in sweep]
        ax.plot(xs, [pt["ratio"] for pt in sweep], "o-", label="network total")
        ax.plot(xs, [pt["max_layer_ratio"] for pt in sweep], "s--", label="best layer")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("HWC total buffer (KiB)")
        ax.set_title(f"{sweep[0]['network']}: HWCE bytes / HWC bytes")
    elif single is not None:
        rows = [d for d in single["layers"] if d["ratio"] is not None]
        ax.bar(range(len(rows)), [d["ratio"] for d in rows])
        ax.set_xticks(range(len(rows)), [d["name"] for d in rows], rotation=90, fontsize=7)
        ax.axhline(14, color="red", linestyle=":", label="14x (paper)")
        ax.set_title(f"{single['network']}: HWCE bytes / HWC bytes per layer (total {single['ratio']:.2f}x)")
    ax.legend()
    ax.set_ylabel("ratio")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with open_output(p, binary=True, inputs=inputs) as f:
        fig.savefig(f, format=fmt)
    return p
