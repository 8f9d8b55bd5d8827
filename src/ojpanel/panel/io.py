"""Saving and loading panels: netCDF (h5netcdf) and zarr, lossless, atomic and verified.

:func:`save_panel` stores the content hash of what it writes (``attrs["content_hash"]``,
:func:`ojpanel.provenance.hash_dataset`: values and coordinates, attrs excluded).
:func:`load_panel` recomputes it and checks the panel contract, and refuses a file whose content
no longer matches (edited cells, a deleted array) or that breaks the contract, naming every
problem; ``verify=False`` skips both checks. :func:`verify_panel` reports without raising.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from ojpanel.errors import DataError, PanelIntegrityError, ParameterError
from ojpanel.panel.validate import violations
from ojpanel.provenance import hash_dataset

__all__ = ["save_panel", "load_panel", "panel_format", "verify_panel",
           "HASH_ATTR"]

#: Dataset attribute holding the content hash.
HASH_ATTR = "content_hash"


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
    panel behind. The content hash of what is written is stored in ``attrs["content_hash"]``
    (replacing one that no longer matches, e.g. after a selection), so that :func:`load_panel`
    can prove the file unchanged.
    """
    path = Path(path)
    fmt = panel_format(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True or choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)) / path.name
    try:
        data = _encodable(ds)
        data.attrs[HASH_ATTR] = hash_dataset(data)
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


def _missing_arrays(path: Path, ds: xr.Dataset) -> list[str]:
    """Arrays a zarr store's consolidated metadata lists but whose own metadata is gone."""
    missing = []
    for name in ds.variables:
        folder = path / str(name)
        if not ((folder / ".zarray").is_file() or (folder / "zarr.json").is_file()):
            missing.append(str(name))
    return missing


# What the netCDF/zarr stacks raise on a damaged file (truncated, corrupt chunks, bad metadata).
_READ_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, IndexError, AttributeError,
                EOFError)


def _open(path: Path, chunks: dict | None) -> tuple[xr.Dataset, str]:
    if not path.exists():
        raise FileNotFoundError(f"panel file {path} does not exist; build one with `ojpanel build --out {path}`")
    fmt = panel_format(path)
    try:
        if fmt == "netcdf":
            ds = xr.open_dataset(path, engine="h5netcdf", chunks=chunks)
        else:
            ds = xr.open_zarr(path, chunks=chunks, consolidated=True)
        ds = _text_as_object(ds)
        if chunks is None:
            ds = ds.load()
            if fmt == "netcdf":
                ds.close()
    except _READ_ERRORS as exc:
        raise DataError(f"cannot read {path} as a panel ({type(exc).__name__}: {exc}); the file "
                        "is damaged or not a panel") from exc
    return ds, fmt


def _problems(path: Path, ds: xr.Dataset, fmt: str) -> list[str]:
    problems: list[str] = []
    if fmt == "zarr":
        gone = _missing_arrays(path, ds)
        if gone:
            problems.append(
                f"array(s) {gone} are listed in the store's metadata but missing from {path} "
                "(deleted?); their values would read as empty"
            )
    stored = ds.attrs.get(HASH_ATTR)
    if not stored:
        problems.append(
            f"no stored content hash (attribute '{HASH_ATTR}'): the file was not written by "
            "ojpanel.save_panel, so its integrity cannot be checked"
        )
    else:
        try:
            actual = hash_dataset(ds)  # reads every value (lazy arrays included)
        except _READ_ERRORS as exc:
            raise DataError(f"cannot read the arrays of {path} ({type(exc).__name__}: {exc}); "
                            "the file is damaged") from exc
        if actual != stored:
            problems.append(
                f"content hash mismatch: stored {stored}, computed {actual}; values or "
                "coordinates changed after the panel was saved"
            )
    problems.extend(f"panel contract: {v}" for v in violations(ds))
    return problems


def verify_panel(path: Path | str) -> list[str]:
    """Every integrity problem of a stored panel (empty list: verified).

    Checks that the recomputed content hash equals the stored one, that no array of a zarr store
    is missing, and the panel contract (:func:`ojpanel.panel.validate.violations`).

    Raises
    ------
    FileNotFoundError, DataError
        If the file does not exist or cannot be read as a panel at all.
    """
    path = Path(path)
    ds, fmt = _open(path, None)
    return _problems(path, ds, fmt)


def load_panel(path: Path | str, *, chunks: dict | None = None, verify: bool = True) -> xr.Dataset:
    """Read a panel saved by :func:`save_panel`, verified.

    Parameters
    ----------
    path
        ``.nc`` or ``.zarr`` path.
    chunks
        Dask chunks (e.g. ``{"indicator": 50}``) for lazy loading; ``None`` loads into memory.
        Verification reads every value once either way.
    verify
        Check the stored content hash, the arrays and the panel contract (default). False skips
        every check: use it only for a file you know was changed on purpose.

    Raises
    ------
    PanelIntegrityError
        If verification fails; the message lists every problem.
    """
    path = Path(path)
    ds, fmt = _open(path, chunks)
    if verify:
        problems = _problems(path, ds, fmt)
        if problems:
            raise PanelIntegrityError(path, problems)
    return ds
