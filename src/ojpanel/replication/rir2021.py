"""RiR 2021:17's statistical appendix (analyses A–E) as one call.

>>> rep = rir2021(panel, oj_users="users.csv", mode="both")   # doctest: +SKIP
>>> print(rep.summary)                                      # doctest: +SKIP
>>> write_rir2021(panel, "out/")                              # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.core.style import save_figure
from ojpanel.core.synthetic import is_synthetic
from ojpanel.data.geo import NeighbourGraph
from ojpanel.data.ojusers import read_oj_users
from ojpanel.errors import DataError, ParameterError
from ojpanel.replication import analyses as an
from ojpanel.replication.figures import trend_figures
from ojpanel.replication.grouprows import GROUP_RULE, add_group_rows
from ojpanel.replication.results import RiR2021Result, compare_modes
from ojpanel.replication.spec import audit_indicators
from ojpanel.replication.tables import build_tables

__all__ = ["MODES", "rir2021", "write_rir2021"]

MODES = ("faithful", "improved", "both")
_ANALYSES = ("A", "B", "C", "D", "E")


def _load(panel: xr.Dataset | str | Path) -> xr.Dataset:
    if isinstance(panel, xr.Dataset):
        ds = panel
    else:
        path = Path(panel)
        if not path.exists():
            raise DataError(f"panel file {path} does not exist; build one with `ojpanel build`")
        try:
            from ojpanel.panel.io import load_panel
        except ImportError:  # panel I/O not installed in this tree: plain netCDF
            ds = xr.open_dataset(path).load()
        else:
            ds = load_panel(path)
    if "value" not in ds.data_vars:
        raise DataError("the panel has no 'value' variable; give an OJ panel (see ojpanel.build_panel)")
    need = {"municipality", "indicator", "year"}
    if set(ds["value"].dims) != need:
        raise DataError(f"the panel's 'value' must have dims {sorted(need)}; it has {list(ds['value'].dims)}")
    return ds


def _panel_indicators(ds: xr.Dataset) -> pd.DataFrame:
    out = pd.DataFrame({"indicator": ds["indicator"].values.astype(str)})
    for c in ds.coords:
        if ds[c].dims == ("indicator",) and c != "indicator":
            out[c] = ds[c].values
    if "direction" not in out.columns:
        out["direction"] = 0
    if "area" not in out.columns:
        out["area"] = ""
    return out


def _groupings(groupings: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, g in (groupings or {}).items():
        if isinstance(g, Path):
            if not g.is_file():
                raise DataError(f"grouping file {g} does not exist")
            df = pd.read_csv(g, dtype=str)
            if not {"municipality", "group"} <= set(df.columns):
                raise DataError(f"grouping file {g} needs columns municipality, group; got {list(df.columns)}")
            if df["municipality"].duplicated().any():
                raise DataError(f"grouping file {g} lists a municipality more than once")
            out[name] = pd.Series(df["group"].to_numpy(), index=df["municipality"].to_numpy())
        elif isinstance(g, (str, pd.Series, NeighbourGraph)):
            out[name] = g
        elif isinstance(g, Mapping):
            out[name] = pd.Series(dict(g))
        else:
            raise ParameterError(
                f"grouping '{name}' must be a coordinate name, 'neighbours', a NeighbourGraph, a mapping "
                f"municipality -> group, a pandas Series or a CSV path; got {type(g).__name__}"
            )
    return out


def _run(prep: an.Prepared, mode: str, units: pd.DataFrame | None):
    tables: dict[str, pd.DataFrame] = {"A": an.trend(prep, mode)}
    notes: dict[str, list[str]] = {}
    tables["B"], notes["B"] = an.users_vs_nonusers(prep, mode)
    tables["C"], notes["C"] = an.group_anova(prep, mode)
    tables["D"], notes["D"], design = an.peer_effects(prep, mode)
    tables["E"], notes["E"] = an.staffing(prep, mode, units)
    ran = []
    for k in _ANALYSES:
        t = tables[k]
        if len(t):
            est = int(t["estimate"].notna().sum())
            ran.append(f"{k} ({mode}): {len(t)} rows, {t['indicator'].nunique()} indicator(s), {est} estimate(s)")
    skipped = [n for k in ("B", "C", "D", "E") for n in notes[k]]
    return tables, ran, skipped, design


def rir2021(
    panel: xr.Dataset | str | Path,
    oj_users: str | Path | pd.DataFrame | None = None,
    mode: str = "faithful",
    groupings: Mapping[str, Any] | None = None,
    *,
    indicators: pd.DataFrame | None = None,
    staffing_units: pd.DataFrame | None = None,
    years: tuple[int, int] = (2016, 2020),
    cluster: str = "county",
    group_rows: bool = True,
    neighbour_weights: str = "contiguity",
) -> RiR2021Result:
    """Reproduce RiR 2021:17's statistical appendix (analyses A–E) on an OJ panel.

    Parameters
    ----------
    panel
        An OJ panel (``xarray.Dataset``, see :func:`ojpanel.build_panel`) or a path to one.
    oj_users
        OJ-users file (CSV ``municipality, area, status``) or frame; without it B is skipped and
        D/E run for all municipalities only.
    mode
        ``faithful`` (the audit's method, simplest reading where silent), ``improved`` (year
        effects, clustered SEs, continuous peer means) or ``both``.
    groupings
        Extra peer groupings (e.g. Socialstyrelsen's socioeconomic grouping, which is not public):
        name -> municipality coordinate name, mapping/Series municipality -> group, or a
        ``pathlib.Path`` to a CSV with columns ``municipality, group``. ``"neighbours"`` (the value
        :class:`~ojpanel.designs.peer.PeerDesign` and ``ds.oj.peer_mean`` take) or a
        :class:`~ojpanel.data.geo.NeighbourGraph` adds neighbour peers — the municipalities sharing
        a land border — to the improved mode's analysis D (e.g. ``{"neighbours": "neighbours"}``);
        C skips them (neighbour sets are no partition) and faithful mode notes them.
    indicators
        Explicit mapping of panel indicators to the audit's rows (columns ``indicator, area,
        indicator_group`` and optionally ``label, component, role``); default: the package's
        mapping (``data/indicators/rir2021_indicators.csv`` and the harmonisation spec).
    staffing_units
        Unit-level staffing per place (``indicator, municipality, unit, year, value``) for E's
        min and max−min versions.
    years
        First and last year of the audit period.
    cluster
        Cluster for improved-mode SEs: ``county`` (default; nests municipalities, so it is robust
        to both serial correlation and common county shocks) or ``municipality``.
    group_rows
        Also report the audit's combined rows ("Intern samordning", "Extern samverkan") as the
        mean of their items, where the panel holds every item
        (:func:`ojpanel.replication.grouprows.add_group_rows`); not with an explicit
        ``indicators`` mapping.
    neighbour_weights
        Weights of neighbour peers: ``"contiguity"`` (equal), ``"border"`` (shared border length)
        or ``"inverse_distance"`` (:func:`ojpanel.data.geo.weights_matrix`).

    Returns
    -------
    RiR2021Result
        Tidy tables A–E, audit-style tables, figures and a summary.

    Raises
    ------
    ParameterError
        For an unknown mode or cluster.
    DataError
        For a malformed panel, users file or grouping, or a panel without any audit indicator.
    """
    if mode not in MODES:
        raise ParameterError(f"mode must be one of {list(MODES)}, got {mode!r}")
    start, end = (int(y) for y in years)
    if end < start + 2:
        raise ParameterError(f"years must span at least three years (t-2 lags), got {years}")
    ds = _load(panel)
    group_notes: list[str] = []
    n_before = ds.sizes["indicator"]
    if group_rows and indicators is None:
        ds, group_notes = add_group_rows(ds)
    spec, spec_notes = audit_indicators(_panel_indicators(ds), mapping=indicators, end_year=end)
    if spec.empty:
        raise DataError(
            "none of the panel's indicators is one of the audit's (RiR 2021:17): give a panel with the "
            "audit's KPIs or harmonised variables, or pass indicators=... mapping them to the audit's groups"
        )
    munis = ds["municipality"].values.astype(str)
    users = None if oj_users is None else read_oj_users(oj_users, municipalities=munis)
    prep = an.prepare(
        ds, spec, users=users, groupings=_groupings(groupings), start_year=start, end_year=end, cluster=cluster,
        neighbour_weights=neighbour_weights,
    )
    run_modes = ["faithful", "improved"] if mode != "faithful" else ["faithful"]
    per_mode = {m: _run(prep, m, staffing_units) for m in run_modes}
    keep = run_modes if mode == "both" else [mode]
    tables = {
        k: pd.concat([per_mode[m][0][k] for m in keep], ignore_index=True) for k in _ANALYSES
    }
    ran = [r for m in keep for r in per_mode[m][1]]
    skipped = list(spec_notes) + group_notes + list(prep.messages)
    for m in keep:
        skipped += [s for s in per_mode[m][2] if s not in skipped]
    if mode != "faithful":
        both = pd.concat([per_mode[m][0][k] for m in run_modes for k in _ANALYSES], ignore_index=True)
        changes = compare_modes(both)
    else:
        changes = compare_modes(pd.concat(list(tables.values()), ignore_index=True))
    rendered = []
    for m in keep:
        for t in build_tables(tables, spec, m):
            if m == "improved":
                t.notes.insert(0, _change_note(t.name, changes))
            rendered.append(t)
    titles = (dict(zip(ds["indicator"].values.tolist(), ds["title"].values.tolist(), strict=True))
              if "title" in ds.coords else {})
    figures = trend_figures(tables["A"], spec, keep[0], titles) if len(tables["A"]) else {}
    choices: dict[str, list[str]] = {}
    for k in ("all", *_ANALYSES):
        choices[k] = [f"[faithful] {c}" for c in an.CHOICES[k]["faithful"]]
        if mode != "faithful":
            choices[k] += [f"[improved] {c}" for c in an.CHOICES[k]["improved"]]
    choices["all"].append(
        "Raw KPI panels: combined audit variables (e.g. AUDIT/DUDIT, settings) are analysed per KPI "
        "component; harmonised panels carry the combined variables."
    )
    if ds.sizes["indicator"] > n_before:
        choices["all"].append(GROUP_RULE)
    synthetic = is_synthetic(ds)
    if synthetic:
        for t in rendered:
            t.notes.insert(0, "SYNTHETIC DATA (simulated; not Öppna jämförelser results).")
    settings = {
        "synthetic": synthetic,
        "panel_source": str(ds.attrs.get("data_source", "")),
        "panel_content_hash": str(ds.attrs.get("content_hash", "")),
        "years": [start, end],
        "cluster": cluster if mode != "faithful" else "none (plain OLS SEs)",
        "quantile": prep.quantile,
        "peer_groups": list(prep.groupings) + list(prep.neighbours),
        "neighbour_weights": prep.neighbour_weights if prep.neighbours else None,
        "oj_users_given": users is not None,
        "staffing_units_given": staffing_units is not None,
        "source_note": PROCESSED_SOURCE_NOTE,
    }
    for k, t in tables.items():
        # The choices travel with each tidy table (DataFrame.attrs) as well as in the report.
        t.attrs = {
            "analysis": k,
            "mode": mode,
            "choices": choices["all"] + choices[k],
            "settings": json.dumps(settings, ensure_ascii=False, default=str),
        }
    return RiR2021Result(
        mode=mode, tables=tables, rendered=rendered, figures=figures, choices=choices, ran=ran,
        skipped=skipped, changes=changes, spec=spec, settings=settings,
        # the improved run's design frame when there is one: it also holds the neighbour peers
        designs={"D": per_mode[run_modes[-1]][3]},
    )


def _change_note(name: str, changes: pd.DataFrame) -> str:
    # Table names are "<analysis>_<area slug>_..."; match the changes of that analysis and area.
    from ojpanel.replication.tables import slug

    if "_peer_mean_" in name:
        return "Improved mode only (no faithful counterpart): the peers' leave-one-out mean kept continuous."
    analysis = name.split("_", 1)[0]
    sub = changes[(changes["analysis"] == analysis) & (changes["area"].map(slug) == name.split("_")[1])]
    if analysis == "D":
        parts = name.split("_")
        sub = sub[sub["peer_group"].map(slug) == parts[2]]
        sub = sub[sub["term"] == ("peer_mean" if "_peer_mean_" in name else "peer_top_quartile")]
    if sub.empty:
        return "Compared with faithful mode: no cell changes sign or significance."
    items = [
        f"{r.indicator} {r.outcome} {('t-' + str(r.lag)) if not pd.isna(r.lag) else r.period} ({r.sample}"
        + (f", {r.peer_group}" if r.peer_group else "") + f"): '{r.faithful}' -> '{r.improved}'"
        for r in sub.itertuples(index=False)
    ]
    shown = "; ".join(items[:15]) + (f"; … ({len(items)} in all)" if len(items) > 15 else "")
    return f"Compared with faithful mode, {len(items)} cell(s) change sign or significance: {shown}."


def write_rir2021(
    panel: xr.Dataset | str | Path,
    out_dir: str | Path,
    oj_users: str | Path | pd.DataFrame | None = None,
    mode: str = "faithful",
    groupings: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> RiR2021Result:
    """Run :func:`rir2021` and write its outputs under ``out_dir``.

    Writes ``tables/{A,B,C,D,E}.csv`` (tidy), ``tables/<name>.md`` and ``.tex`` (audit-style),
    ``tables/metadata.json`` (choices, settings, skipped), ``figures/*.png``, the comparison with
    the published tables (``fidelity/cells.csv``, ``rows.csv``, ``by_table.csv``,
    ``summary.txt``; a socioeconomic grouping must be passed under the name ``socioeconomic``)
    and ``report.md``.
    Outputs of an earlier run in the same directory (``tables/[A-E]_*.md|.tex``,
    ``figures/A_*.png``, the CSVs, ``metadata.json``, ``report.md``) are replaced so that none goes
    stale; other files in ``out_dir`` are left alone.

    Returns
    -------
    RiR2021Result
        The result that was written.
    """
    rep = rir2021(panel, oj_users=oj_users, mode=mode, groupings=groupings, **kwargs)
    out = Path(out_dir)
    tdir, fdir = out / "tables", out / "figures"
    tdir.mkdir(parents=True, exist_ok=True)
    fdir.mkdir(parents=True, exist_ok=True)
    # Outputs of an earlier run (e.g. another mode) would go stale beside the new ones: remove
    # the files this function writes, and only those.
    for old in [*tdir.glob("[A-E]_*.md"), *tdir.glob("[A-E]_*.tex"), *fdir.glob("A_*.png"), *fdir.glob("A_*.svg")]:
        old.unlink()
    for k, t in rep.tables.items():
        t.to_csv(tdir / f"{k}.csv", index=False)
    for t in rep.rendered:
        (tdir / f"{t.name}.md").write_text(t.markdown, encoding="utf-8")
        (tdir / f"{t.name}.tex").write_text(t.latex, encoding="utf-8")
    (tdir / "metadata.json").write_text(json.dumps(rep.metadata(), indent=2, ensure_ascii=False), encoding="utf-8")
    figs = []
    for name, fig in rep.figures.items():
        save_figure(fig, fdir / f"{name}.png")
        figs.append(name)
    lines = ["# RiR 2021:17 statistical appendix: replication", "", "```", rep.summary, "```", ""]
    if figs:
        lines += ["## Figures (analysis A)", ""] + [f"![{n}](figures/{n}.png)" for n in figs] + [""]
    lines += ["## Tables", ""]
    for t in rep.rendered:
        lines += [t.markdown, ""]
    fid = rep.compare_published()
    fid.write(out / "fidelity")
    lines += [
        "## Agreement with the published appendix", "",
        f"Cell by cell against the audit's Tables 2–17 ({fid.mode} mode); the cell table is "
        "`fidelity/cells.csv`, the row checks `fidelity/rows.csv`.", "",
        fid.to_markdown(), "", "```", fid.summary, "```", "",
    ]
    lines += [f"_Source: {PROCESSED_SOURCE_NOTE}._", ""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return rep
