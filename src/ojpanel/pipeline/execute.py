"""Execute one notebook with papermill, reporting each cell, in a kernel that can be stopped.

Kernels talk to the runner over IPC sockets in a private temporary directory rather than TCP on
localhost: nothing else on the machine can listen in, and ipykernel has no reason to print its
"Kernel is running over TCP without encryption" warning on every start. What the kernel process
itself still prints (e.g. "KeyboardInterrupt caught in kernel" when jupyter_client interrupts it
before shutting it down) goes to a log file, not the terminal; the cells' output is in the notebook. Each kernel starts in the
notebook's directory through nbclient's ``resources`` rather than papermill's ``cwd``, which
changes the whole process's working directory and so cannot be used from several threads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Outcome", "Executor", "CellCallback", "kernel_environment", "KERNEL_PROGRESS", "THREAD_VARIABLES"]

#: ``callback(cell_number, n_code_cells)``: called as each code cell starts (numbers from 1).
CellCallback = Callable[[int, int], None]

_ENGINE = "ojpanel"


@dataclass(frozen=True)
class Outcome:
    """How one execution ended: ``ok``, or ``error`` says which cell raised what (or why it stopped)."""

    ok: bool
    seconds: float
    error: str | None = None


def _register_engine() -> None:
    """A papermill engine that calls back as each code cell starts (papermill's own is tqdm only)."""
    from papermill.engines import NBClientEngine, papermill_engines

    class ProgressEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, on_cell=None, **kwargs):  # type: ignore[no-untyped-def]
            if on_cell is not None:
                start = nb_man.cell_start
                codes = [i for i, c in enumerate(nb_man.nb.cells) if c.cell_type == "code"]

                def cell_start(cell, cell_index=None, **kw):  # type: ignore[no-untyped-def]
                    if cell_index in codes:
                        on_cell(codes.index(cell_index) + 1, len(codes))
                    return start(cell, cell_index, **kw)

                nb_man.cell_start = cell_start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register(_ENGINE, ProgressEngine)


#: Progress form inside the pipeline's kernels unless ``$OJPANEL_KERNEL_PROGRESS`` names another.
KERNEL_PROGRESS = "off"


#: Variables that size the thread pools of the numerical libraries (BLAS, OpenMP).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def kernel_environment(threads: int | None = None) -> dict[str, str]:
    """The runner's environment, with ``PYTHONPATH`` made absolute and progress for a headless kernel.

    Kernels start in their notebook's directory; a relative ``PYTHONPATH`` would point elsewhere
    there and let them import another copy of ojpanel than the one the runner (and its cache key)
    sees. A kernel would choose ipywidgets bars for its progress (it is a Jupyter kernel), but no
    one sees them in a headless run: they would only leave widget views and widget state in the
    executed notebook. So ``OJPANEL_PROGRESS`` is ``$OJPANEL_KERNEL_PROGRESS`` (default
    :data:`KERNEL_PROGRESS`, nothing; ``widget`` or ``log`` keep bars or lines in the notebooks);
    the runner's own display shows each notebook's cells.

    ``threads`` caps the BLAS and OpenMP thread pools (:data:`THREAD_VARIABLES`, unless already
    set): kernels running side by side would otherwise each start a pool per core and make their
    spinning threads fight over the same cores.
    """
    env = dict(os.environ)
    if threads is not None:
        for var in THREAD_VARIABLES:
            env.setdefault(var, str(max(1, int(threads))))
    env["OJPANEL_PROGRESS"] = env.get("OJPANEL_KERNEL_PROGRESS", KERNEL_PROGRESS)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) if p else p
                                            for p in env["PYTHONPATH"].split(os.pathsep))
    return env


def _failing_cell(exc: Exception) -> str:
    # papermill's execution error carries the exception name, value and the cell's execution count
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    cell = getattr(exc, "exec_count", None)
    return f"cell [{cell}] raised {ename}: {evalue}"


class Executor:
    """Runs notebooks (from any thread) and can stop every running kernel at once.

    Parameters
    ----------
    kernel_name
        The Jupyter kernel to start for each notebook.
    threads
        Threads of each kernel's numerical libraries (see :func:`kernel_environment`); None leaves
        them at the libraries' defaults.

    Notes
    -----
    Use as a context manager: on exit, kernels still running are killed and the socket
    directory is removed.
    """

    #: The error of a notebook whose kernel was killed because the run was interrupted.
    STOPPED = "interrupted before it finished"

    def __init__(self, kernel_name: str = "python3", threads: int | None = None):
        self.kernel_name = kernel_name
        self.threads = threads
        self._dir: Path | None = None
        self._kernels: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stopped = False

    def __enter__(self) -> Executor:
        # short path: a Unix socket's path must stay under ~100 bytes
        self._dir = Path(tempfile.mkdtemp(prefix="ojpk-"))
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill_all()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def run(self, name: str, source: Path, target: Path, parameters: Mapping[str, Any],
            on_cell: CellCallback | None = None, kernel_log: Path | None = None) -> Outcome:
        """Execute ``source`` with ``parameters`` into ``target`` (papermill writes it as it goes).

        The kernel process's own messages (start-up and shut-down logging, not the cells' output,
        which goes into the notebook) go to ``kernel_log`` rather than the terminal.
        """
        import papermill as pm

        if self._dir is None:
            raise RuntimeError("use Executor as a context manager")
        _register_engine()
        with self._lock:
            if self._stopped:
                return Outcome(False, 0.0, self.STOPPED)
        t0 = time.perf_counter()
        with contextlib.ExitStack() as stack:
            log = None
            if kernel_log is not None:
                kernel_log.parent.mkdir(parents=True, exist_ok=True)
                log = stack.enter_context(open(kernel_log, "w", encoding="utf-8"))
            try:
                # nbclient creates (and so cleans up) the kernel manager; the class registers it
                pm.execute_notebook(str(source), str(target), parameters=dict(parameters), engine_name=_ENGINE,
                                    kernel_name=self.kernel_name, progress_bar=False,
                                    kernel_manager_class=self._manager_class(name, log),
                                    resources={"metadata": {"path": str(source.parent)}}, on_cell=on_cell)
            except pm.PapermillExecutionError as exc:
                return Outcome(False, time.perf_counter() - t0, _failing_cell(exc))
            except Exception as exc:  # a dead or killed kernel, a kernel that did not start
                why = self.STOPPED if self._stopped else f"{type(exc).__name__}: {exc}"
                if kernel_log is not None and not self._stopped:
                    why += f" (kernel log: {kernel_log})"
                return Outcome(False, time.perf_counter() - t0, why)
            finally:
                with self._lock:
                    self._kernels.pop(name, None)
        return Outcome(True, time.perf_counter() - t0)

    def _manager_class(self, name: str, log: Any = None) -> type:
        """A kernel manager class for one notebook: IPC sockets of its own, registered while alive."""
        from jupyter_client import AsyncKernelManager

        executor = self
        # IPC needs Unix sockets; elsewhere the kernel falls back to TCP on localhost
        ipc = {"transport": "ipc", "ip": str(self._dir / name)} if os.name == "posix" and self._dir else {}

        class NotebookKernelManager(AsyncKernelManager):
            async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
                kw.setdefault("env", kernel_environment(executor.threads))
                if log is not None:
                    kw.setdefault("stdout", log)
                    kw.setdefault("stderr", log)
                await super().start_kernel(**kw)

            def __init__(self, **kwargs: Any):
                super().__init__(**{**ipc, **kwargs})
                with executor._lock:
                    if executor._stopped:  # kill_all ran before this kernel could start
                        raise RuntimeError("the run was stopped")
                    executor._kernels[name] = self

        return NotebookKernelManager

    def kill_all(self) -> None:
        """Stop starting kernels and kill the running ones (their notebooks then end with an error)."""
        with self._lock:
            self._stopped = True
            kernels = list(self._kernels.values())
        for km in kernels:
            proc = getattr(getattr(km, "provisioner", None), "process", None)
            if proc is None:
                continue
            # kernels run in their own session: kill the group, so their subprocesses go too
            if hasattr(os, "killpg"):
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                proc.kill()
