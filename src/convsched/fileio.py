"""Writing a file whole or not at all: a temporary file next to it, renamed into place."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp", ordinary_mode: bool = True) -> Iterator[str]:
    """A temporary path in `path`'s folder to write to; renamed onto `path` when the block ends
    normally, removed when it raises.

    `tempfile.mkstemp` creates files readable by their owner only. A report,
    plot or JSON file is an ordinary output file, so by default it gets the
    mode `open()` would give it; `ordinary_mode=False` keeps the private mode.
    """
    p = Path(path)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        if ordinary_mode:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
