"""A cache-style reuse model after Wolf and Lam, "A Data Locality Optimizing
Algorithm", PLDI 1991 (reuse analysis of a tiled loop nest).

Assumptions: the on-chip memory is a cache holding the data footprint of the
loops inside one level (all three arrays at the same level); an array is
refetched once per iteration of the loops above that level that carry no
reuse for it (loops not indexing it and inside its innermost indexing loop
carry temporal reuse). The input footprint of ``t`` output rows is ``t*S``
rows (no halo: the sliding window's extra ``F-S`` rows are treated as
self-spatial reuse hits), padding is counted, tiles are full size, and each
output is counted once (accumulation is a hit, partial sums never leave).

Expressible convsched schedules: N/G outermost then any order of the core
loops, no FY/FX loop, all three buffers at one level.
"""

from .loopnest import LoopNestModel

MODEL = LoopNestModel(
    name="Wolf-Lam cache",
    citation="M. E. Wolf, M. S. Lam, A Data Locality Optimizing Algorithm, PLDI 1991",
    reuse=True, overlap=False, halo=False, psums="once", level_rule="shared",
)

