"""The deployable kernel (`codegen -o DIR`): hand-picked schedules single- and double-buffered under the
counting and the lazy DMA, broken kernels the lazy DMA must catch, warning-free freestanding C, the
memcpy reference DMA, and the CLI (folder output, bad input, run-c's added keys)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from clihelp import one_line_error, run
from convsched.codegen.dma_api import DMA_HEADER, DMA_HEADER_NAME, DMA_REF_NAME
from convsched.codegen.harness import find_compiler, sanitizer_flags
from convsched.codegen.kernel import KernelSource, c_name, emit_kernel_files
from convsched.codegen.kernel_check import run_kernels, write_sources
from convsched.core.arch import Architecture
from convsched.core.errors import ConvschedError
from convsched.model.closed_form import evaluate
from convsched.model.simulate import reference_conv
from test_codegen import CASES

CC = shutil.which(os.environ.get("CC") or "cc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler ('cc' or $CC) on PATH")

#: every hand-picked case, single-buffered as given and double-buffered
KERNEL_CASES = {**{f"{n}/single": c for n, c in CASES.items()},
                **{f"{n}/double": (s, dataclasses.replace(a, double_buffer=True)) for n, (s, a) in CASES.items()}}


def _run(cases, kernels=None, sanitize=True):
    cc = find_compiler()
    return run_kernels(cases, [evaluate(s, a) for s, a in cases], cc, 11, sanitizer_flags(cc) if sanitize else (),
                       kernels=kernels)


@pytest.fixture(scope="module")
def kernel_runs():
    if CC is None:
        pytest.skip("no C compiler")
    names = list(KERNEL_CASES)
    return dict(zip(names, _run([KERNEL_CASES[n] for n in names])))


@needs_cc
@pytest.mark.parametrize("name", list(KERNEL_CASES))
def test_kernel_moves_the_models_bytes_and_computes_the_reference(kernel_runs, name):
    r = kernel_runs[name]
    s, a = KERNEL_CASES[name]
    assert r.problems == [], r.problems
    assert r.output_matches and r.lazy_dma_passed
    ev = evaluate(s, a).to_json()
    # measured per boundary, in evaluate's shape
    assert r.boundaries() == [{"level": "L1", "traffic": ev["traffic"],
                               "bytes": sum(evaluate(s, a).operand(op).bytes for op in ("input", "weight", "output"))}]


@needs_cc
def test_double_buffered_kernels_prefetch(kernel_runs):
    """Seen from the DMA: a double-buffered kernel starts copies while the next block's input or weight copy
    is in flight (the tiles of the current block run then); a single-buffered one never does."""
    for name, r in kernel_runs.items():
        if name.endswith("/single"):
            assert r.overlapped == 0, name
        else:
            assert r.overlapped > 0, name


@needs_cc
@pytest.mark.parametrize("name", ["spilled-psums/double", "3x3-stride2-padded/double"])
def test_double_buffered_kernel_declares_two_halves(name):
    s, a = KERNEL_CASES[name]
    ks = emit_kernel_files(s, a, "t")
    bw = evaluate(s, a).buffer_words
    found = {m.group(1): int(m.group(2)) for m in re.finditer(r"static \w+ cs_(in|w)_buf\[(\d+)\];", ks.source)}
    assert found == {"in": 2 * bw["input"], "w": 2 * bw["weight"]}
    assert "cs_out_buf[2];" in ks.source and f"int32_t p[{bw['output']}];" in ks.source
    assert ks.declared_words == {op: 2 * n for op, n in bw.items()}
    single = emit_kernel_files(s, dataclasses.replace(a, double_buffer=False), "t")
    assert single.declared_words == dict(bw) and "cs_out_buf[1];" in single.source


def _mutant(ks: KernelSource, old: str, new: str) -> KernelSource:
    assert old in ks.source
    return dataclasses.replace(ks, source=ks.source.replace(old, new))


#: mutation -> (text, replacement, whether a DMA that copies at once hides it)
MUTATIONS = {
    # the tiles read a block before its copy was waited for
    "compute-before-wait": ("cs_wait(d, &st->xfer);      /* the tiles below read this block now */", "", True),
    # an output half is cleared and reused while its write-back is in flight
    "reuse-before-write-back": ("cs_wait(d, &st->wr[h]);       /* this half's last write has left */", "", True),
    # the next block is prefetched into the half the tiles are reading (wrong even with instant copies)
    "prefetch-into-current-half": ("st->nhalf = st->half ^ 1;", "st->nhalf = st->half;", False),
}


@needs_cc
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_lazy_dma_catches_a_broken_kernel(mutation):
    """A kernel that relies on copies finishing at start: the lazy DMA fails it (the counting DMA, which
    copies at start, passes those whose bug only timing shows)."""
    name = "spilled-psums/double" if mutation != "reuse-before-write-back" else "spilled-psums/single"
    s, a = KERNEL_CASES[name]
    old, new, hidden = MUTATIONS[mutation]
    ks = _mutant(emit_kernel_files(s, a, "k0"), old, new)
    (r,) = _run([(s, a)], kernels=[ks], sanitize=False)
    assert r.output_matches is hidden, r.problems
    assert not r.lazy_dma_passed and any("lazy DMA" in p or "never waited" in p for p in r.problems), r.problems


@needs_cc
def test_unmutated_cases_of_the_mutation_test_pass(kernel_runs):
    for name in ("spilled-psums/double", "spilled-psums/single"):
        assert kernel_runs[name].lazy_dma_passed and kernel_runs[name].output_matches


@needs_cc
@pytest.mark.parametrize("name", ["3x3-stride2-padded/double", "gapped-rows/single", "granularity-4bit/double",
                                  "groups-edge-tiles-16bit/single"])
def test_kernel_is_warning_free_freestanding_c99(tmp_path, name):
    s, a = KERNEL_CASES[name]
    ks = emit_kernel_files(s, a, "k")
    write_sources(str(tmp_path), [ks], None)
    for opt in ("-O0", "-O2"):
        r = subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffreestanding", opt,
                            "-c", "k.c", "-o", "k.o"], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        nm = shutil.which("nm")
        if nm:   # nothing from libc: no undefined symbol at all
            assert subprocess.run([nm, "-u", "k.o"], cwd=tmp_path, capture_output=True, text=True).stdout == ""
    src = ks.source + ks.header + DMA_HEADER
    assert set(re.findall(r"#include <([^>]+)>", src)) <= {"stdint.h", "stddef.h"}
    assert "main(" not in ks.source


@needs_cc
def test_memcpy_reference_dma_runs_the_kernel(tmp_path):
    s, a = CASES["spilled-psums"]
    a = dataclasses.replace(a, double_buffer=True)
    ks = emit_kernel_files(s, a, "conv")
    write_sources(str(tmp_path), [ks], None)
    L = s.layer
    (tmp_path / "main.c").write_text("""
#include <stdio.h>
#include "conv.h"
static int8_t x[CONV_CONV_INPUT_WORDS], w[CONV_CONV_WEIGHT_WORDS], y[CONV_CONV_OUTPUT_WORDS];
int main(void)
{
    int i;
    for (i = 0; i < CONV_CONV_INPUT_WORDS; i++) x[i] = (int8_t)(i * 7 % 11 - 5);
    for (i = 0; i < CONV_CONV_WEIGHT_WORDS; i++) w[i] = (int8_t)(i * 5 % 13 - 6);
    if (conv_conv(x, w, y, &convsched_dma_memcpy, NULL) != 0) return 1;
    if (conv_conv(x, w, y, NULL, NULL) != -1) return 1;
    for (i = 0; i < CONV_CONV_OUTPUT_WORDS; i++) printf("%d\\n", y[i]);
    return 0;
}
""")
    exe = tmp_path / "m"
    r = subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-DCONV_CONV_SHIFT=2", "main.c", "conv.c",
                        DMA_REF_NAME, "-o", str(exe)], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    x = (np.arange(L.input_words) * 7 % 11 - 5).reshape(L.N, L.G, L.Cg, L.IY, L.IX).astype(np.float64)
    w = (np.arange(L.weight_words) * 5 % 13 - 6).reshape(L.G, L.Kg, L.Cg, L.FY, L.FX).astype(np.float64)
    acc = np.rint(reference_conv(L, x, w)).astype(np.int64).reshape(-1)
    assert got == np.clip(acc >> 2, -128, 127).tolist()      # the default hook: floor shift, saturate


def test_kernel_names_and_refusals():
    assert c_name("conv1.weight") == "conv1_weight" and c_name("3x3") == "l3x3" and c_name("--") == "layer"
    s, _ = CASES["resnet-3x3-64-8x8"]
    with pytest.raises(ConvschedError, match="do not fit"):
        emit_kernel_files(s, Architecture(capacity=1024), "k")
    fits = evaluate(s, Architecture()).buffer_bytes
    single = sum(fits.values())
    emit_kernel_files(s, Architecture(capacity=single), "k")
    with pytest.raises(ConvschedError, match="do not fit"):    # two halves need twice the room
        emit_kernel_files(s, Architecture(capacity=single, double_buffer=True), "k")


# ---- CLI ------------------------------------------------------------------------------------------
def _schedule(tmp_path: Path, name: str = "spilled-psums") -> Path:
    p = tmp_path / "my-layer.json"
    p.write_text(CASES[name][0].to_json())
    return p


@needs_cc
def test_cli_codegen_folder_writes_a_kernel_that_builds(tmp_path):
    sched = _schedule(tmp_path)
    out = tmp_path / "kern"
    r = run("codegen", sched, "-o", out)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(["my_layer.h", "my_layer.c", DMA_HEADER_NAME,
                                                            DMA_REF_NAME])
    assert "int conv_my_layer(const int8_t *input, const int8_t *weight, int8_t *output," in \
        (out / "my_layer.h").read_text()
    c = subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-c", "my_layer.c", DMA_REF_NAME],
                       cwd=out, capture_output=True, text=True)
    assert c.returncode == 0, c.stderr
    # an existing folder takes another kernel beside; --name names it
    r = run("codegen", sched, "-o", out, "--name", "Second", "--bits", "16", "--psum-bits", "16")
    assert r.returncode == 0, r.stderr
    h = (out / "second.h").read_text()
    assert "int conv_second(const int16_t *input, const int16_t *weight, int16_t *output," in h
    assert "raw 16-bit sums" in h
    assert not [p for p in out.iterdir() if p.name.startswith(".")]    # no temporary files left


def test_cli_codegen_c_file_is_todays_program(tmp_path):
    from convsched.codegen import generate_c
    sched = _schedule(tmp_path)
    r = run("codegen", sched, "-o", tmp_path / "conv.c")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "conv.c").read_text() == generate_c(CASES["spilled-psums"][0], Architecture())
    r = run("codegen", sched)
    assert r.stdout == generate_c(CASES["spilled-psums"][0], Architecture())
    (tmp_path / "existing.txt").write_text("old")          # an existing file keeps today's meaning
    assert run("codegen", sched, "-o", tmp_path / "existing.txt").returncode == 0
    assert "int main(" in (tmp_path / "existing.txt").read_text()
    one_line_error(run("codegen", sched, "-o", tmp_path / "k.c", "--name", "k"), "--name", "-o DIR")
    assert not (tmp_path / "k.c").exists()


def test_cli_codegen_folder_bad_input_is_one_line_and_writes_nothing(tmp_path):
    sched = _schedule(tmp_path, "resnet-3x3-64-8x8")
    arch = tmp_path / "arch.yaml"
    arch.write_text("buffer: 1KiB\n")
    one_line_error(run("codegen", sched, "--arch", arch, "-o", tmp_path / "k"), "do not fit")
    assert not (tmp_path / "k").exists()
    one_line_error(run("codegen", sched, "-o", tmp_path / "no" / "k"), "does not exist")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        one_line_error(run("codegen", sched, "-o", locked), "not writable")
        one_line_error(run("codegen", sched, "-o", locked / "k"), "not writable")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)
    existing = tmp_path / "kk"
    existing.mkdir()
    (existing / f"{c_name(sched.stem)}.h").mkdir()         # a name taken by a folder: refused, nothing written
    one_line_error(run("codegen", sched, "-o", existing), "not a regular file")
    assert [p.name for p in existing.iterdir()] == [f"{c_name(sched.stem)}.h"]


@needs_cc
def test_cli_run_c_adds_boundaries_and_lazy_dma(tmp_path):
    sched = _schedule(tmp_path)
    arch = tmp_path / "db.yaml"
    arch.write_text("double_buffer: true\n")
    r = run("run-c", sched, "--arch", arch, "--json", "-")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    ev = json.loads(run("evaluate", sched, "--arch", arch, "--json", "-").stdout)
    assert obj["boundaries"] == ev["boundaries"]
    assert obj["lazy_dma_passed"] is True and obj["passed"] is True and obj["output_matches"] is True
    assert obj["measured"] == obj["predicted"] == ev["traffic"]
    table = run("run-c", sched, "--arch", arch)
    assert table.returncode == 0 and "bit-exact under the lazy DMA" in table.stdout
