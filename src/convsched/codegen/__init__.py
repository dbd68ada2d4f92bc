"""Generated C code with explicit DMA copies, and the harness that compiles, runs and checks it.

`generate_c(schedule, arch)` returns a C99 program; `run_c(schedule, arch, seed)`
builds and runs it (release and checked/sanitized builds) and compares the
bytes it copies with the model and its output with a reference convolution.
See `emit.py` (data types, truncation) and `runtime.py` (the DMA routine and
how sliding blocks keep what they hold: ring addressing per axis).
"""

from .emit import KernelPlan, emit_program, generate_c, plan_kernel
from .harness import CodegenResult, find_compiler, run_c, run_cases

__all__ = ["generate_c", "emit_program", "plan_kernel", "KernelPlan", "run_c", "run_cases",
           "CodegenResult", "find_compiler"]
