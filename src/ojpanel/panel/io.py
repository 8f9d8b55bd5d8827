"""Saving and loading panels: netCDF (h5netcdf) and zarr, lossless and atomic."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from ojpanel.errors import DataError, ParameterError
from ojpanel.panel.validate import validate

__all__ = ["save_panel", "load_panel", "panel_format"]


def panel_format(path: Path | str) -> str:
    """``"netcdf"`` for ``.nc``/``.nc4``, ``"zarr"`` for ``.zarr``; anything else is an error."""
    suffix = Path(path).suffix.lower()
    if suffix in {".nc", ".nc4", ".netcdf"}:
        return "netcdf"
    if suffix == ".zarr":
        return "zarr"
    raise ParameterError(f"cannot tell the panel format of {path}: use a .nc (netCDF) or .zarr path")


def _encodable(ds: xr.Dataset) -> xr.Dataset:
    # netCDF stores text variables as variable-length strings; make every text coord plain str objects.
    out = ds.copy()
    for name, var in out.variables.items():
        if var.dtype.kind in "OUT":
            out[name] = var.copy(data=np.asarray(var.values).astype(str).astype(object))
    return out


def _text_as_object(ds: xr.Dataset) -> xr.Dataset:
    # Some backends return numpy's StringDType; the contract's text coordinates are str objects.
    fix = {n: v for n, v in ds.variables.items() if v.dtype.kind in "TU" and n not in ds.data_vars}
    if not fix:
        return ds
    return ds.assign_coords({n: (v.dims, np.asarray(v.values).astype(object), v.attrs) for n, v in fix.items()})


def save_panel(ds: xr.Dataset, path: Path | str, *, overwrite: bool = True) -> Path:
    """Write a panel to netCDF or zarr (chosen by suffix), atomically.

    The file appears only when writing succeeded, so an interrupted save never leaves a truncated
    panel behind.
    """
    path = Path(path)
    fmt = panel_format(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True or choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        data = _encodable(ds)
        if fmt == "netcdf":
            data.to_netcdf(tmp, engine="h5netcdf")
        else:
            # Format 2 keeps text as variable-length strings and consolidated metadata standard.
            data.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)
    return path


def load_panel(path: Path | str, *, chunks: dict | None = None, check: bool = True) -> xr.Dataset:
    """Read a panel saved by :func:`save_panel` (or any file following the contract).

    Parameters
    ----------
    path
        ``.nc`` or ``.zarr`` path.
    chunks
        Dask chunks (e.g. ``{"indicator": 50}``) for lazy loading; ``None`` loads into memory.
    check
        Validate against the panel contract.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"panel file {path} does not exist; build one with `ojpanel build --out {path}`")
    fmt = panel_format(path)
    try:
        if fmt == "netcdf":
            ds = xr.open_dataset(path, engine="h5netcdf", chunks=chunks)
        else:
            ds = xr.open_zarr(path, chunks=chunks, consolidated=True)
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read {path} as a panel ({exc})") from exc
    ds = _text_as_object(ds)
    if chunks is None:
        ds = ds.load()
        if fmt == "netcdf":
            ds.close()
    if check:
        validate(ds)
    return ds
