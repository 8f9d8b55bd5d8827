"""Funnel plots and shrinkage, so that small municipalities' noisy shares are not read as signal.

Two sources of precision:

* respondent counts ``n`` (user surveys): exact binomial control limits (Spiegelhalter 2005,
  with the interpolation that makes the limits continuous in ``n``) and beta-binomial empirical
  Bayes shrinkage;
* no counts: each municipality's noise standard error is estimated from its own year-to-year
  variation (:func:`noise_se_from_changes`), then normal limits and normal–normal shrinkage.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.core.style import (
    WORDS,
    label_points,
    new_figure,
    save_figure,
    source_note,
    style,
    wrap,
)
from ojpanel.errors import DataError

__all__ = [
    "binomial_limits",
    "normal_limits",
    "noise_se_from_changes",
    "shrink_beta_binomial",
    "shrink_normal",
    "funnel_plot",
]


def binomial_limits(target: float, n: np.ndarray | float, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial funnel limits for a proportion ``target`` (0–1) at sample sizes ``n``.

    The lower limit at coverage ``level`` is the interpolated ``(1-level)/2`` quantile of
    ``Binomial(n, target)/n``: with ``r`` the smallest count whose CDF reaches the tail
    probability ``q``, the limit is ``(r - a)/n`` where
    ``a = (F(r) - q) / (F(r) - F(r-1))``; the upper limit uses ``1 - q`` symmetrically.
    """
    if not 0 < target < 1:
        raise DataError(f"binomial funnel limits need a target strictly between 0 and 1, got {target}")
    n = np.asarray(n, dtype=float)
    if (n <= 0).any():
        raise DataError("sample sizes n must be positive")
    out = []
    for q in ((1 - level) / 2, 1 - (1 - level) / 2):
        r = stats.binom.ppf(q, n, target)
        f_r = stats.binom.cdf(r, n, target)
        f_rm1 = stats.binom.cdf(r - 1, n, target)
        a = np.where(f_r > f_rm1, (f_r - q) / (f_r - f_rm1), 0.0)
        out.append(np.clip((r - a) / n, 0.0, 1.0))
    return out[0], out[1]


def normal_limits(target: float, se: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """``target ± z·se`` with ``z`` the normal quantile for two-sided coverage ``level``."""
    z = stats.norm.ppf(1 - (1 - level) / 2)
    se = np.asarray(se, dtype=float)
    return target - z * se, target + z * se


def noise_se_from_changes(values: np.ndarray) -> np.ndarray:
    """Noise SE per unit from year-to-year changes: ``sd(Δx) / √2`` over the unit's years.

    ``values`` has shape ``(units, years)``. If the true level moves slowly and yearly noise is
    independent with variance σ², then Var(Δx) ≈ 2σ². Units with fewer than three years of data
    get NaN (no usable estimate).
    """
    v = np.asarray(values, dtype=float)
    d = np.diff(v, axis=1)
    cnt = (~np.isnan(d)).sum(axis=1)
    safe = np.maximum(cnt, 1)
    mean = np.nansum(d, axis=1) / safe
    ss = np.nansum((d - mean[:, None]) ** 2, axis=1)
    sd = np.sqrt(ss / np.maximum(cnt - 1, 1))
    return np.where(cnt >= 2, sd / np.sqrt(2), np.nan)


def shrink_beta_binomial(successes: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Empirical Bayes posterior means of proportions under a Beta(a, b) prior fitted by moments.

    The prior mean is the pooled proportion; the between-unit variance is the observed variance of
    the raw proportions minus their average binomial variance (floored at a small positive
    value). Returns ``(posterior means, a, b)``.
    """
    x = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    p = x / n
    m = x.sum() / n.sum()
    binom_var = np.mean(m * (1 - m) / n)
    tau2 = max(np.var(p, ddof=1) - binom_var, 1e-8)
    s = m * (1 - m) / tau2 - 1  # a + b
    if s <= 0:
        raise DataError("the proportions vary more than any beta prior allows; check the counts")
    a, b = m * s, (1 - m) * s
    return (x + a) / (n + a + b), float(a), float(b)


def shrink_normal(values: np.ndarray, se: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Normal–normal empirical Bayes: shrink each value toward the precision-weighted mean.

    ``tau²`` (true between-unit variance) is estimated by moments; each estimate moves toward the
    mean by the factor ``se²/(se² + tau²)``. Units with a missing SE are returned unchanged.
    Returns ``(shrunk values, mean, tau²)``.
    """
    y = np.asarray(values, dtype=float)
    s2 = np.asarray(se, dtype=float) ** 2
    ok = ~np.isnan(y) & ~np.isnan(s2)
    if ok.sum() < 3:
        raise DataError("shrinkage needs at least three units with a value and a standard error")
    tau2 = max(np.var(y[ok], ddof=1) - np.mean(s2[ok]), 1e-12)
    w = 1 / (s2[ok] + tau2)
    mu = float(np.sum(w * y[ok]) / np.sum(w))
    out = y.copy()
    out[ok] = mu + (tau2 / (tau2 + s2[ok])) * (y[ok] - mu)
    return out, mu, float(tau2)


def funnel_plot(
    values: np.ndarray,
    precision: np.ndarray,
    *,
    kind: str = "binomial",
    target: float | None = None,
    levels: Sequence[float] = (0.95, 0.998),
    labels: Sequence[str] | None = None,
    title: str = "",
    ylabel: str = "Andel (0–1)",
    path: Path | str | None = None,
):
    """Funnel plot: values against precision with control limits.

    Parameters
    ----------
    values
        Proportions in 0–1 (``kind="binomial"``) or any values (``kind="normal"``).
    precision
        Sample sizes ``n`` (binomial) or standard errors (normal).
    target
        Centre line (default: the pooled proportion or the precision-weighted mean).
    labels
        Unit labels (municipality names); the most extreme units outside the widest limits are
        named where a label fits without overlapping another.
    ylabel
        The values' unit, for the y axis.
    path
        Where to save the figure (PNG and SVG), if given.

    Returns
    -------
    (matplotlib.figure.Figure, pandas.DataFrame)
        The figure and a table with each unit's value, precision, limits and flag.
    """
    v = np.asarray(values, dtype=float)
    pr = np.asarray(precision, dtype=float)
    ok = ~np.isnan(v) & ~np.isnan(pr) & (pr > 0)
    v, pr = v[ok], pr[ok]
    lab = np.asarray(labels)[ok] if labels is not None else np.arange(len(v)).astype(str)
    if kind == "binomial":
        centre = target if target is not None else float(np.sum(v * pr) / np.sum(pr))
        grid = np.linspace(pr.min(), pr.max(), 200)
        lim = {lv: binomial_limits(centre, grid, lv) for lv in levels}
        unit = {lv: binomial_limits(centre, pr, lv) for lv in levels}
        x_grid, x_units, xlabel = grid, pr, WORDS["respondents"]
    elif kind == "normal":
        w = 1 / pr**2
        centre = target if target is not None else float(np.sum(w * v) / np.sum(w))
        grid = np.linspace(pr.min(), pr.max(), 200)
        lim = {lv: normal_limits(centre, grid, lv) for lv in levels}
        unit = {lv: normal_limits(centre, pr, lv) for lv in levels}
        x_grid, x_units, xlabel = 1 / grid, 1 / pr, WORDS["precision"]
    else:
        raise DataError(f"kind must be 'binomial' or 'normal', got {kind!r}")
    widest = max(levels)
    lo, hi = unit[widest]
    flag = np.where(v < lo, "below", np.where(v > hi, "above", "within"))
    with style():
        fig, ax = new_figure(size=(6.5, 4.4))
        ax.scatter(x_units, v, s=12, c=np.where(flag == "within", "0.55", "C1"), zorder=3,
                   linewidths=0)
        for lv, ls in zip(sorted(levels), ("--", ":", "-."), strict=False):
            ax.plot(x_grid, lim[lv][0], color="0.2", ls=ls, lw=0.8,
                    label=f"{lv:.1%} {WORDS['limits']}".replace(".", ","))
            ax.plot(x_grid, lim[lv][1], color="0.2", ls=ls, lw=0.8)
        ax.axhline(centre, color="C0", lw=1, label=f"Referensvärde: {centre:.3g}".replace(".", ","))
        # Name the most extreme units outside the limits, where a name fits.
        half_width = np.maximum((hi - lo) / 2, 1e-12)
        extremity = np.where(flag == "within", -np.inf, np.abs(v - centre) / half_width)
        top = np.argsort(-extremity)[: min(12, int((flag != "within").sum()))]
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(wrap(title, 70), loc="left")
        ax.legend(loc="lower right")
        source_note(fig, PROCESSED_SOURCE_NOTE)
        label_points(ax, x_units[top], v[top], lab[top])
    if path is not None:
        save_figure(fig, path)
    table = pd.DataFrame({"unit": lab, "value": v, "precision": pr, "lower": lo, "upper": hi, "flag": flag})
    return fig, table
