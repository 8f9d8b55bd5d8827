"""``ojpanel pipeline``: run the numbered notebooks with papermill; ``ojpanel paper``."""

from __future__ import annotations

from pathlib import Path

import typer

from ojpanel.cli._common import Command, console, examples, handle_errors, new_app

__all__ = ["register"]

pipeline_app = new_app("Run the notebooks as a tested pipeline.")


@pipeline_app.command("run", cls=Command, epilog=examples(
    "ojpanel pipeline run --smoke --out reports/pipeline",
    "ojpanel pipeline run -p seed=3 -p 05:draws=1000 --only 05 --out reports/pipeline",
))
def run(
    out: Path = typer.Option(Path("reports/pipeline"), "--out", "-o", help="Executed notebooks, HTML, summary.json."),
    notebooks: Path | None = typer.Option(None, "--notebooks", help="Notebook directory (default: notebooks/)."),
    smoke: bool = typer.Option(False, "--smoke", help="Small subsets, as in CI."),
    param: list[str] = typer.Option([], "--param", "-p", help="name=value or NN:name=value; repeatable."),
    only: list[str] = typer.Option([], "--only", help="Run only these notebooks (stem or number); repeatable."),
    seed: int | None = typer.Option(None, help="Seed injected into every notebook with a seed parameter."),
) -> None:
    """Run every notebook in order; non-zero exit naming the failing notebook and cell."""
    with handle_errors():
        from ojpanel.pipeline import run_pipeline
        from ojpanel.pipeline.parameters import parse_cli_parameter

        params = dict(parse_cli_parameter(p) for p in param)
        res = run_pipeline(notebooks, out, smoke=smoke, parameters=params, select=only or None, seed=seed)
        for name, secs in res.timings().items():
            console.print(f"{name}: {secs:.1f} s", highlight=False)
        console.print(f"summary: {res.summary_path}", highlight=False)


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
    rerun: bool = typer.Option(False, "--rerun", help="Run the pipeline again even if its summary exists."),
) -> None:
    """Build the replication paper (Markdown + HTML) from the pipeline's recorded results."""
    with handle_errors():
        from ojpanel.pipeline import run_pipeline
        from ojpanel.report.paper import render_paper

        summary = out / "pipeline" / "summary.json"
        if rerun or not summary.is_file() or "failed" in summary.read_text(encoding="utf-8"):
            console.print("running the notebook pipeline first", highlight=False)
            summary = run_pipeline(out_dir=out / "pipeline", smoke=smoke).summary_path
        paths = render_paper(summary, out / "paper")
        console.print(f"wrote {paths['markdown']} and {paths['html']}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``pipeline`` command group and ``paper``."""
    app.add_typer(pipeline_app, name="pipeline")
    app.command("paper", cls=Command, epilog=examples("ojpanel paper --out reports",
                                                      "ojpanel paper --smoke --rerun --out reports"))(paper)
