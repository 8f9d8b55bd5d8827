"""``ojpanel power``: simulated power and minimum detectable effects of a design."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from ojpanel.cli._common import (
    Command,
    check_municipality_coordinate,
    check_range,
    check_unit_interval,
    console,
    examples,
    handle_errors,
    parse_list,
)
from ojpanel.cli.panel import NO_VERIFY_HELP, load_verified
from ojpanel.core.atomic import atomic_path

__all__ = ["register", "DESIGN_CHOICES"]

#: Designs ``ojpanel power`` simulates: the two of :mod:`ojpanel.designs.power` and the colour RD.
DESIGN_CHOICES = ("users", "peer", "rd")


def power_command(
    design: str = typer.Option(..., "--design", help="Design: users, peer or rd (colour threshold)."),
    panel: Path = typer.Option(..., "--panel", help="Panel file (.nc or .zarr) written by ojpanel."),
    indicator: str | None = typer.Option(
        None, "--indicator", help="Indicator id (needed if the panel has several)."
    ),
    effects: str | None = typer.Option(
        None, "--effects", help="Comma-separated effect sizes; default a grid around the MDE."
    ),
    n_sims: int = typer.Option(500, "--n-sims", help="Replications per effect size."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level."),
    target: float = typer.Option(0.8, "--target-power", help="Power at which the MDE is reported."),
    group: str = typer.Option(
        "kommungrupp_2017", "--group",
        help="Peer definition (peer design): a group coordinate or 'neighbours' (land borders).",
    ),
    shocks: str = typer.Option(
        "county", "--shocks", help="Shock cells ×year (peer design); 'none' for year effects."
    ),
    cluster: str | None = typer.Option(
        None, "--cluster", help="Cluster coordinate (default by design)."
    ),
    share: float = typer.Option(
        0.5, "--share-treated", help="Share of treated municipalities (users design)."
    ),
    cutoff: float = typer.Option(0.25, "--cutoff", help="Percentile-rank cut-off (rd design)."),
    seed: int = typer.Option(0, "--seed", help="Root seed."),
    output: Path | None = typer.Option(None, "--output", help="Write the power table as CSV."),
    no_verify: bool = typer.Option(False, "--no-verify", help=NO_VERIFY_HELP),
) -> None:
    """Simulate the power of a design on the panel's real structure and report the MDE."""
    with handle_errors():
        from ojpanel.designs.power import power
        from ojpanel.errors import DataError, ParameterError
        from ojpanel.peers import NEIGHBOURS

        # options are checked here, so that messages name the flag the user typed
        if design not in DESIGN_CHOICES:
            raise ParameterError(
                f"--design must be one of {', '.join(DESIGN_CHOICES)}; got {design!r}"
            )
        check_range(n_sims, "--n-sims", 1, what=" (replications per effect size)")
        check_unit_interval(alpha, "--alpha")
        check_unit_interval(target, "--target-power")
        check_unit_interval(share, "--share-treated")
        check_unit_interval(cutoff, "--cutoff")
        try:
            eff = [float(x) for x in parse_list(effects)] if effects else None
        except ValueError as exc:
            raise ParameterError(
                f"--effects must be numbers separated by commas; got {effects!r}"
            ) from exc
        if design != "rd" and n_sims * alpha < 1:
            # the size-adjusted MDE needs alpha·n_sims null replications to calibrate the test
            raise ParameterError(
                f"--n-sims {n_sims} is too few to calibrate the test's size at --alpha {alpha:g}; "
                f"use --n-sims {math.ceil(1 / alpha)} or more"
            )
        ds = load_verified(panel, no_verify)
        if indicator is not None and indicator not in {str(i) for i in ds["indicator"].values}:
            ids = [str(i) for i in ds["indicator"].values]
            raise ParameterError(
                f"--indicator {indicator} is not in {panel} (it has {len(ids)}: "
                f"{', '.join(ids[:8])}{' …' if len(ids) > 8 else ''})"
            )
        if design == "rd":
            from ojpanel.designs.rd_power import rd_power

            ids = [indicator] if indicator else None
            if ids is None:
                # colours exist only where better/worse is defined; say what is left out
                before = ds.sizes["indicator"]
                ds = ds.oj.directional()
                if ds.sizes["indicator"] == 0:
                    raise DataError(
                        f"none of the {before} indicator(s) in {panel} has a direction (higher or "
                        "lower is better), so OJ colours none of them and the colour RD has "
                        "nothing to estimate; use result indicators with direction +1/−1"
                    )
                if ds.sizes["indicator"] < before:
                    console.print(f"{before - ds.sizes['indicator']} indicator(s) without a direction left out "
                                  "(OJ colours only indicators where higher or lower is better)", highlight=False)
            res = rd_power(ds, cutoff=cutoff, indicators=ids, effects=eff, n_sims=n_sims, alpha=alpha,
                           target_power=target, seed=seed)
        else:
            if design == "peer" and group != NEIGHBOURS:
                check_municipality_coordinate(ds, group, "--group")
                if shocks.lower() != "none":
                    check_municipality_coordinate(ds, shocks, "--shocks")
            if cluster is not None:
                check_municipality_coordinate(ds, cluster, "--cluster")
            if indicator is None and ds.sizes["indicator"] != 1:
                raise ParameterError(
                    f"{panel} has {ds.sizes['indicator']} indicators; choose one with --indicator"
                )
            res = power(
                ds,
                design=design,
                indicator=indicator,
                effects=eff,
                n_sims=n_sims,
                alpha=alpha,
                target_power=target,
                group=group,
                shocks=None if shocks.lower() == "none" else shocks,
                cluster=cluster,
                share_treated=share,
                seed=seed,
            )
        console.print(res.summary, highlight=False)
        if output is not None:
            with atomic_path(output) as tmp:
                res.to_frame().to_csv(tmp, index=False)
            console.print(f"wrote {output}")


def register(app: typer.Typer) -> None:
    """Add ``ojpanel power`` to the application."""
    app.command("power", cls=Command, epilog=examples(
        "ojpanel power --design users --panel panel.nc --indicator N31807 --n-sims 500",
        "ojpanel power --design rd --panel panel.nc --cutoff 0.25 --output rd_power.csv",
    ))(power_command)
