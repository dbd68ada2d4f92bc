"""Build the generated kernels with the proof harness, run them under the counting and the lazy
DMA, and compare with the model: bytes per boundary and operand, output bit for bit.

All kernels of one call are linked into one program (one compile), with
`-std=c99 -Wall -Wextra -Werror` and, when the compiler supports them, ASan and UBSan.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..core.arch import OPERANDS, Architecture
from ..core.errors import ConvschedError
from ..core.schedule import Schedule
from ..model.closed_form import Traffic
from .dma_api import DMA_HEADER, DMA_HEADER_NAME, DMA_REF, DMA_REF_NAME, STREAMS
from .kernel import L1, KernelSource, emit_kernel_files
from .kernel_harness import MAX_BOUNDARIES, HarnessKernel, emit_harness

KERNEL_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]
SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=0", "UBSAN_OPTIONS": "print_stacktrace=1"}


@dataclass
class KernelRun:
    """What the harness measured for one kernel (the counting DMA's boundaries, the lazy DMA's outcome)."""

    kernel: KernelSource
    words: list[dict[str, int]]      # per boundary, per stream
    bytes: list[dict[str, int]]
    output_matches: bool
    lazy_dma_passed: bool
    problems: list[str] = field(default_factory=list)
    overlapped: int = 0              # copies started while an input/weight copy of another block was in flight

    def boundary_traffic(self, b: int = 0) -> dict[str, dict[str, int]]:
        """Words per operand across boundary b, in the model's shape (read/write)."""
        return _by_operand(self.words[b])

    def boundary_bytes(self, b: int = 0) -> dict[str, dict[str, int]]:
        return _by_operand(self.bytes[b])

    def boundaries(self) -> list[dict[str, Any]]:
        """Measured per boundary, as `evaluate --json` gives them."""
        out = []
        for b, level in enumerate([L1]):
            tb = self.boundary_bytes(b)
            out.append({"level": level, "traffic": self.boundary_traffic(b),
                        "bytes": sum(v for per in tb.values() for v in per.values())})
        return out


def _by_operand(per_stream: dict[str, int]) -> dict[str, dict[str, int]]:
    return {"input": {"read": per_stream["input_read"], "write": 0},
            "weight": {"read": per_stream["weight_read"], "write": 0},
            "output": {"read": per_stream["psum_read"], "write": per_stream["psum_write"] + per_stream["final_write"]}}


def kernel_names(n: int) -> list[str]:
    return [f"k{k}" for k in range(n)]


def write_sources(folder: str, kernels: Sequence[KernelSource], harness: str | None) -> list[str]:
    """Write the DMA header, its reference implementation, every kernel and the harness; the .c files."""
    files = {DMA_HEADER_NAME: DMA_HEADER, DMA_REF_NAME: DMA_REF}
    for ks in kernels:
        files[f"{ks.name}.h"] = ks.header
        files[f"{ks.name}.c"] = ks.source
    if harness is not None:
        files["harness.c"] = harness
    for name, text in files.items():
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
    return [os.path.join(folder, n) for n in files if n.endswith(".c")]


def compile_c(cc: str, sources: Sequence[str], out: str, flags: Sequence[str], cwd: str | None = None,
              subject: str = "the generated kernel") -> None:
    """Build `sources` into `out` with the C compiler `cc` and exactly `flags`; a hang or a compile
    error is one ConvschedError naming `subject`, the flags and the first error line."""
    try:
        r = subprocess.run([cc, *flags, *sources, "-o", out], capture_output=True, text=True, timeout=300, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise ConvschedError(f"the C compiler {cc} took more than 300 s on {subject}") from None
    except OSError as e:
        raise ConvschedError(f"could not run the C compiler {cc}: {e.strerror}") from None
    if r.returncode != 0:
        lines = [ln for ln in (r.stderr + r.stdout).splitlines() if "error" in ln] or r.stderr.splitlines() or ["?"]
        raise ConvschedError(f"{subject} does not compile with {os.path.basename(cc)} "
                             f"{' '.join(flags)}: {lines[0].strip()}")


def run_kernels(cases: Sequence[tuple[Schedule, Architecture]], predicted: Sequence[Traffic], cc: str,
                seed: int, sanitize_flags: Sequence[str], timeout: float = 600.0,
                kernels: Sequence[KernelSource] | None = None) -> list[KernelRun]:
    """Emit (or take) one kernel per case, build them with the harness, run, and check each against the model."""
    if kernels is None:
        kernels = [emit_kernel_files(s, a, name) for (s, a), name in zip(cases, kernel_names(len(cases)))]
    hks = [HarnessKernel(ks, a, k % 3) for k, (ks, (_, a)) in enumerate(zip(kernels, cases))]
    flags = ["-O1" if sum(s.layer.macs for s, _ in cases) >= 2_000_000 else "-O0", "-g", *sanitize_flags,
             *(f"-D{hk.kernel.macro}_SHIFT={hk.shift}" for hk in hks)]
    with tempfile.TemporaryDirectory(prefix="convsched-kernel-") as tmp:
        sources = write_sources(tmp, kernels, emit_harness(hks))
        exe = os.path.join(tmp, "harness")
        compile_c(cc, sources, exe, [*KERNEL_FLAGS, *flags], tmp)
        failure = None
        lines: list[dict[str, Any]] = []
        try:
            r = subprocess.run([exe, str(seed)], capture_output=True, text=True, timeout=timeout,
                               env={**os.environ, **SANITIZER_ENV})
            lines = [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]
            if r.returncode != 0:
                msg = next((ln.strip() for ln in r.stderr.splitlines() if "ERROR" in ln or "runtime error" in ln),
                           None) or (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[0]
                failure = f"kernel harness failed (exit status {r.returncode}): {msg}"
        except subprocess.TimeoutExpired:
            raise ConvschedError(f"the kernel harness ran longer than {timeout:.0f} s; use a smaller layer") from None
    return [_check(ks, pred, next((d for d in lines if d.get("kernel") == k), None), failure)
            for k, (ks, pred) in enumerate(zip(kernels, predicted))]


def _check(ks: KernelSource, pred: Traffic, line: dict[str, Any] | None, failure: str | None) -> KernelRun:
    problems = [failure] if failure else []
    if line is None:
        problems = problems or ["the kernel harness printed no result for this kernel"]
        zero = [dict.fromkeys(STREAMS, 0) for _ in range(MAX_BOUNDARIES)]
        return KernelRun(ks, zero, zero, False, False, problems)
    n = len(STREAMS)
    words = [dict(zip(STREAMS, line["words"][b * n:(b + 1) * n])) for b in range(MAX_BOUNDARIES)]
    byts = [dict(zip(STREAMS, line["bytes"][b * n:(b + 1) * n])) for b in range(MAX_BOUNDARIES)]
    run = KernelRun(ks, words, byts, line["mismatches"] == 0 and line["ret"][0] == 0,
                    line["lazy_mismatches"] == 0 and line["lazy_bad"] == 0 and line["lazy_unwaited"] == 0
                    and line["ret"][1] == 0, problems, line["overlapped"])
    if line["ret"] != [0, 0]:
        problems.append(f"the kernel returned {line['ret']}")
    if line["count_bad"]:
        problems.append(f"{line['count_bad']} malformed DMA call(s) under the counting DMA")
    if line["mismatches"]:
        problems.append(f"kernel: {line['mismatches']} output element(s) differ from the reference "
                        f"(first at index {line['first_mismatch']}) under the counting DMA")
    if line["lazy_mismatches"]:
        problems.append(f"kernel: {line['lazy_mismatches']} output element(s) differ from the reference under "
                        "the lazy DMA (a block used before its wait, or a buffer reused too early)")
    if line["lazy_bad"]:
        problems.append(f"kernel: {line['lazy_bad']} wait(s) on a handle never started")
    if line["lazy_unwaited"]:
        problems.append(f"kernel: {line['lazy_unwaited']} copy(ies) never waited for")
    model_words = {op: {"read": pred.operand(op).read, "write": pred.operand(op).write} for op in OPERANDS}
    model_bytes = {op: {"read": pred.operand(op).read_bytes, "write": pred.operand(op).write_bytes} for op in OPERANDS}
    if run.boundary_traffic(0) != model_words:
        problems.append("kernel: words through the DMA differ from the model")
    if run.boundary_bytes(0) != model_bytes:
        problems.append("kernel: bytes through the DMA differ from the model")
    if any(any(v for v in w.values()) for w in words[1:]):
        problems.append("kernel: copies tagged with a boundary a single-level kernel does not have")
    return run
