"""Figures for analysis A: national averages per indicator by year.

Figures are drawn in the package's style (:mod:`ojpanel.core.style`): Swedish like the indicator
titles, indicators named by their titles, units from the titles, missing years as gaps. They show
processed values, so their source line is :data:`ojpanel.config.PROCESSED_SOURCE_NOTE`, never
Kolada.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from matplotlib.figure import Figure

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.core.style import (
    WORDS,
    new_figure,
    plain_numbers,
    plot_with_gaps,
    source_note,
    style,
    unit_label,
    wrap,
    year_axis,
)

__all__ = ["trend_figures", "MODE_NAMES"]

#: How figures name the replication modes.
MODE_NAMES = {"faithful": "trogen replikering", "improved": "förbättrad metod"}


def _slug(text: str) -> str:
    s = str(text).lower()
    for a, b in (("ä", "a"), ("å", "a"), ("ö", "o"), (" ", "-"), ("/", "-"), ("(", ""), (")", ""), (",", "")):
        s = s.replace(a, b)
    return s[:60]


def trend_figures(
    a_rows: pd.DataFrame,
    spec: pd.DataFrame,
    mode: str = "faithful",
    titles: Mapping[str, str] | None = None,
) -> dict[str, Figure]:
    """One figure per area and indicator group: the national average of each indicator by year.

    Parameters
    ----------
    a_rows
        Tidy rows of analysis A.
    spec
        Matched audit indicators (for grouping and, without ``titles``, labels).
    mode
        Which mode's rows to plot.
    titles
        Indicator id -> title (the panel's ``title`` coordinate); lines are named by them.

    Returns
    -------
    dict
        File stem -> ``matplotlib.figure.Figure``.
    """
    rows = a_rows[a_rows["mode"] == mode]
    titles = dict(titles or {})
    figs: dict[str, Figure] = {}
    n = 0
    for (area, group), gspec in spec.groupby(["area", "indicator_group"], sort=False):
        sub = rows[rows["indicator"].isin(gspec["indicator"])]
        if sub.empty:
            continue
        n += 1
        lines = []
        for r in gspec.drop_duplicates("indicator").itertuples(index=False):
            s = sub[sub["indicator"] == r.indicator]
            if not s.empty:
                name = titles.get(r.indicator) or (r.component if isinstance(r.component, str) and r.component else r.label)
                lines.append((r.indicator, name, s))
        labels = [f"{wrap(name, 40)}\n({ind})" for ind, name, _ in lines]
        # The legend stands beside the axes: the figure grows with its number of text lines.
        text_lines = sum(lab.count("\n") + 1 for lab in labels) + 0.8 * len(labels)
        with style():
            fig, ax = new_figure(size=(8.0, max(4.4, 0.15 * text_lines + 1.0)))
            units = set()
            for (_ind, name, s), label in zip(lines, labels, strict=True):
                units.add(unit_label(name))
                plot_with_gaps(ax, s["period"].astype(int), s["estimate"], label=label)
            ax.set_title(wrap(f"{str(area).capitalize()}: {group}", 70), loc="left")
            year_axis(ax)
            ax.set_ylabel(units.pop() if len(units) == 1 else "Värde")
            plain_numbers(ax)
            ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), labelspacing=0.9)
            source_note(fig, f"{WORDS['national_mean']}. {PROCESSED_SOURCE_NOTE}. "
                             f"RiR 2021:17, {MODE_NAMES.get(mode, mode)}.")
        figs[f"A_{n:02d}_{_slug(area)}_{_slug(group)}"] = fig
    return figs
