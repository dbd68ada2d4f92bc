"""Portable C99 for one schedule (or several, in one program): explicit DMA copies into
fixed-size local buffers, a loop nest that follows the schedule, and a self-check.

The generated program
* allocates the layer's tensors in "main memory" (NCHW input `x[N][G*Cg][IY][IX]`,
  weights `w[G*Kg][Cg][FY][FX]`, int32 partial sums `psum[N][K][OY][OX]` and the
  output `y[N][K][OY][OX]`) and fills input and weights with seeded random integers;
* runs the schedule: the tile loops in the schedule's order; at depth
  `buffers[op]` of the nest the operand moves to its block (see `runtime.py`:
  input and weights load only what the previous block lacks, ring-addressed
  per axis; outputs form runs of equal blocks, spill partial sums at the end of
  a run and read them back when a block is revisited); every tile computes its
  MACs from the local buffers only, with padding made as zeros on chip;
* computes a direct reference convolution from main memory and prints one JSON
  line per kernel: words and bytes per counter, peak block words, mismatches.

Data types: input and weight words are int8 (<= 8 bits), int16 (<= 16) or int32
(<= 32), filled with values inside their bit width, small enough that no
partial sum overflows int32 (and, where the layer allows, the partial-sum
width). Partial sums are int32 on chip and in main memory (they are *counted*
at the architecture's partial-sum width). The final output is **truncated** to
the output word size (two's complement wrap of the low bits, no saturation),
stored as int8/int16/int32; the reference does the same. Truncation keeps
every low-order error visible, where saturation could hide one.

Byte counts follow the model: a word of b bits costs b/8 bytes (bits summed,
rounded up once per counter); with DMA granularity each step (one block load,
one spill, one read-back) is rounded up to a multiple of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ..core.arch import Architecture
from ..core.dims import ceil_div
from ..core.errors import ConvschedError
from ..core.layer import DIMS
from ..core.limits import check_c_program
from ..core.schedule import Schedule
from ..model.axes import read_span
from ..model.closed_form import evaluate
from .runtime import RUNTIME

#: dimension -> index in the C range array `r[8][2]`
DIM_INDEX = {d: i for i, d in enumerate(DIMS)}
#: the five axes of each operand's block, outermost first (local buffer layout)
AXES = {
    "input": ("N", "G", "C", "Y", "X"),
    "weight": ("G", "K", "C", "FY", "FX"),
    "output": ("N", "G", "K", "OY", "OX"),
}
MAX_BITS = 32


def _ctype(bits: int) -> tuple[str, int]:
    if bits <= 8:
        return "int8_t", 1
    if bits <= 16:
        return "int16_t", 2
    return "int32_t", 4


def read_rows(o: int, f: int, s: int, d: int, p: int, i: int) -> list[int]:
    """The input rows (or columns) some output of the layer reads, ascending."""
    used = set()
    for oy in range(o):
        for fy in range(f):
            r = oy * s + fy * d - p
            if 0 <= r < i:
                used.add(r)
    return sorted(used)


def arithmetic_runs(pos: list[int]) -> list[int]:
    """For each rank, the end (exclusive) of the maximal arithmetic run it lies in (greedy split)."""
    ends = [0] * len(pos)
    a = 0
    while a < len(pos):
        e = a + 1
        if e < len(pos):
            step = pos[e] - pos[a]
            while e + 1 < len(pos) and pos[e + 1] - pos[e] == step:
                e += 1
            e += 1
        for r in range(a, e):
            ends[r] = e
        a = e
    return ends


@dataclass(frozen=True)
class KernelPlan:
    """Everything the C text of one kernel needs, computed from the layer and schedule alone."""

    schedule: Schedule
    arch: Architecture
    ring: dict[str, tuple[int, ...]]      # per operand, local extent of each of its 5 axes
    row_pos: list[int]
    col_pos: list[int]
    runs_per_block: int                   # output runs of every output block
    out_blocks: tuple[tuple[int, int], ...]  # per output axis (block extent, number of blocks)
    in_range: int                         # input values in [-in_range, in_range-1]
    w_range: int

    @property
    def buffer_words(self) -> dict[str, int]:
        return {op: math.prod(r) for op, r in self.ring.items()}


def _above(s: Schedule, op: str) -> dict[str, int]:
    """Dimensions whose loops lie above the operand's buffer -> loop position."""
    return {d: j for j, d in enumerate(s.order[: s.buffers[op]])}


def _tile_extent(s: Schedule, above: dict[str, int], d: str) -> int:
    return s.tiles[d] if d in above else s.layer.dim_size(d)


def _tile_ranges(s: Schedule, above: dict[str, int], d: str) -> list[tuple[int, int]]:
    size = s.layer.dim_size(d)
    if d not in above:
        return [(0, size)]
    t = s.tiles[d]
    return [(a, min(a + t, size)) for a in range(0, size, t)]


def _max_spatial(s: Schedule, above: dict[str, int], axis: str, pos: list[int]) -> int:
    L = s.layer
    stride, dil, pad, size = (getattr(L, n + axis) for n in ("S", "D", "P", "I"))
    cnt = [0] * (size + 1)
    for r in pos:
        cnt[r + 1] = 1
    for i in range(size):
        cnt[i + 1] += cnt[i]
    best = 0
    for o0, o1 in _tile_ranges(s, above, "O" + axis):
        for f0, f1 in _tile_ranges(s, above, "F" + axis):
            lo, hi = (int(v) for v in read_span(o0, o1, f0, f1, stride, dil, pad, size))
            best = max(best, cnt[hi] - cnt[lo] if hi > lo else 0)
    return best


def plan_kernel(s: Schedule, arch: Architecture) -> KernelPlan:
    """Check the inputs and compute buffer extents, read-row tables, run counts and data ranges."""
    L = s.layer
    check_c_program(s)     # before any table is built (docs/limits.md)
    for name in ("input_bits", "weight_bits", "psum_bits", "output_bits"):
        if getattr(arch, name) > MAX_BITS:
            raise ConvschedError(f"{name}={getattr(arch, name)}: generated code supports words of at most "
                                 f"{MAX_BITS} bits; use --bits 32 or less")
    row_pos = read_rows(L.OY, L.FY, L.SY, L.DY, L.PY, L.IY)
    col_pos = read_rows(L.OX, L.FX, L.SX, L.DX, L.PX, L.IX)
    ring: dict[str, tuple[int, ...]] = {}
    for op, axes in AXES.items():
        above = _above(s, op)
        ext = []
        for a in axes:
            if a == "Y":
                ext.append(_max_spatial(s, above, "Y", row_pos))
            elif a == "X":
                ext.append(_max_spatial(s, above, "X", col_pos))
            else:
                ext.append(_tile_extent(s, above, a))
        ring[op] = tuple(ext)
    # Output runs per block: loops above the output buffer up to the innermost output-relevant
    # loop with more than one trip; every irrelevant loop outside it revisits every block.
    above = s.order[: s.buffers["output"]]
    relevant = set(AXES["output"])
    inner = max((j for j, d in enumerate(above) if d in relevant and s.trips(d) > 1), default=-1)
    runs = math.prod(s.trips(d) for d in above[:max(inner, 0)] if d not in relevant) if inner >= 0 else 1
    out_above = _above(s, "output")
    out_blocks = tuple((_tile_extent(s, out_above, d), ceil_div(L.dim_size(d), _tile_extent(s, out_above, d)))
                       for d in AXES["output"])
    # data ranges: |x| <= rx, |w| <= rw, rx*rw*terms below the partial-sum range (at least int32-safe)
    terms = L.Cg * L.FY * L.FX
    limit = (1 << (min(arch.psum_bits, 32) - 1)) - 1
    target = limit // terms if limit // terms >= 1 else ((1 << 31) - 1) // terms
    rx = max(1, min(1 << (arch.input_bits - 1), math.isqrt(target)))
    rw = max(1, min(1 << (arch.weight_bits - 1), target // rx))
    return KernelPlan(s, arch, ring, row_pos, col_pos, runs, out_blocks, rx, rw)


def _c_list(values: Sequence[int]) -> str:
    if not values:
        return "{0}"
    items = [str(v) for v in values]
    lines, line = [], ""
    for it in items:
        if len(line) + len(it) + 2 > 96:
            lines.append(line)
            line = ""
        line += it + ", "
    lines.append(line)
    return "{\n    " + "\n    ".join(x.rstrip() for x in lines).rstrip(",") + "\n}"


def _strides(ext: Sequence[int]) -> list[int]:
    out, acc = [], 1
    for e in reversed(ext):
        out.append(acc)
        acc *= e
    return out[::-1]


def check_fits(s: Schedule, arch: Architecture) -> None:
    bw = evaluate(s, arch).buffer_words
    if not arch.fits(bw):
        need = sum(arch.buffer_bytes(bw).values())
        cap = arch.capacity if arch.capacity is not None else arch.capacity_per_operand
        raise ConvschedError(f"the schedule's buffers ({need} bytes: input {bw['input']}, weight {bw['weight']}, "
                             f"output {bw['output']} words) do not fit the architecture's capacity ({cap} bytes); "
                             "use smaller tiles or a larger buffer")


def emit_kernel(plan: KernelPlan, k: int) -> str:
    """The C text of kernel `k`: tables, buffers, the loop nest, the tile compute, and its driver."""
    s, arch, L = plan.schedule, plan.arch, plan.schedule.layer
    p = f"k{k}_"
    P = p.upper()
    in_t, in_sz = _ctype(arch.input_bits)
    w_t, w_sz = _ctype(arch.weight_bits)
    out_t, out_sz = _ctype(arch.output_bits)
    rin, rw, ro = plan.ring["input"], plan.ring["weight"], plan.ring["output"]
    bw = plan.buffer_words
    sin, sw, so = _strides(rin), _strides(rw), _strides(ro)
    # main-memory strides of each operand's five axes
    m_in = [L.G * L.Cg * L.IY * L.IX, L.Cg * L.IY * L.IX, L.IY * L.IX, L.IX, 1]
    m_w = [L.Kg * L.Cg * L.FY * L.FX, L.Cg * L.FY * L.FX, L.FY * L.FX, L.FX, 1]
    m_out = [L.G * L.Kg * L.OY * L.OX, L.Kg * L.OY * L.OX, L.OY * L.OX, L.OX, 1]
    row_cnt = [0] * (L.IY + 1)
    for r in plan.row_pos:
        row_cnt[r + 1] = 1
    for i in range(L.IY):
        row_cnt[i + 1] += row_cnt[i]
    col_cnt = [0] * (L.IX + 1)
    for c in plan.col_pos:
        col_cnt[c + 1] = 1
    for i in range(L.IX):
        col_cnt[i + 1] += col_cnt[i]
    n_out_blocks = math.prod(n for _, n in plan.out_blocks)
    out: list[str] = []
    w = out.append
    w(f"/* ===== kernel {k}: layer {L}; order {' '.join(f'{d}/{s.tiles[d]}' for d in s.order) or '(untiled)'}; "
      f"buffers input@{s.buffers['input']} weight@{s.buffers['weight']} output@{s.buffers['output']} ===== */")
    w(f"/* bits: input {arch.input_bits}, weight {arch.weight_bits}, psum {arch.psum_bits}, output {arch.output_bits}; "
      f"DMA granularity {arch.dma_granularity} bytes */")
    if arch.double_buffer:
        w("/* double_buffer: the architecture reserves twice each buffer; this code is single-buffered "
          "(no prefetch), which moves exactly the same words */")
    w("/* read input rows / columns: rank -> row, row -> rank (rows below), rank -> end of its arithmetic run */")
    w(f"static const int {p}row_pos[{max(1, len(plan.row_pos))}] = {_c_list(plan.row_pos)};")
    w(f"static const int {p}row_cnt[{L.IY + 1}] = {_c_list(row_cnt)};")
    w(f"static const int {p}row_run[{max(1, len(plan.row_pos))}] = {_c_list(arithmetic_runs(plan.row_pos))};")
    w(f"static const int {p}col_pos[{max(1, len(plan.col_pos))}] = {_c_list(plan.col_pos)};")
    w(f"static const int {p}col_cnt[{L.IX + 1}] = {_c_list(col_cnt)};")
    w(f"static const int {p}col_run[{max(1, len(plan.col_pos))}] = {_c_list(arithmetic_runs(plan.col_pos))};")
    w("")
    w("/* local buffers: exactly the model's buffer sizes (words), ring-addressed per axis */")
    decl = {op: max(1, n) for op, n in bw.items()}  # C has no empty arrays
    if 0 in bw.values():
        w("/* input buffer: 0 words (no output reads any input row or column: all padding); C arrays need 1 */")
    w(f"static {in_t} {p}input_buf[{decl['input']}];    /* input  N G C rows cols = {' x '.join(map(str, rin))} */")
    w(f"static {w_t} {p}weight_buf[{bw['weight']}];   /* weight G K C FY FX = {' x '.join(map(str, rw))} */")
    w(f"static int32_t {p}output_buf[{bw['output']}]; /* output N G K OY OX = {' x '.join(map(str, ro))} (partial sums) */")
    w("#ifdef CONVSCHED_CHECK")
    for op in ("input", "weight", "output"):
        w(f"static uint64_t {p}{op}_tag[{decl[op]}];")
    w(f"#define {P}TAG(t) t")
    w("#else")
    w(f"#define {P}TAG(t) NULL")
    w("#endif")
    w(f"static cs_array {p}input_loc = {{{p}input_buf, {in_sz}, {decl['input']}, {P}TAG({p}input_tag)}};")
    w(f"static cs_array {p}weight_loc = {{{p}weight_buf, {w_sz}, {bw['weight']}, {P}TAG({p}weight_tag)}};")
    w(f"static cs_array {p}output_loc = {{{p}output_buf, 4, {bw['output']}, {P}TAG({p}output_tag)}};")

    def opdesc(name: str, ring: Sequence[int], ls: Sequence[int], ms: Sequence[int], tables: bool) -> str:
        pos = f"{{NULL, NULL, NULL, {p}row_pos, {p}col_pos}}" if tables else "{NULL, NULL, NULL, NULL, NULL}"
        run = f"{{NULL, NULL, NULL, {p}row_run, {p}col_run}}" if tables else "{NULL, NULL, NULL, NULL, NULL}"
        return (f"static const cs_operand {p}{name}_op = {{{{{', '.join(map(str, ring))}}}, "
                f"{{{', '.join(map(str, ls))}}}, {{{', '.join(map(str, ms))}}},\n    {pos}, {run}, &{p}{name}_loc}};")

    w(opdesc("input", [max(1, r) for r in rin], sin, m_in, True))
    w(opdesc("weight", rw, sw, m_w, False))
    w(opdesc("output", ro, so, m_out, False))
    w(f"static unsigned char {p}out_visited[{n_out_blocks}];")
    w(f"static cs_i64 {p}out_runs[{n_out_blocks}];")
    w("")

    # ---- block ranges of each operand from the dimension ranges r[8][2]
    D = DIM_INDEX
    w(f"static void {p}visit_input(const cs_i64 r[8][2], cs_array *x, cs_read_state *st)")
    w("{")
    w("    cs_i64 lo[5], hi[5], a, b;")
    for a, d in enumerate(("N", "G", "C")):
        w(f"    lo[{a}] = r[{D[d]}][0]; hi[{a}] = r[{D[d]}][1];")
    for a, (ax, o, f, cnt) in enumerate((("Y", "OY", "FY", "row_cnt"), ("X", "OX", "FX", "col_cnt")), start=3):
        S, Dl, Pd, I = (getattr(L, n + ax) for n in ("S", "D", "P", "I"))
        w(f"    /* input {'rows' if ax == 'Y' else 'columns'} read by outputs [{o}) with filter taps [{f}) */")
        w(f"    cs_read_span(r[{D[o]}][0], r[{D[o]}][1], r[{D[f]}][0], r[{D[f]}][1], {S}, {Dl}, {Pd}, {I}, &a, &b);")
        w(f"    lo[{a}] = {p}{cnt}[a]; hi[{a}] = {p}{cnt}[b];")
    w(f"    cs_visit_read(&{p}input_op, x, CS_INPUT_READ, st, lo, hi);")
    w("}")
    w("")
    for name, counter in (("weight", "CS_WEIGHT_READ"),):
        w(f"static void {p}visit_{name}(const cs_i64 r[8][2], cs_array *wm, cs_read_state *st)")
        w("{")
        w("    cs_i64 lo[5], hi[5];")
        for a, d in enumerate(AXES[name]):
            w(f"    lo[{a}] = r[{D[d]}][0]; hi[{a}] = r[{D[d]}][1];")
        w(f"    cs_visit_read(&{p}{name}_op, wm, {counter}, st, lo, hi);")
        w("}")
        w("")
    w(f"static void {p}visit_output(const cs_i64 r[8][2], cs_array *psum, cs_array *y, cs_out_state *st)")
    w("{")
    w("    cs_i64 lo[5], hi[5];")
    for a, d in enumerate(AXES["output"]):
        w(f"    lo[{a}] = r[{D[d]}][0]; hi[{a}] = r[{D[d]}][1];")
    w(f"    cs_visit_output(&{p}output_op, psum, y, st, lo, hi);")
    w("}")
    w("")

    # ---- tile compute: MACs from the local buffers only
    w("/* one tile: every MAC reads the local buffers only; padding is made as zeros on chip */")
    w(f"static void {p}tile(const cs_i64 r[8][2])")
    w("{")
    w("    cs_i64 n, g, k, c, oy, ox, fy, fx;")
    w("    for (n = r[0][0]; n < r[0][1]; n++)")
    w("    for (g = r[1][0]; g < r[1][1]; g++)")
    w("    for (k = r[2][0]; k < r[2][1]; k++)")
    w("    for (oy = r[4][0]; oy < r[4][1]; oy++)")
    w("    for (ox = r[5][0]; ox < r[5][1]; ox++) {")
    w(f"        cs_i64 oi = (((n % {ro[0]}) * {ro[1]} + g % {ro[1]}) * {ro[2]} + k % {ro[2]}) * {so[2]}"
      f" + (oy % {ro[3]}) * {ro[4]} + ox % {ro[4]};")
    w("        int32_t acc;")
    w(f"        CS_CHECK(oi >= 0 && oi < {bw['output']});")
    w(f"        CS_CHECK({p}output_tag[oi] == (uint64_t)(((n * {L.G} + g) * {L.Kg} + k) * {L.OY * L.OX} + oy * {L.OX} + ox) + 1);")
    w(f"        acc = {p}output_buf[oi];")
    w("        for (c = r[3][0]; c < r[3][1]; c++)")
    w("        for (fy = r[6][0]; fy < r[6][1]; fy++) {")
    w(f"            cs_i64 iy = oy * {L.SY} + fy * {L.DY} - {L.PY}, ry;")
    w(f"            if (iy < 0 || iy >= {L.IY}) continue;   /* padding row: zeros, never fetched */")
    w(f"            ry = {p}row_cnt[iy] % {max(1, rin[3])};")
    w("            for (fx = r[7][0]; fx < r[7][1]; fx++) {")
    w(f"                cs_i64 ix = ox * {L.SX} + fx * {L.DX} - {L.PX}, ii, wi;")
    w(f"                if (ix < 0 || ix >= {L.IX}) continue;")
    w(f"                ii = ((((n % {rin[0]}) * {rin[1]} + g % {rin[1]}) * {rin[2]} + c % {rin[2]}) * {max(1, rin[3])} + ry)"
      f" * {max(1, rin[4])} + {p}col_cnt[ix] % {max(1, rin[4])};")
    w(f"                wi = ((((g % {rw[0]}) * {rw[1]} + k % {rw[1]}) * {rw[2]} + c % {rw[2]}) * {rw[3]} + fy % {rw[3]})"
      f" * {rw[4]} + fx % {rw[4]};")
    w(f"                CS_CHECK(ii >= 0 && ii < {bw['input']} && wi >= 0 && wi < {bw['weight']});")
    w(f"                CS_CHECK({p}input_tag[ii] == (uint64_t)((((n * {L.G} + g) * {L.Cg} + c) * {L.IY} + iy) * {L.IX} + ix) + 1);")
    w(f"                CS_CHECK({p}weight_tag[wi] == (uint64_t)((((g * {L.Kg} + k) * {L.Cg} + c) * {L.FY} + fy) * {L.FX} + fx) + 1);")
    w(f"                acc += (int32_t){p}input_buf[ii] * (int32_t){p}weight_buf[wi];")
    w("            }")
    w("        }")
    w(f"        {p}output_buf[oi] = acc;")
    w("    }")
    w("}")
    w("")

    # ---- the loop nest
    ops_at: dict[int, list[str]] = {}
    for op in ("input", "weight", "output"):
        ops_at.setdefault(s.buffers[op], []).append(op)
    full = ", ".join(f"{{0, {L.dim_size(d)}}}" for d in DIMS)
    w("/* the schedule's loop nest: tile loops in order; each operand moves to its block at its buffer level */")
    w(f"static void {p}run(cs_array *x, cs_array *wm, cs_array *psum, cs_array *y, cs_read_state *in_st,")
    w("                   cs_read_state *w_st, cs_out_state *out_st)")
    w("{")
    w(f"    cs_i64 r0[8][2] = {{{full}}};")
    depth = len(s.order)

    def visits(j: int, ind: str) -> None:
        for op in ops_at.get(j, []):
            if op == "input":
                w(f"{ind}{p}visit_input(r{j}, x, in_st);           /* input buffer at level {j} */")
            elif op == "weight":
                w(f"{ind}{p}visit_weight(r{j}, wm, w_st);          /* weight buffer at level {j} */")
            else:
                w(f"{ind}{p}visit_output(r{j}, psum, y, out_st);   /* output buffer at level {j} */")

    visits(0, "    ")
    for j, d in enumerate(s.order):
        ind = "    " * (j + 1)
        size, t = L.dim_size(d), s.tiles[d]
        w(f"{ind}for (cs_i64 i{j} = 0; i{j} < {s.trips(d)}; i{j}++) {{   /* {d}: tile {t} of {size} */")
        w(f"{ind}    cs_i64 r{j + 1}[8][2];")
        w(f"{ind}    memcpy(r{j + 1}, r{j}, sizeof r{j + 1});")
        w(f"{ind}    r{j + 1}[{D[d]}][0] = i{j} * {t};")
        w(f"{ind}    r{j + 1}[{D[d]}][1] = i{j} * {t} + {t} < {size} ? i{j} * {t} + {t} : {size};")
        visits(j + 1, ind + "    ")
    w(f"{'    ' * (depth + 1)}{p}tile(r{depth});")
    for j in reversed(range(depth)):
        w(f"{'    ' * (j + 1)}}}")
    w(f"    cs_output_flush(&{p}output_op, psum, y, out_st);")
    w("}")
    w("")

    # ---- driver: data, run, reference, report
    n_x, n_w, n_y = L.input_words, L.weight_words, L.output_words
    g = arch.dma_granularity
    blk = ", ".join(str(b) for b, _ in plan.out_blocks)
    trips = ", ".join(str(n) for _, n in plan.out_blocks)
    w(f"static void {p}main(uint64_t seed)")
    w("{")
    w(f"    cs_array x = {{NULL, {in_sz}, {n_x}, NULL}}, wm = {{NULL, {w_sz}, {n_w}, NULL}};")
    w(f"    cs_array psum = {{NULL, 4, {n_y}, NULL}}, y = {{NULL, {out_sz}, {n_y}, NULL}};")
    w("    cs_read_state in_st, w_st;")
    w("    cs_out_state out_st;")
    w("    cs_i64 i, n, g, k, oy, ox, c, fy, fx, bad = 0, first_bad = -1;")
    w("    uint64_t y_hash = 0;")
    w(f"    x.base = cs_alloc({n_x}, {in_sz});")
    w(f"    wm.base = cs_alloc({n_w}, {w_sz});")
    w(f"    psum.base = cs_alloc({n_y}, 4);")
    w(f"    y.base = cs_alloc({n_y}, {out_sz});")
    w(f"    for (i = 0; i < {n_x}; i++) cs_put(&x, i, cs_random(seed, 0, (uint64_t)i, {plan.in_range}));")
    w(f"    for (i = 0; i < {n_w}; i++) cs_put(&wm, i, cs_random(seed, 1, (uint64_t)i, {plan.w_range}));")
    w(f"    memset(psum.base, 0x5a, (size_t){n_y} * 4);")
    w(f"    memset(y.base, 0x5a, (size_t){n_y} * {out_sz});   /* an output never written shows up */")
    w("    memset(&in_st, 0, sizeof in_st);")
    w("    memset(&w_st, 0, sizeof w_st);")
    w("    memset(&out_st, 0, sizeof out_st);")
    w(f"    memset({p}out_visited, 0, sizeof {p}out_visited);")
    w(f"    memset({p}out_runs, 0, sizeof {p}out_runs);")
    w("    {")
    w(f"        const cs_i64 blk[5] = {{{blk}}}, trips[5] = {{{trips}}};")
    w("        memcpy(out_st.blk, blk, sizeof blk);")
    w("        memcpy(out_st.trips, trips, sizeof trips);")
    w("    }")
    w(f"    out_st.visited = {p}out_visited;")
    w(f"    out_st.runs = {p}out_runs;")
    w(f"    out_st.runs_per_block = {plan.runs_per_block};")
    w(f"    out_st.out_bits = {arch.output_bits};")
    w(f"    cs_reset_counters({arch.input_bits}, {arch.weight_bits}, {arch.psum_bits}, {arch.output_bits}, {g});")
    w(f"    {p}run(&x, &wm, &psum, &y, &in_st, &w_st, &out_st);")
    w(f"    for (i = 0; i < {n_out_blocks}; i++) CS_CHECK({p}out_runs[i] == {plan.runs_per_block});")
    w("    /* reference: direct convolution from main memory, int64 sums, truncated like the kernel */")
    w(f"    for (n = 0; n < {L.N}; n++) for (g = 0; g < {L.G}; g++) for (k = 0; k < {L.Kg}; k++)")
    w(f"    for (oy = 0; oy < {L.OY}; oy++) for (ox = 0; ox < {L.OX}; ox++) {{")
    w("        cs_i64 sum = 0, o;")
    w(f"        for (c = 0; c < {L.Cg}; c++) for (fy = 0; fy < {L.FY}; fy++) for (fx = 0; fx < {L.FX}; fx++) {{")
    w(f"            cs_i64 iy = oy * {L.SY} + fy * {L.DY} - {L.PY}, ix = ox * {L.SX} + fx * {L.DX} - {L.PX};")
    w(f"            if (iy < 0 || iy >= {L.IY} || ix < 0 || ix >= {L.IX}) continue;")
    w(f"            sum += cs_get(&x, (((n * {L.G} + g) * {L.Cg} + c) * {L.IY} + iy) * {L.IX} + ix)"
      f" * cs_get(&wm, (((g * {L.Kg} + k) * {L.Cg} + c) * {L.FY} + fy) * {L.FX} + fx);")
    w("        }")
    w(f"        o = (((n * {L.G} + g) * {L.Kg} + k) * {L.OY} + oy) * {L.OX} + ox;")
    w(f"        if (cs_get(&y, o) != cs_wrap(sum, {arch.output_bits})) {{ if (bad == 0) first_bad = o; bad++; }}")
    w("    }")
    w("    /* a hash of the output, for a reference computed outside C from the same seeded data */")
    w(f"    for (i = 0; i < {n_y}; i++) y_hash += (uint64_t)cs_get(&y, i) * cs_mix((uint64_t)i);")
    w(f'    printf("{{\\"kernel\\": {k}, \\"words\\": [%lld, %lld, %lld, %lld, %lld], '
      f'\\"bytes\\": [%lld, %lld, %lld, %lld, %lld], \\"peak\\": [%lld, %lld, %lld], '
      f'\\"mismatches\\": %lld, \\"first_mismatch\\": %lld, \\"y_hash\\": %llu}}\\n",')
    w("           cs_words[0], cs_words[1], cs_words[2], cs_words[3], cs_words[4],")
    w("           cs_bytes(0), cs_bytes(1), cs_bytes(2), cs_bytes(3), cs_bytes(4),")
    w("           in_st.peak, w_st.peak, out_st.peak, bad, first_bad, (unsigned long long)y_hash);")
    w("    free(x.base); free(wm.base); free(psum.base); free(y.base);")
    w("}")
    w("")
    return "\n".join(out)


def emit_program(cases: Sequence[tuple[Schedule, Architecture]], check_capacity: bool = True) -> tuple[str, list[KernelPlan]]:
    """One C program running every (schedule, architecture) case; returns the text and the plans."""
    if not cases:
        raise ConvschedError("nothing to generate: no schedules given")
    plans = []
    for s, arch in cases:
        if check_capacity:
            check_fits(s, arch)
        plans.append(plan_kernel(s, arch))
    parts = [
        "/* Generated by convsched: a convolution schedule with explicit DMA copies into fixed-size local",
        "   buffers. Build: cc -std=c99 -O2 -Wall -Werror conv.c -o conv  (add -DCONVSCHED_CHECK for bounds",
        "   and residency checks). Run: ./conv [seed]  -> one JSON line per kernel:",
        "   words/bytes per counter [input read, weight read, psum read, psum write, final write],",
        "   peak block words [input, weight, output], and output mismatches against a reference convolution.",
        "   Final outputs are truncated (two's complement wrap) to the output word size. */",
        RUNTIME,
    ]
    for k, plan in enumerate(plans):
        parts.append(emit_kernel(plan, k))
    parts.append("int main(int argc, char **argv)")
    parts.append("{")
    parts.append("    uint64_t seed = argc > 1 ? (uint64_t)strtoull(argv[1], NULL, 10) : 0;")
    for k in range(len(plans)):
        parts.append(f"    k{k}_main(seed);")
    parts.append("    return 0;")
    parts.append("}")
    return "\n".join(parts) + "\n", plans


def generate_c(schedule: Schedule, arch: Architecture | None = None) -> str:
    """Portable C99 for one schedule on one architecture (raises ConvschedError if it does not fit)."""
    return emit_program([(schedule, arch or Architecture())])[0]
