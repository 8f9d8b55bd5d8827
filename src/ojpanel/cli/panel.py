"""``ojpanel build``, ``ojpanel info`` and ``ojpanel verify``: make a panel file, look inside one,
prove one unchanged."""

from __future__ import annotations

from pathlib import Path

import typer

from ojpanel.cli._common import (
    Command,
    console,
    examples,
    fail,
    handle_errors,
    parse_list,
    parse_years,
    warn,
)

__all__ = ["register", "load_verified", "NO_VERIFY_HELP"]

NO_VERIFY_HELP = "Skip the panel's integrity check (content hash and contract); said in the output."


def load_verified(panel: Path, no_verify: bool):
    """Load a panel file for a command: verified unless ``--no-verify``, which is reported."""
    from ojpanel.panel.io import load_panel

    ds = load_panel(panel, verify=not no_verify)
    if no_verify:
        warn(f"{panel} was loaded without verification (--no-verify): its content hash and the "
             "panel contract were not checked")
    return ds


def _years_beyond_data(requested: list[int], ds) -> None:
    from ojpanel.errors import DataError

    have = [int(y) for y in ds["year"].values]
    outside = [y for y in requested if y not in have]
    if outside:
        raise DataError(
            f"--years asks for {_span(requested)}, but the selected data have no values for "
            f"{_span(outside)}; ask only for years with data (here --years {have[0]}-{have[-1]}). "
            "Nothing was written."
        )


def _span(years: list[int]) -> str:
    if len(years) > 2 and years == list(range(years[0], years[-1] + 1)):
        return f"{years[0]}–{years[-1]}"
    return ", ".join(map(str, years))


def _report_groupings(ds, names: list[str], files: dict[str, Path]) -> None:
    """Warn about user groupings that leave municipalities without a group."""
    for name in names:
        labels = ds[name].values
        uncovered = [str(m) for m, g in zip(ds["municipality"].values, labels, strict=True) if g == ""]
        if uncovered:
            shown = ", ".join(uncovered[:8]) + (" …" if len(uncovered) > 8 else "")
            warn(f"grouping '{name}' ({files[name]}) covers {len(labels) - len(uncovered)} of "
                 f"{len(labels)} municipalities; the other {len(uncovered)} ({shown}) have no group "
                 "and are nobody's peers under it. Add them to the file if that is not intended.")


def build(
    out: Path = typer.Option(..., "--out", "-o", help="Panel file to write (.nc or .zarr)."),
    areas: str | None = typer.Option(None, help="Comma-separated analysis areas, e.g. 'äldreomsorg,LSS'."),
    kinds: str | None = typer.Option(None, help="Comma-separated kinds: structure,process,result,background."),
    kpis: str | None = typer.Option(None, help="Comma-separated KPI ids."),
    years: str | None = typer.Option(None, help="Years, e.g. 2016-2020 or 2016,2018 (all must have data)."),
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
        if gender not in {"T", "K", "M"} and gender.lower() != "all":
            raise ParameterError(f"--gender must be T, K, M or all; got {gender!r}")
        groupings = {}
        for g in grouping:
            if "=" not in g:
                raise ParameterError(f"--grouping must look like NAME=FILE.csv, got {g!r}")
            name, file = g.split("=", 1)
            groupings[name.strip()] = Path(file.strip())
        from ojpanel.indicators.catalogue import AREAS, KINDS

        for flag, given, allowed in (("--areas", parse_list(areas), AREAS), ("--kinds", parse_list(kinds), KINDS)):
            unknown = sorted(set(given or []) - set(allowed))
            if unknown:
                raise ParameterError(f"{flag}: unknown value(s) {', '.join(unknown)}; choose from "
                                     f"{', '.join(allowed)}")
        requested = parse_years(years)
        ds = build_panel(
            from_csv or from_dir,
            kpis=parse_list(kpis),
            areas=parse_list(areas),
            kinds=parse_list(kinds),
            years=requested,
            gender=None if gender.lower() == "all" else gender,
            groupings=groupings or None,
        )
        if requested is not None:
            _years_beyond_data(requested, ds)
        _report_groupings(ds, list(groupings), groupings)
        save_panel(ds, out)  # atomic: nothing appears at `out` unless the write succeeded
        console.print(f"wrote {out}: {ds.sizes['municipality']} municipalities × {ds.sizes['indicator']} "
                      f"indicators × {ds.sizes['year']} years", highlight=False)


def info(
    panel: Path = typer.Argument(..., help="Panel file (.nc or .zarr)."),
    no_verify: bool = typer.Option(False, "--no-verify", help=NO_VERIFY_HELP),
) -> None:
    """Dimensions, coverage per indicator × year, and provenance of a (verified) panel file."""
    with handle_errors():
        ds = load_verified(panel, no_verify)
        if not no_verify:
            console.print(f"verified: content hash {ds.attrs.get('content_hash')} and the panel "
                          "contract", highlight=False)
        console.print(ds.oj.describe(), highlight=False)
        cov = ds.oj.coverage().to_pandas()
        cov.columns = [str(c) for c in cov.columns]
        console.print("\ncoverage (share of municipalities with a value), indicator × year:", highlight=False)
        console.print(cov.map(lambda x: f"{x:.0%}" if x > 0 else "·").to_string(), highlight=False, soft_wrap=True)


def verify(panel: Path = typer.Argument(..., help="Panel file (.nc or .zarr).")) -> None:
    """Check that a panel file is unchanged since it was saved and follows the panel contract.

    Exit code 0 when it passes; 2 with every problem listed when it does not.
    """
    with handle_errors():
        from ojpanel.panel.io import verify_panel

        problems = verify_panel(panel)
        if problems:
            fail(f"{panel} failed verification ({len(problems)} problem(s)):\n"
                 + "\n".join(f"  - {p}" for p in problems))
        console.print(f"{panel}: verified (stored content hash matches; panel contract holds)",
                      highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``build``, ``info`` and ``verify`` to the main app."""
    app.command("build", cls=Command, epilog=examples(
        "ojpanel build --areas äldreomsorg --years 2016-2020 --out panel.nc",
        "ojpanel build --from-csv values.csv --grouping socio=socio.csv --out panel.zarr",
    ))(build)
    app.command("info", cls=Command, epilog=examples("ojpanel info panel.nc"))(info)
    app.command("verify", cls=Command, epilog=examples("ojpanel verify panel.nc"))(verify)
