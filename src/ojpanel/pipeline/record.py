"""Recording key results inside notebooks, and reading them back from executed notebooks.

A notebook calls :func:`record` for each result the pipeline, the tests and the paper need. The
value travels as a display output with its own MIME type, so it survives in the saved notebook
without printing anything noisy, and :func:`read_records` recovers it exactly (JSON types).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MIME", "record", "read_records", "to_jsonable"]

MIME = "application/vnd.ojpanel.record+json"


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, pandas objects and NaN to plain JSON values."""
    import pandas as pd

    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return to_jsonable(value.to_dict(orient="records"))
    if isinstance(value, pd.Series):
        return to_jsonable(value.to_dict())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot record a {type(value).__name__}; record numbers, strings, lists, dicts or frames")


def record(name: str, value: Any) -> None:
    """Record a named result in the running notebook (shown as a short line)."""
    from IPython.display import display

    payload = {"name": str(name), "value": to_jsonable(value)}
    text = json.dumps(payload["value"], ensure_ascii=False)
    display({MIME: payload, "text/plain": f"recorded {name} = {text[:200]}"}, raw=True)


def read_records(path: Path | str) -> dict[str, Any]:
    """All results recorded in an executed notebook, by name (later records win)."""
    import nbformat  # here, not at the top: importing it takes seconds, and every kernel imports this package

    nb = nbformat.read(str(path), as_version=4)
    out: dict[str, Any] = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if MIME in data:
                payload = data[MIME]
                if isinstance(payload, str):
                    payload = json.loads(payload)
                out[payload["name"]] = payload["value"]
    return out
