"""What the user sees in the terminal: every table reads at 80 columns (or COLUMNS) without cutting a number,
piped output without COLUMNS is the whole table, `--wide` gives the full table, names print as written.

Commands run as a user runs them, in a subprocess whose stdout is a pipe; COLUMNS is set (or removed)
explicitly, since a test runner may export its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "convsched" / "data" / "example_schedule.json"
HAVE_CC = shutil.which(os.environ.get("CC") or "cc") is not None
LONG_NAMES = """\
name: long
layers:
  - {name: a_layer_name_far_too_long_for_any_column.of_a_table_at_eighty_characters.conv1,
     K: 16, C: 8, OY: 6, OX: 6, FY: 3, FX: 3, PY: 1, PX: 1}
  - {name: second, K: 8, C: 16, OY: 3, OX: 3, FY: 3, FX: 3, SY: 2, SX: 2, PY: 1, PX: 1}
"""


def run(*args, columns: int | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    r = subprocess.run([sys.executable, "-m", "convsched", *map(str, args)], capture_output=True, text=True,
                       env=env, cwd=cwd, timeout=600)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def fits(text: str, width: int) -> None:
    """Every line within `width` characters, and nothing cut with an ellipsis."""
    assert "…" not in text
    too_long = [line for line in text.splitlines() if len(line) > width]
    assert not too_long, too_long


def json_of(*args) -> dict:
    return json.loads(run(*args, "--json", "-").stdout)


def total_line(text: str) -> str:
    """The table's total row (its first line and, when cells are stacked, the line under it)."""
    lines = text.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("total"))
    return " ".join(lines[i:i + 2])


@pytest.fixture(scope="module")
def long_names(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("net") / "long.yaml"
    p.write_text(LONG_NAMES)
    return p


# ---------------------------------------------------------------------------
# optimize and sweep


@pytest.fixture(scope="module")
def resnet18() -> dict:
    return json_of("optimize", "resnet18", "--buffer", "64KiB")


def test_optimize_fits_80_columns_piped(resnet18):
    out = run("optimize", "resnet18", "--buffer", "64KiB", columns=80).stdout
    fits(out, 80)
    total = total_line(out)
    assert f"{resnet18['total_bytes']:,}" in total and f"{resnet18['textbook_total_bytes']:,}" in total
    for layer in resnet18["layers"]:
        assert layer["name"] in out and f"{layer['total_bytes']:,}" in out
    assert "--wide" in out          # the narrow layout says how to see every column


def test_optimize_full_table_when_it_fits_or_asked(resnet18):
    wide = run("optimize", "resnet18", "--buffer", "64KiB", columns=250).stdout
    fits(wide, 250)
    unlimited = run("optimize", "resnet18", "--buffer", "64KiB").stdout    # piped, no COLUMNS: never cut
    asked = run("optimize", "resnet18", "--buffer", "64KiB", "--wide", columns=80).stdout
    for out in (wide, unlimited, asked):
        assert "input B" in out and "weight B" in out and "output B" in out and "…" not in out
        assert all(f"{v:,}" in total_line(out) for v in resnet18["operand_bytes"].values())
    assert max(map(len, unlimited.splitlines())) > 80       # the whole table, at its natural width


def test_sweep_fits_80_columns(long_names):
    obj = json_of("sweep", long_names, "--buffer", "64B..4KiB", "--points", "4")
    out = run("sweep", long_names, "--buffer", "64B..4KiB", "--points", "4", columns=80).stdout
    fits(out, 80)
    for p in obj["points"]:
        if p["feasible"]:
            assert f"{p['total_bytes']:,}" in out
        for v in p["dataflows"].values():
            assert v is None or f"{v:,}" in out
    full = run("sweep", long_names, "--buffer", "64B..4KiB", "--points", "4", "--wide", columns=80).stdout
    assert "input B" in full and "weight-stationary" in full


def test_long_names_fold_but_numbers_stay_whole(long_names):
    obj = json_of("optimize", long_names, "--buffer", "1KiB")
    out = run("optimize", long_names, "--buffer", "1KiB", columns=80).stdout
    fits(out, 80)
    assert f"{obj['total_bytes']:,}" in total_line(out)
    assert "a_layer_name" in out                       # the long name is folded over lines, not cut
    layers = run("layers", long_names, columns=60).stdout
    fits(layers, 60)
    assert f"{sum(layer['macs'] for layer in obj['layers']):,}" in layers


# ---------------------------------------------------------------------------
# layers


@pytest.mark.parametrize("net", ["resnet18", "mobilenet_v2", "googlenet"])
def test_layers_fit_80_columns(net):
    obj = json_of("layers", net)
    out = run("layers", net, columns=80).stdout
    fits(out, 80)
    rows = out.splitlines()
    for layer in obj["layers"]:        # each name whole on the line with its MACs
        assert any(row.startswith(layer["name"] + " ") and f"{layer['macs']:,}" in row for row in rows), layer
    assert f"{sum(layer['macs'] for layer in obj['layers']):,}" in total_line(out)
    full = run("layers", net).stdout
    assert "dilation" in full and "input" in full


# ---------------------------------------------------------------------------
# evaluate, simulate, demo, run-c


@pytest.mark.parametrize("command", ["evaluate", "simulate"])
def test_schedule_tables_fit_80_columns(command):
    obj = json_of(command, EXAMPLE)
    out = run(command, EXAMPLE, columns=80).stdout
    fits(out, 80)
    assert f"{obj['total_bytes']:,} B" in out and f"{obj['total_words']:,} words" in out
    for op, t in obj["traffic"].items():
        assert f"{t['read']:,}" in out and f"{obj['buffer_words'][op]:,}" in out
    full = run(command, EXAMPLE, columns=120).stdout
    fits(full, 120)
    assert "read words" in full.splitlines()[2] and f"{obj['total_bytes']:,} B" in total_line(full)


def test_demo_fits_80_columns():
    fits(run("demo", columns=80).stdout, 80)


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler ('cc' or $CC) on PATH")
def test_run_c_fits_80_columns():
    obj = json.loads(run("run-c", EXAMPLE, "--json", "-").stdout)
    out = run("run-c", EXAMPLE, columns=80).stdout
    fits(out, 80)
    total = total_line(out)
    for key in ("predicted", "measured", "predicted_bytes", "measured_bytes"):
        assert f"{sum(v for o in obj[key].values() for v in o.values()):,}" in total, key
    assert "PASS" in out


# ---------------------------------------------------------------------------
# hwc


def test_hwc_fits_80_columns(long_names):
    obj = json_of("hwc", long_names, "--buffer", "2KiB")
    out = run("hwc", long_names, "--buffer", "2KiB", columns=80).stdout
    fits(out, 80)
    total = total_line(out)
    for key in ("hwc_bytes", "hwce_bytes", "hwc_cycles", "hwce_cycles"):
        assert f"{obj[key]:,}" in total, key
    sweep = json_of("hwc", long_names, "--sweep", "1KiB..4KiB")
    out = run("hwc", long_names, "--sweep", "1KiB..4KiB", columns=80).stdout
    fits(out, 80)
    for p in sweep["sweep"]:
        assert f"{p['hwc_bytes']:,}" in out


def test_hwc_plot_says_where_it_wrote(tmp_path):
    pytest.importorskip("matplotlib")
    # (a name without .png/.svg/.pdf is refused, not silently given a suffix: tests/test_outputs.py)
    out = run("hwc", "K=8,C=8,OY=7,OX=7,name=pw", "--buffer", "2KiB", "--plot", tmp_path / "fig.png",
              "--json", tmp_path / "r.json", columns=80).stdout
    assert f"wrote {tmp_path / 'fig.png'}" in out and (tmp_path / "fig.png").stat().st_size > 0
    assert f"wrote {tmp_path / 'r.json'}" in out


# ---------------------------------------------------------------------------
# names are text, sizes of any magnitude


MARKUP_NAMES = ["[/x]", "[link=https://example.com]a[/link]b", "[bold]b[/bold]", ":smile:"]


@pytest.mark.parametrize("name", MARKUP_NAMES)
def test_names_print_as_written(name, tmp_path):
    spec = f"K=8,C=8,OY=4,OX=4,name={name}"
    for args in (["layers", spec], ["optimize", spec, "--buffer", "1KiB"],
                 ["sweep", spec, "--buffer", "256B..1KiB", "--points", "2"], ["hwc", spec, "--buffer", "1KiB"]):
        for columns in (None, 80):
            out = run(*args, columns=columns).stdout
            assert name in out, (args, out)
    p = tmp_path / "net.yaml"
    p.write_text(f"name: '{name}'\nlayers:\n  - {{name: '{name}', K: 4, C: 4, OY: 4, OX: 4}}\n")
    md = run("report", p, "--buffer", "256B", "--workers", "1", "--samples", "1").stdout
    assert f"# convsched report: {name}" in md and f"| {name} |" in md


def test_huge_layer_table_prints(tmp_path):
    """K = C = 2**24, the largest accepted (docs/limits.md; 10**39, the most digits a file may give, is
    refused): the table prints every digit (format_size and G-MACs in integers, not floats)."""
    s = tmp_path / "big.json"
    s.write_text(json.dumps({"layer": {"K": 10 ** 39, "C": 1, "OY": 1, "OX": 1}, "order": [], "tiles": {},
                             "buffers": {"input": 0, "weight": 0, "output": 0}}))
    r = subprocess.run([sys.executable, "-m", "convsched", "evaluate", s], capture_output=True, text=True)
    assert r.returncode == 2 and "above the limit" in r.stderr and len(r.stderr.splitlines()) == 1
    big = 1 << 24
    s.write_text(json.dumps({"layer": {"K": big, "C": big, "OY": 1, "OX": 1}, "order": [], "tiles": {},
                             "buffers": {"input": 0, "weight": 0, "output": 0}}))
    obj = json_of("evaluate", s)
    for columns in (None, 80):
        out = run("evaluate", s, columns=columns).stdout
        assert f"{obj['total_bytes']:,}" in out and "…" not in out
    net = tmp_path / "big.yaml"
    net.write_text(f"layers:\n  - {{name: big, K: {big}, C: {big}, OY: 1, OX: 1}}\n")
    out = run("layers", net, columns=80).stdout
    assert f"{big * big:,}" in out


# ---------------------------------------------------------------------------
# help texts


@pytest.mark.parametrize("command", ["sweep", "hwc"])
def test_plot_help_names_the_extra(command):
    out = run(command, "--help", columns=400).stdout
    assert "pip install 'convsched[plot]'" in out


# ---------------------------------------------------------------------------
# the fitting itself (cli/output.py)


def _table(name: str, narrow: bool):
    from convsched.report.tables import add_columns, new_table
    t = new_table("title", "caption")
    add_columns(t, ["name", "bytes"] + ([] if narrow else ["more", "columns"]), fold=("name",))
    t.add_row(name, "123,456,789", *([] if narrow else ["x" * 30, "y" * 30]))
    return t


def test_choose_layout():
    from convsched.cli.output import choose_layout, measure
    layouts = [lambda: _table("conv1", False), lambda: _table("conv1", True)]
    assert len(choose_layout(layouts, False, 200).columns) == 4      # the full table fits
    assert len(choose_layout(layouts, False, None).columns) == 4     # no limit: the full table
    assert len(choose_layout(layouts, True, 40).columns) == 4        # --wide
    narrow = choose_layout(layouts, False, 40)
    assert len(narrow.columns) == 2 and measure(narrow).maximum <= 40
    long = [lambda: _table("n" * 100, False), lambda: _table("n" * 100, True)]
    folded = choose_layout(long, False, 40)                          # the name folds, the number does not
    assert measure(folded).maximum <= 40 and folded.columns[0].max_width < 100


def test_output_width(monkeypatch):
    from convsched.cli.output import output_width
    monkeypatch.setenv("COLUMNS", "77")
    assert output_width() == 77
    monkeypatch.delenv("COLUMNS")
    assert output_width() is None                                    # piped without COLUMNS: no limit
    monkeypatch.setenv("COLUMNS", "wide")
    assert output_width() is None
