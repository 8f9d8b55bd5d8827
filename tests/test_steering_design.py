"""The steering designs as objects: the fits, their inference and the power simulation share one
definition per design, with its defaults in one place."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from ojpanel.designs.steering import (
    cohort_event_study,
    fit_adoption,
    oj_use_moderator,
    run_steering,
    steering_vs_benchmarking,
    twfe_event_study,
)
from ojpanel.designs.steering.design import (
    ADOPTION,
    ADOPTION_LOGIT,
    COMBINED,
    EVENT_STUDY,
    OJ_USE,
    OJ_USE_SHOCKS,
    POWER_DESIGNS,
    TWFE_EVENT_STUDY,
    SteeringDesign,
    effect_column,
)
from ojpanel.designs.steering.power import DESIGNS, steering_power
from ojpanel.designs.steering.transitions import adoption_frame, restrict_items
from ojpanel.errors import ParameterError
from ojpanel.simulate.steering import simulate_steering


@pytest.fixture(scope="module")
def sim():
    return simulate_steering(4, n_municipalities=80, n_counties=6, steering_effect=0.5)


def _default(func, name):
    return inspect.signature(func).parameters[name].default


def test_the_functions_take_their_defaults_from_the_designs():
    assert _default(fit_adoption, "terms") == ADOPTION.regressors == ("red_prev",)
    assert _default(fit_adoption, "peer_group") == ADOPTION.peer_group == "county"
    assert _default(fit_adoption, "items") == ADOPTION.items == "established"
    assert _default(steering_vs_benchmarking, "peer_group") == COMBINED.peer_group
    assert _default(oj_use_moderator, "oj_year") == OJ_USE.oj_year == 2019
    assert _default(oj_use_moderator, "cluster") == OJ_USE.cluster == "municipality"
    assert _default(cohort_event_study, "inference") == EVENT_STUDY.inference == "item_municipality"
    assert _default(cohort_event_study, "exclude_coloured") is EVENT_STUDY.exclude_coloured
    assert _default(twfe_event_study, "exclude_coloured") is TWFE_EVENT_STUDY.exclude_coloured
    assert _default(run_steering, "oj_year") == OJ_USE.oj_year
    assert set(OJ_USE_SHOCKS) == {"county", "county×item×year"}


def test_the_fits_are_the_designs_regressions(sim):
    f = restrict_items(sim.panel, adoption_frame(sim.panel, peer_group=ADOPTION.peer_group), ADOPTION.items)
    f = f.dropna(subset=["adopt", "red_prev"]).reset_index(drop=True)
    lpm = fit_adoption(sim.panel)
    direct = ADOPTION.fit(f)
    assert lpm.params["red_prev"] == direct.params["red_prev"]
    assert lpm.std_errors["red_prev"] == direct.std_errors["red_prev"]
    assert lpm.settings["effects"] == ADOPTION.effects_label and lpm.settings["cluster"] == ADOPTION.cluster
    logit = fit_adoption(sim.panel, model="logit")
    fit, columns = ADOPTION_LOGIT.fit_logit(f)
    assert logit.params["red_prev"] == pytest.approx(float(np.asarray(fit.params)[columns.index("red_prev")]), abs=0)
    assert logit.settings["effects"] == ADOPTION_LOGIT.effects_label
    assert any(c.startswith("area_year_") for c in columns) and any(c.startswith("county_") for c in columns)
    comb = steering_vs_benchmarking(sim.panel)
    assert list(comb.fit.params.index) == list(COMBINED.regressors)
    assert comb.settings["effects"] == COMBINED.effects_label
    tw = twfe_event_study(sim.panel)
    assert tw.settings["effects"] == TWFE_EVENT_STUDY.effects_label
    assert tw.settings["fit"].params.index.str.startswith("event_time_").all()


def test_moderator_uses_the_design_of_its_shocks(sim):
    m = oj_use_moderator(sim.panel, sim.users)
    assert m.settings["effects"] == OJ_USE.effects_label
    assert list(m.settings["fit"].params.index) == list(OJ_USE.regressors)
    within = oj_use_moderator(sim.panel, sim.users, shocks="county×item×year")
    assert within.settings["effects"] == OJ_USE_SHOCKS["county×item×year"].effects_label
    with pytest.raises(ParameterError, match="shocks"):
        oj_use_moderator(sim.panel, sim.users, shocks="region")


def test_power_simulates_the_designs_it_names():
    assert DESIGNS == tuple(POWER_DESIGNS) == ("adoption", "event_study", "combined")
    assert {d: POWER_DESIGNS[d].planted for d in DESIGNS} == {
        "adoption": "steering_effect", "event_study": "intro_effects", "combined": "steering_effect"}
    assert POWER_DESIGNS["combined"] is COMBINED and POWER_DESIGNS["event_study"] is EVENT_STUDY
    with pytest.raises(ParameterError, match="steering_effect"):
        steering_power("adoption", n_sims=1, steering_effect=0.3)
    res = steering_power("adoption", effects=[0.0], n_sims=2, n_pilot=1, seed=3, n_municipalities=60, n_counties=6)
    assert res.settings["planted"] == ADOPTION.planted


def test_design_options_and_errors():
    d = ADOPTION.with_options(cluster="county")
    assert d.cluster == "county" and ADOPTION.cluster == "municipality"
    assert d.effects() == {"entity": "municipality", "entity_effects": True,
                           "other_effects": ["indicator", ("area", "year")]}
    with pytest.raises(ParameterError, match="estimator"):
        SteeringDesign("x", outcome="adopt", estimator="ols")
    with pytest.raises(ParameterError, match="items"):
        ADOPTION.with_options(items="new")
    with pytest.raises(ParameterError, match="not a logit"):
        ADOPTION.fit_logit(None)
    with pytest.raises(ParameterError, match="not a fixed-effects"):
        EVENT_STUDY.fit(None)
    import pandas as pd

    frame = pd.DataFrame({"area": ["a", "b"], "year": [2020, 2021]})
    assert effect_column(frame, ("area", "year")).tolist() == ["a:2020", "b:2021"]


def test_full_rank_keeps_the_columns_a_rank_check_per_column_keeps():
    """Greedy selection through the R of one QR equals numpy's matrix_rank on the growing set of
    columns, on dummy designs with nested (collinear) effects and an exact linear combination."""
    import pandas as pd

    from ojpanel.designs.steering.design import full_rank
    from ojpanel.errors import ModelError

    def by_matrix_rank(X, keep):
        cols, base = list(keep), X[list(keep)].to_numpy()
        for c in X.columns:
            trial = np.column_stack([base, X[c].to_numpy()])
            if c not in keep and np.linalg.matrix_rank(trial) > np.linalg.matrix_rank(base):
                base, cols = trial, [*cols, c]
        return cols

    rng = np.random.default_rng(0)
    for trial in range(12):
        n = int(rng.integers(60, 2000))
        item, year = rng.integers(0, 6, n), rng.integers(0, 5, n)
        X = pd.concat([pd.DataFrame({"const": 1.0, "x": rng.normal(size=n)}),
                       pd.get_dummies(pd.Series(item).astype(str), prefix="item", drop_first=True, dtype=float),
                       pd.get_dummies(pd.Series(item // 3).astype(str) + ":" + pd.Series(year).astype(str),
                                      prefix="area_year", drop_first=True, dtype=float)], axis=1)
        if trial % 2:
            X["combination"] = 2 * X["x"] + X["item_1"]
        got = list(full_rank(X, ["const", "x"]).columns)
        assert got == by_matrix_rank(X, ["const", "x"]) and len(got) < X.shape[1]
    with pytest.raises(ModelError, match="collinear"):
        full_rank(X.assign(x2=2 * X["x"]), ["const", "x", "x2"])
