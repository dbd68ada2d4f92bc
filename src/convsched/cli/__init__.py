"""The `convsched` command. Each command lives in its own module and only wires
options to library calls; errors become one line on stderr and exit status 2."""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from ..errors import ConvschedError

app = typer.Typer(
    name="convsched",
    help="Off-chip-memory-optimal schedules for CNN convolutions on scratchpad accelerators.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# Command modules register themselves on `app` when imported; each command
# family lives in its own module (evaluate.py, optimize.py, layers.py, ...).
_COMMAND_MODULES = ("evaluate", "optimize", "layers", "codegen", "report", "hwc")


def _register_commands() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":  # a real missing dependency, not an absent module
                raise


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turn bad input into a one-line error (exit 2)."""
    try:
        code = app(args=argv, standalone_mode=False)
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
