"""Bad or ambiguous input on the command line, as a user gives it (a subprocess): one line on
stderr, exit status 2, no traceback, and never a hang."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from clihelp import one_line_error, run

SCHEDULE = {"layer": {"K": 4, "C": 4, "OY": 4, "OX": 4, "FY": 3, "FX": 3, "PY": 1, "PX": 1},
            "order": ["C", "K", "OY"], "tiles": {"C": 2, "K": 2, "OY": 2},
            "buffers": {"input": 3, "weight": 2, "output": 3}}
LAYER = "K=8,C=8,OY=4,OX=4"
BOMB = "".join(f"{name}: &{name} [{', '.join([prev] * 9)}]\n" for name, prev in
               zip("abcdefghi", ['"lol"', "*a", "*b", "*c", "*d", "*e", "*f", "*g", "*h"]))


@pytest.fixture
def sched(tmp_path) -> Path:
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SCHEDULE))
    return p


# ---- sizes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["optimize", LAYER, "--buffer", "{}"],
    ["sweep", LAYER, "--buffer", "{}..1MiB"],
    ["report", LAYER, "--buffer", "{}"],
    ["hwc", LAYER, "--buffer", "{}"],
])
@pytest.mark.parametrize("size, needles", [("64", ("no unit", "64KiB", "64KB")),
                                           ("64K", ("ambiguous", "64KiB", "64KB")),
                                           ("1M", ("ambiguous", "1MiB", "1MB"))])
def test_bare_sizes_are_refused_everywhere(args, size, needles):
    one_line_error(run(*(a.format(size) for a in args)), *needles)


def test_bare_sizes_in_files(tmp_path, sched):
    arch = tmp_path / "a.yaml"
    arch.write_text("buffer: 65536\n")
    one_line_error(run("evaluate", sched, "--arch", arch), "'buffer'", "no unit", "65536B")
    cfg = tmp_path / "hwc.yaml"
    cfg.write_text("buffers: {input: 24K}\n")
    one_line_error(run("hwc", LAYER, "--config", cfg), "'buffers.input'", "ambiguous", "24KiB")


def test_enormous_sizes_are_one_line():
    one_line_error(run("optimize", LAYER, "--buffer", "1" + "0" * 400 + "B"), "255 characters")
    one_line_error(run("optimize", LAYER, "--buffer", "1" + "0" * 200 + "B"), "too many digits", "1PiB")
    one_line_error(run("optimize", LAYER, "--buffer", "1" + "0" * 20 + "B"), "too large", "1PiB")


# ---- long arguments and paths ----------------------------------------------------------------
def test_long_arguments_and_paths_are_one_line(tmp_path):
    one_line_error(run("layers", str(tmp_path / ("x" * 300)) + ".yaml"), "characters long", "255")
    one_line_error(run("layers", LAYER + ",name=" + "n" * 300), "characters long")
    one_line_error(run("evaluate", "s" * 256 + ".json"), "characters long")


# ---- files that are not regular ----------------------------------------------------------------
def test_fifos_and_devices_do_not_hang(tmp_path, sched):
    fifo = tmp_path / "net.json"
    os.mkfifo(fifo)
    onnx = tmp_path / "m.onnx"
    os.mkfifo(onnx)
    one_line_error(run("layers", fifo), "FIFO", "regular file")
    one_line_error(run("optimize", onnx, "--buffer", "64KiB"), "FIFO")
    one_line_error(run("evaluate", fifo), "FIFO")
    one_line_error(run("evaluate", sched, "--arch", fifo), "FIFO")
    zero = tmp_path / "z.json"
    zero.symlink_to("/dev/zero")
    one_line_error(run("layers", zero), "is a device")
    one_line_error(run("simulate", zero), "is a device")
    one_line_error(run("hwc", LAYER, "--config", "/dev/zero"), "is a device")


def test_layers_on_a_folder_says_it_is_a_folder(tmp_path):
    (tmp_path / "nets").mkdir()
    one_line_error(run("layers", "nets", cwd=tmp_path), "nets is a folder", "expected a model or layer file")
    one_line_error(run("layers", tmp_path), "is a folder")


def test_a_builtin_name_wins_over_a_folder_of_that_name(tmp_path):
    (tmp_path / "alexnet").mkdir()
    r = run("layers", "alexnet", "--json", "-", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["network"] == "alexnet"


# ---- hostile YAML/JSON -----------------------------------------------------------------------
def test_alias_bombs_are_one_line(tmp_path, sched):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    for args in (["layers", bomb], ["evaluate", sched, "--arch", bomb], ["hwc", LAYER, "--config", bomb],
                 ["optimize", LAYER, "--buffer", "1KiB", "--arch", bomb]):
        one_line_error(run(*args), "anchors and aliases")


def test_deep_nesting_and_long_integers_are_one_line(tmp_path, sched):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    one_line_error(run("evaluate", deep), "nested more than 64 levels")
    one_line_error(run("layers", deep), "nested more than 64 levels")
    deep_yaml = tmp_path / "deep.yaml"
    deep_yaml.write_text("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    one_line_error(run("evaluate", sched, "--arch", deep_yaml), "nested more than 64 levels")
    big = tmp_path / "big.json"
    big.write_text('{"layer": {"K": ' + "1" * 5000 + ', "C": 4, "OY": 4, "OX": 4}}')
    one_line_error(run("evaluate", big), "5,000 digits")


def test_duplicate_keys_and_floats_in_a_schedule(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SCHEDULE)[:-1] + ', "order": ["K"]}')
    one_line_error(run("evaluate", p), "'order' appears twice")
    p.write_text(json.dumps(dict(SCHEDULE, layer=dict(SCHEDULE["layer"], K=4.0))))
    one_line_error(run("evaluate", p), "K=4.0", "floating-point", "write 4")
    p.write_text(json.dumps(dict(SCHEDULE, tiles={"C": 2, "K": 2})))
    one_line_error(run("evaluate", p), "'order' has OY", "no size for it")


# ---- integers as written -----------------------------------------------------------------------
@pytest.mark.parametrize("args, needle", [
    (["layers", LAYER, "--batch", "1_0"], "'1_0' is not a whole number"),
    (["layers", LAYER, "--batch", "٣"], "is not a whole number"),
    (["layers", "K=1_000,C=4,OY=2,OX=2"], "K='1_000' is not a whole number"),
    (["layers", "K=٣,C=4,OY=2,OX=2"], "is not a whole number"),
    (["optimize", LAYER, "--buffer", "1KiB", "--bits", "+8"], "'+8' is not a whole number"),
    (["optimize", LAYER, "--buffer", "1KiB", "--workers", "0"], "give at least 1"),
    (["sweep", LAYER, "--buffer", "1KiB..2KiB", "--points", "0"], "give at least 1"),
    (["optimize", LAYER, "--buffer", "1KiB", "--tile", "K=1_6"], "'1_6' is not a whole number"),
    (["optimize", LAYER, "--buffer", "1KiB", "--tile-max", "K=٣"], "is not a whole number"),
    (["simulate", "{sched}", "--seed", "-1"], "give at least 0"),
    (["run-c", "{sched}", "--seed", str(2**64)], "give at most 18,446,744,073,709,551,615"),
])
def test_integer_options_take_plain_digits_in_range(sched, args, needle):
    one_line_error(run(*(str(sched) if a == "{sched}" else a for a in args)), needle)


# ---- small ones ----------------------------------------------------------------------------------
def test_version():
    r = run("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("convsched ") and r.stdout.split()[1][0].isdigit()


def test_hwc_takes_workers_and_keeps_jobs_as_a_hidden_alias():
    help_text = run("hwc", "--help").stdout
    assert "--workers" in help_text and "--jobs" not in help_text
    for flag in ("--workers", "--jobs"):
        r = run("hwc", LAYER, flag, "1", "--json", "-")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["network"]
    one_line_error(run("hwc", LAYER, "--workers", "1", "--jobs", "2"), "former name of --workers")
