"""Bayesian hierarchical models of the OJ panel (PyMC; nutpie sampler by default).

Import as ``ojpanel.models.bayes`` (PyMC is loaded only here, never by ``ojpanel.models``).

Modules: :mod:`~ojpanel.models.bayes.data` (panel → model arrays), :mod:`~ojpanel.models.bayes.models`
(model builders), :mod:`~ojpanel.models.bayes.fit` (sampling, seeds, provenance, one call per
model), :mod:`~ojpanel.models.bayes.diagnostics` (convergence gates),
:mod:`~ojpanel.models.bayes.checks` (predictive checks, PSIS-LOO, grouped CV),
:mod:`~ojpanel.models.bayes.compare_fe` (Bayesian vs fixed effects),
:mod:`~ojpanel.models.bayes.sbc` (simulation-based calibration) and
:mod:`~ojpanel.models.bayes.plots` (ArviZ figures in the package's style). ``simulate_panel`` and
``truth`` (synthetic panels with known truth) come from :mod:`ojpanel.simulate.bayes`, where every
simulator lives. Fits are ArviZ 1 :class:`xarray.DataTree` objects.
"""

from __future__ import annotations

from ojpanel.models.bayes.checks import (
    GroupCVResult,
    LooReport,
    compare_models,
    leave_group_out_cv,
    loo,
    plot_ppc,
    posterior_predictive,
    prior_predictive,
)
from ojpanel.models.bayes.compare_fe import FEComparison, compare_fe, fe_estimates
from ojpanel.models.bayes.data import ModelData, PeerExposure, prepare_data
from ojpanel.models.bayes.diagnostics import (
    ConvergenceWarning,
    DiagnosticsReport,
    diagnose,
    enforce_gates,
    gated_variables,
    passed,
)
from ojpanel.models.bayes.fit import (
    SamplerFallbackWarning,
    fit,
    fit_binary,
    fit_continuous,
    fit_ordinal,
    rebuild_model,
    sample_model,
)
from ojpanel.models.bayes.models import (
    HYPERPARAMETERS,
    Priors,
    build_model,
    ordinal_probabilities,
    set_model_data,
)
from ojpanel.models.bayes.plots import PARAMETER_LABELS, plot_effects, plot_rank
from ojpanel.models.bayes.sbc import (
    SBCResult,
    rank_statistics,
    sbc,
    simulation_based_calibration,
    uniformity_pvalues,
)
from ojpanel.simulate.bayes import simulate_bayes_panel as simulate_panel
from ojpanel.simulate.bayes import truth

__all__ = [
    "fit_continuous",
    "fit_binary",
    "fit_ordinal",
    "fit",
    "sample_model",
    "rebuild_model",
    "prepare_data",
    "ModelData",
    "PeerExposure",
    "build_model",
    "set_model_data",
    "HYPERPARAMETERS",
    "Priors",
    "ordinal_probabilities",
    "diagnose",
    "enforce_gates",
    "gated_variables",
    "passed",
    "DiagnosticsReport",
    "ConvergenceWarning",
    "SamplerFallbackWarning",
    "prior_predictive",
    "posterior_predictive",
    "plot_ppc",
    "plot_effects",
    "plot_rank",
    "PARAMETER_LABELS",
    "loo",
    "LooReport",
    "compare_models",
    "leave_group_out_cv",
    "GroupCVResult",
    "compare_fe",
    "fe_estimates",
    "FEComparison",
    "sbc",
    "simulation_based_calibration",
    "SBCResult",
    "rank_statistics",
    "uniformity_pvalues",
    "simulate_panel",
    "truth",
]
