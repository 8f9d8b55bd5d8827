"""Method choices the audit left open, tested against its published cells.

METHOD.md lists what the appendix does not state. Where a panel overlaps the published tables,
:func:`evaluate_choices` reruns the replication under each option of each choice (one choice at a
time, the others at the faithful default) and counts how many of our cells must disagree with
what the audit printed (:func:`ojpanel.replication.compare.row_min_disagreements`, which also uses
rows whose marks cannot be placed in columns).

The rule for changing a faithful default is fixed in advance (:data:`DECISION_RULE`): an option
replaces the default only if, on at least :data:`MIN_EVIDENCE` of our cells that meet a published
row, it removes at least ``max(3, 10 %)`` of those cells' disagreements relative to the default.
Otherwise the default stands and the output says that the evidence does not support a change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.core.results import Result
from ojpanel.core.stars import regression_stars
from ojpanel.errors import DataError, ModelError
from ojpanel.replication.compare import FidelityReport, compare_tables
from ojpanel.replication.engine import fit_slope
from ojpanel.replication.published import Published, load_published, our_ids

__all__ = [
    "CHOICES",
    "MIN_EVIDENCE",
    "DECISION_RULE",
    "ChoiceEvaluation",
    "evaluate_choices",
    "decide",
    "peer_cells",
]

#: Fewest of our cells meeting a published row before a default may change.
MIN_EVIDENCE = 30
DECISION_RULE = (
    f"An option replaces the faithful default only if at least {MIN_EVIDENCE} of our cells meet a "
    "published row under both, and it removes at least max(3, 10 % of those cells) of the "
    "default's minimum number of disagreeing cells (scaled to the same number of cells)."
)

#: The choices tested and their options; the first option is the faithful default.
CHOICES: dict[str, tuple[str, ...]] = {
    "pooling": ("municipality-years", "municipality means"),
    "kommungrupp version": ("2017", "2011", "2023"),
    "coding of open rows": ("default", "alternative"),
    "year labels": ("survey year", "publication year"),
    "percentile rule and ties": (
        "linear, strictly above", "linear, at or above",
        "averaged inverted CDF, strictly above", "averaged inverted CDF, at or above",
    ),
    "weights": ("unweighted",),
}
_DESCRIPTIONS = {
    ("pooling", "municipality-years"): "pooled ANOVA on every municipality-year as its own row",
    ("pooling", "municipality means"): "pooled ANOVA on each municipality's mean over the period",
    ("kommungrupp version", "2017"): "SKR's 2017 municipality groups",
    ("kommungrupp version", "2011"): "SKL's 2011 municipality groups",
    ("kommungrupp version", "2023"): "SKR's 2023 municipality groups",
    ("coding of open rows", "default"): "the default coding (e.g. bemötande 'alltid')",
    ("coding of open rows", "alternative"): "each row's alternative (e.g. bemötande 'alltid eller oftast')",
    ("year labels", "survey year"): "a value's year is Kolada's survey year",
    ("year labels", "publication year"): "the audit's years are OJ publication years (survey year + 1)",
    ("percentile rule and ties", "linear, strictly above"): "numpy/R type 7 percentile; flag = above it",
    ("percentile rule and ties", "linear, at or above"): "type 7 percentile; flag = at or above it",
    ("percentile rule and ties", "averaged inverted CDF, strictly above"): "Stata _pctile / SAS default percentile; above it",
    ("percentile rule and ties", "averaged inverted CDF, at or above"): "Stata/SAS percentile; at or above it",
    ("weights", "unweighted"): "every municipality counts once",
}
_PERCENTILE = {
    "linear, strictly above": ("linear", False),
    "linear, at or above": ("linear", True),
    "averaged inverted CDF, strictly above": ("averaged_inverted_cdf", False),
    "averaged inverted CDF, at or above": ("averaged_inverted_cdf", True),
}


def peer_cells(
    design: pd.DataFrame,
    indicators: pd.DataFrame,
    *,
    start_year: int,
    users: pd.DataFrame | None = None,
    method: str = "linear",
    at_or_above: bool = False,
    q: float = 0.75,
) -> pd.DataFrame:
    """Faithful D cells (plain OLS on the peers' top-quartile flag) under a percentile rule.

    Parameters
    ----------
    design
        ``RiR2021Result.design("D")`` of a faithful run (peer means already lagged to t).
    indicators
        ``RiR2021Result.indicators`` (``last_year`` per indicator).
    start_year
        First year of the audit period (t starts at ``start_year + lag``).
    users
        OJ-users frame (``municipality, area, status``) for the ``oj_users`` columns.
    method
        :func:`numpy.quantile` method for the 75th percentile of the peers' means per year.
    at_or_above
        Flag municipalities whose peers' mean equals the percentile too.

    Returns
    -------
    pandas.DataFrame
        Rows with ``analysis, indicator, peer_group, lag, outcome, sample, term, period,
        estimate, p_value, stars, n_obs, mode`` (``faithful``); with the default rule they equal
        the replication's own D cells.
    """
    last = dict(zip(indicators["indicator"].astype(str), indicators["last_year"].astype(int), strict=True))
    d = design.copy()
    pm = d["peer_mean"].to_numpy(dtype=float)
    flag = np.full(len(d), np.nan)
    for _, idx in d.groupby(["indicator", "peer_group", "lag", "year"]).indices.items():
        v = pm[idx]
        ok = ~np.isnan(v)
        if not ok.any():
            continue
        cut = np.quantile(v[ok], q, method=method)
        f = (v >= cut) if at_or_above else (v > cut)
        flag[idx[ok]] = f[ok].astype(float)
    d["flag"] = flag
    rows = []
    for (ind, grp, lag, area), g in d.groupby(["indicator", "peer_group", "lag", "area"], sort=False):
        first, end = start_year + int(lag), last.get(str(ind), int(g["year"].max()))
        g = g[(g["year"] >= first) & (g["year"] <= end)]
        if g.empty:
            continue
        samples = [("all", np.ones(len(g), dtype=bool))]
        if users is not None:
            u = users[(users["area"] == area) & (users["status"] == "user")]["municipality"].astype(str)
            mask = g["municipality"].astype(str).isin(set(u)).to_numpy()
            if mask.any():
                samples.append(("oj_users", mask))
        period = f"{int(g['year'].min())}-{int(g['year'].max())}" if g["year"].nunique() > 1 else str(int(g["year"].min()))
        for outcome in ("level", "improved"):
            y_all = g[outcome].to_numpy(dtype=float)
            if np.isnan(y_all).all():
                continue
            for sample, mask in samples:
                y, x = y_all[mask], g["flag"].to_numpy(dtype=float)[mask]
                ok = ~np.isnan(y) & ~np.isnan(x)
                rec = {"analysis": "D", "indicator": ind, "peer_group": grp, "lag": int(lag), "outcome": outcome,
                       "sample": sample, "term": "peer_top_quartile", "period": period, "mode": "faithful",
                       "estimate": math.nan, "p_value": math.nan, "stars": "", "n_obs": int(ok.sum())}
                try:
                    fit = fit_slope(y[ok], x[ok])
                except ModelError:
                    rows.append(rec)
                    continue
                rec.update(estimate=fit.estimate, p_value=fit.p_value, stars=regression_stars(fit.estimate, fit.p_value))
                rows.append(rec)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class _Score:
    held: int
    min_disagreements: float
    agree: int
    disagree: int
    rows_checked: int
    rows_consistent: int


def _score(fid: FidelityReport, analyses: str = "BCDE", only_alternatives: bool = False) -> _Score:
    """Evidence and disagreements on the published rows a choice can change."""
    r, c = fid.rows, fid.cells
    r = r[r["analysis"].isin(list(analyses))]
    c = c[c["analysis"].isin(list(analyses))]
    if only_alternatives:
        r = r[r["alternatives"] != ""]
        c = c.merge(r[["table", "row_no"]], on=["table", "row_no"])
    checked = r[r["status"] != "not comparable"]
    return _Score(
        held=int(checked["n_held"].sum()), min_disagreements=float(checked["min_disagreements"].sum()),
        agree=int((c["status"] == "agree").sum()), disagree=int((c["status"] == "disagree").sum()),
        rows_checked=len(checked), rows_consistent=int((checked["status"] == "consistent").sum()),
    )


#: The analyses whose published cells each choice can change.
_SCOPE = {
    "pooling": "C",
    "kommungrupp version": "CD",
    "coding of open rows": "BCDE",
    "year labels": "BCDE",
    "percentile rule and ties": "D",
}


class ChoiceEvaluation(Result):
    """Options of each open method choice scored against the published cells."""

    title = "Method choices left open by the audit, tested against the published cells"

    def __init__(self, options: pd.DataFrame, verdicts: Mapping[str, str],
                 reports: Mapping[tuple[str, str], FidelityReport] | None = None) -> None:
        self._options = options
        self._verdicts = dict(verdicts)
        self._reports = dict(reports or {})

    def report(self, choice: str, option: str) -> FidelityReport:
        """The comparison behind one option's score."""
        try:
            return self._reports[(choice, option)]
        except KeyError:
            raise KeyError(f"no comparison kept for {choice!r} / {option!r}; scored: {sorted(self._reports)}") from None

    @property
    def options(self) -> pd.DataFrame:
        """One row per option: evidence (``held`` cells), minimum disagreements, rate, verdict."""
        return self._options.copy()

    @property
    def supported_changes(self) -> list[str]:
        """Choices whose evidence supports changing the faithful default (usually none)."""
        return [c for c, v in self._verdicts.items() if "supports making it the faithful default" in v]

    @property
    def verdicts(self) -> dict[str, str]:
        """Per choice: which option agrees best and whether the faithful default changes."""
        return dict(self._verdicts)

    def records(self) -> list[dict[str, Any]]:
        """Options as JSON-serialisable records."""
        out = []
        for rec in self._options.to_dict("records"):
            out.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in rec.items()})
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per option (same as :attr:`options`)."""
        return self.options

    @property
    def summary(self) -> str:
        """Plain text: every choice, its options' scores and the verdict."""
        lines = [self.title, DECISION_RULE, ""]
        for choice, g in self._options.groupby("choice", sort=False):
            lines.append(f"{choice}:")
            shown = ""
            for o in g.itertuples(index=False):
                if o.testable:
                    lines.append(f"  {'*' if o.default else ' '} {o.option:<40} {o.min_disagreements:>5g} of {o.held:>4} "
                                 f"cells must disagree ({o.rate:.0%})")
                else:
                    note = "" if o.note == shown else f": {o.note}"
                    shown = o.note
                    lines.append(f"  {'*' if o.default else ' '} {o.option:<40} not testable{note}")
            lines.append(f"  -> {self._verdicts[choice]}")
        lines.append("(* = faithful default)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        head = "<br>".join(html.escape(line) for line in self.summary.splitlines()[:3])
        return f"<div><p>{head}</p>{self.options.to_html(index=False, max_rows=60)}</div>"

    def write(self, path: str | Path) -> Path:
        """Write the options table as CSV."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._options.to_csv(path, index=False)
        return path

    def __repr__(self) -> str:
        return f"ChoiceEvaluation({len(self._verdicts)} choices, {len(self._options)} options)"


def _relevant_ids(pub: Published) -> set[str]:
    ids: set[str] = set()
    comps = pub.group_components()
    for r in pub.rows.itertuples(index=False):
        for v in [r.indicators, *r.alternatives.split(";")]:
            if not v:
                continue
            ids.update(our_ids(v))
            for c in comps.get(v, []):
                ids.update(our_ids(c))
    return ids


def decide(choice: str, g: pd.DataFrame) -> str:
    """The verdict on one choice from its options' scores, by :data:`DECISION_RULE`.

    Parameters
    ----------
    choice
        Name of the choice.
    g
        Its options: ``option, default, testable, held, min_disagreements, rate`` (the
        :attr:`ChoiceEvaluation.options` rows of the choice).

    Returns
    -------
    str
        Which option agrees best and whether the evidence supports changing the default.
    """
    default = g[g["default"]].iloc[0]
    test = g[g["testable"]]
    if len(test) < 2 or not default["testable"]:
        return f"not tested; the faithful default '{default['option']}' stands"
    best = test.sort_values(["rate", "default"], ascending=[True, False], kind="mergesort").iloc[0]
    if best["option"] == default["option"]:
        return f"the default '{default['option']}' agrees best ({default['min_disagreements']:g} of {default['held']}); it stays"
    enough = min(int(best["held"]), int(default["held"])) >= MIN_EVIDENCE
    gain = (default["rate"] - best["rate"]) * default["held"]
    if enough and gain >= max(3.0, 0.10 * default["held"]):
        return (f"'{best['option']}' agrees best ({best['min_disagreements']:g} of {best['held']} vs "
                f"{default['min_disagreements']:g} of {default['held']} for the default): the evidence supports "
                f"making it the faithful default")
    why = (f"only {min(int(best['held']), int(default['held']))} cells of evidence (< {MIN_EVIDENCE})" if not enough
           else f"it removes only {gain:.1f} disagreement(s)")
    return (f"'{best['option']}' agrees best ({best['min_disagreements']:g} of {best['held']} vs "
            f"{default['min_disagreements']:g} of {default['held']} for the default), but {why}: the evidence does "
            f"not support a change, so the faithful default '{default['option']}' stays")


def evaluate_choices(
    panel: xr.Dataset | str | Path,
    *,
    oj_users: str | Path | pd.DataFrame | None = None,
    groupings: Mapping[str, Any] | None = None,
    published: Published | None = None,
    socioeconomic: str = "socioeconomic",
) -> ChoiceEvaluation:
    """Score each option of the method choices the audit left open against its published cells.

    Parameters
    ----------
    panel
        An OJ panel or a path to one; only the indicators that meet a published row are used.
    oj_users, groupings
        As for :func:`ojpanel.replication.rir2021`.
    published
        The transcribed tables (default: the embedded copy).
    socioeconomic
        Name of the socioeconomic grouping in ``groupings``.

    Returns
    -------
    ChoiceEvaluation
        Options with their evidence and minimum disagreements, and a verdict per choice.

    Raises
    ------
    DataError
        If the panel holds none of the indicators of the published tables.
    """
    from ojpanel.data.ojusers import read_oj_users
    from ojpanel.replication.rir2021 import rir2021

    pub = published or load_published()
    if not isinstance(panel, xr.Dataset):
        from ojpanel.panel.io import load_panel

        panel = load_panel(panel)
    keep = [i for i in panel["indicator"].values.astype(str) if i in _relevant_ids(pub)]
    if not keep:
        raise DataError("the panel holds none of the indicators of the audit's published tables; nothing to test")
    sub = panel.sel(indicator=keep)
    kw = {"oj_users": oj_users, "groupings": groupings}

    reports: dict[tuple[str, str], FidelityReport] = {}

    def fid(choice: str, option: str, tables: Mapping[str, pd.DataFrame], rep: Any, alternatives: bool = False) -> _Score:
        rp = compare_tables(tables, rep.indicators, rep.settings, pub, mode="faithful",
                            socioeconomic=socioeconomic, alternatives=alternatives)
        reports[(choice, option)] = rp
        return _score(rp, _SCOPE[choice], only_alternatives=choice == "coding of open rows")

    base = rir2021(sub, mode="both", **kw)
    faithful = {k: v[v["mode"] == "faithful"] for k, v in base.tables.items()}
    scores: dict[tuple[str, str], _Score | str] = {}
    for choice in _SCOPE:
        scores[(choice, CHOICES[choice][0])] = fid(choice, CHOICES[choice][0], faithful, base)

    # pooling: C's pooled column from the improved run (municipality means), everything else faithful
    c_imp = base.tables["C"]
    c_imp = c_imp[c_imp["mode"] == "improved"].assign(mode="faithful")
    scores[("pooling", "municipality means")] = fid("pooling", "municipality means", {**faithful, "C": c_imp}, base)

    # kommungrupp version: the 2017 column replaced by another grouping
    for v in ("2011", "2023"):
        coord = f"kommungrupp_{v}"
        if coord not in sub.coords:
            scores[("kommungrupp version", v)] = f"the panel has no {coord} coordinate"
            continue
        alt = rir2021(sub.assign_coords(kommungrupp_2017=sub[coord]), mode="faithful", **kw)
        scores[("kommungrupp version", v)] = fid("kommungrupp version", v, alt.tables, alt)

    scores[("coding of open rows", "alternative")] = fid("coding of open rows", "alternative", faithful, base, True)

    shifted = rir2021(sub.assign_coords(year=sub["year"] + 1), mode="faithful", **kw)
    scores[("year labels", "publication year")] = fid("year labels", "publication year", shifted.tables, shifted)

    if base.tables["D"].empty:
        for o in CHOICES["percentile rule and ties"][1:]:
            scores[("percentile rule and ties", o)] = "the panel gives no D (peer) cells"
    else:
        users = None if oj_users is None else read_oj_users(oj_users, municipalities=sub["municipality"].values.astype(str))
        design = base.design("D")
        for o, (method, ge) in list(_PERCENTILE.items())[1:]:
            cells = peer_cells(design, base.indicators, start_year=int(base.settings["years"][0]), users=users,
                               method=method, at_or_above=ge)
            scores[("percentile rule and ties", o)] = fid("percentile rule and ties", o, {**faithful, "D": cells}, base)
    scores[("weights", "unweighted")] = (
        "respondent counts ('n') are not in the panel" if "n" not in sub.data_vars
        else "weighted variants are not implemented"
    )

    rows = []
    for choice, options in CHOICES.items():
        for k, o in enumerate(options):
            s = scores[(choice, o)]
            rec = {"choice": choice, "option": o, "default": k == 0, "description": _DESCRIPTIONS[(choice, o)]}
            if isinstance(s, str) or (isinstance(s, _Score) and s.held == 0):
                note = s if isinstance(s, str) else (
                    f"none of our results that this choice changes meets a readable published row "
                    f"(analyses {', '.join(_SCOPE[choice])})")
                rec.update(testable=False, held=0, min_disagreements=math.nan, rate=math.nan, agree=0, disagree=0,
                           rows_checked=0, rows_consistent=0, note=note)
            else:
                rec.update(testable=True, held=s.held, min_disagreements=s.min_disagreements,
                           rate=s.min_disagreements / s.held, agree=s.agree, disagree=s.disagree,
                           rows_checked=s.rows_checked, rows_consistent=s.rows_consistent, note="")
            rows.append(rec)
    options_df = pd.DataFrame(rows)
    verdicts = {c: decide(c, g) for c, g in options_df.groupby("choice", sort=False)}
    options_df["verdict"] = options_df["choice"].map(verdicts)
    return ChoiceEvaluation(options_df, verdicts, reports)
