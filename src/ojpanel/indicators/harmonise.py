"""Turn raw Kolada KPI values into the audit's harmonised variables, by a declarative spec.

The coding of every KPI is read per KPI and year from the spec (:mod:`ojpanel.indicators.spec`);
a code value the spec does not list for that KPI and year is an error naming the KPI, year and
municipality. The rules (closed set, :data:`ojpanel.indicators.spec.RULES`):

``as_is``
    ja=1/nej=0 for binary items, ja=2/delvis=1/nej=0 for ordinal items, numbers unchanged.
``yes_partial_to_one``
    1 if ja or delvis in at least one setting, 0 if nej in every setting.
``ja_only_to_one``
    1 if ja, 0 if delvis or nej.
``any_setting``
    1 if ja in at least one setting, 0 if nej in every setting.
``audit_dudit_combined``
    where the joint item exists (2016): nej=0, delvis=1, ja=2; otherwise the number of ja among
    the alcohol (AUDIT) and drug (DUDIT) items.
``isu_gender_joint_2016``
    where the joint item exists (2016): ja=1, nej=0; otherwise ``any_setting`` over the settings.
``preferred_else_any``
    the preferred item's ja=1/nej=0 where it has a value, otherwise ``any_setting`` over the
    fallback items (a splice; the number of spliced values is reported).

Missing components: "at least one" rules give 1 as soon as one setting says yes; they give 0 only
when every setting is observed and says no, and missing otherwise (never a guessed 0). The count of
such undetermined cells is reported per variable, so nothing disappears silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.core.synthetic import is_synthetic, mark_synthetic
from ojpanel.errors import DataError, ParameterError
from ojpanel.indicators.spec import Component, Spec, Variable, load_spec
from ojpanel.provenance import provenance_attrs

__all__ = ["Harmonised", "harmonise", "SCORES"]

#: Label scores used by the rules.
SCORES: dict[str, dict[str, float]] = {
    "binary": {"ja": 1.0, "nej": 0.0},
    "ordinal": {"ja": 2.0, "delvis": 1.0, "nej": 0.0},
    "yes_partial": {"ja": 1.0, "delvis": 1.0, "nej": 0.0},
    "ja_only": {"ja": 1.0, "delvis": 0.0, "nej": 0.0},
}
_MAX_EXAMPLES = 5


class Harmonised:
    """Harmonised variables with metadata and a per-variable report.

    Use :attr:`values` (``variable, municipality, year, value``) with :attr:`meta` (``id, title,
    area, kind, scale, direction, source, group``), or :meth:`to_tidy`; :func:`ojpanel.panel.from_harmonised`
    builds the OJ panel.
    """

    def __init__(
        self,
        values: pd.DataFrame,
        meta: pd.DataFrame,
        report: pd.DataFrame,
        breaks: pd.DataFrame,
        attrs: Mapping[str, Any],
    ):
        self._values = values
        self._meta = meta
        self._report = report
        self._breaks = breaks
        self._attrs = dict(attrs)

    @property
    def values(self) -> pd.DataFrame:
        """Tidy harmonised values: ``variable, municipality, year, value`` (a copy)."""
        return self._values.copy()

    @property
    def meta(self) -> pd.DataFrame:
        """Per-variable metadata for the panel (a copy)."""
        return self._meta.copy()

    @property
    def report(self) -> pd.DataFrame:
        """Per variable: input rows, rows in years the spec does not code (unused), missing raw
        values, undetermined cells, spliced cells, cells outside the audit's years (dropped in
        faithful mode), output rows."""
        return self._report.copy()

    @property
    def breaks(self) -> pd.DataFrame:
        """Series breaks flagged by the spec for the harmonised variables."""
        return self._breaks.copy()

    @property
    def attrs(self) -> dict[str, Any]:
        """Provenance (spec, mode, processed-source note; ``synthetic`` if the input was)."""
        return dict(self._attrs)

    def to_frame(self) -> pd.DataFrame:
        """Same as :attr:`values`."""
        return self.values

    def to_tidy(self) -> pd.DataFrame:
        """Values in the panel builder's tidy format: ``kpi`` (= variable id), ``municipality``,
        ``year``, ``gender`` (``T``), ``value``."""
        out = self._values.rename(columns={"variable": "kpi"})
        out.insert(3, "gender", "T")
        return out

    @property
    def summary(self) -> str:
        """Counts per variable."""
        r = self._report
        lines = [f"Harmonised {len(self._meta)} variables ({self._attrs.get('spec')}, "
                 f"{'faithful' if self._attrs.get('faithful') else 'all years'}): {len(self._values)} values"]  # fmt: skip
        for row in r.itertuples():
            lines.append(
                f"  {row.variable:<34} {row.rule:<22} out={row.rows_out:<6} undetermined={row.undetermined:<4} "
                f"outside_years={row.outside_years:<4} spliced={row.spliced}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        return self._report.to_html(index=False)


def _check_raw(raw: pd.DataFrame, gender: str | None) -> pd.DataFrame:
    need = ["kpi", "municipality", "year", "value"]
    lacking = [c for c in need if c not in raw.columns]
    if lacking:
        raise DataError(
            f"raw KPI frame lacks column(s) {lacking}; expected kpi, municipality, year, gender, value"
        )
    df = raw
    if "gender" in df.columns and gender is not None:
        df = df.loc[df["gender"].astype(str) == gender]
    df = df.loc[:, need].copy()
    df["kpi"] = df["kpi"].astype(str)
    df["municipality"] = df["municipality"].astype(str)
    try:
        df["year"] = df["year"].astype("int64")
        df["value"] = pd.to_numeric(df["value"], errors="raise").astype("float64")
    except (TypeError, ValueError) as exc:
        raise DataError(f"raw KPI frame: year must be integers and value numbers ({exc})") from exc
    dup = df.duplicated(["kpi", "municipality", "year"])
    if dup.any():
        ex = df.loc[dup].head(_MAX_EXAMPLES)
        raise DataError(
            f"raw KPI frame has {int(dup.sum())} duplicated kpi/municipality/year row(s)"
            f"{'' if gender is None else f' for gender {gender}'}, e.g. "
            + "; ".join(f"{r.kpi} {r.municipality} {r.year}" for r in ex.itertuples())
        )
    return df


def _decode(rows: pd.DataFrame, comp: Component, variable: Variable) -> pd.Series:
    """Labels (coded KPIs) or checked numbers for one component's rows (index municipality, year)."""
    vals = rows["value"].to_numpy()
    if comp.codes is None:
        lo, hi = comp.value_range  # type: ignore[misc]
        bad = (vals < lo) | (vals > hi)
        if bad.any():
            ex = rows.loc[bad].head(_MAX_EXAMPLES)
            raise DataError(
                f"{variable.id}: {int(bad.sum())} value(s) of {comp.kpi} outside [{lo:g}, {hi:g}], e.g. "
                + "; ".join(
                    f"KPI {comp.kpi}, year {r.year}, municipality {r.municipality}: {r.value:g}"
                    for r in ex.itertuples()
                )
                + ". Check the KPI id and its unit in the spec."
            )
        return pd.Series(
            vals, index=pd.MultiIndex.from_arrays([rows["municipality"], rows["year"]]), dtype=float
        )
    allowed = np.array(sorted(comp.codes), dtype=float)
    ok = np.isin(vals, allowed)
    if not ok.all():
        ex = rows.loc[~ok].head(_MAX_EXAMPLES)
        raise DataError(
            f"{variable.id}: {int((~ok).sum())} unexpected code value(s) for KPI {comp.kpi}; the spec allows "
            f"{', '.join(f'{k}={lab}' for k, lab in sorted(comp.codes.items(), reverse=True))} in "
            f"{comp.years[0]}–{comp.years[1]}. First: "
            + "; ".join(
                f"KPI {comp.kpi}, year {r.year}, municipality {r.municipality}: {r.value:g}"
                for r in ex.itertuples()
            )
            + ". Fix the data or the component's codes in the spec."
        )
    labels = [comp.codes[int(v)] for v in vals]
    return pd.Series(
        labels, index=pd.MultiIndex.from_arrays([rows["municipality"], rows["year"]]), dtype=object
    )


def _any_of(frame: pd.DataFrame) -> pd.Series:
    """1 if any column is 1; 0 if every column is observed and 0; NaN otherwise."""
    if frame.shape[1] == 0:
        return pd.Series(np.nan, index=frame.index)
    arr = frame.to_numpy(dtype=float)
    anyone = np.nanmax(np.where(np.isnan(arr), -np.inf, arr), axis=1) == 1
    allzero = (~np.isnan(arr)).all(axis=1) & (np.nan_to_num(arr, nan=1.0) == 0).all(axis=1)
    out = np.where(anyone, 1.0, np.where(allzero, 0.0, np.nan))
    return pd.Series(out, index=frame.index)


def _score(s: pd.Series, scores: Mapping[str, float]) -> pd.Series:
    return s.map(scores).astype(float)


def _apply_rule(
    variable: Variable, slots: dict[tuple[str, str], pd.Series], index: pd.MultiIndex
) -> tuple[pd.Series, pd.Series]:
    """Apply ``variable.rule``; returns (value, spliced flag) on ``index``."""

    def role(name: str) -> list[pd.Series]:
        return [s.reindex(index) for (r, _k), s in slots.items() if r == name]

    def frame(series: list[pd.Series], scores: Mapping[str, float]) -> pd.DataFrame:
        return (
            pd.concat([_score(s, scores) for s in series], axis=1)
            if series
            else pd.DataFrame(index=index)
        )

    spliced = pd.Series(False, index=index)
    rule = variable.rule
    if rule == "as_is":
        (item,) = role("item")
        if item.dtype == object:
            out = _score(item, SCORES["ordinal" if variable.scale == "ordinal" else "binary"])
        else:
            out = item.astype(float)
    elif rule == "ja_only_to_one":
        (item,) = role("item")
        out = _score(item, SCORES["ja_only"])
    elif rule == "yes_partial_to_one":
        out = _any_of(frame(role("setting"), SCORES["yes_partial"]))
    elif rule == "any_setting":
        out = _any_of(frame(role("setting"), SCORES["binary"]))
    elif rule == "audit_dudit_combined":
        parts = frame(role("alcohol") + role("drugs"), SCORES["binary"])
        separate = (
            parts.sum(axis=1, min_count=parts.shape[1])
            if parts.shape[1] == 2
            else pd.Series(np.nan, index=index)
        )
        joint = frame(role("joint"), SCORES["ordinal"])
        joint_val = (
            joint.bfill(axis=1).iloc[:, 0] if joint.shape[1] else pd.Series(np.nan, index=index)
        )
        out = joint_val.where(joint_val.notna(), separate)
    elif rule == "isu_gender_joint_2016":
        joint = frame(role("joint"), SCORES["binary"])
        joint_val = (
            joint.bfill(axis=1).iloc[:, 0] if joint.shape[1] else pd.Series(np.nan, index=index)
        )
        out = joint_val.where(joint_val.notna(), _any_of(frame(role("setting"), SCORES["binary"])))
    elif rule == "preferred_else_any":
        pref = frame(role("preferred"), SCORES["binary"]).bfill(axis=1).iloc[:, 0]
        fallback = _any_of(frame(role("fallback"), SCORES["binary"]))
        spliced = pref.isna() & fallback.notna()
        out = pref.where(pref.notna(), fallback)
    else:  # pragma: no cover - load_spec rejects unknown rules
        raise ParameterError(f"unknown rule {rule!r}")
    return out.astype(float), spliced


def harmonise(
    raw: pd.DataFrame,
    spec: Spec | str | Path | None = None,
    *,
    variables: Iterable[str] | None = None,
    include_alternatives: bool = False,
    faithful: bool = True,
    gender: str | None = "T",
) -> Harmonised:
    """Harmonise raw KPI values into the spec's variables.

    Parameters
    ----------
    raw
        Tidy raw values with columns ``kpi, municipality, year, value`` (``gender`` optional; rows
        of other genders are ignored). ``value`` holds Kolada's codes for coded items.
    spec
        A :class:`~ojpanel.indicators.spec.Spec`, a path to a spec file, or None for ``rir2021``.
    variables
        Variable ids to build (default: the spec's default set).
    include_alternatives
        With ``variables=None``, also build the alternative/sensitivity variables.
    faithful
        Keep only each variable's audit years (e.g. 2016–2019 for the elderly unit and user
        surveys); the number of cells left out is reported. False keeps every year the spec codes.
    gender
        Gender to use when ``raw`` has a ``gender`` column (None: the frame has one row per key).

    Returns
    -------
    Harmonised
        Values, metadata, per-variable report and breaks.

    Raises
    ------
    DataError
        If columns are missing, keys are duplicated, a coded KPI has a value its spec does not list
        for that year (naming KPI, year and municipality), or a numeric value is out of range.
    """
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    chosen = spec.select(variables, include_alternatives=include_alternatives)
    if not chosen:
        raise ParameterError(
            "no variables selected; give variable ids or include_alternatives=True"
        )
    df = _check_raw(raw, gender)
    by_kpi = {k: g for k, g in df.groupby("kpi", sort=False)}
    empty = df.iloc[0:0]

    out_frames: list[pd.DataFrame] = []
    report_rows: list[dict[str, Any]] = []
    for v in chosen:
        slots: dict[tuple[str, str], list[pd.Series]] = {}
        n_in = n_missing = 0
        # rows of this variable's KPIs in years no component codes (reported, not used)
        covered = {(c.kpi, y) for c in v.components for y in range(c.years[0], c.years[1] + 1)}
        n_uncoded = 0
        for k in v.kpis:
            g = by_kpi.get(k, empty)
            n_uncoded += int((~pd.Series([(k, y) in covered for y in g["year"]], dtype=bool)).sum())
        for c in v.components:
            g = by_kpi.get(c.kpi, empty)
            rows = g.loc[g["year"].between(c.years[0], c.years[1])]
            n_in += len(rows)
            miss = rows["value"].isna()
            n_missing += int(miss.sum())
            slots.setdefault((c.role, c.kpi), []).append(_decode(rows.loc[~miss], c, v))
        merged = {
            key: pd.concat(parts) if len(parts) > 1 else parts[0] for key, parts in slots.items()
        }
        index = (
            pd.MultiIndex.from_tuples(
                sorted({key for s in merged.values() for key in s.index}),
                names=["municipality", "year"],
            )
            if any(len(s) for s in merged.values())
            else pd.MultiIndex.from_tuples([], names=["municipality", "year"])
        )
        value, spliced = _apply_rule(v, merged, index)
        years = index.get_level_values("year") if len(index) else pd.Index([], dtype="int64")
        inside = (
            np.asarray((years >= v.years[0]) & (years <= v.years[1]))
            if faithful
            else np.ones(len(index), bool)
        )
        undetermined = int(value.isna().sum())
        keep = value.notna().to_numpy() & inside
        outside = int((value.notna().to_numpy() & ~inside).sum())
        res = pd.DataFrame({
            "variable": v.id,
            "municipality": index.get_level_values("municipality")[keep] if len(index) else [],
            "year": np.asarray(years)[keep].astype("int64") if len(index) else np.array([], dtype="int64"),
            "value": value.to_numpy()[keep],
        })  # fmt: skip
        out_frames.append(res)
        report_rows.append({
            "variable": v.id, "rule": v.rule, "kpis": ",".join(v.kpis), "rows_in": n_in,
            "rows_uncoded_years": n_uncoded, "missing_raw": n_missing, "undetermined": undetermined,
            "spliced": int((spliced.to_numpy() & keep).sum()), "outside_years": outside, "rows_out": len(res),
        })  # fmt: skip
    values = pd.concat(out_frames, ignore_index=True)
    values["year"] = values["year"].astype("int64")
    values["municipality"] = values["municipality"].astype(str)
    values = values.sort_values(["variable", "municipality", "year"], kind="mergesort").reset_index(
        drop=True
    )
    meta = spec.metadata(chosen)
    breaks = spec.breaks()
    breaks = breaks.loc[breaks["variable"].isin(meta["id"])].reset_index(drop=True)
    base = {
        "spec": spec.name,
        "spec_path": str(spec.path) if spec.path else "",
        "faithful": int(faithful),
        "citation_processed": PROCESSED_SOURCE_NOTE,
        "synthetic": 0,
    }
    if is_synthetic(raw):
        made = getattr(raw, "attrs", {}).get("description", "simulated raw values")
        base = mark_synthetic(f"harmonised variables of {made}", base)
    attrs = provenance_attrs(
        base,
        breaks=json.loads(breaks.to_json(orient="records", force_ascii=False)),
    )
    return Harmonised(values, meta, pd.DataFrame(report_rows), breaks, attrs)
