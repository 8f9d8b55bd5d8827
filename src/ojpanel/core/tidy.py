"""The tidy result schema: one row per estimate, the same columns in every table ojpanel writes.

Fixed-effects fits, the replication's tables A–E, the research designs and the steering designs
all report through :func:`tidy_frame`, so their rows can be stacked and compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

__all__ = ["TIDY_COLUMNS", "tidy_frame"]

#: Column order of tidy result tables.
TIDY_COLUMNS = [
    "analysis",
    "area",
    "indicator",
    "indicator_group",
    "peer_group",
    "lag",
    "outcome",
    "sample",
    "period",
    "term",
    "estimate",
    "std_error",
    "statistic",
    "p_value",
    "n_obs",
    "n_municipalities",
    "stars",
    "mode",
]


def tidy_frame(rows: Sequence[Mapping[str, Any]], **meta: Any) -> pd.DataFrame:
    """Build a tidy table with :data:`TIDY_COLUMNS` (missing fields are NA; extra keys kept last)."""
    df = pd.DataFrame(list(rows))
    for k, v in meta.items():
        df[k] = v
    for c in TIDY_COLUMNS:
        if c not in df.columns:
            df[c] = pd.NA
    extra = [c for c in df.columns if c not in TIDY_COLUMNS]
    return df[TIDY_COLUMNS + extra]
