"""The C runtime shared by every generated kernel: the one DMA routine, its
counters, the block bookkeeping (what a new block lacks, partial-sum runs),
and the deterministic data generator. Emitted once per C program.

How a sliding block keeps what it holds: every local buffer is addressed
*modulo its extent on each axis* (a ring buffer per axis). An element with
block coordinate `v` on an axis lives in slot `v % ring`, where `ring` is the
largest extent any block has on that axis; a block is a contiguous coordinate
range per axis no longer than `ring`, so its elements never collide, and an
element that stays in the next block stays in its slot. A new block therefore
DMAs only `new \\ old` (a union of at most two boxes per axis) and never moves
anything on chip. Input rows and columns use as coordinate the *rank* of the
row among the rows some output of the layer reads, so a block's rows are a
contiguous rank range even when stride > filter extent leaves gaps; a rank
range maps back to main memory as arithmetic runs of rows (strided DMA boxes).
"""

#: Floor division and the input read span of docs/semantics.md in C (the twin of model.axes.read_span),
#: written once for both the self-checking program (64-bit `cs_i64`) and the kernel (`cs_int`).
_READ_SPAN_C = r"""/* Floor of a / b for b > 0 (C's division truncates toward zero). */
static cs_i64 cs_floor_div(cs_i64 a, cs_i64 b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* [*lo, *hi): the smallest and one past the largest input position o*s + f*d - p that outputs
   [o0, o1) with filter taps [f0, f1) read inside [0, size); *lo == *hi == 0 when they read only
   padding. Found tap by tap (first and last output inside the input), because a window end in
   the padding may sit on a position the block never reads (docs/semantics.md). */
static void cs_read_span(cs_i64 o0, cs_i64 o1, cs_i64 f0, cs_i64 f1, cs_i64 s, cs_i64 d, cs_i64 p,
                         cs_i64 size, cs_i64 *lo, cs_i64 *hi)
{
    cs_i64 f, first = size, last = -1;
    for (f = f0; f < f1; f++) {
        cs_i64 base = f * d - p;
        cs_i64 omin = -cs_floor_div(base, s), omax = cs_floor_div(size - 1 - base, s);
        if (omin < o0) omin = o0;
        if (omax > o1 - 1) omax = o1 - 1;
        if (omin > omax) continue;
        if (omin * s + base < first) first = omin * s + base;
        if (omax * s + base > last) last = omax * s + base;
    }
    if (first > last) {
        *lo = *hi = 0;
    } else {
        *lo = first;
        *hi = last + 1;
    }
}

"""


def read_span_c(int_type: str) -> str:
    """`cs_floor_div` and `cs_read_span` over the C integer type `int_type`."""
    return _READ_SPAN_C.replace("cs_i64", int_type)


RUNTIME = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef long long cs_i64;

#ifdef CONVSCHED_CHECK
/* debug build: every local-buffer index is bounds-checked, and every slot carries a tag
   (main-memory index + 1) so a compute read of an element the block does not hold fails */
#define CS_CHECK(cond) do { if (!(cond)) { fprintf(stderr, "convsched check failed (line %d): %s\n", \
                                                   __LINE__, #cond); exit(3); } } while (0)
#else
#define CS_CHECK(cond) ((void)0)
#endif

/* ---- traffic counters ------------------------------------------------------------------------ */
enum { CS_INPUT_READ, CS_WEIGHT_READ, CS_PSUM_READ, CS_PSUM_WRITE, CS_FINAL_WRITE, CS_NCOUNTERS };

static cs_i64 cs_words[CS_NCOUNTERS];   /* words moved */
static cs_i64 cs_bits[CS_NCOUNTERS];    /* bits moved (bytes = bits / 8 rounded up, without granularity) */
static cs_i64 cs_gbytes[CS_NCOUNTERS];  /* bytes with every step rounded up to the DMA granularity */
static cs_i64 cs_step[CS_NCOUNTERS];    /* words of the step in progress */
static int cs_width[CS_NCOUNTERS];      /* bits per word as it travels */
static cs_i64 cs_granularity;           /* bytes, 0 = off */

static void cs_reset_counters(int in_bits, int w_bits, int psum_bits, int out_bits, cs_i64 granularity)
{
    memset(cs_words, 0, sizeof cs_words);
    memset(cs_bits, 0, sizeof cs_bits);
    memset(cs_gbytes, 0, sizeof cs_gbytes);
    memset(cs_step, 0, sizeof cs_step);
    cs_width[CS_INPUT_READ] = in_bits;
    cs_width[CS_WEIGHT_READ] = w_bits;
    cs_width[CS_PSUM_READ] = psum_bits;
    cs_width[CS_PSUM_WRITE] = psum_bits;
    cs_width[CS_FINAL_WRITE] = out_bits;
    cs_granularity = granularity;
}

/* One step (a block load, a spill, a read-back) is over: round its bytes up to the granularity. */
static void cs_step_end(int counter)
{
    cs_i64 w = cs_step[counter];
    cs_step[counter] = 0;
    if (w > 0 && cs_granularity > 0) {
        cs_i64 b = (w * cs_width[counter] + 7) / 8;
        cs_gbytes[counter] += (b + cs_granularity - 1) / cs_granularity * cs_granularity;
    }
}

static cs_i64 cs_bytes(int counter)
{
    return cs_granularity > 0 ? cs_gbytes[counter] : (cs_bits[counter] + 7) / 8;
}

/* ---- arrays ------------------------------------------------------------------------------------ */
typedef struct {
    void *base;
    int esize;      /* bytes per stored element: 1, 2 or 4 (signed) */
    cs_i64 size;    /* elements */
    uint64_t *tag;  /* local buffers in the debug build: main-memory index + 1 of the element held */
} cs_array;

static cs_i64 cs_get(const cs_array *a, cs_i64 i)
{
    switch (a->esize) {
    case 1: return ((const int8_t *)a->base)[i];
    case 2: return ((const int16_t *)a->base)[i];
    default: return ((const int32_t *)a->base)[i];
    }
}

static void cs_put(cs_array *a, cs_i64 i, cs_i64 v)
{
    switch (a->esize) {
    case 1: CS_CHECK(v >= INT8_MIN && v <= INT8_MAX); ((int8_t *)a->base)[i] = (int8_t)v; break;
    case 2: CS_CHECK(v >= INT16_MIN && v <= INT16_MAX); ((int16_t *)a->base)[i] = (int16_t)v; break;
    default: CS_CHECK(v >= INT32_MIN && v <= INT32_MAX); ((int32_t *)a->base)[i] = (int32_t)v; break;
    }
}

/* Keep the low `bits` bits, two's complement (the final output is truncated, not saturated). */
static cs_i64 cs_wrap(cs_i64 v, int bits)
{
    uint64_t m, u;
    if (bits >= 63) return v;
    m = ((uint64_t)1 << bits) - 1;
    u = (uint64_t)v & m;
    return (u >> (bits - 1)) ? (cs_i64)u - (cs_i64)(m + 1) : (cs_i64)u;
}

/* ---- THE DMA ------------------------------------------------------------------------------------
   The only routine that moves data between main memory and a local buffer: a strided box of up to
   4 dimensions, copied element by element (the word size may narrow only for the final output,
   whose values were already narrowed on chip). It counts the words and bits it moves. */
static void dma_copy(int to_local, cs_array *mem, cs_i64 mem_off, const cs_i64 mem_stride[4],
                     cs_array *loc, cs_i64 loc_off, const cs_i64 loc_stride[4],
                     const cs_i64 shape[4], int counter)
{
    cs_i64 a, b, c, d, n = shape[0] * shape[1] * shape[2] * shape[3];
    for (a = 0; a < shape[0]; a++)
        for (b = 0; b < shape[1]; b++)
            for (c = 0; c < shape[2]; c++)
                for (d = 0; d < shape[3]; d++) {
                    cs_i64 m = mem_off + a * mem_stride[0] + b * mem_stride[1] + c * mem_stride[2] + d * mem_stride[3];
                    cs_i64 l = loc_off + a * loc_stride[0] + b * loc_stride[1] + c * loc_stride[2] + d * loc_stride[3];
                    CS_CHECK(m >= 0 && m < mem->size);
                    CS_CHECK(l >= 0 && l < loc->size);
                    if (to_local) {
                        cs_put(loc, l, cs_get(mem, m));
#ifdef CONVSCHED_CHECK
                        loc->tag[l] = (uint64_t)m + 1;
#endif
                    } else {
                        CS_CHECK(loc->tag[l] == (uint64_t)m + 1);
                        cs_put(mem, m, cs_get(loc, l));
                    }
                }
    cs_words[counter] += n;
    cs_step[counter] += n;
    cs_bits[counter] += n * cs_width[counter];
}

/* ---- operands: 5 axes each, ring-addressed local buffers ---------------------------------------- */
typedef struct {
    cs_i64 ring[5];          /* local extent per axis: slot = coordinate % ring */
    cs_i64 lstride[5];       /* local buffer strides */
    cs_i64 mstride[5];       /* main-memory strides */
    const int *pos[5];       /* coordinate (rank) -> main-memory row/column; NULL = identity */
    const int *run_end[5];   /* rank -> end of the arithmetic run of read rows it lies in */
    cs_array *loc;
} cs_operand;

/* Copy the box lo..hi (block coordinates) between main memory and the local buffer as 4-D DMA boxes:
   axis 0 one coordinate at a time; axes 1..4 split where the ring wraps and where runs of read rows end. */
static void cs_box_rec(const cs_operand *op, int to_local, cs_array *mem, int counter,
                       const cs_i64 lo[5], const cs_i64 hi[5], int ax, cs_i64 moff, cs_i64 loff,
                       cs_i64 shape[4], cs_i64 ms[4], cs_i64 ls[4])
{
    cs_i64 v, e, wrap, p, step;
    if (ax == 5) {
        dma_copy(to_local, mem, moff, ms, op->loc, loff, ls, shape, counter);
        return;
    }
    for (v = lo[ax]; v < hi[ax]; v = e) {
        e = ax == 0 ? v + 1 : hi[ax];
        wrap = v - v % op->ring[ax] + op->ring[ax];
        if (wrap < e) e = wrap;
        if (op->run_end[ax] && op->run_end[ax][v] < e) e = op->run_end[ax][v];
        p = op->pos[ax] ? op->pos[ax][v] : v;
        step = (op->pos[ax] && e - v > 1) ? op->pos[ax][v + 1] - op->pos[ax][v] : 1;
        if (ax > 0) {
            shape[ax - 1] = e - v;
            ms[ax - 1] = step * op->mstride[ax];
            ls[ax - 1] = op->lstride[ax];
        }
        cs_box_rec(op, to_local, mem, counter, lo, hi, ax + 1, moff + p * op->mstride[ax],
                   loff + (v % op->ring[ax]) * op->lstride[ax], shape, ms, ls);
    }
}

static void cs_copy_box(const cs_operand *op, int to_local, cs_array *mem, int counter,
                        const cs_i64 lo[5], const cs_i64 hi[5])
{
    cs_i64 shape[4], ms[4], ls[4];
    cs_box_rec(op, to_local, mem, counter, lo, hi, 0, 0, 0, shape, ms, ls);
}

static int cs_same(const cs_i64 a[5], const cs_i64 b[5])
{
    return memcmp(a, b, 5 * sizeof(cs_i64)) == 0;
}

""" + read_span_c("cs_i64") + r"""static cs_i64 cs_box_words(const cs_i64 lo[5], const cs_i64 hi[5])
{
    cs_i64 n = 1;
    int a;
    for (a = 0; a < 5; a++) n *= hi[a] > lo[a] ? hi[a] - lo[a] : 0;
    return n;
}

typedef struct { cs_i64 lo[5], hi[5]; int valid; cs_i64 peak; } cs_read_state;

/* Input / weight: move to block lo..hi. A block wholly in the padding moves nothing and leaves the
   buffer (and the block it is compared with next) as it was. Otherwise DMA only what the previous
   block lacks: with earlier axes restricted to the overlap, the parts of axis a outside it. */
static void cs_visit_read(const cs_operand *op, cs_array *mem, int counter, cs_read_state *st,
                          const cs_i64 lo[5], const cs_i64 hi[5])
{
    cs_i64 ilo[5], ihi[5], blo[5], bhi[5], n = cs_box_words(lo, hi);
    int a, overlap = st->valid;
    if (n == 0) return;
    if (st->valid && cs_same(lo, st->lo) && cs_same(hi, st->hi)) return;
    for (a = 0; a < 5 && overlap; a++) {
        ilo[a] = lo[a] > st->lo[a] ? lo[a] : st->lo[a];
        ihi[a] = hi[a] < st->hi[a] ? hi[a] : st->hi[a];
        if (ilo[a] >= ihi[a]) overlap = 0;
    }
    if (!overlap) {
        cs_copy_box(op, 1, mem, counter, lo, hi);
    } else {
        memcpy(blo, lo, sizeof blo);
        memcpy(bhi, hi, sizeof bhi);
        for (a = 0; a < 5; a++) {
            if (lo[a] < ilo[a]) { blo[a] = lo[a]; bhi[a] = ilo[a]; cs_copy_box(op, 1, mem, counter, blo, bhi); }
            if (ihi[a] < hi[a]) { blo[a] = ihi[a]; bhi[a] = hi[a]; cs_copy_box(op, 1, mem, counter, blo, bhi); }
            blo[a] = ilo[a];
            bhi[a] = ihi[a];
        }
    }
    cs_step_end(counter);
    memcpy(st->lo, lo, sizeof st->lo);
    memcpy(st->hi, hi, sizeof st->hi);
    st->valid = 1;
    if (n > st->peak) st->peak = n;
}

/* ---- output: runs of equal blocks, spills and read-backs of partial sums ------------------------ */
typedef struct {
    cs_i64 lo[5], hi[5];
    int valid;
    cs_i64 peak;
    cs_i64 blk[5], trips[5];   /* block extent and number of blocks per axis */
    unsigned char *visited;    /* per block: seen before */
    cs_i64 *runs;              /* per block: runs so far */
    cs_i64 runs_per_block;     /* how many runs every block has (from the loop nest) */
    cs_i64 cur;
    int out_bits;
} cs_out_state;

/* On-chip work on the current output block (no DMA, not counted): 0 = start from zero, 1 = narrow
   every partial sum to the output word (truncation) before its final write. */
static void cs_onchip(const cs_operand *op, const cs_i64 lo[5], const cs_i64 hi[5], int mode, int out_bits)
{
    cs_i64 i[5];
    for (i[0] = lo[0]; i[0] < hi[0]; i[0]++)
    for (i[1] = lo[1]; i[1] < hi[1]; i[1]++)
    for (i[2] = lo[2]; i[2] < hi[2]; i[2]++)
    for (i[3] = lo[3]; i[3] < hi[3]; i[3]++)
    for (i[4] = lo[4]; i[4] < hi[4]; i[4]++) {
        cs_i64 l = 0, m = 0;
        int a;
        for (a = 0; a < 5; a++) {
            l += (i[a] % op->ring[a]) * op->lstride[a];
            m += i[a] * op->mstride[a];
        }
        CS_CHECK(l >= 0 && l < op->loc->size);
        if (mode == 0) {
            cs_put(op->loc, l, 0);
#ifdef CONVSCHED_CHECK
            op->loc->tag[l] = (uint64_t)m + 1;
#endif
        } else {
            CS_CHECK(op->loc->tag[l] == (uint64_t)m + 1);
            cs_put(op->loc, l, cs_wrap(cs_get(op->loc, l), out_bits));
        }
        (void)m;
    }
}

/* End the current run: write the block back, as partial sums or, on its last run, as final outputs. */
static void cs_output_flush(const cs_operand *op, cs_array *psum, cs_array *out, cs_out_state *st)
{
    if (!st->valid) return;
    CS_CHECK(st->runs[st->cur] <= st->runs_per_block);
    if (st->runs[st->cur] == st->runs_per_block) {
        cs_onchip(op, st->lo, st->hi, 1, st->out_bits);
        cs_copy_box(op, 0, out, CS_FINAL_WRITE, st->lo, st->hi);
        cs_step_end(CS_FINAL_WRITE);
    } else {
        cs_copy_box(op, 0, psum, CS_PSUM_WRITE, st->lo, st->hi);
        cs_step_end(CS_PSUM_WRITE);
    }
    st->valid = 0;
}

static void cs_visit_output(const cs_operand *op, cs_array *psum, cs_array *out, cs_out_state *st,
                            const cs_i64 lo[5], const cs_i64 hi[5])
{
    cs_i64 id = 0, n = cs_box_words(lo, hi);
    int a;
    if (st->valid && cs_same(lo, st->lo) && cs_same(hi, st->hi)) return;
    cs_output_flush(op, psum, out, st);
    for (a = 0; a < 5; a++) id = id * st->trips[a] + lo[a] / st->blk[a];
    st->runs[id]++;
    if (st->visited[id]) {               /* a block seen before: read its partial sums back */
        cs_copy_box(op, 1, psum, CS_PSUM_READ, lo, hi);
        cs_step_end(CS_PSUM_READ);
    } else {
        cs_onchip(op, lo, hi, 0, st->out_bits);
    }
    st->visited[id] = 1;
    st->cur = id;
    memcpy(st->lo, lo, sizeof st->lo);
    memcpy(st->hi, hi, sizeof st->hi);
    st->valid = 1;
    if (n > st->peak) st->peak = n;
}

/* ---- deterministic data ------------------------------------------------------------------------ */
static uint64_t cs_mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* element i of stream s: uniform in [-r, r-1] */
static cs_i64 cs_random(uint64_t seed, uint64_t s, uint64_t i, cs_i64 r)
{
    return (cs_i64)(cs_mix(cs_mix(seed * 4 + s) + i) % (uint64_t)(2 * r)) - r;
}

static void *cs_alloc(cs_i64 n, int esize)
{
    void *p = malloc((size_t)(n > 0 ? n : 1) * (size_t)esize);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(4); }
    return p;
}
"""
