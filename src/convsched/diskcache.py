"""A small on-disk cache for results that are slow to compute and never change for a given key.

Used for the optimizer's list of canonical loop structures, which depends
only on which dimensions can be tiled: with a batch loop it takes seconds to
enumerate, in every process, every run. The cache lives in
`$CONVSCHED_CACHE_DIR`, else `$XDG_CACHE_HOME/convsched`, else
`~/.cache/convsched`; setting `CONVSCHED_CACHE_DIR` to an empty string turns
it off. Entries are written whole or not at all (temporary file + rename);
an unreadable entry is recomputed and replaced, and a cache that cannot be
written is silently skipped -- the cache only ever saves time.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import Callable, TypeVar

from .fileio import atomic_path

T = TypeVar("T")


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is turned off."""
    env = os.environ.get("CONVSCHED_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "convsched"


def cached(name: str, key: object, compute: Callable[[], T]) -> T:
    """`compute()`, stored under (name, key); `key`'s repr must identify the result completely."""
    folder = cache_dir()
    if folder is None:
        return compute()
    digest = hashlib.sha256(repr((name, key)).encode()).hexdigest()[:32]
    path = folder / f"{name}-{digest}.pickle"
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        pass
    except Exception:          # truncated or foreign file: recompute and replace it
        pass
    value = compute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, ordinary_mode=False) as tmp, open(tmp, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError:            # read-only or full disk: the cache only saves time
        pass
    return value
