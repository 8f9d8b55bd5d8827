"""Inference of the item-introduction event study when items drift on their own.

The data generator below is written for this test alone, independently of
``ojpanel.designs.steering.simulate`` (a linear-probability process, not the package's logit
hazard chains): staggered item introductions — four cohorts of three items per area, two areas,
290 municipalities in 21 counties, ten years — with effects that grow linearly with time since
introduction at cohort-specific rates, established items (asked before the panel) as the
never-treated comparison, and an item × year shock of sd 0.03 on every item's yes-probability.

The claim tested: two-way clustering by item and municipality with item-group CR2-type factors
and t(Welch–Satterthwaite) intervals covers the true effect at the nominal rate (≥ 93 % for 95 %
intervals at full size), while municipality clustering alone does not. Smoke size (CI) uses
fewer replications and a looser bound, and still fails if the item-level part is dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from ojpanel.designs.steering import cohort_event_study, twfe_event_study
from ojpanel.designs.steering.item_inference import cell_scores, two_way_variance

YEARS = np.arange(2011, 2021)
COHORTS = (2012, 2014, 2016, 2018)
#: Effect per year since introduction, by cohort (probability scale).
RATES = {2012: 0.012, 2014: 0.018, 2016: 0.008, 2018: 0.025}
AREAS = ("area A", "area B")


def make_panel(seed: int, *, sd_item_year: float = 0.03, n_municipalities: int = 290, n_counties: int = 21,
               n_established: int = 6, items_per_cohort: int = 3, p_missing: float = 0.03) -> tuple[xr.Dataset, pd.Series]:
    """One simulated panel and the true event-time effects (item-weighted over cohorts).

    ``yes[i,j,t] ~ Bernoulli(p)``, ``p = base[j] + trend[a]·(t - 2011) + m[i] + c[county] +
    v[i,a,t] + eta[j,t] + rate[g]·(t - g)·(1 + 0.3 z[i])`` for introduced items from their
    introduction year ``g`` on (not observed before it), with ``eta[j,t] ~ N(0, sd_item_year)``.
    """
    rng = np.random.default_rng(seed)
    N, T = n_municipalities, YEARS.size
    county = rng.integers(0, n_counties, N)
    m = rng.normal(0, 0.05, N) + rng.normal(0, 0.03, n_counties)[county]
    z = rng.normal(size=N)
    ids, areas, intro = [], [], []
    for a in AREAS:
        for k in range(n_established):
            ids.append(f"{a[-1]}E{k}")
            areas.append(a)
            intro.append(2005)
        for g in COHORTS:
            for k in range(items_per_cohort):
                ids.append(f"{a[-1]}{g}_{k}")
                areas.append(a)
                intro.append(g)
    J = len(ids)
    intro_a = np.array(intro)
    area_a = np.array(areas)
    base = rng.uniform(0.25, 0.45, J)
    trend = {a: rng.uniform(0.005, 0.012) for a in AREAS}
    v_mat = {a: rng.normal(0, 0.03, (N, T)) for a in AREAS}
    eta = rng.normal(0, sd_item_year, (J, T))
    p = np.empty((J, N, T))
    for j in range(J):
        e = YEARS - intro_a[j]
        eff = np.where(e >= 0, RATES.get(intro_a[j], 0.0) * e, 0.0) if intro_a[j] in RATES else np.zeros(T)
        p[j] = (base[j] + trend[area_a[j]] * (YEARS - 2011)[None, :] + m[:, None] + v_mat[area_a[j]]
                + eta[j][None, :] + eff[None, :] * (1 + 0.3 * z[:, None]))
    y = (rng.uniform(size=p.shape) < np.clip(p, 0.0, 1.0)).astype(float)
    y[:, :, :][(YEARS[None, None, :] < intro_a[:, None, None]) | (rng.uniform(size=p.shape) < p_missing)] = np.nan
    ds = xr.Dataset(
        {"value": (("indicator", "municipality", "year"), y)},
        coords={"indicator": ids, "municipality": [f"{1000 + i:04d}" for i in range(N)], "year": YEARS,
                "area": ("indicator", area_a), "scale": ("indicator", np.array(["binary"] * J)),
                "county": ("municipality", [f"{c:02d}" for c in county]),
                "introduced": ("indicator", intro_a)},
    )
    truth = {e: float(np.mean([RATES[g] * e for g in COHORTS if g + e <= YEARS[-1]])) for e in range(1, 9)}
    return ds, pd.Series(truth, name="att")


def _coverage(n_reps: int, seed0: int, inference: str) -> pd.DataFrame:
    hits = []
    for r in range(n_reps):
        ds, truth = make_panel(seed0 + r)
        ev = cohort_event_study(ds, inference=inference).event.set_index("event_time").loc[1:]
        hits.append(((ev["lower"] <= truth) & (truth <= ev["upper"])).rename(r))
    return pd.concat(hits, axis=1)


def test_item_scores_reproduce_the_two_sample_t_test_on_a_balanced_cell():
    """Closed form: balanced cell, no municipality part — the item part equals the variance of
    the difference of item means with each group's own sample variance (Welch), and the df are
    Welch–Satterthwaite's."""
    rng = np.random.default_rng(4)
    N, nG, nC = 50, 3, 5
    item_shift = np.r_[rng.normal(0, 0.2, nG), rng.normal(0, 0.2, nC)]
    d = item_shift[:, None] + rng.normal(0, 0.1, (nG + nC, N))
    dG, dC = d[:nG], d[nG:]
    ok = np.ones(N, bool)
    dm = dG.mean(0) - dC.mean(0)
    est = float(dm.mean())
    sc = cell_scores(dG, dC, ok, np.arange(nG), np.arange(nG, nG + nC), nG + nC, est, dm)
    v = two_way_variance(sc, {"G": np.arange(nG), "C": np.arange(nG, nG + nC)})
    DG, DC = dG.mean(1), dC.mean(1)
    welch = DG.var(ddof=1) / nG + DC.var(ddof=1) / nC
    assert v["v_item"] == pytest.approx(welch, rel=1e-12)
    a, b = DG.var(ddof=1) / nG, DC.var(ddof=1) / nC
    assert v["df"] == pytest.approx(v["variance"] ** 2 / (a**2 / (nG - 1) + b**2 / (nC - 1)), rel=1e-12)
    # the municipality part is the one-sample variance of the municipality differences
    assert v["v_municipality"] == pytest.approx(dm.var(ddof=1) / N, rel=1e-12)
    # pair part: the double-demeaned residuals' variance estimate of the noise in both item means
    r = [x - x.mean(0, keepdims=True) - x.mean(1, keepdims=True) + x.mean() for x in (dG, dC)]
    s2 = [float((ri**2).sum()) / ((N - 1) * (n - 1)) for ri, n in zip(r, (nG, nC), strict=True)]
    assert v["v_pair"] == pytest.approx(s2[0] / (N * nG) + s2[1] / (N * nC), rel=1e-10)


def test_item_first_year_introductions_are_a_cohort_and_accounted_for():
    """The bug: with ``introduced`` given, items introduced in the first panel year were neither
    comparison items nor a cohort, and no list named them. They are a cohort now (their base
    year is in the panel), and the accounting lists every item and municipality."""
    ds, _ = make_panel(1, n_municipalities=60, n_counties=6)
    intro = pd.Series(ds["introduced"].values, index=ds["indicator"].values).astype(int)
    intro[intro == 2012] = 2011  # cohort 2012 now enters in the first panel year
    ds2 = ds.assign_coords(introduced=("indicator", intro.to_numpy()))
    ds2["value"] = ds2["value"].where(~(ds2["year"] < ds2["introduced"]))
    ds2["value"].loc[{"indicator": list(intro[intro == 2011].index), "year": 2011}] = 1.0
    res = cohort_event_study(ds2, introduced=intro)
    acc = res.accounting["items"].set_index("indicator")
    assert len(acc) == ds2.sizes["indicator"]
    first = acc.loc[intro[intro == 2011].index]
    assert (first["role"] == "cohort").all() and (first["n_cells"] > 0).all()
    assert 2011 in set(res.cells["cohort"])
    assert (acc["reason"] != "").all()
    mun = res.accounting["municipalities"]
    assert len(mun) == ds2.sizes["municipality"] and mun["used"].all()
    # an item the panel never asks in its base year and a coloured established item are listed, with why
    ds3 = ds2.assign_coords(introduced=("indicator", np.where(ds2["indicator"] == "A2018_0", 2022,
                                                               ds2["introduced"].values)))
    ds3["coloured"] = xr.DataArray(np.zeros((ds3.sizes["indicator"], ds3.sizes["year"])),
                                   dims=("indicator", "year"), coords={"indicator": ds3["indicator"], "year": ds3["year"]})
    ds3["coloured"].loc[{"indicator": "AE0", "year": 2015}] = 1.0
    acc3 = cohort_event_study(ds3).accounting["items"].set_index("indicator")
    assert acc3.loc["A2018_0", "role"] == "excluded" and "after the panel" in acc3.loc["A2018_0", "reason"]
    assert acc3.loc["AE0", "role"] == "excluded" and "colours" in acc3.loc["AE0", "reason"]
    # a cohort with one item left is flagged: its item-level variance cannot be estimated
    ds4 = ds.sel(indicator=[i for i in ds["indicator"].values if i not in ("A2014_1", "A2014_2")])
    r4 = cohort_event_study(ds4)
    assert r4.settings["single_item_groups"] == ["area A: 2014"] and "single item" in r4._repr_html_()
    # the naive TWFE lists its items and municipalities too, first-year introductions as a cohort
    tw = twfe_event_study(ds2, introduced=intro)
    tacc = tw.accounting["items"].set_index("indicator")
    assert len(tacc) == ds2.sizes["indicator"] and (tacc.loc[intro[intro == 2011].index, "role"] == "cohort").all()
    assert tw.accounting["municipalities"]["n_obs"].sum() == int(tw.settings["fit"].nobs)


@pytest.mark.slow
def test_two_way_intervals_cover_with_item_year_shocks(smoke):
    """Coverage of 95 % intervals over event times 1–8 (both event-time aggregates and the
    municipality-only comparison). Full: 150 replications, pooled coverage ≥ 0.93 and every event
    time ≥ 0.88; smoke: 30 replications, pooled ≥ 0.90. Municipality clustering alone must
    fall clearly short in both (the test fails if the item part is lost)."""
    n = 30 if smoke else 150
    two = _coverage(n, 1000, "item_municipality")
    one = _coverage(n, 1000, "municipality")
    pooled_two, pooled_one = float(two.to_numpy().mean()), float(one.to_numpy().mean())
    if smoke:
        assert pooled_two >= 0.90, two.mean(axis=1)
    else:
        assert pooled_two >= 0.93, two.mean(axis=1)
        assert two.mean(axis=1).min() >= 0.88, two.mean(axis=1)
    assert pooled_one <= 0.88, one.mean(axis=1)
    assert pooled_two - pooled_one >= 0.06


@pytest.mark.slow
def test_two_way_se_tracks_the_sampling_sd_and_mde_follows(smoke):
    """Mean two-way SE within 25 % of the replications' SD of the estimates at every event time
    up to 6 (full; smoke: pooled ratio within 35 %), and the MDE is (t_{0.975,df} + t_{0.8,df})·SE."""
    n = 25 if smoke else 120
    est, se = [], []
    for r in range(n):
        ds, _ = make_panel(5000 + r)
        ev = cohort_event_study(ds).event.set_index("event_time").loc[1:6]
        est.append(ev["estimate"].rename(r))
        se.append(ev["std_error"].rename(r))
        if r == 0:
            q = stats.t.ppf(0.975, ev["df"]) + stats.t.ppf(0.8, ev["df"])
            np.testing.assert_allclose(ev["mde"], q * ev["std_error"], rtol=1e-12)
    sd = pd.concat(est, axis=1).std(axis=1, ddof=1)
    mean_se = pd.concat(se, axis=1).mean(axis=1)
    ratio = mean_se / sd
    if smoke:
        assert 0.65 < float(mean_se.sum() / sd.sum()) < 1.35, ratio
    else:
        assert ((ratio > 0.75) & (ratio < 1.25)).all(), ratio
