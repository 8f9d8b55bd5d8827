"""Peer design: leave-one-out peer means, ANCOVA with shock effects, the collinearity error, the
exclusion bias against its closed form, and the permutation placebo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ojpanel.designs.peer import (
    exclusion_bias,
    exclusion_bias_exact,
    fit_peer,
    peer_frame,
    peer_inference,
    peer_placebo,
    tidy_peer,
)
from ojpanel.errors import ModelError, ParameterError
from ojpanel.simulate.panel import simulate_panel


def _equal_groups(n_groups=10, size=6, years=6, rho=0.6, seed=0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    N = n_groups * size
    y = np.empty((N, years))
    y[:, 0] = rng.normal(size=N)
    for t in range(1, years):
        y[:, t] = rho * y[:, t - 1] + rng.normal(size=N)
    codes = [f"{i:04d}" for i in range(N)]
    return xr.Dataset(
        {"value": (("indicator", "municipality", "year"), y[None])},
        coords={
            "indicator": ["SIM"],
            "municipality": codes,
            "year": np.arange(2010, 2010 + years),
            "county": ("municipality", np.repeat([f"{g:02d}" for g in range(n_groups)], size)),
            "direction": ("indicator", [1]),
        },
        attrs={"synthetic": 1},
    )


def test_peer_frame_is_lagged_leave_one_out_mean():
    ds = _equal_groups()
    f = peer_frame(ds, group="county", lag=1, outcome="ancova")
    v = ds["value"].values[0]
    i, t = 7, 3
    grp = ds["county"].values
    others = (grp == grp[i]) & (np.arange(v.shape[0]) != i)
    assert f["peer"].values[0, i, t] == pytest.approx(v[others, t - 1].mean(), rel=1e-12)
    assert f["own_lag"].values[0, i, t] == v[i, t - 1]
    assert np.isnan(f["peer"].values[0, :, 0]).all()


def test_peer_coefficient_matches_statsmodels_dummies():
    import statsmodels.api as sm

    ds = simulate_panel(
        n_municipalities=120,
        n_counties=12,
        years=range(2015, 2020),
        rho=0.5,
        sigma_municipality=0.5,
        sigma_county_year=0.4,
        peer_effect=0.0,
        seed=3,
    )
    res = fit_peer(
        ds, group="kommungrupp_2017", shocks="county", outcome="ancova", cluster="county"
    )
    f = peer_frame(ds, group="kommungrupp_2017", outcome="ancova")
    df = pd.DataFrame(
        {
            "y": f["y"].values[0].ravel(),
            "peer": f["peer"].values[0].ravel(),
            "own_lag": f["own_lag"].values[0].ravel(),
            "cell": np.repeat(ds["county"].values, 5).astype(object)
            + np.tile(ds["year"].values.astype(str), 120),
        }
    ).dropna()
    X = pd.concat([df[["peer", "own_lag"]], pd.get_dummies(df["cell"], dtype=float)], axis=1)
    ref = sm.OLS(df["y"], X).fit()
    assert res.params.loc["SIM000", "peer"] == pytest.approx(ref.params["peer"], abs=1e-8)
    assert res.params.loc["SIM000", "own_lag"] == pytest.approx(ref.params["own_lag"], abs=1e-8)
    tidy = tidy_peer(
        res, ds, peer_group="kommungrupp_2017", lag=1, outcome="ancova", mode="improved"
    )
    assert set(tidy["term"]) == {"peer", "own_lag"} and (tidy["area"] == "synthetic").all()


def test_planted_peer_effect_is_recovered():
    ds = simulate_panel(
        n_municipalities=290,
        n_counties=21,
        years=range(2012, 2021),
        n_indicators=3,
        rho=0.5,
        sigma_municipality=0.0,
        sigma_county_year=0.5,
        peer_effect=0.4,
        peer_group="kommungrupp_2017",
        seed=11,
    )
    res = fit_peer(
        ds, group="kommungrupp_2017", shocks="county", outcome="ancova", cluster="county"
    )
    est, se = res.params["peer"], res.std_errors["peer"]
    assert np.all(np.abs(est - 0.4) < 4 * se)
    assert np.all(np.abs(res.params["own_lag"] - 0.5) < 4 * res.std_errors["own_lag"])


def test_collinear_peer_variable_raises_clear_error():
    ds = _equal_groups()
    with pytest.raises(ModelError, match="collinear with county×year effects and the own lag"):
        fit_peer(ds, group="county", shocks="county", outcome="ancova", cluster="county")
    with pytest.raises(ParameterError, match="outcome must be one of"):
        fit_peer(ds, outcome="binary")


def test_exclusion_bias_identity_equal_groups():
    """Level outcome, group×year effects: β̂ = −(n−1)·(within-cell slope on the own lag)."""
    import statsmodels.api as sm

    ds = _equal_groups(size=6, rho=0.6, seed=4)
    res = fit_peer(ds, group="county", shocks="county", outcome="level", cluster="county")
    beta = res.params.loc["SIM", "peer"]
    f = peer_frame(ds, group="county", outcome="ancova")
    years = ds["year"].values
    y = f["y"].values[0][:, 1:].ravel()
    ylag = f["own_lag"].values[0][:, 1:].ravel()
    cell = np.repeat(ds["county"].values, len(years) - 1).astype(object) + np.tile(
        years[1:].astype(str), 60
    )
    D = pd.get_dummies(cell, dtype=float)
    b = sm.OLS(y, pd.concat([pd.Series(ylag, name="lag"), D], axis=1)).fit().params["lag"]
    assert beta == pytest.approx(-(6 - 1) * b, rel=1e-9)
    assert beta == pytest.approx(
        exclusion_bias_exact(y, ylag, pd.factorize(cell)[0], np.full(y.size, 6)), rel=1e-9
    )
    # within a cell the peer mean moves by exactly −1/(n−1) per unit of the own lag
    p = f["peer"].values[0][:, 1:].ravel()
    slope = sm.OLS(p, pd.concat([pd.Series(ylag, name="lag"), D], axis=1)).fit().params["lag"]
    assert slope == pytest.approx(-1 / 5, rel=1e-9)


@pytest.mark.slow
def test_exclusion_bias_matches_closed_form_plim(smoke):
    """No peer effect, persistence ρ: mean peer coefficient ≈ −ρ·G/Σ 1/(n_g − 1)."""
    reps = 40 if smoke else 300
    rho = 0.5
    est = []
    for r in range(reps):
        ds = simulate_panel(
            n_municipalities=120,
            n_counties=12,
            years=range(2010, 2016),
            rho=rho,
            sigma_municipality=0.0,
            sigma_year=0.2,
            peer_effect=0.0,
            seed=500 + r,
        )
        est.append(
            fit_peer(
                ds, group="county", shocks="county", outcome="level", cluster="county"
            ).params.iloc[0]["peer"]
        )
    sizes = pd.Series(ds["county"].values).value_counts().to_numpy()
    target = exclusion_bias(sizes, rho)
    est = np.asarray(est)
    assert target < -1.0  # large and negative although the true peer effect is zero
    assert abs(est.mean() - target) < 4 * est.std(ddof=1) / np.sqrt(reps) + 0.02 * abs(target)


def test_permutation_placebo():
    ds = simulate_panel(
        n_municipalities=150,
        n_counties=15,
        years=range(2014, 2020),
        n_indicators=2,
        rho=0.5,
        sigma_municipality=0.0,
        sigma_county_year=0.3,
        peer_effect=0.5,
        peer_group="kommungrupp_2017",
        seed=21,
    )
    real = fit_peer(
        ds, group="kommungrupp_2017", shocks="county", outcome="ancova", cluster="county"
    )
    pl = peer_placebo(
        ds, group="kommungrupp_2017", shocks="county", outcome="ancova", n_permutations=39, seed=1
    )
    np.testing.assert_allclose(pl.observed, real.params["peer"].to_numpy(), rtol=1e-10)
    assert pl.null_distribution.shape == (39, 2)
    assert np.all(pl.p_value == 1 / 40)  # a real effect of 0.5 beats every pseudo-group
    assert np.all(np.abs(pl.null_distribution.mean(0)) < np.abs(pl.observed))


def test_peer_inference_and_audit_binary_version():
    import statsmodels.api as sm

    from ojpanel.inference import wild_cluster_bootstrap
    from ojpanel.models.fe import column_codes, panel_arrays

    ds = simulate_panel(
        n_municipalities=120,
        n_counties=12,
        years=range(2015, 2020),
        n_indicators=3,
        rho=0.4,
        sigma_county_year=0.3,
        seed=8,
    )
    tab = peer_inference(ds, n_draws=199, seed=5)
    assert len(tab) == 3 and (tab["p_romano_wolf"] >= tab["p_wild"] - 1e-12).all()
    assert (tab["p_holm"] >= tab["p_wild"]).all() and (tab["p_bh"] <= tab["p_holm"] + 1e-12).all()
    # the shared-weight bootstrap equals the single-regression bootstrap with the same seed
    f = peer_frame(ds, group="kommungrupp_2017", outcome="ancova")
    y, X, labels, rows = panel_arrays(f["y"], {"peer": f["peer"], "own_lag": f["own_lag"]})
    n = len(rows)
    one = wild_cluster_bootstrap(
        X[1],
        y[1],
        column_codes(rows, "county", n),
        factors=[column_codes(rows, ("county", "year"), n)],
        n_draws=199,
        weights="webb",
        seed=5,
        level=None,
    )
    assert tab.set_index("indicator").loc[labels[1], "p_wild"] == one.p_value
    # the audit's version: binary improvement on the binary top-quartile peer flag (LPM)
    aud = fit_peer(ds, outcome="improved", peer="binary", shocks=None, cluster="county")
    fb = peer_frame(ds, group="kommungrupp_2017", outcome="improved", peer="binary")
    d = pd.DataFrame(
        {
            "y": fb["y"].values[0].ravel(),
            "p": fb["peer"].values[0].ravel(),
            "year": np.tile(ds["year"].values, 120),
        }
    ).dropna()
    ref = sm.OLS(
        d["y"], pd.concat([d[["p"]], pd.get_dummies(d["year"], dtype=float)], axis=1)
    ).fit()
    assert aud.params.iloc[0]["peer"] == pytest.approx(ref.params["p"], abs=1e-10)
    assert set(np.unique(fb["y"].values[np.isfinite(fb["y"].values)])) <= {0.0, 1.0}
