"""`convsched evaluate/simulate SCHEDULE --arch FILE|PRESET` on memory hierarchies (issue 16): the JSON
contract per boundary, the tables at 80 columns, the single-level form unchanged, and one-line errors
for every malformed hierarchy or nest."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from clihelp import one_line_error, run

from convsched.core.hierarchy import PRESETS, load_hierarchy
from convsched.core.nest import Nest
from convsched.model.nest_model import evaluate_nest

LAYER = {"K": 16, "C": 8, "OY": 12, "OX": 12, "FY": 3, "FX": 3, "PY": 1, "PX": 1}
# L1 slides inside a sliding L2 block: OY is tiled twice, K split around C.
TWO_LEVEL = {"layer": LAYER,
             "loops": [["K", 8], ["OY", 6], ["C", 4], ["OY", 3], ["K", 4]],
             "buffers": {"L2": {"input": 1, "weight": 0, "output": 1},
                         "L1": {"input": 3, "weight": 3, "output": 4}}}
# Weights bypass L2 (they come from main memory into L1); partial sums spill to L2 only.
BYPASS_ARCH = """\
bits: {input: 8, weight: 8, psum: 32, output: 8}
levels:
  - {name: L2, buffer: 256KiB, holds: [input, output]}
  - {name: L1, buffer: 32KiB, double_buffer: true}
energy: {L2: 100, L1: 5}
"""
BYPASS = {"layer": LAYER,
          "loops": [["OY", 6], ["K", 8], ["C", 4], ["OX", 4]],
          "buffers": {"L2": {"input": 0, "output": 0}, "L1": {"input": 3, "weight": 3, "output": 2}}}
SINGLE = {"layer": LAYER, "order": ["K", "C", "OY"], "tiles": {"K": 4, "C": 2, "OY": 4},
          "buffers": {"input": 2, "weight": 2, "output": 3}}
KEYS = {"boundaries", "buffer_words", "total_bytes", "energy", "macs"}


def write(tmp_path, name: str, obj) -> str:
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(p)


def json_of(*args) -> dict:
    r = run(*args, "--json", "-")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_evaluate_two_level_json_contract(tmp_path):
    obj = json_of("evaluate", write(tmp_path, "n.json", TWO_LEVEL), "--arch", "gap8")
    assert set(obj) == KEYS
    assert [b["level"] for b in obj["boundaries"]] == ["L2", "L1"]
    for b in obj["boundaries"]:
        assert set(b) == {"level", "traffic", "bytes"}
        assert set(b["traffic"]) == {"input", "weight", "output"}
        assert all(set(rw) == {"read", "write"} for rw in b["traffic"].values())
    assert set(obj["buffer_words"]) == {"L2", "L1"}
    expected = evaluate_nest(Nest.from_dict(TWO_LEVEL), PRESETS["gap8"])
    assert obj == json.loads(json.dumps(expected.to_json()))
    # everything comes from main memory at L2, so the main-memory bytes are L2's boundary bytes
    assert obj["total_bytes"] == obj["boundaries"][0]["bytes"]
    assert obj["energy"] == 200 * obj["boundaries"][0]["bytes"] + 6 * obj["boundaries"][1]["bytes"]
    assert obj["macs"] == 16 * 8 * 12 * 12 * 9


def test_simulate_two_level_agrees_and_checks_output(tmp_path):
    path = write(tmp_path, "n.json", TWO_LEVEL)
    model = json_of("evaluate", path, "--arch", "gap8")
    sim = json_of("simulate", path, "--arch", "gap8", "--seed", "3")
    assert sim.pop("output_matches") is True and sim.pop("model_matches") is True
    assert sim.pop("tiles") == 2 ** 5   # K 16/8, OY 12/6, C 8/4, OY 6/3, K 8/4: two trips each
    assert sim == model


def test_hierarchy_file_with_bypass_and_energy(tmp_path):
    arch = write(tmp_path, "arch.yaml", BYPASS_ARCH)
    path = write(tmp_path, "n.json", BYPASS)
    obj = json_of("evaluate", path, "--arch", arch)
    l2, l1 = obj["boundaries"]
    assert l2["traffic"]["weight"] == {"read": 0, "write": 0}    # weights never cross into L2
    assert set(obj["buffer_words"]["L2"]) == {"input", "output"}
    # the weights reach L1 from main memory: main-memory bytes and energy count them there
    weight_bytes = l1["traffic"]["weight"]["read"]
    assert obj["total_bytes"] == l2["bytes"] + weight_bytes
    assert obj["energy"] == 100 * (l2["bytes"] + weight_bytes) + 5 * (l1["bytes"] - weight_bytes)
    sim = json_of("simulate", path, "--arch", arch)
    assert sim["output_matches"] and sim["model_matches"]
    table = run("evaluate", path, "--arch", arch).stdout
    assert "main" in table and f"{obj['total_bytes']:,} B" in table


def test_single_level_keys_stay_with_boundaries_added(tmp_path):
    path = write(tmp_path, "s.json", SINGLE)
    obj = json_of("evaluate", path)
    assert set(obj) == {"traffic", "buffer_words", "total_words", "total_bytes", "macs", "boundaries", "energy"}
    assert obj["boundaries"] == [{"level": "L1", "traffic": obj["traffic"], "bytes": obj["total_bytes"]}]
    assert obj["energy"] == 200 * obj["total_bytes"]
    # the preset `single` and the nest form of the same schedule give the same answer
    assert json_of("evaluate", path, "--arch", "single") == obj
    nest = {"layer": LAYER, "loops": [["K", 4], ["C", 2], ["OY", 4]],
            "buffers": {"L1": SINGLE["buffers"]}}
    assert json_of("evaluate", write(tmp_path, "n.json", nest)) == obj
    sim = json_of("simulate", path)
    assert sim["boundaries"] == obj["boundaries"] and sim["energy"] == obj["energy"]


def test_one_level_hierarchy_file_sets_energy(tmp_path):
    arch = write(tmp_path, "one.yaml", "levels:\n  - {name: SPAD, buffer: 64KiB}\nenergy: {SPAD: 50}\n")
    obj = json_of("evaluate", write(tmp_path, "s.json", SINGLE), "--arch", arch)
    assert obj["boundaries"][0]["level"] == "SPAD" and obj["energy"] == 50 * obj["total_bytes"]


@pytest.mark.parametrize("command", ["evaluate", "simulate"])
def test_tables_fit_80_columns(tmp_path, command):
    path = write(tmp_path, "n.json", TWO_LEVEL)
    obj = json_of("evaluate", path, "--arch", "gap8")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env["COLUMNS"] = "80"
    r = subprocess.run([sys.executable, "-m", "convsched", command, path, "--arch", "gap8"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout and all(len(line) <= 80 for line in r.stdout.splitlines())
    for b in obj["boundaries"]:
        assert any(line.startswith(b["level"]) for line in r.stdout.splitlines())
        assert f"{b['bytes']:,} B" in r.stdout
    assert f"main memory: {obj['total_bytes']:,} B" in r.stdout
    for level, per_op in obj["buffer_words"].items():
        row = next(line for line in r.stdout.splitlines()[-6:] if line.startswith(level))
        assert all(f"{w:,}" in row for w in per_op.values())


def test_presets_are_the_documented_ones():
    gap8, gap9 = load_hierarchy("gap8"), load_hierarchy("gap9")
    assert [(lv.name, lv.capacity, lv.double_buffer) for lv in gap8.levels] == [("L2", 512 * 1024, False),
                                                                              ("L1", 64 * 1024, True)]
    assert [(lv.name, lv.capacity, lv.double_buffer) for lv in gap9.levels] == [("L2", 1536 * 1024, False),
                                                                              ("L1", 128 * 1024, True)]
    for h in (gap8, gap9):
        assert (h.input_bits, h.weight_bits, h.psum_bits, h.output_bits) == (8, 8, 32, 8)
    assert load_hierarchy("single").is_single_level


# ---- bad input: one line, exit status 2 ------------------------------------------------
def nest_with(**changes) -> dict:
    return {**TWO_LEVEL, **changes}


@pytest.mark.parametrize("nest, needles", [
    (nest_with(loops=[["K", 4], ["OY", 6], ["C", 4], ["OY", 3], ["K", 8]]), ["tile K=8", "larger than"]),
    (nest_with(buffers={"L2": {"input": 3, "weight": 0, "output": 1},
                        "L1": {"input": 1, "weight": 3, "output": 4}}), ["input buffer of level L1", "above"]),
    (nest_with(buffers={"L3": {"input": 1, "weight": 0, "output": 1},
                        "L1": {"input": 3, "weight": 3, "output": 4}}), ["L3", "L2, L1"]),
    (nest_with(buffers={"L2": {"input": 1, "weight": 0, "output": 1},
                        "L1": {"input": 3, "weight": 3}}), ["L1 holds output"]),
    (nest_with(loops=[["Q", 4]]), ["unknown dimension 'Q'"]),
    (nest_with(loops=[["K", 0]]), ["tile K=0"]),
    (nest_with(loops="K"), ["list of [dimension, tile] pairs"]),
    (nest_with(buffers={"L2": {"input": 1, "weight": 0, "output": 1},
                        "L1": {"input": 3, "weight": 3, "output": 9}}), ["output", "9"]),
])
def test_malformed_nest_is_one_line(tmp_path, nest, needles):
    r = run("evaluate", write(tmp_path, "bad.json", nest), "--arch", "gap8")
    one_line_error(r, *needles)


@pytest.mark.parametrize("arch_text, needles", [
    ("levels: 3\n", ["'levels' must be a list"]),
    ("levels:\n  - {buffer: 64KiB}\n", ["level 1 has no name"]),
    ("levels:\n  - {name: L1, buffer: -4KiB}\n", ["level L1"]),
    ("levels:\n  - {name: L1, buffer: 64KiB, holds: [input, weight]}\n", ["no level holds the output"]),
    ("levels:\n  - {name: L1, buffer: 64KiB}\n  - {name: L1, buffer: 8KiB}\n", ["L1 used twice"]),
    ("levels:\n  - {name: L2, buffer: 64KiB, holds: [bias]}\n", ["unknown operand", "bias"]),
    ("levels:\n  - {name: L1, buffer: 64KiB}\nenergy: {L9: 3}\n", ["unknown level", "L9"]),
    ("levels:\n  - {name: L1, buffer: 64KiB}\nenergy: {L1: -1}\n", ["at least 0"]),
    ("levels:\n  - {name: L1, buffer: 64KiB, speed: 3}\n", ["unknown key", "speed"]),
    ("levels: [\n", ["architecture file"]),
])
def test_malformed_hierarchy_is_one_line(tmp_path, arch_text, needles):
    arch = write(tmp_path, "arch.yaml", arch_text)
    r = run("evaluate", write(tmp_path, "n.json", TWO_LEVEL), "--arch", arch)
    one_line_error(r, *needles)


def test_wrong_pairings_are_one_line(tmp_path):
    nest, single = write(tmp_path, "n.json", TWO_LEVEL), write(tmp_path, "s.json", SINGLE)
    one_line_error(run("evaluate", nest, "--arch", "gap7"), "unknown architecture 'gap7'", "gap8")
    one_line_error(run("evaluate", nest), "L2, L1", "--arch")
    one_line_error(run("simulate", single, "--arch", "gap8"), "single-level schedule", "L2, L1")
    one_line_error(run("evaluate", nest, "--arch", "gap8", "--bits", "16"), "not both")
    one_line_error(run("optimize", "alexnet", "--arch", "gap8"), "levels L2, L1", "single-level")
