"""Power of the colour-threshold RD: size at zero, simulated vs analytic MDE, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import ojpanel
from ojpanel.designs.rd import colour_rd
from ojpanel.designs.rd_power import rd_power
from ojpanel.errors import ParameterError


@pytest.fixture(scope="module")
def ds():
    panel = ojpanel.build_panel(areas=["äldreomsorg"], kinds=["result"], years=range(2015, 2021)).oj.directional()
    cov = panel.oj.coverage().mean("year")
    keep = [str(i) for i in cov["indicator"].values[cov.values >= 0.8]][:6]
    return panel.oj.select(indicators=keep)


@pytest.mark.slow
def test_rd_power_size_and_mde(ds, smoke):
    n = 120 if smoke else 600
    res = rd_power(ds, cutoff=0.25, n_sims=n, seed=3)
    size = float(res.table.loc[res.table["effect"] == 0, "power"].iloc[0])
    # binomial band around alpha (99.9 %), for the number of replications used
    half = 3.3 * np.sqrt(0.05 * 0.95 / n)
    assert 0.05 - half - 0.02 <= size <= 0.05 + half + 0.02
    assert np.all(np.diff(res.table["power"].to_numpy()) >= -3 * res.table["mc_se"].max())
    assert res.mde == pytest.approx(res.analytic, rel=0.35 if smoke else 0.2)
    # the analytic MDE is built from the same SE that colour_rd reports
    rd = colour_rd(ds).to_frame().set_index("cutoff")
    assert res.settings["real_se"] == pytest.approx(rd.loc[0.25, "std_error"], rel=1e-12)


def test_rd_power_is_seeded(ds):
    a = rd_power(ds, n_sims=20, effects=[0.0, 0.1], seed=1)
    b = rd_power(ds, n_sims=20, effects=[0.0, 0.1], seed=1)
    assert a.table.equals(b.table)
    with pytest.raises(ParameterError, match="percentile rank"):
        rd_power(ds, cutoff=1.5)


def test_one_fit_tests_every_planted_jump():
    """A jump δ planted as ``y + δ·1{r ≥ c}`` moves the estimate by δ and keeps the SE: the
    shortcut the simulation takes equals refitting (local_linear) for every δ, with clusters."""
    from ojpanel.designs.rd import local_linear, local_linear_jump

    rng = np.random.default_rng(0)
    r = rng.uniform(0, 1, 800)
    y = 0.3 * r + rng.normal(0, 1, 800)
    cl = rng.integers(0, 120, 800)
    est, se = local_linear_jump(r, y, 0.25, 0.2, cl)
    for delta in (0.0, 0.4, -1.3):
        refit = local_linear(r, y + delta * (r >= 0.25), 0.25, 0.2, cl)
        assert refit["estimate"] == pytest.approx(est + delta, abs=1e-12)
        assert refit["std_error"] == pytest.approx(se, rel=1e-10)
        assert refit["p_value"] == pytest.approx(2 * stats.norm.sf(abs(est + delta) / se), rel=1e-8, abs=1e-300)


def test_power_cli_rd(ds, tmp_path):
    from typer.testing import CliRunner

    from ojpanel.cli import app

    path = ojpanel.save_panel(ds, tmp_path / "p.nc")
    out = tmp_path / "power.csv"
    r = CliRunner().invoke(app, ["power", "--design", "rd", "--panel", str(path), "--n-sims", "10",
                                 "--effects", "0,0.1", "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert "Analytic MDE (z·SE of the real-data jump)" in r.output
    import pandas as pd

    table = pd.read_csv(out)
    assert table["effect"].tolist() == [0.0, 0.1] and table["design"].eq("colour_rd").all()
