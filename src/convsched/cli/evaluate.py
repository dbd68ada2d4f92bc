"""`convsched evaluate`, `convsched simulate` and `convsched demo`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Optional

import typer

from ..core.schedule import Schedule, load_schedule
from ..model.closed_form import evaluate as model_evaluate
from ..model.simulate import simulate as walk
from ..report.tables import schedule_summary, traffic_table
from . import app
from .common import ArchOpt, BitsOpt, JsonOpt, PsumBitsOpt, SeedOpt, check_outputs, emit_json, load_arch
from .output import WideOpt, print_table, styled, text_console, two_layouts, wrote
from .progress import status
from .schedfiles import LayerOpt, SchedArg


def example_schedule() -> Schedule:
    """The built-in example: a ResNet-style 3x3 layer, 64 channels on 56x56."""
    text = resources.files("convsched").joinpath("data/example_schedule.json").read_text()
    import json
    return Schedule.from_dict(json.loads(text))


@app.command()
def evaluate(
    schedule: Path = SchedArg,
    layer: Optional[str] = LayerOpt,
    arch: Optional[Path] = ArchOpt,
    bits: Optional[int] = BitsOpt,
    psum_bits: Optional[int] = PsumBitsOpt,
    json_out: Optional[str] = JsonOpt,
    wide: bool = WideOpt,
) -> None:
    """Traffic of a schedule by the exact analytical model: reads and writes per operand, buffers, bytes/MAC."""
    check_outputs(json_out)
    given = load_schedule(schedule, layer)
    sched = given.schedule
    a = load_arch(arch, bits, psum_bits, base=given.arch)
    t = model_evaluate(sched, a)
    fits = a.fits(t.buffer_words)
    obj = t.to_json()
    if emit_json(json_out, obj):
        return
    title = f"model: {sched.layer}\n{schedule_summary(sched)}"
    out = print_table(two_layouts(lambda narrow: traffic_table(t, title, narrow=narrow)), wide)
    if not fits:
        out.print(styled("note: the buffers do not fit the architecture's capacity", "yellow"))
    wrote(out, json_out)


@app.command()
def simulate(
    schedule: Path = SchedArg,
    layer: Optional[str] = LayerOpt,
    arch: Optional[Path] = ArchOpt,
    bits: Optional[int] = BitsOpt,
    psum_bits: Optional[int] = PsumBitsOpt,
    seed: int = SeedOpt,
    json_out: Optional[str] = JsonOpt,
    wide: bool = WideOpt,
) -> None:
    """Walk every tile of a schedule, count every word moved, and check the output against a reference convolution."""
    check_outputs(json_out)
    given = load_schedule(schedule, layer)
    _run_simulation(given.schedule, load_arch(arch, bits, psum_bits, base=given.arch), seed, json_out, wide)


def _run_simulation(sched: Schedule, a, seed: int, json_out: Optional[str], wide: bool = False) -> None:
    predicted = model_evaluate(sched, a)
    with status("walking the schedule tile by tile"):
        res = walk(sched, a, seed=seed)
    obj = res.traffic.to_json()
    obj["output_matches"] = res.output_ok
    obj["model_matches"] = res.traffic == predicted
    obj["tiles"] = res.tiles
    if not emit_json(json_out, obj):
        title = f"simulated walk: {sched.layer}\n{schedule_summary(sched)}"
        out = print_table(two_layouts(lambda narrow: traffic_table(res.traffic, title, predicted, narrow)), wide)
        if res.output_ok:
            out.print(styled("output check: PASS", "green"),
                      f"({res.tiles:,} tiles; output equals the reference convolution)")
        else:
            out.print(styled("output check: FAIL", "red"), f"(max abs error {res.max_abs_error}, "
                      f"{res.missing_reads} operand reads not in a buffer)")
        if res.traffic != predicted:
            out.print(styled("model and walk disagree", "red"))
        wrote(out, json_out)
    if not res.output_ok or res.traffic != predicted:
        raise typer.Exit(1)


@app.command()
def demo(
    bits: Optional[int] = BitsOpt,
    psum_bits: Optional[int] = PsumBitsOpt,
    wide: bool = WideOpt,
) -> None:
    """Evaluate and simulate the built-in example schedule (a 3x3, 64-channel, 56x56 layer)."""
    sched = example_schedule()
    a = load_arch(None, bits, psum_bits)
    text_console().print_json(sched.to_json())
    t = model_evaluate(sched, a)
    title = f"model: {sched.layer}\n{schedule_summary(sched)}"
    print_table(two_layouts(lambda narrow: traffic_table(t, title, narrow=narrow)), wide)
    _run_simulation(sched, a, 0, None, wide)
