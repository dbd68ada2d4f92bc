"""`convsched layers`: table, JSON output and one-line errors (subprocess for the exit status)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convsched.cli import app
from convsched.networks import load_target

LAYER_FIELDS = ["N", "G", "K", "C", "OY", "OX", "FY", "FX", "SY", "SX", "DY", "DX", "PY", "PX", "IY", "IX"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convsched", "layers", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def invoke(*args: str):
    return CliRunner().invoke(app, ["layers", *args])


def test_table_for_builtin():
    r = invoke("resnet18")
    assert r.exit_code == 0, r.output
    out = r.output
    for word in ("name", "kind", "stride", "dilation", "padding", "MACs", "conv1", "layer4.1.conv2", "fc",
                 "1,814,073,344", "21 layers"):
        assert word in out


def test_table_with_batch_and_inline_spec():
    r = invoke("K=64,C=64,OY=56,OX=56,FY=3,FX=3,PY=1,PX=1", "--batch", "2")
    assert r.exit_code == 0, r.output
    assert f"{2 * 64 * 64 * 9 * 56 * 56:,}" in r.output


def test_json_stdout_is_one_object():
    r = run("mobilenet_v2", "--json", "-", "--batch", "2")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)  # the whole of stdout is one JSON document
    net = load_target("mobilenet_v2", batch=2)
    assert obj["macs"] == net.macs
    assert len(obj["layers"]) == len(net.layers)
    for row, nl in zip(obj["layers"], net.layers):
        assert row["name"] == nl.name and row["kind"] == nl.kind and row["macs"] == nl.macs
        assert {f: row[f] for f in LAYER_FIELDS} == {f: getattr(nl.layer, f) for f in LAYER_FIELDS}
    assert obj["layers"][0]["N"] == 2
    assert sum(row["macs"] for row in obj["layers"]) == obj["macs"]


def test_json_to_file(tmp_path):
    out = tmp_path / "layers.json"
    r = invoke("alexnet", "--json", str(out))
    assert r.exit_code == 0, r.output
    assert "conv1" in r.output  # the table is still printed
    obj = json.loads(out.read_text())
    assert [row["name"] for row in obj["layers"]][:2] == ["conv1", "conv2"]
    assert obj["macs"] == load_target("alexnet").macs


def test_onnx_shows_skipped_ops(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["b"]), helper.make_node("Relu", ["b"], ["c"]),
             helper.make_node("GlobalAveragePool", ["c"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], [0.0] * 108)])
    p = tmp_path / "m.onnx"
    p.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    r = invoke(str(p), "--batch", "3")
    assert r.exit_code == 0, r.output
    assert "stem" in r.output and "skipped 3 other node(s): Relu x2, GlobalAveragePool x1" in r.output
    obj = json.loads(run(str(p), "--batch", "3", "--json", "-").stdout)
    assert obj["skipped"] == {"GlobalAveragePool": 1, "Relu": 2}
    assert obj["layers"][0]["N"] == 3 and obj["macs"] == 3 * 4 * 3 * 9 * 64
    del onnx


@pytest.mark.parametrize("args, message", [
    (["nosuchnet"], "unknown network 'nosuchnet'"),
    (["missing.onnx"], "missing.onnx does not exist"),
    (["missing.yaml"], "does not exist"),
    (["bad.yaml"], "not valid YAML at line"),
    (["notonnx.onnx"], "not an ONNX file"),
    (["K=64,C=64,OY=56,OX=abc"], "OX='abc' is not a whole number"),
    (["K=64,C=64,OY=56,OX=56,FY=0"], "FY=0 must be at least 1"),
    (["alexnet", "--batch", "0"], "--batch"),
    (["alexnet", "--json", "nodir/out.json"], "folder nodir does not exist"),
])
def test_bad_input_one_line_exit_2(tmp_path, args, message):
    (tmp_path / "bad.yaml").write_text("- {K: 8, C: 3\n- x\n")
    (tmp_path / "notonnx.onnx").write_text("plain text\n")
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert r.stdout == ""


def test_onnx_missing_package_message(tmp_path):
    p = tmp_path / "m.onnx"
    p.write_bytes(b"\x08\x07")
    code = ("import sys; sys.modules['onnx'] = None; from convsched.cli import main; "
            f"main(['layers', {str(p)!r}])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: reading .onnx models needs the onnx package: pip install 'convsched[onnx]'"
