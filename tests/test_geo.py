"""Boundaries, the neighbour graph, weights, the island rule and neighbour means.

Reference values are the shared collection's independent checks (data/geo/PROVENANCE.md: degree
distribution, island table, spot checks) and brute-force loops.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import ojpanel
from ojpanel import peers
from ojpanel.data import geo
from ojpanel.errors import ParameterError


def test_boundaries_match_the_municipality_table():
    b = geo.load_boundaries()
    from ojpanel.data.reference import load_municipalities

    m = load_municipalities().set_index("municipality")
    assert len(b.codes) == 290 and set(b.codes) == set(m.index)
    assert all(m.loc[c, "county"] == k for c, k in zip(b.codes, b.county, strict=True))


def test_areas_and_centroids():
    c = geo.centroids().set_index("municipality")
    # spherical areas: within 1 % of the provenance's ellipsoidal figures
    assert c["area_km2"].sum() == pytest.approx(436_796, rel=0.01)
    assert c.loc["2584", "area_km2"] == pytest.approx(20_501, rel=0.01)  # Kiruna, largest
    assert c.loc["0183", "area_km2"] == pytest.approx(7.1, rel=0.03)  # Sundbyberg, smallest
    assert c["area_km2"].idxmin() == "0183" and c["area_km2"].idxmax() == "2584"
    assert c["lon"].between(10.5, 24.5).all() and c["lat"].between(55.0, 69.5).all()
    # Stockholm's centroid lies in Stockholm
    assert abs(c.loc["0180", "lat"] - 59.33) < 0.05 and abs(c.loc["0180", "lon"] - 18.0) < 0.1


def test_rook_graph_matches_provenance():
    g = geo.neighbour_graph()
    assert len(g.edges) == 1388 and g.degree.mean() == pytest.approx(4.79, abs=0.005)
    assert g.degree.value_counts().sort_index().to_dict() == {
        0: 5, 1: 8, 2: 12, 3: 38, 4: 59, 5: 66, 6: 61, 7: 24, 8: 12, 9: 4, 10: 1}
    assert g.isolated == ("0125", "0186", "0980", "1407", "1419")
    assert "0181" not in g.neighbours("0180") and "0184" in g.neighbours("0180")
    assert "1281" not in g.neighbours("1280")  # Malmö does not border Lund
    assert g.neighbours("0885") == ["0840"]  # Öland pair
    A = g.adjacency()
    assert (A == A.T).all() and np.trace(A) == 0
    q = geo.neighbour_graph("queen")
    assert len(q.edges) == 1388 + 68


def test_island_rule_nearest_reproduces_the_provenance_table():
    g = geo.neighbour_graph(islands="nearest")
    got = g.added_links.set_index("municipality")
    expected = {"0125": ("0180", 0.52), "0186": ("0182", 1.02), "0980": ("0885", 57.8),
                "1407": ("1480", 1.24), "1419": ("1421", 0.44)}
    for code, (nb, km) in expected.items():
        assert got.loc[code, "neighbour"] == nb
        assert got.loc[code, "distance_km"] == pytest.approx(km, rel=0.01, abs=0.01)
    assert g.isolated == ()
    assert "0980" in g.neighbours("0885")  # links are symmetric
    assert "islands='nearest'" in g.describe()
    with pytest.raises(ParameterError, match="islands must be one of"):
        geo.neighbour_graph(islands="drop")


def test_boundary_distance_spot_checks():
    assert geo.boundary_distance_km("1280", "1281") == pytest.approx(7.9, abs=0.3)
    assert geo.boundary_distance_km("0180", "0184") == pytest.approx(0.0, abs=0.06)


def test_weights():
    g = geo.neighbour_graph()
    codes = ["0180", "0184", "0182", "0980"]
    Wc = geo.weights_matrix(g, "contiguity", codes=codes)
    Wb = geo.weights_matrix(g, "border", codes=codes)
    Wd = geo.weights_matrix(g, "inverse_distance", codes=codes)
    assert Wc[0, 1] == 1 and Wb[0, 1] == pytest.approx(8.21, abs=0.005)
    assert Wb[0, 2] == pytest.approx(10.07, abs=0.005)
    c = geo.centroids().set_index("municipality")
    d = geo.haversine_km(c.loc["0180", "lon"], c.loc["0180", "lat"], c.loc["0184", "lon"], c.loc["0184", "lat"])
    assert Wd[0, 1] == pytest.approx(1 / d) and 3 < d < 12
    assert (Wc[3] == 0).all()  # Gotland
    with pytest.raises(ParameterError, match="not in the neighbour graph"):
        geo.weights_matrix(g, codes=["9999"])


def test_neighbour_mean_against_a_loop():
    rng = np.random.default_rng(0)
    g = geo.neighbour_graph()
    codes = list(g.codes)
    v = rng.normal(size=(290, 3))
    v[rng.random(v.shape) < 0.2] = np.nan
    bl = geo.weights_matrix(g, "border")
    out = peers.neighbour_mean_np(v, bl)
    e = g.edges
    for i in rng.choice(290, 40, replace=False):
        nb = e.loc[e["municipality"] == codes[i]]
        for k in range(3):
            vals = np.array([v[codes.index(n), k] for n in nb["neighbour"]])
            w = nb["shared_border_km"].to_numpy()
            ok = ~np.isnan(vals)
            ref = np.sum(w[ok] * vals[ok]) / np.sum(w[ok]) if ok.any() else np.nan
            np.testing.assert_allclose(out[i, k], ref, rtol=1e-12, equal_nan=True)


def test_peer_mean_neighbours_on_the_panel():
    ds = ojpanel.build_panel(areas=["äldreomsorg"], kinds=["result"], years=range(2017, 2020))
    pm = ds.oj.peer_mean("neighbours", lag=1)
    assert pm.dims == ds["value"].dims
    assert "0980" in pm.attrs["without_neighbours"]
    assert bool(pm.sel(municipality="0980").isnull().all())
    # lag: the value at t is the neighbour mean of t − 1
    now = ds.oj.peer_mean("neighbours", weights="border")
    lag1 = ds.oj.peer_mean("neighbours", lag=1, weights="border")
    xr.testing.assert_allclose(lag1.sel(year=2019), now.sel(year=2018).drop_vars("year").assign_coords(year=2019))
    near = ds.oj.peer_mean("neighbours", islands="nearest")
    ind = str(ds["indicator"].values[0])
    a = near.sel(municipality="0980", indicator=ind).values
    b = ds["value"].sel(municipality="0885", indicator=ind).values
    np.testing.assert_allclose(a, b)  # Gotland's only link under "nearest" is Borgholm
    with pytest.raises(ParameterError, match="unknown peer group"):
        ds.oj.peer_mean("neighbour")
    with pytest.raises(ParameterError, match="always leave the municipality out"):
        ds.oj.peer_mean("neighbours", loo=False)
