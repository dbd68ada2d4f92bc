"""Networks: ordered lists of named conv/FC layers, from built-in tables, layer
files, inline specs or ONNX models.

`load_target(target, batch)` accepts

* a built-in name, case-insensitive (`builtin_names()`; see `builtin.py` for
  the tables and their naming);
* a path to an ``.onnx`` model (needs the optional ``onnx`` package; see
  `networks/onnx.py`);
* a ``.yaml``/``.yml``/``.json`` layer file: a list of layer mappings, or a
  mapping ``{name: ..., layers: [...]}``; each layer has the `Layer` fields
  and optionally ``name``, ``kind`` (``conv``/``fc``), ``input_bits`` and
  ``weight_bits``;
* an inline spec such as ``K=64,C=64,OY=56,OX=56,FY=3,FX=3,PY=1,PX=1`` (any
  `Layer` field, optionally ``name=...`` and ``kind=...``).

`batch` is the batch size N of built-in networks, of file and inline layers
that do not give ``N`` themselves, and of an ONNX model's symbolic batch.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import ConvschedError
from ..core.fileio import MAX_MODEL_BYTES, check_path_length, check_user_file
from .builtin import BUILTINS, lookup, rows_to_layers
from .files import load_layer_file, parse_inline
from .network import KINDS, LayerKind, NetLayer, Network
from .onnx import load_onnx

def builtin_names() -> list[str]:
    """Names of the built-in networks."""
    return list(BUILTINS)


def builtin_network(name: str, batch: int = 1) -> Network:
    """A built-in network by (case-insensitive) name."""
    _check_batch(batch)
    canonical = lookup(name)
    if canonical is None:
        raise ConvschedError(f"unknown network {name!r}; built-in networks: {', '.join(BUILTINS)} "
                             "(or give an .onnx, .yaml/.json file or an inline spec K=..,C=..,OY=..,OX=..)")
    return Network(canonical, tuple(rows_to_layers(BUILTINS[canonical](), batch)))


def _check_batch(batch: int) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConvschedError(f"batch {batch!r} must be a whole number of at least 1")


_FILE_SUFFIXES = (".onnx", ".yaml", ".yml", ".json")


def load_target(target: str, batch: int = 1) -> Network:
    """A network from a built-in name, an .onnx / .yaml / .yml / .json file, or an inline layer spec.

    >>> net = load_target("resnet18")
    >>> net.name, len(net.layers), net.layers[0].name
    ('resnet18', 21, 'conv1')
    >>> load_target("K=16,C=8,OY=8,OX=8,FY=3,FX=3,PY=1,PX=1").layers[0].layer.macs
    73728
    """
    _check_batch(batch)
    target = str(target)
    if not target.strip():
        raise ConvschedError("empty target; give a built-in network name, a model/layer file or an inline spec")
    check_path_length(target, "target")
    path = Path(target)
    suffix = path.suffix.lower()
    if suffix in _FILE_SUFFIXES or path.is_file():
        if suffix == ".onnx":
            # the ONNX reader loads the file itself: gate it first (a FIFO or a device would hang it)
            check_user_file(path, "ONNX model", MAX_MODEL_BYTES)
            return load_onnx(path, batch)
        if suffix in (".yaml", ".yml", ".json"):
            return load_layer_file(path, batch)
        raise ConvschedError(f"{target}: unknown file type {suffix or '(none)'}; "
                             "give an .onnx model or a .yaml/.yml/.json layer file")
    if "=" in target:
        return parse_inline(target, batch)
    if lookup(target) is None:
        if path.is_dir():
            raise ConvschedError(f"{target} is a folder; expected a model or layer file "
                                 "(.onnx, .yaml, .yml or .json) or a built-in network name")
        if "/" in target or "\\" in target:
            raise ConvschedError(f"file {target} does not exist")
    return builtin_network(target, batch)


__all__ = ["NetLayer", "Network", "LayerKind", "builtin_network", "builtin_names", "load_target", "KINDS"]
