"""Knowledge-steering designs: transition counts by hand, FE fits against statsmodels/pyfixest,
the event study against planted effects (and the naive TWFE's failure), the OJ-use placebo, the
joint steering/benchmarking difference, the introduction-year rule and the real-data support."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
import xarray as xr
from scipy import stats

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.core.tidy import TIDY_COLUMNS
from ojpanel.designs.steering import (
    adoption_frame,
    adoption_summary,
    cohort_event_study,
    compare_event_studies,
    data_support,
    dichotomise,
    fit_adoption,
    introduction_years,
    oj_use_moderator,
    plot_adoption_curves,
    plot_event_study,
    red_flag_comparison,
    run_steering,
    simulate_steering,
    steering_vs_benchmarking,
    transition_rates,
    twfe_event_study,
)
from ojpanel.designs.steering._common import mde
from ojpanel.designs.steering.transitions import restrict_items
from ojpanel.errors import DataError, ParameterError

Z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)


def _zt(df: float) -> float:
    """``t_{0.975} + t_{0.8}`` with ``df`` degrees of freedom (the FE fits' reference distribution)."""
    return float(stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df))


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


def _hand_panel() -> xr.Dataset:
    """Three items, four municipalities, years 2016, 2017, 2019 (a gap: no 2018->2019 pair)."""
    nan = np.nan
    v = np.array([
        # binary item A
        [[0, 1, 1], [1, 0, 0], [0, 0, 1], [nan, 1, 1]],
        # binary item B
        [[1, 1, 0], [0, 1, 1], [0, nan, 0], [1, 1, 1]],
        # ordinal item C (0/1/2; yes = 2)
        [[0, 1, 2], [2, 1, 2], [1, 2, 2], [2, 2, 0]],
    ], dtype=float)
    return xr.Dataset(
        {"value": (("indicator", "municipality", "year"), v),
         "coloured": (("indicator", "year"), np.array([[1, 1, 1], [0, 0, 0], [1, 0, 0]], dtype=float))},
        coords={
            "indicator": ["A", "B", "C"], "municipality": ["0114", "0115", "0117", "0120"],
            "year": [2016, 2017, 2019], "county": ("municipality", ["01", "01", "02", "02"]),
            "area": ("indicator", ["äldreomsorg", "äldreomsorg", "barn och unga"]),
            "scale": ("indicator", ["binary", "binary", "ordinal"]),
        },
    )


@pytest.fixture(scope="module")
def sim():
    return simulate_steering(0)


@pytest.fixture(scope="module")
def small():
    return simulate_steering(3, n_municipalities=120, n_counties=10)


# ---------------------------------------------------------------------------------------------
# 1. adoption dynamics
# ---------------------------------------------------------------------------------------------


def test_transition_rates_equal_hand_counts():
    ds = _hand_panel()
    tr = transition_rates(ds)
    # only the 2016 -> 2017 pair exists (2018 is missing from the year axis)
    assert sorted(tr["year"].unique()) == [2017]
    v = ds["value"].values
    top = {"A": 1, "B": 1, "C": 2}
    for j, ind in enumerate(["A", "B", "C"]):
        at_risk = adopted = yes_prev = lapsed = up = down = pairs = 0
        for i in range(4):
            a, b = v[j, i, 0], v[j, i, 1]
            if np.isnan(a) or np.isnan(b):
                continue
            pairs += 1
            up += b > a
            down += b < a
            if a < top[ind]:
                at_risk += 1
                adopted += b == top[ind]
            else:
                yes_prev += 1
                lapsed += b != top[ind]
        row = tr[tr["indicator"] == ind].iloc[0]
        assert (row.n_pairs, row.n_at_risk, row.n_adopted, row.n_yes_prev, row.n_lapsed, row.n_up, row.n_down) == (
            pairs, at_risk, adopted, yes_prev, lapsed, up, down)
        assert row.adoption_rate == pytest.approx(adopted / at_risk)
    # A: pairs (0->1), (1->0), (0->0); municipality 0120 missing in 2016
    a = tr[tr["indicator"] == "A"].iloc[0]
    assert (a.n_at_risk, a.n_adopted, a.n_lapsed) == (2, 1, 1)
    # area totals are sums over items
    ar = transition_rates(ds, by="area")
    old = ar[ar["area"] == "äldreomsorg"].iloc[0]
    assert old.n_at_risk == tr[tr["area"] == "äldreomsorg"]["n_at_risk"].sum()
    assert old.adoption_rate == pytest.approx(
        tr[tr["area"] == "äldreomsorg"]["n_adopted"].sum() / tr[tr["area"] == "äldreomsorg"]["n_at_risk"].sum())


def test_adoption_summary_ceiling_and_geometric_time():
    ds = _hand_panel()
    s = adoption_summary(ds).set_index("indicator")
    # item A in 2019: values 1, 0, 1, 1 -> one municipality can still adopt
    assert s.loc["A", "ceiling"] == 1 and s.loc["A", "n_last"] == 4
    h = 1 / 2
    assert s.loc["A", "hazard"] == pytest.approx(h)
    assert s.loc["A", "expected_years"] == pytest.approx(1 / h)
    assert s.loc["A", "median_years"] == np.ceil(np.log(0.5) / np.log(1 - h))
    lapse = 1 / 1
    assert s.loc["A", "long_run_share"] == pytest.approx(h / (h + lapse))
    # ordinal item C: yes = 2; in 2019 values 2, 2, 2, 0 -> ceiling 1
    assert s.loc["C", "ceiling"] == 1


def test_adoption_frame_red_and_peer_by_hand():
    ds = _hand_panel()
    f = adoption_frame(ds, at_risk_only=False).set_index(["indicator", "municipality", "year"])
    # item A is coloured in 2016; municipality 0114 was at 0 -> red in t-1 for the 2017 pair
    assert f.loc[("A", "0114", 2017), "red_prev"] == 1.0
    assert f.loc[("A", "0115", 2017), "red_prev"] == 0.0  # was yes
    assert f.loc[("B", "0115", 2017), "red_prev"] == 0.0  # B never coloured
    # peer: leave-one-out county mean of yes in 2016; county 01 = 0114, 0115
    assert f.loc[("A", "0114", 2017), "peer_prev"] == pytest.approx(1.0)
    assert f.loc[("C", "0117", 2017), "peer_prev"] == pytest.approx(1.0)  # 0120 had 2 (= yes)
    assert np.isnan(f.loc[("A", "0117", 2017), "peer_prev"])  # 0120 missing in 2016


def test_red_flag_comparison_by_hand():
    out = red_flag_comparison(_hand_panel()).set_index("area")
    # 2016 -> 2017, red (coloured, not yes in 2016): A/0114 adopts, A/0117 does not
    assert out.loc["äldreomsorg", "n_red"] == 2 and out.loc["äldreomsorg", "adoption_red"] == 0.5
    # comparable: B (never coloured) at risk in 2016 with a 2017 answer: 0115 adopts
    assert out.loc["äldreomsorg", "n_comparable"] == 1 and out.loc["äldreomsorg", "adoption_comparable"] == 1.0
    assert out.loc["äldreomsorg", "difference"] == -0.5
    # ordinal C: 0114 0 -> 1 (no), 0117 1 -> 2 (adopts); no comparable item in the area
    assert out.loc["barn och unga", "adoption_red"] == 0.5 and out.loc["barn och unga", "n_comparable"] == 0


def test_checklist_designs_reject_share_items():
    ds = _hand_panel().assign_coords(scale=("indicator", ["binary", "share", "ordinal"]))
    with pytest.raises(DataError, match="dichotomise"):
        transition_rates(ds)
    with pytest.raises(ParameterError):
        transition_rates(_hand_panel(), by="county")


def test_fe_lpm_equals_statsmodels_and_pyfixest(small):
    import statsmodels.formula.api as smf

    res = fit_adoption(small.panel, model="lpm", terms=["red_prev", "peer_prev"])
    f = restrict_items(small.panel, adoption_frame(small.panel), "established")
    f = f.dropna(subset=["adopt", "red_prev", "peer_prev"]).reset_index(drop=True)
    f["area_year"] = f["area"] + ":" + f["year"].astype(str)
    # a full-rank dummy design: area is a function of the indicator, so each area's first year is
    # the common base of the area x year dummies (with all of them, OLS would solve a singular
    # system through a pseudo-inverse, whose cut-off then decides the slopes)
    first = f.groupby("area")["year"].transform("min")
    f["area_year_fr"] = np.where(f["year"] == first, "base", f["area_year"])
    ols = smf.ols("adopt ~ red_prev + peer_prev + C(municipality) + C(indicator) + C(area_year_fr)", data=f).fit()
    assert np.linalg.matrix_rank(ols.model.exog) == ols.model.exog.shape[1]
    np.testing.assert_allclose(res.params.values, ols.params[["red_prev", "peer_prev"]].values, rtol=0, atol=1e-9)
    fx = pf.feols("adopt ~ red_prev + peer_prev | municipality + indicator + area_year", data=f,
                  vcov={"CRV1": "municipality"})
    np.testing.assert_allclose(res.params.values, fx.coef().values, atol=1e-9)
    # linearmodels' small-sample convention differs from fixest's by a constant factor < 1 %
    np.testing.assert_allclose(res.std_errors.values, fx.se().values, rtol=0.01)
    assert res.nobs == len(f)
    # MDE and p-value share the reference distribution: t with the fit's residual df
    assert res.mde.values == pytest.approx(_zt(res.fit.df_resid) * res.std_errors.values, rel=1e-12)


def test_logit_equals_pyfixest_feglm(small):
    res = fit_adoption(small.panel, model="logit", terms=["red_prev", "peer_prev"])
    f = restrict_items(small.panel, adoption_frame(small.panel), "established")
    f = f.dropna(subset=["adopt", "red_prev", "peer_prev"]).reset_index(drop=True)
    f["area_year"] = f["area"] + ":" + f["year"].astype(str)
    fx = pf.feglm("adopt ~ red_prev + peer_prev | indicator + area_year + county", data=f, family="logit",
                  vcov={"CRV1": "municipality"}, ssc=pf.ssc(k_fixef="full"))
    np.testing.assert_allclose(res.params.values, fx.coef().values, atol=1e-5)
    # pyfixest counting every fixed effect in K (k_fixef="full") is the statsmodels convention; it
    # builds the sandwich from the FE-partialled working regression at its own IRLS tolerance. The
    # exact check is the closed-form CRV1 sandwich on the full-rank dummy design:
    # V = G/(G-1) (N-1)/(N-K) H⁻¹ (Σ_g s_g s_gᵀ) H⁻¹.
    np.testing.assert_allclose(res.std_errors.values, fx.se().values, rtol=1e-3)
    X = np.asarray(res.fit.model.exog)
    y = np.asarray(res.fit.model.endog)
    p = 1 / (1 + np.exp(-X @ np.asarray(res.fit.params)))
    scores = X * (y - p)[:, None]
    H = X.T @ (X * (p * (1 - p))[:, None])
    g = pd.factorize(f["municipality"])[0]
    S = np.zeros((g.max() + 1, X.shape[1]))
    np.add.at(S, g, scores)
    n, k, G = X.shape[0], X.shape[1], g.max() + 1
    Hinv = np.linalg.pinv(H)
    V = G / (G - 1) * (n - 1) / (n - k) * Hinv @ (S.T @ S) @ Hinv
    names = list(res.fit.model.exog_names)
    idx = [names.index(t) for t in ("red_prev", "peer_prev")]
    np.testing.assert_allclose(res.std_errors.values, np.sqrt(np.diag(V))[idx], rtol=1e-6)


def test_red_flag_lpm_recovers_planted_steering_effect(sim):
    res = fit_adoption(sim.panel, model="lpm")
    est, se = float(res.params["red_prev"]), float(res.std_errors["red_prev"])
    truth = sim.truth["steering_ame"]
    assert abs(est - truth) < 3 * se
    assert res.pvalues["red_prev"] < 0.01
    rows = res.to_frame()
    assert list(rows.columns[: len(TIDY_COLUMNS)]) == TIDY_COLUMNS
    assert rows["mde"].iloc[0] == pytest.approx(_zt(res.fit.df_resid) * se, rel=1e-12)


def test_no_colours_is_a_clear_error(sim):
    ds = sim.panel.drop_vars("coloured")
    with pytest.raises(DataError, match="colour flags"):
        fit_adoption(ds)
    with pytest.raises(DataError, match="colour flags"):
        steering_vs_benchmarking(ds)


# ---------------------------------------------------------------------------------------------
# 2. item-introduction event study
# ---------------------------------------------------------------------------------------------


def test_cohort_event_study_recovers_planted_effects_and_twfe_does_not(sim):
    cs = cohort_event_study(sim.panel)
    tw = twfe_event_study(sim.panel)
    truth = sim.truth["att_event"].set_index("event_time")["att"]
    ev = cs.event.set_index("event_time")
    err_cs = (ev["estimate"] - truth).loc[1:]
    assert (err_cs.abs() < 3 * ev["std_error"].loc[1:]).all()
    assert err_cs.abs().max() < 0.03
    err_tw = (tw.event.set_index("event_time")["estimate"] - truth).loc[1:]
    # the planted effects vary by cohort (2.0, 1.0, 0.3 on the logit scale): the naive TWFE
    # misses the late event times by several SEs and far more than the staggered estimator
    assert err_tw.abs().max() > 0.04
    assert err_tw.abs().max() > 2.5 * err_cs.abs().max()
    worst = err_tw.abs().idxmax()
    assert err_tw.abs()[worst] > 3 * tw.event.set_index("event_time")["std_error"][worst]
    assert ev.loc[0, "estimate"] == 0.0


def test_cohort_cell_equals_ols_on_municipality_differences(sim):
    import statsmodels.api as sm

    cs = cohort_event_study(sim.panel, inference="municipality")
    cell = cs.cells.query("area == 'äldreomsorg' and cohort == 2019 and event_time == 2").iloc[0]
    ds = sim.panel
    intro = pd.Series(ds["introduced"].values, index=ds["indicator"].values)
    area = pd.Series(ds["area"].values, index=ds["indicator"].values)
    comp = [i for i in cs.settings["comparison_items"] if area[i] == "äldreomsorg"]
    new = [i for i in intro.index if intro[i] == 2019 and area[i] == "äldreomsorg"]
    yes = (ds["value"] == xr.DataArray(np.where(ds["scale"] == "ordinal", 2, 1), dims="indicator",
                                       coords={"indicator": ds["indicator"]})).where(ds["value"].notnull())

    def change(items):
        d = yes.sel(indicator=items, year=2021) - yes.sel(indicator=items, year=2019)
        return d.mean("indicator", skipna=True).values

    d = change(new) - change(comp)
    d = d[np.isfinite(d)]
    ols = sm.OLS(d, np.ones((d.size, 1))).fit()
    assert cell.estimate == pytest.approx(float(ols.params[0]), abs=1e-12)
    assert cell.std_error == pytest.approx(float(ols.bse[0]), rel=1e-10)
    assert cell.n_municipalities == d.size


def test_twfe_event_study_equals_pyfixest(small):
    tw = twfe_event_study(small.panel)
    fit = tw.settings["fit"]
    from ojpanel.designs.steering._common import long_frame

    ds = small.panel
    comp = set(tw.settings["fit"].params.index)  # event-time dummies
    f = long_frame(ds)
    f = f[f["yes"].notna()].copy()
    intro = pd.Series(ds["introduced"].values, index=ds["indicator"].values)
    keep = [i for i in intro.index if intro[i] > 2015 or (ds["colour_from"].sel(indicator=i) == 0)]
    f = f[f["indicator"].isin(keep)].copy()
    e = f["year"] - f["indicator"].map(intro)
    treated = f["indicator"].map(intro) > 2015
    for k in range(1, 8):
        f[f"event_time_{k}"] = (treated & (e == k)).astype(float)
    names = [c for c in f.columns if c.startswith("event_time_") and c in comp]
    f["pair"] = f["indicator"] + ":" + f["municipality"]
    f["area_year"] = f["area"] + ":" + f["year"].astype(str)
    # keep singleton pairs (as ojpanel does) and count every absorbed effect in the small-sample
    # factor (pairs are nested in the municipality clusters; linearmodels' convention counts them)
    fx = pf.feols("yes ~ " + " + ".join(names) + " | pair + area_year", data=f, vcov={"CRV1": "municipality"},
                  fixef_rm="none", ssc=pf.ssc(k_fixef="full"))
    assert fit.nobs == fx._N
    np.testing.assert_allclose(fit.params[names].values, fx.coef()[names].values, atol=1e-9)
    np.testing.assert_allclose(fit.std_errors[names].values, fx.se()[names].values, rtol=0.01)


def test_event_study_without_introductions_is_a_clear_error(sim):
    ds = sim.panel.assign_coords(introduced=("indicator", np.full(sim.panel.sizes["indicator"], 2010)))
    with pytest.raises(DataError, match="introductions inside the panel"):
        cohort_event_study(ds)


def test_cohort_cells_equal_planted_att_plus_realised_trend_gap():
    """Closed form: with every answer observed, ATT-hat(g, e) = ATT(g, e) + the realised gap between
    the new items' and the comparison items' counterfactual changes (zero in expectation)."""
    sm_ = simulate_steering(21, n_municipalities=80, n_counties=8, p_missing=0.0)
    cs = cohort_event_study(sm_.panel)
    items = sm_.truth["items"].set_index("id")
    cf = sm_.truth["yes_share_cf"]
    att = sm_.truth["att"].set_index(["cohort", "event_time"])["att"]
    for r in cs.cells.itertuples(index=False):
        new = items[(items.area == r.area) & (items.introduced == r.cohort) & (items.cohort != "established")].index
        comp = [i for i in cs.settings["comparison_items"] if items.loc[i, "area"] == r.area]
        t = r.cohort + r.event_time
        gap = (cf.loc[new, t] - cf.loc[new, r.cohort]).mean() - (cf.loc[comp, t] - cf.loc[comp, r.cohort]).mean()
        # the planted ATT is per area and cohort here: recompute it for this area from the shares
        act = sm_.truth["yes_share"]
        att_area = (act.loc[new, t] - cf.loc[new, t]).mean() - (act.loc[new, r.cohort] - cf.loc[new, r.cohort]).mean()
        assert r.estimate == pytest.approx(att_area + gap, abs=1e-12)
    assert np.isfinite(att).all()


@pytest.mark.slow
def test_event_study_unbiased_over_seeds(smoke):
    """Mean error over replications: about 0 for the staggered estimator, clearly negative for the
    naive TWFE at event time 4 (cohort 2017's large effect is under-weighted)."""
    seeds = range(3) if smoke else range(10)
    err_cs, err_tw = [], []
    for s in seeds:
        sm_ = simulate_steering(100 + s)
        truth = sm_.truth["att_event"].set_index("event_time")["att"]
        err_cs.append((cohort_event_study(sm_.panel).event.set_index("event_time")["estimate"] - truth).loc[1:])
        err_tw.append((twfe_event_study(sm_.panel).event.set_index("event_time")["estimate"] - truth).loc[1:])
    cs, tw = pd.concat(err_cs, axis=1).mean(axis=1), pd.concat(err_tw, axis=1).mean(axis=1)
    assert cs.abs().max() < 0.025
    assert tw.loc[4] < -0.02
    assert abs(tw.loc[4]) > abs(cs.loc[4]) + 0.015


# ---------------------------------------------------------------------------------------------
# 3. OJ use as moderator
# ---------------------------------------------------------------------------------------------


def test_placebo_near_zero_under_no_effect_and_flags_selection():
    null = simulate_steering(11, oj_use_effect=0.0, user_selection=0.0)
    m = oj_use_moderator(null.panel, null.users)
    t = m.table.set_index("term")
    assert abs(t.loc["placebo: user × pre", "estimate"]) < 3 * t.loc["placebo: user × pre", "std_error"]
    assert abs(t.loc["user × post", "estimate"]) < 3 * t.loc["user × post", "std_error"]
    assert m.placebo_wald["p_value"] > 0.01
    assert np.isfinite(m.settings["mde_users_design"]) and m.settings["mde_users_design"] > 0
    eff = simulate_steering(11, oj_use_effect=0.6, user_selection=0.0)
    t2 = oj_use_moderator(eff.panel, eff.users).table.set_index("term")
    assert t2.loc["post - pre (DiD)", "p_value"] < 0.01 and t2.loc["post - pre (DiD)", "estimate"] > 0
    sel = simulate_steering(11, oj_use_effect=0.0, user_selection=2.0)
    t3 = oj_use_moderator(sel.panel, sel.users).table.set_index("term")
    # capable municipalities became users: the pre-period "effect" is selection, and the placebo shows it
    assert t3.loc["placebo: user × pre", "estimate"] > 0 and t3.loc["placebo: user × pre", "p_value"] < 0.05


def test_moderator_difference_equals_pyfixest(small):
    m = oj_use_moderator(small.panel, small.users)
    f = adoption_frame(small.panel, peer_group=None).merge(small.users, on=["municipality", "area"])
    f = f[f["status"].isin(["user", "non_user"])].dropna(subset=["adopt"]).copy()
    f["user"] = (f["status"] == "user").astype(float)
    f["user_pre"] = f["user"] * (f["year"] < 2019)
    f["user_post"] = f["user"] * (f["year"] >= 2019)
    f["item_year"] = f["indicator"] + ":" + f["year"].astype(str)
    fx = pf.feols("adopt ~ user_pre + user_post | item_year + county", data=f, vcov={"CRV1": "municipality"})
    t = m.table.set_index("term")
    assert t.loc["placebo: user × pre", "estimate"] == pytest.approx(fx.coef()["user_pre"], abs=1e-9)
    V = fx._vcov
    se_diff = np.sqrt(V[0, 0] + V[1, 1] - 2 * V[0, 1])
    assert t.loc["post - pre (DiD)", "std_error"] == pytest.approx(se_diff, rel=0.02)


def test_missing_users_file_says_so_plainly(sim, tmp_path):
    for users in (None, tmp_path / "no_such_file.csv"):
        m = oj_use_moderator(sim.panel, users)
        assert not m.available
        assert "No OJ-users file" in m.summary and "not run" in m.summary
        rows = m.to_frame()
        assert rows.empty and list(rows.columns[: len(TIDY_COLUMNS)]) == TIDY_COLUMNS


# ---------------------------------------------------------------------------------------------
# 4. steering vs benchmarking
# ---------------------------------------------------------------------------------------------


def test_combined_difference_and_se_from_joint_covariance(small):
    r = steering_vs_benchmarking(small.panel)
    f = restrict_items(small.panel, adoption_frame(small.panel), "established")
    f = f.dropna(subset=["adopt", "red_prev", "peer_prev"]).reset_index(drop=True)
    f["area_year"] = f["area"] + ":" + f["year"].astype(str)
    fx = pf.feols("adopt ~ red_prev + peer_prev | municipality + indicator + area_year", data=f,
                  vcov={"CRV1": "municipality"})
    b, V = fx.coef().values, fx._vcov
    t = r.table.set_index("term")
    assert t.loc["difference (steering - benchmarking)", "estimate"] == pytest.approx(b[0] - b[1], abs=1e-9)
    assert t.loc["difference (steering - benchmarking)", "std_error"] == pytest.approx(
        np.sqrt(V[0, 0] + V[1, 1] - 2 * V[0, 1]), rel=0.01)
    sd_r, sd_p = f["red_prev"].std(ddof=1), f["peer_prev"].std(ddof=1)
    assert t.loc["difference per sd", "estimate"] == pytest.approx(b[0] * sd_r - b[1] * sd_p, abs=1e-9)
    assert t.loc["difference per sd", "std_error"] == pytest.approx(
        np.sqrt(sd_r**2 * V[0, 0] + sd_p**2 * V[1, 1] - 2 * sd_r * sd_p * V[0, 1]), rel=0.01)
    np.testing.assert_allclose(r.table["mde"], _zt(r.fit.df_resid) * r.table["std_error"], rtol=1e-12)


def test_combined_recovers_planted_steering(sim):
    t = steering_vs_benchmarking(sim.panel).table.set_index("term")
    row = t.loc["steering (red flag, t-1)"]
    assert abs(row.estimate - sim.truth["steering_ame"]) < 3 * row.std_error
    assert t.loc["benchmarking (peer share, t-1)", "estimate"] > 0


# ---------------------------------------------------------------------------------------------
# simulator, introductions, real data, output
# ---------------------------------------------------------------------------------------------


def test_simulator_is_seeded_labelled_and_documented():
    a = simulate_steering(5, n_municipalities=60, n_counties=6)
    b = simulate_steering(5, n_municipalities=60, n_counties=6)
    xr.testing.assert_identical(a.panel.drop_attrs(), b.panel.drop_attrs())
    assert a.panel.attrs["synthetic"] == 1 and "SYNTHETIC" in a.panel.attrs["description"]
    ds = a.panel
    intro = pd.Series(ds["introduced"].values, index=ds["indicator"].values)
    for ind, g in intro.items():
        before = ds["value"].sel(indicator=ind, year=[y for y in ds["year"].values if y < g])
        assert before.isnull().all()
    assert (a.truth["att"].query("event_time == 0")["att"] == 0).all()
    with pytest.raises(ParameterError):
        simulate_steering(0, introductions={2015: 2})
    assert "steering effect" in a.summary


def test_introduction_years_rule_on_hand_values():
    cat = pd.DataFrame({
        "id": ["K1", "K2", "K3"], "title": ["Item one (-2019)", "Item two", "Item three"],
        "area": ["LSS"] * 3, "kind": ["process"] * 3, "scale": ["binary", "binary", "share"],
        "source_type": ["kommunenkät"] * 3, "in_pre2024": ["True", "True", "False"], "in_2024-04_v2": ["True"] * 3,
    })
    vals = pd.DataFrame({
        "kpi": ["K1", "K1", "K1", "K1", "K2", "K2", "K1"],
        "municipality": ["0114", "0114", "0115", "0115", "0114", "0114", "0000"],
        "year": [2015, 2016, 2017, 2019, 2017, 2018, 2010], "gender": "T", "value": [1, 0, 1, 1, 1, 1, 5],
    })
    out = introduction_years(cat, vals).set_index("id")
    assert out.loc["K1", "first_year"] == 2015  # the national row (0000, 2010) does not count
    assert out.loc["K1", "left_censored"]  # 2015 is the first year of these values
    assert out.loc["K1", "title_last_year"] == 2019 and out.loc["K1", "title"] == "Item one"
    assert out.loc["K1", "consecutive_pairs"] == 2 and out.loc["K1", "years"] == "2015,2016,2017,2019"
    assert out.loc["K2", "first_year"] == 2017 and not out.loc["K2", "left_censored"]
    assert np.isnan(out.loc["K3", "first_year"]) and out.loc["K3", "new_after_2024"]
    sup = data_support(cat, vals).set_index(["design", "indicator"])
    assert sup.loc[("introduction_event_study", "K2"), "qualifies"] == "yes"  # K1 established before 2017
    assert sup.loc[("introduction_event_study", "K1"), "qualifies"] == "no"
    assert sup.loc[("adoption", "K3"), "qualifies"] == "no" and "fetch" in sup.loc[("adoption", "K3"), "reason"]


def test_data_support_on_embedded_real_data():
    sup = data_support()
    assert set(sup["design"]) == {"adoption", "introduction_event_study", "oj_use_moderator", "steering_vs_benchmarking"}
    lss = sup[(sup["area"] == "LSS") & (sup["source_type"] == "enhetsundersökning") & (sup["years"] != "")]
    assert len(lss) > 0
    assert (lss[lss["design"] == "adoption"]["qualifies"] == "after dichotomising").all()
    ev = lss[lss["design"] == "introduction_event_study"]
    assert (ev["qualifies"] == "no").all() and ev["reason"].str.contains("no comparison items").all()
    assert (sup[sup["scale"] == "rate"]["qualifies"] == "no").all()
    assert sup["reason"].str.len().min() > 10
    kommunenkat = sup[(sup["source_type"] == "kommunenkät") & (sup["design"] == "adoption")]
    assert len(kommunenkat) > 100 and kommunenkat["reason"].str.contains("fetch").all()


def test_real_lss_transitions_equal_counts_from_raw_values():
    """Design 1 on real data: dichotomised LSS unit-survey shares (yes = 100 % of units), 2018 -> 2019."""
    import ojpanel
    from ojpanel.data.embedded import load_embedded_values

    ds = ojpanel.build_panel(kinds=["structure", "process"]).oj.select(area="LSS", scale="share")
    tr = transition_rates(dichotomise(ds))
    kpi = "U28112"
    raw = load_embedded_values(kpis=[kpi], years=[2018, 2019], genders=["T"])
    raw = raw[raw["municipality"].isin(set(ds["municipality"].values))]
    wide = raw.pivot_table(index="municipality", columns="year", values="value").dropna()
    prev, now = wide[2018] >= 100, wide[2019] >= 100
    row = tr[(tr["indicator"] == kpi) & (tr["year"] == 2019)].iloc[0]
    assert row.n_pairs == len(wide)
    assert row.n_at_risk == int((~prev).sum()) and row.n_adopted == int((~prev & now).sum())
    assert row.n_lapsed == int((prev & ~now).sum())
    assert tr[(tr["indicator"] == kpi) & (tr["year"] == 2022)]["n_pairs"].sum() == 0  # no 2021 values


def test_dichotomise_shares():
    ds = xr.Dataset({"value": (("indicator", "municipality", "year"), np.array([[[100.0, 50.0, np.nan]]]))},
                    coords={"indicator": ["S"], "municipality": ["0114"], "year": [2018, 2019, 2020],
                            "scale": ("indicator", ["share"]), "area": ("indicator", ["LSS"])})
    out = dichotomise(ds)
    np.testing.assert_array_equal(out["value"].values[0, 0, :2], [1.0, 0.0])
    assert np.isnan(out["value"].values[0, 0, 2]) and str(out["scale"].values[0]) == "binary"
    assert transition_rates(out)["n_lapsed"].sum() == 1


def test_run_steering_tidy_schema_and_figures(sim):
    r = run_steering(sim.panel, users=sim.users, logit=False)
    rows = r.to_frame()
    assert list(rows.columns[: len(TIDY_COLUMNS)]) == TIDY_COLUMNS
    assert {"steering_adoption_lpm", "steering_introduction_cohort", "steering_introduction_twfe",
            "steering_oj_use", "steering_vs_benchmarking"} <= set(rows["analysis"])
    ok = rows["std_error"] > 0
    cohort = ok & (rows["analysis"] == "steering_introduction_cohort")
    # FE rows use t with thousands of df; the item-level event study t with few (Satterthwaite) df
    ratio = rows.loc[ok & ~cohort, "mde"] / rows.loc[ok & ~cohort, "std_error"]
    assert np.allclose(ratio, Z, rtol=2e-3) and (ratio >= Z - 1e-12).all()
    d = rows.loc[cohort, "df"].to_numpy(float)
    assert cohort.any() and np.isfinite(d).all() and (d < 100).any()
    assert np.allclose(rows.loc[cohort, "mde"], mde(rows.loc[cohort, "std_error"].to_numpy(), df=d))
    assert (rows["data"] == "synthetic").all()
    nothing = run_steering(sim.panel.drop_vars("coloured"))
    assert "OJ-use moderator" in nothing.skipped and any("colour" in v for v in nothing.skipped.values())
    fig = plot_event_study([r["event_cohort"], r["event_twfe"]], labels=["staggered", "naive TWFE"],
                           truth=sim.truth["att_event"], ds=sim.panel)
    texts = " ".join(t.get_text() for t in fig.texts)
    assert PROCESSED_SOURCE_NOTE in texts and "Kolada" not in texts.replace(PROCESSED_SOURCE_NOTE, "")
    assert "SYNTHETIC" in texts
    ax = fig.axes[0]
    assert len(ax.collections) == 2  # two confidence bands
    cmp_ = compare_event_studies(r["event_cohort"], r["event_twfe"])
    assert np.allclose(cmp_["difference"], cmp_["twfe"] - cmp_["staggered"])
    fig2 = plot_adoption_curves(sim.panel, event_time=True)
    # one line and one marker series per item
    assert len(fig2.axes) == 2 and sum(len(a.get_lines()) for a in fig2.axes) == 2 * sim.panel.sizes["indicator"]


def test_adoption_curves_break_at_missing_years_with_integer_ticks_and_names():
    ds = _hand_panel().assign_coords(title=("indicator", ["Rutin A finns", "Rutin B finns", "Rutin C finns"]))
    fig = plot_adoption_curves(ds)
    ax = next(a for a in fig.axes if a.get_title() == "äldreomsorg")
    lines = [ln for ln in ax.get_lines() if ln.get_linestyle() != "None"]
    # years 2016, 2017, 2019: the line has a NaN between 2017 and 2019 (a gap, not a line across 2018)
    x = lines[0].get_xdata()
    assert np.isnan(x).sum() == 1 and list(x[~np.isnan(x)]) == [2016, 2017, 2019]
    assert all(float(t).is_integer() for t in ax.get_xticks())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Rutin A finns" in labels and "A" not in labels
    fig.savefig(__import__("io").BytesIO(), format="png")  # renders without a display


def test_designs_compared_keeps_flag_and_slope_on_separate_axes(sim):
    from ojpanel.designs.steering.figures import plot_designs_compared

    comb = steering_vs_benchmarking(sim.panel)
    fig = plot_designs_compared(comb, ds=sim.panel)
    assert len(fig.axes) == 3
    ylabels = [a.get_ylabel() for a in fig.axes]
    assert "procentenheter" in ylabels[0] and "per +10 procentenheter" in ylabels[1] and "per standardavvikelse" in ylabels[2]
    t = comb.table.set_index("term")
    y0 = fig.axes[0].lines[0].get_ydata()[0]
    assert y0 == pytest.approx(100 * t.loc["steering (red flag, t-1)", "estimate"])


def test_steering_results_display_html(sim):
    r = run_steering(sim.panel, users=sim.users, logit=False)
    for name in ("event_cohort", "event_twfe"):
        html = r[name]._repr_html_()
        assert "<table" in html and "Standard errors" in html
    assert "pre-trend" in r["event_cohort"]._repr_html_().lower()
    for name, res in r.results.items():
        assert res._repr_html_().count("<table") >= 1, name
    assert r._repr_html_().count("<table") >= len(r.results)


@pytest.mark.slow
def test_bayesian_adoption_agrees_with_logit(smoke):
    """The hierarchical Bernoulli-logit (issue-6 models) and the county-effects logit agree on the
    red-flag effect (log-odds) within their combined uncertainty; one small seeded fit."""
    from ojpanel.designs.steering import adoption_bayes

    s = simulate_steering(0, n_municipalities=80, n_counties=8, areas=("äldreomsorg",), n_established=6,
                          introductions={2018: 1}, intro_effects={2018: 0.0})
    draws = 200 if smoke else 500
    idata = adoption_bayes(s.panel, draws=draws, tune=draws, chains=2, seed=1, diagnostics="flag")
    post = idata.posterior["mu_beta"].values.ravel()
    logit = fit_adoption(s.panel, model="logit")
    b, se = float(logit.params["red_prev"]), float(logit.std_errors["red_prev"])
    assert abs(post.mean() - b) < 2 * np.sqrt(post.var() + se**2)
    assert post.mean() > 0
    assert idata.attrs["n_obs"] == logit.nobs
