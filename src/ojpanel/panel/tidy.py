"""Reading and checking tidy value frames before they become a panel.

A tidy frame has one row per ``(kpi, municipality, year, gender)`` with a ``value`` and optionally
``count`` and ``status``. Every problem found is collected and raised together, so a user fixes a
file in one pass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ojpanel.data.reference import municipality_codes
from ojpanel.errors import DataError, PanelValidationError

__all__ = ["REQUIRED_COLUMNS", "YEAR_RANGE", "read_tidy", "check_tidy"]

REQUIRED_COLUMNS = ("kpi", "municipality", "year", "gender", "value")
#: Years a tidy table may hold (Kolada's series start in the 1990s).
YEAR_RANGE = (1900, 2100)
_MAX_LISTED = 20


def _listed(items: list, what: str) -> str:
    more = f" … and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return f"{what}: {items[:_MAX_LISTED]}{more}"


def _listed_rows(rows: list[str], total: int, what: str) -> str:
    more = f"; … and {total - len(rows)} more" if total > len(rows) else ""
    return f"{total} row(s) with {what}: " + "; ".join(rows) + more


def read_tidy(path: Path | str) -> pd.DataFrame:
    """Read a tidy CSV (plain or gzipped) or parquet file with string codes kept as text.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataError
        If it cannot be parsed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tidy values file {path} does not exist")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(
            path,
            dtype={"kpi": str, "municipality": str, "gender": str, "status": str, "value": str},
            keep_default_na=False,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} as a tidy values table ({exc}); expected CSV with columns "
                        f"{', '.join(REQUIRED_COLUMNS)}") from exc


def _as_text_codes(s: pd.Series) -> pd.Series:
    if pd.api.types.is_integer_dtype(s):
        # Integer codes lost their leading zeros in a spreadsheet; padding to 4 digits is exact.
        return s.astype("int64").astype(str).str.zfill(4)
    return s.astype(str).str.strip()


def check_tidy(frame: pd.DataFrame, *, where: str = "input") -> tuple[pd.DataFrame, dict]:
    """Check and normalise a tidy frame; drop national/region rows on purpose, with a report.

    Parameters
    ----------
    frame
        Columns ``kpi, municipality, year, gender, value`` and optionally ``count``, ``status``.
    where
        Name of the input used in messages (file name or "frame").

    Returns
    -------
    (pandas.DataFrame, dict)
        The normalised frame (codes as text, ``year`` int, ``value`` float, empty values NaN) and
        a report: rows read, region rows dropped, rows kept.

    Raises
    ------
    PanelValidationError
        Listing every problem: missing columns, unknown municipality codes, non-numeric values or
        years (with their rows), duplicate ``(kpi, municipality, year, gender)`` keys, unknown
        gender codes.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise PanelValidationError(
            [f"{where}: missing required column(s) {missing}; a tidy table needs "
             f"{', '.join(REQUIRED_COLUMNS)} (optional: count, status)"]
        )
    df = frame.copy()
    problems: list[str] = []
    for col in ("kpi", "municipality", "gender"):
        df[col] = _as_text_codes(df[col])
    # Row numbers as a user sees them in a CSV file (header is line 1).
    line = pd.Series(np.arange(len(df)) + 2, index=df.index)

    year = pd.to_numeric(df["year"], errors="coerce")
    bad_year = year.isna() | (year != np.floor(year))
    if bad_year.any():
        rows = [f"line {line[i]}: year={df.at[i, 'year']!r}" for i in df.index[bad_year][:_MAX_LISTED]]
        problems.append(_listed_rows(rows, int(bad_year.sum()), "a non-integer year"))
    # a year such as 99999 or -1 is a typo, and would make a year axis of millions of entries
    odd_year = ~bad_year & ~year.between(*YEAR_RANGE)
    if odd_year.any():
        rows = [f"line {line[i]}: year={df.at[i, 'year']!r}" for i in df.index[odd_year][:_MAX_LISTED]]
        problems.append(_listed_rows(rows, int(odd_year.sum()),
                                     f"a year outside {YEAR_RANGE[0]}–{YEAR_RANGE[1]}"))
    raw_value = df["value"]
    if pd.api.types.is_numeric_dtype(raw_value):
        value = raw_value.astype(float)
        bad_value = pd.Series(False, index=df.index)
    else:
        text_value = raw_value.astype(str).str.strip()
        blank = raw_value.isna() | text_value.isin(["", "nan", "NaN", "None"])
        value = pd.to_numeric(text_value.where(~blank), errors="coerce")
        bad_value = value.isna() & ~blank
    if bad_value.any():
        rows = [f"line {line[i]}: kpi={df.at[i, 'kpi']} municipality={df.at[i, 'municipality']} "
                f"year={df.at[i, 'year']} value={raw_value[i]!r}" for i in df.index[bad_value][:_MAX_LISTED]]
        problems.append(_listed_rows(rows, int(bad_value.sum()), "a non-numeric value"))
    if "count" in df.columns:
        cnt = pd.to_numeric(df["count"].replace({"": np.nan}), errors="coerce")
        bad_cnt = cnt.isna() & ~df["count"].astype(str).str.strip().isin(["", "nan", "NaN", "None"])
        if bad_cnt.any():
            rows = [f"line {line[i]}: count={df.at[i, 'count']!r}" for i in df.index[bad_cnt][:_MAX_LISTED]]
            problems.append(_listed_rows(rows, int(bad_cnt.sum()), "a non-numeric count"))
        df["count"] = cnt.astype(float)

    no_kpi = df["kpi"].isin(["", "nan", "None"])
    if no_kpi.any():
        rows = [f"line {line[i]}" for i in df.index[no_kpi][:_MAX_LISTED]]
        problems.append(_listed_rows(rows, int(no_kpi.sum()), "an empty kpi"))
    bad_gender = ~df["gender"].isin(["T", "K", "M"])
    if bad_gender.any():
        problems.append(_listed(sorted(df.loc[bad_gender, "gender"].unique().tolist()),
                                "unknown gender codes (use T, K or M)"))

    region = df["municipality"].str.fullmatch(r"00\d\d")  # Riket 0000 and regions 00xx
    known = municipality_codes()
    unknown = sorted(set(df.loc[~region, "municipality"].unique()) - known)
    if unknown:
        problems.append(_listed(unknown, f"{len(unknown)} unknown municipality code(s) "
                                         "(use 4-digit SCB codes; 0000 and 00xx are regions)"))

    key = ["kpi", "municipality", "year", "gender"]
    # compare years as numbers: "2019" and "2019.0" are the same key
    usable = ~bad_year & ~odd_year
    keyed = df[key].assign(year=year.where(usable).astype("Float64").astype("Int64").astype(str))
    dup = keyed.duplicated(key, keep=False) & usable
    if dup.any():
        keys = keyed.loc[dup, key].drop_duplicates().astype(str).agg("/".join, axis=1).tolist()
        problems.append(_listed(keys, f"{len(keys)} duplicate (kpi, municipality, year, gender) key(s)"))
    if problems:
        raise PanelValidationError([f"{where}: {p}" for p in problems])

    df["year"] = year.astype("int64")
    df["value"] = value.astype(float)
    report = {"rows_read": int(len(df)), "region_rows_dropped": int(region.sum())}
    df = df.loc[~region].reset_index(drop=True)
    report["rows_kept"] = int(len(df))
    return df, report
