"""The C harness that proves generated kernels (a separate file, never part of a kernel): it links
every kernel against two DMA implementations and checks each run against a reference convolution.

* **Counting DMA**: copies at once and adds each copy's words and bits to its (boundary, stream)
  counter, closing a step (rounded up to the DMA granularity) when the tag's step changes. The
  bytes must equal the model's.
* **Lazy DMA**: a copy is only recorded at `start`, and its destination is poisoned (0xA5);
  the copy is made at the `wait` that covers it, from the source as it is then. So a block read
  before its wait, or a buffer overwritten while its write-back is in flight, changes the output;
  a `wait` on a handle never started, or a copy never waited for, is an error too.

Each run starts from an output tensor filled with 0x5a bytes, so an element never written shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..core.arch import Architecture
from .dma_api import DMA_HEADER_NAME
from .kernel import KernelSource, c_type

#: boundaries a counting DMA keeps (one per level of a hierarchy)
MAX_BOUNDARIES = 4

HARNESS_RUNTIME = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXB %(maxb)d
#define NS CONVSCHED_DMA_STREAMS

/* ---- counting DMA --------------------------------------------------------------------------- */
typedef struct {
    long long words[MAXB][NS], bits[MAXB][NS], gbytes[MAXB][NS], step_bits[MAXB][NS];
    uint32_t step[MAXB][NS];
    int open[MAXB][NS];
    long long granularity, bad;
    convsched_dma_handle next;
} count_ctx;

static void count_close(count_ctx *c, int b, int s)
{
    if (c->open[b][s]) {
        long long bytes = (c->step_bits[b][s] + 7) / 8;
        if (c->granularity > 0) bytes = (bytes + c->granularity - 1) / c->granularity * c->granularity;
        c->gbytes[b][s] += bytes;
    }
    c->open[b][s] = 0;
    c->step_bits[b][s] = 0;
}

static convsched_dma_handle count_start(void *ctx, void *dst, const void *src, size_t bytes,
                                        const convsched_dma_rows *rows, const convsched_dma_tag *tag)
{
    count_ctx *c = (count_ctx *)ctx;
    size_t i;
    int b = tag->boundary, s = tag->stream;
    if (b >= MAXB || s >= NS || tag->words == 0 || rows->rows == 0 || bytes == 0
        || (bytes * rows->rows) %% tag->words != 0) {
        c->bad++;
        return c->next++;
    }
    for (i = 0; i < rows->rows; i++)
        memcpy((char *)dst + (ptrdiff_t)i * rows->dst_stride, (const char *)src + (ptrdiff_t)i * rows->src_stride,
               bytes);
    if (c->open[b][s] && c->step[b][s] != tag->step) count_close(c, b, s);
    c->open[b][s] = 1;
    c->step[b][s] = tag->step;
    c->words[b][s] += tag->words;
    c->bits[b][s] += (long long)tag->words * tag->bits;
    c->step_bits[b][s] += (long long)tag->words * tag->bits;
    return c->next++;
}

static void count_wait(void *ctx, convsched_dma_handle h)
{
    count_ctx *c = (count_ctx *)ctx;
    if (h >= c->next) c->bad++;
}

static const convsched_dma_ops count_ops = {count_start, count_wait};

/* ---- lazy DMA -------------------------------------------------------------------------------- */
typedef struct {
    void *dst;
    const void *src;
    size_t bytes;
    convsched_dma_rows rows;
    convsched_dma_tag tag;
} lazy_xfer;

#define RUNS 64

/* Only the copies still in flight are kept (handle = base + index); the steps of the input/weight copies
   in flight are kept as runs (step, copies), oldest first, to see prefetching cheaply. */
typedef struct {
    lazy_xfer *q;
    size_t n, cap, done;
    uint32_t base;
    uint32_t run_step[RUNS];
    long long run_count[RUNS];
    int run_first, run_n;
    long long bad;
    long long overlapped;   /* copies started while an input/weight copy of another step is in flight */
} lazy_ctx;

static int is_read(const convsched_dma_tag *t)
{
    return t->stream <= CONVSCHED_DMA_WEIGHT_READ;
}

static void lazy_do(lazy_ctx *c, const lazy_xfer *x)
{
    size_t i;
    for (i = 0; i < x->rows.rows; i++)
        memcpy((char *)x->dst + (ptrdiff_t)i * x->rows.dst_stride,
               (const char *)x->src + (ptrdiff_t)i * x->rows.src_stride, x->bytes);
    if (is_read(&x->tag) && c->run_n > 0 && --c->run_count[c->run_first] == 0) {
        c->run_first = (c->run_first + 1) %% RUNS;
        c->run_n--;
    }
}

static convsched_dma_handle lazy_start(void *ctx, void *dst, const void *src, size_t bytes,
                                       const convsched_dma_rows *rows, const convsched_dma_tag *tag)
{
    lazy_ctx *c = (lazy_ctx *)ctx;
    size_t i;
    if (c->run_n > 0 && c->run_step[c->run_first] != tag->step) c->overlapped++;
    if (is_read(tag)) {
        int last = (c->run_first + c->run_n - 1 + RUNS) %% RUNS;
        if (c->run_n > 0 && c->run_step[last] == tag->step) {
            c->run_count[last]++;
        } else if (c->run_n == RUNS) {
            c->bad++;
        } else {
            last = (c->run_first + c->run_n) %% RUNS;
            c->run_step[last] = tag->step;
            c->run_count[last] = 1;
            c->run_n++;
        }
    }
    if (c->done == c->n) {                /* nothing in flight: start the queue afresh */
        c->base += (uint32_t)c->n;
        c->n = c->done = 0;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->q = (lazy_xfer *)realloc(c->q, c->cap * sizeof *c->q);
        if (!c->q) { fprintf(stderr, "out of memory\n"); exit(4); }
    }
    c->q[c->n].dst = dst;
    c->q[c->n].src = src;
    c->q[c->n].bytes = bytes;
    c->q[c->n].rows = *rows;
    c->q[c->n].tag = *tag;
    for (i = 0; i < rows->rows; i++)      /* poison: a read before the wait sees garbage */
        memset((char *)dst + (ptrdiff_t)i * rows->dst_stride, 0xA5, bytes);
    return c->base + (uint32_t)c->n++;
}

static void lazy_wait(void *ctx, convsched_dma_handle h)
{
    lazy_ctx *c = (lazy_ctx *)ctx;
    if (h < c->base || h >= c->base + c->n) {
        if (h >= c->base + c->n) c->bad++;   /* never started (an older handle is done already) */
        return;
    }
    for (; c->done <= (size_t)(h - c->base); c->done++) lazy_do(c, &c->q[c->done]);
}

static const convsched_dma_ops lazy_ops = {lazy_start, lazy_wait};

/* ---- data and reference ---------------------------------------------------------------------- */
static uint64_t mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static long long random_value(uint64_t seed, uint64_t s, uint64_t i, long long r)
{
    return (long long)(mix(mix(seed * 4 + s) + i) %% (uint64_t)(2 * r)) - r;
}

static long long wrap(long long v, int bits)
{
    uint64_t m, u;
    if (bits >= 63) return v;
    m = ((uint64_t)1 << bits) - 1;
    u = (uint64_t)v & m;
    return (u >> (bits - 1)) ? (long long)u - (long long)(m + 1) : (long long)u;
}

static long long requant(long long acc, int shift, int bits, int raw)
{
    long long lo = -(1LL << (bits - 1)), hi = (1LL << (bits - 1)) - 1, v;
    if (raw) return wrap(acc, bits);
    v = acc >= 0 ? acc >> shift : -((-acc + (1LL << shift) - 1) >> shift);
    return v < lo ? lo : v > hi ? hi : v;
}

static void *alloc(size_t n)
{
    void *p = malloc(n > 0 ? n : 1);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(4); }
    return p;
}
"""


@dataclass(frozen=True)
class HarnessKernel:
    """One kernel under test: its files and how the harness builds its data and reference."""

    kernel: KernelSource
    arch: Architecture
    shift: int           # CONV_<NAME>_SHIFT the harness compiles the kernel with


def _kernel_test(k: int, hk: HarnessKernel) -> str:
    ks, arch = hk.kernel, hk.arch
    plan = ks.plan
    L = plan.schedule.layer
    in_t, w_t, out_t = c_type(arch.input_bits), c_type(arch.weight_bits), c_type(arch.output_bits)
    raw = int(arch.output_bits == arch.psum_bits)
    n_x, n_w, n_y = L.input_words, L.weight_words, L.output_words
    return f"""
/* ---- kernel {k}: {ks.function} ---- */
static void test_{k}(uint64_t seed)
{{
    {in_t} *x = ({in_t} *)alloc({n_x} * sizeof({in_t}));
    {w_t} *w = ({w_t} *)alloc({n_w} * sizeof({w_t}));
    {out_t} *y = ({out_t} *)alloc({n_y} * sizeof({out_t}));
    long long *ref = (long long *)alloc({n_y} * sizeof(long long));
    long long i, n, g, k, oy, ox, c, fy, fx, bad = 0, lazy_bad = 0, first_bad = -1;
    int ret, lazy_ret, s, b;
    count_ctx cc;
    lazy_ctx lc;
    for (i = 0; i < {n_x}; i++) x[i] = ({in_t})random_value(seed, 0, (uint64_t)i, {plan.in_range});
    for (i = 0; i < {n_w}; i++) w[i] = ({w_t})random_value(seed, 1, (uint64_t)i, {plan.w_range});
    for (n = 0; n < {L.N}; n++) for (g = 0; g < {L.G}; g++) for (k = 0; k < {L.Kg}; k++)
    for (oy = 0; oy < {L.OY}; oy++) for (ox = 0; ox < {L.OX}; ox++) {{
        long long sum = 0;
        for (c = 0; c < {L.Cg}; c++) for (fy = 0; fy < {L.FY}; fy++) for (fx = 0; fx < {L.FX}; fx++) {{
            long long iy = oy * {L.SY} + fy * {L.DY} - {L.PY}, ix = ox * {L.SX} + fx * {L.DX} - {L.PX};
            if (iy < 0 || iy >= {L.IY} || ix < 0 || ix >= {L.IX}) continue;
            sum += (long long)x[(((n * {L.G} + g) * {L.Cg} + c) * {L.IY} + iy) * {L.IX} + ix]
                 * (long long)w[(((g * {L.Kg} + k) * {L.Cg} + c) * {L.FY} + fy) * {L.FX} + fx];
        }}
        ref[(((n * {L.G} + g) * {L.Kg} + k) * {L.OY} + oy) * {L.OX} + ox] =
            requant(wrap(sum, 32), {hk.shift}, {arch.output_bits}, {raw});
    }}
    memset(&cc, 0, sizeof cc);
    cc.granularity = {arch.dma_granularity};
    memset(y, 0x5a, {n_y} * sizeof({out_t}));
    ret = {ks.function}(x, w, y, &count_ops, &cc);
    for (b = 0; b < MAXB; b++) for (s = 0; s < NS; s++) count_close(&cc, b, s);
    for (i = 0; i < {n_y}; i++) if ((long long)y[i] != ref[i]) {{ if (bad == 0) first_bad = i; bad++; }}
    memset(&lc, 0, sizeof lc);
    memset(y, 0x5a, {n_y} * sizeof({out_t}));
    lazy_ret = {ks.function}(x, w, y, &lazy_ops, &lc);
    for (i = 0; i < {n_y}; i++) if ((long long)y[i] != ref[i]) lazy_bad++;
    printf("{{\\"kernel\\": {k}, \\"ret\\": [%d, %d], \\"count_bad\\": %lld, \\"mismatches\\": %lld, "
           "\\"first_mismatch\\": %lld, \\"lazy_mismatches\\": %lld, \\"lazy_bad\\": %lld, "
           "\\"lazy_unwaited\\": %lld, \\"overlapped\\": %lld, \\"words\\": [", ret, lazy_ret, cc.bad, bad, first_bad,
           lazy_bad, lc.bad, (long long)(lc.n - lc.done), lc.overlapped);
    for (b = 0; b < MAXB; b++) for (s = 0; s < NS; s++)
        printf("%s%lld", b + s ? ", " : "", cc.words[b][s]);
    printf("], \\"bytes\\": [");
    for (b = 0; b < MAXB; b++) for (s = 0; s < NS; s++)
        printf("%s%lld", b + s ? ", " : "", cc.granularity > 0 ? cc.gbytes[b][s] : (cc.bits[b][s] + 7) / 8);
    printf("]}}\\n");
    free(lc.q);
    free(x); free(w); free(y); free(ref);
}}
"""


def emit_harness(kernels: Sequence[HarnessKernel]) -> str:
    """The harness C file: includes every kernel's header, tests each in turn, prints one JSON line per kernel."""
    parts = ["/* Generated by convsched: the proof harness for generated kernels (counting and lazy DMA). */",
             HARNESS_RUNTIME.replace("#include <string.h>\n",
                                     f'#include <string.h>\n\n#include "{DMA_HEADER_NAME}"\n'
                                     + "".join(f'#include "{hk.kernel.name}.h"\n' for hk in kernels), 1)
             % {"maxb": MAX_BOUNDARIES}]
    for k, hk in enumerate(kernels):
        parts.append(_kernel_test(k, hk))
    parts.append("int main(int argc, char **argv)")
    parts.append("{")
    parts.append("    uint64_t seed = argc > 1 ? (uint64_t)strtoull(argv[1], NULL, 10) : 0;")
    for k in range(len(kernels)):
        parts.append(f"    test_{k}(seed);")
    parts.append("    return 0;")
    parts.append("}")
    return "\n".join(parts) + "\n"
