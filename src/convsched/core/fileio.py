"""Files: writing one whole or not at all (a temporary file next to it, renamed into
place), and reading what the user gives through one gate, parsed strictly."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
import tempfile
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Literal

import yaml

from .errors import ConvschedError


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


# ---------------------------------------------------------------------------
# Reading what the user gives: one gate for every input file, strict parsers.
#
# Every file convsched reads on a user's behalf (layer files, --arch, HWC
# configurations, schedules, ONNX models) goes through `read_user_bytes` (or
# `check_user_file` where a library reads the file itself): a regular file
# only (a FIFO or a device such as /dev/zero would hang or never end), of a
# bounded size, named by a path of bounded length. YAML and JSON are parsed by
# `parse_yaml` / `parse_json`, which refuse what would be taken silently or
# would eat the machine: YAML anchors and aliases (a 549-byte "billion laughs"
# file expands to gigabytes), duplicate keys (one value would silently win),
# integers longer than `MAX_INT_DIGITS` digits, and nesting deeper than
# `MAX_NESTING` levels. YAML integers are plain decimal as written (no
# `1_000`, `0x10`, `010` or `1:30`, which YAML 1.1 reads as other numbers).

#: The longest argument or input path accepted (characters).
MAX_PATH_CHARS = 255
#: The largest YAML/JSON input file (bytes).
MAX_TEXT_BYTES = 16 << 20
#: The largest YAML input file (bytes): PyYAML parses about 0.1-0.2 MB/s, so 1 MiB is seconds,
#: and holds thousands of layers (a JSON file may be larger: its parser is fast).
MAX_YAML_BYTES = 1 << 20
#: The largest ONNX model file (bytes); protobuf cannot parse a larger message anyway.
MAX_MODEL_BYTES = 2 << 30
#: The deepest nesting of lists and mappings in a YAML/JSON input.
MAX_NESTING = 64
#: The most digits of an integer in a YAML/JSON input (2**128 has 39).
MAX_INT_DIGITS = 40


def shorten(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters (with '...') for quoting in a one-line message."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_path_length(path: str | Path, what: str = "path") -> None:
    """Refuse a path (or argument) longer than MAX_PATH_CHARS characters."""
    text = str(path)
    if len(text) > MAX_PATH_CHARS:
        raise ConvschedError(f"{what} {shorten(text, 40)!r} is {len(text):,} characters long; "
                             f"paths and arguments are limited to {MAX_PATH_CHARS} characters")


def _size_text(n: int) -> str:
    """`n` bytes in the largest binary unit that divides it, else in bytes (never rounded)."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n:,} bytes"


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _open_error(path: str | Path, what: str, e: OSError) -> ConvschedError:
    if e.errno == errno.ENOENT:
        return ConvschedError(f"{what} {path} does not exist")
    if e.errno == errno.ENAMETOOLONG:
        return ConvschedError(f"{what} {shorten(str(path), 40)!r}: the path is too long")
    if e.errno in (errno.EACCES, errno.EPERM):
        return ConvschedError(f"cannot read {what} {path}: permission denied")
    return ConvschedError(f"cannot read {what} {path}: {e.strerror or e}")


def _gate(path: str | Path, what: str, mode: int, size: int, limit: int) -> None:
    if stat.S_ISDIR(mode):
        raise ConvschedError(f"{what} {path} is a folder; expected a file")
    if not stat.S_ISREG(mode):
        raise ConvschedError(f"{what} {path} is {_kind_of(mode)}; expected a regular file")
    if size > limit:
        raise ConvschedError(f"{what} {path} is {_size_text(size)}; the largest accepted is {_size_text(limit)}")


def check_user_file(path: str | Path, what: str, limit: int) -> None:
    """Refuse, before a library opens it, an input that is not a regular file of at most `limit` bytes."""
    check_path_length(path, what)
    try:
        st = os.stat(path)
    except OSError as e:
        raise _open_error(path, what, e) from None
    _gate(path, what, st.st_mode, st.st_size, limit)


def read_user_bytes(path: str | Path, what: str, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; anything else is a one-line error.

    Opened non-blocking, so a FIFO with no writer cannot hang the open, then
    checked on the open descriptor (no window between the check and the read).
    """
    check_path_length(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        if e.errno == errno.EISDIR:
            raise ConvschedError(f"{what} {path} is a folder; expected a file") from None
        raise _open_error(path, what, e) from None
    try:
        st = os.fstat(fd)
        _gate(path, what, st.st_mode, st.st_size, limit)
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:   # the file grew while being read
                raise ConvschedError(f"{what} {path} is larger than the {_size_text(limit)} accepted")
        return b"".join(chunks)
    except OSError as e:
        raise _open_error(path, what, e) from None
    finally:
        os.close(fd)


def read_user_text(path: str | Path, what: str, limit: int = MAX_TEXT_BYTES) -> str:
    """`read_user_bytes` decoded as UTF-8 (a leading byte-order mark is dropped)."""
    data = read_user_bytes(path, what, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConvschedError(f"{what} {path} is not UTF-8 text; save it as UTF-8") from None


class _Refused(Exception):
    """A parser hook's refusal; `parse_*` turns it into a ConvschedError naming the file."""


def _check_depth(data: Any) -> None:
    """Refuse nesting deeper than MAX_NESTING (iteratively: deep data must not recurse here either)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_NESTING:
                raise _Refused(f"nested more than {MAX_NESTING} levels deep")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


def _too_many_digits(text: str) -> _Refused:
    return _Refused(f"the number {shorten(text, 20)} has {len(text.lstrip('+-')):,} digits; "
                    f"numbers are limited to {MAX_INT_DIGITS} digits")


# ---- JSON ------------------------------------------------------------------------
def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _too_many_digits(text)
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {shorten(text, 20)} is too large")
    return value


def _json_constant(name: str) -> None:
    raise _Refused(f"{name} is not a JSON number; write a number")


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"key {shorten(key, 40)!r} appears twice in one object; keep one")
        out[key] = value
    return out


def parse_json(text: str, where: str) -> Any:
    """Parse JSON strictly (see the section comment); errors name `where`, e.g. 'schedule file s.json'."""
    try:
        data = json.loads(text, object_pairs_hook=_json_object, parse_int=_json_int,
                          parse_float=_json_float, parse_constant=_json_constant)
        _check_depth(data)
        return data
    except json.JSONDecodeError as e:
        raise ConvschedError(f"{where} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except _Refused as e:
        raise ConvschedError(f"{where}: {e}") from None
    except RecursionError:
        raise ConvschedError(f"{where}: nested more than {MAX_NESTING} levels deep") from None


# ---- YAML ------------------------------------------------------------------------
def _yaml_loader() -> type:
    int_tag = "tag:yaml.org,2002:int"
    plain_int = re.compile(r"^[-+]?[0-9]+$")

    class StrictLoader(yaml.SafeLoader):
        """SafeLoader without anchors/aliases, duplicate keys, YAML 1.1 integer forms, deep nesting."""

        yaml_implicit_resolvers = {
            first: [(tag, rx) for tag, rx in resolvers if tag != int_tag]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise _Refused(f"line {event.start_mark.line + 1}: YAML anchors and aliases (&name, *name) "
                               "are not accepted; write the values out")
            self._depth += 1
            try:
                if self._depth > MAX_NESTING:
                    raise _Refused(f"nested more than {MAX_NESTING} levels deep")
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> dict:
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:   # unhashable: SafeConstructor reports it
                    break
                if duplicate:
                    raise _Refused(f"line {key_node.start_mark.line + 1}: key {shorten(str(key), 40)!r} "
                                   "appears twice in one mapping; keep one")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

        def construct_yaml_int(self, node: Any) -> int:
            text = self.construct_scalar(node)
            digits = text.lstrip("+-")
            if len(digits) > MAX_INT_DIGITS:
                raise _too_many_digits(text)
            if len(digits) > 1 and digits.startswith("0"):
                raise _Refused(f"line {node.start_mark.line + 1}: {text} has a leading zero (YAML 1.1 reads it "
                               f"as an octal number); write {int(text)}")
            return int(text)

    StrictLoader.add_implicit_resolver(int_tag, plain_int, list("-+0123456789"))
    StrictLoader.add_constructor(int_tag, StrictLoader.construct_yaml_int)
    return StrictLoader


#: The strict loader class (`_yaml_loader`), built once.
_LOADER = _yaml_loader()


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML strictly (see the section comment); errors name `where`, e.g. 'layer file net.yaml'."""
    loader = _LOADER(text)
    try:
        return loader.get_single_data()
    except _Refused as e:
        raise ConvschedError(f"{where}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConvschedError(f"{where} is not valid YAML{at}: {problem}; fix its syntax") from None
    except RecursionError:
        raise ConvschedError(f"{where}: nested more than {MAX_NESTING} levels deep") from None
    finally:
        loader.dispose()


#: A data file's format.
DataFormat = Literal["json", "yaml"]


def data_format(path: str | Path, default: DataFormat = "yaml") -> DataFormat:
    """The format a file's name says: .json is JSON, .yaml/.yml YAML, anything else `default`."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return "json"
    return "yaml" if suffix in (".yaml", ".yml") else default


def parse_data(text: str, fmt: DataFormat, where: str) -> Any:
    """`parse_json` or `parse_yaml`."""
    return parse_json(text, where) if fmt == "json" else parse_yaml(text, where)


def load_user_data(path: str | Path, what: str, default: DataFormat = "yaml") -> Any:
    """A user's YAML or JSON file (`what`, e.g. "schedule file"), read through the gate and parsed
    strictly: JSON when named .json, YAML when named .yaml/.yml, else as `default` says. Every error is
    one line naming the file."""
    fmt = data_format(path, default)
    text = read_user_text(path, what, MAX_TEXT_BYTES if fmt == "json" else MAX_YAML_BYTES)
    return parse_data(text, fmt, f"{what} {path}")


def load_user_mapping(path: str | Path, what: str, default: DataFormat = "yaml") -> dict[str, Any]:
    """`load_user_data` of a file that holds one mapping (an empty file is an empty mapping); anything
    else is a one-line error naming the file."""
    data = load_user_data(path, what, default)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConvschedError(f"{what} {path} must be a YAML mapping of keys to values, not a "
                             f"{'list' if isinstance(data, list) else type(data).__name__}")
    return data


def load_package_data(name: str) -> Any:
    """A data file shipped with convsched (`convsched/data/NAME`), parsed as its name says."""
    text = resources.files("convsched").joinpath(f"data/{name}").read_text(encoding="utf-8")
    return parse_data(text, data_format(name), f"convsched's data file {name}")
