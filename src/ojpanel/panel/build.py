"""Build the OJ panel (an xarray.Dataset) from tidy values.

``build_panel`` reads the embedded real data, a tidy CSV/parquet file, a fetched snapshot directory
or a DataFrame; ``from_tidy`` does the work for frames, including frames of harmonised variables
whose metadata the caller supplies. The result always passes :func:`ojpanel.panel.validate.validate`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.config import KOLADA_CITATION, PROCESSED_SOURCE_NOTE
from ojpanel.data.reference import MUNICIPALITY_COLUMNS, load_grouping, load_municipalities
from ojpanel.errors import DataError, ParameterError
from ojpanel.indicators.catalogue import AREAS, KINDS, derive_metadata, load_catalogue
from ojpanel.panel.exceptions import apply_value_exceptions
from ojpanel.panel.tidy import check_tidy, read_tidy
from ojpanel.panel.validate import validate
from ojpanel.provenance import hash_dataset, provenance_attrs

__all__ = ["INDICATOR_COLUMNS", "build_panel", "from_tidy", "indicator_metadata"]

#: Indicator-level coordinates of the panel, in order.
INDICATOR_COLUMNS = ("title", "area", "kind", "scale", "direction", "source")


def indicator_metadata(ids: Iterable[str], catalogue: pd.DataFrame | None = None) -> pd.DataFrame:
    """Panel metadata (title, area, kind, scale, direction, source) for KPI ids.

    KPIs missing from the catalogue get their metadata from the same rules applied to an empty
    title (area ``övergripande``, kind ``background``, direction 0) and are listed in the
    ``metadata_rule`` column as ``not in catalogue``, so they are never analysed as improvements.
    """
    cat = load_catalogue() if catalogue is None else catalogue
    if "area" not in cat.columns:
        cat = derive_metadata(cat)
    ids = list(ids)
    known = cat.set_index("id")
    rows = []
    unknown = [i for i in ids if i not in known.index]
    if unknown:
        extra = derive_metadata(pd.DataFrame({"id": unknown, "title": [""] * len(unknown)}))
        extra["metadata_rule"] = "not in catalogue"
        known = pd.concat([known, extra.set_index("id")])
    for i in ids:
        r = known.loc[i]
        rows.append({
            "id": i,
            "title": str(r["title"]),
            "area": r["area"],
            "kind": r["kind"],
            "scale": r["scale"],
            "direction": int(r["direction"]),
            "source": r["source_type"],
            "metadata_rule": "not in catalogue" if i in unknown else "catalogue rules and overrides",
        })
    return pd.DataFrame(rows)


def _select_years(years: Iterable[int] | tuple[int, int] | None) -> list[int] | None:
    if years is None:
        return None
    ys = sorted({int(y) for y in years})
    if not ys:
        raise ParameterError("years is empty; give e.g. range(2016, 2021) or leave it out")
    return ys


def from_tidy(
    frame: pd.DataFrame,
    indicator_meta: pd.DataFrame | None = None,
    *,
    gender: str | None = "T",
    years: Iterable[int] | None = None,
    groupings: Mapping[str, Any] | None = None,
    source: str = "tidy frame",
    citation: str = KOLADA_CITATION,
    extra_attrs: Mapping[str, Any] | None = None,
    check: bool = True,
) -> xr.Dataset:
    """Turn a tidy frame into the OJ panel.

    Parameters
    ----------
    frame
        Columns ``kpi, municipality, year, gender, value`` (optional ``count``, ``status``). The
        ``kpi`` column holds indicator ids: Kolada KPI ids or harmonised variable ids.
    indicator_meta
        One row per indicator id with columns ``id, title, area, kind, scale, direction, source``.
        Default: derived from the embedded KPI catalogue (:func:`indicator_metadata`).
    gender
        ``"T"`` (default), ``"K"`` or ``"M"`` keeps that gender only; ``None`` keeps all three as
        a ``gender`` dimension.
    years
        Keep only these years. The year axis is the full range from first to last year, so lags
        never skip a gap.
    groupings
        Extra municipality groupings, ``{name: mapping or file}``; see
        :func:`ojpanel.data.reference.load_grouping`.
    source, citation, extra_attrs
        Provenance recorded in the Dataset attrs.
    check
        Validate the result (default True).

    Returns
    -------
    xarray.Dataset
        The panel; see the panel contract in the package documentation.
    """
    df, report = check_tidy(frame, where=source)
    df, applied = apply_value_exceptions(df)
    report["value_exceptions_applied"] = len(applied)
    if gender is not None:
        if gender not in {"T", "K", "M"}:
            raise ParameterError(f"gender must be 'T', 'K', 'M' or None (all three), got {gender!r}")
        report["rows_other_gender_dropped"] = int((df["gender"] != gender).sum())
        df = df.loc[df["gender"] == gender]
    ys = _select_years(years)
    if ys is not None:
        df = df.loc[df["year"].isin(ys)]
    if df.empty:
        raise DataError(f"{source}: no values left after selecting gender={gender!r} and years={ys}; "
                        "check the filters")

    ids = sorted(df["kpi"].unique())
    if indicator_meta is None:
        meta = indicator_metadata(ids)
    else:
        meta = indicator_meta.copy()
        meta["id"] = meta["id"].astype(str)
        lacking = [c for c in ("id", *INDICATOR_COLUMNS) if c not in meta.columns]
        if lacking:
            raise DataError(f"indicator metadata lacks columns {lacking}")
        absent = sorted(set(ids) - set(meta["id"]))
        if absent:
            raise DataError(f"indicator metadata has no row for {absent}; add them")
        if meta["id"].duplicated().any():
            raise DataError(f"indicator metadata lists {sorted(meta.loc[meta['id'].duplicated(), 'id'])} twice")
        meta = meta.loc[meta["id"].isin(ids)]
    meta = meta.set_index("id").loc[ids]

    munis = load_municipalities()
    years_axis = np.arange(int(df["year"].min()), int(df["year"].max()) + 1, dtype=np.int64)
    mi = pd.Index(munis["municipality"]).get_indexer(df["municipality"])
    ii = pd.Index(ids).get_indexer(df["kpi"])
    yi = (df["year"].to_numpy() - years_axis[0]).astype(np.int64)
    dims = ["municipality", "indicator", "year"]
    shape = [len(munis), len(ids), len(years_axis)]
    index = (mi, ii, yi)
    genders = None
    if gender is None:
        genders = [g for g in ("T", "K", "M") if g in set(df["gender"])]
        dims.append("gender")
        shape.append(len(genders))
        index = (*index, pd.Index(genders).get_indexer(df["gender"]))
    value = np.full(shape, np.nan)
    value[index] = df["value"].to_numpy(dtype=float)
    data_vars = {"value": (dims, value, {"long_name": "indicator value on its harmonised scale"})}
    if "count" in df.columns and df["count"].notna().any():
        n = np.full(shape, np.nan)
        n[index] = df["count"].to_numpy(dtype=float)
        data_vars["n"] = (dims, n, {"long_name": "respondents or units behind the value"})

    coords: dict[str, Any] = {
        "municipality": ("municipality", munis["municipality"].to_numpy(dtype=object)),
        "indicator": ("indicator", np.asarray(ids, dtype=object)),
        "year": ("year", years_axis),
    }
    if genders is not None:
        coords["gender"] = ("gender", np.asarray(genders, dtype=object))
    for col in MUNICIPALITY_COLUMNS:
        coords[col] = ("municipality", munis[col].to_numpy(dtype=object))
    for col in INDICATOR_COLUMNS:
        vals = meta[col].to_numpy()
        coords[col] = ("indicator", vals.astype(np.int64) if col == "direction" else vals.astype(str).astype(object))
    ds = xr.Dataset(data_vars, coords=coords)
    for name, spec in (groupings or {}).items():
        ds = add_grouping(ds, spec, name)

    areas = sorted(set(meta["area"]))
    attrs = provenance_attrs(
        {
            "title": "Öppna jämförelser panel (municipality × indicator × year)",
            "data_source": source,
            "citation_raw_values": citation,
            "citation_processed": PROCESSED_SOURCE_NOTE,
            "gender": gender if gender is not None else "T,K,M",
        },
        build_report=report,
        value_exceptions_applied=applied,
        areas=areas,
        **dict(extra_attrs or {}),
    )
    ds.attrs.update(attrs)
    ds.attrs["content_hash"] = hash_dataset(ds)
    if check:
        validate(ds)
    return ds


def from_harmonised(harmonised: Any, **kwargs: Any) -> xr.Dataset:
    """The OJ panel of harmonised variables (:func:`ojpanel.harmonise`'s result).

    The variables' metadata come from the harmonisation spec; its provenance (spec, mode, the
    synthetic marker of simulated input) is kept in the panel's attrs. ``kwargs`` go to
    :func:`from_tidy`.
    """
    attrs = harmonised.attrs
    extra = dict(kwargs.pop("extra_attrs", {}) or {})
    extra.update(
        {k: v for k, v in attrs.items() if k not in {"library_versions", "created", "ojpanel_version"}}
    )
    kwargs.setdefault("source", f"harmonised variables ({attrs.get('spec')})")
    return from_tidy(
        harmonised.to_tidy(), harmonised.meta.drop(columns="group"), extra_attrs=extra, **kwargs
    )


def add_grouping(ds: xr.Dataset, spec: Any, name: str) -> xr.Dataset:
    """Return ``ds`` with a user-supplied municipality grouping added as coordinate ``name``.

    Municipalities the grouping does not cover get an empty label (no group). The grouping's
    coverage is recorded in the attrs of the new coordinate.
    """
    if name in ds.coords:
        raise ParameterError(f"the panel already has a coordinate named {name!r}; choose another name")
    series = spec if isinstance(spec, pd.Series) and spec.name == name else load_grouping(spec, name)
    labels = series.reindex(ds["municipality"].values).fillna("").to_numpy(dtype=object)
    out = ds.assign_coords({name: ("municipality", labels)})
    out[name].attrs = {
        "description": f"user-supplied grouping '{name}'",
        "municipalities_covered": int((labels != "").sum()),
    }
    return out


def _read_source(source: Any) -> tuple[pd.DataFrame, str, dict]:
    from ojpanel.data.embedded import EMBEDDED_SNAPSHOT_DATE, EMBEDDED_SOURCE, load_embedded_values

    if source is None:
        return load_embedded_values(), EMBEDDED_SOURCE, {"snapshot_date": EMBEDDED_SNAPSHOT_DATE}
    if isinstance(source, pd.DataFrame):
        return source, "tidy frame", {}
    path = Path(source)
    if path.is_dir():
        from ojpanel.data.snapshot import read_snapshot  # written by the Kolada fetcher

        frame, prov = read_snapshot(path)
        extra = {"snapshot_date": prov.get("retrieved", ""), "snapshot_provenance": json.dumps(prov, default=str)}
        return frame, f"Kolada snapshot {path}", extra
    return read_tidy(path), str(path), {}


def build_panel(
    source: pd.DataFrame | Path | str | None = None,
    *,
    kpis: Iterable[str] | None = None,
    areas: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
    years: Iterable[int] | None = None,
    gender: str | None = "T",
    groupings: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Build the OJ panel from the embedded real data or from tidy values.

    Parameters
    ----------
    source
        ``None`` for the embedded real Kolada values; a DataFrame; a tidy CSV/CSV.gz/parquet file;
        or a snapshot directory written by ``ojpanel fetch``.
    kpis, areas, kinds
        Keep only these KPI ids / analysis areas / kinds (see ``ojpanel.indicators.catalogue``).
    years
        Keep only these years.
    gender
        ``"T"`` (default), ``"K"``, ``"M"``, or ``None`` for a ``gender`` dimension.
    groupings
        Extra municipality groupings ``{name: mapping, Series, DataFrame or CSV file}``.

    Returns
    -------
    xarray.Dataset
        A validated panel with provenance attrs.

    Examples
    --------
    >>> import ojpanel
    >>> ds = ojpanel.build_panel(areas=["äldreomsorg"], years=range(2016, 2021))  # doctest: +SKIP
    """
    frame, where, extra = _read_source(source)
    if kpis is not None or areas is not None or kinds is not None:
        kpis = None if kpis is None else {str(k) for k in kpis}
        keep = set(frame["kpi"].astype(str).unique())
        if kpis is not None:
            unknown = sorted(kpis - keep)
            if unknown:
                raise ParameterError(f"KPI(s) {unknown} have no values in {where}; "
                                     "see `ojpanel kpi search` or fetch them with `ojpanel fetch`")
            keep &= kpis
        if areas is not None or kinds is not None:
            meta = indicator_metadata(sorted(keep)).set_index("id")
            for name, wanted, allowed in (("area", areas, AREAS), ("kind", kinds, KINDS)):
                if wanted is None:
                    continue
                wanted = set(wanted)
                bad = sorted(wanted - set(allowed))
                if bad:
                    raise ParameterError(f"unknown {name}(s) {bad}; choose from {list(allowed)}")
                keep &= set(meta.index[meta[name].isin(wanted)])
        if not keep:
            raise DataError(f"no indicator in {where} matches kpis={kpis}, areas={areas}, kinds={kinds}")
        frame = frame.loc[frame["kpi"].astype(str).isin(keep)]
    return from_tidy(frame, gender=gender, years=years, groupings=groupings, source=where,
                     extra_attrs=extra)
