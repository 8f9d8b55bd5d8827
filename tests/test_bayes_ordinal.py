"""The cumulative-logit likelihood: closed form, PyMC's OrderedLogistic, statsmodels' OrderedModel."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from scipy.special import expit
from statsmodels.miscmodels.ordinal_model import OrderedModel

from ojpanel.models.bayes import (
    Priors,
    build_model,
    ordinal_probabilities,
    prepare_data,
    simulate_panel,
)
from ojpanel.models.bayes.models import _cumulative_logit_dist, cumulative_logit_logp


def test_closed_form_probabilities():
    eta = np.array([-2.0, 0.0, 0.7, 3.0])
    cut = np.array([-0.5, 1.2])
    p = ordinal_probabilities(eta, cut)
    np.testing.assert_allclose(p.sum(1), 1.0)
    np.testing.assert_allclose(p[:, 0], expit(cut[0] - eta))
    np.testing.assert_allclose(p[:, 1], expit(cut[1] - eta) - expit(cut[0] - eta))
    np.testing.assert_allclose(p[:, 2], 1 - expit(cut[1] - eta))


@pytest.mark.parametrize("ncat", [2, 3, 5])
def test_model_likelihood_equals_closed_form_and_pymc(ncat):
    rng = np.random.default_rng(ncat)
    n = 40
    eta = rng.normal(0, 2, n)
    cuts = np.sort(rng.normal(0, 1.5, (n, ncat - 1)), axis=1)
    for k in range(ncat):
        y = np.full(n, k)
        ours = cumulative_logit_logp(pt.as_tensor(y), pt.as_tensor(eta), pt.as_tensor(cuts)).eval()
        closed = np.log(np.array([ordinal_probabilities(eta[j:j + 1], cuts[j])[0, k] for j in range(n)]))
        np.testing.assert_allclose(ours, closed, rtol=1e-10, atol=1e-12)
        ref = pm.logp(pm.OrderedLogistic.dist(eta=eta, cutpoints=cuts), y).eval()
        np.testing.assert_allclose(ours, ref, rtol=1e-8, atol=1e-10)
    # extreme predictors stay finite (stable evaluation)
    far = cumulative_logit_logp(pt.as_tensor(np.array([0, ncat - 1])), pt.as_tensor(np.array([60.0, -60.0])),
                                pt.as_tensor(np.zeros((2, ncat - 1)) + np.arange(ncat - 1))).eval()
    assert np.all(np.isfinite(far))


def test_gradient_finite_for_all_categories():
    y = pt.as_tensor(np.array([0, 1, 2]))
    e = pt.dvector("e")
    c = pt.as_tensor(np.array([[-1.0, 1.0]] * 3))
    g = pt.grad(cumulative_logit_logp(y, e, c).sum(), e).eval({e: np.array([0.3, -0.2, 0.1])})
    assert np.all(np.isfinite(g))


def test_log_probability_stays_accurate_in_the_tails():
    """Against scipy's log-sigmoids, with linear predictors far beyond the cutpoints (where the
    difference of two sigmoids underflows) and every category; gradients stay finite."""
    from scipy.special import log_expit

    rng = np.random.default_rng(0)
    n, k = 3000, 4
    cuts = np.sort(rng.normal(0, 2, (n, k - 1)), axis=1)
    eta = rng.normal(0, 3, n) * np.where(rng.random(n) < 0.1, 60.0, 1.0)
    y = rng.integers(0, k, n)
    u = np.concatenate([cuts, np.full((n, 1), np.inf)], axis=1)[np.arange(n), y] - eta
    lo = np.concatenate([np.full((n, 1), -np.inf), cuts], axis=1)[np.arange(n), y] - eta


    def log_diff(a, b):  # log(F(a) - F(b)) for a > b, accurate while F(a) and F(b) are small
        return log_expit(a) + np.log1p(-np.exp(log_expit(b) - log_expit(a)))

    with np.errstate(divide="ignore", invalid="ignore"):
        # F(u) - F(l) = F(-l) - F(-u): use the side where both sigmoids are small
        middle = np.where(u + lo < 0, log_diff(u, lo), log_diff(-lo, -u))
    ref = np.where(y == 0, log_expit(u), np.where(y == k - 1, log_expit(-lo), middle))
    e = pt.dvector("e")
    logp = cumulative_logit_logp(pt.as_tensor(y), e, pt.as_tensor(cuts))
    got, grad = (v.eval({e: eta}) for v in (logp, pt.grad(logp.sum(), e)))
    assert np.all(np.isfinite(got)) and np.all(np.isfinite(grad)) and np.all(got <= 0)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


def test_random_draws_follow_closed_form():
    """Draws of the model's outcome (used by predictive checks) have the closed-form frequencies."""
    eta = np.array([-1.0, 0.0, 1.5])
    cuts = np.array([[-0.5, 0.8]] * 3)
    y = pm.draw(pm.CustomDist.dist(eta, cuts, dist=_cumulative_logit_dist, logp=cumulative_logit_logp,
                                   signature="(),(k)->()"), draws=40000, random_seed=1)
    freq = np.stack([np.bincount(y[:, j], minlength=3) / len(y) for j in range(3)])
    np.testing.assert_allclose(freq, ordinal_probabilities(eta, cuts), atol=0.01)


def test_map_with_weak_priors_matches_ordered_model_mle():
    ds = simulate_panel("ordinal", n_groups=4, municipalities_per_group=25, n_indicators=1, n_years=3,
                        exposure="continuous", exposure_level="cell", sigma_group=0.0, sigma_municipality=0.0, seed=3)
    d = prepare_data(ds, "exposure", likelihood="ordinal", grouping=None, standardize_exposure=False)
    m = build_model(d, Priors.weak(100.0), municipality_effects=False)
    mp = pm.find_MAP(model=m, progressbar=False, return_raw=False, jitter=False, return_inferencedata=True)["posterior"].isel(chain=0, draw=0)
    fr = d.frame
    exog = np.column_stack([fr["x"], fr["year_code"] == 1, fr["year_code"] == 2]).astype(float)
    res = OrderedModel(d.y, exog, distr="logit").fit(method="bfgs", disp=False, maxiter=2000)
    thr = res.model.transform_threshold_params(res.params)[1:-1]
    # statsmodels' P(y <= k) = F(thr_k - x'b): same sign convention as ours
    assert float(mp["beta"][0]) == pytest.approx(res.params[0], abs=5e-3)
    np.testing.assert_allclose(mp["year_effect"], res.params[1:3], atol=5e-3)
    np.testing.assert_allclose(mp["cutpoints"][0], thr, atol=5e-3)
