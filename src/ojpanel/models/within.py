"""Numerical core for linear fixed-effects models: absorbing effects, counting them, and OLS.

Kept free of pandas and linearmodels so that repeated fits (bootstrap, permutation, power) are
cheap. Everything works on a leading batch axis: ``B`` regressions that share the fixed-effect and
cluster layout but differ in data and missingness (indicators, bootstrap or power replications).

* :func:`absorb_batch` removes any number of fixed-effect factors by **alternating projections**
  (group demeaning, one sparse group-sum per factor and sweep, accelerated by Irons and Tuck's
  extrapolation as in fixest), for all members at once. One factor is one exact sweep. Nothing is
  dense in the number of levels, so municipality + county×year effects cost what municipality +
  year effects cost.
* :func:`fe_rank` counts the linearly independent fixed-effect parameters of each member's sample
  (exactly: connected components for two factors) and :func:`singletons` finds the observations
  that are alone in a level of some factor (what fixest and pyfixest drop by default).
* :func:`prepare_batch` stacks, masks and absorbs; :func:`ols_batch` solves the least-squares
  problem on the residualised data (Frisch–Waugh–Lovell).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy import sparse

from ojpanel.errors import DataError, ModelError

__all__ = [
    "factorize",
    "indicator_matrix",
    "absorb_batch",
    "BatchAbsorbed",
    "demean",
    "fe_rank",
    "singletons",
    "is_nested",
    "nested_in",
    "FitData",
    "prepare_batch",
    "refuse_infinite",
    "OLSFit",
    "ols",
    "BatchOLS",
    "ols_batch",
]

#: Convergence tolerance of the alternating projections: largest change of a sweep relative to the
#: scale of the data (coefficients then agree with an exact projection to ~1e-12).
TOL = 1e-13


def factorize(labels: np.ndarray | Sequence) -> np.ndarray:
    """Integer codes 0..G-1 for any label array (stable: codes follow sorted unique labels)."""
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    return codes.astype(np.int64).ravel()


def indicator_matrix(codes: np.ndarray, n_levels: int | None = None) -> sparse.csr_matrix:
    """Sparse ``(n, G)`` 0/1 matrix with a one in column ``codes[i]`` of row ``i``.

    Rows with a negative code (no group) are all zero.
    """
    codes = np.asarray(codes, dtype=np.int64)
    g = int(codes.max(initial=-1)) + 1 if n_levels is None else int(n_levels)
    ok = codes >= 0
    rows = np.flatnonzero(ok)
    return sparse.csr_matrix((np.ones(rows.size), (rows, codes[ok])), shape=(len(codes), max(g, 1)))


def _codes(factors: Sequence[np.ndarray], n: int) -> list[np.ndarray]:
    out = []
    for f in factors:
        f = np.asarray(f)
        c = f if np.issubdtype(f.dtype, np.integer) and f.min(initial=0) >= 0 else factorize(f)
        if len(c) != n:
            raise ModelError(f"a fixed-effect factor has {len(c)} rows but the data have {n}")
        out.append(np.asarray(c, dtype=np.int64))
    return out


class _Projector:
    """Alternating projections on data laid out as ``(n, P)`` columns with column weights.

    ``weights`` is ``(n, P)``: 1 inside a column's sample, 0 outside (or analytic weights). A sweep
    subtracts, factor by factor, the weighted group means of every column.
    """

    def __init__(self, codes: Sequence[np.ndarray], weights: np.ndarray) -> None:
        n = weights.shape[0]
        self.codes = list(codes)
        self.weights = weights
        self.sums = []
        self.inv_counts = []
        for c in self.codes:
            g = int(c.max(initial=-1)) + 1
            Dt = sparse.csr_matrix((np.ones(n), (c, np.arange(n))), shape=(max(g, 1), n))
            cnt = np.asarray(Dt @ weights)
            self.sums.append(Dt)
            self.inv_counts.append(np.divide(1.0, cnt, out=np.zeros_like(cnt), where=cnt > 0))
        self.binary = bool(np.all((weights == 0) | (weights == 1)))

    def project(self, A: np.ndarray, tol: float = TOL, maxiter: int = 10_000) -> np.ndarray:
        """Residualise the columns of ``A`` (zero outside their samples) on every factor."""
        w = self.weights
        binary = self.binary

        def one(A: np.ndarray) -> np.ndarray:
            for Dt, inv, c in zip(self.sums, self.inv_counts, self.codes, strict=True):
                s = Dt @ (A if binary else A * w)
                A = A - (np.asarray(s) * inv)[c] * (w if binary else (w > 0))
            return A

        if not self.codes:
            return A
        if len(self.codes) == 1:
            return one(A)
        scale = max(1.0, float(np.abs(A).max(initial=0.0)))
        x = A
        for _ in range(maxiter):
            gx = one(x)
            if np.abs(gx - x).max(initial=0.0) <= tol * scale:
                return gx
            ggx = one(gx)
            # Irons–Tuck extrapolation, one step length per column
            d2 = ggx - gx
            dd = d2 - (gx - x)
            num = np.einsum("ij,ij->j", d2, dd)
            den = np.einsum("ij,ij->j", dd, dd)
            step = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
            x = ggx - step * d2
        raise ModelError(
            f"the fixed effects did not converge in {maxiter} sweeps; check for a nearly collinear "
            "factor or raise maxiter"
        )


def demean(
    x: np.ndarray,
    fe: np.ndarray | Sequence[np.ndarray],
    *,
    weights: np.ndarray | None = None,
    tol: float = TOL,
    maxiter: int = 10_000,
) -> np.ndarray:
    """Residualise ``x`` on the dummies of one or more fixed-effect factors.

    Parameters
    ----------
    x
        Array of shape ``(n,)`` or ``(n, k)`` (complete: no NaN).
    fe
        One integer code array of length ``n`` or a sequence of them (e.g. municipality and year).
    weights
        Optional positive weights (weighted projections).
    tol, maxiter
        Convergence tolerance (largest change of a sweep relative to the scale of ``x``) and the
        number of sweeps before :class:`ojpanel.errors.ModelError` is raised.

    Returns
    -------
    numpy.ndarray
        Residuals with the same shape as ``x``.
    """
    arr = np.asarray(x, dtype=float)
    squeeze = arr.ndim == 1
    out = arr.reshape(len(arr), -1)
    factors = [fe] if isinstance(fe, np.ndarray) and fe.ndim == 1 else list(fe)
    codes = _codes(factors, len(out))
    w = np.ones(len(out)) if weights is None else np.asarray(weights, dtype=float)
    W = np.broadcast_to(w[:, None], out.shape)
    res = _Projector(codes, np.ascontiguousarray(W)).project(out * (W > 0), tol, maxiter)
    return res.ravel() if squeeze else res


def _levels(codes: Sequence[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """``(B, F)`` number of levels of each factor present in each member's sample."""
    B = mask.shape[0]
    out = np.zeros((B, len(codes)), dtype=np.int64)
    w = mask.T.astype(float)
    for j, c in enumerate(codes):
        out[:, j] = (np.asarray(indicator_matrix(c).T @ w) > 0).sum(0)
    return out


def fe_rank(factors: Sequence[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """Number of linearly independent fixed-effect parameters in each member's sample.

    Exact: one factor has as many as it has levels; two factors lose one per connected component of
    the graph that links their levels through observations; with three or more the rank of the
    dummies after sweeping out the largest factor is taken (a small ``L × L`` problem, ``L`` the
    levels of the other factors).

    Parameters
    ----------
    factors
        Integer code arrays of length ``n``.
    mask
        ``(B, n)`` samples.
    """
    from scipy.sparse.csgraph import connected_components

    mask = np.atleast_2d(np.asarray(mask, dtype=bool))
    B, n = mask.shape
    codes = _codes(factors, n)
    levels = _levels(codes, mask)
    if len(codes) <= 1:
        return levels.sum(1)
    out = np.zeros(B, dtype=np.int64)
    if len(codes) == 2:
        a, b = codes
        for i in range(B):
            m = mask[i]
            if not m.any():
                continue
            ua, ia = np.unique(a[m], return_inverse=True)
            ub, ib = np.unique(b[m], return_inverse=True)
            graph = sparse.coo_matrix(
                (np.ones(ia.size), (ia, ua.size + ib)), shape=(ua.size + ub.size,) * 2
            )
            n_comp, _ = connected_components(graph, directed=False)
            out[i] = ua.size + ub.size - n_comp
        return out
    big = int(np.argmax([int(c.max()) + 1 for c in codes]))
    D0 = indicator_matrix(codes[big])
    Z = sparse.hstack([indicator_matrix(c) for j, c in enumerate(codes) if j != big]).tocsr()
    for i in range(B):
        w = sparse.diags(mask[i].astype(float))
        cnt = np.asarray(D0.T @ mask[i].astype(float)).ravel()
        ZZ = (Z.T @ w @ Z).toarray()
        ZD = (Z.T @ w @ D0).toarray()
        inv = np.divide(1.0, cnt, out=np.zeros_like(cnt), where=cnt > 0)
        S = ZZ - (ZD * inv) @ ZD.T
        keep = np.diag(ZZ) > 0
        S = S[np.ix_(keep, keep)]
        d = np.sqrt(np.maximum(np.diag(S), 1e-300))
        r = np.linalg.matrix_rank(S / np.outer(d, d), tol=1e-9) if S.size else 0
        out[i] = int((cnt > 0).sum()) + int(r)
    return out


def singletons(factors: Sequence[np.ndarray], mask: np.ndarray) -> np.ndarray:
    """Observations alone in a level of some factor, found iteratively as fixest does.

    Dropping a singleton can leave another observation alone in its level; the search repeats
    until none is left. Singletons do not change the estimates (their own effect fits them
    exactly); they only change the counts behind small-sample corrections.

    Returns
    -------
    numpy.ndarray
        ``(B, n)`` boolean, True for a singleton inside the member's sample.
    """
    mask = np.atleast_2d(np.asarray(mask, dtype=bool))
    B, n = mask.shape
    codes = _codes(factors, n)
    keep = mask.copy()
    if not codes:
        return np.zeros_like(mask)
    mats = [indicator_matrix(c) for c in codes]
    while True:
        changed = False
        for c, D in zip(codes, mats, strict=True):
            cnt = np.asarray(D.T @ keep.T.astype(float))  # (G, B)
            alone = keep & (cnt[c].T == 1)
            if alone.any():
                keep &= ~alone
                changed = True
        if not changed:
            return mask & ~keep


def is_nested(inner: np.ndarray, outer: np.ndarray, mask: np.ndarray | None = None) -> bool:
    """Whether every level of ``inner`` lies in one level of ``outer`` (within ``mask``)."""
    m = np.ones(len(inner), bool) if mask is None else np.asarray(mask, bool)
    return bool(nested_in(factorize(inner), factorize(outer), m[None])[0])


def nested_in(inner: np.ndarray, outer: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(B,)``: whether each level of ``inner`` lies in one level of ``outer`` in each sample."""
    mask = np.atleast_2d(np.asarray(mask, dtype=bool))
    if inner.size == 0:
        return np.ones(mask.shape[0], dtype=bool)
    # rows sorted by level, so each level's smallest and largest outer code is one reduceat
    order = np.argsort(inner, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inner[order]) != 0])
    m = mask[:, order].T  # (n, B)
    o = np.asarray(outer)[order][:, None]
    lo = np.minimum.reduceat(np.where(m, o, np.iinfo(np.int64).max), starts, axis=0)
    hi = np.maximum.reduceat(np.where(m, o, -1), starts, axis=0)
    present = hi >= 0
    return np.all(~present | (lo == hi), axis=0)


@dataclass(frozen=True)
class BatchAbsorbed:
    """Result of :func:`absorb_batch`.

    Attributes
    ----------
    values
        Residualised data ``(B, n, m)``; rows outside a batch member's sample are 0.
    mask
        ``(B, n)`` boolean sample of each member.
    levels
        ``(B, F)`` number of levels of each factor present in each member's sample.
    factors
        The factor codes.
    """

    values: np.ndarray
    mask: np.ndarray
    levels: np.ndarray
    factors: tuple[np.ndarray, ...] = ()

    @cached_property
    def fe_rank(self) -> np.ndarray:
        """``(B,)`` independent fixed-effect parameters per member (:func:`fe_rank`)."""
        return fe_rank(self.factors, self.mask)


def absorb_batch(
    values: np.ndarray,
    mask: np.ndarray,
    factors: Sequence[np.ndarray],
    *,
    tol: float = TOL,
    maxiter: int = 10_000,
) -> BatchAbsorbed:
    """Remove fixed effects from stacked data by alternating projections.

    Parameters
    ----------
    values
        ``(B, n, m)`` data (outcome and regressors); NaN allowed outside the mask.
    mask
        ``(B, n)`` boolean: the rows each member uses.
    factors
        Integer code arrays of length ``n`` (shared by all members), e.g. municipality, year,
        county×year. An empty sequence leaves the data as they are (a constant is *not* removed).
    tol, maxiter
        Convergence tolerance and the sweep limit of the projections.

    Returns
    -------
    BatchAbsorbed
    """
    V = np.asarray(values, dtype=float)
    if V.ndim != 3:
        raise ModelError(f"values must have shape (batch, n, m); got {V.shape}")
    M = np.asarray(mask, dtype=bool)
    B, n, m = V.shape
    if M.shape != (B, n):
        raise ModelError(f"mask must have shape {(B, n)}; got {M.shape}")
    V = np.where(M[:, :, None], V, 0.0)
    if not np.isfinite(V).all():
        raise ModelError("non-finite values inside the estimation sample; mask them out first")
    codes = _codes(factors, n)
    levels = _levels(codes, M)
    if not codes:
        return BatchAbsorbed(V, M, levels, ())
    # columns (member b, variable j) side by side, so that one sparse product sums every group
    flat = V.transpose(1, 0, 2).reshape(n, B * m)
    W = np.repeat(M.T.astype(float), m, axis=1)
    out = _Projector(codes, W).project(flat, tol, maxiter)
    return BatchAbsorbed(out.reshape(n, B, m).transpose(1, 0, 2), M, levels, tuple(codes))


# --------------------------------------------------------------------------------------------
# Prepared data: what fits, covariances, bootstraps and permutation tests share
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitData:
    """Stacked, residualised regression data shared by fits, bootstraps and permutation tests.

    Attributes
    ----------
    y, X, mask
        Residualised outcome ``(B, n)``, regressors ``(B, n, k)`` (zero outside the sample) and
        sample mask ``(B, n)``.
    factors, clusters, entity
        Integer code arrays of length ``n``: fixed effects, cluster variables, entity.
    levels
        Levels of each factor present per member (``(B, F)``).
    names, labels, effects
        Regressor names, member labels and effect names.
    columns
        Optional lookup ``name → codes`` of the ``n`` rows' columns (cluster variables by name in
        :meth:`ojpanel.models.fe_results.FEResults.vcov`).
    """

    y: np.ndarray
    X: np.ndarray
    mask: np.ndarray
    factors: tuple[np.ndarray, ...]
    clusters: tuple[np.ndarray, ...]
    entity: np.ndarray
    levels: np.ndarray
    names: tuple[str, ...]
    labels: tuple[str, ...]
    effects: tuple[str, ...]
    columns: Callable[[object], np.ndarray] | None = field(default=None, compare=False)

    @cached_property
    def fe_rank(self) -> np.ndarray:
        """``(B,)`` independent fixed-effect parameters per member (:func:`fe_rank`)."""
        return fe_rank(self.factors, self.mask)

    @cached_property
    def singletons(self) -> np.ndarray:
        """``(B, n)`` singleton observations (:func:`singletons`)."""
        return singletons(self.factors, self.mask)

    def member(self, b: int) -> FitData:
        """The data of member ``b`` alone (a batch of one)."""
        s = slice(b, b + 1)
        return FitData(
            y=self.y[s], X=self.X[s], mask=self.mask[s], factors=self.factors,
            clusters=self.clusters, entity=self.entity, levels=self.levels[s], names=self.names,
            labels=self.labels[s], effects=self.effects, columns=self.columns,
        )  # fmt: skip

    def with_clusters(self, clusters: Sequence[np.ndarray]) -> FitData:
        """The same data with other cluster variables (code arrays of length ``n``)."""
        codes = tuple(factorize(c) for c in clusters)
        for c in codes:
            if len(c) != self.mask.shape[1]:
                raise ModelError(f"a cluster array has {len(c)} rows; expected {self.mask.shape[1]}")
        return FitData(
            y=self.y, X=self.X, mask=self.mask, factors=self.factors, clusters=codes,
            entity=self.entity, levels=self.levels, names=self.names, labels=self.labels,
            effects=self.effects, columns=self.columns,
        )  # fmt: skip


def prepare_batch(
    y: np.ndarray,
    X: np.ndarray,
    *,
    factors: Sequence[np.ndarray] = (),
    clusters: Sequence[np.ndarray] = (),
    entity: np.ndarray | None = None,
    names: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    effects: Sequence[str] = (),
    mask: np.ndarray | None = None,
    columns: Callable[[object], np.ndarray] | None = None,
) -> FitData:
    """Stack, mask and residualise data for :func:`ojpanel.models.fe.fit_batch`.

    Parameters
    ----------
    y
        ``(B, n)`` outcomes (NaN = missing).
    X
        ``(B, n, k)`` or ``(n, k)`` regressors (NaN = missing; a shared ``(n, k)`` is broadcast).
    factors, clusters, entity
        Code arrays of length ``n`` shared by all members.
    mask
        Optional ``(B, n)`` extra sample restriction; rows with any NaN are always dropped.
    columns
        Optional lookup of further columns by name (see :class:`FitData`).

    Raises
    ------
    DataError
        If a value is infinite (an infinity is not a missing value: fix or drop it first).
    """
    y = np.asarray(y, dtype=float)
    if y.ndim == 1:
        y = y[None]
    B, n = y.shape
    X = np.asarray(X, dtype=float)
    if X.ndim == 2:
        X = np.broadcast_to(X, (B, *X.shape))
    if X.shape[:2] != (B, n):
        raise ModelError(f"X must have shape ({B}, {n}, k); got {X.shape}")
    k = X.shape[2]
    names = tuple(names) if names is not None else tuple(f"x{j}" for j in range(k))
    labels = (
        tuple(str(x) for x in labels) if labels is not None else tuple(str(b) for b in range(B))
    )
    refuse_infinite(y, X, names, labels)
    m = ~np.isnan(y) & ~np.isnan(X).any(2)
    if mask is not None:
        m &= np.asarray(mask, dtype=bool)
    factors = tuple(factorize(f) for f in factors)
    clusters = tuple(factorize(c) for c in clusters)
    for arr in (*factors, *clusters):
        if len(arr) != n:
            raise ModelError(f"a factor or cluster array has {len(arr)} rows; expected {n}")
    ent = (
        factorize(entity)
        if entity is not None
        else (factors[0] if factors else np.zeros(n, np.int64))
    )
    ab = absorb_batch(np.concatenate([y[:, :, None], X], axis=2), m, factors)
    return FitData(
        y=ab.values[:, :, 0],
        X=ab.values[:, :, 1:],
        mask=m,
        factors=factors,
        clusters=clusters,
        entity=ent,
        levels=ab.levels,
        names=names,
        labels=labels,
        effects=tuple(effects),
        columns=columns,
    )


def refuse_infinite(y: np.ndarray, X: np.ndarray, names, labels) -> None:
    """Raise :class:`DataError` naming the outcome or regressors that hold ±inf."""
    bad_y = np.isinf(y)
    if bad_y.any():
        b = int(np.argwhere(bad_y)[0][0])
        raise DataError(
            f"the outcome has {int(bad_y.sum())} infinite value(s) (first in '{labels[b]}'); an "
            "infinity is not a missing value: fix the values or set them to NaN to drop them"
        )
    bad_x = np.isinf(X)
    if bad_x.any():
        per = bad_x.sum(axis=(0, 1))
        cols = [f"'{names[j]}' ({int(per[j])})" for j in np.flatnonzero(per)]
        raise DataError(
            f"regressor(s) {', '.join(cols)} have infinite values; an infinity is not a missing "
            "value: fix the values or set them to NaN to drop those rows"
        )


# --------------------------------------------------------------------------------------------
# Least squares
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OLSFit:
    """Least-squares solution: coefficients, residuals, (X'X)^-1 and rank."""

    beta: np.ndarray
    resid: np.ndarray
    xtx_inv: np.ndarray
    rank: int


def ols(y: np.ndarray, X: np.ndarray, *, rtol: float = 1e-10) -> OLSFit:
    """Ordinary least squares ``y ~ X`` with a rank check.

    Raises
    ------
    ModelError
        If ``X`` is rank deficient (e.g. a regressor is absorbed by the fixed effects); the message
        names the offending column index.
    """
    y = np.asarray(y, dtype=float).ravel()
    X = np.asarray(X, dtype=float).reshape(len(y), -1)
    xtx = X.T @ X
    # Scale-free rank check: a column that vanished after demeaning is collinear with the FE.
    norms = np.sqrt(np.diag(xtx))
    bad = np.flatnonzero(norms <= rtol * max(1.0, float(np.sqrt(np.sum(X**2)))))
    if bad.size:
        raise ModelError(
            f"regressor column(s) {bad.tolist()} have no variation left after removing the fixed "
            "effects (collinear with them); drop them or change the effects"
        )
    d = 1.0 / norms
    scaled = xtx * np.outer(d, d)
    rank = int(np.linalg.matrix_rank(scaled, tol=1e-10))
    if rank < X.shape[1]:
        raise ModelError(
            f"the regressors are collinear (rank {rank} < {X.shape[1]} columns) after removing the "
            "fixed effects; drop a collinear regressor"
        )
    xtx_inv = np.linalg.inv(scaled) * np.outer(d, d)
    beta = xtx_inv @ (X.T @ y)
    return OLSFit(beta=beta, resid=y - X @ beta, xtx_inv=xtx_inv, rank=rank)


@dataclass(frozen=True)
class BatchOLS:
    """Stacked least-squares fits: ``beta (B, k)``, ``resid (B, n)``, ``xtx_inv (B, k, k)``."""

    beta: np.ndarray
    resid: np.ndarray
    xtx_inv: np.ndarray
    nobs: np.ndarray


def ols_batch(
    y: np.ndarray,
    X: np.ndarray,
    mask: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
) -> BatchOLS:
    """Least squares for every batch member on already residualised data.

    Parameters
    ----------
    y
        ``(B, n)`` outcome, zero outside the mask.
    X
        ``(B, n, k)`` regressors, zero outside the mask.
    mask
        ``(B, n)`` sample.
    names, labels
        Regressor names and batch labels used in error messages.

    Raises
    ------
    ModelError
        If a member's regressors are collinear or have no variation left after the fixed effects;
        the message names the member and the regressor.
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    B, n, k = X.shape
    xtx = np.einsum("bnk,bnl->bkl", X, X)
    diag = np.einsum("bkk->bk", xtx)
    tot = np.sqrt(np.einsum("bnk->b", X**2))[:, None]
    bad = np.sqrt(diag) <= 1e-10 * np.maximum(1.0, tot)
    names = list(names) if names is not None else [f"x{j}" for j in range(k)]
    labels = list(labels) if labels is not None else [str(b) for b in range(B)]
    if bad.any():
        b, j = np.argwhere(bad)[0]
        raise ModelError(
            f"regressor '{names[j]}' has no variation left after removing the fixed effects in "
            f"'{labels[b]}' (it is collinear with the effects); drop it or change the effects"
        )
    d = 1.0 / np.sqrt(diag)
    scaled = xtx * d[:, :, None] * d[:, None, :]
    cond = np.linalg.cond(scaled)
    if not np.all(np.isfinite(cond)) or np.any(cond > 1e10):
        b = int(np.argmax(np.where(np.isfinite(cond), cond, np.inf)))
        raise ModelError(
            f"the regressors {names} are collinear after removing the fixed effects in "
            f"'{labels[b]}' (condition number {cond[b]:.3g}); drop a collinear regressor or an effect"
        )
    inv = np.linalg.inv(scaled) * d[:, :, None] * d[:, None, :]
    xty = np.einsum("bnk,bn->bk", X, y)
    beta = np.einsum("bkl,bl->bk", inv, xty)
    resid = (y - np.einsum("bnk,bk->bn", X, beta)) * mask
    return BatchOLS(beta=beta, resid=resid, xtx_inv=inv, nobs=mask.sum(1))
