"""`convsched hwc`, run as a user runs it (a subprocess): JSON contract, sweep, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LAYER = "K=8,C=8,OY=7,OX=7,name=pw"
KEYS = ("hwc_bytes", "hwce_bytes", "ratio", "hwc_cycles", "hwce_cycles")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convsched", "hwc", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def one_line_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0]


def test_json_contract_on_inline_layer():
    r = run(LAYER, "--json", "-", "--buffer", "2KiB")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)           # exactly one JSON object on stdout
    for k in KEYS + ("layers",):
        assert k in obj
    (layer,) = obj["layers"]
    assert layer["name"] == "pw"
    for k in KEYS:
        assert k in layer
    assert layer["ratio"] == layer["hwce_bytes"] / layer["hwc_bytes"]
    assert obj["ratio"] == obj["hwce_bytes"] / obj["hwc_bytes"]
    assert obj["hwc_bytes"] == layer["hwc_bytes"] and obj["buffer_bytes"] == 2048


def test_table_sweep_and_plot(tmp_path: Path):
    r = run(LAYER)
    assert r.returncode == 0 and "ratio" in r.stdout and "pw" in r.stdout
    png = tmp_path / "sweep.png"
    r = run(LAYER, "--sweep", "256B..1KiB", "--json", "-", "--plot", png)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert [p["buffer_bytes"] for p in obj["sweep"]] == [256, 512, 1024]
    assert all(set(KEYS) <= set(p) for p in obj["sweep"])
    assert png.stat().st_size > 0


def test_config_errors_exit_2(tmp_path: Path):
    cfg = tmp_path / "hwc.yaml"
    cfg.write_text("port_bytes_per_cycle: 0\n")
    one_line_error(run(LAYER, "--config", cfg), "port_bytes_per_cycle")
    cfg.write_text("buffers: {input: 2B, weight: 2B, output: 2B}\n")
    one_line_error(run(LAYER, "--config", cfg), "too small", "smallest total")
    cfg.write_text("macs_per_cycle: [\n")
    one_line_error(run(LAYER, "--config", cfg), "not valid YAML")
    one_line_error(run(LAYER, "--config", tmp_path / "missing.yaml"), "does not exist")
    one_line_error(run(LAYER, "--buffer", "4B"), "smallest total HWC buffer")
    one_line_error(run(LAYER, "--buffer", "1KiB", "--sweep", "1KiB..2KiB"), "not both")
    one_line_error(run(LAYER, "--compare", "eyeriss"), "hwce")
    one_line_error(run(LAYER, "--sweep", "8KiB..4KiB"), "wrong way round")
