"""Wild cluster bootstrap vs wildboottest, multiple testing vs statsmodels / stored Romano–Wolf
reference, randomisation inference vs scipy, dask = serial, and a size calibration check."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ojpanel.errors import ParameterError
from ojpanel.inference import (
    benjamini_hochberg,
    holm,
    permutation_test,
    romano_wolf,
    wild_bootstrap_tstats,
    wild_cluster_bootstrap,
)

REF = Path(__file__).parent / "reference"


def _clustered_data(seed, n=240, G=9, beta=0.15):
    rng = np.random.default_rng(seed)
    cl = rng.integers(0, G, n)
    X = np.column_stack(
        [np.ones(n), rng.normal(size=n) + rng.normal(size=G)[cl], rng.normal(size=n)]
    )
    y = X @ [1.0, beta, 0.0] + rng.normal(size=n) + rng.normal(size=G)[cl]
    return X, y, cl


def _wildboottest_draws(X, y, cl, j):
    """t and bootstrap t* from wildboottest's WCR11 under full enumeration."""
    from wildboottest.wildboottest import WildboottestCL

    R = np.zeros(X.shape[1])
    R[j] = 1
    wb = WildboottestCL(X=X, Y=y, cluster=cl, R=R, B=2**20, seed=1, parallel=False)
    wb.get_scores(bootstrap_type="11", impose_null=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wb.get_weights(weights_type="rademacher")
    wb.get_numer()
    wb.get_denom()
    wb.get_tboot()
    wb.get_vcov()
    wb.get_tstat()
    wb.get_pvalue(pval_type="two-tailed")
    return float(np.squeeze(wb.t_stat)), np.asarray(wb.t_boot).ravel(), float(wb.pvalue)


@pytest.mark.parametrize(("seed", "G"), [(1, 6), (2, 6), (3, 10), (4, 12)])
def test_wild_bootstrap_equals_wildboottest_under_enumeration(seed, G):
    X, y, cl = _clustered_data(seed, G=G)
    for j in (1, 2):
        t_ref, tb_ref, p_ref = _wildboottest_draws(X, y, cl, j)
        ours = wild_cluster_bootstrap(X, y, cl, term=j, level=None)
        assert ours.enumerated and ours.n_draws == 2**G
        assert ours.statistic == pytest.approx(t_ref, rel=1e-10)
        # same enumeration order (itertools.product), same statistics to round-off
        np.testing.assert_allclose(ours.t_boot, tb_ref, rtol=1e-9, atol=1e-12)
        # identical p-values once wildboottest's round-off-decided ties (|t*| = |t|) are resolved
        ties = np.isclose(np.abs(tb_ref), abs(t_ref), rtol=1e-9, atol=0)
        assert ties.sum() >= 2  # the all-plus and all-minus draws reproduce the original fit
        assert ours.p_value == np.mean((np.abs(t_ref) < np.abs(tb_ref)) & ~ties)
        assert abs(ours.p_value - p_ref) <= ties.sum() / 2**G


def test_fe_bootstrap_on_demeaned_data_equals_dummy_regression():
    """Municipality effects nested in county clusters: demeaning first changes nothing."""
    from ojpanel.models.fe import prepare_batch

    rng = np.random.default_rng(5)
    N, T, G = 40, 4, 10
    ent = np.repeat(np.arange(N), T)
    county = np.repeat(rng.integers(0, G, N), T)
    x = rng.normal(size=N * T)
    y = 0.1 * x + np.repeat(rng.normal(size=N), T) + rng.normal(size=N * T)
    fd = prepare_batch(y[None], x[:, None], factors=[ent], clusters=[county])
    ours = wild_cluster_bootstrap(fd.X[0], fd.y[0], county, term=0, level=None)
    D = pd.get_dummies(ent, dtype=float).to_numpy()
    t_ref, tb_ref, _ = _wildboottest_draws(np.column_stack([x, D]), y, county, 0)
    # t statistics differ only by the (n−1)/(n−k) factor (k counts the dummies there): same ratios
    np.testing.assert_allclose(ours.t_boot / ours.statistic, tb_ref / t_ref, rtol=1e-7, atol=1e-10)
    ties = np.isclose(np.abs(tb_ref), abs(t_ref), rtol=1e-9, atol=0)
    assert ours.p_value == np.mean((np.abs(t_ref) < np.abs(tb_ref)) & ~ties)


def test_bootstrap_ci_inverts_the_test():
    X, y, cl = _clustered_data(4, G=10)
    r = wild_cluster_bootstrap(X, y, cl, term=1, level=0.9)
    lo, hi = r.interval
    assert r.conf_int().loc[r.term].tolist() == [lo, hi]
    assert lo < r.estimate < hi
    inside = wild_cluster_bootstrap(X, y, cl, term=1, null=lo + 1e-4 * (hi - lo), level=None)
    outside = wild_cluster_bootstrap(X, y, cl, term=1, null=lo - 0.05 * (hi - lo), level=None)
    assert inside.p_value > 0.1 >= outside.p_value


def test_webb_weights_and_seeds():
    X, y, cl = _clustered_data(6, G=15)
    a = wild_cluster_bootstrap(X, y, cl, term=1, weights="webb", n_draws=999, seed=3, level=None)
    b = wild_cluster_bootstrap(X, y, cl, term=1, weights="webb", n_draws=999, seed=3, level=None)
    assert not a.enumerated and a.n_draws == 999
    assert a.p_value == b.p_value
    ci = wild_cluster_bootstrap(X, y, cl, term=1, weights="webb", n_draws=999, seed=3, level=0.9)
    assert ci.p_value == a.p_value and ci.interval[0] < ci.estimate < ci.interval[1]
    # Webb weights have mean 0 and variance 1
    from ojpanel.inference import draw_weights

    w = draw_weights("webb", 50, 4000, np.random.default_rng(0))
    assert abs(w.mean()) < 0.02 and abs(w.var() - 1) < 0.02
    with pytest.raises(ParameterError):
        wild_cluster_bootstrap(X, y, cl, weights="mammen")


def test_dask_equals_serial():
    distributed = pytest.importorskip("distributed")
    X, y, cl = _clustered_data(7, G=20)
    serial = wild_cluster_bootstrap(
        X, y, cl, term=1, n_draws=1500, seed=11, level=None, chunk_size=400
    )
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as lc,
        distributed.Client(lc) as client,
    ):
        par = wild_cluster_bootstrap(
            X, y, cl, term=1, n_draws=1500, seed=11, level=None, chunk_size=400, client=client
        )
    np.testing.assert_array_equal(serial.t_boot, par.t_boot)
    assert serial.p_value == par.p_value


def test_holm_and_bh_match_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    for _ in range(20):
        p = np.concatenate([rng.uniform(size=15), rng.uniform(0, 0.01, 5)])
        p[rng.integers(0, 20)] = p[rng.integers(0, 20)]  # a tie
        np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-15)
        np.testing.assert_allclose(
            benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1], rtol=0, atol=1e-15
        )
    p = np.array([0.01, np.nan, 0.04, 0.03])
    out = holm(p)
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2, 3]], multipletests(p[[0, 2, 3]], method="holm")[1])


def test_adjust_tidy_table_by_family():
    from statsmodels.stats.multitest import multipletests

    from ojpanel.inference import adjust

    frame = pd.DataFrame(
        {"area": ["a"] * 4 + ["b"] * 3, "p_value": [0.01, 0.02, 0.2, 0.04, 0.03, 0.5, 0.001]}
    )
    out = adjust(frame, "bh", by=["area"])
    np.testing.assert_allclose(
        out["p_adjusted"][:4], multipletests(frame["p_value"][:4], method="fdr_bh")[1]
    )
    np.testing.assert_allclose(
        out["p_adjusted"][4:], multipletests(frame["p_value"][4:], method="fdr_bh")[1]
    )
    assert set(out["adjustment"]) == {"bh"}
    with pytest.raises(ParameterError):
        adjust(frame, "bonferroni-ish")


def test_romano_wolf_matches_stored_reference():
    inputs = pd.read_csv(REF / "rwolf_inputs.csv")
    ref = pd.read_csv(REF / "rwolf_reference.csv")
    v = inputs.iloc[:, 1:].to_numpy()
    np.testing.assert_allclose(
        romano_wolf(v[0], v[1:]), ref["p_rwolf"].to_numpy(), rtol=0, atol=1e-15
    )
    # never below the single-test bootstrap p-value, never above Bonferroni-like max-t with all
    single = (1 + (np.abs(v[1:]) >= np.abs(v[0])).sum(0)) / (v.shape[0])
    assert np.all(romano_wolf(v[0], v[1:]) >= single - 1e-12)


def test_joint_bootstrap_feeds_romano_wolf():
    from ojpanel.models.fe import fit_indicators, panel_arrays
    from ojpanel.simulate.panel import simulate_panel

    ds = simulate_panel(
        n_municipalities=84, n_counties=12, years=range(2016, 2020), n_indicators=4, seed=2
    )
    x = ds["value"].shift(year=1)
    y, X, labels, rows = panel_arrays(ds["value"], {"lag": x})
    from ojpanel.models.fe import column_codes

    n = len(rows)
    factors = [column_codes(rows, "municipality", n), column_codes(rows, "year", n)]
    t_obs, t_boot, p = wild_bootstrap_tstats(
        y, X, column_codes(rows, "county", n), factors=factors, n_draws=199, seed=1
    )
    assert t_boot.shape == (199, 4)
    fits = fit_indicators(ds["value"], {"lag": x}, cluster="county", convention="none")
    # the bootstrap t uses G/(G−1)·(n−1)/(n−k); k = 3: the lag and 2 year dummies (3 years with a lag)
    nobs = fits.nobs.to_numpy()
    np.testing.assert_allclose(
        t_obs, fits.tstats["lag"].to_numpy() / np.sqrt(12 / 11 * (nobs - 1) / (nobs - 3)), rtol=1e-8
    )
    rw = romano_wolf(t_obs, t_boot)
    assert np.all(rw >= p - 1e-12)


def test_permutation_test_agrees_with_scipy_exact():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0.8, 1, 6), rng.normal(0, 1, 6)])
    labels = np.array([1] * 6 + [0] * 6)

    def stat(lab):
        return x[lab == 1].mean() - x[lab == 0].mean()

    ours = permutation_test(stat, labels, n_permutations=4000, seed=2)
    ref = stats.permutation_test(
        (x[:6], x[6:]),
        lambda a, b: a.mean() - b.mean(),
        permutation_type="independent",
        n_resamples=np.inf,
        alternative="two-sided",
    )
    se = np.sqrt(ref.pvalue * (1 - ref.pvalue) / 4000)
    assert abs(ours.p_value[0] - ref.pvalue) < 4 * se + 1 / 4000
    # group sizes are kept in every relabelling
    from ojpanel.inference import permute_labels

    perm = permute_labels(labels, np.random.default_rng(0))
    assert perm.sum() == 6


def _calibration_pvalues(
    n_sims: int, B: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from ojpanel.models.fe import column_codes, fit_batch, panel_arrays, prepare_batch
    from ojpanel.simulate.panel import simulate_panel

    ds = simulate_panel(
        n_municipalities=105,
        n_counties=21,
        years=range(2016, 2021),
        n_indicators=n_sims,
        sigma_county_year=0.7,
        seed=seed,
    )
    rng = np.random.default_rng(seed + 1)
    # regressor with county×year structure (so clustering matters), independent of the outcome
    county = ds["county"].values
    _, cc = np.unique(county, return_inverse=True)
    shocks = rng.normal(size=(n_sims, 21, 5))
    xv = shocks[:, cc, :] + rng.normal(size=(n_sims, 105, 5))
    x = ds["value"].copy(data=xv)
    y, X, labels, rows = panel_arrays(ds["value"], {"x": x})
    n = len(rows)
    fd = prepare_batch(
        y,
        X,
        factors=[column_codes(rows, "municipality", n), column_codes(rows, "year", n)],
        clusters=[column_codes(rows, "county", n)],
        names=["x"],
        labels=labels,
    )
    naive = fit_batch(fd, cov="clustered", convention="stata").pvalues["x"].to_numpy()
    robust = fit_batch(fd, cov="robust").pvalues["x"].to_numpy()
    factors = [column_codes(rows, "municipality", n), column_codes(rows, "year", n)]
    county = column_codes(rows, "county", n)
    boot = np.array(
        [
            wild_cluster_bootstrap(
                X[b],
                y[b],
                county,
                factors=factors,
                term=0,
                n_draws=B,
                weights="webb",
                seed=seed + b,
                level=None,
            ).p_value
            for b in range(n_sims)
        ]
    )
    return boot, naive, robust


def _band(n: int, smoke: bool) -> tuple[float, float]:
    if not smoke:
        return 0.035, 0.065
    # smoke size: the 3.5–6.5 % band widened by a 99.9 % binomial interval for n simulations
    return stats.binom.ppf(0.0005, n, 0.035) / n, stats.binom.isf(0.0005, n, 0.065) / n


@pytest.mark.slow
def test_wild_bootstrap_size_with_21_county_clusters(smoke):
    """Null panels (105 municipalities in 21 unequal counties, 5 years, county×year shocks in both
    the outcome and the regressor), two-way effects, restricted wild bootstrap with Webb weights.

    Full size (OJPANEL_FULL=1 or outside CI): 3000 panels × 399 draws, rejection at 5 % must lie in
    3.5–6.5 % (≈ ±3.8 Monte Carlo SE). Smoke size (CI): 500 panels × 199 draws; the band is the
    same 3.5–6.5 % widened by a 99.9 % binomial interval for 500 draws, about 1.2–10.4 %: loose,
    but still fails a test that ignores clustering (which rejects far more often here).
    """
    n_sims, B = (500, 199) if smoke else (3000, 399)
    boot, naive, robust = _calibration_pvalues(n_sims, B, seed=100)
    lo, hi = _band(n_sims, smoke)
    rate = float(np.mean(boot <= 0.05))
    assert lo <= rate <= hi, (
        f"wild bootstrap rejection rate {rate:.3f} outside [{lo:.3f}, {hi:.3f}]"
    )
    assert np.mean(naive <= 0.05) < 0.12  # CRV1 with G−1 df is not far off either here
    # the band is narrow enough to fail inference that ignores the county clustering
    assert np.mean(robust <= 0.05) > hi
