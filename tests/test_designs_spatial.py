"""Spatial yardstick design and neighbour peers: estimates against linearmodels' PanelOLS on a
hand-built spatial lag, Conley covariance against statsmodels' clustered sandwiches and a
brute-force pairwise sum, degree-preserving rewiring, the placebo and simulated power."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import ojpanel
from ojpanel.data import geo
from ojpanel.designs import spatial
from ojpanel.designs.peer import fit_peer, peer_placebo
from ojpanel.errors import ParameterError

IDS = ["U21468", "U23471"]


@pytest.fixture(scope="module")
def ds():
    return ojpanel.build_panel(areas=["äldreomsorg"], years=range(2014, 2020)).oj.select(indicators=IDS)


def _hand_frame(ds, indicator: str, weights: str = "contiguity") -> pd.DataFrame:
    """Neighbour means built with pandas merges on the raw neighbour file (not the W matrix)."""
    from ojpanel.config import data_dir

    v = ds["value"].sel(indicator=indicator).to_pandas().stack().rename("y").reset_index().dropna()
    v["municipality"] = v["municipality"].astype(str)
    nb = pd.read_csv(data_dir() / "geo" / "neighbours.csv", dtype=str)
    nb["w"] = 1.0 if weights == "contiguity" else nb["shared_border_km"].astype(float)
    m = nb.merge(v, left_on="neighbour_kommunkod", right_on="municipality")
    m["wy"] = m["w"] * m["y"]
    agg = m.groupby(["kommunkod", "year"]).agg(num=("wy", "sum"), den=("w", "sum")).reset_index()
    agg["wy"] = agg["num"] / agg["den"]
    agg["year"] = agg["year"] + 1  # lag 1: neighbours' mean of t−1 placed at t
    out = v.merge(agg[["kommunkod", "year", "wy"]], left_on=["municipality", "year"],
                  right_on=["kommunkod", "year"], how="left")
    county = pd.Series(ds["county"].values, index=ds["municipality"].values.astype(str))
    out["county"] = out["municipality"].map(county)
    return out.dropna(subset=["y", "wy"])


def test_yardstick_equals_panelols_on_a_hand_built_lag(ds):
    from linearmodels import PanelOLS

    res = spatial.fit_yardstick(ds, cov="clustered", cluster="county")
    for ind in IDS:
        f = _hand_frame(ds, ind).set_index(["municipality", "year"])
        ref = PanelOLS(f["y"], f[["wy"]], entity_effects=True, time_effects=True).fit(
            cov_type="clustered", clusters=pd.DataFrame({"c": pd.factorize(f["county"])[0]}, index=f.index))
        assert res[ind].params["neighbour_lag"] == pytest.approx(ref.params["wy"], abs=1e-9)
        assert res[ind].std_errors["neighbour_lag"] == pytest.approx(ref.std_errors["wy"], rel=1e-6)
        assert res[ind].nobs == ref.nobs


def test_yardstick_table_matches_fit_and_county_shocks_use_county_year_effects(ds):
    from linearmodels import PanelOLS

    tab = spatial.yardstick(ds, shocks="county").to_frame()
    lagrows = tab[tab["term"] == "neighbour_lag"].set_index("indicator")
    f = _hand_frame(ds, IDS[0]).set_index(["municipality", "year"])
    cy = pd.DataFrame({"cy": pd.factorize(f["county"] + f.index.get_level_values("year").astype(str))[0]},
                      index=f.index)
    ref = PanelOLS(f["y"], f[["wy"]], entity_effects=True, other_effects=cy).fit()
    assert lagrows.loc[IDS[0], "estimate"] == pytest.approx(ref.params["wy"], abs=1e-9)
    assert set(tab["term"]) == {"neighbour_lag", "neighbour_lead"}


def test_neighbour_peer_design_equals_panelols(ds):
    """The peer design with group='neighbours' (border weights, ANCOVA, county×year shocks)."""
    from linearmodels import PanelOLS

    res = fit_peer(ds, group="neighbours", weights="border", outcome="level", shocks=None,
                   cov="clustered", cluster="county", convention="linearmodels")
    f = _hand_frame(ds, IDS[1], "border").set_index(["municipality", "year"])
    ref = PanelOLS(f["y"], f[["wy"]], time_effects=True).fit(
        cov_type="clustered", clusters=pd.DataFrame({"c": pd.factorize(f["county"])[0]}, index=f.index))
    assert res[IDS[1]].params["peer"] == pytest.approx(ref.params["wy"], abs=1e-9)
    assert res[IDS[1]].std_errors["peer"] == pytest.approx(ref.std_errors["wy"], rel=1e-6)
    with pytest.raises(ParameterError, match="rewiring_placebo"):
        peer_placebo(ds, group="neighbours")


def _dummy_ols(f: pd.DataFrame):
    X = pd.get_dummies(f[["municipality"]].astype(str), drop_first=False, dtype=float)
    X = pd.concat([f[["wy"]], X, pd.get_dummies(f["year"].astype(str), drop_first=True, dtype=float)], axis=1)
    return sm.OLS(f["y"].to_numpy(), X.to_numpy()), X


def _ours_conley(ds, ind, cutoff, kernel, serial):
    from ojpanel.models.fe import prepare_batch
    from ojpanel.models.within import ols_batch

    frame = spatial.yardstick_frame(ds.oj.select(indicators=[ind]))
    yy, X, labels, rows, factors, _, names = spatial._prepared(frame, "year")
    fd = prepare_batch(yy, X, factors=factors)
    fit = ols_batch(fd.y, fd.X, fd.mask)
    T = frame["y"].sizes["year"]
    D = spatial.distance_matrix(frame["y"]["municipality"].values)
    V = spatial.conley_covariance(fd.X, fit.resid, fit.xtx_inv, fd.mask, D, T, cutoff_km=cutoff,
                                  kernel=kernel, serial=serial)
    return float(fit.beta[0, 0]), float(np.sqrt(V[0, 0, 0])), fd, rows, D


def test_conley_limits_equal_statsmodels_cluster_sandwiches(ds):
    f = _hand_frame(ds, IDS[0]).reset_index(drop=True)
    mod, X = _dummy_ols(f)
    by_mun = mod.fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(f["municipality"])[0],
                                                   "use_correction": False})
    by_year = mod.fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(f["year"])[0],
                                                    "use_correction": False})
    b, se_m, *_ = _ours_conley(ds, IDS[0], 1e-6, "bartlett", True)
    assert b == pytest.approx(by_mun.params[0], abs=1e-9)
    assert se_m == pytest.approx(by_mun.bse[0], rel=1e-7)
    _, se_y, *_ = _ours_conley(ds, IDS[0], 1e6, "uniform", False)
    assert se_y == pytest.approx(by_year.bse[0], rel=1e-7)


def test_conley_equals_a_brute_force_pairwise_sum(ds):
    b, se, fd, rows, D = _ours_conley(ds, IDS[1], 80.0, "bartlett", True)
    f = _hand_frame(ds, IDS[1]).reset_index(drop=True)
    mod, X = _dummy_ols(f)
    fit = mod.fit()
    Xm = X.to_numpy()
    A = np.linalg.inv(Xm.T @ Xm)
    s = Xm * fit.resid[:, None]
    codes = list(ds["municipality"].values.astype(str))
    idx = np.array([codes.index(c) for c in f["municipality"]])
    yr = f["year"].to_numpy()
    d = D[idx][:, idx]
    K = np.clip(1 - d / 80.0, 0, None) * (yr[:, None] == yr[None])
    K += (idx[:, None] == idx[None]) & (yr[:, None] != yr[None])
    V = A @ (s.T @ K @ s) @ A
    assert b == pytest.approx(fit.params[0], abs=1e-9)
    assert se == pytest.approx(np.sqrt(V[0, 0]), rel=1e-7)


def test_rewire_keeps_degrees_and_is_seeded():
    g = geo.neighbour_graph()
    r1 = spatial.rewire(g, np.random.default_rng(3), swaps_per_edge=3)
    r2 = spatial.rewire(g, np.random.default_rng(3), swaps_per_edge=3)
    pd.testing.assert_frame_equal(r1.edges, r2.edges)
    pd.testing.assert_series_equal(r1.degree, g.degree)
    A = r1.adjacency()
    assert (A == A.T).all() and np.trace(A) == 0 and A.max() == 1
    kept = (A * g.adjacency()).sum() / g.adjacency().sum()
    assert kept < 0.2  # the rewired graph shares few edges with the real one
    assert r1.isolated == g.isolated


def test_rewiring_placebo(ds):
    a = spatial.rewiring_placebo(ds, n_rewirings=8, seed=5, chunk_size=4)
    b = spatial.rewiring_placebo(ds, n_rewirings=8, seed=5, chunk_size=4)
    pd.testing.assert_frame_equal(a, b)
    fit = spatial.fit_yardstick(ds)
    for _, row in a.iterrows():
        assert row["observed"] == pytest.approx(fit[row["indicator"]].params["neighbour_lag"], abs=1e-10)
    assert a["p_value"].between(1 / 9, 1).all() and (a["n_rewirings"] == 8).all()


def test_power_grows_with_the_effect_and_holds_size(smoke):
    ds = ojpanel.build_panel(areas=["äldreomsorg"], years=range(2014, 2020)).oj.select(indicators=[IDS[0]])
    n = 40 if smoke else 200
    pw = spatial.yardstick_power(ds, IDS[0], effects=(0.0, 0.4), n_sims=n, seed=2)
    again = spatial.yardstick_power(ds, IDS[0], effects=(0.0, 0.4), n_sims=n, seed=2)
    pd.testing.assert_frame_equal(pw.table, again.table)
    p0, p1 = pw.table["power"]
    # size: binomial bound at 5 % (P(X ≥ 7 | n=40, 0.05) < 0.02); power at β = 0.4 is near 1
    assert p0 <= (0.175 if smoke else 0.09)
    assert p1 >= 0.9
    assert pw.design == "spatial_yardstick" and pw.size == p0


def test_power_replications_at_once_equal_one_at_a_time(ds):
    """The vectorised simulation (all replications and effects in one batch) gives the rejections of
    a plain loop over replications, effects and years with dense weights and one fit per draw."""
    from scipy import stats

    from ojpanel.models.fe import prepare_batch
    from ojpanel.models.within import ols_batch
    from ojpanel.peers import neighbour_mean_np

    one = ds["value"].sel(indicator=[IDS[0]]).transpose("indicator", "municipality", "year")
    codes = [str(c) for c in one["municipality"].values]
    W = geo.weights_matrix(geo.neighbour_graph(), "contiguity", codes=codes)
    mask = np.isfinite(one.values[0])
    N, T = mask.shape
    factors = [np.repeat(np.arange(N), T), np.tile(np.arange(T), N)]
    dist = spatial.distance_matrix(codes)
    comps, effects, size = (60.0, 8.0, 1.5, 4.0), np.array([0.0, 0.3, -0.5]), 3
    args = (comps, effects, 1, factors, dist, 100.0, "bartlett")
    rng = np.random.default_rng(4)
    pv = np.zeros((size, len(effects)))
    for r in range(size):
        a, d, e = rng.normal(0, comps[1], N), rng.normal(0, comps[2], T), rng.normal(0, comps[3], (N, T))
        for k, beta in enumerate(effects):
            y = np.empty((N, T))
            for t in range(T):
                y[:, t] = comps[0] + a + d[t] + e[:, t]
                if t >= 1:
                    wy = neighbour_mean_np(np.where(mask[:, t - 1], y[:, t - 1], np.nan), W)
                    y[:, t] += beta * np.where(np.isfinite(wy), wy - comps[0], 0.0)
            obs = np.where(mask, y, np.nan)
            x = np.full((N, T), np.nan)
            x[:, 1:] = neighbour_mean_np(obs, W)[:, :-1]
            fd = prepare_batch(obs.ravel()[None], x.ravel()[None, :, None], factors=factors)
            fit = ols_batch(fd.y, fd.X, fd.mask)
            V = spatial.conley_covariance(fd.X, fit.resid, fit.xtx_inv, fd.mask, dist, T)
            pv[r, k] = 2 * stats.norm.sf(abs(fit.beta[0, 0]) / np.sqrt(V[0, 0, 0]))
    for alpha in (0.05, 0.5):
        got = spatial._power_chunk(size, np.random.default_rng(4), W, mask, *args, alpha)
        np.testing.assert_array_equal(got, (pv < alpha).astype(float))
    assert 0 < (pv < 0.5).sum() < pv.size  # the comparison sees both outcomes
