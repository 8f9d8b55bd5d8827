"""The descriptive report on a panel: coverage per area/indicator/year and national trends.

Output (all under ``out_dir``): ``coverage.csv`` (indicator × year share of municipalities with
data), ``coverage_by_area.csv``, ``trends.csv`` (unweighted national mean, sd, n, 95 % band),
``figures/trends_<area>_<page>.png``, a map of one indicator in one year
(``figures/map_<indicator>_<year>.png``, raw values, cited "Källa: Kolada") and ``report.md``.
Trend figures show processed data and therefore do not name Kolada as their source.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.config import KOLADA_CITATION, PROCESSED_SOURCE_NOTE
from ojpanel.core.style import (
    WORDS,
    indicator_title,
    new_figure,
    plain_numbers,
    plot_with_gaps,
    save_figure,
    source_note,
    style,
    unit_label,
    wrap,
    year_axis,
)
from ojpanel.progress import track

__all__ = [
    "coverage_table",
    "trend_table",
    "plot_trends",
    "default_map_indicator",
    "plot_map",
    "write_descriptive_report",
]

_PER_PAGE = 20


def _slug(text: str) -> str:
    table = str.maketrans({"å": "a", "ä": "a", "ö": "o", "Å": "A", "Ä": "A", "Ö": "O"})
    return re.sub(r"[^a-z0-9]+", "_", text.translate(table).lower()).strip("_")


def coverage_table(ds: xr.Dataset) -> pd.DataFrame:
    """Long table ``area, indicator, title, year, coverage, n_municipalities``."""
    cov = ds.oj.coverage()
    n = (cov * ds.sizes["municipality"]).round().astype(int)
    frame = pd.DataFrame({
        "indicator": np.repeat(ds["indicator"].values, ds.sizes["year"]),
        "year": np.tile(ds["year"].values, ds.sizes["indicator"]),
        "coverage": cov.transpose("indicator", "year").values.ravel(),
        "n_municipalities": n.transpose("indicator", "year").values.ravel(),
    })
    meta = pd.DataFrame({"indicator": ds["indicator"].values, "area": ds["area"].values, "title": ds["title"].values})
    return meta.merge(frame, on="indicator")[["area", "indicator", "title", "year", "coverage", "n_municipalities"]]


def trend_table(ds: xr.Dataset) -> pd.DataFrame:
    """National (unweighted) mean per indicator × year with a normal 95 % band; empty cells dropped."""
    nm = ds.oj.national_mean()
    frame = nm.to_dataframe().reset_index()
    frame = frame[frame["n"] > 0].copy()
    frame["lower"] = frame["mean"] - 1.96 * frame["se"]
    frame["upper"] = frame["mean"] + 1.96 * frame["se"]
    meta = pd.DataFrame({
        "indicator": ds["indicator"].values, "area": ds["area"].values, "title": ds["title"].values,
        "kind": ds["kind"].values, "scale": ds["scale"].values, "direction": ds["direction"].values,
    })
    out = meta.merge(frame[["indicator", "year", "mean", "sd", "n", "se", "lower", "upper"]], on="indicator")
    return out.sort_values(["area", "indicator", "year"]).reset_index(drop=True)


def plot_trends(trends: pd.DataFrame, title: str, path: Path | None = None):
    """Small multiples of national means with 95 % bands, one panel per indicator.

    Panels are titled by the indicator's name (the KPI id in small type) and labelled with its
    unit; years without data are gaps, and short runs show their interval as bars. The figure
    is saved (PNG and SVG) when ``path`` is given, and returned either way.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ids = list(dict.fromkeys(trends["indicator"]))
    ncol = min(4, max(1, len(ids)))
    nrow = max(1, int(np.ceil(len(ids) / ncol)))
    with style():
        fig, axes = new_figure(nrow, ncol, size=(3.4 * ncol, 2.7 * nrow + 0.6))
        axes = np.atleast_2d(axes)
        for ax, kpi in zip(axes.ravel(), ids, strict=False):
            d = trends[trends["indicator"] == kpi]
            plot_with_gaps(ax, d["year"], d["mean"], d["lower"], d["upper"], color="C0")
            indicator_title(ax, str(d["title"].iloc[0]), kpi, width=34)
            year_axis(ax)
            scale = d["scale"].iloc[0] if "scale" in d else None
            # long units ("Andel (%) av utbetalt ekonomiskt bistånd") wrapped to the panel's height
            ax.set_ylabel(wrap(unit_label(d["title"].iloc[0], scale), 24))
            plain_numbers(ax)
        for ax in axes.ravel()[len(ids):]:
            ax.set_visible(False)
        fig.suptitle(title)
        source_note(fig, f"{WORDS['national_mean']} över kommuner med värde, {WORDS['band95']}. "
                         f"{PROCESSED_SOURCE_NOTE}.")
    if path is not None:
        save_figure(fig, path)
    return fig


def default_map_indicator(ds: xr.Dataset) -> tuple[str, int]:
    """The indicator and year a descriptive map shows by default: among result indicators with a
    direction (any indicator if none), the one with the highest coverage in its latest year with
    data; ties go to the smaller id."""
    cov = ds.oj.coverage()
    pick = (ds["kind"].values == "result") & (ds["direction"].values != 0)
    if not pick.any():
        pick = np.ones(ds.sizes["indicator"], dtype=bool)
    best = None
    for ind in np.asarray(ds["indicator"].values)[pick]:
        c = cov.sel(indicator=ind)
        years = c["year"].values[c.values > 0]
        if years.size:
            y = int(years.max())
            key = (float(c.sel(year=y)), y)
            if best is None or key > best[0]:
                best = (key, str(ind), y)
    if best is None:
        raise ValueError("the panel has no values to map")
    return best[1], best[2]


def plot_map(ds: xr.Dataset, indicator: str, year: int, path: Path) -> Path:
    """A choropleth of one indicator in one year (raw values: "Källa: Kolada"), saved as PNG and SVG."""
    from ojpanel.report.maps import choropleth

    title = str(ds["title"].sel(indicator=indicator).values)
    scale = str(ds["scale"].sel(indicator=indicator).values) if "scale" in ds.coords else ""
    fig = choropleth(ds["value"], indicator=indicator, year=year, title=f"{title} ({indicator}), {year}",
                     label=unit_label(title, scale), source=KOLADA_CITATION)
    save_figure(fig, path)
    return path


def _md_table(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def write_descriptive_report(
    ds: xr.Dataset,
    out_dir: Path | str,
    *,
    figures: bool = True,
    map_indicator: str | None = None,
    map_year: int | None = None,
) -> dict[str, Path]:
    """Write coverage and trend tables, trend figures per area, a map, and ``report.md``.

    The map shows ``map_indicator`` in ``map_year`` (default: :func:`default_map_indicator`).

    Returns
    -------
    dict
        Paths of what was written (``coverage``, ``coverage_by_area``, ``trends``, ``report`` and
        ``figures``: a list).
    """
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    cov = coverage_table(ds)
    trends = trend_table(ds)
    by_area = (
        cov.groupby(["area", "year"], observed=True)
        .agg(indicators=("indicator", "nunique"), mean_coverage=("coverage", "mean"))
        .reset_index()
    )
    paths: dict = {
        "coverage": out / "coverage.csv",
        "coverage_by_area": out / "coverage_by_area.csv",
        "trends": out / "trends.csv",
        "report": out / "report.md",
        "figures": [],
        "map": None,
    }
    cov.to_csv(paths["coverage"], index=False)
    by_area.to_csv(paths["coverage_by_area"], index=False)
    trends.to_csv(paths["trends"], index=False)
    if figures:
        todo = []
        for area, d in trends.groupby("area", sort=True):
            ids = list(dict.fromkeys(d["indicator"]))
            pages = [ids[i:i + _PER_PAGE] for i in range(0, len(ids), _PER_PAGE)]
            todo += [(area, d, k, len(pages), page) for k, page in enumerate(pages, 1)]
        for area, d, k, n_pages, page in track(todo, "trend figures"):
            p = out / "figures" / f"trends_{_slug(area)}_{k:02d}.png"
            title = f"{str(area).capitalize()}: nationella trender ({k}/{n_pages})"
            plot_trends(d[d["indicator"].isin(page)], title, p)
            paths["figures"].append(p)

    map_lines: list[str] = []
    if figures:
        ind, yr = default_map_indicator(ds) if map_indicator is None else (map_indicator, None)
        if map_indicator is not None and map_indicator not in ds["indicator"].values:
            raise ValueError(f"map_indicator {map_indicator!r} is not in the panel")
        yr = int(map_year) if map_year is not None else (yr if yr is not None else int(
            ds["year"].values[ds["value"].sel(indicator=ind).notnull().any("municipality").values].max()))
        paths["map"] = plot_map(ds, ind, yr, out / "figures" / f"map_{_slug(ind)}_{yr}.png")
        map_lines = [
            "## Map",
            f"{ind} ({ds['title'].sel(indicator=ind).values}), {yr}, by municipality; thick lines are "
            "county borders. Boundaries derived from SCB's Digitala gränser (CC0), processed.",
            "",
            f"![map](figures/{paths['map'].name})",
            "",
        ]
    wide = by_area.pivot(index="area", columns="year", values="mean_coverage")
    wide = wide.loc[:, wide.notna().any()].map(lambda x: f"{x:.0%}" if pd.notna(x) else "")
    n_ind = cov.groupby("area")["indicator"].nunique().rename("indicators").reset_index()
    lines = [
        "# Descriptive report: the OJ panel",
        "",
        "```",
        ds.oj.describe(),
        "```",
        "",
        "## Indicators per area",
        _md_table(n_ind),
        "",
        "## Mean coverage per area and year (share of the 290 municipalities with a value)",
        _md_table(wide.reset_index()),
        "",
        "## National trends",
        "Each indicator's national average is the **unweighted mean over municipalities with data** "
        "(every municipality counts once); bands are mean ± 1.96 standard errors across "
        "municipalities. Full table: `trends.csv`.",
        "",
        *[f"![{p.stem}](figures/{p.name})" for p in paths["figures"]],
        "",
        *map_lines,
        "## Sources",
        f"Raw values: {KOLADA_CITATION} (snapshot {ds.attrs.get('snapshot_date', 'unknown')}). "
        f"Tables and figures above: {PROCESSED_SOURCE_NOTE}.",
        "",
        "Values set to missing by the documented exception table: "
        f"{len(json.loads(ds.attrs.get('value_exceptions_applied', '[]')))}.",
    ]
    paths["report"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths
