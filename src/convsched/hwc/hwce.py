"""The HWCE-style baseline: a fixed-schedule convolution engine on the HWC's memory port.

A model of the Hardware Convolution Engine (HWCE) of Conti & Benini, "A
ultra-low-energy convolution engine for fast brain-inspired vision in
multicore clusters", DATE 2015, as later integrated in the Fulmine SoC
(Conti et al., IEEE TCAS-I 2017, arXiv 1612.05974) and in GreenWaves GAP8.
Sources of each assumption (see also docs/hwc.md):

[D15] DATE 2015 paper, [F17] Fulmine paper, [N] /work/shared/docs/paper-notes.md
(the project's summary of the baseline the source paper compares with),
[A] our assumption, chosen where the sources are silent, favourable to the
baseline (it never moves more than the engine must).

1. Data: fixed point, 16-bit input, weights and partial sums [D15, N]; here
   the word sizes are the HWC configuration's (`bits`, 16 by default), so
   both engines are compared word for word on one port [A].
2. Fixed filter modes, 3x3 and 5x5, plus a 4x7 mode for larger kernels
   [N; GAP8]. A filter `FY x FX` that no mode fits exactly is covered by a
   grid of passes of one mode, `ceil(FY/h) * ceil(FX/w)` passes; the mode
   chosen is the one with the fewest passes, ties broken by fewer wasted
   (zero) taps [A]. Hence 1x1 -> one 3x3 pass, 3x3 -> 3x3, 5x5 -> 5x5,
   7x7 -> two 4x7 passes (rows 0-3 and 4-6, the second zero-padded),
   11x11 -> six 4x7 passes (3 row bands x 2 column bands).
3. Weights of one (output, input) channel pair are held in the engine for a
   whole pass over the input plane [D15, N]. The engine's weight register is
   filled whole, so each pass loads `h*w` words per pair, zero taps
   included (they are stored zero-padded in memory) [A].
4. One pass computes 1 to 4 output planes (`planes_per_pass`, 4 by
   default: the most favourable) from one input plane [F17, N].
5. The input plane is streamed through a line buffer: each input element
   the pass's taps reach is read once per pass [D15, N]. Padding is
   produced on chip, never read [A].
6. Partial-sum planes are read from and written back to the shared memory
   for every input channel and every pass (y_out = y_in + W * x) [D15, N];
   the very first pass of an output plane starts from zero and reads
   nothing [A: favourable]. The last write of each element is the output.
7. Stride: the engine has no stride; it computes the stride-1 output plane
   over the extent the strided outputs span, `((O-1)*S + 1)` rows/columns,
   and the cores subsample afterwards (the subsampling's own traffic is not
   counted) [A]. Partial-sum planes are therefore stride-1 planes.
   `hwce.stride: native` instead assumes an engine that emits only the
   strided outputs (partial-sum planes of O x O), a sensitivity case.
8. Dilation: the filter is dilated with zero taps to `(F-1)*D + 1` [A]
   (none of the built-in networks dilates).
9. 1x1 convolutions run as 3x3 with zero-padded weights (item 2) [A]. FC
   layers are 1x1 convolutions on a 1x1 map: `fc: pad3x3` runs them so
   (9 weight words per pair, one partial-sum read and write per pair);
   `fc: exclude` marks them unsupported (left out of both engines' totals).
10. Depthwise and grouped convolutions: groups run one after the other; a
    depthwise channel has one output plane per input plane, so its passes
    compute one plane each (the 4-plane parallelism is lost) [A].
11. Cycles: the engine streams one input pixel per cycle through its line
    buffer and produces all the pass's planes in parallel [D15, A]; the
    streams (x, weights, y_in, y_out) overlap with compute on the shared
    port, each costing one DMA/stream set-up: a pass takes
    `setups + max(pixels streamed, ceil(bytes / port))` cycles [A].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..core.arch import words_to_bytes
from ..core.layer import Layer
from .config import HWCConfig


@dataclass(frozen=True)
class Pass:
    """One filter pass: mode rows x cols, the filter rows/columns it covers."""

    mode: tuple[int, int]
    fy: tuple[int, int]   # [fy0, fy1) of the (dilated) filter
    fx: tuple[int, int]


def choose_mode(fy: int, fx: int, modes) -> tuple[tuple[int, int], int]:
    """The mode with the fewest passes over an fy x fx filter, then the fewest zero taps."""
    best = None
    for h, w in modes:
        n = math.ceil(fy / h) * math.ceil(fx / w)
        waste = n * h * w - fy * fx
        key = (n, waste, h * w)
        if best is None or key < best[0]:
            best = (key, (h, w), n)
    return best[1], best[2]


def passes(layer: Layer, modes) -> list[Pass]:
    fy = (layer.FY - 1) * layer.DY + 1
    fx = (layer.FX - 1) * layer.DX + 1
    (h, w), _ = choose_mode(fy, fx, modes)
    out = []
    for y0 in range(0, fy, h):
        for x0 in range(0, fx, w):
            out.append(Pass((h, w), (y0, min(y0 + h, fy)), (x0, min(x0 + w, fx))))
    return out


def _span(o1: int, f: tuple[int, int], pad: int, size: int) -> int:
    """Input rows a stride-1 pass over o1 output rows with filter rows [f0, f1) reads (clipped)."""
    lo = max(0, f[0] - pad)
    hi = min(size, (o1 - 1) + (f[1] - 1) - pad + 1)
    return max(0, hi - lo)


@dataclass(frozen=True)
class HWCEResult:
    """Traffic and cycles of one layer on the HWCE-style engine."""

    supported: bool
    mode: str                 # e.g. "3x3", "2 x 4x7", "3x3 (1x1 zero-padded)"
    passes: int               # filter passes per (output plane group, input channel)
    planes: int               # output planes per pass
    input_words: int
    weight_words: int
    psum_read_words: int
    psum_write_words: int     # all writes, the final ones included
    final_write_words: int
    bytes: int
    cycles: int
    compute_cycles: int
    macs: int                 # useful MACs of the layer
    jobs: int                 # passes run (plane group x input channel x filter pass)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def words(self) -> int:
        return self.input_words + self.weight_words + self.psum_read_words + self.psum_write_words

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["notes"] = list(self.notes)
        d["words"] = self.words
        return d


def hwce_layer(layer: Layer, cfg: HWCConfig, kind: str = "conv") -> HWCEResult:
    """The HWCE-style engine's traffic (exact word counts) and cycles for `layer`."""
    h = cfg.hwce
    is_fc = kind == "fc"
    if is_fc and h.fc == "exclude":
        return HWCEResult(False, "unsupported (FC)", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, layer.macs, 0,
                          ("FC layers excluded (hwce.fc: exclude)",))
    notes = []
    ps = passes(layer, h.modes)
    (mh, mw) = ps[0].mode
    fy = (layer.FY - 1) * layer.DY + 1
    fx = (layer.FX - 1) * layer.DX + 1
    mode = f"{mh}x{mw}" if len(ps) == 1 else f"{len(ps)} x {mh}x{mw}"
    if (fy, fx) != (layer.FY, layer.FX):
        notes.append(f"dilated filter run as {fy}x{fx} with zero taps")
    if layer.FY == 1 and layer.FX == 1:
        mode += " (1x1 zero-padded)"
    if layer.SY > 1 or layer.SX > 1:
        notes.append(f"stride {layer.SY}x{layer.SX}: " + ("stride-1 planes computed, then subsampled"
                     if h.stride == "subsample" else "strided natively (hwce.stride: native)"))
    oy1 = (layer.OY - 1) * layer.SY + 1
    ox1 = (layer.OX - 1) * layer.SX + 1
    # the input rows/columns the taps reach are the same either way; the partial-sum
    # planes are stride-1 planes unless the engine is assumed to stride natively
    plane = oy1 * ox1 if h.stride == "subsample" else layer.OY * layer.OX
    Kg, Cg, G, N = layer.Kg, layer.Cg, layer.G, layer.N
    P = min(h.planes_per_pass, Kg)
    groups_full, rem = divmod(Kg, P)
    plane_groups = groups_full + (1 if rem else 0)
    npass = len(ps)
    # per pass: input pixels streamed (the taps' reach, clipped to the input)
    pix = [_span(oy1, p.fy, layer.PY, layer.IY) * _span(ox1, p.fx, layer.PX, layer.IX) for p in ps]
    batch = N * G
    input_words = batch * plane_groups * Cg * sum(pix)
    weight_words = G * Kg * Cg * npass * mh * mw
    writes = batch * Kg * Cg * npass * plane
    reads = batch * Kg * (Cg * npass - 1) * plane
    final = batch * Kg * plane
    nbytes = (words_to_bytes(input_words, cfg.input_bits) + words_to_bytes(weight_words, cfg.weight_bits)
              + words_to_bytes(reads, cfg.psum_bits) + words_to_bytes(writes - final, cfg.psum_bits)
              + words_to_bytes(final, cfg.output_bits))
    # cycles: job classes (planes in the group, first job of a plane or not, pass index)
    setup = cfg.dma_setup_cycles
    port = cfg.port_bytes_per_cycle
    cycles = comp = jobs = 0
    group_sizes = [(P, groups_full)] + ([(rem, 1)] if rem else [])
    # input-channel classes: (first channel, last channel, count)
    cls = ([(True, Cg == 1, 1)] + ([(False, False, Cg - 2)] if Cg > 2 else [])
           + ([(False, True, 1)] if Cg > 1 else []))
    for planes, ngroups in group_sizes:
        if ngroups == 0:
            continue
        for pi in range(npass):
            for c_first, c_last, count in cls:
                first = c_first and pi == 0          # nothing to read back
                last = c_last and pi == npass - 1    # the final write
                b_in = words_to_bytes(pix[pi], cfg.input_bits)
                b_w = words_to_bytes(planes * mh * mw, cfg.weight_bits)
                b_rd = 0 if first else words_to_bytes(planes * plane, cfg.psum_bits)
                b_wr = words_to_bytes(planes * plane, cfg.output_bits if last else cfg.psum_bits)
                streams = sum(1 for b in (b_in, b_w, b_rd, b_wr) if b > 0)
                compute = max(pix[pi], 1)
                xfer = math.ceil((b_in + b_w + b_rd + b_wr) / port - 1e-12)
                k = count * ngroups * batch
                cycles += k * (streams * setup + max(compute, xfer))
                comp += k * compute
                jobs += k
    return HWCEResult(True, mode, npass, P, input_words, weight_words, reads, writes, final, nbytes,
                      cycles, comp, layer.macs, jobs, tuple(notes))


__all__ = ["HWCEResult", "hwce_layer", "passes", "choose_mode", "Pass"]
