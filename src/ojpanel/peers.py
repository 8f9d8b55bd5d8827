"""Peer statistics on the OJ panel: leave-one-out group means, lags, quartile flags, improvement.

Each statistic has a numpy core (fast, used in loops) and an xarray wrapper that works on any
DataArray with ``municipality`` and ``year`` dims (extra dims such as ``indicator`` are kept).
Definitions follow RiR 2021:17's appendix (analysis D); choices it leaves open are stated here.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr
from scipy import sparse

from ojpanel.errors import DataError, ParameterError

#: The peer definition "the municipalities that share a border" (beside county, kommungrupp, …).
NEIGHBOURS = "neighbours"

#: Weight matrices with at most this share of non-zero entries are multiplied as sparse matrices.
SPARSE_DENSITY = 0.05

__all__ = [
    "NEIGHBOURS",
    "loo_mean_np",
    "loo_group_mean",
    "group_codes",
    "neighbour_mean_np",
    "neighbour_mean",
    "group_mean",
    "lagged",
    "top_quartile_flag",
    "improved",
    "change",
]


def loo_mean_np(values: np.ndarray, group_codes: np.ndarray) -> np.ndarray:
    """Mean of the *other* units of the same group, ignoring missing values.

    Parameters
    ----------
    values
        Shape ``(n,)`` or ``(n, k)``: one row per municipality; columns are independent
        (e.g. indicator × year cells). NaN marks missing.
    group_codes
        Integer group code per row (``-1`` = no group; those rows get NaN).

    Returns
    -------
    numpy.ndarray
        Same shape as ``values``: ``(sum_g - own) / (count_g - own_present)``; NaN when no other
        unit of the group has a value.
    """
    v = np.asarray(values, dtype=float)
    one_d = v.ndim == 1
    v2 = v.reshape(len(v), -1)
    codes = np.asarray(group_codes)
    ok = codes >= 0
    sums, counts, filled, present = _group_totals(v2, codes)
    out = np.full_like(v2, np.nan)
    own_sum = sums[codes[ok]] - filled[ok]
    own_cnt = counts[codes[ok]] - present[ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[ok] = np.where(own_cnt > 0, own_sum / own_cnt, np.nan)
    return out.ravel() if one_d else out.reshape(v.shape)


def _group_totals(v2: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per group: sums and counts of the present values of ``v2`` ``(n, k)``; also the zero-filled
    values and the presence mask. Rows with code -1 belong to no group."""
    ok = codes >= 0
    g = int(codes[ok].max()) + 1 if ok.any() else 0
    rows = np.flatnonzero(ok)
    # a one-hot sparse matrix adds each group's rows in row order, as a loop would, but in C
    onehot = sparse.csr_matrix((np.ones(rows.size), (codes[ok], rows)), shape=(g, len(codes)))
    present = ~np.isnan(v2)
    filled = np.where(present, v2, 0.0)
    return onehot @ filled, onehot @ present.astype(float), filled, present


def group_codes(da: xr.DataArray, groups: xr.DataArray | str) -> np.ndarray:
    """Integer group code of every municipality of ``da`` (``-1``: no group, i.e. a missing or empty
    label); ``groups`` is a municipality-indexed DataArray of labels or a coordinate's name."""
    if isinstance(groups, str):
        if groups not in da.coords:
            raise ParameterError(
                f"peer group '{groups}' is not a coordinate of the data; available: "
                f"{sorted(c for c in da.coords if 'municipality' in da[c].dims and c != 'municipality')}"
            )
        groups = da.coords[groups]
    g = groups.reindex(municipality=da["municipality"]) if "municipality" in groups.dims else groups
    labels = np.asarray(g.values).astype(object)
    missing = np.array([x is None or (isinstance(x, float) and np.isnan(x)) or x == "" for x in labels])
    codes = np.full(len(labels), -1, dtype=np.int64)
    if (~missing).any():
        _, inv = np.unique(labels[~missing].astype(str), return_inverse=True)
        codes[~missing] = inv
    return codes


def loo_group_mean(da: xr.DataArray, groups: xr.DataArray | str) -> xr.DataArray:
    """Leave-one-out mean of the other municipalities in the same group, per year (and indicator).

    Parameters
    ----------
    da
        Values with a ``municipality`` dim (and typically ``year``/``indicator``).
    groups
        A municipality-indexed DataArray of group labels, or the name of a municipality coordinate
        of ``da`` (e.g. ``"county"``, ``"kommungrupp_2017"``). Municipalities with no group get NaN.

    Returns
    -------
    xarray.DataArray
        Same dims and coords as ``da``, named ``"<name>_loo_mean"``.
    """
    codes = group_codes(da, groups)
    moved = da.transpose("municipality", ...)
    out = loo_mean_np(moved.values, codes)
    res = moved.copy(data=out).transpose(*da.dims)
    res.name = f"{da.name or 'value'}_loo_mean"
    res.attrs = {"description": "mean of the other municipalities of the same group (leave-one-out)"}
    return res


def neighbour_mean_np(values: np.ndarray, W: np.ndarray | sparse.spmatrix) -> np.ndarray:
    """Weighted mean over each row's neighbours, re-normalised over the neighbours with a value.

    Parameters
    ----------
    values
        Shape ``(n,)`` or ``(n, k)``; NaN marks missing.
    W
        ``(n, n)`` non-negative neighbour weights with a zero diagonal (so the unit itself is left
        out, as in :func:`loo_mean_np`), dense or a scipy sparse matrix.

    Returns
    -------
    numpy.ndarray
        ``Σ_j w_ij·v_j / Σ_j w_ij·1{v_j present}``; NaN where no neighbour has a value or a unit
        has no neighbours.
    """
    v = np.asarray(values, dtype=float)
    if sparse.issparse(W):
        W = sparse.csr_matrix(W, dtype=float)
        diag, negative = W.diagonal(), W.data < 0
    else:
        W = np.asarray(W, dtype=float)
        diag, negative = np.diag(W), W < 0
    if W.shape != (len(v), len(v)):
        raise ParameterError(f"weights must be {len(v)}×{len(v)}; got {W.shape}")
    if np.any(diag != 0) or np.any(negative):
        raise ParameterError("neighbour weights must be non-negative with a zero diagonal")
    v2 = v.reshape(len(v), -1)
    present = ~np.isnan(v2)
    # contiguity weights are ~2 % non-zero: with many columns a sparse product does a fiftieth of
    # the work (converting costs about one dense column; callers in loops pass sparse weights)
    if not sparse.issparse(W) and v2.shape[1] >= 16 and np.count_nonzero(W) <= SPARSE_DENSITY * W.size:
        W = sparse.csr_matrix(W)
    num = np.asarray(W @ np.where(present, v2, 0.0))
    den = np.asarray(W @ present.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / den, np.nan)
    return out.reshape(v.shape)


def neighbour_mean(
    da: xr.DataArray, graph=None, weights: str = "contiguity", *, islands: str = "exclude"
) -> xr.DataArray:
    """Mean of each municipality's neighbours (never itself), per year (and indicator).

    Parameters
    ----------
    da
        Values with a ``municipality`` dim.
    graph
        A :class:`ojpanel.data.geo.NeighbourGraph` (e.g. rook or queen contiguity, or a rewired
        placebo graph); default the embedded rook graph with the ``islands`` rule.
    weights
        ``"contiguity"`` (equal weights), ``"border"`` (shared border length) or
        ``"inverse_distance"`` (1/centroid distance); see :func:`ojpanel.data.geo.weights_matrix`.
    islands
        Island rule when ``graph`` is not given: ``"exclude"`` or ``"nearest"``.

    Returns
    -------
    xarray.DataArray
        Same dims and coords as ``da``; attrs name the graph, weights and the municipalities
        without neighbours (whose mean is missing).
    """
    from ojpanel.data.geo import neighbour_graph, weights_matrix

    g = graph if graph is not None else neighbour_graph(islands=islands)
    codes = [str(c) for c in da["municipality"].values]
    W = weights_matrix(g, weights, codes=codes)
    moved = da.transpose("municipality", ...)
    out = neighbour_mean_np(moved.values, W)
    res = moved.copy(data=out).transpose(*da.dims)
    res.name = f"{da.name or 'value'}_neighbour_mean"
    no_nb = [c for c, s in zip(codes, W.sum(1), strict=True) if s == 0]
    res.attrs = {
        "description": f"{weights}-weighted mean of the neighbouring municipalities ({g.contiguity} "
        f"contiguity, islands={g.islands!r})",
        "without_neighbours": ",".join(no_nb),
    }
    return res


def group_mean(da: xr.DataArray, groups: xr.DataArray | str) -> xr.DataArray:
    """Mean of all municipalities of the group (including the municipality itself)."""
    codes = group_codes(da, groups)
    moved = da.transpose("municipality", ...)
    v = moved.values.reshape(moved.shape[0], -1)
    ok = codes >= 0
    sums, counts, _, _ = _group_totals(v, codes)
    out = np.full_like(v, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[ok] = np.where(counts[codes[ok]] > 0, sums[codes[ok]] / counts[codes[ok]], np.nan)
    return moved.copy(data=out.reshape(moved.shape)).transpose(*da.dims)


def lagged(da: xr.DataArray, k: int) -> xr.DataArray:
    """Value at year ``t - k`` placed at year ``t`` (by year label, not position).

    Years absent from the coordinate give NaN, so gaps in the year axis never shift data wrongly.
    """
    if "year" not in da.dims:
        raise DataError("lagged() needs a 'year' dimension")
    years = np.asarray(da["year"].values)
    src = da.reindex(year=years - k)
    return src.assign_coords(year=years)


def change(da: xr.DataArray, k: int) -> xr.DataArray:
    """Change from ``t - k`` to ``t`` (NaN where either is missing)."""
    return da - lagged(da, k)


def top_quartile_flag(da: xr.DataArray, q: float = 0.75, *, over: str = "municipality") -> xr.DataArray:
    """1.0 where ``da`` is strictly above its ``q``-quantile across ``over``; NaN stays NaN.

    The quantile is computed separately for every other coordinate (e.g. each indicator × year),
    over the non-missing values, with linear interpolation (numpy's default). Values equal to the
    quantile are *not* flagged (the audit says "above the 75th percentile"). Slices without any
    value (a year nobody answered) give NaN flags.
    """
    if not 0 < q < 1:
        raise ParameterError(f"quantile q must be in (0, 1), got {q}")
    # a year without any value has no quantile: its flags are NaN, which is all numpy's
    # "All-NaN slice" warning would say
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        qv = da.quantile(q, dim=over, skipna=True).drop_vars("quantile")
    flag = (da > qv).astype(float)
    return flag.where(da.notnull())


def improved(da: xr.DataArray, k: int, direction: int | xr.DataArray) -> xr.DataArray:
    """1.0 if the result changed strictly for the better from ``t - k`` to ``t``, else 0.0.

    Parameters
    ----------
    da
        Values with a ``year`` dim.
    k
        Span in years.
    direction
        +1 (higher is better) or −1 (lower is better), scalar or per indicator. Cells whose
        direction is 0 (unknown) are NaN: "improved" has no meaning there.
    """
    d = direction if isinstance(direction, xr.DataArray) else xr.DataArray(direction)
    diff = change(da, k) * d
    out = (diff > 0).astype(float)
    return out.where(diff.notnull() & (d != 0))
