"""Audit-style tables: rows = indicators grouped as in the appendix, columns as in the appendix.

Each table is built from the tidy rows (schema :data:`COLUMNS`) and rendered
to Markdown and LaTeX. Regression cells show ``++ + - --``, ANOVA cells ``** *``; table A shows
the national averages themselves.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import pandas as pd

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.core.tidy import TIDY_COLUMNS

__all__ = ["COLUMNS", "AuditTable", "build_tables", "to_markdown", "to_latex", "LEGEND_REGRESSION", "LEGEND_ANOVA", "NOT_RUN", "slug"]

#: The tidy schema shared by every analysis (empty where not applicable); defined once, with the
#: fixed-effects results that produce most rows.
COLUMNS = list(TIDY_COLUMNS)

#: Cell of a column that was not run (e.g. OJ users without a users file).
NOT_RUN = "–"
LEGEND_REGRESSION = (
    "++ / + positive and significant at 5 % / 10 %; -- / - negative and significant at 5 % / 10 %; "
    "empty = not significant; n.e. = not estimable; – = not run."
)
LEGEND_ANOVA = "** / * significant explanatory power at 5 % / 10 %; empty = not significant; – = not run."


@dataclass(frozen=True)
class AuditTable:
    """One rendered audit-style table.

    Attributes
    ----------
    name
        File stem (``D_barn-och-unga_county_faithful``).
    title
        Caption.
    cells
        DataFrame of cell strings; index = (indicator group, row label), columns = audit columns.
    notes
        Notes printed under the table (legend, choices, faithful/improved differences).
    """

    name: str
    title: str
    cells: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def markdown(self) -> str:
        """The table as GitHub-flavoured Markdown."""
        return to_markdown(self)

    @property
    def latex(self) -> str:
        """The table as a LaTeX ``table`` environment (booktabs)."""
        return to_latex(self)

    def _repr_html_(self) -> str:
        notes = "".join(f"<p><small>{html.escape(n)}</small></p>" for n in self.notes)
        return f"<h4>{html.escape(self.title)}</h4>" + self.cells.to_html() + notes


def slug(text: str) -> str:
    """File-name part of an area or group name (lower case, å/ä/ö as a/a/o, spaces as dashes)."""
    return (
        str(text).lower().replace("ä", "a").replace("å", "a").replace("ö", "o").replace(" ", "-")
    )


def _row_labels(spec: pd.DataFrame) -> dict[str, tuple[str, str]]:
    out = {}
    for r in spec.itertuples(index=False):
        comp = str(r.component) if isinstance(r.component, str) and r.component else ""
        lab = f"{r.label}, {comp}" if comp else str(r.label)
        out[r.indicator] = (str(r.indicator_group), f"{lab} ({r.indicator})")
    return out


def _pivot(rows: pd.DataFrame, spec: pd.DataFrame, column_of, columns: list[str], value) -> pd.DataFrame:
    labels = _row_labels(spec)
    order = [i for i in spec["indicator"] if i in set(rows["indicator"])]
    data = {}
    for ind in order:
        sub = rows[rows["indicator"] == ind]
        cells = dict.fromkeys(columns, NOT_RUN)
        for r in sub.itertuples(index=False):
            col = column_of(r)
            if col in cells:
                cells[col] = value(r)
        data[labels[ind]] = cells
    idx = pd.MultiIndex.from_tuples(list(data), names=["indicator_group", "indicator"]) if data else pd.MultiIndex.from_tuples([], names=["indicator_group", "indicator"])
    return pd.DataFrame(list(data.values()), index=idx, columns=columns)


def _stars(r) -> str:
    if pd.isna(r.estimate):
        return "n.e."
    return r.stars


def build_tables(tidy: dict[str, pd.DataFrame], spec: pd.DataFrame, mode: str) -> list[AuditTable]:
    """Audit-style tables for one mode from the tidy tables A-E.

    Parameters
    ----------
    tidy
        Analysis letter -> tidy rows (any modes; only ``mode`` rows are used).
    spec
        The matched audit indicators (labels and groups).
    mode
        ``faithful`` or ``improved``.
    """
    out: list[AuditTable] = []
    areas = [a for a in dict.fromkeys(spec["area"])]
    src = f"Source: {PROCESSED_SOURCE_NOTE}."
    for area in areas:
        aspec = spec[spec["area"] == area]
        # A: national averages.
        a = tidy.get("A")
        if a is not None and len(a):
            rows = a[(a["mode"] == mode) & (a["area"] == area)]
            if len(rows):
                years = sorted(set(rows["period"]))
                cells = _pivot(rows, aspec, lambda r: r.period, years, lambda r: f"{r.estimate:.3g}")
                out.append(AuditTable(
                    f"A_{slug(area)}_{mode}", f"A. National average by year, {area} ({mode})", cells,
                    ["Unweighted mean over the municipalities with a value that year.", src],
                ))
        # B: users vs non-users.
        b = tidy.get("B")
        if b is not None and len(b):
            rows = b[(b["mode"] == mode) & (b["area"] == area)]
            if len(rows):
                lv = rows[rows["outcome"] == "level"]
                pooled = [p for p in dict.fromkeys(lv["period"]) if "-" in p]
                years = sorted(p for p in set(lv["period"]) if "-" not in p)
                ch = [f"Change {p.replace('-', '→')}" for p in dict.fromkeys(rows[rows["outcome"] == "change"]["period"])]
                cols = [f"Pooled {p}" for p in pooled] + years + ch

                def bcol(r):
                    if r.outcome == "change":
                        return f"Change {r.period.replace('-', '→')}"
                    return f"Pooled {r.period}" if "-" in r.period else r.period

                cells = _pivot(rows, aspec, bcol, cols, _stars)
                out.append(AuditTable(
                    f"B_{slug(area)}_{mode}", f"B. OJ users vs non-users, {area} ({mode})", cells,
                    [LEGEND_REGRESSION, "Positive = users have higher values.", src],
                ))
        # C: ANOVA.
        c = tidy.get("C")
        if c is not None and len(c):
            rows = c[(c["mode"] == mode) & (c["area"] == area)]
            if len(rows):
                groups = list(dict.fromkeys(rows["peer_group"]))
                cols = []
                for g in groups:
                    cols += [f"{g}, pooled", f"{g}, last year"]

                def ccol(r):
                    return f"{r.peer_group}, pooled" if "-" in r.period else f"{r.peer_group}, last year"

                cells = _pivot(rows, aspec, ccol, cols, lambda r: r.stars)
                periods = ", ".join(sorted(set(rows["period"])))
                out.append(AuditTable(
                    f"C_{slug(area)}_{mode}", f"C. Variance between groups (one-way ANOVA), {area} ({mode})", cells,
                    [LEGEND_ANOVA, f"Periods: {periods}.", src],
                ))
        # D: peers.
        d = tidy.get("D")
        if d is not None and len(d):
            rows = d[(d["mode"] == mode) & (d["area"] == area)]
            cols = [f"{s}: {o} t-{k}" for s in ("all", "oj_users") for o in ("level", "improved") for k in (1, 2)]
            for g in dict.fromkeys(rows["peer_group"]):
                for term in dict.fromkeys(rows["term"]):
                    sub = rows[(rows["peer_group"] == g) & (rows["term"] == term)]
                    cells = _pivot(sub, aspec, lambda r: f"{r.sample}: {r.outcome} t-{r.lag}", cols, _stars)
                    name = f"D_{slug(area)}_{slug(g)}" + ("" if term == "peer_top_quartile" else f"_{term}") + f"_{mode}"
                    what = "peers in the top quartile" if term == "peer_top_quartile" else "peers' mean (continuous)"
                    out.append(AuditTable(
                        name, f"D. Own result at t and {what} at t-k, peer group {g}, {area} ({mode})", cells,
                        [LEGEND_REGRESSION, "Columns 1-4: all municipalities; 5-8: OJ users only.", src],
                    ))
        # E: staffing.
        e = tidy.get("E")
        if e is not None and len(e):
            rows = e[(e["mode"] == mode) & (e["area"] == area)]
            if len(rows):
                outs = list(dict.fromkeys(rows["outcome"]))
                terms = list(dict.fromkeys(rows["term"]))
                cols = [f"{s}: {o} t-{k}" + ("" if len(terms) == 1 else f" [{t}]")
                        for t in terms for s in ("all", "oj_users") for o in outs for k in (1, 2)]

                multi = len(terms) > 1

                def ecol(r, multi=multi):
                    return f"{r.sample}: {r.outcome} t-{r.lag}" + (f" [{r.term}]" if multi else "")

                cells = _pivot(rows, aspec, ecol, cols, _stars)
                out.append(AuditTable(
                    f"E_{slug(area)}_{mode}", f"E. Staffing per place in special housing, {area} ({mode})", cells,
                    [LEGEND_REGRESSION, src],
                ))
    return out


def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|")


def to_markdown(t: AuditTable) -> str:
    """Render an :class:`AuditTable` as Markdown, with a bold row per indicator group."""
    cols = list(t.cells.columns)
    lines = [f"**{t.title}**", "", "| Indicator | " + " | ".join(_md_escape(c) for c in cols) + " |"]
    lines.append("|---|" + "|".join(":-:" for _ in cols) + "|")
    current = None
    for (group, label), row in t.cells.iterrows():
        if group != current:
            lines.append(f"| **{_md_escape(group)}** |" + " |" * len(cols))
            current = group
        lines.append(f"| {_md_escape(label)} | " + " | ".join(_md_escape(v) for v in row) + " |")
    lines.append("")
    lines += [f"_{_md_escape(n)}_  " for n in t.notes]
    return "\n".join(lines) + "\n"


_TEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
        '"': "''", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _tex(s: str) -> str:
    s = "".join(_TEX.get(ch, ch) for ch in str(s))
    # Keep "--" as two hyphens rather than an en dash.
    return s.replace("--", "-{}-").replace("→", r"$\rightarrow$").replace("–", r"\textendash{}")


def to_latex(t: AuditTable) -> str:
    """Render an :class:`AuditTable` as a LaTeX table (booktabs), group rows in italics."""
    cols = list(t.cells.columns)
    # Long Swedish row labels wrap in a fixed-width first column.
    spec = r"p{0.4\linewidth}" + "c" * len(cols)
    lines = [
        r"\begin{table}[htbp]",
        r"\centering",
        r"\small",
        f"\\caption{{{_tex(t.title)}}}",
        f"\\label{{tab:{t.name}}}",
        f"\\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        "Indicator & " + " & ".join(_tex(c) for c in cols) + r" \\",
        r"\midrule",
    ]
    current = None
    for (group, label), row in t.cells.iterrows():
        if group != current:
            lines.append(f"\\multicolumn{{{len(cols) + 1}}}{{l}}{{\\textit{{{_tex(group)}}}}} \\\\")
            current = group
        lines.append(_tex(label) + " & " + " & ".join(_tex(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if t.notes:
        lines.append(r"\par\medskip\footnotesize " + " ".join(_tex(n) for n in t.notes))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
