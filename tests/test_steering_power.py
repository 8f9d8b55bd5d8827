"""MDEs of the steering designs: delegated to the power machinery and checked by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ojpanel.designs.power import PowerResult, mde_from_se
from ojpanel.designs.steering import steering_power
from ojpanel.designs.steering._common import mde, reference_df
from ojpanel.errors import ParameterError

#: Allowance for the calibration of the planted logit effect (pilot panels, not the replications)
#: and for the spread of the true effect across simulated panels.
TOLERANCE = 0.05


def test_mde_delegates_to_power_machinery():
    se = np.array([0.01, 0.02, 0.5])
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    np.testing.assert_allclose(mde(se), z * se, rtol=1e-12)
    np.testing.assert_allclose(mde(se), mde_from_se(se), rtol=0, atol=0)
    t = stats.t.ppf(0.975, 19) + stats.t.ppf(0.8, 19)
    np.testing.assert_allclose(mde(se, df=19), t * se, rtol=1e-12)
    np.testing.assert_allclose(mde(se, df=19), mde_from_se(se, df=19), rtol=0, atol=0)
    assert mde(0.1, df=np.inf) == pytest.approx(z * 0.1, rel=1e-12)
    assert mde(0.1, alpha=0.1, power=0.9) == pytest.approx(
        (stats.norm.ppf(0.95) + stats.norm.ppf(0.9)) * 0.1, rel=1e-12)
    with pytest.raises(ParameterError):
        mde(0.1, alpha=1.5)


def test_reference_df_follows_the_fit():
    import pandas as pd

    from ojpanel.designs.steering._common import fit_fe

    rng = np.random.default_rng(3)
    f = pd.DataFrame({"municipality": np.repeat([f"m{i}" for i in range(30)], 4),
                      "year": np.tile(np.arange(2016, 2020), 30), "x": rng.normal(size=120)})
    f["y"] = 0.5 * f["x"] + rng.normal(size=120)
    res = fit_fe(f, "y", "x")
    assert reference_df(res) == res.df_resid and np.isfinite(res.df_resid)
    assert reference_df(object()) is None


#: Smoke size (CI) also simulates smaller panels: the claims hold at any panel size.
SMOKE_PANEL = {"n_municipalities": 150, "n_counties": 12}


def _check_power_at_analytic_mde(design: str, n: int, smoke: bool, seed: int) -> None:
    res = steering_power(design, effects=[0.0, 1.0], relative=True, n_sims=n, seed=seed,
                         **({**SMOKE_PANEL, "n_pilot": 5} if smoke else {}))
    assert isinstance(res, PowerResult)
    t = res.table
    size, pw = float(t["power"].iloc[0]), float(t["power"].iloc[1])
    # the planted effect is the analytic MDE the design reports at effect 0
    assert t["effect"].iloc[1] == pytest.approx(res.analytic)
    assert abs(t["realised"].iloc[1] / res.analytic - 1) < 0.1
    band = TOLERANCE + (stats.norm.ppf(0.9995) * np.sqrt(0.8 * 0.2 / n) if smoke else 0.0)
    assert abs(pw - 0.80) <= band, res.summary
    size_band = 0.02 + stats.norm.ppf(0.9995) * np.sqrt(0.05 * 0.95 / n)
    assert abs(size - 0.05) <= size_band, res.summary


@pytest.mark.slow
def test_event_study_power_at_analytic_mde_is_080(smoke):
    """Cohort event study (average post-introduction effect): power at its reported MDE.

    Full size: 1000 replications per effect, band 0.80 ± 0.05. Smoke size (CI): 80 on panels of
    150 municipalities (5 pilot panels to plant the effect), band
    0.80 ± (tolerance + 3.29·sqrt(.16/n)) = 0.80 ± (0.05 + 0.15). Size at effect 0 within
    0.05 ± (0.02 + 3.29·sqrt(.0475/n)).
    """
    _check_power_at_analytic_mde("event_study", 80 if smoke else 1000, smoke, seed=21)


@pytest.mark.slow
def test_combined_power_at_analytic_mde_is_below_080(smoke):
    """Steering term of the joint model: the MDE reported at effect 0 is optimistic.

    The LPM's residual variance grows with the adoption rate, so a red-flag effect of the size of
    the analytic MDE comes with a larger SE than the null fit reports: simulated power at the
    analytic MDE is about 0.75 (1000 replications, MC SE 0.014), not 0.80. What holds is the normal
    approximation evaluated with the SE the design reports *at* the effect:
    ``Φ(mean estimate / SE_δ − z_{0.975})``, checked within ± (tolerance + 3.29·sqrt(p(1−p)/n)).
    Full size: 1000 replications per effect, where power at the analytic MDE must also be clearly
    below 0.80 (by more than 2.58 Monte Carlo SE). Smoke size (CI): 50 replications of 150-municipality panels. Size at effect 0 within
    0.05 ± (0.02 + 3.29·sqrt(.0475/n)).
    """
    n = 50 if smoke else 1000
    res = steering_power("combined", effects=[0.0, 1.0], relative=True, n_sims=n, seed=22,
                         **(SMOKE_PANEL if smoke else {}))
    t = res.table
    size, pw = float(t["power"].iloc[0]), float(t["power"].iloc[1])
    assert abs(t["realised"].iloc[1] / res.analytic - 1) < 0.1
    q = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    se_at_effect = float(t["mean_mde"].iloc[1]) / q
    assert se_at_effect > res.analytic / q  # the SE grows with the effect
    predicted = float(stats.norm.cdf(t["mean_estimate"].iloc[1] / se_at_effect - stats.norm.ppf(0.975)))
    band = TOLERANCE + stats.norm.ppf(0.9995) * np.sqrt(predicted * (1 - predicted) / n)
    assert abs(pw - predicted) <= band, res.summary
    if not smoke:
        assert pw + stats.norm.ppf(0.995) * float(t["mc_se"].iloc[1]) < 0.80, res.summary
    size_band = 0.02 + stats.norm.ppf(0.9995) * np.sqrt(0.05 * 0.95 / n)
    assert abs(size - 0.05) <= size_band, res.summary


def test_same_seed_same_table_and_dask():
    kw = dict(effects=[0.0, 0.02], n_sims=4, seed=5, n_pilot=2, chunk_size=2, n_municipalities=120,
              n_counties=8)
    a = steering_power("adoption", **kw)
    b = steering_power("adoption", **kw)
    assert a.table.equals(b.table)
    assert a.settings["simulator"] == {"n_municipalities": 120, "n_counties": 8}
    assert set(a.to_frame().columns) >= {"design", "effect", "planted", "realised", "power", "mc_se", "n_sims"}
    assert "SYNTHETIC" in a.summary
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                 dashboard_address=None) as lc,
        distributed.Client(lc) as client,
    ):
        c = steering_power("adoption", client=client, **kw)
    assert a.table.equals(c.table)


def test_bad_arguments_are_parameter_errors():
    with pytest.raises(ParameterError, match="design must be one of"):
        steering_power("rd")
    with pytest.raises(ParameterError, match="plants"):
        steering_power("combined", n_sims=2, steering_effect=0.5)
    with pytest.raises(ParameterError, match="unknown simulator"):
        steering_power("event_study", n_sims=2, n_items=3)
    with pytest.raises(ParameterError, match="alpha"):
        steering_power("event_study", alpha=0.0)


def test_run_steering_offers_simulated_mdes():
    from ojpanel.designs.steering import run_steering, simulate_steering

    sim = simulate_steering(3, n_municipalities=60, n_counties=6)
    plain = run_steering(sim.panel, logit=False)
    assert plain.power == {} and plain.mde_table().empty
    r = run_steering(sim.panel, logit=False, power_sims=3, power_seed=1, power_pilot=4)
    tab = r.mde_table()
    assert set(tab["design"]) == {"adoption", "combined", "event_study"}
    assert (tab["n_sims"] == 3).all() and np.isfinite(tab["analytic_mde"]).all()
    assert r.power["combined"].settings["simulator"] == {"n_municipalities": 60, "n_counties": 6}
    assert "analytic vs simulated" in r.summary
