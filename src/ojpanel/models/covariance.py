"""Covariance estimators and small-sample conventions for fixed-effects regressions.

Four types of standard error are offered — ``"unadjusted"``, ``"robust"`` (heteroskedasticity
robust), ``"clustered"`` (one cluster variable: municipality, county, …), ``"twoway"`` (two cluster
variables, Cameron–Gelbach–Miller ``V1 + V2 − V12``) — plus ``"crv3"`` (leave-one-cluster-out
jackknife). The *same* point estimates get different standard errors and p-values in different
packages because they scale the covariance and choose the reference distribution differently.
The ``convention`` argument says whose rules you get. With ``n`` observations, ``k`` regressors,
``G`` clusters and ``d`` fixed-effect parameters:

================ ====================================================== ============================
convention       covariance scale                                       reference distribution
================ ====================================================== ============================
``linearmodels`` ``n/(n−d−k)`` (PanelOLS ``debiased=True``; ``d`` = the t with ``n−k−d_lm`` df
                 effects as PanelOLS counts them, ``Σ levels − (F−1)``
                 for ``F`` factors, even when effects are redundant;
                 ``d = 0`` for clustered SEs when the only effect is
                 nested in every cluster variable)
``stata``        clustered: ``G/(G−1)·(n−1)/(n−d−k)`` (``xtreg, fe``;   t with ``G−1`` df
                 linearmodels ``group_debias=True``); otherwise as
                 ``linearmodels``
``pyfixest``     clustered: ``G/(G−1)·(n−1)/(n−k_fe)`` with fixest's    t with ``G−1`` df
                 count ``k_fe = k + Σ levels − (F−1)`` minus the levels  (``n−k_fe`` unclustered)
                 of effects nested in a cluster variable (+1 each);
                 ``n/(n−k_fe)``; two-way: ``G_min`` in every term
``statsmodels``  OLS with explicit dummies: ``k_all = k + rank(FE)``;   normal for robust and
                 clustered ``G/(G−1)·(n−1)/(n−k_all)`` (two-way: each    clustered (``use_t=False``,
                 term with its own ``G``); HC1 ``n/(n−k_all)``;          the default); t with
                 unadjusted ``1/(n−k_all)``                              ``n−k_all`` df unadjusted
``none``         no small-sample scaling (``e'e/n``, raw sandwich)        standard normal
================ ====================================================== ============================

CRV3 (``cov_type="crv3"``) is ``(G−1)/G · Σ_g (β̂_{−g} − β̂)(β̂_{−g} − β̂)'`` (MacKinnon, Nielsen
and Webb 2023; as in ``wildboottest``), with ``G−1`` df; under ``convention="pyfixest"`` the sum is
scaled by pyfixest's CRV1 factor instead, as pyfixest does; leaving a cluster out of the *demeaned* data is
exact when the fixed effects are nested in the clusters.

The default of :func:`ojpanel.models.fe.fit_panel` is ``"linearmodels"``, so that numbers agree with
``linearmodels.PanelOLS(...).fit(cov_type=...)`` (version 7.1 defaults). The reference tests
(``tests/reference/make_fe_reference.py``) store statsmodels and pyfixest values for every row of
this table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ojpanel.errors import ModelError, ParameterError
from ojpanel.models.within import factorize, indicator_matrix

__all__ = ["COV_TYPES", "CONVENTIONS", "CovarianceResult", "batch_covariance", "is_nested"]

COV_TYPES = ("unadjusted", "robust", "clustered", "twoway", "crv3")
CONVENTIONS = ("linearmodels", "stata", "pyfixest", "statsmodels", "none")


@dataclass(frozen=True)
class CovarianceResult:
    """Stacked covariances ``(B, k, k)``, residual df ``(B,)`` (``inf`` = normal) and cluster counts."""

    cov: np.ndarray
    df: np.ndarray
    n_clusters: np.ndarray | None
    scale: np.ndarray


def is_nested(inner: np.ndarray, outer: np.ndarray, mask: np.ndarray | None = None) -> bool:
    """Whether every level of ``inner`` lies in one level of ``outer`` (within ``mask``)."""
    a = factorize(inner)
    b = factorize(outer)
    if mask is not None:
        a, b = a[mask], b[mask]
    if a.size == 0:
        return True
    pairs = a * (int(b.max()) + 1) + b
    return np.unique(pairs).size == np.unique(a).size


def _cluster_meat(
    scores: np.ndarray, codes: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    B, n, k = scores.shape
    D = indicator_matrix(codes)
    flat = scores.transpose(1, 0, 2).reshape(n, B * k)
    sums = np.asarray(D.T @ flat).reshape(-1, B, k).transpose(1, 0, 2)  # (B, G, k)
    meat = np.einsum("bgk,bgl->bkl", sums, sums)
    g = (np.asarray(D.T @ mask.T.astype(float)) > 0).sum(0)
    return meat, g


def batch_covariance(
    X: np.ndarray,
    y: np.ndarray,
    beta: np.ndarray,
    resid: np.ndarray,
    xtx_inv: np.ndarray,
    mask: np.ndarray,
    *,
    cov_type: str = "clustered",
    clusters: Sequence[np.ndarray] = (),
    convention: str = "linearmodels",
    factors: Sequence[np.ndarray] = (),
    fe_rank: np.ndarray | None = None,
    levels: np.ndarray | None = None,
) -> CovarianceResult:
    """Covariance of stacked fits under a small-sample convention (see the module table).

    Parameters
    ----------
    X, y, beta, resid, xtx_inv, mask
        Residualised regressors ``(B, n, k)`` and outcome ``(B, n)``, coefficients ``(B, k)``,
        residuals ``(B, n)``, ``(X'X)^{-1}`` ``(B, k, k)`` and sample mask ``(B, n)``.
    cov_type
        One of :data:`COV_TYPES`.
    clusters
        Cluster code arrays of length ``n``: one for ``"clustered"``/``"crv3"``, two for
        ``"twoway"``.
    convention
        One of :data:`CONVENTIONS`.
    factors, fe_rank, levels
        Fixed-effect factors, the rank of their dummies per member and the number of levels
        present per member and factor (from :func:`ojpanel.models.within.absorb_batch`).
    """
    if cov_type not in COV_TYPES:
        raise ParameterError(f"cov_type must be one of {COV_TYPES}; got {cov_type!r}")
    if convention not in CONVENTIONS:
        raise ParameterError(f"convention must be one of {CONVENTIONS}; got {convention!r}")
    need = {"clustered": 1, "crv3": 1, "twoway": 2}.get(cov_type, 0)
    if len(clusters) != need:
        raise ParameterError(
            f"cov_type={cov_type!r} needs {need} cluster variable(s); got {len(clusters)}"
        )
    B, n_rows, k = X.shape
    mask = np.asarray(mask, dtype=bool)
    n = mask.sum(1).astype(float)
    F = len(factors)
    fe_rank = np.zeros(B) if fe_rank is None else np.asarray(fe_rank, dtype=float)
    levels = np.zeros((B, F)) if levels is None else np.asarray(levels, dtype=float)
    # PanelOLS's count, Σ levels − (F − 1), extended to any number of effects; it ignores
    # redundancies (municipality effects nested in county×year cells' counties, year given
    # county×year) and so can exceed the rank — "statsmodels" uses the exact rank
    lm_count = levels.sum(1) - max(F - 1, 0) if F else np.zeros(B)
    fixest_kfe = levels.sum(1) - max(F - 1, 0) if F else np.zeros(B)  # fixest: Σ levels − (F − 1)
    codes = [factorize(c) for c in clusters]

    # nested[b, j, c]: effect j nested in cluster variable c in member b's sample
    nest3 = np.zeros((B, F, max(len(codes), 1)), dtype=bool)
    if codes and F:
        for b in range(B):
            for j, f in enumerate(factors):
                for c, cc in enumerate(codes):
                    nest3[b, j, c] = is_nested(f, cc, mask[b])
    nested = nest3.all(2) if codes else nest3[:, :, 0]  # linearmodels: nested in every variable
    nested_any = nest3.any(2)  # fixest: nested in one of the variables

    e = resid
    scores = X * e[:, :, None]
    df = np.full(B, np.inf)
    if cov_type == "unadjusted":
        ss = np.einsum("bn,bn->b", e, e)
        denom = {
            "linearmodels": n - lm_count - k,
            "stata": n - lm_count - k,
            "pyfixest": n - k - fixest_kfe,
            "statsmodels": n - k - fe_rank,
            "none": n,
        }[convention]
        _check_df(denom)
        s2 = ss / denom
        cov = xtx_inv * s2[:, None, None]
        scale = n / denom
        if convention != "none":
            df = denom.copy()
        return CovarianceResult(_sym(cov), df, None, scale)

    if cov_type == "robust":
        meat = np.einsum("bnk,bnl->bkl", scores, scores)
        denom = {
            "linearmodels": n - lm_count - k,
            "stata": n - lm_count - k,
            "pyfixest": n - k - fixest_kfe,
            "statsmodels": n - k - fe_rank,
            "none": n,
        }[convention]
        _check_df(denom)
        scale = n / denom
        cov = xtx_inv @ meat @ xtx_inv * scale[:, None, None]
        if convention not in ("none", "statsmodels"):
            df = denom.copy()
        return CovarianceResult(_sym(cov), df, None, scale)

    # clustered / two-way
    if cov_type in ("clustered", "crv3"):
        meat, g = _cluster_meat(scores, codes[0], mask)
        Gs = [g.astype(float)]
        parts = [meat]
    else:
        m0, g0 = _cluster_meat(scores, codes[0], mask)
        m1, g1 = _cluster_meat(scores, codes[1], mask)
        inter = factorize(codes[0] * (int(codes[1].max()) + 1) + codes[1])
        m01, g01 = _cluster_meat(scores, inter, mask)
        Gs = [g0.astype(float), g1.astype(float), g01.astype(float)]
        parts = [m0, m1, -m01]
    Gmin = np.min(np.stack(Gs[:2] if len(Gs) > 1 else Gs), axis=0)
    if cov_type == "crv3":
        pyfixest_scale = _pyfixest_cluster_scale(n, k, levels, nested_any, fixest_kfe, Gs[0])
        c = codes[0]
        D = indicator_matrix(c)
        Gn = D.shape[1]
        xtx = np.einsum("bnk,bnl->bkl", X, X)
        xty = np.einsum("bnk,bn->bk", X, y)
        outer = X[:, :, :, None] * X[:, :, None, :]
        flat = outer.transpose(1, 0, 2, 3).reshape(n_rows, -1)
        xgxg = np.asarray(D.T @ flat).reshape(Gn, B, k, k).transpose(1, 0, 2, 3)
        xy = (X * y[:, :, None]).transpose(1, 0, 2).reshape(n_rows, -1)
        xgyg = np.asarray(D.T @ xy).reshape(Gn, B, k).transpose(1, 0, 2)
        present = (np.asarray(D.T @ mask.T.astype(float)) > 0).T  # (B, G)
        lhs = xtx[:, None] - xgxg
        rhs = xty[:, None] - xgyg
        bj = np.einsum("bgkl,bgl->bgk", np.linalg.pinv(lhs), rhs)
        dev = (bj - beta[:, None, :]) * present[:, :, None]
        Gb = present.sum(1).astype(float)
        # pyfixest scales the jackknife by its CRV1 factor; the textbook CRV3 uses (G−1)/G
        scale = pyfixest_scale if convention == "pyfixest" else (Gb - 1) / Gb
        cov = np.einsum("bgk,bgl->bkl", dev, dev) * scale[:, None, None]
        return CovarianceResult(_sym(cov), Gb - 1, Gb, scale)

    if np.any(Gmin < 2):
        raise ModelError("clustered standard errors need at least two clusters in the sample")
    single_nested = (F == 1) & nested.all(1) if F else np.zeros(B, dtype=bool)
    d_lm = np.where(single_nested, 0.0, lm_count)
    if convention == "linearmodels":
        denom = n - d_lm - k
        _check_df(denom)
        total = sum(parts) * (n / denom)[:, None, None]
        scale = n / denom
        df = n - k - lm_count
    elif convention == "stata":
        denom = n - d_lm - k
        _check_df(denom)
        gd = [(g / (g - 1)) * ((n - 1) / n) for g in Gs]
        total = sum(p * c[:, None, None] for p, c in zip(parts, gd, strict=True))
        total = total * (n / denom)[:, None, None]
        scale = gd[0] * n / denom
        df = Gmin - 1
    elif convention == "pyfixest":
        # fixest: effects nested in the clusters are not counted (one parameter kept for each)
        scale = _pyfixest_cluster_scale(n, k, levels, nested_any, fixest_kfe, Gmin)
        total = sum(parts) * scale[:, None, None]
        df = Gmin - 1
    elif convention == "statsmodels":
        denom = n - k - fe_rank
        _check_df(denom)
        gd = [g / (g - 1) for g in Gs]
        total = sum(p * c[:, None, None] for p, c in zip(parts, gd, strict=True))
        total = total * ((n - 1) / denom)[:, None, None]
        scale = gd[0] * (n - 1) / denom
        df = np.full(B, np.inf)  # statsmodels' default (use_t=False) for robust covariances
    else:
        total = sum(parts)
        scale = np.ones(B)
    cov = xtx_inv @ total @ xtx_inv
    return CovarianceResult(_sym(cov), df, Gs[0] if len(Gs) == 1 else Gmin, scale)


def _pyfixest_cluster_scale(n, k, levels, nested, fixest_kfe, G) -> np.ndarray:
    # fixest: effects nested in the clusters are not counted (one parameter kept for each)
    nested_levels = (levels * nested).sum(1)
    n_nested = nested.sum(1)
    kfe = k + fixest_kfe - np.where(nested_levels > 0, nested_levels - n_nested, 0.0)
    denom = n - kfe
    _check_df(denom)
    return (n - 1) / denom * G / (G - 1)


def _sym(c: np.ndarray) -> np.ndarray:
    return (c + np.swapaxes(c, -1, -2)) / 2


def _check_df(denom: np.ndarray) -> None:
    if np.any(denom <= 0):
        raise ModelError(
            "no residual degrees of freedom left after the regressors and fixed effects; "
            "use fewer effects or more observations"
        )
