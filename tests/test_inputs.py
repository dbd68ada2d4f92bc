"""What the user gives: sizes, the gate every input file passes, strict YAML/JSON, integers
as written, FC layers by K and C, and schedule files (docs/layer-files.md)."""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from convsched.core.arch import Architecture
from convsched.cli.schedfiles import safe_file_stem
from convsched.core.errors import ConvschedError
from convsched.core.fileio import (MAX_NESTING, MAX_TEXT_BYTES, MAX_YAML_BYTES, load_user_data, parse_json,
                                   parse_yaml, read_user_bytes)
from convsched.hwc import HWCConfig
from convsched.core.layer import Layer
from convsched.networks import load_target
from convsched.core.schedule import Schedule, load_schedule
from convsched.core.units import MAX_SIZE, format_size_exact, parse_size

EXAMPLE_NETWORK = resources.files("convsched").joinpath("data/example_network.yaml")

BOMB = "".join(f"{name}: &{name} [{', '.join([prev] * 9)}]\n" for name, prev in
               zip("abcdefghi", ['"lol"', "*a", "*b", "*c", "*d", "*e", "*f", "*g", "*h"]))


def refused(fn, *needles: str) -> str:
    with pytest.raises(ConvschedError) as e:
        fn()
    message = str(e.value)
    assert "\n" not in message
    for n in needles:
        assert n in message, (n, message)
    return message


# ---- sizes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, needles", [
    ("64", ("has no unit", "64B", "64KiB", "64KB")),
    ("4096", ("has no unit", "4096KiB or 4096KB")),
    (" 64 ", ("has no unit",)),
    ("64K", ("ambiguous", "64KiB", "64KB")),
    ("64k", ("ambiguous", "64KiB", "64KB")),
    ("1M", ("ambiguous", "1MiB", "1MB")),
    ("2G", ("ambiguous", "2GiB", "2GB")),
    ("1.5k", ("ambiguous", "1.5KiB")),
    ("1" + "0" * 400 + "B", ("too many digits", "1PiB")),
    ("1" + "0" * 5000 + "B", ("too many digits",)),
    ("2048TiB", ("too large", "1PiB")),
    ("٦٤KiB", ("not a number with a unit",)),      # digits of another script
    ("64_000B", ("not a number with a unit",)),
    (65536, ("has no unit", "65536B")),
    (1.5, ("not a size",)),
])
def test_ambiguous_or_unbounded_sizes_are_refused(text, needles):
    refused(lambda: parse_size(text), *needles)


def test_the_largest_size_is_accepted():
    assert parse_size("1024TiB") == MAX_SIZE
    refused(lambda: parse_size(f"{MAX_SIZE + 1}B"), "too large")


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=MAX_SIZE))
def test_exact_sizes_read_back(n):
    assert parse_size(format_size_exact(n)) == n


@pytest.mark.parametrize("data, needles", [
    ({"buffer": 65536}, ("'buffer'", "has no unit", "65536B")),
    ({"buffer": "64K"}, ("'buffer'", "ambiguous")),
    ({"buffer": {"input": "1KiB", "weight": 1024, "output": "1KiB"}}, ("'buffer.weight'", "no unit")),
    ({"dma_granularity": 64}, ("'dma_granularity'", "64B")),
])
def test_architecture_sizes_need_units(data, needles):
    refused(lambda: Architecture.from_dict(data), *needles)
    assert Architecture.from_dict({"dma_granularity": 0}).dma_granularity == 0   # 0 = off, no unit needed


def test_hwc_configuration_sizes_need_units():
    refused(lambda: HWCConfig.from_dict({"buffers": {"input": 24576}}), "'buffers.input'", "no unit")
    refused(lambda: HWCConfig.from_dict({"buffers": {"input": "24K"}}), "ambiguous", "24KiB")


def test_architecture_round_trips_with_units():
    for a in (Architecture(4, 4, 16, 8, capacity=65536, double_buffer=True, dma_granularity=64),
              Architecture(capacity_per_operand=(1000, 3 * 1024, 123_456_789)), Architecture()):
        d = a.to_dict(sizes_with_units=True)
        assert Architecture.from_dict(d) == a
        assert all(not isinstance(v, int) for v in ([d["buffer"]] if "buffer" in d and not
                                                     isinstance(d["buffer"], dict) else []))


# ---- the gate every input file passes --------------------------------------------------------
def test_fifo_and_devices_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "net.json"
    os.mkfifo(fifo)
    onnx_fifo = tmp_path / "model.onnx"
    os.mkfifo(onnx_fifo)
    refused(lambda: load_target(str(fifo)), "layer file", "FIFO", "regular file")
    refused(lambda: load_target(str(onnx_fifo)), "ONNX model", "FIFO")
    refused(lambda: Schedule.from_file(fifo), "schedule file", "FIFO")
    refused(lambda: Architecture.from_file(fifo), "architecture file", "FIFO")
    refused(lambda: HWCConfig.from_file(fifo), "HWC configuration file", "FIFO")
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    refused(lambda: load_target(str(zero)), "is a device")
    refused(lambda: Architecture.from_file("/dev/zero"), "is a device")


def test_files_larger_than_the_cap_are_refused_before_reading(tmp_path):
    big = tmp_path / "big.json"
    with open(big, "wb") as f:            # sparse: no 17 MiB is written or read
        f.truncate(MAX_TEXT_BYTES + 1)
    refused(lambda: load_target(str(big)), "is 16,777,217 bytes", "largest accepted is 16 MiB")
    big_yaml = tmp_path / "big.yaml"      # YAML is parsed in Python, slowly: a smaller cap
    with open(big_yaml, "wb") as f:
        f.truncate(MAX_YAML_BYTES + 1)
    refused(lambda: load_target(str(big_yaml)), "is 1,048,577 bytes", "largest accepted is 1 MiB")
    refused(lambda: Architecture.from_file(big_yaml), "largest accepted is 1 MiB")
    refused(lambda: read_user_bytes(big, "file"), "largest accepted")


def test_folders_and_missing_files(tmp_path):
    refused(lambda: Schedule.from_file(tmp_path), "is a folder; expected a file")
    (tmp_path / "net").mkdir()
    refused(lambda: load_target(str(tmp_path / "net")), "is a folder; expected a model or layer file")
    refused(lambda: load_target(str(tmp_path / "nope.yaml")), "does not exist")


def test_long_paths_are_one_line(tmp_path):
    long = str(tmp_path / ("x" * 300)) + ".json"
    refused(lambda: load_target(long), "characters long", "255")
    refused(lambda: Schedule.from_file(long), "characters long")


# ---- strict YAML and JSON ----------------------------------------------------------------------
def test_yaml_alias_bombs_are_refused_in_every_user_file(tmp_path):
    for name in ("net.yaml", "arch.yaml", "hwc.yaml", "sched.yaml"):
        (tmp_path / name).write_text(BOMB)
    refused(lambda: load_target(str(tmp_path / "net.yaml")), "anchors and aliases", "write the values out")
    refused(lambda: Architecture.from_file(tmp_path / "arch.yaml"), "anchors and aliases")
    refused(lambda: HWCConfig.from_file(tmp_path / "hwc.yaml"), "anchors and aliases")
    refused(lambda: Schedule.from_file(tmp_path / "sched.yaml"), "anchors and aliases")


def test_a_lone_anchor_is_refused_too():
    refused(lambda: parse_yaml("- &x {K: 4, C: 4, OY: 2, OX: 2}\n", "f"), "line 1", "anchors")


@pytest.mark.parametrize("text", ["K: 4\nC: 4\nK: 8\n", "{K: 4, K: 4}", "a:\n  b: 1\n  b: 2\n"])
def test_yaml_duplicate_keys_are_an_error(text):
    refused(lambda: parse_yaml(text, "f"), "appears twice", "keep one")


@pytest.mark.parametrize("text", ['{"K": 4, "K": 8}', '[{"a": {"b": 1, "b": 1}}]'])
def test_json_duplicate_keys_are_an_error(text):
    refused(lambda: parse_json(text, "f"), "appears twice")


def test_duplicate_keys_in_files(tmp_path):
    (tmp_path / "n.json").write_text('[{"K": 4, "C": 4, "OY": 2, "OX": 2, "C": 8}]')
    refused(lambda: load_target(str(tmp_path / "n.json")), "layer file", "'C' appears twice")
    (tmp_path / "a.yaml").write_text("buffer: 64KiB\nbuffer: 1KiB\n")
    refused(lambda: Architecture.from_file(tmp_path / "a.yaml"), "line 2", "'buffer' appears twice")


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 5_000, 200_000])
def test_deep_nesting_is_one_line(depth):
    refused(lambda: parse_json("[" * depth + "]" * depth, "f"), "nested more than")
    refused(lambda: parse_yaml("[" * depth + "]" * depth, "f"), "nested more than")


def test_nesting_up_to_the_limit_is_read():
    assert parse_json("[" * MAX_NESTING + "]" * MAX_NESTING, "f") is not None
    assert parse_yaml("[" * MAX_NESTING + "]" * MAX_NESTING, "f") is not None


@pytest.mark.parametrize("digits", [41, 4_301, 100_000])
def test_long_integers_are_refused(digits):
    refused(lambda: parse_json('{"K": ' + "7" * digits + "}", "f"), f"{digits:,} digits", "40 digits")
    refused(lambda: parse_yaml("K: " + "7" * digits + "\n", "f"), f"{digits:,} digits")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_json_non_numbers_are_refused(text):
    refused(lambda: parse_json('{"K": ' + text + "}", "f"))


@pytest.mark.parametrize("text, value", [("1_000", "1_000"), ("0x10", "0x10"), ("1:30", "1:30"),
                                         ("0b11", "0b11"), ("1e3", "1e3")])
def test_yaml_integers_are_plain_decimal(text, value):
    # YAML 1.1 reads these as 1000, 16, 90, 3: here they stay text, which no integer field takes
    assert parse_yaml(f"K: {text}\n", "f") == {"K": value}


def test_yaml_leading_zero_is_refused():
    refused(lambda: parse_yaml("K: 010\n", "f"), "leading zero", "octal", "write 10")
    assert parse_yaml("K: 0\nC: -4\n", "f") == {"K": 0, "C": -4}


def test_json_text_with_a_byte_order_mark(tmp_path):
    p = tmp_path / "n.json"
    p.write_bytes(b"\xef\xbb\xbf" + b'[{"K": 4, "C": 4, "OY": 2, "OX": 2}]')
    assert load_user_data(p, "layer file")[0]["K"] == 4


# ---- integers as written, once -----------------------------------------------------------------
@pytest.mark.parametrize("value", [64.0, 1e30, float(2**53 + 2), 2.5])
def test_float_dimensions_are_refused_from_files(tmp_path, value):
    p = tmp_path / "n.json"
    p.write_text(json.dumps([{"K": value, "C": 4, "OY": 2, "OX": 2}]))
    refused(lambda: load_target(str(p)), "K=", "floating-point")


@pytest.mark.parametrize("spec, needle", [
    ("K=1_000,C=4,OY=2,OX=2", "K='1_000' is not a whole number"),
    ("K=٣,C=4,OY=2,OX=2", "K='٣' is not a whole number"),
    ("K=+4,C=4,OY=2,OX=2", "K='+4' is not a whole number"),
    ("K=4.0,C=4,OY=2,OX=2", "K='4.0' is not a whole number"),
    ("K=" + "9" * 50 + ",C=4,OY=2,OX=2", "50 digits"),
])
def test_inline_specs_take_plain_digits_only(spec, needle):
    refused(lambda: load_target(spec), needle)


def test_inline_spec_plain_digits():
    assert load_target("K=1000,C=4,OY=2,OX=2").layers[0].layer.K == 1000


# ---- FC layers need only K and C ---------------------------------------------------------------
def test_fc_layers_need_only_k_and_c(tmp_path):
    p = tmp_path / "n.yaml"
    p.write_text("- {name: fc6, kind: fc, K: 4096, C: 9216}\n- {name: fc7, kind: fc, K: 10, C: 4096, N: 2}\n")
    net = load_target(str(p))
    assert [(nl.name, nl.kind) for nl in net.layers] == [("fc6", "fc"), ("fc7", "fc")]
    assert net.layers[0].layer == Layer(K=4096, C=9216, OY=1, OX=1)
    assert net.layers[1].layer == Layer(K=10, C=4096, OY=1, OX=1, N=2)
    inline = load_target("K=1000,C=2048,kind=fc").layers[0]
    assert inline.kind == "fc" and inline.layer == Layer(K=1000, C=2048, OY=1, OX=1)


def test_fc_layers_refuse_a_filter():
    refused(lambda: load_target("K=10,C=20,kind=fc,FY=3"), "fc layer has FY=1", "kind: conv")


def test_a_conv_layer_still_needs_its_map():
    refused(lambda: load_target("K=10,C=20"), "missing OY, OX", "kind: fc")


def test_the_example_network_loads():
    net = load_target(str(EXAMPLE_NETWORK))
    assert net.name == "example_net"
    kinds = {nl.name: nl.kind for nl in net.layers}
    assert kinds["fc"] == "fc" and kinds["conv1"] == "conv"
    by = {nl.name: nl.layer for nl in net.layers}
    assert by["conv2"].IY == 32 and by["conv3_dw"].is_depthwise and by["conv4"].DY == 2
    assert by["fc"] == Layer(K=10, C=512, OY=1, OX=1)


# ---- schedules ---------------------------------------------------------------------------------
SCHED = {"layer": {"K": 8, "C": 8, "OY": 4, "OX": 4}, "order": ["K", "OY"], "tiles": {"K": 2, "OY": 2},
         "buffers": {"input": 1, "weight": 1, "output": 2}}


def test_a_tile_missing_for_a_loop_in_order_is_an_error():
    d = dict(SCHED, tiles={"K": 2})
    refused(lambda: Schedule.from_dict(d), "'order' has OY", "no size for it", "from 1 to 4")
    assert Schedule.from_dict(SCHED).tiles["OY"] == 2


def test_schedule_file_carries_name_and_architecture(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(dict(SCHED, name="conv1", network="n", used_by=["conv1", "conv2"],
                                 arch={"bits": 16, "buffer": "4KiB"})))
    got = load_schedule(p)
    assert got.name == "conv1" and got.arch == Architecture(16, 16, 16, 16, capacity=4096)
    p.write_text(json.dumps(dict(SCHED, arch={"buffer": 4096})))
    refused(lambda: load_schedule(p), "'arch'", "no unit")
    p.write_text(json.dumps(dict(SCHED, name=3)))
    refused(lambda: load_schedule(p), "'name' must be a string")


@settings(deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_safe_file_stems(name):
    stem = safe_file_stem(name)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,100}", stem), stem
    assert not stem.endswith(".") and len(stem) <= 101


def test_safe_file_stem_examples():
    assert safe_file_stem("conv2/3x3_reduce") == "conv2_3x3_reduce"
    assert safe_file_stem("/stage2/stage2.1/branch2/Conv") == "stage2_stage2.1_branch2_Conv"
    assert safe_file_stem("../../etc/passwd") == "etc_passwd"
    assert safe_file_stem("layer1.0.conv1") == "layer1.0.conv1"
    assert safe_file_stem("...") == "layer" and safe_file_stem("CON") == "_CON"


def test_long_inline_values_are_quoted_short():
    message = refused(lambda: load_target("K=4,C=4,OY=2,OX=2,name=" + "n" * 200 + ",FY=x"))
    assert len(message) < 300


def test_paths_are_read_as_paths_not_strings(tmp_path):
    # a Path argument is fine everywhere a str is
    p = Path(tmp_path / "n.json")
    p.write_text('[{"K": 4, "C": 4, "OY": 2, "OX": 2}]')
    assert load_user_data(p, "layer file") == [{"K": 4, "C": 4, "OY": 2, "OX": 2}]
