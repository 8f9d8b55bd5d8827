"""Figures of the steering designs: adoption curves, event studies with bands, designs compared.

Built on ``matplotlib.figure.Figure`` (no pyplot state; a Figure displays inline in a notebook
through its own ``_repr_png_``, and ``savefig`` writes files without a display). They show
processed values, so the source line is :data:`ojpanel.config.PROCESSED_SOURCE_NOTE` (never
Kolada); synthetic panels are labelled as such. Indicators appear by name (title), not id; axes
carry units; layouts are constrained so that no label is clipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.designs.steering._common import item_top, value_array
from ojpanel.designs.steering.event_study import EventStudyResult
from ojpanel.errors import ParameterError

__all__ = ["plot_adoption_curves", "plot_event_study", "plot_staggered_event_study", "plot_designs_compared",
           "source_note", "indicator_name"]


def source_note(ds: xr.Dataset | None = None) -> str:
    """The figure's source line: processed data, and 'SYNTHETIC data' for simulated panels."""
    synthetic = ds is not None and bool(ds.attrs.get("synthetic", 0))
    return ("SYNTETISKA data (simulerade; SYNTHETIC). " if synthetic else "") + PROCESSED_SOURCE_NOTE


def indicator_name(ds: xr.Dataset | xr.DataArray, ind: str, width: int = 60) -> str:
    """The indicator's title (shortened to ``width`` characters), or its id when the panel has none."""
    if "title" in ds.coords:
        t = str(ds["title"].sel(indicator=ind).values)
        t = t.split(" - ", 1)[1] if t.startswith("Enhetsundersökning") and " - " in t else t
        return t if len(t) <= width else t[: width - 1].rstrip() + "…"
    return ind


def _short(label: str) -> str:
    """A long Kolada title without its survey prefix."""
    label = str(label)
    return label.split(" - ", 1)[1] if label.startswith("Enhetsundersökning") and " - " in label else label


def _effect_label(outcome_label: str, width: int = 48) -> str:
    """Y-axis label of an effect on ``outcome_label``, wrapped, with its unit."""
    import textwrap

    name = _short(outcome_label)
    pct = "%" in name or "andel" in name.lower()
    unit = "procentenheter" if pct else "utfallets enhet"
    return "\n".join(textwrap.wrap(f"effekt på {name}", width)[:3]) + f"\n({unit})"


def _gapped(x: np.ndarray, y: np.ndarray, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaN where consecutive x differ by more than ``step`` (so lines break at missing years)."""
    ok = np.isfinite(y)
    x, y = x[ok].astype(float), y[ok]
    if x.size < 2:
        return x, y
    gaps = np.flatnonzero(np.diff(x) > step)
    return np.insert(x, gaps + 1, np.nan), np.insert(y, gaps + 1, np.nan)


def plot_adoption_curves(ds: xr.Dataset, *, event_time: bool = False, introduced: pd.Series | None = None) -> Figure:
    """Yes-share by year for every item, one panel per area.

    Years without answers are gaps (the line breaks; no line is drawn across a missing year),
    the year axis has integer ticks, and the legend names items by title.

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
    n_items = max(int((np.asarray(da["area"].values).astype(str) == a).sum()) if "area" in da.coords else da.sizes["indicator"]
                  for a in areas)
    ncol = 1 if n_items <= 10 else 2
    legend_rows = int(np.ceil(min(n_items, 30) / ncol))
    fig = Figure(figsize=(max(9.0, 6.4 * len(areas) * (1.4 if ncol == 2 else 1.0)), 4.4 + 0.16 * legend_rows),
                 layout="constrained")
    years = np.asarray(da["year"].values).astype(int)
    for k, area in enumerate(areas):
        ax = fig.add_subplot(1, len(areas), k + 1)
        n_drawn = 0
        for j, ind in enumerate(np.asarray(da["indicator"].values).astype(str)):
            if "area" in da.coords and str(da["area"].values[j]) != area:
                continue
            y = share.values[j] * 100
            x = years - int(introduced[ind]) if event_time else years
            if not np.isfinite(y).any():
                continue
            gx, gy = _gapped(x, y)
            line, = ax.plot(gx, gy, lw=1.2, label=indicator_name(ds, ind, 70))
            ax.plot(x[np.isfinite(y)], y[np.isfinite(y)], "o", ms=3, color=line.get_color())
            n_drawn += 1
        ax.set_title(area)
        ax.set_xlabel("år sedan införandet" if event_time else "År")
        ax.set_ylabel("kommuner som svarar ja (högsta nivån), %")
        ax.set_ylim(0, 100)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if n_drawn <= 30:
            ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=ncol, frameon=False)
    fig.suptitle("Andel ja per checklistepunkt\n(linjen bryts där ett år saknar svar)", fontsize=10)
    fig.text(0.01, 0.0, source_note(ds), fontsize=7, ha="left", va="bottom")
    fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
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
    fig = Figure(figsize=(7.4, 4.8), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    width = 0.12
    for k, (r, lab) in enumerate(zip(res, labels, strict=True)):
        ev = r.event.sort_values("event_time")
        x = ev["event_time"].to_numpy(float) + (k - (len(res) - 1) / 2) * width
        # shares are plotted in percentage points
        ax.fill_between(x, 100 * ev["lower"], 100 * ev["upper"], alpha=0.2)
        ax.plot(x, 100 * ev["estimate"], marker="o", label=f"{lab} (95 % CI)")
    if truth is not None:
        t = truth.sort_values("event_time")
        ax.plot(t["event_time"], 100 * t["att"], color="black", ls="--", label="planterad effekt")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("år sedan punkten infördes")
    ax.set_ylabel("effekt på andelen ja, procentenheter\n(förändring sedan införandeåret)")
    ax.set_title("Händelsestudie: införande av nya punkter")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    note = next((r.pretrend for r in res if r.pretrend), "")
    if note:
        # the design has no pre-periods: say so where the pre-trend estimates would be
        ax.text(0.01, 0.98, "No pre-periods: items are not asked before introduction,\nso no pre-trend "
                "test or Rambachan–Roth bounds.", transform=ax.transAxes, fontsize=7, va="top")
    fig.text(0.01, 0.0, source_note(ds), fontsize=7, ha="left", va="bottom")
    fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    return fig


def plot_staggered_event_study(result, *, truth: pd.DataFrame | None = None, title: str | None = None) -> Figure:
    """Staggered-adoption event study: pre-trend placebo estimates, pointwise 95 % CIs, the sup-t
    band, and Rambachan–Roth robust CIs by ``Mbar`` (relative magnitudes) and ``M`` (smoothness).

    Parameters
    ----------
    result
        :class:`ojpanel.designs.steering.staggered.StaggeredResult`.
    truth
        Optional ``event_time, att`` (a simulation's planted effects).
    title
        Figure title (default: the treatment's name).
    """
    s = result.settings
    ev = result.event.sort_values("event_time")
    fig = Figure(figsize=(12.5, 4.8), layout="constrained")
    gs = fig.add_gridspec(1, 3, width_ratios=[2.2, 1, 1])
    ax = fig.add_subplot(gs[0, 0])
    ref = s["reference_event_time"]
    pre = ev[ev["event_time"] < ref]
    post = ev[ev["event_time"] > ref]
    ax.fill_between(post["event_time"], post["band_lower"], post["band_upper"], color="tab:blue", alpha=0.15,
                    label=f"sup-t simultaneous 95 % band (crit. {s['sup_t_crit']:.2f})")
    ax.errorbar(post["event_time"], post["estimate"], yerr=[post["estimate"] - post["lower"], post["upper"] - post["estimate"]],
                fmt="o", color="tab:blue", capsize=3, label="effekt efter införandet (95 % KI)")
    if len(pre):
        ax.errorbar(pre["event_time"], pre["estimate"], yerr=[pre["estimate"] - pre["lower"], pre["upper"] - pre["estimate"]],
                    fmt="s", color="tab:grey", capsize=3, label="placebo före införandet (95 % KI)")
    ax.plot([ref], [0.0], "D", color="black", label=f"reference period (e = {ref})")
    if truth is not None:
        t = truth.sort_values("event_time")
        t = t[t["event_time"].between(ev["event_time"].min(), ev["event_time"].max())]
        ax.plot(t["event_time"], t["att"], color="black", ls="--", label="planterad effekt")
    ax.axhline(0, color="grey", lw=0.8)
    unit = "enkätomgångar" if s["time_label"].startswith("survey") else "år"
    ax.set_xlabel(f"tid sedan införandet ({unit})")
    ax.set_ylabel(_effect_label(s["outcome_label"]), fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    p = result.pretrend
    ptxt = (f"pre-trend test: {p.get('test', 'Wald').split(' ')[0]} p = {p['p_value']:.2f} (df {p['df']})" if p["df"]
            else "no pre-period placebo estimate")
    ax.set_title(f"{result.estimator.replace('_', '–')}; {s['control_group'][:40]}\n{ptxt}", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    sens = result.sensitivity
    for k, (method, label, sym) in enumerate((("relative_magnitude", "relative magnitudes", "Mbar"),
                                              ("smoothness", "smoothness", "M"))):
        a = fig.add_subplot(gs[0, k + 1])
        if sens is None or sens[sens["restriction"] == method].empty:
            a.text(0.5, 0.5, "Rambachan–Roth bounds\nnot available:\n" + (s.get("sensitivity_note") or "")[:120],
                   ha="center", va="center", fontsize=7, wrap=True, transform=a.transAxes)
            a.set_axis_off()
            continue
        sub = sens[sens["restriction"] == method].sort_values("M")
        orig = sens[sens["restriction"] == "original"].iloc[0]
        xs = np.arange(len(sub) + 1)
        a.errorbar([0], [orig["lb"]], yerr=[[orig["lb"] - orig["ci_lower"]], [orig["ci_upper"] - orig["lb"]]],
                   fmt="o", color="black", capsize=3)
        a.vlines(xs[1:], sub["ci_lower"], sub["ci_upper"], color="tab:red", lw=2, label="robust 95 % KI")
        a.vlines(xs[1:], sub["lb"], sub["ub"], color="tab:orange", lw=5, alpha=0.6, label="identifierad mängd")
        a.axhline(0, color="grey", lw=0.8)
        a.set_xticks(xs, ["orig."] + [f"{m:.2g}" for m in sub["M"]], fontsize=7)
        a.set_xlabel(f"{sym} ({label})")
        a.set_ylabel("genomsnittlig effekt efter införandet\n(" + _effect_label(s["outcome_label"]).rsplit("(", 1)[1], fontsize=8)
        b = result.breakdown.get(method, np.nan)
        a.set_title(f"Rambachan–Roth, {label}\nbreakdown {sym} = {b:.3g}" if np.isfinite(b) else
                    f"Rambachan–Roth, {label}\nbreakdown {sym}: {'not reached' if np.isinf(b) else 'n/a'}", fontsize=9)
        a.legend(fontsize=7, loc="best")
        a.grid(alpha=0.3)
    import textwrap

    head = title or f"Adoption of: {_short(s.get('treatment_label') or s.get('treatment') or 'treatment')}"
    fig.suptitle("\n".join(textwrap.wrap(head, 120)[:2]), fontsize=10)
    note = ("SYNTHETIC data (simulated). " if s.get("synthetic") else "") + PROCESSED_SOURCE_NOTE
    if sens is not None and sens.attrs.get("source", "this event study") != "this event study":
        note += f" Rambachan–Roth on {sens.attrs['source']}."
    fig.text(0.01, 0.0, note, fontsize=7, ha="left", va="bottom")
    fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    return fig


def plot_designs_compared(combined, *, ds: xr.Dataset | None = None) -> Figure:
    """Steering (red flag, binary) vs benchmarking (peer share, continuous) without sharing an axis.

    Left: the red-flag effect in percentage points of the adoption probability (a flag switches
    on). Middle: the peer-share slope, percentage points per 10 percentage points more peers at
    "yes". Right: both standardised (per SD of the signal in the estimation sample) and their
    difference — the only panel where they share a scale.
    """
    t = combined.table.set_index("term")
    z = 1.959963984540054
    fig = Figure(figsize=(11.5, 3.9), layout="constrained")
    panels = [
        ("steering (red flag, t-1)", 100.0, "röd flagga år t−1", "effekt på sannolikheten att införa, procentenheter"),
        ("benchmarking (peer share, t-1)", 10.0, "kamraters andel ja år t−1", "procentenheter per +10 procentenheter kamrater med ja"),
    ]
    for k, (term, scale, lab, ylab) in enumerate(panels):
        ax = fig.add_subplot(1, 3, k + 1)
        r = t.loc[term]
        ax.errorbar([0], [r["estimate"] * scale], yerr=[[z * r["std_error"] * scale]], fmt="o", capsize=4,
                    color="tab:red" if k == 0 else "tab:blue")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks([0], [lab])
        ax.set_xlim(-1, 1)
        ax.set_ylabel(ylab)
        name = {"steering": "styrning", "benchmarking": "jämförelse"}[term.split(" (")[0]]
        ax.set_title(name + f"\nMDE {r['mde'] * scale:.2g} procentenheter", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    ax = fig.add_subplot(1, 3, 3)
    terms = ["steering per sd", "benchmarking per sd", "difference per sd"]
    for k, term in enumerate(terms):
        r = t.loc[term]
        ax.errorbar([k], [r["estimate"] * 100], yerr=[[z * r["std_error"] * 100]], fmt="o", capsize=4,
                    color=("tab:red", "tab:blue", "black")[k])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(3), ["styrning", "jämförelse", "skillnad"], fontsize=8)
    ax.set_ylabel("procentenheter per standardavvikelse av signalen")
    ax.set_title("standardiserat (per standardavvikelse), 95 % KI", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Styrning och jämförelse skattade tillsammans (sannolikhet att införa, klustrat per kommun)", fontsize=10)
    fig.text(0.01, 0.0, source_note(ds), fontsize=7, ha="left", va="bottom")
    fig.get_layout_engine().set(rect=(0, 0.04, 1, 0.96))
    return fig
