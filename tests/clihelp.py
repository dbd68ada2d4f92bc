"""Running the `convsched` command as a user does, and checking its one-line errors (shared by the CLI tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(*args, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`convsched ARGS...` in a subprocess; the timeout turns a hang (a FIFO read, /dev/zero) into a failure."""
    return subprocess.run([sys.executable, "-m", "convsched", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit status 2, no traceback, exactly one line on stderr starting `error: ` and holding every needle."""
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: "), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]
