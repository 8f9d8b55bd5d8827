"""Fast tests of ojpanel.models.bayes: data preparation, likelihood graphs, gates, FE comparison.

Sampling is mocked here (prior draws stand in for posterior draws, the idea of bambi's
``tests/conftest.py``); real seeded fits are in ``test_bayes_fit.py``.
"""

from __future__ import annotations

import importlib
import json

import arviz_base as azb
import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import statsmodels.formula.api as smf
import xarray as xr
from scipy import stats
from scipy.special import expit, logsumexp

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.core.style import figure_problems
from ojpanel.core.synthetic import is_synthetic
from ojpanel.errors import DataError, DiagnosticsError, ParameterError
from ojpanel.models.bayes import (
    ConvergenceWarning,
    Priors,
    build_model,
    compare_fe,
    compare_models,
    diagnose,
    enforce_gates,
    fe_estimates,
    fit_binary,
    fit_continuous,
    gated_variables,
    leave_group_out_cv,
    loo,
    passed,
    plot_ppc,
    posterior_predictive,
    prepare_data,
    prior_predictive,
    set_model_data,
    simulate_panel,
    truth,
)
from ojpanel.models.bayes.models import (
    logit_bernoulli_logp,
    logit_binomial_logp,
    n_within_group_contrasts,
    softplus_shared_exp,
    within_group_projection,
    zero_sum_within_groups,
)
from ojpanel.panel.validate import validate
from ojpanel.peers import lagged, loo_group_mean

SMALL = dict(n_groups=3, municipalities_per_group=4, n_indicators=3, n_years=3)

# the module (the package attribute ``fit`` is the function of the same name)
fit_mod = importlib.import_module("ojpanel.models.bayes.fit")


def _mock_sample_model(model, *, sampler="nutpie", draws=1500, tune=0, chains=2, cores=None, seed=0,
                       target_accept=0.8, progress=False, adaptation="diag"):
    """Prior draws reshaped to (chain, draw): iid, so they pass the gates when numerous."""
    with model:
        pr = pm.sample_prior_predictive(draws=chains * draws, random_seed=seed).prior
    post = xr.Dataset(
        {
            v: xr.DataArray(
                pr[v].values.reshape(chains, draws, *pr[v].shape[2:]),
                dims=("chain", "draw", *pr[v].dims[2:]),
                coords={d: pr[v][d] for d in pr[v].dims[2:]},
            )
            for v in pr.data_vars
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )
    stats_ = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), dtype=bool))},
                        coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats_}), "mock"


@pytest.fixture
def mock_sampling(monkeypatch):
    monkeypatch.setattr(fit_mod, "sample_model", _mock_sample_model)


# --------------------------------------------------------------------------------- simulate / data
def test_simulated_panel_is_labelled_synthetic_and_follows_contract():
    ds = simulate_panel("binomial", **SMALL, seed=4)
    assert is_synthetic(ds) and ds.attrs["description"].startswith("SYNTHETIC")
    validate(ds)
    assert set(ds["source"].values) == {"synthetic"}
    assert ds["value"].dims == ("municipality", "indicator", "year")
    for c in ("municipality_name", "county", "county_name", "kommungrupp_2017", "title", "area", "kind", "scale", "direction"):
        assert c in ds.coords
    tr = truth(ds)
    assert tr["mu_beta"] == 0.4 and len(tr["beta"]) == 3
    assert np.all((ds["value"] >= 0) & (ds["value"] <= 100))
    # identical seeds, identical panels
    xr.testing.assert_identical(ds.drop_attrs(), simulate_panel("binomial", **SMALL, seed=4).drop_attrs())
    with pytest.raises(ParameterError):
        truth(ds.drop_attrs())


def test_prepare_data_codes_and_standardises():
    ds = simulate_panel("normal", **SMALL, exposure="continuous", seed=1)
    ds["value"][0, 0, 0] = np.nan
    d = prepare_data(ds, "exposure", likelihood="normal")
    assert d.n_obs == 12 * 3 * 3 - 1 and d.n_missing == 1 and d.spec["n_missing"] == 1
    assert not d.is_complete_grid
    # outcome standardised per indicator, exposure too (continuous)
    for i in range(3):
        yi = d.y[d.indicator_idx == i]
        assert abs(yi.mean()) < 1e-12 and abs(yi.std(ddof=1) - 1) < 1e-12
    raw = ds["value"].values[d.municipality_idx, d.indicator_idx, d.year_idx]
    np.testing.assert_allclose(d.y * d.y_scale[d.indicator_idx] + d.y_center[d.indicator_idx], raw)
    assert d.spec["exposure_standardized"] is True
    assert list(d.groups) == sorted(set(ds["county"].values))
    np.testing.assert_array_equal(d.frame["group"].to_numpy(), ds["county"].values[d.municipality_idx])
    # grid index round trip
    g = d.x_grid().ravel()
    np.testing.assert_allclose(g[d.cell_idx], d.x)


def test_prepare_data_binary_exposure_kept_and_binomial_counts():
    ds = simulate_panel("binomial", **SMALL, seed=2)
    d = prepare_data(ds, "exposure", likelihood="binomial")
    assert d.is_complete_grid and d.spec["exposure_standardized"] is False
    np.testing.assert_array_equal(d.n_trials, 60)
    np.testing.assert_array_equal(d.y, np.round(ds["value"].values.ravel() / 100 * 60))


def test_binomial_scale_is_declared_not_guessed():
    ds = simulate_panel("binomial", **SMALL, seed=2)
    # small percentages (all <= 1) stay percentages when declared 'share'
    small = ds.assign(value=ds["value"] / 100.0)
    d = prepare_data(small, "exposure", likelihood="binomial")
    np.testing.assert_array_equal(d.y, np.round(small["value"].values.ravel() / 100 * 60))
    # the same numbers declared as proportions are fractions of the units
    prop = small.assign_coords(scale=("indicator", ["proportion"] * 3))
    d2 = prepare_data(prop, "exposure", likelihood="binomial")
    np.testing.assert_array_equal(d2.y, np.round(small["value"].values.ravel() * 60))
    # mixed declarations per indicator
    mixed = ds.copy(deep=True).assign_coords(scale=("indicator", ["share", "proportion", "share"]))
    mixed["value"][:, 1, :] = mixed["value"][:, 1, :] / 100.0
    np.testing.assert_array_equal(prepare_data(mixed, "exposure", likelihood="binomial").y,
                                  prepare_data(ds, "exposure", likelihood="binomial").y)
    with pytest.raises(DataError, match="declare 'share'"):
        prepare_data(ds.assign_coords(scale=("indicator", ["share", "mean", "share"])), "exposure", likelihood="binomial")
    with pytest.raises(DataError, match="add the indicator coordinate 'scale'"):
        prepare_data(ds.drop_vars("scale"), "exposure", likelihood="binomial")
    with pytest.raises(DataError, match="outside their declared scale"):
        prepare_data(ds.assign_coords(scale=("indicator", ["proportion"] * 3)), "exposure", likelihood="binomial")


def test_model_data_swap_checks_structure():
    ds = simulate_panel("bernoulli", **SMALL, seed=3)
    d = prepare_data(ds, "exposure", likelihood="bernoulli")
    m = build_model(d)
    other = prepare_data(simulate_panel("bernoulli", **SMALL, seed=4), "exposure", likelihood="bernoulli")
    set_model_data(m, other)
    np.testing.assert_array_equal(m["y_obs"].get_value(), other.y)
    with pytest.raises(ParameterError, match="another structure"):
        set_model_data(m, d.subset(np.arange(d.n_obs) > 0))
    with pytest.raises(ParameterError, match="another structure"):
        set_model_data(build_model(d), prepare_data(simulate_panel("bernoulli", **SMALL, seed=3), "exposure",
                                                     likelihood="bernoulli", years=[2018, 2019]))


def test_exposure_as_coordinate_dataarray_and_callable():
    ds = simulate_panel("bernoulli", **SMALL, seed=3)
    flag = xr.DataArray(np.arange(12) % 2 == 0, dims="municipality", coords={"municipality": ds["municipality"]})
    ds = ds.assign_coords(oj_user=flag)
    d1 = prepare_data(ds, "oj_user", likelihood="bernoulli")
    d2 = prepare_data(ds, flag.astype(float), likelihood="bernoulli")
    np.testing.assert_array_equal(d1.x, d2.x)
    np.testing.assert_array_equal(d1.x, (d1.municipality_idx % 2 == 0).astype(float))

    # lagged leave-one-out county mean of the exposure: years without a lag are dropped and counted
    def peer(p):
        return lagged(loo_group_mean(p["exposure"], "county"), 1)

    d3 = prepare_data(ds, peer, likelihood="bernoulli")
    assert d3.n_missing == 12 * 3  # first year has no lag
    assert set(d3.frame["year"]) == {2019, 2020}
    assert d3.spec["exposure_standardized"] is True  # a mean of 0/1 flags is not binary
    # the lag reaches back before the analysed years when years are selected
    d4 = prepare_data(ds, peer, likelihood="bernoulli", years=[2019, 2020])
    assert d4.n_missing == 0 and d4.n_obs == d3.n_obs


def test_prepare_data_errors():
    ds = simulate_panel("normal", **SMALL, seed=1)
    with pytest.raises(DataError, match="0/1"):
        prepare_data(ds, "exposure", likelihood="bernoulli")
    with pytest.raises(DataError, match="binomial likelihood needs"):
        prepare_data(ds, "exposure", likelihood="binomial")
    with pytest.raises(ParameterError, match="neither a data variable"):
        prepare_data(ds, "nope", likelihood="normal")
    with pytest.raises(ParameterError, match="indicators not in"):
        prepare_data(ds, "exposure", likelihood="normal", indicators=["XYZ"])
    with pytest.raises(ParameterError, match="grouping"):
        prepare_data(ds, "exposure", likelihood="normal", grouping="region")
    with pytest.raises(DataError, match="does not vary"):
        prepare_data(ds, xr.zeros_like(ds["value"]), likelihood="normal")
    ds2 = ds.copy()
    ds2["value"][:] = np.nan
    with pytest.raises(DataError, match="no cell"):
        prepare_data(ds2, "exposure", likelihood="normal")


def test_data_hash_tracks_content():
    ds = simulate_panel("bernoulli", **SMALL, seed=5)
    h1 = prepare_data(ds, "exposure", likelihood="bernoulli").data_hash
    assert h1 == prepare_data(ds, "exposure", likelihood="bernoulli").data_hash
    ds2 = ds.copy(deep=True)
    ds2["value"][0, 0, 0] = 1 - ds2["value"][0, 0, 0]
    assert prepare_data(ds2, "exposure", likelihood="bernoulli").data_hash != h1


# --------------------------------------------------------------------------------- likelihood graphs
#: One evaluation of a small graph: PyTensor's Python implementations, no C or numba compilation.
FAST_COMPILE = {"mode": "FAST_COMPILE"}


def _point_values(model, seed):
    """A random point (prior draw) with free values and the model's deterministics."""
    with model:
        pr = pm.sample_prior_predictive(draws=1, random_seed=seed,
                                        compile_kwargs=FAST_COMPILE).prior.isel(chain=0, draw=0)
    return pr


@pytest.mark.parametrize("lik", ["normal", "binomial", "bernoulli"])
@pytest.mark.parametrize("par", ["noncentered", "centered"])
def test_model_loglik_matches_scipy(lik, par):
    """The grid/broadcast predictor and the likelihood equal a plain scipy computation."""
    ds = simulate_panel(lik, **SMALL, seed=6)
    ds["value"][1, 2, 0] = np.nan  # incomplete grid: exercises the gather
    d = prepare_data(ds, "exposure", likelihood=lik)
    m = build_model(d, parametrization=par)
    pr = _point_values(m, seed=7)
    # free values in the transformed space that the compiled logp takes
    ip = m.initial_point()
    point = {}
    for rv in m.free_RVs:
        val = pr[rv.name].values
        vv = m.rvs_to_values[rv]
        tr = m.rvs_to_transforms.get(rv)
        point[vv.name] = tr.forward(pt.as_tensor(val), *rv.owner.inputs).eval() if tr is not None else val
    assert set(point) == set(ip)
    ll = m.compile_fn(m.logp(vars=[m["y"]], sum=True), inputs=m.value_vars, on_unused_input="ignore",
                      **FAST_COMPILE)(point)
    alpha, beta, u = pr["alpha"].values, pr["beta"].values, pr["municipality_effect"].values
    gamma = np.concatenate([[0.0], pr["year_effect"].values])
    eta = alpha[d.indicator_idx] + u[d.municipality_idx] + gamma[d.year_idx] + beta[d.indicator_idx] * d.x
    if lik == "normal":
        ref = stats.norm.logpdf(d.y, eta, pr["sigma_y"].values[d.indicator_idx]).sum()
    elif lik == "binomial":
        ref = stats.binom.logpmf(d.y, d.n_trials, expit(eta)).sum()
    else:
        ref = stats.bernoulli.logpmf(d.y, expit(eta)).sum()
    np.testing.assert_allclose(ll, ref, rtol=1e-10)
    # the nesting: municipality effects are group effect + deviation, and the deviations sum to
    # zero within every county (the county means are the group effects, which sum to zero)
    g = pr["group_effect"].values
    dev = u - g[d.municipality_group]
    np.testing.assert_allclose(np.bincount(d.municipality_group, weights=dev), 0.0, atol=1e-10)
    assert abs(g.sum()) < 1e-10
    raw = pr["z_municipality"].values * pr["sigma_municipality"].values if par == "noncentered" else pr["municipality_raw"].values
    M = _contrast_matrix(d.municipality_group, len(d.groups))
    np.testing.assert_allclose(dev, M @ raw, rtol=1e-10, atol=1e-12)


def test_softplus_with_shared_exponential_matches_scipy():
    """The logit likelihoods' softplus and its gradient equal log(1 + e^x) and the sigmoid, also at
    0 (where the two branches meet), far in the tails and for NaN."""
    x = pt.dvector("x")
    sp = softplus_shared_exp(x)
    f = pytensor.function([x], [sp, pytensor.grad(sp.sum(), x)], **FAST_COMPILE)
    v = np.array([0.0, -1e-300, 1e-300, -800.0, 800.0, -35.0, 35.0, 0.5, -0.5, 3.0])
    val, grad = f(v)
    np.testing.assert_allclose(val, np.logaddexp(0.0, v), rtol=1e-14, atol=0)
    np.testing.assert_allclose(grad, expit(v), rtol=1e-14, atol=0)
    assert np.isnan(f(np.array([np.nan]))[0]).all()  # a NaN predictor is not hidden
    y, eta = np.array([0, 1, 3, 7]), np.array([-2.0, 0.0, 1.5, 40.0])
    n = np.array([1, 1, 9, 7])
    np.testing.assert_allclose(logit_bernoulli_logp(y[:2], eta[:2]).eval(), stats.bernoulli.logpmf(y[:2], expit(eta[:2])),
                               rtol=1e-13)
    np.testing.assert_allclose(logit_binomial_logp(y, eta, n).eval(), stats.binom.logpmf(y, n, expit(eta)), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("lik", ["bernoulli", "ordinal"])
def test_year_effects_sampled_at_the_average_year_keep_the_priors(lik):
    """The intercepts (cutpoints) are sampled at the average year, but the first-year intercept and
    the year effects keep their independent normal priors: the same model in better coordinates."""
    ds = simulate_panel(lik, **SMALL, seed=2)
    d = prepare_data(ds, "exposure", likelihood=lik)
    pri = Priors(alpha_sd=1.5, year_sd=0.7, cutpoint_sd=2.0)
    m = build_model(d, pri)
    level = m["alpha_centered"] if lik != "ordinal" else m["cutpoints_centered"][:, 0]
    lv, ye = pm.draw([level, m["year_effect"]], draws=20000, random_seed=5)
    sd = pri.alpha_sd if lik != "ordinal" else pri.cutpoint_sd
    se = 1.0 / np.sqrt(2 * 20000)  # standard error of a sample s.d. relative to the s.d.
    np.testing.assert_allclose(lv.std(axis=0), sd, rtol=5 * se)
    np.testing.assert_allclose(ye.std(axis=0), pri.year_sd, rtol=5 * se)
    corr = np.corrcoef(np.column_stack([lv, ye]).T)[: lv.shape[1], lv.shape[1]:]
    assert np.abs(corr).max() < 5 / np.sqrt(20000)
    free = {rv.name for rv in m.free_RVs}
    assert ("alpha_average_year" in free) == (lik != "ordinal") and "year_effect" in free


def test_parametrization_auto_and_errors():
    small = prepare_data(simulate_panel("bernoulli", **SMALL, seed=1), "exposure", likelihood="bernoulli")
    assert "z_municipality" in build_model(small).named_vars  # 9 obs per municipality: non-centred
    big = prepare_data(simulate_panel("bernoulli", n_groups=2, municipalities_per_group=2, n_indicators=12, n_years=4,
                                      seed=1), "exposure", likelihood="bernoulli")
    centred = build_model(big)  # 48 obs per municipality: centred
    assert "z_municipality" not in centred.named_vars and "municipality_raw" in centred.named_vars
    with pytest.raises(ParameterError):
        build_model(small, parametrization="sideways")
    with pytest.raises(ParameterError):
        Priors(alpha_sd=-1.0)


# --------------------------------------------------------------------------------- diagnostics
def _fake_idata(shift: float = 0.0, chains: int = 2, draws: int = 500, ndiv: int = 0, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((chains, draws))
    a[0] += shift
    b = rng.standard_normal((chains, draws, 3))
    div = np.zeros((chains, draws), dtype=bool)
    div.ravel()[:ndiv] = True
    return azb.from_dict({"posterior": {"a": a, "b": b}, "sample_stats": {"diverging": div}})


def test_gates_pass_on_iid_draws_and_match_arviz():
    idata = _fake_idata()
    rep = enforce_gates(idata, on_fail="raise")
    assert rep.passed and passed(idata) is True
    assert idata.attrs["diagnostics_passed"] == 1 and json.loads(idata.attrs["diagnostics_failures"]) == []
    summ = azs.summary(idata, kind="diagnostics", round_to="none")
    np.testing.assert_allclose(rep.max_rhat, summ["r_hat"].max(), rtol=1e-12)
    np.testing.assert_allclose(rep.min_ess_bulk, summ["ess_bulk"].min(), rtol=1e-12)
    np.testing.assert_allclose(rep.min_ess_tail, summ["ess_tail"].min(), rtol=1e-12)
    assert "PASSED" in rep.summary and "PASSED" in rep._repr_html_()
    assert len(rep.to_frame()) == 4


def test_gates_flag_nonconvergence_and_divergences():
    with pytest.raises(DiagnosticsError, match="R-hat"):
        enforce_gates(_fake_idata(shift=1.0), on_fail="raise")
    with pytest.warns(ConvergenceWarning, match="FAILED"):
        rep = enforce_gates(_fake_idata(ndiv=3), on_fail="warn")
    assert rep.n_divergences == 3 and not rep.passed
    idata = _fake_idata(draws=50)
    rep = enforce_gates(idata, on_fail="flag")
    assert not rep.passed and passed(idata) is False
    assert any("bulk ESS" in f for f in rep.failures)
    assert idata.posterior.attrs["diagnostics_passed"] == 0
    with pytest.raises(ParameterError):
        enforce_gates(_fake_idata(), on_fail="ignore")
    rep1 = diagnose(_fake_idata(chains=1, draws=1000))
    assert not rep1.passed and "2 chains" in rep1.failures[0]


# --------------------------------------------------------------------------------- mocked fits
def test_fit_with_mocked_sampling_records_provenance(mock_sampling):
    ds = simulate_panel("bernoulli", **SMALL, seed=8)
    idata = fit_binary(ds, "exposure", draws=1500, chains=2, seed=11, diagnostics="raise")
    for g in ("posterior", "sample_stats", "observed_data", "constant_data", "log_likelihood"):
        assert g in idata.children
    a = idata.attrs
    d = prepare_data(ds, "exposure", likelihood="bernoulli")
    assert a["data_hash"] == d.data_hash and a["panel_hash"].startswith("sha256:")
    assert a["seed"] == 11 and a["sampler"] == "mock" and a["sampler_requested"] == "nutpie"
    assert {"pymc", "arviz", "nutpie", "numpy"} <= set(json.loads(a["library_versions"]))
    assert json.loads(a["spec"])["likelihood"] == "bernoulli"
    assert a["diagnostics_passed"] == 1
    assert idata.posterior.attrs["data_hash"] == d.data_hash
    assert "Kolada" not in a["source_note"]
    np.testing.assert_array_equal(idata.observed_data["y"].values, d.y)
    # the gates check the model's quantities, not the parametrisation's auxiliary variables
    gated = gated_variables(idata)
    assert {"mu_beta", "beta", "municipality_effect", "group_effect", "sigma_group"} <= set(gated)
    assert "z_municipality" in idata["posterior"] and not any(v.startswith("z_") or v.endswith("_raw") for v in gated)


def test_auto_likelihood_picks_binomial_for_shares_with_counts(mock_sampling):
    ds = simulate_panel("binomial", **SMALL, seed=9)
    idata = fit_continuous(ds, "exposure", draws=1500, seed=1)
    assert idata.attrs["likelihood"] == "binomial"
    idata = fit_continuous(ds.drop_vars("n"), "exposure", draws=1500, seed=1)
    assert idata.attrs["likelihood"] == "normal"


def test_checks_loo_ppc_compare_and_grouped_cv(mock_sampling):
    ds = simulate_panel("bernoulli", **SMALL, seed=10)
    d = prepare_data(ds, "exposure", likelihood="bernoulli")
    idata = fit_mod.fit(d, draws=1500, seed=2)
    rep = loo(idata)
    # PSIS-LOO total equals ArviZ's and the k table covers every observation
    assert rep.elpd == pytest.approx(float(azs.loo(idata).elpd))
    assert rep.k_table()["count"].sum() == d.n_obs
    assert "Pareto k" in rep.summary
    idata2 = fit_mod.fit(d, draws=1500, seed=3, year_effects=False)
    table = compare_models({"full": idata, "no_year": idata2})
    assert set(table.index) == {"full", "no_year"}
    posterior_predictive(idata, d, thin=10)
    assert idata.posterior_predictive["y"].shape == (2, 150, d.n_obs)
    fig = plot_ppc(idata)
    assert fig.get_supxlabel() == PROCESSED_SOURCE_NOTE and fig.axes
    assert figure_problems(fig) == []
    pp = prior_predictive(d, draws=50)
    assert pp.prior_predictive["y"].shape == (1, 50, d.n_obs)
    assert plot_ppc(pp, group="prior").axes
    with pytest.raises(ParameterError, match="posterior_predictive"):
        plot_ppc(fit_mod.fit(d, draws=1500, seed=5, log_likelihood=False))
    # grouped CV: the held-out density equals a direct scipy computation at the fold's draws
    g0 = d.groups[0]
    cv = leave_group_out_cv(d, groups=[g0], draws=1500, seed=4)
    train = d.subset(d.groups[d.group_idx] != g0)
    test = d.subset(d.groups[d.group_idx] == g0)
    fold = fit_mod.fit(train, draws=1500, seed=4, diagnostics="flag", log_likelihood=False)
    post = fold["posterior"].to_dataset().stack(s=("chain", "draw"))
    xbar = np.asarray(json.loads(fold.attrs["x_offset"]))
    alpha_c = post["alpha"].values + post["beta"].values * xbar[:, None]
    gamma = np.vstack([np.zeros(post.sizes["s"]), post["year_effect"].values])
    eta = (alpha_c[test.indicator_idx] + post["municipality_effect"].values[test.municipality_idx]
           + gamma[test.year_idx] + post["beta"].values[test.indicator_idx] * (test.x - xbar[test.indicator_idx])[:, None])
    lp = stats.bernoulli.logpmf(test.y[:, None], expit(eta))
    lpd = logsumexp(lp, axis=1) - np.log(lp.shape[1])
    np.testing.assert_allclose(cv.pointwise, lpd, rtol=1e-8)
    assert cv.to_frame().loc[g0, "n_obs"] == test.n_obs
    assert cv.elpd == pytest.approx(lpd.sum())


# --------------------------------------------------------------------------------- FE comparison
def test_fe_estimates_match_statsmodels_dummies():
    ds = simulate_panel("normal", **SMALL, seed=12, exposure="continuous", exposure_level="cell")
    d = prepare_data(ds, "exposure", likelihood="normal")
    fe = fe_estimates(d)
    fr = d.frame
    ref = smf.ols("y ~ x + C(indicator) + C(year) + C(municipality)", fr).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(fr["municipality"])[0]})
    assert fe.loc["pooled", "fe_estimate"] == pytest.approx(ref.params["x"], rel=1e-8)
    for lab in d.indicators:
        sub = fr[fr["indicator"] == lab]
        r = smf.ols("y ~ x + C(year) + C(municipality)", sub).fit()
        assert fe.loc[lab, "fe_estimate"] == pytest.approx(r.params["x"], rel=1e-8)


def test_compare_fe_table(mock_sampling):
    ds = simulate_panel("normal", **SMALL, seed=13, exposure="continuous", exposure_level="cell")
    d = prepare_data(ds, "exposure", likelihood="normal")
    idata = fit_mod.fit(d, draws=1500, seed=1)
    cmp = compare_fe(idata, d, prob=0.9)
    t = cmp.to_frame()
    assert list(t.index) == ["pooled", *d.indicators]
    mu = idata.posterior["mu_beta"].values.ravel()
    assert t.loc["pooled", "bayes_mean"] == pytest.approx(mu.mean())
    assert t.loc["pooled", "bayes_lower"] == pytest.approx(np.quantile(mu, 0.05))
    assert np.all(t["fe_lower"] < t["fe_estimate"]) and cmp.diagnostics_passed is True
    assert "ojpanel.models.fe" in cmp.summary and "<table" in cmp._repr_html_()
    with pytest.raises(ParameterError):
        compare_fe(idata, prepare_data(ds, "exposure", likelihood="normal", years=[2018, 2019]))


def test_arviz_figures_speak_swedish_name_parameters_and_pass_the_layout_check(mock_sampling, tmp_path):
    from ojpanel.core.style import save_figure
    from ojpanel.models.bayes import PARAMETER_LABELS, plot_effects, plot_rank

    ds = simulate_panel("normal", **SMALL, seed=12)
    d = prepare_data(ds, "exposure", likelihood="normal")
    idata = fit_mod.fit(d, draws=1500, seed=2)
    titles = {i: f"Indikator {i} med ett långt namn som måste radbrytas för att få plats" for i in d.indicators}
    posterior_predictive(idata, d, thin=10)
    figs = {"effects": plot_effects(idata, titles), "rank": plot_rank(idata, titles=titles),
            "ppc": plot_ppc(idata), "prior": plot_ppc(prior_predictive(d, draws=50), group="prior")}
    for name, fig in figs.items():
        assert figure_problems(fig) == [], name
        assert fig.get_supxlabel() == PROCESSED_SOURCE_NOTE, name
        written = save_figure(fig, tmp_path / name)  # strict in the tests: raises on a problem
        assert [p.suffix for p in written] == [".png", ".svg"]
    # names, not variable names or ids
    shown = " ".join(t.get_text() for fig in figs.values() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
    assert PARAMETER_LABELS["mu_beta"] in shown and "Indikator" in shown
    assert "mu_beta" not in shown and "sigma_y" not in shown
    assert "Posteriorprediktiv kontroll" in shown and "Priorprediktiv kontroll" in shown


def _contrast_matrix(group_of: np.ndarray, n_groups: int) -> np.ndarray:
    """The matrix of the model's within-group contrast map (its columns: the images of unit vectors)."""
    w = pt.dvector("w")
    f = pytensor.function([w], zero_sum_within_groups(w, group_of, n_groups), **FAST_COMPILE)
    return np.column_stack([f(e) for e in np.eye(n_within_group_contrasts(group_of, n_groups))])


def test_within_group_contrasts_are_an_isometry_onto_the_zero_sum_subspace():
    """The deviations' map: orthonormal columns (so N(0, s^2 I) contrasts give the zero-sum normal of
    scale s) whose span is the within-group zero-sum subspace (M M^T = P, the projection), also with
    a one-member group; its gradient is M^T w."""
    rng = np.random.default_rng(3)
    group_of = rng.integers(0, 5, 40)
    group_of[:6] = [0, 1, 2, 3, 4, 5]  # every group present; group 5 has one member
    group_of[group_of == 5] = 4
    group_of[7] = 5
    P = within_group_projection(group_of, 6)
    np.testing.assert_allclose(P, P.T, atol=1e-15)
    np.testing.assert_allclose(P @ P, P, atol=1e-12)
    M = _contrast_matrix(group_of, 6)
    assert M.shape == (40, 40 - 6)
    np.testing.assert_allclose(M.T @ M, np.eye(34), atol=1e-12)
    np.testing.assert_allclose(M @ M.T, P, atol=1e-12)
    np.testing.assert_allclose(np.bincount(group_of, weights=M @ rng.normal(size=34), minlength=6), 0, atol=1e-12)
    assert np.all(M[7] == 0)  # a one-member group has no deviation
    v = pt.dvector("v")
    w = rng.normal(size=40)
    x = rng.normal(size=34)
    g = pt.grad((zero_sum_within_groups(v, group_of, 6) * pt.as_tensor(w)).sum(), v).eval({v: x})
    np.testing.assert_allclose(g, M.T @ w, atol=1e-12)
    with pytest.raises(ParameterError, match="groups needs a member"):
        zero_sum_within_groups(v, group_of, 7)  # group 6 has no member


@pytest.mark.parametrize("lik", ["normal", "binomial", "bernoulli", "ordinal"])
def test_pointwise_log_likelihood_matches_pymc_and_the_model_density(lik):
    """The stored log-likelihood equals PyMC's at every draw, and the model's own log density.

    PyMC's function refuses models with custom initial values (the ordinal cutpoints), so there
    the check is the model's compiled log density at each draw's transformed values.
    """
    from ojpanel.models.bayes.loglik import pointwise_log_likelihood

    d = prepare_data(simulate_panel(lik, **SMALL, seed=12), "exposure", likelihood=lik)
    m = build_model(d)
    rng = np.random.default_rng(0)
    # posterior-like draws: two chains of prior draws (any values in the support will do)
    with m:
        pr = pm.sample_prior_predictive(draws=6, random_seed=3, compile_kwargs=FAST_COMPILE).prior.to_dataset()
    shuffled = pr.isel(draw=rng.permutation(6)).assign_coords(draw=pr["draw"].values)
    post = xr.concat([pr, shuffled], dim="chain", join="exact").assign_coords(chain=[0, 1])
    post = post[[rv.name for rv in m.free_RVs]]
    ours = pointwise_log_likelihood(post, m, compile_kwargs=FAST_COMPILE)["y"]
    assert ours.dims == ("chain", "draw", "obs") and ours.shape == (2, 6, d.n_obs)
    if lik != "ordinal":
        ref = pm.compute_log_likelihood(xr.DataTree.from_dict({"posterior": post}), model=m,
                                        extend_inferencedata=False, progressbar=False,
                                        compile_kwargs=FAST_COMPILE)["y"]
        np.testing.assert_allclose(ours.values, ref.values, rtol=1e-12, atol=1e-12)
    elem = m.compile_fn(m.logp(vars=[m["y"]], sum=False)[0], inputs=m.value_vars, on_unused_input="ignore",
                        **FAST_COMPILE)
    for c in range(2):
        for k in range(6):
            point = {}
            for rv in m.free_RVs:
                tr = m.rvs_to_transforms.get(rv)
                val = post[rv.name].values[c, k]
                point[m.rvs_to_values[rv].name] = (tr.forward(pt.as_tensor(val), *rv.owner.inputs).eval()
                                                   if tr is not None else val)
            np.testing.assert_allclose(ours.values[c, k], elem(point), rtol=1e-10, atol=1e-12)
    with pytest.raises(ParameterError, match="lacks the model's free variables"):
        pointwise_log_likelihood(post.drop_vars("mu_beta"), m)
    with pytest.raises(ParameterError, match="no observed variables"):
        pointwise_log_likelihood(post, m, var_names=["nope"])


def test_every_likelihood_fits_with_its_log_likelihood_and_loo(mock_sampling):
    """fit() stores the log-likelihood by default (mocked draws)."""
    for lik in ("normal", "binomial", "bernoulli"):
        d = prepare_data(simulate_panel(lik, **SMALL, seed=13), "exposure", likelihood=lik)
        idata = fit_mod.fit(d, draws=1500, seed=2, diagnostics="flag")
        assert idata["log_likelihood"]["y"].shape == (2, 1500, d.n_obs), lik
        assert np.isfinite(loo(idata).elpd), lik


def test_ordinal_fit_has_its_log_likelihood_and_loo():
    """The ordinal model too, although its ordered cutpoints carry custom initial values, which
    PyMC's own log-likelihood function refuses (sampled for real: prior draws of the cutpoints
    are not ordered)."""
    d = prepare_data(simulate_panel("ordinal", **SMALL, seed=13), "exposure", likelihood="ordinal")
    idata = fit_mod.fit(d, draws=100, tune=100, seed=2, diagnostics="flag")
    assert idata["log_likelihood"]["y"].shape == (2, 100, d.n_obs)
    assert np.isfinite(loo(idata).elpd)
