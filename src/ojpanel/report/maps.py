"""Choropleth maps of Sweden's 290 municipalities, with county borders, a legend and a source note.

Boundaries are the embedded ones (:mod:`ojpanel.data.geo`, derived from SCB's *Digitala gränser*,
CC0, processed); drawing needs only matplotlib. Municipality outlines are thin, county borders
(and the coast) thick; municipalities without a value are hatched grey and named in the legend.

* :func:`choropleth` — any municipality-indexed numbers (an indicator in one year, peer residuals,
  a design's per-municipality output) on a continuous colour scale with a colour bar;
* :func:`category_map` — categories with their own colours (e.g. OJ's red/yellow/green flags).

Raw Kolada values are cited "Källa: Kolada"; maps of processed results use
:data:`ojpanel.config.PROCESSED_SOURCE_NOTE` (``source=`` chooses).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.core.style import new_figure, source_note, styled, wrap
from ojpanel.data.geo import load_boundaries
from ojpanel.errors import ParameterError

__all__ = ["BOUNDARY_NOTE", "map_values", "choropleth", "category_map", "county_border_segments"]

#: Attribution of the boundaries (SCB asks that processed data are not cited as SCB's).
BOUNDARY_NOTE = "Gränser: bearbetning av SCB:s Digitala gränser (CC0)"
_LON0 = 15.0


def _xy(ring: np.ndarray) -> np.ndarray:
    # sinusoidal projection around 15° E: equal-area, Sweden looks as on official maps
    lat = ring[:, 1]
    return np.column_stack([(ring[:, 0] - _LON0) * np.cos(np.radians(lat)), lat])


@functools.lru_cache(maxsize=1)
def _paths():
    from matplotlib.path import Path

    b = load_boundaries()
    out = []
    for polys in b.polygons:
        verts, codes = [], []
        for p in polys:
            for ring in p:
                xy = _xy(ring)
                verts.append(xy)
                codes.append(np.r_[Path.MOVETO, np.full(len(xy) - 2, Path.LINETO), Path.CLOSEPOLY])
        out.append(Path(np.concatenate(verts), np.concatenate(codes).astype(np.uint8)))
    return b.codes, tuple(out)


@functools.lru_cache(maxsize=1)
def county_border_segments() -> np.ndarray:
    """Segments ``(m, 2, 2)`` (projected) of county borders and the coast.

    A boundary segment shared by two municipalities of the same county is internal and left out;
    every other segment (between counties, or with no municipality on the other side) is kept.
    """
    b = load_boundaries()
    seen: dict[tuple, set] = {}
    for county, polys in zip(b.county, b.polygons, strict=True):
        for p in polys:
            for ring in p:
                for a, c in zip(map(tuple, ring[:-1]), map(tuple, ring[1:]), strict=True):
                    key = (a, c) if a <= c else (c, a)
                    seen.setdefault(key, []).append(county)
    segs = [k for k, cs in seen.items() if len(cs) == 1 or len(set(cs)) > 1]
    arr = np.asarray(segs, dtype=float)
    return np.stack([_xy(arr[:, 0]), _xy(arr[:, 1])], axis=1)


def map_values(values: Any, *, indicator: str | None = None, year: int | None = None) -> pd.Series:
    """Municipality-indexed numbers from a Series, a mapping or a DataArray (select with
    ``indicator`` / ``year`` when the DataArray has those dims)."""
    if isinstance(values, xr.Dataset):
        values = values["value"]
    if isinstance(values, xr.DataArray):
        da = values
        if "indicator" in da.dims:
            if indicator is None:
                raise ParameterError("the values have several indicators; choose one with indicator=...")
            da = da.sel(indicator=indicator)
        if "year" in da.dims:
            if year is None:
                raise ParameterError("the values have several years; choose one with year=...")
            da = da.sel(year=int(year))
        if "gender" in da.dims:
            da = da.sel(gender="T")
        if da.dims != ("municipality",):
            raise ParameterError(f"a map needs one value per municipality; got dims {da.dims}")
        return pd.Series(np.asarray(da.values, float), index=da["municipality"].values.astype(str))
    if isinstance(values, Mapping):
        values = pd.Series(values)
    if not isinstance(values, pd.Series):
        raise ParameterError("map values must be a Series, a mapping or a DataArray indexed by municipality")
    s = values.copy()
    s.index = s.index.astype(str)
    return s


def _base(ax, figsize):
    if ax is None:
        fig, ax = new_figure(size=figsize)
    else:
        fig = ax.figure
    return fig, ax


def _check(s: pd.Series, codes: tuple[str, ...]) -> None:
    unknown = sorted(set(s.index) - set(codes))
    if unknown:
        raise ParameterError(f"no boundary for municipality codes {unknown[:5]}; use 4-digit codes")
    if s.index.duplicated().any():
        raise ParameterError("each municipality may appear once in the map values")


def _finish(fig, ax, title: str | None, source: str, n_missing: int):
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Patch

    ax.add_collection(LineCollection(county_border_segments(), colors="0.1", linewidths=0.7))
    ax.set_xlim(-4.1, 5.0)
    ax.set_ylim(55.1, 69.3)
    ax.set_aspect(1.0)
    ax.set_axis_off()
    if title:
        ax.set_title(wrap(title, 48), loc="left")
    handles = [Patch(facecolor="0.85", hatch="////", edgecolor="0.5", label=f"inget värde ({n_missing})")] \
        if n_missing else []
    handles.append(Patch(facecolor="none", edgecolor="0.1", label="länsgräns"))
    ax.legend(handles=handles, loc="lower right")
    source_note(fig, wrap(f"{source}. {BOUNDARY_NOTE}.", 80))
    return fig


@styled
def choropleth(
    values: Any,
    *,
    indicator: str | None = None,
    year: int | None = None,
    title: str | None = None,
    label: str = "",
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    centre: float | None = None,
    source: str = PROCESSED_SOURCE_NOTE,
    ax: Any | None = None,
    figsize: tuple[float, float] = (5.2, 7.0),
):
    """A choropleth of one number per municipality.

    Parameters
    ----------
    values
        Series/mapping indexed by municipality code, or a DataArray (``indicator``/``year``
        select a slice).
    title, label
        Title (use names, not ids) and the colour bar's label (with units).
    cmap, vmin, vmax, centre
        Colour scale; ``centre`` makes a diverging scale symmetric around it (e.g. 0 for
        residuals, with ``cmap="RdBu"``).
    source
        Source note: :data:`ojpanel.config.KOLADA_CITATION` for raw values, the processed note
        (default) otherwise.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib import colormaps
    from matplotlib.collections import PathCollection
    from matplotlib.colors import Normalize

    s = map_values(values, indicator=indicator, year=year)
    codes, paths = _paths()
    _check(s, codes)
    v = s.reindex(list(codes)).to_numpy(float)
    ok = np.isfinite(v)
    if not ok.any():
        raise ParameterError("no municipality has a value to map")
    lo = float(np.nanmin(v)) if vmin is None else vmin
    hi = float(np.nanmax(v)) if vmax is None else vmax
    if centre is not None:
        half = max(abs(hi - centre), abs(centre - lo))
        lo, hi = centre - half, centre + half
    norm = Normalize(lo, hi)
    cm = colormaps[cmap]
    fig, ax = _base(ax, figsize)
    faces = [cm(norm(x)) if np.isfinite(x) else (0.85, 0.85, 0.85, 1) for x in v]
    coll = PathCollection(list(paths), facecolors=faces, edgecolors="white", linewidths=0.15)
    ax.add_collection(coll)
    miss = [p for p, good in zip(paths, ok, strict=True) if not good]
    if miss:
        ax.add_collection(PathCollection(miss, facecolors="none", edgecolors="0.5", hatch="////",
                                         linewidths=0.0))
    import matplotlib.cm as mcm

    sm = mcm.ScalarMappable(norm=norm, cmap=cm)
    cb = fig.colorbar(sm, ax=ax, shrink=0.45, pad=0.02)
    cb.set_label(wrap(label, 40))
    return _finish(fig, ax, title, source, int((~ok).sum()))


@styled
def category_map(
    values: Any,
    categories: Mapping[Any, tuple[str, str]],
    *,
    title: str | None = None,
    source: str = PROCESSED_SOURCE_NOTE,
    ax: Any | None = None,
    figsize: tuple[float, float] = (5.2, 7.0),
):
    """A map of categories: ``categories`` maps each value to ``(label, colour)``.

    Values not in ``categories`` are an error; missing values are hatched grey.
    """
    from matplotlib.collections import PathCollection
    from matplotlib.patches import Patch

    s = map_values(values)
    codes, paths = _paths()
    _check(s, codes)
    v = s.reindex(list(codes))
    present = v.dropna()
    unknown = sorted(set(present) - set(categories), key=str)
    if unknown:
        raise ParameterError(f"values {unknown[:5]} have no category; categories are {list(categories)}")
    faces = [categories[x][1] if pd.notna(x) else (0.85, 0.85, 0.85, 1) for x in v]
    fig, ax = _base(ax, figsize)
    ax.add_collection(PathCollection(list(paths), facecolors=faces, edgecolors="white", linewidths=0.15))
    miss = [p for p, x in zip(paths, v, strict=True) if pd.isna(x)]
    if miss:
        ax.add_collection(PathCollection(miss, facecolors="none", edgecolors="0.5", hatch="////",
                                         linewidths=0.0))
    fig = _finish(fig, ax, title, source, len(miss))
    leg = ax.get_legend()
    handles = [Patch(facecolor=c, label=f"{lab} ({int((present == k).sum())})")
               for k, (lab, c) in categories.items()]
    ax.legend(handles=handles + list(leg.legend_handles), loc="lower right")
    return fig
