"""`convsched report`: the numbers in the document equal `convsched optimize --json`; formats; bad input."""

import json
import re

import pytest

from convsched.cli import main

TINY = """\
name: tiny
layers:
  - {name: c1, K: 4, C: 3, OY: 6, OX: 6, FY: 3, FX: 3, PY: 1, PX: 1}
  - {name: c2, K: 6, C: 4, OY: 3, OX: 3, FY: 3, FX: 3, SY: 2, SX: 2, PY: 1, PX: 1}
  - {name: fc, kind: fc, K: 10, C: 24, OY: 1, OX: 1}
"""


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    p = tmp_path_factory.mktemp("net") / "tiny.yaml"
    p.write_text(TINY)
    return p


@pytest.fixture(scope="module")
def rendered(tiny, tmp_path_factory):
    """(optimize JSON, html text, md text), each command run once."""
    d = tmp_path_factory.mktemp("out")
    main_ok = lambda argv: _call(argv)  # noqa: E731
    main_ok(["optimize", str(tiny), "--buffer", "160B", "--workers", "1", "--json", str(d / "opt.json")])
    main_ok(["report", str(tiny), "--buffer", "160B", "--workers", "1", "--samples", "4", "-o", str(d / "r.html")])
    main_ok(["report", str(tiny), "--buffer", "160B", "--workers", "1", "--samples", "4", "--format", "md",
             "-o", str(d / "r.txt")])
    return (json.loads((d / "opt.json").read_text()), (d / "r.html").read_text(), (d / "r.txt").read_text())


def _call(argv):
    try:
        main(argv)
    except SystemExit as e:
        assert not e.code, e.code


def test_html_numbers_match_optimize_json(rendered):
    opt, page, _ = rendered
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    # self-contained: nothing is fetched (URIs appear only as SVG/RDF namespace names)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", page) and "<link" not in page
    assert page.count("<svg") == 3                                   # per layer, vs bound, vs buffer size
    data = json.loads(re.search(r"id='convsched-data'>(.*?)</script>", page, re.S).group(1))
    assert data["total_bytes"] == opt["total_bytes"]
    for got, want in zip(data["layers"], opt["layers"], strict=True):
        for key in ("name", "layer", "schedule", "total_bytes", "buffer_words", "macs"):
            assert got[key] == want[key], key
        assert got["lower_bound_bytes"] <= got["total_bytes"]
        # and the visible table shows the same bytes
        row = re.search(rf"<tr><td[^>]*>{re.escape(want['name'])}</td>(.*?)</tr>", page).group(1)
        assert f"<td>{want['total_bytes']:,}</td>" in row
    assert f"{opt['total_bytes']:,} B" in page
    for name in ("Zhang FPGA", "Peemen ICCD", "Peemen DATE", "Yang 2016", "Wolf-Lam", "textbook"):
        assert name in page


def test_markdown_report(rendered):
    opt, _, md = rendered
    assert md.startswith("# convsched report: tiny")
    for layer in opt["layers"]:
        line = next(ln for ln in md.splitlines() if ln.startswith(f"| {layer['name']} |"))
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert int(cells[3].replace(",", "")) == layer["total_bytes"]
        assert int(cells[5].replace(",", "")) <= layer["total_bytes"]          # the lower bound
    assert "## Earlier models" in md and "opt/bound" in md


def test_without_matplotlib(tiny, monkeypatch, tmp_path):
    import builtins
    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    out = tmp_path / "r.md"
    _call(["report", "K=4,C=2,OY=4,OX=4,FY=3,FX=3,PY=1,PX=1", "--buffer", "128B", "--workers", "1",
           "--samples", "2", "-o", str(out)])
    text = out.read_text()
    assert "Figures omitted: matplotlib is not installed" in text and "base64" not in text


@pytest.mark.parametrize("argv, message", [
    (["--format", "pdf"], "unknown report format 'pdf'"),
    (["-o", "/nonexistent-dir/r.html"], "folder /nonexistent-dir does not exist"),
    (["-o", "/tmp"], "it is a folder"),
    ([], None),
])
def test_bad_input(argv, message, capsys, tiny):
    if message is None:   # no buffer at all
        code, out, err = run(["report", str(tiny)], capsys)
        assert code == 2 and err.startswith("error: ") and "--buffer" in err and err.count("\n") == 1
        return
    code, out, err = run(["report", str(tiny), "--buffer", "160B", *argv], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


# ---------------------------------------------------------------------------
# what a reader sees: the order of the page, legends, figures as files, progress, "wrote FILE"


def test_html_leads_with_summary_and_figures(rendered):
    _, page, _ = rendered
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings == ["Summary", "Figures", "Layers", "Earlier models", "Notes"]
    assert page.index("<svg") < page.index("<h2>Layers</h2>")
    # schedules: monospace, on one line; the full shape on hover; tables scroll in their own box
    layers = page[page.index("<h2>Layers</h2>"):page.index("<h2>Earlier models</h2>")]
    assert re.search(r"<td class='l'><code>[A-Z]+/\d+[^<]* \| i@\d w@\d o@\d</code></td>", layers)
    assert "title='K=" in layers
    for rule in ("white-space:nowrap", "position:sticky", "overflow:auto"):
        assert rule in page
    assert "<div class='scroll'><table>" in layers


def test_every_table_says_what_its_cells_hold(rendered):
    _, page, md = rendered
    models = page[page.index("<h2>Earlier models</h2>"):]
    per_layer = models[models.index("<h3>Per layer</h3>"):]
    assert per_layer.index("<dl class='legend'>") < per_layer.index("<table>")
    # one figure per cell: the model's name over two columns, error and chosen/opt
    assert "<th colspan=2 class='group'>Zhang FPGA&#x27;15</th>" in per_layer
    assert per_layer.count(">error</th>") == per_layer.count(">chosen/opt</th>") >= 6
    assert not re.search(r"<td[^>]*>[^<]*% / [^<]*</td>", page)
    assert "<dl class='legend'>" in page[page.index("<h2>Layers</h2>"):page.index("<h2>Earlier models</h2>")]
    assert "- **chosen/opt**:" in md and "- **schedule**:" in md


def test_markdown_figures_are_files_next_to_it(tiny, tmp_path):
    import subprocess
    import sys
    doc = tmp_path / "doc.md"
    r = subprocess.run([sys.executable, "-m", "convsched", "report", str(tiny), "--buffer", "160B", "--workers", "1",
                        "--samples", "2", "-o", str(doc)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"wrote {doc} (MD, ") and r.stdout.count("\n") == 1
    text = doc.read_text()
    assert "base64" not in text and len(text) < 20_000
    for slug in ("traffic-per-layer", "optimum-over-bound", "traffic-vs-buffer"):
        png = tmp_path / f"doc-{slug}.png"
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert f"](doc-{slug}.png)" in text


def test_markdown_to_a_pipe_has_no_figures(tiny, tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "convsched", "report", str(tiny), "--buffer", "160B", "--workers", "1",
                        "--samples", "2"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# convsched report: tiny") and "base64" not in r.stdout
    assert "-o FILE.md" in r.stdout and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_report_to_a_terminal_is_refused_before_the_work(fmt, tiny, capsys, monkeypatch):
    import sys
    import convsched.cli.report as cli_report
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setattr(cli_report, "build_report", lambda *a, **k: pytest.fail("the work was started"))
    code, out, err = run(["report", str(tiny), "--buffer", "160B", "--format", fmt], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: ") and "-o report.html" in err


def test_build_report_reports_each_stage(tiny):
    from convsched.core.arch import Architecture
    from convsched.report.html import build_report
    from convsched.networks import load_target
    calls = []
    build_report(load_target(str(tiny)), Architecture.from_flags(None, None).with_capacity(160), workers=1,
                 samples=1, progress=lambda stage, done, total: calls.append((stage, done, total)))
    stages = list(dict.fromkeys(stage for stage, _, _ in calls))
    assert stages == ["optimizing tiny", "comparing earlier models", "optimizing at 40B", "optimizing at 640B"]
    for stage in stages:
        mine = [(done, total) for s, done, total in calls if s == stage]
        assert [d for d, _ in mine] == sorted(d for d, _ in mine)
        assert mine[-1][0] == mine[-1][1]          # each stage ends done, before the next starts workers


def test_progress_bar_draws_on_a_terminal_and_stops_with_each_stage():
    import io
    from rich.console import Console
    from convsched.cli.progress import Bar
    bar = Bar("optimizing net")
    bar.console = Console(file=io.StringIO(), force_terminal=True, width=80)
    bar(0, 3)
    assert bar.progress is not None
    bar(3, 3)
    assert bar.progress is None                     # stopped (no refresh thread) when the stage is done
    compare = bar.stage("comparing earlier models")
    compare(1, 4)
    assert bar.current == "comparing earlier models"
    bar.stage("optimizing at 16KiB")(0, 2)          # a new stage replaces the unfinished one
    assert bar.current == "optimizing at 16KiB"
    bar.stop()
    drawn = bar.console.file.getvalue()
    assert "optimizing net" in drawn and "comparing earlier models" in drawn
    quiet = Bar("x")
    quiet.console = Console(file=io.StringIO(), force_terminal=False)
    quiet(0, 3)
    assert quiet.progress is None and quiet.console.file.getvalue() == ""


def test_status_spinner_only_on_a_terminal(monkeypatch):
    import io
    from rich.console import Console
    from convsched.cli import progress
    terminal = Console(file=io.StringIO(), force_terminal=True, width=80)
    monkeypatch.setattr(progress, "plain_console", lambda **kw: terminal)
    with progress.status("walking the schedule"):
        pass
    assert "walking the schedule" in terminal.file.getvalue()
    pipe = Console(file=io.StringIO(), force_terminal=False)
    monkeypatch.setattr(progress, "plain_console", lambda **kw: pipe)
    with progress.status("walking the schedule"):
        pass
    assert pipe.file.getvalue() == ""
