"""Building the panel from real embedded data and from tidy frames; the contract's promises."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import ojpanel
from ojpanel.data.reference import MUNICIPALITY_COLUMNS, load_municipalities
from ojpanel.errors import DataError, ParameterError


def test_dims_and_contract(embedded_panel):
    ds = embedded_panel
    assert ds["value"].dims == ("municipality", "indicator", "year")
    assert ds.sizes["municipality"] == 290
    assert ds["year"].values.tolist() == list(range(2014, 2023))
    assert ds["direction"].dtype == np.int64
    assert set(ds["kind"].values) <= {"structure", "process", "result", "background"}
    for key in ("data_source", "snapshot_date", "created", "ojpanel_version", "content_hash", "library_versions"):
        assert key in ds.attrs
    assert ds.attrs["snapshot_date"] == "2024-08-30"
    assert ds.attrs["citation_raw_values"] == "Källa: Kolada"
    ojpanel.validate(ds)


def test_municipality_coords_equal_reference(embedded_panel):
    ref = load_municipalities().set_index("municipality")
    ds = embedded_panel
    assert ds["municipality"].values.tolist() == ref.index.tolist()
    for col in MUNICIPALITY_COLUMNS:
        assert ds[col].values.tolist() == ref[col].tolist(), col
    counts = pd.Series(ds["kommungrupp_2017"].values).value_counts().sort_index().tolist()
    assert counts == [3, 43, 21, 52, 35, 29, 52, 40, 15]


def test_values_equal_raw_rows(embedded_panel, raw_values):
    ds = embedded_panel
    raw = raw_values[(raw_values["gender"] == "T") & ~raw_values["municipality"].str.startswith("00")
                     & raw_values["year"].between(2014, 2022)]
    sample = raw.sample(2000, random_state=1)
    got = ds["value"].sel(
        municipality=xr_idx(sample["municipality"]), indicator=xr_idx(sample["kpi"]), year=xr_idx(sample["year"])
    ).values
    exc = ojpanel.panel.exceptions.load_value_exceptions()
    expected = sample["value"].to_numpy().copy()
    for _, e in exc.iterrows():  # the two documented impossible values are missing in the panel
        hit = ((sample["kpi"] == e["kpi"]) & (sample["municipality"] == e["municipality"])
               & (sample["year"] == e["year"])).to_numpy()
        expected[hit] = np.nan
    np.testing.assert_array_equal(got, expected)
    # every raw cell arrives: non-missing count equals raw rows minus documented exceptions
    applied = json.loads(ds.attrs["value_exceptions_applied"])
    in_range = [a for a in applied if 2014 <= a["year"] <= 2022]
    assert int(ds["value"].notnull().sum()) == len(raw) - len(in_range)


def xr_idx(s):
    import xarray as xr

    return xr.DataArray(s.to_numpy(), dims="row")


def test_national_average_equals_pandas_groupby(embedded_panel, raw_values):
    ds = embedded_panel
    raw = raw_values[(raw_values["gender"] == "T") & ~raw_values["municipality"].str.startswith("00")
                     & raw_values["year"].between(2014, 2022)]
    exc = ojpanel.panel.exceptions.load_value_exceptions()
    raw = raw.merge(exc[["kpi", "municipality", "year", "gender"]].assign(_x=1), how="left",
                    on=["kpi", "municipality", "year", "gender"])
    raw = raw[raw["_x"].isna()]
    expected = raw.groupby(["kpi", "year"])["value"].mean()
    nm = ds.oj.national_mean()["mean"].to_series().dropna()
    nm.index = nm.index.set_names(["kpi", "year"])
    pd.testing.assert_series_equal(nm.sort_index(), expected.sort_index(), check_names=False,
                                   check_index_type=False, rtol=1e-12)


def test_value_exceptions_are_reported():
    ds = ojpanel.build_panel(kpis=["U23520"], years=range(2012, 2015))
    applied = json.loads(ds.attrs["value_exceptions_applied"])
    assert [(a["kpi"], a["municipality"], a["year"]) for a in applied] == [("U23520", "0821", 2013)]
    assert np.isnan(ds["value"].sel(municipality="0821", indicator="U23520", year=2013))


def test_regions_dropped_on_purpose_and_reported():
    frame = pd.DataFrame({"kpi": ["N00980"] * 3, "municipality": ["0000", "0001", "0114"],
                          "year": [2020] * 3, "gender": ["T"] * 3, "value": [1.0, 2.0, 3.0]})
    ds = ojpanel.from_tidy(frame)
    report = json.loads(ds.attrs["build_report"])
    assert report["region_rows_dropped"] == 2 and report["rows_kept"] == 1
    assert float(ds["value"].sel(municipality="0114").squeeze()) == 3.0


def test_filters_and_gender_dimension():
    ds = ojpanel.build_panel(areas=["äldreomsorg"], kinds=["result"], years=[2018, 2019])
    assert set(ds["area"].values) == {"äldreomsorg"} and set(ds["kind"].values) == {"result"}
    g = ojpanel.build_panel(kpis=["U21468"], years=[2019], gender=None)
    assert g["value"].dims == ("municipality", "indicator", "year", "gender")
    assert g["gender"].values.tolist() == ["T", "K", "M"]
    with pytest.raises(ParameterError, match=r"unknown area\(s\) \['elderly'\]"):
        ojpanel.build_panel(areas=["elderly"])
    with pytest.raises(ParameterError, match=r"KPI\(s\) \['X99999'\] have no values"):
        ojpanel.build_panel(kpis=["X99999"])
    with pytest.raises(ParameterError, match="gender must be"):
        ojpanel.build_panel(kpis=["U21468"], gender="X")


def test_year_axis_has_no_gaps():
    frame = pd.DataFrame({"kpi": ["N00980"] * 2, "municipality": ["0114", "0114"], "year": [2016, 2019],
                          "gender": ["T", "T"], "value": [1.0, 2.0]})
    ds = ojpanel.from_tidy(frame)
    assert ds["year"].values.tolist() == [2016, 2017, 2018, 2019]


def test_integer_codes_are_padded_and_counts_become_n():
    frame = pd.DataFrame({"kpi": ["N00980"], "municipality": [114], "year": [2020], "gender": ["T"],
                          "value": [1.5], "count": [40]})
    ds = ojpanel.from_tidy(frame)
    assert float(ds["n"].sel(municipality="0114").squeeze()) == 40.0


def test_unknown_kpi_gets_explicit_no_direction():
    frame = pd.DataFrame({"kpi": ["Z00001"], "municipality": ["0114"], "year": [2020], "gender": ["T"], "value": [1.0]})
    ds = ojpanel.from_tidy(frame)
    assert int(ds["direction"].sel(indicator="Z00001")) == 0
    assert str(ds["kind"].sel(indicator="Z00001").values) == "background"


def test_harmonised_metadata_must_cover_every_indicator():
    frame = pd.DataFrame({"kpi": ["v1", "v2"], "municipality": ["0114"] * 2, "year": [2020] * 2,
                          "gender": ["T"] * 2, "value": [1.0, 0.0]})
    meta = pd.DataFrame({"id": ["v1"], "title": ["x"], "area": ["LSS"], "kind": ["process"], "scale": ["binary"],
                         "direction": [1], "source": ["kommunenkät"]})
    with pytest.raises(DataError, match=r"no row for \['v2'\]"):
        ojpanel.from_tidy(frame, meta)
    meta2 = pd.concat([meta, meta.assign(id="v2")])
    ds = ojpanel.from_tidy(frame, meta2)
    assert ds["scale"].values.tolist() == ["binary", "binary"]


def test_build_is_deterministic():
    a = ojpanel.build_panel(kpis=["U21468", "N00980"], years=range(2016, 2021))
    b = ojpanel.build_panel(kpis=["U21468", "N00980"], years=range(2016, 2021))
    assert a.attrs["content_hash"] == b.attrs["content_hash"]
