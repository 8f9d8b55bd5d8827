"""Every small-sample convention against the package it is named after, run live.

pyfixest reproduces the Stata rules: ``fixef_rm="none"`` with its default ``ssc()`` is what
``xtreg, fe vce(cluster)`` and ``reghdfe, keepsingletons`` count (effects nested in the clusters not
counted), ``ssc(k_fixef="full")`` is ``areg`` (every absorbed effect counted), and its defaults drop
singletons. The data have municipality and county×year effects (municipalities nested in counties,
so both effects are nested in county clusters and neither in year clusters) and singletons.

Tolerances: coefficients 1e-8 absolute; standard errors 1e-6 relative; df exact.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from ojpanel.models.fe import fit_indicators, fit_panel

REF = Path(__file__).parent / "reference"

PYFIXEST = {
    "stata": dict(fixef_rm="none"),
    "areg": dict(fixef_rm="none", ssc=pf.ssc(k_fixef="full")),
    "pyfixest": {},
}
VCOV = {
    "unadjusted": ("iid", None),
    "robust": ("hetero", None),
    "clustered-county": ({"CRV1": "county"}, "county"),
    "clustered-municipality": ({"CRV1": "municipality"}, "municipality"),
    "twoway": ({"CRV1": "municipality+year"}, ("municipality", "year")),
}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    d = pd.read_csv(REF / "fe_reference_data.csv", dtype={"municipality": str, "county": str})
    d = d.dropna().reset_index(drop=True)
    # two municipalities observed once: singletons of the municipality effect
    alone = d["municipality"].isin(["m001", "m002"]) & (d["year"] != 2016)
    return d[~alone].reset_index(drop=True)


def _pf(data: pd.DataFrame, fml: str, vcov, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyfixest warns when it drops singletons
        return pf.feols(fml, data=data, vcov=vcov, **kw)


@pytest.mark.parametrize("case", list(VCOV))
@pytest.mark.parametrize("convention", list(PYFIXEST))
def test_convention_equals_pyfixest(data, convention, case):
    vcov, cluster = VCOV[case]
    cov = case.split("-")[0]
    ours = fit_panel(
        data, "y", ["x", "z"], time_effects=False, other_effects=[("county", "year")],
        cov=cov, cluster=cluster, convention=convention,
    )  # fmt: skip
    ref = _pf(data, "y ~ x + z | municipality + county^year", vcov, **PYFIXEST[convention])
    np.testing.assert_allclose(ours.params.values, ref.coef().values, atol=1e-8, rtol=0)
    np.testing.assert_allclose(ours.std_errors.values, ref.se().values, rtol=1e-6)
    assert ours.df_resid == ref._df_t
    np.testing.assert_allclose(ours.pvalues.values, ref.pvalue().values, rtol=1e-5, atol=1e-12)


def test_pyfixest_convention_counts_without_singletons(data):
    """Singletons change nothing but the counts: pyfixest's default drops them, Stata's keeps them."""
    kw = dict(time_effects=False, other_effects=[("county", "year")], cluster="municipality")
    a = fit_panel(data, "y", ["x", "z"], convention="pyfixest", **kw)
    b = fit_panel(data, "y", ["x", "z"], convention="stata", **kw)
    np.testing.assert_allclose(a.params.values, b.params.values, rtol=0, atol=1e-12)
    assert a.nobs == b.nobs == len(data)
    assert a.df_resid == b.df_resid - 2  # two singleton municipalities are two fewer clusters
    assert not np.allclose(a.std_errors.values, b.std_errors.values, rtol=1e-6)


def test_crv3_refits_when_effects_are_not_nested():
    """Year effects are not nested in county clusters: each county is left out and the effects
    re-estimated. Equal to pyfixest's CRV3 and to a leave-one-county-out refit by hand."""
    d = pd.read_csv(REF / "fe_reference_data.csv", dtype={"municipality": str, "county": str})
    d = d.dropna().reset_index(drop=True)
    ours = fit_panel(d, "y", ["x", "z"], cov="crv3", cluster="county", convention="pyfixest")
    ref = _pf(d, "y ~ x + z | municipality + year", {"CRV3": "county"})
    np.testing.assert_allclose(ours.std_errors.values, ref.se().values, rtol=1e-6)
    assert ours.df_resid == ref._df_t == 7
    full = fit_panel(d, "y", ["x", "z"], cov="unadjusted").params.values
    jack = np.array(
        [
            fit_panel(d[d["county"] != g], "y", ["x", "z"], cov="unadjusted").params.values
            for g in sorted(d["county"].unique())
        ]
    )
    G = len(jack)
    textbook = np.sqrt(np.diag((G - 1) / G * (jack - full).T @ (jack - full)))
    crv3 = fit_panel(d, "y", ["x", "z"], cov="crv3", cluster="county", convention="stata")
    np.testing.assert_allclose(crv3.std_errors.values, textbook, rtol=1e-8)


def test_county_by_year_effects_equal_pyfixest():
    """Municipality + county×year effects for several indicators at once, as pyfixest
    ``feols("y ~ x | municipality + county^year")`` fits them one by one (with its defaults)."""
    from ojpanel.peers import lagged, loo_group_mean
    from ojpanel.simulate.panel import simulate_panel

    ds = simulate_panel(
        n_municipalities=80, n_counties=8, years=range(2016, 2021), n_indicators=3, rho=0.3,
        sigma_county_year=0.3, missing=0.1, seed=5,
    )  # fmt: skip
    y = ds["value"]
    regs = {"own_lag": lagged(y, 1), "peer": lagged(loo_group_mean(y, "kommungrupp_2017"), 1)}
    ours = fit_indicators(
        y, regs, time_effects=False, other_effects=[("county", "year")], cluster="county",
        convention="pyfixest",
    )  # fmt: skip
    for ind in ours.labels:
        frame = pd.DataFrame(
            {
                "y": y.sel(indicator=ind).values.ravel(),
                **{k: r.sel(indicator=ind).values.ravel() for k, r in regs.items()},
                "municipality": np.repeat(y["municipality"].values, y.sizes["year"]),
                "county": np.repeat(y["county"].values, y.sizes["year"]),
                "year": np.tile(y["year"].values, y.sizes["municipality"]),
            }
        ).dropna()
        ref = _pf(frame, "y ~ own_lag + peer | municipality + county^year", {"CRV1": "county"})
        one = ours[ind]
        np.testing.assert_allclose(one.params.values, ref.coef().values, atol=1e-8, rtol=0)
        np.testing.assert_allclose(one.std_errors.values, ref.se().values, rtol=1e-6)


def test_the_one_cr1_equals_statsmodels():
    """``covariance.cr1`` (used by the replication, the RD and the bootstrap) is statsmodels'
    ``cov_type="cluster"`` with its default correction."""
    import statsmodels.api as sm

    from ojpanel.models.covariance import cr1

    rng = np.random.default_rng(3)
    n = 120
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])
    g = rng.integers(0, 9, n)
    y = X @ np.array([1.0, 0.5, -0.2]) + rng.normal(size=n) + rng.normal(size=9)[g]
    ref = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": g})
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    cov, G = cr1(X, y - X @ beta, np.linalg.inv(X.T @ X), g)
    assert G == 9
    np.testing.assert_allclose(cov, ref.cov_params(), rtol=1e-10)
