"""Figures (matplotlib, the optional `plot` extra; Agg canvas, no global backend state).

`plot_sweep` draws a buffer-size sweep: optimal network traffic against the
buffer capacity on log-log axes, its per-operand breakdown, and each
textbook dataflow as a reference line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

from ..core.arch import OPERANDS
from ..core.errors import ConvschedError
from ..core.units import format_size
from ..search.network import SweepResult
from ..search.optimizer import TEXTBOOK

FORMATS = ("png", "svg", "pdf")


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConvschedError("plotting needs matplotlib; install it with: pip install 'convsched[plot]'") from None
    return Figure, FigureCanvasAgg


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
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    positive = [v for v in values if v > 0]
    if not positive:
        return
    axis.set_major_locator(FixedLocator(size_ticks(min(positive), max(positive))))
    axis.set_major_formatter(FuncFormatter(lambda x, pos=None: format_size(int(x)) if x >= 1 else ""))
    axis.set_minor_locator(NullLocator())


def _format_of(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConvschedError(f"plot file {path} must end in {', '.join('.' + f for f in FORMATS)}")
    return fmt


def plot_sweep(result: SweepResult, path: str | Path, title: str | None = None,
               inputs: Iterable[str | Path] = ()) -> Path:
    """Write the sweep figure to `path` (.png, .svg or .pdf) by the output rule of `core/outputs.py`
    (a regular file whole or not at all; `inputs` are refused as the target); returns the path."""
    from ..core.outputs import check_output, open_output
    p = Path(path)
    fmt = _format_of(p)
    check_output(p, inputs)
    Figure, FigureCanvasAgg = _matplotlib()

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
