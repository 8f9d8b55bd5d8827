"""The hierarchical model with a peer exposure by peer definition (neighbours included)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ojpanel.data.geo import load_boundaries, neighbour_graph, weights_matrix
from ojpanel.errors import ParameterError
from ojpanel.models.bayes import PeerExposure, fit_continuous, prepare_data
from ojpanel.peers import NEIGHBOURS, neighbour_mean_np

YEARS = list(range(2015, 2021))
TRUE_PEER = 0.5


@pytest.fixture(scope="module")
def panel() -> xr.Dataset:
    """y[t] = u_m + γ_t + 0.5·(neighbours' mean of y[t−1]) + e on the real municipalities."""
    codes = list(load_boundaries().codes)
    W = weights_matrix(neighbour_graph(), "contiguity", codes=codes)
    rng = np.random.default_rng(42)
    n, k, t = len(codes), 2, len(YEARS)
    u = rng.normal(0, 0.5, (n, k))
    gamma = rng.normal(0, 0.3, t)
    y = np.empty((n, k, t))
    y[:, :, 0] = u + rng.normal(0, 0.5, (n, k))
    for j in range(1, t):
        peer = np.nan_to_num(neighbour_mean_np(y[:, :, j - 1], W))  # islands: no peers, no effect
        y[:, :, j] = u + gamma[j] + TRUE_PEER * peer + rng.normal(0, 0.5, (n, k))
    return xr.Dataset(
        {"value": (("municipality", "indicator", "year"), y)},
        coords={"municipality": codes, "indicator": ["A", "B"], "year": YEARS,
                "county": ("municipality", [c[:2] for c in codes])},
    )  # fmt: skip


def test_peer_exposure_is_the_accessors_peer_mean(panel):
    for kw in (dict(group="county"), dict(group=NEIGHBOURS), dict(group=NEIGHBOURS, weights="border", lag=2)):
        x = PeerExposure(**kw)(panel)
        group = kw["group"]
        ref = panel.oj.peer_mean(group, lag=kw.get("lag", 1), **({"weights": kw["weights"]} if "weights" in kw else {}))
        xr.testing.assert_allclose(x.transpose(*ref.dims).drop_vars(x.coords.keys() - ref.coords.keys()),
                                   ref.rename(x.name))
    data = prepare_data(panel, PeerExposure(NEIGHBOURS), likelihood="normal", years=YEARS[1:],
                        standardize_exposure=False)
    assert data.spec["exposure"].startswith("peer mean of neighbours at t-1")
    # the five island municipalities have no neighbours, so no exposure: counted, not hidden
    assert data.n_missing == 5 * 2 * (len(YEARS) - 1)
    with pytest.raises(ParameterError, match="lag"):
        PeerExposure(NEIGHBOURS, lag=0)


def test_model_recovers_a_known_neighbour_peer_coefficient(panel, smoke):
    idata = fit_continuous(
        panel, PeerExposure(NEIGHBOURS, lag=1), likelihood="normal", years=YEARS[1:],
        standardize_exposure=False, standardize_outcome=False,
        draws=300 if smoke else 1000, tune=300 if smoke else 1000, chains=2, seed=11, diagnostics="flag",
        log_likelihood=False,
    )  # fmt: skip
    mu = idata.posterior["mu_beta"].values.ravel()
    lo, hi = np.quantile(mu, [0.05, 0.95])
    assert lo < TRUE_PEER < hi
    assert abs(np.median(mu) - TRUE_PEER) < 0.1
    beta = idata.posterior["beta"].median(("chain", "draw")).values
    assert np.all(np.abs(beta - TRUE_PEER) < 0.15)
    # an independent estimate: OLS with municipality and year effects (statsmodels)
    import statsmodels.formula.api as smf

    x = PeerExposure(NEIGHBOURS)(panel)
    df = pd.DataFrame({
        "y": panel["value"].values.ravel(), "x": x.transpose(*panel["value"].dims).values.ravel(),
        "m": np.repeat(panel["municipality"].values, 2 * len(YEARS)),
        "year": np.tile(YEARS, 2 * panel.sizes["municipality"]),
        "ind": np.tile(np.repeat(["A", "B"], len(YEARS)), panel.sizes["municipality"]),
    }).dropna()  # fmt: skip
    ols = smf.ols("y ~ x + C(m) + C(year) + C(ind)", df).fit()
    assert abs(np.median(mu) - ols.params["x"]) < 3 * ols.bse["x"]
