"""Yang et al., "A Systematic Approach to Blocking Convolutional Neural Networks",
arXiv 1606.04209 (2016).

Assumptions of the model (one level of its multi-level blocking): any loop
order of the blocked loops (convsched ``K C OY OX``, batch and groups
outermost, filters untiled) and, per array, a free choice of the level its
buffer sits at (the whole array, or the block under any loop that indexes
it). An array is refetched once per iteration of the loops above its
buffer, except the loops that do not index it and sit inside its innermost
indexing loop. Blocks are full size, input blocks include the halo and
consecutive blocks share nothing; refetched output blocks are read back and
written (one data width).

Expressible convsched schedules: N/G outermost then any order of the core
loops, no FY/FX loop, each buffer at 0 or just below a loop its operand
depends on.
"""

from .loopnest import LoopNestModel

MODEL = LoopNestModel(
    name="Yang 2016",
    citation="X. Yang et al., A Systematic Approach to Blocking Convolutional Neural Networks, 2016",
    reuse=True, overlap=False, halo=True, psums="spill", level_rule="free", tile_limit=7,
)

