"""``ojpanel steering``: the knowledge-steering designs on a panel, as files in one directory."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import typer

from ojpanel.cli._common import (
    Command,
    check_municipality_coordinate,
    check_range,
    console,
    examples,
    handle_errors,
)
from ojpanel.cli.panel import NO_VERIFY_HELP, load_verified

__all__ = ["register", "steering_command"]


def _panel(panel: Path | None, embedded_area: str | None, synthetic: bool, seed: int, threshold: float,
           no_verify: bool = False):
    """The checklist panel from exactly one source, with a description for the provenance."""
    from ojpanel.errors import ParameterError

    given = [x for x in (panel is not None, embedded_area is not None, synthetic) if x]
    if len(given) != 1:
        raise ParameterError("give exactly one of --panel FILE, --embedded-area AREA or --synthetic")
    if synthetic:
        from ojpanel.designs.steering import simulate_steering

        sim = simulate_steering(seed)
        return sim.panel, sim.users, {"input": "synthetic checklist simulator", "seed": seed}
    if embedded_area is not None:
        import ojpanel
        from ojpanel.designs.steering import dichotomise

        ds = ojpanel.build_panel(kinds=["structure", "process"]).oj.select(area=embedded_area, scale="share")
        if ds.sizes["indicator"] == 0:
            raise ParameterError(f"the embedded data have no structure/process share items in area {embedded_area!r}")
        return dichotomise(ds, threshold=threshold), None, {
            "input": "embedded OJ values", "area": embedded_area, "dichotomised": f"value >= {threshold}"}
    from ojpanel.provenance import hash_dataset

    ds = load_verified(panel, no_verify)
    return ds, None, {"input": str(panel), "panel_hash": hash_dataset(ds), "verified": not no_verify}


def steering_command(
    panel: Path | None = typer.Option(
        None, "--panel", help="Panel file (.nc/.zarr) of binary or ordinal checklist items."),
    embedded_area: str | None = typer.Option(
        None, "--embedded-area", help="Use the embedded structure/process share items of this area (e.g. LSS)."),
    synthetic: bool = typer.Option(
        False, "--synthetic", help="Run on the labelled synthetic checklist simulator (known truth)."),
    users: Path | None = typer.Option(
        None, "--users", help="OJ-users file (CSV/XLSX) for the moderator design."),
    oj_year: int = typer.Option(2019, "--oj-year", help="Year the OJ-use status was measured."),
    peer_group: str = typer.Option("county", "--peer-group", help="Peer grouping of the benchmarking signal."),
    logit: bool = typer.Option(True, "--logit/--no-logit", help="Also fit the logit adoption hazard."),
    threshold: float = typer.Option(
        100.0, "--threshold", help="Share (0-100) from which an embedded share item counts as 'yes'."),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic panel and of the power simulations."),
    power_sims: int = typer.Option(
        0, "--power-sims", help="Replications per effect for simulated MDEs (0: analytic MDEs only; minutes)."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the tables, figures and summary."),
    no_verify: bool = typer.Option(False, "--no-verify", help=NO_VERIFY_HELP),
) -> None:
    """Adoption dynamics, introduction event study, OJ-use moderator and steering vs benchmarking.

    Writes ``steering.csv`` (tidy rows with MDEs), ``transition_rates.csv``,
    ``adoption_summary.csv``, ``summary.txt``, figures and ``provenance.json``; designs the
    panel cannot support are listed in the summary with the reason. Nothing is written unless
    every design that runs succeeds.
    """
    with handle_errors():
        from ojpanel.config import PROCESSED_SOURCE_NOTE
        from ojpanel.core.style import save_figure
        from ojpanel.designs.steering import plot_adoption_curves, plot_event_study, run_steering
        from ojpanel.errors import ParameterError
        from ojpanel.provenance import provenance_attrs

        if power_sims < 0:
            raise ParameterError(f"--power-sims must be 0 (analytic MDEs only) or positive; got {power_sims}")
        check_range(threshold, "--threshold", 0, 100, " (a share in percent)")
        ds, sim_users, source = _panel(panel, embedded_area, synthetic, seed, threshold, no_verify)
        check_municipality_coordinate(ds, peer_group, "--peer-group")
        res = run_steering(ds, users=users if users is not None else sim_users, oj_year=oj_year,
                           peer_group=peer_group, logit=logit, power_sims=power_sims, power_seed=seed)
        out.mkdir(parents=True, exist_ok=True)
        # write into a sibling temporary directory and move the files in only when all are written
        tmp = Path(tempfile.mkdtemp(prefix=".steering-", dir=out))
        try:
            res.to_frame().to_csv(tmp / "steering.csv", index=False)
            for name, frame in res.descriptive.items():
                frame.to_csv(tmp / f"{name}.csv", index=False)
            if power_sims > 0:
                res.mde_table().to_csv(tmp / "mde_simulated.csv", index=False)
            (tmp / "summary.txt").write_text(res.summary + "\n", encoding="utf-8")
            save_figure(plot_adoption_curves(ds), tmp / "adoption_curves.png")
            if "event_cohort" in res.results:
                save_figure(plot_event_study([res["event_cohort"], res["event_twfe"]],
                                             labels=["staggered (group-time ATT)", "naive TWFE"],
                                             ds=ds), tmp / "event_study.png")
            meta = provenance_attrs(None)
            meta["library_versions"] = json.loads(meta["library_versions"])
            meta.update(source_note=PROCESSED_SOURCE_NOTE, designs_run=sorted(res.results),
                        designs_skipped=res.skipped, source=source,
                        options={"oj_year": oj_year, "peer_group": peer_group, "logit": logit,
                                 "power_sims": power_sims,
                                 "users": None if users is None else str(users)})
            (tmp / "provenance.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False, default=str) + "\n",
                                                 encoding="utf-8")
            written = sorted(p.name for p in tmp.iterdir())
            for name in written:
                os.replace(tmp / name, out / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        console.print(res.summary, highlight=False)
        console.print(f"wrote {', '.join(written)} to {out}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``ojpanel steering`` to the application."""
    app.command("steering", cls=Command, epilog=examples(
        "ojpanel steering --synthetic --out steering/",
        "ojpanel steering --embedded-area LSS --power-sims 200 --out steering-lss/",
        "ojpanel steering --panel items.nc --users users.csv --out steering-items/",
    ))(steering_command)
