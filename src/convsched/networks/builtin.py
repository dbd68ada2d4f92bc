"""Built-in layer tables of well-known CNNs (inference, 224x224 RGB input).

Every convolution and fully connected layer is listed in execution order with
its published name; pooling, activations, normalisation and additions move no
MACs of their own here and are left out. FC layers are 1x1 convolutions on a
1x1 map (`kind="fc"`). Where the symmetric-padding derivation of `Layer`
would not give the published input size (a stride-2 layer whose last input
row is unused, e.g. ResNet `conv1`: 224x224 input, 7x7, stride 2, padding 3
-> 112x112), the input size `IY`/`IX` is given explicitly.

Naming and variants:

* ``alexnet`` -- the torchvision single-tower AlexNet (64-192-384-256-256
  channels, 11x11/4 first layer with padding 2 on a 224x224 input, no groups),
  named ``conv1``..``conv5``, ``fc6``..``fc8``; 0.714 G MACs (torchvision
  lists 0.71 GFLOPS).
* ``zfnet`` -- Zeiler & Fergus (2014), Fig. 3: 7x7/2 first layer (96
  channels, 224 -> 110), 5x5/2 second layer (55 -> 26), then 384-384-256
  3x3 layers on 13x13 and three FC layers; ``conv1``..``conv5``,
  ``fc6``..``fc8``.
* ``vgg16`` -- Simonyan & Zisserman configuration D; ``conv1_1``..``conv5_3``,
  ``fc6``..``fc8``; 15.47 G MACs.
* ``resnet18``, ``resnet50`` -- He et al. with torchvision names (``conv1``,
  ``layer1.0.conv1``, ..., ``layer2.0.downsample.0``, ``fc``); ResNet-50 is
  the torchvision "v1.5" bottleneck (stride on the 3x3 conv2), 4.09 G MACs;
  ResNet-18 1.81 G MACs.
* ``mobilenet_v2`` -- Sandler et al., width 1.0, with torchvision names
  (``features.0.0``, ``features.1.conv.0.0`` (depthwise),
  ``features.1.conv.1``, ``features.2.conv.0.0`` (expand),
  ``features.2.conv.1.0`` (depthwise), ``features.2.conv.2`` (project), ...,
  ``features.18.0``, ``classifier.1``); 0.30 G MACs.
* ``googlenet`` -- Inception v1 as in Szegedy et al. (2015), Table 1 (5x5
  convolutions in the third branch, no auxiliary classifiers), with the
  Caffe model's names (``conv1/7x7_s2``, ``conv2/3x3_reduce``,
  ``conv2/3x3``, ``inception_3a/1x1``, ``inception_3a/3x3_reduce``,
  ``inception_3a/3x3``, ``inception_3a/5x5_reduce``, ``inception_3a/5x5``,
  ``inception_3a/pool_proj``, ..., ``loss3/classifier``); 1.58 G MACs, the
  sum of Table 1's "ops" column (the text rounds it to 1.5 G; torchvision's
  1.5 G variant uses 3x3 instead of 5x5 convolutions in the third branch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..core.layer import Layer
from .network import LayerKind, NetLayer



@dataclass(frozen=True)
class Row:
    """One layer of a built-in table: its published name, its kind and its `Layer` fields (the batch N is
    added by `rows_to_layers`)."""

    name: str
    kind: LayerKind
    fields: dict[str, int]


def _conv(name: str, K: int, C: int, O: int, F: int = 1, S: int = 1, P: int | None = None,
          I: int | None = None, G: int = 1) -> Row:
    """A square conv; P defaults to 'same' padding (F // 2); I only when given explicitly."""
    d = {"K": K, "C": C, "OY": O, "OX": O, "FY": F, "FX": F, "SY": S, "SX": S,
         "PY": F // 2 if P is None else P, "PX": F // 2 if P is None else P, "G": G}
    if I is not None:
        d["IY"] = d["IX"] = I
    return Row(name, "conv", d)


def _fc(name: str, K: int, C: int) -> Row:
    return Row(name, "fc", {"K": K, "C": C, "OY": 1, "OX": 1})


def alexnet() -> list[Row]:
    return [
        _conv("conv1", 64, 3, 55, 11, S=4, P=2, I=224),
        _conv("conv2", 192, 64, 27, 5),
        _conv("conv3", 384, 192, 13, 3),
        _conv("conv4", 256, 384, 13, 3),
        _conv("conv5", 256, 256, 13, 3),
        _fc("fc6", 4096, 256 * 6 * 6),
        _fc("fc7", 4096, 4096),
        _fc("fc8", 1000, 4096),
    ]


def zfnet() -> list[Row]:
    return [
        _conv("conv1", 96, 3, 110, 7, S=2, P=1, I=224),
        _conv("conv2", 256, 96, 26, 5, S=2, P=0),
        _conv("conv3", 384, 256, 13, 3),
        _conv("conv4", 384, 384, 13, 3),
        _conv("conv5", 256, 384, 13, 3),
        _fc("fc6", 4096, 256 * 6 * 6),
        _fc("fc7", 4096, 4096),
        _fc("fc8", 1000, 4096),
    ]


def vgg16() -> list[Row]:
    rows: list[Row] = []
    c, size = 3, 224
    for stage, (k, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for i in range(1, n + 1):
            rows.append(_conv(f"conv{stage}_{i}", k, c, size, 3))
            c = k
        size //= 2
    rows += [_fc("fc6", 4096, 512 * 7 * 7), _fc("fc7", 4096, 4096), _fc("fc8", 1000, 4096)]
    return rows


def _resnet(blocks: list[int], bottleneck: bool) -> list[Row]:
    rows: list[Row] = [_conv("conv1", 64, 3, 112, 7, S=2, P=3, I=224)]
    c, size = 64, 56  # after the 3x3/2 max pool
    expansion = 4 if bottleneck else 1
    for stage, n in enumerate(blocks, start=1):
        width = 64 * 2 ** (stage - 1)
        for b in range(n):
            stride = 2 if stage > 1 and b == 0 else 1
            out = size // stride
            p = f"layer{stage}.{b}"
            inp = size if stride > 1 else None
            if bottleneck:
                rows.append(_conv(f"{p}.conv1", width, c, size, 1))
                rows.append(_conv(f"{p}.conv2", width, width, out, 3, S=stride, I=inp))
                rows.append(_conv(f"{p}.conv3", width * 4, width, out, 1))
            else:
                rows.append(_conv(f"{p}.conv1", width, c, out, 3, S=stride, I=inp))
                rows.append(_conv(f"{p}.conv2", width, width, out, 3))
            if b == 0 and (stride > 1 or c != width * expansion):
                rows.append(_conv(f"{p}.downsample.0", width * expansion, c, out, 1, S=stride, I=inp))
            c, size = width * expansion, out
    rows.append(_fc("fc", 1000, c))
    return rows


def resnet18() -> list[Row]:
    return _resnet([2, 2, 2, 2], bottleneck=False)


def resnet50() -> list[Row]:
    return _resnet([3, 4, 6, 3], bottleneck=True)


def mobilenet_v2() -> list[Row]:
    rows: list[Row] = [_conv("features.0.0", 32, 3, 112, 3, S=2, I=224)]
    c, size, idx = 32, 112, 1
    # (expansion t, output channels c, repeats n, first stride s) from Table 2 of the paper
    for t, k, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            out = size // stride
            inp = size if stride > 1 else None
            p = f"features.{idx}.conv"
            hidden = c * t
            if t == 1:
                rows.append(_conv(f"{p}.0.0", hidden, hidden, out, 3, S=stride, I=inp, G=hidden))
                rows.append(_conv(f"{p}.1", k, hidden, out, 1))
            else:
                rows.append(_conv(f"{p}.0.0", hidden, c, size, 1))
                rows.append(_conv(f"{p}.1.0", hidden, hidden, out, 3, S=stride, I=inp, G=hidden))
                rows.append(_conv(f"{p}.2", k, hidden, out, 1))
            c, size, idx = k, out, idx + 1
    rows.append(_conv(f"features.{idx}.0", 1280, c, size, 1))
    rows.append(_fc("classifier.1", 1000, 1280))
    return rows


# Inception modules of GoogLeNet (Szegedy et al. 2015, Table 1):
# name, map size, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
_INCEPTION = [
    ("3a", 28, 64, 96, 128, 16, 32, 32),
    ("3b", 28, 128, 128, 192, 32, 96, 64),
    ("4a", 14, 192, 96, 208, 16, 48, 64),
    ("4b", 14, 160, 112, 224, 24, 64, 64),
    ("4c", 14, 128, 128, 256, 24, 64, 64),
    ("4d", 14, 112, 144, 288, 32, 64, 64),
    ("4e", 14, 256, 160, 320, 32, 128, 128),
    ("5a", 7, 256, 160, 320, 32, 128, 128),
    ("5b", 7, 384, 192, 384, 48, 128, 128),
]


def googlenet() -> list[Row]:
    rows: list[Row] = [
        _conv("conv1/7x7_s2", 64, 3, 112, 7, S=2, P=3, I=224),
        _conv("conv2/3x3_reduce", 64, 64, 56, 1),
        _conv("conv2/3x3", 192, 64, 56, 3),
    ]
    c = 192
    for name, size, n1, r3, n3, r5, n5, pp in _INCEPTION:
        p = f"inception_{name}"
        rows += [
            _conv(f"{p}/1x1", n1, c, size, 1),
            _conv(f"{p}/3x3_reduce", r3, c, size, 1),
            _conv(f"{p}/3x3", n3, r3, size, 3),
            _conv(f"{p}/5x5_reduce", r5, c, size, 1),
            _conv(f"{p}/5x5", n5, r5, size, 5),
            _conv(f"{p}/pool_proj", pp, c, size, 1),
        ]
        c = n1 + n3 + n5 + pp
    rows.append(_fc("loss3/classifier", 1000, c))
    return rows


BUILTINS: dict[str, Callable[[], list[Row]]] = {
    "alexnet": alexnet,
    "zfnet": zfnet,
    "vgg16": vgg16,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "googlenet": googlenet,
}

#: Other spellings accepted by `load_target` (compared after lower-casing and
#: dropping '-' and '_').
ALIASES = {"vgg": "vgg16", "inceptionv1": "googlenet", "mobilenetv2": "mobilenet_v2",
           "resnet18": "resnet18", "resnet50": "resnet50"}


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def lookup(name: str) -> str | None:
    """The canonical built-in name for `name`, or None."""
    k = _key(name)
    for canonical in BUILTINS:
        if _key(canonical) == k:
            return canonical
    return ALIASES.get(k)


def rows_to_layers(rows: list[Row], batch: int) -> list[NetLayer]:
    """The network layers of a built-in table at batch size `batch`."""
    return [NetLayer(r.name, r.kind, Layer(**r.fields, N=batch)) for r in rows]
