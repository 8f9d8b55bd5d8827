"""The improved replication's analysis D with neighbour peers, against an independent regression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import xarray as xr

from ojpanel.data.geo import load_boundaries
from ojpanel.errors import ParameterError
from ojpanel.peers import NEIGHBOURS
from ojpanel.replication import rir2021

YEARS = [2016, 2017, 2018, 2019, 2020]
MAPPING = pd.DataFrame({
    "indicator": ["X1", "X2"], "area": ["barn och unga"] * 2,
    "indicator_group": ["Manualbaserade insatser"] * 2, "label": ["Item one", "Item two"],
})  # fmt: skip


@pytest.fixture(scope="module")
def panel() -> xr.Dataset:
    """Values on the real municipalities with county levels (so neighbour means carry signal)."""
    codes = list(load_boundaries().codes)
    rng = np.random.default_rng(7)
    county = pd.factorize(np.array([c[:2] for c in codes]))[0]
    base = rng.normal(50, 3, (len(codes), 2, 1)) + rng.normal(0, 10, (county.max() + 1, 2, 1))[county]
    v = base + rng.normal(0, 5, (len(codes), 2, len(YEARS)))
    v[rng.random(v.shape) < 0.05] = np.nan
    return xr.Dataset(
        {"value": (("municipality", "indicator", "year"), v)},
        coords={"municipality": codes, "indicator": ["X1", "X2"], "year": YEARS,
                "county": ("municipality", [c[:2] for c in codes]),
                "kommungrupp_2017": ("municipality", ["A"] * len(codes)),
                "direction": ("indicator", [1, -1]), "area": ("indicator", ["barn och unga"] * 2)},
    )  # fmt: skip


@pytest.mark.parametrize("weights", ["contiguity", "border"])
def test_neighbour_peer_cells_equal_statsmodels_on_peer_mean(panel, weights):
    rep = rir2021(panel, mode="both", indicators=MAPPING, groupings={"neighbours": NEIGHBOURS},
                  neighbour_weights=weights)
    d = rep.tables["D"]
    assert "neighbours" not in set(d.loc[d["mode"] == "faithful", "peer_group"])
    assert any("neighbour peers" in s for s in rep.skipped)  # faithful mode and C say why not
    assert rep.settings["neighbour_weights"] == weights
    for lag in (1, 2):
        cell = d[(d["mode"] == "improved") & (d["peer_group"] == "neighbours") & (d["indicator"] == "X1")
                 & (d["lag"] == lag) & (d["outcome"] == "level") & (d["term"] == "peer_mean")]
        assert len(cell) == 1
        cell = cell.iloc[0]
        # independent: the accessor's neighbour mean, statsmodels OLS with year dummies, CR1 by county
        peer = panel.oj.peer_mean(NEIGHBOURS, lag=lag, weights=weights).sel(indicator="X1")
        df = pd.DataFrame({
            "y": panel["value"].sel(indicator="X1").transpose("municipality", "year").values.ravel(),
            "peer": peer.transpose("municipality", "year").values.ravel(),
            "year": np.tile(YEARS, panel.sizes["municipality"]),
            "county": np.repeat(panel["county"].values, len(YEARS)),
        })  # fmt: skip
        df = df[(df["year"] >= 2016 + lag)].dropna()
        X = sm.add_constant(pd.concat(
            [df[["peer"]], pd.get_dummies(df["year"], prefix="y", drop_first=True, dtype=float)], axis=1))
        ref = sm.OLS(df["y"], X).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(df["county"])[0]},
                                     use_t=True)
        assert cell["estimate"] == pytest.approx(ref.params["peer"], rel=1e-9)
        assert cell["std_error"] == pytest.approx(ref.bse["peer"], rel=1e-8)
        assert cell["p_value"] == pytest.approx(ref.pvalues["peer"], rel=1e-7)
        assert cell["n_obs"] == len(df)
        assert ref.params["peer"] > 0.3  # smooth values: the neighbours' mean carries the level
    # the design frame holds the neighbour peer means, audit-ready
    des = rep.design("D")
    nb = des[(des["peer_group"] == "neighbours") & (des["lag"] == 1) & (des["indicator"] == "X1")]
    peer = panel.oj.peer_mean(NEIGHBOURS, lag=1, weights=weights).sel(indicator="X1")
    want = peer.sel(municipality=nb["municipality"].to_xarray(), year=nb["year"].to_xarray()).values
    np.testing.assert_allclose(nb["peer_mean"].to_numpy(), want, equal_nan=True)
    # islands have no neighbours, so no peer value
    gotland = nb.loc[nb["municipality"] == "0980", "peer_mean"]
    assert len(gotland) == len(YEARS) and gotland.isna().all()


def test_neighbour_options_are_checked(panel):
    with pytest.raises(ParameterError, match="neighbour_weights"):
        rir2021(panel, mode="improved", indicators=MAPPING, groupings={"nb": NEIGHBOURS}, neighbour_weights="km")
    rep = rir2021(panel, mode="improved", indicators=MAPPING, groupings={"nb": NEIGHBOURS})
    c = rep.tables["C"]
    assert "nb" not in set(c["peer_group"]) and "nb" in set(rep.tables["D"]["peer_group"])
