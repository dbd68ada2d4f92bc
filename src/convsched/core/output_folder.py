"""Several output files into one folder, all or none (the folder form of `outputs.py`'s rule).

* A folder that does not exist is made whole: the files are written into a new temporary
  folder beside it, which is then renamed into place; its parent must exist and be writable.
* In an existing folder each file is written to a temporary file there first; only when every
  one is written are they renamed over their names (an existing regular file is replaced and
  keeps its permission bits). A name that exists as anything but a regular file is refused.

Every refusal and failed write is one line (ConvschedError) and leaves the folder as it was.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from .errors import ConvschedError
from .outputs import check_output


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _refuse_non_regular(folder: str, names: Iterable[str]) -> None:
    for name in names:
        p = os.path.join(folder, name)
        if os.path.lexists(p) and not stat.S_ISREG(os.stat(p).st_mode):
            raise ConvschedError(f"cannot write {p}: it exists and is not a regular file; remove it or "
                                 "write to another folder")


def write_folder(folder: str | Path, files: Mapping[str, str], inputs: Iterable[str | Path] = ()) -> None:
    """Write `files` (name -> text, UTF-8) into `folder`, all or none (module docstring)."""
    given = str(folder)
    inputs = list(inputs)
    if not given:
        raise ConvschedError("an output folder is empty; give a folder name")
    if os.path.isdir(given):
        _refuse_non_regular(given, files)
        for name in files:
            check_output(os.path.join(given, name), inputs)
        _replace_in(given, files)
        return
    if os.path.lexists(given):
        raise ConvschedError(f"cannot write into {given}: it is not a folder")
    # a new folder: its parent's writability is checked by the rule for a new file in it
    check_output(given, inputs)
    parent = os.path.dirname(os.path.abspath(given))
    try:
        tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(os.path.abspath(given))}.", suffix=".tmp")
    except OSError as e:
        raise ConvschedError(f"cannot write into {given}: {e.strerror or e}") from None
    try:
        for name, text in files.items():
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(os.path.join(tmp, name), 0o666 & ~_umask())
        os.chmod(tmp, 0o777 & ~_umask())
        os.rename(tmp, given)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConvschedError(f"cannot write into {given}: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_in(folder: str, files: Mapping[str, str]) -> None:
    temps: dict[str, str] = {}
    try:
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
            temps[name] = tmp
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            target = os.path.join(folder, name)
            mode = stat.S_IMODE(os.stat(target).st_mode) if os.path.exists(target) else 0o666 & ~_umask()
            os.chmod(tmp, mode)
        for name, tmp in temps.items():
            os.replace(tmp, os.path.join(folder, name))
    except OSError as e:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise ConvschedError(f"cannot write into {folder}: {e.strerror or e}") from None
    except BaseException:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
