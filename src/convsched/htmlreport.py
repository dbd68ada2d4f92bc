"""The gap report: one Markdown or self-contained HTML document per network and buffer.

Contents: per-layer optimal schedules, traffic and bytes/MAC; the lower bound
(`bounds.layer_bounds`) and the optimum's ratio to it; the textbook
dataflows; the earlier published models' prediction errors and losses
(`baselines.compare`); figures (traffic per layer, optimum against the bound,
network traffic against a few buffer sizes) drawn with matplotlib's Agg
canvas into inline SVG (HTML) or base64 PNG (Markdown). Without matplotlib
the figures are left out with a note. Nothing here needs network access.

`build_report` computes (slow: it runs the optimizer), `render` formats.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from .arch import Architecture
from .baselines.compare import NetworkComparison, compare_result, format_error, summary_rows
from .bounds import LayerBounds, layer_bounds
from .errors import ConvschedError
from .netsearch import NetworkResult, optimize_network
from .networks import Network
from .report import schedule_summary
from .search import TEXTBOOK
from .units import format_size

FORMATS = ("md", "html")


@dataclass
class ReportData:
    network: Network
    arch: Architecture
    result: NetworkResult
    bounds: list[LayerBounds]
    comparison: NetworkComparison
    sweep: list[dict[str, Any]] = field(default_factory=list)   # {buffer, total_bytes, lower_bound, textbook}

    @property
    def lower_bound(self) -> int:
        return sum(b.best for b in self.bounds)

    def to_json(self) -> dict[str, Any]:
        d = self.result.to_json()
        for row, b in zip(d["layers"], self.bounds):
            row["bounds"] = b.to_dict()
            row["lower_bound_bytes"] = b.best
        d["lower_bound_bytes"] = self.lower_bound
        d["ratio_to_bound"] = self.result.total_bytes / self.lower_bound if self.lower_bound else None
        d["models"] = self.comparison.to_json()
        d["sweep"] = self.sweep
        return d


def sweep_capacities(capacity: int) -> list[int]:
    """A few buffer sizes around the report's: a quarter, the same, four times."""
    return sorted({max(1, capacity // 4), capacity, capacity * 4})


def build_report(network: Network, arch: Architecture, workers: int | None = None, samples: int = 12,
                 sweep_sizes: Sequence[int] | None = None, progress=None) -> ReportData:
    """Optimize every layer, bound it, compare the earlier models, and sweep a few sizes."""
    if arch.capacity is None:
        raise ConvschedError("the report needs one shared buffer capacity; give --buffer SIZE")
    result = optimize_network(network, arch, workers=workers, progress=progress)
    bounds = [layer_bounds(e.net_layer.layer, e.arch) for e in result.entries]
    comparison = compare_result(result, samples=samples)
    sweep = []
    for cap in (sweep_capacities(arch.capacity) if sweep_sizes is None else sweep_sizes):
        a = arch.with_capacity(cap)
        if cap == arch.capacity:
            r = result
        else:
            try:
                r = optimize_network(network, a, workers=workers)
            except ConvschedError:
                sweep.append({"buffer": cap, "total_bytes": None, "lower_bound": None, "textbook": None})
                continue
        lb = sum(layer_bounds(e.net_layer.layer, e.arch).best for e in r.entries)
        sweep.append({"buffer": cap, "total_bytes": r.total_bytes, "lower_bound": lb,
                      "textbook": r.textbook_total_bytes})
    return ReportData(network, arch, result, bounds, comparison, sweep)


# ---------------------------------------------------------------------------
# figures


def _figures(data: ReportData, fmt: str) -> list[tuple[str, str]] | None:
    """(caption, inline markup) per figure; None when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    entries = data.result.entries
    names = [e.name for e in entries]
    x = list(range(len(entries)))
    figs = []

    def emit(fig, caption: str) -> None:
        FigureCanvasAgg(fig)
        buf = io.BytesIO()
        if fmt == "html":
            fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
            svg = buf.getvalue().decode("utf-8")
            svg = svg[svg.index("<svg"):]
            figs.append((caption, svg))
        else:
            fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
            figs.append((caption, "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")))

    width = max(6.0, 0.28 * len(entries) + 2)
    fig = Figure(figsize=(width, 3.6))
    ax = fig.add_subplot()
    opt = [e.traffic.total_bytes for e in entries]
    lb = [b.best for b in data.bounds]
    tb = [e.textbook.traffic.total_bytes if e.textbook else 0 for e in entries]
    w = 0.27
    ax.bar([i - w for i in x], tb, w, label="best textbook dataflow", color="#bbbbbb")
    ax.bar(x, opt, w, label="optimal schedule", color="#1f77b4")
    ax.bar([i + w for i in x], lb, w, label="lower bound", color="#2ca02c")
    ax.set_yscale("log")
    ax.set_ylabel("off-chip bytes")
    ax.set_xticks(x, names, rotation=90, fontsize=7)
    ax.legend(fontsize=7)
    emit(fig, "Traffic per layer: best textbook dataflow, optimal schedule and lower bound")

    fig = Figure(figsize=(width, 3.0))
    ax = fig.add_subplot()
    ax.bar(x, [o / b if b else 1.0 for o, b in zip(opt, lb)], color="#1f77b4")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel("optimum / lower bound")
    ax.set_xticks(x, names, rotation=90, fontsize=7)
    emit(fig, "Optimal traffic over the lower bound, per layer (1 = the bound is reached)")

    pts = [p for p in data.sweep if p["total_bytes"] is not None]
    if pts:
        fig = Figure(figsize=(5.5, 3.4))
        ax = fig.add_subplot()
        caps = [p["buffer"] for p in pts]
        ax.plot(caps, [p["total_bytes"] for p in pts], "o-", label="optimal schedules")
        ax.plot(caps, [p["lower_bound"] for p in pts], "s--", label="lower bound")
        tpts = [(p["buffer"], p["textbook"]) for p in pts if p["textbook"] is not None]
        if tpts:
            ax.plot(*zip(*tpts), "^:", label="best textbook per layer")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(caps, [format_size(c) for c in caps])
        ax.set_xlabel("buffer capacity")
        ax.set_ylabel("network off-chip bytes")
        ax.legend(fontsize=7)
        emit(fig, "Network traffic against the buffer size")
    return figs


# ---------------------------------------------------------------------------
# tables (plain rows; each format renders them)


def _arch_line(a: Architecture) -> str:
    db = ", double-buffered" if a.double_buffer else ""
    return (f"buffer {format_size(a.capacity)} ({a.capacity} B){db}; words: input {a.input_bits} b, "
            f"weight {a.weight_bits} b, partial sum {a.psum_bits} b, output {a.output_bits} b")


def _summary_rows(data: ReportData) -> list[list[str]]:
    r = data.result
    rows = [["layers (distinct)", f"{len(r.entries)} ({r.unique_layers})"],
            ["MACs", f"{r.macs:,}"],
            ["optimal traffic", f"{r.total_bytes:,} B"],
            ["bytes / MAC", f"{r.bytes_per_mac:.4f}"],
            ["lower bound", f"{data.lower_bound:,} B"],
            ["optimum / lower bound", f"{r.total_bytes / data.lower_bound:.3f}" if data.lower_bound else "n/a"]]
    tb = r.textbook_total_bytes
    rows.append(["best textbook dataflow per layer", "n/a (some layer fits none)" if tb is None else f"{tb:,} B"])
    rows.append(["textbook / optimum", "n/a" if r.saving is None else f"{r.saving:.3f}"])
    for name, v in r.dataflow_total_bytes().items():
        rows.append([f"{name} for every layer", "does not fit" if v is None else f"{v:,} B"])
    return rows


LAYER_HEADER = ["layer", "shape", "schedule", "total bytes", "bytes/MAC", "lower bound", "bound", "opt/bound",
                "textbook", "textbook bytes", "textbook/opt"]


def _layer_rows(data: ReportData) -> list[list[str]]:
    rows = []
    for e, b in zip(data.result.entries, data.bounds):
        t = e.traffic
        L = e.net_layer.layer
        rows.append([e.name, str(L), schedule_summary(e.result.schedule), f"{t.total_bytes:,}",
                     f"{t.bytes_per_mac:.4f}", f"{b.best:,}", b.best_name,
                     f"{t.total_bytes / b.best:.3f}" if b.best else "n/a",
                     e.textbook_name or "none fits",
                     f"{e.textbook.traffic.total_bytes:,}" if e.textbook else "n/a",
                     f"{e.saving:.3f}" if e.saving is not None else "n/a"])
    return rows


MODEL_HEADER = ["model", "mean |error|", "worst error", "chosen / optimum (network)"]


def _model_layer_rows(data: ReportData) -> tuple[list[str], list[list[str]]]:
    keys = list(data.comparison.layers[0]) if data.comparison.layers else []
    from .baselines import NAMES
    header = ["layer"] + [f"{NAMES.get(k, k)} err / loss" for k in keys]
    rows = []
    for name, lc in zip(data.comparison.names, data.comparison.layers):
        row = [name]
        for k in keys:
            m = lc[k]
            err = "0" if k == "textbook" else format_error(m.worst_error)
            loss = "n/a" if m.loss is None else f"{m.loss:.2f}x"
            row.append(f"{err} / {loss}")
        rows.append(row)
    return header, rows


NOTES = [
    "Lower bound: the largest valid of compulsory traffic, Chen-Han-Wang's sliding-window bound "
    "2*MACs/sqrt(R*S) and the im2col matrix-multiply bound 2*M*N*K/sqrt(S) (only when no window reuse); "
    "S = capacity / smallest on-chip word. See docs/bounds.md.",
    "Earlier models: errors are (predicted - exact) / exact bytes over the schedules each can express "
    "(its choice, the optimum when expressible, and a sample of its space); the worst error keeps its sign "
    "(negative: the model promised less than the schedule moves). 'chosen / optimum' is the exact traffic of "
    "the schedules the model picks over the optimum's.",
]


# ---------------------------------------------------------------------------
# rendering


def render(data: ReportData, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConvschedError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    figs = _figures(data, fmt)
    return _markdown(data, figs) if fmt == "md" else _html(data, figs)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


def _markdown(data: ReportData, figs) -> str:
    out = [f"# convsched report: {data.network.name}", "", _arch_line(data.arch), "", "## Summary", "",
           _md_table(["", "value"], _summary_rows(data)), "", "## Layers", "",
           _md_table(LAYER_HEADER, _layer_rows(data)), "", "## Earlier models", "",
           _md_table(MODEL_HEADER, summary_rows(data.comparison.summary())), ""]
    h, rows = _model_layer_rows(data)
    out += ["Per layer (worst error / chosen over optimum):", "", _md_table(h, rows), "", "## Figures", ""]
    if figs is None:
        out.append("_Figures omitted: matplotlib is not installed (pip install 'convsched[plot]')._")
    else:
        for cap, uri in figs:
            out += [f"![{cap}]({uri})", "", f"*{cap}*", ""]
    out += ["", "## Notes", ""] + [f"- {n}" for n in NOTES] + [""]
    return "\n".join(out)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0;"
        "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,"
        "th:first-child{text-align:left}figure{margin:1.5em 0}figcaption{font-style:italic}")


def _html(data: ReportData, figs) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>convsched report: {e(data.network.name)}"
             f"</title><style>{_CSS}</style></head><body>",
             f"<h1>convsched report: {e(data.network.name)}</h1><p>{e(_arch_line(data.arch))}</p>",
             "<h2>Summary</h2>", _html_table(["", "value"], _summary_rows(data)),
             "<h2>Layers</h2>", _html_table(LAYER_HEADER, _layer_rows(data)),
             "<h2>Earlier models</h2>", _html_table(MODEL_HEADER, summary_rows(data.comparison.summary()))]
    h, rows = _model_layer_rows(data)
    parts += ["<p>Per layer (worst error / chosen over optimum):</p>", _html_table(h, rows), "<h2>Figures</h2>"]
    if figs is None:
        parts.append("<p><em>Figures omitted: matplotlib is not installed (pip install 'convsched[plot]').</em></p>")
    else:
        for cap, svg in figs:
            parts.append(f"<figure>{svg}<figcaption>{e(cap)}</figcaption></figure>")
    parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in NOTES) + "</ul>")
    payload = json.dumps(data.to_json()).replace("</", "<\\/")
    parts.append(f"<script type='application/json' id='convsched-data'>{payload}</script></body></html>")
    return "".join(parts)
