"""Reading small user-supplied CSV files (groupings, OJ users) as text, with clear errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from ojpanel.errors import DataError

__all__ = ["read_text_csv"]


def read_text_csv(path: Path | str, what: str) -> pd.DataFrame:
    """Every cell of a UTF-8 CSV file as text (empty cells are ``""``).

    Parameters
    ----------
    path
        The file.
    what
        What the file is, for messages (e.g. ``"grouping file"``).

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    DataError
        If the file is empty, not UTF-8 text, or not parseable as CSV.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{what} {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as "
            "'CSV UTF-8'"
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{what} {path} is empty; it needs a header line and one row per entry") from exc
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        raise DataError(f"cannot read {what} {path} as CSV ({exc})") from exc
