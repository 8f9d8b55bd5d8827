"""Colour-threshold regression discontinuity: does being coloured red (or green) change next year?

OJ colours result indicators by quartile: the worst 25 % of municipalities red, the best 25 %
green. Municipalities just below and just above a colour threshold are alike except for the
colour, so a jump in next year's change at the threshold estimates the effect of the colour.

* Running variable: the municipality's percentile rank in year ``t`` among the municipalities with
  a value, in the "better" direction (``direction`` = −1 indicators are reversed):
  ``r = (rank − ½)/n`` in ``(0, 1)``; red is ``r < 0.25``, green is ``r ≥ 0.75``.
* Outcome: the change to ``t + 1`` in the better direction, ``direction·(y[t+1] − y[t])``, divided
  by the indicator's standard deviation (pooled over years) so that indicators can be pooled.
* Estimator: local linear regression on each side of the cut-off ``c`` with a triangular kernel
  ``K = 1 − |r − c|/h`` (the model ``Δ ~ 1 + D + (r − c) + D·(r − c)``, ``D = 1{r ≥ c}``, by weighted
  least squares); the estimate is the jump ``lim_{r↓c} − lim_{r↑c}`` (above minus below). At 0.25 a
  *negative* jump means the municipalities just coloured red improved *more* than those just
  above; at 0.75 a positive jump means the green ones improved more. Standard errors are
  clustered by municipality (CRV1, ``G/(G−1)·(n−1)/(n−k)``), normal reference.
* The Cattaneo–Idrobo–Titiunik workflow, through the maintained packages where they do the work
  (``rdrobust``, ``rddensity``, ``rdlocrand``; Calonico, Cattaneo, Farrell and Titiunik):

  1. **Bandwidths** (``rdrobust.rdbwselect``): the MSE-optimal ``h`` (``mserd``) with its own,
     separately chosen pilot bandwidth ``b`` for the bias correction, and the CER-optimal ``h``
     (``cerrd``) for inference; errors clustered by municipality. Each is then capped at the
     distance to the nearest other threshold or the edge of ``(0, 1)`` (0.25 for the real
     cut-offs), so that a window never straddles two colour changes (``bandwidth_capped``).
     ``bandwidth=`` fixes ``h`` (and ``b = h``).
  2. **Estimates** (``rdrobust.rdrobust`` at those ``h`` and ``b``, triangular kernel, CR1
     clustered by municipality): the conventional jump and SE (``estimate``, ``std_error``,
     ``p_value``) and the robust bias-corrected ones (``estimate_bc``, ``std_error_robust``,
     ``p_value_robust``, ``ci_robust_lower/upper``) at the MSE bandwidth, and the robust p-value
     and interval at the CER bandwidth (``p_value_robust_cer``, ``ci_cer_lower/upper``). Report
     the robust intervals: the conventional one around an MSE-optimal bandwidth is too short.
  3. **Density (manipulation) test** (``rddensity``) on the *raw* indicator value, centred on that
     indicator-year's colour threshold (the ``c``-quantile of the values, in the better direction)
     and scaled by the indicator's SD: the percentile rank itself is uniform by construction and
     cannot show bunching (:attr:`RDResult.density`). Beside it, the "donut" test without the
     values tied with the threshold (:func:`density_diagnostics`; see *Mass points* below).
  4. **Balance** of predetermined variables (``rdrobust`` with each as the outcome, its own MSE
     bandwidth): the lagged outcome (change ``t−1 → t``) and the lagged level (``t−1``), both
     standardised like the outcome (:attr:`RDResult.balance`).
  5. **Local randomisation** (``rdlocrand``): symmetric windows around the cut-off chosen by
     ``rdwinselect`` on the predetermined variables (the largest window in which their balance
     p-values stay above 0.15), then Fisher randomisation inference on the difference in means
     (``rdrandinf``; :attr:`RDResult.local_randomisation`).
  6. **RD plot** (:func:`plot_rd`): binned means with 95 % intervals, bins that never straddle the
     cut-off, and the local linear fits.

Where the panel logic differs from the packages (and what the tests check)
-------------------------------------------------------------------------
* *Per-year thresholds, pooled.* Each indicator-year has its own threshold in raw values; in
  percentile ranks they are all at ``c``. Pooling the normalised running variable across
  indicators and years is the "normalise and pool" estimator of multi-cut-off RD. The packages
  see one running variable and one cut-off; given the pooled frame (:func:`rd_data`) the numbers
  are exactly theirs (tested), and for a single indicator-year the pooled logic *is* the plain
  package call (tested).
* *Repeated units.* A municipality appears in many indicator-years, so ``rdrobust`` clusters by
  municipality. ``rddensity`` and ``rdlocrand`` have no cluster option: the density test and the
  randomisation p-values treat indicator-year rows as independent and are therefore too liberal
  when a municipality's rows move together; read them as diagnostics.
* *Mass points.* The rank takes the values ``(k − ½)/n``: the running variable is discrete and
  the same values recur across indicator-years. ``rdrobust`` detects this and adjusts
  (``masspoints="adjust"``); :func:`local_linear`, the package's own estimator at a given ``h``
  with ``b = h`` and no mass-point adjustment, equals ``rdrobust(..., h=h, b=h,
  masspoints="off")`` (tested). In small symmetric windows the discreteness makes the numbers of
  rows on the two sides unequal, which ``rdwinselect``'s binomial test reports. The raw values of
  the density test are discrete too (most OJ values are whole percentages): the threshold, a
  quantile, is then itself a value that several municipalities share, and all of them sit at
  exactly 0, on the "at or above" side. That one-sided point mass at the cut-off makes
  ``rddensity`` reject without any sorting (on the embedded elderly-care data about 5 % of the
  values tie with each threshold; p < 0.01 with the ties, 0.26 and 0.81 without). The tests show
  the same rejection on smooth simulated values rounded to whole numbers, and none unrounded or
  without the ties; read the donut test.
* *The cap.* The packages know of one cut-off; ours cap ``h`` and ``b`` so that a window never
  reaches the other colour change.

The design is one object, :class:`RDDesign` (cut-offs, bandwidth rule and cap, clusters,
diagnostics, seed, with the defaults :data:`THRESHOLDS` and :data:`PLACEBO`): :func:`colour_rd`
fits it and :func:`ojpanel.designs.rd_power.rd_power` simulates the same test.

The earlier rule (Imbens–Kalyanaraman with pilot = main bandwidth, :func:`ik_bandwidth`) is kept
for comparison; on the embedded elderly-care data it chose the cap (0.25) where ``rdrobust``
chooses about 0.06–0.08.

* Placebo cut-offs (default 0.375, 0.5, 0.625) lie where no colour changes: jumps there should be
  zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from ojpanel.errors import DataError, ParameterError
from ojpanel.models.covariance import cr1

__all__ = [
    "THRESHOLDS",
    "PLACEBO",
    "RDDesign",
    "bandwidth_cap",
    "density_diagnostics",
    "rd_data",
    "density_running_variable",
    "local_linear",
    "local_linear_jump",
    "ik_bandwidth",
    "select_bandwidths",
    "rd_jump",
    "density_test",
    "local_randomisation",
    "RDResult",
    "colour_rd",
    "plot_rd",
]


def rd_data(
    ds: xr.Dataset | xr.DataArray, *, indicators: Sequence[str] | None = None
) -> pd.DataFrame:
    """Pooled running variable and outcome: one row per indicator × municipality × year ``t``.

    Columns: ``indicator``, ``municipality``, ``year``, ``rank`` (percentile rank in ``t``),
    ``change`` (standardised change to ``t+1`` in the better direction), the predetermined
    ``lag_change`` (standardised change ``t−1 → t``) and ``lag_level`` (level in ``t−1`` minus the
    indicator's mean, in SDs), and ``value_std`` (the level in ``t``, same units; all in the better
    direction). Rows without a rank or a next-year change are dropped; lagged columns may be NaN.
    """
    da = ds["value"] if isinstance(ds, xr.Dataset) else ds
    if "indicator" not in da.dims:
        da = da.expand_dims(indicator=[str(da.name or "value")])
    if indicators is not None:
        da = da.sel(indicator=list(indicators))
    da = da.transpose("indicator", "municipality", "year")
    if "direction" in da.coords:
        d = np.asarray(da["direction"].values, dtype=float)
    else:
        raise DataError("the colour RD needs the indicator coordinate 'direction' (+1/−1)")
    if np.any(d == 0):
        bad = [str(i) for i in da["indicator"].values[d == 0]]
        raise ParameterError(f"indicators without a direction cannot be coloured: {bad}")
    v = da.values * d[:, None, None]
    K, N, T = v.shape
    if T < 2:
        raise DataError("the colour RD needs at least two consecutive years")
    rank = np.full_like(v, np.nan)
    for k in range(K):
        for t in range(T):
            col = v[k, :, t]
            ok = np.isfinite(col)
            if ok.sum() >= 4:
                rank[k, ok, t] = (stats.rankdata(col[ok], method="average") - 0.5) / ok.sum()
    years = np.asarray(da["year"].values)
    nxt = np.full_like(v, np.nan)
    consecutive = np.diff(years) == 1
    nxt[:, :, :-1] = np.where(consecutive[None, None, :], v[:, :, 1:], np.nan)
    # Indicators without values get NaN scales (and so no rows) rather than numpy's warnings.
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sd = np.nanstd(v, axis=(1, 2), ddof=1)
        mu = np.nanmean(v, axis=(1, 2))[:, None, None]
    sd[~np.isfinite(sd) | (sd == 0)] = np.nan
    change = (nxt - v) / sd[:, None, None]
    prev = np.full_like(v, np.nan)
    prev[:, :, 1:] = np.where(consecutive[None, None, :], v[:, :, :-1], np.nan)
    frame = pd.DataFrame(
        {
            "indicator": np.repeat(np.asarray(da["indicator"].values).astype(str), N * T),
            "municipality": np.tile(
                np.repeat(np.asarray(da["municipality"].values).astype(str), T), K
            ),
            "year": np.tile(years, K * N),
            "rank": rank.ravel(),
            "change": change.ravel(),
            "lag_change": ((v - prev) / sd[:, None, None]).ravel(),
            "lag_level": ((prev - mu) / sd[:, None, None]).ravel(),
            "value_std": ((v - mu) / sd[:, None, None]).ravel(),
        }
    )
    return frame.dropna(subset=["rank", "change"]).reset_index(drop=True)


def density_running_variable(
    ds: xr.Dataset | xr.DataArray, cutoff: float, *, indicators: Sequence[str] | None = None
) -> np.ndarray:
    """Raw values centred on each indicator-year's colour threshold, in indicator SDs.

    ``x = (d·y − Q_c) / sd`` with ``Q_c`` the ``c``-quantile of that indicator-year's values in the
    better direction (Hazen's definition, ``(k − ½)/n``, the one that matches the rank's ``r ≥ c``),
    ``sd`` the indicator's SD over municipalities and years. One value per indicator ×
    municipality × year with at least four municipalities in the year. The density test runs on
    this, not on the rank (which is uniform by construction).
    """
    da = ds["value"] if isinstance(ds, xr.Dataset) else ds
    if "indicator" not in da.dims:
        da = da.expand_dims(indicator=[str(da.name or "value")])
    if indicators is not None:
        da = da.sel(indicator=list(indicators))
    da = da.transpose("indicator", "municipality", "year")
    if "direction" not in da.coords:
        raise DataError("the colour RD needs the indicator coordinate 'direction' (+1/−1)")
    d = np.asarray(da["direction"].values, dtype=float)
    v = da.values * d[:, None, None]
    sd = np.nanstd(v, axis=(1, 2), ddof=1)
    out = []
    for k in range(v.shape[0]):
        for t in range(v.shape[2]):
            col = v[k, :, t]
            col = col[np.isfinite(col)]
            if col.size >= 4 and np.isfinite(sd[k]) and sd[k] > 0:
                out.append((col - np.quantile(col, cutoff, method="hazen")) / sd[k])
    if not out:
        raise DataError("no indicator-year has four or more values for the density test")
    return np.concatenate(out)


def _local_poly(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, cl: np.ndarray, degree: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Weighted fit of ``1, D, x, D·x, …, x^p, D·x^p`` and its CRV1 covariance."""
    D = (x >= 0).astype(float)
    cols = [np.ones_like(x), D]
    for j in range(1, degree + 1):
        cols += [x**j, D * x**j]
    X = np.column_stack(cols)
    XtW = X.T * w
    A = np.linalg.inv(XtW @ X)
    beta = A @ (XtW @ y)
    # CR1 from the covariance registry, with the kernel-weighted scores
    cov, G = cr1(X, w * (y - X @ beta), A, cl)
    return beta, cov, G


def _kernel_window(
    r: np.ndarray, y: np.ndarray, cutoff: float, h: float, clusters: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """The observations with positive triangular weight: centred running variable, outcome,
    weights, cluster codes and the counts left and right of the cut-off."""
    r = np.asarray(r, float)
    y = np.asarray(y, float)
    x = r - cutoff
    w = np.clip(1 - np.abs(x) / h, 0, None)
    sel = w > 0
    n_left, n_right = int(((x < 0) & sel).sum()), int(((x >= 0) & sel).sum())
    if n_left < 4 or n_right < 4:
        raise DataError(
            f"too few observations around the cut-off {cutoff} (left {n_left}, right {n_right}); widen the bandwidth"
        )
    cl = np.arange(sel.sum()) if clusters is None else pd.factorize(np.asarray(clusters)[sel])[0]
    return x[sel], y[sel], w[sel], cl, n_left, n_right


def local_linear_jump(
    r: np.ndarray, y: np.ndarray, cutoff: float, h: float, clusters: np.ndarray | None = None
) -> tuple[float, float]:
    """The conventional jump and its standard error of :func:`local_linear`, without the rest.

    The jump is the coefficient of the indicator ``D = 1{r ≥ cutoff}``, a regressor of the fit: an
    outcome shifted by ``δ·D`` gives the jump plus ``δ`` and the same residuals, hence the same
    standard error. Power simulations use this to test every planted jump with one fit.
    """
    x, y, w, cl, _, _ = _kernel_window(r, y, cutoff, h, clusters)
    beta, cov, _ = _local_poly(x, y, w, cl, 1)
    return float(beta[1]), float(np.sqrt(cov[1, 1]))


def local_linear(
    r: np.ndarray, y: np.ndarray, cutoff: float, h: float, clusters: np.ndarray | None = None
) -> dict:
    """Jump at ``cutoff`` by triangular-kernel local linear regression (see module docstring).

    Besides the conventional estimate and SE, the robust bias-corrected inference of Calonico,
    Cattaneo and Titiunik (2014) with pilot bandwidth equal to ``h`` (``ρ = h/b = 1``): the
    bias-corrected jump is then the local *quadratic* jump at the same bandwidth and kernel, and
    its robust standard error is that fit's (``estimate_bc``, ``std_error_robust``,
    ``p_value_robust``, ``ci_robust_lower/upper`` at 95 %). The MSE-optimal bandwidth makes the
    conventional interval under-cover (its bias is of the order of its SE); the robust one does not.
    """
    x, y, w, cl, n_left, n_right = _kernel_window(r, y, cutoff, h, clusters)
    beta, cov, G = _local_poly(x, y, w, cl, 1)
    beta2, cov2, _ = _local_poly(x, y, w, cl, 2)
    se = float(np.sqrt(cov[1, 1]))
    est = float(beta[1])
    est_bc, se_rb = float(beta2[1]), float(np.sqrt(cov2[1, 1]))
    z = stats.norm.ppf(0.975)
    return {
        "cutoff": cutoff,
        "bandwidth": h,
        "estimate": est,
        "std_error": se,
        "statistic": est / se,
        "p_value": float(2 * stats.norm.sf(abs(est / se))),
        "estimate_bc": est_bc,
        "std_error_robust": se_rb,
        "p_value_robust": float(2 * stats.norm.sf(abs(est_bc / se_rb))),
        "ci_robust_lower": est_bc - z * se_rb,
        "ci_robust_upper": est_bc + z * se_rb,
        "n_left": n_left,
        "n_right": n_right,
        "n_clusters": G,
        "intercept_left": float(beta[0]),
        "slope_left": float(beta[2]),
        "slope_right": float(beta[2] + beta[3]),
    }


def _poly_fit(x: np.ndarray, y: np.ndarray, deg: int) -> np.ndarray:
    V = np.vander(x, deg + 1, increasing=True)
    return np.linalg.lstsq(V, y, rcond=None)[0]


def ik_bandwidth(r: np.ndarray, y: np.ndarray, cutoff: float, cap: float | None = None) -> float:
    """Imbens–Kalyanaraman MSE-optimal bandwidth for the triangular kernel (module docstring)."""
    r = np.asarray(r, float)
    y = np.asarray(y, float)
    n = r.size
    x = r - cutoff
    h1 = 1.84 * np.std(r, ddof=1) * n ** (-1 / 5)
    left, right = (x < 0) & (x >= -h1), (x >= 0) & (x <= h1)
    if left.sum() < 5 or right.sum() < 5:
        raise DataError(f"too few observations near the cut-off {cutoff} to choose a bandwidth")
    f = (left.sum() + right.sum()) / (2 * n * h1)
    s2l, s2r = np.var(y[left], ddof=1), np.var(y[right], ddof=1)
    D = (x >= 0).astype(float)
    V = np.column_stack([np.ones(n), D, x, x**2, x**3])
    m3 = 6 * np.linalg.lstsq(V, y, rcond=None)[0][4]
    m3 = m3 if abs(m3) > 1e-8 else 1e-8
    h2l = 3.56 * (s2l / (f * m3**2)) ** (1 / 7) * max(left.sum(), 1) ** (-1 / 7)
    h2r = 3.56 * (s2r / (f * m3**2)) ** (1 / 7) * max(right.sum(), 1) ** (-1 / 7)
    wl, wr = (x < 0) & (x >= -h2l), (x >= 0) & (x <= h2r)
    m2l = 2 * _poly_fit(x[wl], y[wl], 2)[2] if wl.sum() >= 5 else 0.0
    m2r = 2 * _poly_fit(x[wr], y[wr], 2)[2] if wr.sum() >= 5 else 0.0
    rl = 720 * s2l / (max(wl.sum(), 1) * h2l**4)
    rr = 720 * s2r / (max(wr.sum(), 1) * h2r**4)
    h = 3.4375 * ((s2l + s2r) / (f * ((m2r - m2l) ** 2 + rl + rr))) ** (1 / 5) * n ** (-1 / 5)
    if cap is not None:
        h = min(h, cap)
    return float(h)


def _quiet(func, *args, **kwargs):
    """Call a package function without its console notes (mass points, progress)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return func(*args, **kwargs)


def select_bandwidths(
    r: np.ndarray, y: np.ndarray, cutoff: float, clusters: np.ndarray | None = None,
    cap: float | None = None,
) -> dict:
    """MSE- and CER-optimal bandwidths with a separate pilot, by ``rdrobust.rdbwselect``.

    Returns ``h_mse``, ``b_mse`` (pilot for the bias correction), ``h_cer``, ``b_cer`` (all capped at
    ``cap``) and the uncapped ``h_mse_raw``; triangular kernel, local linear (``p = 1``, ``q = 2``),
    clustered by ``clusters`` when given.
    """
    from rdrobust import rdbwselect

    bw = _quiet(rdbwselect, np.asarray(y, float), np.asarray(r, float), c=cutoff,
                cluster=None if clusters is None else pd.factorize(np.asarray(clusters))[0],
                all=True).bws
    out = {"h_mse_raw": float(bw.loc["mserd"].iloc[0]), "b_mse_raw": float(bw.loc["mserd"].iloc[2]),
           "h_cer_raw": float(bw.loc["cerrd"].iloc[0]), "b_cer_raw": float(bw.loc["cerrd"].iloc[2])}
    c = np.inf if cap is None else float(cap)
    for k in ("h_mse", "b_mse", "h_cer", "b_cer"):
        out[k] = min(out[k + "_raw"], c)
    return out


def rd_jump(
    r: np.ndarray, y: np.ndarray, cutoff: float, h: float, b: float, clusters: np.ndarray | None = None
) -> dict:
    """``rdrobust`` at bandwidth ``h`` and pilot ``b`` (triangular kernel, CR1 by ``clusters``).

    Conventional and robust bias-corrected jump, SE, p-value and 95 % interval, and the effective
    numbers of rows on each side.
    """
    from rdrobust import rdrobust

    cl = None if clusters is None else pd.factorize(np.asarray(clusters))[0]

    res = _quiet(rdrobust, np.asarray(y, float), np.asarray(r, float), c=cutoff, h=h, b=b,
                 cluster=cl)
    coef, se, pv, ci = res.coef.iloc[:, 0], res.se.iloc[:, 0], res.pv.iloc[:, 0], res.ci
    return {
        "estimate": float(coef["Conventional"]), "std_error": float(se["Conventional"]),
        "statistic": float(coef["Conventional"] / se["Conventional"]),
        "p_value": float(pv["Conventional"]),
        "estimate_bc": float(coef["Robust"]), "std_error_robust": float(se["Robust"]),
        "p_value_robust": float(pv["Robust"]),
        "ci_robust_lower": float(ci.loc["Robust"].iloc[0]), "ci_robust_upper": float(ci.loc["Robust"].iloc[1]),
        "n_left": int(res.N_h[0]), "n_right": int(res.N_h[1]),
        "n_clusters": None if res.n_clust is None else int(res.n_clust),
    }


def density_test(x: np.ndarray) -> dict:
    """``rddensity`` manipulation test at 0 (local quadratic densities, jackknife SE).

    Returns ``density_t``, ``density_p`` (robust bias-corrected), the density estimates on each
    side and the bandwidths.
    """
    from rddensity import rddensity

    res = _quiet(rddensity, X=np.asarray(x, float), c=0)
    return {"density_t": float(res.test["t_jk"]), "density_p": float(res.test["p_jk"]),
            "density_left": float(res.hat["left"]), "density_right": float(res.hat["right"]),
            "density_h_left": float(res.h["left"]), "density_h_right": float(res.h["right"]),
            "density_n": int(np.isfinite(x).sum())}


def local_randomisation(
    r: np.ndarray, y: np.ndarray, cutoff: float, covariates: np.ndarray, *,
    wmin: float = 0.0025, wstep: float = 0.0025, nwindows: int = 8, reps: int = 999, seed: int = 0,
) -> dict:
    """Window selection (``rdwinselect``) and randomisation inference (``rdrandinf``).

    The window is the largest of ``nwindows`` symmetric windows ``±(wmin + j·wstep)`` in which no
    predetermined covariate differs at level 0.15 (the package's rule; asymptotic balance p-values).
    If even the smallest window fails that rule, the smallest window is used and
    ``lr_window_balanced`` is False: local randomisation is then not supported by the data, and the
    p-value is reported as a diagnostic only. Rows with a missing covariate are left out of the
    selection only. The global numpy random state
    that ``rdlocrand`` uses is saved and restored, so callers' streams are unaffected; ``seed``
    makes the p-value reproducible (the packages receive ``seed + 1``: they take positive seeds).
    """
    from rdlocrand import rdrandinf, rdwinselect

    r = np.asarray(r, float)
    y = np.asarray(y, float)
    X = np.asarray(covariates, float).reshape(len(r), -1)
    ok = np.isfinite(X).all(1)
    if seed < 0:
        raise ParameterError(f"seed must be a non-negative integer; got {seed}")
    left, right = r[ok & (r < cutoff)], r[ok & (r >= cutoff)]
    if left.size == 0 or right.size == 0:
        raise DataError(f"no rows on one side of the cut-off {cutoff} for local randomisation")
    # the rank is discrete: the smallest window must reach the nearest mass point on each side
    wmin = max(wmin, (cutoff - left.max()) * (1 + 1e-9), (right.min() - cutoff) * (1 + 1e-9))
    state = np.random.get_state()  # noqa: NPY002 (rdlocrand draws from the global state)
    try:
        # rdlocrand takes positive seeds only
        ws = _quiet(rdwinselect, r[ok], X[ok], cutoff=cutoff, wmin=wmin, wstep=wstep,
                    nwindows=nwindows, approx=True, seed=seed + 1, quietly=True)
        balanced = bool(np.isfinite(ws["w_right"]))
        w = float(ws["w_right"]) - cutoff if balanced else wmin
        ri = _quiet(rdrandinf, y, r, cutoff=cutoff, wl=cutoff - w, wr=cutoff + w, reps=reps,
                    seed=seed + 1, quietly=True)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    table = ws["results"]
    return {"lr_window": w, "lr_n_left": int(ri["sumstats"][1][0]), "lr_n_right": int(ri["sumstats"][1][1]),
            "lr_diff_means": float(np.ravel(ri["obs.stat"])[0]), "lr_p_value": float(np.ravel(ri["p.value"])[0]),
            "lr_p_asymptotic": float(np.ravel(ri["asy.pvalue"])[0]), "lr_reps": reps,
            "lr_window_balanced": balanced,
            "lr_balance_p": float(table.loc[np.isclose(table["w_right"], w), "p-value"].min())}


@dataclass(frozen=True)
class RDResult:
    """Jumps at the colour thresholds and at placebo cut-offs, with the RD diagnostics.

    Attributes
    ----------
    table
        One row per cut-off (module docstring for the columns).
    data
        The pooled frame (:func:`rd_data`).
    thresholds
        The real colour cut-offs.
    density, balance, local_randomisation
        Per real threshold: the ``rddensity`` test on the raw values; ``rdrobust`` jumps in the
        lagged outcome and lagged level; the local-randomisation window and p-values (empty when
        ``diagnostics=False``). The density rows carry the test on all values and the "donut"
        test without the values tied with the threshold (:func:`density_diagnostics`).
    design
        The :class:`RDDesign` that produced the result.
    """

    table: pd.DataFrame
    data: pd.DataFrame
    thresholds: tuple[float, ...]
    density: pd.DataFrame = field(default_factory=pd.DataFrame)
    balance: pd.DataFrame = field(default_factory=pd.DataFrame)
    local_randomisation: pd.DataFrame = field(default_factory=pd.DataFrame)
    design: RDDesign | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per cut-off (``kind`` = threshold or placebo), replication-schema names."""
        return self.table.copy()

    @property
    def summary(self) -> str:
        """Plain-text tables: jumps, then the diagnostics."""
        cols = ["kind", "cutoff", "bandwidth", "bandwidth_pilot", "bandwidth_cer", "estimate",
                "std_error", "p_value", "estimate_bc", "std_error_robust", "p_value_robust",
                "p_value_robust_cer", "n_left", "n_right"]
        f = lambda x: f"{x:.4f}"  # noqa: E731
        out = ["Colour-threshold RD (rdrobust; clustered by municipality)",
               self.table[cols].to_string(index=False, float_format=f)]
        for name, tab in (("Density test on raw values (rddensity)", self.density),
                          ("Balance of predetermined variables (rdrobust)", self.balance),
                          ("Local randomisation (rdlocrand)", self.local_randomisation)):
            if len(tab):
                out += [name, tab.to_string(index=False, float_format=f)]
        return "\n".join(out)

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False)


#: The colour thresholds OJ uses (percentile ranks: red below the first, green from the second).
THRESHOLDS: tuple[float, ...] = (0.25, 0.75)
#: Placebo cut-offs where no colour changes.
PLACEBO: tuple[float, ...] = (0.375, 0.5, 0.625)
#: Cluster options of the RD's standard errors.
CLUSTERS = ("municipality", "none")


def bandwidth_cap(cutoff: float, thresholds: Sequence[float] = THRESHOLDS) -> float:
    """The largest bandwidth at ``cutoff`` whose window reaches no other colour threshold.

    ``min(|c − t|)`` over the other thresholds ``t`` and the edges of ``(0, 1)``: a window that
    straddled two colour changes would compare municipalities that differ in more than one colour.
    """
    others = [abs(cutoff - t) for t in thresholds if abs(cutoff - t) > 1e-12] + [cutoff, 1 - cutoff]
    return float(min(others))


def density_diagnostics(x: np.ndarray) -> dict:
    """The density test of :func:`density_test`, and the same test without the threshold's ties.

    OJ's values are discrete (most are whole percentages), and the ``c``-quantile of a discrete
    distribution is itself one of the values: every municipality tied with the threshold has
    ``x = 0`` exactly and counts as "at or above". That is a point mass at the cut-off, on one side
    only, which a local polynomial density estimator reads as a jump whether or not anybody
    manipulated anything. The "donut" test leaves the tied values out (``x ≠ 0``): what remains
    are the values strictly below and strictly above the threshold, whose densities must meet at
    0 if there is no sorting. ``density_n_at_cutoff`` and ``density_share_at_cutoff`` report the
    size of the point mass.

    Returns
    -------
    dict
        :func:`density_test`'s keys, ``density_p_donut``, ``density_t_donut``,
        ``density_n_at_cutoff`` and ``density_share_at_cutoff``.
    """
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    out = density_test(x)
    at = x == 0
    donut = density_test(x[~at])
    out.update({"density_t_donut": donut["density_t"], "density_p_donut": donut["density_p"],
                "density_n_at_cutoff": int(at.sum()), "density_share_at_cutoff": float(at.mean())})
    return out


@dataclass(frozen=True)
class RDDesign:
    """The colour-threshold RD, defined once: cut-offs, bandwidths, clusters and diagnostics.

    :func:`colour_rd` (estimates and diagnostics), :func:`plot_rd` (through the result) and
    :func:`ojpanel.designs.rd_power.rd_power` (power and MDE) all ask this object, so the power
    belongs to the test that is run.

    Parameters
    ----------
    thresholds
        Real colour cut-offs (percentile ranks).
    placebo
        Cut-offs where no colour changes.
    bandwidth
        Fixed ``h`` (and pilot ``b = h``) at every cut-off, capped like the selected ones; default
        ``rdbwselect``'s MSE- and CER-optimal choices with a separate pilot, capped
        (:func:`bandwidth_cap`).
    cluster
        ``"municipality"`` (default) or ``"none"`` for heteroskedasticity-robust errors.
    diagnostics
        Run the density test, balance and local randomisation at the real thresholds.
    lr_reps, seed
        Randomisation draws and seed of the local-randomisation p-values.
    """

    thresholds: tuple[float, ...] = THRESHOLDS
    placebo: tuple[float, ...] = PLACEBO
    bandwidth: float | None = None
    cluster: str = "municipality"
    diagnostics: bool = True
    lr_reps: int = 999
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", tuple(float(c) for c in self.thresholds))
        object.__setattr__(self, "placebo", tuple(float(c) for c in self.placebo))
        for c in self.thresholds + self.placebo:
            if not 0 < c < 1:
                raise ParameterError(f"cut-offs are percentile ranks in (0, 1); got {c}")
        if self.cluster not in CLUSTERS:
            raise ParameterError(f"cluster must be 'municipality' or 'none'; got {self.cluster!r}")
        if self.bandwidth is not None and not float(self.bandwidth) > 0:
            raise ParameterError(f"bandwidth must be positive; got {self.bandwidth}")
        if int(self.seed) < 0:
            raise ParameterError(f"seed must be a non-negative integer; got {self.seed}")

    def but(self, **changes: Any) -> RDDesign:
        """A copy with some settings changed (e.g. ``design.but(bandwidth=0.1)``)."""
        return replace(self, **changes)

    # --- data ----------------------------------------------------------------------------
    def data(self, ds: xr.Dataset | xr.DataArray, indicators: Sequence[str] | None = None) -> pd.DataFrame:
        """The pooled running variable and outcome (:func:`rd_data`)."""
        return rd_data(ds, indicators=indicators)

    def clusters(self, frame: pd.DataFrame) -> np.ndarray | None:
        """Cluster codes of the pooled rows (None for ``cluster="none"``)."""
        return None if self.cluster == "none" else pd.factorize(frame[self.cluster].to_numpy())[0]

    # --- bandwidths and estimates --------------------------------------------------------
    def cap(self, cutoff: float) -> float:
        """The bandwidth cap at ``cutoff`` (:func:`bandwidth_cap` with the design's thresholds)."""
        return bandwidth_cap(cutoff, self.thresholds)

    def bandwidths(
        self, r: np.ndarray, y: np.ndarray, cutoff: float, clusters: np.ndarray | None = None
    ) -> dict:
        """``h`` and pilot ``b`` (MSE- and CER-optimal) at ``cutoff``, capped (:func:`select_bandwidths`
        keys); the fixed ``bandwidth`` when the design has one."""
        cap = self.cap(cutoff)
        if self.bandwidth is not None:
            h = min(float(self.bandwidth), cap)
            return {"h_mse": h, "b_mse": h, "h_cer": h, "b_cer": h, "h_mse_raw": float(self.bandwidth)}
        return select_bandwidths(r, y, cutoff, clusters, cap=cap)

    def jump(self, r: np.ndarray, y: np.ndarray, cutoff: float, clusters: np.ndarray | None = None) -> dict:
        """The jump at ``cutoff`` at the design's bandwidths: conventional and robust (MSE ``h``),
        the robust p-value and interval at the CER ``h``, and the local linear fit for plots."""
        bws = self.bandwidths(r, y, cutoff, clusters)
        res = rd_jump(r, y, cutoff, bws["h_mse"], bws["b_mse"], clusters)
        cer = rd_jump(r, y, cutoff, bws["h_cer"], bws["b_cer"], clusters)
        ll = local_linear(r, y, cutoff, bws["h_mse"], None)
        res.update({
            "cutoff": cutoff, "bandwidth": bws["h_mse"], "bandwidth_pilot": bws["b_mse"],
            "bandwidth_cer": bws["h_cer"], "bandwidth_capped": bws["h_mse_raw"] > self.cap(cutoff) + 1e-12,
            "p_value_robust_cer": cer["p_value_robust"], "ci_cer_lower": cer["ci_robust_lower"],
            "ci_cer_upper": cer["ci_robust_upper"],
            "intercept_left": ll["intercept_left"], "slope_left": ll["slope_left"],
            "slope_right": ll["slope_right"],
        })
        return res

    # --- diagnostics ---------------------------------------------------------------------
    def density(
        self, ds: xr.Dataset | xr.DataArray, cutoff: float, indicators: Sequence[str] | None = None
    ) -> dict:
        """Density tests on the raw values at ``cutoff`` (:func:`density_diagnostics`)."""
        return {"cutoff": cutoff,
                **density_diagnostics(density_running_variable(ds, cutoff, indicators=indicators))}

    def balance(self, frame: pd.DataFrame, cutoff: float, clusters: np.ndarray | None = None) -> list[dict]:
        """Jumps in the predetermined variables (lagged change and level), each at its own
        MSE-optimal bandwidth."""
        r = frame["rank"].to_numpy()
        out = []
        for var in ("lag_change", "lag_level"):
            ok = frame[var].notna().to_numpy()
            cl = None if clusters is None else clusters[ok]
            v = frame[var].to_numpy()[ok]
            bb = select_bandwidths(r[ok], v, cutoff, cl, cap=self.cap(cutoff))
            b = rd_jump(r[ok], v, cutoff, bb["h_mse"], bb["b_mse"], cl)
            out.append({"cutoff": cutoff, "variable": var, "bandwidth": bb["h_mse"],
                        "estimate": b["estimate"], "estimate_bc": b["estimate_bc"],
                        "std_error_robust": b["std_error_robust"], "p_value_robust": b["p_value_robust"],
                        "n_left": b["n_left"], "n_right": b["n_right"]})
        return out

    def local_randomisation(self, frame: pd.DataFrame, cutoff: float) -> dict:
        """Window selection and randomisation inference at ``cutoff`` (:func:`local_randomisation`)."""
        return {"cutoff": cutoff, **local_randomisation(
            frame["rank"].to_numpy(), frame["change"].to_numpy(), cutoff,
            frame[["lag_change", "lag_level"]].to_numpy(), reps=self.lr_reps, seed=self.seed)}

    # --- the whole analysis --------------------------------------------------------------
    def fit(self, ds: xr.Dataset | xr.DataArray, indicators: Sequence[str] | None = None) -> RDResult:
        """Jumps at the thresholds and placebo cut-offs, with the diagnostics (:func:`colour_rd`)."""
        frame = self.data(ds, indicators)
        if len(frame) < 50:
            raise DataError(
                f"only {len(frame)} indicator×municipality×year cells with a rank and a next-year change"
            )
        r, y = frame["rank"].to_numpy(), frame["change"].to_numpy()
        cl = self.clusters(frame)
        rows, dens, bal, lr = [], [], [], []
        for kind, cuts in (("threshold", self.thresholds), ("placebo", self.placebo)):
            for c in cuts:
                res = self.jump(r, y, c, cl)
                res.update({"kind": kind, "flag": "red below" if np.isclose(c, 0.25)
                            else ("green above" if np.isclose(c, 0.75) else "")})
                rows.append(res)
                if kind == "threshold" and self.diagnostics:
                    dens.append(self.density(ds, c, indicators))
                    bal += self.balance(frame, c, cl)
                    lr.append(self.local_randomisation(frame, c))
        table = pd.DataFrame(rows)
        lead = ["cutoff", "kind", "flag", "bandwidth", "bandwidth_pilot", "bandwidth_cer", "bandwidth_capped"]
        table = table[lead + [c for c in table.columns if c not in lead]]
        table.insert(0, "analysis", "colour_rd")
        table["term"] = "jump"
        table["n_obs"] = table["n_left"] + table["n_right"]
        table["outcome"] = "standardised change t→t+1"
        return RDResult(table=table, data=frame, thresholds=self.thresholds,
                        density=pd.DataFrame(dens), balance=pd.DataFrame(bal),
                        local_randomisation=pd.DataFrame(lr), design=self)


def colour_rd(
    ds: xr.Dataset | xr.DataArray,
    *,
    indicators: Sequence[str] | None = None,
    design: RDDesign | None = None,
    **settings: Any,
) -> RDResult:
    """Colour-threshold RD pooled over the chosen indicators and years: :meth:`RDDesign.fit`.

    Parameters
    ----------
    ds
        OJ panel of result indicators (``direction`` +1/−1).
    indicators
        Indicators to pool; default all of the panel's.
    design
        The design; default :class:`RDDesign` with ``settings``.
    **settings
        Settings of :class:`RDDesign` (``thresholds``, ``placebo``, ``bandwidth``, ``cluster``,
        ``diagnostics``, ``lr_reps``, ``seed``); with ``design``, they change its copy.
    """
    d = RDDesign(**settings) if design is None else design.but(**settings)
    return d.fit(ds, indicators)


def plot_rd(
    result: RDResult, *, cutoff: float | None = None, bins: int = 20, ax: Any | None = None
):
    """Binned RD plot: means of the next-year change in evenly spaced bins on each side of the
    cut-off (a bin never straddles it) with 95 % intervals, and the local linear fits.

    ``bins`` is the number of bins on each side within ``[c − 2h, c + 2h]`` (clipped to (0, 1)).
    Returns the matplotlib Figure; the note says the figure shows processed data.
    """
    from ojpanel.config import PROCESSED_SOURCE_NOTE
    from ojpanel.core.style import new_figure, source_note, style

    d = result.data
    rows = result.table[result.table["kind"] == "threshold"]
    if cutoff is not None:
        rows = result.table[np.isclose(result.table["cutoff"], cutoff)]
        if rows.empty:
            raise ParameterError(f"no cut-off {cutoff} in the result; it has {result.table['cutoff'].tolist()}")
    with style():
        fig, ax = (ax.figure, ax) if ax is not None else new_figure(size=(7, 4.2))
        _draw_rd(ax, d, rows, bins)
        if ax.get_legend() is None:
            ax.legend(loc="best")
        source_note(fig, PROCESSED_SOURCE_NOTE)
    return fig


def _draw_rd(ax, d: pd.DataFrame, rows: pd.DataFrame, bins: int) -> None:
    first = True
    for _, row in rows.iterrows():
        c, h = row["cutoff"], row["bandwidth"]
        lo, hi = max(0.0, c - 2 * h), min(1.0, c + 2 * h)
        for a, b in ((lo, c), (c, hi)):
            edges = np.linspace(a, b, bins + 1)
            sel = (d["rank"] >= a) & (d["rank"] < b)
            sub = d[sel]
            idx = np.clip(np.digitize(sub["rank"], edges) - 1, 0, bins - 1)
            g = sub.groupby(idx)["change"].agg(["mean", "std", "count"])
            mid = (edges[:-1] + edges[1:])[g.index] / 2
            ax.errorbar(mid, g["mean"], yerr=1.96 * g["std"] / np.sqrt(g["count"]), fmt="o", ms=3,
                        color="0.35", lw=0.8, label="medelvärde per intervall, 95 % KI" if first else None)
            first = False
        xl = np.linspace(c - h, c, 20)
        xr_ = np.linspace(c, c + h, 20)
        ax.plot(xl, row["intercept_left"] + row["slope_left"] * (xl - c), color="#c0392b",
                label="lokal linjär anpassning" if c == rows["cutoff"].iloc[0] else None)
        ax.plot(xr_, row["intercept_left"] + row["estimate"] + row["slope_right"] * (xr_ - c), color="#2e8b57")
        ax.axvline(c, color="k", lw=0.8, ls="--")
    ax.set_xlabel("Percentilrang år t (bättre →); röd under 25:e, grön över 75:e percentilen")
    ax.set_ylabel("Förändring t → t+1 (indikatorns standardavvikelser)")
    ax.set_title("Färgtrösklar: förändringen året efter kring gränserna", loc="left")
