"""The typer application of the `convsched` command: every command module registers its commands on
`app` (`@app.command()`); `cli/__init__.py` imports them and runs it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import typer

app = typer.Typer(
    name="convsched",
    help="Off-chip-memory-optimal schedules for CNN convolutions on scratchpad accelerators.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _print_version(value: bool) -> None:
    if value:
        try:
            print(f"convsched {version('convsched')}")
        except PackageNotFoundError:   # run from a source tree that is not installed
            print("convsched (version unknown: not installed)")
        raise typer.Exit(0)


@app.callback()
def _options(
    show_version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                      help="Print convsched's version and exit."),
) -> None:
    """Off-chip-memory-optimal schedules for CNN convolutions on scratchpad accelerators."""
