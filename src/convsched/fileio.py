"""Publishing a finished temporary file: whole files or nothing, with ordinary permissions."""

from __future__ import annotations

import os
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(tmp: str | Path, path: str | Path) -> None:
    """Rename a fully written temporary file onto `path`.

    `tempfile.mkstemp` creates files readable by their owner only; a report or
    plot is an ordinary output file, so it gets the mode `open()` would give it.
    """
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
