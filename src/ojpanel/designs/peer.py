"""The peer design done right: do peers' past results predict a municipality's own results?

RiR 2021:17 (analysis D) regressed a binary "improved" outcome on a binary "peers above the 75th
percentile" flag. This module keeps that as one option and adds what the question needs:

* **Continuous leave-one-out peer means** ``P[i,t−L]``: the mean of the *other* municipalities of
  ``i``'s peer group (county, kommungrupp, or any municipality coordinate) at ``t − L``.
* **Neighbour peers**: ``group="neighbours"`` (or a :class:`~ojpanel.data.geo.NeighbourGraph`)
  uses the mean of the municipalities that share a land border (``weights=`` contiguity, border
  length or inverse distance; ``islands=`` rule, see :mod:`ojpanel.data.geo`). Neighbour sets
  differ for every municipality, so the exclusion bias below does not arise with county×year
  effects; the spatial yardstick design (:mod:`ojpanel.designs.spatial`) adds inference and a
  placebo that respect the geography.
* **Outcomes**: ``"level"`` (``y[t]``), ``"ancova"`` (``y[t]`` with the own lag ``y[t−L]`` as a
  regressor — compares municipalities that started equal, so regression to the mean does not
  masquerade as a peer effect), ``"change"`` (``y[t] − y[t−L]``) and the audit's binary
  ``"improved"`` (linear probability model).
* **Common shocks**: ``shocks="county"`` absorbs county×year effects (regional support that makes
  neighbours "become good at the same time"); ``shocks=None`` absorbs year effects only. The peer
  variable then has to vary *within* the shock cells — e.g. kommungrupp peers with county×year
  effects.
* **Permutation placebo** (:func:`peer_placebo`): the same regression with random pseudo-groups of
  the real sizes; the real coefficient is compared with that distribution.

The design is defined once, by :class:`PeerDesign` (variables, effects, clusters, standard errors
and their defaults); :func:`fit_peer`, :func:`peer_inference`, :func:`peer_placebo`, the power
simulation (:func:`ojpanel.designs.power.power` with ``design="peer"``) and the replication's
analysis D all go through it.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.designs.design import RegressionDesign
from ojpanel.errors import DataError, ModelError, ParameterError
from ojpanel.models.covariance import check_options
from ojpanel.models.fe import panel_arrays
from ojpanel.models.fe_results import BatchFEResults
from ojpanel.models.within import ols_batch, prepare_batch
from ojpanel.peers import (
    NEIGHBOURS,
    group_codes,
    improved,
    lagged,
    loo_group_mean,
    loo_mean_np,
    neighbour_mean,
    neighbour_mean_np,
    top_quartile_flag,
)

__all__ = [
    "OUTCOMES",
    "PEERS",
    "PeerDesign",
    "peer_frame",
    "fit_peer",
    "tidy_peer",
    "peer_inference",
    "peer_placebo",
    "exclusion_bias",
    "exclusion_bias_exact",
]

OUTCOMES = ("level", "ancova", "change", "improved")
PEERS = ("continuous", "binary")


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


@dataclass(frozen=True)
class PeerDesign(RegressionDesign):
    """The peer design, defined once: ``y[i,t] ~ peer[i,t−lag] (+ own_lag) + shocks×year effects
    (+ municipality effects)``, clustered.

    Parameters
    ----------
    group
        Peer group: a municipality coordinate (``"kommungrupp_2017"``, ``"county"``) or labels.
    lag
        Years between the peers' results and the own outcome.
    outcome
        ``"ancova"`` (``y[t]`` with the own lag as a regressor), ``"level"``, ``"change"`` or the
        audit's binary ``"improved"``.
    peer
        ``"continuous"`` leave-one-out mean or the audit's ``"binary"`` flag (above the
        ``quantile`` of the year's peer means).
    shocks
        Municipality coordinate whose ×year effects are absorbed (``None``: year effects only).
    entity_effects
        Also absorb municipality effects. Off by default: with the own lag on the right-hand side
        and few years, municipality effects induce Nickell bias in the lag and, through it, in the
        peer coefficient.
    cov, cluster, convention
        Standard errors (:mod:`ojpanel.models.covariance`). ``"stata"`` (``G/(G−1)`` scaling, t
        with ``G−1`` df) is the usual few-cluster choice; 21 county clusters are few, so prefer the
        wild cluster bootstrap for tests (:meth:`wild_bootstrap`).
    quantile
        Threshold of the binary peer flag.
    weights, islands
        For neighbour peers (``group="neighbours"`` or a :class:`~ojpanel.data.geo.NeighbourGraph`):
        the neighbour weights (``"contiguity"``, ``"border"``, ``"inverse_distance"``) and the
        island rule (``"exclude"``, ``"nearest"``; see :mod:`ojpanel.data.geo`).
    """

    group: str | xr.DataArray = "kommungrupp_2017"
    lag: int = 1
    outcome: str = "ancova"
    peer: str = "continuous"
    shocks: str | None = "county"
    entity_effects: bool = False
    cov: str = "clustered"
    cluster: str | None = "county"
    convention: str = "stata"
    quantile: float = 0.75
    weights: str = "contiguity"
    islands: str = "exclude"

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ParameterError(f"outcome must be one of {OUTCOMES}; got {self.outcome!r}")
        if self.peer not in PEERS:
            raise ParameterError(f"peer must be one of {PEERS}; got {self.peer!r}")
        if int(self.lag) < 1:
            raise ParameterError(f"lag must be a positive number of years; got {self.lag}")
        check_options(self.cov, self.convention)

    def but(self, **changes: Any) -> PeerDesign:
        """A copy with some settings changed (e.g. ``design.but(group=pseudo_groups)``)."""
        return replace(self, **changes)

    # --- variables -----------------------------------------------------------------------
    @property
    def regressors(self) -> tuple[str, ...]:
        """Regressor names, the peer variable first."""
        return ("peer", "own_lag") if self.outcome == "ancova" else ("peer",)

    @property
    def neighbours(self) -> bool:
        """Whether the peers are land neighbours rather than a grouping."""
        from ojpanel.data.geo import NeighbourGraph

        return isinstance(self.group, NeighbourGraph) or (
            isinstance(self.group, str) and self.group == NEIGHBOURS
        )

    def peer_mean(self, v: xr.DataArray) -> xr.DataArray:
        """The leave-one-out mean of every municipality's peers (same year)."""
        if not self.neighbours:
            return loo_group_mean(v, self.group)
        graph = None if isinstance(self.group, str) else self.group
        return neighbour_mean(v, graph, self.weights, islands=self.islands)

    def peer_matrix(self, v: xr.DataArray) -> np.ndarray:
        """The peer weights ``W`` (municipality × municipality, zero diagonal) behind :meth:`peer_mean`.

        ``peer_mean`` is ``Σ_j w_ij·y_j / Σ_j w_ij·1{y_j present}``: for a grouping ``w_ij = 1`` for
        the other members of ``i``'s group (the leave-one-out mean), for neighbours the neighbour
        weights (:func:`ojpanel.data.geo.weights_matrix`). Simulations (:func:`ojpanel.designs.power.power`)
        apply these weights to simulated values (through :meth:`peer_mean_np`), so they plant the
        effect of the peers the design tests.
        """
        codes = [str(c) for c in v["municipality"].values]
        if self.neighbours:
            from ojpanel.data.geo import neighbour_graph, weights_matrix

            graph = self.group if not isinstance(self.group, str) else neighbour_graph(islands=self.islands)
            return weights_matrix(graph, self.weights, codes=codes)
        codes = self._group_codes(v)
        W = ((codes[:, None] == codes[None, :]) & (codes[:, None] >= 0)).astype(float)
        np.fill_diagonal(W, 0.0)
        return W

    def peer_mean_np(self, v: xr.DataArray) -> Callable[[np.ndarray], np.ndarray]:
        """:meth:`peer_mean` as a function of plain values ``(municipality, k)`` ordered like ``v``.

        The same weights as :meth:`peer_matrix`, applied the fast way: a grouping's leave-one-out
        mean (:func:`~ojpanel.peers.loo_mean_np`) or the neighbour-weighted mean
        (:func:`~ojpanel.peers.neighbour_mean_np`). Simulations call it once per simulated year.
        """
        if self.neighbours:
            return partial(neighbour_mean_np, W=self.peer_matrix(v))
        return partial(loo_mean_np, group_codes=self._group_codes(v))

    def _group_codes(self, v: xr.DataArray) -> np.ndarray:
        """The grouping's code of every municipality of ``v`` (-1: no group, so no peers)."""
        if isinstance(self.group, str) and self.group not in v.coords:
            raise ParameterError(f"peer group '{self.group}' is not a municipality coordinate of the panel")
        return group_codes(v, self.group)

    def peer_variable(self, ds: xr.Dataset | xr.DataArray) -> xr.DataArray:
        """The lagged leave-one-out peer mean (or its top-quantile flag) of every municipality."""
        v = _value(ds)
        p = lagged(self.peer_mean(v), self.lag)
        return top_quartile_flag(p, self.quantile) if self.peer == "binary" else p

    def variables(self, ds: xr.Dataset | xr.DataArray) -> dict[str, xr.DataArray]:
        """Outcome ``"y"`` and regressors (``"peer"``, ``"own_lag"``) as ``indicator ×
        municipality × year`` arrays."""
        v = _value(ds)
        out: dict[str, xr.DataArray] = {"peer": self.peer_variable(v)}
        if self.outcome in ("level", "ancova"):
            out["y"] = v
        elif self.outcome == "change":
            out["y"] = v - lagged(v, self.lag)
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
            out["y"] = improved(v, self.lag, d)
        if self.outcome == "ancova":
            out["own_lag"] = lagged(v, self.lag)
        return out

    def arrays(
        self, ds: xr.Dataset | xr.DataArray, years: Sequence[int] | None = None
    ) -> tuple[xr.DataArray, dict[str, xr.DataArray]]:
        """Outcome and regressors restricted to the estimation ``years`` (outcome years)."""
        f = self.variables(ds)
        y, regs = f["y"], {k: f[k] for k in self.regressors}
        if years is not None:
            sel = [int(t) for t in years]
            y, regs = y.sel(year=sel), {k: r.sel(year=sel) for k, r in regs.items()}
        return y, regs

    # --- effects and clusters -------------------------------------------------------------
    def effects(self) -> dict[str, Any]:
        """The absorbed effects, as :func:`ojpanel.models.fe.fit_indicators` takes them."""
        return {
            "entity_effects": self.entity_effects,
            "time_effects": self.shocks is None,
            "other_effects": [(self.shocks, "year")] if self.shocks else None,
        }

    # --- estimation and inference ----------------------------------------------------------
    def fit(self, ds: xr.Dataset | xr.DataArray, years: Sequence[int] | None = None) -> BatchFEResults:
        """Peer regressions for every indicator of a panel (one vectorised pass).

        Raises
        ------
        ModelError
            When the peer variable is collinear with the effects and the own lag (peer group equal
            to the shock group with the ANCOVA outcome); the message explains the exclusion bias.
        """
        y, regs = self.arrays(ds, years)
        try:
            return self.fit_arrays(y.rename(self.outcome), regs)
        except ModelError as exc:
            if "collinear" not in str(exc):
                raise
            group = self.group if isinstance(self.group, str) else "the peer groups"
            if self.neighbours:
                raise
            raise ModelError(
                f"the peer mean of '{group}' is collinear with {self.shocks}×year effects"
                + (" and the own lag" if self.outcome == "ancova" else "")
                + ": within a group-year cell the leave-one-out mean is (n·mean − own)/(n − 1), so"
                " its only variation is the municipality's own lagged value. Use peer groups that cut"
                " across the shock cells (e.g. group='kommungrupp_2017', shocks='county') or"
                " shocks=None. Underlying error: " + str(exc)
            ) from exc

    def wild_bootstrap(
        self,
        ds: xr.Dataset | xr.DataArray,
        years: Sequence[int] | None = None,
        *,
        n_draws: int = 9999,
        weights: str = "webb",
        seed: int = 0,
        client: Any | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """Wild cluster bootstrap of the peer coefficient for every indicator, with shared weights.

        Returns ``t_obs (K,)``, ``t_boot (B, K)``, ``p_wild (K,)`` and the indicator labels.
        """
        from ojpanel.inference import wild_bootstrap_tstats

        if self.cluster is None:
            raise ParameterError("the wild cluster bootstrap needs cluster=...")
        y, regs = self.arrays(ds, years)
        yy, X, labels, rows = panel_arrays(y, regs)
        t_obs, t_boot, p_wild = wild_bootstrap_tstats(
            yy, X, self.clusters(rows)[0], factors=self.factors(rows), term=0,
            n_draws=n_draws, weights=weights, seed=seed, client=client,
        )  # fmt: skip
        return t_obs, t_boot, p_wild, labels

    def placebo(
        self,
        ds: xr.Dataset | xr.DataArray,
        years: Sequence[int] | None = None,
        *,
        n_permutations: int = 199,
        seed: int = 0,
        client: Any | None = None,
    ):
        """Permutation placebo: peer coefficients with random pseudo-groups of the real sizes.

        Returns a :class:`~ojpanel.inference.randomization.PermutationResult` with one column per
        indicator (``observed`` = coefficients with the real groups).
        """
        from ojpanel.inference.randomization import permutation_test

        v = _value(ds)
        if self.neighbours:
            raise ParameterError(
                "relabelling groups has no meaning for neighbour peers; use the rewired-graph placebo "
                "ojpanel.designs.spatial.rewiring_placebo (same degree for every municipality)"
            )
        if isinstance(self.group, str) and self.group not in v.coords:
            raise ParameterError(f"peer group '{self.group}' is not a municipality coordinate of the panel")
        labels = np.asarray(
            v[self.group].values if isinstance(self.group, str) else np.asarray(self.group)
        ).astype(str)
        stat = PeerStatistic(self, v, years)
        return permutation_test(stat, labels, n_permutations=n_permutations, seed=seed, client=client)


class PeerStatistic:
    """Peer coefficients of a design for relabelled groups (a picklable callable for permutation
    tests): the outcome, the other regressors and the effects are absorbed once."""

    def __init__(self, design: PeerDesign, ds: xr.Dataset | xr.DataArray, years=None) -> None:
        self.design = design
        self.v = _value(ds)
        y, regs = design.arrays(self.v, years)
        self.y, self.X, self.labels, self.rows = panel_arrays(y, regs)
        self.years = y["year"].values

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        g = xr.DataArray(
            np.asarray(labels), dims="municipality", coords={"municipality": self.v["municipality"]}
        )
        p = self.design.but(group=g).peer_variable(self.v).sel(year=self.years)
        X = self.X.copy()
        X[:, :, 0] = p.transpose("indicator", "municipality", "year").values.reshape(X.shape[0], -1)
        fd = prepare_batch(self.y, X, factors=self.design.factors(self.rows), labels=self.labels)
        try:
            fit = ols_batch(fd.y, fd.X, fd.mask, labels=fd.labels)
        except ModelError:
            return np.full(len(self.labels), np.nan)
        return fit.beta[:, 0]


# ------------------------------------------------------------------------------------------
# The functional entry points (each builds the design and calls it)
# ------------------------------------------------------------------------------------------


def peer_frame(
    ds: xr.Dataset | xr.DataArray,
    *,
    group: str | xr.DataArray = "county",
    lag: int = 1,
    outcome: str = "ancova",
    peer: str = "continuous",
) -> dict[str, xr.DataArray]:
    """Outcome and regressors of the peer design as ``indicator × municipality × year`` arrays.

    Returns
    -------
    dict
        ``"y"`` (outcome), ``"peer"`` (lagged leave-one-out peer mean, or the audit's top-quartile
        flag of it when ``peer="binary"``) and, for ``outcome="ancova"``, ``"own_lag"``.
    """
    return PeerDesign(group=group, lag=lag, outcome=outcome, peer=peer).variables(ds)


def fit_peer(
    ds: xr.Dataset | xr.DataArray,
    *,
    years: Sequence[int] | None = None,
    **design: Any,
) -> BatchFEResults:
    """Peer regressions for every indicator of a panel: :meth:`PeerDesign.fit`.

    Parameters
    ----------
    ds
        OJ panel (``value`` with ``indicator``, ``municipality``, ``year``) with the grouping
        coordinates named in ``group``, ``shocks`` and ``cluster``.
    years
        Estimation years (outcome years); default all years with data.
    **design
        Settings of :class:`PeerDesign` (``group`` — a grouping or ``"neighbours"`` —, ``lag``,
        ``outcome``, ``peer``, ``shocks``, ``entity_effects``, ``cov``, ``cluster``,
        ``convention``, and for neighbours ``weights``, ``islands``); its defaults otherwise.
    """
    return PeerDesign(**design).fit(ds, years)


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
    years: Sequence[int] | None = None,
    n_draws: int = 9999,
    bootstrap_weights: str = "webb",
    seed: int = 0,
    client: Any | None = None,
    **design: Any,
) -> pd.DataFrame:
    """Peer coefficients for every indicator with few-cluster and multiple-testing inference.

    One tidy row per indicator (term ``peer``) with the clustered-SE p-value (``p_value``), the
    wild cluster bootstrap p-value (``p_wild``, restricted, shared weights across indicators) and
    the family-wise / false-discovery adjustments across the indicators: ``p_holm``, ``p_bh``
    (on ``p_wild``) and ``p_romano_wolf`` (stepdown on the joint bootstrap distribution).
    ``design`` are settings of :class:`PeerDesign` (standard errors are clustered; ``weights``
    is the neighbour weighting); ``bootstrap_weights`` are the wild bootstrap's (``"webb"`` or
    ``"rademacher"``).
    """
    from ojpanel.inference import benjamini_hochberg, holm, romano_wolf

    d = PeerDesign(**{**design, "cov": "clustered"})
    res = d.fit(ds, years)
    t_obs, t_boot, p_wild, labels = d.wild_bootstrap(
        ds, years, n_draws=n_draws, weights=bootstrap_weights, seed=seed, client=client
    )
    group = d.group if isinstance(d.group, str) else "custom"
    out = tidy_peer(res, ds, peer_group=group, lag=d.lag, outcome=d.outcome, mode="improved")
    out = out[out["term"] == "peer"].reset_index(drop=True)
    order = [labels.index(i) for i in out["indicator"]]
    out["p_wild"] = p_wild[order]
    out["p_holm"] = holm(out["p_wild"].to_numpy())
    out["p_bh"] = benjamini_hochberg(out["p_wild"].to_numpy())
    out["p_romano_wolf"] = romano_wolf(t_obs, t_boot)[order]
    out["n_draws"] = t_boot.shape[0]
    return out


def peer_placebo(
    ds: xr.Dataset | xr.DataArray,
    *,
    years: Sequence[int] | None = None,
    n_permutations: int = 199,
    seed: int = 0,
    client: Any | None = None,
    **design: Any,
):
    """Permutation placebo of the peer design: :meth:`PeerDesign.placebo`.

    Municipalities are reassigned to groups at random, keeping every group's size; the peer mean is
    recomputed and the regression refitted. Returns a
    :class:`~ojpanel.inference.randomization.PermutationResult` with one column per indicator
    (``observed`` = coefficients with the real groups; ``p_value`` = share of pseudo-group
    coefficients at least as large in absolute value).
    """
    return PeerDesign(**design).placebo(
        ds, years, n_permutations=n_permutations, seed=seed, client=client
    )


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
