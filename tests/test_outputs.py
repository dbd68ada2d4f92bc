"""The one output rule (`core/outputs.py`): what every writer does with the path it is given."""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from convsched.core.errors import ConvschedError
from convsched.core.outputs import check_output, open_output, write_output
from clihelp import one_line_error, run

GOOD = {"layer": {"K": 4, "C": 4, "OY": 4, "OX": 4, "FY": 3, "FX": 3, "PY": 1, "PX": 1},
        "order": ["C", "K", "OY"], "tiles": {"C": 2, "K": 2, "OY": 2},
        "buffers": {"input": 3, "weight": 2, "output": 3}}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---- the library rule ----------------------------------------------------------------
def test_new_file_gets_the_ordinary_mode(tmp_path):
    out = tmp_path / "new.json"
    write_output(out, "x\n")
    assert out.read_text() == "x\n"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
    assert leftovers(tmp_path) == []


def test_replacing_a_file_keeps_its_mode_and_is_a_new_inode(tmp_path):
    out = tmp_path / "old.json"
    out.write_text("old")
    out.chmod(0o640)
    before = out.stat().st_ino
    write_output(out, "new")
    assert out.read_text() == "new"
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert out.stat().st_ino != before          # renamed into place, not rewritten in place


def test_symlink_is_followed_and_stays(tmp_path):
    real = tmp_path / "data" / "real.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_output(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"
    assert leftovers(tmp_path) == [] and leftovers(real.parent) == []


def test_dangling_symlink_creates_the_file_it_points_to(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "target.json")
    write_output(link, "new")
    assert link.is_symlink() and (tmp_path / "target.json").read_text() == "new"


def test_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_output(fifo, "through the pipe\n")
    reader.join(10)
    assert got == [b"through the pipe\n"]
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def _a_null_device(tmp_path: Path) -> str:
    """A character device to write to: our own /dev/null twin where we may make one."""
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        return str(node)
    except (OSError, AttributeError):
        if stat.S_ISCHR(os.stat("/dev/null").st_mode):
            return "/dev/null"
    pytest.skip("no character device to write to")


def test_a_device_is_written_in_place(tmp_path):
    dev = _a_null_device(tmp_path)
    target = check_output(dev)                # checked before anything is written
    assert target.kind == "special"
    write_output(dev, "discarded")
    assert stat.S_ISCHR(os.stat(dev).st_mode)
    assert leftovers(Path(dev).parent) == []


def test_own_descriptors_are_written_through(tmp_path, capfd):
    assert check_output("/dev/stdout").fd == 1
    assert check_output("/dev/fd/2").fd == 2
    write_output("/dev/stdout", "on stdout\n")
    assert capfd.readouterr().out == "on stdout\n"


def test_folder_and_missing_folder_and_file_as_folder(tmp_path):
    with pytest.raises(ConvschedError, match="it is a folder"):
        check_output(tmp_path)
    with pytest.raises(ConvschedError, match="does not exist"):
        check_output(tmp_path / "nowhere" / "x.json")
    (tmp_path / "plain").write_text("")
    with pytest.raises(ConvschedError, match="plain is not a folder"):
        write_output(tmp_path / "plain" / "x.json", "x")


def test_read_only_file_is_refused(tmp_path):
    out = tmp_path / "ro.json"
    out.write_text("keep")
    out.chmod(0o444)
    with pytest.raises(ConvschedError, match="not writable"):
        write_output(out, "new")
    assert out.read_text() == "keep"


@pytest.mark.skipif(not IS_ROOT, reason="the rule for root: another user's file")
def test_root_does_not_replace_another_users_file(tmp_path):
    out = tmp_path / "theirs.json"
    out.write_text("keep")
    os.chown(out, 65534, 65534)
    out.chmod(0o644)
    with pytest.raises(ConvschedError, match="not writable"):
        write_output(out, "new")
    assert out.read_text() == "keep"
    out.chmod(0o664)                 # group-writable: theirs to share
    write_output(out, "new")
    assert out.read_text() == "new"


def test_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ConvschedError, match="not writable"):
            write_output(folder / "x.json", "x")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_output_over_an_input_is_refused_by_any_path(tmp_path):
    src = tmp_path / "s.json"
    src.write_text("input")
    (tmp_path / "link.json").symlink_to(src)
    os.link(src, tmp_path / "hard.json")
    for name in ("s.json", "link.json", "hard.json"):
        with pytest.raises(ConvschedError, match="also an input"):
            write_output(tmp_path / name, "output", inputs=[src])
    assert src.read_text() == "input"


class _FailingFile(io.StringIO):
    """A file that takes a little and then finds the disk full."""

    def write(self, text):
        if self.tell() > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(text[:4])


def test_a_failed_write_leaves_the_target_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "out.json"
    out.write_text("previous")
    real_fdopen = os.fdopen

    def fdopen(fd, *a, **kw):
        f = real_fdopen(fd, *a, **kw)
        failing = _FailingFile()
        failing.close = f.close                 # the temporary file is still created and closed
        failing.__exit__ = lambda *exc: f.close()
        return failing

    monkeypatch.setattr("convsched.core.outputs.os.fdopen", fdopen)
    with pytest.raises(ConvschedError) as e:
        with open_output(out) as f:
            f.write("a long text")
            f.write("that does not fit")
    assert str(e.value) == f"cannot write {out}: {os.strerror(errno.ENOSPC)}"
    assert out.read_text() == "previous"
    assert leftovers(tmp_path) == []


def test_a_failed_rename_leaves_no_temporary(tmp_path, monkeypatch):
    def replace(a, b):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("convsched.core.outputs.os.replace", replace)
    with pytest.raises(ConvschedError, match="Read-only file system"):
        write_output(tmp_path / "x.json", "x")
    assert list(tmp_path.iterdir()) == []


# ---- every writer of the CLI follows it ---------------------------------------------------
@pytest.fixture()
def sched(tmp_path) -> Path:
    p = tmp_path / "s.json"
    p.write_text(json.dumps(GOOD))
    return p


def test_cli_refuses_output_over_its_input(tmp_path, sched):
    (tmp_path / "link.json").symlink_to(sched)
    os.link(sched, tmp_path / "hard.json")
    before = sched.read_text()
    for out in (sched, tmp_path / "link.json", tmp_path / "hard.json"):
        one_line_error(run("evaluate", sched, "--json", out), "also an input")
    one_line_error(run("codegen", sched, "-o", tmp_path / "hard.json"), "also an input")
    arch = tmp_path / "arch.yaml"
    arch.write_text("bits: 8\n")
    one_line_error(run("simulate", sched, "--arch", arch, "--json", arch), "also an input")
    assert sched.read_text() == before


def test_cli_json_into_a_fifo(tmp_path):
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    r = run("layers", "K=8,C=8,OY=4,OX=4", "--json", fifo)
    reader.join(30)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert json.loads(got[0])["layers"][0]["name"] == "layer1"


def test_cli_json_into_a_device(tmp_path, sched):
    dev = _a_null_device(tmp_path)
    r = run("evaluate", sched, "--json", dev)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISCHR(os.stat(dev).st_mode)


def test_cli_writers_follow_symlinks(tmp_path, sched):
    real = tmp_path / "real.c"
    real.write_text("old")
    (tmp_path / "conv.c").symlink_to(real)
    r = run("codegen", sched, "-o", tmp_path / "conv.c")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "conv.c").is_symlink() and "dma_copy" in real.read_text()
    csv = tmp_path / "real.csv"
    csv.write_text("old")
    (tmp_path / "rows.csv").symlink_to(csv)
    r = run("optimize", "K=4,C=4,OY=4,OX=4", "--buffer", "1KiB", "--csv", tmp_path / "rows.csv", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rows.csv").is_symlink() and csv.read_text().startswith("name,")


def test_cli_refuses_a_read_only_target_before_the_work(tmp_path, sched):
    ro = tmp_path / "ro.json"
    ro.write_text("keep")
    ro.chmod(0o444)
    one_line_error(run("simulate", sched, "--json", ro), "not writable")
    one_line_error(run("sweep", "K=4,C=4,OY=4,OX=4", "--buffer", "1KiB..2KiB", "--csv", ro), "not writable")
    one_line_error(run("hwc", "K=4,C=4,OY=4,OX=4", "--json", ro), "not writable")
    assert ro.read_text() == "keep"


def test_cli_output_under_a_file_is_one_line(tmp_path, sched):
    (tmp_path / "plain").write_text("")
    one_line_error(run("evaluate", sched, "--json", tmp_path / "plain" / "x.json"), "is not a folder")
    one_line_error(run("report", "K=4,C=4,OY=4,OX=4", "--buffer", "1KiB", "-o", tmp_path / "plain" / "r.html"),
                   "is not a folder")


def test_hwc_plot_needs_a_figure_name(tmp_path):
    one_line_error(run("hwc", "K=4,C=4,OY=4,OX=4", "--plot", tmp_path / "figure"), ".png", ".svg", ".pdf")
    folder = tmp_path / "figs.png"
    folder.mkdir()
    one_line_error(run("hwc", "K=4,C=4,OY=4,OX=4", "--plot", folder), "is a folder")
    assert list(tmp_path.iterdir()) == [folder] and list(folder.iterdir()) == []


def test_cli_write_failure_is_one_line_and_leaves_nothing(tmp_path, sched, monkeypatch, capsys):
    from convsched.cli import main

    def replace(a, b):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("convsched.core.outputs.os.replace", replace)
    out = tmp_path / "out.json"
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(sched), "--json", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == f"error: cannot write {out}: {os.strerror(errno.ENOSPC)}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]
