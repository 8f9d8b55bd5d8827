"""Multiple-testing corrections across indicators: Holm, Benjamini–Hochberg, Romano–Wolf.

Holm (family-wise error) and Benjamini–Hochberg (false discovery rate) give the same adjusted
p-values as ``statsmodels.stats.multitest.multipletests(method="holm" / "fdr_bh")``; missing
p-values are left missing and excluded from the family. Romano–Wolf's stepdown (Romano and Wolf
2005, 2016; the algorithm of Clarke, Romano and Wolf 2020, Stata ``rwolf``) uses the joint
bootstrap distribution of the t statistics, so it gains power when indicators are correlated;
feed it the output of :func:`ojpanel.inference.bootstrap.wild_bootstrap_tstats`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ojpanel.errors import ParameterError

__all__ = ["holm", "benjamini_hochberg", "romano_wolf", "adjust"]


def _clean(p) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=float).ravel()
    ok = np.isfinite(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ParameterError("p-values must lie in [0, 1]")
    return p, ok


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN)."""
    p, ok = _clean(pvalues)
    out = np.full_like(p, np.nan)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="mergesort")
    adj = np.maximum.accumulate((m - np.arange(m)) * q[order])
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini–Hochberg step-up adjusted p-values (NaN stays NaN)."""
    p, ok = _clean(pvalues)
    out = np.full_like(p, np.nan)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="mergesort")[::-1]
    ranks = m - np.arange(m)  # rank of each sorted (descending) value
    adj = np.minimum.accumulate(q[order] * m / ranks)
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def romano_wolf(t_obs, t_boot) -> np.ndarray:
    """Romano–Wolf stepdown adjusted p-values from observed and null bootstrap t statistics.

    Parameters
    ----------
    t_obs
        ``(K,)`` observed t statistics.
    t_boot
        ``(B, K)`` bootstrap t statistics drawn under the null (e.g. restricted wild bootstrap).

    Returns
    -------
    numpy.ndarray
        ``(K,)`` adjusted p-values: for the hypotheses ordered by decreasing ``|t|``, step ``s``
        compares ``|t_(s)|`` with the maximum of ``|t*|`` over the hypotheses not yet rejected,
        ``p_s = (1 + #{max* ≥ |t_(s)|}) / (B + 1)``, made monotone by a running maximum.
    """
    t = np.abs(np.asarray(t_obs, float).ravel())
    tb = np.abs(np.asarray(t_boot, float))
    if tb.ndim != 2 or tb.shape[1] != t.size:
        raise ParameterError(f"t_boot must be (B, {t.size}); got {tb.shape}")
    if not (np.isfinite(t).all() and np.isfinite(tb).all()):
        raise ParameterError("Romano–Wolf needs finite t statistics; drop failed fits first")
    B = tb.shape[0]
    order = np.argsort(-t, kind="mergesort")
    # max over the columns still in the family at each step = reverse cumulative max
    tail_max = np.maximum.accumulate(tb[:, order][:, ::-1], axis=1)[:, ::-1]
    counts = (tail_max >= t[order][None, :]).sum(0)
    p_step = np.minimum(1.0, (counts + 1) / (B + 1))
    p_step = np.maximum.accumulate(p_step)
    out = np.empty_like(t)
    out[order] = p_step
    return out


def adjust(
    frame: pd.DataFrame,
    method: str = "holm",
    *,
    p_col: str = "p_value",
    by: list[str] | None = None,
) -> pd.DataFrame:
    """Add ``p_adjusted`` (and ``adjustment``) to a tidy table, within families defined by ``by``.

    ``method`` is ``"holm"`` or ``"bh"``; Romano–Wolf needs bootstrap draws (see
    :func:`romano_wolf`).
    """
    funcs = {"holm": holm, "bh": benjamini_hochberg}
    if method not in funcs:
        raise ParameterError(f"method must be one of {sorted(funcs)}; got {method!r}")
    out = frame.copy()
    if by:
        out["p_adjusted"] = out.groupby(by, dropna=False, observed=True, group_keys=False)[
            p_col
        ].transform(lambda s: pd.Series(funcs[method](s.to_numpy(dtype=float)), index=s.index))
    else:
        out["p_adjusted"] = funcs[method](out[p_col].to_numpy(dtype=float))
    out["adjustment"] = method
    return out
