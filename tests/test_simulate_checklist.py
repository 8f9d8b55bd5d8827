"""The checklist simulator: codings and breaks, labelling, the latent process, end-to-end harmonisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from ojpanel.data.reference import load_municipalities
from ojpanel.errors import ParameterError
from ojpanel.indicators.harmonise import harmonise
from ojpanel.indicators.spec import load_spec
from ojpanel.simulate.checklist import checklist_variables, simulate_checklist


@pytest.fixture(scope="module")
def sim():
    return simulate_checklist(seed=11)


def test_shape_labelling_and_determinism(sim):
    raw, truth = sim
    assert list(raw.columns) == [
        "kpi",
        "municipality",
        "year",
        "gender",
        "value",
        "count",
        "status",
    ]
    assert raw.attrs["synthetic"] == 1 and truth["synthetic"] == 1
    assert "not Kolada" in raw.attrs["title"]
    assert raw["municipality"].nunique() == 290
    assert set(raw["municipality"]) <= set(load_municipalities()["municipality"])
    assert sorted(raw["year"].unique()) == [2016, 2017, 2018, 2019, 2020]
    assert not raw.duplicated(["kpi", "municipality", "year"]).any()
    again, _ = simulate_checklist(seed=11)
    pd.testing.assert_frame_equal(raw, again)
    other, _ = simulate_checklist(seed=12)
    assert not raw["value"].equals(other["value"])
    assert truth["variables"] == [v.id for v in checklist_variables()]


def test_real_ids_codings_and_breaks(sim):
    raw, _ = sim
    spec = load_spec()
    by = raw.groupby(["kpi", "year"])["value"]
    levels = {k: set(v) for k, v in by.unique().items()}
    # every value is a code the spec allows for that KPI and year
    for v in checklist_variables(spec):
        for c in v.components:
            for y in range(2016, 2021):
                if (c.kpi, y) in levels and c.covers(y):
                    if c.codes is None:
                        assert min(levels[(c.kpi, y)]) >= 0 and max(levels[(c.kpi, y)]) <= 100
                    else:
                        assert levels[(c.kpi, y)] <= set(map(float, c.codes)), (c.kpi, y)
    # AUDIT/DUDIT: one three-level joint item in 2016, two ja/nej items from 2017
    assert levels[("U20485", 2016)] == {0.0, 1.0, 2.0}
    assert ("U20486", 2016) not in levels
    assert all(
        levels[("U20485", y)] == {0.0, 1.0} and levels[("U20486", y)] == {0.0, 1.0}
        for y in range(2017, 2021)
    )
    # ISU kön: the joint item in 2016, two settings from 2017
    assert ("U23576", 2016) not in levels and ("U23576", 2017) in levels
    # ISU for development has ja/delvis/nej
    assert levels[("U21548", 2018)] == {0.0, 1.0, 2.0}
    # LSS splice: predecessors before the flagged break year 2020, the combined item from then on
    assert ("U33631", 2019) not in levels and ("U33631", 2020) in levels
    assert ("U33534", 2019) in levels and ("U33534", 2020) not in levels
    # no unit survey in 2020
    assert ("U21571", 2019) in levels and ("U21571", 2020) not in levels


def test_harmoniser_recovers_the_true_variables(sim):
    raw, truth = sim
    h = harmonise(raw, variables=truth["variables"])
    got = h.values.set_index(["variable", "municipality", "year"])["value"].sort_index()
    exp = truth["harmonised"].set_index(["variable", "municipality", "year"])["value"].sort_index()
    pd.testing.assert_series_equal(got, exp, check_exact=True)
    assert h.attrs["synthetic"] == 1
    assert h.report["undetermined"].sum() == 0
    assert h.report.set_index("variable").loc["bou_samord_lss", "spliced"] > 0


def test_latent_process_closed_form(sim):
    _, truth = sim
    lat = truth["latent"]
    ref = load_municipalities().set_index("municipality")
    u = truth["municipality_effect"].reindex(lat["municipality"]).to_numpy()
    w = truth["county_effect"].reindex(ref.loc[lat["municipality"], "county"]).to_numpy()
    alpha = lat["variable"].map(truth["alpha"]).to_numpy()
    tau = lat["variable"].map(truth["tau"]).to_numpy()
    eta = alpha + u + w + tau * (lat["year"].to_numpy() - 2016)
    np.testing.assert_allclose(lat["eta"], eta, rtol=0, atol=1e-12)  # peer_effect = 0
    np.testing.assert_allclose(lat["p"], 1 / (1 + np.exp(-eta)), rtol=1e-12)
    binary = lat[
        ~lat["variable"].isin(["ao_audit_dudit", "eb_audit_dudit"])
        & ~lat["variable"].str.contains("hemtjanst|sabo")
    ]
    # calibration: adoption frequencies match p within 4 standard errors, overall and by year
    for _, g in [("all", binary), *binary.groupby("year")]:
        se = np.sqrt((g["p"] * (1 - g["p"])).sum()) / len(g)
        assert abs((g["adopted"] - g["p"]).mean()) < 4 * se


def test_lagged_leave_one_out_peer_mean_matches_independent_computation():
    _, truth = simulate_checklist(
        seed=3, variables=["eb_samord_barn", "ao_audit_dudit"], peer_effect=2.0
    )
    lat = truth["latent"].copy()
    county = load_municipalities().set_index("municipality")["county"]
    lat["county"] = lat["municipality"].map(county)
    lat["y01"] = np.where(lat["variable"].eq("ao_audit_dudit"), lat["y"] / 2, lat["y"])
    g = lat.groupby(["variable", "year", "county"])["y01"]
    lat["loo"] = (g.transform("sum") - lat["y01"]) / (g.transform("count") - 1)
    prev = lat[["variable", "municipality", "year", "loo"]].assign(year=lambda d: d["year"] + 1)
    m = lat.merge(prev, on=["variable", "municipality", "year"], suffixes=("", "_prev"))
    assert len(m) == 2 * 290 * 4
    np.testing.assert_allclose(m["peer_lag"], m["loo_prev"], rtol=1e-12)
    # Gotland is a county of its own: no peers, so the term is neutral (mean 1/2)
    assert m.loc[m["peer_lag"].isna(), "municipality"].unique().tolist() == ["0980"]
    eta0 = m["eta"] - 2.0 * (m["peer_lag"].fillna(0.5) - 0.5)
    # the peer term is the only difference from the no-peer linear predictor
    ref = simulate_checklist(
        seed=3, variables=["eb_samord_barn", "ao_audit_dudit"], peer_effect=0.0
    )[1]["latent"]
    base = ref.set_index(["variable", "municipality", "year"])["eta"]
    np.testing.assert_allclose(
        eta0.to_numpy(),
        base.reindex(pd.MultiIndex.from_frame(m[["variable", "municipality", "year"]])).to_numpy(),
        atol=1e-12,
    )


@pytest.mark.slow
def test_planted_peer_effect_shows_up_and_its_absence_does_not(smoke):
    names = [v.id for v in checklist_variables() if v.scale == "binary"][: 8 if smoke else 20]
    county = load_municipalities().set_index("municipality")["county"]

    def slope(effect: float) -> tuple[float, float]:
        _, truth = simulate_checklist(
            seed=5, variables=names, peer_effect=effect, sigma_county=0.0, p_missing=0.0
        )
        lat = truth["latent"].dropna(subset=["peer_lag"]).copy()
        groups = lat["municipality"].map(county).astype(int)
        # the peer mean varies by county x variable x year: cluster by county
        fit = smf.ols("adopted ~ peer_lag + C(variable) + C(year)", data=lat).fit(
            cov_type="cluster", cov_kwds={"groups": groups}
        )
        return fit.params["peer_lag"], fit.tvalues["peer_lag"]

    b0, t0 = slope(0.0)
    b1, t1 = slope(4.0)
    assert abs(t0) < 2.6 and abs(b0) < 0.15
    # logit effect 4 on a mean in [0, 1]: linear-probability slope about 4 * p(1 - p) ~ 0.6-0.8
    assert 0.4 < b1 < 1.0 and t1 > 5.0


def test_parameter_errors():
    with pytest.raises(ParameterError, match="consecutive"):
        simulate_checklist(years=[2016, 2018])
    with pytest.raises(ParameterError, match="not checklist variables"):
        simulate_checklist(variables=["ao_bu_helhet_hemtjanst"])
    with pytest.raises(ParameterError, match="probability"):
        simulate_checklist(p_ja=1.5)
    with pytest.raises(ParameterError, match="share U31485"):
        simulate_checklist(variables=["eb_utredningsmall", "eb_utredningsmall_ordinal"])
    raw, truth = simulate_checklist(
        seed=1, variables=["eb_utredningsmall_ordinal"], years=range(2017, 2019)
    )
    assert set(raw["value"]) <= {0.0, 1.0, 2.0} and sorted(raw["year"].unique()) == [2017, 2018]
    assert set(truth["harmonised"]["value"]) == {0.0, 1.0, 2.0}
