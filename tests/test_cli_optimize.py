"""`convsched optimize` and `convsched sweep`, run as a user runs them (a subprocess). Tiny layers only."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convsched.model import bounds
from convsched.search import optimizer as search
from convsched.core.arch import OPERANDS, Architecture
from convsched.core.layer import Layer
from convsched.networks import load_target
from clihelp import one_line_error, run

SPEC = "K=8,C=8,OY=4,OX=4,name=tiny"
LAYER_FILE = """\
- {name: first, K: 8, C: 8, OY: 4, OX: 4}
- {name: second, K: 4, C: 8, OY: 2, OX: 2}
- {name: again, K: 8, C: 8, OY: 4, OX: 4}
"""


@pytest.fixture
def layer_file(tmp_path) -> Path:
    p = tmp_path / "layers.yaml"
    p.write_text(LAYER_FILE)
    return p


def check_contract(obj: dict, names: list[str], layers: list[Layer], capacity: int) -> None:
    assert {"layers", "total_bytes", "macs", "bytes_per_mac", "textbook_total_bytes"} <= set(obj)
    assert [row["name"] for row in obj["layers"]] == names
    arch = Architecture(capacity=capacity)
    for row, L in zip(obj["layers"], layers):
        assert {"name", "layer", "schedule", "traffic", "buffer_words", "total_bytes", "macs"} <= set(row)
        assert row["layer"] == L.to_dict()
        assert set(row["schedule"]) == {"order", "tiles", "buffers"}
        assert set(row["schedule"]["buffers"]) == set(OPERANDS)
        assert set(row["schedule"]["tiles"]) == set(row["schedule"]["order"])
        for op in OPERANDS:
            assert set(row["traffic"][op]) == {"read", "write"}
            assert isinstance(row["traffic"][op]["read"], int)
        ref = search.optimize_layer(L, arch)
        assert row["total_bytes"] == ref.traffic.total_bytes
        assert row["traffic"] == ref.traffic.to_json()["traffic"]
        assert row["buffer_words"] == ref.traffic.buffer_words
        assert row["macs"] == L.macs
        # issue 4: the largest valid lower bound, never above what the optimum moves
        assert row["lower_bound_bytes"] == bounds.lower_bound_bytes(L, arch)
        assert 0 < row["lower_bound_bytes"] <= row["total_bytes"]
    assert obj["lower_bound_bytes"] == sum(row["lower_bound_bytes"] for row in obj["layers"])
    assert obj["total_bytes"] == sum(row["total_bytes"] for row in obj["layers"])
    assert obj["macs"] == sum(row["macs"] for row in obj["layers"])


def test_json_stdout_inline_spec():
    r = run("optimize", SPEC, "--buffer", "128B", "--json", "-")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)          # the whole of stdout is one JSON object
    check_contract(obj, ["tiny"], [Layer(K=8, C=8, OY=4, OX=4)], 128)


def test_json_and_csv_files_from_layer_file(layer_file, tmp_path):
    out, table = tmp_path / "res.json", tmp_path / "res.csv"
    r = run("optimize", layer_file, "--buffer", "0.125KiB", "--json", out, "--csv", table, "--workers", "2")
    assert r.returncode == 0, r.stderr
    net = load_target(str(layer_file))
    check_contract(json.loads(out.read_text()), ["first", "second", "again"], [nl.layer for nl in net.layers], 128)
    rows = list(csv.DictReader(table.open()))
    assert [row["name"] for row in rows] == ["first", "second", "again"]
    assert int(rows[0]["total_bytes"]) == json.loads(out.read_text())["layers"][0]["total_bytes"]
    # the table is still printed when the JSON goes to a file
    for word in ("first", "second", "again", "total", "best textbook", "saving", "B/MAC"):
        assert word in r.stdout
    assert not list(tmp_path.glob(".*.tmp"))
    # ordinary output files: the mode open() would give them, not the temporary file's 0600
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_table_shows_schedule_and_saving():
    r = run("optimize", SPEC, "--buffer", "64B", "--objective", "bytes-per-mac")
    assert r.returncode == 0, r.stderr
    res = search.optimize_layer(Layer(K=8, C=8, OY=4, OX=4), Architecture(capacity=64))
    s = res.schedule
    assert " ".join(f"{d}/{s.tiles[d]}" for d in s.order) in r.stdout
    assert f"{res.traffic.total_bytes:,}" in r.stdout
    assert "x" in r.stdout.split("tiny", 1)[1]           # saving as a ratio, e.g. 1.40x
    assert any(name in r.stdout for name in search.TEXTBOOK)


def test_constraints_and_arch_file(tmp_path):
    arch = tmp_path / "arch.yaml"
    arch.write_text("bits: 8\nbuffer: 1MiB\n")
    r = run("optimize", SPEC, "--arch", arch, "--buffer", "256B", "--order", "K,C,OY,OX", "--tile", "K=4",
            "--json", "-")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)["layers"][0]
    assert row["schedule"]["tiles"]["K"] == 4
    assert json.loads(r.stdout)["arch"]["buffer"] == 256
    assert json.loads(r.stdout)["arch"]["bits"]["psum"] == 8


def test_sweep_json_csv_and_plot(tmp_path):
    plot = tmp_path / "curve.png"
    table = tmp_path / "sweep.csv"
    has_mpl = subprocess.run([sys.executable, "-c", "import matplotlib"], capture_output=True).returncode == 0
    args = ["sweep", SPEC, "--buffer", "4B..2KiB", "--points", "6", "--csv", table, "--json", "-"]
    if has_mpl:
        args += ["--plot", plot]
    r = run(*args)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    pts = obj["points"]
    assert pts[0]["buffer_bytes"] == 4 and pts[-1]["buffer_bytes"] == 2048 and len(pts) == 6
    assert pts[0]["feasible"] is False                   # 4 bytes fit no schedule; reported, not an error
    feas = [p["total_bytes"] for p in pts if p["feasible"]]
    assert feas and all(b <= a for a, b in zip(feas, feas[1:]))
    for p in pts:
        if p["feasible"]:
            assert sum(p["operand_bytes"].values()) == p["total_bytes"]
            assert set(p["dataflows"]) == set(search.TEXTBOOK)
    assert len(table.read_text().strip().splitlines()) == 7
    if has_mpl:
        assert plot.read_bytes()[:4] == b"\x89PNG"


def test_sweep_table():
    r = run("sweep", SPEC, "--buffer", "4B..1KiB", "--points", "3", "--wide")   # the full table
    assert r.returncode == 0, r.stderr
    for word in ("buffer", "optimal B", "weight-stationary", "does not fit", "1KiB", "ratio"):
        assert word in r.stdout


@pytest.mark.parametrize("args, needles", [
    (["optimize", "nosuchnet", "--buffer", "64KiB"], ["unknown network", "resnet50"]),
    (["optimize", SPEC, "--buffer", "KiB"], ["not a number"]),
    (["optimize", SPEC, "--buffer", "64XB"], ["unknown unit"]),
    (["optimize", SPEC], ["--buffer"]),
    (["optimize", SPEC, "--buffer", "4B"], ["smallest that fits"]),
    (["sweep", SPEC, "--buffer", "1MiB..8KiB"], ["wrong way round"]),
    (["sweep", SPEC, "--buffer", "8KiB"], ["8KiB..1MiB"]),
    (["sweep", SPEC, "--buffer", "1B..4B", "--points", "2"], ["no buffer size"]),
    (["sweep", SPEC, "--buffer", "8B..1KiB", "--plot", "curve.txt"], [".png"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--tile", "K=100"], ["K=8"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--tile", "Q=2"], ["unknown dimension"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--order", "K,XY"], ["unknown dimension"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--untiled", "FZ"], ["unknown dimension"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--buffers", "input=1,weight=1,output=1"], ["--order"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--order", "K,C", "--order", "C,K", "--buffers",
      "input=1,weight=1,output=2"], ["exactly one --order"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--order", "K,C", "--buffers", "input=1,weight=9,output=2"],
     ["out of range"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--tile-min", "K=6", "--tile-max", "K=3"], ["contradict"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--tile", "K=2", "--tile-max", "K=4"], ["give one"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--untiled", "K", "--tile", "K=2"], ["untiled"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--order", "K,C", "--tile", "OY=2"], ["order"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--objective", "joules"], ["unknown objective"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--json", "no/such/dir/x.json"], ["does not exist"]),
    (["optimize", SPEC, "--buffer", "1KiB", "--workers", "0"], ["--workers"]),
])
def test_bad_input_one_line_exit_2(args, needles, tmp_path):
    one_line_error(run(*args, cwd=tmp_path), *needles)


def test_missing_matplotlib_is_one_line(tmp_path):
    # a stub package that fails to import stands in for an absent matplotlib
    stub = tmp_path / "stub" / "matplotlib"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    import os
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "stub"))
    r = subprocess.run([sys.executable, "-m", "convsched", "sweep", SPEC, "--buffer", "8B..1KiB", "--plot",
                        str(tmp_path / "c.png")], capture_output=True, text=True, env=env, timeout=120)
    one_line_error(r, "matplotlib", "convsched[plot]")
