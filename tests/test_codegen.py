"""Generated C code: hand-picked schedules compiled and run, buffer sizes in the source, and the CLI.

All hand-picked schedules go into one C program (one release and one checked
build) to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convsched.core.arch import Architecture
from convsched.codegen import generate_c, plan_kernel, run_cases
from convsched.codegen.emit import arithmetic_runs, read_rows
from convsched.core.errors import ConvschedError
from convsched.core.layer import Layer
from convsched.model.closed_form import evaluate
from convsched.core.schedule import Schedule

HAVE_CC = shutil.which(os.environ.get("CC") or "cc") is not None
needs_cc = pytest.mark.skipif(not HAVE_CC, reason="no C compiler ('cc' or $CC) on PATH")

A8 = Architecture()


def S(layer: dict, order, tiles, buffers) -> Schedule:
    return Schedule(Layer(**layer), tuple(order), tiles, dict(zip(("input", "weight", "output"), buffers)))


CASES: dict[str, tuple[Schedule, Architecture]] = {
    # a 1x1 stride-2 layer fetches a quarter of its input (every other row and column)
    "1x1-stride2": (S(dict(K=4, C=4, OY=4, OX=4, SY=2, SX=2), ["K", "OY", "OX"], {"K": 2, "OY": 2, "OX": 3},
                      (1, 1, 3)), A8),
    "3x3-stride2-padded": (S(dict(K=8, C=4, OY=4, OX=5, FY=3, FX=3, SY=2, SX=2, PY=1, PX=1),
                             ["OY", "K", "OX", "C"], {"OY": 3, "K": 3, "OX": 2, "C": 3}, (1, 2, 3)), A8),
    "depthwise": (S(dict(K=8, C=8, G=8, OY=6, OX=6, FY=3, FX=3, PY=1, PX=1), ["G", "OY", "OX"],
                    {"G": 3, "OY": 4, "OX": 4}, (3, 1, 3)), A8),
    # C outside K and the output buffer below C: partial sums are spilled and read back
    "spilled-psums": (S(dict(K=6, C=6, OY=5, OX=5, FY=3, FX=3, PY=1, PX=1), ["C", "K", "OY"],
                        {"C": 2, "K": 3, "OY": 2}, (3, 3, 3)), A8),
    # ResNet's 3x3 64-channel layer shrunk to 8x8
    "resnet-3x3-64-8x8": (S(dict(K=64, C=64, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1), ["K", "OY", "C", "OX"],
                            {"K": 16, "OY": 4, "C": 32, "OX": 8}, (2, 1, 4)), A8),
    # tiled filter loops; FY outside OY makes the input rows slide with the filter tap
    "filter-loops": (S(dict(K=4, C=3, OY=6, OX=5, FY=3, FX=2, DY=2, PY=2), ["FY", "OY", "FX", "K"],
                       {"FY": 1, "OY": 2, "FX": 1, "K": 3}, (2, 1, 4)), A8),
    # stride > filter extent: read rows 0,1,3,4,... (not contiguous, not one arithmetic run)
    "gapped-rows": (S(dict(K=3, C=2, OY=5, OX=4, FY=2, FX=1, SY=3, SX=2), ["OY", "OX"], {"OY": 2, "OX": 3},
                      (2, 0, 2)), A8),
    "groups-edge-tiles-16bit": (S(dict(K=6, C=9, G=3, N=2, OY=5, OX=7, FY=2, FX=3, SX=2, PX=1),
                                  ["N", "K", "G", "OX", "C"], {"N": 1, "K": 1, "G": 2, "OX": 3, "C": 2}, (4, 3, 5)),
                                Architecture.from_flags(16)),
    "granularity-4bit": (S(dict(K=4, C=3, OY=5, OX=5, FY=3, FX=3, PY=1, PX=1), ["OX", "C", "K", "OY"],
                           {"OX": 2, "C": 2, "K": 3, "OY": 3}, (3, 2, 2)),
                         Architecture(input_bits=4, weight_bits=4, psum_bits=20, output_bits=4, dma_granularity=16)),
    # a block wholly in the padding moves nothing
    "padding-only-blocks": (S(dict(K=2, C=2, OY=6, OX=3, FY=1, PY=2, IY=3), ["OY", "K"], {"OY": 1, "K": 1},
                              (1, 2, 2)), A8),
}


@pytest.fixture(scope="module")
def results():
    if not HAVE_CC:
        pytest.skip("no C compiler ('cc' or $CC) on PATH")
    names = list(CASES)
    # the kernels of these cases are proved in test_codegen_kernel.py (single- and double-buffered)
    return dict(zip(names, run_cases([CASES[n] for n in names], seed=7, kernel=False)))


@needs_cc
@pytest.mark.parametrize("name", list(CASES))
def test_hand_picked_schedule_runs_exactly(results, name):
    r = results[name]
    assert r.passed, (name, r.problems)
    assert r.output_matches
    assert r.measured_words() == r.predicted_words()
    assert r.measured_bytes() == r.predicted_bytes()
    assert r.peak == r.predicted.buffer_words
    assert r.numpy_check is True        # the output also equals a numpy reference of the same data


@needs_cc
def test_hand_picked_cases_exercise_what_they_claim(results):
    # 1x1 stride 2: only the read quarter is fetched, once
    r = results["1x1-stride2"]
    L = r.schedule.layer
    assert r.words["input_read"] == L.C * L.OY * L.OX < L.input_words / 3
    # spilled partial sums are read back and written at psum width
    r = results["spilled-psums"]
    assert r.words["psum_read"] > 0 and r.words["psum_write"] > 0
    assert r.words["final_write"] == r.schedule.layer.output_words
    # granularity rounds every step
    r = results["granularity-4bit"]
    assert all(b % 16 == 0 for b in r.bytes.values())
    assert results["groups-edge-tiles-16bit"].sanitized == results["depthwise"].sanitized


def test_read_rows_and_runs():
    assert read_rows(4, 1, 2, 1, 0, 7) == [0, 2, 4, 6]
    assert read_rows(3, 2, 3, 1, 0, 8) == [0, 1, 3, 4, 6, 7]
    assert arithmetic_runs([0, 2, 4, 6]) == [4, 4, 4, 4]
    assert arithmetic_runs([0, 1, 3, 4, 6, 7]) == [2, 2, 4, 4, 6, 6]


BUF_DECL = re.compile(r"static (int8_t|int16_t|int32_t) k0_(input|weight|output)_buf\[(\d+)\];")


@pytest.mark.parametrize("name", list(CASES))
def test_buffer_sizes_in_source_equal_the_model(name):
    s, arch = CASES[name]
    src = generate_c(s, arch)
    found = {m.group(2): (m.group(1), int(m.group(3))) for m in BUF_DECL.finditer(src)}
    bw = evaluate(s, arch).buffer_words
    assert {op: n for op, (_, n) in found.items()} == dict(bw)
    assert plan_kernel(s, arch).buffer_words == dict(bw)
    in_type = "int8_t" if arch.input_bits <= 8 else "int16_t"
    assert found["input"][0] == in_type and found["output"][0] == "int32_t"
    # data moves through one routine only
    assert src.count("static void dma_copy(") == 1
    assert "memcpy(" not in src.split("static void dma_copy(")[1].split("\n}\n")[0]


def test_over_capacity_is_refused():
    s, _ = CASES["resnet-3x3-64-8x8"]
    with pytest.raises(ConvschedError, match="do not fit"):
        generate_c(s, Architecture(capacity=1024))


def test_words_over_32_bits_are_refused():
    s, _ = CASES["depthwise"]
    with pytest.raises(ConvschedError, match="at most 32 bits"):
        generate_c(s, Architecture.from_flags(64))


@needs_cc
def test_missing_compiler_is_a_clear_error(monkeypatch):
    from convsched.codegen import run_c
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    with pytest.raises(ConvschedError, match="no C compiler"):
        run_c(*CASES["depthwise"])


@needs_cc
def test_compile_error_is_a_clear_error(monkeypatch):
    from convsched.codegen import harness, run_c
    real = harness.emit_program

    def broken(cases):
        src, plans = real(cases)
        return src.replace("int main(", "int main(((", 1), plans

    monkeypatch.setattr(harness, "emit_program", broken)
    with pytest.raises(ConvschedError, match="does not compile") as e:
        run_c(*CASES["depthwise"])
    assert "\n" not in str(e.value)


def test_numpy_replay_of_the_c_generator():
    from convsched.codegen.reference import random_values, wrap
    import numpy as np
    v = random_values(123, 0, 1000, 8)
    assert v.min() >= -8 and v.max() <= 7 and len(set(v.tolist())) == 16
    assert wrap(np.array([127, 128, -129, 255, 256]), 8).tolist() == [127, -128, 127, -1, 0]


# ---- CLI ------------------------------------------------------------------------------------------
def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convsched", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def write_schedule(tmp_path: Path, name: str) -> Path:
    p = tmp_path / f"{name}.json"
    p.write_text(CASES[name][0].to_json())
    return p


@needs_cc
def test_cli_run_c_json(tmp_path):
    r = cli("run-c", write_schedule(tmp_path, "spilled-psums"), "--json", "-", "--seed", "3")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)          # exactly one JSON object
    assert {"predicted", "measured", "output_matches", "passed"} <= set(obj)
    for side in ("predicted", "measured"):
        assert set(obj[side]) == {"input", "weight", "output"}
        for op in ("input", "weight", "output"):
            assert set(obj[side][op]) == {"read", "write"}
    assert obj["output_matches"] is True and obj["passed"] is True
    assert obj["measured"] == obj["predicted"]
    assert obj["predicted"] == evaluate(CASES["spilled-psums"][0]).to_json()["traffic"]


@needs_cc
def test_cli_run_c_table(tmp_path):
    r = cli("run-c", write_schedule(tmp_path, "1x1-stride2"), "--bits", "16", "--psum-bits", "32")
    assert r.returncode == 0, r.stderr
    assert "PASS" in r.stdout and "predicted" in r.stdout


def test_cli_codegen_writes_c(tmp_path):
    out = tmp_path / "conv.c"
    r = cli("codegen", write_schedule(tmp_path, "depthwise"), "-o", out)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    bw = evaluate(CASES["depthwise"][0]).buffer_words
    assert f"k0_input_buf[{bw['input']}]" in text and f"k0_output_buf[{bw['output']}]" in text
    assert "int main(" in text


def test_cli_bad_input_is_one_line(tmp_path):
    arch = tmp_path / "arch.yaml"
    arch.write_text("buffer: 1KiB\n")
    sched = write_schedule(tmp_path, "resnet-3x3-64-8x8")
    out = tmp_path / "conv.c"
    for cmd in (("codegen", sched, "--arch", arch, "-o", out), ("run-c", sched, "--arch", arch)):
        r = cli(*cmd)
        assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr + r.stdout
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "do not fit" in lines[0], r.stderr
    assert not out.exists()
    r = cli("run-c", tmp_path / "missing.json")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
