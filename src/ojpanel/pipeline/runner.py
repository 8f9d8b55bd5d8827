"""Run the numbered notebooks as a tested pipeline with papermill: cached, in parallel.

Notebooks are discovered by glob (``NN_name.ipynb``), never from a hand-kept list; every
parameter and every declared input is checked before the first notebook runs. A notebook whose
cache entry is fresh (:mod:`ojpanel.pipeline.cache`) is not executed again; the others run on a
pool of workers (one per core by default), each as soon as the notebooks it reads
(:mod:`ojpanel.pipeline.declarations`) have finished, the longest (by their last run) first.
Executed notebooks, HTML renderings and ``summary.json`` (recorded results, parameters, versions,
timings, in notebook order whatever the order of execution) are written to the output directory.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ojpanel.config import REPO_ROOT, data_dir
from ojpanel.core.atomic import atomic_write_text
from ojpanel.errors import OJPanelError, ParameterError
from ojpanel.pipeline import cache
from ojpanel.pipeline.declarations import (
    Declaration,
    check_declared_inputs,
    dependency_graph,
    is_glob,
    read_declaration,
    resolve_notebook,
    with_upstream,
)
from ojpanel.pipeline.execute import Executor, Outcome
from ojpanel.pipeline.parameters import check_parameters, check_smoke_conflicts, notebook_parameters
from ojpanel.pipeline.progress import PipelineProgress
from ojpanel.pipeline.record import read_records
from ojpanel.provenance import library_versions, utc_now

__all__ = ["PipelineError", "NotebookRun", "PipelineResult", "discover", "plan", "run_pipeline",
           "pipeline_status", "default_notebooks_dir", "default_jobs", "replay_parameters"]

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


def default_jobs() -> int:
    """Workers by default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class NotebookRun:
    """One notebook of a run: parameters, seconds, recorded results and output paths.

    ``cached`` notebooks were not executed; ``seconds`` is then the time of the run that made the
    cache entry.
    """

    name: str
    parameters: dict[str, Any]
    seconds: float
    records: dict[str, Any]
    notebook: Path
    html: Path | None
    cached: bool = False


@dataclass
class PipelineResult:
    """What a pipeline run produced; ``summary_path`` is the JSON summary."""

    runs: list[NotebookRun] = field(default_factory=list)
    summary_path: Path | None = None
    smoke: bool = False
    wall_seconds: float = 0.0
    jobs: int = 1

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        """Recorded results by notebook stem."""
        return {r.name: r.records for r in self.runs}

    def timings(self) -> dict[str, float]:
        """Seconds per notebook (for a cached notebook: of the run that made its entry)."""
        return {r.name: r.seconds for r in self.runs}

    @property
    def cached(self) -> list[str]:
        """Notebooks taken from the cache."""
        return [r.name for r in self.runs if r.cached]

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{r.name}</td><td>{r.seconds:.1f}</td><td>{'yes' if r.cached else 'no'}</td>"
                       f"<td>{len(r.records)}</td></tr>" for r in self.runs)
        return (f"<table><thead><tr><th>notebook</th><th>seconds</th><th>cached</th><th>recorded results</th>"
                f"</tr></thead><tbody>{rows}</tbody></table>")


def _to_html(nb_path: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(nb_path), as_version=4))
    html = nb_path.with_suffix(".html")
    atomic_write_text(html, body)
    return html


@dataclass(frozen=True)
class _Job:
    """A planned notebook: where it is, what is injected, what it declares and waits for."""

    name: str
    path: Path
    params: dict[str, Any]
    defaults: dict[str, Any]
    declaration: Declaration
    deps: tuple[str, ...]

    @property
    def effective(self) -> dict[str, Any]:
        return {**self.defaults, **self.params}


def _data_dir() -> Path | None:
    try:
        return data_dir()
    except FileNotFoundError:
        return None


def _prepare(notebooks_dir: Path | str | None, out: Path, *, smoke: bool, parameters: Mapping[str, Any] | None,
             select: list[str] | None, seed: int | None) -> tuple[list[_Job], list[str]]:
    """Discover, read declarations, plan parameters and check declared inputs; nothing runs."""
    every = discover(notebooks_dir)
    stems = [p.stem for p in every]
    declarations = {p.stem: read_declaration(p) for p in every}
    graph = dependency_graph([declarations[s] for s in stems])
    chosen = set(stems)
    if select:
        # notebooks a selected one reads come along (they are cached when fresh); the order-only
        # dependencies of undeclared notebooks do not
        reads = {s: graph[s] if declarations[s].declared else () for s in stems}
        chosen = with_upstream({p.stem for p in discover(notebooks_dir, select=select)}, reads)
    notebooks = [p for p in every if p.stem in chosen]
    data = _data_dir()
    jobs = []
    for nb, params in plan(notebooks, parameters, smoke=smoke, out_dir=out, seed=seed):
        defaults = notebook_parameters(nb)
        decl = declarations[nb.stem]
        check_declared_inputs(decl, defaults, params, nb.parent, data)
        jobs.append(_Job(nb.stem, nb, params, defaults, decl, tuple(d for d in graph[nb.stem] if d in chosen)))
    return jobs, stems


def _components(job: _Job, out: Path, stems: list[str], env: Mapping[str, Any],
                upstream_records: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any]:
    inputs = cache.input_digests(job.declaration, params=job.effective, nb_dir=job.path.parent,
                                 data_dir=_data_dir(), out_dir=out, stems=stems, upstream_records=upstream_records)
    return cache.key_components(job.path, job.effective, inputs, env)


def _code_cells(job: _Job) -> int:
    """Code cells the executed notebook will have (papermill adds one when it injects parameters)."""
    import nbformat

    nb = nbformat.read(str(job.path), as_version=4)
    return sum(c.cell_type == "code" for c in nb.cells) + (1 if job.params else 0)


def _cached_run(job: _Job, entry: dict[str, Any], out: Path, html: bool) -> NotebookRun:
    target = out / entry["executed"]["path"]
    html_path = None
    if html:
        html_path = target.with_suffix(".html")
        known = entry.get("html") or {}
        if cache.digest_file(html_path) != known.get("sha256"):
            # the rendering is derived from the executed copy, which is intact: render it again
            html_path = _to_html(target)
            entry = {**entry, "html": {"path": html_path.name, "sha256": cache.digest_file(html_path)}}
            cache.write_entry(out, job.name, entry)
    return NotebookRun(job.name, job.params, float(entry["seconds"]), entry["records"], target, html_path,
                       cached=True)


def _execute(job: _Job, components: dict[str, Any], out: Path, executor: Executor, bar: PipelineProgress,
             html: bool) -> NotebookRun | Outcome:
    """Run one notebook (in a worker thread); write its cache entry only once everything is in place."""
    target = out / job.path.name
    cache.start_run(out, job.name)
    bar.started(job.name, _code_cells(job))
    outcome = executor.run(job.name, job.path, target, job.params,
                           on_cell=lambda i, n: bar.cell(job.name, i, n),
                           kernel_log=cache.entry_path(out, job.name, ".kernel.log"))
    if outcome.ok:
        try:
            records = read_records(target)
            html_path = _to_html(target) if html else None
            nb_out = out / job.name
            missing = [w for w in job.declaration.writes if not is_glob(w) and not (nb_out / w).is_file()]
            if missing:
                outcome = Outcome(False, outcome.seconds,
                                  f"it declares that it writes {missing} but did not write them; fix its "
                                  "metadata['ojpanel']['writes'] or the notebook")
        except Exception as exc:  # reading the records or rendering HTML failed
            outcome = Outcome(False, outcome.seconds, f"{type(exc).__name__}: {exc}")
    if not outcome.ok:
        cache.finish_failed(out, job.name, outcome.error, interrupted=outcome.error == Executor.STOPPED)
        bar.finished(job.name, outcome.seconds, outcome.error)
        return outcome
    entry = {"notebook": job.name, "key": components, "records": records, "seconds": round(outcome.seconds, 2),
             "finished": utc_now(), "parameters": job.params,
             "executed": {"path": target.name, "sha256": cache.digest_file(target)},
             "html": {"path": html_path.name, "sha256": cache.digest_file(html_path)} if html_path else None,
             "outputs": cache.written_files(nb_out, job.declaration.writes)}
    if job.declaration.declared:
        cache.finish_ok(out, job.name, entry)
    else:
        cache.finish_failed(out, job.name, None)
    bar.finished(job.name, outcome.seconds)
    return NotebookRun(job.name, job.params, entry["seconds"], records, target, html_path)


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
    jobs: int | None = None,
    force: bool = False,
) -> PipelineResult:
    """Bring every notebook's results up to date; stop starting notebooks at the first failure.

    Parameters
    ----------
    notebooks_dir
        Where the numbered notebooks are (default: the checkout's ``notebooks/``).
    out_dir
        Executed notebooks, HTML, ``summary.json`` and the cache (``.cache/``) go here.
    smoke
        Inject ``smoke=True``: every notebook runs on a small subset (CI size).
    parameters
        ``{name: value}`` or ``{"stem:name": value}``; checked against every notebook's
        ``parameters`` cell before any execution.
    select
        Notebook stems or number prefixes to run only some (with the notebooks they read).
    seed
        Injected into every notebook that has a ``seed`` parameter.
    html
        Render each executed notebook to HTML.
    progress
        Show per-notebook progress (cell n of m, elapsed) on the terminal.
    jobs
        Notebooks run at the same time (default: one per core). Results do not depend on it.
    force
        Execute every notebook even when its cache entry is fresh.

    Raises
    ------
    PipelineError
        Naming the notebook that failed and its failing cell; ``summary.json`` then records it.
    ParameterError, DeclarationError
        Before anything runs, for unknown or mistyped parameters and inconsistent declarations.
    """
    out = Path(out_dir)
    planned, stems = _prepare(notebooks_dir, out, smoke=smoke, parameters=parameters, select=select, seed=seed)
    n_workers = default_jobs() if jobs is None else int(jobs)
    if n_workers < 1:
        raise ParameterError(f"jobs must be at least 1, got {jobs}")
    out.mkdir(parents=True, exist_ok=True)
    env = cache.environment(kernel_name)
    summary: dict[str, Any] = {"started": utc_now(), "smoke": smoke, "versions": library_versions(),
                               "jobs": n_workers, "notebooks": []}
    done: dict[str, NotebookRun] = {}
    failed: dict[str, str] = {}
    not_run: dict[str, str] = {}
    keys: dict[str, dict[str, Any]] = {}
    pending = list(planned)
    running: dict[Future[NotebookRun | Outcome], _Job] = {}
    # longest first (by the last run's time, known or not fresh) shortens the run on few workers;
    # a notebook never run here counts as long
    last = {j.name: (cache.read_entry(out, j.name) or {}).get("seconds") for j in planned}
    order = {j.name: (-(last[j.name] if last[j.name] is not None else math.inf), i) for i, j in enumerate(planned)}
    t0 = time.perf_counter()

    def schedule(pool: ThreadPoolExecutor, executor: Executor, bar: PipelineProgress) -> None:
        progressed = True
        while progressed:
            progressed = False
            for job in sorted(pending, key=lambda j: order[j.name]):
                blocked = [d for d in job.deps if d in failed or d in not_run]
                if blocked or failed:
                    not_run[job.name] = (f"{blocked[0]} did not finish" if blocked
                                         else "the run stops starting notebooks after a failure")
                    bar.skipped(job.name, not_run[job.name])
                    pending.remove(job)
                    progressed = True
                    continue
                if not all(d in done for d in job.deps):
                    continue
                if job.name not in keys:
                    keys[job.name] = _components(job, out, stems, env, {d: done[d].records for d in job.deps})
                state = None if force else cache.freshness(out, job.name, keys[job.name],
                                                           declared=job.declaration.declared)
                if state is not None and state.fresh and state.entry is not None:
                    done[job.name] = _cached_run(job, state.entry, out, html)
                    bar.cached(job.name, done[job.name].seconds)
                elif len(running) < n_workers:
                    running[pool.submit(_execute, job, keys[job.name], out, executor, bar, html)] = job
                else:
                    continue
                pending.remove(job)
                progressed = True

    with cache.run_lock(out), PipelineProgress(len(planned), enabled=progress) as bar, \
            Executor(kernel_name, threads=max(1, default_jobs() // n_workers)) as executor, \
            ThreadPoolExecutor(n_workers, thread_name_prefix="ojpanel-notebook") as pool:
        try:
            schedule(pool, executor, bar)
            while running:
                finished, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = running[fut]
                    res = fut.result()  # re-raises an interrupt that hit the worker
                    del running[fut]
                    if isinstance(res, NotebookRun):
                        done[job.name] = res
                    else:
                        failed[job.name] = res.error or "failed"
                schedule(pool, executor, bar)
        except KeyboardInterrupt:
            executor.kill_all()
            wait(running, timeout=30)
            for job in running.values():
                failed.setdefault(job.name, Executor.STOPPED)
            _finish_summary(out, summary, planned, done, failed, not_run, t0)
            raise
    result = PipelineResult(runs=[done[j.name] for j in planned if j.name in done], smoke=smoke,
                            wall_seconds=time.perf_counter() - t0, jobs=n_workers)
    result.summary_path = _finish_summary(out, summary, planned, done, failed, not_run, t0)
    if failed:
        first = next(j for j in planned if j.name in failed)
        others = [n for n in failed if n != first.name]
        raise PipelineError(f"{first.path.name} failed: {failed[first.name]} (executed copy: {out / first.path.name})"
                            + (f"; also failed: {', '.join(others)}" if others else "")
                            + (f"; not run: {', '.join(not_run)}" if not_run else ""))
    return result


def _finish_summary(out: Path, summary: dict[str, Any], planned: list[_Job], done: Mapping[str, NotebookRun],
                    failed: Mapping[str, str], not_run: Mapping[str, str], t0: float) -> Path:
    """Write ``summary.json``: notebooks in flow order, whatever order they finished in."""
    summary["notebooks"] = [
        {"name": r.name, "parameters": r.parameters, "seconds": round(r.seconds, 2), "records": r.records,
         "notebook": r.notebook.name, "html": r.html.name if r.html else None, "cached": r.cached}
        for r in (done[j.name] for j in planned if j.name in done)]
    if failed:
        first = next(j for j in planned if j.name in failed)
        summary["failed"] = {"notebook": first.path.name, "error": failed[first.name]}
        summary["failed_all"] = {j.path.name: failed[j.name] for j in planned if j.name in failed}
    if not_run:
        summary["not_run"] = dict(not_run)
    summary["finished"] = utc_now()
    summary["wall_seconds"] = round(time.perf_counter() - t0, 2)
    return atomic_write_text(out / "summary.json",
                                   json.dumps(summary, indent=2, ensure_ascii=False, default=str))


def pipeline_status(
    notebooks_dir: Path | str | None = None,
    out_dir: Path | str = "reports/pipeline",
    *,
    smoke: bool = False,
    parameters: Mapping[str, Any] | None = None,
    select: list[str] | None = None,
    seed: int | None = None,
    kernel_name: str = "python3",
) -> list[cache.Freshness]:
    """Which notebooks a run with these settings would take from the cache, and why the others not.

    Takes the same settings as :func:`run_pipeline`; executes nothing and writes nothing.
    """
    out = Path(out_dir)
    planned, stems = _prepare(notebooks_dir, out, smoke=smoke, parameters=parameters, select=select, seed=seed)
    env = cache.environment(kernel_name)
    states: dict[str, cache.Freshness] = {}
    for job in _topological(planned):
        # undeclared notebooks wait for earlier ones only for order's sake, they read nothing of them
        stale_up = [d for d in job.deps if not states[d].fresh] if job.declaration.declared else []
        records = {d: (states[d].entry or {}).get("records") for d in job.deps}
        comp = _components(job, out, stems, env, records)
        old_inputs = (cache.read_entry(out, job.name) or {}).get("key", {}).get("inputs", {})
        for r in job.declaration.reads:
            # a stale upstream's results are not known yet: judge the rest, not them
            if r.notebook and resolve_notebook(r.notebook, stems) in stale_up and r.text in old_inputs:
                comp["inputs"][r.text] = old_inputs[r.text]
        states[job.name] = cache.freshness(out, job.name, comp, declared=job.declaration.declared,
                                           upstream_stale=stale_up)
    return [states[j.name] for j in planned]


def _topological(jobs: list[_Job]) -> list[_Job]:
    """Jobs ordered so that each comes after those it waits for (flow order otherwise)."""
    out: list[_Job] = []
    placed: set[str] = set()
    todo = list(jobs)
    while todo:
        job = next(j for j in todo if all(d in placed for d in j.deps))
        out.append(job)
        placed.add(job.name)
        todo.remove(job)
    return out


def replay_parameters(summary_path: Path | str, notebooks_dir: Path | str | None = None) -> tuple[bool, dict[str, Any]]:
    """``(smoke, parameters)`` that reproduce the run recorded in a ``summary.json``.

    Parameters are scoped to their notebook (``stem:name``); the automatic ``out_dir`` and
    ``smoke`` are left out (they follow the run's own settings), and so are notebooks that no
    longer exist.
    """
    summary = json.loads(Path(summary_path).read_text(encoding="utf-8"))
    stems = {p.stem for p in discover(notebooks_dir)}
    params = {f"{nb['name']}:{k}": v for nb in summary.get("notebooks", []) if nb.get("name") in stems
              for k, v in nb.get("parameters", {}).items() if k not in ("out_dir", "smoke")}
    return bool(summary.get("smoke", False)), params
