"""The embedded real Kolada values (``data/kolada_values.csv.gz``) as a tidy frame."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ojpanel.config import data_dir

__all__ = ["EMBEDDED_SNAPSHOT_DATE", "EMBEDDED_SOURCE", "load_embedded_values", "embedded_values_path"]

#: Date of the Kolada scrape behind the embedded values (see data/PROVENANCE.md).
EMBEDDED_SNAPSHOT_DATE = "2024-08-30"
#: Where the embedded values come from, as recorded in panel provenance.
EMBEDDED_SOURCE = (
    "Kolada API v2 /data/kpi/{id}/year/{y}, scraped by open-numbers/ddf--kolada--dump "
    "(snapshot 2024-08-30); embedded as data/kolada_values.csv.gz"
)


def embedded_values_path() -> Path:
    """Path of the embedded values file."""
    return data_dir() / "kolada_values.csv.gz"


@functools.lru_cache(maxsize=1)
def _read(path: str) -> pd.DataFrame:
    return pd.read_csv(
        path,
        dtype={"kpi": str, "municipality": str, "gender": str, "year": "int64", "value": "float64"},
        keep_default_na=False,
        na_values=[""],
    )


def load_embedded_values(
    kpis: Iterable[str] | None = None,
    years: Iterable[int] | None = None,
    genders: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Real Kolada values shipped with the package, as ``kpi, municipality, year, gender, value``.

    Parameters
    ----------
    kpis, years, genders
        Optional filters (default: everything, 394 KPIs, 1994–2022, genders T/K/M). Rows for the
        nation (``0000``) and regions (``00xx``) are included; the panel builder drops them.

    Returns
    -------
    pandas.DataFrame
        A new frame (the cached file content is never handed out).
    """
    df = _read(str(embedded_values_path()))
    mask = pd.Series(True, index=df.index)
    if kpis is not None:
        mask &= df["kpi"].isin(list(kpis))
    if years is not None:
        mask &= df["year"].isin([int(y) for y in years])
    if genders is not None:
        mask &= df["gender"].isin(list(genders))
    return df.loc[mask].reset_index(drop=True)
