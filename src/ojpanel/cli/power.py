"""``ojpanel power``: simulated power and minimum detectable effects of a design."""

from __future__ import annotations

from pathlib import Path

import typer

from ojpanel.cli._common import atomic_output, console, handle_errors, parse_list

__all__ = ["register"]


def power_command(
    design: str = typer.Option(..., "--design", help="Design: users, peer or rd (colour threshold)."),
    panel: Path = typer.Option(..., "--panel", help="Panel file (netCDF) written by ojpanel."),
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
        "kommungrupp_2017", "--group", help="Peer group coordinate (peer design)."
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
) -> None:
    """Simulate the power of a design on the panel's real structure and report the MDE."""
    with handle_errors():
        from ojpanel.designs.power import power
        from ojpanel.errors import ParameterError

        try:
            eff = [float(x) for x in parse_list(effects)] if effects else None
        except ValueError as exc:
            raise ParameterError(
                f"--effects must be numbers separated by commas; got {effects!r}"
            ) from exc
        from ojpanel.panel.io import load_panel

        ds = load_panel(panel)
        if design == "rd":
            from ojpanel.designs.rd_power import rd_power

            ids = [indicator] if indicator else None
            if ids is None:
                # colours exist only where better/worse is defined; say what is left out
                before = ds.sizes["indicator"]
                ds = ds.oj.directional()
                if ds.sizes["indicator"] < before:
                    console.print(f"{before - ds.sizes['indicator']} indicator(s) without a direction left out "
                                  "(OJ colours only indicators where higher or lower is better)", highlight=False)
            res = rd_power(ds, cutoff=cutoff, indicators=ids, effects=eff, n_sims=n_sims, alpha=alpha,
                           target_power=target, seed=seed)
        else:
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
            with atomic_output(output) as tmp:
                res.to_frame().to_csv(tmp, index=False)
            console.print(f"wrote {output}")


def register(app: typer.Typer) -> None:
    """Add ``ojpanel power`` to the application."""
    app.command("power")(power_command)
