"""``ojpanel build`` and ``ojpanel info``: make a panel file and look inside one."""

from __future__ import annotations

from pathlib import Path

import typer

from ojpanel.cli._common import console, handle_errors, parse_list, parse_years

__all__ = ["register"]


def build(
    out: Path = typer.Option(..., "--out", "-o", help="Panel file to write (.nc or .zarr)."),
    areas: str | None = typer.Option(None, help="Comma-separated analysis areas, e.g. 'äldreomsorg,LSS'."),
    kinds: str | None = typer.Option(None, help="Comma-separated kinds: structure,process,result,background."),
    kpis: str | None = typer.Option(None, help="Comma-separated KPI ids."),
    years: str | None = typer.Option(None, help="Years, e.g. 2016-2020 or 2016,2018."),
    gender: str = typer.Option("T", help="T, K, M, or 'all' for a gender dimension."),
    from_csv: Path | None = typer.Option(None, "--from-csv", help="Tidy CSV/CSV.gz/parquet instead of the embedded data."),
    from_dir: Path | None = typer.Option(None, "--from", help="Snapshot directory written by `ojpanel fetch`."),
    grouping: list[str] = typer.Option([], help="Extra grouping NAME=FILE.csv (columns municipality,group); repeatable."),
) -> None:
    """Build the OJ panel from the embedded real data, a tidy file or a fetched snapshot."""
    with handle_errors():
        from ojpanel.errors import ParameterError
        from ojpanel.panel.build import build_panel
        from ojpanel.panel.io import panel_format, save_panel

        panel_format(out)
        if from_csv and from_dir:
            raise ParameterError("give either --from-csv or --from, not both")
        groupings = {}
        for g in grouping:
            if "=" not in g:
                raise ParameterError(f"--grouping must look like NAME=FILE.csv, got {g!r}")
            name, file = g.split("=", 1)
            groupings[name.strip()] = Path(file.strip())
        ds = build_panel(
            from_csv or from_dir,
            kpis=parse_list(kpis),
            areas=parse_list(areas),
            kinds=parse_list(kinds),
            years=parse_years(years),
            gender=None if gender.lower() == "all" else gender,
            groupings=groupings or None,
        )
        save_panel(ds, out)  # atomic: nothing appears at `out` unless the write succeeded
        console.print(f"wrote {out}: {ds.sizes['municipality']} municipalities × {ds.sizes['indicator']} "
                      f"indicators × {ds.sizes['year']} years", highlight=False)


def info(panel: Path = typer.Argument(..., help="Panel file (.nc or .zarr).")) -> None:
    """Dimensions, coverage per indicator × year, and provenance of a panel file."""
    with handle_errors():
        from ojpanel.panel.io import load_panel

        ds = load_panel(panel)
        console.print(ds.oj.describe(), highlight=False)
        cov = ds.oj.coverage().to_pandas()
        cov.columns = [str(c) for c in cov.columns]
        console.print("\ncoverage (share of municipalities with a value), indicator × year:", highlight=False)
        console.print(cov.map(lambda x: f"{x:.0%}" if x > 0 else "·").to_string(), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``build`` and ``info`` to the main app."""
    app.command("build")(build)
    app.command("info")(info)
