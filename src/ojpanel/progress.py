"""Progress of long work: a widget in Jupyter, a bar on a terminal, periodic log lines otherwise.

Long computations (fetching, power simulations, SBC, bootstraps, reports) open a
:func:`progress` context and call :meth:`Progress.advance` as steps finish and
:meth:`Progress.note` for events a user should see at once (a retry, a wait). Where the output
goes:

* code runs in a Jupyter kernel (:func:`in_notebook`) and ipywidgets is installed: an ipywidgets
  bar (what is done, a progress bar, "n/m, elapsed, time left" and the latest note) under the
  cell, shown once the work has run for :data:`WIDGET_DELAY` seconds, so quick calls add nothing
  to the notebook; it stays after the work ends, green when done and red when stopped;
* standard error is a terminal: a ``rich`` bar on standard error (removed when the work ends);
  notes are shown in the bar's text;
* otherwise (CI logs, files): lines on the ``ojpanel.progress`` logger, at most one every
  ``interval`` seconds (default 10, or ``$OJPANEL_PROGRESS_INTERVAL``) plus a closing line when
  any was written; notes are logged at once. Work that ends within the interval writes nothing,
  so short calls stay quiet.

``$OJPANEL_PROGRESS`` overrides the choice: ``off`` (or ``0``) shows nothing, ``widget``, ``bar``
or ``log`` forces one form. A kernel cannot tell whether anyone watches its output, so headless
runs say so through this variable: the notebook pipeline starts its kernels with
``OJPANEL_PROGRESS=off`` (see :func:`ojpanel.pipeline.execute.kernel_environment`), which keeps
widget state and progress lines out of the executed notebooks. Nested contexts share one
terminal bar (one line per context); in a notebook each context has a widget of its own. When
nothing handles the logger's records, they are written to standard error.
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

__all__ = [
    "Progress",
    "progress",
    "track",
    "progress_mode",
    "in_notebook",
    "log_to_stderr",
    "LOGGER_NAME",
    "MODES",
    "WIDGET_DELAY",
]

LOGGER_NAME = "ojpanel.progress"
#: The forms progress can take (what :func:`progress_mode` returns).
MODES = ("off", "widget", "bar", "log")
#: Seconds work must run before its notebook widget appears (quick calls show nothing).
WIDGET_DELAY = 0.5
_ENV_MODE = "OJPANEL_PROGRESS"
_ENV_INTERVAL = "OJPANEL_PROGRESS_INTERVAL"
_DEFAULT_INTERVAL = 10.0
# a widget's text is redrawn at most this often: every redraw is a message to the front end
_WIDGET_REFRESH = 0.1

T = TypeVar("T")


class _CurrentStderr(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is at the time of each record."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(message)s"))

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # the base class assigns it; ignore
        pass


def _logger() -> logging.Logger:
    log = logging.getLogger(LOGGER_NAME)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)
    if not log.hasHandlers():
        log.addHandler(_CurrentStderr())
    return log


def log_to_stderr() -> None:
    """Write progress lines to standard error whatever else handles logging (the command line).

    Idempotent. Records still reach the root logger's handlers too (a command-line run has none).
    """
    log = logging.getLogger(LOGGER_NAME)
    log.setLevel(logging.INFO)
    if not any(isinstance(h, _CurrentStderr) for h in log.handlers):
        log.addHandler(_CurrentStderr())


def in_notebook() -> bool:
    """Whether the code runs in a Jupyter kernel (IPython's ``ZMQInteractiveShell``).

    Looks only at modules already imported, so a plain Python process never imports IPython.
    Terminal IPython and the plain interpreter give False.
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - a broken IPython install just means "no notebook"
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _has_widgets() -> bool:
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


def progress_mode(enabled: bool | None = None) -> str:
    """``"off"``, ``"widget"``, ``"bar"`` or ``"log"``: how progress would be shown now.

    Parameters
    ----------
    enabled
        False: ``"off"``. None or True: ``$OJPANEL_PROGRESS`` if set; else ``"widget"`` in a
        Jupyter kernel with ipywidgets installed, ``"bar"`` when standard error is a terminal and
        ``"log"`` otherwise.
    """
    if enabled is False:
        return "off"
    env = os.environ.get(_ENV_MODE, "").strip().lower()
    if env in {"0", "off", "no", "false", "none"}:
        return "off"
    if env in {"widget", "bar", "log"}:
        return env
    if in_notebook() and _has_widgets():
        return "widget"
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        tty = False
    return "bar" if tty else "log"


def _interval(interval: float | None) -> float:
    if interval is not None:
        return max(float(interval), 0.0)
    try:
        return max(float(os.environ.get(_ENV_INTERVAL, _DEFAULT_INTERVAL)), 0.0)
    except ValueError:
        return _DEFAULT_INTERVAL


# one rich display for all nested contexts (rich allows a single live display at a time)
_BAR: dict[str, Any] = {"progress": None, "users": 0}


def _shared_bar() -> Any:
    if _BAR["progress"] is None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress
        from rich.table import Column

        console = Console(stderr=True)
        bar = RichProgress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True, min_width=12)),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            # a long note (a retry) is cut at the right edge rather than squeezing the bar
            TextColumn("{task.fields[note]}", table_column=Column(
                no_wrap=True, overflow="ellipsis", max_width=max(console.width - 64, 20))),
            console=console,
            transient=True,
        )
        bar.start()
        _BAR["progress"] = bar
    _BAR["users"] += 1
    return _BAR["progress"]


def _release_bar() -> None:
    _BAR["users"] -= 1
    if _BAR["users"] <= 0 and _BAR["progress"] is not None:
        _BAR["progress"].stop()
        _BAR["progress"] = None
        _BAR["users"] = 0


class _Widget:
    """One notebook progress display: the description, an ipywidgets bar and a status text.

    Nothing is displayed until :meth:`show`; the widgets are built then, so work that ends before
    :data:`WIDGET_DELAY` creates no widget at all.
    """

    def __init__(self, description: str, total: int | None):
        self.description = description
        self.total = total
        self.box: Any = None
        self.bar: Any = None
        self.status: Any = None
        self._drawn = 0.0

    @property
    def shown(self) -> bool:
        return self.box is not None

    def show(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        self.bar = widgets.IntProgress(value=0, min=0, max=max(int(self.total or 1), 1),
                                       layout=widgets.Layout(width="16em"))
        if not self.total:  # unknown length: a full blue bar says "working" without claiming a share
            self.bar.value, self.bar.bar_style = self.bar.max, "info"
        self.status = widgets.HTML()
        label = widgets.HTML(f"<b>{html.escape(self.description)}</b>")
        self.box = widgets.HBox([label, self.bar, self.status],
                                layout=widgets.Layout(align_items="center", grid_gap="0.6em"))
        display(self.box)

    def update(self, completed: int, status: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.shown or (not force and now - self._drawn < _WIDGET_REFRESH):
            return
        if self.total:
            self.bar.value = min(int(completed), self.bar.max)
        self.status.value = html.escape(status)
        self._drawn = now

    def finish(self, completed: int, status: str, failed: bool) -> None:
        if not self.shown:
            return
        self.update(completed, status, force=True)
        if not self.total and not failed:
            self.bar.value = self.bar.max
        self.bar.bar_style = "danger" if failed else "success"


class Progress:
    """Handle of one piece of long work (what :func:`progress` yields).

    Parameters
    ----------
    description
        What is being done, e.g. ``"power simulation"``.
    total
        Number of steps, or None when unknown.
    mode
        ``"off"``, ``"widget"``, ``"bar"`` or ``"log"`` (see :func:`progress_mode`).
    interval
        Seconds between log lines in ``"log"`` mode.
    """

    def __init__(self, description: str, total: int | None, mode: str, interval: float):
        self.description = description
        self.total = total
        self.completed = 0
        self.mode = mode
        self._interval = interval
        self._start = time.monotonic()
        self._last_line = self._start
        self._lines = 0
        self._bar: Any = None
        self._task: Any = None
        self._widget: _Widget | None = None
        self._note = ""
        if mode == "bar":
            self._bar = _shared_bar()
            self._task = self._bar.add_task(description, total=total, note="")
        elif mode == "widget":
            self._widget = _Widget(description, total)

    # ------------------------------------------------------------------ reporting
    def advance(self, steps: int = 1) -> None:
        """Mark ``steps`` more steps as done."""
        self.completed += int(steps)
        if self._bar is not None:
            self._bar.update(self._task, advance=int(steps), note="")
        elif self._widget is not None:
            self._note = ""
            self._draw()
        elif self.mode == "log":
            now = time.monotonic()
            if now - self._last_line >= self._interval:
                self._log(self._status(now))

    def note(self, message: str) -> None:
        """Show an event at once: in the bar's text on a terminal, as a log line otherwise."""
        if self._bar is not None:
            self._bar.update(self._task, note=message)
        elif self._widget is not None:
            self._note = message
            self._draw(force=True)
        elif self.mode == "log":
            self._log(f"{self.description}: {message}")

    def elapsed(self) -> float:
        """Seconds since the work started."""
        return time.monotonic() - self._start

    def _draw(self, *, force: bool = False) -> None:
        """Show the widget once the work has lasted :data:`WIDGET_DELAY`, then keep it current."""
        widget = self._widget
        if widget is None:
            return
        if not widget.shown:
            if self.elapsed() < WIDGET_DELAY:
                return
            widget.show()
            force = True
        widget.update(self.completed, self._widget_status(), force=force)

    def _widget_status(self) -> str:
        seconds = self.elapsed()
        done = f"{self.completed}/{self.total}" if self.total else f"{self.completed} done"
        text = f"{done} · {seconds:.0f} s"
        if self.total and 0 < self.completed < self.total:
            share = self.completed / self.total
            text += f" · about {seconds / share - seconds:.0f} s left"
        return f"{text} · {self._note}" if self._note else text

    def _status(self, now: float) -> str:
        seconds = now - self._start
        if self.total:
            share = self.completed / self.total
            left = f", about {seconds / share - seconds:.0f} s left" if 0 < share < 1 else ""
            return (f"{self.description}: {self.completed}/{self.total} ({share:.0%}) "
                    f"after {seconds:.0f} s{left}")
        return f"{self.description}: {self.completed} done after {seconds:.0f} s"

    def _log(self, line: str) -> None:
        _logger().info(line)
        self._lines += 1
        self._last_line = time.monotonic()

    def _close(self, failed: bool) -> None:
        if self._bar is not None:
            self._bar.remove_task(self._task)
            self._bar = None
            _release_bar()
        elif self._widget is not None:
            if not self._widget.shown and self.elapsed() >= WIDGET_DELAY:
                self._widget.show()  # long work that never advanced: show how it ended
            what = "stopped" if failed else "done"
            total = f"/{self.total}" if self.total else ""
            self._widget.finish(self.completed, f"{what} ({self.completed}{total}) in {self.elapsed():.0f} s",
                                failed)
        elif self.mode == "log" and self._lines:
            what = "stopped" if failed else "done"
            self._log(f"{self.description}: {what} ({self.completed}"
                      f"{'/' + str(self.total) if self.total else ''}) in {self.elapsed():.0f} s")


@contextlib.contextmanager
def progress(
    description: str,
    total: int | None = None,
    *,
    enabled: bool | None = None,
    interval: float | None = None,
) -> Iterator[Progress]:
    """Report the progress of long work.

    Parameters
    ----------
    description
        What is being done (shown before the bar or at the start of each log line).
    total
        Number of steps (None: unknown).
    enabled
        False shows nothing; None/True lets :func:`progress_mode` decide.
    interval
        Seconds between log lines when neither in a notebook nor on a terminal (default 10 or
        ``$OJPANEL_PROGRESS_INTERVAL``).

    Examples
    --------
    >>> with progress("simulation", total=3, enabled=False) as bar:
    ...     for _ in range(3):
    ...         bar.advance()
    >>> bar.completed
    3
    """
    handle = Progress(description, total, progress_mode(enabled), _interval(interval))
    failed = True
    try:
        yield handle
        failed = False
    finally:
        handle._close(failed)


def track[T](
    items: Iterable[T],
    description: str,
    total: int | None = None,
    *,
    enabled: bool | None = None,
    interval: float | None = None,
) -> Iterator[T]:
    """Yield ``items`` while reporting one step per item (see :func:`progress`)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress(description, total, enabled=enabled, interval=interval) as bar:
        for item in items:
            yield item
            bar.advance()
