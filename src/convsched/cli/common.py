"""Options and helpers shared by the CLI commands (no domain logic here)."""

from __future__ import annotations

import importlib
import json
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from ..core.arch import Architecture, word_sizes
from ..core.errors import ConvschedError
from ..core.fileio import MAX_INT_DIGITS, shorten
from ..core.hierarchy import Hierarchy, load_hierarchy
from ..core.limits import MAX_SEED
from ..core.outputs import check_output, open_output, write_output
from .output import plain_console

# Strings are printed as written: no rich markup or emoji codes (a layer named "[/x]" is text).
console = plain_console()
err_console = plain_console(stderr=True)

_WHOLE = re.compile(r"^-?[0-9]+$")


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """A parser for an integer option: plain ASCII digits as written (not '1_000', '٣' or
    '+5', which int() would also take), within [minimum, maximum]."""
    def parse(text: Any) -> int:
        if isinstance(text, int) and not isinstance(text, bool):   # a default value
            return text
        value = str(text)
        if not _WHOLE.match(value):
            raise typer.BadParameter(f"{shorten(value, 30)!r} is not a whole number; write digits 0-9, e.g. 4")
        if len(value.lstrip("-")) > MAX_INT_DIGITS:
            raise typer.BadParameter(f"{shorten(value, 30)!r} has {len(value):,} digits; numbers are limited "
                                     f"to {MAX_INT_DIGITS} digits")
        n = int(value)
        if n < minimum:
            raise typer.BadParameter(f"{n} is below {minimum}; give at least {minimum}")
        if maximum is not None and n > maximum:
            raise typer.BadParameter(f"{n} is above {maximum:,}; give at most {maximum:,}")
        return n
    return parse

ArchOpt = typer.Option(None, "--arch", metavar="FILE|PRESET",
                       help="Architecture: a YAML file (word sizes, buffer, double_buffer, dma_granularity) or the "
                            "built-in 'single'.")
HierarchyOpt = typer.Option(None, "--arch", metavar="FILE|PRESET",
                            help="Architecture or memory hierarchy: a YAML file (one buffer, or levels as in "
                                 "docs/multilevel.md) or a built-in one: single, gap8, gap9.")
BitsOpt = typer.Option(None, "--bits", help="Bits of every word (input, weight, partial sum, output).",
                       parser=whole_number(1), metavar="INTEGER")
PsumBitsOpt = typer.Option(None, "--psum-bits", help="Bits of a partial sum (overrides --bits for partial sums).",
                           parser=whole_number(1), metavar="INTEGER")
JsonOpt = typer.Option(None, "--json", help="Write the result as JSON to PATH; '-' prints only JSON to stdout.")
SeedOpt = typer.Option(0, "--seed", help="Seed of the random input and weights (0 to 2**64-1).",
                       parser=whole_number(0, MAX_SEED), metavar="INTEGER")


def load_arch(arch: Optional[Path], bits: Optional[int], psum_bits: Optional[int],
              base: Optional[Architecture] = None, **overrides: Any) -> Architecture:
    """The architecture from --arch, or from --bits/--psum-bits; not both.

    `base` is the architecture a schedule file carries: used when there is no --arch,
    with --bits/--psum-bits applied on top of it.
    """
    if arch is not None and (bits is not None or psum_bits is not None):
        raise ConvschedError("give either --arch FILE or --bits/--psum-bits, not both")
    if arch is not None:
        hierarchy = load_hierarchy(arch)
        if not hierarchy.is_single_level:
            raise ConvschedError(f"--arch {shorten(str(arch))} has the levels {', '.join(hierarchy.names)}; this "
                                 "command works on one buffer level: give a single-level architecture (e.g. --arch "
                                 "single); evaluate and simulate take hierarchies")
        base = hierarchy.architecture()
    elif base is not None:
        if bits is not None:
            base = replace(base, **word_sizes(bits))
        if psum_bits is not None:
            base = replace(base, psum_bits=psum_bits)
    else:
        base = Architecture.from_flags(bits, psum_bits)
    if overrides:
        base = replace(base, **overrides)
    return base


def load_hierarchy_opt(arch: Optional[Path], bits: Optional[int], psum_bits: Optional[int],
                       base: Optional[Architecture] = None) -> Hierarchy:
    """The hierarchy from --arch (a preset or file, of one level or several), or the single-level
    architecture `load_arch` makes from --bits/--psum-bits and the schedule file's own."""
    if arch is None:
        return Hierarchy.from_architecture(load_arch(None, bits, psum_bits, base))
    if bits is not None or psum_bits is not None:
        raise ConvschedError("give either --arch FILE or --bits/--psum-bits, not both")
    return load_hierarchy(arch)


#: Options that name outputs: every other option or argument naming an existing file is an input.
OUTPUT_PARAMS = frozenset({"json_out", "csv_out", "plot", "output", "save_schedules"})


def command_inputs() -> list[str]:
    """The existing files the running command was given (its inputs), from its parameters."""
    ctx = _current_context()
    found: list[str] = []
    while ctx is not None:
        for name, value in ctx.params.items():
            if name in OUTPUT_PARAMS or value is None or isinstance(value, bool):
                continue
            for v in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(v, (str, Path)) and str(v) not in ("", "-") and Path(v).is_file():
                    found.append(str(v))
        ctx = ctx.parent
    return found


def _current_context():
    """The running click context of the command (typer builds on click; newer typer vendors it)."""
    core = next(c.__module__ for c in typer.Context.__mro__ if c.__module__.endswith(".core"))
    return importlib.import_module(core.rsplit(".", 1)[0] + ".globals").get_current_context(silent=True)


def check_outputs(*paths: Optional[str]) -> None:
    """Refuse output paths that cannot be written before the (long) work, not after it
    (the rule of `core/outputs.py`; '-' is stdout)."""
    inputs = command_inputs()
    for path in paths:
        if path is not None and path != "-":
            check_output(path, inputs)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write an output file by the one rule (`core/outputs.py`): a regular file whole or not at all,
    a device or FIFO in place, never over one of the command's inputs."""
    write_output(path, text, command_inputs())


def output_file(path: str | Path, binary: bool = True):
    """`outputs.open_output` for the running command (its inputs refused as outputs)."""
    return open_output(path, binary=binary, inputs=command_inputs())


def emit_json(target: Optional[str], obj: Any) -> bool:
    """Handle --json: True when stdout was taken by JSON (so print no table)."""
    if target is None:
        return False
    text = json.dumps(obj, indent=2)
    if target == "-":
        sys.stdout.write(text + "\n")
        return True
    write_text_atomic(target, text + "\n")
    return False
