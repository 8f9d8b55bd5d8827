"""Provenance that travels with data and results (Dataset attrs, output metadata)."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import platform
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "package_version",
    "library_versions",
    "utc_now",
    "hash_frame",
    "hash_dataset",
    "provenance_attrs",
]

_LIBS = ("numpy", "pandas", "xarray", "scipy", "linearmodels", "statsmodels", "pymc", "arviz", "nutpie")


def package_version() -> str:
    """Installed version of ojpanel (``0+unknown`` when run from an uninstalled tree)."""
    try:
        return md.version("ojpanel")
    except md.PackageNotFoundError:  # pragma: no cover - source tree without install
        return "0+unknown"


def library_versions(names: Iterable[str] = _LIBS) -> dict[str, str]:
    """Versions of the scientific libraries that shape results (missing ones are omitted)."""
    out = {"python": platform.python_version(), "ojpanel": package_version()}
    for n in names:
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:
            continue
    return out


def utc_now() -> str:
    """Current UTC time in ISO 8601 with seconds."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def hash_frame(df: pd.DataFrame) -> str:
    """Order-independent SHA-256 of a frame's content (columns sorted, rows sorted)."""
    cols = sorted(df.columns)
    d = df[cols].sort_values(cols, kind="mergesort").reset_index(drop=True)
    h = hashlib.sha256()
    h.update(json.dumps(cols).encode())
    h.update(pd.util.hash_pandas_object(d, index=False).to_numpy().tobytes())
    return "sha256:" + h.hexdigest()


def hash_dataset(ds: Any) -> str:
    """SHA-256 of an xarray Dataset's values and coordinates (attrs excluded).

    Identical panels give identical hashes whatever their chunking or on-disk format.
    """
    h = hashlib.sha256()
    for name in sorted(ds.variables):
        var = ds.variables[name]
        h.update(name.encode())
        h.update(json.dumps(list(var.dims)).encode())
        arr = np.asarray(var.values)
        if arr.dtype.kind in "OUST":
            h.update("\x1f".join(map(str, arr.ravel().tolist())).encode())
        else:
            h.update(np.ascontiguousarray(arr).tobytes())
    return "sha256:" + h.hexdigest()


def provenance_attrs(base: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Attrs dict with package/library versions and creation time, merged with ``base``.

    Values are strings or numbers so that netCDF can store them losslessly.
    """
    out: dict[str, Any] = dict(base or {})
    out.setdefault("ojpanel_version", package_version())
    out.setdefault("created", utc_now())
    out["library_versions"] = json.dumps(library_versions(), sort_keys=True)
    for k, v in extra.items():
        out[k] = v if isinstance(v, (str, int, float)) else json.dumps(v, sort_keys=True, default=str, ensure_ascii=False)
    return out
