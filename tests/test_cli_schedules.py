"""From `optimize` to the schedule commands, as a user runs them: `optimize --save-schedules DIR`
files and `optimize --json` output (with `--layer NAME`) read by evaluate/simulate/codegen/run-c,
with the bytes `optimize` printed."""

from __future__ import annotations

import json
import os
import shutil
from importlib import resources

import pytest

from convsched.cli import main
from clihelp import one_line_error, run

EXAMPLE_NETWORK = str(resources.files("convsched").joinpath("data/example_network.yaml"))
HAVE_CC = shutil.which(os.environ.get("CC") or "cc") is not None


def cli_json(capsys, *args) -> dict:
    """A command run in this process (fast), its --json - output parsed."""
    capsys.readouterr()
    try:
        main([*map(str, args), "--json", "-"])
    except SystemExit as e:
        assert e.code in (0, None), capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory):
    """optimize resnet18 at 64 KiB, once: its JSON output and its saved schedules."""
    tmp = tmp_path_factory.mktemp("resnet18")
    out = tmp / "opt.json"
    r = run("optimize", "resnet18", "--buffer", "64KiB", "--save-schedules", tmp / "sched", "--json", out)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text()), tmp / "sched", r


def test_save_schedules_writes_one_file_per_distinct_layer(resnet18):
    opt, folder, r = resnet18
    files = sorted(folder.glob("*.json"))
    assert len(files) == opt["unique_layers"]
    assert f"wrote {len(files)} schedule file(s) for {len(opt['layers'])} layer(s) to {folder}" in r.stderr
    served = []
    for f in files:
        d = json.loads(f.read_text())
        assert f.name == d["name"] + ".json"          # resnet18's names are safe as they are
        assert d["network"] == "resnet18" and d["used_by"][0] == d["name"]
        assert d["arch"]["buffer"] == "64KiB"
        served += d["used_by"]
    assert sorted(served) == sorted(e["name"] for e in opt["layers"])


def test_evaluate_on_a_saved_file_gives_the_bytes_optimize_printed(resnet18, capsys):
    opt, folder, _ = resnet18
    by_name = {e["name"]: e for e in opt["layers"]}
    for f in sorted(folder.glob("*.json")):
        d = json.loads(f.read_text())
        got = cli_json(capsys, "evaluate", f)
        for name in d["used_by"]:
            assert got["total_bytes"] == by_name[name]["total_bytes"], (f.name, name)
            assert got["traffic"] == by_name[name]["traffic"]


def test_evaluate_takes_optimize_json_with_layer(resnet18, tmp_path, capsys):
    opt, _, _ = resnet18
    path = tmp_path / "opt.json"
    path.write_text(json.dumps(opt))
    for e in opt["layers"]:
        got = cli_json(capsys, "evaluate", path, "--layer", e["name"])
        assert got["total_bytes"] == e["total_bytes"], e["name"]


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """optimize the shipped example network at 16 KiB, once (its layers are small enough to walk)."""
    tmp = tmp_path_factory.mktemp("example")
    r = run("optimize", EXAMPLE_NETWORK, "--buffer", "16KiB", "--save-schedules", tmp, "--json", tmp / "opt.json")
    assert r.returncode == 0, r.stderr
    return json.loads((tmp / "opt.json").read_text()), tmp


def test_the_example_network_round_trip(example, capsys):
    opt, folder = example
    for e in opt["layers"]:
        assert cli_json(capsys, "evaluate", folder / f"{e['name']}.json")["total_bytes"] == e["total_bytes"]


def test_simulate_and_codegen_read_a_saved_file_as_it_is(example, tmp_path):
    opt, folder = example
    conv2 = next(e for e in opt["layers"] if e["name"] == "conv2")
    r = run("simulate", folder / "conv2.json", "--json", "-")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["output_matches"] and got["model_matches"] and got["total_bytes"] == conv2["total_bytes"]
    r = run("codegen", folder / "conv2.json", "-o", tmp_path / "conv2.c")
    assert r.returncode == 0, r.stderr
    assert "dma_copy" in (tmp_path / "conv2.c").read_text()


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler ('cc' or $CC) on PATH")
def test_run_c_takes_optimize_json_with_layer(example):
    opt, folder = example
    r = run("run-c", folder / "opt.json", "--layer", "conv2", "--json", "-")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["passed"]


def test_layer_word_sizes_and_double_buffering_travel_with_the_schedule(tmp_path, capsys):
    # a quantized layer's own word sizes, and the architecture's psum size and double buffering
    net = tmp_path / "q.yaml"
    net.write_text("- {name: q/conv, K: 16, C: 8, OY: 8, OX: 8, FY: 3, FX: 3, PY: 1, PX: 1, "
                   "input_bits: 4, weight_bits: 2}\n- {name: plain, K: 16, C: 16, OY: 8, OX: 8}\n")
    out = tmp_path / "opt.json"
    r = run("optimize", net, "--buffer", "2KiB", "--psum-bits", "24", "--double-buffer",
            "--save-schedules", tmp_path / "s", "--json", out)
    assert r.returncode == 0, r.stderr
    opt = json.loads(out.read_text())
    saved = json.loads((tmp_path / "s" / "q_conv.json").read_text())
    assert saved["name"] == "q/conv"
    assert saved["arch"]["bits"] == {"input": 4, "weight": 2, "psum": 24, "output": 8}
    assert saved["arch"]["double_buffer"] is True
    for e in opt["layers"]:
        by_file = cli_json(capsys, "evaluate", tmp_path / "s" / f"{e['name'].replace('/', '_')}.json")
        by_layer = cli_json(capsys, "evaluate", out, "--layer", e["name"])
        assert by_file["total_bytes"] == by_layer["total_bytes"] == e["total_bytes"]
    # flags still win: --bits on top of the carried architecture
    r = run("evaluate", tmp_path / "s" / "q_conv.json", "--bits", "16", "--json", "-")
    assert json.loads(r.stdout)["total_bytes"] != opt["layers"][0]["total_bytes"]


def test_file_names_are_safe_and_distinct(tmp_path):
    net = tmp_path / "n.yaml"
    net.write_text("- {name: a/b, K: 8, C: 8, OY: 4, OX: 4}\n- {name: a_b, K: 4, C: 8, OY: 4, OX: 4}\n"
                   "- {name: ../up, K: 4, C: 4, OY: 4, OX: 4}\n- {name: A_B, K: 4, C: 4, OY: 2, OX: 2}\n")
    r = run("optimize", net, "--buffer", "4KiB", "--save-schedules", tmp_path / "out", "--json", "-")
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["A_B-3.json", "a_b-2.json", "a_b.json", "up.json"]
    assert json.loads((tmp_path / "out" / "a_b.json").read_text())["name"] == "a/b"
    assert not (tmp_path / "up.json").exists()


def test_save_schedules_refuses_a_file_as_folder_before_searching(tmp_path):
    f = tmp_path / "taken"
    f.write_text("x")
    one_line_error(run("optimize", "K=8,C=8,OY=4,OX=4", "--buffer", "1KiB", "--save-schedules", f),
                       "is not a folder")


# ---- --layer: clear one-line errors ------------------------------------------------------------
def test_layer_errors(resnet18, tmp_path):
    opt, folder, _ = resnet18
    path = tmp_path / "opt.json"
    path.write_text(json.dumps(opt))
    line = one_line_error(run("evaluate", path), "optimize output with 21 layers", "--layer NAME",
                              "conv1", "layer1.0.conv1")
    assert len(line) < 400
    one_line_error(run("simulate", path, "--layer", "layer1.0.conv9"), "no layer 'layer1.0.conv9'",
                       "did you mean", "layer1.0.conv1")
    one_line_error(run("codegen", path, "--layer", "zzz"), "no layer 'zzz'", "conv1")
    one_line_error(run("evaluate", folder / "fc.json", "--layer", "conv1"), "holds one schedule",
                       "'fc'", "drop --layer")


def test_a_single_layer_optimize_output_needs_no_layer(tmp_path, capsys):
    out = tmp_path / "opt.json"
    r = run("optimize", "K=8,C=8,OY=4,OX=4,name=tiny", "--buffer", "1KiB", "--json", out)
    assert r.returncode == 0, r.stderr
    opt = json.loads(out.read_text())
    assert cli_json(capsys, "evaluate", out)["total_bytes"] == opt["layers"][0]["total_bytes"]


def test_sweep_output_is_refused_with_a_pointer(tmp_path):
    out = tmp_path / "sweep.json"
    r = run("sweep", "K=8,C=8,OY=4,OX=4", "--buffer", "1KiB..4KiB", "--points", "2", "--json", out)
    assert r.returncode == 0, r.stderr
    one_line_error(run("evaluate", out), "sweep", "no schedules", "--save-schedules")
