"""Schedule files between the commands: `optimize --save-schedules DIR` writes them, and
`evaluate`/`simulate`/`codegen`/`run-c` read them (or one layer of `optimize --json` output)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer

from ..core.errors import ConvschedError
from ..core.schedule import schedule_file_dict
from ..search.network import NetworkResult
from .common import write_text_atomic

SchedArg = typer.Argument(
    ..., show_default=False,
    help="Schedule file (JSON: layer, order, tiles, buffers), one that optimize --save-schedules wrote, "
         "or optimize --json output with --layer NAME.")
LayerOpt = typer.Option(None, "--layer", help="The layer to take from optimize --json output (its name).")
SaveSchedulesOpt = typer.Option(
    None, "--save-schedules", metavar="DIR",
    help="Also write one schedule file per distinct layer to folder DIR (created if missing), named after "
         "the layer; evaluate, simulate, codegen and run-c read them as they are.")

# Windows' reserved device names: a file called CON.json cannot be created there.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_MAX_STEM = 100


def safe_file_stem(name: str) -> str:
    """A file name stem for a layer name: letters, digits, '.', '_' and '-' kept, runs of
    anything else one '_'; no leading dot or dash (hidden files, option-like names); at most
    100 characters; never empty or a reserved device name."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip("._-")[:_MAX_STEM].rstrip(".")
    if not stem:
        stem = "layer"
    if stem.split(".")[0].lower() in _RESERVED:
        stem = "_" + stem
    return stem


def check_schedule_folder(folder: str) -> None:
    """Refuse a --save-schedules folder that cannot be one, before the search."""
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise ConvschedError(f"--save-schedules {folder}: it exists and is not a folder; give a folder name")


def save_schedules(res: NetworkResult, folder: str) -> tuple[list[Path], int]:
    """Write one schedule file per distinct (layer, architecture) of `res` into `folder`;
    returns the files written and the number of network layers they serve."""
    check_schedule_folder(folder)
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConvschedError(f"cannot create folder {folder}: {e.strerror or e}") from None
    groups: dict[tuple, list] = {}
    for e in res.entries:   # network order: each group is named after its first layer
        groups.setdefault((e.net_layer.layer, e.arch), []).append(e)
    used: set[str] = set()
    written = []
    for entries in groups.values():
        first = entries[0]
        stem = safe_file_stem(first.name)
        unique, k = stem, 2
        while unique.lower() in used:   # case-insensitive: distinct on every file system
            unique, k = f"{stem}-{k}", k + 1
        used.add(unique.lower())
        data = schedule_file_dict(first.result.schedule, first.name, first.arch, res.network.name,
                                  [e.name for e in entries])
        path = out / f"{unique}.json"
        write_text_atomic(path, json.dumps(data, indent=2) + "\n")
        written.append(path)
    return written, len(res.entries)
