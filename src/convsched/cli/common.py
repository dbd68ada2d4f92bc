"""Options and helpers shared by the CLI commands (no domain logic here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from ..arch import Architecture
from ..errors import ConvschedError
from ..fileio import atomic_path
from .output import plain_console

# Strings are printed as written: no rich markup or emoji codes (a layer named "[/x]" is text).
console = plain_console()
err_console = plain_console(stderr=True)

ArchOpt = typer.Option(None, "--arch", help="Architecture YAML file (word sizes, buffer, double_buffer, dma_granularity).")
BitsOpt = typer.Option(None, "--bits", help="Bits of every word (input, weight, partial sum, output).", min=1)
PsumBitsOpt = typer.Option(None, "--psum-bits", help="Bits of a partial sum (overrides --bits for partial sums).", min=1)
JsonOpt = typer.Option(None, "--json", help="Write the result as JSON to PATH; '-' prints only JSON to stdout.")


def load_arch(arch: Optional[Path], bits: Optional[int], psum_bits: Optional[int], **overrides: Any) -> Architecture:
    """The architecture from --arch, or from --bits/--psum-bits; not both."""
    if arch is not None and (bits is not None or psum_bits is not None):
        raise ConvschedError("give either --arch FILE or --bits/--psum-bits, not both")
    base = Architecture.from_file(arch) if arch is not None else Architecture.from_flags(bits, psum_bits)
    if overrides:
        from dataclasses import replace
        base = replace(base, **overrides)
    return base


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a whole file or nothing: a temporary file renamed into place."""
    p = Path(path)
    if p.is_dir():
        raise ConvschedError(f"cannot write {path}: it is a folder; give a file name")
    if p.parent and not p.parent.exists():
        raise ConvschedError(f"cannot write {path}: folder {p.parent} does not exist")
    with atomic_path(p) as tmp, open(tmp, "w") as f:
        f.write(text)


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
