"""Item-introduction event study: staggered-timing group-time ATTs and the naive two-way FE.

When an item first enters the municipal survey in year ``g``, does the share of municipalities
answering "yes" rise faster in the following years than for items already asked in the same area?
Outcome: ``yes[i,j,t]`` (top level of binary/ordinal item ``j`` for municipality ``i``); event time
``e = t - g_j``.

Identification and its limits
-----------------------------
An item's answers are not observed before it is asked, so there are no pre-periods: the base
period is the introduction year itself (``e = 0``) and every effect is the *extra* change since
the first answer. Never-treated units do not exist either (every item was introduced at some
time); the comparison items are the **established** items of the same area: asked before the
panel's first year (``introduced < first year``), so that their own introduction dynamics have
settled, and — by default — never shown with colours in the window (a colour start shifts their
trend; :mod:`ojpanel.designs.steering.transitions` studies that). Assumption: without the
introduction, the new items' yes-shares would have moved in parallel with the established items
of the same area.

Estimators
----------
:func:`cohort_event_study` (Callaway–Sant'Anna-style, comparison = established items)::

    ATT(a, g, e) = mean_i [ (Ybar_{a,g,i}(g+e) - Ybar_{a,g,i}(g)) - (Ybar_{a,C,i}(g+e) - Ybar_{a,C,i}(g)) ]

where ``Ybar_{a,g,i}(t)`` is municipality ``i``'s mean of ``yes`` over the cohort's items observed in
both ``g`` and ``t`` (likewise over the comparison items ``C``). Items introduced earlier in the panel
are never used as comparisons (the "forbidden comparison" of the naive regression). Event-time
aggregates weight cohorts by their number of items; ``overall`` averages the post-introduction
event times.

Inference. The treated units are items, and few; each item's yes-share also has its own year
shocks, common to all municipalities. Standard errors are therefore two-way clustered by item and
municipality (:mod:`ojpanel.designs.steering.item_inference`: item groups with CR2-type factors,
t intervals and MDEs with Welch–Satterthwaite degrees of freedom); ``inference="municipality"``
gives the municipality-level influence function alone (``N-1`` in the denominator, so a single
cell's SE equals OLS of the municipality differences on a constant), which under-covers when
items drift on their own. Every item and municipality is listed in the result's ``accounting``
with its role and why.

Introduction years. An item introduced in the panel's first year is a cohort when the
introduction year is given (its base period is in the panel); the default rule, which reads the
year from the data, cannot tell an item first asked in the first panel year from an older one and
counts it as established.

:func:`twfe_event_study` (naive): ``yes ~ sum_{e>=1} beta_e 1[t - g_j = e] + (item×municipality) +
(area×year)`` on all items, clustered by municipality. With cohort-varying effects its ``beta_e``
mix cohorts and event times with weights set by the regression (earlier-introduced items act as
comparisons), so it does not estimate a cohort-weighted average of the ATTs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from ojpanel.core.results import Result
from ojpanel.designs.steering._common import (
    item_top,
    linear_combination,
    long_frame,
    mde,
    reference_df,
    result_html,
    tidy,
    value_array,
)
from ojpanel.designs.steering.design import EVENT_STUDY, TWFE_EVENT_STUDY
from ojpanel.errors import DataError

__all__ = [
    "EventStudyResult",
    "cohort_event_study",
    "twfe_event_study",
    "introduction_cohorts",
    "compare_event_studies",
]


def introduction_cohorts(
    ds: xr.Dataset, introduced: Mapping[str, int] | pd.Series | None = None
) -> pd.Series:
    """Introduction year per item: ``introduced`` if given, else the ``introduced`` coordinate,
    else the first year with any observed value in the panel (items observed in the first panel
    year then count as established: they may be older). A given year equal to the panel's first
    year makes the item a cohort of :func:`cohort_event_study`.
    """
    da = value_array(ds)
    ids = [str(i) for i in da["indicator"].values]
    if introduced is not None:
        s = pd.Series(introduced, dtype="float").reindex(ids)
    elif "introduced" in da.coords:
        s = pd.Series(np.asarray(da["introduced"].values, dtype=float), index=ids)
    else:
        obs = np.isfinite(da.values).any(axis=1)
        yrs = np.asarray(da["year"].values)
        first = np.where(obs.any(axis=1), yrs[np.argmax(obs, axis=1)], np.nan)
        first = np.where(first == yrs.min(), yrs.min() - 1, first)
        s = pd.Series(first, index=ids)
    if s.isna().any():
        raise DataError(f"no introduction year for item(s) {list(s[s.isna()].index)[:5]}; pass introduced={{id: year}}")
    return s.astype(np.int64).rename("introduced")


class EventStudyResult(Result):
    """Event-study estimates (read-only) with tidy output and a plot.

    Attributes are exposed as properties: ``cells`` (per area, cohort and event time), ``event``
    (aggregated by event time), ``overall`` (average post-introduction effect), ``method``.
    """

    title = "Item-introduction event study"

    def __init__(self, method: str, cells: pd.DataFrame, event: pd.DataFrame, overall: dict[str, float],
                 settings: dict[str, Any], accounting: dict[str, pd.DataFrame] | None = None,
                 pretrend_note: str | None = None):
        self._method = method
        self._cells = cells
        self._event = event
        self._overall = overall
        self._settings = settings
        self._accounting = dict(accounting or {})
        self._pretrend_note = pretrend_note

    @property
    def method(self) -> str:
        """``"cohort"`` (group-time ATTs) or ``"twfe"`` (naive two-way FE)."""
        return self._method

    @property
    def cells(self) -> pd.DataFrame:
        """Per ``area, cohort, event_time`` estimates (empty for the naive TWFE)."""
        return self._cells.copy()

    @property
    def event(self) -> pd.DataFrame:
        """Per event time: ``estimate, std_error, lower, upper, statistic, p_value, n_obs, mde``."""
        return self._event.copy()

    @property
    def overall(self) -> dict[str, float]:
        """Average effect over post-introduction event times with its SE and MDE."""
        return dict(self._overall)

    @property
    def settings(self) -> dict[str, Any]:
        """Choices (comparison items, rule for introduction years, clustering)."""
        return dict(self._settings)

    def to_frame(self, **meta: Any) -> pd.DataFrame:
        """Tidy rows (replication schema): one per event time, plus ``overall`` and cohort cells."""
        rows = []
        # e = 0 is the base period (zero by construction), not an estimate: left out. ``df`` is the
        # reference t distribution of the row's p-value and MDE (inf: normal)
        for r in self._event[self._event["event_time"] > 0].itertuples(index=False):
            rows.append({"term": f"event_time_{int(r.event_time)}", "estimate": r.estimate, "std_error": r.std_error,
                         "statistic": r.statistic, "p_value": r.p_value, "n_obs": int(r.n_obs),
                         "n_municipalities": int(r.n_municipalities), "lag": int(r.event_time), "mde": r.mde,
                         "df": float(getattr(r, "df", np.inf))})
        o = self._overall
        rows.append({"term": "overall_post", "estimate": o["estimate"], "std_error": o["std_error"],
                     "statistic": o["statistic"], "p_value": o["p_value"], "n_obs": o["n_obs"],
                     "n_municipalities": o["n_municipalities"], "mde": o["mde"], "df": float(o.get("df", np.inf))})
        for r in self._cells[self._cells["event_time"] > 0].itertuples(index=False):
            d = float(getattr(r, "df", np.inf))
            rows.append({"term": f"cohort_{int(r.cohort)}_event_time_{int(r.event_time)}", "area": r.area,
                         "estimate": r.estimate, "std_error": r.std_error, "statistic": r.statistic,
                         "p_value": r.p_value, "n_obs": int(r.n_obs), "n_municipalities": int(r.n_municipalities),
                         "lag": int(r.event_time), "df": d, "mde": mde(r.std_error, df=d if np.isfinite(d) else None)})
        meta.setdefault("analysis", f"steering_introduction_{self._method}")
        meta.setdefault("outcome", "yes_share")
        meta.setdefault("sample", self._settings.get("comparison", ""))
        meta.setdefault("period", self._settings.get("period"))
        out = tidy(rows, **meta)
        if "area" not in meta:
            out["area"] = out["area"].fillna(self._settings.get("areas"))
        return out

    @property
    def summary(self) -> str:
        """Plain-text table of the event-time estimates."""
        cols = ["event_time", "estimate", "std_error", "lower", "upper", "p_value", "mde"]
        o = self._overall
        return "\n".join([
            f"Item-introduction event study ({self._method}); comparison: {self._settings.get('comparison')}",
            self._event[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}"),
            f"Average post-introduction effect: {o['estimate']:.4f} (SE {o['std_error']:.4f}, MDE {o['mde']:.4f})",
            *[f"Not estimated: {c}" for c in self._settings.get("skipped_cohorts", [])],
            *[f"Single-item group (item-level variance not estimable): {g}"
              for g in self._settings.get("single_item_groups", [])],
        ])

    def __repr__(self) -> str:
        return self.summary

    @property
    def accounting(self) -> dict[str, pd.DataFrame]:
        """Every item and municipality, used or not and why.

        ``items``: ``indicator, area, introduced, role`` (``cohort``/``comparison``/``excluded``),
        ``n_cells`` (post-introduction cells it enters), ``coloured``, ``reason``;
        ``municipalities``: ``municipality, n_cells, n_cells_possible, used, reason``.
        For the naive TWFE: ``items`` as above (without ``n_cells``) and ``municipalities`` with
        ``n_obs`` in the regression.
        """
        return {k: v.copy() for k, v in self._accounting.items()}

    @property
    def pretrend(self) -> str:
        """Why the item-introduction design reports no pre-trend test (it has no pre-periods)."""
        return self._pretrend_note or ""

    @property
    def sensitivity(self) -> str:
        """Rambachan–Roth sensitivity: not available without pre-periods (see :attr:`pretrend`)."""
        return self._pretrend_note or ""

    def _repr_html_(self) -> str:
        cols = [c for c in ("event_time", "estimate", "std_error", "df", "lower", "upper", "p_value", "mde",
                            "n_items", "n_municipalities") if c in self._event]
        o = self._overall
        notes = [f"Comparison: {self._settings.get('comparison')}", f"Standard errors: {self._settings.get('se')}",
                 f"Average post-introduction effect {o['estimate']:.4f} (SE {o['std_error']:.4f}, "
                 f"MDE {o['mde']:.4f})"]
        if self._accounting:
            it = self._accounting["items"]["role"].value_counts()
            mu = self._accounting["municipalities"]["used"]
            notes.append(f"Items: {int(it.get('cohort', 0))} introduced, {int(it.get('comparison', 0))} comparison, "
                         f"{int(it.get('excluded', 0))} excluded; municipalities used {int(mu.sum())} of {len(mu)}")
        notes += [f"Not estimated: {c}" for c in self._settings.get("skipped_cohorts", [])]
        if self._settings.get("single_item_groups") and self._settings.get("inference") == "item_municipality":
            notes.append("Item groups with a single item (their item-level variance cannot be estimated, so the "
                         "SE understates it): " + ", ".join(self._settings["single_item_groups"]))
        if self._pretrend_note:
            notes.append(f"Pre-trends and sensitivity: {self._pretrend_note}")
        return result_html(f"Item-introduction event study ({self._method})", self._event[cols], notes)


def _event_frame(rows: list[dict], df: float | np.ndarray | None = None) -> pd.DataFrame:
    """Statistics, bounds and MDEs of event-time rows against t(``df``) (None or inf: normal).

    A ``df`` column in the rows (per-row degrees of freedom) takes precedence over ``df``; the
    TWFE overwrites p-values and bounds with its own t(df) ones.
    """
    ev = pd.DataFrame(rows)
    d = ev["df"].to_numpy(float) if "df" in ev else np.full(len(ev), np.inf if df is None else float(df))
    q = stats.t.ppf(0.975, d)
    with np.errstate(invalid="ignore", divide="ignore"):
        ev["statistic"] = ev["estimate"] / ev["std_error"].where(ev["std_error"] > 0)
    ev["p_value"] = 2 * stats.t.sf(np.abs(ev["statistic"]), d)
    ev["lower"] = ev["estimate"] - q * ev["std_error"]
    ev["upper"] = ev["estimate"] + q * ev["std_error"]
    ev["mde"] = mde(ev["std_error"].to_numpy(), df=np.where(np.isfinite(d), d, np.inf))
    return ev


def _mean_over_items(d: np.ndarray) -> np.ndarray:
    """Mean over items (axis 0) of the observed changes; NaN where a municipality has none."""
    ok = np.isfinite(d)
    n = ok.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, d, 0.0).sum(0) / np.maximum(n, 1), np.nan)


def _ever_coloured(ds: xr.Dataset, ids: list[str]) -> pd.Series:
    if not (isinstance(ds, xr.Dataset) and "coloured" in ds):
        return pd.Series(False, index=ids)
    col = ds["coloured"]
    if "municipality" in col.dims:
        col = col.max("municipality")
    ever = pd.Series(np.asarray(col.max("year").values) > 0, index=[str(i) for i in col["indicator"].values])
    return ever.reindex(ids).fillna(False).astype(bool)


def _comparison_items(ds: xr.Dataset, intro: pd.Series, first_year: int, exclude_coloured: bool) -> pd.Series:
    est = intro < first_year
    if exclude_coloured:
        est &= ~_ever_coloured(ds, list(intro.index))
    return est


#: Inference choices of :func:`cohort_event_study`.
INFERENCE = ("item_municipality", "municipality")


def _se_label(inference: str) -> str:
    if inference == "municipality":
        return "municipality-level influence function (clustered by municipality; normal reference)"
    return ("two-way clustered by item and municipality (item groups with CR2-type factors, "
            "t reference with Welch–Satterthwaite df; see ojpanel.designs.steering.item_inference)")


def cohort_event_study(
    ds: xr.Dataset,
    *,
    introduced: Mapping[str, int] | pd.Series | None = None,
    exclude_coloured: bool = EVENT_STUDY.exclude_coloured,
    max_event_time: int | None = None,
    inference: str = EVENT_STUDY.inference,
) -> EventStudyResult:
    """Group-time ATTs of item introduction against established items of the same area
    (the design :data:`ojpanel.designs.steering.design.EVENT_STUDY`).

    Parameters
    ----------
    ds
        Panel of binary/ordinal checklist items (``value``; ``yes`` = top level). Optional data
        variable ``coloured`` (``indicator × year``) marks items shown with colours.
    introduced
        Introduction year per item (default: see :func:`introduction_cohorts`; for real data use
        :func:`ojpanel.designs.steering.introductions.introduction_years`). An item introduced in
        the panel's first year is a cohort (its base period is in the panel); items introduced
        before the first year are the established comparison items.
    exclude_coloured
        Leave established items shown with colours during the window out of the comparison.
    max_event_time
        Longest event time reported (default: all).
    inference
        ``"item_municipality"`` (default): two-way clustering by item and municipality with
        t(Welch–Satterthwaite df) intervals (:mod:`ojpanel.designs.steering.item_inference`);
        ``"municipality"``: municipality-clustered influence function with normal intervals
        (ignores item × year shocks; too narrow when items drift on their own).

    Returns
    -------
    EventStudyResult
        With :attr:`EventStudyResult.accounting` listing every item and municipality, used or
        not and why. The design has no pre-periods (an item is not asked before its
        introduction), so :attr:`EventStudyResult.pretrend` and :attr:`EventStudyResult.sensitivity`
        say so instead of testing.
    """
    from ojpanel.designs.steering.item_inference import (
        cell_scores,
        combine_scores,
        two_way_variance,
    )
    from ojpanel.errors import ParameterError

    if inference not in INFERENCE:
        raise ParameterError(f"inference must be one of {INFERENCE}; got {inference!r}")
    da = value_array(ds)
    top = item_top(da)
    intro = introduction_cohorts(ds, introduced)
    years = np.asarray(da["year"].values).astype(int)
    first = int(years.min())
    comp = _comparison_items(ds, intro, first, exclude_coloured)
    coloured = _ever_coloured(ds, list(intro.index))
    yes = np.where(np.isnan(da.values), np.nan, (da.values == top[:, None, None]).astype(float))
    ids = list(intro.index)
    J = len(ids)
    area = pd.Series(np.asarray(da["area"].values).astype(str) if "area" in da.coords else "all", index=ids)
    mun_ids = np.asarray(da["municipality"].values).astype(str)
    N = da.sizes["municipality"]
    cells = []
    skipped: list[str] = []
    scores: dict[tuple, Any] = {}
    groups: dict[tuple, np.ndarray] = {}
    item_role = {i: ("comparison" if comp[i] else "excluded") for i in ids}
    item_reason = {i: "" for i in ids}
    item_cells = dict.fromkeys(ids, 0)
    mun_cells = np.zeros(N, dtype=int)
    mun_possible = np.zeros(N, dtype=int)
    for i in ids:
        if intro[i] < first and not comp[i]:
            item_reason[i] = "established but shown with colours in the window (exclude_coloured=True)"
        elif intro[i] > int(years.max()):
            item_reason[i] = f"introduced {int(intro[i])}, after the panel's last year"
    for a in sorted(area.unique()):
        cj = np.flatnonzero(((area == a) & comp).to_numpy())
        groups[(a, "comparison")] = cj
        cohorts = sorted(int(g) for g in intro[(area == a) & (intro >= first) & (intro <= int(years.max()))].unique())
        if cohorts and cj.size == 0:
            raise DataError(
                f"area {a!r} has introduced items but no established comparison items (asked before "
                f"{first} and never coloured); widen the panel's years or set exclude_coloured=False"
            )
        for g in cohorts:
            gj = np.flatnonzero(((area == a) & (intro == g)).to_numpy())
            groups[(a, g)] = gj
            if g not in years:
                # the base period (introduction year) is not in the panel: nothing to difference from
                skipped.append(f"{a}: cohort {g} (introduction year not in the panel's years)")
                for j in gj:
                    item_role[ids[j]] = "excluded"
                    item_reason[ids[j]] = f"introduced {g}, a year the panel does not hold (no base period)"
                continue
            gi = int(np.flatnonzero(years == g)[0])
            n_est = 0
            for ti in range(gi, len(years)):
                e = int(years[ti] - g)
                if max_event_time is not None and e > max_event_time:
                    break
                dG = yes[gj][:, :, ti] - yes[gj][:, :, gi]
                dC = yes[cj][:, :, ti] - yes[cj][:, :, gi]
                dg = _mean_over_items(dG)
                dc = _mean_over_items(dC)
                ok = np.isfinite(dg) & np.isfinite(dc)
                if e > 0:
                    mun_possible += 1
                if ok.sum() < 2:
                    skipped.append(f"{a}: cohort {g}, event time {e} (fewer than two municipalities "
                                   "answer both the new and the comparison items in both years)")
                    continue
                d = dg - dc
                est = float(d[ok].mean())
                n = int(ok.sum())
                sc = cell_scores(dG, dC, ok, gj, cj, J, est, d)
                scores[(a, g, e)] = sc
                if e > 0:
                    n_est += 1
                    mun_cells += ok
                if e == 0:
                    se, dfe, v = 0.0, np.inf, {}
                elif inference == "municipality":
                    se = float(np.sqrt(np.sum((d[ok] - est) ** 2) / (n * (n - 1))))
                    dfe, v = np.inf, {}
                else:
                    v = two_way_variance(sc, {(a, g): gj, (a, "comparison"): cj})
                    se, dfe = float(np.sqrt(v["variance"])), v["df"]
                n_obs = int(np.isfinite(yes[gj][:, :, ti]).sum() + np.isfinite(yes[cj][:, :, ti]).sum())
                cells.append({"area": a, "cohort": g, "event_time": e, "year": int(years[ti]), "estimate": est,
                              "std_error": se, "df": dfe, "n_items": int(gj.size), "n_comparison_items": int(cj.size),
                              "n_obs": n_obs, "n_municipalities": n,
                              "se_municipality": float(np.sqrt(v["v_municipality"])) if v else np.nan,
                              "se_item": float(np.sqrt(v["v_item"])) if v else np.nan})
            for j in gj:
                if n_est:
                    item_role[ids[j]] = "cohort"
                    item_cells[ids[j]] = n_est
                else:
                    item_role[ids[j]] = "excluded"
                    item_reason[ids[j]] = (f"introduced {g}, but no later year with answers to it and to the "
                                           "comparison items (no event time ≥ 1)")
        for j in cj:
            item_cells[ids[j]] = sum(1 for k in scores if k[0] == a and k[2] > 0)
    if not cells:
        raise DataError(
            "no introduced items with a comparison: every item is established (asked before "
            f"{first}) or lacks a later year; the event study needs introductions inside the panel"
        )
    cdf = pd.DataFrame(cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(cdf["std_error"] > 0, cdf["estimate"] / cdf["std_error"].where(cdf["std_error"] > 0), np.nan)
    cdf["statistic"] = z
    cdf["p_value"] = 2 * stats.t.sf(np.abs(z), cdf["df"].to_numpy(float))
    all_groups = {k: v for k, v in groups.items() if len(v)}

    def aggregate(parts: list[tuple[float, Any]]) -> tuple[float, float]:
        sc = combine_scores(parts)
        if inference == "municipality":
            # the scores are (d - estimate)/n per cell: N/(N-1)·sum² is the influence-function variance
            return float(np.sqrt(np.sum(sc.municipality**2) * N / (N - 1))), np.inf
        v = two_way_variance(sc, all_groups)
        return float(np.sqrt(v["variance"])), v["df"]

    ev_rows = []
    post_parts: list[tuple[float, Any]] = []
    post_est = []
    for e, sub in cdf.groupby("event_time", sort=True):
        w = sub["n_items"].to_numpy(float) / sub["n_items"].sum()
        est = float(w @ sub["estimate"].to_numpy())
        parts = [(float(wk), scores[(r.area, r.cohort, r.event_time)]) for wk, r in zip(w, sub.itertuples(), strict=True)]
        se, dfe = aggregate(parts) if e > 0 else (0.0, np.inf)
        ev_rows.append({"event_time": int(e), "estimate": est, "std_error": se, "df": dfe,
                        "n_obs": int(sub["n_obs"].sum()), "n_municipalities": int(sub["n_municipalities"].max()),
                        "n_cohorts": len(sub), "n_items": int(sub["n_items"].sum())})
        if e > 0:
            post_parts.extend(parts)
            post_est.append(est)
    ev = _event_frame(ev_rows)
    ev.loc[ev["event_time"] == 0, ["statistic", "p_value"]] = np.nan
    k = len(post_est)
    if k:
        o_est = float(np.mean(post_est))
        # each event time's cells carry weights summing to 1; the overall mean divides by k
        o_se, o_df = aggregate([(w / k, s) for w, s in post_parts])
    else:
        o_est, o_se, o_df = float("nan"), float("nan"), np.inf
    o_t = o_est / o_se if o_se > 0 else float("nan")
    overall = {"estimate": o_est, "std_error": o_se, "statistic": o_t, "df": o_df,
               "p_value": float(2 * stats.t.sf(abs(o_t), o_df)),
               "mde": mde(o_se, df=o_df if np.isfinite(o_df) else None),
               "n_obs": int(cdf["n_obs"].sum()), "n_municipalities": int(cdf["n_municipalities"].max())}
    items_acc = pd.DataFrame({
        "indicator": ids, "area": area.to_numpy(), "introduced": intro.to_numpy(),
        "role": [item_role[i] for i in ids], "n_cells": [item_cells[i] for i in ids],
        "coloured": coloured.to_numpy(), "reason": [item_reason[i] for i in ids],
    })
    items_acc.loc[items_acc["role"] == "comparison", "reason"] = (
        f"established (introduced before {first})" + (", never coloured" if exclude_coloured else ""))
    items_acc.loc[items_acc["role"] == "cohort", "reason"] = "introduced inside the panel"
    muni_acc = pd.DataFrame({"municipality": mun_ids, "n_cells": mun_cells, "n_cells_possible": mun_possible})
    muni_acc["used"] = muni_acc["n_cells"] > 0
    muni_acc["reason"] = np.where(
        muni_acc["n_cells"] == 0, "no answers to a cohort's and its comparison items in a base and a later year",
        np.where(muni_acc["n_cells"] < muni_acc["n_cells_possible"],
                 "used in some cells; missing answers leave it out of the others", "used in every cell"))
    settings = {
        "comparison": "established items (asked before the first panel year"
                      + (", never coloured)" if exclude_coloured else ")"),
        "base_period": "introduction year (e = 0)",
        "weights": "cohorts weighted by number of items",
        "inference": inference,
        "se": _se_label(inference),
        "comparison_items": [i for i, c in comp.items() if c],
        "skipped_cohorts": skipped,
        # a one-item group has no within-group variation: its item × year variance is not estimated
        "single_item_groups": [f"{k[0]}: {k[1]}" for k, v in all_groups.items() if len(v) == 1
                               and (k[1] == "comparison" or k[1] in set(cdf.loc[cdf["area"] == k[0], "cohort"]))],
        "areas": ",".join(sorted(cdf["area"].unique())), "period": f"{first}-{int(years.max())}",
    }
    pre_note = ("no pre-periods: an item is not asked before its introduction, so the base period is the "
                "introduction year itself and parallel pre-trends cannot be tested (nor Rambachan–Roth "
                "bounds computed, which extrapolate from pre-period violations)")
    return EventStudyResult("cohort", cdf, ev, overall, settings,
                            accounting={"items": items_acc, "municipalities": muni_acc},
                            pretrend_note=pre_note)


def twfe_event_study(
    ds: xr.Dataset,
    *,
    introduced: Mapping[str, int] | pd.Series | None = None,
    exclude_coloured: bool = TWFE_EVENT_STUDY.exclude_coloured,
    max_event_time: int | None = None,
) -> EventStudyResult:
    """Naive two-way FE event study (for comparison; biased when effects vary by cohort; the
    regression is :data:`ojpanel.designs.steering.design.TWFE_EVENT_STUDY`).

    ``yes ~ sum_{e>=1} beta_e D_e + (item×municipality) + (area×year)``, clustered by
    municipality, on the established comparison items and all introduced items (each event time
    ``e >= 1`` of an introduced item gets a dummy; event times beyond ``max_event_time`` are pooled
    into the last one).
    """
    da = value_array(ds)
    intro = introduction_cohorts(ds, introduced)
    years = np.asarray(da["year"].values).astype(int)
    first = int(years.min())
    comp = _comparison_items(ds, intro, first, exclude_coloured)
    keep = [i for i in intro.index if comp[i] or intro[i] >= first]
    if not any(intro[i] >= first for i in keep):
        raise DataError("no items introduced inside the panel; the event study has nothing to estimate")
    sub = ds.sel(indicator=keep) if isinstance(ds, xr.Dataset) else da.sel(indicator=keep)
    f = long_frame(sub)
    f = f[f["yes"].notna()].copy()
    g = f["indicator"].map(intro)
    treated = f["indicator"].map(lambda i: not comp[i]).to_numpy()
    e = (f["year"] - g).to_numpy()
    emax = int(e[treated].max()) if max_event_time is None else int(max_event_time)
    names = []
    for k in range(1, emax + 1):
        col = f"event_time_{k}"
        f[col] = (treated & ((e == k) | ((k == emax) & (e > emax)))).astype(float)
        names.append(col)
    f["pair"] = f["indicator"] + ":" + f["municipality"]
    res = TWFE_EVENT_STUDY.fit(f, names)
    ci = res.conf_int()
    rows = [{"event_time": 0, "estimate": 0.0, "std_error": 0.0, "n_obs": int(res.nobs),
             "n_municipalities": int(f["municipality"].nunique())}]
    for k, nm in enumerate(names, start=1):
        rows.append({"event_time": k, "estimate": float(res.params[nm]), "std_error": float(res.std_errors[nm]),
                     "n_obs": int(res.nobs), "n_municipalities": int(f["municipality"].nunique())})
    ev = _event_frame(rows, df=reference_df(res))
    ev.loc[ev["event_time"] > 0, "p_value"] = res.pvalues.to_numpy()
    ev.loc[ev["event_time"] > 0, "lower"] = ci["lower"].to_numpy()
    ev.loc[ev["event_time"] > 0, "upper"] = ci["upper"].to_numpy()
    ev.loc[ev["event_time"] == 0, ["statistic", "p_value"]] = np.nan
    w = {nm: 1.0 / len(names) for nm in names}
    lc = linear_combination(res, w)
    overall = {**lc, "mde": mde(lc["std_error"], df=reference_df(res)), "n_obs": int(res.nobs), "n_municipalities": int(f["municipality"].nunique())}
    settings = {
        "comparison": "established items (asked before the first panel year" + (", never coloured)" if exclude_coloured else ")")
                      + " and earlier-introduced items (implicitly, through the fixed effects)",
        "effects": TWFE_EVENT_STUDY.effects_label,
        "se": f"clustered by {TWFE_EVENT_STUDY.cluster}",
        "fit": res,
        "areas": ",".join(sorted(f["area"].unique())), "period": f"{first}-{int(years.max())}",
    }
    in_fit = set(f["indicator"])
    coloured = _ever_coloured(ds, list(intro.index))
    role, reason = [], []
    for i in intro.index:
        if i not in keep:
            role.append("excluded")
            reason.append("established but shown with colours in the window (exclude_coloured=True)")
        elif i not in in_fit:
            role.append("excluded")
            reason.append("no answers in the panel")
        elif comp[i]:
            role.append("comparison")
            reason.append(f"established (introduced before {first})")
        else:
            role.append("cohort")
            reason.append("introduced inside the panel (event-time dummies)")
    items_acc = pd.DataFrame({"indicator": list(intro.index), "area": np.asarray(da["area"].values).astype(str)
                              if "area" in da.coords else "all", "introduced": intro.to_numpy(), "role": role,
                              "coloured": coloured.to_numpy(), "reason": reason})
    nobs_m = f.groupby("municipality").size()
    muni = pd.DataFrame({"municipality": np.asarray(da["municipality"].values).astype(str)})
    muni["n_obs"] = muni["municipality"].map(nobs_m).fillna(0).astype(int)
    muni["used"] = muni["n_obs"] > 0
    muni["reason"] = np.where(muni["used"], "answers in the regression sample", "no answers to the items used")
    pre_note = ("no pre-periods: an item is not asked before its introduction, so parallel pre-trends cannot be "
                "tested (nor Rambachan–Roth bounds computed)")
    return EventStudyResult("twfe", pd.DataFrame(columns=["area", "cohort", "event_time", "estimate", "std_error",
                                                          "statistic", "p_value", "n_obs", "n_municipalities"]),
                            ev, overall, settings, accounting={"items": items_acc, "municipalities": muni},
                            pretrend_note=pre_note)


def compare_event_studies(staggered: EventStudyResult, naive: EventStudyResult) -> pd.DataFrame:
    """Side-by-side event-time estimates of the staggered-timing and the naive TWFE estimators.

    Returns ``event_time, staggered, staggered_se, twfe, twfe_se, difference`` (twfe − staggered):
    how much the naive regression's implicit weighting moves each event-time estimate.
    """
    a = staggered.event.set_index("event_time")[["estimate", "std_error"]].set_axis(["staggered", "staggered_se"], axis=1)
    b = naive.event.set_index("event_time")[["estimate", "std_error"]].set_axis(["twfe", "twfe_se"], axis=1)
    out = a.join(b, how="outer")
    out["difference"] = out["twfe"] - out["staggered"]
    return out.reset_index()
