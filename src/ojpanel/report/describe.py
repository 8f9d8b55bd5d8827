"""The descriptive report on a panel: coverage per area/indicator/year and national trends.

Output (all under ``out_dir``): ``coverage.csv`` (indicator × year share of municipalities with
data), ``coverage_by_area.csv``, ``trends.csv`` (unweighted national mean, sd, n, 95 % band),
``figures/trends_<area>_<page>.png`` and ``report.md``. Figures show processed data and therefore
do not name Kolada as their source.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.config import KOLADA_CITATION, PROCESSED_SOURCE_NOTE
from ojpanel.progress import track

__all__ = ["coverage_table", "trend_table", "plot_trends", "write_descriptive_report"]

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
        "kind": ds["kind"].values, "direction": ds["direction"].values,
    })
    out = meta.merge(frame[["indicator", "year", "mean", "sd", "n", "se", "lower", "upper"]], on="indicator")
    return out.sort_values(["area", "indicator", "year"]).reset_index(drop=True)


def plot_trends(trends: pd.DataFrame, title: str, path: Path) -> Path:
    """Small multiples of national means with 95 % bands, one panel per indicator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    ids = list(dict.fromkeys(trends["indicator"]))
    ncol = 4
    nrow = max(1, int(np.ceil(len(ids) / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 2.6 * nrow), squeeze=False)
    for ax, kpi in zip(axes.ravel(), ids, strict=False):
        d = trends[trends["indicator"] == kpi]
        ax.fill_between(d["year"], d["lower"], d["upper"], alpha=0.25, color="C0", linewidth=0)
        ax.plot(d["year"], d["mean"], marker="o", ms=2.5, color="C0")
        label = str(d["title"].iloc[0])
        ax.set_title(f"{kpi}: {label[:55]}{'…' if len(label) > 55 else ''}", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.ravel()[len(ids):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.text(0.01, 0.005, f"Unweighted mean over municipalities with data, 95 % band. {PROCESSED_SOURCE_NOTE}.",
             fontsize=6)
    fig.tight_layout(rect=(0, 0.02, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _md_table(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def write_descriptive_report(ds: xr.Dataset, out_dir: Path | str, *, figures: bool = True) -> dict[str, Path]:
    """Write coverage and trend tables, trend figures per area, and ``report.md``.

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
            plot_trends(d[d["indicator"].isin(page)], f"{area}: national trends ({k}/{n_pages})", p)
            paths["figures"].append(p)

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
        "## Sources",
        f"Raw values: {KOLADA_CITATION} (snapshot {ds.attrs.get('snapshot_date', 'unknown')}). "
        f"Tables and figures above: {PROCESSED_SOURCE_NOTE}.",
        "",
        "Values set to missing by the documented exception table: "
        f"{len(json.loads(ds.attrs.get('value_exceptions_applied', '[]')))}.",
    ]
    paths["report"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths
