"""Coefficient plots across indicators from tidy result rows (the replication schema)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.core.style import (
    indicator_ticklabels,
    new_figure,
    save_figure,
    source_note,
    style,
    wrap,
)
from ojpanel.errors import DataError

__all__ = ["coef_plot"]


def coef_plot(
    rows: pd.DataFrame,
    *,
    label: str = "indicator",
    titles: Mapping[str, str] | None = None,
    by: str | None = None,
    facet: str | None = None,
    level: float = 0.95,
    title: str = "",
    xlabel: str = "Skattning",
    path: Path | str | None = None,
):
    """Point estimates with normal confidence intervals, one line per indicator.

    Parameters
    ----------
    rows
        Tidy rows with ``estimate``, ``std_error`` and the ``label`` column.
    titles
        Indicator id -> name; rows are labelled by name with the id in small type (default: the
        rows' ``title`` column if present, else the ids).
    by
        Optional column whose values are drawn side by side with small vertical offsets (e.g.
        ``mode``); estimates on one axis must share their unit.
    facet
        Optional column whose values get panels of their own, each with its own x axis (e.g.
        ``design`` when a binary flag's coefficient and a continuous slope are compared).
    level
        Confidence level of the intervals.
    xlabel
        The estimates' unit (a mapping facet value -> label when panels differ).
    path
        Where to save the figure (PNG and SVG), if given.

    Returns
    -------
    matplotlib.figure.Figure
    """
    need = {"estimate", "std_error", label} | ({by} if by else set()) | ({facet} if facet else set())
    missing = sorted(need - set(rows.columns))
    if missing:
        raise DataError(f"coef_plot needs columns {sorted(need)}; missing {missing}")
    d = rows.dropna(subset=["estimate", "std_error"]).copy()
    if d.empty:
        raise DataError("coef_plot: no row has both an estimate and a standard error")
    if titles is None and "title" in d:
        titles = dict(zip(d[label].astype(str), d["title"].astype(str), strict=False))
    names = dict(titles or {})
    z = stats.norm.ppf(0.5 + level / 2)
    order = d.groupby(label)["estimate"].mean().sort_values().index.tolist()
    pos = {k: i for i, k in enumerate(order)}
    panels = [(None, d)] if facet is None else list(d.groupby(facet, sort=True))
    with style():
        fig, axes = new_figure(1, len(panels), size=(4.2 + 2.6 * len(panels), max(2.8, 0.42 * len(order) + 1.4)),
                               sharey=True)
        axes = np.atleast_1d(axes).ravel()
        for ax, (pname, pd_rows) in zip(axes, panels, strict=True):
            groups = [(None, pd_rows)] if by is None else list(pd_rows.groupby(by, sort=True))
            offsets = np.linspace(-0.18, 0.18, len(groups)) if len(groups) > 1 else [0.0]
            for (name, g), off in zip(groups, offsets, strict=True):
                y = g[label].map(pos).to_numpy() + off
                ax.errorbar(g["estimate"], y, xerr=z * g["std_error"], fmt="o", ms=3.5, lw=0.9,
                            capsize=0, label=None if name is None else str(name))
            ax.axvline(0, color="0.5", lw=0.8)
            xl = xlabel.get(pname, "Skattning") if isinstance(xlabel, Mapping) else xlabel
            ax.set_xlabel(f"{wrap(xl, 45)}\n(punktskattning, {level:.0%} konfidensintervall)".replace(".", ","))
            if pname is not None:
                ax.set_title(wrap(str(pname), 40), loc="left")
            if by is not None:
                ax.legend(loc="lower right")
        indicator_ticklabels(axes[0], [names.get(str(o), str(o)) for o in order],
                             [str(o) for o in order] if names else None, id_ax=axes[-1])
        if title:
            fig.suptitle(wrap(title, 90), x=0.01, ha="left")
        source_note(fig, PROCESSED_SOURCE_NOTE)
    if path is not None:
        save_figure(fig, path)
    return fig
