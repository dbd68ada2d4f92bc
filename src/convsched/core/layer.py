"""The convolution layer: shape, stride, dilation, padding, groups.

`K` and `C` are the layer's total output and input channels; with `G` groups a
schedule tiles the per-group channel counts `K // G` and `C // G` (depthwise
is `G = C = K`). A fully connected layer is a 1x1 convolution on a 1x1 map.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from .dims import DIMS
from .errors import ConvschedError
from .int64 import DOC, MAX_EXTENT, MAX_TRAFFIC_BOUND, axis_reach

#: Every field of a layer, in the order listings show them: the loop dimensions, strides, dilations,
#: paddings and input sizes.
LAYER_FIELDS: tuple[str, ...] = (*DIMS, "SY", "SX", "DY", "DX", "PY", "PX", "IY", "IX")
_POSITIVE = LAYER_FIELDS[:12]
_DEFAULTS: dict[str, int] = {"N": 1, "G": 1, "FY": 1, "FX": 1, "SY": 1, "SX": 1,
                             "DY": 1, "DX": 1, "PY": 0, "PX": 0}


def _check_int(name: str, value: Any) -> int:
    """A dimension is an integer as written: no float is taken, not even 64.0 (a float may
    already have been rounded, e.g. 1e30 or anything above 2**53, and would be silently)."""
    if isinstance(value, bool) or not isinstance(value, int):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        if isinstance(value, float):
            hint = f"write {int(value)}" if value.is_integer() and abs(value) < 2**53 else "write a whole number"
            raise ConvschedError(f"layer field {name}={shown} is not an integer but a floating-point number; "
                                 f"dimensions are integers as written: {hint}")
        raise ConvschedError(f"layer field {name}={shown} is not an integer; give a whole number")
    return int(value)   # an int subclass (e.g. an IntEnum) becomes a plain int


@dataclass(frozen=True)
class Layer:
    """One convolution layer; immutable and validated on construction.

    The input size follows from the output size, filter, stride, dilation and
    padding unless given (`IY`, `IX`):

    >>> from convsched import Layer
    >>> layer = Layer(K=8, C=4, OY=6, OX=6, FY=3, FX=3, PY=1, PX=1)
    >>> layer.IY, layer.macs
    (6, 10368)
    >>> Layer(K=8, C=4, OY=0, OX=6)
    Traceback (most recent call last):
    convsched.core.errors.ConvschedError: layer field OY=0 must be at least 1
    """

    K: int
    C: int
    OY: int
    OX: int
    FY: int = 1
    FX: int = 1
    N: int = 1
    G: int = 1
    SY: int = 1
    SX: int = 1
    DY: int = 1
    DX: int = 1
    PY: int = 0
    PX: int = 0
    IY: int = field(default=0)
    IX: int = field(default=0)

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _check_int(f.name, getattr(self, f.name)))
        for name in _POSITIVE:
            if getattr(self, name) < 1:
                raise ConvschedError(f"layer field {name}={getattr(self, name)} must be at least 1")
        for name in ("PY", "PX"):
            if getattr(self, name) < 0:
                raise ConvschedError(f"layer field {name}={getattr(self, name)} must not be negative")
        if self.K % self.G or self.C % self.G:
            raise ConvschedError(
                f"groups G={self.G} must divide both K={self.K} and C={self.C}; "
                "for depthwise use G = C = K")
        for axis in ("Y", "X"):
            self._fix_input_size(axis)
        self._check_int64_limits()

    def _fix_input_size(self, axis: str) -> None:
        o, f, s, d, p, i = (getattr(self, n + axis) for n in ("O", "F", "S", "D", "P", "I"))
        # One past the last input row the last output row touches (input coordinates).
        reach = (o - 1) * s + (f - 1) * d + 1 - p
        if i == 0:  # derive: symmetric padding
            i = reach - p
            if i < 1:
                raise ConvschedError(
                    f"O{axis}={o}, F{axis}={f}, S{axis}={s}, D{axis}={d}, P{axis}={p} leave no input "
                    f"(I{axis}={i}); reduce the padding or enlarge the output")
            object.__setattr__(self, "I" + axis, i)
            return
        if i < 1:
            raise ConvschedError(f"layer field I{axis}={i} must be at least 1")
        # Some bottom padding >= 0 must give exactly O output rows:
        # O = floor((I + P + Pbottom - D*(F-1) - 1) / S) + 1.
        if i > reach + s - 1:
            expected = (i + p + max(0, reach - i) - d * (f - 1) - 1) // s + 1
            raise ConvschedError(
                f"O{axis}={o} does not follow from I{axis}={i}, F{axis}={f}, S{axis}={s}, D{axis}={d}, "
                f"P{axis}={p} (that input gives O{axis}={expected}); fix O{axis} or I{axis}")
        if reach < 1:
            raise ConvschedError(f"padding P{axis}={p} leaves every output in the padding; reduce it")

    def _check_int64_limits(self) -> None:
        """Refuse fields beyond MAX_EXTENT or a traffic bound beyond MAX_TRAFFIC_BOUND: the 64-bit
        arithmetic of the model and the optimizer would overflow (docs/limits.md)."""
        for f in fields(self):
            v = getattr(self, f.name)
            if v > MAX_EXTENT:
                derived = " (derived from the output size, filter, stride, dilation and padding)" \
                    if f.name in ("IY", "IX") else ""
                raise ConvschedError(f"layer field {f.name}={v:,}{derived} is above the limit of {MAX_EXTENT:,} "
                                     f"({DOC}); use a smaller layer")
        bound = self.traffic_bound
        if bound > MAX_TRAFFIC_BOUND:
            raise ConvschedError(
                f"layer {self} is too large to compute exactly in 64 bits: its traffic bound (MACs x input "
                f"rows x columns a tile pair can reach) is {bound:.3g}, above the limit of {MAX_TRAFFIC_BOUND:.3g} "
                f"({DOC}); use a smaller batch or layer")

    def symmetric_input_size(self, axis: str) -> int:
        """The input size symmetric padding would give along `axis` ("Y" or "X")."""
        o, f, s, d, p = (getattr(self, n + axis) for n in ("O", "F", "S", "D", "P"))
        return (o - 1) * s + (f - 1) * d + 1 - 2 * p

    # ---- derived sizes -------------------------------------------------
    @property
    def Kg(self) -> int:
        """Output channels per group."""
        return self.K // self.G

    @property
    def Cg(self) -> int:
        """Input channels per group."""
        return self.C // self.G

    def dim_size(self, dim: str) -> int:
        """Extent of a loop dimension as the schedule sees it (K, C per group)."""
        return self.dim_sizes[dim]

    @functools.cached_property
    def dim_sizes(self) -> dict[str, int]:
        # the optimizer asks for these millions of times; computed once per layer object
        return {"N": self.N, "G": self.G, "K": self.Kg, "C": self.Cg, "OY": self.OY,
                "OX": self.OX, "FY": self.FY, "FX": self.FX}

    @property
    def dims(self) -> dict[str, int]:
        return {d: self.dim_size(d) for d in DIMS}

    @property
    def macs(self) -> int:
        return self.N * self.K * self.Cg * self.OY * self.OX * self.FY * self.FX

    @property
    def traffic_bound(self) -> int:
        """MACs x min(padded IY, 2 SY + 2 DY + 1) x min(padded IX, 2 SX + 2 DX + 1).

        Every per-operand word count the vectorised model and the optimizer's
        bounds form (every term of their sums, every first-block and overlap
        product) is at most this; docs/limits.md gives the argument.
        """
        return (self.macs * axis_reach(self.OY, self.FY, self.SY, self.DY)
                * axis_reach(self.OX, self.FX, self.SX, self.DX))

    @property
    def input_words(self) -> int:
        return self.N * self.C * self.IY * self.IX

    @property
    def weight_words(self) -> int:
        return self.K * self.Cg * self.FY * self.FX

    @property
    def output_words(self) -> int:
        return self.N * self.K * self.OY * self.OX

    @property
    def is_depthwise(self) -> bool:
        return self.G > 1 and self.Kg == 1 and self.Cg == 1

    # ---- I/O -------------------------------------------------------------
    def to_dict(self, compact: bool = True) -> dict[str, int]:
        """Fields as a dict; `compact` drops the ones at their default (IY/IX when derived)."""
        d = asdict(self)
        if not compact:
            return d
        out = {}
        for k, v in d.items():
            if k in ("IY", "IX"):
                if v != self.symmetric_input_size(k[1]):
                    out[k] = v
            elif k not in _DEFAULTS or v != _DEFAULTS[k]:
                out[k] = v
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Layer":
        if not isinstance(data, Mapping):
            raise ConvschedError(f"a layer must be a mapping of fields like K, C, OY, OX, got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(map(str, set(data) - known - {"name", "kind"}))
        if unknown:
            raise ConvschedError(
                f"unknown layer field(s) {', '.join(unknown)}; known fields: {' '.join(sorted(known))}")
        if data.get("kind") == "fc":
            # a fully connected layer is a 1x1 convolution on a 1x1 map: K and C suffice. OY/OX may
            # be given (an FC layer applied at each of OY x OX positions, e.g. the tokens of a MatMul).
            for k in ("FY", "FX"):
                if k in data and (type(data[k]) is not int or data[k] != 1):
                    raise ConvschedError(f"an fc layer has {k}=1, not {k}={data[k]!r}; drop {k} or write kind: conv")
            data = {"OY": 1, "OX": 1, **data}
        missing = [k for k in ("K", "C", "OY", "OX") if k not in data]
        if missing:
            raise ConvschedError(f"layer is missing {', '.join(missing)}; give at least K, C, OY and OX "
                                 "(for a fully connected layer: K, C and kind: fc)")
        return cls(**{k: v for k, v in data.items() if k in known})

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.to_dict().items())
