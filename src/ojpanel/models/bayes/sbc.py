"""Simulation-based calibration (SBC; Talts et al. 2018) of the hierarchical models.

Each of ``n_simulations`` rounds draws parameters ``theta*`` and a data set ``y*`` from the prior
and prior predictive of a *generating* model, fits the *fitted* model to ``y*`` and ranks
``theta*`` among ``L`` posterior draws (thinned evenly from all chains). When the fitted model's
posterior is computed correctly and its prior is the generating one, every rank is uniform on
``0..L``; a wrong prior, a wrong likelihood or a sampler that does not explore the posterior shows
as non-uniform ranks (U-shaped for over-confident posteriors, humped for over-wide ones, skewed
for biased ones).

Ranks are stored the way simuk (the ArviZ team's SBC package) stores them: an
:class:`xarray.DataTree` with a ``prior_sbc`` group (dims ``chain`` = 1, ``draw`` = simulation),
which arviz-plots' :func:`~arviz_plots.plot_ecdf_pit` draws as the ECDF-difference plot with
simultaneous bands, and arviz-stats' ``uniformity_test`` (method ``pot_c``) turns into p-values.
simuk itself rebuilds and recompiles the model for every simulation (``pm.observe``); here the
model is compiled once and the simulated outcome is swapped into its data container, which is
what makes SBC on the real panel structure (290 municipalities in 21 counties) affordable.

:func:`simulation_based_calibration` works on any PyMC model whose observed values live in a
``pm.Data`` container (tested on a conjugate normal model against its closed form);
:func:`sbc` runs it for a hierarchical model of :mod:`ojpanel.models.bayes.models`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import arviz_plots as azp
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.core.results import Result
from ojpanel.core.style import style
from ojpanel.errors import ParameterError
from ojpanel.models.bayes.data import ModelData
from ojpanel.models.bayes.diagnostics import diagnose
from ojpanel.models.bayes.fit import COMPILE_KWARGS, Sampler, sample_model
from ojpanel.models.bayes.models import HYPERPARAMETERS, Priors, build_model
from ojpanel.models.bayes.plots import arviz_figure, parameter_label
from ojpanel.progress import progress as report_progress

__all__ = ["SBCResult", "rank_statistics", "uniformity_pvalues", "simulation_based_calibration", "sbc"]

#: Significance level of the per-quantity uniformity tests, before the Bonferroni correction.
SBC_ALPHA = 0.01


def rank_statistics(truth: np.ndarray, draws: np.ndarray, n_ranks: int) -> np.ndarray:
    """Rank of ``truth`` among ``n_ranks - 1`` evenly thinned posterior draws.

    Parameters
    ----------
    truth
        True values, shape ``(*shape)``.
    draws
        Posterior draws, shape ``(n_draws, *shape)`` (chains already stacked).
    n_ranks
        Number of possible ranks ``L + 1``; ``L = n_ranks - 1`` draws are kept, evenly spaced (to
        thin away autocorrelation, as Talts et al. recommend).

    Returns
    -------
    numpy.ndarray
        Integer ranks in ``0..L``, shape ``(*shape)``.
    """
    draws = np.asarray(draws)
    n_keep = n_ranks - 1
    if n_keep < 1 or n_keep > draws.shape[0]:
        raise ParameterError(f"need 1 <= n_ranks - 1 <= number of draws ({draws.shape[0]}), got n_ranks={n_ranks}")
    keep = np.linspace(0, draws.shape[0] - 1, n_keep).round().astype(int)
    return (draws[keep] < np.asarray(truth)[None]).sum(axis=0)


def uniformity_pvalues(ranks: xr.Dataset, n_ranks: int) -> pd.Series:
    """p-value of arviz-stats' uniformity test (``pot_c``) for every scalar quantity.

    Parameters
    ----------
    ranks
        Ranks with dims ``chain`` (1) and ``draw`` (simulations) plus any parameter dims.
    n_ranks
        Number of possible ranks ``L + 1``; ranks become PIT values ``(rank + 0.5) / (L + 1)``.

    Returns
    -------
    pandas.Series
        Indexed by quantity label (``name`` or ``name[label]``).
    """
    out: dict[str, float] = {}
    for name, da in ranks.data_vars.items():
        pit = (da.astype(float) + 0.5) / n_ranks
        pv, _, _ = pit.azstats.uniformity_test(dim=["chain", "draw"], method="pot_c")
        extra = list(pv.dims)
        if not extra:
            out[str(name)] = float(pv)
            continue
        flat = pv.stack(q=extra)
        for idx, v in zip(flat["q"].values, flat.values, strict=True):
            lab = ",".join(map(str, idx if isinstance(idx, tuple) else (idx,)))
            out[f"{name}[{lab}]"] = float(v)
    return pd.Series(out, name="p_value")


class SBCResult(Result):
    """Ranks of the true values and their uniformity tests (read-only).

    Use :func:`simulation_based_calibration` or :func:`sbc` to make one.
    """

    title = "Simulation-based calibration"

    def __init__(self, ranks: xr.DataTree, n_ranks: int, fits: pd.DataFrame, simulated: xr.DataTree,
                 alpha: float = SBC_ALPHA):
        self._ranks = ranks
        self._n_ranks = int(n_ranks)
        self._fits = fits
        self._sim = simulated
        self._alpha = float(alpha)
        self._p = uniformity_pvalues(ranks["prior_sbc"].to_dataset(), self._n_ranks)

    @property
    def ranks(self) -> xr.DataTree:
        """simuk-style tree: group ``prior_sbc`` with one rank per simulation and quantity."""
        return self._ranks

    @property
    def n_ranks(self) -> int:
        """Number of possible ranks ``L + 1``."""
        return self._n_ranks

    @property
    def n_simulations(self) -> int:
        """Number of simulations."""
        return int(self._ranks["prior_sbc"].sizes["draw"])

    @property
    def p_values(self) -> pd.Series:
        """Uniformity-test p-value of every scalar quantity."""
        return self._p.copy()

    @property
    def threshold(self) -> float:
        """Bonferroni threshold: ``alpha`` divided by the number of quantities tested."""
        return self._alpha / len(self._p)

    @property
    def passed(self) -> bool:
        """True when no quantity's ranks depart from uniform at the Bonferroni threshold."""
        return bool((self._p >= self.threshold).all())

    @property
    def fits(self) -> pd.DataFrame:
        """One row per simulation: seed, max R-hat, min bulk ESS, divergences, gates passed."""
        return self._fits.copy()

    @property
    def simulated(self) -> xr.DataTree:
        """The generating draws: groups ``prior`` (true values) and ``prior_predictive`` (data)."""
        return self._sim

    def coverage(self, prob: float = 0.9) -> pd.Series:
        """Share of simulations whose central ``prob`` interval covers the truth, per quantity.

        A rank ``r`` of ``L`` draws lies in the central interval when ``L (1-prob)/2 <= r <=
        L (1+prob)/2``; for calibrated fits the share is ``prob`` up to simulation noise.
        """
        lo, hi = (1 - prob) / 2 * (self._n_ranks - 1), (1 + prob) / 2 * (self._n_ranks - 1)
        out = {}
        for name, da in self._ranks["prior_sbc"].to_dataset().data_vars.items():
            inside = ((da >= lo) & (da <= hi)).mean(["chain", "draw"])
            if inside.ndim == 0:
                out[str(name)] = float(inside)
            else:
                flat = inside.stack(q=list(inside.dims))
                for idx, v in zip(flat["q"].values, flat.values, strict=True):
                    lab = ",".join(map(str, idx if isinstance(idx, tuple) else (idx,)))
                    out[f"{name}[{lab}]"] = float(v)
        return pd.Series(out, name=f"coverage_{int(prob * 100)}")

    def to_frame(self) -> pd.DataFrame:
        """Per quantity: p-value, whether it passes, 50 % and 90 % coverage."""
        t = pd.DataFrame({"p_value": self._p})
        t["passed"] = t["p_value"] >= self.threshold
        t["coverage_50"] = self.coverage(0.5)
        t["coverage_90"] = self.coverage(0.9)
        return t

    @property
    def summary(self) -> str:
        """Text report."""
        head = "PASSED" if self.passed else "FAILED"
        ok = int(self._fits["gates_passed"].sum())
        return (f"SBC {head}: {self.n_simulations} simulations, ranks 0..{self._n_ranks - 1}; uniformity test "
                f"(arviz-stats pot_c) per quantity at {self._alpha:g}/{len(self._p)} (Bonferroni); "
                f"{ok}/{len(self._fits)} fits passed the convergence gates\n"
                + self.to_frame().to_string(float_format=lambda v: f"{v:.3f}"))

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.passed else "#cf222e"
        return (f"<p><b style='color:{colour}'>SBC {'PASSED' if self.passed else 'FAILED'}</b> "
                f"({self.n_simulations} simulations)</p>" + self.to_frame().to_html(float_format=lambda v: f"{v:.3f}"))

    def plot(self, var_names: Sequence[str] | None = None, titles: Mapping[str, str] | None = None) -> Any:
        """ECDF-difference plot of the ranks with simultaneous 95 % bands (arviz-plots).

        In the package's style and language: parameters named by what they mean, indicators by
        their titles (``titles``: id → title), the source note in its strip; save it with
        :func:`ojpanel.core.style.save_figure`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        # PIT values as the uniformity test sees them, so the plot's p-values are the ones above
        pit = (self._ranks["prior_sbc"].to_dataset().astype(float) + 0.5) / self._n_ranks
        tree = xr.DataTree.from_dict({"prior_sbc": pit})
        n_panels = sum(int(np.prod([pit[v].sizes[d] for d in pit[v].dims if d not in ("chain", "draw")]))
                       for v in (var_names or pit.data_vars))
        columns = 3
        rows = -(-n_panels // columns)
        with style():
            pc = azp.plot_ecdf_pit(tree, group="prior_sbc", var_names=list(var_names) if var_names else None,
                                   backend="matplotlib", col_wrap=columns,
                                   figure_kwargs={"figsize": (6.5, 0.6 + 2.0 * rows)})
            fig = arviz_figure(pc, note=PROCESSED_SOURCE_NOTE + " (simulerade data)")
            for ax in fig.axes:
                title = ax.get_title()
                if title:
                    ax.set_title(parameter_label(title, titles, width=26))
                spec = ax.get_subplotspec()
                ax.set_xlabel("Fraktionell rang" if ax.get_xlabel() else "")
                ax.set_ylabel("ECDF minus likformig" if spec is not None and spec.is_first_col() else "")
        return fig


def _prior_draws(model: pm.Model, var_names: Sequence[str], observed: str, n: int, seed: int) -> xr.DataTree:
    with model:
        return pm.sample_prior_predictive(draws=n, var_names=[*var_names, observed], random_seed=seed,
                                          compile_kwargs=dict(COMPILE_KWARGS))


def simulation_based_calibration(
    model: pm.Model,
    var_names: Sequence[str],
    *,
    generator: pm.Model | None = None,
    observed: str = "y",
    data_name: str = "y_obs",
    n_simulations: int = 100,
    n_ranks: int = 100,
    sampler: Sampler = "nutpie",
    draws: int = 500,
    tune: int = 500,
    chains: int = 2,
    cores: int | None = None,
    target_accept: float = 0.8,
    seed: int = 0,
    alpha: float = SBC_ALPHA,
) -> SBCResult:
    """Run SBC for a PyMC model whose observed values are in the data container ``data_name``.

    Parameters
    ----------
    model
        The fitted model; compiled once, its data container receives each simulated data set.
    var_names
        Quantities to rank (free or deterministic variables of both models).
    generator
        Model of the same structure that draws the true values and data (default ``model``). A
        generator with other priors than ``model`` makes a deliberately mis-specified check.
    observed, data_name
        Name of the observed variable and of the data container holding its values.
    n_simulations
        Number of simulated data sets.
    n_ranks
        Possible ranks ``L + 1`` (``L`` thinned posterior draws per simulation).
    sampler, draws, tune, chains, cores, target_accept
        Passed to :func:`~ojpanel.models.bayes.fit.sample_model`; ``chains * draws >= n_ranks - 1``.
    seed
        Seeds the generating draws and every fit.
    alpha
        Level of the uniformity tests before the Bonferroni correction.

    Returns
    -------
    SBCResult
    """
    if n_simulations < 2:
        raise ParameterError(f"SBC needs at least 2 simulations, got {n_simulations}")
    if chains * draws < n_ranks - 1:
        raise ParameterError(f"chains * draws ({chains * draws}) must be at least n_ranks - 1 ({n_ranks - 1})")
    gen = generator if generator is not None else model
    if data_name not in model.named_vars or not hasattr(model[data_name], "get_value"):
        raise ParameterError(f"the model has no data container '{data_name}' for the observed values")
    missing = [v for v in var_names if v not in model.named_vars or v not in gen.named_vars]
    if missing:
        raise ParameterError(f"variables {missing} are not in both the fitted and the generating model")
    rng = np.random.default_rng(seed)
    gen_seed, *fit_seeds = (int(s) for s in rng.integers(0, 2**31 - 1, size=n_simulations + 1))
    sim = _prior_draws(gen, var_names, observed, n_simulations, gen_seed)
    prior = sim["prior"].to_dataset()
    ypred = sim["prior_predictive"][observed].values[0]
    baseline = model[data_name].get_value()
    ranks: dict[str, list[np.ndarray]] = {v: [] for v in var_names}
    rows = []
    try:
        with report_progress("SBC fits", total=n_simulations) as bar:
            for s in range(n_simulations):
                pm.set_data({data_name: ypred[s].astype(baseline.dtype)}, model=model)
                idata, _ = sample_model(model, sampler=sampler, draws=draws, tune=tune, chains=chains,
                                        cores=cores, seed=fit_seeds[s], target_accept=target_accept)
                post = idata["posterior"].to_dataset()
                for v in var_names:
                    d = post[v].values
                    ranks[v].append(rank_statistics(prior[v].values[0, s], d.reshape(-1, *d.shape[2:]), n_ranks))
                rep = diagnose(idata, [v for v in var_names if v in post])
                rows.append((s, fit_seeds[s], rep.max_rhat, rep.min_ess_bulk, rep.n_divergences, rep.passed))
                bar.advance()
    finally:
        pm.set_data({data_name: baseline}, model=model)
    data_vars = {}
    for v in var_names:
        arr = np.stack(ranks[v])[None]
        dims = ["chain", "draw", *prior[v].dims[2:]]
        data_vars[v] = xr.DataArray(arr, dims=dims, coords={d: prior[v][d] for d in prior[v].dims[2:]})
    tree = xr.DataTree.from_dict({"prior_sbc": xr.Dataset(data_vars, coords={"chain": [0], "draw": np.arange(n_simulations)})})
    tree.attrs.update({"modeling_interface": "ojpanel.models.bayes.sbc", "n_ranks": int(n_ranks), "seed": int(seed)})
    fits = pd.DataFrame(rows, columns=["simulation", "seed", "max_rhat", "min_ess_bulk", "divergences", "gates_passed"])
    return SBCResult(tree, n_ranks, fits.set_index("simulation"), sim, alpha)


def sbc(
    data: ModelData,
    *,
    priors: Priors | None = None,
    generating_priors: Priors | None = None,
    var_names: Sequence[str] | None = None,
    parametrization: str = "auto",
    n_simulations: int = 100,
    n_ranks: int = 100,
    **kwargs: Any,
) -> SBCResult:
    """SBC of a hierarchical model on the structure of ``data`` (its outcome is not used).

    Parameters
    ----------
    data
        Prepared data: municipalities, counties, indicators, years, exposure and (binomial)
        trials are kept; the outcome is replaced by each simulated one.
    priors
        Priors of the fitted model (default :meth:`~ojpanel.models.bayes.models.Priors.default`).
    generating_priors
        Priors the true values are drawn from (default ``priors``); set them differently to check
        that SBC catches a mis-specified prior.
    var_names
        Quantities to rank; default every hyperparameter the model has and the pooled effect
        (:data:`~ojpanel.models.bayes.models.HYPERPARAMETERS`).
    parametrization
        Of the fitted and generating models.
    n_simulations, n_ranks, **kwargs
        Passed to :func:`simulation_based_calibration`.
    """
    pri = priors or Priors.default(data.likelihood)
    model = build_model(data, pri, parametrization=parametrization)
    gen = model if generating_priors is None else build_model(data, generating_priors, parametrization=parametrization)
    names = list(var_names) if var_names is not None else [v for v in HYPERPARAMETERS if v in model.named_vars]
    return simulation_based_calibration(model, names, generator=gen, n_simulations=n_simulations,
                                        n_ranks=n_ranks, **kwargs)
