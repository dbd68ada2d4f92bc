"""`convsched evaluate`, `convsched simulate` and `convsched demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..core.errors import ConvschedError
from ..core.fileio import load_package_data
from ..core.hierarchy import Hierarchy
from ..core.nest import Nest, load_schedule_or_nest
from ..core.schedule import Schedule, ScheduleInput
from ..model.closed_form import Traffic
from ..model.closed_form import evaluate as model_evaluate
from ..model.nest_model import evaluate_nest
from ..model.nest_simulate import simulate_nest
from ..model.nest_traffic import NestTraffic, single_level_traffic
from ..model.simulate import simulate as walk
from ..report.nest_tables import boundary_table, level_buffer_table, nest_loops, over_capacity
from ..report.tables import schedule_summary, traffic_table
from .application import app
from .common import (BitsOpt, HierarchyOpt, JsonOpt, PsumBitsOpt, SeedOpt, check_outputs, emit_json, load_arch,
                     load_hierarchy_opt)
from .output import WideOpt, print_table, styled, text_console, two_layouts, wrote
from .progress import status
from .schedfiles import LayerOpt, SchedArg


def example_schedule() -> Schedule:
    """The built-in example: a ResNet-style 3x3 layer, 64 channels on 56x56."""
    return Schedule.from_dict(load_package_data("example_schedule.json"))


@app.command()
def evaluate(
    schedule: Path = SchedArg,
    layer: Optional[str] = LayerOpt,
    arch: Optional[Path] = HierarchyOpt,
    bits: Optional[int] = BitsOpt,
    psum_bits: Optional[int] = PsumBitsOpt,
    json_out: Optional[str] = JsonOpt,
    wide: bool = WideOpt,
) -> None:
    """Traffic of a schedule by the exact analytical model: reads and writes per operand (per boundary of a
    hierarchy), buffers, bytes/MAC, energy."""
    check_outputs(json_out)
    sched, nest, hierarchy = _schedule_and_target(schedule, layer, arch, bits, psum_bits)
    if sched is None:
        _evaluate_nest(nest, hierarchy, json_out, wide)
        return
    a = hierarchy.architecture()
    t = model_evaluate(sched, a)
    fits = a.fits(t.buffer_words)
    obj = _with_boundaries(t, hierarchy)
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
    arch: Optional[Path] = HierarchyOpt,
    bits: Optional[int] = BitsOpt,
    psum_bits: Optional[int] = PsumBitsOpt,
    seed: int = SeedOpt,
    json_out: Optional[str] = JsonOpt,
    wide: bool = WideOpt,
) -> None:
    """Walk every tile of a schedule, count every word moved (across every boundary of a hierarchy), and check
    the output against a reference convolution."""
    check_outputs(json_out)
    sched, nest, hierarchy = _schedule_and_target(schedule, layer, arch, bits, psum_bits)
    if sched is None:
        _simulate_nest(nest, hierarchy, seed, json_out, wide)
    else:
        _run_simulation(sched, hierarchy, seed, json_out, wide)


def _schedule_and_target(path: Path, layer: Optional[str], arch: Optional[Path], bits: Optional[int],
                         psum_bits: Optional[int]) -> tuple[Optional[Schedule], Nest, Hierarchy]:
    """The schedule file and the --arch target: a single-level schedule on a single-level target
    (schedule, its nest, hierarchy), or a nest checked against a hierarchy (None, nest, hierarchy)."""
    given = load_schedule_or_nest(path, layer)
    if isinstance(given, ScheduleInput):
        hierarchy = load_hierarchy_opt(arch, bits, psum_bits, base=given.arch)
        if not hierarchy.is_single_level:
            raise ConvschedError(f"{path} is a single-level schedule (order, tiles, buffers) but the architecture "
                                 f"has the levels {', '.join(hierarchy.names)}; give a schedule with loops and "
                                 "buffers per level (docs/multilevel.md)")
        return given.schedule, Nest.from_schedule(given.schedule, hierarchy.names[0]), hierarchy
    hierarchy = load_hierarchy_opt(arch, bits, psum_bits)
    nest = given.nest
    if set(nest.buffers) - set(hierarchy.names):
        raise ConvschedError(f"{path} has buffers for level(s) {', '.join(nest.buffers)}, the architecture has "
                             f"{', '.join(hierarchy.names)}; give --arch with these levels (e.g. --arch gap8)")
    nest.check(hierarchy)
    if hierarchy.is_single_level and nest.is_single_level:
        return nest.as_schedule(), nest, hierarchy
    return None, nest, hierarchy


def _with_boundaries(t: Traffic, hierarchy: Hierarchy) -> dict:
    """Today's single-level JSON keys, with `boundaries` and `energy` of the one-level hierarchy added."""
    obj = t.to_json()
    as_nest = single_level_traffic(t, hierarchy).to_json()
    obj["boundaries"] = as_nest["boundaries"]
    obj["energy"] = as_nest["energy"]
    return obj


def _nest_title(what: str, nest: Nest) -> str:
    return f"{what}: {nest.layer}\n{nest_loops(nest)}"


def _print_nest(t: NestTraffic, hierarchy: Hierarchy, title: str, reference: Optional[NestTraffic], wide: bool):
    print_table(two_layouts(lambda narrow: boundary_table(t, title, reference, narrow)), wide)
    out = print_table([lambda: level_buffer_table(t, hierarchy, reference)], wide)
    full = over_capacity(t, hierarchy)
    if full:
        out.print(styled(f"note: the buffers of {', '.join(full)} do not fit the capacity", "yellow"))
    return out


def _evaluate_nest(nest: Nest, hierarchy: Hierarchy, json_out: Optional[str], wide: bool) -> None:
    t = evaluate_nest(nest, hierarchy)
    if emit_json(json_out, t.to_json()):
        return
    out = _print_nest(t, hierarchy, _nest_title("model", nest), None, wide)
    wrote(out, json_out)


def _simulate_nest(nest: Nest, hierarchy: Hierarchy, seed: int, json_out: Optional[str], wide: bool) -> None:
    predicted = evaluate_nest(nest, hierarchy)
    with status("walking the nest tile by tile"):
        res = simulate_nest(nest, hierarchy, seed=seed)
    same = res.traffic == predicted
    obj = res.traffic.to_json()
    obj["output_matches"] = res.output_ok
    obj["model_matches"] = same
    obj["tiles"] = res.tiles
    if not emit_json(json_out, obj):
        out = _print_nest(res.traffic, hierarchy, _nest_title("simulated walk", nest), predicted, wide)
        _print_check(out, res.output_ok, res.tiles, res.max_abs_error, res.missing_reads, same)
        wrote(out, json_out)
    if not res.output_ok or not same:
        raise typer.Exit(1)


def _print_check(out, output_ok: bool, tiles: int, max_abs_error: float, missing_reads: int, same: bool) -> None:
    if output_ok:
        out.print(styled("output check: PASS", "green"), f"({tiles:,} tiles; output equals the reference convolution)")
    else:
        out.print(styled("output check: FAIL", "red"), f"(max abs error {max_abs_error}, "
                  f"{missing_reads} operand reads not in a buffer)")
    if not same:
        out.print(styled("model and walk disagree", "red"))


def _run_simulation(sched: Schedule, hierarchy: Hierarchy, seed: int, json_out: Optional[str],
                    wide: bool = False) -> None:
    a = hierarchy.architecture()
    predicted = model_evaluate(sched, a)
    with status("walking the schedule tile by tile"):
        res = walk(sched, a, seed=seed)
    obj = _with_boundaries(res.traffic, hierarchy)
    obj["output_matches"] = res.output_ok
    obj["model_matches"] = res.traffic == predicted
    obj["tiles"] = res.tiles
    if not emit_json(json_out, obj):
        title = f"simulated walk: {sched.layer}\n{schedule_summary(sched)}"
        out = print_table(two_layouts(lambda narrow: traffic_table(res.traffic, title, predicted, narrow)), wide)
        _print_check(out, res.output_ok, res.tiles, res.max_abs_error, res.missing_reads, res.traffic == predicted)
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
    _run_simulation(sched, Hierarchy.from_architecture(a), 0, None, wide)
