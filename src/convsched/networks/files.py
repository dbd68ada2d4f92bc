"""Layer files (YAML or JSON) and inline layer specs.

A layer file is either a list of layer mappings or a mapping
``{name: ..., layers: [...]}``. Each layer mapping holds `Layer` fields
(at least K, C, OY, OX) and optionally ``name`` (default ``layer<i>``, counted
from 1), ``kind`` (``conv`` or ``fc``; default ``fc`` for a 1x1 layer on a 1x1
map, else ``conv``), ``input_bits`` and ``weight_bits``. A layer without
``N`` gets the batch given to `load_target`.

An inline spec is ``FIELD=VALUE`` pairs separated by commas, e.g.
``K=64,C=64,OY=56,OX=56,FY=3,FX=3,PY=1,PX=1``, with the same optional keys.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from ..core.errors import ConvschedError
from ..core.fileio import MAX_INT_DIGITS, load_user_data, shorten
from ..core.layer import LAYER_FIELDS, Layer
from .network import KINDS, NetLayer, Network

_EXTRA_KEYS = ("name", "kind", "input_bits", "weight_bits")
_INLINE_INT = re.compile(r"^-?[0-9]+$")


def default_kind(layer: Layer) -> str:
    return "fc" if layer.OY == layer.OX == layer.FY == layer.FX == 1 and layer.G == 1 else "conv"


def netlayer_from_dict(data: Any, batch: int, default_name: str, where: str) -> NetLayer:
    """One NetLayer from a mapping; `where` prefixes error messages."""
    if not isinstance(data, Mapping):
        raise ConvschedError(f"{where}: a layer must be a mapping of fields like K, C, OY, OX, "
                             f"got {shorten(repr(data))}")
    d = dict(data)
    name = d.pop("name", default_name)
    if not isinstance(name, (str, int)) or isinstance(name, bool) or str(name) == "":
        raise ConvschedError(f"{where}: name {shorten(repr(name))} must be a non-empty string")
    name = str(name)
    kind = d.pop("kind", None)
    bits: dict[str, int | None] = {}
    for key in ("input_bits", "weight_bits"):
        v = d.pop(key, None)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ConvschedError(f"{where} ({shorten(name)}): {key}={shorten(repr(v))} must be a whole number of at least 1")
        bits[key] = v
    if kind is not None and (not isinstance(kind, str) or kind not in KINDS):
        raise ConvschedError(f"{where} ({shorten(name)}): kind {shorten(repr(kind))} is not one of {', '.join(KINDS)}")
    d.setdefault("N", batch)
    if kind is not None:
        d["kind"] = kind       # Layer.from_dict fills in an fc layer's 1x1 map
    try:
        layer = Layer.from_dict(d)
    except ConvschedError as e:
        raise ConvschedError(f"{where} ({shorten(name)}): {e}") from None
    except TypeError as e:  # e.g. non-string keys
        raise ConvschedError(f"{where} ({shorten(name)}): {e}") from None
    if kind is None:
        kind = default_kind(layer)
    return NetLayer(name, kind, layer, bits["input_bits"], bits["weight_bits"])


def network_from_data(data: Any, batch: int, default_name: str, where: str) -> Network:
    """A Network from parsed YAML/JSON: a list of layers or {name, layers}."""
    name = default_name
    if isinstance(data, Mapping):
        unknown = sorted(str(k) for k in data if k not in ("name", "layers"))
        if "layers" not in data:
            if {"K", "C"} <= set(data):
                data = {"layers": [data]}  # a single layer mapping
            else:
                raise ConvschedError(f"{where}: expected a list of layers or a mapping with 'layers'")
        elif unknown:
            raise ConvschedError(f"{where}: unknown key(s) {', '.join(unknown)}; expected 'name' and 'layers'")
        name = str(data.get("name") or default_name)
        items = data["layers"]
    else:
        items = data
    if not isinstance(items, list):
        raise ConvschedError(f"{where}: 'layers' must be a list of layer mappings, got {type(items).__name__}")
    if not items:
        raise ConvschedError(f"{where}: no layers; give at least one layer with K, C, OY and OX")
    layers = []
    seen: set[str] = set()
    for i, item in enumerate(items, start=1):
        nl = netlayer_from_dict(item, batch, f"layer{i}", f"{where}: layer {i}")
        if nl.name in seen:
            raise ConvschedError(f"{where}: layer {i}: duplicate layer name {nl.name!r}")
        seen.add(nl.name)
        layers.append(nl)
    return Network(name, tuple(layers))


def load_layer_file(path: Path, batch: int = 1) -> Network:
    """A Network from a .yaml/.yml/.json layer file (format: docs/layer-files.md)."""
    data = load_user_data(path, "layer file")
    if data is None:
        raise ConvschedError(f"layer file {path} is empty; give a list of layers")
    return network_from_data(data, batch, path.stem, str(path))


def _parse_value(key: str, value: str, spec: str) -> Any:
    if key in ("name", "kind"):
        if not value:
            raise ConvschedError(f"inline spec {shorten(spec)!r}: {key} is empty")
        return value
    # integers as written: ASCII digits only (int() would also take '1_000' and '٣')
    if not _INLINE_INT.match(value):
        raise ConvschedError(f"inline spec {shorten(spec)!r}: field {key}={shorten(value, 20)!r} is not a whole "
                             "number; write plain digits 0-9, e.g. K=1000")
    if len(value.lstrip("-")) > MAX_INT_DIGITS:
        raise ConvschedError(f"inline spec {shorten(spec)!r}: field {key} has {len(value):,} digits; numbers are "
                             f"limited to {MAX_INT_DIGITS} digits")
    return int(value)


def parse_inline(spec: str, batch: int = 1) -> Network:
    """A one-layer Network from ``K=64,C=64,OY=56,OX=56,...``."""
    data: dict[str, Any] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ConvschedError(f"inline spec {shorten(spec)!r}: {part!r} is not FIELD=VALUE")
        key, value = (s.strip() for s in part.split("=", 1))
        if key not in LAYER_FIELDS and key not in _EXTRA_KEYS:
            upper = key.upper()
            if upper in LAYER_FIELDS:
                key = upper
            else:
                raise ConvschedError(f"inline spec {shorten(spec)!r}: unknown field {key!r}; known fields: "
                                     f"{' '.join(LAYER_FIELDS)} name kind input_bits weight_bits")
        if key in data:
            raise ConvschedError(f"inline spec {shorten(spec)!r}: field {key} is given twice")
        data[key] = _parse_value(key, value, spec)
    nl = netlayer_from_dict(data, batch, "layer1", f"inline spec {shorten(spec)!r}")
    return Network(nl.name, (nl,))
