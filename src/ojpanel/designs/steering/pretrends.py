"""Pre-trend tests and Rambachan–Roth sensitivity for an event study with pre-periods.

Given event-time estimates ``beta_e`` (pre-periods ``e < -anticipation - 1``, the reference period
``-1 - anticipation`` normalised to zero and left out, post-periods ``e >= -anticipation``) and their
joint covariance ``V``:

* :func:`pretrend_test` — the placebo estimates of the pre-periods and the joint Wald test
  ``beta_pre' V_pre^{-1} beta_pre ~ chi2(k)`` of "all are zero".
* :func:`honest_sensitivity` — Rambachan & Roth (2023) bounds on the average post-period effect
  ``theta = mean(beta_post - delta_post)`` when the parallel-trends violation ``delta`` is only
  restricted, not assumed away: *relative magnitudes* ``Delta^RM(Mbar)`` (no post-period change in
  the violation larger than ``Mbar`` times the largest pre-period change) and *smoothness*
  ``Delta^SD(M)`` (the violation's slope changes by at most ``M`` per period; ``M = 0`` is a linear
  trend extrapolated from the pre-periods). For each ``M`` the identified set and a robust 95 %
  confidence interval; the *breakdown value* is the smallest ``M`` on the grid whose interval
  contains zero (how large a violation the conclusion "the effect is not zero" survives).

The computation is diff-diff's :class:`diff_diff.HonestDiD` (a maintained implementation; the
test suite checks its identified sets against moderndid's port of the authors' R package and
against closed forms). Its robust intervals are fixed-length (FLCI) for both restrictions,
whereas the R package uses conditional/hybrid tests for ``Delta^RM``; the intervals therefore
agree with R's for smoothness and are close to, not equal to, R's for relative magnitudes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ojpanel.errors import DataError

__all__ = ["pretrend_test", "honest_sensitivity", "breakdown_values", "RM_GRID", "SD_GRID_SCALE"]

#: Default grid of ``Mbar`` for relative magnitudes.
RM_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
#: Smoothness grid: multiples of the average post-period standard error.
SD_GRID_SCALE = (0.0, 0.1, 0.25, 0.5, 1.0)


def pretrend_test(event: pd.DataFrame, vcov: pd.DataFrame, *, reference: int = -1) -> dict[str, object]:
    """Joint Wald test that every pre-period placebo estimate is zero.

    Parameters
    ----------
    event
        ``event_time, estimate, std_error`` rows (the reference period may be present with
        estimate 0; it is left out).
    vcov
        Covariance of the estimates, indexed by event time on both axes.
    reference
        The normalised period (``-1 - anticipation``); pre-periods are the event times below it.

    Returns
    -------
    dict
        ``statistic, df, p_value`` (NaN when there is no pre-period), ``placebo`` (the pre-period
        rows) and ``periods``.
    """
    ev = event.set_index("event_time")
    pre = [int(e) for e in ev.index if e < reference and np.isfinite(ev.loc[e, "std_error"])
           and ev.loc[e, "std_error"] > 0]
    placebo = ev.loc[pre].reset_index() if pre else ev.iloc[:0].reset_index()
    if not pre:
        return {"statistic": float("nan"), "df": 0, "p_value": float("nan"), "placebo": placebo, "periods": []}
    b = ev.loc[pre, "estimate"].to_numpy(float)
    V = vcov.loc[pre, pre].to_numpy(float)
    # pinv: the placebo covariance can be singular when pre-periods share all their units
    stat = float(b @ np.linalg.pinv(V) @ b)
    k = int(np.linalg.matrix_rank(V))
    return {"statistic": stat, "df": k, "p_value": float(stats.chi2.sf(stat, k)), "placebo": placebo,
            "periods": pre}


def _mp_results(event: pd.DataFrame, vcov: pd.DataFrame, pre: Sequence[int], post: Sequence[int],
                reference: int, alpha: float):
    """The event study as a diff-diff ``MultiPeriodDiDResults`` (the input HonestDiD reads)."""
    from diff_diff.results import MultiPeriodDiDResults, PeriodEffect

    ev = event.set_index("event_time")
    keep = list(pre) + list(post)
    eff = {}
    for e in keep:
        b, s = float(ev.loc[e, "estimate"]), float(ev.loc[e, "std_error"])
        z = stats.norm.ppf(1 - alpha / 2)
        eff[e] = PeriodEffect(period=e, effect=b, se=s, t_stat=b / s, p_value=float(2 * stats.norm.sf(abs(b / s))),
                              conf_int=(b - z * s, b + z * s))
    post_b = ev.loc[list(post), "estimate"].to_numpy(float)
    return MultiPeriodDiDResults(
        period_effects=eff, avg_att=float(post_b.mean()), avg_se=float("nan"), avg_t_stat=float("nan"),
        avg_p_value=float("nan"), avg_conf_int=(float("nan"), float("nan")), n_obs=0, n_treated=0, n_control=0,
        pre_periods=list(pre), post_periods=list(post), alpha=alpha,
        vcov=vcov.loc[keep, keep].to_numpy(float), reference_period=reference,
        interaction_indices={e: k for k, e in enumerate(keep)},
    )


def honest_sensitivity(
    event: pd.DataFrame,
    vcov: pd.DataFrame,
    *,
    reference: int = -1,
    rm_grid: Sequence[float] = RM_GRID,
    sd_grid: Sequence[float] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Rambachan–Roth identified sets and robust CIs for the average post-period effect.

    Parameters
    ----------
    event, vcov, reference
        As in :func:`pretrend_test`; post-periods are the event times above ``reference``.
    rm_grid
        ``Mbar`` values for relative magnitudes.
    sd_grid
        ``M`` values for smoothness (default: :data:`SD_GRID_SCALE` times the mean post-period SE,
        in the outcome's units per period²).
    alpha
        1 − confidence level.

    Returns
    -------
    pandas.DataFrame
        ``restriction`` (``relative_magnitude``/``smoothness``), ``M``, ``lb, ub`` (identified
        set; NaN and ``empty_set`` when the pre-period estimates themselves violate the
        restriction at this ``M``), ``ci_lower, ci_upper`` (robust CI), ``ci_method``,
        ``excludes_zero``, plus one ``original`` row with the ordinary CI of the average post
        effect.

    Raises
    ------
    DataError
        Without a pre-period or a post-period with a finite SE.
    """
    from diff_diff.honest_did import HonestDiD

    ev = event.set_index("event_time")
    fin = [int(e) for e in ev.index if np.isfinite(ev.loc[e, "std_error"]) and ev.loc[e, "std_error"] > 0]
    pre = sorted(e for e in fin if e < reference)
    post = sorted(e for e in fin if e > reference)
    # HonestDiD builds its restrictions positionally: keep the pre-periods adjacent to the reference
    pre = [e for e in pre if all(k in pre for k in range(e, reference))]
    post = [e for e in post if all(k in post for k in range(reference + 1, e + 1))]
    if not pre or not post:
        raise DataError(
            "Rambachan–Roth bounds need at least one pre-period and one post-period estimate with a "
            f"standard error next to the reference period {reference}; got pre {pre}, post {post}"
        )
    res = _mp_results(event, vcov, pre, post, reference, alpha)
    post_se = float(ev.loc[post, "std_error"].mean())
    grid_sd = list(sd_grid) if sd_grid is not None else [round(s * post_se, 10) for s in SD_GRID_SCALE]
    rows = []
    w = np.full(len(post), 1.0 / len(post))
    b_post = ev.loc[post, "estimate"].to_numpy(float)
    Vp = vcov.loc[post, post].to_numpy(float)
    est, se = float(w @ b_post), float(np.sqrt(w @ Vp @ w))
    z = stats.norm.ppf(1 - alpha / 2)
    rows.append({"restriction": "original", "M": np.nan, "lb": est, "ub": est, "ci_lower": est - z * se,
                 "ci_upper": est + z * se, "ci_method": "normal"})
    with warnings.catch_warnings():
        # diff-diff warns about its own numerical choices; the table records the CI method
        warnings.simplefilter("ignore")
        for method, grid in (("relative_magnitude", rm_grid), ("smoothness", grid_sd)):
            for M in grid:
                h = HonestDiD(method=method, M=float(M), alpha=alpha).fit(res)
                rows.append({"restriction": method, "M": float(M), "lb": float(h.lb), "ub": float(h.ub),
                             "ci_lower": float(h.ci_lb), "ci_upper": float(h.ci_ub), "ci_method": str(h.ci_method)})
    out = pd.DataFrame(rows)
    # an empty identified set: the pre-period estimates themselves violate the restriction at this M
    out["empty_set"] = out["lb"].isna() & out["ub"].isna()
    out["excludes_zero"] = (out["ci_lower"] > 0) | (out["ci_upper"] < 0)
    out.attrs.update({"pre_periods": pre, "post_periods": post, "target": "average post-period effect"})
    return out


def breakdown_values(sensitivity: pd.DataFrame) -> dict[str, float]:
    """Smallest ``M`` on each restriction's grid whose robust CI contains zero.

    ``nan`` when the original CI already contains zero (nothing to break down); ``inf`` when no
    grid value reaches zero (the conclusion survives the whole grid).
    """
    out = {}
    orig = sensitivity[sensitivity["restriction"] == "original"]
    for method in ("relative_magnitude", "smoothness"):
        sub = sensitivity[sensitivity["restriction"] == method].sort_values("M")
        if len(orig) and not bool(orig["excludes_zero"].iloc[0]):
            out[method] = float("nan")
        elif sub.empty:
            out[method] = float("nan")
        else:
            hit = sub[~sub["excludes_zero"]]
            out[method] = float(hit["M"].iloc[0]) if len(hit) else float("inf")
    return out
