"""The colour-threshold RD as one design object, and why the density test rejects on OJ's values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ojpanel.designs.rd import (
    PLACEBO,
    THRESHOLDS,
    RDDesign,
    bandwidth_cap,
    colour_rd,
    density_diagnostics,
    density_running_variable,
)
from ojpanel.designs.rd_power import rd_power
from ojpanel.errors import ParameterError


def _values(seed: int, decimals: int | None, n_ind: int = 6, n_years: int = 8, n: int = 290) -> xr.DataArray:
    """OJ-like values without any sorting around the thresholds: smooth, optionally rounded."""
    rng = np.random.default_rng(seed)
    v = 80 + 8 * rng.standard_normal((n_ind, n, n_years))
    if decimals is not None:
        v = np.round(v, decimals)
    return xr.DataArray(
        v, dims=("indicator", "municipality", "year"),
        coords={"indicator": [f"i{k}" for k in range(n_ind)], "municipality": [f"{m:04d}" for m in range(n)],
                "year": np.arange(2014, 2014 + n_years), "direction": ("indicator", np.ones(n_ind))},
    )  # fmt: skip


def _persistent(seed: int = 0) -> xr.Dataset:
    """A panel with persistent levels (so next-year changes and lags are informative)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((3, 290, 1))
    v = 50 + 5 * (a + 0.7 * rng.standard_normal((3, 290, 7)))
    return _values(0, None, n_ind=3, n_years=7).copy(data=v).to_dataset(name="value")


def test_bandwidth_cap_and_defaults_in_one_place():
    assert bandwidth_cap(0.25) == 0.25 and bandwidth_cap(0.5) == 0.25
    assert bandwidth_cap(0.375) == pytest.approx(0.125)
    assert bandwidth_cap(0.25, (0.25, 0.35)) == pytest.approx(0.1)
    d = RDDesign()
    assert (d.thresholds, d.placebo) == (THRESHOLDS, PLACEBO)
    assert d.cap(0.75) == 0.25 and RDDesign(thresholds=(0.25, 0.35)).cap(0.25) == pytest.approx(0.1)
    for bad in (dict(thresholds=(0.25, 1.2)), dict(cluster="county"), dict(bandwidth=0.0), dict(seed=-1)):
        with pytest.raises(ParameterError):
            RDDesign(**bad)


def test_colour_rd_is_the_design_fit():
    ds = _persistent()
    settings = dict(bandwidth=0.3, placebo=(0.5,), diagnostics=False)
    a = colour_rd(ds, **settings)
    b = RDDesign(**settings).fit(ds)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.design == RDDesign(**settings)
    # a fixed bandwidth is capped like a selected one, and the numbers are rdrobust's at that h = b
    from rdrobust import rdrobust

    row = a.table.set_index("cutoff").loc[0.25]
    assert row["bandwidth"] == 0.25 and bool(row["bandwidth_capped"])
    d = a.data
    ref = rdrobust(d["change"].to_numpy(), d["rank"].to_numpy(), c=0.25, h=0.25, b=0.25,
                   cluster=pd.factorize(d["municipality"])[0])
    assert row["estimate"] == pytest.approx(ref.coef.iloc[0, 0], rel=1e-10)
    assert row["std_error"] == pytest.approx(ref.se.iloc[0, 0], rel=1e-10)
    # settings passed with a design change its copy
    c = colour_rd(ds, design=RDDesign(bandwidth=0.3, diagnostics=False), placebo=())
    assert c.design.placebo == () and len(c.table) == 2


def test_rd_power_simulates_the_design_that_is_fitted():
    ds = _persistent(1)
    design = RDDesign(thresholds=(0.25, 0.35), bandwidth=0.2, placebo=(), diagnostics=False)
    fit = design.fit(ds).table.set_index("cutoff").loc[0.25]
    pw = rd_power(ds, cutoff=0.25, design=design, n_sims=20, effects=[0.0, 0.2], seed=2)
    # the cap of the design's thresholds (0.1, not the default 0.25) and its jump's SE
    assert pw.settings["bandwidth"] == pytest.approx(0.1) == fit["bandwidth"]
    assert pw.settings["real_se"] == pytest.approx(fit["std_error"], rel=1e-12)
    assert pw.settings["thresholds"] == [0.25, 0.35]
    default = rd_power(ds, cutoff=0.25, bandwidth=0.2, n_sims=20, effects=[0.0, 0.2], seed=2)
    assert default.settings["bandwidth"] == pytest.approx(0.2)
    assert default.analytic != pytest.approx(pw.analytic)


@pytest.mark.parametrize("seed", [0, 1])
def test_density_test_rejects_from_discreteness_alone(seed):
    """Whole-number values, no sorting: the threshold is a tied value, and the test rejects; the
    same values unrounded, or without the ties at the threshold (donut), do not reject."""
    rounded = density_diagnostics(density_running_variable(_values(seed, 0), 0.25))
    assert rounded["density_p"] < 0.01
    assert rounded["density_share_at_cutoff"] > 0.03  # ~ one municipality in 25 ties with the threshold
    assert rounded["density_p_donut"] > 0.05
    smooth = density_diagnostics(density_running_variable(_values(seed, None), 0.25))
    assert smooth["density_p"] > 0.05 and smooth["density_p_donut"] > 0.05
    # continuous values: the Hazen quantile at position c·n + ½ = 73 is one observation per year
    assert smooth["density_n_at_cutoff"] == 6 * 8


def test_density_rows_carry_both_tests():
    from rddensity import rddensity

    ds = _values(3, 0, n_ind=3, n_years=5).to_dataset(name="value")
    res = RDDesign(bandwidth=0.2, placebo=(), lr_reps=99).fit(ds)
    row = res.density.set_index("cutoff").loc[0.75]
    x = density_running_variable(ds, 0.75)
    ref = rddensity(X=x[x != 0], c=0)
    assert row["density_p_donut"] == pytest.approx(ref.test["p_jk"], rel=1e-10)
    assert row["density_n_at_cutoff"] == int((x == 0).sum())
    assert "donut" in res.summary or "density_p_donut" in res.summary
