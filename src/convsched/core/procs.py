"""Worker processes that stop with the command, and signals that stop the command cleanly.

* `worker_pool(n)`: a process pool whose workers never outlive the work.
  When the block is left by an exception -- an error, Ctrl-C
  (KeyboardInterrupt), or SIGTERM turned into `Terminated` by
  `handle_termination` -- the workers are killed at once instead of being
  waited for (a running optimizer task can take many seconds). Workers ignore
  SIGINT (Ctrl-C reaches the whole process group; the main process stops
  them) and, on Linux, get SIGTERM if the main process dies without cleaning
  up (even by SIGKILL).
* `handle_termination()`: the CLI's SIGTERM turns into a `Terminated`
  exception in the main thread, so that `finally` blocks and context managers
  run (workers stopped, temporary folders removed, compilers killed); the CLI
  then dies of SIGTERM itself, so its parent sees the usual status.

Nothing here changes signal handling unless `handle_termination` is called.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Iterator


class Terminated(BaseException):
    """SIGTERM arrived (a BaseException like KeyboardInterrupt: `except Exception` does not catch it)."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def handle_termination() -> None:
    """From now on SIGTERM raises `Terminated` in the main thread (call from the main thread)."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def die_of_sigterm() -> None:
    """End the process as killed by SIGTERM (after the cleanup `Terminated` gave time for)."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    os._exit(128 + signal.SIGTERM)      # pragma: no cover - only if the signal is blocked


def _die_with_parent(parent: int) -> None:
    """Linux: have the kernel send this process SIGTERM when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:           # the parent died before the request took effect
        os._exit(1)


def _worker_init(parent: int, tie_to_parent: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the main process stops the workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)    # not the main process's handler (inherited by fork)
    if tie_to_parent:
        _die_with_parent(parent)


def _context():
    # fork where there is one: no re-import of the caller's __main__ (scripts need no
    # `if __name__ == "__main__"` guard) and workers start with the parent's warm imports.
    try:
        return mp.get_context("fork")
    except ValueError:   # pragma: no cover - platforms without fork
        return mp.get_context()


@contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A process pool of `workers` processes, shut down normally when the block ends normally and its
    workers killed at once when it raises (see the module docstring)."""
    # a worker may die with its parent only when the parent thread is the main one: the kernel
    # ties the signal to the thread that forked it (workers are forked at the first submit)
    tie = threading.current_thread() is threading.main_thread()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_worker_init,
                               initargs=(os.getpid(), tie))
    try:
        yield pool
    except BaseException:
        stop_workers(pool)
        raise
    pool.shutdown(wait=True)


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and kill the workers now (their results are not wanted)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        try:
            p.terminate()
        except (OSError, ValueError, AttributeError):
            pass
    for p in procs:
        try:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        except (OSError, ValueError, AttributeError, AssertionError):
            pass
