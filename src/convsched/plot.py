"""Figures (matplotlib, the optional `plot` extra; Agg canvas, no global backend state).

`plot_sweep` draws a buffer-size sweep: optimal network traffic against the
buffer capacity on log-log axes, its per-operand breakdown, and each
textbook dataflow as a reference line.
"""

from __future__ import annotations

from pathlib import Path

from .arch import OPERANDS
from .errors import ConvschedError
from .fileio import atomic_path
from .netsearch import SweepResult
from .search import TEXTBOOK
from .units import format_size

FORMATS = ("png", "svg", "pdf")


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import LogFormatter
    except ImportError:
        raise ConvschedError("plotting needs matplotlib; install it with: pip install 'convsched[plot]'") from None

    class SizeFormatter(LogFormatter):
        """Byte sizes (64KiB) on the ticks matplotlib would label."""

        def __call__(self, x, pos=None):
            return format_size(x) if x >= 1 and super().__call__(x, pos) else ""

    return Figure, FigureCanvasAgg, SizeFormatter


def _format_of(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConvschedError(f"plot file {path} must end in {', '.join('.' + f for f in FORMATS)}")
    return fmt


def plot_sweep(result: SweepResult, path: str | Path, title: str | None = None) -> Path:
    """Write the sweep figure to `path` (.png, .svg or .pdf), atomically; returns the path."""
    p = Path(path)
    fmt = _format_of(p)
    if p.is_dir():
        raise ConvschedError(f"cannot write {path}: it is a folder; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise ConvschedError(f"cannot write {path}: folder {parent} does not exist")
    Figure, FigureCanvasAgg, SizeFormatter = _matplotlib()

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
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(SizeFormatter(base=2 if axis is ax.xaxis else 10))
        axis.set_minor_formatter(SizeFormatter(base=2 if axis is ax.xaxis else 10, labelOnlyBase=False))
    ax.set_xlabel("on-chip buffer capacity")
    ax.set_ylabel("off-chip traffic")
    ax.grid(True, which="both", lw=0.4, alpha=0.5)
    ax.set_title(title or f"{result.network.name}: off-chip traffic vs buffer size")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()

    with atomic_path(p, suffix=f".tmp.{fmt}") as tmp:
        fig.savefig(tmp, format=fmt)
    return p
