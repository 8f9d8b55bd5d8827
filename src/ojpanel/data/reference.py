"""Reference tables: municipalities, counties, SKR kommungrupper, and user-supplied groupings.

All 290 municipalities come from the embedded ``data/municipalities.csv`` (see data/PROVENANCE.md).
Column names are translated once, here, to the names the panel contract uses.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pandas as pd

from ojpanel.config import data_dir
from ojpanel.errors import DataError

__all__ = [
    "MUNICIPALITY_COLUMNS",
    "KOMMUNGRUPP_2017_COUNTS",
    "load_municipalities",
    "municipality_codes",
    "is_region_code",
    "load_grouping",
]

# embedded file column -> panel coordinate name
_RENAME = {
    "kommunkod": "municipality",
    "kommun": "municipality_name",
    "lan_kod": "county",
    "lan_namn": "county_name",
    "kg2011_nr": "kommungrupp_2011",
    "kg2011_namn": "kommungrupp_2011_name",
    "kg2017_kod": "kommungrupp_2017",
    "kg2017_namn": "kommungrupp_2017_name",
    "kg2017_huvudgrupp": "kommungrupp_2017_main",
    "kg2023_kod": "kommungrupp_2023",
    "kg2023_namn": "kommungrupp_2023_name",
    "kg2023_huvudgrupp": "kommungrupp_2023_main",
}
#: Municipality-level columns carried into the panel as coordinates, in order.
MUNICIPALITY_COLUMNS = tuple(v for v in _RENAME.values() if v != "municipality")
#: SKR's published number of municipalities per kommungrupp (2017 version), A1..C9.
KOMMUNGRUPP_2017_COUNTS = {
    "A1": 3, "A2": 43, "B3": 21, "B4": 52, "B5": 35, "C6": 29, "C7": 52, "C8": 40, "C9": 15,
}  # fmt: skip

_CODE = re.compile(r"^\d{4}$")


@functools.lru_cache(maxsize=2)
def _read(path: str) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = sorted(set(_RENAME) - set(raw.columns))
    if missing:
        raise DataError(f"{path}: municipality table lacks columns {missing}")
    df = raw[list(_RENAME)].rename(columns=_RENAME)
    bad = df.loc[~df["municipality"].str.match(_CODE), "municipality"].tolist()
    if bad:
        raise DataError(f"{path}: municipality codes must have 4 digits; bad: {bad}")
    if df["municipality"].duplicated().any():
        raise DataError(f"{path}: duplicate municipality codes {df.loc[df['municipality'].duplicated(), 'municipality'].tolist()}")
    return df.sort_values("municipality").reset_index(drop=True)


def load_municipalities(path: Path | str | None = None) -> pd.DataFrame:
    """All Swedish municipalities with county and SKR kommungrupp (2011, 2017, 2023).

    Parameters
    ----------
    path
        Optional CSV with the same columns as ``data/municipalities.csv``.

    Returns
    -------
    pandas.DataFrame
        One row per municipality, sorted by code: ``municipality`` (4-digit code),
        ``municipality_name``, ``county`` (2-digit code), ``county_name``, ``kommungrupp_2011``
        (1–10), ``kommungrupp_2017``/``kommungrupp_2023`` (A1–C9) with ``*_name`` and ``*_main``.
    """
    p = Path(path) if path else data_dir() / "municipalities.csv"
    return _read(str(p)).copy()


def municipality_codes() -> frozenset[str]:
    """The set of valid 4-digit municipality codes."""
    return frozenset(load_municipalities()["municipality"])


def is_region_code(code: str) -> bool:
    """True for Kolada's national (``0000``) and region (``00xx``) codes, which are not municipalities."""
    return bool(_CODE.match(str(code))) and str(code).startswith("00")


def load_grouping(source: pd.DataFrame | pd.Series | dict | Path | str, name: str) -> pd.Series:
    """Read a user-supplied municipality grouping (e.g. a socioeconomic group or OJ use).

    Parameters
    ----------
    source
        A mapping or Series ``municipality -> group``, or a DataFrame/CSV file with columns
        ``municipality`` and ``group``.
    name
        Name of the grouping; becomes a municipality coordinate of the panel. Must be an
        identifier and must not shadow a built-in coordinate.

    Returns
    -------
    pandas.Series
        Group labels (str) indexed by municipality code, named ``name``. Municipalities absent
        from the input have no group (they are not peers of anyone under this grouping).

    Raises
    ------
    DataError
        On missing columns, unknown municipality codes, duplicate municipalities or empty labels;
        the message lists every offending entry.
    """
    from ojpanel.errors import ParameterError

    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name) or name in {"municipality", *MUNICIPALITY_COLUMNS}:
        raise ParameterError(
            f"grouping name {name!r} must be an identifier that is not a built-in coordinate "
            f"({', '.join(MUNICIPALITY_COLUMNS)})"
        )
    where = "grouping"
    if isinstance(source, (str, Path)):
        from ojpanel.data.csvfile import read_text_csv

        where = str(source)
        frame = read_text_csv(source, "grouping file")
    elif isinstance(source, pd.DataFrame):
        frame = source.astype(str)
    else:
        s = pd.Series(source)
        frame = pd.DataFrame({"municipality": s.index.astype(str), "group": s.astype(str).to_numpy()})
    missing = {"municipality", "group"} - set(frame.columns)
    if missing:
        raise DataError(
            f"{where}: a grouping needs columns 'municipality' and 'group'; missing {sorted(missing)}"
        )
    codes = frame["municipality"].str.strip()
    problems = []
    known = municipality_codes()
    unknown = sorted(set(codes) - known)
    if unknown:
        problems.append(f"unknown municipality codes {unknown[:20]} (use 4-digit SCB codes such as 0114)")
    dups = sorted(codes[codes.duplicated()].unique())
    if dups:
        problems.append(f"municipalities listed more than once: {dups[:20]}")
    empty = sorted(codes[frame["group"].str.strip() == ""])
    if empty:
        problems.append(f"empty group labels for {empty[:20]}")
    if problems:
        raise DataError(f"{where}: " + "; ".join(problems))
    return pd.Series(frame["group"].str.strip().to_numpy(), index=codes.to_numpy(), name=name)
