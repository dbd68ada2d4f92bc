"""The C runtime inside every generated kernel file: block bookkeeping and DMA issue, with no
libc (only stdint.h / stddef.h), all `static` so several kernels link into one firmware.

Buffers are ring-addressed per axis as in today's self-checking program (`runtime.py`): an
element of block coordinate `v` lives in slot `v % ring` of its axis, so the part of a block
that the previous block already held stays where it is and only the rest is copied.

Double buffering gives each operand two halves. At every visit of an input or weight buffer
the kernel looks one iteration ahead (the next values of the loops above the buffer), and when
that block differs it starts its copy into the other half: the part the current block shares
with it is copied on chip (not main-memory traffic), the rest by DMA. The next visit waits on
it, so the copy runs while the tiles of the current block compute. Output blocks alternate
halves: a block's write-back is started and waited for only when its half is needed again.
Completion is in start order (`convsched_dma.h`), so waiting on a block's last copy waits for
all of it.
"""

from .runtime import read_span_c

KERNEL_RUNTIME = r"""
typedef int32_t cs_int;

/* one operand's local buffer: 5 axes, ring-addressed, in one or two halves */
typedef struct {
    cs_int ring[5];            /* local extent per axis: slot = coordinate % ring */
    cs_int lstride[5];         /* local strides (elements) */
    cs_int mstride[5];         /* main-memory strides (elements) */
    const int32_t *pos[5];     /* rank -> main-memory row/column (input rows, columns); NULL = identity */
    const int32_t *run_end[5]; /* rank -> end of the arithmetic run of read rows it lies in */
    cs_int words;              /* elements of one half */
} cs_op;

/* the DMA channel and the current transfer step */
typedef struct {
    const convsched_dma_ops *ops;
    void *ctx;
    uint32_t step;
} cs_dma;

/* the last copy started for something (waiting on it waits for all copies before it) */
typedef struct {
    convsched_dma_handle h;
    int any;
} cs_pending;

/* what one copy moves: stream, bits counted per word, bytes per stored element */
typedef struct {
    uint8_t stream;
    uint8_t bits;
    uint8_t esize;
} cs_stream;

static void cs_wait(cs_dma *d, cs_pending *p)
{
    if (p->any) d->ops->wait(d->ctx, p->h);
    p->any = 0;
}

static void cs_start(cs_dma *d, void *dst, const void *src, cs_int row_elems, cs_int rows, cs_int dst_stride,
                     cs_int src_stride, const cs_stream *s, cs_pending *p)
{
    convsched_dma_rows r;
    convsched_dma_tag t;
    cs_int row = row_elems * s->esize;
    if (rows > 1 && dst_stride == row && src_stride == row) {   /* contiguous on both sides: 1-D */
        row *= rows;
        rows = 1;
    }
    r.rows = (size_t)rows;
    r.dst_stride = dst_stride;
    r.src_stride = src_stride;
    t.boundary = 0;
    t.stream = s->stream;
    t.bits = s->bits;
    t.reserved = 0;
    t.words = (uint32_t)(row / s->esize * rows);
    t.step = d->step;
    p->h = d->ops->start(d->ctx, dst, src, (size_t)row, &r, &t);
    p->any = 1;
}

/* A 4-D box (element strides ms in main memory, ls on chip) as 1-D/2-D copies: rows along the
   innermost axis where it is contiguous on both sides, else single elements along it. */
static void cs_issue(cs_dma *d, int to_local, char *mem, cs_int moff, char *loc, cs_int loff,
                     const cs_int shape[4], const cs_int ms[4], const cs_int ls[4], const cs_stream *s,
                     cs_pending *p)
{
    cs_int a, b, c, n2, row, rows, rm, rl, es = s->esize;
    int rowwise = ms[3] == 1 && ls[3] == 1;
    n2 = rowwise ? 1 : shape[2];
    row = rowwise ? shape[3] : 1;
    rows = rowwise ? shape[2] : shape[3];
    rm = rowwise ? ms[2] : ms[3];
    rl = rowwise ? ls[2] : ls[3];
    for (a = 0; a < shape[0]; a++)
        for (b = 0; b < shape[1]; b++)
            for (c = 0; c < n2; c++) {
                char *m = mem + (moff + a * ms[0] + b * ms[1] + c * ms[2]) * es;
                char *l = loc + (loff + a * ls[0] + b * ls[1] + c * ls[2]) * es;
                if (to_local)
                    cs_start(d, l, m, row, rows, rl * es, rm * es, s, p);
                else
                    cs_start(d, m, l, row, rows, rm * es, rl * es, s, p);
            }
}

/* The box lo..hi of block coordinates as 4-D boxes: axis 0 one coordinate at a time; axes 1..4
   split where the ring wraps and where runs of read rows end. */
static void cs_box_rec(cs_dma *d, const cs_op *op, int to_local, char *mem, char *loc, const cs_int lo[5],
                       const cs_int hi[5], int ax, cs_int moff, cs_int loff, cs_int shape[4], cs_int ms[4],
                       cs_int ls[4], const cs_stream *s, cs_pending *p)
{
    cs_int v, e, wrap, pos, step;
    if (ax == 5) {
        cs_issue(d, to_local, mem, moff, loc, loff, shape, ms, ls, s, p);
        return;
    }
    for (v = lo[ax]; v < hi[ax]; v = e) {
        e = ax == 0 ? v + 1 : hi[ax];
        wrap = v - v % op->ring[ax] + op->ring[ax];
        if (wrap < e) e = wrap;
        if (op->run_end[ax] && op->run_end[ax][v] < e) e = op->run_end[ax][v];
        pos = op->pos[ax] ? op->pos[ax][v] : v;
        step = (op->pos[ax] && e - v > 1) ? op->pos[ax][v + 1] - op->pos[ax][v] : 1;
        if (ax > 0) {
            shape[ax - 1] = e - v;
            ms[ax - 1] = step * op->mstride[ax];
            ls[ax - 1] = op->lstride[ax];
        }
        cs_box_rec(d, op, to_local, mem, loc, lo, hi, ax + 1, moff + pos * op->mstride[ax],
                   loff + (v % op->ring[ax]) * op->lstride[ax], shape, ms, ls, s, p);
    }
}

static void cs_box(cs_dma *d, const cs_op *op, int to_local, char *mem, char *loc, const cs_int lo[5],
                   const cs_int hi[5], const cs_stream *s, cs_pending *p)
{
    cs_int shape[4], ms[4], ls[4];
    cs_box_rec(d, op, to_local, mem, loc, lo, hi, 0, 0, 0, shape, ms, ls, s, p);
}

static int cs_same(const cs_int a[5], const cs_int b[5])
{
    int i;
    for (i = 0; i < 5; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static void cs_copy5(cs_int dst[5], const cs_int src[5])
{
    int i;
    for (i = 0; i < 5; i++) dst[i] = src[i];
}

static int cs_empty(const cs_int lo[5], const cs_int hi[5])
{
    int i;
    for (i = 0; i < 5; i++)
        if (hi[i] <= lo[i]) return 1;
    return 0;
}

/* Copy the elements of box lo..hi from one half to the other, on chip (same slots). */
static void cs_onchip_copy(const cs_op *op, char *to, const char *from, cs_int esize, const cs_int lo[5],
                           const cs_int hi[5])
{
    cs_int i[5], b;
    for (i[0] = lo[0]; i[0] < hi[0]; i[0]++)
    for (i[1] = lo[1]; i[1] < hi[1]; i[1]++)
    for (i[2] = lo[2]; i[2] < hi[2]; i[2]++)
    for (i[3] = lo[3]; i[3] < hi[3]; i[3]++)
    for (i[4] = lo[4]; i[4] < hi[4]; i[4]++) {
        cs_int l = 0;
        int a;
        for (a = 0; a < 5; a++) l += (i[a] % op->ring[a]) * op->lstride[a];
        for (b = 0; b < esize; b++) to[l * esize + b] = from[l * esize + b];
    }
}

/* ---- the loop nest: which dimension each loop tiles, by how much ------------------------------- */
typedef struct {
    int depth;
    const int *dim;         /* loop j tiles dimension dim[j] (index in N G K C OY OX FY FX) */
    const cs_int *tile;
    const cs_int *trips;
    cs_int size[8];         /* each dimension's extent */
} cs_nest;

/* ranges r[d] of every dimension under loop values it[0..upto) */
static void cs_ranges(const cs_nest *nest, const cs_int *it, int upto, cs_int r[8][2])
{
    int j, d;
    for (d = 0; d < 8; d++) {
        r[d][0] = 0;
        r[d][1] = nest->size[d];
    }
    for (j = 0; j < upto; j++) {
        d = nest->dim[j];
        r[d][0] = it[j] * nest->tile[j];
        r[d][1] = r[d][0] + nest->tile[j] < nest->size[d] ? r[d][0] + nest->tile[j] : nest->size[d];
    }
}

/* the loop values of the next iteration at level `upto` (0 when the nest is at its last) */
static int cs_next(const cs_nest *nest, const cs_int *it, int upto, cs_int *next)
{
    int j;
    for (j = 0; j < upto; j++) next[j] = it[j];
    for (j = upto - 1; j >= 0; j--) {
        if (++next[j] < nest->trips[j]) return 1;
        next[j] = 0;
    }
    return 0;
}

""" + read_span_c("cs_int") + r"""/* ---- input and weight blocks ------------------------------------------------------------------ */
typedef struct {
    cs_int lo[5], hi[5];       /* the block the tiles use */
    int valid, half;
    cs_int nlo[5], nhi[5];     /* the next block, being copied into the other half */
    int pending, nhalf;
    cs_pending xfer;
} cs_rd;

/* Move the block lo..hi into half `h`, from the block `st` holds now: the part they share is kept
   (same half) or copied on chip (other half); the rest is started by DMA (not waited). */
static void cs_fill(cs_dma *d, const cs_op *op, char *mem, char *loc, cs_int esize, cs_rd *st, int h,
                    const cs_int lo[5], const cs_int hi[5], const cs_stream *s, cs_pending *p)
{
    cs_int ilo[5], ihi[5], blo[5], bhi[5];
    int a, overlap = st->valid;
    char *dst = loc + (cs_int)h * op->words * esize;
    d->step++;
    for (a = 0; a < 5 && overlap; a++) {
        ilo[a] = lo[a] > st->lo[a] ? lo[a] : st->lo[a];
        ihi[a] = hi[a] < st->hi[a] ? hi[a] : st->hi[a];
        if (ilo[a] >= ihi[a]) overlap = 0;
    }
    if (!overlap) {
        cs_box(d, op, 1, mem, dst, lo, hi, s, p);
        return;
    }
    if (h != st->half) cs_onchip_copy(op, dst, loc + (cs_int)st->half * op->words * esize, esize, ilo, ihi);
    cs_copy5(blo, lo);
    cs_copy5(bhi, hi);
    for (a = 0; a < 5; a++) {
        if (lo[a] < ilo[a]) { blo[a] = lo[a]; bhi[a] = ilo[a]; cs_box(d, op, 1, mem, dst, blo, bhi, s, p); }
        if (ihi[a] < hi[a]) { blo[a] = ihi[a]; bhi[a] = hi[a]; cs_box(d, op, 1, mem, dst, blo, bhi, s, p); }
        blo[a] = ilo[a];
        bhi[a] = ihi[a];
    }
}

/* The visit of an input or weight buffer: make block lo..hi resident in st->half and, when double
   buffered, start the next iteration's block (nlo..nhi, if has_next) into the other half. A block
   wholly in the padding moves nothing and leaves the buffer as it was. */
static void cs_visit_read(cs_dma *d, const cs_op *op, char *mem, char *loc, cs_int esize, cs_rd *st, int dbuf,
                          const cs_int lo[5], const cs_int hi[5], int has_next, const cs_int nlo[5],
                          const cs_int nhi[5], const cs_stream *s)
{
    if (!cs_empty(lo, hi) && !(st->valid && cs_same(lo, st->lo) && cs_same(hi, st->hi))) {
        if (st->pending && cs_same(lo, st->nlo) && cs_same(hi, st->nhi)) {
            st->half = st->nhalf;
        } else {
            int h = dbuf && st->valid ? st->half ^ 1 : st->half;
            cs_fill(d, op, mem, loc, esize, st, h, lo, hi, s, &st->xfer);
            st->half = h;
        }
        cs_wait(d, &st->xfer);      /* the tiles below read this block now */
        st->pending = 0;
        cs_copy5(st->lo, lo);
        cs_copy5(st->hi, hi);
        st->valid = 1;
    }
    if (dbuf && has_next && st->valid && !st->pending && !cs_empty(nlo, nhi)
        && !(cs_same(nlo, st->lo) && cs_same(nhi, st->hi))) {
        st->nhalf = st->half ^ 1;
        cs_fill(d, op, mem, loc, esize, st, st->nhalf, nlo, nhi, s, &st->xfer);
        cs_copy5(st->nlo, nlo);
        cs_copy5(st->nhi, nhi);
        st->pending = 1;
    }
}

/* ---- output blocks ---------------------------------------------------------------------------- */
typedef struct {
    cs_int lo[5], hi[5];
    int valid, half, started, final;
    cs_pending wr[2];          /* the write-back of each half in flight */
} cs_wr;
"""
