"""Reference tables: municipalities, counties, kommungrupper, user groupings."""

from __future__ import annotations

import pandas as pd
import pytest

from ojpanel.data.reference import (
    KOMMUNGRUPP_2017_COUNTS,
    is_region_code,
    load_grouping,
    load_municipalities,
)
from ojpanel.errors import DataError, ParameterError


def test_290_municipalities_21_counties():
    m = load_municipalities()
    assert len(m) == 290 and m["municipality"].is_unique
    assert m["county"].nunique() == 21
    assert (m["municipality"].str[:2] == m["county"]).all()


def test_kommungrupp_2017_counts_match_skr():
    counts = load_municipalities()["kommungrupp_2017"].value_counts().to_dict()
    assert counts == KOMMUNGRUPP_2017_COUNTS
    assert list(KOMMUNGRUPP_2017_COUNTS.values()) == [3, 43, 21, 52, 35, 29, 52, 40, 15]


def test_kommungrupp_2023_and_2011_counts():
    m = load_municipalities()
    c23 = m["kommungrupp_2023"].value_counts().sort_index().tolist()
    assert c23 == [3, 43, 23, 63, 24, 27, 51, 35, 21]
    c11 = m["kommungrupp_2011"].astype(int).value_counts().sort_index().tolist()
    assert c11 == [3, 38, 31, 22, 51, 20, 54, 20, 35, 16]
    assert (m["kommungrupp_2017"] != m["kommungrupp_2023"]).sum() == 33


def test_region_codes():
    assert is_region_code("0000") and is_region_code("0001") and not is_region_code("0114")


def test_grouping_from_mapping_and_file(tmp_path):
    g = load_grouping({"0114": "a", "0115": "b"}, "socio")
    assert g.to_dict() == {"0114": "a", "0115": "b"} and g.name == "socio"
    f = tmp_path / "g.csv"
    pd.DataFrame({"municipality": ["0114", "0180"], "group": ["x", "y"]}).to_csv(f, index=False)
    assert load_grouping(f, "socio").to_dict() == {"0114": "x", "0180": "y"}


def test_grouping_errors_list_every_problem(tmp_path):
    f = tmp_path / "g.csv"
    pd.DataFrame({"municipality": ["0114", "0114", "9999", "0180"], "group": ["x", "y", "z", ""]}).to_csv(f, index=False)
    with pytest.raises(DataError) as e:
        load_grouping(f, "socio")
    msg = str(e.value)
    assert "unknown municipality codes ['9999']" in msg
    assert "listed more than once: ['0114']" in msg
    assert "empty group labels for ['0180']" in msg
    with pytest.raises(DataError, match="needs columns 'municipality' and 'group'"):
        load_grouping(pd.DataFrame({"kommun": ["0114"], "grupp": ["a"]}), "socio")
    with pytest.raises(ParameterError, match="not a built-in coordinate"):
        load_grouping({"0114": "a"}, "county")
