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


def test_plot_returns_a_clean_figure():
    from ojpanel.core.style import figure_problems

    res = colour_rd(_planted(0.3, seed=4, n_ind=2), bandwidth=0.1)
    fig = plot_rd(res)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) >= 4
    assert figure_problems(fig) == []


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


# ---- the Cattaneo–Idrobo–Titiunik workflow, checked against rdrobust / rddensity / rdlocrand ----


@pytest.fixture(scope="module")
def planted_result():
    ds = _planted(0.2, seed=7, n_ind=3)
    return ds, colour_rd(ds, placebo=(0.5,), lr_reps=199, seed=3)


def test_local_linear_equals_rdrobust_with_equal_bandwidths():
    """Our estimator at ``h`` with ``b = h`` is rdrobust's without the mass-point adjustment:
    conventional and bias-corrected jumps to 1e-10. rdrobust's CR1 scales by
    ``G/(G−1)·(n−1)/(n−k)`` per side, we once for both sides: SEs agree to 2 %."""
    from rdrobust import rdrobust

    d = rd_data(_planted(0.2, seed=5, n_ind=2))
    ours = _ours(d, 0.25, 0.1)
    ref = rdrobust(d["change"].to_numpy(), d["rank"].to_numpy(), c=0.25, h=0.1, b=0.1,
                   cluster=pd.factorize(d["municipality"])[0], masspoints="off")
    assert ours["estimate"] == pytest.approx(ref.coef.iloc[0, 0], abs=1e-10)
    assert ours["estimate_bc"] == pytest.approx(ref.coef.iloc[2, 0], abs=1e-10)
    assert ours["std_error"] == pytest.approx(ref.se.iloc[0, 0], rel=0.02)
    assert ours["std_error_robust"] == pytest.approx(ref.se.iloc[2, 0], rel=0.02)


def test_pooled_frame_gives_exactly_the_package_numbers(planted_result):
    from rdrobust import rdbwselect, rdrobust

    ds, res = planted_result
    d = res.data
    cl = pd.factorize(d["municipality"])[0]
    y, r = d["change"].to_numpy(), d["rank"].to_numpy()
    row = res.table.set_index("cutoff").loc[0.25]
    bw = rdbwselect(y, r, c=0.25, cluster=cl, all=True).bws
    assert row["bandwidth"] == pytest.approx(min(bw.loc["mserd"].iloc[0], 0.25), rel=1e-12)
    assert row["bandwidth_pilot"] == pytest.approx(min(bw.loc["mserd"].iloc[2], 0.25), rel=1e-12)
    assert row["bandwidth_cer"] == pytest.approx(min(bw.loc["cerrd"].iloc[0], 0.25), rel=1e-12)
    assert row["bandwidth_pilot"] != row["bandwidth"]  # a separate pilot
    ref = rdrobust(y, r, c=0.25, h=row["bandwidth"], b=row["bandwidth_pilot"], cluster=cl)
    assert row["estimate"] == pytest.approx(ref.coef.iloc[0, 0], rel=1e-12)
    assert row["std_error_robust"] == pytest.approx(ref.se.iloc[2, 0], rel=1e-12)
    assert row["p_value_robust"] == pytest.approx(ref.pv.iloc[2, 0], rel=1e-12)
    assert 200 < row["n_clusters"] <= 290  # municipalities with a row inside the bandwidth
    # the planted jump (red gains 0.2 SD → above − below ≈ −0.2) lies within the robust error
    assert abs(row["estimate_bc"] + 0.2) < 4 * row["std_error_robust"]
    # balance: the lagged outcome, checked with rdrobust directly
    ok = d["lag_change"].notna().to_numpy()
    bal = res.balance.set_index(["cutoff", "variable"]).loc[(0.25, "lag_change")]
    yb = d["lag_change"].to_numpy()[ok]
    bwb = rdbwselect(yb, r[ok], c=0.25, cluster=cl[ok]).bws
    refb = rdrobust(yb, r[ok], c=0.25, h=bwb.iloc[0, 0], b=bwb.iloc[0, 2], cluster=cl[ok])
    assert bal["p_value_robust"] == pytest.approx(refb.pv.iloc[2, 0], rel=1e-10)
    assert bal["p_value_robust"] > 0.001  # no planted imbalance in the past


def test_single_indicator_year_is_the_plain_package_call():
    """Without pooling (one indicator, one year) the pooled logic reduces to rdrobust on that
    year's percentile ranks and next-year changes."""
    from rdrobust import rdrobust

    ds = _planted(0.2, seed=8, n_ind=1).isel(year=[3, 4])
    res = colour_rd(ds, placebo=(), bandwidth=0.2, diagnostics=False)
    d = res.data
    assert d["year"].nunique() == 1 and d["municipality"].is_unique
    v = ds["value"].values[0]
    rank = (stats.rankdata(v[:, 0]) - 0.5) / v.shape[0]
    change = (v[:, 1] - v[:, 0]) / np.nanstd(v, ddof=1)
    ref = rdrobust(change, rank, c=0.25, h=0.2, b=0.2, cluster=np.arange(v.shape[0]))
    row = res.table.set_index("cutoff").loc[0.25]
    assert row["estimate"] == pytest.approx(ref.coef.iloc[0, 0], rel=1e-10)
    assert row["p_value_robust"] == pytest.approx(ref.pv.iloc[2, 0], rel=1e-10)


def test_density_test_equals_rddensity_on_hand_centred_values(planted_result):
    from rddensity import rddensity

    ds, res = planted_result
    v = ds["value"].values * ds["direction"].values[:, None, None]
    xs = []
    for k in range(v.shape[0]):
        sd = np.nanstd(v[k], ddof=1)
        for t in range(v.shape[2]):
            col = v[k, :, t]
            # Hazen quantile by hand: the order statistic at position c·n + ½ (1-based)
            s = np.sort(col)
            pos = 0.25 * len(s) + 0.5 - 1
            q = s[int(np.floor(pos))] + (pos - np.floor(pos)) * (s[int(np.floor(pos)) + 1] - s[int(np.floor(pos))])
            xs.append((col - q) / sd)
    ref = rddensity(X=np.concatenate(xs), c=0)
    row = res.density.set_index("cutoff").loc[0.25]
    assert row["density_p"] == pytest.approx(ref.test["p_jk"], rel=1e-10)
    assert row["density_t"] == pytest.approx(ref.test["t_jk"], rel=1e-10)
    assert row["density_p"] > 0.001  # simulated values: no manipulation


def test_local_randomisation_equals_rdrandinf_and_a_closed_form(planted_result):
    from rdlocrand import rdrandinf

    ds, res = planted_result
    d = res.data
    row = res.local_randomisation.set_index("cutoff").loc[0.25]
    w = row["lr_window"]
    r, y = d["rank"].to_numpy(), d["change"].to_numpy()
    ref = rdrandinf(y, r, cutoff=0.25, wl=0.25 - w, wr=0.25 + w, reps=199, seed=4, quietly=True)
    assert row["lr_p_value"] == pytest.approx(float(np.ravel(ref["p.value"])[0]), abs=1e-12)
    inside = (r >= 0.25 - w) & (r <= 0.25 + w)
    above = r >= 0.25
    diff = y[inside & above].mean() - y[inside & ~above].mean()
    assert row["lr_diff_means"] == pytest.approx(diff, rel=1e-10)
    assert (row["lr_n_left"], row["lr_n_right"]) == ((inside & ~above).sum(), (inside & above).sum())
    # asymptotic p-value: Neyman (unequal-variance) z-test on the same window
    a, b = y[inside & above], y[inside & ~above]
    z = diff / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert row["lr_p_asymptotic"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-6)
    assert 0 < row["lr_p_value"] <= 1 and isinstance(row["lr_window_balanced"], (bool, np.bool_))
    # seeded: the global numpy stream is left as it was
    st = np.random.get_state()[1].copy()  # noqa: NPY002
    again = colour_rd(ds, placebo=(), lr_reps=199, seed=3).local_randomisation
    assert (np.random.get_state()[1] == st).all()  # noqa: NPY002
    pd.testing.assert_frame_equal(again, res.local_randomisation)
