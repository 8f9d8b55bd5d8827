"""Documented exceptions for single impossible raw values (``data/indicators/value_exceptions.toml``)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from ojpanel.config import data_dir
from ojpanel.errors import DataError

__all__ = ["load_value_exceptions", "apply_value_exceptions"]

_KEYS = ("kpi", "municipality", "year", "gender", "value", "action", "why")


def load_value_exceptions(path: Path | str | None = None) -> pd.DataFrame:
    """The exception table; every entry must name its cell, its exact value, an action and why."""
    p = Path(path) if path else data_dir() / "indicators" / "value_exceptions.toml"
    with open(p, "rb") as fh:
        entries = tomllib.load(fh).get("exception", [])
    for i, e in enumerate(entries, 1):
        missing = [k for k in _KEYS if k not in e]
        if missing:
            raise DataError(f"{p}: exception {i} lacks {missing}")
        if e["action"] != "set_missing":
            raise DataError(f"{p}: exception {i} has action {e['action']!r}; only 'set_missing' exists")
    frame = pd.DataFrame(entries, columns=list(_KEYS))
    return frame.astype({"kpi": str, "municipality": str, "gender": str, "year": "int64", "value": float})


def apply_value_exceptions(df: pd.DataFrame, table: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """Set the listed cells to NaN where key *and* value match; return the frame and what was applied."""
    table = load_value_exceptions() if table is None else table
    if table.empty:
        return df, []
    key = ["kpi", "municipality", "year", "gender"]
    hit = df.reset_index().merge(table, on=key, suffixes=("", "_exc"))
    hit = hit[np.isclose(hit["value"], hit["value_exc"], rtol=0, atol=1e-9)]
    if hit.empty:
        return df, []
    out = df.copy()
    out.loc[hit["index"].to_numpy(), "value"] = np.nan
    applied = hit[[*key, "value", "why"]].to_dict("records")
    for a in applied:
        a["year"] = int(a["year"])
    return out, applied
