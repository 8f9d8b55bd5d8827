"""The ds.oj accessor: selection, long frames, peer groups, coverage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import ojpanel
from ojpanel import peers
from ojpanel.errors import ParameterError


@pytest.fixture(scope="module")
def ds():
    return ojpanel.build_panel(areas=["äldreomsorg", "LSS"], years=range(2016, 2021))


def test_select(ds):
    sub = ds.oj.select(area="LSS", kind=["result", "process"], years=[2018, 2019])
    assert set(sub["area"].values) == {"LSS"} and sub["year"].values.tolist() == [2018, 2019]
    with pytest.raises(ParameterError, match=r"no indicator has area \['LS'\]"):
        ds.oj.select(area="LS")
    with pytest.raises(ParameterError, match=r"years \[2030\] are not in the panel"):
        ds.oj.select(years=2030)
    with pytest.raises(ParameterError, match=r"indicators \['nope'\] are not in the panel"):
        ds.oj.select(indicators="nope")


def test_directional_lists_what_it_leaves_out(ds):
    d = ds.oj.directional()
    excluded = json.loads(d.attrs["excluded_no_direction"])
    assert (d["direction"] != 0).all()
    assert len(excluded) + d.sizes["indicator"] == ds.sizes["indicator"] and excluded


def test_to_frame_long_with_group_coords(ds):
    f = ds.oj.to_frame()
    assert list(f.columns[:4]) == ["municipality", "indicator", "year", "value"]
    for c in ("county", "kommungrupp_2017", "kommungrupp_2023", "area", "direction", "title"):
        assert c in f.columns
    assert len(f) == int(ds["value"].notnull().sum())
    row = f.iloc[123]
    assert row["value"] == float(ds["value"].sel(municipality=row["municipality"], indicator=row["indicator"],
                                                 year=row["year"]))
    assert row["county"] == row["municipality"][:2]


def test_groupings_and_user_grouping(ds):
    assert ds.oj.groupings == ["county", "kommungrupp_2011", "kommungrupp_2017", "kommungrupp_2023"]
    g = ds.oj.add_grouping({"0114": "x", "0115": "x", "0117": "y"}, "socio")
    assert "socio" in g.oj.groupings
    assert g["socio"].attrs["municipalities_covered"] == 3
    pm = g.oj.peer_mean("socio")
    v = g["value"]
    np.testing.assert_allclose(pm.sel(municipality="0114").values, v.sel(municipality="0115").values)
    assert np.isnan(pm.sel(municipality="0117").values).all()  # alone in its group: no peers
    with pytest.raises(ParameterError, match="unknown peer group 'lan'"):
        ds.oj.peer_mean("lan")


def test_peer_mean_is_lagged_leave_one_out(ds):
    pm = ds.oj.peer_mean("county", lag=1).sel(year=2019)
    v = ds["value"].sel(year=2018)
    kpi = str(ds["indicator"].values[np.argmax(ds["value"].notnull().sum(["municipality", "year"]).values)])
    f = pd.DataFrame({"m": ds["municipality"].values, "c": ds["county"].values,
                      "v": v.sel(indicator=kpi).values})
    m = "0114"
    others = f[(f["c"] == f.loc[f["m"] == m, "c"].item()) & (f["m"] != m)]["v"].mean()
    assert float(pm.sel(indicator=kpi, municipality=m)) == pytest.approx(others, rel=1e-12)
    np.testing.assert_allclose(peers.lagged(ds["value"], 1).sel(year=2019).values, v.values)


def test_coverage_and_describe(ds):
    cov = ds.oj.coverage()
    assert cov.dims == ("indicator", "year") and float(cov.max()) <= 1.0
    text = ds.oj.describe()
    assert "290 municipalities" in text and "Källa: Kolada" in text
