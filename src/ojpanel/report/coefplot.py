"""Coefficient plots across indicators from tidy result rows (the replication schema)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.errors import DataError

__all__ = ["coef_plot"]


def coef_plot(
    rows: pd.DataFrame,
    *,
    label: str = "indicator",
    by: str | None = None,
    level: float = 0.95,
    title: str = "",
    xlabel: str = "estimate",
    path: Path | str | None = None,
):
    """Point estimates with normal confidence intervals, one line per row, sorted by estimate.

    Parameters
    ----------
    rows
        Tidy rows with ``estimate``, ``std_error`` and the ``label`` column.
    by
        Optional column whose values are drawn side by side with small vertical offsets (e.g.
        ``mode`` or ``outcome``); rows are matched on ``label``.
    level
        Confidence level of the intervals.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    need = {"estimate", "std_error", label} | ({by} if by else set())
    missing = sorted(need - set(rows.columns))
    if missing:
        raise DataError(f"coef_plot needs columns {sorted(need)}; missing {missing}")
    d = rows.dropna(subset=["estimate", "std_error"]).copy()
    if d.empty:
        raise DataError("coef_plot: no row has both an estimate and a standard error")
    z = stats.norm.ppf(0.5 + level / 2)
    order = d.groupby(label)["estimate"].mean().sort_values().index.tolist()
    pos = {k: i for i, k in enumerate(order)}
    groups = [(None, d)] if by is None else list(d.groupby(by, sort=True))
    fig, ax = plt.subplots(figsize=(6.5, max(2.5, 0.28 * len(order) + 1)))
    offsets = np.linspace(-0.2, 0.2, len(groups)) if len(groups) > 1 else [0.0]
    for (name, g), off in zip(groups, offsets, strict=True):
        y = g[label].map(pos).to_numpy() + off
        ax.errorbar(g["estimate"], y, xerr=z * g["std_error"], fmt="o", ms=3, lw=0.8, capsize=0,
                    label=None if name is None else str(name))
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([str(o)[:40] for o in order], fontsize=7)
    ax.set_xlabel(f"{xlabel} ({level:.0%} CI)")
    ax.set_title(title, fontsize=9)
    if by is not None:
        ax.legend(fontsize=7)
    fig.text(0.01, 0.005, PROCESSED_SOURCE_NOTE, fontsize=6)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    if path is not None:
        fig.savefig(path, dpi=90)
    return fig
