"""HWC parameters: a frozen dataclass loaded from YAML (default: `data/hwc_default.yaml`).

The HWC ("Hardware Convolution block") is a scratchpad accelerator that runs
any schedule of convsched's semantics: three local buffers (input, weights,
partial sums/outputs) filled and drained by one DMA engine on one memory
port, and a MAC datapath. The HWCE-style baseline (`hwce.py`) shares the
port width, DMA set-up cost, clock and word sizes, so both engines are
compared on the same memory interface.

Validation errors are one-line `ConvschedError`s (the CLI exits with status 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from ..core.arch import OPERANDS, Architecture, word_sizes
from ..core.errors import ConvschedError
from ..core.fileio import load_package_data, load_user_mapping
from ..core.int64 import check_bits, check_bytes
from ..core.units import parse_size

_TOP_KEYS = {"macs_per_cycle", "buffers", "bits", "port_bytes_per_cycle", "dma_setup_cycles",
             "double_buffer", "clock_mhz", "hwce"}
_HWCE_KEYS = {"planes_per_pass", "modes", "fc", "stride"}
FC_MODES = ("pad3x3", "exclude")
#: Limits of the machine's parameters (docs/limits.md): beyond them the cycle counts, computed in
#: 64-bit integers per tile, could overflow; far beyond any real accelerator.
MAX_MACS_PER_CYCLE = 1 << 32
MIN_PORT_BYTES, MAX_PORT_BYTES = 0.125, float(1 << 30)
MAX_DMA_SETUP_CYCLES = 1 << 20
MAX_CLOCK_MHZ = 1e6
STRIDE_MODES = ("subsample", "native")


def _parse_mode(text: Any) -> tuple[int, int]:
    s = str(text).lower().replace(" ", "")
    parts = s.split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConvschedError(f"HWCE filter mode {text!r} is not ROWSxCOLS like 3x3, 5x5 or 4x7")
    return int(parts[0]), int(parts[1])


@dataclass(frozen=True)
class HWCEConfig:
    """The fixed-schedule baseline engine's own parameters."""

    planes_per_pass: int = 4
    modes: tuple[tuple[int, int], ...] = ((3, 3), (5, 5), (4, 7))
    fc: str = "pad3x3"
    stride: str = "subsample"

    def __post_init__(self) -> None:
        p = self.planes_per_pass
        if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 4:
            raise ConvschedError(f"hwce.planes_per_pass={p!r} must be 1, 2, 3 or 4")
        if not self.modes:
            raise ConvschedError("hwce.modes is empty; give at least one filter mode like 3x3")
        if self.fc not in FC_MODES:
            raise ConvschedError(f"hwce.fc={self.fc!r} must be one of {', '.join(FC_MODES)}")
        if self.stride not in STRIDE_MODES:
            raise ConvschedError(f"hwce.stride={self.stride!r} must be one of {', '.join(STRIDE_MODES)}")


@dataclass(frozen=True)
class HWCConfig:
    """HWC parameters. Buffers in physical bytes (input, weight, output)."""

    macs_per_cycle: int = 64
    buffers: tuple[int, int, int] = (24 * 1024, 16 * 1024, 24 * 1024)
    input_bits: int = 16
    weight_bits: int = 16
    psum_bits: int = 16
    output_bits: int = 16
    port_bytes_per_cycle: float = 8
    dma_setup_cycles: int = 10
    double_buffer: bool = True
    clock_mhz: float = 100.0
    hwce: HWCEConfig = field(default_factory=HWCEConfig)
    #: proportions `with_total_buffer` splits by (None: `buffers` themselves)
    split: tuple[int, int, int] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        m = self.macs_per_cycle
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ConvschedError(f"macs_per_cycle={m!r} must be a positive whole number")
        if m > MAX_MACS_PER_CYCLE:
            raise ConvschedError(f"macs_per_cycle={m:,} is above the limit of {MAX_MACS_PER_CYCLE:,} "
                                 "(docs/limits.md)")
        if len(self.buffers) != 3 or any(isinstance(b, bool) or not isinstance(b, int) or b < 1
                                         for b in self.buffers):
            raise ConvschedError(f"buffers {self.buffers!r} must be three positive sizes (input, weight, output)")
        for op, b in zip(OPERANDS, self.buffers):
            check_bytes(f"the HWC's {op} buffer", b)
        for name in ("input_bits", "weight_bits", "psum_bits", "output_bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConvschedError(f"bits.{name[:-5]}={v!r} must be a positive whole number of bits")
            check_bits(f"bits.{name[:-5]}", v)
        p = self.port_bytes_per_cycle
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
            raise ConvschedError(f"port_bytes_per_cycle={p!r} must be positive (the memory port moves "
                                 "that many bytes per cycle)")
        if not MIN_PORT_BYTES <= p <= MAX_PORT_BYTES:
            raise ConvschedError(f"port_bytes_per_cycle={p!r} is outside the supported range {MIN_PORT_BYTES} "
                                 f"to {MAX_PORT_BYTES:,.0f} bytes per cycle (docs/limits.md)")
        s = self.dma_setup_cycles
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConvschedError(f"dma_setup_cycles={s!r} must be a whole number >= 0")
        if s > MAX_DMA_SETUP_CYCLES:
            raise ConvschedError(f"dma_setup_cycles={s:,} is above the limit of {MAX_DMA_SETUP_CYCLES:,} "
                                 "(docs/limits.md)")
        if not isinstance(self.double_buffer, bool):
            raise ConvschedError("double_buffer must be true or false")
        c = self.clock_mhz
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
            raise ConvschedError(f"clock_mhz={c!r} must be positive")
        if not c <= MAX_CLOCK_MHZ:
            raise ConvschedError(f"clock_mhz={c!r} is above the limit of {MAX_CLOCK_MHZ:,.0f} MHz "
                                 "(docs/limits.md)")

    # ---- derived -----------------------------------------------------------
    @property
    def total_buffer(self) -> int:
        return sum(self.buffers)

    def architecture(self) -> Architecture:
        """The optimizer's view: per-operand capacities, word sizes, double buffering."""
        return Architecture(input_bits=self.input_bits, weight_bits=self.weight_bits,
                            psum_bits=self.psum_bits, output_bits=self.output_bits,
                            capacity_per_operand=tuple(self.buffers), double_buffer=self.double_buffer)

    def with_total_buffer(self, total: int) -> "HWCConfig":
        """The same machine with `total` bytes of local buffer, split in this config's proportions.

        Input and weight get floor(total * share); the output buffer gets the rest.
        """
        if isinstance(total, bool) or not isinstance(total, int) or total < 3:
            raise ConvschedError(f"total HWC buffer {total!r} must be at least 3 bytes")
        check_bytes("total HWC buffer", total)
        share = self.proportions
        s = sum(share)
        i = total * share[0] // s
        w = total * share[1] // s
        o = total - i - w
        if min(i, w, o) < 1:
            raise ConvschedError(f"total HWC buffer {total} B is too small to split among three buffers")
        return replace(self, buffers=(i, w, o), split=share)

    @property
    def proportions(self) -> tuple[int, int, int]:
        """The input:weight:output proportions `with_total_buffer` uses."""
        return self.split if self.split is not None else tuple(self.buffers)

    def gbs(self, nbytes: float, cycles: float) -> float:
        """Bandwidth in GB/s (1e9 B/s) of `nbytes` moved in `cycles`."""
        return 0.0 if cycles <= 0 else nbytes / cycles * self.clock_mhz * 1e6 / 1e9

    # ---- I/O ---------------------------------------------------------------
    @classmethod
    def default(cls) -> "HWCConfig":
        return cls.from_dict(load_package_data("hwc_default.yaml"), base=cls())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, base: "HWCConfig | None" = None) -> "HWCConfig":
        """Keys given override `base` (the default configuration when None)."""
        base = base if base is not None else cls.default()
        if data is None:
            return base
        if not isinstance(data, Mapping):
            raise ConvschedError("an HWC configuration must be a YAML mapping (macs_per_cycle, buffers, bits, ...)")
        unknown = sorted(map(str, set(data) - _TOP_KEYS))
        if unknown:
            raise ConvschedError(f"unknown HWC configuration key(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(sorted(_TOP_KEYS))}")
        kw: dict[str, Any] = {}
        for k in ("macs_per_cycle", "port_bytes_per_cycle", "dma_setup_cycles", "double_buffer", "clock_mhz"):
            if k in data:
                kw[k] = data[k]
        if "buffers" in data:
            buf = data["buffers"]
            if isinstance(buf, Mapping):
                bad = sorted(map(str, set(buf) - set(OPERANDS)))
                if bad:
                    raise ConvschedError(f"unknown buffer(s) {', '.join(bad)}; use input, weight, output")
                cur = dict(zip(OPERANDS, base.buffers))
                for op in OPERANDS:
                    if op in buf:
                        try:
                            cur[op] = parse_size(buf[op])
                        except ConvschedError as e:
                            raise ConvschedError(f"'buffers.{op}': {e}") from None
                kw["buffers"] = tuple(cur[op] for op in OPERANDS)
            else:
                raise ConvschedError("'buffers' must map input, weight and output to sizes like 16KiB")
        if "bits" in data:
            kw.update(word_sizes(data["bits"]))
        if "hwce" in data:
            h = data["hwce"]
            if not isinstance(h, Mapping):
                raise ConvschedError("'hwce' must be a mapping (planes_per_pass, modes, fc, stride)")
            bad = sorted(map(str, set(h) - _HWCE_KEYS))
            if bad:
                raise ConvschedError(f"unknown hwce key(s) {', '.join(bad)}; known: {', '.join(sorted(_HWCE_KEYS))}")
            hk: dict[str, Any] = {}
            if "planes_per_pass" in h:
                hk["planes_per_pass"] = h["planes_per_pass"]
            if "modes" in h:
                if not isinstance(h["modes"], list):
                    raise ConvschedError("hwce.modes must be a list like [3x3, 5x5, 4x7]")
                hk["modes"] = tuple(_parse_mode(m) for m in h["modes"])
            for k in ("fc", "stride"):
                if k in h:
                    hk[k] = h[k]
            kw["hwce"] = replace(base.hwce, **hk)
        return replace(base, **kw)

    @classmethod
    def from_file(cls, path: str | Path) -> "HWCConfig":
        return cls.from_dict(load_user_mapping(path, "HWC configuration file"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "macs_per_cycle": self.macs_per_cycle,
            "buffers": dict(zip(OPERANDS, self.buffers)),
            "bits": {"input": self.input_bits, "weight": self.weight_bits, "psum": self.psum_bits,
                     "output": self.output_bits},
            "port_bytes_per_cycle": self.port_bytes_per_cycle,
            "dma_setup_cycles": self.dma_setup_cycles,
            "double_buffer": self.double_buffer,
            "clock_mhz": self.clock_mhz,
            "hwce": {"planes_per_pass": self.hwce.planes_per_pass,
                     "modes": [f"{h}x{w}" for h, w in self.hwce.modes], "fc": self.hwce.fc,
                     "stride": self.hwce.stride},
        }
