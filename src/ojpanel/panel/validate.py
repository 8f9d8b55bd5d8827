"""The panel contract, checked: one error that lists every violation."""

from __future__ import annotations

import re

import numpy as np
import xarray as xr

from ojpanel.core.scales import SCALE_BOUNDS
from ojpanel.core.synthetic import is_synthetic
from ojpanel.data.reference import municipality_codes
from ojpanel.errors import PanelValidationError

__all__ = ["REQUIRED_MUNICIPALITY_COORDS", "REQUIRED_INDICATOR_COORDS", "SCALE_BOUNDS", "validate", "violations"]

REQUIRED_MUNICIPALITY_COORDS = ("municipality_name", "county", "county_name", "kommungrupp_2017", "kommungrupp_2023")
REQUIRED_INDICATOR_COORDS = ("title", "area", "kind", "scale", "direction", "source")
_MAX = 10


def _dups(values: np.ndarray) -> list:
    u, c = np.unique(values.astype(str), return_counts=True)
    return [str(x) for x in u[c > 1]]


def violations(ds: xr.Dataset) -> list[str]:
    """Every way ``ds`` breaks the OJ panel contract (empty list if none)."""
    out: list[str] = []
    for dim in ("municipality", "indicator", "year"):
        if dim not in ds.dims:
            out.append(f"missing dimension '{dim}'")
    if "value" not in ds.data_vars:
        out.append("missing data variable 'value'")
    if out:
        return out
    extra = set(ds["value"].dims) - {"municipality", "indicator", "year", "gender"}
    if extra:
        out.append(f"'value' has unexpected dimensions {sorted(extra)}")
    if "gender" in ds.dims:
        bad = sorted(set(map(str, ds["gender"].values)) - {"T", "K", "M"})
        if bad:
            out.append(f"unknown gender labels {bad} (use T, K, M)")

    codes = [str(c) for c in np.asarray(ds["municipality"].values)]
    for dim in ("municipality", "indicator", "year"):
        d = _dups(np.asarray(ds[dim].values))
        if d:
            out.append(f"duplicate {dim} labels (duplicate keys): {d[:_MAX]}")
    malformed = [c for c in codes if not re.fullmatch(r"\d{4}", c)]
    if malformed:
        out.append(f"municipality codes must be 4-digit strings; malformed: {malformed[:_MAX]}")
    unknown = sorted(set(codes) - municipality_codes() - set(malformed))
    # a synthetic panel may use made-up codes; every other rule holds
    if unknown and not is_synthetic(ds):
        out.append(f"unknown municipality codes: {unknown[:_MAX]} (regions 0000/00xx are not municipalities)")

    years = np.asarray(ds["year"].values)
    if not np.issubdtype(years.dtype, np.integer):
        out.append(f"year labels must be integers, got dtype {years.dtype}")
    elif len(years) > 1 and not np.all(np.diff(years) > 0):
        out.append(f"years must be strictly increasing; got {years.tolist()}")

    for c in REQUIRED_MUNICIPALITY_COORDS:
        if c not in ds.coords:
            out.append(f"missing municipality coordinate '{c}'")
        elif ds[c].dims != ("municipality",):
            out.append(f"coordinate '{c}' must be indexed by municipality, has dims {ds[c].dims}")
    for c in REQUIRED_INDICATOR_COORDS:
        if c not in ds.coords:
            out.append(f"missing indicator coordinate '{c}'")
        elif ds[c].dims != ("indicator",):
            out.append(f"coordinate '{c}' must be indexed by indicator, has dims {ds[c].dims}")
    if "county" in ds.coords and "municipality" in ds.coords:
        wrong = [m for m, c in zip(codes, map(str, ds["county"].values), strict=False) if m[:2] != c]
        if wrong:
            out.append(f"county code must equal the first two digits of the municipality code: {wrong[:_MAX]}")

    if "direction" in ds.coords:
        bad = sorted(set(np.asarray(ds["direction"].values).tolist()) - {-1, 0, 1})
        if bad:
            out.append(f"direction must be -1, 0 or +1; found {bad}")
    if "value" in ds and not np.issubdtype(ds["value"].dtype, np.floating):
        out.append(f"'value' must be float, got {ds['value'].dtype}")
    elif "scale" in ds.coords:
        out.extend(_scale_violations(ds))
    return out


def _scale_violations(ds: xr.Dataset) -> list[str]:
    out = []
    scales = np.asarray(ds["scale"].values).astype(str)
    unknown = sorted(set(scales) - set(SCALE_BOUNDS))
    if unknown:
        out.append(f"unknown scale(s) {unknown}; allowed: {sorted(SCALE_BOUNDS)}")
    val = ds["value"].transpose("indicator", ...)
    for scale, (lo, hi, whole) in SCALE_BOUNDS.items():
        idx = np.flatnonzero(scales == scale)
        if idx.size == 0 or (np.isinf(lo) and np.isinf(hi) and not whole):
            continue
        v = val.isel(indicator=idx)
        arr = v.values.reshape(len(idx), -1)
        with np.errstate(invalid="ignore"):
            bad = ~np.isnan(arr) & ((arr < lo) | (arr > hi) | (whole & (arr != np.round(arr))))
        for j in np.flatnonzero(bad.any(axis=1))[:_MAX]:
            ind = str(v["indicator"].values[j])
            examples = np.unique(arr[j][bad[j]])[:5].tolist()
            out.append(
                f"indicator {ind}: {int(bad[j].sum())} value(s) outside its declared scale "
                f"'{scale}' ({'whole numbers ' if whole else ''}in [{lo:g}, {hi:g}]), e.g. {examples}; "
                "fix the data or the indicator's scale override"
            )
    return out


def validate(ds: xr.Dataset) -> xr.Dataset:
    """Check ``ds`` against the OJ panel contract.

    Returns
    -------
    xarray.Dataset
        ``ds`` itself, so calls can be chained.

    Raises
    ------
    PanelValidationError
        Listing every violation: missing dims/coords, duplicate keys, unknown or malformed
        municipality codes, non-increasing years, values outside an indicator's declared scale.
    """
    problems = violations(ds)
    if problems:
        raise PanelValidationError(problems)
    return ds
