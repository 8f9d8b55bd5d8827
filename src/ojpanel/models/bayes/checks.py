"""Model checking: predictive checks, PSIS-LOO with the Pareto-k report, comparison, grouped CV.

* :func:`prior_predictive` / :func:`posterior_predictive` draw replicated data; :func:`plot_ppc`
  plots them against the observed outcome (arviz-plots).
* :func:`loo` runs PSIS-LOO (arviz-stats) and returns a :class:`LooReport` with the Pareto-k table.
* :func:`compare_models` is arviz-stats' comparison table for several fits.
* :func:`leave_group_out_cv` refits the model without each group (county) in turn and scores the
  held-out observations. Pointwise LOO leaves one *cell* out while its municipality stays in the
  data; holding out whole counties asks the harder question "how well does the model predict
  municipalities it has never seen". The held-out municipalities' effects are drawn from the
  fitted hierarchy (they have no data in the fold), so the score integrates over new group effects.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import arviz_plots as azp
import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from scipy.special import logsumexp

from ojpanel.core.results import Result
from ojpanel.core.style import style
from ojpanel.errors import ParameterError
from ojpanel.models.bayes.data import ModelData
from ojpanel.models.bayes.fit import COMPILE_KWARGS, fit, rebuild_model
from ojpanel.models.bayes.loglik import pointwise_log_likelihood
from ojpanel.models.bayes.models import Priors, build_model
from ojpanel.models.bayes.plots import arviz_figure

__all__ = [
    "prior_predictive",
    "posterior_predictive",
    "plot_ppc",
    "LooReport",
    "loo",
    "compare_models",
    "GroupCVResult",
    "leave_group_out_cv",
]


def prior_predictive(data: ModelData, priors: Priors | None = None, *, draws: int = 200, seed: int = 0,
                     **build_kwargs: Any) -> xr.DataTree:
    """Draws from the prior and the prior predictive distribution (with the observed data).

    Parameters
    ----------
    data
        Prepared data.
    priors, build_kwargs
        Passed to :func:`~ojpanel.models.bayes.models.build_model`.
    draws, seed
        Number of draws and seed.
    """
    model = build_model(data, priors, **build_kwargs)
    with model:
        out = pm.sample_prior_predictive(draws=draws, random_seed=seed, compile_kwargs=dict(COMPILE_KWARGS))
    out.attrs["likelihood"] = data.likelihood  # chooses the predictive-check plot
    return out


def posterior_predictive(idata: xr.DataTree, data: ModelData, *, seed: int = 0,
                         thin: int = 1) -> xr.DataTree:
    """Add a ``posterior_predictive`` group to a fit (model rebuilt from the fit's attrs).

    Parameters
    ----------
    idata
        The fit (modified in place and returned).
    data
        The fit's data.
    seed
        Seed of the replicated draws.
    thin
        Use every ``thin``-th draw (memory is ``n_obs × draws``).
    """
    if thin < 1:
        raise ParameterError(f"thin must be >= 1, got {thin}")
    model = rebuild_model(idata, data)
    post = idata["posterior"].to_dataset().isel(draw=slice(None, None, thin))
    with model:
        pp = pm.sample_posterior_predictive(post, random_seed=seed, progressbar=False,
                                           compile_kwargs=dict(COMPILE_KWARGS))
    idata["posterior_predictive"] = pp["posterior_predictive"].to_dataset()
    return idata


_OUTCOME_LABEL = {"normal": "Utfall (standardavvikelser av indikatorn)",
                  "binomial": "Antal ja (enheter)"}
_PPC_TITLE = {"prior": "Priorprediktiv kontroll", "posterior": "Posteriorprediktiv kontroll"}


def plot_ppc(idata: xr.DataTree, *, group: Literal["prior", "posterior"] = "posterior",
             num_pp_samples: int = 50) -> Any:
    """Predictive check plot (arviz-plots) in the package's style, with the source note.

    The plot suits the outcome: for 0/1 outcomes a PAV-adjusted calibration plot
    (``plot_ppc_pava``), for ordered categories a rootogram (``plot_ppc_rootogram``), otherwise
    the predictive distributions over the observed one (``plot_ppc_dist``; an ECDF for counts).
    Titles and labels are Swedish like the package's other figures; the figure passes
    :func:`ojpanel.core.style.figure_problems` and is saved with
    :func:`ojpanel.core.style.save_figure`.

    Parameters
    ----------
    idata
        A fit with ``posterior_predictive`` (or a prior-predictive tree) and ``observed_data``.
    group
        ``"prior"`` or ``"posterior"`` predictive draws.
    num_pp_samples
        Replicated data sets drawn as lines (distribution plot).

    Returns
    -------
    matplotlib.figure.Figure
    """
    name = f"{group}_predictive"
    if name not in idata.children or "observed_data" not in idata.children:
        raise ParameterError(
            f"the fit lacks '{name}' or 'observed_data'; run "
            f"{'prior_predictive' if group == 'prior' else 'posterior_predictive'}() first"
        )
    lik = idata.attrs.get("likelihood")
    size = {"figsize": (6.5, 3.6)}
    with warnings.catch_warnings(), style():
        # arviz-plots reminds that prior draws are not posterior ones: that is the point here
        warnings.filterwarnings("ignore", message="(?s).*prior predictive", category=UserWarning)
        if lik == "bernoulli":
            pc = azp.plot_ppc_pava(idata, group=name, backend="matplotlib", figure_kwargs=size)
        elif lik == "ordinal":
            pc = azp.plot_ppc_rootogram(idata, group=name, backend="matplotlib", figure_kwargs=size)
        else:
            kind = "ecdf" if lik == "binomial" else "kde"
            pc = azp.plot_ppc_dist(idata, group=name, num_samples=num_pp_samples, kind=kind, backend="matplotlib",
                                   figure_kwargs=size)
        fig = arviz_figure(pc)
        for ax in fig.axes:
            if ax.get_title():
                ax.set_title(_PPC_TITLE[group], loc="center")
            if lik in _OUTCOME_LABEL and lik not in ("bernoulli", "ordinal"):
                ax.set_xlabel(_OUTCOME_LABEL[lik])
        if lik not in ("bernoulli", "ordinal"):
            _ppc_legend(fig.axes[0], group)
    return fig



def _ppc_legend(ax: Any, group: str) -> None:
    """Name the observed line and the predicted ones (arviz-plots' distribution plot has no legend).

    arviz-plots draws the observed distribution in black and the predictive draws in the first
    colour of the cycle; a prior-predictive tree may have no observed line.
    """
    from matplotlib.colors import to_hex
    from matplotlib.lines import Line2D

    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2]
    observed = [ln for ln in lines if to_hex(ln.get_color()) == "#000000"]
    predicted = [ln for ln in lines if to_hex(ln.get_color()) != "#000000"]
    drawn = "Priorprediktiva dragningar" if group == "prior" else "Posteriorprediktiva dragningar"
    handles = [Line2D([], [], color="black", label="Observerat")] if observed else []
    if predicted:
        handles.append(Line2D([], [], color=predicted[0].get_color(), alpha=0.6, label=drawn))
    if handles:
        ax.legend(handles=handles, loc="upper right")


class LooReport(Result):
    """PSIS-LOO estimate and the Pareto-k diagnostic (read-only).

    Pareto k ≤ ``good_k`` (arviz-stats' sample-size-dependent threshold, at most 0.7): reliable;
    ``good_k``–1: unreliable for those points; > 1: very bad (refit those points or use grouped
    cross-validation).
    """

    title = "PSIS-LOO"

    def __init__(self, elpd: azs.ELPDData):
        self._elpd = elpd

    @property
    def elpd(self) -> float:
        """Expected log pointwise predictive density."""
        return float(self._elpd.elpd)

    @property
    def se(self) -> float:
        """Standard error of ``elpd``."""
        return float(self._elpd.se)

    @property
    def p_loo(self) -> float:
        """Effective number of parameters."""
        return float(self._elpd.p)

    @property
    def pareto_k(self) -> np.ndarray:
        """Pareto k of every observation."""
        return np.asarray(self._elpd.pareto_k).ravel()

    @property
    def good_k(self) -> float:
        """Threshold below which k is good for this sample size."""
        return float(self._elpd.good_k) if self._elpd.good_k is not None else 0.7

    @property
    def elpd_data(self) -> azs.ELPDData:
        """arviz-stats' object (for :func:`arviz_stats.compare` and arviz-plots)."""
        return self._elpd

    def k_table(self) -> pd.DataFrame:
        """Counts and shares of observations by Pareto-k band."""
        k = self.pareto_k
        g = self.good_k
        bands = [(f"(-inf, {g:.2f}] good", k <= g), (f"({g:.2f}, 1] bad", (k > g) & (k <= 1)), ("(1, inf) very bad", k > 1)]
        return pd.DataFrame({"count": [int(m.sum()) for _, m in bands],
                             "share": [float(m.mean()) for _, m in bands]}, index=[b for b, _ in bands])

    @property
    def n_bad(self) -> int:
        """Observations with k above the good threshold."""
        return int((self.pareto_k > self.good_k).sum())

    def to_frame(self) -> pd.DataFrame:
        """One row: elpd, se, p_loo, n_bad."""
        return pd.DataFrame({"elpd_loo": [self.elpd], "se": [self.se], "p_loo": [self.p_loo], "n_bad_k": [self.n_bad]})

    @property
    def summary(self) -> str:
        """Text report with the Pareto-k table."""
        return (f"PSIS-LOO: elpd {self.elpd:.1f} (se {self.se:.1f}), p_loo {self.p_loo:.1f}\n"
                f"Pareto k:\n{self.k_table().to_string()}")

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        return f"<p>PSIS-LOO: elpd {self.elpd:.1f} (se {self.se:.1f}), p_loo {self.p_loo:.1f}</p>" + self.k_table().to_html()


def loo(idata: xr.DataTree) -> LooReport:
    """PSIS-LOO of a fit (needs the ``log_likelihood`` group: fit with ``log_likelihood=True``)."""
    if "log_likelihood" not in idata.children:
        raise ParameterError("the fit has no log_likelihood group; refit with log_likelihood=True")
    # arviz-stats warns about large Pareto k; the report carries that information in its k table
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto", category=UserWarning)
        return LooReport(azs.loo(idata, pointwise=True))


def compare_models(fits: Mapping[str, xr.DataTree], **kwargs: Any) -> pd.DataFrame:
    """arviz-stats' model comparison (PSIS-LOO, stacking weights) of named fits of the same data."""
    if len(fits) < 2:
        raise ParameterError("compare_models needs at least two fits")
    hashes = {k: v.attrs.get("data_hash") for k, v in fits.items()}
    if len(set(hashes.values())) > 1:
        raise ParameterError(f"the fits are not of the same data (data hashes differ: {hashes})")
    # large Pareto k shows in loo(); the comparison table carries arviz-stats' diagnostic columns
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto", category=UserWarning)
        return azs.compare(dict(fits), **kwargs)


class GroupCVResult(Result):
    """Leave-one-group-out cross-validation scores (read-only)."""

    title = "Leave-one-group-out cross-validation"

    def __init__(self, table: pd.DataFrame, pointwise: np.ndarray, diagnostics: list[bool]):
        self._table = table
        self._pw = pointwise
        self._diag = diagnostics

    @property
    def elpd(self) -> float:
        """Sum over held-out observations of the log predictive density."""
        return float(self._table["elpd"].sum())

    @property
    def se(self) -> float:
        """Standard error of :attr:`elpd` (from the pointwise values)."""
        return float(np.sqrt(len(self._pw)) * np.std(self._pw, ddof=1)) if len(self._pw) > 1 else float("nan")

    @property
    def pointwise(self) -> np.ndarray:
        """Log predictive density of every held-out observation (in fold order)."""
        return self._pw.copy()

    @property
    def all_folds_converged(self) -> bool:
        """Whether every fold's fit passed the convergence gates."""
        return all(self._diag)

    def to_frame(self) -> pd.DataFrame:
        """One row per held-out group: ``n_obs``, ``elpd``, ``elpd_per_obs``, ``converged``."""
        return self._table.copy()

    @property
    def summary(self) -> str:
        """Text summary."""
        warn = "" if self.all_folds_converged else "\nSome folds FAILED the convergence gates."
        return f"Leave-one-group-out CV: elpd {self.elpd:.1f} (se {self.se:.1f}) over {len(self._table)} folds{warn}"

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        return f"<p>{self.summary}</p>" + self._table.to_html()


def leave_group_out_cv(
    data: ModelData,
    *,
    groups: Sequence[str] | None = None,
    priors: Priors | None = None,
    build_kwargs: Mapping[str, Any] | None = None,
    **fit_kwargs: Any,
) -> GroupCVResult:
    """Refit without each group and score its observations (grouped cross-validation).

    Parameters
    ----------
    data
        Prepared data; its grouping (e.g. county) defines the folds.
    groups
        Groups to hold out (default all).
    priors, build_kwargs
        Model options, as for the fit being validated (``build_kwargs``: ``municipality_effects``,
        ``year_effects``, ``parametrization``).
    **fit_kwargs
        Passed to :func:`~ojpanel.models.bayes.fit.fit` (sampler, draws, tune, chains, seed, ...).
        Gate failures of folds are flagged in the result (``diagnostics`` defaults to ``"flag"``).

    Returns
    -------
    GroupCVResult
        Per observation: ``log mean_s p(y_o | theta_s)`` over the fold's posterior draws.
    """
    all_groups = list(data.groups)
    chosen = all_groups if groups is None else [str(g) for g in groups]
    unknown = sorted(set(chosen) - set(all_groups))
    if unknown:
        raise ParameterError(f"unknown groups {unknown}; available: {all_groups}")
    if len(all_groups) < 2:
        raise ParameterError("leave-group-out CV needs at least two groups")
    bk = dict(build_kwargs or {})
    fit_kwargs.setdefault("diagnostics", "flag")
    obs_group = data.groups[data.group_idx]
    rows, pw, diag = [], [], []
    for g in chosen:
        held = obs_group == g
        if not held.any():
            rows.append((g, 0, np.nan, np.nan, True))
            continue
        train, test = data.subset(~held), data.subset(held)
        idata = fit(train, priors=priors, log_likelihood=False, **bk, **fit_kwargs)
        test_model = rebuild_model(idata, train, test)
        # evaluate the held-out likelihood at the fold's posterior draws
        ll = pointwise_log_likelihood(idata["posterior"].to_dataset(), test_model,
                                      compile_kwargs=dict(COMPILE_KWARGS))["y"].values
        s = ll.reshape(-1, ll.shape[-1])
        lpd = logsumexp(s, axis=0) - np.log(s.shape[0])
        ok = bool(int(idata.attrs.get("diagnostics_passed", 0)))
        rows.append((g, int(held.sum()), float(lpd.sum()), float(lpd.mean()), ok))
        pw.append(lpd)
        diag.append(ok)
    table = pd.DataFrame(rows, columns=["group", "n_obs", "elpd", "elpd_per_obs", "converged"]).set_index("group")
    return GroupCVResult(table, np.concatenate(pw) if pw else np.array([]), diag)
