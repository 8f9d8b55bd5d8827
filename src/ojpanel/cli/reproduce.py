"""``ojpanel reproduce``: the main job on the embedded data, and its parts."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ojpanel.cli._common import Command, console, examples, handle_errors, new_app
from ojpanel.cli.panel import NO_VERIFY_HELP, load_verified

__all__ = ["register", "reproduce_app", "parse_groupings"]

reproduce_app = new_app("Reproduce results: the panel, the descriptive report, RiR 2021:17, the pipeline.")


def _step(name: str):
    console.print(f"[bold]▶ {name}[/]", highlight=False)
    return time.perf_counter()


def _done(t0: float) -> None:
    console.print(f"  done in {time.perf_counter() - t0:.1f} s", highlight=False)


@reproduce_app.command("describe", cls=Command, epilog=examples(
    "ojpanel reproduce describe --out reports", "ojpanel reproduce describe --panel panel.nc --out reports"))
def describe(
    out: Path = typer.Option(Path("reports"), "--out", "-o", help="Output directory."),
    panel: Path | None = typer.Option(None, "--panel", help="Panel file; default: build from the embedded data."),
    no_verify: bool = typer.Option(False, "--no-verify", help=NO_VERIFY_HELP),
) -> None:
    """Descriptive report: coverage per area/indicator/year and national trends."""
    with handle_errors():
        from ojpanel.panel.build import build_panel
        from ojpanel.report.describe import write_descriptive_report

        ds = load_verified(panel, no_verify) if panel else build_panel()
        paths = write_descriptive_report(ds, out / "describe")
        console.print(f"wrote {paths['report']} and {len(paths['figures'])} figures", highlight=False)


def parse_groupings(values: list[str]) -> dict[str, Path | str]:
    """``--grouping`` values (``NAME=FILE.csv`` or ``NAME=neighbours``) as :func:`rir2021`'s ``groupings``."""
    from ojpanel.errors import ParameterError

    groupings: dict[str, Path | str] = {}
    for g in values:
        name, _, file = g.partition("=")
        if not name.strip() or not file.strip():
            raise ParameterError(f"--grouping must look like NAME=FILE.csv or NAME=neighbours, got {g!r}")
        file = file.strip()
        groupings[name.strip()] = "neighbours" if file == "neighbours" else Path(file)
    return groupings


@reproduce_app.command("rir2021", cls=Command, epilog=examples(
    "ojpanel reproduce rir2021 --panel panel.nc --oj-users users.csv --mode both --out reports/rir2021"))
def rir2021(
    panel: Path | None = typer.Option(None, "--panel", help="Panel file; default: build from the embedded data."),
    oj_users: Path | None = typer.Option(None, "--oj-users", help="CSV municipality,area,status (user|non_user|other)."),
    mode: str = typer.Option("faithful", help="faithful, improved or both."),
    grouping: list[str] = typer.Option(
        [], help="Extra peer grouping NAME=FILE.csv, or NAME=neighbours for the municipalities sharing a "
                 "land border (improved mode); repeatable. Name Socialstyrelsen's grouping "
                 "'socioeconomic' to compare it with the audit's socioeconomic columns."),
    evaluate_choices: bool = typer.Option(
        True, "--evaluate-choices/--no-evaluate-choices",
        help="Score the method choices the audit left open against its published cells."),
    out: Path = typer.Option(Path("reports/rir2021"), "--out", "-o", help="Output directory."),
    no_verify: bool = typer.Option(False, "--no-verify", help=NO_VERIFY_HELP),
) -> None:
    """RiR 2021:17's statistical appendix (analyses A–E): tidy and audit-style tables, figures,
    report, and the comparison with the audit's published Tables 2–17 (``fidelity/``)."""
    with handle_errors():
        from ojpanel.errors import ParameterError
        from ojpanel.panel.build import build_panel
        from ojpanel.replication import write_rir2021

        if mode not in {"faithful", "improved", "both"}:
            raise ParameterError(f"--mode must be faithful, improved or both, got {mode!r}")
        groupings = parse_groupings(grouping)
        ds = load_verified(panel, no_verify) if panel else build_panel()
        rep = write_rir2021(ds, out, oj_users=oj_users, mode=mode, groupings=groupings or None)
        console.print(rep.summary, highlight=False)
        console.print("", highlight=False)
        console.print(rep.compare_published().summary, highlight=False, soft_wrap=True)
        console.print(f"cell table: {out / 'fidelity' / 'cells.csv'}", highlight=False)
        for stale in ("choices.csv", "choices.txt"):  # a choice table from an earlier run would go stale
            (out / "fidelity" / stale).unlink(missing_ok=True)
        if evaluate_choices:
            from ojpanel.replication.choices import evaluate_choices as _evaluate

            ev = _evaluate(ds, oj_users=oj_users, groupings=groupings or None)
            ev.write(out / "fidelity" / "choices.csv")
            (out / "fidelity" / "choices.txt").write_text(ev.summary + "\n", encoding="utf-8")
            console.print("", highlight=False)
            console.print(ev.summary, highlight=False, soft_wrap=True)


@reproduce_app.command("all", cls=Command, epilog=examples(
    "ojpanel reproduce all --out reports", "ojpanel reproduce all --smoke --out reports-smoke"))
def reproduce_all(
    out: Path = typer.Option(Path("reports"), "--out", "-o", help="Output directory."),
    smoke: bool = typer.Option(False, "--smoke", help="Small, fast versions of every step (as in CI)."),
) -> None:
    """The main job: build the panel, the descriptive report, the RiR 2021:17 replication, the
    notebook pipeline and the paper, all from the embedded data."""
    with handle_errors():
        from ojpanel.panel.build import build_panel
        from ojpanel.panel.io import save_panel
        from ojpanel.report.describe import write_descriptive_report

        out.mkdir(parents=True, exist_ok=True)
        t = _step("build the panel from the embedded data")
        ds = build_panel()
        save_panel(ds, out / "panel.nc")
        _done(t)
        t = _step("descriptive report" + (" (smoke: elderly care only)" if smoke else ""))
        write_descriptive_report(ds.oj.select(area="äldreomsorg") if smoke else ds, out / "describe")
        _done(t)
        for step in _EXTRA_STEPS:
            t = _step(step.__doc__.strip().splitlines()[0])
            step(ds, out, smoke)
            _done(t)
        console.print(f"[bold green]all outputs in {out}[/]", highlight=False)


def _replication_step(ds, out: Path, smoke: bool) -> None:
    """RiR 2021:17 replication (faithful and improved modes)."""
    from ojpanel.replication import write_rir2021

    rep = write_rir2021(ds, out / "rir2021", mode="both")
    console.print(rep.summary, highlight=False)
    console.print(rep.compare_published().describe(max_items=10), highlight=False, soft_wrap=True)


def _pipeline_step(ds, out: Path, smoke: bool) -> None:
    """Notebook pipeline (papermill), then the replication paper."""
    from ojpanel.pipeline import run_pipeline
    from ojpanel.report.paper import render_paper

    res = run_pipeline(out_dir=out / "pipeline", smoke=smoke)
    for r in res.runs:
        console.print(f"  {r.name}: {'cached, ran in ' if r.cached else ''}{r.seconds:.1f} s", highlight=False)
    paths = render_paper(res.summary_path, out / "paper")
    console.print(f"  paper: {paths['html']}", highlight=False)


_EXTRA_STEPS = [_replication_step, _pipeline_step]


def register(app: typer.Typer) -> None:
    """Add the ``reproduce`` command group."""
    app.add_typer(reproduce_app, name="reproduce")
