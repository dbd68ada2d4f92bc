"""A small on-disk cache for results that are slow to compute and never change for a given key.

Used for the optimizer's list of canonical loop structures, which depends
only on which dimensions can be tiled: with a batch loop it takes seconds to
enumerate, in every process, every run. The cache lives in
`$CONVSCHED_CACHE_DIR`, else `$XDG_CACHE_HOME/convsched`, else
`~/.cache/convsched`; setting `CONVSCHED_CACHE_DIR` to an empty string turns
it off.

An entry is plain numeric arrays in a numpy `.npz` file, read with
`allow_pickle=False`: nothing in the folder can run code when it is read (an
earlier format, pickle, could). Each user of the cache gives an `encode`
(value -> named integer/boolean arrays) and a `decode` that checks what it
reads and raises on anything malformed. Entries are written whole or not at
all (temporary file + rename); an unreadable, oversized, wrong-typed or
malformed entry is a miss, recomputed and replaced, and a cache that cannot
be written is silently skipped -- the cache only ever saves time.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Callable, Mapping, TypeVar

import numpy as np

from ..core.fileio import atomic_path

T = TypeVar("T")
Arrays = Mapping[str, np.ndarray]

#: Bump when the meaning of the stored arrays changes: older entries are then never read.
FORMAT = 2
#: The largest entry read (bytes, on disk and unpacked): larger is a miss, not a memory hog.
MAX_ENTRY_BYTES = 256 << 20


class MalformedEntry(ValueError):
    """A cache entry that does not hold what its decoder expects."""


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is turned off."""
    env = os.environ.get("CONVSCHED_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "convsched"


def entry_path(name: str, key: object) -> Path | None:
    """Where (name, key) is stored (None when caching is off); `key`'s repr must identify it."""
    folder = cache_dir()
    if folder is None:
        return None
    digest = hashlib.sha256(repr((name, key, FORMAT)).encode()).hexdigest()[:32]
    return folder / f"{name}-{digest}.npz"


def cached(name: str, key: object, compute: Callable[[], T], encode: Callable[[T], Arrays],
           decode: Callable[[Arrays], T]) -> T:
    """`compute()`, stored under (name, key) as `encode`'s arrays and read back with `decode`."""
    path = entry_path(name, key)
    if path is None:
        return compute()
    try:
        return decode(_read(path))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, IndexError, TypeError, zipfile.BadZipFile, EOFError):
        pass                   # truncated, foreign or malformed: recompute and replace it
    value = compute()
    try:
        arrays = {k: np.asarray(v) for k, v in encode(value).items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".tmp.npz", ordinary_mode=False) as tmp:
            np.savez(tmp, **arrays)
    except OSError:            # read-only or full disk: the cache only saves time
        pass
    return value


def _read(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an entry, or an exception: never unpickles, never unpacks more than the cap."""
    if path.stat().st_size > MAX_ENTRY_BYTES:
        raise MalformedEntry("entry too large")
    with zipfile.ZipFile(path) as z:
        if sum(info.file_size for info in z.infolist()) > MAX_ENTRY_BYTES:
            raise MalformedEntry("entry unpacks too large")
    with np.load(path, allow_pickle=False) as z:
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise MalformedEntry("not an .npz archive")
        out = {k: z[k] for k in z.files}
    for k, a in out.items():
        if a.dtype.kind not in "biu":
            raise MalformedEntry(f"array {k!r} is not integer or boolean")
    return out


def int_array(arrays: Arrays, name: str, shape: tuple[int | None, ...], low: int, high: int) -> np.ndarray:
    """`arrays[name]` checked: integer or boolean, of `shape` (None: any length), values in [low, high]."""
    a = np.asarray(arrays[name])
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        raise MalformedEntry(f"array {name!r} has shape {a.shape}, expected {shape}")
    if a.size and (a.min() < low or a.max() > high):
        raise MalformedEntry(f"array {name!r} has values outside {low}..{high}")
    return a
