"""RiR 2021:17's published appendix tables 2–17 as data.

The audit's tables are transcribed by hand from an OCR of the appendix into
``data/rir2021/published/`` (see the README there for the transcription rule):

``tables.csv``
    One row per table: analysis letter (B, C, D, E), area, layout, peer group, title.
``groups.csv``
    The audit's rows that combine several items ("Intern samordning", "Extern samverkan") and
    the harmonised variables they combine.
``rows.csv``
    One row per printed table row: the OCR tokens as printed, our reading of each token, and
    whether the tokens can be placed in columns.
``cells.csv``
    Every cell of every table (``expand_cells`` of the rows): column, printed token, mark and
    reading confidence (certain / probable / unreadable).

A *reading* says what a printed token can be. Exact marks (``**``, ``*``, ``++``, ``--``) are
read as printed; ``X?`` is a probable reading of mark ``X`` (a garbled token, or a ``+``/``-``
that may be a ``++``/``--`` that lost a character); ``sig`` / ``pos`` / ``neg`` are marks whose
level cannot be read; ``mark`` is a mark of unreadable sign and level; ``maybe`` may be a mark or
a speck; ``noise`` is a table-rule artefact. Alternative readings of a row (a token that may be
two marks run together) are separated by ``||``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

from ojpanel.config import data_dir
from ojpanel.core.results import Result
from ojpanel.data.ojusers import AUDIT_AREAS
from ojpanel.errors import DataError

__all__ = [
    "TABLES",
    "LAYOUTS",
    "ANALYSIS_OF_LAYOUT",
    "CONFIDENCE",
    "PLACEMENTS",
    "Column",
    "Published",
    "published_dir",
    "load_published",
    "expand_cells",
    "parse_readings",
    "reading_marks",
    "marks_of",
    "mark_matches",
    "our_ids",
    "spec_kpis",
]

#: The appendix's result tables (Table 1 lists the indicators and has no results).
TABLES = tuple(range(2, 18))
#: Reading confidence of a published cell.
CONFIDENCE = ("certain", "probable", "unreadable")
#: How a row's printed tokens map to columns: one per column, none at all, or not recoverable.
PLACEMENTS = ("full", "none", "unplaced")
_LAYOUT_QUALITY = ("clean", "doubtful")

_ANOVA_MARKS = ("**", "*")
_REGRESSION_MARKS = ("++", "+", "--", "-")
#: Marks whose level cannot be read (the sign, or "significant" for ANOVA, is known).
_PARTIAL = {"sig": "*/**", "pos": "+/++", "neg": "-/--"}
_UNREADABLE = "?"


@dataclass(frozen=True)
class Column:
    """One column of a published table and what our tidy rows must hold to fill it.

    Attributes
    ----------
    key
        Column id (``pooled_county``, ``level_all_t1``, ``y2017`` ...).
    label
        The column as the appendix heads it.
    peer_group
        ANOVA columns: ``county``, ``kommungrupp`` or ``socioeconomic``.
    period
        ANOVA: ``pooled`` or ``last``; OJ users: ``pooled``, a year, or ``change``.
    outcome
        Peer tables: ``level`` or ``improved``; staffing: ``mean_change`` or ``min_change``.
    lag
        Peer and staffing tables: 1 or 2.
    sample
        ``all`` or ``oj_users``.
    """

    key: str
    label: str
    peer_group: str = ""
    period: str = ""
    outcome: str = ""
    lag: int | None = None
    sample: str = "all"


def _anova() -> tuple[Column, ...]:
    out = []
    # Table 2 prints the elderly unit/user-survey years in parentheses: 2016–2019 and 2019.
    for period, head in (("pooled", "2016–2020 (2016–2019)"), ("last", "2020 (2019)")):
        for g, name in (("county", "Län"), ("kommungrupp", "Kommungrupp"), ("socioeconomic", "Socioek. grupp")):
            out.append(Column(f"{period}_{g}", f"{head}: {name}", peer_group=g, period=period))
    return tuple(out)


def _users() -> tuple[Column, ...]:
    cols = [Column("pooled", "Totalt 2016–20", period="pooled")]
    cols += [Column(f"y{y}", str(y), period=str(y)) for y in range(2016, 2021)]
    cols.append(Column("change", "Diff 2020–16", period="change"))
    return tuple(cols)


def _eight(first: tuple[str, str], second: tuple[str, str], *, users_label: str) -> tuple[Column, ...]:
    cols = []
    for sample, who in (("all", "alla"), ("oj_users", users_label)):
        for outcome, name in (first, second):
            for lag in (1, 2):
                cols.append(
                    Column(f"{outcome}_{sample}_t{lag}", f"{name}, {who}: t-{lag}", outcome=outcome, lag=lag, sample=sample)
                )
    return tuple(cols)


#: Column layouts of the appendix's tables.
LAYOUTS: dict[str, tuple[Column, ...]] = {
    "anova": _anova(),
    "users": _users(),
    "peers": _eight(("level", "Nivå"), ("improved", "Förbättring"), users_label="OJ-användare"),
    "staffing": _eight(("mean_change", "Genomsnitt"), ("min_change", "Minimivärde"), users_label="OJ-användare"),
}
#: The replication analysis that each layout reports.
ANALYSIS_OF_LAYOUT = {"anova": "C", "users": "B", "peers": "D", "staffing": "E"}


def marks_of(layout: str) -> tuple[str, ...]:
    """The significance marks a table of ``layout`` can print."""
    return _ANOVA_MARKS if layout == "anova" else _REGRESSION_MARKS


def parse_readings(text: str) -> list[list[str]]:
    """Split a row's readings into its alternatives (``||``), each a list of token readings."""
    text = str(text or "").strip()
    if not text:
        return [[]]
    return [alt.split() for alt in text.split("||")]


def reading_marks(reading: str, layout: str) -> frozenset[str]:
    """What a token reading can stand for: a set of marks, with ``""`` if it may be no mark.

    Raises
    ------
    DataError
        For a reading that is not in the vocabulary of the layout.
    """
    marks = marks_of(layout)
    if reading in marks:
        return frozenset({reading})
    if reading.endswith("?") and reading[:-1] in marks:
        # A garbled token, or a single sign that may have lost a character: its sign (or, for
        # ANOVA, its being a mark) is known, its level is not.
        return _family(reading[:-1], layout)
    if layout == "anova" and reading == "sig":
        return frozenset(_ANOVA_MARKS)
    if layout != "anova" and reading in {"pos", "neg"}:
        return _family("+" if reading == "pos" else "-", layout)
    if reading == "mark":
        return frozenset(marks)
    if reading == "maybe":
        return frozenset(marks) | {""}
    if reading == "noise":
        return frozenset({""})
    raise DataError(f"unknown reading {reading!r} for a {layout} table; see ojpanel.replication.published")


def _family(mark: str, layout: str) -> frozenset[str]:
    if layout == "anova":
        return frozenset(_ANOVA_MARKS)
    return frozenset({mark[0], mark[0] * 2})


def mark_matches(published: str, ours: str) -> bool:
    """Whether our mark is what the published (possibly partial) mark says."""
    if published in {"*/**", "+/++", "-/--"}:
        return ours in published.split("/")
    return published == ours


def _cell_reading(reading: str, layout: str) -> tuple[str, bool]:
    """(mark, exact) for a token placed in a cell."""
    marks = marks_of(layout)
    if reading in marks:
        return reading, True
    if reading.endswith("?") and reading[:-1] in marks:
        return reading[:-1], False
    if reading in _PARTIAL:
        return _PARTIAL[reading], False
    return _UNREADABLE, False


@cache
def spec_kpis() -> dict[str, tuple[str, ...]]:
    """Harmonised variable id -> the Kolada KPI ids behind it (``data/indicators/rir2021.toml``)."""
    from ojpanel.indicators.spec import load_spec

    return {v.id: v.kpis for v in load_spec().variables}


def our_ids(var_id: str) -> list[str]:
    """Panel ids that can stand for a harmonised variable: itself, or its KPI when it has only one.

    A raw Kolada panel names single-KPI variables by their KPI (``U21447`` for
    ``ao_bu_halsa_hemtjanst``); a variable built from several KPIs exists only in a harmonised panel.
    """
    out = [var_id]
    kpis = spec_kpis().get(var_id, ())
    if len(kpis) == 1:
        out.append(kpis[0])
    return out


def published_dir() -> Path:
    """``data/rir2021/published`` of the embedded data."""
    return data_dir() / "rir2021" / "published"


def expand_cells(tables: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Every cell of every table from the transcribed rows.

    A ``full`` row puts token *i* in column *i*: certain when every token is an exact mark and the
    layout is clean, else probable (unreadable for a mark of unknown sign). A ``none`` row is
    empty in every column: certain in a clean layout, probable in a doubtful one. An
    ``unplaced`` row's cells are unreadable: the row prints marks, but the OCR lost the empty
    cells between them, so their columns cannot be recovered.

    Returns
    -------
    pandas.DataFrame
        ``table, row_no, area, section, row, indicators, column_no, column, column_label,
        printed, mark, confidence, note``.
    """
    meta = tables.set_index("table")
    out = []
    for r in rows.itertuples(index=False):
        t = int(r.table)
        layout = meta.loc[t, "layout"]
        area = meta.loc[t, "area"]
        cols = LAYOUTS[layout]
        alts = parse_readings(r.readings)
        printed = str(r.printed).split()
        clean = r.layout == "clean"
        for j, col in enumerate(cols):
            if r.placement == "full":
                reading = alts[0][j]
                mark, _ = _cell_reading(reading, layout)
                exact = all(_cell_reading(x, layout)[1] for x in alts[0])
                if mark == _UNREADABLE:
                    conf = "unreadable"
                else:
                    conf = "certain" if exact and clean else "probable"
                tok, note = printed[j], ""
            elif r.placement == "none":
                mark, tok = "", ""
                conf = "certain" if clean else "probable"
                note = "" if clean else "row prints no mark, but its layout is doubtful (see rows.csv)"
            else:
                mark, tok, conf = _UNREADABLE, "", "unreadable"
                shown = " ".join(x for x in printed)
                note = f"the row prints {shown!r} but the columns of its marks cannot be recovered"
            out.append(
                {
                    "table": t, "row_no": int(r.row_no), "area": area, "section": r.section, "row": r.row,
                    "indicators": r.indicators, "column_no": j + 1, "column": col.key, "column_label": col.label,
                    "printed": tok, "mark": mark, "confidence": conf, "note": note,
                }
            )
    return pd.DataFrame(out, columns=CELL_COLUMNS)


#: Columns of ``cells.csv``.
CELL_COLUMNS = [
    "table", "row_no", "area", "section", "row", "indicators", "column_no", "column", "column_label",
    "printed", "mark", "confidence", "note",
]
_TABLE_COLUMNS = ["table", "analysis", "area", "layout", "peer_group", "housing", "title"]
_GROUP_COLUMNS = ["group", "area", "row", "components", "note"]
_ROW_COLUMNS = [
    "table", "row_no", "section", "row", "indicators", "alternatives", "printed", "readings",
    "placement", "layout", "note",
]


@dataclass(frozen=True)
class Published(Result):
    """The transcribed appendix: tables, combined-row groups, printed rows and every cell."""

    title = "RiR 2021:17 appendix as transcribed: cells per table by reading confidence"

    tables: pd.DataFrame
    groups: pd.DataFrame
    rows: pd.DataFrame
    cells: pd.DataFrame
    path: Path | None = None

    def group_components(self) -> dict[str, list[str]]:
        """Combined-row id -> the harmonised variables it combines."""
        return {g: c.split(";") for g, c in zip(self.groups["group"], self.groups["components"], strict=True)}

    def printed_mark_counts(self, analysis: str = "D") -> dict[str, int]:
        """How many marks the tables of one analysis print, by sign, whatever their column.

        Uses the first reading of every row, so it does not depend on recovering columns.
        ``positive_5pct`` / ``negative_5pct`` count marks read as ``++`` / ``--`` (exact or
        probable); ``unknown_sign`` counts ``mark`` and ``maybe`` readings.
        """
        tabs = set(self.tables.loc[self.tables["analysis"] == analysis, "table"])
        out = dict.fromkeys(["cells", "positive", "positive_5pct", "negative", "negative_5pct", "unknown_sign"], 0)
        out["cells"] = int(self.cells["table"].isin(tabs).sum())
        for r in self.rows[self.rows["table"].isin(tabs)].itertuples(index=False):
            for x in parse_readings(r.readings)[0]:
                base = x.rstrip("?")
                if base in {"++", "+", "pos"}:
                    out["positive"] += 1
                    out["positive_5pct"] += base == "++"
                elif base in {"--", "-", "neg"}:
                    out["negative"] += 1
                    out["negative_5pct"] += base == "--"
                elif x in {"mark", "maybe"}:
                    out["unknown_sign"] += 1
        return out

    def to_frame(self) -> pd.DataFrame:
        """Cells per table by reading confidence (one row per table)."""
        s = self.cells.groupby(["table", "confidence"]).size().unstack("confidence", fill_value=0)
        for c in CONFIDENCE:
            if c not in s.columns:
                s[c] = 0
        s = s[list(CONFIDENCE)]
        s["cells"] = s.sum(axis=1)
        return s.reset_index()

    @property
    def summary(self) -> str:
        """Plain text: cells per table by reading confidence, and the total."""
        t = self.to_frame()
        return f"{self.title}\n{t.to_string(index=False)}\n{int(t['cells'].sum())} cells in {len(t)} tables"


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"the published-tables file {path} is missing; it ships in data/rir2021/published/")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(df.columns) != columns:
        raise DataError(f"{path.name} must have columns {columns}; it has {list(df.columns)}")
    return df


def _validate(tables: pd.DataFrame, groups: pd.DataFrame, rows: pd.DataFrame, cells: pd.DataFrame) -> list[str]:
    problems: list[str] = []
    have = sorted(tables["table"].tolist())
    if have != list(TABLES):
        problems.append(f"tables.csv must list tables {list(TABLES)} once each; it lists {have}")
    for t in tables.itertuples(index=False):
        if t.layout not in LAYOUTS:
            problems.append(f"table {t.table}: unknown layout {t.layout!r}")
        elif ANALYSIS_OF_LAYOUT[t.layout] != t.analysis:
            problems.append(f"table {t.table}: layout {t.layout} reports analysis {ANALYSIS_OF_LAYOUT[t.layout]}, not {t.analysis}")
        if t.area not in AUDIT_AREAS:
            problems.append(f"table {t.table}: unknown area {t.area!r}")
    layout_of = dict(zip(tables["table"], tables["layout"], strict=True))
    if groups["group"].duplicated().any():
        problems.append("groups.csv lists a group twice")
    known_groups = set(groups["group"])
    for (t, n), g in rows.groupby(["table", "row_no"]):
        if len(g) > 1:
            problems.append(f"rows.csv: table {t} row {n} appears {len(g)} times")
    for r in rows.itertuples(index=False):
        where = f"rows.csv table {r.table} row {r.row_no} ({r.row})"
        if r.table not in layout_of:
            problems.append(f"{where}: table not in tables.csv")
            continue
        layout = layout_of[r.table]
        if r.placement not in PLACEMENTS:
            problems.append(f"{where}: placement must be one of {list(PLACEMENTS)}, got {r.placement!r}")
            continue
        if r.layout not in _LAYOUT_QUALITY:
            problems.append(f"{where}: layout must be one of {list(_LAYOUT_QUALITY)}, got {r.layout!r}")
        if r.indicators.startswith(("ao_grp", "eb_grp", "bou_grp")) and r.indicators not in known_groups:
            problems.append(f"{where}: group {r.indicators!r} is not in groups.csv")
        alts = parse_readings(r.readings)
        printed = r.printed.split()
        if len(alts[0]) != len(printed):
            problems.append(f"{where}: {len(printed)} printed token(s) but {len(alts[0])} reading(s)")
        try:
            for alt in alts:
                for x in alt:
                    reading_marks(x, layout)
        except DataError as exc:
            problems.append(f"{where}: {exc}")
            continue
        ncol = len(LAYOUTS[layout])
        marks_in = [x for x in alts[0] if x != "noise"]
        if r.placement == "full" and (len(alts) != 1 or len(marks_in) != ncol or "maybe" in marks_in):
            problems.append(f"{where}: a full row needs exactly one reading with {ncol} marks")
        if r.placement == "none" and (len(alts) != 1 or marks_in):
            problems.append(f"{where}: a row without marks may hold only 'noise' readings")
        if r.placement == "unplaced" and (not any(x != "noise" for alt in alts for x in alt)):
            problems.append(f"{where}: an unplaced row must print at least one possible mark")
        if any(len([x for x in alt if x != "noise"]) > ncol for alt in alts):
            problems.append(f"{where}: more marks than the table's {ncol} columns")
    for t, g in rows.groupby("table"):
        nums = sorted(int(x) for x in g["row_no"])
        if nums != list(range(1, len(nums) + 1)):
            problems.append(f"rows.csv table {t}: row numbers must run 1..{len(nums)}")
    if problems:
        problems.append("cells.csv was not checked against rows.csv: fix the problems above first")
        return problems
    expected = expand_cells(tables, rows)
    got = cells.copy()
    for c in ("table", "row_no", "column_no"):
        got[c] = got[c].astype(int)
    if len(got) != len(expected) or not got.reset_index(drop=True).equals(expected.reset_index(drop=True)):
        problems.append(
            "cells.csv is not the expansion of rows.csv (ojpanel.replication.published.expand_cells); "
            "regenerate it after editing rows.csv"
        )
    for c in cells.itertuples(index=False):
        allowed = set(marks_of(layout_of.get(int(c.table), "peers"))) | {"", _UNREADABLE} | set(_PARTIAL.values())
        if c.mark not in allowed or c.confidence not in CONFIDENCE or (c.mark == _UNREADABLE) != (c.confidence == "unreadable"):
            problems.append(f"cells.csv table {c.table} row {c.row_no} {c.column}: mark {c.mark!r} / confidence {c.confidence!r} not allowed")
            break
    return problems


@cache
def _load_default() -> Published:
    return _load(published_dir())


def _load(path: Path) -> Published:
    tables = _read(path / "tables.csv", _TABLE_COLUMNS)
    tables["table"] = tables["table"].astype(int)
    groups = _read(path / "groups.csv", _GROUP_COLUMNS)
    rows = _read(path / "rows.csv", _ROW_COLUMNS)
    rows["table"] = rows["table"].astype(int)
    rows["row_no"] = rows["row_no"].astype(int)
    cells = _read(path / "cells.csv", CELL_COLUMNS)
    problems = _validate(tables, groups, rows, cells)
    if problems:
        raise DataError(
            f"the published tables in {path} are inconsistent ({len(problems)} problem(s)):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    for c in ("table", "row_no", "column_no"):
        cells[c] = cells[c].astype(int)
    return Published(tables=tables, groups=groups, rows=rows, cells=cells, path=path)


def load_published(path: str | Path | None = None) -> Published:
    """Read and check the transcribed appendix tables (default: the embedded copy).

    Raises
    ------
    DataError
        Listing every problem: a missing table, file or column, a duplicated row, an unknown
        reading, layout or placement, marks outside the allowed set, or a ``cells.csv`` that is
        not the expansion of ``rows.csv``.
    """
    if path is None:
        return _load_default()
    return _load(Path(path))
