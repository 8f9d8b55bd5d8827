"""Shared pieces of the knowledge-steering designs: long frames, the FE call, MDEs, tidy rows.

The fixed-effects fits of every steering design go through :func:`fit_fe` and every MDE through
:func:`mde`, which delegates to :func:`ojpanel.designs.power.mde_from_se` with the degrees of
freedom of the estimate's own p-value (:func:`reference_df`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from ojpanel.errors import DataError

__all__ = [
    "ALPHA",
    "POWER",
    "mde",
    "reference_df",
    "fit_fe",
    "item_top",
    "long_frame",
    "tidy",
    "linear_combination",
    "value_array",
    "result_html",
]

#: Test level and target power used for every minimum detectable effect.
ALPHA = 0.05
POWER = 0.8


def mde(
    std_error: float | np.ndarray,
    alpha: float = ALPHA,
    power: float = POWER,
    df: float | np.ndarray | None = None,
) -> float | np.ndarray:
    """Minimum detectable effect of an estimator with standard error ``std_error``.

    Delegates to :func:`ojpanel.designs.power.mde_from_se`: ``(q_{1-alpha/2} + q_{power})·SE``
    with ``q`` the quantiles of the reference distribution of the estimate's p-value — Student's
    t with ``df`` degrees of freedom, or the standard normal when ``df`` is None or infinite.
    Pass :func:`reference_df` of the fit so that the MDE and the p-value agree.

    Parameters
    ----------
    std_error
        Standard error(s) of the estimate(s).
    alpha, power
        Two-sided test level and target power.
    df
        Degrees of freedom of the test's t distribution (None: normal).

    Returns
    -------
    float or numpy.ndarray
        The MDE, in the estimate's units (same shape as ``std_error``).
    """
    from ojpanel.designs.power import mde_from_se

    return mde_from_se(std_error, alpha=alpha, power=power, df=df)


def reference_df(res: Any) -> float | None:
    """Degrees of freedom of the t distribution behind a fit's p-values (None: normal).

    :class:`ojpanel.models.fe_results.FEResults` test against t with ``res.df_resid`` df (under
    the default ``linearmodels`` convention ``n - k - d``; ``G - 1`` under ``stata``/``pyfixest``
    clustering); statsmodels' clustered logit and the influence-function estimators use the
    normal.
    """
    from ojpanel.models.fe_results import FEResults

    if isinstance(res, FEResults) and np.isfinite(res.df_resid):
        return float(res.df_resid)
    return None


def fit_fe(
    frame: pd.DataFrame,
    y: str,
    x: str | Sequence[str],
    *,
    entity: str = "municipality",
    entity_effects: bool = True,
    other_effects: Sequence[str | tuple[str, ...]] | None = None,
    cluster: str = "municipality",
    label: str | None = None,
):
    """One FE linear (probability) model with clustered SEs, through :func:`ojpanel.models.fe.fit_panel`.

    No year effects of their own: the steering designs name their shock cells (``area×year``,
    ``indicator×year``) in ``other_effects``. An observation is a municipality's item in a year,
    so the keys that must not repeat include the item (``indicator``).
    """
    from ojpanel.models.fe import fit_panel

    keys = [entity, "year"] + (["indicator"] if "indicator" in frame and entity != "pair" else [])
    return fit_panel(
        frame, y, x, entity=entity, time="year", entity_effects=entity_effects, time_effects=False,
        other_effects=other_effects, cov="clustered", cluster=cluster, label=label, keys=keys,
    )


def value_array(ds: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """The panel's ``value`` as ``(indicator, municipality, year)``."""
    da = ds["value"] if isinstance(ds, xr.Dataset) else ds
    for d in ("indicator", "municipality", "year"):
        if d not in da.dims:
            raise DataError(f"the panel needs an '{d}' dimension; it has {da.dims}")
    return da.transpose("indicator", "municipality", "year")


def item_top(da: xr.DataArray) -> np.ndarray:
    """Top ("yes") level per item: 1 for binary, 2 for ordinal (ja/delvis/nej) items.

    Raises
    ------
    DataError
        If an item is neither binary nor ordinal, or holds values outside its scale.
    """
    if "scale" not in da.coords:
        raise DataError("the panel needs an indicator coordinate 'scale' (binary/ordinal)")
    scale = np.asarray(da["scale"].values).astype(str)
    bad = sorted({str(s) for s in scale if s not in ("binary", "ordinal")})
    if bad:
        ids = [str(i) for i, s in zip(da["indicator"].values, scale, strict=True) if s in bad]
        raise DataError(
            f"checklist designs need binary or ordinal items; {ids[:5]} have scale {bad}. Select "
            "them out, or dichotomise shares first (see ojpanel.designs.steering.dichotomise)"
        )
    top = np.where(scale == "ordinal", 2.0, 1.0)
    v = da.values
    allowed = np.isnan(v) | ((v >= 0) & (v <= top[:, None, None]) & (v == np.round(v)))
    if not allowed.all():
        j = int(np.flatnonzero(~allowed.all(axis=(1, 2)))[0])
        raise DataError(
            f"item {da['indicator'].values[j]} has values outside its {scale[j]} coding "
            f"(expected integers 0..{int(top[j])})"
        )
    return top


def long_frame(ds: xr.Dataset | xr.DataArray, extra: Mapping[str, xr.DataArray] | None = None) -> pd.DataFrame:
    """Long rows ``indicator, municipality, year, value, yes, area, scale, county`` (+ ``extra``).

    Every cell of the cube is a row (missing values stay NaN), in indicator, municipality, year
    order, so arrays reshaped from the cube line up with the rows.
    """
    da = value_array(ds)
    top = item_top(da)
    J, N, T = da.shape
    ind = np.asarray(da["indicator"].values).astype(str)
    mun = np.asarray(da["municipality"].values).astype(str)
    yrs = np.asarray(da["year"].values).astype(np.int64)
    v = da.values.ravel()
    out = pd.DataFrame({
        "indicator": np.repeat(ind, N * T),
        "municipality": np.tile(np.repeat(mun, T), J),
        "year": np.tile(yrs, J * N),
        "value": v,
    })
    out["yes"] = np.where(np.isnan(v), np.nan, (v == np.repeat(top, N * T)).astype(float))
    for c in ("area", "scale"):
        out[c] = np.repeat(np.asarray(da[c].values).astype(str), N * T) if c in da.coords else "all"
    if "county" in da.coords:
        out["county"] = np.tile(np.repeat(np.asarray(da["county"].values).astype(str), T), J)
    for name, arr in (extra or {}).items():
        a = arr.broadcast_like(da).transpose("indicator", "municipality", "year")
        out[name] = a.values.ravel()
    return out


def linear_combination(res: Any, weights: Mapping[str, float]) -> dict[str, float]:
    """Estimate, SE, t and two-sided p of ``sum_k w_k * beta_k`` from one FE fit's covariance."""
    names = list(res.params.index)
    w = np.array([float(weights.get(n, 0.0)) for n in names])
    est = float(w @ res.params.to_numpy())
    se = float(np.sqrt(w @ res.cov.to_numpy() @ w))
    t = est / se if se > 0 else float("nan")
    df = float(res.df_resid)
    p = float(2 * stats.t.sf(abs(t), df)) if np.isfinite(df) else float(2 * stats.norm.sf(abs(t)))
    return {"estimate": est, "std_error": se, "statistic": t, "p_value": p}


def tidy(rows: Iterable[Mapping[str, Any]], *, df: float | None = None, **meta: Any) -> pd.DataFrame:
    """Rows in the replication schema (:data:`ojpanel.models.fe_results.TIDY_COLUMNS`), stars and MDE filled.

    ``df`` is the reference t distribution of rows without an ``mde`` (None: normal; see
    :func:`reference_df`).
    """
    from ojpanel.core.stars import regression_stars
    from ojpanel.core.tidy import tidy_frame

    rows = [dict(r) for r in rows]
    for r in rows:
        if "stars" not in r:
            r["stars"] = regression_stars(r.get("estimate"), r.get("p_value"))
        if "mde" not in r and r.get("std_error") is not None and np.isfinite(r.get("std_error", np.nan)):
            r["mde"] = mde(r["std_error"], df=df)
    out = tidy_frame(rows, **meta)
    if "mode" in out and out["mode"].isna().all():
        out["mode"] = "improved"
    return out


def result_html(title: str, table: pd.DataFrame, notes: Sequence[str] = (), digits: int = 4) -> str:
    """Notebook display of a steering result: a title, a rounded table and plain-text notes.

    Notes are escaped; the table is pandas' HTML with ``digits`` decimals (integers as they are).
    """
    import html

    fmt = {c: (lambda x, d=digits: "" if pd.isna(x) else f"{x:.{d}f}") for c in table.columns
           if pd.api.types.is_float_dtype(table[c])}
    body = table.to_html(index=False, formatters=fmt, border=0, na_rep="")
    items = "".join(f"<li>{html.escape(str(n))}</li>" for n in notes)
    return (f"<div class='ojpanel-result'><p><strong>{html.escape(title)}</strong></p>{body}"
            + (f"<ul style='font-size:90%'>{items}</ul>" if items else "") + "</div>")
