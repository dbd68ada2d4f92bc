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
        row = re.search(rf"<tr><td>{re.escape(want['name'])}</td>(.*?)</tr>", page).group(1)
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
    assert md.count("data:image/png;base64,") == 3
    assert "## Earlier models" in md and "opt/bound" in md


def test_without_matplotlib(tiny, monkeypatch, tmp_path):
    import builtins
    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    from convsched.htmlreport import ReportData, render  # noqa: F401
    from convsched import htmlreport
    assert htmlreport._figures.__call__ is not None
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
