"""The OJ KPI catalogue with analysis metadata: area, kind, scale and direction.

Metadata come from ordered, declarative rules (``data/indicators/metadata_rules.toml``) applied to
each KPI's Kolada title, then from an explicit override table
(``data/indicators/metadata_overrides.toml``). Each KPI records which rule or override set each
field (columns ``<field>_rule``), so nothing is guessed silently. Unknown direction stays 0.
"""

from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path

import pandas as pd

from ojpanel.config import data_dir
from ojpanel.core.scales import SCALES
from ojpanel.errors import DataError

__all__ = [
    "AREAS",
    "KINDS",
    "SCALES",
    "SOURCE_TYPES",
    "load_catalogue",
    "derive_metadata",
    "load_rules",
    "load_overrides",
    "clean_title",
]

AREAS = (
    "äldreomsorg",
    "ekonomiskt bistånd",
    "barn och unga",
    "LSS",
    "missbruk",
    "socialpsykiatri",
    "hemlöshet",
    "individ- och familjeomsorg",
    "övergripande",
)
KINDS = ("structure", "process", "result", "background")
SOURCE_TYPES = ("kommunenkät", "enhetsundersökning", "brukarundersökning", "register", "other")
_FIELDS = ("area", "kind", "scale", "direction", "source_type")
_ALLOWED = {
    "area": set(AREAS),
    "kind": set(KINDS),
    "scale": set(SCALES),
    "direction": {-1, 0, 1},
    "source_type": set(SOURCE_TYPES),
}

_YEAR_SUFFIX = re.compile(r"\s*\(-\s*\d{4}\)\.?\s*$")


def clean_title(title: str) -> str:
    """Title without Kolada's trailing last-year suffix such as ``(-2023)`` or ``(- 2024)``."""
    return _YEAR_SUFFIX.sub("", str(title)).strip()


def load_rules(path: Path | None = None) -> dict[str, list[dict]]:
    """Read and check the metadata rules file.

    Raises
    ------
    DataError
        If a rule lacks a pattern, names an unknown field, sets a value outside the allowed set, or
        has an invalid regular expression.
    """
    path = Path(path) if path else data_dir() / "indicators" / "metadata_rules.toml"
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    rules: dict[str, list[dict]] = {}
    for field in _FIELDS:
        entries = raw.get(field)
        if not entries:
            raise DataError(f"{path}: no [[{field}]] rules; every field needs at least a catch-all rule")
        checked = []
        for i, r in enumerate(entries):
            value = r.get("value", r.get("name"))
            if value not in _ALLOWED[field]:
                raise DataError(
                    f"{path}: [[{field}]] rule {i + 1} sets {value!r}; allowed: {sorted(_ALLOWED[field], key=str)}"
                )
            if r.get("field", "title") not in {"title", "kind", "operating_area", "source"}:
                raise DataError(f"{path}: [[{field}]] rule {i + 1} matches unknown field {r.get('field')!r}")
            try:
                rx = re.compile(r["pattern"], re.IGNORECASE)
            except (KeyError, re.error) as exc:
                raise DataError(f"{path}: [[{field}]] rule {i + 1} has no valid 'pattern' ({exc})") from exc
            checked.append({"value": value, "field": r.get("field", "title"), "rx": rx, "n": i + 1})
        rules[field] = checked
    return rules


def load_overrides(path: Path | None = None) -> dict[str, dict]:
    """Read and check the per-KPI override table (each entry must say ``why``)."""
    path = Path(path) if path else data_dir() / "indicators" / "metadata_overrides.toml"
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    for kpi, entry in raw.items():
        if not entry.get("why"):
            raise DataError(f"{path}: override for {kpi} has no 'why'; say why the rule is wrong")
        for k, v in entry.items():
            if k == "why":
                continue
            if k not in _FIELDS:
                raise DataError(f"{path}: override for {kpi} sets unknown field {k!r}")
            if v not in _ALLOWED[k]:
                raise DataError(f"{path}: override for {kpi} sets {k}={v!r}; allowed: {sorted(_ALLOWED[k], key=str)}")
    return raw


def derive_metadata(
    catalogue: pd.DataFrame,
    rules: dict[str, list[dict]] | None = None,
    overrides: dict[str, dict] | None = None,
) -> pd.DataFrame:
    """Add ``area, kind, scale, direction, source_type`` and ``<field>_rule`` columns.

    Parameters
    ----------
    catalogue
        Frame with at least ``id`` and ``title``.
    rules, overrides
        As returned by :func:`load_rules` / :func:`load_overrides` (defaults: the embedded files).

    Returns
    -------
    pandas.DataFrame
        A copy with the metadata columns. Fields are derived in the order area, kind, scale,
        direction, source_type, so direction rules may look at the derived ``kind``.
    """
    rules = rules if rules is not None else load_rules()
    overrides = overrides if overrides is not None else load_overrides()
    out = catalogue.copy()
    titles = out["title"].map(clean_title)
    records: dict[str, list] = {f: [] for f in _FIELDS}
    sources: dict[str, list] = {f: [] for f in _FIELDS}
    for idx, kpi in enumerate(out["id"]):
        row = {
            "title": titles.iloc[idx],
            "operating_area": str(out["operating_area"].iloc[idx]) if "operating_area" in out else "",
            "source": str(out["source"].iloc[idx]) if "source" in out else "",
        }
        ov = overrides.get(kpi, {})
        for field in _FIELDS:
            if field in ov:
                records[field].append(ov[field])
                sources[field].append("override")
            else:
                for r in rules[field]:
                    if r["rx"].search(row[r["field"]] if r["field"] != "kind" else row["kind"]):
                        records[field].append(r["value"])
                        sources[field].append(f"rule {field}#{r['n']}")
                        break
                else:
                    default = 0 if field == "direction" else None
                    records[field].append(default)
                    sources[field].append("no rule matched")
            row[field] = records[field][-1]
    for field in _FIELDS:
        out[field] = records[field]
        out[f"{field}_rule"] = sources[field]
    out["direction"] = out["direction"].astype("int64")
    return out


@functools.lru_cache(maxsize=4)
def _load_catalogue_cached(path: str) -> pd.DataFrame:
    cat = pd.read_csv(path, dtype=str, keep_default_na=False)
    if cat["id"].duplicated().any():
        dups = sorted(cat.loc[cat["id"].duplicated(), "id"])
        raise DataError(f"{path}: duplicate KPI ids {dups}; the catalogue must have one row per KPI")
    return derive_metadata(cat)


def load_catalogue(path: Path | str | None = None) -> pd.DataFrame:
    """The embedded OJ KPI catalogue with derived analysis metadata.

    Parameters
    ----------
    path
        Optional catalogue CSV (same columns as ``data/kpi_catalogue.csv``).

    Returns
    -------
    pandas.DataFrame
        One row per KPI: ``id, title, operating_area, source, perspective, …`` plus
        ``area, kind, scale, direction`` and the rule that set each.
    """
    p = Path(path) if path else data_dir() / "kpi_catalogue.csv"
    return _load_catalogue_cached(str(p)).copy()
