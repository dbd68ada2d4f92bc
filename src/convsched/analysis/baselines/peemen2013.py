"""Peemen et al., "Memory-Centric Accelerator Design for Convolutional Neural
Networks", ICCD 2013.

Assumptions of the model: any order of the four tile loops over output maps,
input maps, output rows and columns (convsched ``K C OY OX``; batch and
groups outermost; filters untiled). Each array's local buffer holds the tile
footprint of the loops inside its innermost indexing tile loop; the array is
refetched once per iteration of the tile loops outside that loop (tile loops
inside it that do not index the array reuse the buffer: loop-order-aware
data reuse). Input tiles include the halo, nothing is shared between
consecutive tiles, padding is counted. Output tiles that are refetched are
read back and written again (one data width for everything).

Expressible convsched schedules: N/G outermost then any order of the core
loops, no FY/FX loop, each buffer just below its operand's innermost loop.
"""

from .loopnest import LoopNestModel

MODEL = LoopNestModel(
    name="Peemen ICCD'13",
    citation="M. Peemen et al., Memory-Centric Accelerator Design for CNNs, ICCD 2013",
    reuse=True, overlap=False, halo=True, psums="spill", level_rule="innermost",
)

