"""Power and MDE by simulation: variance components, the analytic MDE calibration, the peer
design, dask = serial, and the ``ojpanel power`` command."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ojpanel.designs.peer import PeerDesign
from ojpanel.designs.power import analytic_mde, power, size_adjusted_level, variance_components
from ojpanel.errors import ParameterError
from ojpanel.simulate.panel import simulate_panel


def test_variance_components_recover_the_simulation():
    ds = simulate_panel(
        n_municipalities=290,
        years=range(2010, 2021),
        sigma_municipality=1.5,
        sigma_year=0.3,
        sigma_county_year=0.5,
        sigma_e=0.8,
        seed=9,
    )
    vc = variance_components(ds)
    assert vc.sd_residual == pytest.approx(0.8, rel=0.05)
    assert vc.sd_municipality == pytest.approx(1.5, rel=0.12)
    assert vc.sd_county_year == pytest.approx(0.5, rel=0.25)
    # within county×year cells the own lag carries the stable municipality differences
    assert vc.rho == pytest.approx(1.5**2 / (1.5**2 + 0.8**2), abs=0.05)


def test_analytic_mde_closed_form():
    # two-sample z-test: (1.96 + 0.8416)·sqrt((1 + 1/5)·4/200)
    assert analytic_mde(1.0, 1.0, 200, 5) == pytest.approx(
        (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * np.sqrt(1.2 * 4 / 200)
    )


@pytest.mark.slow
def test_simulated_power_at_analytic_mde_is_080(smoke):
    """Complete panel, no county×year shocks: power at the analytic MDE is 0.80 ± 0.03.

    Full size: 4000 replications (MC SE 0.006). Smoke size (CI): 600 replications, band
    0.80 ± (0.03 + 3.29·0.016) — the same tolerance plus a 99.9 % Monte Carlo margin.
    """
    n = 600 if smoke else 4000
    ds = simulate_panel(
        n_municipalities=290,
        years=range(2016, 2021),
        sigma_municipality=1.0,
        sigma_county_year=0.0,
        sigma_e=1.0,
        seed=1,
    )
    vc = variance_components(ds)
    mde = analytic_mde(vc.sd_municipality, vc.sd_residual, 290, 5)
    res = power(ds, design="users", effects=[mde], n_sims=n, components=vc, seed=4)
    band = 0.03 + (stats.norm.ppf(0.9995) * np.sqrt(0.8 * 0.2 / n) if smoke else 0.0)
    assert abs(res.table["power"].iloc[0] - 0.80) <= band
    assert res.analytic == pytest.approx(mde)


def test_power_curve_and_mde_peer_design():
    ds = simulate_panel(
        n_municipalities=150,
        n_counties=15,
        years=range(2014, 2020),
        rho=0.4,
        sigma_county_year=0.3,
        missing=0.05,
        seed=2,
    )
    res = power(
        ds,
        design="peer",
        effects=[0.0, 0.3, 1.0],
        n_sims=120,
        seed=3,
        group="kommungrupp_2017",
        shocks="county",
    )
    p = res.table["power"].to_numpy()
    assert p[0] < 0.2 and p[2] > p[1] > p[0]
    assert "MDE" in res.summary and set(res.to_frame().columns) >= {
        "design",
        "effect",
        "power",
        "mc_se",
    }
    with pytest.raises(ParameterError):
        power(ds, design="rdd")


def test_users_design_tests_every_effect_with_one_fit():
    """Planting δ·treated moves the estimate by δ and keeps the residuals: p-values for a grid of
    effects from one fit per replication equal those of refitting with each effect planted."""
    from ojpanel.designs import power as pw
    from ojpanel.designs.users import UsersDesign

    ds = simulate_panel(n_municipalities=80, n_counties=8, years=range(2016, 2020), seed=3)
    da = pw._indicator(ds, str(ds["indicator"].values[0]))
    design = UsersDesign()
    vc, st = variance_components(da), pw._structure(da, design)
    grid = np.array([0.0, 0.3, -0.8])
    kw = dict(design=design, vc=vc, st=st, share=0.5)
    every = pw._simulate_chunk(5, np.random.default_rng(2), effect=grid, **kw)
    for k, eff in enumerate(grid):
        one = pw._simulate_chunk(5, np.random.default_rng(2), effect=float(eff), **kw)
        np.testing.assert_allclose(every[:, k], one, rtol=1e-9, atol=1e-14)
    assert len(np.unique(every.round(6))) == every.size  # the effects really differ
    with pytest.raises(ParameterError, match="users design"):
        pw._simulate_chunk(2, np.random.default_rng(2), effect=grid, design=PeerDesign(), vc=vc,
                           st=pw._structure(da, PeerDesign()), share=0.5)


def test_power_on_dask_equals_serial():
    distributed = pytest.importorskip("distributed")
    ds = simulate_panel(n_municipalities=100, n_counties=10, years=range(2016, 2020), seed=5)
    kw = dict(design="users", effects=[0.2, 0.5], n_sims=60, seed=8, chunk_size=20)
    serial = power(ds, **kw)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as lc,
        distributed.Client(lc) as client,
    ):
        par = power(ds, client=client, **kw)
    assert serial.table.equals(par.table)


def test_power_cli(tmp_path):
    from typer.testing import CliRunner

    from ojpanel.cli import app

    ds = simulate_panel(layout="real", years=range(2016, 2020), seed=6)
    path = tmp_path / "panel.nc"
    from ojpanel.panel.io import save_panel

    save_panel(ds, path)  # stores the content hash that `ojpanel power` verifies
    out = tmp_path / "power.csv"
    r = CliRunner().invoke(
        app,
        [
            "power",
            "--design",
            "users",
            "--panel",
            str(path),
            "--effects",
            "0,0.6",
            "--n-sims",
            "40",
            "--seed",
            "1",
            "--output",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    import pandas as pd

    t = pd.read_csv(out)
    assert list(t["effect"]) == [0.0, 0.6] and t["power"].between(0, 1).all()
    bad = CliRunner().invoke(app, ["power", "--design", "nope", "--panel", str(path)])
    assert bad.exit_code == 2


def test_size_adjusted_level_closed_form():
    """``min(alpha, p_(⌊alpha·n⌋))``: stricter for an over-rejecting test, alpha otherwise."""
    p = np.arange(1, 101) / 100.0  # p_(5) = 0.05
    assert size_adjusted_level(p, 0.05) == pytest.approx(0.05)
    over = p / 2  # twice too many small p-values: threshold halves
    assert size_adjusted_level(over, 0.05) == pytest.approx(0.025)
    conservative = np.minimum(p * 2, 1.0)
    assert size_adjusted_level(conservative, 0.05) == pytest.approx(0.05)
    with pytest.raises(ParameterError, match="too few"):
        size_adjusted_level(p[:10], 0.05)


def test_size_adjustment_holds_an_over_rejecting_test_to_its_level():
    """No small-sample scaling and a normal reference with 12 clusters over-rejects; the MDE then
    rests on size-adjusted power, which is exactly ≤ alpha at zero effect and never above the
    nominal power; the null is simulated even when not asked for."""
    ds = simulate_panel(n_municipalities=120, n_counties=12, years=range(2014, 2020), rho=0.4,
                        sigma_county_year=0.3, seed=9)
    kw = dict(design="peer", n_sims=200, seed=3, group="kommungrupp_2017", shocks="county",
              convention="none")
    res = power(ds, effects=[0.0, 0.2, 0.5], **kw)
    t = res.table
    assert res.size == pytest.approx(t["power"].iloc[0])
    assert t["power_size_adjusted"].iloc[0] <= 0.05
    assert (t["power_size_adjusted"] <= t["power"] + 1e-12).all()
    assert res.critical_p <= 0.05 and res.size_adjusted
    assert "Size at zero effect" in res.summary
    # the added null takes the next seed after the grid's: the same draws as asking for it last
    res2 = power(ds, effects=[0.2, 0.5], **kw)
    last = power(ds, effects=[0.2, 0.5, 0.0], **kw)
    assert res2.size == last.size and res2.critical_p == last.critical_p
    assert res2.table["power"].equals(last.table["power"].iloc[:2])
    nominal = power(ds, effects=[0.2, 0.5], size_adjusted=False, **kw)
    assert nominal.size is None and "power_size_adjusted" not in nominal.table
    assert nominal.table["power"].equals(res2.table["power"])
