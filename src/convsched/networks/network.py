"""A network: an ordered, named tuple of named conv/FC layers (`NetLayer`), whatever it was read from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..core.errors import ConvschedError
from ..core.layer import LAYER_FIELDS, Layer

#: What a network layer is: a convolution, or a fully connected layer (a 1x1 convolution on a 1x1 map).
LayerKind = Literal["conv", "fc"]
KINDS: tuple[LayerKind, ...] = ("conv", "fc")


@dataclass(frozen=True)
class NetLayer:
    """One named layer of a network.

    >>> from convsched import load_target
    >>> conv2 = load_target("alexnet").layers[1]
    >>> conv2.name, conv2.kind, str(conv2.layer)
    ('conv2', 'conv', 'K=192,C=64,OY=27,OX=27,FY=5,FX=5,PY=2,PX=2')
    """

    name: str          # layer name as in the published architecture / ONNX node name
    kind: LayerKind
    layer: Layer
    input_bits: int | None = None   # word sizes when the source says (quantized ONNX), else None
    weight_bits: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConvschedError(f"layer {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")

    @property
    def macs(self) -> int:
        return self.layer.macs

    def to_dict(self) -> dict:
        """Name, kind, every Layer field (N G K C OY OX FY FX SY SX DY DX PY PX IY IX), bits and MACs."""
        L = self.layer
        d: dict = {"name": self.name, "kind": self.kind}
        for f in LAYER_FIELDS:
            d[f] = getattr(L, f)
        d["input_bits"] = self.input_bits
        d["weight_bits"] = self.weight_bits
        d["macs"] = L.macs
        return d


@dataclass(frozen=True)
class Network:
    """A named, ordered tuple of layers (plus what an importer skipped).

    >>> from convsched import load_target
    >>> net = load_target("alexnet")
    >>> net.name, len(net), net.layers[0].name, net.macs
    ('alexnet', 8, 'conv1', 714188480)
    """

    name: str
    layers: tuple[NetLayer, ...]
    skipped: dict[str, int] = field(default_factory=dict)  # op type -> count (ONNX)
    notes: tuple[str, ...] = ()

    @property
    def macs(self) -> int:
        return sum(nl.layer.macs for nl in self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def to_dict(self) -> dict:
        return {"network": self.name, "layers": [nl.to_dict() for nl in self.layers],
                "macs": self.macs, "skipped": dict(self.skipped), "notes": list(self.notes)}
