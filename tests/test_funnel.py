"""Funnel limits and shrinkage against closed forms and direct computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ojpanel.errors import DataError
from ojpanel.report.funnel import (
    binomial_limits,
    funnel_plot,
    noise_se_from_changes,
    normal_limits,
    shrink_beta_binomial,
    shrink_normal,
)


def test_binomial_limits_interpolate_the_exact_quantile():
    p0, n, level = 0.3, np.array([20.0, 57.0, 400.0]), 0.95
    lo, hi = binomial_limits(p0, n, level)
    for k, nk in enumerate(n):
        # at the limit's count r - a the interpolated CDF equals the tail probability
        r = np.ceil(lo[k] * nk)
        a = r - lo[k] * nk
        cdf = stats.binom.cdf(r, nk, p0) - a * stats.binom.pmf(r, nk, p0)
        assert cdf == pytest.approx(0.025, abs=1e-12)
        r = np.ceil(hi[k] * nk)
        a = r - hi[k] * nk
        cdf = stats.binom.cdf(r, nk, p0) - a * stats.binom.pmf(r, nk, p0)
        assert cdf == pytest.approx(0.975, abs=1e-12)
    # large n: close to the normal approximation
    lo_big, hi_big = binomial_limits(p0, np.array([1e5]), level)
    nl, nh = normal_limits(p0, np.sqrt(p0 * (1 - p0) / 1e5), level)
    assert lo_big[0] == pytest.approx(nl, abs=2e-4) and hi_big[0] == pytest.approx(nh, abs=2e-4)


def test_noise_se_from_changes():
    rng = np.random.default_rng(0)
    x = 50 + rng.normal(0, 2.0, size=(400, 30))
    se = noise_se_from_changes(x)
    assert np.median(se) == pytest.approx(2.0, rel=0.05)
    short = np.array([[1.0, np.nan, np.nan, 2.0]])
    assert np.isnan(noise_se_from_changes(short)).all()


def test_beta_binomial_shrinkage_matches_direct_formula():
    rng = np.random.default_rng(1)
    n = rng.integers(10, 300, size=200).astype(float)
    p = rng.beta(20, 30, size=200)
    x = rng.binomial(n.astype(int), p).astype(float)
    post, a, b = shrink_beta_binomial(x, n)
    m = x.sum() / n.sum()
    tau2 = np.var(x / n, ddof=1) - np.mean(m * (1 - m) / n)
    s = m * (1 - m) / tau2 - 1
    np.testing.assert_allclose(post, (x + m * s) / (n + s), rtol=1e-12)
    # shrinkage reduces the error against the truth
    assert np.mean((post - p) ** 2) < np.mean((x / n - p) ** 2)
    assert a / (a + b) == pytest.approx(m)


def test_normal_shrinkage_weights():
    y = np.array([0.0, 1.0, 2.0, 10.0, np.nan])
    se = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    out, mu, tau2 = shrink_normal(y, se)
    ok = y[:4]
    assert tau2 == pytest.approx(np.var(ok, ddof=1) - 1.0)
    assert mu == pytest.approx(ok.mean())
    np.testing.assert_allclose(out[:4], mu + tau2 / (tau2 + 1) * (ok - mu))
    assert np.isnan(out[4])
    with pytest.raises(DataError, match="at least three units"):
        shrink_normal(np.array([1.0, 2.0]), np.array([1.0, 1.0]))


def test_funnel_plot_flags_outliers(tmp_path):
    n = np.array([50, 100, 200, 400, 800, 100.0])
    v = np.array([0.3, 0.31, 0.29, 0.3, 0.3, 0.9])
    fig, table = funnel_plot(v, n, labels=list("abcdef"), path=tmp_path / "f.png", title="t")
    assert table.set_index("unit").loc["f", "flag"] == "above"
    assert (table["flag"] == "within").sum() == 5
    assert (tmp_path / "f.png").stat().st_size > 5000
    with pytest.raises(DataError):
        binomial_limits(1.2, n, 0.95)


def test_coef_plot(tmp_path):
    import pandas as pd

    from ojpanel.report.coefplot import coef_plot

    rows = pd.DataFrame({"indicator": ["a", "b", "a", "b"], "estimate": [0.1, -0.2, 0.15, -0.1],
                         "std_error": [0.05, 0.05, 0.06, np.nan], "mode": ["f", "f", "i", "i"]})
    fig = coef_plot(rows, by="mode", path=tmp_path / "c.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "a"]  # sorted by mean estimate
    assert (tmp_path / "c.png").stat().st_size > 3000
    with pytest.raises(DataError, match="missing"):
        coef_plot(rows.drop(columns="std_error"))
