"""Output files: the one rule every writer follows (`--json`, `--csv`, `--plot`, `-o`, ...).

Where an output goes depends on what the path names now:

* nothing: a new file is created, whole or not at all (a temporary file in the
  same folder, renamed into place);
* a regular file: it is replaced the same way, atomically, keeping its mode
  bits; a symlink to one is followed (the file it points to is replaced, the
  link stays);
* something that is not a regular file -- a device (`/dev/null`), a FIFO,
  `/dev/stdout` or `/dev/fd/N`, whatever they lead to: it is written to in
  place, never replaced by a file;
* a folder: refused.

A target the user could not write is refused before any work: a file, or
the folder a new file or temporary file goes into. Running as root,
convsched does not use root's power to override permissions: a file or
folder root owns counts as writable only when its owner-write bit is set,
and one another user owns only when it is group- or world-writable.

An output that is also one of the command's input files (the same file by
any path: a symlink or a hard link to it) is refused. A write that fails
(full disk, read-only file system, ...) is one line naming the file, and
leaves the target as it was.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator

from .errors import ConvschedError

#: Lexical prefixes of paths that stand for an already open file of this process.
_FD_PATHS = ("/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/")


@dataclass(frozen=True)
class Target:
    """Where an output path writes: `path` (links resolved for "new"/"file"), and how."""

    given: str          # the path as the user wrote it (for messages)
    path: str           # what is opened ("special") or created/replaced ("new", "file")
    kind: str           # "new": create; "file": replace atomically; "special": write in place
    mode: int | None    # the replaced file's permission bits ("file")
    fd: int | None = None   # "special" paths that name this process's own descriptor (/dev/stdout)


def _writable(path: str, st: os.stat_result) -> bool:
    """Whether the user may write `path` (see the module docstring for root)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if st.st_uid == 0:
            return bool(st.st_mode & stat.S_IWUSR)
        return bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
    effective = os.access in os.supports_effective_ids
    return os.access(path, os.W_OK, effective_ids=effective)


def _through_fd_path(path: str) -> bool:
    """Whether `path`, or a symlink on the way to its target, names an open file descriptor."""
    seen = 0
    p = os.path.abspath(path)
    while True:
        if p.startswith(_FD_PATHS) or p.startswith("/proc/") and "/fd/" in p:
            return True
        if not os.path.islink(p) or seen > 40:
            return False
        seen += 1
        p = os.path.normpath(os.path.join(os.path.dirname(p), os.readlink(p)))


def _own_fd(path: str) -> int | None:
    """The descriptor `path` names in this process (/dev/stdout, /dev/fd/N, /proc/self/fd/N), else None.

    Written through a duplicate of it, the output shares the descriptor's
    offset with what the process prints there (a redirect to a file is then
    not overwritten from its start)."""
    p = os.path.normpath(os.path.abspath(path))
    named = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
    if p in named:
        return named[p]
    for prefix in ("/dev/fd/", "/proc/self/fd/", f"/proc/{os.getpid()}/fd/"):
        if p.startswith(prefix) and p[len(prefix):].isdigit():
            return int(p[len(prefix):])
    return None


def check_output(path: str | Path, inputs: Iterable[str | Path] = ()) -> Target:
    """Apply the rule to `path` without writing; raises ConvschedError with one line when refused."""
    given = str(path)
    if not given:
        raise ConvschedError("an output path is empty; give a file name")
    try:
        st = os.stat(given)                          # follows symlinks
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise ConvschedError(f"cannot write {given}: {_first_non_folder(given)} is not a folder") from None
    except OSError as e:
        raise ConvschedError(f"cannot write {given}: {e.strerror or e}") from None
    if st is not None:
        for other in inputs:
            if _same_file(given, other):
                raise ConvschedError(f"cannot write {given}: it is also an input of this command "
                                     f"({other}); write the output to another file")
        if stat.S_ISDIR(st.st_mode):
            raise ConvschedError(f"cannot write {given}: it is a folder; give a file name")
        if not stat.S_ISREG(st.st_mode) or _through_fd_path(given):
            if not stat.S_ISREG(st.st_mode) and stat.S_ISSOCK(st.st_mode):
                raise ConvschedError(f"cannot write {given}: it is a socket; give a file name")
            if not _writable(given, st):
                raise ConvschedError(f"cannot write {given}: permission denied")
            return Target(given, given, "special", None, _own_fd(given))
        real = os.path.realpath(given)
        if not _writable(real, st):
            raise ConvschedError(f"cannot write {given}: the file is not writable (permission denied); "
                                 "make it writable or write to another file")
        _check_folder(given, _folder_of(given, real))
        return Target(given, real, "file", stat.S_IMODE(st.st_mode))
    # nothing there (or a dangling symlink: the file is created where it points)
    real = os.path.realpath(given)
    _check_folder(given, _folder_of(given, real))
    return Target(given, real, "new", None)


def _folder_of(given: str, real: str) -> str:
    """The folder the file goes into, as the user wrote it unless a symlink leads elsewhere."""
    if os.path.islink(given):
        return os.path.dirname(real)
    return os.path.dirname(given) or "."


def _first_non_folder(path: str) -> str:
    """The first component of `path` that exists and is not a folder."""
    p = Path(path)
    for parent in reversed(p.parents):
        if str(parent) not in ("", ".") and parent.exists() and not parent.is_dir():
            return str(parent)
    return str(p.parent)


def _check_folder(given: str, folder: str) -> None:
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        raise ConvschedError(f"cannot write {given}: folder {folder} does not exist") from None
    except NotADirectoryError:
        raise ConvschedError(f"cannot write {given}: {_first_non_folder(given)} is not a folder") from None
    except OSError as e:
        raise ConvschedError(f"cannot write {given}: {e.strerror or e}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConvschedError(f"cannot write {given}: {folder} is not a folder")
    if not _writable(folder, st):
        raise ConvschedError(f"cannot write {given}: folder {folder} is not writable (convsched writes a new "
                             "file there and renames it into place)")


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def open_output(path: str | Path, binary: bool = False, inputs: Iterable[str | Path] = ()) -> Iterator[IO]:
    """An open file to write the output to, following the rule (module docstring).

    A regular file is written to a temporary file that replaces the target
    when the block ends normally and is removed when it raises; a special
    file is opened in place. An OSError while writing becomes one line.
    """
    target = check_output(path, inputs)
    mode = "wb" if binary else "w"
    if target.kind == "special":
        try:
            if target.fd is not None:
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()         # what was printed before comes first
                fd = os.dup(target.fd)
            else:
                fd = os.open(target.path, os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            raise ConvschedError(f"cannot write {target.given}: {e.strerror or e}") from None
        try:
            with os.fdopen(fd, mode, **({} if binary else {"encoding": "utf-8"})) as f:
                yield f
        except OSError as e:
            raise ConvschedError(f"cannot write {target.given}: {e.strerror or e}") from None
        return
    folder, name = os.path.split(target.path)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder or ".", prefix=f".{name}.", suffix=".tmp")
    except OSError as e:
        raise ConvschedError(f"cannot write {target.given}: {e.strerror or e}") from None
    try:
        try:
            with os.fdopen(fd, mode, **({} if binary else {"encoding": "utf-8"})) as f:
                yield f
            # an existing file keeps its permissions; a new one gets those open() would give it
            os.chmod(tmp, target.mode if target.mode is not None else 0o666 & ~_umask())
            os.replace(tmp, target.path)
        except OSError as e:
            raise ConvschedError(f"cannot write {target.given}: {e.strerror or e}") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
        raise


def write_output(path: str | Path, data: str | bytes, inputs: Iterable[str | Path] = ()) -> None:
    """Write `data` (text as UTF-8) to `path` following the rule (module docstring)."""
    with open_output(path, binary=isinstance(data, bytes), inputs=inputs) as f:
        f.write(data)
