"""The gap report: one Markdown or self-contained HTML document per network and buffer.

Contents, in the order a reader wants them: the summary; figures (traffic
per layer, optimum against the bound, network traffic against a few buffer
sizes); per-layer optimal schedules, traffic and bytes/MAC beside the lower
bound (`bounds.layer_bounds`) and the best textbook dataflow; the earlier
published models' prediction errors and losses (`baselines.compare`). Every
table says what its cells hold.

Figures are drawn with matplotlib's Agg canvas: inline SVG in HTML; PNG files
next to a Markdown document (`Rendered.figures`, written by the caller), so the
Markdown stays text. Without matplotlib the figures are left out with a note.
Nothing here needs network access.

`build_report` computes (slow: it runs the optimizer), `render` formats.
"""

from __future__ import annotations

import html
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence
from urllib.parse import quote as urlquote

from ..analysis.baselines import NAMES
from ..analysis.baselines.compare import NetworkComparison, compare_result, format_error, summary_rows
from ..core.arch import Architecture
from ..core.errors import ConvschedError
from ..core.layer import Layer
from ..core.units import format_size
from ..model.bounds import LayerBounds, layer_bounds
from ..networks import Network
from ..search.network import NetworkResult, optimize_network
from .plot import log_size_axis, matplotlib_classes
from .tables import schedule_buffers, schedule_loops

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
                 sweep_sizes: Sequence[int] | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> ReportData:
    """Optimize every layer, bound it, compare the earlier models, and sweep a few sizes.

    `progress(stage, done, total)` reports each stage (a label such as "comparing earlier models") as its
    jobs finish; a stage's last report has done == total, before the next stage starts its workers."""
    if arch.capacity is None:
        raise ConvschedError("the report needs one shared buffer capacity; give --buffer SIZE")

    def stage(label: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda done, total: progress(label, done, total))

    result = optimize_network(network, arch, workers=workers, progress=stage(f"optimizing {network.name}"))
    bounds = [layer_bounds(e.net_layer.layer, e.arch) for e in result.entries]
    comparison = compare_result(result, samples=samples, progress=stage("comparing earlier models"))
    sweep = []
    for cap in (sweep_capacities(arch.capacity) if sweep_sizes is None else sweep_sizes):
        a = arch.with_capacity(cap)
        if cap == arch.capacity:
            r = result
        else:
            try:
                r = optimize_network(network, a, workers=workers, progress=stage(f"optimizing at {format_size(cap)}"))
            except ConvschedError:
                sweep.append({"buffer": cap, "total_bytes": None, "lower_bound": None, "textbook": None})
                continue
        lb = sum(layer_bounds(e.net_layer.layer, e.arch).best for e in r.entries)
        sweep.append({"buffer": cap, "total_bytes": r.total_bytes, "lower_bound": lb,
                      "textbook": r.textbook_total_bytes})
    return ReportData(network, arch, result, bounds, comparison, sweep)


# ---------------------------------------------------------------------------
# figures


@dataclass(frozen=True)
class _Figure:
    slug: str        # names its file next to a Markdown document
    caption: str
    figure: Any      # a matplotlib Figure on an Agg canvas


def _figures(data: ReportData) -> list[_Figure] | None:
    """The report's figures; None when matplotlib is missing."""
    classes = matplotlib_classes()
    if classes is None:
        return None
    Figure, FigureCanvasAgg = classes
    entries = data.result.entries
    names = [e.name for e in entries]
    x = list(range(len(entries)))
    figs = []

    def add(fig, slug: str, caption: str) -> None:
        FigureCanvasAgg(fig)
        figs.append(_Figure(slug, caption, fig))

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
    log_size_axis(ax.yaxis, [v for v in opt + lb + tb if v > 0])
    ax.set_ylabel("off-chip traffic")
    ax.set_xticks(x, names, rotation=90, fontsize=7)
    ax.legend(fontsize=7)
    add(fig, "traffic-per-layer", "Traffic per layer: best textbook dataflow, optimal schedule and lower bound")

    fig = Figure(figsize=(width, 3.0))
    ax = fig.add_subplot()
    ax.bar(x, [o / b if b else 1.0 for o, b in zip(opt, lb)], color="#1f77b4")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel("optimum / lower bound")
    ax.set_xticks(x, names, rotation=90, fontsize=7)
    add(fig, "optimum-over-bound", "Optimal traffic over the lower bound, per layer (1 = the bound is reached)")

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
        ax.xaxis.set_minor_locator(_null_locator())
        log_size_axis(ax.yaxis, [v for p in pts for v in (p["total_bytes"], p["lower_bound"], p["textbook"])
                                 if v])
        ax.set_xlabel("buffer capacity")
        ax.set_ylabel("network off-chip traffic")
        ax.legend(fontsize=7)
        add(fig, "traffic-vs-buffer", "Network traffic against the buffer size")
    return figs


def _null_locator():
    from matplotlib.ticker import NullLocator     # matplotlib is optional: imported where a figure is drawn
    return NullLocator()


def _svg(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue().decode("utf-8")
    return svg[svg.index("<svg"):]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


# ---------------------------------------------------------------------------
# tables (rows of cells; each format renders them)


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, shown in a monospace font without wrapping (`mono`), with the full value
    in a tooltip (`title`, HTML only)."""

    text: str
    mono: bool = False
    title: str | None = None

    def __str__(self) -> str:
        return self.text


Row = Sequence["str | Cell"]


@dataclass(frozen=True)
class Section:
    """A table with its legend: what each column holds. `groups` puts a header row above `header`:
    (title, number of columns) from the left, "" for a column without a group."""

    header: Sequence[str]
    rows: Sequence[Row]
    legend: Sequence[tuple[str, str]] = ()   # (column, what its cells hold)
    groups: Sequence[tuple[str, int]] = ()

    def flat_header(self) -> list[str]:
        """The header with each column's group before its own name (for formats without grouped headers)."""
        names = [g for g, n in self.groups for _ in range(n)] if self.groups else [""] * len(self.header)
        return [f"{g} {h}" if g else h for g, h in zip(names, self.header)]


def _arch_line(a: Architecture) -> str:
    db = ", double-buffered" if a.double_buffer else ""
    return (f"buffer {format_size(a.capacity)} ({a.capacity:,} B){db}; words: input {a.input_bits} b, "
            f"weight {a.weight_bits} b, partial sum {a.psum_bits} b, output {a.output_bits} b")


def _summary(data: ReportData) -> Section:
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
    return Section(["", "value"], rows)


def _pair(y: int, x: int) -> str:
    return str(y) if y == x else f"{y}x{x}"


def short_shape(L: Layer) -> str:
    """The shape in a few characters: channels in->out, output rows x columns, filter, and only the
    stride, dilation, groups and batch that are not 1 (`64->128 28x28 3x3 s2`)."""
    parts = [f"{L.C}->{L.K}", f"{L.OY}x{L.OX}", f"{L.FY}x{L.FX}"]
    for tag, y, x in (("s", L.SY, L.SX), ("d", L.DY, L.DX)):
        if (y, x) != (1, 1):
            parts.append(f"{tag}{_pair(y, x)}")
    parts += [f"g{L.G}"] if L.G > 1 else []
    parts += [f"N{L.N}"] if L.N > 1 else []
    return " ".join(parts)


LAYER_HEADER = ["layer", "shape", "schedule", "total bytes", "bytes/MAC", "lower bound", "bound", "opt/bound",
                "textbook", "textbook bytes", "textbook/opt"]


def _layer_legend(tooltips: bool) -> list[tuple[str, str]]:
    hover = " (hover: every field)" if tooltips else ""
    return [
        ("shape", "input -> output channels, output rows x columns, filter rows x columns; s stride, d dilation, "
                  f"g groups, N batch where not 1{hover}"),
        ("schedule", "the optimal schedule: its tile loops outermost first as DIM/tile, then how many of them sit "
                     "above each buffer (i@ input, w@ weight, o@ output)"),
        ("total bytes", "off-chip bytes the optimal schedule moves (all operands, reads and writes)"),
        ("lower bound" if tooltips else "lower bound, bound",
         "the largest valid lower bound on those bytes" + (" (hover: which bound)" if tooltips else
                                                           ", and which bound it is")),
        ("opt/bound", "total bytes over the lower bound (1.000: the bound is reached)"),
        ("textbook" if tooltips else "textbook, textbook bytes",
         "the best textbook dataflow for the layer, with its own best tiles"
         + (" (hover: its bytes)" if tooltips else ", and its bytes")),
        ("textbook/opt", "the textbook dataflow's bytes over the optimum's"),
    ]


def _layers(data: ReportData, tooltips: bool = False) -> Section:
    """A row per layer. With `tooltips` (HTML) the bound's name and the textbook dataflow's bytes are shown
    on hover, not in columns of their own, so that the table fits a 1280-pixel window."""
    rows = []
    for e, b in zip(data.result.entries, data.bounds):
        t = e.traffic
        L = e.net_layer.layer
        s = e.result.schedule
        textbook_bytes = f"{e.textbook.traffic.total_bytes:,}" if e.textbook else "n/a"
        textbook = e.textbook_name or "none fits"
        row = [e.name, Cell(short_shape(L), title=str(L)),
               Cell(f"{schedule_loops(s)} | {schedule_buffers(s)}", mono=True), f"{t.total_bytes:,}",
               f"{t.bytes_per_mac:.4f}",
               Cell(f"{b.best:,}", title=f"{b.best_name} bound") if tooltips else f"{b.best:,}",
               *([] if tooltips else [b.best_name]),
               f"{t.total_bytes / b.best:.3f}" if b.best else "n/a",
               Cell(textbook, title=f"{textbook_bytes} bytes") if tooltips else textbook,
               *([] if tooltips else [textbook_bytes]),
               f"{e.saving:.3f}" if e.saving is not None else "n/a"]
        rows.append(row)
    header = [h for h in LAYER_HEADER if not (tooltips and h in ("bound", "textbook bytes"))]
    return Section(header, rows, _layer_legend(tooltips))


MODEL_HEADER = ["model", "mean |error|", "worst error", "chosen / optimum (network)"]

_ERROR_MEANING = ("(predicted - exact) / exact bytes over the schedules the model can express (its own choice, "
                  "the optimum when it can express it, and a sample of its space); the sign is kept (negative: "
                  "the model promised less traffic than the schedule moves)")


def _models(data: ReportData) -> Section:
    return Section(MODEL_HEADER, summary_rows(data.comparison.summary()), [
        ("mean |error|, worst error", "of " + _ERROR_MEANING + "; the textbook dataflows are searched with the "
                                     "exact model, so their error is 0"),
        ("chosen / optimum", "exact bytes of the schedules the model picks, over the optimum's, for the network"),
    ])


def _model_layers(data: ReportData) -> Section:
    keys = list(data.comparison.layers[0]) if data.comparison.layers else []
    header = ["layer"] + ["error", "chosen/opt"] * len(keys)
    groups = [("", 1)] + [(NAMES.get(k, k), 2) for k in keys]
    rows = []
    for name, lc in zip(data.comparison.names, data.comparison.layers):
        row = [name]
        for k in keys:
            m = lc[k]
            row += ["0" if k == "textbook" else format_error(m.worst_error),
                    "n/a" if m.loss is None else f"{m.loss:.2f}x"]
        rows.append(row)
    return Section(header, rows, [
        ("error", "the worst " + _ERROR_MEANING),
        ("chosen/opt", "exact bytes of the schedule the model picks for the layer over the optimum's "
                       "(1.00x: it picks an optimal schedule; n/a: it has no schedule that fits)"),
    ], groups)


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


@dataclass(frozen=True)
class Rendered:
    """A rendered report: its text and, for Markdown, the figure files it links to (file name, relative
    to the document -> PNG bytes), which the caller writes next to it."""

    text: str
    figures: dict[str, bytes] = field(default_factory=dict)


def figure_file(stem: str, slug: str) -> str:
    """The name of a Markdown document's figure file: `report.md` -> `report-traffic-per-layer.png`."""
    return f"{stem}-{slug}.png"


def render(data: ReportData, fmt: str, figure_stem: str | None = None) -> Rendered:
    """The report as `fmt` ("md" or "html"). HTML is self-contained (figures inline as SVG). Markdown links
    its figures as PNG files named after `figure_stem` (see `figure_file`); without a stem (Markdown to a
    stream) the figures are left out with a note."""
    if fmt not in FORMATS:
        raise ConvschedError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "md" and figure_stem is None:
        return Rendered(_markdown(data, [f"_{_NO_PLACE}_"]))
    figs = _figures(data)
    if fmt == "html":
        return Rendered(_html(data, figs))
    if figs is None:
        return Rendered(_markdown(data, [f"_{_NO_MATPLOTLIB}_"]))
    files = {figure_file(figure_stem, f.slug): _png(f.figure) for f in figs}
    lines = []
    for f, name in zip(figs, files):
        lines += [f"![{f.caption}]({urlquote(name)})", "", f"*{f.caption}*", ""]
    return Rendered(_markdown(data, lines), files)


def _md_text(cell: "str | Cell") -> str:
    text = str(cell).replace("|", "\\|")
    return f"`{text}`" if isinstance(cell, Cell) and cell.mono else text


def _md_table(section: Section) -> str:
    lines = ["| " + " | ".join(map(_md_text, section.flat_header())) + " |", "|" + "---|" * len(section.header)]
    lines += ["| " + " | ".join(map(_md_text, r)) + " |" for r in section.rows]
    if section.legend:
        lines += ["", *(f"- **{col}**: {meaning}" for col, meaning in section.legend)]
    return "\n".join(lines)


_NO_MATPLOTLIB = "Figures omitted: matplotlib is not installed (pip install 'convsched[plot]')."
_NO_PLACE = ("Figures omitted: a Markdown report written to a stream has no place for its figure files; "
             "write it with -o FILE.md and they are written next to it.")


def _markdown(data: ReportData, figure_lines: list[str]) -> str:
    out = [f"# convsched report: {data.network.name}", "", _arch_line(data.arch), "", "## Summary", "",
           _md_table(_summary(data)), "", "## Figures", "", *figure_lines,
           "", "## Layers", "", _md_table(_layers(data)), "", "## Earlier models", "", _md_table(_models(data)),
           "", "### Per layer", "", _md_table(_model_layers(data)), "", "## Notes", "",
           *(f"- {n}" for n in NOTES), ""]
    return "\n".join(out)


_NUMBER = re.compile(r"^[-+]?[\d,.]+(%|x| B)?$|^n/a$|^inf$")


def _html_cell(tag: str, cell: "str | Cell") -> str:
    """A cell: numbers right-aligned, text left-aligned (class l), a Cell's tooltip and monospace."""
    e = html.escape
    text = str(cell)
    cls = "" if _NUMBER.match(text) else " class='l'"
    if not isinstance(cell, Cell):
        return f"<{tag}{cls}>{e(text)}</{tag}>"
    inner = f"<code>{e(text)}</code>" if cell.mono else e(text)
    title = f" title='{e(cell.title, quote=True)}'" if cell.title else ""
    return f"<{tag}{cls}{title}>{inner}</{tag}>"


def _html_table(section: Section, cls: str = "") -> str:
    """The table in a box of its own that scrolls (both ways) with the header kept in view, and the legend
    of its columns above it. A column's header is aligned as its first row's cell is."""
    e = html.escape
    legend = ""
    if section.legend:
        legend = "<dl class='legend'>" + "".join(f"<dt>{e(c)}</dt><dd>{e(m)}</dd>" for c, m in section.legend) + "</dl>"
    first = section.rows[0] if section.rows else [""] * len(section.header)
    head = "".join(f"<th{'' if _NUMBER.match(str(c)) else ' class=l'}>{e(h)}</th>"
                   for h, c in zip(section.header, first))
    if section.groups:
        top = "".join(f"<th colspan={n} class='group'>{e(g)}</th>" for g, n in section.groups)
        head = f"<tr class='groups'>{top}</tr><tr class='under'>{head}</tr>"
    else:
        head = f"<tr>{head}</tr>"
    body = "".join("<tr>" + "".join(_html_cell("td", c) for c in r) + "</tr>" for r in section.rows)
    return (f"{legend}<div class='scroll{' ' + cls if cls else ''}'><table><thead>{head}</thead>"
            f"<tbody>{body}</tbody></table></div>")


_CSS = """
body{font-family:system-ui,sans-serif;line-height:1.4;margin:0 auto;padding:1em 1.5em;max-width:1400px;
box-sizing:border-box}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:separate;border-spacing:0;font-size:12.5px}
td,th{border-right:1px solid #ddd;border-bottom:1px solid #ddd;padding:3px 6px;text-align:right;
white-space:nowrap}
td.l,th.l{text-align:left}
th{background:#f2f2f2;vertical-align:bottom}
.scroll{width:fit-content;max-width:100%;max-height:80vh;overflow:auto;border:1px solid #ccc;
margin:0.5em 0 1.5em}
.scroll.short{max-height:none}
.scroll thead th{position:sticky;top:0;z-index:2;height:18px;line-height:18px}
.scroll thead tr.under th{top:25px}
th.group{text-align:center;border-left:1px solid #ccc}
.scroll td:first-child,.scroll th:first-child{position:sticky;left:0;z-index:1;background:#fff}
.scroll th:first-child{background:#f2f2f2;z-index:3}
.scroll tbody tr:hover td{background:#f6f9ff}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:11.5px;white-space:nowrap}
td[title]{text-decoration:underline dotted #999;cursor:help}
.figures{display:flex;flex-wrap:wrap;align-items:flex-end;gap:0 2.5em}
figure{margin:1em 0;max-width:100%}figure svg{max-width:100%;height:auto}
figcaption{font-style:italic;color:#444}
dl.legend{font-size:13px;color:#333;display:grid;grid-template-columns:max-content auto;gap:2px 12px;
margin:0.5em 0}
dl.legend dt{font-weight:600}dl.legend dd{margin:0}
"""


def _html(data: ReportData, figs: list[_Figure] | None) -> str:
    e = html.escape
    name = e(data.network.name)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>convsched report: {name}</title><style>{_CSS}</style></head><body>",
             f"<h1>convsched report: {name}</h1><p>{e(_arch_line(data.arch))}</p>",
             "<h2>Summary</h2>", _html_table(_summary(data), "short"), "<h2>Figures</h2>"]
    if figs is None:
        parts.append(f"<p><em>{e(_NO_MATPLOTLIB)}</em></p>")
    else:
        parts += ["<div class='figures'>", *(f"<figure>{_svg(f.figure)}<figcaption>{e(f.caption)}</figcaption></figure>"
                                           for f in figs), "</div>"]
    parts += ["<h2>Layers</h2>", _html_table(_layers(data, tooltips=True)),
              "<h2>Earlier models</h2>", _html_table(_models(data), "short"),
              "<h3>Per layer</h3>", _html_table(_model_layers(data)),
              "<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in NOTES) + "</ul>"]
    payload = json.dumps(data.to_json()).replace("</", "<\\/")
    parts.append(f"<script type='application/json' id='convsched-data'>{payload}</script></body></html>")
    return "".join(parts)
