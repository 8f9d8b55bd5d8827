"""The spatial yardstick design: does a municipality's result follow its neighbours' past results?

Yardstick competition between local governments is tested between *neighbours* (Revelli 2006,
J. Public Econ.; Revelli & Tovmo 2007, J. Urban Econ.). The design here is

``y[i,t] = β · (W y)[i,t−L] (+ ρ · y[i,t−L]) + α_i + δ_t (or δ_{county,t}) + ε[i,t]``

with ``(W y)[i,t]`` the mean of ``i``'s land-border neighbours (:func:`ojpanel.peers.neighbour_mean`:
contiguity, border-length or inverse-distance weights; an explicit island rule), municipality
effects ``α_i`` and year or county×year effects. It is fitted for every indicator at once by the
package's one estimation core (:func:`ojpanel.models.fe.fit_indicators`).

Manski's reflection problem and what addresses it
--------------------------------------------------
With *contemporaneous* neighbour means, ``y`` appears on both sides and ``β`` is not identified
from mean outcomes (Manski 1993). The design uses

1. **lagged** neighbour results (``L ≥ 1``): the right-hand side is predetermined at ``t``, so there
   is no simultaneity; what remains are correlated shocks;
2. **county×year effects** (``shocks="county"``) absorb regional shocks common to a county (most
   neighbours lie in the same county);
3. a **lead placebo**: the neighbours' result at ``t+L`` should not "predict" the own result at
   ``t`` if ``β`` reflects mimicking; a lead coefficient as large as the lag coefficient points to
   spatially correlated persistent shocks instead (``lead`` rows of :func:`fit_yardstick`);
4. a **rewired-graph placebo** (:func:`rewiring_placebo`): the same regression with random graphs
   in which every municipality keeps its number of neighbours (degree-preserving double-edge
   swaps) but the neighbours are no longer near. If geography carries the result, the real
   coefficient lies in the tail of the placebo distribution.

What remains: with municipality effects the within transformation puts ``ε[i,t−L]/T`` into the
error of year ``t``; if shocks are spatially correlated, the lagged neighbour mean is correlated
with it, a bias of order ``1/T`` even without mimicking (the same source as Nickell bias). The
lead placebo is exposed to it as well, which is one more reason to read ``β`` beside the lead and
rewired placebos rather than alone.

Inference that respects spatial dependence
------------------------------------------
Residuals of neighbouring municipalities are correlated, and each municipality's residuals are
correlated over time. :func:`conley_covariance` (Conley 1999) sums score products over all pairs
of municipalities within ``cutoff_km`` in the same year, with Bartlett weights ``1 − d/cutoff``
(or uniform), plus all products within a municipality across years (a municipality cluster):
``V = A·[Σ_t S_tᵀ K S_t + Σ_i Σ_{t≠s} s_it s_isᵀ]·A``, ``A = (X̃ᵀX̃)⁻¹`` on the within-transformed
regressors, no small-sample scaling, normal reference. With a cutoff below the smallest distance
it is the municipality-clustered sandwich; with a uniform kernel and an infinite cutoff and no
serial part it is the year-clustered one (both tested against statsmodels). The clustered
alternative (``cov="clustered"``, county clusters: 21 clusters that contain most neighbour pairs)
is reported beside it; the wild cluster bootstrap of :mod:`ojpanel.inference` applies to that.

Power is simulated on the real graph (:func:`yardstick_power`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse, stats

from ojpanel.core.parallel import chunk_sizes, map_seeded
from ojpanel.data.geo import (
    NeighbourGraph,
    centroids,
    haversine_km,
    neighbour_graph,
    weights_matrix,
)
from ojpanel.designs.power import PowerResult, interpolate_mde, variance_components
from ojpanel.errors import DataError, ModelError, ParameterError
from ojpanel.models.fe import fit_indicators, panel_arrays, prepare_batch
from ojpanel.models.fe_results import BatchFEResults
from ojpanel.models.within import factorize, ols_batch
from ojpanel.peers import lagged, neighbour_mean, neighbour_mean_np

__all__ = [
    "SHOCKS",
    "KERNELS",
    "yardstick_frame",
    "fit_yardstick",
    "conley_covariance",
    "distance_matrix",
    "YardstickResult",
    "yardstick",
    "rewire",
    "rewiring_placebo",
    "yardstick_power",
]

SHOCKS = ("year", "county")
KERNELS = ("bartlett", "uniform")


def _value(ds: xr.Dataset | xr.DataArray) -> xr.DataArray:
    da = ds["value"] if isinstance(ds, xr.Dataset) else ds
    for d in ("municipality", "year"):
        if d not in da.dims:
            raise DataError(f"the panel needs a '{d}' dimension")
    if "indicator" not in da.dims:
        da = da.expand_dims(indicator=[str(da.name or "value")])
    if "county" not in da.coords:
        raise DataError("the spatial yardstick design needs the municipality coordinate 'county'")
    return da.transpose("indicator", "municipality", "year")


def _graph(graph: NeighbourGraph | None, islands: str) -> NeighbourGraph:
    return graph if graph is not None else neighbour_graph(islands=islands)


def yardstick_frame(
    ds: xr.Dataset | xr.DataArray,
    *,
    lag: int = 1,
    weights: str = "contiguity",
    islands: str = "exclude",
    graph: NeighbourGraph | None = None,
    own_lag: bool = False,
    lead: bool = False,
) -> dict[str, xr.DataArray]:
    """Outcome and regressors as ``indicator × municipality × year`` arrays.

    ``"y"``, ``"neighbour_lag"`` (``(W y)[t−lag]``), optionally ``"own_lag"`` (``y[t−lag]``) and
    ``"neighbour_lead"`` (``(W y)[t+lag]``, the placebo).
    """
    if int(lag) < 1:
        raise ParameterError(f"lag must be a positive number of years; got {lag}")
    v = _value(ds)
    wy = neighbour_mean(v, _graph(graph, islands), weights)
    out = {"y": v, "neighbour_lag": lagged(wy, lag)}
    if own_lag:
        out["own_lag"] = lagged(v, lag)
    if lead:
        out["neighbour_lead"] = lagged(wy, -lag)
    return out


def _effects(shocks: str) -> tuple[bool, list | None]:
    if shocks not in SHOCKS:
        raise ParameterError(f"shocks must be one of {SHOCKS}; got {shocks!r}")
    return (shocks == "year"), ([("county", "year")] if shocks == "county" else None)


def _design_arrays(
    ds: xr.Dataset | xr.DataArray,
    graph: NeighbourGraph,
    *,
    lag: int,
    weights: str,
    own_lag: bool,
    years: Sequence[int] | None,
    lead: bool = False,
) -> dict[str, xr.DataArray]:
    """:func:`yardstick_frame` on the estimation ``years``: the one builder behind the fit, the
    Conley inference and the rewiring placebo, so all three regress the same rows."""
    frame = yardstick_frame(ds, lag=lag, weights=weights, graph=graph, own_lag=own_lag, lead=lead)
    if years is None:
        return frame
    ys = [int(t) for t in years]
    return {k: v.sel(year=ys) for k, v in frame.items()}


def fit_yardstick(
    ds: xr.Dataset | xr.DataArray,
    *,
    lag: int = 1,
    weights: str = "contiguity",
    islands: str = "exclude",
    graph: NeighbourGraph | None = None,
    shocks: str = "year",
    own_lag: bool = False,
    lead: bool = False,
    years: Sequence[int] | None = None,
    cov: str = "clustered",
    cluster: str | None = "county",
    convention: str = "linearmodels",
) -> BatchFEResults:
    """Fixed-effects fits of the yardstick regression for every indicator (module docstring).

    Municipality effects are always absorbed; ``shocks`` adds year (``"year"``) or county×year
    (``"county"``) effects. ``lead=True`` adds the placebo regressor ``neighbour_lead``.
    """
    time_fx, other = _effects(shocks)
    frame = _design_arrays(ds, _graph(graph, islands), lag=lag, weights=weights, own_lag=own_lag,
                           years=years, lead=lead)
    y = frame.pop("y")
    try:
        return fit_indicators(y.rename("y"), frame, entity_effects=True, time_effects=time_fx,
                              other_effects=other, cov=cov, cluster=cluster, convention=convention)
    except ModelError as exc:
        raise ModelError(f"the yardstick regression could not be fitted: {exc}") from exc


# ------------------------------------------------------------------------------------------
# Conley covariance
# ------------------------------------------------------------------------------------------


def distance_matrix(codes: Sequence[str]) -> np.ndarray:
    """Great-circle distances (km) between the municipalities' centroids, in the order of ``codes``."""
    c = centroids().set_index("municipality")
    missing = sorted(set(map(str, codes)) - set(c.index))
    if missing:
        raise ParameterError(f"no boundary for municipalities {missing[:5]}")
    c = c.loc[[str(x) for x in codes]]
    lon, lat = c["lon"].to_numpy(), c["lat"].to_numpy()
    return haversine_km(lon[:, None], lat[:, None], lon[None], lat[None])


def _kernel(dist: np.ndarray, cutoff_km: float, kernel: str) -> np.ndarray:
    if kernel not in KERNELS:
        raise ParameterError(f"kernel must be one of {KERNELS}; got {kernel!r}")
    if not cutoff_km > 0:
        raise ParameterError(f"cutoff_km must be positive; got {cutoff_km}")
    if kernel == "uniform":
        return (dist <= cutoff_km).astype(float)
    return np.clip(1 - dist / cutoff_km, 0, None)


def conley_covariance(
    X: np.ndarray,
    resid: np.ndarray,
    xtx_inv: np.ndarray,
    mask: np.ndarray,
    dist: np.ndarray,
    n_years: int,
    *,
    cutoff_km: float = 100.0,
    kernel: str = "bartlett",
    serial: bool = True,
) -> np.ndarray:
    """Conley spatial-HAC covariance of stacked fits (module docstring for the formula).

    Parameters
    ----------
    X, resid, xtx_inv, mask
        Within-transformed regressors ``(B, n, k)``, residuals ``(B, n)``, ``(X̃ᵀX̃)⁻¹``
        ``(B, k, k)`` and sample mask ``(B, n)``; rows ordered municipality-major
        (``n = N·n_years``), as :func:`ojpanel.models.fe.panel_arrays` orders them.
    dist
        ``(N, N)`` distances in km between the municipalities.
    cutoff_km, kernel
        Spatial window and its weights (``"bartlett"`` or ``"uniform"``).
    serial
        Add all within-municipality products across years (clustering by municipality).
    """
    B, n, k = X.shape
    N = dist.shape[0]
    if n != N * n_years:
        raise ParameterError(f"{n} rows do not form {N} municipalities × {n_years} years")
    K = _kernel(dist, cutoff_km, kernel)
    s = np.where(mask[..., None], X * np.where(mask, resid, 0.0)[..., None], 0.0)
    s = s.reshape(B, N, n_years, k)
    meat = np.einsum("bitk,ij,bjtl->bkl", s, K, s, optimize=True)
    if serial:
        tot = s.sum(2)
        meat += np.einsum("bik,bil->bkl", tot, tot) - np.einsum("bitk,bitl->bkl", s, s)
    V = xtx_inv @ meat @ xtx_inv
    V = (V + np.swapaxes(V, 1, 2)) / 2
    return V


def _prepared(frame: dict[str, xr.DataArray], shocks: str):
    y = frame["y"]
    regs = {k: v for k, v in frame.items() if k != "y"}
    yy, X, labels, rows = panel_arrays(y, regs)
    factors = [factorize(rows["municipality"].astype(str).to_numpy())]
    if shocks == "county":
        factors.append(factorize((rows["county"].astype(str) + "_" + rows["year"].astype(str)).to_numpy()))
    else:
        factors.append(factorize(rows["year"].to_numpy()))
    clusters = [factorize(rows["county"].astype(str).to_numpy())]
    return yy, X, labels, rows, factors, clusters, list(regs)


# ------------------------------------------------------------------------------------------
# The design as one call
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class YardstickResult:
    """Yardstick coefficients per indicator with Conley and county-clustered inference."""

    table: pd.DataFrame
    settings: dict = field(default_factory=dict)
    placebo: pd.DataFrame | None = None

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows: ``indicator, term, estimate, std_error_conley, p_conley, std_error_county,
        p_county, n_obs, …`` (``term`` = ``neighbour_lag`` or the ``neighbour_lead`` placebo)."""
        return self.table.copy()

    @property
    def summary(self) -> str:
        """Plain-text table and the settings."""
        s = self.settings
        head = (f"Spatial yardstick: y[t] on neighbours' y[t−{s.get('lag')}] ({s.get('weights')} weights, "
                f"islands={s.get('islands')!r}), municipality + "
                f"{'year' if s.get('shocks') == 'year' else 'county×year'} effects; "
                f"Conley SE (cutoff {s.get('cutoff_km')} km, {s.get('kernel')}) and county clusters")
        cols = ["indicator", "term", "estimate", "std_error_conley", "p_conley", "std_error_county",
                "p_county", "n_obs"]
        out = [head, self.table[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}")]
        if self.placebo is not None:
            out.append("Rewired-graph placebo:")
            out.append(self.placebo.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        if s.get("without_neighbours"):
            out.append(f"Without neighbours (left out): {s['without_neighbours']}")
        return "\n".join(out)

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False)


def yardstick(
    ds: xr.Dataset | xr.DataArray,
    *,
    lag: int = 1,
    weights: str = "contiguity",
    islands: str = "exclude",
    graph: NeighbourGraph | None = None,
    shocks: str = "year",
    own_lag: bool = False,
    years: Sequence[int] | None = None,
    cutoff_km: float = 100.0,
    kernel: str = "bartlett",
    lead_placebo: bool = True,
) -> YardstickResult:
    """The yardstick regression with Conley and county-clustered inference, and the lead placebo.

    The lead placebo is a separate regression (``y[t]`` on ``(W y)[t+lag]`` with the same
    effects), so that the main coefficient is the same with or without it.
    """
    g = _graph(graph, islands)
    rows = []
    specs = [("neighbour_lag", False)] + ([("neighbour_lead", True)] if lead_placebo else [])
    for term, is_lead in specs:
        frame = _design_arrays(ds, g, lag=lag, weights=weights, own_lag=own_lag, years=years,
                               lead=is_lead)
        if is_lead:
            frame.pop("neighbour_lag")
        yy, X, labels, _, factors, clusters, names = _prepared(frame, shocks)
        fd = prepare_batch(yy, X, factors=factors, clusters=clusters, names=names, labels=labels)
        try:
            fit = ols_batch(fd.y, fd.X, fd.mask, names=fd.names, labels=fd.labels)
        except ModelError as exc:
            raise ModelError(f"the yardstick regression could not be fitted: {exc}") from exc
        N = frame["y"].sizes["municipality"]
        T = frame["y"].sizes["year"]
        V = conley_covariance(fd.X, fit.resid, fit.xtx_inv, fd.mask,
                              distance_matrix(frame["y"]["municipality"].values), T,
                              cutoff_km=cutoff_km, kernel=kernel)
        time_fx, other = _effects(shocks)
        y = frame.pop("y")
        cl = fit_indicators(y.rename("y"), frame, entity_effects=True, time_effects=time_fx,
                            other_effects=other, cov="clustered", cluster="county")
        j = names.index(term)
        for b, lab in enumerate(labels):
            est = float(fit.beta[b, j])
            if V[b, j, j] <= 0:
                raise ModelError(f"the Conley variance of {lab} is not positive; use kernel='uniform' "
                                 "or a different cutoff")
            se = float(np.sqrt(V[b, j, j]))
            rows.append({
                "analysis": "spatial_yardstick", "indicator": lab, "term": term, "estimate": est,
                "std_error_conley": se, "p_conley": float(2 * stats.norm.sf(abs(est / se))),
                "std_error_county": float(cl.std_errors.loc[lab, term]),
                "p_county": float(cl.pvalues.loc[lab, term]),
                "n_obs": int(fd.mask[b].sum()), "n_municipalities": int(N),
            })
    table = pd.DataFrame(rows)
    v = _value(ds)
    if "area" in v.coords:
        area = pd.Series(np.asarray(v["area"].values), index=[str(i) for i in v["indicator"].values])
        table["area"] = table["indicator"].map(area)
    settings = {"lag": lag, "weights": weights, "islands": g.islands, "contiguity": g.contiguity,
                "shocks": shocks, "own_lag": own_lag, "cutoff_km": cutoff_km, "kernel": kernel,
                "without_neighbours": ",".join(g.isolated)}
    return YardstickResult(table=table, settings=settings)


# ------------------------------------------------------------------------------------------
# Degree-preserving rewiring and the placebo
# ------------------------------------------------------------------------------------------


def rewire(graph: NeighbourGraph, rng: np.random.Generator, *, swaps_per_edge: int = 10) -> NeighbourGraph:
    """A random graph with every municipality's degree unchanged (double-edge swaps).

    Repeatedly picks two edges ``a–b``, ``c–d`` and replaces them by ``a–d``, ``c–b`` (or
    ``a–c``, ``b–d``), rejecting swaps that would create a self-loop or a duplicate edge, until
    ``swaps_per_edge × edges`` swaps succeeded (Maslov & Sneppen 2002). An edge keeps the border
    length of the edge it came from, so border-length weights stay comparable.
    """
    e = graph.edges
    und = e[e["municipality"] < e["neighbour"]]
    km = und["shared_border_km"].to_numpy(float).copy()
    m = len(und)
    if m < 2:
        raise ParameterError("a graph needs at least two edges to be rewired")
    # municipalities as integers and an edge as one integer key: the loop runs on plain ints
    names, ends = np.unique(np.concatenate([und["municipality"].to_numpy(), und["neighbour"].to_numpy()]),
                            return_inverse=True)
    n = len(names)
    a, b = ends[:m].tolist(), ends[m:].tolist()

    def key(x: int, y: int) -> int:
        return x * n + y if x < y else y * n + x

    present = {key(x, y) for x, y in zip(a, b, strict=True)}
    target, done, tries = swaps_per_edge * m, 0, 0
    # candidate swaps drawn in blocks (one call per block rather than two per candidate)
    block = max(1024, target)
    pairs: list[list[int]] = []
    flips: list[bool] = []
    k = 0
    while done < target:
        if k == len(pairs):
            pairs, flips, k = rng.integers(0, m, (block, 2)).tolist(), (rng.random(block) < 0.5).tolist(), 0
        (i, j), flip = pairs[k], flips[k]
        k += 1
        tries += 1
        if tries > 100 * target:
            raise ModelError("rewiring stalled: too few admissible swaps in this graph")
        if i == j:
            continue
        p0, p1 = a[i], b[i]
        q0, q1 = (b[j], a[j]) if flip else (a[j], b[j])
        if p0 == q1 or q0 == p1:
            continue
        f1, f2 = key(p0, q1), key(q0, p1)
        if f1 in present or f2 in present or f1 == f2:
            continue
        present.difference_update((key(p0, p1), key(q0, q1)))
        present.update((f1, f2))
        a[i], b[i] = p0, q1
        a[j], b[j] = q0, p1
        done += 1
    a, b = names[a], names[b]
    edges = pd.DataFrame({"municipality": np.concatenate([a, b]), "neighbour": np.concatenate([b, a]),
                          "shared_border_km": np.concatenate([km, km])})
    edges = edges.sort_values(["municipality", "neighbour"]).reset_index(drop=True)
    return replace(graph, edges=edges)


class _RewiredStatistic:
    """Yardstick coefficients of every indicator under a rewired graph (picklable for dask)."""

    def __init__(self, ds, graph, weights, lag, shocks, own_lag, years):
        v = _value(ds)
        frame = _design_arrays(v, graph, lag=lag, weights=weights, own_lag=own_lag, years=years)
        yy, X, labels, _, factors, _, names = _prepared(frame, shocks)
        self.graph, self.weights, self.lag = graph, weights, lag
        self.yy, self.X, self.labels, self.factors, self.names = yy, X, labels, factors, names
        self.years = frame["y"]["year"].values
        self.codes = [str(c) for c in v["municipality"].values]
        # the neighbour lag in plain arrays (as lagged() places it, by year label): the value of
        # year t − lag at t, where that year is in the panel
        self.values = v.transpose("municipality", "indicator", "year").values
        position = {int(y): i for i, y in enumerate(v["year"].values)}
        self.source = np.array([position.get(int(t) - lag, -1) for t in self.years])

    def coefficients(self, graph: NeighbourGraph) -> np.ndarray:
        W = sparse.csr_matrix(weights_matrix(graph, self.weights, codes=self.codes))
        wy = neighbour_mean_np(self.values, W)[:, :, self.source]
        wy[:, :, self.source < 0] = np.nan
        X = self.X.copy()
        X[:, :, self.names.index("neighbour_lag")] = wy.transpose(1, 0, 2).reshape(X.shape[0], -1)
        fd = prepare_batch(self.yy, X, factors=self.factors, names=self.names, labels=self.labels)
        try:
            fit = ols_batch(fd.y, fd.X, fd.mask, names=fd.names, labels=fd.labels)
        except ModelError:
            return np.full(len(self.labels), np.nan)
        return fit.beta[:, self.names.index("neighbour_lag")]


def _placebo_chunk(size: int, rng: np.random.Generator, stat: _RewiredStatistic,
                   swaps_per_edge: int) -> np.ndarray:
    return np.stack([stat.coefficients(rewire(stat.graph, rng, swaps_per_edge=swaps_per_edge))
                     for _ in range(size)])


def rewiring_placebo(
    ds: xr.Dataset | xr.DataArray,
    *,
    lag: int = 1,
    weights: str = "contiguity",
    islands: str = "exclude",
    graph: NeighbourGraph | None = None,
    shocks: str = "year",
    own_lag: bool = False,
    years: Sequence[int] | None = None,
    n_rewirings: int = 199,
    swaps_per_edge: int = 10,
    seed: int = 0,
    chunk_size: int = 20,
    client: Any | None = None,
) -> pd.DataFrame:
    """Permutation placebo with randomly rewired neighbour graphs of the same degree distribution.

    Returns one row per indicator: ``observed`` (real graph), the placebo distribution's mean and
    SD, and ``p_value = (1 + #{|β_r| ≥ |β_obs|}) / (1 + R)`` over the ``R`` rewirings whose fit
    succeeded. Seeded; ``client`` spreads chunks over dask with identical results.
    """
    if n_rewirings < 1:
        raise ParameterError("n_rewirings must be at least 1")
    g = _graph(graph, islands)
    stat = _RewiredStatistic(ds, g, weights, lag, shocks, own_lag, years)
    obs = stat.coefficients(g)
    draws = np.concatenate(map_seeded(_placebo_chunk, chunk_sizes(n_rewirings, chunk_size), seed,
                                      client=client, args=(stat, swaps_per_edge)), axis=0)
    ok = np.isfinite(draws)
    exceed = (np.abs(draws) >= np.abs(obs)[None] - 1e-12) & ok
    return pd.DataFrame({
        "indicator": stat.labels,
        "observed": obs,
        "placebo_mean": np.nanmean(draws, axis=0),
        "placebo_sd": np.nanstd(draws, axis=0, ddof=1),
        "p_value": (1 + exceed.sum(0)) / (1 + ok.sum(0)),
        "n_rewirings": ok.sum(0),
    })


# ------------------------------------------------------------------------------------------
# Power by simulation on the real graph
# ------------------------------------------------------------------------------------------


def _power_chunk(size: int, rng: np.random.Generator, W: np.ndarray | sparse.spmatrix, mask: np.ndarray,
                 comps: tuple[float, float, float, float], effects: np.ndarray, lag: int,
                 factors: list, dist: np.ndarray, cutoff_km: float, kernel: str,
                 alpha: float) -> np.ndarray:
    mean, sd_a, sd_t, sd_e = comps
    N, T = mask.shape
    E = len(effects)
    a, d, e = np.empty((size, N)), np.empty((size, T)), np.empty((size, N, T))
    for r in range(size):  # per replication, in the order one replication at a time would draw
        a[r], d[r], e[r] = rng.normal(0, sd_a, N), rng.normal(0, sd_t, T), rng.normal(0, sd_e, (N, T))
    # every replication and effect at once: y[i, t, r, k]
    base = mean + a.T[:, None, :] + d.T[None, :, :] + e.transpose(1, 2, 0)  # (N, T, size)
    y = np.repeat(base[..., None], E, axis=3)
    beta = np.asarray(effects, dtype=float)
    for t in range(lag, T):
        # the neighbour mean over neighbours *observed* at t − lag, as in the data
        obs = np.where(mask[:, t - lag, None, None], y[:, t - lag], np.nan)
        wy = neighbour_mean_np(obs.reshape(N, -1), W).reshape(N, size, E)
        y[:, t] += beta * np.where(np.isfinite(wy), wy - mean, 0.0)
    obs = np.where(mask[:, :, None, None], y, np.nan)
    wy = neighbour_mean_np(obs.reshape(N, -1), W).reshape(N, T, size, E)
    x = np.full((N, T, size, E), np.nan)
    x[:, lag:] = wy[:, :-lag]
    # members ordered replication-major, rows municipality-major
    ys = obs.transpose(2, 3, 0, 1).reshape(size * E, N * T)
    xs = x.transpose(2, 3, 0, 1).reshape(size * E, N * T, 1)
    fd = prepare_batch(ys, xs, factors=factors)
    fit = ols_batch(fd.y, fd.X, fd.mask)
    V = conley_covariance(fd.X, fit.resid, fit.xtx_inv, fd.mask, dist, T, cutoff_km=cutoff_km, kernel=kernel)
    z = fit.beta[:, 0] / np.sqrt(V[:, 0, 0])
    pv = 2 * stats.norm.sf(np.abs(z)).reshape(size, E)
    return (pv < alpha).astype(float)


def yardstick_power(
    ds: xr.Dataset | xr.DataArray,
    indicator: str,
    *,
    effects: Sequence[float] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3),
    lag: int = 1,
    weights: str = "contiguity",
    islands: str = "exclude",
    graph: NeighbourGraph | None = None,
    n_sims: int = 200,
    alpha: float = 0.05,
    target_power: float = 0.8,
    cutoff_km: float = 100.0,
    kernel: str = "bartlett",
    seed: int = 0,
    chunk_size: int = 25,
    client: Any | None = None,
) -> PowerResult:
    """Simulated power of the yardstick test (Conley z-test) on the real neighbour graph.

    Each replication draws ``y[i,t] = μ + a_i + d_t + β·((W y)[i,t−lag] − μ) + e[i,t]`` with the
    indicator's variance components (:func:`ojpanel.designs.power.variance_components`:
    municipality, year and residual SDs), the real graph and weights, the real years and the
    indicator's real pattern of missing values; the design's regression (municipality and year
    effects) and its Conley test are run on every draw. ``effects`` are values of ``β`` (a
    share of the neighbours' deviation passed on per year). The MDE is read off the power curve.
    """
    da = _value(ds)
    ids = [str(i) for i in da["indicator"].values]
    if str(indicator) not in ids:
        raise ParameterError(f"indicator {indicator!r} is not in the panel (e.g. {ids[:5]})")
    one = da.sel(indicator=[str(indicator)])
    yrs = one["year"].values[one.notnull().any(["indicator", "municipality"]).values]
    if yrs.size < lag + 2:
        raise DataError(f"{indicator} has too few years with data for lag {lag}")
    one = one.sel(year=np.arange(yrs.min(), yrs.max() + 1))
    comps = variance_components(one, str(indicator))
    g = _graph(graph, islands)
    codes = [str(c) for c in one["municipality"].values]
    W = sparse.csr_matrix(weights_matrix(g, weights, codes=codes))
    mask = np.isfinite(one.values[0])
    N, T = mask.shape
    rows_m = np.repeat(np.arange(N), T)
    rows_t = np.tile(np.arange(T), N)
    factors = [rows_m, rows_t]
    grid = np.asarray(effects, dtype=float)
    hits = np.concatenate(map_seeded(
        _power_chunk, chunk_sizes(n_sims, chunk_size), seed, client=client,
        args=(W, mask, (comps.mean, comps.sd_municipality, comps.sd_year, comps.sd_residual),
              grid, lag, factors, distance_matrix(codes), cutoff_km, kernel, alpha)), axis=0)
    p = hits.mean(0)
    table = pd.DataFrame({"effect": grid, "power": p, "mc_se": np.sqrt(p * (1 - p) / n_sims),
                          "n_sims": n_sims})
    zero = table.loc[np.isclose(table["effect"], 0), "power"]
    return PowerResult(
        design="spatial_yardstick", indicator=str(indicator), alpha=alpha, n_sims=n_sims,
        table=table, components=comps, target_power=target_power,
        mde=interpolate_mde(table, target_power),
        settings={"lag": lag, "weights": weights, "islands": g.islands, "cutoff_km": cutoff_km,
                  "kernel": kernel, "seed": seed, "years": [int(yrs.min()), int(yrs.max())]},
        size=float(zero.iloc[0]) if len(zero) else None,
    )
