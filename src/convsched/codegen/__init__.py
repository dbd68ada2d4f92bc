"""Generated C code with explicit DMA copies, and the harness that compiles, runs and checks it.

`generate_c(schedule, arch)` returns a C99 program; `run_c(schedule, arch, seed)`
builds and runs it (release and checked/sanitized builds) and compares the
bytes it copies with the model and its output with a reference convolution.
See `emit.py` (data types, truncation) and `runtime.py` (the DMA routine and
how sliding blocks keep what they hold: ring addressing per axis).

`emit_kernel_files(schedule, arch, name)` returns a deployable kernel (`kernel.py`:
`conv_<name>()` calling the DMA interface of `dma_api.py`, double-buffered where the
architecture is); `run_kernels` proves kernels under a counting and a lazy DMA
(`kernel_check.py`, harness in `kernel_harness.py`).
"""

from .emit import KernelPlan, emit_program, generate_c, plan_kernel
from .harness import CodegenResult, find_compiler, run_c, run_cases
from .kernel import KernelSource, emit_kernel_files
from .kernel_check import KernelRun, run_kernels

__all__ = ["generate_c", "emit_program", "plan_kernel", "KernelPlan", "run_c", "run_cases",
           "CodegenResult", "find_compiler", "KernelSource", "emit_kernel_files", "KernelRun", "run_kernels"]
