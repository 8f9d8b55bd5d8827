"""Progress of a pipeline run, through :mod:`ojpanel.progress`: a line per running notebook.

On a terminal each running notebook has a bar (code cells done of all, elapsed, "cell n of m"),
below an overall bar; elsewhere (CI logs) the same appears as log lines (``OJPANEL_PROGRESS``
chooses, as for all of ojpanel's long work). A notebook that finishes, fails or is taken from the
cache leaves one permanent line. Every method may be called from worker threads.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from types import TracebackType
from typing import Any

from ojpanel.progress import LOGGER_NAME, log_to_stderr, progress, progress_mode

__all__ = ["PipelineProgress"]


class PipelineProgress:
    """Progress display of one pipeline run; shows nothing when ``enabled`` is False.

    Parameters
    ----------
    total
        Number of notebooks in the run.
    enabled
        False: nothing at all; True: as :func:`ojpanel.progress.progress_mode` decides.
    """

    def __init__(self, total: int, *, enabled: bool = True):
        self.enabled = enabled and progress_mode(True) != "off"
        self._total = total
        self._stack = contextlib.ExitStack()
        self._overall: Any = None
        self._running: dict[str, tuple[contextlib.AbstractContextManager[Any], Any]] = {}
        # ojpanel.progress shares one terminal display between contexts; it is not thread-safe
        self._lock = threading.Lock()

    def __enter__(self) -> PipelineProgress:
        if self.enabled and not logging.getLogger(LOGGER_NAME).hasHandlers():
            log_to_stderr()  # the permanent lines are log records; nothing else shows them
        self._overall = self._stack.enter_context(progress("pipeline", total=self._total, enabled=self.enabled))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._lock:
            for cm, _ in self._running.values():
                cm.__exit__(exc_type, exc, tb)
            self._running.clear()
            self._stack.__exit__(exc_type, exc, tb)

    def _line(self, text: str) -> None:
        if self.enabled:
            logging.getLogger(LOGGER_NAME).info(text)

    def cached(self, name: str, seconds: float) -> None:
        """A notebook taken from the cache."""
        with self._lock:
            self._line(f"✓ {name:<34} cached (ran in {seconds:.1f} s)")
            self._overall.advance()

    def started(self, name: str, cells: int | None = None) -> None:
        """A notebook whose kernel is starting; ``cells``: its code cells, when known."""
        with self._lock:
            cm = progress(name, total=cells, enabled=self.enabled)
            handle = cm.__enter__()
            handle.note("starting kernel")
            self._running[name] = (cm, handle)

    def cell(self, name: str, number: int, total: int) -> None:
        """Code cell ``number`` (from 1) of ``total`` started."""
        with self._lock:
            if name not in self._running:
                return
            handle = self._running[name][1]
            if number > 1:
                handle.advance()
            handle.note(f"cell {number} of {total} ({handle.elapsed():.0f} s)")

    def finished(self, name: str, seconds: float, error: str | None = None) -> None:
        """A notebook finished (``error``: how it failed)."""
        with self._lock:
            cm, handle = self._running.pop(name, (None, None))
            if handle is not None:
                if handle.total:
                    handle.advance(max(handle.total - handle.completed, 0))
                cm.__exit__(None, None, None)
            if error is None:
                self._line(f"✓ {name:<34} {seconds:.1f} s")
            else:
                self._line(f"✗ {name:<34} failed after {seconds:.1f} s: {error}")
            self._overall.advance()

    def skipped(self, name: str, why: str) -> None:
        """A notebook not run (a notebook it reads failed, or the run stopped)."""
        with self._lock:
            self._line(f"- {name:<34} not run: {why}")
