"""Bad input gets one clear error listing every problem (exact messages)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ojpanel
from ojpanel.errors import PanelValidationError


def _frame(**cols):
    base = {"kpi": ["N00980", "N00980"], "municipality": ["0114", "0115"], "year": [2020, 2020],
            "gender": ["T", "T"], "value": ["1.0", "2.0"]}
    base.update(cols)
    return pd.DataFrame(base)


def _violations(frame):
    with pytest.raises(PanelValidationError) as e:
        ojpanel.from_tidy(frame, source="t.csv")
    return e.value.violations


def test_missing_columns():
    v = _violations(_frame().drop(columns=["gender"]))
    assert v == ["t.csv: missing required column(s) ['gender']; a tidy table needs kpi, municipality, year, "
                 "gender, value (optional: count, status)"]


def test_duplicate_keys_are_listed():
    v = _violations(_frame(municipality=["0114", "0114"]))
    assert v == ["t.csv: 1 duplicate (kpi, municipality, year, gender) key(s): ['N00980/0114/2020/T']"]


def test_unknown_municipality_codes_are_listed():
    v = _violations(_frame(municipality=["9999", "0115"]))
    assert v == ["t.csv: 1 unknown municipality code(s) (use 4-digit SCB codes; 0000 and 00xx are regions): ['9999']"]


def test_non_numeric_values_name_the_row():
    v = _violations(_frame(value=["1,5", "2.0"]))
    assert v == ["t.csv: 1 row(s) with a non-numeric value: line 2: kpi=N00980 municipality=0114 year=2020 value='1,5'"]


def test_all_problems_in_one_error():
    v = _violations(_frame(municipality=["9999", "9999"], value=["x", "2"], year=["2020", "20x0"], gender=["T", "Q"]))
    assert len(v) == 4
    assert any("non-integer year" in s for s in v) and any("non-numeric value" in s for s in v)
    assert any("unknown gender codes (use T, K or M): ['Q']" in s for s in v)
    assert any("unknown municipality code" in s for s in v)


def test_values_outside_declared_scale():
    frame = _frame(kpi=["U21468", "U21468"], value=["55", "140"])  # a share (%)
    with pytest.raises(PanelValidationError) as e:
        ojpanel.from_tidy(frame)
    assert e.value.violations == [
        "indicator U21468: 1 value(s) outside its declared scale 'share' (in [0, 100]), e.g. [140.0]; "
        "fix the data or the indicator's scale override"
    ]
    meta = pd.DataFrame({"id": ["b"], "title": ["x"], "area": ["LSS"], "kind": ["process"], "scale": ["binary"],
                         "direction": [1], "source": ["kommunenkät"]})
    with pytest.raises(PanelValidationError, match=r"indicator b: 1 value\(s\) outside its declared scale 'binary' "
                                                   r"\(whole numbers in \[0, 1\]\), e.g. \[0.5\]"):
        ojpanel.from_tidy(_frame(kpi=["b", "b"], value=["1", "0.5"]), meta)


def test_proportion_is_a_declared_scale():
    """A fraction (0-1) is declared as 'proportion': accepted by the contract, bounded at 1."""
    meta = pd.DataFrame({"id": ["p"], "title": ["x"], "area": ["LSS"], "kind": ["result"], "scale": ["proportion"],
                         "direction": [1], "source": ["kommunenkät"]})
    ds = ojpanel.from_tidy(_frame(kpi=["p", "p"], value=["0.25", "0.5"]), meta)
    assert ds["scale"].values.tolist() == ["proportion"]
    with pytest.raises(PanelValidationError, match=r"outside its declared scale 'proportion' \(in \[0, 1\]\)"):
        ojpanel.from_tidy(_frame(kpi=["p", "p"], value=["0.25", "25"]), meta)


def test_validate_on_datasets_lists_every_violation():
    ds = ojpanel.from_tidy(_frame())
    bad = ds.drop_vars("county_name").assign_coords(year=np.array([2020.0]))
    bad["direction"] = ("indicator", np.array([3]))
    with pytest.raises(PanelValidationError) as e:
        ojpanel.validate(bad)
    msg = str(e.value)
    assert "missing municipality coordinate 'county_name'" in msg
    assert "year labels must be integers, got dtype float64" in msg
    assert "direction must be -1, 0 or +1; found [3]" in msg
    assert msg.startswith("The panel violates the OJ panel contract (3 problem(s)):")


def test_validate_duplicates_and_unknown_codes_in_dataset():
    ds = ojpanel.from_tidy(_frame())
    codes = ds["municipality"].values.copy()
    codes[1] = "0114"
    codes[2] = "9999"
    bad = ds.assign_coords(municipality=codes)
    v = ojpanel.panel.violations(bad)
    assert "duplicate municipality labels (duplicate keys): ['0114']" in v
    assert "unknown municipality codes: ['9999'] (regions 0000/00xx are not municipalities)" in v
    assert any(s.startswith("county code must equal the first two digits") for s in v)
