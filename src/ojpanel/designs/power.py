"""Power and minimum detectable effects (MDE) by simulation on a panel's real structure.

A null result means little without power. :func:`power` simulates outcomes that keep everything
about the real panel except the values: the municipalities, their counties and groups, the years,
the indicator's own pattern of missing values, and its variance components estimated from the data
(:func:`variance_components`): municipality, year, county×year and residual variances. An effect of
a given size is planted for a design, the design's regression is run on every replication (all
replications of a chunk in one vectorised fit) and the rejection rate at ``alpha`` is the power.
The ``users`` design plants ``δ·treated``, a multiple of its own regressor: that moves the estimate
by ``δ`` and leaves the residuals, so one fit per replication tests every effect size (common
random numbers across the grid); the ``peer`` design's effect changes the simulated dynamics, so
each effect size gets replications of its own.

Designs
-------
``"users"``
    RiR analysis B (pooled): a municipality-level binary treatment (e.g. OJ user) with a given
    share of treated municipalities, re-drawn in every replication; ``y ~ treated + year effects``,
    clustered by municipality. Planted: ``y += δ·treated``.
``"peer"``
    The ANCOVA peer design of :mod:`ojpanel.designs.peer`: ``y[t] ~ peer[t−L] + y[t−L]`` with
    ``shocks``×year effects, clustered by ``cluster``, for any of the design's peer definitions
    (``group=`` a grouping or ``"neighbours"``, with its ``weights`` and ``islands``): the simulated
    effect acts through the design's own peer mean (:meth:`~ojpanel.designs.peer.PeerDesign.peer_mean_np`). The simulated outcome is dynamic: the first
    ``L`` years are ``μ + a_i + γ_t + c_{county,t} + e``, then
    ``y[t] = μ(1−ρ) + ρ·y[t−L] + γ_t + c_{county,t} + δ·peer[t−L] + u`` with ``ρ`` and ``sd(u)``
    estimated from the indicator (within-cell regression on the own lag).

For ``"users"`` on a complete panel without county×year shocks the MDE has a closed form
(:func:`analytic_mde`), ``(z_{1−α/2} + z_{power})·sqrt((σ_a² + σ_e²/T)/(N·p·(1−p)))``; the test
suite checks that simulated power at that effect is 0.80.

Replications run in chunks with seeds spawned from ``seed``; pass a dask ``client`` to spread the
chunks (identical results).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from ojpanel.core.parallel import chunk_sizes, map_seeded
from ojpanel.core.results import Result
from ojpanel.designs.design import RegressionDesign
from ojpanel.designs.peer import PeerDesign
from ojpanel.designs.users import UsersDesign
from ojpanel.errors import DataError, ParameterError
from ojpanel.models.fe import fit_batch, panel_arrays
from ojpanel.models.fe_results import two_sided_pvalue
from ojpanel.models.within import demean, factorize
from ojpanel.progress import progress as report_progress

__all__ = [
    "DESIGNS",
    "VarianceComponents",
    "variance_components",
    "analytic_mde",
    "mde_from_se",
    "PowerResult",
    "power",
    "minimum_detectable_effect",
    "size_adjusted_level",
    "interpolate_mde",
    "make_design",
]

DESIGNS = ("users", "peer")


@dataclass(frozen=True)
class VarianceComponents:
    """Variance components of one indicator (standard deviations) and its persistence."""

    mean: float
    sd_municipality: float
    sd_year: float
    sd_county_year: float
    sd_residual: float
    rho: float
    sd_innovation: float
    n_obs: int

    def to_frame(self) -> pd.DataFrame:
        """One row with the components."""
        return pd.DataFrame([self.__dict__])

    def _repr_html_(self) -> str:
        return "<h4>Variance components</h4>" + self.to_frame().to_html(index=False)


def _indicator(ds: xr.Dataset | xr.DataArray, indicator: str | None) -> xr.DataArray:
    da = ds["value"] if isinstance(ds, xr.Dataset) else ds
    if "indicator" in da.dims:
        if indicator is None:
            if da.sizes["indicator"] != 1:
                raise ParameterError(
                    "the panel has several indicators; choose one with indicator=..."
                )
            indicator = str(da["indicator"].values[0])
        ids = [str(i) for i in da["indicator"].values]
        if str(indicator) not in ids:
            raise ParameterError(f"indicator {indicator!r} is not in the panel (e.g. {ids[:5]})")
        da = da.sel(indicator=str(indicator))
    for d in ("municipality", "year"):
        if d not in da.dims:
            raise DataError(f"the panel needs a '{d}' dimension")
    return da.transpose("municipality", "year")


def variance_components(
    ds: xr.Dataset | xr.DataArray,
    indicator: str | None = None,
    *,
    county: str = "county",
    lag: int = 1,
) -> VarianceComponents:
    """Moment estimates of an indicator's variance components.

    * residual: within-municipality-and-county×year residual variance, ``SS/(n − rank)``;
    * county×year: variance of county×year cell means of the municipality-and-year demeaned data,
      minus the residual share ``σ_e²/n_cell`` (floored at 0);
    * year: variance of the year means;
    * municipality: variance of municipality means (after year effects) minus ``σ_e²/T_i``;
    * ``rho``: slope of ``y[t]`` on ``y[t−lag]`` within county×year cells — the persistence the
      ANCOVA regression sees, which includes stable municipality differences — and
      ``sd_innovation``, the residual SD of that regression (0 and ``sd_residual`` if too few data).
    """
    da = _indicator(ds, indicator)
    if county not in da.coords:
        raise DataError(f"the panel has no '{county}' coordinate")
    v = da.values
    N, T = v.shape
    ok = np.isfinite(v)
    if ok.sum() < 3 * N // 2 or ok.sum() < 10:
        raise DataError("too few values to estimate variance components")
    mun = np.repeat(np.arange(N), T)
    yr = np.tile(np.arange(T), N)
    cty = np.repeat(factorize(np.asarray(da[county].values).astype(str)), T)
    cy = cty * T + yr
    y = v.ravel()
    m = ok.ravel()
    ym, mm, ym_yr, cy_m = y[m], mun[m], yr[m], cy[m]
    mu = float(ym.mean())
    year_means = pd.Series(ym).groupby(ym_yr).mean()
    sd_year = float(year_means.std(ddof=1)) if year_means.size > 1 else 0.0
    r2 = demean(ym, [factorize(mm), factorize(cy_m)])
    rank = np.unique(mm).size + np.unique(cy_m).size - 1
    s2e = float(r2 @ r2 / max(ym.size - rank, 1))
    r1 = demean(ym, [factorize(mm), factorize(ym_yr)])
    cell = pd.DataFrame({"r": r1, "c": cy_m}).groupby("c")["r"].agg(["mean", "size"])
    s2cy = max(0.0, float(cell["mean"].var(ddof=1) - np.mean(s2e / cell["size"])))
    dy = demean(ym, factorize(ym_yr))
    mm_means = pd.DataFrame({"r": dy, "m": mm}).groupby("m")["r"].agg(["mean", "size"])
    s2a = max(0.0, float(mm_means["mean"].var(ddof=1) - np.mean(s2e / mm_means["size"])))
    rho = 0.0
    s2u = s2e
    if T > lag:
        yl = np.full_like(v, np.nan)
        yl[:, lag:] = v[:, :-lag]
        both = np.isfinite(v) & np.isfinite(yl)
        if both.sum() > 10:
            sel = both.ravel()
            d = demean(yl.ravel()[sel], factorize(cy[sel]))
            e = demean(y[sel], factorize(cy[sel]))
            if d @ d > 0:
                rho = float(d @ e / (d @ d))
                u = e - rho * d
                s2u = float(u @ u / max(u.size - np.unique(cy[sel]).size - 1, 1))
    return VarianceComponents(
        mu,
        float(np.sqrt(s2a)),
        sd_year,
        float(np.sqrt(s2cy)),
        float(np.sqrt(s2e)),
        rho,
        float(np.sqrt(s2u)),
        int(m.sum()),
    )


def mde_from_se(
    std_error: float | np.ndarray,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    df: float | np.ndarray | None = None,
) -> float | np.ndarray:
    """Minimum detectable effect of an estimator with standard error ``std_error``.

    ``(q_{1−α/2} + q_{power}) · SE`` for a two-sided test, with ``q`` the quantiles of the test's
    reference distribution: standard normal when ``df`` is None or infinite, otherwise Student's
    t with ``df`` degrees of freedom (e.g. ``G − 1`` for a clustered test with ``G`` clusters), so
    that few-cluster designs get the wider MDE they actually have. :func:`analytic_mde` is the
    same formula written in variance components for the ``"users"`` design.
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ParameterError(f"alpha and power must be in (0, 1); got {alpha}, {power}")
    se = np.asarray(std_error, dtype=float)
    d = np.asarray(np.inf if df is None else df, dtype=float)
    if np.any(d <= 0):
        raise ParameterError("df must be positive")
    # scipy's t with infinite df is the standard normal
    out = (stats.t.ppf(1 - alpha / 2, d) + stats.t.ppf(power, d)) * se
    return float(out) if np.ndim(out) == 0 else out


def analytic_mde(
    sd_municipality: float,
    sd_residual: float,
    n_municipalities: int,
    n_years: int,
    share_treated: float = 0.5,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """Closed-form MDE of the ``"users"`` design on a complete panel without county×year shocks.

    ``(z_{1−α/2} + z_{power}) · sqrt((σ_a² + σ_e²/T) / (N·p·(1−p)))`` (two-sided test, normal
    approximation; ``p·N`` treated municipalities).
    """
    if not 0 < share_treated < 1:
        raise ParameterError("share_treated must be in (0, 1)")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    var = (sd_municipality**2 + sd_residual**2 / n_years) / (
        n_municipalities * share_treated * (1 - share_treated)
    )
    return float(z * np.sqrt(var))


@dataclass(frozen=True)
class _Structure:
    template: xr.DataArray  # (municipality, year) with the panel's municipality coordinates
    mask: np.ndarray  # (N, T) observed
    county: np.ndarray  # (N,) codes of the simulated county×year shocks
    peer_mean: Callable[[np.ndarray], np.ndarray] | None  # the design's peer mean of (N, k) values


def _fixed_width(coord: xr.DataArray) -> xr.DataArray:
    """A coordinate of strings as fixed-width text: xarray deep-copies coordinates whenever it
    builds an array, which for Python string objects means one copy per element."""
    v = np.asarray(coord.values)
    if v.dtype == object and all(isinstance(x, str) for x in v):
        return coord.copy(data=v.astype(str))
    return coord


def _panel(y: np.ndarray, st: _Structure) -> xr.DataArray:
    """Simulated outcomes ``(replication, municipality, year)`` as a panel of the real structure."""
    t = st.template
    coords = {c: co for c, co in t.coords.items() if co.dims == ("municipality",)}
    return xr.DataArray(
        y,
        dims=("indicator", "municipality", "year"),
        coords={"indicator": [f"sim{b}" for b in range(y.shape[0])], "year": t["year"].values,
                **coords},
    )  # fmt: skip


def _simulate_chunk(
    size: int,
    rng: np.random.Generator,
    design: RegressionDesign,
    effect: float | np.ndarray,
    vc: VarianceComponents,
    st: _Structure,
    share: float,
) -> np.ndarray:
    """p-values of ``size`` replications: ``(size,)`` for one effect, or ``(size, k)`` for an
    array of effects that the users design plants as ``δ·treated`` on the same replications."""
    many = np.ndim(effect) > 0
    if many and not isinstance(design, UsersDesign):
        raise ParameterError("several effects per replication need the users design")
    y_da, regs = _simulated_arrays(size, rng, design, 0.0 if many else float(effect), vc, st, share)
    yy, X, labels, rows = panel_arrays(y_da, regs)
    res = fit_batch(design.prepare(yy, X, rows, labels), cov=design.cov, convention=design.convention)
    if not many:
        return res.pvalues.iloc[:, 0].to_numpy()
    # y + δ·treated: the estimate moves by δ, residuals and so the standard error stay
    b = res.params.iloc[:, 0].to_numpy()[:, None]
    se = res.std_errors.iloc[:, 0].to_numpy()[:, None]
    return two_sided_pvalue((b + np.asarray(effect)[None]) / se, res.df_resid.to_numpy()[:, None])


def _simulated_arrays(
    size: int,
    rng: np.random.Generator,
    design: RegressionDesign,
    effect: float,
    vc: VarianceComponents,
    st: _Structure,
    share: float,
) -> tuple[xr.DataArray, dict[str, xr.DataArray]]:
    """``size`` simulated panels (as indicators ``sim0, sim1, …``) and the design's arrays of them."""
    N, T = st.mask.shape
    a = rng.normal(0, vc.sd_municipality, (size, N, 1))
    g = rng.normal(0, vc.sd_year, (size, 1, T))
    Gc = int(st.county.max()) + 1
    c = rng.normal(0, vc.sd_county_year, (size, Gc, T))[:, st.county, :]
    e = rng.normal(0, vc.sd_residual, (size, N, T))
    if isinstance(design, UsersDesign):
        n1 = int(round(share * N))
        treat = np.zeros((size, N))
        for b in range(size):
            treat[b, rng.permutation(N)[:n1]] = 1.0
        y = vc.mean + a + g + c + e + effect * treat[:, :, None]
        sim = _panel(np.where(st.mask[None], y, np.nan), st)
        treated = xr.DataArray(treat, dims=("indicator", "municipality"),
                               coords={"indicator": sim["indicator"].values})  # fmt: skip
        y_da, regs = design.arrays(sim, treated)
    else:
        # dynamic outcome: stable differences come from the start values and the persistence rho;
        # the peer effect acts through the design's peer mean of the observed values at t − lag
        lag = design.lag
        u = rng.normal(0, vc.sd_innovation, (size, N, T))
        base = vc.mean * (1 - vc.rho) + g + c + u
        y = np.empty((size, N, T))
        y[:, :, :lag] = vc.mean + a + g[:, :, :lag] + c[:, :, :lag] + e[:, :, :lag]
        for t in range(lag, T):
            prev = np.where(st.mask[:, t - lag][None], y[:, :, t - lag], np.nan)
            peer = st.peer_mean(prev.T).T
            y[:, :, t] = base[:, :, t] + vc.rho * y[:, :, t - lag] + effect * np.nan_to_num(peer)
        # the regression sees what the design defines on the observed values
        y_da, regs = design.arrays(_panel(np.where(st.mask[None], y, np.nan), st))
    return y_da, regs


@dataclass(frozen=True)
class PowerResult(Result):
    """Simulated power by effect size, with Monte Carlo standard errors and the MDE."""

    title = "Power"

    design: str
    indicator: str | None
    alpha: float
    n_sims: int
    table: pd.DataFrame
    components: VarianceComponents
    target_power: float
    mde: float
    analytic: float | None = None
    settings: dict = field(default_factory=dict)
    size: float | None = None
    critical_p: float | None = None
    size_adjusted: bool = False

    def to_frame(self) -> pd.DataFrame:
        """The power table with design columns."""
        out = self.table.copy()
        out.insert(0, "design", self.design)
        out.insert(1, "indicator", self.indicator)
        out["alpha"] = self.alpha
        return out

    @property
    def summary(self) -> str:
        """Plain-text summary."""
        mde = "not reached in the effect grid" if not np.isfinite(self.mde) else f"{self.mde:.4g}"
        lines = [
            f"Power of the '{self.design}' design for {self.indicator} (alpha={self.alpha}, {self.n_sims} replications per effect)",
            self.table.to_string(index=False),
        ]
        if self.size is not None:
            mc = np.sqrt(self.alpha * (1 - self.alpha) / self.n_sims)
            verdict = (
                "over-rejects" if self.size > self.alpha + 1.96 * mc
                else "under-rejects" if self.size < self.alpha - 1.96 * mc
                else "holds its level"
            )
            lines.append(
                f"Size at zero effect: {self.size:.3f} (nominal {self.alpha}; Monte Carlo SE {mc:.3f}): "
                f"the test {verdict}."
            )
        which = (
            f"size-adjusted power, p ≤ {self.critical_p:.4g}" if self.size_adjusted else "nominal power"
        )
        lines.append(f"MDE at power {self.target_power} ({which}): {mde}")
        if self.analytic is not None:
            how = "(z·SE of the real-data jump)" if self.design == "colour_rd" else (
                "(complete panel, no county×year shocks)")
            lines.append(f"Analytic MDE {how}: {self.analytic:.4g}")
        return "\n".join(lines)

    def headline(self) -> list[str]:
        """The size at zero effect, the MDE and the analytic MDE, in sentences (shown above the table)."""
        mde = "not reached in the effect grid" if not np.isfinite(self.mde) else f"{self.mde:.4g}"
        which = f"size-adjusted power, p ≤ {self.critical_p:.4g}" if self.size_adjusted else "nominal power"
        lines = [f"Design {self.design}{f' for {self.indicator}' if self.indicator else ''}: alpha {self.alpha}, "
                 f"{self.n_sims} replications per effect.",
                 f"MDE at power {self.target_power} ({which}): {mde}"]
        if self.size is not None:
            mc = np.sqrt(self.alpha * (1 - self.alpha) / self.n_sims)
            lines.append(f"Size at zero effect: {self.size:.3f} (nominal {self.alpha}; Monte Carlo SE {mc:.3f})")
        if self.analytic is not None:
            lines.append(f"Analytic MDE: {self.analytic:.4g}")
        return lines


def _structure(da: xr.DataArray, design: RegressionDesign) -> _Structure:
    peer = isinstance(design, PeerDesign)
    group = None if not peer or design.neighbours else design.group
    for name in (group, getattr(design, "shocks", None), design.cluster):
        if isinstance(name, str) and name != "municipality" and name not in da.coords:
            raise ParameterError(f"'{name}' is not a municipality coordinate of the panel")
    county = (
        factorize(np.asarray(da["county"].values).astype(str))
        if "county" in da.coords
        else np.zeros(da.sizes["municipality"], np.int64)
    )
    return _Structure(
        template=da.assign_coords({c: _fixed_width(co) for c, co in da.coords.items()
                                   if co.dims == ("municipality",)}),
        mask=np.isfinite(da.values),
        county=county,
        # the peers of the design itself (a grouping's other members or the neighbours), so the
        # simulated effect acts through the peer mean the regression uses
        peer_mean=design.peer_mean_np(da) if peer else None,
    )


def make_design(
    design: str | RegressionDesign,
    *,
    group: str | None = None,
    shocks: str | None = "county",
    lag: int | None = None,
    cov: str | None = None,
    cluster: str | None = None,
    convention: str | None = None,
) -> RegressionDesign:
    """The design object of a power simulation: a :class:`RegressionDesign` as given, or
    ``"users"``/``"peer"`` with the design's own defaults where a setting is None."""
    if isinstance(design, RegressionDesign):
        return design
    if design not in DESIGNS:
        raise ParameterError(f"design must be one of {DESIGNS}; got {design!r}")
    se = {k: v for k, v in dict(cov=cov, cluster=cluster, convention=convention).items() if v is not None}
    if design == "users":
        return UsersDesign(**se)
    peer = {k: v for k, v in dict(group=group, lag=lag).items() if v is not None}
    return PeerDesign(shocks=shocks, **peer, **se)


def power(
    ds: xr.Dataset | xr.DataArray,
    *,
    design: str | RegressionDesign = "users",
    indicator: str | None = None,
    effects: Sequence[float] | None = None,
    n_sims: int = 500,
    alpha: float = 0.05,
    target_power: float = 0.8,
    share_treated: float = 0.5,
    group: str | None = None,
    shocks: str | None = "county",
    cluster: str | None = None,
    lag: int | None = None,
    components: VarianceComponents | None = None,
    cov: str | None = None,
    convention: str | None = None,
    size_adjusted: bool = True,
    seed: int = 0,
    chunk_size: int = 250,
    client: Any | None = None,
) -> PowerResult:
    """Simulated power of a design for one indicator, on the panel's real structure.

    Parameters
    ----------
    ds
        OJ panel (real or synthetic); its structure and the indicator's missingness are kept.
    design
        ``"users"`` or ``"peer"`` (see the module docstring), or a design object
        (:class:`~ojpanel.designs.users.UsersDesign`, :class:`~ojpanel.designs.peer.PeerDesign`).
        ``group``, ``shocks``, ``lag``, ``cov``, ``cluster`` and ``convention`` left at None take
        the design's defaults, so the simulated test is the one the design's fit runs.
    effects
        Effect sizes (in the indicator's units); default 9 steps from 0 to 3× the analytic MDE
        (``users``) or to 3 × 2.8·σ_e/√n_obs (``peer``).
    n_sims
        Replications per effect size (for ``users`` the same replications serve every size).
    components
        Variance components; estimated from the indicator when not given.
    group
        Peer definition of the ``peer`` design: a municipality coordinate (``"kommungrupp_2017"``,
        ``"county"``) or ``"neighbours"``; for neighbour weights or the island rule pass a
        :class:`~ojpanel.designs.peer.PeerDesign` as ``design``.
    cluster
        Cluster coordinate; the design's default is ``"municipality"`` for ``users`` and
        ``"county"`` for ``peer``.
    cov, convention
        Standard errors of the simulated test (:mod:`ojpanel.models.covariance`). The designs'
        default ``"stata"`` convention (``G/(G−1)`` scaling, t with ``G−1`` df) is the usual
        few-cluster choice; with 21 county clusters the ``"linearmodels"`` convention over-rejects.
    size_adjusted
        Report the MDE on size-adjusted power (:func:`size_adjusted_level`): the null is always
        simulated (``effect = 0``, added if not in ``effects``), ``size`` is its rejection rate at
        ``alpha``, and a test that over-rejects is held to its empirical critical value. With
        ``False`` the MDE uses nominal power (and the null is simulated only if asked for).
    seed, chunk_size, client
        Root seed, replications per task, optional dask client (identical results).

    Returns
    -------
    PowerResult
        ``table`` with ``effect``, ``power`` (nominal), ``power_size_adjusted``, ``mc_se`` (of the
        power the MDE uses), ``n_sims``; ``mde`` interpolated at ``target_power``; ``size``.
    """
    d = make_design(
        design, group=group, shocks=shocks, lag=lag, cov=cov, cluster=cluster, convention=convention
    )
    name = "users" if isinstance(d, UsersDesign) else "peer"
    if not 0 < alpha < 1:
        raise ParameterError("alpha must be in (0, 1)")
    da = _indicator(ds, indicator)
    if indicator is None and "indicator" in da.coords and da["indicator"].ndim == 0:
        indicator = str(da["indicator"].values)
    lag_vc = d.lag if isinstance(d, PeerDesign) else (lag or 1)
    vc = components if components is not None else variance_components(da, lag=lag_vc)
    st = _structure(da, d)
    N, T = st.mask.shape
    ana = (
        analytic_mde(vc.sd_municipality, vc.sd_residual, N, T, share_treated, alpha, target_power)
        if name == "users"
        else None
    )
    if effects is None:
        base = ana if ana is not None else 2.8 * vc.sd_residual / np.sqrt(st.mask.sum())
        effects = list(np.linspace(0, 3 * base, 9))
    effects = [float(x) for x in effects]
    # one seed per effect plus one for the null reference, so adding the null never moves the others
    ss = np.random.SeedSequence(int(seed)).spawn(len(effects) + 1)

    def pvalues(eff: float | np.ndarray, s: np.random.SeedSequence, bar) -> np.ndarray:
        chunks = map_seeded(
            _simulate_chunk,
            chunk_sizes(n_sims, chunk_size),
            int(s.generate_state(1)[0]),
            client=client,
            kwargs=dict(design=d, effect=eff, vc=vc, st=st, share=share_treated),
            progress=bar.advance,
        )
        return np.concatenate(chunks)

    null_added = size_adjusted and 0.0 not in effects
    # users: the planted effect is δ times the tested regressor, so one fit per replication tests
    # every effect (same replications for all of them); peer: the effect changes the dynamics
    shared = name == "users"
    runs = 1 if shared else len(effects) + int(null_added)
    with report_progress(f"power ({design})", total=runs * int(n_sims)) as bar:
        if shared:
            grid = np.asarray(effects + [0.0] * null_added)
            every = pvalues(grid, ss[-1], bar)
            pv = [every[:, k] for k in range(len(effects))]
            null = every[:, list(grid).index(0.0)] if 0.0 in grid else None
        else:
            pv = [pvalues(eff, s, bar) for eff, s in zip(effects, ss[:-1], strict=True)]
            null = next((p for eff, p in zip(effects, pv, strict=True) if eff == 0.0), None)
            if null is None and size_adjusted:
                null = pvalues(0.0, ss[-1], bar)
    crit = alpha if null is None else size_adjusted_level(null, alpha)
    rows = []
    for eff, p in zip(effects, pv, strict=True):
        pw = float(np.mean(p <= alpha))
        row = {"effect": eff, "power": pw}
        if null is not None:
            row["power_size_adjusted"] = float(np.mean(p <= crit))
        shown = row["power_size_adjusted"] if size_adjusted else pw
        row["mc_se"] = float(np.sqrt(shown * (1 - shown) / p.size))
        row["n_sims"] = int(p.size)
        rows.append(row)
    table = pd.DataFrame(rows)
    size = None if null is None else float(np.mean(null <= alpha))
    return PowerResult(
        design=name,
        indicator=None if indicator is None else str(indicator),
        alpha=alpha,
        n_sims=int(n_sims),
        table=table,
        components=vc,
        target_power=target_power,
        mde=interpolate_mde(table, target_power, "power_size_adjusted" if size_adjusted else "power"),
        analytic=ana,
        settings=dict(
            share_treated=share_treated,
            group=getattr(d, "group", None) if isinstance(getattr(d, "group", None), str | None) else "custom",
            peer_weights=d.weights if isinstance(d, PeerDesign) and d.neighbours else None,
            shocks=getattr(d, "shocks", None),
            cluster=d.cluster,
            lag=getattr(d, "lag", None),
            cov=d.cov,
            convention=d.convention,
            seed=seed,
        ),
        size=size,
        critical_p=None if null is None else float(crit),
        size_adjusted=bool(size_adjusted and null is not None),
    )


def size_adjusted_level(null_pvalues: np.ndarray, alpha: float) -> float:
    """The p-value threshold that makes the simulated test reject at most ``alpha`` under the null.

    ``min(alpha, p_(k))`` with ``p_(k)`` the ``k = ⌊alpha·n⌋``-th smallest of ``n`` null p-values:
    a test that over-rejects gets the stricter threshold (its nominal power would overstate what it
    can detect at a true size of ``alpha``); a conservative test keeps ``alpha``, because the test a
    user actually runs does not gain power from its own conservativeness.
    """
    p = np.sort(np.asarray(null_pvalues, dtype=float))
    k = int(np.floor(alpha * p.size))
    if k < 1:
        raise ParameterError(
            f"{p.size} null replications are too few to calibrate a test at alpha={alpha}; "
            f"use n_sims ≥ {int(np.ceil(1 / alpha))}, or size_adjusted=False for nominal power"
        )
    return float(min(alpha, p[k - 1]))


def interpolate_mde(table: pd.DataFrame, target: float, column: str = "power") -> float:
    """The effect at which ``column`` of a power table first reaches ``target`` (linear
    interpolation between the grid points around it; NaN if never reached)."""
    t = table.sort_values("effect")
    pos = t[t["effect"] > 0]
    above = pos[pos[column] >= target]
    if above.empty:
        return float("nan")
    first = above.index[0]
    i = list(t.index).index(first)
    if i == 0:
        return float(t.loc[first, "effect"])
    prev = t.iloc[i - 1]
    cur = t.loc[first]
    if cur[column] == prev[column]:
        return float(cur["effect"])
    return float(
        prev["effect"]
        + (target - prev[column])
        * (cur["effect"] - prev["effect"])
        / (cur[column] - prev[column])
    )


def minimum_detectable_effect(ds: xr.Dataset | xr.DataArray, **kwargs: Any) -> float:
    """The MDE at ``target_power`` (default 0.8) from :func:`power` (NaN if not reached)."""
    return power(ds, **kwargs).mde

