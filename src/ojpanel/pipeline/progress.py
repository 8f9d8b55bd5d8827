"""Terminal progress of a pipeline run: one line per running notebook (cell n of m, elapsed).

Finished notebooks leave a permanent line (seconds, or "cached"); the live lines below show the
notebooks that are running. Every method may be called from worker threads.
"""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

__all__ = ["PipelineProgress"]


class PipelineProgress:
    """Progress display of one pipeline run; does nothing when ``enabled`` is False.

    Parameters
    ----------
    total
        Number of notebooks in the run.
    enabled
        Show anything at all.
    console
        Where to draw (default: a new stdout console).
    """

    def __init__(self, total: int, *, enabled: bool = True, console: Console | None = None):
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
            transient=True,
        )
        self._overall: TaskID | None = None
        self._total = total
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> PipelineProgress:
        self._progress.__enter__()
        self._overall = self._progress.add_task("pipeline", total=self._total, status=f"0 of {self._total} done")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.__exit__(exc_type, exc, tb)

    def _line(self, text: str) -> None:
        if self.enabled:
            self._progress.console.print(text, highlight=False)

    def _advance(self) -> None:
        if self._overall is None:
            return
        self._progress.advance(self._overall)
        done = int(self._progress.tasks[self._overall].completed) if self._progress.tasks else 0
        self._progress.update(self._overall, status=f"{done} of {self._total} done")

    def cached(self, name: str, seconds: float) -> None:
        """A notebook taken from the cache."""
        self._line(f"[green]✓[/] {name:<34} cached (ran in {seconds:.1f} s)")
        self._advance()

    def started(self, name: str) -> None:
        """A notebook whose kernel is starting."""
        with self._lock:
            self._tasks[name] = self._progress.add_task(name, total=None, status="starting kernel")
        self._progress.refresh()

    def cell(self, name: str, number: int, total: int) -> None:
        """Code cell ``number`` of ``total`` started."""
        task = self._tasks.get(name)
        if task is not None:
            self._progress.update(task, total=total, completed=number - 1, status=f"cell {number} of {total}",
                                  refresh=True)

    def finished(self, name: str, seconds: float, error: str | None = None) -> None:
        """A notebook finished (``error``: how it failed)."""
        with self._lock:
            task = self._tasks.pop(name, None)
        if task is not None:
            self._progress.remove_task(task)
        if error is None:
            self._line(f"[green]✓[/] {name:<34} {seconds:.1f} s")
        else:
            self._line(f"[red]✗[/] {name:<34} failed after {seconds:.1f} s: {error}")
        self._advance()

    def skipped(self, name: str, why: str) -> None:
        """A notebook not run (an upstream notebook failed, or the run stopped)."""
        self._line(f"[yellow]-[/] {name:<34} not run: {why}")
