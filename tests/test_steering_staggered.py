"""Municipality-level staggered adoption: our design objects against the field's packages.

* Callaway–Sant'Anna (ours: diff-diff) against moderndid (a port of R's ``did``) and csdid —
  ATT(g, t), event-time aggregates and the overall ATT, never- and not-yet-treated controls,
  with and without anticipation: points to 1e-8, analytic SEs to 1e-6 (moderndid; csdid's SEs
  come from its multiplier bootstrap, so they are compared within 15 %).
* Imputation (ours: diff-diff ImputationDiD) against pyfixest's did2s (Gardner two-stage; the
  same point estimates) and a hand-written imputation with pyfixest.feols: points to 1e-8; SEs
  differ by construction (BJS's conservative variance vs Gardner's GMM one), within 15 %.
* Sup-t critical values against closed forms (independent and perfectly correlated estimates)
  and moderndid's bootstrap band.
* Rambachan–Roth bounds against closed forms and moderndid's identified sets; the pre-trend
  Wald test by hand.
* Recovery of planted heterogeneous effects (and the naive TWFE's failure) on the labelled
  synthetic simulator; the accounting of every municipality; the real LSS routines.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from scipy import stats

from ojpanel.designs.steering.pretrends import breakdown_values, honest_sensitivity
from ojpanel.designs.steering.staggered import (
    StaggeredAdoption,
    adoption_cohorts,
    sup_t_critical_value,
)
from ojpanel.errors import DataError, ParameterError
from ojpanel.simulate.adoption import simulate_adoption


@pytest.fixture(scope="module")
def design():
    sim = simulate_adoption(3, n_municipalities=160, n_counties=12, years=range(2014, 2021),
                            cohorts={2016: 1.0, 2018: 2.5, 2019: 0.5})
    return sim, StaggeredAdoption.from_panel(sim.panel, treatment="SIM_ROUTINE", outcome="SIM_OUTCOME")


@contextlib.contextmanager
def _quiet():
    """The packages' own warnings (deprecations, defaults they announce) are not under test here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("control,anticipation", [("never_treated", 0), ("not_yet_treated", 0), ("not_yet_treated", 1)])
def test_callaway_santanna_equals_moderndid(design, control, anticipation):
    import moderndid as md

    _, d = design
    res = d.fit(control_group=control, anticipation=anticipation, sensitivity=False)
    pf_ = d.package_frame()
    with _quiet():
        m = md.att_gt(data=pf_, yname="y", tname="period", idname="unit", gname="g", est_method="reg",
                      control_group=control.replace("_", ""), anticipation=anticipation, base_period="universal",
                      boot=False)
        dyn = md.aggte(m, type="dynamic", boot=False, cband=False)
        simple = md.aggte(m, type="simple", boot=False, cband=False)
    mg = pd.DataFrame({"cohort": m.groups.astype(int), "period": m.times.astype(int), "att": m.att_gt, "se": m.se_gt})
    j = res.group_time.merge(mg, on=["cohort", "period"])
    assert len(j) == len(mg) == len(res.group_time)
    ok = j["se"] > 0  # moderndid's zero-SE reference cells
    np.testing.assert_allclose(j["estimate"], j["att"], atol=1e-8)
    np.testing.assert_allclose(j.loc[ok, "std_error"], j.loc[ok, "se"], rtol=1e-6)
    me = pd.DataFrame({"event_time": dyn.event_times.astype(int), "att": dyn.att_by_event, "se": dyn.se_by_event})
    je = res.event.merge(me, on="event_time")
    assert len(je) == len(me)
    np.testing.assert_allclose(je["estimate"], je["att"], atol=1e-8)
    ok = je["se"] > 0
    np.testing.assert_allclose(je.loc[ok, "std_error"], je.loc[ok, "se"], rtol=1e-6)
    if anticipation == 0:
        assert res.overall["estimate"] == pytest.approx(float(simple.overall_att), abs=1e-8)
        assert res.overall["std_error"] == pytest.approx(float(simple.overall_se), rel=1e-6)
    # the definition, by hand: cohort-size-weighted mean of ATT(g, t) over t >= g - anticipation
    # (R's did and moderndid start at t >= g: with anticipation the two differ, documented)
    gt = res.group_time
    cells = gt[gt["period"] >= gt["cohort"] - anticipation]
    size = pf_[pf_["g"] > 0].groupby("g")["unit"].nunique()
    wts = cells["cohort"].map(size).to_numpy(float)
    assert res.overall["estimate"] == pytest.approx(float(np.average(cells["estimate"], weights=wts)), abs=1e-8)


def test_callaway_santanna_equals_csdid(design):
    from csdid.att_gt import ATTgt

    _, d = design
    res = d.fit(control_group="not_yet_treated", sensitivity=False)
    pf_ = d.package_frame()
    with _quiet():
        np.random.seed(0)  # noqa: NPY002 - csdid's multiplier bootstrap draws from numpy's global state
        c = ATTgt(yname="y", gname="g", idname="unit", tname="period", data=pf_, control_group="notyettreated",
                  base_period="universal").fit(est_method="reg")
    r = c.results
    cg = pd.DataFrame({"cohort": np.asarray(r["group"], int), "period": np.asarray(r["year"], int),
                       "att": np.asarray(r["att"], float), "se": np.asarray(r["se"], float)})
    j = res.group_time.merge(cg, on=["cohort", "period"])
    assert len(j) == len(cg)
    # csdid 0.4.3 computes pre-period cells as short (varying-base) differences whatever
    # base_period says; post-period cells (t >= g) use the same base g - 1 in both
    j = j[j["period"] >= j["cohort"]]
    assert len(j) >= 10
    np.testing.assert_allclose(j["estimate"], j["att"], atol=1e-8)
    ok = (j["se"] > 0) & (j["std_error"] > 0)
    ratio = j.loc[ok, "std_error"] / j.loc[ok, "se"]
    assert ((ratio > 0.85) & (ratio < 1.15)).all(), ratio.describe()


@pytest.mark.parametrize("anticipation", [0, 1])
def test_imputation_equals_pyfixest(design, anticipation):
    """did2s (Gardner) gives the imputation points when every unit keeps two untreated cells;
    a hand-written imputation (feols on untreated cells, predict, average) checks both."""
    _, d = design
    res = d.fit(estimator="imputation", anticipation=anticipation, sensitivity=False)
    f = d.package_frame()
    geff = np.where(f["g"] > 0, f["g"] - anticipation, 0)
    f["treat"] = ((f["g"] > 0) & (f["period"] >= geff)).astype(int)
    f["rel"] = np.where(f["g"] > 0, f["period"] - f["g"], -1000).astype(int)
    # the imputation by hand: unit and period effects by exact least squares on the untreated cells
    u = f[f["treat"] == 0]
    X = np.column_stack([pd.get_dummies(u["unit"]).to_numpy(float), pd.get_dummies(u["period"]).to_numpy(float)[:, 1:]])
    b = np.linalg.lstsq(X, u["y"].to_numpy(), rcond=None)[0]
    units, periods = sorted(u["unit"].unique()), sorted(u["period"].unique())
    alpha_i = dict(zip(units, b[: len(units)], strict=True))
    lam_t = dict(zip(periods, np.r_[0.0, b[len(units):]], strict=True))
    f["tau"] = f["y"] - f["unit"].map(alpha_i) - f["period"].map(lam_t)
    hand = f[f["treat"] == 1].groupby("rel")["tau"].mean()
    post = res.event.set_index("event_time").loc[hand.index, "estimate"]
    np.testing.assert_allclose(post.to_numpy(), hand.to_numpy(), atol=1e-8)
    if anticipation == 0:
        with _quiet():
            g2 = pf.did2s(f, yname="y", first_stage="~ 0 | unit + period", second_stage="~ i(rel, ref=-1000)",
                          treatment="treat", cluster="unit")
        co, se = g2.coef(), g2.se()
        names = [f"rel::{e}" for e in hand.index]
        # did2s recovers the first-stage effects iteratively (pyfixest's tolerance: ~1e-7 here)
        np.testing.assert_allclose(post.to_numpy(), co[names].to_numpy(), atol=1e-6)
        ratio = res.event.set_index("event_time").loc[hand.index, "std_error"].to_numpy() / se[names].to_numpy()
        assert ((ratio > 0.85) & (ratio < 1.15)).all(), ratio
    # the overall ATT is the mean over treated cells (not over event times)
    assert res.overall["estimate"] == pytest.approx(float(f.loc[f["treat"] == 1, "tau"].mean()), abs=1e-8)


def test_sup_t_critical_value_closed_forms_and_moderndid(design):
    k = 5
    sidak = stats.norm.ppf((1 + 0.95 ** (1 / k)) / 2)
    assert sup_t_critical_value(np.eye(k), n_draws=200_000, seed=1) == pytest.approx(sidak, abs=0.02)
    assert sup_t_critical_value(np.ones((k, k)) + 1e-12 * np.eye(k), n_draws=200_000) == pytest.approx(
        stats.norm.ppf(0.975), abs=0.02)
    # against moderndid's multiplier-bootstrap band on the same event study (post-periods)
    import moderndid as md

    _, d = design
    res = d.fit(control_group="not_yet_treated", sensitivity=False)
    with _quiet():
        m = md.att_gt(data=d.package_frame(), yname="y", tname="period", idname="unit", gname="g", est_method="reg",
                      control_group="notyettreated", base_period="universal", boot=True, biters=4000, random_state=3)
        dyn = md.aggte(m, type="dynamic", boot=True, biters=4000, cband=True, random_state=3, min_e=0)
    assert res.settings["sup_t_crit"] == pytest.approx(float(dyn.critical_values[0] if np.ndim(dyn.critical_values)
                                                             else dyn.critical_values), rel=0.1)
    post = res.event[res.event["event_time"] >= 0]
    assert (post["band_upper"] - post["band_lower"] > post["upper"] - post["lower"]).all()


def test_pretrend_wald_by_hand(design):
    _, d = design
    res = d.fit(control_group="never_treated", sensitivity=False)
    ev, V = res.event.set_index("event_time"), res.vcov
    pre = [e for e in ev.index if e < -1]
    b = ev.loc[pre, "estimate"].to_numpy()
    stat = float(b @ np.linalg.solve(V.loc[pre, pre].to_numpy(), b))
    assert res.pretrend["statistic"] == pytest.approx(stat, rel=1e-10)
    assert res.pretrend["df"] == len(pre)
    assert res.pretrend["p_value"] == pytest.approx(stats.chi2.sf(stat, len(pre)), rel=1e-10)
    assert list(res.pretrend["placebo"]["event_time"]) == pre


def _es(beta: dict[int, float], sd: float = 0.01) -> tuple[pd.DataFrame, pd.DataFrame]:
    e = sorted(beta)
    ev = pd.DataFrame({"event_time": e, "estimate": [beta[k] for k in e],
                       "std_error": [0.0 if k == -1 else sd for k in e]})
    V = pd.DataFrame(np.diag([0.0 if k == -1 else sd**2 for k in e]), index=e, columns=e)
    return ev, V


def test_rambachan_roth_closed_forms():
    """Relative magnitudes, one pre-period (-2) and one post-period (0): the identified set is
    beta_0 ± Mbar·|beta_-2|. Smoothness M = 0 with collinear pre-periods -3, -2 and the reference:
    the violation is that line, so theta = beta_0 + beta_-2 (a point); with pre-periods that bend,
    M = 0 is rejected by the data themselves: an empty identified set."""
    ev, V = _es({-2: 0.03, -1: 0.0, 0: 0.10})
    s = honest_sensitivity(ev, V, rm_grid=[0.0, 0.5, 2.0, 4.0], sd_grid=[])
    for M in (0.0, 0.5, 2.0, 4.0):
        r = s[(s["restriction"] == "relative_magnitude") & (s["M"] == M)].iloc[0]
        assert r["lb"] == pytest.approx(0.10 - M * 0.03, abs=1e-8)
        assert r["ub"] == pytest.approx(0.10 + M * 0.03, abs=1e-8)
        assert r["ci_lower"] <= r["lb"] and r["ci_upper"] >= r["ub"]
    ev2, V2 = _es({-3: 0.04, -2: 0.02, -1: 0.0, 0: 0.10})
    s2 = honest_sensitivity(ev2, V2, rm_grid=[], sd_grid=[0.0, 0.005])
    r = s2[s2["restriction"] == "smoothness"].iloc[0]
    assert r["lb"] == pytest.approx(0.10 + 0.02, abs=1e-8) and r["ub"] == pytest.approx(0.12, abs=1e-8)
    # M bounds the change of slope: one post-period adds at most M on either side
    r = s2[s2["restriction"] == "smoothness"].iloc[1]
    assert r["lb"] == pytest.approx(0.12 - 0.005, abs=1e-8) and r["ub"] == pytest.approx(0.12 + 0.005, abs=1e-8)
    ev3, V3 = _es({-3: 0.05, -2: 0.02, -1: 0.0, 0: 0.10})
    r = honest_sensitivity(ev3, V3, rm_grid=[], sd_grid=[0.0]).iloc[-1]
    assert r["empty_set"] and np.isnan(r["lb"])
    # breakdown: the first grid value whose robust CI reaches zero
    b = breakdown_values(s)
    assert b["relative_magnitude"] == 4.0
    assert np.isinf(breakdown_values(s[s["M"].isna() | (s["M"] < 1)])["relative_magnitude"])


def test_rambachan_roth_identified_sets_equal_moderndid(design):
    from moderndid.didhonest import compute_identified_set_rm, create_sensitivity_results_sm

    _, d = design
    res = d.fit(control_group="not_yet_treated", sensitivity=False)
    ev, V = res.event, res.vcov
    s = honest_sensitivity(ev, V, rm_grid=[0.5, 1.0], sd_grid=[0.0, 0.3])
    pre, post = s.attrs["pre_periods"], s.attrs["post_periods"]
    b = ev.set_index("event_time").loc[pre + post, "estimate"].to_numpy()
    S = V.loc[pre + post, pre + post].to_numpy()
    ell = np.full(len(post), 1 / len(post))
    for M in (0.5, 1.0):
        r = s[(s["restriction"] == "relative_magnitude") & (s["M"] == M)].iloc[0]
        ref = compute_identified_set_rm(M, b, ell, len(pre), len(post))
        assert r["lb"] == pytest.approx(float(ref.id_lb), abs=1e-8)
        assert r["ub"] == pytest.approx(float(ref.id_ub), abs=1e-8)
    with _quiet():
        sm = create_sensitivity_results_sm(b, S, len(pre), len(post), m_vec=np.array([0.0, 0.3]), l_vec=ell)
    sm = sm.to_pandas() if hasattr(sm, "to_pandas") else sm
    ours = s[s["restriction"] == "smoothness"].sort_values("M")
    # both are Armstrong–Kolesár fixed-length CIs; the optimisers differ in the third decimal of the width
    width = ours["ci_upper"].to_numpy() - ours["ci_lower"].to_numpy()
    np.testing.assert_allclose(ours["ci_lower"], sm["lb"], atol=0.02 * width.max())
    np.testing.assert_allclose(ours["ci_upper"], sm["ub"], atol=0.02 * width.max())


def test_recovers_planted_heterogeneous_effects_where_twfe_does_not():
    """Cohort 2016's effect grows ten times faster than cohort 2019's: the fully dynamic TWFE
    mixes them (Sun & Abraham 2021) and misses by several units; both robust estimators stay
    within 4 SE of the truth at every event time."""
    sim = simulate_adoption(11, n_municipalities=290, years=range(2013, 2023), cohorts={2016: 3.0, 2019: 0.3},
                            share_never=0.1, sd_noise=1.0, sd_municipality=2.0)
    d = StaggeredAdoption.from_panel(sim.panel, treatment="SIM_ROUTINE", outcome="SIM_OUTCOME")
    truth = sim.truth["att_event"].set_index("event_time")["att"]
    errs = {}
    for est in ("callaway_santanna", "imputation"):
        ev = d.fit(estimator=est, sensitivity=False).event.set_index("event_time")
        e = (ev["estimate"] - truth).dropna().drop(index=-1)
        assert (e.abs() < 4 * ev.loc[e.index, "std_error"]).all(), (est, e)
        errs[est] = e.abs().max()
    f = d.frame
    f["rel"] = np.where(f["cohort_year"].notna(), f["year"] - f["cohort_year"].fillna(0), -1000).astype(int)
    with _quiet():
        tw = pf.feols("y ~ i(rel, ref=-1) | unit + year", data=f.assign(rel=f["rel"].replace(-1000, -1)))
    tw_e = pd.Series({int(float(n.split("::")[1])): v for n, v in tw.coef().items()})
    err_tw = (tw_e - truth).dropna().abs().max()
    assert err_tw > 3 * max(errs.values()), (err_tw, errs)


def test_accounting_lists_every_municipality_and_errors_are_clear():
    sim = simulate_adoption(5, n_municipalities=80, n_counties=8, years=range(2015, 2021), cohorts={2017: 1.0})
    ds = sim.panel.copy(deep=True)
    mun = list(ds["municipality"].values)
    v = ds["value"].values
    v[0, 0, :] = 1.0                      # always adopted: no pre-period
    v[0, 1, :] = np.nan                   # no data on the routine
    v[0, 2, :] = [0, 0, 1, 0, 1, 1]       # adopts in 2017, lapses in 2018
    v[1, 3, :] = np.nan                   # no outcome at all
    d = StaggeredAdoption.from_panel(ds, treatment="SIM_ROUTINE", outcome="SIM_OUTCOME")
    res = d.fit(sensitivity=False)
    acc = res.accounting.set_index("municipality")
    assert len(acc) == len(mun)
    assert acc.loc[mun[0], "role"] == "always" and not acc.loc[mun[0], "used"]
    assert "no pre-period" in acc.loc[mun[0], "reason"]
    assert acc.loc[mun[1], "role"] == "no data" and not acc.loc[mun[1], "used"]
    assert acc.loc[mun[2], "lapsed"] and acc.loc[mun[2], "cohort_year"] == 2017 and acc.loc[mun[2], "used"]
    assert not acc.loc[mun[3], "used"] and "no outcome" in acc.loc[mun[3], "reason"]
    assert res.settings["n_used"] == int(acc["used"].sum())
    cohorts = adoption_cohorts(ds, "SIM_ROUTINE")
    assert cohorts.attrs["rule"].startswith("SIM_ROUTINE at its top level")
    with pytest.raises(ParameterError, match="estimator"):
        d.fit(estimator="twfe")
    with pytest.raises(ParameterError, match="control_group"):
        d.fit(control_group="everyone")
    with pytest.raises(ParameterError, match="anticipation"):
        d.fit(anticipation=-1)
    with pytest.raises(DataError, match="not in the panel"):
        StaggeredAdoption.from_panel(ds, treatment="NOPE", outcome="SIM_OUTCOME")
    none = ds.copy(deep=True)
    none["value"].values[0] = 0.0
    with pytest.raises(DataError, match="no municipality adopts"):
        StaggeredAdoption.from_panel(none, treatment="SIM_ROUTINE", outcome="SIM_OUTCOME").fit()


def test_result_displays_and_tidy_rows(design):
    _, d = design
    res = d.fit(rm_grid=[0.0, 1.0], sd_grid=[0.0])
    html = res._repr_html_()
    assert "<table" in html and "Rambachan" in html and "SYNTHETIC" in html
    rows = res.to_frame()
    assert {"event_time_0", "overall_post"} <= set(rows["term"])
    assert rows["mde"].notna().all() and np.isfinite(rows["pretrend_p"]).all()
    assert "breakdown_relative_magnitude" in rows
    fig = res.plot()
    labels = " ".join(t.get_text() for ax in fig.axes for t in [ax.xaxis.label, ax.yaxis.label, ax.title])
    assert "Outcome share, % (synthetic)" in labels.replace("\n", " ") and "SIM_OUTCOME" not in labels
    assert "procentenheter" in labels
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "SYNTHETIC" in texts and "Kolada" not in texts.replace("Källa: Kolada", "")
    assert len(fig.axes) == 3


def test_real_lss_routine_adoption_cohorts_from_raw_values(raw_values):
    """The adoption design on the embedded LSS unit survey: cohorts by hand from the raw values."""
    import ojpanel
    from ojpanel.designs.steering.staggered import ROUTINE_OUTCOMES

    treat, outcome = "U28112", ROUTINE_OUTCOMES["U28112"]
    ds = ojpanel.build_panel(kpis=[treat, outcome])
    d = StaggeredAdoption.from_panel(ds, treatment=treat, outcome=outcome)
    acc = d.accounting.set_index("municipality")
    raw = raw_values[(raw_values["kpi"] == treat) & (raw_values["gender"] == "T")]
    raw = raw[raw["municipality"].astype(str).str.fullmatch(r"\d{4}") & ~raw["municipality"].astype(str).str.startswith("00")]
    wide = raw.pivot_table(index="municipality", columns="year", values="value")
    for m in wide.index[:40]:
        row = wide.loc[m].dropna()
        full = row[row >= 100]
        if full.empty:
            assert acc.loc[str(m), "role"] == "never"
        elif full.index[0] == row.index[0]:
            assert acc.loc[str(m), "role"] == "always"
        else:
            assert acc.loc[str(m), "cohort_year"] == full.index[0]
    res = d.fit(sensitivity=False)
    assert res.settings["time_label"].startswith("survey waves (2018, 2019, 2022)")
    assert set(res.event["event_time"]) >= {-1, 0}
    assert res.settings["n_adopters"] > 10
