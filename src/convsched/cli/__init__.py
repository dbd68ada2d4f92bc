"""The `convsched` command. Each command lives in its own module and only wires
options to library calls; errors become one line on stderr and exit status 2."""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from ..core.errors import ConvschedError
from ..core.fileio import check_path_length
from ..core.procs import Terminated, die_of_sigterm, handle_termination
from .application import app

# Each command family lives in its own module and registers its commands on `app` when imported; the
# order here is the order `convsched --help` lists them in.
from . import evaluate, optimize, layers, codegen, report, hwc  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turn bad input into a one-line error (exit 2).

    SIGTERM and SIGINT stop the command promptly and cleanly: worker processes
    are killed, temporary folders removed (see core/procs.py)."""
    handle_termination()
    args = sys.argv[1:] if argv is None else list(argv)
    for arg in args:   # before any parsing: no path or value of this length is meant
        try:
            check_path_length(arg, "argument")
        except ConvschedError as e:
            _fail(str(e))
    try:
        code = app(args=args, standalone_mode=False)
    except Terminated:
        die_of_sigterm()
    except ConvschedError as e:
        _fail(str(e))
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    except TyperException as e:  # usage errors: unknown flags, bad values, missing arguments
        if type(e).__name__ == "NoArgsIsHelpError":  # typer already printed the help
            sys.exit(0)
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        ctx = getattr(e, "ctx", None)
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        _fail(" ".join(message.split()) + hint)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
