"""Colour-threshold RD: planted jump recovered, placebo cut-offs flat, local linear = statsmodels
WLS with clustered errors, bandwidth rule bounded, plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ojpanel.designs.rd import colour_rd, local_linear, plot_rd, rd_data
from ojpanel.simulate.panel import simulate_panel


def _planted(tau: float, seed: int = 0, n_ind: int = 6):
    """Synthetic panel where municipalities coloured red in t gain ``tau`` (in SD units) in t+1."""
    ds = simulate_panel(
        n_municipalities=290,
        years=range(2012, 2021),
        n_indicators=n_ind,
        rho=0.0,
        sigma_municipality=1.0,
        sigma_e=0.7,
        seed=seed,
    )
    v = ds["value"].values.copy()
    for k in range(v.shape[0]):
        sd = np.nanstd(v[k], ddof=1)
        for t in range(v.shape[2] - 1):
            r = (stats.rankdata(v[k, :, t]) - 0.5) / v.shape[1]
            v[k, :, t + 1] += tau * sd * (r < 0.25)
    return ds.copy(data={"value": v})


def test_planted_jump_is_recovered_and_placebos_are_flat():
    res = colour_rd(_planted(0.3, seed=1))
    t = res.table.set_index("cutoff")
    red = t.loc[0.25]
    assert (
        abs(red["estimate"] - (-0.3)) < 4 * red["std_error"]
    )  # red gains 0.3 → jump above−below = −0.3
    assert red["p_value"] < 0.01
    assert abs(t.loc[0.75, "estimate"]) < 4 * t.loc[0.75, "std_error"]
    for c in (0.375, 0.5, 0.625):
        assert abs(t.loc[c, "estimate"]) < 4 * t.loc[c, "std_error"]
    assert (t["bandwidth"] <= 0.25 + 1e-12).all() and (t["bandwidth"] > 0.02).all()
    assert "threshold" in res.summary


def test_no_jump_without_colour_effect():
    res = colour_rd(_planted(0.0, seed=2))
    z = res.table["statistic"].abs()
    assert (z < 4).all()


def _statsmodels_rd(d: pd.DataFrame, c: float, h: float, degree: int):
    """Independent reference: statsmodels WLS of ``1, D, x, D·x, …`` with the triangular kernel,
    errors clustered by municipality."""
    import statsmodels.api as sm

    x = d["rank"] - c
    w = np.clip(1 - x.abs() / h, 0, None)
    s = w > 0
    D = (x >= 0).astype(float)
    cols = {"const": 1.0, "D": D}
    for j in range(1, degree + 1):
        cols |= {f"x{j}": x**j, f"Dx{j}": D * x**j}
    X = pd.DataFrame(cols)[s]
    return sm.WLS(d["change"][s], X, weights=w[s]).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(d["municipality"][s])[0]}
    )


def _ours(d: pd.DataFrame, c: float, h: float) -> dict:
    return local_linear(d["rank"].to_numpy(), d["change"].to_numpy(), c, h, d["municipality"].to_numpy())


def test_local_linear_equals_statsmodels_wls_clustered():
    d = rd_data(_planted(0.2, seed=3, n_ind=2))
    ours, ref = _ours(d, 0.25, 0.12), _statsmodels_rd(d, 0.25, 0.12, 1)
    assert ours["estimate"] == pytest.approx(ref.params["D"], abs=1e-10)
    assert ours["std_error"] == pytest.approx(ref.bse["D"], rel=1e-8)
    assert ours["p_value"] == pytest.approx(ref.pvalues["D"], rel=1e-6)


def test_plot_returns_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = colour_rd(_planted(0.3, seed=4, n_ind=2), bandwidth=0.1)
    fig = plot_rd(res)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) >= 4
    plt.close(fig)


def test_robust_bias_corrected_equals_statsmodels_local_quadratic():
    """With pilot bandwidth = h, the CCT bias-corrected jump and robust SE are the local quadratic
    fit's: compare with statsmodels WLS (same kernel, CRV1 by municipality)."""
    d = rd_data(_planted(0.2, seed=4, n_ind=2))
    ours, ref = _ours(d, 0.25, 0.15), _statsmodels_rd(d, 0.25, 0.15, 2)
    assert ours["estimate_bc"] == pytest.approx(ref.params["D"], abs=1e-10)
    assert ours["std_error_robust"] == pytest.approx(ref.bse["D"], rel=1e-8)
    assert ours["p_value_robust"] == pytest.approx(ref.pvalues["D"], rel=1e-6)
    lo, hi = ref.conf_int().loc["D"]
    assert ours["ci_robust_lower"] == pytest.approx(lo, rel=1e-8)
    assert ours["ci_robust_upper"] == pytest.approx(hi, rel=1e-8)
    # the robust SE is larger: it pays for the bias correction
    assert ours["std_error_robust"] > ours["std_error"]


@pytest.mark.slow
def test_robust_interval_covers_the_planted_jump(smoke):
    """Coverage of the 95 % robust interval over seeds; the truth in standardised units is
    ``−τ·sd_k/sd'_k`` (the outcome is scaled by the SD of the planted panel, ``sd'_k``).

    Smoke: 6 seeds, at least 4 covered (P ≤ 0.003 at true coverage 0.95); full: 30 seeds, at
    least 24 (P ≈ 0.002)."""
    seeds = range(10, 16) if smoke else range(10, 40)
    covered = 0
    for seed in seeds:
        before = simulate_panel(n_municipalities=290, years=range(2012, 2021), n_indicators=6,
                                rho=0.0, sigma_municipality=1.0, sigma_e=0.7, seed=seed)
        ds = _planted(0.3, seed=seed)
        sd0 = np.array([np.nanstd(before["value"].values[k], ddof=1) for k in range(6)])
        sd1 = np.array([np.nanstd(ds["value"].values[k], ddof=1) for k in range(6)])
        truth = float(np.mean(-0.3 * sd0 / sd1))
        red = colour_rd(ds, placebo=()).table.set_index("cutoff").loc[0.25]
        covered += int(red["ci_robust_lower"] <= truth <= red["ci_robust_upper"])
    n = len(seeds)
    print(f"robust 95 % interval covered the planted jump in {covered}/{n} panels")
    assert covered >= (4 if smoke else 24), (covered, n)
