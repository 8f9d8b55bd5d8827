"""Models of the OJ panel: fixed-effects regressions (``models.fe``) and Bayesian models
(``models.bayes``, imported only on request so that PyMC is not loaded here)."""

from __future__ import annotations

from ojpanel.models.fe import fit_batch, fit_indicators, fit_linearmodels, fit_panel, prepare_batch
from ojpanel.models.fe_results import BatchFEResults, FEResults, compare

__all__ = [
    "fit_panel",
    "fit_indicators",
    "fit_batch",
    "fit_linearmodels",
    "prepare_batch",
    "FEResults",
    "BatchFEResults",
    "compare",
]
