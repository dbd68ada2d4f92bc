"""SIGTERM and SIGINT stop a command with its workers and temporary folders (core/procs.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convsched.core.procs import worker_pool

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process trees from /proc")

#: a sweep whose tasks each run far longer than the deadlines below
LONG_SWEEP = ["sweep", "vgg16", "--buffer", "8KiB..1MiB", "--points", "64", "--workers", "2"]


def children(pid: int) -> set[int]:
    """Live descendants of `pid` (from /proc)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parent[int(entry)] = int(fields[1])
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in out:
                out.add(c)
                todo.append(c)
    return out


def alive(pids: set[int]) -> set[int]:
    left = set()
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    left.add(p)
        except OSError:
            pass
    return left


def wait_for(condition, what: str, deadline: float = 120.0):
    """Poll until `condition()` is truthy (the deadline only keeps a broken run from hanging)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def start(args, tmp_path: Path, **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "convsched", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "TMPDIR": str(tmp_path), **env})


def workers_of(p: subprocess.Popen) -> set[int]:
    return wait_for(lambda: (lambda c: c if len(c) >= 2 else None)(children(p.pid)), "two workers")


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)])
def test_signal_stops_sweep_and_its_workers(tmp_path, sig, status):
    p = start(LONG_SWEEP, tmp_path)
    try:
        workers = workers_of(p)
        p.send_signal(sig)
        # a worker task runs far longer: the command ends because its workers were stopped
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == status, (p.returncode, err)
    assert "Traceback" not in err and "optimal B" not in out
    assert wait_for(lambda: not alive(workers), "the workers to go") is True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers die with their parent on Linux")
def test_workers_die_with_a_killed_main_process(tmp_path):
    p = start(LONG_SWEEP, tmp_path)
    try:
        workers = workers_of(p)
        p.kill()
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
    assert wait_for(lambda: not alive(workers), "orphaned workers to go") is True


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_sigterm_during_run_c_leaves_no_temporary_folder(tmp_path):
    sched = {"layer": {"K": 64, "C": 64, "OY": 56, "OX": 56, "FY": 3, "FX": 3, "PY": 1, "PX": 1},
             "order": ["K", "OY"], "tiles": {"K": 16, "OY": 8}, "buffers": {"input": 2, "weight": 1, "output": 2}}
    (tmp_path / "s.json").write_text(json.dumps(sched))
    p = start(["run-c", "s.json"], tmp_path)
    try:
        wait_for(lambda: list(tmp_path.glob("convsched-c-*")), "the build folder")
        wait_for(lambda: children(p.pid), "the compiler to start")
        helpers = children(p.pid)
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == -signal.SIGTERM
    assert list(tmp_path.glob("convsched-c-*")) == []
    assert wait_for(lambda: not alive(helpers), "the compiler or program to go") is True


def _sleep(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_worker_pool_kills_its_workers_when_the_block_raises():
    class Stop(Exception):
        pass

    with pytest.raises(Stop):
        with worker_pool(2) as pool:
            futures = [pool.submit(_sleep, 600) for _ in range(2)]
            pids = wait_for(lambda: (lambda c: c if len(c) >= 2 else None)(children(os.getpid())), "workers")
            raise Stop
    assert wait_for(lambda: not alive(pids), "the workers to go") is True
    assert all(f.cancelled() or f.done() for f in futures)


def test_worker_pool_waits_for_work_that_ends_normally():
    with worker_pool(2) as pool:
        got = list(pool.map(_sleep, [0, 0]))
    assert len(got) == 2 and os.getpid() not in got
