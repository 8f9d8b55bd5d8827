"""Figures of the steering designs: adoption curves by item and event-study plots with bands.

Built on ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state, no display needed).
They show processed values, so the source line is :data:`ojpanel.config.PROCESSED_SOURCE_NOTE`
(never Kolada); synthetic panels are labelled as such.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.designs.steering._common import item_top, value_array
from ojpanel.designs.steering.event_study import EventStudyResult
from ojpanel.errors import ParameterError

__all__ = ["plot_adoption_curves", "plot_event_study", "source_note"]


def source_note(ds: xr.Dataset | None = None) -> str:
    """The figure's source line: processed data, and 'SYNTHETIC data' for simulated panels."""
    synthetic = ds is not None and bool(ds.attrs.get("synthetic", 0))
    return ("SYNTHETIC data (simulated). " if synthetic else "") + PROCESSED_SOURCE_NOTE


def plot_adoption_curves(ds: xr.Dataset, *, event_time: bool = False, introduced: pd.Series | None = None) -> Figure:
    """Yes-share by year for every item, one panel per area.

    Parameters
    ----------
    ds
        Panel of binary/ordinal items.
    event_time
        Plot against years since introduction (needs ``introduced`` or the ``introduced``
        coordinate) instead of calendar years.

    Returns
    -------
    matplotlib.figure.Figure
    """
    da = value_array(ds)
    top = item_top(da)
    yes = xr.where(da.notnull(), (da == xr.DataArray(top, dims="indicator", coords={"indicator": da["indicator"]})), np.nan)
    share = yes.mean("municipality", skipna=True)
    areas = sorted(set(np.asarray(da["area"].values).astype(str))) if "area" in da.coords else ["all"]
    if event_time:
        if introduced is None:
            if "introduced" not in da.coords:
                raise ParameterError("event_time=True needs introduction years (introduced=... or an 'introduced' coordinate)")
            introduced = pd.Series(np.asarray(da["introduced"].values), index=np.asarray(da["indicator"].values).astype(str))
    fig = Figure(figsize=(6.0 * len(areas), 4.2))
    FigureCanvasAgg(fig)
    years = np.asarray(da["year"].values).astype(int)
    for k, area in enumerate(areas):
        ax = fig.add_subplot(1, len(areas), k + 1)
        for j, ind in enumerate(np.asarray(da["indicator"].values).astype(str)):
            if "area" in da.coords and str(da["area"].values[j]) != area:
                continue
            y = share.values[j]
            x = years - int(introduced[ind]) if event_time else years
            ok = np.isfinite(y)
            if not ok.any():
                continue
            ax.plot(x[ok], y[ok], marker="o", ms=3, lw=1.2, label=ind)
        ax.set_title(area)
        ax.set_xlabel("years since introduction" if event_time else "year")
        ax.set_ylabel("share answering yes (top level)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        if len(ax.get_lines()) <= 12:
            ax.legend(fontsize=6, ncol=2)
    fig.suptitle("Adoption curves by checklist item")
    fig.text(0.01, 0.005, source_note(ds), fontsize=7, ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def plot_event_study(
    results: EventStudyResult | Sequence[EventStudyResult],
    *,
    labels: Sequence[str] | None = None,
    truth: pd.DataFrame | None = None,
    ds: xr.Dataset | None = None,
) -> Figure:
    """Event-time estimates with 95 % confidence bands; several estimators side by side.

    Parameters
    ----------
    results
        One or more :class:`EventStudyResult` (e.g. the staggered-timing and the naive TWFE).
    labels
        Legend labels (default: the methods).
    truth
        Optional ``event_time, att`` frame (the planted effect of a simulation) drawn as a line.
    ds
        The panel, for the source line (synthetic panels are labelled).
    """
    res = [results] if isinstance(results, EventStudyResult) else list(results)
    labels = list(labels) if labels is not None else [r.method for r in res]
    if len(labels) != len(res):
        raise ParameterError("give one label per result")
    fig = Figure(figsize=(7.0, 4.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.12
    for k, (r, lab) in enumerate(zip(res, labels, strict=True)):
        ev = r.event.sort_values("event_time")
        x = ev["event_time"].to_numpy(float) + (k - (len(res) - 1) / 2) * width
        ax.fill_between(x, ev["lower"], ev["upper"], alpha=0.2)
        ax.plot(x, ev["estimate"], marker="o", label=f"{lab} (95 % CI)")
    if truth is not None:
        t = truth.sort_values("event_time")
        ax.plot(t["event_time"], t["att"], color="black", ls="--", label="planted effect")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("years since the item was introduced")
    ax.set_ylabel("effect on the yes-share (vs e = 0)")
    ax.set_title("Item-introduction event study")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.text(0.01, 0.005, source_note(ds), fontsize=7, ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
