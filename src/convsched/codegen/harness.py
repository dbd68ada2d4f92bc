"""Compile the generated C, run it on seeded random data, and check it against the model.

Each program is built twice: a release build (`-O2 -Wall -Werror`) and a
debug build (`-DCONVSCHED_CHECK`: every local-buffer index is bounds-checked
and every slot's tag is checked, so reading an element the block does not hold
fails) under `-fsanitize=address,undefined` when the compiler supports it.
Both must run cleanly and report the same counts. Then the deployable kernel of
each schedule (`kernel.py`) is built with its proof harness (`kernel_check.py`) and run
under a counting and a lazy DMA: its bytes per boundary must equal the model's and
its output the reference. Temporary files are always removed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

from ..core.arch import OPERANDS, Architecture
from ..core.errors import ConvschedError
from ..core.limits import check_seed
from ..core.schedule import Schedule
from ..model.closed_form import Traffic, evaluate
from .emit import KernelPlan, emit_program
from .kernel_check import KernelRun, compile_c, run_kernels
from .reference import output_hash

BASE_FLAGS = ["-std=c99", "-Wall", "-Werror"]
RELEASE_FLAGS = ["-O2"]
DEBUG_FLAGS = ["-g", "-DCONVSCHED_CHECK"]
#: below this many MACs in a program the checked build uses -O0 (compiles fast), else -O1 (runs fast)
SMALL_MACS = 2_000_000
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
#: above this many MACs the numpy cross-check of the output is skipped (the C reference still runs)
NUMPY_MAX_MACS = 300_000_000
#: leaks are not overruns; LeakSanitizer also fails under some debuggers/containers
SANITIZER_ENV = {"ASAN_OPTIONS": "detect_leaks=0", "UBSAN_OPTIONS": "print_stacktrace=1"}
COUNTERS = ("input_read", "weight_read", "psum_read", "psum_write", "final_write")


@dataclass
class CodegenResult:
    """Predicted (model) and measured (generated code) traffic of one schedule."""

    schedule: Schedule
    arch: Architecture
    predicted: Traffic
    words: dict[str, int]          # per counter
    bytes: dict[str, int]          # per counter
    peak: dict[str, int]           # largest block per operand, words
    buffer_words: dict[str, int]   # declared local buffer sizes
    mismatches: int
    first_mismatch: int
    sanitized: bool                # the debug run also ran under ASan/UBSan
    numpy_check: bool | None       # output hash equals a numpy reference (None: skipped)
    problems: list[str] = field(default_factory=list)
    kernel: KernelRun | None = None    # the deployable kernel under the counting and lazy DMA

    # measured, in the model's shape ---------------------------------------------
    def measured_words(self) -> dict[str, dict[str, int]]:
        w = self.words
        return {"input": {"read": w["input_read"], "write": 0},
                "weight": {"read": w["weight_read"], "write": 0},
                "output": {"read": w["psum_read"], "write": w["psum_write"] + w["final_write"]}}

    def measured_bytes(self) -> dict[str, dict[str, int]]:
        b = self.bytes
        return {"input": {"read": b["input_read"], "write": 0},
                "weight": {"read": b["weight_read"], "write": 0},
                "output": {"read": b["psum_read"], "write": b["psum_write"] + b["final_write"]}}

    def predicted_words(self) -> dict[str, dict[str, int]]:
        return {op: {"read": self.predicted.operand(op).read, "write": self.predicted.operand(op).write}
                for op in OPERANDS}

    def predicted_bytes(self) -> dict[str, dict[str, int]]:
        return {op: {"read": self.predicted.operand(op).read_bytes, "write": self.predicted.operand(op).write_bytes}
                for op in OPERANDS}

    @property
    def output_matches(self) -> bool:
        return (self.mismatches == 0 and self.numpy_check is not False
                and (self.kernel is None or self.kernel.output_matches))

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "predicted": self.predicted_words(),
            "measured": self.measured_words(),
            "predicted_bytes": self.predicted_bytes(),
            "measured_bytes": self.measured_bytes(),
            "buffer_words": {"model": dict(self.predicted.buffer_words), "declared": dict(self.buffer_words),
                             "peak_block": dict(self.peak)},
            "output_matches": self.output_matches,
            "numpy_reference_matches": self.numpy_check,
            "sanitized": self.sanitized,
            "problems": list(self.problems),
            "passed": self.passed,
            **self.kernel_json(),
        }

    def kernel_json(self) -> dict[str, Any]:
        """`boundaries` (measured through the kernel's counting DMA, as `evaluate --json` gives them) and
        `lazy_dma_passed`; nothing when the kernel was not run."""
        if self.kernel is None:
            return {}
        return {"boundaries": self.kernel.boundaries(), "lazy_dma_passed": self.kernel.lazy_dma_passed}


def find_compiler() -> str:
    """The system C compiler: $CC if set, else `cc`; a clear error when there is none."""
    name = os.environ.get("CC") or "cc"
    path = shutil.which(name)
    if path is None:
        raise ConvschedError(f"no C compiler found ({name!r} is not on PATH); install gcc or clang, or set CC")
    return path


@lru_cache(maxsize=8)
def sanitizer_flags(cc: str) -> tuple[str, ...]:
    """ASan+UBSan flags if `cc` can build and run a sanitized program, else ()."""
    with tempfile.TemporaryDirectory(prefix="convsched-probe-") as tmp:
        src = os.path.join(tmp, "probe.c")
        exe = os.path.join(tmp, "probe")
        with open(src, "w") as f:
            f.write("int main(void) { return 0; }\n")
        try:
            r = subprocess.run([cc, *SANITIZE_FLAGS, src, "-o", exe], capture_output=True, timeout=60)
            if r.returncode != 0:
                return ()
            r = subprocess.run([exe], capture_output=True, timeout=60, env={**os.environ, **SANITIZER_ENV})
            return tuple(SANITIZE_FLAGS) if r.returncode == 0 else ()
        except (OSError, subprocess.SubprocessError):
            return ()


def _run(exe: str, seed: int, what: str, timeout: float) -> list[dict[str, Any]]:
    try:
        r = subprocess.run([exe, str(seed)], capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, **SANITIZER_ENV})
    except subprocess.TimeoutExpired:
        raise ConvschedError(f"the {what} program ran longer than {timeout:.0f} s; use a smaller layer") from None
    if r.returncode != 0:
        msg = next((ln.strip() for ln in r.stderr.splitlines() if ln.strip() and ("ERROR" in ln or "check failed" in ln
                    or "runtime error" in ln)), None) or (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[0]
        raise _RunFailure(f"{what} run failed (exit status {r.returncode}): {msg}")
    return [json.loads(ln) for ln in r.stdout.splitlines() if ln.startswith("{")]


class _RunFailure(Exception):
    pass


def run_cases(cases: Sequence[tuple[Schedule, Architecture]], seed: int = 0, *,
              debug: bool = True, sanitize: bool = True, timeout: float = 600.0,
              kernel: bool = True) -> list[CodegenResult]:
    """Generate one program for all cases, build and run it, and check every case; with `kernel`,
    also build and prove each case's deployable kernel (its problems join the case's).

    Bad input (buffers over capacity, no compiler, compile errors) raises
    ConvschedError; a failing run or a mismatch is reported in the results.
    """
    check_seed(seed)
    source, plans = emit_program(cases)
    cc = find_compiler()
    predicted = [evaluate(s, a) for s, a in cases]
    with tempfile.TemporaryDirectory(prefix="convsched-c-") as tmp:
        src = os.path.join(tmp, "conv.c")
        with open(src, "w") as f:
            f.write(source)
        rel = os.path.join(tmp, "conv")
        compile_c(cc, [src], rel, [*BASE_FLAGS, *RELEASE_FLAGS], subject="the generated C code")
        failures: list[str] = []
        try:
            release = _run(rel, seed, "release", timeout)
        except _RunFailure as e:
            release, failures = [], [str(e)]
        debug_lines: list[dict[str, Any]] | None = None
        san: tuple[str, ...] = ()
        if debug:
            san = sanitizer_flags(cc) if sanitize else ()
            dbg = os.path.join(tmp, "conv-check")
            opt = "-O0" if sum(s.layer.macs for s, _ in cases) < SMALL_MACS else "-O1"
            compile_c(cc, [src], dbg, [*BASE_FLAGS, opt, *DEBUG_FLAGS, *san], subject="the generated C code")
            try:
                debug_lines = _run(dbg, seed, "checked" + (" (ASan/UBSan)" if san else ""), timeout)
            except _RunFailure as e:
                failures.append(str(e))
    results = [_check(plan, pred, release, debug_lines, failures, k, bool(san), seed)
               for k, (plan, pred) in enumerate(zip(plans, predicted))]
    if kernel:
        runs = run_kernels(cases, predicted, cc, seed, sanitizer_flags(cc) if sanitize else (), timeout)
        for res, run in zip(results, runs):
            res.kernel = run
            res.problems.extend(run.problems)
    return results


def _check(plan: KernelPlan, pred: Traffic, release: list[dict[str, Any]], debug: list[dict[str, Any]] | None,
           failures: list[str], k: int, sanitized: bool, seed: int) -> CodegenResult:
    line = next((d for d in release if d.get("kernel") == k), None)
    problems = list(failures)
    if line is None:
        if not problems:
            problems.append("the program printed no result for this schedule")
        line = {"words": [0] * 5, "bytes": [0] * 5, "peak": [0] * 3, "mismatches": -1, "first_mismatch": -1}
    res = CodegenResult(plan.schedule, plan.arch, pred, dict(zip(COUNTERS, line["words"])),
                        dict(zip(COUNTERS, line["bytes"])), dict(zip(OPERANDS, line["peak"])),
                        plan.buffer_words, line["mismatches"], line["first_mismatch"], sanitized, None, problems)
    if "y_hash" in line and plan.schedule.layer.macs <= NUMPY_MAX_MACS:
        res.numpy_check = line["y_hash"] == output_hash(plan, seed)
        if not res.numpy_check:
            problems.append("the output differs from a numpy reference convolution of the same data")
    if debug is not None:
        dline = next((d for d in debug if d.get("kernel") == k), None)
        if dline is not None and dline != line and not failures:
            problems.append("the checked build reports different counts or outputs than the release build")
    if res.mismatches != 0 and line["mismatches"] != -1:
        problems.append(f"{res.mismatches} output element(s) differ from the reference (first at index {res.first_mismatch})")
    if res.measured_words() != res.predicted_words():
        problems.append("measured words differ from the model")
    if res.measured_bytes() != res.predicted_bytes():
        problems.append("measured bytes differ from the model")
    if res.buffer_words != dict(pred.buffer_words):
        problems.append(f"declared buffers {res.buffer_words} differ from the model's {dict(pred.buffer_words)}")
    if line["mismatches"] != -1 and res.peak != dict(pred.buffer_words):
        problems.append(f"largest blocks {res.peak} differ from the model's buffer sizes {dict(pred.buffer_words)}")
    return res


def run_c(schedule: Schedule, arch: Architecture | None = None, seed: int = 0, **kw: Any) -> CodegenResult:
    """Generate, compile and run one schedule; see `run_cases`."""
    return run_cases([(schedule, arch or Architecture())], seed, **kw)[0]
