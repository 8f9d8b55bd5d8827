"""When each real OJ item was introduced, and which steering design the embedded real data support.

Introduction-year rule (:data:`INTRODUCTION_RULE`, written into every output)
----------------------------------------------------------------------------
1. ``first_year`` = the first year with a value for any municipality (gender T, codes ``0114``…
   ``2584``, not the nation or regions) in the embedded Kolada values — the year the item was first
   asked, as far as the data show.
2. ``last_year`` = the last such year; ``title_last_year`` = the year of Kolada's ``(-YYYY)`` title
   suffix (the item was asked for the last time that year), when present.
3. ``left_censored`` = ``first_year`` is the first year of the embedded values (1994): the item may
   be older, so it counts as *established*, never as an introduction.
4. KPIs without embedded values get ``first_year`` NaN; ``catalogue_snapshots`` lists the catalogue
   snapshots (``in_*`` flags) that hold them, and ``new_after_2024`` marks KPIs that appear in the
   2024 catalogues but not before (introduced after the embedded data end, so no event study).
5. The catalogue titles carry no coding-change notes (checked: no "ny definition", "ej jämförbar",
   "fr.o.m." in any title), so redefinitions are taken from the harmonisation spec
   (``data/indicators/rir2021.toml`` breaks), not from titles.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.errors import DataError, ParameterError

__all__ = ["INTRODUCTION_RULE", "DESIGNS", "introduction_years", "data_support", "dichotomise"]

INTRODUCTION_RULE = (
    "introduced = first year with a municipal value (gender T) in the embedded Kolada values; "
    "left-censored (established) when that is the first year of the values (1994); last year from "
    "the data and from the '(-YYYY)' title suffix; catalogue snapshot flags (in_*) for KPIs without values"
)

#: The four steering designs, as named in :func:`data_support`.
DESIGNS = ("adoption", "introduction_event_study", "oj_use_moderator", "steering_vs_benchmarking")

_SUFFIX = re.compile(r"\(-\s*(\d{4})\)\.?\s*$")


def introduction_years(
    catalogue: pd.DataFrame | None = None,
    values: pd.DataFrame | None = None,
    *,
    kinds: tuple[str, ...] | None = ("structure", "process"),
) -> pd.DataFrame:
    """Introduction year and life span of every KPI (see :data:`INTRODUCTION_RULE`).

    Parameters
    ----------
    catalogue
        KPI catalogue (default :func:`ojpanel.indicators.catalogue.load_catalogue`).
    values
        Tidy values ``kpi, municipality, year, gender, value`` (default: the embedded values).
    kinds
        Restrict to these indicator kinds (None: all).

    Returns
    -------
    pandas.DataFrame
        ``id, title, area, kind, scale, source_type, first_year, last_year, title_last_year,
        n_years, years, consecutive_pairs, n_municipalities, left_censored, catalogue_snapshots,
        new_after_2024, rule``.
    """
    from ojpanel.indicators.catalogue import clean_title, load_catalogue

    cat = load_catalogue() if catalogue is None else catalogue.copy()
    if kinds is not None:
        cat = cat[cat["kind"].isin(kinds)]
    if values is None:
        from ojpanel.data.embedded import load_embedded_values

        values = load_embedded_values(genders=["T"])
    need = {"kpi", "municipality", "year", "value"}
    if not need <= set(values.columns):
        raise DataError(f"values need columns {sorted(need)}; got {list(values.columns)}")
    v = values
    if "gender" in v:
        v = v[v["gender"] == "T"]
    mun = v["municipality"].astype(str)
    v = v[mun.str.fullmatch(r"\d{4}") & ~mun.str.startswith("00") & v["value"].notna()]
    data_start = int(v["year"].min()) if len(v) else np.nan
    v = v[v["kpi"].isin(set(cat["id"]))]
    g = v.groupby("kpi")
    span = pd.DataFrame({
        "first_year": g["year"].min(), "last_year": g["year"].max(), "n_years": g["year"].nunique(),
        "n_municipalities": g["municipality"].nunique(),
        "years": g["year"].agg(lambda s: ",".join(str(y) for y in sorted(set(s)))),
    })
    out = cat.merge(span, left_on="id", right_index=True, how="left")
    out["title_last_year"] = out["title"].map(lambda t: float(m.group(1)) if (m := _SUFFIX.search(str(t))) else np.nan)
    out["title"] = out["title"].map(clean_title)

    def pairs(s: object) -> int:
        if not isinstance(s, str) or not s:
            return 0
        ys = sorted(int(x) for x in s.split(","))
        return int(sum(1 for a, b in zip(ys, ys[1:], strict=False) if b == a + 1))

    out["consecutive_pairs"] = out["years"].map(pairs)
    out["left_censored"] = out["first_year"] == data_start
    flags = [c for c in out.columns if c.startswith("in_") and c != "in_ddf_dump_KM"]
    truthy = {"true", "1", "yes", "True"}
    out["catalogue_snapshots"] = out[flags].apply(
        lambda r: ",".join(c for c in flags if str(r[c]) in truthy or r[c] is True), axis=1
    ) if flags else ""
    if "in_pre2024" in out:
        pre = out["in_pre2024"].astype(str).isin(truthy)
        later = out[[c for c in flags if c.startswith("in_20")]].astype(str).isin(truthy).any(axis=1)
        out["new_after_2024"] = ~pre & later & out["first_year"].isna()
    else:
        out["new_after_2024"] = False
    out["rule"] = INTRODUCTION_RULE
    cols = ["id", "title", "area", "kind", "scale", "source_type", "first_year", "last_year", "title_last_year",
            "n_years", "years", "consecutive_pairs", "n_municipalities", "left_censored", "catalogue_snapshots",
            "new_after_2024", "rule"]
    return out[cols].reset_index(drop=True)


def data_support(
    catalogue: pd.DataFrame | None = None,
    values: pd.DataFrame | None = None,
    *,
    oj_year: int = 2019,
    have_oj_users: bool = False,
    have_colours: bool = False,
    include_missing: bool = True,
) -> pd.DataFrame:
    """Which real structure/process indicators can support which steering design, and why.

    KPIs of the catalogue without embedded values get ``qualifies = "no"`` with the reason (fetch
    them from Kolada) when ``include_missing``; the others are assessed by these rules:

    * ``adoption``: binary/ordinal items with at least one consecutive pair of years qualify;
      shares of units (unit surveys) qualify *after dichotomising* (:func:`dichotomise`; "yes" =
      every unit has the routine); rates, means and counts are not checklist items.
    * ``introduction_event_study``: the item must be introduced inside the data (not
      left-censored), have a consecutive year after introduction, and its area must hold
      established comparison items of the same source asked before and in its introduction year.
    * ``oj_use_moderator``: an audit area (the OJ-users file covers äldreomsorg, ekonomiskt
      bistånd, barn och unga), adoption pairs before and from ``oj_year``, and the file itself.
    * ``steering_vs_benchmarking``: an adoption pair whose earlier year has peers' answers
      (always, when the item qualifies for adoption) and colour flags for the checklist signal
      (not in the embedded data; ``have_colours=True`` when supplied).

    Returns
    -------
    pandas.DataFrame
        One row per design and indicator: ``design, indicator, title, area, kind, scale,
        source_type, years, qualifies`` (``"yes"``, ``"after dichotomising"``, ``"no"``), ``reason``.
    """
    from ojpanel.data.ojusers import AUDIT_AREAS

    everything = introduction_years(catalogue, values)
    intro = everything[everything["first_year"].notna()].reset_index(drop=True)
    rows = []
    if include_missing:
        for r in everything[everything["first_year"].isna()].itertuples(index=False):
            why = ("no values in the embedded data; fetch them from Kolada (`ojpanel fetch --preset rir2021`)"
                   + ("; new in the 2024 catalogues (after the embedded data end)" if r.new_after_2024 else ""))
            for design in DESIGNS:
                rows.append({"indicator": r.id, "title": r.title, "area": r.area, "kind": r.kind, "scale": r.scale,
                             "source_type": r.source_type, "years": "", "design": design, "qualifies": "no",
                             "reason": why})
    for r in intro.itertuples(index=False):
        ys = sorted(int(y) for y in str(r.years).split(","))
        checklist = r.scale in ("binary", "ordinal")
        share = r.scale == "share"
        base = {"indicator": r.id, "title": r.title, "area": r.area, "kind": r.kind, "scale": r.scale,
                "source_type": r.source_type, "years": r.years}
        ok_scale = "yes" if checklist else ("after dichotomising" if share else "no")
        # 1 adoption
        if ok_scale == "no":
            q, why = "no", f"scale '{r.scale}' is not a checklist answer (binary/ordinal) or a share of units"
        elif r.consecutive_pairs == 0:
            q, why = "no", f"no two consecutive years (years {r.years}); transitions need t-1 and t"
        else:
            q = ok_scale
            why = f"{r.consecutive_pairs} consecutive pair(s) of years ({r.years})"
            if share:
                why += "; share of units, dichotomised at 100 % (every unit has the routine)"
        rows.append({**base, "design": "adoption", "qualifies": q, "reason": why})
        adopt_q = q
        # 2 introduction event study
        same = intro[(intro["area"] == r.area) & (intro["source_type"] == r.source_type) & (intro["id"] != r.id)]
        comps = same[same["first_year"] < r.first_year]
        comps = comps[comps["years"].map(lambda s, fy=r.first_year: str(int(fy)) in str(s).split(","))]
        if ok_scale == "no":
            q, why = "no", "not a checklist item"
        elif r.left_censored:
            q, why = "no", f"asked since the first year of the data ({int(r.first_year)}): established, not an introduction"
        elif int(r.first_year) + 1 not in ys:
            q, why = "no", f"no answer in the year after introduction ({int(r.first_year)}); event time 1 unobserved"
        elif comps.empty:
            q, why = "no", (f"introduced {int(r.first_year)}, but no established {r.source_type} item of area "
                            f"'{r.area}' was asked before and in {int(r.first_year)}: no comparison items")
        else:
            q, why = ok_scale, f"introduced {int(r.first_year)}; {len(comps)} established comparison item(s)"
        rows.append({**base, "design": "introduction_event_study", "qualifies": q, "reason": why})
        # 3 moderator
        pre = [y for y in ys if y < oj_year and y - 1 in ys]
        post = [y for y in ys if y >= oj_year and y - 1 in ys]
        if adopt_q == "no":
            q, why = "no", "does not qualify for adoption dynamics"
        elif r.area not in AUDIT_AREAS:
            q, why = "no", f"area '{r.area}' is not covered by the OJ-users survey ({', '.join(AUDIT_AREAS)})"
        elif not pre or not post:
            q, why = "no", f"needs adoption pairs before and from {oj_year} (pairs ending {pre + post})"
        elif not have_oj_users:
            q, why = "no", "qualifies by its data, but no OJ-users file was given"
        else:
            q, why = adopt_q, f"pairs ending {pre} (placebo) and {post}"
        rows.append({**base, "design": "oj_use_moderator", "qualifies": q, "reason": why})
        # 4 combined
        if adopt_q == "no":
            q, why = "no", "does not qualify for adoption dynamics"
        elif not have_colours:
            q, why = "no", ("peer signal available, but the checklist signal needs OJ's colour flags, which the "
                            "embedded data do not hold; supply them (coloured=...)")
        else:
            q, why = adopt_q, "peer signal and colour flags available"
        rows.append({**base, "design": "steering_vs_benchmarking", "qualifies": q, "reason": why})
    out = pd.DataFrame(rows)
    cols = ["design", "indicator", "title", "area", "kind", "scale", "source_type", "years", "qualifies", "reason"]
    out = out[cols] if len(out) else pd.DataFrame(columns=cols)
    out.attrs["rule"] = INTRODUCTION_RULE
    return out


def dichotomise(ds: xr.Dataset, *, threshold: float = 100.0, indicators: list[str] | None = None) -> xr.Dataset:
    """Turn share items (0–100) into binary checklist items: 1 where ``value >= threshold``.

    The default, 100, reads "every unit has the routine" as the municipality's "yes". Missing
    values stay missing; the ``scale`` coordinate becomes ``binary`` and ``attrs`` record the rule.
    """
    if not 0 < threshold <= 100:
        raise ParameterError(f"threshold must be in (0, 100]; got {threshold}")
    sub = ds if indicators is None else ds.sel(indicator=list(indicators))
    scale = np.asarray(sub["scale"].values).astype(str)
    if not (scale == "share").all():
        bad = [str(i) for i, s in zip(sub["indicator"].values, scale, strict=True) if s != "share"]
        raise DataError(f"dichotomise() takes share items only; {bad[:5]} are not shares")
    v = sub["value"]
    out = sub.copy()
    out["value"] = xr.where(v.notnull(), (v >= threshold).astype(float), np.nan)
    out = out.assign_coords(scale=("indicator", np.array(["binary"] * sub.sizes["indicator"])))
    out.attrs = {**ds.attrs, "dichotomised": f"value >= {threshold} -> 1 (share of units with the routine)"}
    return out
