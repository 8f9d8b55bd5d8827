"""RiR 2021:17 replication on a tiny hand-built panel (2 counties x 3 municipalities x 4 years).

Every peer variable, percentile flag and "improved" value is written out by hand below, and every
regression and ANOVA cell is compared with an independent computation (statsmodels OLS,
scipy.stats.f_oneway) on the same rows.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import xarray as xr
from scipy import stats

from ojpanel.config import KOLADA_CITATION, PROCESSED_SOURCE_NOTE
from ojpanel.core.stars import anova_stars, regression_stars
from ojpanel.errors import DataError, ModelError, ParameterError
from ojpanel.replication import read_oj_users, rir2021, write_rir2021
from ojpanel.replication.analyses import COLUMNS
from ojpanel.replication.engine import fit_slope, mean_test, one_way_anova

MUNIS = ["0101", "0102", "0103", "0201", "0202", "0203"]  # a1 a2 a3 | b1 b2 b3
COUNTY = ["01", "01", "01", "02", "02", "02"]
KG = ["A1", "B3", "C8", "A1", "B3", "C8"]
YEARS = [2016, 2017, 2018, 2019]
# X1: higher is better. Rows = municipalities, columns = years.
X1 = np.array(
    [
        [1, 2, 3, 4],
        [2, 2, 5, 4],
        [3, 5, 4, 6],
        [0, 1, 1, 2],
        [4, 3, 2, 2],
        [2, 4, 6, 5],
    ],
    dtype=float,
)
# X2: lower is better, one missing cell (0203, 2017).
X2 = np.array(
    [
        [5, 4, 4, 3],
        [6, 6, 5, 5],
        [3, 4, 2, 2],
        [7, 5, 6, 4],
        [2, 3, 3, 1],
        [4, np.nan, 3, 3],
    ],
)
# X3: direction unknown.
X3 = np.array(
    [
        [0.2, 0.4, 0.1, 0.5],
        [0.3, 0.3, 0.6, 0.7],
        [0.9, 0.5, 0.4, 0.2],
        [0.1, 0.8, 0.3, 0.6],
        [0.5, 0.2, 0.9, 0.1],
        [0.4, 0.6, 0.7, 0.8],
    ]
)
IND = {"X1": (X1, 1), "X2": (X2, -1), "X3": (X3, 0)}
MAPPING = pd.DataFrame(
    {
        "indicator": ["X1", "X2", "X3"],
        "area": ["barn och unga"] * 3,
        "indicator_group": ["Manualbaserade insatser", "Manualbaserade insatser", "ISU kön"],
        "label": ["Item one", "Item two", "Item three"],
    }
)
USERS = pd.DataFrame(
    {
        "municipality": MUNIS,
        "area": ["barn och unga"] * 6,
        "status": ["user", "user", "non_user", "user", "other", "non_user"],
    }
)


def hand_panel() -> xr.Dataset:
    vals = np.stack([IND[k][0] for k in IND], axis=1)  # (municipality, indicator, year)
    return xr.Dataset(
        {"value": (("municipality", "indicator", "year"), vals)},
        coords={
            "municipality": MUNIS,
            "indicator": list(IND),
            "year": YEARS,
            "county": ("municipality", COUNTY),
            "kommungrupp_2017": ("municipality", KG),
            "direction": ("indicator", [IND[k][1] for k in IND]),
            "area": ("indicator", ["barn och unga"] * 3),
        },
    )


@pytest.fixture(scope="module")
def rep():
    return rir2021(hand_panel(), oj_users=USERS, mode="both", indicators=MAPPING)


# ---------------------------------------------------------------- hand-computed peer variables
# Leave-one-out county means of X1 by year (mean of the two other municipalities of the county).
LOO_COUNTY_X1 = {
    2016: [2.5, 2.0, 1.5, 3.0, 1.0, 2.0],
    2017: [3.5, 3.5, 2.0, 3.5, 2.5, 2.0],
    2018: [4.5, 3.5, 4.0, 4.0, 3.5, 1.5],
    2019: [5.0, 5.0, 4.0, 3.5, 3.5, 2.0],
}
# 75th percentile of the six LOO means (linear interpolation at position 0.75 * 5 = 3.75):
# 2016: 2 + 0.75 * (2.5 - 2) = 2.375; 2017: 3.5 (a tie: nobody is strictly above);
# 2018: 4.0; 2019: 4 + 0.75 * (5 - 4) = 4.75.
FLAG_COUNTY_X1 = {
    2016: [1, 0, 0, 1, 0, 0],
    2017: [0, 0, 0, 0, 0, 0],
    2018: [1, 0, 0, 0, 0, 0],
    2019: [1, 1, 0, 0, 0, 0],
}
# "Improved" for X1 (higher is better), strictly better than t-k.
IMPROVED1_X1 = {
    2017: [1, 0, 1, 1, 0, 1],
    2018: [1, 1, 0, 0, 0, 1],
    2019: [1, 0, 1, 1, 0, 0],
}
IMPROVED2_X1 = {
    2018: [1, 1, 1, 1, 0, 1],
    2019: [1, 1, 1, 1, 0, 1],
}
# X2 is lower-is-better: improved = value fell. 0203 has no 2017 value.
IMPROVED1_X2 = {
    2017: [1, 0, 0, 1, 0, np.nan],
    2018: [0, 1, 1, 0, 0, np.nan],
    2019: [1, 0, 0, 1, 1, 0],
}


def _design(rep, indicator, group, lag):
    d = rep.design("D")
    d = d[(d["indicator"] == indicator) & (d["peer_group"] == group) & (d["lag"] == lag)]
    return d.set_index(["year", "municipality"]).sort_index()


def test_loo_means_and_flags_by_hand(rep):
    d = _design(rep, "X1", "county", 1)
    for t in (2017, 2018, 2019):
        got = d.loc[t].reindex(MUNIS)
        np.testing.assert_allclose(got["peer_mean"], LOO_COUNTY_X1[t - 1], atol=1e-12)
        np.testing.assert_array_equal(got["peer_top_quartile"], FLAG_COUNTY_X1[t - 1])
        np.testing.assert_array_equal(got["improved"], IMPROVED1_X1[t])
        np.testing.assert_array_equal(got["level"], X1[:, YEARS.index(t)])
    # 2016 has no t-1: peer variables and improvement are missing there.
    assert d.loc[2016][["peer_mean", "peer_top_quartile", "improved"]].isna().all().all()
    d2 = _design(rep, "X1", "county", 2)
    for t in (2018, 2019):
        got = d2.loc[t].reindex(MUNIS)
        np.testing.assert_allclose(got["peer_mean"], LOO_COUNTY_X1[t - 2], atol=1e-12)
        np.testing.assert_array_equal(got["peer_top_quartile"], FLAG_COUNTY_X1[t - 2])
        np.testing.assert_array_equal(got["improved"], IMPROVED2_X1[t])


def test_kommungrupp_loo_is_the_other_member(rep):
    # Each kommungrupp has one municipality per county, so the LOO mean is the partner's value.
    partner = [3, 4, 5, 0, 1, 2]
    d = _design(rep, "X1", "kommungrupp", 1)
    for t in (2017, 2018, 2019):
        got = d.loc[t].reindex(MUNIS)["peer_mean"].to_numpy()
        np.testing.assert_allclose(got, X1[partner, YEARS.index(t - 1)])


def test_improved_lower_is_better_and_missing(rep):
    d = _design(rep, "X2", "county", 1)
    for t, exp in IMPROVED1_X2.items():
        np.testing.assert_array_equal(d.loc[t].reindex(MUNIS)["improved"], exp)
    # LOO county mean for 0201 in 2017 uses only 0202 (0203 is missing): 3.0.
    assert d.loc[(2018, "0201"), "peer_mean"] == pytest.approx(3.0)
    # 0203 itself still gets a peer mean although its own value is missing.
    assert d.loc[(2018, "0203"), "peer_mean"] == pytest.approx((5 + 3) / 2)


def test_unknown_direction_skips_improved(rep):
    d = rep.tables["D"]
    assert set(d[d["indicator"] == "X3"]["outcome"]) == {"level"}
    assert any("X3" in s and "unknown direction" in s for s in rep.skipped)
    assert rep.design("D").query("indicator == 'X3'")["improved"].isna().all()


# ---------------------------------------------------------------- regressions vs statsmodels
def _hand_rows(indicator, group, lag, outcome, sample):
    """Rows of the regression built from the hand tables (independent of the package)."""
    y_tab = {"X1": X1, "X2": X2}[indicator]
    if group != "county" or indicator != "X1":
        return None
    rows = []
    first = 2016 + lag
    for t in range(first, 2020):
        for m, code in enumerate(MUNIS):
            if sample == "oj_users" and USERS.set_index("municipality").loc[code, "status"] != "user":
                continue
            flag = FLAG_COUNTY_X1[t - lag][m]
            if outcome == "level":
                y = y_tab[m, YEARS.index(t)]
            else:
                y = (IMPROVED1_X1 if lag == 1 else IMPROVED2_X1)[t][m]
            rows.append((y, flag, t, COUNTY[m], LOO_COUNTY_X1[t - lag][m]))
    return pd.DataFrame(rows, columns=["y", "flag", "year", "county", "loo"])


@pytest.mark.parametrize("lag", [1, 2])
@pytest.mark.parametrize("outcome", ["level", "improved"])
@pytest.mark.parametrize("sample", ["all", "oj_users"])
def test_d_cells_equal_statsmodels_on_hand_rows(rep, lag, outcome, sample):
    df = _hand_rows("X1", "county", lag, outcome, sample)
    t = rep.tables["D"]
    sel = (t["indicator"] == "X1") & (t["peer_group"] == "county") & (t["lag"] == lag) & (
        t["outcome"] == outcome
    ) & (t["sample"] == sample)
    # Faithful: plain OLS with a constant.
    cell = t[sel & (t["mode"] == "faithful") & (t["term"] == "peer_top_quartile")]
    assert len(cell) == 1
    cell = cell.iloc[0]
    if df["flag"].nunique() < 2 or df["y"].nunique() < 2:
        # No variation in the regressor or the outcome: reported as not estimable.
        assert np.isnan(cell["estimate"]) and cell["stars"] == ""
        assert any("not estimable" in s for s in rep.skipped)
        return
    ref = sm.OLS(df["y"].astype(float), sm.add_constant(df["flag"].astype(float))).fit()
    assert cell["estimate"] == pytest.approx(ref.params["flag"], abs=1e-10)
    assert cell["std_error"] == pytest.approx(ref.bse["flag"], rel=1e-8)
    assert cell["p_value"] == pytest.approx(ref.pvalues["flag"], rel=1e-8, abs=1e-14)
    assert cell["n_obs"] == len(df)
    assert cell["stars"] == regression_stars(ref.params["flag"], ref.pvalues["flag"])
    assert cell["period"] == f"{2016 + lag}-2019"
    # Improved: year effects, county-clustered SEs (CR1, t with G-1 df), binary and continuous.
    for term, col in (("peer_top_quartile", "flag"), ("peer_mean", "loo")):
        cell = t[sel & (t["mode"] == "improved") & (t["term"] == term)].iloc[0]
        X = pd.get_dummies(df["year"], prefix="y", drop_first=True, dtype=float)
        X.insert(0, col, df[col].astype(float))
        X = sm.add_constant(X)
        if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
            assert np.isnan(cell["estimate"])
            continue
        with np.errstate(invalid="ignore"):
            ref = sm.OLS(df["y"].astype(float), X).fit(
                cov_type="cluster", cov_kwds={"groups": pd.factorize(df["county"])[0]}, use_t=True
            )
            bse = np.sqrt(np.clip(np.diag(ref.cov_params()), 0, None))
        ref_bse = pd.Series(bse, index=X.columns)
        assert cell["estimate"] == pytest.approx(ref.params[col], abs=1e-10)
        if not ref_bse[col] > 1e-6:
            # Two clusters with year effects can leave (numerically) no clustered variance.
            assert not cell["std_error"] > 1e-6
            continue
        assert cell["std_error"] == pytest.approx(ref_bse[col], rel=1e-8)
        assert cell["p_value"] == pytest.approx(ref.pvalues[col], rel=1e-8, abs=1e-14)


def test_d_tie_year_gives_no_flag_variation_in_single_year(rep):
    # Pooled over 2017-2019 the t-1 flag varies (2016 and 2018 have flagged municipalities).
    d = rep.tables["D"]
    cell = d[(d["indicator"] == "X1") & (d["peer_group"] == "county") & (d["lag"] == 1)
             & (d["outcome"] == "level") & (d["sample"] == "all") & (d["mode"] == "faithful")]
    assert cell["estimate"].notna().all()
    assert int(cell["n_obs"].iloc[0]) == 18
    assert int(cell["n_municipalities"].iloc[0]) == 6


def test_all_d_cells_equal_statsmodels_on_design_rows(rep):
    # Every D cell (all indicators, groups, lags, outcomes, samples, modes) against statsmodels on
    # the rows of the audited design frame.
    des = rep.design("D")
    users = set(USERS.query("status == 'user'")["municipality"])
    county = dict(zip(MUNIS, COUNTY, strict=True))
    t = rep.tables["D"]
    checked = 0
    for r in t.itertuples(index=False):
        d = des[(des["indicator"] == r.indicator) & (des["peer_group"] == r.peer_group) & (des["lag"] == r.lag)]
        d = d[(d["year"] >= 2016 + r.lag)]
        if r.sample == "oj_users":
            d = d[d["municipality"].isin(users)]
        xcol = "peer_top_quartile" if r.term == "peer_top_quartile" else "peer_mean"
        d = d[[r.outcome, xcol, "year", "municipality"]].dropna()
        assert r.n_obs == len(d)
        if np.isnan(r.estimate):
            continue
        if r.mode == "faithful":
            ref = sm.OLS(d[r.outcome], sm.add_constant(d[[xcol]])).fit()
        else:
            X = pd.get_dummies(d["year"], prefix="y", drop_first=True, dtype=float)
            X.insert(0, xcol, d[xcol])
            ref = sm.OLS(d[r.outcome], sm.add_constant(X)).fit(
                cov_type="cluster",
                cov_kwds={"groups": pd.factorize(d["municipality"].map(county))[0]},
                use_t=True,
            )
        assert r.estimate == pytest.approx(ref.params[xcol], abs=1e-9)
        ref_se = float(np.sqrt(max(ref.cov_params().loc[xcol, xcol], 0.0)))
        if ref_se > 1e-6:
            assert r.std_error == pytest.approx(ref_se, rel=1e-7)
        else:  # two clusters with year effects: no clustered variance left
            assert not r.std_error > 1e-6
        checked += 1
    assert checked >= 40


# ---------------------------------------------------------------- B and C
def test_b_cells_equal_statsmodels(rep):
    b = rep.tables["B"]
    status = USERS.set_index("municipality")["status"]
    keep = [i for i, m in enumerate(MUNIS) if status[m] in ("user", "non_user")]
    dummy = np.array([1.0 if status[MUNIS[i]] == "user" else 0.0 for i in keep])
    # Per-year cells.
    for j, year in enumerate(YEARS):
        cell = b[(b["indicator"] == "X1") & (b["period"] == str(year)) & (b["mode"] == "faithful")].iloc[0]
        ref = sm.OLS(X1[keep, j], sm.add_constant(dummy)).fit()
        assert cell["estimate"] == pytest.approx(ref.params[1], abs=1e-10)
        assert cell["std_error"] == pytest.approx(ref.bse[1], rel=1e-8)
        assert cell["n_obs"] == 5
    # Pooled cell.
    y = X1[keep].ravel()
    x = np.repeat(dummy, 4)
    cell = b[(b["indicator"] == "X1") & (b["period"] == "2016-2019") & (b["outcome"] == "level")
             & (b["mode"] == "faithful")].iloc[0]
    ref = sm.OLS(y, sm.add_constant(x)).fit()
    assert cell["estimate"] == pytest.approx(ref.params[1], abs=1e-10)
    assert cell["p_value"] == pytest.approx(ref.pvalues[1], rel=1e-8)
    # Change 2016 -> 2019.
    dlt = X1[keep, 3] - X1[keep, 0]
    cell = b[(b["indicator"] == "X1") & (b["outcome"] == "change") & (b["mode"] == "faithful")].iloc[0]
    ref = sm.OLS(dlt, sm.add_constant(dummy)).fit()
    assert cell["estimate"] == pytest.approx(ref.params[1], abs=1e-10)
    assert cell["period"] == "2016-2019"
    # Improved pooled: year effects + county clusters.
    cell = b[(b["indicator"] == "X1") & (b["period"] == "2016-2019") & (b["outcome"] == "level")
             & (b["mode"] == "improved")].iloc[0]
    yrs = np.tile(YEARS, len(keep))
    X = pd.get_dummies(pd.Series(yrs), drop_first=True, dtype=float)
    X.insert(0, "u", x)
    groups = np.repeat([COUNTY[i] for i in keep], 4)
    ref = sm.OLS(y, sm.add_constant(X)).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(groups)[0]}, use_t=True
    )
    assert cell["estimate"] == pytest.approx(ref.params["u"], abs=1e-10)
    assert cell["std_error"] == pytest.approx(ref.bse["u"], rel=1e-8)
    assert cell["p_value"] == pytest.approx(ref.pvalues["u"], rel=1e-8)


def test_c_cells_equal_scipy_f_oneway(rep):
    c = rep.tables["C"]
    for ind, (arr, _) in IND.items():
        for group, labels in (("county", COUNTY), ("kommungrupp", KG)):
            labs = np.array(labels)
            # Faithful pooled: all municipality-years.
            ok = ~np.isnan(arr)
            groups = [arr[:, :][ok & (labs[:, None] == g)] for g in sorted(set(labels))]
            ref = stats.f_oneway(*groups)
            cell = c[(c["indicator"] == ind) & (c["peer_group"] == group) & (c["period"] == "2016-2019")
                     & (c["mode"] == "faithful")].iloc[0]
            assert cell["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
            assert cell["p_value"] == pytest.approx(ref.pvalue, rel=1e-8)
            assert cell["stars"] == anova_stars(ref.pvalue)
            assert cell["n_obs"] == ok.sum()
            # Last year.
            last = arr[:, 3]
            ref = stats.f_oneway(*[last[labs == g] for g in sorted(set(labels))])
            cell = c[(c["indicator"] == ind) & (c["peer_group"] == group) & (c["period"] == "2019")
                     & (c["mode"] == "faithful")].iloc[0]
            assert cell["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
            # Improved pooled: municipality means.
            means = np.nanmean(arr, axis=1)
            ref = stats.f_oneway(*[means[labs == g] for g in sorted(set(labels))])
            cell = c[(c["indicator"] == ind) & (c["peer_group"] == group) & (c["period"] == "2016-2019")
                     & (c["mode"] == "improved")].iloc[0]
            assert cell["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
            assert cell["n_obs"] == 6


def test_a_is_unweighted_mean(rep):
    a = rep.tables["A"]
    cell = a[(a["indicator"] == "X2") & (a["period"] == "2017") & (a["mode"] == "faithful")].iloc[0]
    assert cell["estimate"] == pytest.approx(np.nanmean(X2[:, 1]))
    assert cell["n_obs"] == 5


# ---------------------------------------------------------------- engine edge cases
def test_engine_matches_statsmodels_and_scipy():
    rng = np.random.default_rng(1)
    y = rng.normal(size=40)
    x = rng.integers(0, 2, 40).astype(float)
    cl = np.repeat(np.arange(8), 5)
    f = fit_slope(y, x, cluster=cl)
    ref = sm.OLS(y, sm.add_constant(x)).fit(cov_type="cluster", cov_kwds={"groups": cl}, use_t=True)
    assert f.std_error == pytest.approx(ref.bse[1], rel=1e-10)
    assert f.p_value == pytest.approx(ref.pvalues[1], rel=1e-8)
    m = mean_test(y, cluster=cl)
    ref = sm.OLS(y, np.ones(40)).fit(cov_type="cluster", cov_kwds={"groups": cl}, use_t=True)
    assert m.std_error == pytest.approx(ref.bse[0], rel=1e-10)
    assert m.p_value == pytest.approx(ref.pvalues[0], rel=1e-8)
    m = mean_test(y)
    assert m.p_value == pytest.approx(stats.ttest_1samp(y, 0).pvalue, rel=1e-10)
    a = one_way_anova(y, cl)
    ref = stats.f_oneway(*[y[cl == g] for g in range(8)])
    assert a.f_value == pytest.approx(ref.statistic, rel=1e-12)
    assert a.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    with pytest.raises(ModelError, match="no variation"):
        fit_slope(y, np.ones(40))
    with pytest.raises(ModelError, match="two groups"):
        one_way_anova(y, np.zeros(40))


def test_stars():
    assert regression_stars(0.3, 0.01) == "++"
    assert regression_stars(0.3, 0.05) == "++"
    assert regression_stars(0.3, 0.07) == "+"
    assert regression_stars(-0.3, 0.07) == "-"
    assert regression_stars(-0.3, 0.001) == "--"
    assert regression_stars(-0.3, 0.2) == ""
    assert regression_stars(float("nan"), 0.01) == ""
    assert anova_stars(0.04) == "**" and anova_stars(0.09) == "*" and anova_stars(0.5) == ""


# ---------------------------------------------------------------- result object and outputs
def test_schema_and_modes(rep):
    for k, t in rep.tables.items():
        assert list(t.columns) == COLUMNS, k
        assert set(t["mode"]) <= {"faithful", "improved"}
    assert set(rep.tables["D"]["sample"]) == {"all", "oj_users"}
    assert set(rep.tables["D"]["peer_group"]) == {"county", "kommungrupp"}
    assert rep.n_regressions > 0 and rep.n_anovas > 0
    text = rep.summary
    assert "Ran:" in text and "Skipped:" in text and "Choices:" in text
    assert "75th percentile" in text
    assert "<strong>" in rep._repr_html_()
    with pytest.raises(AttributeError):
        rep.mode = "x"


def test_faithful_improved_notes(rep):
    ch = rep.changes
    assert set(ch["change"]) <= {"sign", "significance"}
    imp = [t for t in rep.rendered if t.name.endswith("_improved")]
    for t in imp:
        if "_peer_mean_" in t.name:
            assert t.notes[0].startswith("Improved mode only")
        else:
            assert t.notes[0].startswith("Compared with faithful mode"), t.name
    # Every changed cell is listed in the note of its table.
    d_changes = ch[(ch["analysis"] == "D") & (ch["peer_group"] == "county")]
    note = rep.table("D_barn-och-unga_county_improved").notes[0]
    if len(d_changes):
        assert f"{len(d_changes)} cell(s) change" in note
    else:
        assert "no cell changes" in note


def test_rendered_tables(rep):
    names = [t.name for t in rep.rendered]
    assert "D_barn-och-unga_county_faithful" in names
    assert "D_barn-och-unga_county_peer_mean_improved" in names
    t = rep.table("D_barn-och-unga_county_faithful")
    assert list(t.cells.columns)[:4] == ["all: level t-1", "all: level t-2", "all: improved t-1", "all: improved t-2"]
    assert t.cells.index.get_level_values(0)[0] == "Manualbaserade insatser"
    cell = rep.tables["D"].query(
        "indicator == 'X1' and peer_group == 'county' and lag == 1 and outcome == 'level' "
        "and sample == 'all' and mode == 'faithful'"
    ).iloc[0]
    assert t.cells.loc[("Manualbaserade insatser", "Item one (X1)"), "all: level t-1"] == cell["stars"]
    md, tex = t.markdown, t.latex
    assert "| **Manualbaserade insatser** |" in md and PROCESSED_SOURCE_NOTE in md
    assert "Kolada" not in md.replace(PROCESSED_SOURCE_NOTE, "")
    assert r"\begin{tabular}" in tex and r"\textit{Manualbaserade insatser}" in tex
    c = rep.table("C_barn-och-unga_faithful")
    assert list(c.cells.columns) == ["county, pooled", "county, last year", "kommungrupp, pooled", "kommungrupp, last year"]


def test_write_outputs(tmp_path):
    out = tmp_path / "rep"
    rep = write_rir2021(hand_panel(), out, oj_users=USERS, mode="faithful", indicators=MAPPING)
    for k in "ABCDE":
        f = out / "tables" / f"{k}.csv"
        assert f.is_file()
        back = pd.read_csv(f, dtype={"period": str})
        assert list(back.columns) == COLUMNS
        assert len(back) == len(rep.tables[k])
    assert (out / "tables" / "D_barn-och-unga_county_faithful.md").is_file()
    assert (out / "tables" / "D_barn-och-unga_county_faithful.tex").is_file()
    pngs = list((out / "figures").glob("*.png"))
    assert pngs and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "Skipped:" in report and PROCESSED_SOURCE_NOTE in report
    assert KOLADA_CITATION not in report
    meta = json.loads((out / "tables" / "metadata.json").read_text(encoding="utf-8"))
    assert meta["choices"]["D"] and meta["settings"]["years"] == [2016, 2020]
    # A second run in another mode replaces the first run's tables; other files stay.
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    write_rir2021(hand_panel(), out, oj_users=USERS, mode="improved", indicators=MAPPING)
    assert not (out / "tables" / "D_barn-och-unga_county_faithful.md").exists()
    assert (out / "tables" / "D_barn-och-unga_county_improved.md").is_file()
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_same_input_same_output():
    a = rir2021(hand_panel(), oj_users=USERS, mode="both", indicators=MAPPING).to_frame()
    b = rir2021(hand_panel(), oj_users=USERS, mode="both", indicators=MAPPING).to_frame()
    pd.testing.assert_frame_equal(a, b)


def test_skips_b_without_users_and_user_grouping():
    soc = {m: g for m, g in zip(MUNIS, ["s1", "s2", "s1", "s2", "s1", "s2"], strict=True)}
    rep = rir2021(hand_panel(), mode="faithful", indicators=MAPPING, groupings={"socioeconomic": soc})
    assert rep.tables["B"].empty
    assert any(s.startswith("B skipped: no OJ-users file") for s in rep.skipped)
    assert set(rep.tables["D"]["sample"]) == {"all"}
    assert "socioeconomic" in set(rep.tables["C"]["peer_group"])
    assert "socioeconomic" in set(rep.tables["D"]["peer_group"])


def test_bad_parameters():
    with pytest.raises(ParameterError, match="mode"):
        rir2021(hand_panel(), mode="fancy", indicators=MAPPING)
    with pytest.raises(DataError, match="none of the panel's indicators"):
        rir2021(hand_panel())
    with pytest.raises(DataError, match="not in the panel"):
        rir2021(hand_panel(), indicators=MAPPING, groupings={"soc": {"9999": "x"}})
    with pytest.raises(ParameterError, match="cluster"):
        rir2021(hand_panel(), mode="improved", indicators=MAPPING, cluster="region")


def test_elderly_surveys_stop_in_2019():
    # A user-survey KPI of the audit (U21447) with a 2020 value: 2020 is not used anywhere.
    vals = np.arange(6 * 5, dtype=float).reshape(6, 1, 5) % 7
    ds = xr.Dataset(
        {"value": (("municipality", "indicator", "year"), vals)},
        coords={
            "municipality": MUNIS, "indicator": ["U21447"], "year": [2016, 2017, 2018, 2019, 2020],
            "county": ("municipality", COUNTY), "kommungrupp_2017": ("municipality", KG),
            "direction": ("indicator", [1]), "area": ("indicator", ["äldreomsorg"]),
        },
    )
    rep = rir2021(ds, mode="faithful")
    assert rep.indicators["last_year"].tolist() == [2019]
    assert "2020" not in set(rep.tables["A"]["period"])
    assert set(rep.tables["D"]["period"]) == {"2017-2019", "2018-2019"}
    assert set(rep.tables["C"]["period"]) == {"2016-2019", "2019"}


def test_staffing_unit_level(tmp_path):
    # E with unit-level data: mean/min development on the large-spread flag, vs statsmodels.
    rng = np.random.default_rng(3)
    rows = []
    for m in MUNIS:
        for u in range(3):
            for y in [2016, 2017, 2018, 2019]:
                rows.append(("U23490", m, f"{m}-{u}", y, float(rng.uniform(0.05, 0.2))))
    units = pd.DataFrame(rows, columns=["indicator", "municipality", "unit", "year", "value"])
    g = units.groupby(["municipality", "year"])["value"]
    mean = g.mean().unstack()
    vals = mean.reindex(MUNIS).to_numpy()[:, None, :]
    ds = xr.Dataset(
        {"value": (("municipality", "indicator", "year"), vals)},
        coords={
            "municipality": MUNIS, "indicator": ["U23490"], "year": YEARS,
            "county": ("municipality", COUNTY), "kommungrupp_2017": ("municipality", KG),
            "direction": ("indicator", [1]), "area": ("indicator", ["äldreomsorg"]),
        },
    )
    rep = rir2021(ds, mode="faithful", staffing_units=units)
    e = rep.tables["E"]
    spread = ((g.max() - g.min()) / g.mean()).unstack().reindex(MUNIS)
    q = spread.quantile(0.75, axis=0)
    flag = (spread > q).astype(float)
    mins = g.min().unstack().reindex(MUNIS)
    for version, V in (("mean", mean.reindex(MUNIS)), ("min", mins)):
        df = pd.DataFrame(
            [(V.loc[m, t] - V.loc[m, t - 1], flag.loc[m, t - 1]) for t in (2017, 2018, 2019) for m in MUNIS],
            columns=["d", "f"],
        )
        cell = e[(e["outcome"] == f"{version}_change") & (e["lag"] == 1)].iloc[0]
        if df["f"].nunique() < 2:
            continue
        ref = sm.OLS(df["d"], sm.add_constant(df["f"])).fit()
        assert cell["estimate"] == pytest.approx(ref.params["f"], abs=1e-10)
        assert cell["std_error"] == pytest.approx(ref.bse["f"], rel=1e-8)
        assert cell["term"] == "large_spread"


def test_staffing_means_only():
    vals = (np.arange(24, dtype=float).reshape(6, 1, 4) % 5) / 10
    ds = xr.Dataset(
        {"value": (("municipality", "indicator", "year"), vals)},
        coords={
            "municipality": MUNIS, "indicator": ["U23489"], "year": YEARS,
            "county": ("municipality", COUNTY), "kommungrupp_2017": ("municipality", KG),
            "direction": ("indicator", [1]), "area": ("indicator", ["äldreomsorg"]),
        },
    )
    rep = rir2021(ds, mode="faithful")
    e = rep.tables["E"]
    assert set(e["term"]) == {"mean_change"}
    d = vals[:, 0, 1:] - vals[:, 0, :-1]
    cell = e[e["lag"] == 1].iloc[0]
    assert cell["estimate"] == pytest.approx(d.mean())
    assert cell["p_value"] == pytest.approx(stats.ttest_1samp(d.ravel(), 0).pvalue, rel=1e-8)
    assert any("unit-level (/oudata)" in s for s in rep.skipped)
    assert rep.tables["D"].empty and rep.tables["C"].empty


def test_users_file_roundtrip(tmp_path):
    f = tmp_path / "users.csv"
    USERS.to_csv(f, index=False)
    users = read_oj_users(f, municipalities=MUNIS)
    rep = rir2021(hand_panel(), oj_users=f, mode="faithful", indicators=MAPPING)
    assert len(users) == 6 and not rep.tables["B"].empty


def test_grouping_file_cluster_choice_and_missing_coord(tmp_path):
    f = tmp_path / "socio.csv"
    pd.DataFrame({"municipality": MUNIS, "group": ["s1", "s2", "s1", "s2", "s1", "s2"]}).to_csv(f, index=False)
    ds = hand_panel().drop_vars("kommungrupp_2017")
    from pathlib import Path

    rep = rir2021(ds, mode="improved", indicators=MAPPING, groupings={"socioeconomic": Path(f)}, cluster="municipality")
    assert set(rep.tables["D"]["peer_group"]) == {"county", "socioeconomic"}
    assert any("no 'kommungrupp_2017' coordinate" in s for s in rep.skipped)
    assert rep.settings["cluster"] == "municipality"
    # One improved cell against statsmodels clustered by municipality.
    des = rep.design("D").query("indicator == 'X1' and peer_group == 'socioeconomic' and lag == 1 and year >= 2017")
    d = des[["level", "peer_mean", "year", "municipality"]].dropna()
    X = pd.get_dummies(d["year"], prefix="y", drop_first=True, dtype=float)
    X.insert(0, "peer_mean", d["peer_mean"])
    ref = sm.OLS(d["level"], sm.add_constant(X)).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(d["municipality"])[0]}, use_t=True
    )
    cell = rep.tables["D"].query(
        "indicator == 'X1' and peer_group == 'socioeconomic' and lag == 1 and outcome == 'level' "
        "and sample == 'all' and term == 'peer_mean'"
    ).iloc[0]
    assert cell["estimate"] == pytest.approx(ref.params["peer_mean"], abs=1e-10)
    assert cell["std_error"] == pytest.approx(ref.bse["peer_mean"], rel=1e-8)
    assert cell["p_value"] == pytest.approx(ref.pvalues["peer_mean"], rel=1e-8)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"kommun": MUNIS}).to_csv(bad, index=False)
    with pytest.raises(DataError, match="municipality, group"):
        rir2021(ds, indicators=MAPPING, groupings={"socioeconomic": Path(bad)})


def test_staffing_units_match_harmonised_variable_ids():
    # A harmonised panel names the staffing variable ao_bemanning_ssk_vardag; unit data use U23490.
    rng = np.random.default_rng(4)
    units = pd.DataFrame(
        [("U23490", m, f"{m}-{u}", y, float(rng.uniform(0.05, 0.2))) for m in MUNIS for u in range(2) for y in YEARS],
        columns=["indicator", "municipality", "unit", "year", "value"],
    )
    mean = units.groupby(["municipality", "year"])["value"].mean().unstack().reindex(MUNIS)
    ds = xr.Dataset(
        {"value": (("municipality", "indicator", "year"), mean.to_numpy()[:, None, :])},
        coords={
            "municipality": MUNIS, "indicator": ["ao_bemanning_ssk_vardag"], "year": YEARS,
            "county": ("municipality", COUNTY), "kommungrupp_2017": ("municipality", KG),
            "direction": ("indicator", [1]), "area": ("indicator", ["äldreomsorg"]),
        },
    )
    rep = rir2021(ds, staffing_units=units)
    e = rep.tables["E"]
    assert set(e["indicator"]) == {"ao_bemanning_ssk_vardag"}
    assert {"mean_change", "min_change"} == set(e["outcome"])
