"""Zhang et al., "Optimizing FPGA-based Accelerator Design for Deep Convolutional
Neural Networks", FPGA 2015.

Assumptions of the model (its Section 3 roofline traffic): one fixed tiled loop
nest ``row, col, to, ti`` (output rows, output columns, output maps, input
maps; convsched ``OY OX K C``, batch and groups outermost), filters untiled.
Every iteration of the four tile loops loads a whole input tile of
``Tn x ((Tr-1)*S + K) x ((Tc-1)*S + K)`` words (halo included, padding
counted, nothing kept from the previous tile) and a whole weight tile of
``Tm x Tn x K x K`` words; each output tile ``Tm x Tr x Tc`` is written once
after the ``ti`` loop (no partial sums leave the chip). Trip counts are
``ceil(R/Tr)`` etc. with full-size edge tiles.

Expressible convsched schedules: order a subsequence of ``N G OY OX K C``
(no FY/FX loop), input and weight buffers at the innermost level (one tile),
the output buffer just below its innermost loop (above ``C``).
"""

from .loopnest import LoopNestModel

MODEL = LoopNestModel(
    name="Zhang FPGA'15",
    citation="C. Zhang et al., Optimizing FPGA-based Accelerator Design for Deep CNNs, FPGA 2015",
    reuse=False, overlap=False, halo=True, psums="writes", level_rule="zhang",
    fixed_order=("OY", "OX", "K", "C"),
)

