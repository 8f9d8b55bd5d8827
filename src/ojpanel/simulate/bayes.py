"""Panels with known truth for the Bayesian models' parameter-recovery checks and benchmarks.

Every panel made here is **synthetic** and says so with the one marker
(:func:`ojpanel.core.synthetic.mark_synthetic`: ``attrs["synthetic"] = 1`` and a description
starting with ``"SYNTHETIC"``), the indicator ``source`` coordinate is ``"synthetic"`` and the true
parameters are stored as JSON in ``attrs["truth"]`` (read them back with :func:`truth`). The panel
passes :func:`ojpanel.validate`: municipality codes start with their (made-up) county code.
:mod:`ojpanel.models.bayes` exposes :func:`simulate_bayes_panel` as ``simulate_panel``.

The data-generating process is the one the models of :mod:`ojpanel.models.bayes.models` assume.
For municipality ``m`` in group (county) ``g(m)``, indicator ``i`` and year ``t``::

    u_m     = sigma_group * (a - mean(a))_g(m)
              + sigma_municipality * (b_m - mean of b in g(m))               a, b ~ N(0, 1)
    beta_i  = mu_beta + tau_beta * c_i                                   c ~ N(0, 1)
    eta_mit = alpha_i + u_m + gamma_t + beta_i * x_mit                   gamma_0 = 0

(county effects sum to zero over counties and municipality deviations within every county, as in
the model, so that ``sigma_group`` and ``sigma_municipality`` mean the same in both)

and the outcome is

* ``"normal"``:    ``y = eta + sigma_y * e`` (indicator scale; ``alpha_i`` spread over indicators),
* ``"binomial"``:  ``k ~ Binomial(n, logistic(eta))``; ``value`` is the share in percent, ``n`` the
  number of units behind it,
* ``"bernoulli"``: ``y ~ Bernoulli(logistic(eta))`` (yes/no checklist items, coded 1/0),
* ``"ordinal"``:   ``P(y <= k) = logistic(kappa_ik - (u_m + gamma_t + beta_i x))`` with ordered
  cutpoints per indicator (nej/delvis/ja coded 0/1/2); there is no ``alpha_i``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
import xarray as xr

from ojpanel.core.synthetic import is_synthetic, mark_synthetic
from ojpanel.errors import ParameterError
from ojpanel.provenance import provenance_attrs

__all__ = ["simulate_bayes_panel", "truth", "LIKELIHOODS"]

#: Likelihoods the simulator (and the models) know.
LIKELIHOODS = ("normal", "binomial", "bernoulli", "ordinal")

_SCALE = {"normal": "mean", "binomial": "share", "bernoulli": "binary", "ordinal": "ordinal"}


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def simulate_bayes_panel(
    likelihood: Literal["normal", "binomial", "bernoulli", "ordinal"],
    *,
    n_groups: int = 6,
    municipalities_per_group: int | tuple[int, ...] = 8,
    n_indicators: int = 8,
    n_years: int = 4,
    first_year: int = 2018,
    mu_beta: float = 0.4,
    tau_beta: float = 0.25,
    sigma_group: float = 0.3,
    sigma_municipality: float = 0.5,
    sigma_y: float = 1.0,
    year_step: float = 0.1,
    n_trials: int = 60,
    cutpoints: tuple[float, ...] = (-0.8, 0.8),
    exposure: Literal["binary", "continuous"] = "binary",
    exposure_level: Literal["municipality_year", "cell"] = "municipality_year",
    n_trials_range: tuple[int, int] | None = None,
    seed: int = 0,
    exposure_seed: int | None = None,
) -> xr.Dataset:
    """Simulate a synthetic OJ panel with known effects.

    Parameters
    ----------
    likelihood
        One of :data:`LIKELIHOODS` (see the module docstring for each data-generating process).
    n_groups, municipalities_per_group
        Number of counties and municipalities per county (one number, or one per county; at
        most 100 per county, as municipality codes are the county code and two digits).
    n_indicators, n_years, first_year
        Indicators and years of the panel.
    mu_beta, tau_beta
        Pooled effect of the exposure and its spread across indicators (the targets of the
        recovery checks).
    sigma_group, sigma_municipality
        Spread of county effects and of municipality effects within county.
    sigma_y
        Residual standard deviation (``"normal"`` only).
    year_step
        Year effects are ``gamma_t = year_step * t`` (common shock, ``gamma_0 = 0``).
    n_trials
        Units behind each share (``"binomial"`` only).
    n_trials_range
        ``(low, high)``: units behind each share drawn log-uniformly between the bounds per
        municipality × indicator (fixed over years; as in real panels, where small municipalities
        have few units); overrides ``n_trials``.
    cutpoints
        Increasing cutpoints around which each indicator's cutpoints are jittered (``"ordinal"``).
    exposure
        ``"binary"`` (e.g. an OJ-use or red-flag indicator, probability 0.5) or ``"continuous"``
        (standard normal, e.g. a standardised peer mean).
    exposure_level
        Whether the exposure varies by municipality × year (shared across indicators) or by cell.
    seed
        Seed of :func:`numpy.random.default_rng`.
    exposure_seed
        Separate seed of the exposure (and of ``n_trials_range``), so that replications can share
        one design (default: ``seed``).

    Returns
    -------
    xarray.Dataset
        Panel following the OJ panel contract with data variables ``value``, ``exposure`` and (for
        ``"binomial"``) ``n``; synthetic and labelled so in attrs and coordinates.
    """
    if likelihood not in LIKELIHOODS:
        raise ParameterError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    sizes = np.broadcast_to(np.asarray(municipalities_per_group, dtype=int), (n_groups,)) if np.ndim(
        municipalities_per_group) == 0 else np.asarray(municipalities_per_group, dtype=int)
    if len(sizes) != n_groups:
        raise ParameterError(f"municipalities_per_group has {len(sizes)} entries for {n_groups} groups")
    if n_groups < 1 or (sizes < 1).any() or n_indicators < 1 or n_years < 1:
        raise ParameterError("panel sizes must all be at least 1")
    if (sizes > 100).any() or n_groups > 99:
        raise ParameterError("at most 99 counties of at most 100 municipalities (4-digit codes)")
    if np.any(np.diff(cutpoints) <= 0):
        raise ParameterError(f"cutpoints must be strictly increasing, got {cutpoints}")
    rng = np.random.default_rng(seed)
    xrng = np.random.default_rng(seed if exposure_seed is None else exposure_seed)
    n_mun = int(sizes.sum())
    group_of = np.repeat(np.arange(n_groups), sizes)
    a = rng.standard_normal(n_groups)
    b = rng.standard_normal(n_mun)
    a = a - a.mean() if n_groups > 1 else np.zeros(1)
    b = b - (np.bincount(group_of, weights=b) / sizes)[group_of]
    u = sigma_group * a[group_of] + sigma_municipality * b
    c = rng.standard_normal(n_indicators)
    beta = mu_beta + tau_beta * c
    gamma = year_step * np.arange(n_years)
    if likelihood == "normal":
        alpha = rng.normal(50.0, 10.0, n_indicators)
    elif likelihood == "ordinal":
        alpha = np.zeros(n_indicators)
    else:
        alpha = rng.normal(0.0, 0.7, n_indicators)
    shape = (n_mun, n_indicators, n_years)
    if exposure_level == "municipality_year":
        xs = (n_mun, 1, n_years)
    elif exposure_level == "cell":
        xs = shape
    else:
        raise ParameterError(f"exposure_level must be 'municipality_year' or 'cell', got {exposure_level!r}")
    if exposure == "binary":
        x = xrng.binomial(1, 0.5, xs).astype(float)
    elif exposure == "continuous":
        x = xrng.standard_normal(xs)
    else:
        raise ParameterError(f"exposure must be 'binary' or 'continuous', got {exposure!r}")
    x = np.broadcast_to(x, shape).copy()
    eta = alpha[None, :, None] + u[:, None, None] + gamma[None, None, :] + beta[None, :, None] * x
    data_vars: dict[str, Any] = {}
    tr: dict[str, Any] = {
        "likelihood": likelihood,
        "mu_beta": mu_beta,
        "tau_beta": tau_beta,
        "sigma_group": sigma_group,
        "sigma_municipality": sigma_municipality,
        "beta": beta.tolist(),
        "year_effect": gamma.tolist(),
        "seed": seed,
    }
    if likelihood == "normal":
        value = eta + sigma_y * rng.standard_normal(shape)
        tr["sigma_y"] = sigma_y
        tr["alpha"] = alpha.tolist()
    elif likelihood == "binomial":
        if n_trials_range is not None:
            lo, hi = n_trials_range
            if not 1 <= lo <= hi:
                raise ParameterError(f"n_trials_range must be (low, high) with 1 <= low <= high, got {n_trials_range}")
            nmi = np.round(np.exp(xrng.uniform(np.log(lo), np.log(hi), (n_mun, n_indicators, 1))))
            n = np.broadcast_to(nmi, shape).astype(float)
        else:
            n = np.full(shape, float(n_trials))
        k = rng.binomial(n.astype(np.int64), _logistic(eta))
        value = 100.0 * k / n
        data_vars["n"] = (("municipality", "indicator", "year"), n)
        tr["alpha"] = alpha.tolist()
    elif likelihood == "bernoulli":
        value = rng.binomial(1, _logistic(eta)).astype(float)
        tr["alpha"] = alpha.tolist()
    else:
        kappa = np.sort(np.asarray(cutpoints)[None, :] + rng.normal(0.0, 0.3, (n_indicators, len(cutpoints))), axis=1)
        # latent logistic: y = #{k: latent > kappa_k}
        latent = eta + rng.logistic(size=shape)
        value = (latent[..., None] > kappa[None, :, None, :]).sum(-1).astype(float)
        tr["cutpoints"] = kappa.tolist()
    data_vars["value"] = (("municipality", "indicator", "year"), value)
    data_vars["exposure"] = (("municipality", "indicator", "year"), x)
    county = [f"{90 + g:02d}" if n_groups <= 10 else f"{g + 1:02d}" for g in group_of]
    # the contract: a municipality code starts with its county code (codes stay sorted by county)
    within = np.arange(n_mun) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    mun = [f"{c}{k:02d}" for c, k in zip(county, within, strict=True)]
    kg = np.array(["A1", "B3", "C6", "C8", "B5"])
    coords = {
        "municipality": mun,
        "indicator": [f"SYN{i + 1:03d}" for i in range(n_indicators)],
        "year": np.arange(first_year, first_year + n_years),
        "municipality_name": ("municipality", [f"Synthetic municipality {j + 1}" for j in range(n_mun)]),
        "county": ("municipality", county),
        "county_name": ("municipality", [f"Synthetic county {g + 1}" for g in group_of]),
        "kommungrupp_2011": ("municipality", [f"{j % 10 + 1}" for j in range(n_mun)]),
        "kommungrupp_2017": ("municipality", kg[np.arange(n_mun) % len(kg)].tolist()),
        "kommungrupp_2023": ("municipality", kg[np.arange(n_mun) % len(kg)].tolist()),
        "title": ("indicator", [f"Synthetic indicator {i + 1} ({likelihood})" for i in range(n_indicators)]),
        "area": ("indicator", ["synthetic"] * n_indicators),
        "kind": ("indicator", ["result"] * n_indicators),
        "scale": ("indicator", [_SCALE[likelihood]] * n_indicators),
        "direction": ("indicator", np.ones(n_indicators, dtype=int)),
        "source": ("indicator", ["synthetic"] * n_indicators),
    }
    attrs = provenance_attrs(
        mark_synthetic(
            f"SYNTHETIC {likelihood} panel from ojpanel.simulate.simulate_bayes_panel: mu_beta={mu_beta}, "
            f"tau_beta={tau_beta}, sigma_group={sigma_group}, sigma_municipality={sigma_municipality}, "
            f"exposure={exposure} ({exposure_level}), seed={seed}; not real data"
        ),
        simulator="ojpanel.simulate.bayes.simulate_bayes_panel",
        truth=tr,
    )
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def truth(ds: xr.Dataset) -> dict[str, Any]:
    """True parameters of a panel made by :func:`simulate_bayes_panel`.

    Raises
    ------
    ParameterError
        If the panel is not a synthetic panel from :func:`simulate_bayes_panel`.
    """
    if not is_synthetic(ds) or "truth" not in ds.attrs:
        raise ParameterError("this panel carries no known truth; make one with simulate_bayes_panel()")
    return json.loads(ds.attrs["truth"])
