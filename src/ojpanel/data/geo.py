"""Municipal boundaries, the land-contiguity neighbour graph and spatial weights.

The embedded files in ``data/geo/`` are derived from SCB's *Digitala gränser* (CC0), processed (see
``data/PROVENANCE.md``): 290 municipality polygons (WGS 84 GeoJSON) and the list of municipalities
that share a land border, with its length. Nothing here needs a GIS library: the GeoJSON is read
with :mod:`json`; areas and centroids use a sinusoidal (equal-area) projection around each
municipality (on a spherical Earth: 434,300 km² in all, 0.6 % below the provenance's ellipsoidal
436,800 km²), and
boundary distances the same projection around the first municipality (within 1 % of the
provenance's distances for the island table).

Islands (an explicit rule, never silent)
----------------------------------------
Five municipalities have no land neighbour (Ekerö, Lidingö, Gotland, Öckerö, Tjörn) and the Öland
pair (Borgholm, Mörbylånga) neighbour only each other. :func:`neighbour_graph` takes
``islands=``:

``"exclude"`` (default)
    The five keep no neighbours: their neighbour mean is missing, so they drop out of neighbour
    designs. They are listed in :attr:`NeighbourGraph.isolated`, and designs report them.
``"nearest"``
    Each of the five is linked (both ways) to the municipality with the nearest boundary; the added
    links are listed in :attr:`NeighbourGraph.added_links` with their distance. Their border length
    is 0, so border-length weights give them no weight: use contiguity or inverse-distance weights
    with this rule.

The Öland pair keeps its one land link under both rules (the graph then has one component of
283 municipalities, the Öland pair and, under ``"exclude"``, five singletons).

Weights
-------
:func:`weights_matrix` returns the neighbour weights ``w_ij`` (zero off the graph, zero on the
diagonal): ``"contiguity"`` (1 per neighbour), ``"border"`` (shared border length in km) or
``"inverse_distance"`` (1 / distance between centroids in km). Means over neighbours normalise the
weights over the neighbours that have a value (:func:`ojpanel.peers.neighbour_mean_np`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ojpanel.config import data_dir
from ojpanel.errors import DataError, ParameterError

__all__ = [
    "EARTH_RADIUS_KM",
    "WEIGHTS",
    "ISLAND_RULES",
    "Boundaries",
    "NeighbourGraph",
    "load_boundaries",
    "centroids",
    "haversine_km",
    "boundary_distance_km",
    "neighbour_graph",
    "weights_matrix",
]

EARTH_RADIUS_KM = 6371.0088
WEIGHTS = ("contiguity", "border", "inverse_distance")
ISLAND_RULES = ("exclude", "nearest")


@dataclass(frozen=True)
class Boundaries:
    """Municipality polygons: ``polygons[i]`` is a list of polygons, each a list of rings.

    A ring is an ``(m, 2)`` array of (lon, lat); the first ring of a polygon is its exterior,
    the others are holes (lakes).
    """

    codes: tuple[str, ...]
    names: tuple[str, ...]
    county: tuple[str, ...]
    polygons: tuple[list[list[np.ndarray]], ...]

    def index(self, code: str) -> int:
        """Position of a municipality code."""
        try:
            return self.codes.index(str(code))
        except ValueError as exc:
            raise ParameterError(f"municipality {code!r} is not in the boundary file") from exc


def _geo_dir() -> Path:
    return data_dir() / "geo"


@functools.lru_cache(maxsize=2)
def _read_boundaries(path: str) -> Boundaries:
    try:
        gj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read the boundary file {path}: {exc}") from exc
    codes, names, county, polys = [], [], [], []
    for feat in gj.get("features", []):
        props = feat.get("properties", {})
        geom = feat.get("geometry") or {}
        kind = geom.get("type")
        if kind == "Polygon":
            parts = [geom["coordinates"]]
        elif kind == "MultiPolygon":
            parts = geom["coordinates"]
        else:
            raise DataError(f"{path}: feature {props.get('kommunkod')} has geometry {kind!r}; "
                            "expected Polygon or MultiPolygon")
        codes.append(str(props["kommunkod"]))
        names.append(str(props["kommun"]))
        county.append(str(props["lan_kod"]))
        polys.append([[np.asarray(r, dtype=float) for r in p] for p in parts])
    if len(set(codes)) != len(codes):
        raise DataError(f"{path}: duplicate municipality codes")
    order = np.argsort(codes)
    return Boundaries(
        codes=tuple(codes[i] for i in order),
        names=tuple(names[i] for i in order),
        county=tuple(county[i] for i in order),
        polygons=tuple(polys[i] for i in order),
    )


def load_boundaries(path: Path | str | None = None) -> Boundaries:
    """The municipality polygons (embedded ``data/geo/kommuner.geojson`` unless ``path``)."""
    return _read_boundaries(str(path or _geo_dir() / "kommuner.geojson"))


def _project(lonlat: np.ndarray, lon0: float, lat0: float) -> np.ndarray:
    """Sinusoidal (equal-area) coordinates in km around ``(lon0, lat0)``: exact areas on the
    sphere, distances accurate near the central meridian ``lon0``."""
    k = np.pi / 180 * EARTH_RADIUS_KM
    return np.column_stack(
        [(lonlat[:, 0] - lon0) * k * np.cos(np.radians(lonlat[:, 1])), (lonlat[:, 1] - lat0) * k]
    )


def _ring_area_centroid(xy: np.ndarray) -> tuple[float, np.ndarray]:
    x, y = xy[:, 0], xy[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cross = x * y1 - x1 * y
    a = cross.sum() / 2
    if a == 0:
        return 0.0, xy.mean(0)
    c = np.array([((x + x1) * cross).sum(), ((y + y1) * cross).sum()]) / (6 * a)
    return float(a), c


def centroids(boundaries: Boundaries | None = None) -> pd.DataFrame:
    """Area-weighted centroid (lon, lat) and land area (km²) of every municipality.

    Holes (lakes) are subtracted. Computed in a sinusoidal (equal-area) projection centred on
    each municipality's mean vertex.
    """
    if boundaries is None:
        return _embedded_centroids().copy()
    return _centroids(boundaries)


@functools.lru_cache(maxsize=1)
def _embedded_centroids() -> pd.DataFrame:
    return _centroids(load_boundaries())


def _centroids(b: Boundaries) -> pd.DataFrame:
    rows = []
    for code, polys in zip(b.codes, b.polygons, strict=True):
        allv = np.concatenate([r for p in polys for r in p])
        lon0, lat0 = allv.mean(0)
        tot, acc = 0.0, np.zeros(2)
        for p in polys:
            for j, ring in enumerate(p):
                a, c = _ring_area_centroid(_project(ring, lon0, lat0))
                a = abs(a) * (1 if j == 0 else -1)
                tot += a
                acc += a * c
        cx, cy = acc / tot
        k = np.pi / 180 * EARTH_RADIUS_KM
        lat = lat0 + cy / k
        rows.append({"municipality": code, "lon": lon0 + cx / (k * np.cos(np.radians(lat))),
                     "lat": lat, "area_km2": tot})
    return pd.DataFrame(rows)


def haversine_km(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance in km (broadcasts)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


def _segments(polys: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    a = np.concatenate([r[:-1] for p in polys for r in p])
    b = np.concatenate([r[1:] for p in polys for r in p])
    return a, b


def _point_segment(pts: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest distance from each point to any of the segments ``a→b`` (planar)."""
    d = b - a
    L2 = np.maximum((d**2).sum(1), 1e-18)
    t = np.clip(((pts[:, None, :] - a[None]) * d[None]).sum(2) / L2[None], 0, 1)
    proj = a[None] + t[..., None] * d[None]
    return np.sqrt(((pts[:, None, :] - proj) ** 2).sum(2)).min(1)


def boundary_distance_km(code_a: str, code_b: str, boundaries: Boundaries | None = None) -> float:
    """Shortest distance between two municipalities' boundaries in km (0 if they touch)."""
    b = boundaries or load_boundaries()
    pa, pb = b.polygons[b.index(code_a)], b.polygons[b.index(code_b)]
    va = np.concatenate([r for p in pa for r in p])
    lon0, lat0 = va.mean(0)
    out = np.inf
    for src, dst in ((pa, pb), (pb, pa)):
        pts = _project(np.concatenate([r for p in src for r in p]), lon0, lat0)
        s0, s1 = _segments(dst)
        out = min(out, float(_point_segment(pts, _project(s0, lon0, lat0), _project(s1, lon0, lat0)).min()))
    return out


def _nearest_municipality(code: str, b: Boundaries, cent: pd.DataFrame) -> tuple[str, float]:
    # boundary distances only for the 12 nearest centroids: the nearest boundary is among them
    i = b.index(code)
    d = haversine_km(cent["lon"].iloc[i], cent["lat"].iloc[i], cent["lon"], cent["lat"])
    cands = [b.codes[j] for j in np.argsort(d)[1:13]]
    dist = {c: boundary_distance_km(code, c, b) for c in cands}
    best = min(dist, key=dist.get)
    return best, dist[best]


@dataclass(frozen=True)
class NeighbourGraph:
    """The (symmetric) neighbour graph of the municipalities.

    Attributes
    ----------
    codes
        Municipality codes, sorted; positions index :attr:`edges`.
    edges
        Directed rows ``municipality, neighbour, shared_border_km`` (each pair twice).
    contiguity
        ``"rook"`` (shared border) or ``"queen"`` (also corner contacts).
    islands
        The island rule applied (module docstring).
    isolated
        Municipalities left without any neighbour.
    added_links
        Links added by the island rule: ``municipality, neighbour, distance_km``.
    """

    codes: tuple[str, ...]
    edges: pd.DataFrame
    contiguity: str
    islands: str
    isolated: tuple[str, ...]
    added_links: pd.DataFrame

    @property
    def degree(self) -> pd.Series:
        """Number of neighbours per municipality (0 for isolated ones)."""
        d = self.edges.groupby("municipality").size()
        return d.reindex(list(self.codes), fill_value=0).rename("degree")

    def neighbours(self, code: str) -> list[str]:
        """Neighbours of one municipality, sorted."""
        if str(code) not in self.codes:
            raise ParameterError(f"municipality {code!r} is not in the neighbour graph")
        return sorted(self.edges.loc[self.edges["municipality"] == str(code), "neighbour"])

    def adjacency(self, codes: Sequence[str] | None = None) -> np.ndarray:
        """0/1 adjacency matrix in the order of ``codes`` (default :attr:`codes`)."""
        return (weights_matrix(self, "contiguity", codes=codes) > 0).astype(float)

    def describe(self) -> str:
        """One line: pairs, mean degree, rule and isolated municipalities."""
        deg = self.degree
        return (f"{self.contiguity} contiguity: {len(self.edges) // 2} pairs, mean {deg.mean():.2f} "
                f"neighbours; islands={self.islands!r}: "
                + (f"{len(self.added_links)} links added" if len(self.added_links) else "none added")
                + (f"; without neighbours: {', '.join(self.isolated)}" if self.isolated else ""))


def _read_edges(path: Path, cols: tuple[str, str, str]) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, dtype={cols[0]: str, cols[1]: str})
    except (OSError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    missing = [c for c in cols if c not in raw.columns]
    if missing:
        raise DataError(f"{path} lacks columns {missing}")
    out = raw[list(cols)].copy()
    out.columns = ["municipality", "neighbour", "shared_border_km"]
    return out


@functools.lru_cache(maxsize=8)
def _graph(contiguity: str, islands: str, geo_dir: str) -> NeighbourGraph:
    from ojpanel.data.reference import municipality_codes

    g = Path(geo_dir)
    edges = _read_edges(g / "neighbours.csv", ("kommunkod", "neighbour_kommunkod", "shared_border_km"))
    if contiguity == "queen":
        pts = _read_edges(g / "neighbours_point_contacts.csv",
                          ("kommunkod", "neighbour_kommunkod", "crosscheck_shared_km"))
        pts["shared_border_km"] = 0.0  # corner contacts: no border length in this geometry
        edges = pd.concat([edges, pts], ignore_index=True)
    codes = tuple(sorted(municipality_codes()))
    unknown = sorted((set(edges["municipality"]) | set(edges["neighbour"])) - set(codes))
    if unknown:
        raise DataError(f"the neighbour list names unknown municipality codes {unknown[:5]}")
    key = set(zip(edges["municipality"], edges["neighbour"], strict=True))
    asym = [(a, b) for a, b in key if (b, a) not in key]
    if asym or (edges["municipality"] == edges["neighbour"]).any():
        raise DataError(f"the neighbour list must be symmetric without self-pairs; e.g. {asym[:3]}")
    isolated = sorted(set(codes) - set(edges["municipality"]))
    added = pd.DataFrame(columns=["municipality", "neighbour", "distance_km"])
    if islands == "nearest" and isolated:
        b = load_boundaries(g / "kommuner.geojson")
        cent = centroids(b)
        links = [(c, *_nearest_municipality(c, b, cent)) for c in isolated]
        added = pd.DataFrame(links, columns=["municipality", "neighbour", "distance_km"])
        extra = pd.DataFrame({
            "municipality": [a for a, n, _ in links] + [n for a, n, _ in links],
            "neighbour": [n for a, n, _ in links] + [a for a, n, _ in links],
            "shared_border_km": 0.0,
        })
        edges = pd.concat([edges, extra], ignore_index=True).drop_duplicates(
            ["municipality", "neighbour"])
        isolated = sorted(set(codes) - set(edges["municipality"]))
    edges = edges.sort_values(["municipality", "neighbour"]).reset_index(drop=True)
    return NeighbourGraph(codes=codes, edges=edges, contiguity=contiguity, islands=islands,
                          isolated=tuple(isolated), added_links=added)


def neighbour_graph(contiguity: str = "rook", islands: str = "exclude") -> NeighbourGraph:
    """The embedded municipal neighbour graph.

    Parameters
    ----------
    contiguity
        ``"rook"`` (a shared land border of at least 0.5 km; 694 pairs) or ``"queen"`` (also the 34
        corner-only contacts, with border length 0).
    islands
        ``"exclude"`` or ``"nearest"`` (module docstring). Required to be one of these: the five
        island municipalities are never linked silently.
    """
    if contiguity not in ("rook", "queen"):
        raise ParameterError(f"contiguity must be 'rook' or 'queen'; got {contiguity!r}")
    if islands not in ISLAND_RULES:
        raise ParameterError(f"islands must be one of {ISLAND_RULES}; got {islands!r}")
    return _graph(contiguity, islands, str(_geo_dir()))


def weights_matrix(
    graph: NeighbourGraph, weights: str = "contiguity", *, codes: Sequence[str] | None = None
) -> np.ndarray:
    """Neighbour weights ``w_ij`` (not row-standardised) in the order of ``codes``.

    Parameters
    ----------
    graph
        From :func:`neighbour_graph` (or a rewired copy).
    weights
        ``"contiguity"``, ``"border"`` (km of shared border) or ``"inverse_distance"`` (1/km
        between centroids).
    codes
        Row/column order, e.g. a panel's ``municipality`` coordinate; codes absent from the graph
        are an error.
    """
    if weights not in WEIGHTS:
        raise ParameterError(f"weights must be one of {WEIGHTS}; got {weights!r}")
    order = list(graph.codes) if codes is None else [str(c) for c in codes]
    unknown = sorted(set(order) - set(graph.codes))
    if unknown:
        raise ParameterError(f"municipalities {unknown[:5]} are not in the neighbour graph")
    pos = {c: i for i, c in enumerate(order)}
    e = graph.edges[graph.edges["municipality"].isin(pos) & graph.edges["neighbour"].isin(pos)]
    i = e["municipality"].map(pos).to_numpy()
    j = e["neighbour"].map(pos).to_numpy()
    if weights == "contiguity":
        w = np.ones(len(e))
    elif weights == "border":
        w = e["shared_border_km"].to_numpy(float)
    else:
        cent = centroids().set_index("municipality")
        a, b = cent.loc[e["municipality"]], cent.loc[e["neighbour"]]
        w = 1.0 / haversine_km(a["lon"].to_numpy(), a["lat"].to_numpy(),
                               b["lon"].to_numpy(), b["lat"].to_numpy())
    W = np.zeros((len(order), len(order)))
    W[i, j] = w
    return W
