"""PyMC builders of the hierarchical models.

All three likelihoods share one linear predictor. For observation ``o`` (municipality ``m``,
indicator ``i``, year ``t``, exposure ``x``)::

    eta_o = alpha_i + u_m + gamma_t + beta_i * x_o

* ``u_m = g_{c(m)} + d_m``: municipality effects nested in the grouping (county by default). The
  county effects ``g`` (spread ``sigma_group``) sum to zero over counties and the municipality
  deviations ``d`` (spread ``sigma_municipality``) sum to zero within every county: the common
  level belongs to the intercepts and each county's level to ``g``. Without these constraints
  the overall mean of the municipality effects trades off against every intercept (a ridge that
  made the binomial model fail its gates on realistic panels). ``d`` is sampled as each county's
  ``k - 1`` contrasts, mapped isometrically onto the county's zero-sum subspace
  (:func:`zero_sum_within_groups`): exactly a zero-sum normal per county, and no direction that
  the likelihood does not see (the county means of unconstrained draws, which a sampler had to
  explore on the prior's scale: on a realistic binomial panel 83 gradients per draw instead of 15).
  ``sigma_group`` is the spread of the county means of the municipality effects;
* ``gamma_t``: year effects (first year = reference, so ``alpha_i`` is the indicator's level in the
  first year). They enter as deviations from their mean and the intercepts are sampled at the
  average year (``alpha_average_year``, prior ``N(mean year effect, alpha_sd)``, so that ``alpha``
  keeps its ``N(0, alpha_sd)`` prior): the same model without the ridge between every intercept
  and every year effect;
* ``beta_i = mu_beta + tau_beta * z_beta[i]``: the effect of interest varies by indicator around
  the pooled mean ``mu_beta`` with spread ``tau_beta``.

Each random-effect level (indicator effects, county effects, municipality deviations) is centred
or non-centred (``z ~ N(0, 1)`` scaled by the spread). A level whose units each carry many
observations samples far better centred, one with little information per unit non-centred;
``parametrization="auto"`` decides per level (see :func:`choose_parametrization`). Inside the model the
exposure is centred per indicator (``alpha`` is reported at ``x = 0``), which decorrelates
intercepts and slopes.

Likelihoods: ``normal`` (outcome standardised per indicator by default; residual s.d. per
indicator), ``binomial`` and ``bernoulli`` (logit link; densities with one exponential and one
logarithm per observation for value and gradient, :func:`logit_bernoulli_logp`) and ``ordinal``
(cumulative logit with ordered cutpoints per indicator, which take the place of ``alpha_i``; they
are sampled at the average year, like the intercepts).
"""

from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ojpanel.errors import ParameterError
from ojpanel.models.bayes.data import ModelData

__all__ = [
    "Priors",
    "build_model",
    "set_model_data",
    "model_data_values",
    "choose_parametrization",
    "exposure_offset",
    "within_group_projection",
    "zero_sum_within_groups",
    "n_within_group_contrasts",
    "CENTERED_MIN_OBS",
    "ordinal_probabilities",
    "cumulative_logit_logp",
    "logit_bernoulli_logp",
    "softplus_shared_exp",
    "logit_binomial_logp",
    "EFFECT_VARS",
    "HYPERPARAMETERS",
]

#: Variables that carry the effect of interest.
EFFECT_VARS = ("mu_beta", "tau_beta", "beta")
#: Hyperparameters and the pooled effect (those a model has; ``sigma_y`` only for ``normal``).
HYPERPARAMETERS = ("mu_beta", "tau_beta", "sigma_group", "sigma_municipality", "sigma_y")

# structure every built model was made for (shapes, nesting), so that data can be swapped safely
_STRUCTURE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Priors:
    """Prior scales (normal means 0; spreads are half-normal with the given scale).

    The defaults are weakly informative on the model's scale: log-odds for the logit models and
    indicator standard deviations for the normal model. ``alpha_sd`` applies to the intercept at
    the indicator's mean exposure, ``cutpoint_sd`` to the cutpoints there.
    """

    alpha_sd: float = 1.5
    mu_beta_sd: float = 1.0
    tau_beta_sd: float = 0.5
    sigma_group_sd: float = 0.5
    sigma_municipality_sd: float = 1.0
    year_sd: float = 1.0
    sigma_y_sd: float = 1.0
    cutpoint_sd: float = 2.5

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ParameterError(f"prior scale {f.name} must be a positive finite number, got {v!r}")

    @classmethod
    def default(cls, likelihood: str) -> Priors:
        """Defaults for a likelihood (the normal model works on standardised outcomes)."""
        if likelihood == "normal":
            return cls(alpha_sd=1.0, sigma_municipality_sd=0.5)
        return cls()

    @classmethod
    def weak(cls, scale: float = 100.0) -> Priors:
        """Nearly flat priors on intercepts, effects, year effects and cutpoints (for MLE checks)."""
        return cls(alpha_sd=scale, mu_beta_sd=scale, year_sd=scale, cutpoint_sd=scale)

    def to_dict(self) -> dict[str, float]:
        """Plain dict (stored in the InferenceData attrs so the model can be rebuilt)."""
        return asdict(self)

    def updated(self, **kw: float) -> Priors:
        """Copy with some scales changed."""
        return replace(self, **kw)


def ordinal_probabilities(eta: np.ndarray, cutpoints: np.ndarray) -> np.ndarray:
    """Closed-form category probabilities of the cumulative-logit model.

    ``P(y = k) = F(c_k - eta) - F(c_{k-1} - eta)`` with ``F`` the logistic CDF, ``c_{-1} = -inf``
    and ``c_{K-1} = +inf``.

    Parameters
    ----------
    eta
        Linear predictors, shape ``(n,)``.
    cutpoints
        Increasing cutpoints, shape ``(K-1,)`` or ``(n, K-1)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, K)``; rows sum to one.
    """
    eta = np.asarray(eta, dtype=float)
    c = np.broadcast_to(np.asarray(cutpoints, dtype=float), (len(eta), np.shape(cutpoints)[-1]))
    cdf = 1.0 / (1.0 + np.exp(-(c - eta[:, None])))
    cdf = np.concatenate([np.zeros((len(eta), 1)), cdf, np.ones((len(eta), 1))], axis=1)
    return np.diff(cdf, axis=1)


def cumulative_logit_logp(value: pt.TensorVariable, eta: pt.TensorVariable, cuts: pt.TensorVariable) -> pt.TensorVariable:
    """Log-probability of category ``value`` under the cumulative-logit model (symbolic).

    With ``u = c_y - eta`` and ``l = c_{y-1} - eta`` (``c_{-1} = -inf``, ``c_{K-1} = +inf``),
    ``log[F(u) - F(l)] = u - softplus(u) - softplus(l) + log1mexp(l - u)``; the first category keeps
    ``u - softplus(u)``, the last ``-softplus(l)``. Each softplus takes one exponential that its
    gradient reuses (:func:`softplus_shared_exp`): three exponentials per observation instead of the
    seven of three log-sigmoids and their gradients. The selection of the two cutpoints by index
    keeps the graph small (PyMC's ``OrderedLogistic`` builds all category probabilities, which
    compiles and runs much slower for many observations).

    Parameters
    ----------
    value
        Integer categories ``0..K-1``, shape ``(n,)``.
    eta
        Linear predictor, shape ``(n,)``.
    cuts
        Increasing cutpoints per observation, shape ``(n, K-1)``.
    """
    kmax = cuts.shape[-1] - 1
    rows = pt.arange(value.shape[0])
    hi = cuts[rows, pt.clip(value, 0, kmax)] - eta
    lo = cuts[rows, pt.clip(value - 1, 0, kmax)] - eta
    has_hi = pt.lt(value, kmax + 1)
    has_lo = pt.gt(value, 0)
    both = has_hi & has_lo
    # unused branches get finite stand-ins, so that their (discarded) gradients are not NaN
    upper = pt.switch(has_hi, hi - softplus_shared_exp(hi), 0.0)
    lower = pt.switch(has_lo, -softplus_shared_exp(lo), 0.0)
    gap = pt.switch(both, pt.log1mexp(pt.switch(both, lo - hi, -1.0)), 0.0)
    inside = pt.ge(value, 0) & pt.le(value, kmax + 1)
    return pt.switch(inside, upper + lower + gap, -np.inf)


def softplus_shared_exp(eta: pt.TensorVariable) -> pt.TensorVariable:
    """``log(1 + exp(eta))`` with one exponential that its gradient reuses (symbolic).

    Written as ``max(eta, 0) + log1p(exp(-|eta|))`` (stable for any ``eta``); the gradient,
    ``sigmoid(eta)``, then comes from the same ``exp(-|eta|)``. PyTensor's own ``softplus``
    computes a second exponential for the gradient; in the logit likelihoods these exponentials
    and logarithms are most of the cost of a gradient evaluation.
    """
    pos = pt.gt(eta, 0.0)
    # exp(-|eta|) with the derivative of the branch taken (at 0 the softplus slope 1/2 comes out)
    e = pt.exp(pt.switch(pos, -eta, eta))
    # keeps PyTensor from rewriting log1p(exp(.)) into its softplus (a NaN stays a NaN)
    e = pt.switch(pt.isnan(e), eta, e)
    return pt.switch(pos, eta, 0.0) + pt.log1p(e)


def logit_bernoulli_logp(value: pt.TensorVariable, eta: pt.TensorVariable) -> pt.TensorVariable:
    """Log-probability of a 0/1 ``value`` with success log-odds ``eta`` (symbolic).

    ``y * eta - log(1 + exp(eta))``: one exponential and one logarithm per observation for the
    density and its gradient ``y - sigmoid(eta)`` (:func:`softplus_shared_exp`). PyMC's
    ``Bernoulli(logit_p=...)`` selects between two log-sigmoids and differentiates both.
    """
    return value * eta - softplus_shared_exp(eta)


def logit_binomial_logp(value: pt.TensorVariable, eta: pt.TensorVariable, n: pt.TensorVariable) -> pt.TensorVariable:
    """Log-probability of ``value`` successes in ``n`` trials with success log-odds ``eta`` (symbolic).

    ``log C(n, y) + y * eta - n * log(1 + exp(eta))``, the binomial coefficient from log-gamma
    functions of the data (so that a new outcome put into the model's container changes it too).
    """
    log_choose = pt.gammaln(n + 1.0) - pt.gammaln(value + 1.0) - pt.gammaln(n - value + 1.0)
    return log_choose + value * eta - n * softplus_shared_exp(eta)


def _logit_bernoulli_dist(eta: pt.TensorVariable, size: Any) -> pt.TensorVariable:
    # draws as PyMC's own distribution does (compiled with the model, no Python callback)
    return pm.Bernoulli.dist(logit_p=eta, size=size)


def _logit_binomial_dist(eta: pt.TensorVariable, n: pt.TensorVariable, size: Any) -> pt.TensorVariable:
    return pm.Binomial.dist(n=n, logit_p=eta, size=size)


def _cumulative_logit_dist(eta: pt.TensorVariable, cuts: pt.TensorVariable, size: Any) -> pt.TensorVariable:
    """Categories as the number of cutpoints below a logistic latent variable ``eta + e``
    (symbolic, so draws compile with the model instead of calling back into Python)."""
    latent = eta + pm.Logistic.dist(0.0, 1.0, size=size)
    return pt.sum(pt.gt(latent[..., None], cuts), axis=-1, dtype="int64")


def exposure_offset(data: ModelData) -> np.ndarray:
    """Per-indicator mean exposure of the observations (0 for indicators without any)."""
    n_ind = len(data.indicators)
    ii = data.indicator_idx
    cnt = np.bincount(ii, minlength=n_ind)
    tot = np.bincount(ii, weights=data.x, minlength=n_ind)
    return np.divide(tot, cnt, out=np.zeros(n_ind), where=cnt > 0)


#: Mean observations per unit (indicator, county, municipality) from which ``"auto"`` centres a level.
CENTERED_MIN_OBS = 40
_LEVELS = ("indicator", "group", "municipality")
_FORMS = ("centered", "noncentered")


def choose_parametrization(data: ModelData) -> str:
    """Centred or non-centred form for every level, from the observations per unit of the level.

    A level is centred when its units carry at least :data:`CENTERED_MIN_OBS` observations on
    average (for the binomial likelihood, units behind the shares: a share of 200 units informs
    like 200 yes/no answers). With many observations per unit the likelihood pins the effects down and the
    non-centred form creates a funnel between the spread and the standardised effects (the
    benchmark's county spread: R-hat 1.11, bulk ESS 16; on a realistic binomial panel the
    indicator effects, R-hat 1.68 for ``mu_beta``, and the municipality deviations counted by
    cells instead of units, R-hat 1.04); with few observations the centred form has the
    funnel instead. The indicator effects usually carry hundreds of observations each.

    Returns
    -------
    str
        ``"centered"`` or ``"noncentered"`` when all levels agree, else a per-level
        specification such as ``"indicator:centered,group:centered,municipality:noncentered"``
        (accepted by :func:`build_model`).
    """
    # a binomial cell of n units informs like n yes/no observations
    n = float(data.n_trials.sum()) if data.likelihood == "binomial" else float(data.n_obs)
    per = {"indicator": n / max(len(data.indicators), 1), "group": n / max(len(data.groups), 1),
           "municipality": n / max(len(data.municipalities), 1)}
    forms = {lev: "centered" if per[lev] >= CENTERED_MIN_OBS else "noncentered" for lev in _LEVELS}
    if len(set(forms.values())) == 1:
        return forms["indicator"]
    return ",".join(f"{lev}:{forms[lev]}" for lev in _LEVELS)


def _level_forms(parametrization: str, data: ModelData) -> dict[str, str]:
    par = choose_parametrization(data) if parametrization == "auto" else str(parametrization)
    if par in _FORMS:
        return dict.fromkeys(_LEVELS, par)
    try:
        forms = dict(item.split(":") for item in par.split(","))
    except ValueError:
        forms = {}
    if set(forms) != set(_LEVELS) or not set(forms.values()) <= set(_FORMS):
        raise ParameterError(
            f"parametrization must be 'auto', 'noncentered', 'centered' or a per-level specification like "
            f"'indicator:centered,group:centered,municipality:noncentered'; got {parametrization!r}")
    return forms


def within_group_projection(group_of: np.ndarray, n_groups: int) -> np.ndarray:
    """Matrix that removes each group's mean: ``(P @ v)`` sums to zero within every group.

    ``P = I - G`` with ``G[m, m'] = 1 / n_g`` when ``m`` and ``m'`` are in the same group ``g``.
    ``P`` is symmetric and idempotent; ``P @ z`` for ``z ~ N(0, s^2 I)`` is a zero-sum normal with
    scale ``s`` in every group.
    """
    group_of = np.asarray(group_of, dtype=np.int64)
    sizes = np.bincount(group_of, minlength=n_groups).astype(float)
    same = group_of[:, None] == group_of[None, :]
    return np.eye(len(group_of)) - same / sizes[group_of][:, None]


def zero_sum_within_groups(w: pt.TensorVariable, group_of: np.ndarray, n_groups: int) -> pt.TensorVariable:
    """Map ``n - n_groups`` free values isometrically onto vectors that sum to zero in every group.

    Within each group of size ``k`` the ``k - 1`` free values are extended by the Householder
    reflection that PyMC's ``ZeroSumNormal`` uses: with ``s`` their sum, ``c = s / (sqrt(k) + k)``,
    the group's other members receive ``w - c`` and the last one ``-s / sqrt(k)``. The map's columns
    are orthonormal and span the within-group zero-sum subspace (``M @ M.T`` is
    :func:`within_group_projection`), so ``w ~ N(0, s^2 I)`` gives exactly the zero-sum normal of
    projecting ``n`` independent draws, without the ``n_groups`` directions (the groups' means of
    such draws) that the likelihood never sees and that a sampler would have to explore on the
    prior's scale. Segment sums and gathers only: linear in ``n``, no matrix.

    Parameters
    ----------
    w
        Free values, one per member except the last of each group (in member order).
    group_of
        Group index of each of the ``n`` members.
    n_groups
        Number of groups (each must have at least one member).
    """
    group_of = np.asarray(group_of, dtype=np.int64)
    n = len(group_of)
    sizes = np.bincount(group_of, minlength=n_groups).astype(float)
    if len(sizes) != n_groups or not (sizes > 0).all():
        raise ParameterError(f"every one of the {n_groups} groups needs a member and no member another group; "
                             f"got group sizes {sizes.astype(int).tolist()}")
    last = np.full(n_groups, -1, dtype=np.int64)
    last[group_of] = np.arange(n)  # the last member of every group (later indices overwrite)
    free = np.setdiff1d(np.arange(n), last)
    sums = pt.inc_subtensor(pt.zeros(n_groups)[group_of[free]], w)
    root = np.sqrt(sizes)
    c = sums / (root + sizes)
    out = pt.zeros(n)
    out = pt.set_subtensor(out[free], w)
    out = pt.set_subtensor(out[last], c - sums / root)
    return out - c[group_of]


def n_within_group_contrasts(group_of: np.ndarray, n_groups: int) -> int:
    """Number of free values :func:`zero_sum_within_groups` takes (members minus groups)."""
    return len(group_of) - int((np.bincount(np.asarray(group_of, dtype=np.int64), minlength=n_groups) > 0).sum())


def _structure_key(data: ModelData) -> tuple:
    return (data.likelihood, data.grid_shape, int(data.n_obs), bool(data.is_complete_grid),
            int(data.n_categories), data.municipality_group.tobytes(), len(data.groups))


def model_data_values(data: ModelData, x_offset: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Values of a model's data containers for ``data`` (see :func:`set_model_data`)."""
    xbar = exposure_offset(data) if x_offset is None else np.asarray(x_offset, dtype=float)
    vals = {"x_grid": data.x_grid() - xbar[None, :, None], "x_offset": xbar,
            "y_obs": data.y if data.likelihood == "normal" else data.y.astype(np.int64)}
    if not data.is_complete_grid:
        vals["cell_idx"] = data.cell_idx
    if data.likelihood == "binomial":
        vals["n"] = data.n_trials
    return vals


def set_model_data(model: pm.Model, data: ModelData, x_offset: np.ndarray | None = None) -> None:
    """Put ``data`` (outcome, exposure, trials, cells) into a model built for the same structure.

    A compiled model can then be sampled on new data without compiling again (simulation-based
    calibration, recovery over seeds, folds of the same shape).

    Raises
    ------
    ParameterError
        If the model was not built by :func:`build_model` for data of this structure (likelihood,
        grid, number of observations, nesting).
    """
    if _STRUCTURE.get(model) != _structure_key(data):
        raise ParameterError(
            "the model was built for data of another structure (likelihood, grid, observations or "
            "nesting differ); build a model for these data with build_model()"
        )
    pm.set_data(model_data_values(data, x_offset), model=model)


def build_model(
    data: ModelData,
    priors: Priors | None = None,
    *,
    municipality_effects: bool = True,
    year_effects: bool = True,
    parametrization: str = "auto",
    x_offset: np.ndarray | None = None,
) -> pm.Model:
    """Build the hierarchical model for ``data`` (likelihood taken from ``data.likelihood``).

    Parameters
    ----------
    data
        Output of :func:`ojpanel.models.bayes.data.prepare_data`.
    priors
        Prior scales; default :meth:`Priors.default` for the likelihood.
    municipality_effects
        Include the nested group/municipality effects (switch off for pooled checks).
    year_effects
        Include year effects.
    parametrization
        Of the group, municipality and indicator-effect levels: ``"noncentered"`` (robust when
        units carry little information), ``"centered"`` (better when every unit has many
        observations), ``"auto"`` (per level, :func:`choose_parametrization`) or a per-level
        specification ``"indicator:...,group:...,municipality:..."``.
    x_offset
        Per-indicator value subtracted from the exposure inside the model (default
        :func:`exposure_offset` of ``data``); pass the fitted model's offsets when building it on
        new observations so that the parameters keep their meaning.

    Returns
    -------
    pymc.Model
        With the data in containers (``pm.Data``): the centred exposure on the grid ``x_grid``,
        its per-indicator offsets ``x_offset``, the outcome ``y_obs``, and ``cell_idx`` and (for
        binomial) ``n`` where needed; the observed variable is ``y`` (dim ``obs``). Swap data of
        the same structure in with :func:`set_model_data`.
    """
    p = priors or Priors.default(data.likelihood)
    forms = _level_forms(parametrization, data)
    coords: dict[str, Any] = data.coords()
    n_mun, n_ind, n_year = data.grid_shape
    n_grp = len(data.groups)
    lik = data.likelihood
    if lik == "ordinal":
        coords["cut"] = [f"{k}|{k + 1}" for k in range(data.n_categories - 1)]
    # No parameter checks in the log density: every parameter is valid by construction (scales
    # through log transforms, probabilities through the logit), and on the benchmark's Bernoulli
    # panel the check of 0 <= p <= 1 for each observation cost 15 % of a gradient evaluation
    with pm.Model(coords=coords, check_bounds=False) as model:
        # The linear predictor is built on the municipality x indicator x year grid by
        # broadcasting: the gradient then needs no scatter-adds over observations, which is
        # what dominates the cost of large panels. Observed cells are gathered once (not at all
        # for a complete grid).
        # exposure centred per indicator inside the model: intercepts and slopes are then nearly
        # uncorrelated a posteriori; ``alpha`` is reported at x = 0 as usual
        vals = model_data_values(data, x_offset)
        x = pm.Data("x_grid", vals["x_grid"], dims=("municipality", "indicator", "year"))
        xbar = pm.Data("x_offset", vals["x_offset"], dims="indicator")
        mu_beta = pm.Normal("mu_beta", 0.0, p.mu_beta_sd)
        if n_ind > 1:
            tau_beta = pm.HalfNormal("tau_beta", p.tau_beta_sd)
            if forms["indicator"] == "noncentered":
                z_beta = pm.Normal("z_beta", 0.0, 1.0, dims="indicator")
                beta = pm.Deterministic("beta", mu_beta + tau_beta * z_beta, dims="indicator")
            else:
                beta = pm.Normal("beta", mu_beta, tau_beta, dims="indicator")
        else:  # one indicator: no spread to estimate
            beta = pm.Deterministic("beta", pt.stack([mu_beta]), dims="indicator")
        eta = beta[None, :, None] * x

        # Year effects (first year = reference) enter the predictor as deviations from their mean
        # and the intercepts (or cutpoints) are sampled at the average year: the same prior and
        # likelihood in coordinates without the ridge between every intercept and every year
        # effect (with the first year as reference, each year effect trades off against all
        # intercepts). The intercept at the average year has the prior N(mean year effect,
        # alpha_sd), so that the first-year intercept keeps its N(0, alpha_sd) prior exactly.
        if year_effects and n_year > 1:
            g_raw = pm.Normal("year_effect", 0.0, p.year_sd, dims="effect_year")
            gamma = pt.concatenate([pt.zeros(1), g_raw])
        else:
            gamma = pt.zeros(n_year)
        gamma_mean = gamma.mean()
        eta = eta + (gamma - gamma_mean)[None, None, :]
        if lik != "ordinal":
            alpha_a = pm.Normal("alpha_average_year", gamma_mean, p.alpha_sd, dims="indicator")
            alpha_c = pm.Deterministic("alpha_centered", alpha_a - gamma_mean, dims="indicator")
            pm.Deterministic("alpha", alpha_c - beta * xbar, dims="indicator")
            eta = eta + alpha_a[None, :, None]
        if municipality_effects:
            sigma_m = pm.HalfNormal("sigma_municipality", p.sigma_municipality_sd)
            grp = None
            if n_grp > 1:
                sigma_g = pm.HalfNormal("sigma_group", p.sigma_group_sd)
                # zero-sum: the common level belongs to the intercepts, not to the groups
                if forms["group"] == "noncentered":
                    z_g = pm.ZeroSumNormal("z_group", 1.0, dims="group")
                    grp = pm.Deterministic("group_effect", sigma_g * z_g, dims="group")
                else:
                    grp = pm.ZeroSumNormal("group_effect", sigma_g, dims="group")
            # deviations that sum to zero within every group (one group: over all municipalities),
            # sampled as the group's contrasts (no direction that the likelihood does not see)
            model.add_coord("municipality_contrast", np.arange(n_within_group_contrasts(data.municipality_group, n_grp)))
            if forms["municipality"] == "noncentered":
                z_m = pm.Normal("z_municipality", 0.0, 1.0, dims="municipality_contrast")
                dev = sigma_m * zero_sum_within_groups(z_m, data.municipality_group, n_grp)
            else:
                raw = pm.Normal("municipality_raw", 0.0, sigma_m, dims="municipality_contrast")
                dev = zero_sum_within_groups(raw, data.municipality_group, n_grp)
            u = dev if grp is None else grp[data.municipality_group] + dev
            u = pm.Deterministic("municipality_effect", u, dims="municipality")
            eta = eta + u[:, None, None]
        cell = None if data.is_complete_grid else pm.Data("cell_idx", vals["cell_idx"], dims="obs")

        def to_obs(grid: pt.TensorVariable, tail: tuple = ()) -> pt.TensorVariable:
            flat = pt.broadcast_to(grid, (n_mun, n_ind, n_year, *tail)).reshape((-1, *tail))
            return flat if cell is None else flat[cell]

        eta = to_obs(eta)

        if lik == "normal":
            sigma_y = pm.HalfNormal("sigma_y", p.sigma_y_sd, dims="indicator")
            y_obs = pm.Data("y_obs", vals["y_obs"], dims="obs")
            pm.Normal("y", mu=eta, sigma=to_obs(sigma_y[None, :, None]), observed=y_obs, dims="obs")
        elif lik == "bernoulli":
            y_obs = pm.Data("y_obs", vals["y_obs"], dims="obs")
            pm.CustomDist("y", eta, dist=_logit_bernoulli_dist, logp=logit_bernoulli_logp, observed=y_obs,
                          dims="obs")
        elif lik == "binomial":
            n = pm.Data("n", vals["n"], dims="obs")
            y_obs = pm.Data("y_obs", vals["y_obs"], dims="obs")
            pm.CustomDist("y", eta, n, dist=_logit_binomial_dist, logp=logit_binomial_logp, observed=y_obs,
                          dims="obs")
        elif lik == "ordinal":
            k = data.n_categories - 1
            init = np.tile(np.linspace(-1.0, 1.0, k) if k > 1 else np.zeros(1), (n_ind, 1))
            # sampled at the average year (see the intercepts above): the first-year cutpoints
            # keep their N(0, cutpoint_sd) prior
            cut = pm.Normal(
                "cutpoints_average_year",
                -gamma_mean,
                p.cutpoint_sd,
                dims=("indicator", "cut"),
                transform=pm.distributions.transforms.ordered,
                initval=init,
            )
            cut_c = pm.Deterministic("cutpoints_centered", cut + gamma_mean, dims=("indicator", "cut"))
            # cutpoints at x = 0 (the sampled ones are at the indicator's mean exposure)
            pm.Deterministic("cutpoints", cut_c + (beta * xbar)[:, None], dims=("indicator", "cut"))
            y_obs = pm.Data("y_obs", vals["y_obs"], dims="obs")
            pm.CustomDist(
                "y",
                eta,
                to_obs(cut[None, :, None, :], (k,)),
                dist=_cumulative_logit_dist,
                logp=cumulative_logit_logp,
                signature="(),(k)->()",
                observed=y_obs,
                dims="obs",
                dtype="int64",
            )
        else:  # pragma: no cover - prepare_data validates
            raise ParameterError(f"unknown likelihood {lik!r}")
    _STRUCTURE[model] = _structure_key(data)
    return model
