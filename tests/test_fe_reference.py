"""ojpanel's fixed-effects SEs against linearmodels (live) and statsmodels/pyfixest (stored CSV).

Tolerances: coefficients 1e-8 absolute; standard errors 1e-6 relative; p-values 1e-6 absolute.
The CSV files come from ``tests/reference/make_fe_reference.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ojpanel.models.fe import fit_panel

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return pd.read_csv(REF / "fe_reference_data.csv", dtype={"municipality": str, "county": str})


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return pd.read_csv(REF / "fe_reference_values.csv")


def _spec(case: str) -> dict:
    head, _, extra = case.partition("|")
    cov, _, cl = head.partition(":")
    kw: dict = {"cov": cov}
    if cov == "twoway":
        kw["cluster"] = tuple(cl.split("+"))
    elif cl:
        kw["cluster"] = cl
    if extra == "entity-only":
        kw["time_effects"] = False
    return kw


def _check(res, rows: pd.DataFrame) -> None:
    for _, r in rows.iterrows():
        assert res.params[r.term] == pytest.approx(r.estimate, abs=1e-8)
        assert res.std_errors[r.term] == pytest.approx(r.std_error, rel=1e-6)
        assert res.pvalues[r.term] == pytest.approx(r.p_value, rel=1e-5, abs=1e-10)


@pytest.mark.parametrize("package", ["statsmodels", "pyfixest"])
def test_against_stored_reference(data, ref, package):
    sub = ref[ref.package == package]
    assert len(sub) >= 10
    for case, rows in sub.groupby("case"):
        res = fit_panel(data, "y", ["x", "z"], convention=package, **_spec(case))
        _check(res, rows)


CASES = [
    dict(cov="unadjusted"),
    dict(cov="robust"),
    dict(cov="clustered", cluster="municipality"),
    dict(cov="clustered", cluster="county"),
    dict(cov="clustered", cluster="municipality", time_effects=False),
    dict(cov="clustered", cluster="county", time_effects=False, other_effects=[("county", "year")]),
    dict(cov="twoway", cluster=("municipality", "year")),
    dict(cov="twoway", cluster=("county", "year")),
]


@pytest.mark.parametrize("kw", CASES, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_vectorised_equals_linearmodels(data, kw):
    a = fit_panel(data, "y", ["x", "z"], **kw)
    b = fit_panel(data, "y", ["x", "z"], engine="linearmodels", **kw)
    np.testing.assert_allclose(a.params, b.params, atol=1e-8, rtol=0)
    np.testing.assert_allclose(a.std_errors, b.std_errors, rtol=1e-6)
    np.testing.assert_allclose(a.pvalues, b.pvalues, atol=1e-8)
    assert a.nobs == b.nobs == 330
    assert a.df_resid == b.df_resid


def test_conventions_differ_and_are_labelled(data):
    se = {
        c: fit_panel(data, "y", "x", cluster="county", convention=c).std_errors["x"]
        for c in ("linearmodels", "stata", "areg", "pyfixest", "statsmodels", "none")
    }
    assert len({round(v, 10) for v in se.values()}) == 4
    # municipality and year effects are connected here, so areg's count is the exact rank
    assert se["areg"] == pytest.approx(se["statsmodels"], rel=1e-12)
    # no singletons: pyfixest's defaults are Stata's rule
    assert se["pyfixest"] == pytest.approx(se["stata"], rel=1e-12)
    # closed forms (n=330, k=1, 8 county clusters; 60 municipality effects nested in the counties,
    # 6 year effects that are not): xtreg/reghdfe count k + 6, areg k + 65, PanelOLS n/(n−k−65)
    n, k, G, T, d = 330, 1, 8, 6, 65
    none = se["none"] ** 2
    assert se["stata"] ** 2 / none == pytest.approx(G / (G - 1) * (n - 1) / (n - k - T), rel=1e-10)
    assert se["areg"] ** 2 / none == pytest.approx(G / (G - 1) * (n - 1) / (n - k - d), rel=1e-10)
    assert se["linearmodels"] ** 2 / none == pytest.approx(n / (n - d - k), rel=1e-10)


def test_redundant_year_effects_with_county_by_year(data):
    """Year effects are redundant given county×year: estimates never change, and under the exact-
    rank convention (statsmodels) neither do the SEs; linearmodels' count ignores redundancy."""
    a = fit_panel(
        data,
        "y",
        ["x", "z"],
        other_effects=[("county", "year")],
        cluster="county",
        convention="statsmodels",
    )
    b = fit_panel(
        data,
        "y",
        ["x", "z"],
        time_effects=False,
        other_effects=[("county", "year")],
        cluster="county",
        convention="statsmodels",
    )
    np.testing.assert_allclose(a.params, b.params, atol=1e-8, rtol=0)
    np.testing.assert_allclose(a.std_errors, b.std_errors, rtol=1e-10)
    lm = fit_panel(
        data,
        "y",
        ["x", "z"],
        time_effects=False,
        other_effects=[("county", "year")],
        cluster="county",
    )
    ref = fit_panel(
        data,
        "y",
        ["x", "z"],
        time_effects=False,
        other_effects=[("county", "year")],
        cluster="county",
        engine="linearmodels",
    )
    np.testing.assert_allclose(lm.std_errors, ref.std_errors, rtol=1e-6)
    # 60 municipalities + 48 county×year cells: rank 100 (one redundancy per county), count 107
    n, k = 330, 2
    ratio = (lm.std_errors / b.std_errors) ** 2
    expected = (n / (n - 107 - k)) / (8 / 7 * (n - 1) / (n - 100 - k))
    np.testing.assert_allclose(ratio, expected, rtol=1e-10)
