"""`convsched layers`: list the conv/FC layers of a network, layer file, inline spec or ONNX model."""

from __future__ import annotations

from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ..networks import Network, load_target
from . import app
from .common import JsonOpt, console, emit_json, whole_number

TargetArg = typer.Argument(
    ..., show_default=False,
    help="A built-in network (alexnet, zfnet, vgg16, resnet18, resnet50, mobilenet_v2, googlenet), "
         "an .onnx model, a .yaml/.json layer file, or an inline spec like K=64,C=64,OY=56,OX=56,FY=3,FX=3,PY=1,PX=1.")


def _pair(y: int, x: int) -> str:
    return str(y) if y == x else f"{y}x{x}"


def layers_table(net: Network) -> Table:
    table = Table(title=f"{net.name}: {len(net.layers)} layers", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for col in ("name", "kind", "N", "G", "K", "C", "OY", "OX", "FY", "FX", "stride", "dilation", "padding",
                "input", "MACs"):
        table.add_column(col, justify="left" if col in ("name", "kind") else "right", no_wrap=True)
    for nl in net.layers:
        L = nl.layer
        kind = nl.kind
        if nl.input_bits is not None or nl.weight_bits is not None:
            kind += f" ({nl.input_bits or '?'}b/{nl.weight_bits or '?'}b)"
        table.add_row(nl.name, kind, *(f"{v:,}" for v in (L.N, L.G, L.K, L.C, L.OY, L.OX, L.FY, L.FX)),
                      _pair(L.SY, L.SX), _pair(L.DY, L.DX), _pair(L.PY, L.PX), f"{L.IY}x{L.IX}", f"{L.macs:,}")
    table.add_row("total", "", *[""] * 12, f"{net.macs:,}", style="bold")
    return table


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
) -> None:
    """List a network's conv and FC layers: shapes, stride, dilation, padding and MACs."""
    net = load_target(target, batch)
    if emit_json(json_out, net.to_dict()):
        return
    # Piped output is not cut to 80 columns: the table keeps its natural width.
    out = console if console.is_terminal else Console(width=240)
    out.print(layers_table(net))
    out.print(f"{len(net.layers)} layers, {net.macs:,} MACs ({net.macs / 1e9:.3f} G)")
    summary = skipped_summary(net)
    if summary:
        out.print(summary, highlight=False)
    for note in net.notes:
        out.print(f"[yellow]note:[/] {note}", highlight=False)
