"""Covariance estimators × small-sample conventions, in one registry.

Five estimators (:data:`COVARIANCE`) — ``"unadjusted"``, ``"robust"`` (heteroskedasticity
robust), ``"clustered"`` (one cluster variable: municipality, county, …), ``"twoway"`` (two cluster
variables, Cameron–Gelbach–Miller ``V1 + V2 − V12``) and ``"crv3"`` (leave-one-cluster-out
jackknife) — each combine with one of six small-sample conventions (:data:`CONVENTION`). The same
point estimates get different standard errors and p-values in different packages because they
scale the covariance and choose the reference distribution differently; the convention says whose
rules you get, and each is named after what it reproduces.

Notation: ``n`` observations, ``k`` regressors, ``G`` clusters (``G_min`` the smaller of two),
``F`` absorbed effects with ``L_j`` levels, ``d = Σ L_j − (F − 1)`` the effect parameters as the
packages count them (it ignores redundancies such as year effects given county×year effects),
``r`` the exact rank of the effect dummies, and ``d_nn`` the count without the effects nested in
a cluster variable — ``d − Σ_nested L_j + (number of nested effects)``, i.e. one parameter kept
per nested effect, which plays the constant.

=============== ================================================ ===================== =================================================
convention      clustered (one- and two-way) covariance scale     t reference df        unclustered (unadjusted ``σ² = e'e/(·)``; robust)
=============== ================================================ ===================== =================================================
``linearmodels`` ``n/(n−k−d')``, every two-way term the same;     ``n−k−d``             ``e'e/(n−k−d)``; ``n/(n−k−d)``; df ``n−k−d``
                ``d' = 0`` when the only effect is nested in
                every cluster variable, else ``d``
                (``PanelOLS.fit(debiased=True)``, tested live)
``stata``       ``G/(G−1)·(n−1)/(n−k−d_nn)`` (two-way: ``G_min``  ``G_min−1``             as ``linearmodels`` (``xtreg``/``areg``
                in every term): effects nested in the clusters                          ``vce(robust)`` count every effect)
                are not counted, as ``xtreg, fe vce(cluster)``
                and ``reghdfe`` do (singletons kept, as in
                ``reghdfe, keepsingletons``); equals pyfixest
                with ``fixef_rm="none"`` (tested live)
``areg``        ``G/(G−1)·(n−1)/(n−k−d)``: every absorbed effect  ``G_min−1``             as ``linearmodels``
                counted, as Stata's ``areg, vce(cluster)``;
                equals pyfixest with ``ssc(k_fixef="full")``,
                ``fixef_rm="none"`` (tested live)
``pyfixest``    ``stata`` after dropping singleton observations  ``G_min−1`` (``n−k−d``  as ``linearmodels`` on the non-singleton sample
                (and their levels and clusters) iteratively:      unclustered)
                pyfixest's defaults ``ssc()`` and
                ``fixef_rm="singleton"`` (= reghdfe's defaults;
                tested live)
``statsmodels`` OLS with explicit dummies: ``G/(G−1)·(n−1)/(n−k−r)`` normal (``use_t=False``) ``e'e/(n−k−r)`` (t, ``n−k−r`` df); HC1
                (two-way: each term with its own ``G``)                                 ``n/(n−k−r)`` (normal)
``none``        no scaling (raw sandwich)                          normal                ``e'e/n``; raw sandwich; normal
=============== ================================================ ===================== =================================================

CRV3 is ``(G−1)/G · Σ_g (β̂_{−g} − β̂)(β̂_{−g} − β̂)'`` (MacKinnon, Nielsen and Webb 2023, as in
``wildboottest``) with ``G − 1`` df; under ``convention="pyfixest"`` the sum is scaled by
pyfixest's CRV1 factor instead, as pyfixest does. ``β̂_{−g}`` is the fit without cluster ``g``:
when every effect is nested in the clusters, leaving a cluster out of the demeaned data is exact
(a closed form); otherwise the effects are re-estimated without the cluster (the demeaned data are
projected again on the remaining sample, which equals refitting from the raw data).

A two-way variance ``V1 + V2 − V12`` need not be positive semi-definite; when it is not, a
:class:`~ojpanel.errors.CovarianceWarning` says so (negative variances give NaN standard errors).

The default of :func:`ojpanel.models.fe.fit_panel` is ``"linearmodels"``, so that numbers agree with
``linearmodels.PanelOLS(...).fit(cov_type=...)`` (version 7.1 defaults); the research designs
(:mod:`ojpanel.designs`) use ``"stata"``. ``tests/test_fe_reference.py`` and
``tests/test_fe_conventions.py`` check every row of this table against the package it names.

Extending: a new estimator is a :class:`CovarianceEstimator` subclass added to
:data:`COVARIANCE`; a new convention is a :class:`Convention` subclass added to :data:`CONVENTION`.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np

from ojpanel.errors import CovarianceWarning, ModelError, ParameterError
from ojpanel.models.within import (
    BatchOLS,
    FitData,
    absorb_batch,
    factorize,
    fe_rank,
    indicator_matrix,
    nested_in,
    ols_batch,
)

__all__ = [
    "COVARIANCE",
    "CONVENTION",
    "COV_TYPES",
    "CONVENTIONS",
    "CovarianceResult",
    "CovarianceEstimator",
    "Convention",
    "Counts",
    "covariance",
    "check_options",
    "cluster_sums",
    "cr1",
    "cr1_scale",
]


@dataclass(frozen=True)
class CovarianceResult:
    """Stacked covariances ``(B, k, k)``, reference df ``(B,)`` (``inf`` = normal), cluster
    counts and the scale applied (e.g. the CR1 factor)."""

    cov: np.ndarray
    df: np.ndarray
    n_clusters: np.ndarray | None
    scale: np.ndarray


# ------------------------------------------------------------------------------------------
# What small-sample rules count
# ------------------------------------------------------------------------------------------


class Counts:
    """Observations, regressors, effect levels and nesting in each member's sample.

    Parameters
    ----------
    data
        The prepared data.
    mask
        A sub-sample of ``data.mask`` (e.g. without singletons); default the whole sample.
    """

    def __init__(self, data: FitData, mask: np.ndarray | None = None) -> None:
        self.data = data
        self.own = mask is None
        self.mask = data.mask if mask is None else mask
        self.n = self.mask.sum(1).astype(float)
        self.k = int(data.X.shape[2])
        self.F = len(data.factors)

    @cached_property
    def levels(self) -> np.ndarray:
        """``(B, F)`` levels of each effect present."""
        if self.own:
            return np.asarray(self.data.levels, dtype=float)
        out = np.zeros((self.mask.shape[0], self.F))
        w = self.mask.T.astype(float)
        for j, c in enumerate(self.data.factors):
            out[:, j] = (np.asarray(indicator_matrix(c).T @ w) > 0).sum(0)
        return out

    @property
    def d(self) -> np.ndarray:
        """Effect parameters as the packages count them: ``Σ L_j − (F − 1)``."""
        return self.levels.sum(1) - max(self.F - 1, 0) if self.F else np.zeros(len(self.n))

    @cached_property
    def rank(self) -> np.ndarray:
        """Exact rank of the effect dummies."""
        r = self.data.fe_rank if self.own else fe_rank(self.data.factors, self.mask)
        return np.asarray(r, dtype=float)

    def n_clusters(self, codes: np.ndarray) -> np.ndarray:
        """``(B,)`` clusters present in each sample."""
        return (np.asarray(indicator_matrix(codes).T @ self.mask.T.astype(float)) > 0).sum(0)

    def nested(self, clusters: Sequence[np.ndarray]) -> np.ndarray:
        """``(B, F, C)``: effect ``j`` nested in cluster variable ``c`` in each sample."""
        out = np.zeros((len(self.n), self.F, len(clusters)), dtype=bool)
        for j, f in enumerate(self.data.factors):
            for c, cc in enumerate(clusters):
                out[:, j, c] = nested_in(f, cc, self.mask)
        return out

    def d_nonnested(self, clusters: Sequence[np.ndarray]) -> np.ndarray:
        """``d`` without the effects nested in a cluster variable (one parameter kept for each)."""
        if not self.F:
            return np.zeros(len(self.n))
        nest = self.nested(clusters).any(2)
        return self.d - (self.levels * nest).sum(1) + nest.sum(1)

    def without_singletons(self) -> Counts:
        """The counts after dropping singleton observations (:func:`~ojpanel.models.within.singletons`)."""
        return Counts(self.data, self.mask & ~self.data.singletons)


def _positive(denom: np.ndarray) -> np.ndarray:
    if np.any(denom <= 0):
        raise ModelError(
            "no residual degrees of freedom left after the regressors and fixed effects; "
            "use fewer effects or more observations"
        )
    return denom


# ------------------------------------------------------------------------------------------
# Conventions
# ------------------------------------------------------------------------------------------


class Convention(abc.ABC):
    """Small-sample rules of one package. Subclasses override what differs and must give the
    clustered scale (:meth:`cluster`), where the packages disagree most.

    Each method returns the scale applied to the raw estimator and the reference df per member
    (``inf`` = standard normal).
    """

    name: ClassVar[str] = ""
    matches: ClassVar[str] = ""

    def counts(self, c: Counts) -> Counts:
        """The sample the rules count (pyfixest drops singletons)."""
        return c

    def iid(self, c: Counts) -> tuple[np.ndarray, np.ndarray]:
        """Denominator of ``σ² = e'e/denominator`` and df."""
        denom = _positive(c.n - c.k - c.d)
        return denom, denom.copy()

    def hetero(self, c: Counts) -> tuple[np.ndarray, np.ndarray]:
        """Scale of the HC0 sandwich and df."""
        denom = _positive(c.n - c.k - c.d)
        return c.n / denom, denom.copy()

    @abc.abstractmethod
    def cluster(
        self, c: Counts, clusters: Sequence[np.ndarray], G: Sequence[np.ndarray]
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """Scale of each clustered term (``G`` lists the terms' cluster counts) and df."""

    def crv3(
        self, c: Counts, clusters: Sequence[np.ndarray], G: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scale of the jackknife sum and df."""
        return (G - 1) / G, G - 1


class LinearModels(Convention):
    name = "linearmodels"
    matches = "linearmodels PanelOLS, debiased=True"

    def cluster(self, c, clusters, G):
        nested_every = c.nested(clusters).all(2)
        single = (c.F == 1) & nested_every.all(1) if c.F else np.zeros(len(c.n), bool)
        d = np.where(single, 0.0, c.d)
        scale = c.n / _positive(c.n - c.k - d)
        return [scale] * len(G), c.n - c.k - c.d


class Stata(Convention):
    name = "stata"
    matches = "Stata xtreg, fe vce(cluster) / reghdfe, keepsingletons; pyfixest fixef_rm='none'"

    def _k(self, c: Counts, clusters) -> np.ndarray:
        return c.k + c.d_nonnested(clusters)

    def cluster(self, c, clusters, G):
        gmin = np.min(np.stack(G[:2]), axis=0)
        K = self._k(c, clusters)
        _positive(c.n - K)
        return [cr1_scale(c.n, K, gmin)] * len(G), gmin - 1


class Areg(Stata):
    name = "areg"
    matches = "Stata areg, vce(cluster); pyfixest ssc(k_fixef='full'), fixef_rm='none'"

    def _k(self, c, clusters):
        return c.k + c.d


class PyFixest(Stata):
    name = "pyfixest"
    matches = "pyfixest defaults: ssc(), fixef_rm='singleton' (singletons dropped)"

    def counts(self, c):
        return c.without_singletons()

    def crv3(self, c, clusters, G):
        scale, _ = self.cluster(c, clusters, [G])
        return scale[0], G - 1


class Statsmodels(Convention):
    name = "statsmodels"
    matches = "statsmodels OLS with explicit dummies (cov_type nonrobust / HC1 / cluster)"

    def iid(self, c):
        denom = _positive(c.n - c.k - c.rank)
        return denom, denom.copy()

    def hetero(self, c):
        denom = _positive(c.n - c.k - c.rank)
        return c.n / denom, np.full(len(c.n), np.inf)

    def cluster(self, c, clusters, G):
        _positive(c.n - c.k - c.rank)
        return [cr1_scale(c.n, c.k + c.rank, g) for g in G], np.full(len(c.n), np.inf)


class NoAdjustment(Convention):
    name = "none"
    matches = "no small-sample scaling"

    def iid(self, c):
        return c.n.copy(), np.full(len(c.n), np.inf)

    def hetero(self, c):
        return np.ones(len(c.n)), np.full(len(c.n), np.inf)

    def cluster(self, c, clusters, G):
        return [np.ones(len(c.n))] * len(G), np.full(len(c.n), np.inf)


#: Registry of small-sample conventions by name.
CONVENTION: dict[str, Convention] = {
    conv.name: conv
    for conv in (LinearModels(), Stata(), Areg(), PyFixest(), Statsmodels(), NoAdjustment())
}
CONVENTIONS = tuple(CONVENTION)


# ------------------------------------------------------------------------------------------
# Estimators
# ------------------------------------------------------------------------------------------


def cluster_sums(scores: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Scores summed within clusters: ``(B, n, k)`` → ``(B, G, k)``."""
    B, n, k = scores.shape
    D = indicator_matrix(codes)
    flat = scores.transpose(1, 0, 2).reshape(n, B * k)
    return np.asarray(D.T @ flat).reshape(-1, B, k).transpose(1, 0, 2)


def _meat(scores: np.ndarray, codes: np.ndarray) -> np.ndarray:
    s = cluster_sums(scores, codes)
    return np.einsum("bgk,bgl->bkl", s, s)


def _sym(c: np.ndarray) -> np.ndarray:
    return (c + np.swapaxes(c, -1, -2)) / 2


class CovarianceEstimator(abc.ABC):
    """One covariance estimator. ``clusters`` says how many cluster variables it needs."""

    name: ClassVar[str] = ""
    clusters: ClassVar[int] = 0

    @abc.abstractmethod
    def compute(self, data: FitData, fit: BatchOLS, conv: Convention) -> CovarianceResult:
        """The covariance of every fit in the batch under the convention ``conv``."""


class Unadjusted(CovarianceEstimator):
    name = "unadjusted"

    def compute(self, data, fit, conv):
        c = conv.counts(Counts(data))
        denom, df = conv.iid(c)
        s2 = np.einsum("bn,bn->b", fit.resid, fit.resid) / denom
        return CovarianceResult(_sym(fit.xtx_inv * s2[:, None, None]), df, None, c.n / denom)


class Robust(CovarianceEstimator):
    name = "robust"

    def compute(self, data, fit, conv):
        c = conv.counts(Counts(data))
        scale, df = conv.hetero(c)
        scores = data.X * fit.resid[:, :, None]
        meat = np.einsum("bnk,bnl->bkl", scores, scores)
        cov = fit.xtx_inv @ meat @ fit.xtx_inv * scale[:, None, None]
        return CovarianceResult(_sym(cov), df, None, scale)


class Clustered(CovarianceEstimator):
    name = "clustered"
    clusters = 1

    def compute(self, data, fit, conv):
        c = conv.counts(Counts(data))
        codes = data.clusters[0]
        G = c.n_clusters(codes).astype(float)
        _enough(Counts(data).n_clusters(codes))
        (scale,), df = conv.cluster(c, data.clusters, [G])
        meat = _meat(data.X * fit.resid[:, :, None], codes)
        cov = fit.xtx_inv @ meat @ fit.xtx_inv * scale[:, None, None]
        return CovarianceResult(_sym(cov), df, G, scale)


class TwoWay(CovarianceEstimator):
    name = "twoway"
    clusters = 2

    def compute(self, data, fit, conv):
        c = conv.counts(Counts(data))
        a, b = data.clusters
        both = factorize(a * (int(b.max()) + 1) + b)
        G = [c.n_clusters(x).astype(float) for x in (a, b, both)]
        _enough(np.minimum(Counts(data).n_clusters(a), Counts(data).n_clusters(b)))
        scales, df = conv.cluster(c, data.clusters, G)
        scores = data.X * fit.resid[:, :, None]
        total = sum(
            sign * _meat(scores, x) * s[:, None, None]
            for sign, x, s in zip((1.0, 1.0, -1.0), (a, b, both), scales, strict=True)
        )
        cov = _sym(fit.xtx_inv @ total @ fit.xtx_inv)
        _check_psd(cov, data)
        return CovarianceResult(cov, df, np.minimum(G[0], G[1]), scales[0])


class CRV3(CovarianceEstimator):
    name = "crv3"
    clusters = 1

    def compute(self, data, fit, conv):
        c = conv.counts(Counts(data))
        codes = data.clusters[0]
        _enough(Counts(data).n_clusters(codes))
        present = (np.asarray(indicator_matrix(codes).T @ data.mask.T.astype(float)) > 0).T
        beta_g = np.broadcast_to(fit.beta[:, None, :], (*present.shape, fit.beta.shape[1])).copy()
        nested = Counts(data).nested([codes])[:, :, 0].all(1) if data.factors else None
        fast = np.ones(len(c.n), bool) if nested is None else nested
        if fast.any():
            beta_g[fast] = _jackknife_closed_form(data, np.flatnonzero(fast), codes, present)
        if (~fast).any():
            beta_g[~fast] = _jackknife_refit(data, np.flatnonzero(~fast), codes, present)
        dev = (beta_g - fit.beta[:, None, :]) * present[:, :, None]
        G = c.n_clusters(codes).astype(float)
        scale, df = conv.crv3(c, data.clusters, G)
        cov = np.einsum("bgk,bgl->bkl", dev, dev) * scale[:, None, None]
        return CovarianceResult(_sym(cov), df, G, scale)


def _jackknife_closed_form(data: FitData, members: np.ndarray, codes, present) -> np.ndarray:
    """Leave-one-cluster-out coefficients from the demeaned data (exact when effects are nested)."""
    X, y = data.X[members], data.y[members]
    B, n, k = X.shape
    D = indicator_matrix(codes)
    Gn = D.shape[1]
    xgxg = np.asarray(D.T @ (X[:, :, :, None] * X[:, :, None, :]).transpose(1, 0, 2, 3).reshape(n, -1))
    xgxg = xgxg.reshape(Gn, B, k, k).transpose(1, 0, 2, 3)
    xgyg = np.asarray(D.T @ (X * y[:, :, None]).transpose(1, 0, 2).reshape(n, -1))
    xgyg = xgyg.reshape(Gn, B, k).transpose(1, 0, 2)
    lhs = xgxg.sum(1, keepdims=True) - xgxg
    rhs = xgyg.sum(1, keepdims=True) - xgyg
    pres = present[members]
    # clusters absent from a member leave it unchanged; solve only where one was left out
    lhs = np.where(pres[:, :, None, None], lhs, np.eye(k))
    cond = np.linalg.cond(lhs)
    bad = pres & ~(np.isfinite(cond) & (cond < 1e12))
    if bad.any():
        b, g = np.argwhere(bad)[0]
        raise ModelError(
            f"CRV3: without cluster {int(g)} the regressors of '{data.labels[members[b]]}' are "
            "collinear (a regressor varies only in that cluster); use cov='clustered'"
        )
    return np.linalg.solve(lhs, rhs[..., None])[..., 0]


def _jackknife_refit(data: FitData, members: np.ndarray, codes, present) -> np.ndarray:
    """Leave-one-cluster-out coefficients with the effects re-estimated without the cluster.

    Projecting the demeaned data again on the remaining sample equals absorbing the raw data
    there, because the full-sample effects restricted to that sample lie in its effect space.
    """
    k = data.X.shape[2]
    Gn = present.shape[1]
    out = np.zeros((len(members), Gn, k))
    V = np.concatenate([data.y[members][:, :, None], data.X[members]], axis=2)
    n = V.shape[1]
    chunk = max(1, int(4_000_000 // max(1, len(members) * n * (k + 1))))
    for start in range(0, Gn, chunk):
        gs = np.arange(start, min(start + chunk, Gn))
        masks = data.mask[members][:, None, :] & (codes[None, None, :] != gs[None, :, None])
        vals = np.broadcast_to(V[:, None], (len(members), gs.size, n, k + 1))
        ab = absorb_batch(
            vals.reshape(-1, n, k + 1), masks.reshape(-1, n), data.factors
        )
        labels = [f"{data.labels[m]} without cluster {g}" for m in members for g in gs]
        fit = ols_batch(ab.values[:, :, 0], ab.values[:, :, 1:], ab.mask, names=data.names, labels=labels)
        out[:, gs] = fit.beta.reshape(len(members), gs.size, k)
    return out


def _enough(G: np.ndarray) -> None:
    if np.any(np.asarray(G) < 2):
        raise ModelError("clustered standard errors need at least two clusters in the sample")


def _check_psd(cov: np.ndarray, data: FitData) -> None:
    eig = np.linalg.eigvalsh(cov)
    tol = 1e-12 * np.maximum(np.abs(eig).max(1), 1e-300)
    bad = np.flatnonzero(eig.min(1) < -tol)
    if bad.size:
        neg = [
            f"'{data.labels[b]}': " + ", ".join(
                data.names[j] for j in np.flatnonzero(np.diagonal(cov[b]) < 0)
            )
            for b in bad[:5]
        ]
        warnings.warn(
            f"the two-way clustered variance (V1 + V2 − V12) is not positive semi-definite in "
            f"{bad.size} fit(s); negative variances give NaN standard errors ({'; '.join(neg)}). "
            "Cluster by the coarser variable alone, or use cov='crv3' or the wild cluster bootstrap.",
            CovarianceWarning,
            stacklevel=4,
        )


#: Registry of covariance estimators by name.
COVARIANCE: dict[str, type[CovarianceEstimator]] = {
    cls.name: cls for cls in (Unadjusted, Robust, Clustered, TwoWay, CRV3)
}
COV_TYPES = tuple(COVARIANCE)


def check_options(cov_type: str, convention: str) -> None:
    """Raise :class:`ParameterError` for an unknown estimator or convention."""
    if cov_type not in COVARIANCE:
        raise ParameterError(f"cov must be one of {COV_TYPES}; got {cov_type!r}")
    if convention not in CONVENTION:
        raise ParameterError(f"convention must be one of {CONVENTIONS}; got {convention!r}")


def covariance(
    data: FitData, fit: BatchOLS, cov_type: str = "clustered", convention: str = "linearmodels"
) -> CovarianceResult:
    """Covariance of stacked fits: estimator ``cov_type`` under ``convention`` (module table).

    Parameters
    ----------
    data
        Prepared data (:func:`~ojpanel.models.within.prepare_batch`) with as many cluster
        variables as the estimator needs (one for ``clustered``/``crv3``, two for ``twoway``).
    fit
        The least-squares fits of ``data``.
    """
    check_options(cov_type, convention)
    est = COVARIANCE[cov_type]
    if est.clusters and len(data.clusters) != est.clusters:
        raise ParameterError(
            f"cov={cov_type!r} needs {est.clusters} cluster variable(s); got {len(data.clusters)}"
        )
    return est().compute(data, fit, CONVENTION[convention])


def cr1_scale(n: float, k: float, G: float) -> float:
    """The CR1 factor ``G/(G−1)·(n−1)/(n−k)`` (Stata's ``regress, vce(cluster)``)."""
    return G / (G - 1) * (n - 1) / (n - k)


def cr1(
    X: np.ndarray, resid: np.ndarray, xtx_inv: np.ndarray, clusters: np.ndarray
) -> tuple[np.ndarray, int]:
    """The CR1 covariance of one regression with every parameter explicit (no absorbed effects).

    ``G/(G−1)·(n−1)/(n−k) · A (Σ_g s_g s_g') A`` with ``A = (X'X)^{-1}`` (or a weighted
    ``(X'WX)^{-1}`` with ``X`` and ``resid`` the weighted scores' factors) — Stata's ``regress,
    vce(cluster)``, statsmodels' ``cov_type="cluster"``, the ``"areg"`` and ``"stata"`` rows of the
    table without effects. Returns the covariance and ``G``.
    """
    X = np.asarray(X, float)
    n, k = X.shape
    codes = factorize(clusters)
    G = int(codes.max()) + 1
    if G < 2:
        raise ModelError("clustered standard errors need at least two clusters")
    s = cluster_sums((X * np.asarray(resid, float)[:, None])[None], codes)[0]
    cov = xtx_inv @ (s.T @ s) @ xtx_inv * cr1_scale(n, k, G)
    return (cov + cov.T) / 2, G
