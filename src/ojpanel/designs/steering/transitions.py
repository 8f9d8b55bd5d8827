"""Adoption dynamics of checklist items: transition rates, ceilings, time to adoption, red flags.

Definitions (binary items: nej=0/ja=1; ordinal items: nej=0/delvis=1/ja=2 after harmonisation;
"yes" = the top level):

* a pair ``(t-1, t)`` counts when the municipality answered in both years (consecutive year labels;
  a gap in the year axis gives no pair);
* **at risk** of adoption: not "yes" in ``t-1``; **adoption**: at risk and "yes" in ``t``;
  adoption rate = adoptions / at risk;
* **lapse**: "yes" in ``t-1`` and not "yes" in ``t``; lapse rate = lapses / "yes" in ``t-1``;
* ordinal items also count any step up (``up``) and down (``down``) between levels;
* **ceiling**: municipalities not (yet) at "yes" in an item's last observed year — how many can
  still adopt;
* **time to adoption**: with a constant hazard ``h`` (pooled adoption rate), the waiting time is
  geometric: expected ``1/h`` years, median ``ceil(log 0.5 / log(1-h))`` years; the long-run
  yes-share if rates stay is ``h / (h + lapse rate)``;
* **red flag**: the item is shown with colours in ``t-1`` (data variable ``coloured``) and the
  municipality was not at "yes" — its result was red. Adoption after red is compared with
  comparable items (same area and year, not coloured) in a hazard regression with item,
  area×year and municipality (LPM) or county (logit) effects; a Bayesian hierarchical logit via
  :func:`adoption_bayes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.core.results import Result
from ojpanel.designs.steering._common import item_top, mde, reference_df, tidy, value_array
from ojpanel.designs.steering.design import ADOPTION, ADOPTION_LOGIT
from ojpanel.errors import DataError, ParameterError
from ojpanel.peers import loo_mean_np

__all__ = [
    "transition_rates",
    "adoption_summary",
    "adoption_frame",
    "restrict_items",
    "AdoptionResult",
    "fit_adoption",
    "red_flag_comparison",
    "adoption_bayes",
]


def _pairs(ds: xr.Dataset | xr.DataArray):
    da = value_array(ds)
    top = item_top(da)
    v = da.values
    years = np.asarray(da["year"].values).astype(int)
    prev = np.full_like(v, np.nan)
    idx = {y: k for k, y in enumerate(years)}
    for k, y in enumerate(years):
        if y - 1 in idx:
            prev[:, :, k] = v[:, :, idx[y - 1]]
    return da, top, v, prev, years


def transition_rates(ds: xr.Dataset | xr.DataArray, *, by: str = "indicator") -> pd.DataFrame:
    """Adoption and lapse counts and rates per item (or area) and year.

    Parameters
    ----------
    ds
        Panel of binary/ordinal items.
    by
        ``"indicator"`` (one row per item and year) or ``"area"`` (counts summed over the area's
        items).

    Returns
    -------
    pandas.DataFrame
        ``indicator`` (or ``area``), ``area``, ``year`` (the later year of the pair), ``n_pairs``,
        ``n_at_risk``, ``n_adopted``, ``adoption_rate``, ``n_yes_prev``, ``n_lapsed``,
        ``lapse_rate``, ``n_up``, ``n_down``.
    """
    if by not in ("indicator", "area"):
        raise ParameterError(f"by must be 'indicator' or 'area'; got {by!r}")
    da, top, v, prev, years = _pairs(ds)
    t3 = top[:, None, None]
    both = np.isfinite(v) & np.isfinite(prev)
    yes, yes_prev = (v == t3) & both, (prev == t3) & both
    risk = both & (prev < t3)
    counts = {
        "n_pairs": both.sum(1),
        "n_at_risk": risk.sum(1),
        "n_adopted": (risk & yes).sum(1),
        "n_yes_prev": yes_prev.sum(1),
        "n_lapsed": (yes_prev & ~yes).sum(1),
        "n_up": (both & (v > prev)).sum(1),
        "n_down": (both & (v < prev)).sum(1),
    }
    ids = np.asarray(da["indicator"].values).astype(str)
    area = np.asarray(da["area"].values).astype(str) if "area" in da.coords else np.array(["all"] * len(ids))
    J, T = len(ids), len(years)
    out = pd.DataFrame({"indicator": np.repeat(ids, T), "area": np.repeat(area, T), "year": np.tile(years, J)})
    for k, c in counts.items():
        out[k] = c.ravel().astype(np.int64)
    has_prev = np.isin(out["year"] - 1, years)
    out = out[has_prev].reset_index(drop=True)
    if by == "area":
        out = out.drop(columns="indicator").groupby(["area", "year"], as_index=False, sort=True).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["adoption_rate"] = np.where(out["n_at_risk"] > 0, out["n_adopted"] / out["n_at_risk"].where(out["n_at_risk"] > 0), np.nan)
        out["lapse_rate"] = np.where(out["n_yes_prev"] > 0, out["n_lapsed"] / out["n_yes_prev"].where(out["n_yes_prev"] > 0), np.nan)
    return out


def adoption_summary(ds: xr.Dataset | xr.DataArray, *, years: Sequence[int] | None = None) -> pd.DataFrame:
    """Per item: ceiling, pooled hazard, implied time to adoption and long-run share.

    Parameters
    ----------
    years
        Years (later year of each pair) whose transitions are pooled for the hazard (default all).

    Returns
    -------
    pandas.DataFrame
        ``indicator, area, last_year, n_last, n_yes_last, ceiling, ceiling_share, n_at_risk,
        n_adopted, hazard, expected_years, median_years, lapse_rate, long_run_share``.
    """
    da = value_array(ds)
    top = item_top(da)
    tr = transition_rates(da)
    if years is not None:
        tr = tr[tr["year"].isin([int(y) for y in years])]
    pooled = tr.groupby("indicator", sort=False)[["n_at_risk", "n_adopted", "n_yes_prev", "n_lapsed"]].sum()
    rows = []
    yrs = np.asarray(da["year"].values).astype(int)
    for j, ind in enumerate(np.asarray(da["indicator"].values).astype(str)):
        v = da.values[j]
        obs_years = np.flatnonzero(np.isfinite(v).any(0))
        if obs_years.size == 0:
            raise DataError(f"item {ind} has no observed values; drop it before summarising adoption")
        k = obs_years[-1]
        last = v[:, k]
        n_last = int(np.isfinite(last).sum())
        n_yes = int((last == top[j]).sum())
        p = pooled.loc[ind] if ind in pooled.index else pd.Series({"n_at_risk": 0, "n_adopted": 0, "n_yes_prev": 0, "n_lapsed": 0})
        h = p["n_adopted"] / p["n_at_risk"] if p["n_at_risk"] > 0 else np.nan
        lapse = p["n_lapsed"] / p["n_yes_prev"] if p["n_yes_prev"] > 0 else np.nan
        expected = 1.0 / h if h and np.isfinite(h) and h > 0 else np.inf
        if np.isfinite(h) and 0 < h < 1:
            median = float(np.ceil(np.log(0.5) / np.log1p(-h)))
        elif h == 1:
            median = 1.0
        else:
            median = np.inf
        lr = h / (h + lapse) if np.isfinite(h) and np.isfinite(lapse) and (h + lapse) > 0 else np.nan
        rows.append({
            "indicator": ind, "area": str(da["area"].values[j]) if "area" in da.coords else "all",
            "last_year": int(yrs[k]), "n_last": n_last, "n_yes_last": n_yes, "ceiling": n_last - n_yes,
            "ceiling_share": (n_last - n_yes) / n_last if n_last else np.nan,
            "n_at_risk": int(p["n_at_risk"]), "n_adopted": int(p["n_adopted"]), "hazard": h,
            "expected_years": expected, "median_years": median, "lapse_rate": lapse, "long_run_share": lr,
        })
    return pd.DataFrame(rows)


def _coloured(ds: xr.Dataset | xr.DataArray, coloured: xr.DataArray | None) -> xr.DataArray | None:
    if coloured is None and isinstance(ds, xr.Dataset) and "coloured" in ds:
        coloured = ds["coloured"]
    return coloured


def adoption_frame(
    ds: xr.Dataset | xr.DataArray,
    *,
    coloured: xr.DataArray | None = None,
    peer_group: str | None = "county",
    at_risk_only: bool = True,
) -> pd.DataFrame:
    """Long rows of item × municipality × year pairs with the adoption outcome and the signals.

    Columns: ``indicator, municipality, year, area, county, scale, value, prev, yes, yes_prev,
    adopt`` (1 if adopted, among pairs at risk), ``red_prev`` (red in ``t-1``; NaN when the panel
    has no colours), ``coloured_prev``, ``peer_prev`` (leave-one-out mean of "yes" over the other
    municipalities of ``peer_group`` in ``t-1``, from all answers in that year).

    Parameters
    ----------
    at_risk_only
        Keep only pairs at risk of adoption (not "yes" in ``t-1``) — the hazard sample.
    """
    da, top, v, prev, years = _pairs(ds)
    J, N, T = v.shape
    t3 = top[:, None, None]
    yes_all = np.where(np.isnan(v), np.nan, (v == t3).astype(float))
    yes_prev = np.where(np.isnan(prev), np.nan, (prev == t3).astype(float))
    frame: dict[str, Any] = {
        "indicator": np.repeat(np.asarray(da["indicator"].values).astype(str), N * T),
        "municipality": np.tile(np.repeat(np.asarray(da["municipality"].values).astype(str), T), J),
        "year": np.tile(years, J * N),
        "area": np.repeat(np.asarray(da["area"].values).astype(str) if "area" in da.coords else np.array(["all"] * J), N * T),
        "scale": np.repeat(np.asarray(da["scale"].values).astype(str), N * T),
        "value": v.ravel(), "prev": prev.ravel(), "yes": yes_all.ravel(), "yes_prev": yes_prev.ravel(),
    }
    if "county" in da.coords:
        frame["county"] = np.tile(np.repeat(np.asarray(da["county"].values).astype(str), T), J)
    col = _coloured(ds, coloured)
    if col is not None:
        c = col.broadcast_like(da).transpose("indicator", "municipality", "year")
        cp = c.shift(year=1).values  # colours of t-1 (positional shift; pairs need consecutive labels)
        cp = np.where(np.isfinite(prev), cp, np.nan)
        frame["coloured_prev"] = cp.ravel()
        frame["red_prev"] = np.where(np.isfinite(prev), cp * (prev < t3), np.nan).ravel()
    else:
        frame["coloured_prev"] = np.nan
        frame["red_prev"] = np.nan
    if peer_group is not None:
        if peer_group not in da.coords:
            raise ParameterError(f"peer group {peer_group!r} is not a municipality coordinate of the panel")
        _, codes = np.unique(np.asarray(da[peer_group].values).astype(str), return_inverse=True)
        peer = np.full_like(v, np.nan)
        yes_lastyear = np.full_like(v, np.nan)
        yes_lastyear[:, :, 1:] = yes_all[:, :, :-1]
        for j in range(J):
            peer[j] = loo_mean_np(yes_lastyear[j], codes)
        consecutive = np.isin(years - 1, years)
        peer[:, :, ~consecutive] = np.nan
        frame["peer_prev"] = peer.ravel()
    out = pd.DataFrame(frame)
    out = out[np.isfinite(out["value"]) & np.isfinite(out["prev"])]
    out["adopt"] = np.where(out["yes_prev"] == 0, out["yes"], np.nan)
    if at_risk_only:
        out = out[out["yes_prev"] == 0]
    return out.reset_index(drop=True)


class AdoptionResult(Result):
    """Hazard regression of adoption on the red flag (read-only; tidy rows with MDE)."""

    title = "Adoption regression"

    def __init__(self, model: str, params: pd.Series, std_errors: pd.Series, pvalues: pd.Series,
                 nobs: int, n_municipalities: int, fit: Any, settings: dict[str, Any]):
        self._model = model
        self._params = params
        self._se = std_errors
        self._p = pvalues
        self._nobs = nobs
        self._nm = n_municipalities
        self._fit = fit
        self._settings = settings

    @property
    def model(self) -> str:
        """``"lpm"`` or ``"logit"``."""
        return self._model

    @property
    def params(self) -> pd.Series:
        """Coefficients of the reported terms."""
        return self._params.copy()

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors of the reported terms."""
        return self._se.copy()

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values."""
        return self._p.copy()

    @property
    def nobs(self) -> int:
        """Municipality-item-year pairs at risk used."""
        return self._nobs

    @property
    def fit(self) -> Any:
        """The underlying fit (FEResults or statsmodels results)."""
        return self._fit

    @property
    def settings(self) -> dict[str, Any]:
        """Effects, clustering and sample."""
        return dict(self._settings)

    @property
    def mde(self) -> pd.Series:
        """Minimum detectable effect per term (``(q_{0.975} + q_{0.8})·SE``, ``q`` from the
        p-values' reference distribution: t with the FE fit's ``df_resid``, normal for the logit)."""
        return pd.Series(mde(self._se.to_numpy(), df=reference_df(self._fit)), index=self._se.index)

    def to_frame(self, **meta: Any) -> pd.DataFrame:
        """Tidy rows in the replication schema."""
        rows = []
        for term in self._params.index:
            est, se = float(self._params[term]), float(self._se[term])
            rows.append({"term": term, "estimate": est, "std_error": se, "statistic": est / se if se > 0 else np.nan,
                         "p_value": float(self._p[term]), "n_obs": self._nobs, "n_municipalities": self._nm})
        meta.setdefault("analysis", f"steering_adoption_{self._model}")
        meta.setdefault("outcome", "adoption")
        meta.setdefault("sample", "at risk (not yes in t-1)")
        meta.setdefault("lag", 1)
        meta.setdefault("area", self._settings.get("areas"))
        meta.setdefault("period", self._settings.get("period"))
        return tidy(rows, df=reference_df(self._fit), **meta)

    @property
    def summary(self) -> str:
        """Plain-text coefficient table."""
        t = pd.DataFrame({"estimate": self._params, "std_error": self._se, "p_value": self._p, "mde": self.mde})
        return (f"Adoption hazard ({self._model}); effects: {self._settings.get('effects')}; n={self._nobs}\n"
                + t.to_string(float_format=lambda x: f"{x:.4f}"))

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        from ojpanel.designs.steering._common import result_html

        t = pd.DataFrame({"term": self._params.index, "estimate": self._params.to_numpy(),
                          "std_error": self._se.to_numpy(), "p_value": self._p.to_numpy(), "mde": self.mde.to_numpy()})
        return result_html(f"Adoption hazard ({self._model})", t,
                           [f"Effects: {self._settings.get('effects')}", f"Pairs at risk: {self._nobs}, "
                            f"municipalities: {self._nm}"])


def restrict_items(ds: xr.Dataset | xr.DataArray, f: pd.DataFrame, items: str) -> pd.DataFrame:
    """Rows of an adoption frame for ``items="established"`` (asked before the panel starts) or
    ``"all"`` items."""
    da = value_array(ds)
    if items == "all" or "introduced" not in da.coords:
        return f
    first = int(np.asarray(da["year"].values).min())
    intro = pd.Series(np.asarray(da["introduced"].values).astype(int), index=np.asarray(da["indicator"].values).astype(str))
    keep = set(intro[intro < first].index)
    if not keep:
        raise DataError(f"no item was asked before {first}; use items='all'")
    return f[f["indicator"].isin(keep)].reset_index(drop=True)


def fit_adoption(
    ds: xr.Dataset | xr.DataArray,
    *,
    model: str = "lpm",
    terms: Sequence[str] = ADOPTION.regressors,
    coloured: xr.DataArray | None = None,
    peer_group: str = ADOPTION.peer_group,
    items: str = ADOPTION.items,
) -> AdoptionResult:
    """Hazard regression: is adoption faster after a red flag than in comparable items?

    Sample: pairs at risk of adoption. Outcome: ``adopt``. Regressors: ``terms`` (``red_prev``,
    ``peer_prev``). The designs :data:`~ojpanel.designs.steering.design.ADOPTION` (LPM) and
    :data:`~ojpanel.designs.steering.design.ADOPTION_LOGIT` define the regressions. Effects:

    * ``model="lpm"``: linear probability model with municipality, item and area×year effects,
      SEs clustered by municipality (:func:`ojpanel.models.fe.fit_panel`);
    * ``model="logit"``: logit with item, area×year and county dummies, SEs clustered by
      municipality (statsmodels);

    Municipality effects enter the LPM only: a logit with municipality dummies has the
    incidental-parameter bias with few years, and statsmodels' ``ConditionalLogit`` is far too slow
    for 290 municipalities with many pairs each, so the logit uses county effects.

    ``items="established"`` (default) keeps the items asked before the panel's first year when the
    panel records introduction years (indicator coordinate ``introduced``): items in their first
    years after introduction adopt faster for that reason (see
    :mod:`ojpanel.designs.steering.event_study`) and are not comparable. ``items="all"`` keeps every
    item. Peer means are always computed from every municipality's answers.

    The reported MDE (``(q_{0.975} + q_{0.8})·SE`` at the fitted SE), read off a panel without a
    red-flag effect, understates the effect the LPM detects with power 0.8: its residual variance
    grows with the adoption rate, so the SE under an effect is larger than under none (simulated
    power at that MDE is about 0.72 on the checklist simulator). Use the simulated MDE of
    :func:`ojpanel.designs.steering.power.steering_power` (``design="adoption"``).

    Raises
    ------
    DataError
        If ``red_prev`` is asked for and the panel has no ``coloured`` flags.
    """
    if items not in ("established", "all"):
        raise ParameterError(f"items must be 'established' or 'all'; got {items!r}")
    if model not in ("lpm", "logit"):
        raise ParameterError(f"model must be 'lpm' or 'logit'; got {model!r}")
    terms = list(terms)
    bad = [t for t in terms if t not in ("red_prev", "peer_prev")]
    if bad:
        raise ParameterError(f"terms must be among 'red_prev', 'peer_prev'; got {bad}")
    f = adoption_frame(ds, coloured=coloured, peer_group=peer_group)
    f = restrict_items(ds, f, items)
    if "red_prev" in terms and f["red_prev"].isna().all():
        raise DataError(
            "the panel has no colour flags ('coloured', indicator × year), so the red-flag effect cannot "
            "be estimated; pass coloured=... (1 where OJ showed the item with colours)"
        )
    f = f.dropna(subset=["adopt", *terms]).reset_index(drop=True)
    if f.empty or f["adopt"].nunique() < 2:
        raise DataError("no variation in adoption among pairs at risk; nothing to estimate")
    n_m = int(f["municipality"].nunique())
    if model == "lpm":
        res = ADOPTION.fit(f, terms)
        return AdoptionResult("lpm", res.params[terms], res.std_errors[terms], res.pvalues[terms], int(res.nobs), n_m,
                              res, ADOPTION.settings(f))
    fit, columns = ADOPTION_LOGIT.fit_logit(f, terms)
    pos = [columns.index(t) for t in terms]
    params = pd.Series(np.asarray(fit.params)[pos], index=terms)
    bse = pd.Series(np.asarray(fit.bse)[pos], index=terms)
    pv = pd.Series(np.asarray(fit.pvalues)[pos], index=terms)
    return AdoptionResult(model, params, bse, pv, int(len(f)), n_m, fit,
                          ADOPTION_LOGIT.settings(f, scale="log-odds"))


def red_flag_comparison(
    ds: xr.Dataset | xr.DataArray, *, coloured: xr.DataArray | None = None, items: str = ADOPTION.items
) -> pd.DataFrame:
    """Adoption rates after a red flag vs comparable items (same area and year, not coloured).

    Comparable items are chosen as in :func:`fit_adoption` (``items``). Returns one row per area
    and year with ``n_red, adoption_red, n_comparable, adoption_comparable, difference``
    (descriptive, no adjustment for item or municipality differences; the regression is
    :func:`fit_adoption`).
    """
    f = restrict_items(ds, adoption_frame(ds, coloured=coloured, peer_group=None), items)
    if f["red_prev"].isna().all():
        raise DataError("the panel has no colour flags ('coloured'); pass coloured=...")
    g = f.assign(red=f["red_prev"] > 0).groupby(["area", "year", "red"])["adopt"].agg(["size", "mean"]).unstack("red")
    out = pd.DataFrame({
        "n_red": g[("size", True)] if ("size", True) in g else 0,
        "adoption_red": g[("mean", True)] if ("mean", True) in g else np.nan,
        "n_comparable": g[("size", False)] if ("size", False) in g else 0,
        "adoption_comparable": g[("mean", False)] if ("mean", False) in g else np.nan,
    }).reset_index()
    out = out[out["n_red"].fillna(0) > 0].reset_index(drop=True)
    out["n_red"] = out["n_red"].astype(np.int64)
    out["n_comparable"] = out["n_comparable"].fillna(0).astype(np.int64)
    out["difference"] = out["adoption_red"] - out["adoption_comparable"]
    return out


def adoption_bayes(
    ds: xr.Dataset,
    *,
    coloured: xr.DataArray | None = None,
    grouping: str = "county",
    items: str = ADOPTION.items,
    **kwargs: Any,
):
    """Bayesian hierarchical Bernoulli-logit of adoption on the red flag (issue-6 models).

    Outcome: ``adopt`` (pairs at risk; other cells missing); exposure: ``red_prev``; model
    :func:`ojpanel.models.bayes.fit.fit_binary` — municipality effects nested in ``grouping``,
    year effects and item-specific red-flag effects pooled around ``mu_beta``. Sample as in
    :func:`fit_adoption` (``items``). ``kwargs`` go to
    the sampler (``draws``, ``tune``, ``chains``, ``seed``, ``sampler``, ...).

    Returns
    -------
    arviz.InferenceData
    """
    from ojpanel.models.bayes.fit import fit_binary

    f = adoption_frame(ds, coloured=coloured, peer_group=None, at_risk_only=True)
    f = restrict_items(ds, f, items)
    if f["red_prev"].isna().all():
        raise DataError("the panel has no colour flags ('coloured'); pass coloured=...")
    da = value_array(ds).sel(indicator=sorted(f["indicator"].unique()))
    idx = pd.MultiIndex.from_frame(f[["indicator", "municipality", "year"]])
    full = pd.MultiIndex.from_product([da["indicator"].values.astype(str), da["municipality"].values.astype(str),
                                       da["year"].values.astype(int)], names=["indicator", "municipality", "year"])
    adopt = pd.Series(f["adopt"].to_numpy(), index=idx).reindex(full).to_numpy().reshape(da.shape)
    red = pd.Series(f["red_prev"].to_numpy(), index=idx).reindex(full).to_numpy().reshape(da.shape)
    out = da.copy(data=adopt).to_dataset(name="value")
    out = out.assign_coords(scale=("indicator", np.array(["binary"] * da.sizes["indicator"])))
    out.attrs = dict(ds.attrs)
    exposure = out["value"].copy(data=np.nan_to_num(red))
    return fit_binary(out, exposure, grouping=grouping, standardize_exposure=False, **kwargs)
