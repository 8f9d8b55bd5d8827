"""A replication beside the audit's published tables, cell by cell.

>>> rep = rir2021(panel)                       # doctest: +SKIP
>>> fid = rep.compare_published()              # doctest: +SKIP
>>> print(fid.summary)                       # doctest: +SKIP

Every cell of Tables 2–17 (``data/rir2021/published/cells.csv``) is put beside our estimate,
p-value and mark and called **agree**, **disagree** or **not comparable** (with the reason: the
cell is unreadable, the row has no Kolada counterpart, the panel does not hold the data, the
socioeconomic grouping or the OJ-users file was not supplied, unit-level staffing data are
missing, or our cell is not estimable). Cells whose column the OCR lost still count at the row
level: the printed marks keep their left-to-right order, so a row is *consistent* when some
order-preserving placement of them matches our row, and otherwise at least *k* of our cells must
disagree with the audit. Each disagreement gets the nearest explanation the data allow.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ojpanel.core.results import Result
from ojpanel.core.stars import LEVELS
from ojpanel.errors import ParameterError
from ojpanel.replication.published import (
    LAYOUTS,
    Column,
    Published,
    load_published,
    mark_matches,
    marks_of,
    our_ids,
    parse_readings,
    reading_marks,
    spec_kpis,
)

__all__ = [
    "STATUSES",
    "REASONS",
    "FidelityReport",
    "compare_published",
    "compare_tables",
    "row_min_disagreements",
]

#: Cell statuses.
STATUSES = ("agree", "disagree", "not comparable")
#: Why a cell is not comparable.
REASONS = (
    "cell unreadable",
    "no counterpart in Kolada",
    "data not held",
    "grouping not supplied",
    "OJ users not supplied",
    "unit-level data not held",
    "not estimable",
)
#: A p-value within this factor of a significance line counts as near it.
NEAR_FACTOR = 2.0

CELL_OUT = [
    "table", "analysis", "row_no", "area", "section", "row", "indicators", "column_no", "column", "column_label",
    "printed", "mark", "confidence", "our_indicator", "our_period", "our_estimate", "our_p_value",
    "our_mark", "n_obs", "status", "reason", "kind", "explanation", "other_explanations",
]
ROW_OUT = [
    "table", "analysis", "row_no", "area", "section", "row", "indicators", "our_indicator", "printed", "placement",
    "alternatives", "our_marks", "n_held", "status", "min_disagreements", "explanation",
]


def row_min_disagreements(readings: str, ours: list[str | None], layout: str) -> float:
    """Fewest of our cells that must disagree with a printed row, over all placements.

    Parameters
    ----------
    readings
        The row's readings (``rows.csv``; alternatives separated by ``||``).
    ours
        Our mark per column (``""`` = not significant); ``None`` where we hold no comparable
        cell (any published content fits there).
    layout
        The table's layout (sets which marks a reading can stand for).

    Returns
    -------
    float
        The minimum over alternative readings and order-preserving placements of the printed
        marks of the number of our cells that differ; ``inf`` if no placement exists.
    """
    best = math.inf
    for alt in parse_readings(readings):
        sets = [reading_marks(x, layout) for x in alt]
        best = min(best, _dp(sets, ours))
    return best


def _dp(sets: list[frozenset[str]], ours: list[str | None]) -> float:
    k, n = len(sets), len(ours)
    inf = math.inf
    cost = [[inf] * (n + 1) for _ in range(k + 1)]
    cost[0][0] = 0.0
    for i in range(k + 1):
        for j in range(n + 1):
            c = cost[i][j]
            if c == inf:
                continue
            if j < n:  # column j left empty
                add = 0.0 if ours[j] in (None, "") else 1.0
                cost[i][j + 1] = min(cost[i][j + 1], c + add)
            if i < k and "" in sets[i]:  # token i is no mark
                cost[i + 1][j] = min(cost[i + 1][j], c)
            if i < k and j < n and sets[i] - {""}:  # token i sits in column j
                add = 0.0 if ours[j] is None or ours[j] in sets[i] else 1.0
                cost[i + 1][j + 1] = min(cost[i + 1][j + 1], c + add)
    return cost[k][n]


_LAYOUT_OF = {"C": "anova", "B": "users", "D": "peers", "E": "staffing"}


def _row_key(layout: str, rec: Mapping[str, Any], socio: str) -> tuple | None:
    """The published column a tidy row of ours fills (``None`` if it fills none)."""
    group = "socioeconomic" if rec.get("peer_group") == socio else rec.get("peer_group")
    period = str(rec["period"])
    if layout == "anova":
        return (group, "pooled" if "-" in period else "last")
    if layout == "users":
        if rec["outcome"] == "change":
            return ("change",)
        return ("pooled",) if "-" in period else (period,)
    lag = None if pd.isna(rec["lag"]) else int(rec["lag"])
    if layout == "peers":
        return (group, lag, rec["outcome"], rec["sample"]) if rec["term"] == "peer_top_quartile" else None
    return (lag, rec["outcome"], rec["sample"]) if rec["term"] == "large_spread" else None


def _col_key(layout: str, col: Column, table_peer: str) -> tuple:
    if layout == "anova":
        return (col.peer_group, col.period)
    if layout == "users":
        return (col.period,)
    if layout == "peers":
        return (table_peer, col.lag, col.outcome, col.sample)
    return (col.lag, col.outcome, col.sample)


def _index(t: pd.DataFrame, layout: str, socio: str) -> dict[str, dict[tuple, dict]]:
    """Our tidy rows by indicator and published column (the first row wins)."""
    out: dict[str, dict[tuple, dict]] = {}
    for rec in t.to_dict("records"):
        key = _row_key(layout, rec, socio)
        if key is not None:
            out.setdefault(str(rec["indicator"]), {}).setdefault(key, rec)
    return out


def _kind(published: str, ours: str) -> str:
    def sign(m: str) -> int:
        return 1 if m.startswith("+") else (-1 if m.startswith("-") else 0)

    if published == "" or ours == "":
        return "significance"
    if sign(published) != sign(ours):
        return "sign"
    return "level"


_LEVEL_RANGE = {"": (LEVELS[1], 1.0), "*": (LEVELS[0], LEVELS[1]), "+": (LEVELS[0], LEVELS[1]),
                "-": (LEVELS[0], LEVELS[1]), "**": (0.0, LEVELS[0]), "++": (0.0, LEVELS[0]),
                "--": (0.0, LEVELS[0]), "*/**": (0.0, LEVELS[1]), "+/++": (0.0, LEVELS[1]), "-/--": (0.0, LEVELS[1])}


def _near(p: float, published: str | None = None) -> str:
    """Whether ``p`` is within a factor :data:`NEAR_FACTOR` of giving the published mark.

    Without a published mark: whether it is that near either significance line.
    """
    if not isinstance(p, float) or not math.isfinite(p) or p <= 0:
        return ""
    if published is None:
        line = min(LEVELS, key=lambda lv: abs(math.log(p / lv)))
        factor = max(p / line, line / p)
    else:
        lo, hi = _LEVEL_RANGE[published]
        if p > hi:
            line, factor = hi, p / hi
        elif p <= lo:
            line, factor = lo, lo / p
        else:
            return ""
    if factor <= NEAR_FACTOR:
        return f"p-value near the {line:.0%} line (ours p = {p:.3g})"
    return ""


def _choice_for(analysis: str, col: Column | None, row: Any, groups: set[str]) -> str:
    """The method choices left open by the audit that bear on a cell (``col``) or a whole row."""
    parts = []
    if row.alternatives:
        parts.append(f"coding left open by the audit (alternative: {row.alternatives.replace(';', ', ')})")
    if row.indicators in groups:
        parts.append("how the audit combined the row's items (ours: mean of the items)")
    if analysis == "C" and (col is None or col.period == "pooled"):
        parts.append("pooling (faithful: every municipality-year a separate observation)")
    if analysis == "C" and (col is None or col.peer_group == "kommungrupp"):
        parts.append("kommungrupp version (faithful: SKR's 2017 grouping)")
    if analysis in {"D", "E"}:
        parts.append("percentile rule and ties of the top-quartile flag (faithful: linear interpolation, strictly above)")
    if analysis in {"B", "D", "E"}:
        parts.append("regression type and standard errors (faithful: linear probability model, plain OLS)")
    return "method choice: " + "; ".join(parts) if parts else ""


def _garbled(row: Any, layout: str) -> bool:
    """Whether a row's reading rests on garbled tokens, alternatives or a doubtful layout."""
    alts = parse_readings(row.readings)
    exact = {"noise", *marks_of(layout)} - {"+", "-"}
    return row.layout == "doubtful" or len(alts) > 1 or any(x not in exact for x in alts[0])


@dataclass(frozen=True)
class _Context:
    held: dict[str, set[str]]  # analysis -> our indicator ids with rows in that analysis
    in_panel: set[str]  # the panel's audit indicators


def _resolve(pub_id: str, analysis: str, ctx: _Context) -> str | None:
    for c in our_ids(pub_id):
        if c in ctx.held.get(analysis, set()):
            return c
    return None


def _missing_detail(pub_id: str, components: Mapping[str, list[str]], ctx: _Context) -> str:
    if pub_id in components:
        lacking = [c for c in components[pub_id] if not any(x in ctx.in_panel for x in our_ids(c))]
        if lacking:
            return f"the panel lacks item(s) {', '.join(lacking)} of the audit's combined row"
        return "the combined row was not built (run rir2021 with group_rows=True)"
    kpis = spec_kpis().get(pub_id, ())
    if len(kpis) > 1 and any(k in ctx.in_panel for k in kpis):
        return (f"the panel holds the KPI components ({', '.join(kpis)}), not the audit's combined variable "
                f"{pub_id}; harmonise the raw values first (ojpanel.harmonise)")
    return f"the panel does not hold {pub_id}" + (f" (Kolada {', '.join(kpis)})" if kpis else "")


def compare_tables(
    tables: Mapping[str, pd.DataFrame],
    indicators: pd.DataFrame,
    settings: Mapping[str, Any],
    published: Published | None = None,
    *,
    mode: str = "faithful",
    socioeconomic: str = "socioeconomic",
    alternatives: bool = False,
) -> FidelityReport:
    """Compare tidy replication tables with the published cells (see :func:`compare_published`).

    Parameters
    ----------
    tables
        Tidy tables ``A``..``E`` (schema of :data:`ojpanel.replication.analyses.COLUMNS`).
    indicators
        The panel's audit indicators (``RiR2021Result.indicators``).
    settings
        Run settings (``RiR2021Result.settings``): ``oj_users_given``, ``panel_source``, ...
    """
    pub = published or load_published()
    rows_in = {m for k in ("B", "C", "D", "E") for m in tables.get(k, pd.DataFrame({"mode": []}))["mode"]}
    if mode not in rows_in and rows_in:
        raise ParameterError(f"the replication has no {mode!r} rows (it has {sorted(rows_in)}); choose mode= one of them")
    ours = {}
    held: dict[str, set[str]] = {}
    for k in ("B", "C", "D", "E"):
        t = tables.get(k)
        t = t[t["mode"] == mode] if t is not None and len(t) else pd.DataFrame(columns=["indicator"])
        ours[k] = t
        held[k] = set(t["indicator"].astype(str))
    ctx = _Context(held=held, in_panel=set(indicators["indicator"].astype(str)))
    components = pub.group_components()
    groups = set(components)
    meta = {int(t["table"]): t for t in pub.tables.to_dict("records")}
    source = str(settings.get("panel_source", "")) or "the panel"
    vintage = (f"data vintage: our values come from {source}; Kolada revises values, and the audit "
               "extracted its data in 2020–21")
    cell_rows: list[dict] = []
    row_rows: list[dict] = []
    cells_by_row: dict[tuple[int, int], list[dict]] = {}
    for rec in pub.cells.to_dict("records"):
        cells_by_row.setdefault((int(rec["table"]), int(rec["row_no"])), []).append(rec)
    by_indicator = {k: _index(t, _LAYOUT_OF[k], socioeconomic) if len(t) else {} for k, t in ours.items()}
    flags = {}
    for k, t in ours.items():
        flags[k] = {
            "socio": bool(len(t) and "peer_group" in t and (t["peer_group"] == socioeconomic).any()),
            "units": bool(len(t) and "term" in t and (t["term"] == "large_spread").any()),
        }
    users_held = bool(settings.get("oj_users_given"))
    for r in pub.rows.itertuples(index=False):
        tm = meta[int(r.table)]
        analysis, layout = tm["analysis"], tm["layout"]
        cols = LAYOUTS[layout]
        pub_id = (r.alternatives.split(";")[0] if (alternatives and r.alternatives) else r.indicators)
        our_id = _resolve(pub_id, analysis, ctx) if pub_id else None
        sub = by_indicator[analysis].get(our_id) if our_id else None
        socio_held, units_held = flags[analysis]["socio"], flags[analysis]["units"]
        ours_marks: list[str | None] = []
        pcells = cells_by_row[(r.table, r.row_no)]
        for col, pc in zip(cols, pcells, strict=True):
            rec = {c: pc[c] for c in ("table", "row_no", "area", "section", "row", "indicators", "column_no", "column", "column_label", "printed", "mark", "confidence")}
            rec.update(analysis=analysis, our_indicator=our_id or "", our_period="", our_estimate=math.nan, our_p_value=math.nan,
                       our_mark="", n_obs=pd.NA, status="not comparable", reason="", kind="", explanation="",
                       other_explanations="")
            reason, detail = "", ""
            if not pub_id:
                reason, detail = "no counterpart in Kolada", r.note
            elif (layout == "anova" and col.peer_group == "socioeconomic") or (layout == "peers" and tm["peer_group"] == "socioeconomic"):
                if not socio_held:
                    reason = "grouping not supplied"
                    detail = (f"Socialstyrelsen's socioeconomic grouping is not public; pass it as "
                              f"groupings={{'{socioeconomic}': path}}")
            if not reason and (layout == "users" or col.sample == "oj_users") and not users_held:
                reason, detail = "OJ users not supplied", "SKR's 2019 per-municipality answers are not public; pass oj_users="
            if not reason and layout == "staffing" and not units_held:
                reason = "unit-level data not held"
                detail = ("our E reports the development of municipal means only; the audit's max-min spread "
                          "flag and lowest-staffed unit need unit-level data (staffing_units=)")
            if not reason and our_id is None:
                reason, detail = "data not held", _missing_detail(pub_id, components, ctx)
            cell = None
            if not reason:
                cell = None if sub is None else sub.get(_col_key(layout, col, tm["peer_group"]))
                if cell is None or pd.isna(cell["estimate"]):
                    reason, detail = "not estimable", "our replication has no estimate for this cell"
            if cell is not None and not reason:
                rec.update(our_period=str(cell["period"]), our_estimate=float(cell["estimate"]),
                           our_p_value=float(cell["p_value"]), our_mark=str(cell["stars"]), n_obs=cell["n_obs"])
                ours_marks.append(rec["our_mark"])
                if pc["confidence"] == "unreadable":
                    reason, detail = "cell unreadable", pc["note"]
            else:
                ours_marks.append(None)
            if reason:
                rec.update(reason=reason, explanation=detail)
            else:
                ok = mark_matches(pc["mark"], rec["our_mark"])
                rec["status"] = "agree" if ok else "disagree"
                if not ok:
                    rec["kind"] = _kind(pc["mark"], rec["our_mark"])
                    expl = []
                    if rec["kind"] != "sign":
                        expl.append(_near(rec["our_p_value"], pc["mark"]))
                    if pc["confidence"] == "probable":
                        expl.append("transcription: the published mark is a probable reading of the OCR")
                    expl += [_choice_for(analysis, col, r, groups), vintage]
                    expl = [e for e in expl if e]
                    rec["explanation"], rec["other_explanations"] = expl[0], " | ".join(expl[1:])
            cell_rows.append(rec)
        n_held = sum(m is not None for m in ours_marks)
        rr = {
            "table": r.table, "analysis": analysis, "row_no": r.row_no, "area": tm["area"], "section": r.section, "row": r.row,
            "indicators": r.indicators, "our_indicator": our_id or "", "printed": r.printed, "placement": r.placement,
            "alternatives": r.alternatives,
            "our_marks": " ".join("·" if m is None else (m or "0") for m in ours_marks),
            "n_held": n_held, "status": "not comparable", "min_disagreements": math.nan, "explanation": "",
        }
        if n_held:
            md = row_min_disagreements(r.readings, ours_marks, layout)
            rr["min_disagreements"] = md
            rr["status"] = "consistent" if md == 0 else "inconsistent"
            if md > 0:
                near = [f"{c.key} (p = {float(x['our_p_value']):.3g})"
                        for c, x in zip(cols, cell_rows[-len(cols):], strict=True) if _near(float(x["our_p_value"]))]
                parts = ["p-value within a factor 2 of the 5 % or 10 % line: " + ", ".join(near)] if near else []
                if _garbled(r, layout):
                    parts.append("transcription: some printed marks are garbled, alternative or in a doubtful layout")
                parts += [_choice_for(analysis, None, r, groups), vintage]
                rr["explanation"] = " | ".join(p for p in parts if p)
        row_rows.append(rr)
    cells = pd.DataFrame(cell_rows, columns=CELL_OUT)
    rows = pd.DataFrame(row_rows, columns=ROW_OUT)
    return FidelityReport(cells=cells, rows=rows, published=pub, mode=mode, alternatives=alternatives,
                          settings=dict(settings))


def compare_published(
    rep: Any,
    published: Published | None = None,
    *,
    mode: str = "faithful",
    socioeconomic: str = "socioeconomic",
    alternatives: bool = False,
) -> FidelityReport:
    """Put a replication beside the audit's published Tables 2–17, cell by cell.

    Parameters
    ----------
    rep
        A :class:`~ojpanel.replication.RiR2021Result`.
    published
        The transcribed tables (default: ``data/rir2021/published``).
    mode
        Which of the replication's modes to compare (``faithful`` is the audit's method).
    socioeconomic
        Name under which the socioeconomic grouping was passed to ``rir2021(groupings=...)``.
    alternatives
        Use each row's alternative coding (``rows.csv`` column ``alternatives``, e.g. the
        "alltid eller oftast" cut-off of the bemötande question) instead of the default one.

    Returns
    -------
    FidelityReport
        Cells, row-level checks, counts per table, and an account of every disagreement.
    """
    return compare_tables(rep.tables, rep.indicators, rep.settings, published, mode=mode,
                          socioeconomic=socioeconomic, alternatives=alternatives)


class FidelityReport(Result):
    """The replication beside the published tables. Build it with :func:`compare_published`."""

    title = "Agreement with the published appendix (RiR 2021:17)"

    def __init__(self, *, cells: pd.DataFrame, rows: pd.DataFrame, published: Published, mode: str,
                 alternatives: bool, settings: Mapping[str, Any]) -> None:
        self._cells = cells
        self._rows = rows
        self._pub = published
        self._mode = mode
        self._alternatives = alternatives
        self._settings = dict(settings)

    @property
    def cells(self) -> pd.DataFrame:
        """One row per published cell: the audit's mark beside ours, status, reason, explanation."""
        return self._cells.copy()

    @property
    def rows(self) -> pd.DataFrame:
        """One row per published row: whether some placement of its printed marks matches ours."""
        return self._rows.copy()

    @property
    def mode(self) -> str:
        """The replication mode compared."""
        return self._mode

    @property
    def disagreements(self) -> pd.DataFrame:
        """The cells that disagree, with their explanation."""
        return self._cells[self._cells["status"] == "disagree"].copy()

    def by_table(self) -> pd.DataFrame:
        """Counts per table: cells by status and reason, rows checked / consistent / inconsistent."""
        c = self._cells
        out = []
        for t, g in c.groupby("table"):
            meta = self._pub.tables.set_index("table").loc[t]
            rg = self._rows[self._rows["table"] == t]
            rec = {"table": int(t), "analysis": meta["analysis"], "area": meta["area"], "cells": len(g)}
            for s in STATUSES:
                rec[s] = int((g["status"] == s).sum())
            for reason in REASONS:
                rec[reason] = int((g["reason"] == reason).sum())
            rec["rows_checked"] = int((rg["status"] != "not comparable").sum())
            rec["rows_consistent"] = int((rg["status"] == "consistent").sum())
            rec["rows_inconsistent"] = int((rg["status"] == "inconsistent").sum())
            rec["min_disagreements"] = float(rg["min_disagreements"].fillna(0).sum())
            out.append(rec)
        return pd.DataFrame(out)

    def totals(self) -> dict[str, Any]:
        """Headline counts (JSON-serialisable), e.g. for ``ojpanel.pipeline.record``."""
        c, r = self._cells, self._rows
        return {
            "cells": len(c),
            **{s: int((c["status"] == s).sum()) for s in STATUSES},
            "not_comparable_by_reason": {k: int(v) for k, v in c.loc[c["reason"] != "", "reason"].value_counts().items()},
            "compared_certain": int(((c["status"] != "not comparable") & (c["confidence"] == "certain")).sum()),
            "compared_probable": int(((c["status"] != "not comparable") & (c["confidence"] == "probable")).sum()),
            "rows": len(r),
            "rows_checked": int((r["status"] != "not comparable").sum()),
            "rows_consistent": int((r["status"] == "consistent").sum()),
            "rows_inconsistent": int((r["status"] == "inconsistent").sum()),
            "min_disagreements": float(r["min_disagreements"].fillna(0).sum()),
            "tables_with_comparisons": sorted(int(t) for t in set(c.loc[c["our_mark"].notna() & c["our_estimate"].notna(), "table"])),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per published cell (same as :attr:`cells`)."""
        return self.cells

    @property
    def summary(self) -> str:
        """Plain-text fidelity summary with up to 20 disagreements (:meth:`describe` shows more)."""
        return self.describe()

    def describe(self, max_items: int = 20) -> str:
        """Plain-text fidelity summary: counts, per table, and every disagreement (up to ``max_items``)."""
        tot = self.totals()
        lines = [
            f"Agreement with the published appendix (RiR 2021:17 Tables 2–17; {self._mode} mode"
            + (", alternative codings" if self._alternatives else "") + ")",
            f"{tot['cells']} published cells: {tot['agree']} agree, {tot['disagree']} disagree, "
            f"{tot['not comparable']} not comparable.",
        ]
        if tot["not_comparable_by_reason"]:
            lines.append("Not comparable: " + ", ".join(f"{k} {v}" for k, v in tot["not_comparable_by_reason"].items()) + ".")
        lines.append(
            f"Rows whose marks cannot all be placed in columns, checked as printed sequences: {tot['rows_checked']} "
            f"of {tot['rows']} rows have cells of ours; {tot['rows_consistent']} consistent, "
            f"{tot['rows_inconsistent']} inconsistent (at least {tot['min_disagreements']:g} of our cells must differ)."
        )
        bt = self.by_table()
        lines += ["", "table  analysis  area                 cells  agree  disagree  n.c.  rows ok/checked"]
        for b in bt.to_dict("records"):
            lines.append(
                f"{b['table']:>5}  {b['analysis']:>8}  {b['area']:<19} {b['cells']:>6} {b['agree']:>6} "
                f"{b['disagree']:>9} {b['not comparable']:>5}  {b['rows_consistent']}/{b['rows_checked']}"
            )
        dis = self.disagreements
        if len(dis):
            lines += ["", "Disagreements (audit -> ours; nearest explanation):"]
            for d in dis.head(max_items).itertuples(index=False):
                lines.append(f"  Table {d.table} {d.row} [{d.column}]: '{d.mark}' ({d.confidence}) -> '{d.our_mark}' "
                             f"(p = {d.our_p_value:.3g}); {d.explanation}")
            if len(dis) > max_items:
                lines.append(f"  … {len(dis) - max_items} more in the cell table")
        inc = self._rows[self._rows["status"] == "inconsistent"]
        if len(inc):
            lines += ["", "Rows inconsistent with the printed marks (audit tokens | ours per column, · = not held, 0 = not significant):"]
            for r in inc.head(max_items).itertuples(index=False):
                lines.append(f"  Table {r.table} {r.row}: '{r.printed}' | {r.our_marks}; at least {r.min_disagreements:g} "
                             f"differ; {r.explanation.split(' | ')[0]}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """Counts per table as a Markdown table."""
        cols = ["table", "analysis", "area", "cells", "agree", "disagree", "not comparable",
                "rows_checked", "rows_consistent", "rows_inconsistent"]
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for rec in self.by_table()[cols].to_dict("records"):
            lines.append("| " + " | ".join(str(rec[c]) for c in cols) + " |")
        return "\n".join(lines)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``cells.csv``, ``rows.csv``, ``by_table.csv`` and ``summary.txt`` under ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "cells": out / "cells.csv", "rows": out / "rows.csv", "by_table": out / "by_table.csv",
            "summary": out / "summary.txt",
        }
        self._cells.to_csv(paths["cells"], index=False)
        self._rows.to_csv(paths["rows"], index=False)
        self.by_table().to_csv(paths["by_table"], index=False)
        paths["summary"].write_text(self.describe(max_items=10_000) + "\n", encoding="utf-8")
        return paths

    def __repr__(self) -> str:
        t = self.totals()
        return (f"FidelityReport(mode={self._mode!r}, cells={t['cells']}, agree={t['agree']}, "
                f"disagree={t['disagree']}, not_comparable={t['not comparable']})")

    def _repr_html_(self) -> str:
        return f"<div><strong>{html.escape(repr(self))}</strong>{self.by_table().to_html(index=False)}</div>"
