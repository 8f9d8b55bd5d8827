"""``ojpanel pipeline``: run the numbered notebooks with papermill; ``ojpanel paper``."""

from __future__ import annotations

from pathlib import Path

import typer

from ojpanel.cli._common import (
    EXIT_INTERRUPTED,
    Command,
    console,
    examples,
    fail,
    handle_errors,
    new_app,
)

__all__ = ["register"]

pipeline_app = new_app("Run the notebooks as a tested pipeline.")


@pipeline_app.command("run", cls=Command, epilog=examples(
    "ojpanel pipeline run --smoke --out reports/pipeline",
    "ojpanel pipeline run -p seed=3 -p 05:draws=1000 --only 05 --out reports/pipeline",
    "ojpanel pipeline run --jobs 1 --force --out reports/pipeline",
))
def run(
    out: Path = typer.Option(Path("reports/pipeline"), "--out", "-o", help="Executed notebooks, HTML, summary.json."),
    notebooks: Path | None = typer.Option(None, "--notebooks", help="Notebook directory (default: notebooks/)."),
    smoke: bool = typer.Option(False, "--smoke", help="Small subsets, as in CI."),
    param: list[str] = typer.Option([], "--param", "-p", help="name=value or NN:name=value; repeatable."),
    only: list[str] = typer.Option([], "--only", help="Run only these notebooks (stem or number), with the "
                                   "notebooks they read; repeatable."),
    seed: int | None = typer.Option(None, help="Seed injected into every notebook with a seed parameter."),
    force: bool = typer.Option(False, "--force", help="Execute every notebook, even those whose cached results "
                               "are fresh."),
    jobs: int | None = typer.Option(None, "--jobs", "-j", min=1, help="Notebooks run at the same time (default: one "
                                    "per core); the results do not depend on it."),
) -> None:
    """Bring every notebook up to date: fresh ones come from the cache, the others run in parallel.

    A notebook runs again only when its cells, parameters, declared inputs, the library or its
    versions changed (see `ojpanel pipeline status`); a failure exits non-zero naming the notebook
    and cell.
    """
    with handle_errors():
        from ojpanel.pipeline import run_pipeline
        from ojpanel.pipeline.parameters import parse_cli_parameter

        params = dict(parse_cli_parameter(p) for p in param)
        try:
            res = run_pipeline(notebooks, out, smoke=smoke, parameters=params, select=only or None, seed=seed,
                               jobs=jobs, force=force)
        except KeyboardInterrupt:
            fail(f"interrupted (Ctrl-C); notebooks that had finished are cached, see {out / 'summary.json'}",
                 EXIT_INTERRUPTED)
        for r in res.runs:
            how = f"cached (ran in {r.seconds:.1f} s)" if r.cached else f"{r.seconds:.1f} s"
            console.print(f"{r.name}: {how}", highlight=False)
        console.print(f"{len(res.runs) - len(res.cached)} executed, {len(res.cached)} cached, "
                      f"{res.wall_seconds:.1f} s with {res.jobs} worker(s); summary: {res.summary_path}",
                      highlight=False)


@pipeline_app.command("status", cls=Command, epilog=examples(
    "ojpanel pipeline status --out reports/pipeline",
    "ojpanel pipeline status --smoke -p 05:draws=1000 --out reports/pipeline",
))
def status(
    out: Path = typer.Option(Path("reports/pipeline"), "--out", "-o", help="The pipeline's output directory."),
    notebooks: Path | None = typer.Option(None, "--notebooks", help="Notebook directory (default: notebooks/)."),
    smoke: bool = typer.Option(False, "--smoke", help="Judge a smoke run."),
    param: list[str] = typer.Option([], "--param", "-p", help="name=value or NN:name=value; repeatable."),
    only: list[str] = typer.Option([], "--only", help="Only these notebooks (stem or number); repeatable."),
    seed: int | None = typer.Option(None, help="Seed injected into every notebook with a seed parameter."),
) -> None:
    """Which notebooks `pipeline run` with the same options would take from the cache, and why not."""
    with handle_errors():
        from ojpanel.pipeline import pipeline_status
        from ojpanel.pipeline.parameters import parse_cli_parameter

        params = dict(parse_cli_parameter(p) for p in param)
        states = pipeline_status(notebooks, out, smoke=smoke, parameters=params, select=only or None, seed=seed)
        width = max(len(s.notebook) for s in states)
        for s in states:
            mark = "[green]fresh[/]" if s.fresh else "[yellow]stale[/]"
            console.print(f"{s.notebook:<{width}}  {mark}  {s.explain()}", highlight=False, soft_wrap=True)


@pipeline_app.command("list", cls=Command, epilog=examples("ojpanel pipeline list"))
def list_notebooks(
    notebooks: Path | None = typer.Option(None, "--notebooks", help="Notebook directory (default: notebooks/)."),
) -> None:
    """The notebooks the pipeline would run, with their parameters."""
    with handle_errors():
        from ojpanel.pipeline import discover, notebook_parameters

        for nb in discover(notebooks):
            console.print(f"{nb.name}: {notebook_parameters(nb)}", highlight=False)


def paper(
    out: Path = typer.Option(Path("reports"), "--out", "-o", help="Reports directory (pipeline/ and paper/ inside)."),
    smoke: bool = typer.Option(False, "--smoke", help="If the pipeline must run first, run it at smoke size."),
    rerun: bool = typer.Option(False, "--rerun", help="Execute every notebook again (default: only stale ones)."),
) -> None:
    """Build the replication paper (Markdown + HTML) from the pipeline's up-to-date results.

    Notebooks that are stale for the last run's settings (same parameters) run again first.
    """
    with handle_errors():
        from ojpanel.pipeline import run_pipeline
        from ojpanel.pipeline.runner import replay_parameters
        from ojpanel.report.paper import render_paper

        summary = out / "pipeline" / "summary.json"
        params: dict[str, object] = {}
        if summary.is_file() and not rerun:
            smoke, params = replay_parameters(summary)
        res = run_pipeline(out_dir=out / "pipeline", smoke=smoke, parameters=params, force=rerun)
        if len(res.cached) < len(res.runs):
            console.print(f"ran {len(res.runs) - len(res.cached)} stale notebook(s) first", highlight=False)
        paths = render_paper(res.summary_path, out / "paper")
        console.print(f"wrote {paths['markdown']} and {paths['html']}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``pipeline`` command group and ``paper``."""
    app.add_typer(pipeline_app, name="pipeline")
    app.command("paper", cls=Command, epilog=examples("ojpanel paper --out reports",
                                                      "ojpanel paper --smoke --rerun --out reports"))(paper)
