"""Sampling with seeds and provenance, and the one-call model functions on the panel.

:func:`fit_continuous`, :func:`fit_binary` and :func:`fit_ordinal` take the panel, select and code
it (:func:`~ojpanel.models.bayes.data.prepare_data`), build the hierarchical model
(:func:`~ojpanel.models.bayes.models.build_model`), sample it and return ArviZ 1's
:class:`xarray.DataTree` (groups as children) whose attrs carry provenance (data hashes, versions, seed, sampler, specification, priors) and the
outcome of the convergence gates.

nutpie is the default sampler; PyMC's NUTS is the fallback (used, with a
:class:`SamplerFallbackWarning`, when nutpie cannot be imported or cannot compile the model) and
can be asked for with ``sampler="pymc"``. The same seed gives identical draws with either sampler.
"""

from __future__ import annotations

import json
import os
import time
import weakref
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pymc as pm
import xarray as xr

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.errors import OJPanelWarning, ParameterError
from ojpanel.models.bayes.data import SHARE_SCALES, Exposure, ModelData, prepare_data, select_panel
from ojpanel.models.bayes.diagnostics import enforce_gates, gated_variables
from ojpanel.models.bayes.loglik import pointwise_log_likelihood
from ojpanel.models.bayes.models import (
    Priors,
    build_model,
    choose_parametrization,
    exposure_offset,
    set_model_data,
)
from ojpanel.progress import progress_mode
from ojpanel.provenance import hash_dataset, provenance_attrs

__all__ = [
    "COMPILE_KWARGS",
    "SamplerFallbackWarning",
    "compile_nutpie",
    "sample_model",
    "fit",
    "fit_continuous",
    "fit_binary",
    "fit_ordinal",
    "rebuild_model",
]

Sampler = Literal["nutpie", "pymc"]
Adaptation = Literal["diag", "low_rank"]
#: Default kept draws and warm-up iterations per chain (see :func:`sample_model`).
DEFAULT_DRAWS, DEFAULT_TUNE = 1500, 500
#: Default target acceptance rate of the step-size adaptation (see :func:`sample_model`).
DEFAULT_TARGET_ACCEPT = 0.8

#: PyTensor backend of every PyMC compilation in this package. Numba calls BLAS through SciPy's
#: bundled OpenBLAS, so nothing depends on PyTensor's C backend finding a system BLAS (a pip-only
#: install has none, and the C backend then warns that BLAS operations are "severely degraded").
#: nutpie compiles with numba as well. ``benchmarks/bench_bayes.py`` times both backends.
COMPILE_KWARGS: dict[str, Any] = {"mode": "NUMBA"}

# compiled nutpie models, so that repeated sampling of one model (seeds, folds) compiles once
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class SamplerFallbackWarning(OJPanelWarning):
    """nutpie was unavailable or failed to compile the model; PyMC's NUTS sampled instead."""


def _default_cores(chains: int) -> int:
    return max(1, min(chains, os.cpu_count() or 1))


def compile_nutpie(model: pm.Model) -> Any:
    """nutpie's compiled model for ``model``, compiled once per model object (then cached).

    Data are swapped in at sampling time (:func:`sample_model`), so one compilation serves every
    data set of the same structure.
    """
    import nutpie

    if model not in _COMPILED:
        _COMPILED[model] = nutpie.compile_pymc_model(model)
    return _COMPILED[model]


def _with_current_data(compiled: Any, model: pm.Model) -> Any:
    """The compiled model with the model's current data containers (after ``pm.set_data``)."""
    vals = {v.name: v.get_value() for v in model.data_vars if hasattr(v, "get_value")}
    return compiled.with_data(**vals) if vals else compiled


def sample_model(
    model: pm.Model,
    *,
    sampler: Sampler = "nutpie",
    draws: int = DEFAULT_DRAWS,
    tune: int = DEFAULT_TUNE,
    chains: int = 2,
    cores: int | None = None,
    seed: int = 0,
    target_accept: float = DEFAULT_TARGET_ACCEPT,
    progress: bool = False,
    adaptation: Adaptation = "diag",
) -> tuple[xr.DataTree, str]:
    """Sample a PyMC model with nutpie (default) or PyMC's NUTS.

    Parameters
    ----------
    model
        The model.
    sampler
        ``"nutpie"`` or ``"pymc"``.
    draws, tune, chains
        Kept draws and warm-up iterations per chain, number of chains. The defaults spend little on
        warm-up (nutpie's mass-matrix adaptation settles within a few hundred iterations on these
        models) and more on kept draws, which the R-hat gate over hundreds of municipality effects
        needs: its largest value over ~800 quantities is mostly sampling noise, which shrinks with
        the draws (on the 46,400-observation benchmark model 500 + 1500 passed the gates, max R-hat
        1.007, at about the cost of 1000 + 1000, which did not: 1.0100).
    cores
        Parallel chains; default ``min(chains, cpu_count)``.
    seed
        Integer seed; identical seeds give identical draws for the same model and sampler.
    target_accept
        Target acceptance rate of the step-size adaptation (0.8, as in Stan, PyMC and nutpie). A
        lower target takes larger steps and fewer gradients per draw but gains no effective draws
        per second on these models (0.65 on the benchmark panel: 7 gradients per draw instead of
        15, and half the ESS per draw; on notebook 05's panel the year effects then failed R-hat).
    progress
        Show a progress bar.
    adaptation
        nutpie's mass-matrix adaptation: ``"diag"`` (default) or ``"low_rank"`` (a diagonal plus
        low-rank correction learnt from draws and gradients; helps with correlated posteriors).
        PyMC's NUTS always adapts a diagonal mass matrix.

    Returns
    -------
    (xarray.DataTree, str)
        Posterior and sample stats (warm-up discarded), and the sampler actually used.
    """
    if sampler not in ("nutpie", "pymc"):
        raise ParameterError(f"sampler must be 'nutpie' or 'pymc', got {sampler!r}")
    if draws < 1 or tune < 0 or chains < 1:
        raise ParameterError(f"need draws >= 1, tune >= 0, chains >= 1 (got {draws}, {tune}, {chains})")
    if not 0 < target_accept < 1:
        raise ParameterError(f"target_accept must be in (0, 1), got {target_accept}")
    if adaptation not in ("diag", "low_rank"):
        raise ParameterError(f"adaptation must be 'diag' or 'low_rank', got {adaptation!r}")
    seed = int(seed)
    cores = cores or _default_cores(chains)
    if sampler == "nutpie":
        try:
            compiled = compile_nutpie(model)
        except Exception as err:  # noqa: BLE001 - any import/compile failure triggers the fallback
            import warnings

            warnings.warn(
                f"nutpie could not sample this model ({type(err).__name__}: {err}); falling back to "
                "PyMC's NUTS. Install nutpie with numba, or pass sampler='pymc' to silence this.",
                SamplerFallbackWarning,
                stacklevel=2,
            )
            sampler = "pymc"
        else:
            import nutpie

            idata = nutpie.sample(
                _with_current_data(compiled, model),
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                seed=seed,
                progress_bar=progress,
                save_warmup=False,
                target_accept=target_accept,
                adaptation=adaptation,
            )
            # nutpie also stores the unconstrained values (e.g. ``sigma_log__``); PyMC does not.
            post = idata["posterior"].to_dataset()
            extra = [v for v in post.data_vars if str(v).endswith("__")]
            if extra:
                idata["posterior"] = post.drop_vars(extra)
            return idata, "nutpie"
    with model:
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            random_seed=seed,
            target_accept=target_accept,
            nuts_sampler="pymc",
            progressbar=progress,
            compute_convergence_checks=False,
            return_inferencedata=True,
            idata_kwargs={"log_likelihood": False},
            compile_kwargs=dict(COMPILE_KWARGS),
        )
    return idata, "pymc"


def _data_groups(data: ModelData) -> dict[str, xr.Dataset]:
    obs = {"obs": np.arange(data.n_obs)}
    observed = xr.Dataset({"y": ("obs", data.y)}, coords=obs)
    const = {
        "x": ("obs", data.x),
        "municipality_idx": ("obs", data.municipality_idx),
        "indicator_idx": ("obs", data.indicator_idx),
        "year_idx": ("obs", data.year_idx),
        "group_idx": ("obs", data.group_idx),
        "y_center": ("indicator", data.y_center),
        "y_scale": ("indicator", data.y_scale),
        "x_center": ("indicator", data.x_center),
        "x_scale": ("indicator", data.x_scale),
    }
    if data.n_trials is not None:
        const["n"] = ("obs", data.n_trials)
    constant = xr.Dataset(const, coords={**obs, "indicator": data.indicators})
    return {"observed_data": observed, "constant_data": constant}


def fit(
    data: ModelData,
    *,
    priors: Priors | None = None,
    municipality_effects: bool = True,
    year_effects: bool = True,
    parametrization: str = "auto",
    sampler: Sampler = "nutpie",
    draws: int = DEFAULT_DRAWS,
    tune: int = DEFAULT_TUNE,
    chains: int = 2,
    cores: int | None = None,
    seed: int = 0,
    target_accept: float = DEFAULT_TARGET_ACCEPT,
    adaptation: Adaptation = "diag",
    log_likelihood: bool = True,
    diagnostics: Literal["raise", "warn", "flag"] = "raise",
    panel_hash: str | None = None,
    progress: bool | None = None,
    model: pm.Model | None = None,
) -> xr.DataTree:
    """Build, sample and check one hierarchical model for prepared data.

    Parameters
    ----------
    data
        Output of :func:`~ojpanel.models.bayes.data.prepare_data`.
    priors, municipality_effects, year_effects, parametrization
        Passed to :func:`~ojpanel.models.bayes.models.build_model` (``"auto"`` is resolved on
        ``data`` and the choice recorded in the attrs).
    sampler, draws, tune, chains, cores, seed, target_accept, adaptation
        Passed to :func:`sample_model`. Two chains on two cores is the default.
    progress
        Show the sampler's progress bar. None (default) follows :mod:`ojpanel.progress`: the bar
        appears in a notebook and on a terminal, not in logs or headless pipeline kernels.
    log_likelihood
        Store pointwise log-likelihood (needed for PSIS-LOO; memory ``n_obs × draws × chains``).
    diagnostics
        What a failed convergence gate does (see
        :func:`~ojpanel.models.bayes.diagnostics.enforce_gates`): by default a fit that fails the
        gates raises, so an unconverged posterior is never used by accident; ``"warn"`` or
        ``"flag"`` keep it for inspection. The outcome is always recorded in the attrs. The gates
        check the model's quantities, not the auxiliary variables of its parametrisation
        (:func:`~ojpanel.models.bayes.diagnostics.gated_variables`).
    panel_hash
        Hash of the source panel, recorded with the hash of the model's data.
    model
        An already-built model for data of the same structure (e.g. to reuse nutpie's compilation
        across seeds or simulated data sets); ``data`` is put into its containers
        (:func:`~ojpanel.models.bayes.models.set_model_data`). It must have been built with the
        same ``priors``, effects and parametrisation, which are recorded as given here.

    Returns
    -------
    xarray.DataTree
        ArviZ 1's container: children ``posterior``, ``sample_stats``, ``observed_data``,
        ``constant_data`` (and ``log_likelihood``); provenance and gate outcome in ``attrs`` (also
        on ``posterior``).
    """
    pri = priors or Priors.default(data.likelihood)
    par = choose_parametrization(data) if parametrization == "auto" else parametrization
    xoff = exposure_offset(data)
    if model is None:
        model = build_model(data, pri, municipality_effects=municipality_effects, year_effects=year_effects,
                            parametrization=par, x_offset=xoff)
    else:
        set_model_data(model, data, xoff)
    if progress is None:
        progress = progress_mode() in {"widget", "bar"}
    t0 = time.perf_counter()
    idata, used = sample_model(
        model, sampler=sampler, draws=draws, tune=tune, chains=chains, cores=cores, seed=seed,
        target_accept=target_accept, progress=progress, adaptation=adaptation,
    )
    t1 = time.perf_counter()
    for name, group in _data_groups(data).items():
        idata[name] = group  # replaces PyMC's own copy, if any
    if log_likelihood:
        idata["log_likelihood"] = pointwise_log_likelihood(idata["posterior"].to_dataset(), model,
                                                           compile_kwargs=dict(COMPILE_KWARGS))
    t2 = time.perf_counter()
    attrs = provenance_attrs(
        {"source_note": PROCESSED_SOURCE_NOTE, "model": f"ojpanel.models.bayes hierarchical {data.likelihood}"},
        likelihood=data.likelihood,
        data_hash=data.data_hash,
        panel_hash=panel_hash or "",
        seed=int(seed),
        sampler=used,
        sampler_requested=sampler,
        draws=int(draws),
        tune=int(tune),
        chains=int(chains),
        target_accept=float(target_accept),
        adaptation=adaptation if used == "nutpie" else "diag",
        n_obs=int(data.n_obs),
        n_missing=int(data.n_missing),
        spec=data.spec,
        priors=pri.to_dict(),
        municipality_effects=int(municipality_effects),
        year_effects=int(year_effects),
        parametrization=par,
        x_offset=[float(v) for v in xoff],
    )
    idata.attrs.update(attrs)
    idata["posterior"].attrs.update(attrs)
    try:
        enforce_gates(idata, gated_variables(idata), on_fail=diagnostics)
    finally:
        # wall-clock seconds of the stages (compilation is inside sampling unless already cached);
        # on the tree only, not on the posterior, whose attrs describe the draws
        idata.attrs["timing_seconds"] = json.dumps({"sampling": round(t1 - t0, 3), "log_likelihood": round(t2 - t1, 3),
                                                    "gates": round(time.perf_counter() - t2, 3)})
    return idata


def rebuild_model(idata: xr.DataTree, data: ModelData, new_data: ModelData | None = None) -> pm.Model:
    """Rebuild the PyMC model of a fit from its attrs (priors and options) and its data.

    Parameters
    ----------
    idata
        The fit.
    data
        The data the fit was made with (checked by hash).
    new_data
        Optional other observations with the same labels (e.g. held-out cells); the model is
        then built on them with the fit's options, for predictions at the fit's draws.

    Raises
    ------
    ParameterError
        If ``data`` is not the data the fit was made with (hash mismatch).
    """
    if idata.attrs.get("data_hash") != data.data_hash:
        raise ParameterError("the data do not match the fit (different data hash); prepare them with the fit's specification")
    pri = Priors(**json.loads(idata.attrs["priors"]))
    return build_model(
        new_data if new_data is not None else data, pri,
        municipality_effects=bool(int(idata.attrs.get("municipality_effects", 1))),
        year_effects=bool(int(idata.attrs.get("year_effects", 1))),
        parametrization=idata.attrs.get("parametrization", "auto"),
        x_offset=np.asarray(json.loads(idata.attrs["x_offset"]), dtype=float) if "x_offset" in idata.attrs else None,
    )


def _fit_panel(ds: xr.Dataset, exposure: Exposure, likelihood: str, *, area, indicators, years, grouping,
               standardize_exposure, n_categories=None, standardize_outcome=True, **kw: Any) -> xr.DataTree:
    data = prepare_data(
        ds, exposure, likelihood=likelihood, area=area, indicators=indicators, years=years,
        grouping=grouping, standardize_exposure=standardize_exposure, n_categories=n_categories,
        standardize_outcome=standardize_outcome,
    )
    return fit(data, panel_hash=hash_dataset(ds), **kw)


def fit_continuous(
    ds: xr.Dataset,
    exposure: Exposure,
    *,
    likelihood: Literal["auto", "normal", "binomial"] = "auto",
    area: str | Sequence[str] | None = None,
    indicators: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    grouping: str | None = "county",
    standardize_exposure: bool | Literal["auto"] = "auto",
    standardize_outcome: bool = True,
    **kwargs: Any,
) -> xr.DataTree:
    """Hierarchical model of continuous or share indicators.

    Parameters
    ----------
    ds
        The panel.
    exposure
        Effect of interest (DataArray, variable/coordinate name, or callable on the panel).
    likelihood
        ``"normal"`` (outcome standardised per indicator), ``"binomial"`` (shares with counts in
        ``n``) or ``"auto"``: binomial when the panel has ``n`` and every selected indicator has
        scale ``share`` or ``proportion`` (:data:`~ojpanel.models.bayes.data.SHARE_SCALES`), else normal.
    area, indicators, years, grouping, standardize_exposure, standardize_outcome
        See :func:`~ojpanel.models.bayes.data.prepare_data`.
    **kwargs
        Passed to :func:`fit` (sampler, draws, tune, chains, seed, priors, diagnostics, ...).

    Returns
    -------
    xarray.DataTree
    """
    if likelihood == "auto":
        likelihood = "normal"
        if "n" in ds and "scale" in ds.coords:
            sub = select_panel(ds, area, indicators, years)
            if np.isin(sub["scale"].values.astype(str), list(SHARE_SCALES)).all():
                likelihood = "binomial"
    if likelihood not in ("normal", "binomial"):
        raise ParameterError(f"fit_continuous: likelihood must be 'auto', 'normal' or 'binomial', got {likelihood!r}")
    return _fit_panel(ds, exposure, likelihood, area=area, indicators=indicators, years=years,
                      grouping=grouping, standardize_exposure=standardize_exposure,
                      standardize_outcome=standardize_outcome, **kwargs)


def fit_binary(
    ds: xr.Dataset,
    exposure: Exposure,
    *,
    area: str | Sequence[str] | None = None,
    indicators: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    grouping: str | None = "county",
    standardize_exposure: bool | Literal["auto"] = "auto",
    **kwargs: Any,
) -> xr.DataTree:
    """Hierarchical Bernoulli-logit model of yes/no checklist items (values 0/1).

    Parameters are those of :func:`fit_continuous` (without ``likelihood``).
    """
    return _fit_panel(ds, exposure, "bernoulli", area=area, indicators=indicators, years=years,
                      grouping=grouping, standardize_exposure=standardize_exposure, **kwargs)


def fit_ordinal(
    ds: xr.Dataset,
    exposure: Exposure,
    *,
    area: str | Sequence[str] | None = None,
    indicators: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    grouping: str | None = "county",
    standardize_exposure: bool | Literal["auto"] = "auto",
    n_categories: int | None = None,
    **kwargs: Any,
) -> xr.DataTree:
    """Hierarchical cumulative-logit model of ordered items (nej=0, delvis=1, ja=2).

    Parameters are those of :func:`fit_continuous` (without ``likelihood``), plus
    ``n_categories`` (default ``max(value) + 1``).
    """
    return _fit_panel(ds, exposure, "ordinal", area=area, indicators=indicators, years=years,
                      grouping=grouping, standardize_exposure=standardize_exposure,
                      n_categories=n_categories, **kwargs)
