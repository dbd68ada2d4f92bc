"""Progress on stderr for the long commands: bars for those that report progress (optimize, sweep, report,
hwc), a spinner for the steps that do not (simulate, run-c); drawn only when stderr is a terminal."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .output import plain_console


class Bar:
    """A rich progress bar on stderr, fed by `progress(done, total)` callbacks.

    Call the bar itself for a one-stage task, or `bar.stage(label)` for each
    stage of a longer one. A stage's bar starts at its first report and
    stops at its last (done == total), so that no refresh
    thread runs while the next stage forks its worker processes (the
    library's pools fork before their first report). Nothing is drawn when
    stderr is not a terminal.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.console = plain_console(stderr=True)
        self.progress: Progress | None = None
        self.current: str | None = None
        self.task = None

    def __call__(self, done: int, total: int) -> None:
        self._report(self.label, done, total)

    def stage(self, label: str) -> Callable[[int, int], None]:
        """The callback of one stage, shown as `label` (e.g. "comparing earlier models")."""
        return lambda done, total: self._report(label, done, total)

    def _report(self, label: str, done: int, total: int) -> None:
        if not self.console.is_terminal:
            return
        if self.progress is not None and label != self.current:
            self.stop()
        if self.progress is None:
            if done >= total:
                return
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task(label, total=total)
            self.current = label
        self.progress.update(self.task, completed=done, total=total)
        if done >= total:
            self.stop()

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
            self.current = None

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner with `message` on stderr while a step that reports no progress runs (terminals only).
    Its refresh thread is harmless to subprocesses (they exec at once), not to forked worker pools."""
    console = plain_console(stderr=True)
    if not console.is_terminal:
        yield
        return
    with console.status(message):
        yield
