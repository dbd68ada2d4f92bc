"""`convsched layers`: list the conv/FC layers of a network, layer file, inline spec or ONNX model."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from ..networks import NetLayer, Network, load_target
from ..report.tables import add_columns, new_table
from .application import app
from .common import JsonOpt, check_outputs, emit_json, whole_number
from .output import WideOpt, print_table, styled, wrote

TargetArg = typer.Argument(
    ..., show_default=False,
    help="A built-in network (alexnet, zfnet, vgg16, resnet18, resnet50, mobilenet_v2, googlenet), "
         "an .onnx model, a .yaml/.json layer file, or an inline spec like K=64,C=64,OY=56,OX=56,FY=3,FX=3,PY=1,PX=1.")


def _pair(y: int, x: int) -> str:
    return str(y) if y == x else f"{y}x{x}"


def _kind(nl: NetLayer) -> str:
    if nl.input_bits is not None or nl.weight_bits is not None:
        return f"{nl.kind} ({nl.input_bits or '?'}b/{nl.weight_bits or '?'}b)"
    return nl.kind


def layers_table(net: Network, narrow: bool = False, kind: bool = True) -> Table:
    """Every layer's shape and MACs. The narrow layout pairs rows and columns (output 56x56, filter 3x3),
    puts stride/dilation/padding in one column and leaves out the input size, N and G when all are 1,
    and the kind when `kind` is false."""
    if narrow:
        return _layers_narrow(net, kind)
    table = new_table(f"{net.name}: {len(net.layers)} layers")
    add_columns(table, ["name", "kind", "N", "G", "K", "C", "OY", "OX", "FY", "FX", "stride", "dilation", "padding",
                        "input", "MACs"], left=("kind",), fold=("name",))
    for nl in net.layers:
        L = nl.layer
        table.add_row(Text(nl.name), _kind(nl), *(f"{v:,}" for v in (L.N, L.G, L.K, L.C, L.OY, L.OX, L.FY, L.FX)),
                      _pair(L.SY, L.SX), _pair(L.DY, L.DX), _pair(L.PY, L.PX), f"{L.IY}x{L.IX}", f"{L.macs:,}")
    table.add_row("total", "", *[""] * 12, f"{net.macs:,}", style="bold")
    return table


def _layers_narrow(net: Network, kind: bool) -> Table:
    layers = [nl.layer for nl in net.layers]
    optional = {"kind": kind, "N": any(L.N > 1 for L in layers), "G": any(L.G > 1 for L in layers)}
    headers = ["name", *(h for h in ("kind", "N", "G") if optional[h]), "K", "C", "output", "filter", "s/d/p", "MACs"]
    left_out = [h for h in ("kind", "N", "G") if not optional[h]] + ["input"]
    table = new_table(f"{net.name}: {len(net.layers)} layers",
                      "output, filter: rows x columns; s/d/p: stride/dilation/padding (one figure when rows and "
                      f"columns agree); --wide adds {', '.join(left_out)}")
    add_columns(table, headers, left=("kind",), fold=("name",))
    for nl in net.layers:
        L = nl.layer
        cells = {"name": Text(nl.name), "kind": _kind(nl), "N": f"{L.N:,}", "G": f"{L.G:,}", "K": f"{L.K:,}",
                 "C": f"{L.C:,}", "output": f"{L.OY:,}x{L.OX:,}", "filter": f"{L.FY:,}x{L.FX:,}",
                 "s/d/p": f"{_pair(L.SY, L.SX)}/{_pair(L.DY, L.DX)}/{_pair(L.PY, L.PX)}", "MACs": f"{L.macs:,}"}
        table.add_row(*(cells[h] for h in headers))
    table.add_row("total", *[""] * (len(headers) - 2), f"{net.macs:,}", style="bold")
    return table


def layouts(net: Network) -> list:
    """Full, narrow, and narrow without the kind column (unless a layer has word sizes: those are kept)."""
    keep_kind = any(nl.input_bits is not None or nl.weight_bits is not None for nl in net.layers)
    return [lambda: layers_table(net), lambda: layers_table(net, narrow=True),
            lambda: layers_table(net, narrow=True, kind=keep_kind)]


def giga(n: int) -> str:
    """`n / 1e9` to three decimals, in integers (a float overflows for the largest layers)."""
    thousandths = (n + 500_000) // 1_000_000
    return f"{thousandths // 1000:,}.{thousandths % 1000:03d}"


def skipped_summary(net: Network) -> str | None:
    if not net.skipped:
        return None
    total = sum(net.skipped.values())
    items = ", ".join(f"{op} x{n}" for op, n in sorted(net.skipped.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"skipped {total} other node(s): {items}"


@app.command()
def layers(
    target: str = TargetArg,
    batch: int = typer.Option(1, "--batch", parser=whole_number(1), metavar="INTEGER",
                              help="Batch size N (fills a symbolic ONNX batch)."),
    json_out: Optional[str] = JsonOpt,
    wide: bool = WideOpt,
) -> None:
    """List a network's conv and FC layers: shapes, stride, dilation, padding and MACs."""
    check_outputs(json_out)
    net = load_target(target, batch)
    if emit_json(json_out, net.to_dict()):
        return
    out = print_table(layouts(net), wide)
    out.print(f"{len(net.layers)} layers, {net.macs:,} MACs ({giga(net.macs)} G)")
    summary = skipped_summary(net)
    if summary:
        out.print(summary)
    for note in net.notes:
        out.print(styled("note:", "yellow"), note)
    wrote(out, json_out)
