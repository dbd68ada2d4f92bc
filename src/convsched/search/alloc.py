"""Keep the C allocator from returning large numpy buffers to the OS after every step.

The optimizer evaluates tile grids in steps of a few million points: each
step allocates and frees arrays of several MiB. glibc serves blocks that
large with fresh `mmap`s and unmaps them on free, so every step page-faults
its memory in again -- about a fifth of the search time on layers with large
grids (VGG-16 conv2_2 at 8 KiB: 9.7 s, of which 1.9 s in the kernel; 7.5 s
with the setting below). Raising glibc's mmap threshold to its maximum
(32 MiB) keeps these blocks on the heap, where freed memory is reused.

This changes a process-wide setting, once, when the optimizer first runs; it
does nothing off glibc, and `CONVSCHED_MALLOPT=0` turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def tune_allocator() -> bool:
    """Apply the setting once per process; True when it is in effect."""
    global _done
    if _done:
        return True
    if os.environ.get("CONVSCHED_MALLOPT", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):          # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # keep up to 256 MiB of freed heap instead of trimming it back after each step
    _done = bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 256 << 20))
    return _done
