"""Reader and validator for the OJ-users file (SKR's 2019 member survey, supplied by the user).

The per-municipality answers are not public, so the replication takes them as a CSV with columns
``municipality, area, status``: ``status`` is ``user`` (uses OJ results for quality development),
``non_user`` (does not use OJ at all) or ``other`` (any other answer). One row per municipality and
area. Every problem found is reported at once, with the offending rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ojpanel.config import data_dir
from ojpanel.errors import DataError

__all__ = ["AUDIT_AREAS", "STATUSES", "normalise_area", "read_oj_users", "users_for_area"]

#: The audit's three areas, as the panel's ``area`` coordinate names them.
AUDIT_AREAS = ("äldreomsorg", "ekonomiskt bistånd", "barn och unga")
#: Allowed values of ``status``.
STATUSES = ("user", "non_user", "other")

_AREA_ALIASES = {
    "äldreomsorg": "äldreomsorg",
    "aldreomsorg": "äldreomsorg",
    "elderly care": "äldreomsorg",
    "ekonomiskt bistånd": "ekonomiskt bistånd",
    "ekonomiskt bistand": "ekonomiskt bistånd",
    "financial assistance": "ekonomiskt bistånd",
    "barn och unga": "barn och unga",
    "social barn- och ungdomsvård": "barn och unga",
    "social barn- och ungdomsvard": "barn och unga",
    "barn- och ungdomsvård": "barn och unga",
    "child and youth welfare": "barn och unga",
}


def normalise_area(name: str) -> str | None:
    """Map an area name (the audit's, the panel's, or English) to the panel's name; None if unknown."""
    key = re.sub(r"\s+", " ", str(name).strip().lower())
    return _AREA_ALIASES.get(key)


def _reference_codes() -> set[str]:
    """Municipality codes known to the package (reference table, or the embedded CSV)."""
    try:
        from ojpanel.data.reference import load_municipalities

        return set(load_municipalities()["municipality"].astype(str))
    except (ImportError, AttributeError):
        ref = pd.read_csv(data_dir() / "municipalities.csv", dtype=str)
        return set(ref["kommunkod"].astype(str))


def _show(rows: pd.DataFrame, limit: int = 8) -> str:
    lines = [f"line {i + 2}: {', '.join(str(v) for v in r)}" for i, r in zip(rows.index, rows.itertuples(index=False), strict=True)]
    more = f" (and {len(lines) - limit} more)" if len(lines) > limit else ""
    return "; ".join(lines[:limit]) + more


def read_oj_users(
    source: str | Path | pd.DataFrame,
    *,
    municipalities: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Read and validate an OJ-users file.

    Parameters
    ----------
    source
        Path to a CSV file, or a DataFrame, with columns ``municipality, area, status``.
    municipalities
        Allowed municipality codes (default: the package's reference list of 290 municipalities).

    Returns
    -------
    pandas.DataFrame
        Columns ``municipality`` (4-digit str), ``area`` (panel area name), ``status``, sorted by
        area and municipality. Codes written without the leading zero (``114``) are padded to four
        digits, as spreadsheets often drop it.

    Raises
    ------
    DataError
        On missing columns, empty file, unknown municipality codes, unknown areas, bad statuses or
        duplicate (municipality, area) rows; the message lists every offending line.
    """
    if isinstance(source, pd.DataFrame):
        raw = source.copy()
        where = "the OJ-users table"
    else:
        from ojpanel.data.csvfile import read_text_csv

        path = Path(source)
        if not path.is_file():
            raise DataError(f"OJ-users file {path} does not exist; pass a CSV with columns municipality, area, status")
        raw = read_text_csv(path, "OJ-users file")
        where = f"OJ-users file {path}"
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    need = ["municipality", "area", "status"]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise DataError(
            f"{where} lacks column(s) {missing}; it needs exactly municipality, area, status "
            f"(found: {list(raw.columns)})"
        )
    if raw.empty:
        raise DataError(f"{where} has no rows; give one row per municipality and area")
    df = raw[need].astype(str).apply(lambda s: s.str.strip())
    df["municipality"] = df["municipality"].where(
        ~df["municipality"].str.fullmatch(r"\d{1,3}"), df["municipality"].str.zfill(4)
    )
    df["status"] = df["status"].str.lower().str.replace("-", "_").str.replace(" ", "_")
    problems: list[str] = []
    known = set(map(str, municipalities)) if municipalities is not None else _reference_codes()
    bad_m = df[~df["municipality"].isin(known)]
    if len(bad_m):
        problems.append(
            f"unknown municipality code(s) {sorted(set(bad_m['municipality']))} ({_show(bad_m)}); "
            "use the 4-digit SCB code, e.g. 0114"
        )
    area_norm = df["area"].map(normalise_area)
    bad_a = df[area_norm.isna()]
    if len(bad_a):
        problems.append(
            f"unknown area(s) {sorted(set(bad_a['area']))} ({_show(bad_a)}); allowed: {list(AUDIT_AREAS)}"
        )
    bad_s = df[~df["status"].isin(STATUSES)]
    if len(bad_s):
        problems.append(
            f"bad status value(s) {sorted(set(bad_s['status']))} ({_show(bad_s)}); allowed: {list(STATUSES)}"
        )
    df["area"] = area_norm
    dup = df[df.duplicated(["municipality", "area"], keep=False) & area_norm.notna()]
    if len(dup):
        problems.append(
            f"duplicate (municipality, area) rows ({_show(dup)}); keep one status per municipality and area"
        )
    if problems:
        raise DataError(f"{where} is invalid:\n" + "\n".join(f"  - {p}" for p in problems))
    out = df.sort_values(["area", "municipality"], kind="mergesort").reset_index(drop=True)
    out.attrs["description"] = "OJ users per municipality and area (user-supplied; SKR member survey 2019)"
    return out


def users_for_area(users: pd.DataFrame, area: str) -> pd.Series:
    """Status per municipality for one area (index = municipality code)."""
    sub = users[users["area"] == area]
    return pd.Series(sub["status"].to_numpy(), index=sub["municipality"].to_numpy(), name="status")
