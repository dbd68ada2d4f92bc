"""A deployable kernel per schedule: `<name>.h` and `<name>.c` with one function

    int conv_<name>(const in_t *input, const w_t *weight, out_t *output,
                    const convsched_dma_ops *dma, void *dma_ctx);

that runs the schedule with static on-chip buffers (placed by the user macro CONVSCHED_L1)
and moves every byte through the caller's DMA (`convsched_dma.h`). No main(), no libc beyond
stdint.h/stddef.h. Tensors in main memory are as in today's program: input
`[N][G*Cg][IY][IX]`, weights `[G*Kg][Cg][FY][FX]`, output `[N][K][OY][OX]`. Spilled partial
sums go to a static main-memory scratch (placed by CONVSCHED_MAIN) at int32.

The final output is `CONV_<NAME>_REQUANT(acc)` of each 32-bit sum: by default a saturating
arithmetic shift right by CONV_<NAME>_SHIFT (default 0) to the output word, or the raw sum when
the output word is as wide as the partial sums. Both macros may be defined by the user.

One transfer plan per boundary: this single-level kernel has one boundary (tag.boundary 0,
named "L1"); a multi-level kernel adds boundaries with their own buffers and streams.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from ..core.arch import Architecture
from ..core.layer import DIMS
from ..core.schedule import Schedule
from .dma_api import DMA_HEADER_NAME
from .emit import AXES, KernelPlan, arithmetic_runs, check_fits, plan_kernel
from .kernel_runtime import KERNEL_RUNTIME

#: dimension -> index in the C range array `r[8][2]`
DIM_INDEX = {d: i for i, d in enumerate(DIMS)}
#: the one boundary of a single-level kernel (evaluate's name for it)
L1 = "L1"


def c_name(text: str) -> str:
    """A C identifier from a file stem or layer name: lower case, `_` for anything else, never a digit first."""
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", text).strip("_").lower()
    if not name:
        name = "layer"
    if name[0].isdigit():
        name = "l" + name
    return name


def c_type(bits: int) -> str:
    """The signed C type a word of `bits` bits is stored in."""
    return "int8_t" if bits <= 8 else "int16_t" if bits <= 16 else "int32_t"


@dataclass(frozen=True)
class KernelSource:
    """The two files of one kernel and what a caller or harness needs to know about them."""

    name: str                 # C name: function conv_<name>, files <name>.h/.c
    header: str
    source: str
    plan: KernelPlan
    double_buffered: bool
    declared_words: dict[str, int]   # per operand, both halves (what the model's buffer bytes count)

    @property
    def function(self) -> str:
        return f"conv_{self.name}"

    @property
    def macro(self) -> str:
        return f"CONV_{self.name.upper()}"


def _strides(ext: Sequence[int]) -> list[int]:
    out, acc = [], 1
    for e in reversed(ext):
        out.append(acc)
        acc *= e
    return out[::-1]


def _c_list(values: Sequence[int]) -> str:
    items = [str(v) for v in values] or ["0"]
    lines, line = [], ""
    for it in items:
        if len(line) + len(it) + 2 > 96:
            lines.append(line.rstrip())
            line = ""
        line += it + ", "
    lines.append(line.rstrip().rstrip(","))
    return "{\n    " + "\n    ".join(lines) + "\n}"


def _prefix_counts(pos: Sequence[int], size: int) -> list[int]:
    """row -> number of read rows below it (the rank of a read row), for rows 0..size."""
    cnt = [0] * (size + 1)
    for r in pos:
        cnt[r + 1] = 1
    for i in range(size):
        cnt[i + 1] += cnt[i]
    return cnt


def _run_info(s: Schedule) -> tuple[list[int], list[int]]:
    """Loop positions and trips that number an output block's runs: the loops above the output buffer
    that the output does not depend on, outside its innermost relevant loop of several trips."""
    above = s.order[: s.buffers["output"]]
    relevant = {"N", "G", "K", "OY", "OX"}
    inner = max((j for j, d in enumerate(above) if d in relevant and s.trips(d) > 1), default=-1)
    loops = [j for j, d in enumerate(above[: max(inner, 0)]) if d not in relevant]
    return loops, [s.trips(above[j]) for j in loops]


def emit_kernel_files(s: Schedule, arch: Architecture, name: str) -> KernelSource:
    """The header and source of one kernel (raises ConvschedError when its buffers do not fit)."""
    check_fits(s, arch)
    plan = plan_kernel(s, arch)
    L = s.layer
    N = f"CONV_{name.upper()}"
    fn = f"conv_{name}"
    in_t, w_t, out_t = c_type(arch.input_bits), c_type(arch.weight_bits), c_type(arch.output_bits)
    db = arch.double_buffer
    halves = 2 if db else 1
    rin = tuple(max(1, r) for r in plan.ring["input"])
    rw, ro = plan.ring["weight"], plan.ring["output"]
    bw = plan.buffer_words
    words = {"input": max(1, bw["input"]), "weight": bw["weight"], "output": bw["output"]}
    declared = {op: halves * bw[op] for op in bw}
    row_cnt = _prefix_counts(plan.row_pos, L.IY)
    col_cnt = _prefix_counts(plan.col_pos, L.IX)
    m_in = [L.G * L.Cg * L.IY * L.IX, L.Cg * L.IY * L.IX, L.IY * L.IX, L.IX, 1]
    m_w = [L.Kg * L.Cg * L.FY * L.FX, L.Cg * L.FY * L.FX, L.FY * L.FX, L.FX, 1]
    m_out = [L.G * L.Kg * L.OY * L.OX, L.Kg * L.OY * L.OX, L.OY * L.OX, L.OX, 1]
    run_loops, run_trips = _run_info(s)
    runs = math.prod(run_trips)
    assert runs == plan.runs_per_block
    spills = runs > 1
    raw = arch.output_bits == arch.psum_bits
    l1_bytes = (declared["input"] * _size(in_t) + declared["weight"] * _size(w_t) + declared["output"] * 4)
    order_txt = " ".join(f"{d}/{s.tiles[d]}" for d in s.order) or "(untiled)"
    bufs_txt = f"input@{s.buffers['input']} weight@{s.buffers['weight']} output@{s.buffers['output']}"
    proto = (f"int {fn}(const {in_t} *input, const {w_t} *weight, {out_t} *output,\n"
             f"        const convsched_dma_ops *dma, void *dma_ctx)")

    h: list[str] = []
    h.append(f"/* {name}.h: generated by convsched.")
    h.append(f"   Layer {L}")
    h.append(f"   order {order_txt}; buffers {bufs_txt}")
    h.append(f"   bits input {arch.input_bits}, weight {arch.weight_bits}, psum {arch.psum_bits}, output "
             f"{arch.output_bits}{'; double-buffered' if db else ''}.")
    h.append("")
    h.append(f"   {fn}() computes the whole layer. Tensors in main memory:")
    h.append(f"     input  [N][G*Cg][IY][IX] = [{L.N}][{L.G * L.Cg}][{L.IY}][{L.IX}]")
    h.append(f"     weight [G*Kg][Cg][FY][FX] = [{L.G * L.Kg}][{L.Cg}][{L.FY}][{L.FX}]")
    h.append(f"     output [N][K][OY][OX]     = [{L.N}][{L.G * L.Kg}][{L.OY}][{L.OX}]")
    h.append("   Every byte between main memory and the on-chip buffers goes through `dma` (convsched_dma.h);")
    h.append("   pass &convsched_dma_memcpy and NULL to run it without a DMA engine. Returns 0, or -1 when a")
    h.append("   pointer is NULL. Not reentrant: the on-chip buffers are static (placed by CONVSCHED_L1,")
    h.append("   spilled partial sums by CONVSCHED_MAIN; both default to nothing).")
    if raw:
        h.append(f"   Output: the raw {arch.psum_bits}-bit sums (output bits = psum bits), or {N}_REQUANT(acc)")
        h.append("   when defined.")
    else:
        h.append(f"   Output: {N}_REQUANT(acc) of each 32-bit sum; default: arithmetic shift right")
        h.append(f"   by {N}_SHIFT (default 0, rounding toward minus infinity), saturated to")
        h.append(f"   {arch.output_bits} bits. */")
    if raw:
        h[-1] += " */"
    h.append(f"#ifndef {N}_H")
    h.append(f"#define {N}_H")
    h.append("")
    h.append("#include <stdint.h>")
    h.append("")
    h.append(f'#include "{DMA_HEADER_NAME}"')
    h.append("")
    h.append(f"#define {N}_INPUT_WORDS {L.input_words}")
    h.append(f"#define {N}_WEIGHT_WORDS {L.weight_words}")
    h.append(f"#define {N}_OUTPUT_WORDS {L.output_words}")
    h.append(f"#define {N}_L1_BYTES {l1_bytes}   /* on-chip buffers as declared */")
    h.append("")
    h.append(proto + ";")
    h.append("")
    h.append(f"#endif /* {N}_H */")

    c: list[str] = []
    w = c.append
    w(f"/* {name}.c: generated by convsched; see {name}.h.")
    w(f"   Layer {L}; order {order_txt}; buffers {bufs_txt}. */")
    w("#include <stddef.h>")
    w("#include <stdint.h>")
    w("")
    w(f'#include "{DMA_HEADER_NAME}"')
    w(f'#include "{name}.h"')
    w("")
    w("#ifndef CONVSCHED_L1")
    w("#define CONVSCHED_L1   /* e.g. __attribute__((section(\".l1\"))) */")
    w("#endif")
    if spills:
        w("#ifndef CONVSCHED_MAIN")
        w("#define CONVSCHED_MAIN")
        w("#endif")
    w(f"#ifndef {N}_REQUANT")
    if raw:
        w(f"#define {N}_REQUANT(acc) (acc)   /* output bits = psum bits: the raw sums */")
    else:
        w(f"#ifndef {N}_SHIFT")
        w(f"#define {N}_SHIFT 0")
        w("#endif")
        w(f"#define {N}_REQUANT(acc) cs_requant((acc), {N}_SHIFT)")
        w(f"#define {N}_DEFAULT_REQUANT")
    w("#endif")
    w(KERNEL_RUNTIME)
    if not raw:
        lo_v, hi_v = -(1 << (arch.output_bits - 1)), (1 << (arch.output_bits - 1)) - 1
        w(f"#ifdef {N}_DEFAULT_REQUANT")
        w(f"/* the default requantisation: shift right (floor), saturate to {arch.output_bits} bits */")
        w("static int32_t cs_requant(int32_t acc, int shift)")
        w("{")
        w("    int64_t v = acc;")
        w("    v = v >= 0 ? v >> shift : -((-v + ((int64_t)1 << shift) - 1) >> shift);")
        w(f"    return v < {lo_v}L ? (int32_t)({lo_v}L) : v > {hi_v}L ? (int32_t){hi_v}L : (int32_t)v;")
        w("}")
        w("#endif")
        w("")
    w("/* read input rows / columns: rank -> row, row -> rank (rows below), rank -> end of its arithmetic run */")
    n_rows, n_cols = max(1, len(plan.row_pos)), max(1, len(plan.col_pos))
    w(f"static const int32_t cs_row_pos[{n_rows}] = {_c_list(plan.row_pos)};")
    w(f"static const int32_t cs_row_cnt[{L.IY + 1}] = {_c_list(row_cnt)};")
    w(f"static const int32_t cs_row_run[{n_rows}] = {_c_list(arithmetic_runs(plan.row_pos))};")
    w(f"static const int32_t cs_col_pos[{n_cols}] = {_c_list(plan.col_pos)};")
    w(f"static const int32_t cs_col_cnt[{L.IX + 1}] = {_c_list(col_cnt)};")
    w(f"static const int32_t cs_col_run[{n_cols}] = {_c_list(arithmetic_runs(plan.col_pos))};")
    w("")
    w(f"/* on-chip buffers: the model's buffer words{', twice (two halves)' if db else ''} */")
    w(f"CONVSCHED_L1 static {in_t} cs_in_buf[{halves * words['input']}];   "
      f"/* input N G C rows cols = {' x '.join(map(str, plan.ring['input']))} */")
    w(f"CONVSCHED_L1 static {w_t} cs_w_buf[{halves * words['weight']}];   "
      f"/* weight G K C FY FX = {' x '.join(map(str, rw))} */")
    w("/* output N G K OY OX = " + " x ".join(map(str, ro)) + ": partial sums, requantised in place before "
      "the final write */")
    w(f"typedef union {{ int32_t p[{words['output']}]; {out_t} o[{words['output']}]; }} cs_out_half;")
    w(f"CONVSCHED_L1 static cs_out_half cs_out_buf[{halves}];")
    if spills:
        w(f"/* spilled partial sums ({runs} runs per output block), in main memory */")
        w(f"CONVSCHED_MAIN static int32_t cs_psum[{L.output_words}];")
    w("")

    def opdesc(var: str, ring: Sequence[int], ms: Sequence[int], tables: bool, n: int) -> None:
        none5 = "{NULL, NULL, NULL, NULL, NULL}"
        pos = "{NULL, NULL, NULL, cs_row_pos, cs_col_pos}" if tables else none5
        run = "{NULL, NULL, NULL, cs_row_run, cs_col_run}" if tables else none5
        w(f"static const cs_op {var} = {{{{{', '.join(map(str, ring))}}}, {{{', '.join(map(str, _strides(ring)))}}}, "
          f"{{{', '.join(map(str, ms))}}},\n    {pos}, {run}, {n}}};")

    opdesc("cs_in_op", rin, m_in, True, words["input"])
    opdesc("cs_w_op", rw, m_w, False, words["weight"])
    opdesc("cs_out_op", ro, m_out, False, words["output"])
    w(f"static const cs_stream cs_in_stream = {{CONVSCHED_DMA_INPUT_READ, {arch.input_bits}, sizeof({in_t})}};")
    w(f"static const cs_stream cs_w_stream = {{CONVSCHED_DMA_WEIGHT_READ, {arch.weight_bits}, sizeof({w_t})}};")
    if spills:
        w(f"static const cs_stream cs_psum_read = {{CONVSCHED_DMA_PSUM_READ, {arch.psum_bits}, 4}};")
        w(f"static const cs_stream cs_psum_write = {{CONVSCHED_DMA_PSUM_WRITE, {arch.psum_bits}, 4}};")
    w(f"static const cs_stream cs_final_write = {{CONVSCHED_DMA_FINAL_WRITE, {arch.output_bits}, sizeof({out_t})}};")
    depth = len(s.order)
    dims = [DIM_INDEX[d] for d in s.order] or [0]
    tiles = [s.tiles[d] for d in s.order] or [1]
    trips = [s.trips(d) for d in s.order] or [1]
    w(f"static const int cs_loop_dim[{len(dims)}] = {{{', '.join(map(str, dims))}}};")
    w(f"static const cs_int cs_loop_tile[{len(tiles)}] = {{{', '.join(map(str, tiles))}}};")
    w(f"static const cs_int cs_loop_trips[{len(trips)}] = {{{', '.join(map(str, trips))}}};")
    w(f"static const cs_nest cs_the_nest = {{{depth}, cs_loop_dim, cs_loop_tile, cs_loop_trips, "
      f"{{{', '.join(str(L.dim_size(d)) for d in DIMS)}}}}};")
    w("")

    # ---- block of each operand from the dimension ranges
    D = DIM_INDEX
    w("static void cs_input_block(cs_int r[8][2], cs_int lo[5], cs_int hi[5])")
    w("{")
    w("    cs_int a, b;")
    for a, d in enumerate(("N", "G", "C")):
        w(f"    lo[{a}] = r[{D[d]}][0]; hi[{a}] = r[{D[d]}][1];")
    for a, (ax, o, f, cnt) in enumerate((("Y", "OY", "FY", "cs_row_cnt"), ("X", "OX", "FX", "cs_col_cnt")), start=3):
        S, Dl, Pd, I = (getattr(L, n + ax) for n in ("S", "D", "P", "I"))
        w(f"    cs_read_span(r[{D[o]}][0], r[{D[o]}][1], r[{D[f]}][0], r[{D[f]}][1], {S}, {Dl}, {Pd}, {I}, &a, &b);")
        w(f"    lo[{a}] = {cnt}[a]; hi[{a}] = {cnt}[b];")
    w("}")
    w("")
    for op, fname in (("weight", "cs_weight_block"), ("output", "cs_output_block")):
        w(f"static void {fname}(cs_int r[8][2], cs_int lo[5], cs_int hi[5])")
        w("{")
        for a, d in enumerate(AXES[op]):
            w(f"    lo[{a}] = r[{D[d]}][0]; hi[{a}] = r[{D[d]}][1];")
        w("}")
        w("")

    # ---- visits of the read operands: this iteration's block and the next one's
    nx = max(1, depth)
    for op, var, t, blk, op_desc, stream, buf in (
            ("input", "input", in_t, "cs_input_block", "cs_in_op", "cs_in_stream", "cs_in_buf"),
            ("weight", "weight", w_t, "cs_weight_block", "cs_w_op", "cs_w_stream", "cs_w_buf")):
        w(f"static void cs_visit_{op}(cs_dma *d, cs_rd *st, const cs_int *it, int level, const {t} *{var})")
        w("{")
        w(f"    cs_int r[8][2], lo[5], hi[5], nlo[5], nhi[5], nx[{nx}];")
        w("    int has;")
        w("    cs_ranges(&cs_the_nest, it, level, r);")
        w(f"    {blk}(r, lo, hi);")
        w("    has = cs_next(&cs_the_nest, it, level, nx);")
        w("    if (has) {")
        w("        cs_ranges(&cs_the_nest, nx, level, r);")
        w(f"        {blk}(r, nlo, nhi);")
        w("    } else {")
        w("        cs_copy5(nlo, lo);")
        w("        cs_copy5(nhi, hi);")
        w("    }")
        w(f"    cs_visit_read(d, &{op_desc}, (char *){var}, (char *){buf}, sizeof({t}), st, {int(db)}, lo, hi, "
          f"has, nlo, nhi, &{stream});")
        w("}")
        w("")

    # ---- output: runs of equal blocks, write-back of each run, read-back on a revisit
    w("/* End the current run: requantise and write the block (its last run) or spill its partial sums;")
    w("   the write is only started, and waited for when its half is needed again. */")
    w(f"static void cs_out_flush(cs_dma *d, cs_wr *st, {out_t} *output)")
    w("{")
    w("    cs_out_half *b = &cs_out_buf[st->half];")
    w("    if (!st->valid) return;")
    w("    d->step++;")
    w("    if (st->final) {")
    w("        cs_int l;")
    w(f"        for (l = 0; l < {words['output']}; l++) b->o[l] = ({out_t}){N}_REQUANT(b->p[l]);   "
      "/* ascending: o[l] overlays p[<= l] only */")
    w("        cs_box(d, &cs_out_op, 0, (char *)output, (char *)b->o, st->lo, st->hi, &cs_final_write, "
      "&st->wr[st->half]);")
    if spills:
        w("    } else {")
        w("        cs_box(d, &cs_out_op, 0, (char *)cs_psum, (char *)b->p, st->lo, st->hi, &cs_psum_write, "
          "&st->wr[st->half]);")
    w("    }")
    w("    st->valid = 0;")
    w("}")
    w("")
    w(f"static void cs_visit_output(cs_dma *d, cs_wr *st, const cs_int *it, int level, {out_t} *output)")
    w("{")
    w("    cs_int r[8][2], lo[5], hi[5], l, run = 0;")
    w("    cs_out_half *b;")
    w("    int h;")
    w("    cs_ranges(&cs_the_nest, it, level, r);")
    w("    cs_output_block(r, lo, hi);")
    w("    if (st->valid && cs_same(lo, st->lo) && cs_same(hi, st->hi)) return;")
    for j, t in zip(run_loops, run_trips):
        w(f"    run = run * {t} + it[{j}];")
    w("    cs_out_flush(d, st, output);")
    w(f"    h = {int(db)} && st->started ? st->half ^ 1 : st->half;")
    w("    st->started = 1;")
    w("    cs_wait(d, &st->wr[h]);       /* this half's last write has left */")
    w("    b = &cs_out_buf[h];")
    if spills:
        w("    if (run > 0) {              /* a block seen before: read its partial sums back */")
        w("        cs_pending rb;")
        w("        rb.any = 0;")
        w("        d->step++;")
        w("        cs_box(d, &cs_out_op, 1, (char *)cs_psum, (char *)b->p, lo, hi, &cs_psum_read, &rb);")
        w("        cs_wait(d, &rb);")
        w("    } else {")
        w(f"        for (l = 0; l < {words['output']}; l++) b->p[l] = 0;")
        w("    }")
    else:
        w(f"    for (l = 0; l < {words['output']}; l++) b->p[l] = 0;")
    w("    st->half = h;")
    w("    cs_copy5(st->lo, lo);")
    w("    cs_copy5(st->hi, hi);")
    w("    st->valid = 1;")
    w(f"    st->final = run == {runs - 1};")
    w("}")
    w("")

    # ---- tile compute: MACs from the on-chip buffers only
    so = _strides(ro)
    w("/* one tile: every MAC reads the on-chip buffers only; padding is made as zeros on chip */")
    w(f"static void cs_tile(cs_int r[8][2], const {in_t} *xb, const {w_t} *wb, int32_t *ob)")
    w("{")
    w("    cs_int n, g, k, c, oy, ox, fy, fx;")
    w("    for (n = r[0][0]; n < r[0][1]; n++)")
    w("    for (g = r[1][0]; g < r[1][1]; g++)")
    w("    for (k = r[2][0]; k < r[2][1]; k++)")
    w("    for (oy = r[4][0]; oy < r[4][1]; oy++)")
    w("    for (ox = r[5][0]; ox < r[5][1]; ox++) {")
    w(f"        cs_int oi = (((n % {ro[0]}) * {ro[1]} + g % {ro[1]}) * {ro[2]} + k % {ro[2]}) * {so[2]}"
      f" + (oy % {ro[3]}) * {ro[4]} + ox % {ro[4]};")
    w("        int32_t acc = ob[oi];")
    w("        for (c = r[3][0]; c < r[3][1]; c++)")
    w("        for (fy = r[6][0]; fy < r[6][1]; fy++) {")
    w(f"            cs_int iy = oy * {L.SY} + fy * {L.DY} - {L.PY}, ry;")
    w(f"            if (iy < 0 || iy >= {L.IY}) continue;   /* padding row: zeros, never fetched */")
    w(f"            ry = cs_row_cnt[iy] % {rin[3]};")
    w("            for (fx = r[7][0]; fx < r[7][1]; fx++) {")
    w(f"                cs_int ix = ox * {L.SX} + fx * {L.DX} - {L.PX}, ii, wi;")
    w(f"                if (ix < 0 || ix >= {L.IX}) continue;")
    w(f"                ii = ((((n % {rin[0]}) * {rin[1]} + g % {rin[1]}) * {rin[2]} + c % {rin[2]}) * {rin[3]} + ry)"
      f" * {rin[4]} + cs_col_cnt[ix] % {rin[4]};")
    w(f"                wi = ((((g % {rw[0]}) * {rw[1]} + k % {rw[1]}) * {rw[2]} + c % {rw[2]}) * {rw[3]} + fy % {rw[3]})"
      f" * {rw[4]} + fx % {rw[4]};")
    w("                acc += (int32_t)xb[ii] * (int32_t)wb[wi];")
    w("            }")
    w("        }")
    w("        ob[oi] = acc;")
    w("    }")
    w("}")
    w("")

    # ---- the kernel: the schedule's loop nest
    ops_at: dict[int, list[str]] = {}
    for op in ("input", "weight", "output"):
        ops_at.setdefault(s.buffers[op], []).append(op)

    def visits(j: int, ind: str) -> None:
        for op in ops_at.get(j, []):
            if op == "input":
                w(f"{ind}cs_visit_input(&d, &in_st, it, {j}, input);")
            elif op == "weight":
                w(f"{ind}cs_visit_weight(&d, &w_st, it, {j}, weight);")
            else:
                w(f"{ind}cs_visit_output(&d, &out_st, it, {j}, output);")

    w("static void cs_rd_init(cs_rd *st)")
    w("{")
    w("    st->valid = st->half = st->pending = st->nhalf = 0;")
    w("    st->xfer.any = 0;")
    w("    st->xfer.h = 0;")
    w("}")
    w("")
    w(proto)
    w("{")
    w("    cs_dma d;")
    w("    cs_rd in_st, w_st;")
    w("    cs_wr out_st;")
    w(f"    cs_int it[{nx}], r[8][2];")
    w("    if (!input || !weight || !output || !dma || !dma->start || !dma->wait) return -1;")
    w("    d.ops = dma;")
    w("    d.ctx = dma_ctx;")
    w("    d.step = 0;")
    w("    cs_rd_init(&in_st);")
    w("    cs_rd_init(&w_st);")
    w("    out_st.valid = out_st.half = out_st.started = out_st.final = 0;")
    w("    out_st.wr[0].any = out_st.wr[1].any = 0;")
    w("    it[0] = 0;")
    visits(0, "    ")
    for j, dname in enumerate(s.order):
        ind = "    " * (j + 1)
        w(f"{ind}for (it[{j}] = 0; it[{j}] < {s.trips(dname)}; it[{j}]++) {{   "
          f"/* {dname}: tile {s.tiles[dname]} of {L.dim_size(dname)} */")
        visits(j + 1, ind + "    ")
    ind = "    " * (depth + 1)
    w(f"{ind}cs_ranges(&cs_the_nest, it, {depth}, r);")
    w(f"{ind}cs_tile(r, cs_in_buf + (cs_int)in_st.half * {words['input']}, "
      f"cs_w_buf + (cs_int)w_st.half * {words['weight']}, cs_out_buf[out_st.half].p);")
    for j in reversed(range(depth)):
        w(f"{'    ' * (j + 1)}}}")
    w("    cs_out_flush(&d, &out_st, output);")
    w("    cs_wait(&d, &out_st.wr[0]);")
    w("    cs_wait(&d, &out_st.wr[1]);")
    w("    cs_wait(&d, &in_st.xfer);")
    w("    cs_wait(&d, &w_st.xfer);")
    w("    return 0;")
    w("}")
    return KernelSource(name, "\n".join(h) + "\n", "\n".join(c) + "\n", plan, db, declared)


def _size(ctype: str) -> int:
    return {"int8_t": 1, "int16_t": 2, "int32_t": 4}[ctype]
