"""The estimators behind the replication's cells: OLS with plain or clustered SEs, one-way ANOVA.

Everything that fits a model goes through :func:`fit_slope` or :func:`one_way_anova`. Plain OLS
(faithful mode) uses :func:`ojpanel.models.within.ols`; clustered fits with year effects (improved
mode) use the package's fixed-effects engine :func:`ojpanel.models.fe.fit_panel`. Tests compare
every cell with statsmodels and scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ojpanel.errors import ModelError
from ojpanel.models.covariance import cr1
from ojpanel.models.within import factorize, ols

__all__ = ["SlopeFit", "AnovaFit", "fit_slope", "one_way_anova", "mean_test"]


@dataclass(frozen=True)
class SlopeFit:
    """Coefficient of one regressor, with its inference and sample size."""

    estimate: float
    std_error: float
    statistic: float
    p_value: float
    n_obs: int


@dataclass(frozen=True)
class AnovaFit:
    """One-way ANOVA: F statistic, p-value, eta squared (share of variance between groups)."""

    f_value: float
    p_value: float
    eta_squared: float
    n_obs: int
    n_groups: int


def fit_slope(
    y: np.ndarray,
    x: np.ndarray,
    *,
    year: np.ndarray | None = None,
    cluster: np.ndarray | None = None,
) -> SlopeFit:
    """OLS of ``y`` on a constant, ``x`` and optional year dummies; the coefficient of ``x``.

    Parameters
    ----------
    y, x
        Outcome and regressor (1-D, no missing values).
    year
        Year labels; when given, one dummy per year except the first is added (year effects).
    cluster
        Cluster labels; when given, the SE is cluster-robust (CR1: ``G/(G-1)·(N-1)/(N-K)``) and
        the p-value uses a t distribution with ``G-1`` degrees of freedom, as Stata and
        statsmodels (``use_t=True``) do. Otherwise plain OLS SEs with ``N-K`` degrees of freedom.

    Raises
    ------
    ModelError
        If ``x`` has no variation (after the year effects) or there are too few rows or clusters.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    n = len(y)
    cols = [np.ones(n), x]
    if year is not None:
        codes = factorize(year)
        for g in range(1, int(codes.max()) + 1 if n else 0):
            cols.append((codes == g).astype(float))
    X = np.column_stack(cols)
    k = X.shape[1]
    if n <= k:
        raise ModelError(f"only {n} observation(s) for {k} parameters")
    if np.ptp(x) == 0:
        raise ModelError("the regressor has no variation in this sample (all values equal)")
    if np.ptp(y) == 0:
        raise ModelError("the outcome has no variation in this sample (all values equal)")
    if cluster is not None:
        return _fit_clustered(y, x, year, cluster)
    fit = ols(y, X)
    b = float(fit.beta[1])
    s2 = float(fit.resid @ fit.resid) / (n - k)
    var = s2 * float(fit.xtx_inv[1, 1])
    df = n - k
    se = float(np.sqrt(var)) if var > 0 else float("nan")
    t = b / se if se > 0 else float("nan")
    p = float(2 * stats.t.sf(abs(t), df)) if np.isfinite(t) else float("nan")
    return SlopeFit(estimate=b, std_error=se, statistic=t, p_value=p, n_obs=n)


def _fit_clustered(y: np.ndarray, x: np.ndarray, year: np.ndarray | None, cluster: np.ndarray) -> SlopeFit:
    """Clustered fit through the package's fixed-effects engine (year effects absorbed).

    ``convention="areg"`` (every parameter counted) gives CR1 (``G/(G-1)·(N-1)/(N-K)``) with a t(G-1) reference, the same
    numbers as statsmodels ``OLS(...).fit(cov_type="cluster", use_t=True)`` with year dummies.
    """
    from ojpanel.models.fe import fit_panel

    n = len(y)
    cl = factorize(np.asarray(cluster).astype(str))
    if int(cl.max()) + 1 < 2:
        raise ModelError("clustered standard errors need at least 2 clusters")
    data = {"y": y, "x": x, "const": np.ones(n), "entity": np.arange(n), "year": np.zeros(n) if year is None else year}
    res = fit_panel(
        data, "y", ["x"] if year is not None else ["const", "x"], entity="entity", time="year",
        entity_effects=False, time_effects=year is not None, cov="clustered", cluster=cl,
        convention="areg",
    )
    b = float(res.params["x"])
    var = float(res.cov.loc["x", "x"])
    # Few clusters can leave (numerically) no clustered variance; report it as not estimable.
    se = float(np.sqrt(var)) if var > 1e-14 * max(1.0, b * b) else float("nan")
    t = b / se if np.isfinite(se) and se > 0 else float("nan")
    p = float(2 * stats.t.sf(abs(t), int(cl.max()))) if np.isfinite(t) else float("nan")
    return SlopeFit(estimate=b, std_error=se, statistic=t, p_value=p, n_obs=int(res.nobs))


def one_way_anova(y: np.ndarray, groups: np.ndarray) -> AnovaFit:
    """One-way ANOVA of ``y`` on ``groups`` (closed form; equals ``scipy.stats.f_oneway``).

    Raises
    ------
    ModelError
        With fewer than two groups or no within-group degrees of freedom.
    """
    y = np.asarray(y, dtype=float)
    codes = factorize(groups)
    g = int(codes.max()) + 1 if len(y) else 0
    n = len(y)
    if g < 2:
        raise ModelError("ANOVA needs at least two groups with data")
    if n - g < 1:
        raise ModelError("ANOVA needs more observations than groups")
    counts = np.bincount(codes, minlength=g).astype(float)
    means = np.bincount(codes, y, minlength=g) / counts
    grand = y.mean()
    ssb = float(np.sum(counts * (means - grand) ** 2))
    ssw = float(np.sum((y - means[codes]) ** 2))
    sst = ssb + ssw
    if ssw == 0:
        f = float("inf") if ssb > 0 else float("nan")
    else:
        f = (ssb / (g - 1)) / (ssw / (n - g))
    p = float(stats.f.sf(f, g - 1, n - g)) if np.isfinite(f) else (0.0 if f == np.inf else float("nan"))
    eta = ssb / sst if sst > 0 else float("nan")
    return AnovaFit(f_value=f, p_value=p, eta_squared=eta, n_obs=n, n_groups=g)


def mean_test(d: np.ndarray, *, cluster: np.ndarray | None = None) -> SlopeFit:
    """Mean of ``d`` with a t test against zero (intercept-only OLS; clustered when asked)."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n < 2:
        raise ModelError(f"only {n} observation(s) for a mean and its standard error")
    m = float(d.mean())
    if cluster is None:
        se = float(d.std(ddof=1) / np.sqrt(n))
        df = n - 1
    else:
        # CR1 of the intercept-only regression ((N-1)/(N-k) = 1 with one parameter)
        cov, g = cr1(np.ones((n, 1)), d - m, np.array([[1.0 / n]]), cluster)
        se = float(np.sqrt(cov[0, 0]))
        df = g - 1
    t = m / se if se > 0 else float("nan")
    p = float(2 * stats.t.sf(abs(t), df)) if np.isfinite(t) else float("nan")
    return SlopeFit(estimate=m, std_error=se, statistic=t, p_value=p, n_obs=n)
