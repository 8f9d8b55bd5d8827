"""The peer design done right: do peers' past results predict a municipality's own results?

RiR 2021:17 (analysis D) regressed a binary "improved" outcome on a binary "peers above the 75th
percentile" flag. This module keeps that as one option and adds what the question needs:

* **Continuous leave-one-out peer means** ``P[i,t−L]``: the mean of the *other* municipalities of
  ``i``'s peer group (county, kommungrupp, or any municipality coordinate) at ``t − L``.
* **Outcomes**: ``"level"`` (``y[t]``), ``"ancova"`` (``y[t]`` with the own lag ``y[t−L]`` as a
  regressor — compares municipalities that started equal, so regression to the mean does not
  masquerade as a peer effect), ``"change"`` (``y[t] − y[t−L]``) and the audit's binary
  ``"improved"`` (linear probability model).
* **Common shocks**: ``shocks="county"`` absorbs county×year effects (regional support that makes
  neighbours "become good at the same time"); ``shocks=None`` absorbs year effects only. The peer
  variable then has to vary *within* the shock cells — e.g. kommungrupp peers with county×year
  effects.
* **Neighbour peers**: ``group="neighbours"`` (or a :class:`~ojpanel.data.geo.NeighbourGraph`)
  uses the mean of the municipalities that share a land border (``weights=`` contiguity, border
  length or inverse distance; ``islands=`` rule, see :mod:`ojpanel.data.geo`). Neighbour sets
  differ for every municipality, so the exclusion bias below does not arise with county×year
  effects; the spatial yardstick design (:mod:`ojpanel.designs.spatial`) adds inference and a
  placebo that respect the geography.
* **Permutation placebo** (:func:`peer_placebo`): the same regression with random pseudo-groups of
  the real sizes; the real coefficient is compared with that distribution.

Exclusion bias (why ``group == shocks`` fails)
-----------------------------------------------
Within a group-year cell of size ``n_g`` the leave-one-out mean is
``P_i = (n_g·ȳ_g − y_i)/(n_g − 1)``, so ``P_i − P̄_g = −(y_i − ȳ_g)/(n_g − 1)``: the *only* variation
left in ``P`` once group×year effects are absorbed is minus the municipality's own lagged value,
scaled by ``1/(n_g − 1)`` (the slope of ``P`` on the own lag within a cell is exactly
``−1/(n_g−1)``). Consequences, all tested in ``tests/test_designs_peer.py``:

1. With the own lag in the model (ANCOVA) ``P`` is perfectly collinear with it and the effects:
   :class:`~ojpanel.errors.ModelError` is raised.
2. Without the own lag (level outcome), the peer coefficient is a rescaled own-persistence slope:
   with ``d_i, e_i`` the within-cell deviations of ``y[t−L]`` and ``y[t]`` and
   ``w_g = 1/(n_g − 1)``,
   ``β̂ = −Σ_cells w_g Σ_i d_i e_i / Σ_cells w_g² Σ_i d_i²`` — exactly ``−(n−1)·b̂`` for equal group
   sizes, where ``b̂`` is the within-cell slope of ``y[t]`` on ``y[t−L]``.
3. If ``y[t] = ρ·y[t−L] + (cell effects) + ε`` with *no* peer effect, then
   ``plim β̂ = −ρ · G / Σ_g 1/(n_g − 1)`` (``−ρ`` times the harmonic mean of ``n_g − 1``): a large,
   purely mechanical negative "peer effect" (:func:`exclusion_bias`).

With group (time-invariant) effects instead of group×year effects the same term
``−(y_i − ȳ_g)/(n_g−1)`` is part of ``P``'s within variation and biases the coefficient the same
way, diluted by the genuine over-time variation of the group mean. Peer groups that differ from the
shock cells avoid the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.errors import DataError, ModelError, ParameterError
from ojpanel.models.fe import _column, fit_indicators, panel_arrays, prepare_batch
from ojpanel.models.fe_results import BatchFEResults
from ojpanel.peers import (
    NEIGHBOURS,
    improved,
    lagged,
    loo_group_mean,
    neighbour_mean,
    top_quartile_flag,
)

__all__ = [
    "OUTCOMES",
    "peer_frame",
    "fit_peer",
    "peer_placebo",
    "exclusion_bias",
    "exclusion_bias_exact",
]

OUTCOMES = ("level", "ancova", "change", "improved")


def _value(ds: xr.Dataset | xr.DataArray) -> xr.DataArray:
    if isinstance(ds, xr.Dataset):
        if "value" not in ds:
            raise DataError("the panel has no 'value' variable")
        da = ds["value"]
    else:
        da = ds
    for d in ("municipality", "year"):
        if d not in da.dims:
            raise DataError(f"the panel needs a '{d}' dimension")
    if "indicator" not in da.dims:
        da = da.expand_dims(indicator=[str(da.name or "value")])
    return da.transpose("indicator", "municipality", "year")


def _flag(p: xr.DataArray) -> xr.DataArray:
    """The audit's top-quartile flag, computed only where a year has peer values (no NaN quantiles)."""
    has = p.notnull().any("municipality")
    out = xr.full_like(p, np.nan)
    for ind in p["indicator"].values:
        yrs = p["year"].values[has.sel(indicator=ind).values]
        if yrs.size:
            sub = p.sel(indicator=[ind], year=yrs)
            out.loc[{"indicator": [ind], "year": yrs}] = top_quartile_flag(sub)
    return out


def _peer_mean(v: xr.DataArray, group: Any, weights: str, islands: str) -> xr.DataArray:
    from ojpanel.data.geo import NeighbourGraph

    if isinstance(group, NeighbourGraph):
        return neighbour_mean(v, group, weights)
    if isinstance(group, str) and group == NEIGHBOURS:
        return neighbour_mean(v, None, weights, islands=islands)
    return loo_group_mean(v, group)


def peer_frame(
    ds: xr.Dataset | xr.DataArray,
    *,
    group: Any = "county",
    lag: int = 1,
    outcome: str = "ancova",
    peer: str = "continuous",
    weights: str = "contiguity",
    islands: str = "exclude",
) -> dict[str, xr.DataArray]:
    """Outcome and regressors of the peer design as ``indicator × municipality × year`` arrays.

    ``group`` is a municipality coordinate, a DataArray of labels, ``"neighbours"`` or a
    :class:`~ojpanel.data.geo.NeighbourGraph`; ``weights`` and ``islands`` apply to neighbours.

    Returns
    -------
    dict
        ``"y"`` (outcome), ``"peer"`` (lagged leave-one-out peer mean, or the audit's top-quartile
        flag of it when ``peer="binary"``) and, for ``outcome="ancova"``, ``"own_lag"``.
    """
    if outcome not in OUTCOMES:
        raise ParameterError(f"outcome must be one of {OUTCOMES}; got {outcome!r}")
    if peer not in ("continuous", "binary"):
        raise ParameterError("peer must be 'continuous' or 'binary'")
    if int(lag) < 1:
        raise ParameterError(f"lag must be a positive number of years; got {lag}")
    v = _value(ds)
    p = lagged(_peer_mean(v, group, weights, islands), lag)
    if peer == "binary":
        p = _flag(p)
    out: dict[str, xr.DataArray] = {"peer": p}
    if outcome in ("level", "ancova"):
        out["y"] = v
    elif outcome == "change":
        out["y"] = v - lagged(v, lag)
    else:
        if "direction" not in v.coords:
            raise DataError("outcome='improved' needs the indicator coordinate 'direction'")
        d = v["direction"]
        zero = [str(i) for i in v["indicator"].values[np.asarray(d.values) == 0]]
        if zero:
            raise ParameterError(
                f"'improved' is undefined for indicators without a direction: {zero}; select "
                "indicators with direction +1/−1 or use outcome='ancova'"
            )
        out["y"] = improved(v, lag, d)
    if outcome == "ancova":
        out["own_lag"] = lagged(v, lag)
    return out


def _fit_arrays(frame: dict[str, xr.DataArray], years: Sequence[int] | None):
    y = frame["y"]
    regs = {"peer": frame["peer"]}
    if "own_lag" in frame:
        regs["own_lag"] = frame["own_lag"]
    if years is not None:
        y = y.sel(year=[int(t) for t in years])
        regs = {k: r.sel(year=[int(t) for t in years]) for k, r in regs.items()}
    return y, regs


def fit_peer(
    ds: xr.Dataset | xr.DataArray,
    *,
    group: str = "kommungrupp_2017",
    lag: int = 1,
    outcome: str = "ancova",
    peer: str = "continuous",
    shocks: str | None = "county",
    entity_effects: bool = False,
    years: Sequence[int] | None = None,
    cov: str = "clustered",
    cluster: str | Sequence[str] | None = "county",
    convention: str = "linearmodels",
    weights: str = "contiguity",
    islands: str = "exclude",
) -> BatchFEResults:
    """Peer regressions for every indicator of a panel (one vectorised pass).

    ``y[i,t] ~ peer[i,t−lag] (+ own_lag) + shocks×year effects (+ municipality effects)``.

    Parameters
    ----------
    ds
        OJ panel (``value`` with ``indicator``, ``municipality``, ``year``) with the grouping
        coordinates named in ``group``, ``shocks`` and ``cluster``.
    group
        Peer group coordinate (e.g. ``"kommungrupp_2017"``, ``"county"``), or ``"neighbours"``
        (land-border neighbours; a :class:`~ojpanel.data.geo.NeighbourGraph` also works).
    lag
        Years between the peers' results and the own outcome.
    outcome
        ``"ancova"`` (default), ``"level"``, ``"change"`` or ``"improved"``.
    peer
        ``"continuous"`` leave-one-out mean or the audit's ``"binary"`` top-quartile flag.
    shocks
        Municipality coordinate whose ×year effects are absorbed (``None``: year effects only).
    entity_effects
        Also absorb municipality effects. Off by default: with the own lag on the right-hand side
        and five years, municipality effects induce Nickell bias in the lag and, through it, in
        the peer coefficient.
    weights, islands
        Neighbour weights (``"contiguity"``, ``"border"``, ``"inverse_distance"``) and island rule
        (``"exclude"``, ``"nearest"``) for ``group="neighbours"``.
    years
        Estimation years (outcome years); default all years with data.
    cov, cluster, convention
        Standard errors (see :mod:`ojpanel.models.covariance`). Clustering by county gives 21
        clusters: prefer the wild cluster bootstrap for tests (:mod:`ojpanel.inference`).

    Raises
    ------
    ModelError
        When the peer variable is collinear with the effects and the own lag (peer group equal to
        the shock group with the ANCOVA outcome); the message explains the exclusion bias.
    """
    frame = peer_frame(ds, group=group, lag=lag, outcome=outcome, peer=peer, weights=weights,
                       islands=islands)
    y, regs = _fit_arrays(frame, years)
    other = [(shocks, "year")] if shocks else None
    try:
        res = fit_indicators(
            y.rename(outcome),
            regs,
            entity_effects=entity_effects,
            time_effects=shocks is None,
            other_effects=other,
            cov=cov,
            cluster=cluster,
            convention=convention,
        )
    except ModelError as exc:
        if "collinear" in str(exc):
            raise ModelError(
                f"the peer mean of '{group}' is collinear with {shocks}×year effects"
                + (" and the own lag" if outcome == "ancova" else "")
                + ": within a group-year cell the leave-one-out mean is (n·mean − own)/(n − 1), so"
                " its only variation is the municipality's own lagged value. Use peer groups that cut"
                " across the shock cells (e.g. group='kommungrupp_2017', shocks='county') or"
                " shocks=None. Underlying error: " + str(exc)
            ) from exc
        raise
    return res


def tidy_peer(res: BatchFEResults, ds: xr.Dataset | xr.DataArray, **meta: Any) -> pd.DataFrame:
    """Tidy rows of :func:`fit_peer` results with the indicator's area filled in."""
    out = res.to_frame(analysis="peer", **meta)
    v = _value(ds)
    if "area" in v.coords:
        area = pd.Series(
            np.asarray(v["area"].values), index=[str(i) for i in v["indicator"].values]
        )
        out["area"] = out["indicator"].map(area)
    return out


def peer_inference(
    ds: xr.Dataset | xr.DataArray,
    *,
    group: str = "kommungrupp_2017",
    lag: int = 1,
    outcome: str = "ancova",
    peer: str = "continuous",
    shocks: str | None = "county",
    entity_effects: bool = False,
    years: Sequence[int] | None = None,
    cluster: str = "county",
    convention: str = "linearmodels",
    n_draws: int = 9999,
    weights: str = "webb",
    seed: int = 0,
    client: Any | None = None,
) -> pd.DataFrame:
    """Peer coefficients for every indicator with few-cluster and multiple-testing inference.

    One tidy row per indicator (term ``peer``) with the clustered-SE p-value (``p_value``), the
    wild cluster bootstrap p-value (``p_wild``, restricted, shared weights across indicators) and
    the family-wise / false-discovery adjustments across the indicators: ``p_holm``, ``p_bh``
    (on ``p_wild``) and ``p_romano_wolf`` (stepdown on the joint bootstrap distribution).
    """
    from ojpanel.inference import benjamini_hochberg, holm, romano_wolf, wild_bootstrap_tstats

    res = fit_peer(
        ds,
        group=group,
        lag=lag,
        outcome=outcome,
        peer=peer,
        shocks=shocks,
        entity_effects=entity_effects,
        years=years,
        cov="clustered",
        cluster=cluster,
        convention=convention,
    )
    frame = peer_frame(ds, group=group, lag=lag, outcome=outcome, peer=peer)
    y, regs = _fit_arrays(frame, years)
    yy, X, labels, rows = panel_arrays(y, regs)
    n = len(rows)
    factors = [_column(rows, (shocks, "year") if shocks else "year", n)]
    if entity_effects:
        factors.append(_column(rows, "municipality", n))
    t_obs, t_boot, p_wild = wild_bootstrap_tstats(
        yy,
        X,
        _column(rows, cluster, n),
        factors=factors,
        term=list(regs).index("peer"),
        n_draws=n_draws,
        weights=weights,
        seed=seed,
        client=client,
    )
    out = tidy_peer(res, ds, peer_group=group, lag=lag, outcome=outcome, mode="improved")
    out = out[out["term"] == "peer"].reset_index(drop=True)
    order = [labels.index(i) for i in out["indicator"]]
    out["p_wild"] = p_wild[order]
    out["p_holm"] = holm(out["p_wild"].to_numpy())
    out["p_bh"] = benjamini_hochberg(out["p_wild"].to_numpy())
    out["p_romano_wolf"] = romano_wolf(t_obs, t_boot)[order]
    out["n_draws"] = t_boot.shape[0]
    return out


class _PeerStatistic:
    """Peer coefficients for relabelled groups (a picklable callable for permutation tests)."""

    def __init__(self, ds, group_name, lag, outcome, peer, shocks, entity_effects, years, term):
        v = _value(ds)
        self.v = v
        self.group_name = group_name
        self.lag, self.outcome, self.peer = lag, outcome, peer
        self.shocks, self.entity_effects, self.years, self.term = (
            shocks,
            entity_effects,
            years,
            term,
        )
        frame0 = peer_frame(v, group=group_name, lag=lag, outcome=outcome, peer=peer)
        y, regs = _fit_arrays(frame0, years)
        self.y_arr, X, self.labels, rows = panel_arrays(y, regs)
        self.names = list(regs)
        n = len(rows)
        self.factors = []
        if entity_effects:
            self.factors.append(_column(rows, "municipality", n))
        self.factors.append(_column(rows, (shocks, "year") if shocks else "year", n))
        self.X_other = X
        self.n_years = y.sizes["year"]
        self.peer_years = y["year"].values

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        g = xr.DataArray(
            np.asarray(labels), dims="municipality", coords={"municipality": self.v["municipality"]}
        )
        p = lagged(loo_group_mean(self.v, g), self.lag)
        if self.peer == "binary":
            p = _flag(p)
        p = p.sel(year=self.peer_years).transpose("indicator", "municipality", "year")
        X = self.X_other.copy()
        X[:, :, self.names.index("peer")] = p.values.reshape(X.shape[0], -1)
        fd = prepare_batch(
            self.y_arr, X, factors=self.factors, names=self.names, labels=self.labels
        )
        from ojpanel.models.within import ols_batch

        try:
            fit = ols_batch(fd.y, fd.X, fd.mask, names=fd.names, labels=fd.labels)
        except ModelError:
            return np.full(len(self.labels), np.nan)
        return fit.beta[:, self.names.index(self.term)]


def peer_placebo(
    ds: xr.Dataset | xr.DataArray,
    *,
    group: str = "kommungrupp_2017",
    lag: int = 1,
    outcome: str = "ancova",
    peer: str = "continuous",
    shocks: str | None = "county",
    entity_effects: bool = False,
    years: Sequence[int] | None = None,
    n_permutations: int = 199,
    seed: int = 0,
    client: Any | None = None,
):
    """Permutation placebo: peer coefficients with random pseudo-groups of the real sizes.

    Municipalities are reassigned to groups at random, keeping every group's size; the peer mean is
    recomputed and the regression refitted. Returns a
    :class:`~ojpanel.inference.randomization.PermutationResult` with one column per indicator
    (``observed`` = coefficients with the real groups; ``p_value`` = share of pseudo-group
    coefficients at least as large in absolute value).
    """
    from ojpanel.inference.randomization import permutation_test

    v = _value(ds)
    if isinstance(group, str) and group == NEIGHBOURS:
        raise ParameterError(
            "relabelling groups has no meaning for neighbour peers; use the rewired-graph placebo "
            "ojpanel.designs.spatial.rewiring_placebo (same degree for every municipality)"
        )
    if group not in v.coords:
        raise ParameterError(f"peer group '{group}' is not a municipality coordinate of the panel")
    stat = _PeerStatistic(v, group, lag, outcome, peer, shocks, entity_effects, years, "peer")
    labels = np.asarray(v[group].values).astype(str)
    return permutation_test(stat, labels, n_permutations=n_permutations, seed=seed, client=client)


def exclusion_bias(group_sizes: Sequence[int], rho: float) -> float:
    """Probability limit of the peer coefficient with group×year effects and no peer effect.

    ``−ρ · G / Σ_g 1/(n_g − 1)``: ``ρ`` is the within-cell slope of the outcome on the own lag and
    ``n_g`` the group sizes (see the module docstring).
    """
    n = np.asarray(group_sizes, dtype=float)
    if np.any(n < 2):
        raise ParameterError("every group needs at least two members for a leave-one-out mean")
    return float(-rho * n.size / np.sum(1.0 / (n - 1)))


def exclusion_bias_exact(
    y: np.ndarray, y_lag: np.ndarray, cells: np.ndarray, sizes: np.ndarray
) -> float:
    """The peer coefficient implied by the exclusion-bias identity, from own data only.

    ``−Σ w d e / Σ w² d²`` with within-cell deviations ``d`` (own lag) and ``e`` (outcome) and
    ``w = 1/(n_g − 1)``; equals the regression coefficient on the leave-one-out mean with cell
    effects when every cell is complete.
    """
    from ojpanel.models.within import demean

    d = demean(np.asarray(y_lag, float), cells)
    e = demean(np.asarray(y, float), cells)
    w = 1.0 / (np.asarray(sizes, float) - 1)
    return float(-np.sum(w * d * e) / np.sum(w**2 * d**2))
