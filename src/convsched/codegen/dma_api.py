"""The DMA interface a generated kernel calls (`convsched_dma.h`) and its portable memcpy
reference implementation (`convsched_dma_ref.c`), written beside every kernel.

The kernel never touches main memory itself: every byte between main memory and
its on-chip buffers goes through `dma->start` (a 1-D copy, or 2-D: rows of equal
length at a byte stride on each side) and is used only after `dma->wait` on the
returned handle (or a later one: completion is in start order). Each transfer
carries a tag saying which boundary it crosses, which operand stream it belongs
to, its words and the bits the model counts per word, and its step, so a
counting implementation can reproduce the model's byte counts exactly.
"""

from __future__ import annotations

DMA_HEADER_NAME = "convsched_dma.h"
DMA_REF_NAME = "convsched_dma_ref.c"

#: Stream numbers as `convsched_dma.h` names them, in counter order (the model's five counters).
STREAMS = ("input_read", "weight_read", "psum_read", "psum_write", "final_write")

DMA_HEADER = r"""/* convsched_dma.h: the DMA interface of convsched-generated kernels.

   A kernel moves data between main memory and its on-chip buffers only through
   these two calls:

     h = ops->start(ctx, dst, src, bytes, rows, tag);   start a copy
     ops->wait(ctx, h);                                  wait for it

   A copy is 1-D (rows->rows == 1: `bytes` contiguous bytes) or 2-D (rows->rows
   rows of `bytes` bytes each; row i starts at dst + i * rows->dst_stride and
   src + i * rows->src_stride). Contract:
   - start may return before the copy is done; the kernel reads `dst` and reuses
     `src` only after waiting on that handle or a later one;
   - wait(ctx, h) returns once copy h and every copy started before it are
     complete (in-order completion; a driver with several channels waits for
     all handles up to h);
   - handles are increasing 32-bit numbers chosen by the implementation;
   - the kernel waits on every copy it starts before it returns.
   The tag is for instrumentation (a counting DMA) and may be ignored. */
#ifndef CONVSCHED_DMA_H
#define CONVSCHED_DMA_H

#include <stddef.h>
#include <stdint.h>

typedef uint32_t convsched_dma_handle;

/* the stream a copy belongs to (the model's five counters) */
enum {
    CONVSCHED_DMA_INPUT_READ = 0,   /* input block rows into the chip */
    CONVSCHED_DMA_WEIGHT_READ = 1,  /* weights into the chip */
    CONVSCHED_DMA_PSUM_READ = 2,    /* partial sums read back */
    CONVSCHED_DMA_PSUM_WRITE = 3,   /* partial sums spilled */
    CONVSCHED_DMA_FINAL_WRITE = 4,  /* final outputs written */
    CONVSCHED_DMA_STREAMS = 5
};

typedef struct {
    size_t rows;           /* 1: a 1-D copy; more: a 2-D copy of `rows` rows */
    ptrdiff_t dst_stride;  /* bytes from one row's start to the next's, destination */
    ptrdiff_t src_stride;  /* the same at the source */
} convsched_dma_rows;

typedef struct {
    uint8_t boundary;      /* 0: main memory <-> L1 (boundaries numbered outermost first) */
    uint8_t stream;        /* CONVSCHED_DMA_INPUT_READ ... */
    uint8_t bits;          /* bits per word as the model counts it (storage may be wider) */
    uint8_t reserved;
    uint32_t words;        /* words this copy moves */
    uint32_t step;         /* copies of one block move share a step (the model's DMA granularity) */
} convsched_dma_tag;

typedef struct convsched_dma_ops {
    convsched_dma_handle (*start)(void *ctx, void *dst, const void *src, size_t bytes,
                                  const convsched_dma_rows *rows, const convsched_dma_tag *tag);
    void (*wait)(void *ctx, convsched_dma_handle handle);
} convsched_dma_ops;

/* the portable reference implementation (convsched_dma_ref.c): memcpy at start, wait is a no-op */
extern const convsched_dma_ops convsched_dma_memcpy;

#endif /* CONVSCHED_DMA_H */
"""

DMA_REF = r"""/* convsched_dma_ref.c: the portable reference DMA for convsched kernels (see convsched_dma.h).
   Every copy is done at once with memcpy; wait has nothing to wait for. Pass
   &convsched_dma_memcpy and a NULL context to a kernel. */
#include <string.h>

#include "convsched_dma.h"

static convsched_dma_handle convsched_memcpy_start(void *ctx, void *dst, const void *src, size_t bytes,
                                                   const convsched_dma_rows *rows,
                                                   const convsched_dma_tag *tag)
{
    static convsched_dma_handle next;
    size_t i;
    (void)ctx;
    (void)tag;
    for (i = 0; i < rows->rows; i++)
        memcpy((char *)dst + (ptrdiff_t)i * rows->dst_stride, (const char *)src + (ptrdiff_t)i * rows->src_stride,
               bytes);
    return next++;
}

static void convsched_memcpy_wait(void *ctx, convsched_dma_handle handle)
{
    (void)ctx;
    (void)handle;
}

const convsched_dma_ops convsched_dma_memcpy = {convsched_memcpy_start, convsched_memcpy_wait};
"""
