"""Bad input raises ConvschedError with one line that says what is wrong and how to fix it."""

from __future__ import annotations

import json

import pytest

from convsched.core.arch import Architecture
from convsched.core.errors import ConvschedError
from convsched.core.layer import Layer
from convsched.core.schedule import Schedule
from convsched.core.units import parse_size, parse_size_range

LAYER = {"K": 4, "C": 4, "OY": 4, "OX": 4, "FY": 3, "FX": 3, "PY": 1, "PX": 1}
BUFFERS = {"input": 0, "weight": 0, "output": 0}


def fails(fn, *needles: str) -> str:
    """Run fn; it must raise ConvschedError whose one-line message contains every needle."""
    with pytest.raises(ConvschedError) as info:
        fn()
    msg = str(info.value)
    assert msg and "\n" not in msg, repr(msg)
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    return msg


def schedule(**over) -> dict:
    d = {"layer": dict(LAYER), "order": ["K", "OY"], "tiles": {"K": 2, "OY": 2},
         "buffers": {"input": 2, "weight": 1, "output": 2}}
    d.update(over)
    return d


# ---- layers ---------------------------------------------------------------------------
@pytest.mark.parametrize("fields,needles", [
    # the input gives OY = 4 (1x1 filter, stride 1, no padding), not 2 or 3
    ({"K": 1, "C": 1, "OY": 2, "OX": 4, "IY": 4, "IX": 4}, ("OY=2", "fix OY or IY", "gives OY=4")),
    ({"K": 1, "C": 1, "OY": 3, "OX": 4, "IY": 4, "IX": 4}, ("OY=3", "fix OY or IY")),
    # stride 2 from an 8-wide input gives 4 columns, not 2
    ({"K": 1, "C": 1, "OY": 4, "OX": 2, "SY": 2, "SX": 2, "IY": 8, "IX": 8}, ("OX=2", "gives OX=4")),
    # 3x3 stride 2 pad 1 from 8 rows gives 4, not 3
    ({"K": 1, "C": 1, "OY": 3, "OX": 4, "FY": 3, "FX": 3, "SY": 2, "SX": 2, "PY": 1, "PX": 1,
      "IY": 8, "IX": 8}, ("OY=3", "IY=8")),
])
def test_output_size_that_does_not_follow_from_the_input(fields, needles):
    fails(lambda: Layer.from_dict(fields), *needles)


def test_padding_that_leaves_no_input():
    fails(lambda: Layer(K=1, C=1, OY=1, OX=1, PY=5), "PY=5", "reduce the padding")
    fails(lambda: Layer(K=1, C=1, OY=2, OX=2, FY=3, PY=3), "leave no input", "reduce the padding")
    # the only output column reads column -2 (padding); IX=1 is allowed by the stride of 3
    fails(lambda: Layer(K=1, C=1, OY=1, OX=1, SX=3, PX=2, IX=1), "PX=2", "every output in the padding",
          "reduce it")
    # with a given input and top padding 2, the input gives 5 outputs, not 1
    fails(lambda: Layer(K=1, C=1, OY=1, OX=1, PX=2, IX=3), "OX=1", "gives OX=5")


@pytest.mark.parametrize("k,c,g", [(4, 6, 4), (6, 4, 4), (3, 3, 2), (4, 4, 8)])
def test_groups_must_divide_channels(k, c, g):
    fails(lambda: Layer(K=k, C=c, OY=2, OX=2, G=g), f"G={g}", "must divide", "depthwise use G = C = K")


@pytest.mark.parametrize("name", ["N", "G", "K", "C", "OY", "OX", "FY", "FX", "SY", "SX", "DY", "DX"])
@pytest.mark.parametrize("value", [0, -1])
def test_sizes_must_be_positive(name, value):
    fields = {"K": 2, "C": 2, "OY": 2, "OX": 2, name: value}
    fails(lambda: Layer.from_dict(fields), f"{name}={value}", "at least 1")


@pytest.mark.parametrize("name", ["PY", "PX"])
def test_padding_must_not_be_negative(name):
    fails(lambda: Layer.from_dict({"K": 2, "C": 2, "OY": 2, "OX": 2, name: -1}), f"{name}=-1", "must not be negative")


def test_given_input_size_must_be_positive():
    fails(lambda: Layer.from_dict({"K": 2, "C": 2, "OY": 2, "OX": 2, "IY": -3}), "IY=-3", "at least 1")


@pytest.mark.parametrize("value", [2.5, "4", None, True, [4], float("nan"), float("inf")])
def test_sizes_must_be_integers(value):
    fails(lambda: Layer.from_dict({"K": value, "C": 2, "OY": 2, "OX": 2}), "K=", "not an integer", "whole number")


@pytest.mark.parametrize("value, hint", [(64.0, "write 64"), (1e30, "write a whole number"),
                                         (float(2**53 + 2), "write a whole number")])
def test_floats_are_refused_even_when_whole(value, hint):
    # a float may already be rounded (1e30, anything above 2**53): dimensions are integers as written
    fails(lambda: Layer.from_dict({"K": value, "C": 2, "OY": 2, "OX": 2}), "K=", "floating-point", hint)


def test_layer_fields_unknown_or_missing():
    fails(lambda: Layer.from_dict({"K": 2, "C": 2, "OY": 2, "OX": 2, "Z": 1}), "unknown layer field", "Z",
          "known fields")
    fails(lambda: Layer.from_dict({"K": 2, "C": 2, "OY": 2, "OX": 2, 7: 1}), "unknown layer field", "7")
    fails(lambda: Layer.from_dict({"C": 2, "OY": 2, "OX": 2}), "missing K", "give at least")
    fails(lambda: Layer.from_dict({"K": 2, "C": 2}), "missing OY, OX")
    fails(lambda: Layer.from_dict([1, 2]), "must be a mapping")


# ---- schedules ----------------------------------------------------------------------------
def test_unknown_dimension_in_order():
    fails(lambda: Schedule.from_dict(schedule(order=["K", "Q"])), "unknown dimension 'Q'", "N G K C OY OX FY FX")
    fails(lambda: Schedule.from_dict(schedule(order=["k"], tiles={})), "'k'")
    fails(lambda: Schedule.from_dict(schedule(order=["IY"], tiles={})), "'IY'")


def test_repeated_dimension_in_order():
    fails(lambda: Schedule.from_dict(schedule(order=["K", "OY", "K"])), "K repeated", "list each loop once")


def test_order_must_be_a_list_of_names():
    for bad in ("K", None, [1], {"K": 1}):
        fails(lambda: Schedule.from_dict(schedule(order=bad)), "'order' must be a list")


@pytest.mark.parametrize("tile", [0, -1, 5, 2.0, "2", True, None])
def test_tile_out_of_range(tile):
    fails(lambda: Schedule.from_dict(schedule(tiles={"K": tile, "OY": 2})), "tile K=", "from 1 to 4")


def test_tile_limit_is_per_group_channels():
    # G=2, K=8: the K loop runs over K/G = 4 channels; a tile of 8 is too big
    d = schedule(layer={"K": 8, "C": 4, "G": 2, "OY": 2, "OX": 2}, order=["K"], tiles={"K": 8},
                 buffers=BUFFERS)
    fails(lambda: Schedule.from_dict(d), "tile K=8", "from 1 to 4")


def test_tile_for_a_dimension_not_in_order():
    fails(lambda: Schedule.from_dict(schedule(tiles={"K": 2, "OY": 2, "C": 2})),
          "tile C=2", "no loop in order", "add C to order or drop its tile")
    fails(lambda: Schedule.from_dict(schedule(tiles={"K": 2, "Z": 2})), "unknown dimension 'Z' in tiles")
    fails(lambda: Schedule.from_dict(schedule(tiles=[2, 2])), "'tiles' must map")


@pytest.mark.parametrize("level", [-1, 3, 100, 1.0, "1", None, True])
def test_buffer_level_out_of_range(level):
    d = schedule(buffers={"input": level, "weight": 1, "output": 2})
    fails(lambda: Schedule.from_dict(d), "buffer level input=", "from 0 to 2")


def test_missing_or_unknown_operands():
    fails(lambda: Schedule.from_dict(schedule(buffers={"input": 1, "weight": 1})),
          "no level for output", "give input, weight and output")
    fails(lambda: Schedule.from_dict(schedule(buffers={"input": 1, "weight": 1, "output": 1, "psum": 1})),
          "unknown operand(s) psum")
    fails(lambda: Schedule.from_dict(schedule(buffers={"input": 1, "weight": 1, "output": 1, 3: 1})),
          "unknown operand(s) 3")
    d = schedule()
    del d["buffers"]
    fails(lambda: Schedule.from_dict(d), "'buffers' must map")
    d = schedule()
    del d["layer"]
    fails(lambda: Schedule.from_dict(d), "no 'layer'")
    fails(lambda: Schedule.from_dict(schedule(layer=None)), "must be a mapping")
    fails(lambda: Schedule.from_dict(schedule(extra=1)), "unknown schedule key(s) extra")
    fails(lambda: Schedule.from_dict([]), "must be a JSON object")


def test_schedule_files(tmp_path):
    p = tmp_path / "s.json"
    p.write_text('{"layer": {"K": 4,')
    fails(lambda: Schedule.from_file(p), "not valid JSON", "line 1")
    p.write_text("")
    fails(lambda: Schedule.from_file(p), "not valid JSON")
    p.write_text("[1, 2]")
    fails(lambda: Schedule.from_file(p), "must be a JSON object")
    fails(lambda: Schedule.from_file(tmp_path / "missing.json"), "does not exist")
    fails(lambda: Schedule.from_file(tmp_path), "is a folder", "expected a file")
    p.write_text(json.dumps(schedule()))
    assert Schedule.from_file(p).order == ("K", "OY")


def test_schedule_file_not_utf8(tmp_path):
    p = tmp_path / "s.json"
    p.write_bytes(b"\xff\xfe{}")
    fails(lambda: Schedule.from_file(p), "s.json")


def test_schedule_file_deeply_nested(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    fails(lambda: Schedule.from_file(p), "s.json")


# ---- architectures --------------------------------------------------------------------------
@pytest.mark.parametrize("data,needles", [
    ({"bits": 0}, ("input_bits=0", "positive whole number of bits")),
    ({"bits": -3}, ("-3", "positive")),
    ({"bits": True}, ("True",)),
    ({"bits": "8"}, ("'bits' must be",)),
    ({"bits": [8]}, ("'bits' must be",)),
    ({"bits": {"input": 0}}, ("input_bits=0",)),
    ({"bits": {"psum": 8.5}}, ("psum_bits=8.5",)),
    ({"bits": {"inpt": 8}}, ("unknown word size(s) inpt", "use input, weight, psum, output")),
    ({"bits": {8: 8}}, ("unknown word size(s) 8",)),
    ({"buffer": "64XB"}, ("unknown unit 'XB'", "KiB")),
    ({"buffer": 0}, ("must be positive",)),
    ({"buffer": -1}, ("must be positive",)),
    ({"buffer": "1.5B"}, ("whole number of bytes",)),
    ({"buffer": {"input": "1KiB"}}, ("needs exactly input, weight and output",)),
    ({"buffer": {"input": 1, "weight": 1, "output": 1, "psum": 1}}, ("needs exactly",)),
    ({"double_buffer": "yes"}, ("'double_buffer' must be true or false",)),
    ({"dma_granularity": -4}, ("must be positive",)),
    ({"dma_granularity": "3XB"}, ("unknown unit 'XB'",)),
    ({"capacity": "64KiB"}, ("unknown architecture key(s) capacity", "known: bits, buffer")),
    ({1: 2}, ("unknown architecture key(s) 1",)),
    ([1, 2], ("must be a YAML mapping",)),
])
def test_bad_architecture(data, needles):
    fails(lambda: Architecture.from_dict(data), *needles)


def test_architecture_constructor_checks():
    fails(lambda: Architecture(psum_bits=0), "psum_bits=0")
    fails(lambda: Architecture(capacity=0), "capacity 0 must be positive")
    fails(lambda: Architecture(dma_granularity=-1), "must not be negative")
    fails(lambda: Architecture(capacity=1, capacity_per_operand=(1, 1, 1)), "not both")
    fails(lambda: Architecture(capacity_per_operand=(1, 1)), "three positive sizes")
    fails(lambda: Architecture.from_flags(bits=0), "positive")


def test_architecture_files(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text("bits: [\n")
    fails(lambda: Architecture.from_file(p), "not valid YAML", "line", "fix its syntax")
    p.write_text("bits: 8\nbufer: 64KiB\n")
    fails(lambda: Architecture.from_file(p), "unknown architecture key(s) bufer")
    p.write_text("- 1\n- 2\n")
    fails(lambda: Architecture.from_file(p), "YAML mapping")
    fails(lambda: Architecture.from_file(tmp_path / "none.yaml"), "does not exist")
    fails(lambda: Architecture.from_file(tmp_path), "is a folder", "expected a file")
    p.write_text("")   # an empty file is the default architecture
    assert Architecture.from_file(p) == Architecture()
    p.write_text("bits: {input: 4, weight: 4, psum: 16, output: 8}\nbuffer: 64KiB\n"
                 "double_buffer: true\ndma_granularity: 16B\n")
    assert Architecture.from_file(p) == Architecture(4, 4, 16, 8, capacity=65536, double_buffer=True,
                                                     dma_granularity=16)


def test_architecture_file_not_utf8(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_bytes(b"\xff\xfebits: 8\n")
    fails(lambda: Architecture.from_file(p), "a.yaml")


# ---- sizes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,needles", [
    ("64XB", ("unknown unit 'XB'", "use B, KiB")),
    ("64 parsecs", ("unknown unit",)),
    ("", ("not a number with a unit", "write e.g.")),
    ("KiB", ("not a number with a unit",)),
    ("-1KiB", ("not a number with a unit",)),
    ("1e3", ("not a number with a unit",)),
    ("0", ("positive whole number of bytes",)),
    ("0KiB", ("positive",)),
    ("1.5B", ("whole number of bytes",)),
    (0, ("must be positive",)),
    (-5, ("must be positive",)),
    (True, ("not a size",)),
])
def test_bad_sizes(text, needles):
    fails(lambda: parse_size(text), *needles)


def test_good_sizes():
    assert parse_size("512B") == 512
    assert parse_size("64KiB") == 65536 == parse_size("64 KiB") == parse_size("64kib")
    assert parse_size("64kB") == 64000 == parse_size("64KB")
    assert parse_size("1MiB") == 1 << 20 and parse_size("1MB") == 10**6
    assert parse_size("1.5KiB") == 1536


def test_size_ranges():
    assert parse_size_range("8KiB..1MiB") == (8192, 1 << 20)
    assert parse_size_range("8KiB..8KiB") == (8192, 8192)
    fails(lambda: parse_size_range("1MiB..8KiB"), "wrong way round", "write 8KiB..1MiB")
    fails(lambda: parse_size_range("8KiB"), "must look like 8KiB..1MiB")
    fails(lambda: parse_size_range("1..2..3"), "must look like")
    fails(lambda: parse_size_range("8KiB.."), "not a number with a unit")
    fails(lambda: parse_size_range("8XB..1MiB"), "unknown unit 'XB'")
