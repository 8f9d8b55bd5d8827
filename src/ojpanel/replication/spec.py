"""Which panel indicators are the audit's, and how the audit groups them.

A panel's indicator ids are Kolada KPI ids (raw panels) or harmonised variable ids (panels built
with ``data/indicators/rir2021.toml``). Both are mapped to the audit's area, indicator group and row
label through ``data/indicators/rir2021_indicators.csv`` (KPI ids) and the harmonisation spec
(variable ids). A user may also pass the mapping explicitly.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ojpanel.config import data_dir
from ojpanel.data.ojusers import AUDIT_AREAS, normalise_area
from ojpanel.errors import DataError

__all__ = ["ROLES", "SPEC_COLUMNS", "load_audit_rows", "audit_indicators"]

#: Roles of indicators in the appendix: municipal survey items, elderly unit-survey items,
#: elderly user-survey items (ended 2019), and staffing per place (analysis E).
ROLES = ("checklist", "unit_survey", "user_survey", "staffing")
SPEC_COLUMNS = ["indicator", "area", "indicator_group", "label", "component", "role", "last_year", "order"]
_AREA_ORDER = {a: i for i, a in enumerate(AUDIT_AREAS)}


def _short_group(group: str) -> str:
    # Drop explanatory parentheses ("(äldreomsorg: enhetsundersökningen i stället …)") but keep
    # short acronyms such as "(ISU)".
    return re.sub(r"\s*\([^)]*[:,][^)]*\)\s*$", "", str(group)).strip()


def _role(group: str) -> str:
    g = group.lower()
    if "bemanning" in g:
        return "staffing"
    if "brukarundersökning" in g:
        return "user_survey"
    if "enhetsundersökning" in g:
        return "unit_survey"
    return "checklist"


def _last_year(area: str, role: str, end: int) -> int:
    # The elderly unit and user surveys are used to 2019 only (no unit survey in 2020; the 2020
    # user survey overlapped the pandemic's outbreak).
    return min(end, 2019) if area == "äldreomsorg" and role != "checklist" else end


def load_audit_rows(path: Path | None = None) -> pd.DataFrame:
    """The audit's indicator rows that have a KPI and are not marked alternative or proxy.

    Returns
    -------
    pandas.DataFrame
        Columns ``indicator`` (KPI id), ``area``, ``indicator_group``, ``label``, ``component``,
        ``role``, ``order``, ``confidence``.
    """
    path = Path(path) if path else data_dir() / "indicators" / "rir2021_indicators.csv"
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    raw = raw[raw["kpi_id"].str.len() > 0]
    alt = raw["component"].str.contains(r"\((?:alternative|proxy)", regex=True)
    raw = raw[~alt]
    out = pd.DataFrame(
        {
            "indicator": raw["kpi_id"].to_numpy(),
            "area": [normalise_area(a) for a in raw["area"]],
            "indicator_group": [_short_group(g) for g in raw["group"]],
            "label": raw["rir_label"].to_numpy(),
            "component": raw["component"].to_numpy(),
            "role": [_role(g) for g in raw["group"]],
            "confidence": raw["confidence"].to_numpy(),
        }
    )
    out["order"] = np.arange(len(out))
    return out.drop_duplicates("indicator").reset_index(drop=True)


def _harmonised_rows(path: Path | None = None) -> pd.DataFrame:
    """Rows for the harmonised variables of the spec (``data/indicators/rir2021.toml``)."""
    from ojpanel.indicators.spec import load_spec

    spec = load_spec(path)
    rows = []
    for v in spec.variables:
        if "bemanning" in v.group.lower():
            role = "staffing"
        elif v.source == "brukarundersökning":
            role = "user_survey"
        elif v.source == "enhetsundersökning":
            role = "unit_survey"
        else:
            role = "checklist"
        comp = v.title.split(" – ", 1)[1] if " – " in v.title else ""
        rows.append(
            {
                "indicator": v.id,
                "area": normalise_area(v.area),
                "indicator_group": _short_group(v.group),
                "label": v.label,
                "component": comp + ("" if v.default else " [not in the default set]"),
                "role": role,
                "confidence": v.confidence,
                "spec_last_year": int(v.years[1]),
                "kpis": ",".join(v.kpis),
            }
        )
    return pd.DataFrame(rows)


def audit_indicators(
    panel_indicators: pd.DataFrame,
    *,
    mapping: pd.DataFrame | None = None,
    end_year: int = 2020,
    harmonised_spec: Path | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Match the panel's indicators to the audit's rows.

    Parameters
    ----------
    panel_indicators
        One row per panel indicator: ``indicator`` and the indicator coords (``area``,
        ``direction``, ``source``, optionally ``indicator_group``/``rir_group``).
    mapping
        Explicit mapping with columns ``indicator, area, indicator_group`` (optional ``label``,
        ``role``); overrides everything else.
    end_year
        Last year of the audit period (2020).
    harmonised_spec
        Path of the harmonisation spec (default ``data/indicators/rir2021.toml`` when it exists).

    Returns
    -------
    (pandas.DataFrame, list of str)
        The matched indicators (columns :data:`SPEC_COLUMNS` plus ``direction`` and ``kpis``, the
        Kolada ids behind each indicator) in the audit's order, and one message per panel indicator that is not the audit's.
    """
    pi = panel_indicators.copy()
    pi["indicator"] = pi["indicator"].astype(str)
    if mapping is not None:
        m = pd.DataFrame(mapping).copy()
        need = {"indicator", "area", "indicator_group"}
        if not need <= set(m.columns):
            raise DataError(f"the indicator mapping needs columns {sorted(need)}; got {list(m.columns)}")
        m["indicator"] = m["indicator"].astype(str)
        m["area"] = [normalise_area(a) or a for a in m["area"]]
        bad = sorted(set(m["area"]) - set(AUDIT_AREAS))
        if bad:
            raise DataError(f"indicator mapping has unknown area(s) {bad}; allowed: {list(AUDIT_AREAS)}")
        m["label"] = m["label"] if "label" in m.columns else m["indicator"]
        m["component"] = m["component"] if "component" in m.columns else ""
        m["role"] = m["role"] if "role" in m.columns else [_role(g) for g in m["indicator_group"]]
        bad_r = sorted(set(m["role"]) - set(ROLES))
        if bad_r:
            raise DataError(f"indicator mapping has unknown role(s) {bad_r}; allowed: {list(ROLES)}")
        m["order"] = np.arange(len(m))
        table = m
    else:
        parts = [load_audit_rows()]
        spec = harmonised_spec or data_dir() / "indicators" / "rir2021.toml"
        if Path(spec).is_file():
            h = _harmonised_rows(Path(spec))
            h["order"] = np.arange(len(h)) + 1000
            parts.append(h)
        gcol = next((c for c in ("indicator_group", "rir_group") if c in pi.columns), None)
        if gcol is not None:
            own = pi[pi[gcol].astype(str).str.len() > 0]
            if len(own):
                parts.append(
                    pd.DataFrame(
                        {
                            "indicator": own["indicator"],
                            "area": [normalise_area(a) for a in own["area"]],
                            "indicator_group": own[gcol].astype(str),
                            "label": own["title"] if "title" in own.columns else own["indicator"],
                            "component": "",
                            "role": [_role(g) for g in own[gcol].astype(str)],
                            "order": np.arange(len(own)) + 2000,
                        }
                    )
                )
        table = pd.concat(parts, ignore_index=True).drop_duplicates("indicator", keep="first")
    merged = pi[["indicator", "direction"]].merge(table, on="indicator", how="inner")
    merged = merged[merged["area"].isin(AUDIT_AREAS)]
    merged["last_year"] = [_last_year(a, r, end_year) for a, r in zip(merged["area"], merged["role"], strict=True)]
    if "spec_last_year" in merged.columns:
        # A harmonised variable's own analysis years (from the spec) can only shorten the period.
        sl = pd.to_numeric(merged["spec_last_year"], errors="coerce")
        merged["last_year"] = [int(min(a, b)) if pd.notna(b) else int(a) for a, b in zip(merged["last_year"], sl, strict=True)]
    merged["direction"] = pd.to_numeric(merged["direction"], errors="coerce").fillna(0).astype(int)
    merged["_a"] = merged["area"].map(_AREA_ORDER)
    merged = merged.sort_values(["_a", "order"], kind="mergesort").drop(columns="_a").reset_index(drop=True)
    others = sorted(set(pi["indicator"]) - set(merged["indicator"]))
    notes = []
    if others:
        shown = ", ".join(others[:12]) + (f" … ({len(others)} in all)" if len(others) > 12 else "")
        notes.append(f"{len(others)} panel indicator(s) are not among the audit's and were left out: {shown}")
    if "kpis" not in merged.columns:
        merged["kpis"] = ""
    merged["kpis"] = [k if isinstance(k, str) and k else i for i, k in zip(merged["indicator"], merged["kpis"], strict=True)]
    return merged[[*SPEC_COLUMNS, "direction", "kpis"]], notes
