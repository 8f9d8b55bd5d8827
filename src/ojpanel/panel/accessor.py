"""The ``ds.oj`` accessor: selection, long frames, peer groups and coverage on an OJ panel.

Layers as in the rest of the package: numpy cores (``ojpanel.peers``), DataArray wrappers, and this
accessor that knows the panel's coordinates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel import peers
from ojpanel.errors import ParameterError

__all__ = ["OJAccessor", "BUILTIN_GROUPINGS"]

#: Municipality coordinates that define peer groups out of the box.
BUILTIN_GROUPINGS = ("county", "kommungrupp_2011", "kommungrupp_2017", "kommungrupp_2023")
_LABEL_COORDS = {
    "municipality_name", "county_name", "kommungrupp_2011_name", "kommungrupp_2017_name",
    "kommungrupp_2017_main", "kommungrupp_2023_name", "kommungrupp_2023_main",
}  # fmt: skip


def _as_list(x: Any) -> list | None:
    if x is None:
        return None
    if isinstance(x, (str, int, np.integer)):
        return [x]
    return list(x)


@xr.register_dataset_accessor("oj")
class OJAccessor:
    """Panel-aware helpers, available as ``ds.oj`` once ``ojpanel`` is imported."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    # ---- selection -------------------------------------------------------------------------
    def select(
        self,
        *,
        area: str | Iterable[str] | None = None,
        kind: str | Iterable[str] | None = None,
        scale: str | Iterable[str] | None = None,
        source: str | Iterable[str] | None = None,
        direction: int | Iterable[int] | None = None,
        indicators: str | Iterable[str] | None = None,
        years: int | Iterable[int] | None = None,
        municipalities: str | Iterable[str] | None = None,
    ) -> xr.Dataset:
        """Subset by indicator metadata, indicator ids, years or municipalities.

        Every filter takes one value or a list. Asking for a value that does not exist is an
        error (so a typo never returns an empty panel quietly).
        """
        ds = self._ds
        mask = np.ones(ds.sizes["indicator"], dtype=bool)
        for name, wanted in (("area", area), ("kind", kind), ("scale", scale), ("source", source),
                             ("direction", direction)):
            wanted = _as_list(wanted)
            if wanted is None:
                continue
            have = set(np.asarray(ds[name].values).tolist())
            unknown = [w for w in wanted if w not in have]
            if unknown:
                raise ParameterError(f"no indicator has {name} {unknown}; the panel has {sorted(have, key=str)}")
            mask &= np.isin(ds[name].values, wanted)
        ids = _as_list(indicators)
        if ids is not None:
            unknown = sorted(set(ids) - set(ds["indicator"].values.tolist()))
            if unknown:
                raise ParameterError(f"indicators {unknown} are not in the panel")
            mask &= np.isin(ds["indicator"].values, ids)
        out = ds.isel(indicator=np.flatnonzero(mask))
        ys = _as_list(years)
        if ys is not None:
            unknown = sorted(set(int(y) for y in ys) - set(ds["year"].values.tolist()))
            if unknown:
                raise ParameterError(f"years {unknown} are not in the panel (it has "
                                     f"{int(ds['year'].min())}–{int(ds['year'].max())})")
            out = out.sel(year=sorted(int(y) for y in ys))
        ms = _as_list(municipalities)
        if ms is not None:
            unknown = sorted(set(ms) - set(ds["municipality"].values.tolist()))
            if unknown:
                raise ParameterError(f"municipalities {unknown} are not in the panel")
            out = out.sel(municipality=ms)
        if out.sizes["indicator"] == 0:
            raise ParameterError("the selection leaves no indicator; relax the filters")
        return out

    def directional(self) -> xr.Dataset:
        """Only indicators with a known direction (±1), for "improvement" analyses.

        The ids left out are listed in the result's ``excluded_no_direction`` attr, so reports can
        say which indicators were not analysed and why.
        """
        ds = self._ds
        keep = ds["direction"].values != 0
        out = ds.isel(indicator=np.flatnonzero(keep))
        out.attrs = dict(ds.attrs)
        out.attrs["excluded_no_direction"] = json.dumps(ds["indicator"].values[~keep].tolist())
        return out

    # ---- groupings and peers ---------------------------------------------------------------
    @property
    def groupings(self) -> list[str]:
        """Municipality coordinates usable as peer groups (built-in and user-supplied)."""
        ds = self._ds
        return [
            c for c in ds.coords
            if ds[c].dims == ("municipality",) and c != "municipality" and c not in _LABEL_COORDS
        ]

    def add_grouping(self, spec: Any, name: str) -> xr.Dataset:
        """A copy of the panel with a user-supplied grouping (mapping, Series, frame or CSV)."""
        from ojpanel.panel.build import add_grouping

        return add_grouping(self._ds, spec, name)

    def peer_mean(
        self,
        group: str = "county",
        lag: int = 0,
        *,
        loo: bool = True,
        var: str = "value",
        weights: str = "contiguity",
        islands: str = "exclude",
        contiguity: str = "rook",
    ) -> xr.DataArray:
        """Mean of the (other) municipalities in the same group, optionally lagged by ``lag`` years.

        Parameters
        ----------
        group
            A grouping coordinate (see :attr:`groupings`) or ``"neighbours"``: the municipalities
            that share a land border (:mod:`ojpanel.data.geo`).
        lag
            Years back: the value placed at year ``t`` is the peer mean of year ``t - lag``.
        loo
            Leave the municipality itself out (default, as in RiR 2021:17's analysis D). Neighbour
            means always leave it out.
        weights, islands, contiguity
            For ``group="neighbours"`` only: ``"contiguity"`` / ``"border"`` /
            ``"inverse_distance"`` weights, the island rule (``"exclude"`` or ``"nearest"``) and
            ``"rook"`` or ``"queen"`` contiguity. Municipalities without a neighbour get NaN and
            are named in the result's ``without_neighbours`` attr.
        """
        if lag < 0:
            raise ParameterError(f"lag must be >= 0, got {lag}")
        da = self._ds[var]
        if group == peers.NEIGHBOURS:
            if not loo:
                raise ParameterError("neighbour means always leave the municipality out; use loo=True")
            from ojpanel.data.geo import neighbour_graph

            pm = peers.neighbour_mean(da, neighbour_graph(contiguity, islands), weights)
        else:
            if group not in self.groupings:
                raise ParameterError(
                    f"unknown peer group {group!r}; available: {[*self.groupings, peers.NEIGHBOURS]}"
                )
            pm = peers.loo_group_mean(da, group) if loo else peers.group_mean(da, group)
        attrs = dict(pm.attrs)
        out = peers.lagged(pm, lag) if lag else pm
        out.attrs = attrs
        out.name = f"peer_mean_{group}_lag{lag}"
        return out

    # ---- summaries ------------------------------------------------------------------------
    def coverage(self) -> xr.DataArray:
        """Share of municipalities with a value, per indicator × year (0–1)."""
        v = self._ds["value"]
        if "gender" in v.dims:
            v = v.sel(gender="T") if "T" in v["gender"].values else v.isel(gender=0)
        return v.notnull().mean("municipality").rename("coverage")

    def national_mean(self, var: str = "value") -> xr.Dataset:
        """Unweighted mean over municipalities with data, per indicator × year.

        Returns ``mean``, ``sd``, ``n`` (municipalities with data) and ``se`` = sd/√n. Each
        municipality counts once whatever its population: this is the "national average" of
        RiR 2021:17's trend figures, not a population-weighted national figure.
        """
        v = self._ds[var]
        n = v.notnull().sum("municipality")
        mean = v.mean("municipality", skipna=True)
        sd = v.std("municipality", skipna=True, ddof=1)
        out = xr.Dataset({"mean": mean, "sd": sd, "n": n, "se": sd / np.sqrt(n.where(n > 0))})
        out.attrs["definition"] = "unweighted mean over municipalities with data"
        return out

    def to_frame(self, *, dropna: bool = True, var: str | Iterable[str] | None = None) -> pd.DataFrame:
        """Long frame: one row per municipality × indicator × year (× gender) with group coords.

        Columns: the dims, the data variables, the municipality coordinates (names and
        groupings) and the indicator coordinates (title, area, kind, scale, direction, source).
        """
        ds = self._ds
        names = _as_list(var) or list(ds.data_vars)
        keep_dims = [d for d in ("municipality", "indicator", "year", "gender") if d in ds.dims]
        frame = ds[names].reset_coords(drop=True).to_dataframe().reset_index()
        if dropna:
            frame = frame.dropna(subset=names, how="all")
        for dim in ("municipality", "indicator"):
            extra = [c for c in ds.coords if ds[c].dims == (dim,) and c != dim]
            if extra:
                lookup = pd.DataFrame(
                    {c: ds[c].values for c in extra}, index=pd.Index(ds[dim].values, name=dim)
                )
                frame = frame.join(lookup, on=dim)
        ordered = keep_dims + names
        return frame[ordered + [c for c in frame.columns if c not in ordered]].reset_index(drop=True)

    def describe(self) -> str:
        """Plain-text summary: dims, areas, coverage and provenance."""
        ds = self._ds
        cov = self.coverage()
        lines = [
            f"OJ panel: {ds.sizes['municipality']} municipalities × {ds.sizes['indicator']} indicators × "
            f"{ds.sizes['year']} years ({int(ds['year'].min())}–{int(ds['year'].max())})",
            f"non-missing cells: {int(ds['value'].notnull().sum())} of {ds['value'].size} "
            f"({float(ds['value'].notnull().mean()):.1%})",
            "indicators per area: " + ", ".join(
                f"{a} {n}" for a, n in pd.Series(ds["area"].values).value_counts().sort_index().items()),
            "mean coverage per year: " + ", ".join(
                f"{int(y)} {float(c):.0%}" for y, c in zip(cov["year"].values, cov.mean("indicator").values, strict=True)),
            f"peer groupings: {', '.join(self.groupings)}",
        ]
        for key in ("data_source", "snapshot_date", "created", "ojpanel_version", "content_hash", "citation_raw_values"):
            if key in ds.attrs:
                lines.append(f"{key}: {ds.attrs[key]}")
        return "\n".join(lines)
