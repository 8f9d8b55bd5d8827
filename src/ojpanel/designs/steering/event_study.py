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
are never used as comparisons (the "forbidden comparison" of the naive regression). Standard
errors come from the municipality-level influence function (clustered by municipality by
construction; ``N-1`` in the denominator, so a single cell's SE equals OLS of the
municipality differences on a constant). Event-time aggregates weight cohorts by their number of
items; ``overall`` averages the post-introduction event times.

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
    fit_fe,
    item_top,
    linear_combination,
    long_frame,
    mde,
    reference_df,
    tidy,
    value_array,
)
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
    year then count as established).
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
                 settings: dict[str, Any]):
        self._method = method
        self._cells = cells
        self._event = event
        self._overall = overall
        self._settings = settings

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
        # e = 0 is the base period (zero by construction), not an estimate: left out
        for r in self._event[self._event["event_time"] > 0].itertuples(index=False):
            rows.append({"term": f"event_time_{int(r.event_time)}", "estimate": r.estimate, "std_error": r.std_error,
                         "statistic": r.statistic, "p_value": r.p_value, "n_obs": int(r.n_obs),
                         "n_municipalities": int(r.n_municipalities), "lag": int(r.event_time), "mde": r.mde})
        o = self._overall
        rows.append({"term": "overall_post", "estimate": o["estimate"], "std_error": o["std_error"],
                     "statistic": o["statistic"], "p_value": o["p_value"], "n_obs": o["n_obs"],
                     "n_municipalities": o["n_municipalities"], "mde": o["mde"]})
        for r in self._cells[self._cells["event_time"] > 0].itertuples(index=False):
            rows.append({"term": f"cohort_{int(r.cohort)}_event_time_{int(r.event_time)}", "area": r.area,
                         "estimate": r.estimate, "std_error": r.std_error, "statistic": r.statistic,
                         "p_value": r.p_value, "n_obs": int(r.n_obs), "n_municipalities": int(r.n_municipalities),
                         "lag": int(r.event_time)})
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
        ])

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        return f"<p>Item-introduction event study ({self._method})</p>" + self._event.to_html(index=False)


def _event_frame(rows: list[dict], df: float | None = None) -> pd.DataFrame:
    # normal statistics and MDEs; the TWFE overwrites p-values and bounds with its t(df) ones
    ev = pd.DataFrame(rows)
    z = stats.norm.ppf(0.975)
    ev["statistic"] = ev["estimate"] / ev["std_error"]
    ev["p_value"] = 2 * stats.norm.sf(np.abs(ev["statistic"]))
    ev["lower"] = ev["estimate"] - z * ev["std_error"]
    ev["upper"] = ev["estimate"] + z * ev["std_error"]
    ev["mde"] = mde(ev["std_error"].to_numpy(), df=df)
    return ev


def _mean_over_items(d: np.ndarray) -> np.ndarray:
    """Mean over items (axis 0) of the observed changes; NaN where a municipality has none."""
    ok = np.isfinite(d)
    n = ok.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, d, 0.0).sum(0) / np.maximum(n, 1), np.nan)


def _comparison_items(ds: xr.Dataset, intro: pd.Series, first_year: int, exclude_coloured: bool) -> pd.Series:
    est = intro < first_year
    if exclude_coloured and "coloured" in ds:
        col = ds["coloured"]
        if "municipality" in col.dims:
            col = col.max("municipality")
        ever = pd.Series(np.asarray(col.max("year").values) > 0, index=[str(i) for i in col["indicator"].values])
        est &= ~ever.reindex(intro.index).fillna(False).astype(bool)
    return est


def cohort_event_study(
    ds: xr.Dataset,
    *,
    introduced: Mapping[str, int] | pd.Series | None = None,
    exclude_coloured: bool = True,
    max_event_time: int | None = None,
) -> EventStudyResult:
    """Group-time ATTs of item introduction against established items of the same area.

    Parameters
    ----------
    ds
        Panel of binary/ordinal checklist items (``value``; ``yes`` = top level). Optional data
        variable ``coloured`` (``indicator × year``) marks items shown with colours.
    introduced
        Introduction year per item (default: see :func:`introduction_cohorts`; for real data use
        :func:`ojpanel.designs.steering.introductions.introduction_years`).
    exclude_coloured
        Leave established items shown with colours during the window out of the comparison.
    max_event_time
        Longest event time reported (default: all).

    Returns
    -------
    EventStudyResult
    """
    da = value_array(ds)
    top = item_top(da)
    intro = introduction_cohorts(ds, introduced)
    years = np.asarray(da["year"].values).astype(int)
    first = int(years.min())
    comp = _comparison_items(ds, intro, first, exclude_coloured)
    yes = np.where(np.isnan(da.values), np.nan, (da.values == top[:, None, None]).astype(float))
    ids = list(intro.index)
    area = pd.Series(np.asarray(da["area"].values).astype(str) if "area" in da.coords else "all", index=ids)
    N = da.sizes["municipality"]
    cells = []
    skipped: list[str] = []
    influence: dict[tuple, np.ndarray] = {}
    for a in sorted(area.unique()):
        cj = np.flatnonzero(((area == a) & comp).to_numpy())
        cohorts = sorted(int(g) for g in intro[(area == a) & (intro >= first) & (intro > first)].unique())
        if cohorts and cj.size == 0:
            raise DataError(
                f"area {a!r} has introduced items but no established comparison items (asked before "
                f"{first} and never coloured); widen the panel's years or set exclude_coloured=False"
            )
        for g in cohorts:
            gj = np.flatnonzero(((area == a) & (intro == g)).to_numpy())
            if g not in years:
                # the base period (introduction year) is not in the panel: nothing to difference from
                skipped.append(f"{a}: cohort {g} (introduction year not in the panel's years)")
                continue
            gi = int(np.flatnonzero(years == g)[0])
            for ti in range(gi, len(years)):
                e = int(years[ti] - g)
                if max_event_time is not None and e > max_event_time:
                    break
                dg = _mean_over_items(yes[gj][:, :, ti] - yes[gj][:, :, gi])
                dc = _mean_over_items(yes[cj][:, :, ti] - yes[cj][:, :, gi])
                ok = np.isfinite(dg) & np.isfinite(dc)
                if ok.sum() < 2:
                    continue
                d = dg[ok] - dc[ok]
                est = float(d.mean())
                n = int(ok.sum())
                psi = np.zeros(N)
                psi[ok] = d - est
                se = float(np.sqrt(np.sum(psi**2) / (n * (n - 1)))) if e > 0 else 0.0
                influence[(a, g, e)] = np.where(ok, psi * N / n, 0.0)
                n_obs = int(np.isfinite(yes[gj][:, :, ti]).sum() + np.isfinite(yes[cj][:, :, ti]).sum())
                cells.append({"area": a, "cohort": g, "event_time": e, "year": int(years[ti]), "estimate": est,
                              "std_error": se, "n_items": int(gj.size), "n_comparison_items": int(cj.size),
                              "n_obs": n_obs, "n_municipalities": n})
    if not cells:
        raise DataError(
            "no introduced items with a comparison: every item is either established (asked before "
            f"{first}) or introduced in the first panel year; the event study needs introductions inside the panel"
        )
    cdf = pd.DataFrame(cells)
    z = np.where(cdf["std_error"] > 0, cdf["estimate"] / cdf["std_error"].where(cdf["std_error"] > 0), np.nan)
    cdf["statistic"] = z
    cdf["p_value"] = 2 * stats.norm.sf(np.abs(z))
    ev_rows = []
    post_psi = np.zeros(N)
    post_est = []
    for e, sub in cdf.groupby("event_time", sort=True):
        w = sub["n_items"].to_numpy(float) / sub["n_items"].sum()
        est = float(w @ sub["estimate"].to_numpy())
        psi = sum(wk * influence[(r.area, r.cohort, r.event_time)] for wk, r in zip(w, sub.itertuples(), strict=True))
        se = float(np.sqrt(np.sum(psi**2) / (N * (N - 1)))) if e > 0 else 0.0
        ev_rows.append({"event_time": int(e), "estimate": est, "std_error": se, "n_obs": int(sub["n_obs"].sum()),
                        "n_municipalities": int(sub["n_municipalities"].max()), "n_cohorts": len(sub)})
        if e > 0:
            post_psi = post_psi + psi
            post_est.append(est)
    ev = _event_frame(ev_rows)
    k = len(post_est)
    if k:
        o_est = float(np.mean(post_est))
        o_se = float(np.sqrt(np.sum((post_psi / k) ** 2) / (N * (N - 1))))
    else:
        o_est, o_se = float("nan"), float("nan")
    o_t = o_est / o_se if o_se > 0 else float("nan")
    overall = {"estimate": o_est, "std_error": o_se, "statistic": o_t, "p_value": float(2 * stats.norm.sf(abs(o_t))),
               "mde": mde(o_se), "n_obs": int(cdf["n_obs"].sum()), "n_municipalities": int(cdf["n_municipalities"].max())}
    settings = {
        "comparison": "established items (asked before the first panel year"
                      + (", never coloured)" if exclude_coloured else ")"),
        "base_period": "introduction year (e = 0)",
        "weights": "cohorts weighted by number of items",
        "se": "municipality-level influence function (clustered by municipality)",
        "comparison_items": [i for i, c in comp.items() if c],
        "skipped_cohorts": skipped,
        "areas": ",".join(sorted(cdf["area"].unique())), "period": f"{first}-{int(years.max())}",
    }
    return EventStudyResult("cohort", cdf, ev, overall, settings)


def twfe_event_study(
    ds: xr.Dataset,
    *,
    introduced: Mapping[str, int] | pd.Series | None = None,
    exclude_coloured: bool = True,
    max_event_time: int | None = None,
) -> EventStudyResult:
    """Naive two-way FE event study (for comparison; biased when effects vary by cohort).

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
    keep = [i for i in intro.index if comp[i] or intro[i] > first]
    if not any(intro[i] > first for i in keep):
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
    res = fit_fe(f, "yes", names, entity="pair", entity_effects=True, other_effects=[("area", "year")],
                 cluster="municipality", label="twfe_event_study")
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
        "effects": "item×municipality, area×year",
        "se": "clustered by municipality",
        "fit": res,
        "areas": ",".join(sorted(f["area"].unique())), "period": f"{first}-{int(years.max())}",
    }
    return EventStudyResult("twfe", pd.DataFrame(columns=["area", "cohort", "event_time", "estimate", "std_error",
                                                          "statistic", "p_value", "n_obs", "n_municipalities"]),
                            ev, overall, settings)


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
