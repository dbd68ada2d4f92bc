"""Peemen et al., "Inter-Tile Reuse Optimization Applied to Bandwidth Constrained
Embedded Accelerators", DATE 2015.

The ICCD 2013 model (see `peemen2013`) plus inter-tile reuse: when the
innermost tile loop that indexes the input is a spatial one (output rows or
columns), consecutive tiles overlap by the halo and only the new
``t*S`` rows (columns) of each next tile are loaded. The overlap is assumed
on every step of that loop, with full-size tiles; reuse across any other
loop, padding clipping and the rows a stride skips are not modelled.

Expressible convsched schedules: as for `peemen2013`.
"""

from .loopnest import LoopNestModel

MODEL = LoopNestModel(
    name="Peemen DATE'15",
    citation="M. Peemen et al., Inter-Tile Reuse Optimization Applied to Bandwidth Constrained "
             "Embedded Accelerators, DATE 2015",
    reuse=True, overlap=True, halo=True, psums="spill", level_rule="innermost",
)

