"""The `evaluate` and `simulate` commands, run as a user runs them (a subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clihelp import one_line_error, run

from convsched.core.arch import Architecture
from convsched.core.hierarchy import Hierarchy
from convsched.core.schedule import Schedule
from convsched.model.closed_form import evaluate
from convsched.model.nest_traffic import single_level_traffic

GOOD = {"layer": {"K": 4, "C": 4, "OY": 4, "OX": 4, "FY": 3, "FX": 3, "PY": 1, "PX": 1},
        "order": ["C", "K", "OY"], "tiles": {"C": 2, "K": 2, "OY": 2},
        "buffers": {"input": 3, "weight": 2, "output": 3}}


def write(tmp_path: Path, obj, name: str = "s.json") -> Path:
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def library_json(schedule: dict, arch: Architecture | None = None) -> dict:
    """What `evaluate --json` gives: the traffic's JSON, and the one-level hierarchy's boundary and energy."""
    t = evaluate(Schedule.from_dict(schedule), arch)
    one = single_level_traffic(t, Hierarchy.from_architecture(arch or Architecture())).to_json()
    return {**t.to_json(), "boundaries": one["boundaries"], "energy": one["energy"]}


# ---- evaluate --json ------------------------------------------------------------------
def test_evaluate_json_to_stdout(tmp_path):
    r = run("evaluate", write(tmp_path, GOOD), "--json", "-")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    obj = json.loads(r.stdout)          # exactly one JSON object and nothing else
    assert isinstance(obj, dict)
    # today's keys, with the one-level hierarchy's boundaries and energy added (issue 16)
    assert set(obj) == {"traffic", "buffer_words", "total_words", "total_bytes", "macs", "boundaries", "energy"}
    assert obj["boundaries"] == [{"level": "L1", "traffic": obj["traffic"], "bytes": obj["total_bytes"]}]
    assert obj["energy"] == 200 * obj["total_bytes"]
    assert set(obj["traffic"]) == {"input", "weight", "output"}
    for op in ("input", "weight", "output"):
        assert set(obj["traffic"][op]) == {"read", "write"}
    assert set(obj["buffer_words"]) == {"input", "weight", "output"}
    assert obj == library_json(GOOD)
    t = evaluate(Schedule.from_dict(GOOD))
    assert obj["total_words"] == t.total_words and obj["total_bytes"] == t.total_bytes
    assert obj["macs"] == 4 * 4 * 16 * 9


def test_evaluate_json_to_file(tmp_path):
    out = tmp_path / "out.json"
    r = run("evaluate", write(tmp_path, GOOD), "--json", out)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text()) == library_json(GOOD)
    # a relative path, written in the working directory
    r = run("evaluate", "s.json", "--json", "rel.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "rel.json").read_text()) == library_json(GOOD)


def test_evaluate_table(tmp_path):
    r = run("evaluate", write(tmp_path, GOOD))
    assert r.returncode == 0, r.stderr
    assert "input" in r.stdout and "MACs" in r.stdout


def test_word_size_flags(tmp_path):
    p = write(tmp_path, GOOD)
    default = json.loads(run("evaluate", p, "--json", "-").stdout)
    wide = json.loads(run("evaluate", p, "--bits", "16", "--psum-bits", "32", "--json", "-").stdout)
    # words do not change, bytes do
    assert wide["traffic"] == default["traffic"] and wide["buffer_words"] == default["buffer_words"]
    assert wide == library_json(GOOD, Architecture.from_flags(16, 32))
    t = evaluate(Schedule.from_dict(GOOD))
    data = t.input.read + t.weight.read + t.output_final_writes   # input, weight, final output words
    psums = t.output.read + t.output.write - t.output_final_writes  # read-backs and non-final writes
    assert psums > 0   # the schedule spills partial sums (C is the outer loop)
    assert default["total_bytes"] == 1 * data + 4 * psums         # 8-bit data, 32-bit psums
    assert wide["total_bytes"] == 2 * data + 4 * psums            # 16-bit data, 32-bit psums
    # --bits 16 alone: partial sums are 16 bits as well -> every word 2 bytes
    all16 = json.loads(run("evaluate", p, "--bits", "16", "--json", "-").stdout)
    assert all16["total_bytes"] == 2 * all16["total_words"]


def test_arch_file(tmp_path):
    p = write(tmp_path, GOOD)
    a = tmp_path / "arch.yaml"
    a.write_text("bits: {input: 16, weight: 4, psum: 24, output: 16}\nbuffer: 64KiB\n"
                 "double_buffer: true\ndma_granularity: 16B\n")
    r = run("evaluate", p, "--arch", a, "--json", "-")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == library_json(GOOD, Architecture.from_file(a))
    assert json.loads(r.stdout)["total_bytes"] % 16 == 0


def test_simulate_passes(tmp_path):
    p = write(tmp_path, GOOD)
    r = run("simulate", p)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout
    r = run("simulate", p, "--bits", "16", "--json", "-")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["output_matches"] is True and obj["model_matches"] is True
    assert {k: obj[k] for k in library_json(GOOD)} == library_json(GOOD, Architecture.from_flags(16))


# ---- bad input: exit 2, one line on stderr, no traceback -----------------------------
def bad(**over) -> dict:
    d = json.loads(json.dumps(GOOD))
    for k, v in over.items():
        if isinstance(v, dict) and k in d and isinstance(d[k], dict):
            d[k].update(v)
        else:
            d[k] = v
    return d


BAD_SCHEDULES = {
    "output size": (bad(layer={"IY": 8}), "OY=4 does not follow"),
    "groups": (bad(layer={"G": 3}), "must divide"),
    "zero size": (bad(layer={"C": 0}), "C=0 must be at least 1"),
    "negative size": (bad(layer={"K": -4}), "K=-4"),
    "non-integer": (bad(layer={"K": 2.5}), "not an integer"),
    "string size": (bad(layer={"K": "4"}), "not an integer"),
    "unknown layer field": (bad(layer={"Q": 1}), "unknown layer field(s) Q"),
    "missing layer field": ({**GOOD, "layer": {"K": 4, "C": 4}}, "missing OY, OX"),
    "unknown dimension": (bad(order=["C", "K", "Q"]), "unknown dimension 'Q'"),
    "repeated dimension": (bad(order=["C", "K", "C"]), "C repeated"),
    "tile zero": (bad(tiles={"K": 0}), "tile K=0 is out of range"),
    "tile too big": (bad(tiles={"K": 5}), "from 1 to 4"),
    "tile not in order": (bad(tiles={"OX": 2}), "OX has no loop in order"),
    "buffer level high": (bad(buffers={"input": 4}), "buffer level input=4"),
    "buffer level negative": (bad(buffers={"weight": -1}), "buffer level weight=-1"),
    "missing operand": ({**GOOD, "buffers": {"input": 1, "weight": 1}}, "no level for output"),
    "unknown operand": (bad(buffers={"psum": 1}), "unknown operand(s) psum"),
    "no buffers": ({k: v for k, v in GOOD.items() if k != "buffers"}, "'buffers' must map"),
    "no layer": ({k: v for k, v in GOOD.items() if k != "layer"}, "no 'layer'"),
    "unknown key": (bad(extra=1), "unknown schedule key(s) extra"),
    "not an object": ([1, 2], "must be a JSON object"),
    "malformed JSON": ('{"layer": {"K": 4,', "not valid JSON"),
    "empty file": ("", "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCHEDULES))
def test_bad_schedule(tmp_path, case):
    content, needle = BAD_SCHEDULES[case]
    one_line_error(run("evaluate", write(tmp_path, content)), needle)


@pytest.mark.parametrize("case", ["output size", "tile too big", "malformed JSON"])
def test_bad_schedule_simulate(tmp_path, case):
    """`simulate` reads schedules the same way; a few cases suffice."""
    content, needle = BAD_SCHEDULES[case]
    one_line_error(run("simulate", write(tmp_path, content)), needle)


def test_missing_and_directory_schedule(tmp_path):
    one_line_error(run("evaluate", tmp_path / "none.json"), "does not exist")
    one_line_error(run("evaluate", tmp_path), "is a folder; expected a file")


BAD_ARCHS = {
    "unknown key": ("bits: 8\ncapacity: 64KiB\n", "unknown architecture key(s) capacity"),
    "bad unit": ("buffer: 64XB\n", "unknown unit 'XB'"),
    "malformed YAML": ("bits: [\n", "not valid YAML"),
    "not a mapping": ("- 8\n", "YAML mapping"),
    "zero bits": ("bits: 0\n", "input_bits=0"),
    "unknown word": ("bits: {inputs: 8}\n", "unknown word size(s) inputs"),
    "non-string key": ("1: 2\n", "unknown architecture key(s) 1"),
    "double buffer": ("double_buffer: maybe\n", "true or false"),
    "negative granularity": ("dma_granularity: -4\n", "must be positive"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARCHS))
def test_bad_arch_file(tmp_path, case):
    content, needle = BAD_ARCHS[case]
    a = tmp_path / "arch.yaml"
    a.write_text(content)
    one_line_error(run("evaluate", write(tmp_path, GOOD), "--arch", a), needle)


def test_missing_arch_file(tmp_path):
    one_line_error(run("evaluate", write(tmp_path, GOOD), "--arch", tmp_path / "no.yaml"), "does not exist")


@pytest.mark.parametrize("args,needle", [
    (["--frobnicate"], "No such option"),
    (["--bits", "0"], "--bits"),
    (["--bits", "x"], "--bits"),
    (["--psum-bits", "-8"], "--psum-bits"),
    (["--json"], "--json"),
])
def test_bad_flags(tmp_path, args, needle):
    one_line_error(run("evaluate", write(tmp_path, GOOD), *args), needle)


def test_unknown_command_and_missing_argument():
    one_line_error(run("frobnicate"), "No such command")
    one_line_error(run("evaluate"), "Missing argument")


@pytest.mark.parametrize("flags", [["--bits", "16"], ["--psum-bits", "16"]])
def test_arch_with_bits_is_refused(tmp_path, flags):
    a = tmp_path / "arch.yaml"
    a.write_text("bits: 8\n")
    one_line_error(run("evaluate", write(tmp_path, GOOD), "--arch", a, *flags), "not both")


def test_json_into_missing_folder(tmp_path):
    r = run("evaluate", write(tmp_path, GOOD), "--json", tmp_path / "no" / "out.json")
    one_line_error(r, "does not exist")


def test_schedule_file_not_utf8(tmp_path):
    p = tmp_path / "s.json"
    p.write_bytes(b"\xff\xfe{}")
    one_line_error(run("evaluate", p), "s.json")


def test_json_into_a_directory(tmp_path):
    one_line_error(run("evaluate", write(tmp_path, GOOD), "--json", tmp_path), "json")


def test_evaluate_table_for_layer_with_given_small_input(tmp_path):
    s = {"layer": {"K": 1, "C": 1, "OY": 1, "OX": 2, "PX": 1, "IX": 1}, "order": [], "tiles": {},
         "buffers": {"input": 0, "weight": 0, "output": 0}}
    p = write(tmp_path, s)
    assert run("evaluate", p, "--json", "-").returncode == 0
    r = run("evaluate", p)
    assert r.returncode == 0, r.stderr
