"""Run the numbered notebooks as a tested pipeline with papermill.

Notebooks are discovered by glob (``NN_name.ipynb``), never from a hand-kept list; every
parameter is checked against each notebook's ``parameters`` cell before the first one runs.
Executed notebooks, HTML renderings and ``summary.json`` (recorded results, parameters,
versions, timings) are written to the output directory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ojpanel.config import REPO_ROOT
from ojpanel.errors import OJPanelError, ParameterError
from ojpanel.pipeline.parameters import check_parameters, check_smoke_conflicts, notebook_parameters
from ojpanel.pipeline.record import read_records
from ojpanel.provenance import library_versions, utc_now

__all__ = ["PipelineError", "NotebookRun", "PipelineResult", "discover", "plan", "run_pipeline",
           "default_notebooks_dir"]

PATTERN = "[0-9][0-9]_*.ipynb"


class PipelineError(OJPanelError, RuntimeError):
    """A notebook failed; the message names it and shows the failing cell's error."""


def default_notebooks_dir() -> Path:
    """``notebooks/`` of the source checkout."""
    return REPO_ROOT / "notebooks"


def discover(notebooks_dir: Path | str | None = None, pattern: str = PATTERN,
             select: list[str] | None = None) -> list[Path]:
    """Numbered notebooks in flow order; an empty result is an error.

    Parameters
    ----------
    select
        Optional notebook stems or number prefixes (``"03"``) to run only some.
    """
    d = Path(notebooks_dir) if notebooks_dir else default_notebooks_dir()
    found = sorted(p for p in d.glob(pattern) if not p.name.endswith(".executed.ipynb"))
    if not found:
        raise PipelineError(f"no notebooks matching {pattern!r} in {d}")
    if select:
        chosen = [p for p in found if any(p.stem == s or p.stem.startswith(f"{s}_") for s in select)]
        missing = [s for s in select if not any(p.stem == s or p.stem.startswith(f"{s}_") for p in found)]
        if missing:
            raise ParameterError(f"no notebook matches {missing}; available: {[p.stem for p in found]}")
        found = chosen
    return found


def plan(notebooks: list[Path], parameters: Mapping[str, Any] | None, *, smoke: bool,
         out_dir: Path, seed: int | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Parameters for every notebook, checked before anything executes.

    ``parameters`` maps ``name`` (for every notebook that accepts it) or ``stem:name`` (one
    notebook) to a value. ``smoke``, ``out_dir`` and ``seed`` are injected where accepted.
    """
    parameters = dict(parameters or {})
    defaults = {nb.stem: notebook_parameters(nb) for nb in notebooks}
    scoped: dict[str, dict[str, Any]] = {nb.stem: {} for nb in notebooks}
    problems = []
    for key, value in parameters.items():
        if ":" in key:
            stem, name = key.split(":", 1)
            target = [s for s in scoped if s == stem or s.startswith(f"{stem}_")]
            if len(target) != 1:
                problems.append(f"{key!r}: no single notebook named {stem!r}")
                continue
            scoped[target[0]][name] = value
        else:
            accepting = [s for s in defaults if key in defaults[s]]
            if not accepting:
                problems.append(f"unknown parameter {key!r}: no notebook accepts it")
            for s in accepting:
                scoped[s][key] = value
    if problems:
        raise ParameterError("; ".join(problems))
    out = []
    for nb in notebooks:
        given = scoped[nb.stem]
        check_parameters(nb.name, defaults[nb.stem], given)
        if smoke:
            check_smoke_conflicts(nb, given)
        auto = {"smoke": smoke, "out_dir": str((out_dir / nb.stem).resolve())}
        if seed is not None:
            auto["seed"] = seed
        params = {k: v for k, v in auto.items() if k in defaults[nb.stem] and k not in given}
        params.update(given)
        out.append((nb, params))
    return out


@dataclass(frozen=True)
class NotebookRun:
    """One executed notebook: parameters, seconds, recorded results and output paths."""

    name: str
    parameters: dict[str, Any]
    seconds: float
    records: dict[str, Any]
    notebook: Path
    html: Path | None


@dataclass
class PipelineResult:
    """What a pipeline run produced; ``summary_path`` is the JSON summary."""

    runs: list[NotebookRun] = field(default_factory=list)
    summary_path: Path | None = None
    smoke: bool = False

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        """Recorded results by notebook stem."""
        return {r.name: r.records for r in self.runs}

    def timings(self) -> dict[str, float]:
        """Seconds per notebook."""
        return {r.name: r.seconds for r in self.runs}

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{r.name}</td><td>{r.seconds:.1f}</td><td>{len(r.records)}</td></tr>" for r in self.runs)
        return (f"<table><thead><tr><th>notebook</th><th>seconds</th><th>recorded results</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>")


def _failing_cell(exc: Exception) -> str:
    # papermill's execution error carries the exception name, value and traceback of the cell.
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    cell = getattr(exc, "exec_count", None)
    return f"cell [{cell}] raised {ename}: {evalue}"


def _to_html(nb_path: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(nb_path), as_version=4))
    html = nb_path.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html


def run_pipeline(
    notebooks_dir: Path | str | None = None,
    out_dir: Path | str = "reports/pipeline",
    *,
    smoke: bool = False,
    parameters: Mapping[str, Any] | None = None,
    select: list[str] | None = None,
    seed: int | None = None,
    html: bool = True,
    progress: bool = True,
    kernel_name: str = "python3",
) -> PipelineResult:
    """Execute the notebooks in order; stop at the first failure with a clear error.

    Parameters
    ----------
    notebooks_dir
        Where the numbered notebooks are (default: the checkout's ``notebooks/``).
    out_dir
        Executed notebooks, HTML and ``summary.json`` go here.
    smoke
        Inject ``smoke=True``: every notebook runs on a small subset (CI size).
    parameters
        ``{name: value}`` or ``{"stem:name": value}``; checked against every notebook's
        ``parameters`` cell before any execution.
    select
        Notebook stems or number prefixes to run only some.
    seed
        Injected into every notebook that has a ``seed`` parameter.
    """
    import papermill as pm
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    out = Path(out_dir)
    notebooks = discover(notebooks_dir, select=select)
    planned = plan(notebooks, parameters, smoke=smoke, out_dir=out, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    result = PipelineResult(smoke=smoke)
    summary: dict[str, Any] = {"started": utc_now(), "smoke": smoke, "versions": library_versions(), "notebooks": []}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), disable=not progress, transient=False) as bar:
        task = bar.add_task("pipeline", total=len(planned))
        for nb, params in planned:
            bar.update(task, description=f"running {nb.name}")
            target = out / nb.name
            t0 = time.perf_counter()
            try:
                pm.execute_notebook(str(nb), str(target), parameters=params, kernel_name=kernel_name,
                                    progress_bar=False, cwd=str(nb.parent))
            except pm.PapermillExecutionError as exc:
                summary["failed"] = {"notebook": nb.name, "error": _failing_cell(exc)}
                _write_summary(out, summary)
                raise PipelineError(f"{nb.name} failed: {_failing_cell(exc)} (executed copy: {target})") from exc
            seconds = time.perf_counter() - t0
            records = read_records(target)
            html_path = _to_html(target) if html else None
            run = NotebookRun(nb.stem, params, seconds, records, target, html_path)
            result.runs.append(run)
            summary["notebooks"].append({"name": nb.stem, "parameters": params, "seconds": round(seconds, 2),
                                         "records": records, "notebook": target.name,
                                         "html": html_path.name if html_path else None})
            bar.advance(task)
    summary["finished"] = utc_now()
    result.summary_path = _write_summary(out, summary)
    return result


def _write_summary(out: Path, summary: dict[str, Any]) -> Path:
    path = out / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)
    return path
