"""Batched fixed-effects fits over indicators, results objects and comparison tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ojpanel.core.tidy import TIDY_COLUMNS
from ojpanel.errors import DataError, ModelError, ParameterError
from ojpanel.models import compare, fit_indicators, fit_panel
from ojpanel.simulate.panel import simulate_panel


@pytest.fixture(scope="module")
def panel():
    ds = simulate_panel(
        n_municipalities=120,
        n_counties=12,
        years=range(2016, 2021),
        n_indicators=5,
        sigma_county_year=0.4,
        missing=0.08,
        seed=4,
    )
    return ds


@pytest.mark.parametrize(
    "kw",
    [
        dict(cov="clustered", cluster="municipality"),
        dict(cov="clustered", cluster="county"),
        dict(cov="twoway", cluster=("municipality", "year")),
        dict(
            cov="clustered",
            cluster="county",
            time_effects=False,
            other_effects=[("county", "year")],
        ),
        dict(cov="robust", cluster=None),
    ],
    ids=["mun", "county", "twoway", "countyxyear", "robust"],
)
def test_batch_over_indicators_equals_linearmodels_loop(panel, kw):
    lag = panel["value"].shift(year=1)
    x2 = panel["value"].shift(year=2).fillna(0.0) * 0 + np.random.default_rng(0).normal(
        size=panel["value"].shape
    )
    regs = {"lag": lag, "z": x2}
    a = fit_indicators(panel["value"], regs, **kw)
    b = fit_indicators(panel["value"], regs, engine="linearmodels", **kw)
    np.testing.assert_allclose(a.params, b.params, atol=1e-8, rtol=0)
    np.testing.assert_allclose(a.std_errors, b.std_errors, rtol=1e-6)
    np.testing.assert_allclose(a.pvalues, b.pvalues, atol=1e-8)
    assert (a.nobs == b.nobs).all()


def test_results_api(panel):
    res = fit_indicators(panel["value"], {"lag": panel["value"].shift(year=1)}, cluster="county")
    one = res["SIM001"]
    assert one.params.index.tolist() == ["lag"]
    ci = one.conf_int(0.9)
    assert (ci["lower"] < one.params).all() and (ci["upper"] > one.params).all()
    assert one.pvalues.iloc[0] == pytest.approx(
        2 * (1 - __import__("scipy").stats.t.cdf(abs(one.tstats.iloc[0]), one.df_resid))
    )
    tidy = res.to_frame(analysis="peer", mode="improved")
    assert list(tidy.columns[: len(TIDY_COLUMNS)]) == TIDY_COLUMNS and len(tidy) == 5
    assert set(tidy["mode"]) == {"improved"}
    assert "Convention" in one.summary and "<table" in one._repr_html_()
    with pytest.raises(AttributeError):
        one.params = None  # read-only
    with pytest.raises(KeyError):
        res["nope"]


def test_compare_renders_markdown_latex_html(panel):
    df = panel["value"].sel(indicator="SIM000").to_dataframe().reset_index()
    df["lag"] = df.groupby("municipality")["value"].shift(1)
    r1 = fit_panel(df, "value", "lag", cluster="county")
    r2 = fit_panel(df, "value", "lag", cov="twoway", cluster=("county", "year"), convention="stata")
    c = compare({"county": r1, "two-way": r2})
    md = c.to_markdown()
    assert md.splitlines()[0] == "| | county | two-way |"
    assert f"{r1.params['lag']:.3f}" in md and f"({r1.std_errors['lag']:.3f})" in md
    assert r"\begin{tabular}" in c.to_latex() and "<table" in c.to_html()


def test_errors(panel):
    df = panel["value"].sel(indicator="SIM000").to_dataframe().reset_index()
    df["const_in_mun"] = df["municipality"].astype(int)
    with pytest.raises(ModelError, match="collinear|no variation"):
        fit_panel(df, "value", "const_in_mun", cluster="county")
    with pytest.raises(ParameterError, match="not found"):
        fit_panel(df, "value", "nope")
    with pytest.raises(ParameterError, match="cov must be"):
        fit_panel(df, "value", "year", cov="HC7")
    with pytest.raises(ParameterError, match="twoway"):
        fit_panel(df, "value", "year", cov="twoway", cluster="county")
    bad = df.copy()
    bad.loc[0, "county"] = None
    bad["x"] = np.arange(len(bad), dtype=float) ** 1.5
    with pytest.raises(DataError, match="missing values"):
        fit_panel(bad, "value", "x", cluster="county")
    with pytest.raises(ParameterError, match="at most two effects"):
        fit_panel(
            df.assign(x=np.arange(len(df)) % 7),
            "value",
            "x",
            other_effects=["county"],
            engine="linearmodels",
        )


def test_crv3_nested_closed_form():
    """CRV3 with (G−1)/G equals the leave-one-cluster-out jackknife computed by brute force."""
    rng = np.random.default_rng(1)
    N, T = 40, 4
    df = pd.DataFrame(
        {"municipality": np.repeat(np.arange(N), T), "year": np.tile(np.arange(T), N)}
    )
    df["county"] = np.repeat(rng.integers(0, 8, N), T)
    df["x"] = rng.normal(size=len(df))
    df["y"] = 0.3 * df["x"] + rng.normal(size=len(df))
    res = fit_panel(
        df, "y", "x", time_effects=False, cov="crv3", cluster="county", convention="linearmodels"
    )
    full = fit_panel(df, "y", "x", time_effects=False, cov="unadjusted").params["x"]
    G = df["county"].nunique()
    jack = [
        fit_panel(df[df.county != g], "y", "x", time_effects=False, cov="unadjusted").params["x"]
        for g in sorted(df.county.unique())
    ]
    v = (G - 1) / G * np.sum((np.array(jack) - full) ** 2)
    assert res.std_errors["x"] == pytest.approx(np.sqrt(v), rel=1e-10)


def _frame(panel) -> pd.DataFrame:
    df = panel["value"].sel(indicator="SIM000").to_dataframe().reset_index()
    df["lag"] = df.groupby("municipality")["value"].shift(1)
    return df


@pytest.mark.parametrize("engine", ["vectorised", "linearmodels"])
def test_duplicate_keys_are_refused_with_the_keys(panel, engine):
    df = _frame(panel)
    dup = pd.concat([df, df.iloc[[3, 10]]], ignore_index=True)
    key = (str(df.loc[3, "municipality"]), str(df.loc[3, "year"]))
    with pytest.raises(DataError, match=r"2 \(municipality, year\) key\(s\) occur more than once") as e:
        fit_panel(dup, "value", "lag", cluster="county", engine=engine)
    assert f"({key[0]}, {key[1]}) ×2" in str(e.value)
    # another observation unit, named by the caller, is accepted
    other = dup.assign(copy=np.r_[np.zeros(len(df)), np.ones(2)])
    res = fit_panel(other, "value", "lag", cluster="county", keys=["municipality", "year", "copy"])
    assert res.nobs == int(dup[["value", "lag"]].notna().all(axis=1).sum())


def test_duplicate_labels_in_a_panel_are_refused(panel):
    v = panel["value"]
    twice = xr.concat([v, v.isel(municipality=[0])], dim="municipality")
    with pytest.raises(DataError, match="repeated 'municipality' labels"):
        fit_indicators(twice, {"lag": twice.shift(year=1)}, cluster="county")


def test_text_and_infinite_regressors_name_the_column(panel):
    df = _frame(panel)
    df["group"] = np.where(np.arange(len(df)) % 2, "a", "b")
    with pytest.raises(DataError, match="regressor 'group' is not numeric.*'a'"):
        fit_panel(df, "value", ["lag", "group"], cluster="county")
    bad = df.assign(lag=df["lag"].where(np.arange(len(df)) != 7, np.inf))
    with pytest.raises(DataError, match=r"regressor\(s\) 'lag' \(1\) have infinite values"):
        fit_panel(bad, "value", "lag", cluster="county")
    neg = df.assign(value=df["value"].where(np.arange(len(df)) != 5, -np.inf))
    with pytest.raises(DataError, match="outcome has 1 infinite"):
        fit_panel(neg, "value", "lag", cluster="county")
    lag = panel["value"].shift(year=1)
    with pytest.raises(DataError, match="'lag'.*infinite"):
        fit_indicators(panel["value"], {"lag": lag.where(lag < 1.5, np.inf)}, cluster="county")
    with pytest.raises(DataError, match="regressor 'txt' is not numeric"):
        fit_indicators(panel["value"], {"txt": lag.astype(str)}, cluster="county")


def test_two_way_variance_that_is_not_positive_semidefinite_warns():
    from ojpanel.errors import CovarianceWarning

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"municipality": np.repeat(np.arange(6), 4), "year": np.tile(np.arange(4), 6)})
    df["x"] = rng.normal(size=len(df))
    df["y"] = rng.normal(size=len(df))
    with pytest.warns(CovarianceWarning, match="not positive semi-definite.*'y': x"):
        res = fit_panel(df, "y", "x", cov="twoway", cluster=("municipality", "year"))
    assert np.isnan(res.std_errors["x"]) and res.cov.loc["x", "x"] < 0


def test_vcov_recomputes_after_the_fit(panel):
    df = _frame(panel)
    res = fit_panel(df, "value", "lag", cluster="county", convention="stata")
    for cov, cluster, conv in [
        ("robust", None, "linearmodels"),
        ("clustered", "municipality", "pyfixest"),
        ("twoway", ("municipality", "year"), "stata"),
        ("crv3", "county", "stata"),
    ]:
        direct = fit_panel(df, "value", "lag", cov=cov, cluster=cluster, convention=conv)
        again = res.vcov(cov, cluster=cluster, convention=conv)
        assert again.params.equals(res.params)
        np.testing.assert_allclose(again.std_errors, direct.std_errors, rtol=1e-12)
        assert (again.cov_type, again.convention, again.df_resid) == (cov, conv, direct.df_resid)
    batch = fit_indicators(panel["value"], {"lag": panel["value"].shift(year=1)}, cluster="county")
    np.testing.assert_allclose(
        batch.vcov("clustered", cluster="municipality").std_errors,
        fit_indicators(panel["value"], {"lag": panel["value"].shift(year=1)}).std_errors,
        rtol=1e-12,
    )
    with pytest.raises(ParameterError, match="needs 2 cluster"):
        res.vcov("twoway")
