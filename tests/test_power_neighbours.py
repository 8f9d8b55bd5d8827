"""Power of the peer design with every peer definition, neighbours included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import ojpanel
from ojpanel.designs.peer import PeerDesign
from ojpanel.designs.power import _simulated_arrays, _structure, power, variance_components


@pytest.fixture(scope="module")
def panel():
    ds = ojpanel.build_panel(areas=["äldreomsorg"], kinds=["result"], years=range(2014, 2023))
    cov = ds.oj.coverage().mean("year")
    ind = str(cov["indicator"].values[int(np.argmax(cov.values))])
    return ds.oj.select(indicators=[ind]), ind


@pytest.mark.parametrize(
    "design",
    [PeerDesign(group="county"), PeerDesign(group="kommungrupp_2017"), PeerDesign(group="neighbours"),
     PeerDesign(group="neighbours", weights="border"),
     PeerDesign(group="neighbours", weights="inverse_distance", islands="nearest")],
    ids=["county", "kommungrupp", "neighbours", "border", "inverse_distance"],
)
def test_peer_matrix_is_the_peer_mean(panel, design):
    """The weights the simulation plants effects through give exactly the design's peer mean."""
    ds, _ = panel
    v = ds["value"].transpose("indicator", "municipality", "year")
    W = design.peer_matrix(v)
    assert np.all(np.diag(W) == 0)
    expected = design.peer_mean(v).transpose("indicator", "municipality", "year").values[0]
    x = v.values[0]
    den = W @ np.isfinite(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        got = np.where(den > 0, (W @ np.nan_to_num(x)) / den, np.nan)
    np.testing.assert_allclose(got, expected, rtol=1e-12, equal_nan=True)
    # the fast form the simulation uses gives the same values, with several columns at once
    stacked = np.concatenate([x, x[:, ::-1]], axis=1)
    fast = design.peer_mean_np(v)(stacked)
    np.testing.assert_allclose(fast[:, : x.shape[1]], expected, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(fast[:, x.shape[1]:], got[:, ::-1], rtol=1e-12, equal_nan=True)


def test_simulated_peer_effect_acts_through_the_neighbour_mean(panel):
    """The simulated panel's regressor is ``ds.oj.peer_mean("neighbours", lag=1)`` and a planted
    effect on it is recovered by an independent regression (statsmodels)."""
    import statsmodels.formula.api as smf

    ds, ind = panel
    da = ds["value"].sel(indicator=ind).transpose("municipality", "year")
    design = PeerDesign(group="neighbours", shocks=None)
    vc = variance_components(da)
    st = _structure(da, design)
    y_da, regs = _simulated_arrays(2, np.random.default_rng(5), design, 0.4, vc, st, 0.5)
    sim = xr.Dataset({"value": y_da.where(np.isfinite(y_da))})
    ref = sim.oj.peer_mean(ojpanel.peers.NEIGHBOURS, lag=1)
    np.testing.assert_allclose(regs["peer"].values, ref.transpose(*regs["peer"].dims).values, equal_nan=True)
    frame = (
        xr.Dataset({"y": y_da, "peer": regs["peer"], "own_lag": regs["own_lag"]})
        .isel(indicator=0).to_dataframe().dropna().reset_index()
    )
    fit = smf.ols("y ~ peer + own_lag + C(year)", frame).fit()
    assert abs(fit.params["peer"] - 0.4) < 4 * fit.bse["peer"]


def test_neighbour_power_differs_from_county_power(panel):
    ds, ind = panel
    kw = dict(indicator=ind, n_sims=40, effects=[0.0, 1.0, 3.0], size_adjusted=False, seed=11)
    nb = power(ds, design=PeerDesign(group="neighbours", shocks=None), **kw)
    cty = power(ds, design=PeerDesign(group="county", shocks=None), **kw)
    assert nb.settings["group"] == "neighbours" and nb.settings["peer_weights"] == "contiguity"
    assert cty.settings["group"] == "county" and cty.settings["peer_weights"] is None
    assert not np.allclose(nb.table["power"], cty.table["power"])
    # the string form of power() takes the same peer definition
    again = power(ds, design="peer", group="neighbours", shocks=None, **kw)
    assert again.table.equals(nb.table)


def test_power_cli_takes_neighbour_peers(panel, tmp_path):
    from typer.testing import CliRunner

    from ojpanel.cli import app

    ds, ind = panel
    path = ojpanel.save_panel(ds, tmp_path / "p.nc")
    args = ["power", "--design", "peer", "--panel", str(path), "--indicator", ind, "--n-sims", "20",
            "--effects", "0,1", "--shocks", "none", "--seed", "11"]
    out = tmp_path / "power.csv"
    r = CliRunner().invoke(app, [*args, "--group", "neighbours", "--output", str(out)])
    assert r.exit_code == 0, r.output
    want = power(ds, design=PeerDesign(group="neighbours", shocks=None), indicator=ind, n_sims=20,
                 effects=[0.0, 1.0], seed=11)
    got = pd.read_csv(out)
    np.testing.assert_allclose(got["power"], want.table["power"])
    bad = CliRunner().invoke(app, [*args, "--group", "neighbors"])
    assert bad.exit_code != 0 and "neighbors" in bad.output
