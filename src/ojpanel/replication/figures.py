"""Figures for analysis A: national averages per indicator by year.

Figures are built with ``matplotlib.figure.Figure`` on the Agg canvas (no pyplot state, no display
needed). They show processed values, so their source line is
:data:`ojpanel.config.PROCESSED_SOURCE_NOTE`, never Kolada.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ojpanel.config import PROCESSED_SOURCE_NOTE

__all__ = ["trend_figures", "save_figure"]


def _slug(text: str) -> str:
    s = str(text).lower()
    for a, b in (("ä", "a"), ("å", "a"), ("ö", "o"), (" ", "-"), ("/", "-"), ("(", ""), (")", ""), (",", "")):
        s = s.replace(a, b)
    return s[:60]


def trend_figures(a_rows: pd.DataFrame, spec: pd.DataFrame, mode: str = "faithful") -> dict[str, Figure]:
    """One figure per area and indicator group: the national average of each indicator by year.

    Parameters
    ----------
    a_rows
        Tidy rows of analysis A.
    spec
        Matched audit indicators (for labels and grouping).
    mode
        Which mode's rows to plot.

    Returns
    -------
    dict
        File stem -> ``matplotlib.figure.Figure``.
    """
    rows = a_rows[a_rows["mode"] == mode]
    figs: dict[str, Figure] = {}
    n = 0
    for (area, group), gspec in spec.groupby(["area", "indicator_group"], sort=False):
        sub = rows[rows["indicator"].isin(gspec["indicator"])]
        if sub.empty:
            continue
        n += 1
        fig = Figure(figsize=(7.0, 4.2))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        for r in gspec.itertuples(index=False):
            s = sub[sub["indicator"] == r.indicator].sort_values("period")
            if s.empty:
                continue
            comp = r.component if isinstance(r.component, str) and r.component else r.label
            ax.plot(s["period"].astype(int), s["estimate"], marker="o", label=f"{r.indicator}: {comp}"[:70])
        ax.set_title(f"{area}: {group}"[:90], fontsize=10)
        ax.set_xlabel("year")
        ax.set_ylabel("national average (unweighted)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7, loc="best")
        fig.text(0.01, 0.01, f"Source: {PROCESSED_SOURCE_NOTE}. Mode: {mode}.", fontsize=7)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        figs[f"A_{n:02d}_{_slug(area)}_{_slug(group)}"] = fig
    return figs


def save_figure(fig: Figure, path: Path) -> Path:
    """Save a figure as PNG (100 dpi, deterministic metadata)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    return path
