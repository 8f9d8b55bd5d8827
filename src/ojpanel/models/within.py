"""Numerical core for linear fixed-effects models: within transformation and OLS.

Kept free of pandas and linearmodels so that repeated fits (bootstrap, permutation, power) are
cheap. ``demean`` removes one or more sets of fixed effects by alternating projections (one exact
pass when there is a single set); ``ols`` solves the least-squares problem on the residualised data
(Frisch–Waugh–Lovell).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ojpanel.errors import ModelError

__all__ = ["demean", "ols", "OLSFit", "factorize"]


def factorize(labels: np.ndarray | Sequence) -> np.ndarray:
    """Integer codes 0..G-1 for any label array (stable: codes follow sorted unique labels)."""
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    return codes.astype(np.int64).ravel()


def _group_demean(x: np.ndarray, codes: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    g = int(codes.max()) + 1
    if w is None:
        counts = np.bincount(codes, minlength=g).astype(float)
        sums = np.stack([np.bincount(codes, x[:, j], minlength=g) for j in range(x.shape[1])], 1)
    else:
        counts = np.bincount(codes, w, minlength=g)
        sums = np.stack(
            [np.bincount(codes, w * x[:, j], minlength=g) for j in range(x.shape[1])], 1
        )
    means = np.divide(sums, counts[:, None], out=np.zeros_like(sums), where=counts[:, None] > 0)
    return x - means[codes]


def demean(
    x: np.ndarray,
    fe: np.ndarray | Sequence[np.ndarray],
    *,
    weights: np.ndarray | None = None,
    tol: float = 1e-13,
    maxiter: int = 10_000,
) -> np.ndarray:
    """Residualise ``x`` on the dummies of one or more fixed-effect factors.

    Parameters
    ----------
    x
        Array of shape ``(n,)`` or ``(n, k)``.
    fe
        One integer code array of length ``n`` or a sequence of them (e.g. municipality and year).
    weights
        Optional positive weights (weighted projections).
    tol
        Convergence tolerance on the largest change between sweeps (multi-factor case), relative
        to the scale of ``x``.
    maxiter
        Maximum number of sweeps before :class:`ojpanel.errors.ModelError` is raised.

    Returns
    -------
    numpy.ndarray
        Residuals with the same shape as ``x``.
    """
    arr = np.asarray(x, dtype=float)
    squeeze = arr.ndim == 1
    out = arr.reshape(len(arr), -1).copy()
    if isinstance(fe, np.ndarray) and fe.ndim == 1:
        factors = [fe]
    else:
        factors = [np.asarray(f) for f in fe]
    factors = [
        f if np.issubdtype(f.dtype, np.integer) and f.min(initial=0) >= 0 else factorize(f)
        for f in factors
    ]
    for f in factors:
        if len(f) != len(out):
            raise ModelError(
                f"a fixed-effect factor has {len(f)} rows but the data have {len(out)}"
            )
    w = None if weights is None else np.asarray(weights, dtype=float)
    if len(factors) == 1:
        out = _group_demean(out, factors[0], w)
    elif factors:
        scale = max(1.0, float(np.abs(out).max(initial=0.0)))
        for _ in range(maxiter):
            prev = out.copy()
            for f in factors:
                out = _group_demean(out, f, w)
            if np.abs(out - prev).max(initial=0.0) <= tol * scale:
                break
        else:
            raise ModelError(
                f"fixed effects did not converge in {maxiter} sweeps; check for a nearly "
                "collinear factor or raise maxiter"
            )
    return out.ravel() if squeeze else out


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


# --------------------------------------------------------------------------------------------
# Batched core: many regressions that share the fixed-effect and cluster layout but differ in
# data and missingness (indicators, bootstrap or power replications). Everything is stacked on a
# leading batch axis so that one call replaces a Python loop of model fits.
# --------------------------------------------------------------------------------------------

__all__ += ["BatchAbsorbed", "absorb_batch", "BatchOLS", "ols_batch", "indicator_matrix"]


def indicator_matrix(codes: np.ndarray, n_levels: int | None = None):
    """Sparse ``(n, G)`` 0/1 matrix with a one in column ``codes[i]`` of row ``i``.

    Rows with a negative code (no group) are all zero.
    """
    from scipy import sparse

    codes = np.asarray(codes, dtype=np.int64)
    g = int(codes.max(initial=-1)) + 1 if n_levels is None else int(n_levels)
    ok = codes >= 0
    rows = np.flatnonzero(ok)
    return sparse.csr_matrix((np.ones(rows.size), (rows, codes[ok])), shape=(len(codes), max(g, 1)))


@dataclass(frozen=True)
class BatchAbsorbed:
    """Result of :func:`absorb_batch`.

    Attributes
    ----------
    values
        Residualised data ``(B, n, m)``; rows outside a batch member's sample are 0.
    mask
        ``(B, n)`` boolean sample of each member.
    fe_rank
        ``(B,)`` number of linearly independent fixed-effect parameters in each member's sample.
    levels
        ``(B, F)`` number of levels of each factor present in each member's sample.
    """

    values: np.ndarray
    mask: np.ndarray
    fe_rank: np.ndarray
    levels: np.ndarray


def absorb_batch(
    values: np.ndarray,
    mask: np.ndarray,
    factors: Sequence[np.ndarray],
    *,
    refine: int = 1,
) -> BatchAbsorbed:
    """Remove fixed effects from stacked data, exactly and without iteration.

    The factor with the most levels is swept out by group means (weighted by the sample mask);
    the remaining factors enter as dummies that are themselves swept by the first factor and then
    projected out by least squares (Frisch–Waugh–Lovell). This is exact for any number of factors,
    connected or not, and costs one ``L × L`` pseudo-inverse per batch member, where ``L`` is the
    number of levels of the smaller factors (years, county×year: a few dozen to a few hundred).

    Parameters
    ----------
    values
        ``(B, n, m)`` data (outcome and regressors); NaN allowed outside the mask.
    mask
        ``(B, n)`` boolean: the rows each member uses.
    factors
        Integer code arrays of length ``n`` (shared by all members), e.g. municipality, year,
        county×year. An empty sequence leaves the data as they are (a constant is *not* removed).
    refine
        Extra projection passes against round-off (one is plenty).

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
    w = M.astype(float)
    V = np.where(M[:, :, None], V, 0.0)
    if not np.isfinite(V).all():
        raise ModelError("non-finite values inside the estimation sample; mask them out first")
    codes = [factorize(f) for f in factors]
    for c in codes:
        if len(c) != n:
            raise ModelError(f"a fixed-effect factor has {len(c)} rows but the data have {n}")
    levels = np.zeros((B, len(codes)), dtype=np.int64)
    for j, c in enumerate(codes):
        D = indicator_matrix(c)
        levels[:, j] = (np.asarray(D.T @ w.T) > 0).sum(0)
    if not codes:
        return BatchAbsorbed(V, M, np.zeros(B, dtype=np.int64), levels)
    order = np.argsort([-(int(c.max()) + 1) for c in codes], kind="stable")
    big = codes[order[0]]
    D0 = indicator_matrix(big)

    def sweep(A: np.ndarray) -> np.ndarray:
        # A: (B, n, p) already zero outside the mask; subtract masked group means of the big factor
        p = A.shape[2]
        flat = A.transpose(1, 0, 2).reshape(n, B * p)
        sums = np.asarray(D0.T @ flat).reshape(-1, B, p)
        cnt = np.asarray(D0.T @ w.T)  # (G0, B)
        means = np.divide(sums, cnt[:, :, None], out=np.zeros_like(sums), where=cnt[:, :, None] > 0)
        return (A - means[big].transpose(1, 0, 2)) * w[:, :, None]

    out = sweep(V)
    rank = levels[:, order[0]].copy()
    rest = [codes[j] for j in order[1:]]
    if rest:
        Z = np.concatenate([indicator_matrix(c).toarray() for c in rest], axis=1)
        Zb = sweep(np.broadcast_to(Z, (B, *Z.shape)) * w[:, :, None])
        ztz = np.einsum("bnl,bnk->blk", Zb, Zb)
        scale = np.maximum(np.einsum("bll->bl", ztz), 1.0)
        d = 1.0 / np.sqrt(scale)
        ztz_s = ztz * d[:, :, None] * d[:, None, :]
        pinv = np.linalg.pinv(ztz_s, rcond=1e-10, hermitian=True) * d[:, :, None] * d[:, None, :]
        rank = rank + np.linalg.matrix_rank(ztz_s, rtol=1e-10, hermitian=True)
        for _ in range(1 + max(0, int(refine))):
            coef = pinv @ np.einsum("bnl,bnm->blm", Zb, out)
            out = out - Zb @ coef
    return BatchAbsorbed(out, M, np.asarray(rank, dtype=np.int64), levels)


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
