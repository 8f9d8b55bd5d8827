"""RiR 2021:17's analyses A–E on an OJ panel, each returning rows of the tidy schema.

Faithful mode follows the appendix and, where it is silent, the simplest reading (plain OLS, a
linear probability model for binary outcomes, no year effects, complete cases). Improved mode adds
year effects and cluster-robust SEs, and keeps the leave-one-out peer mean continuous as well as
binary. Every choice is listed in :data:`CHOICES` and repeated in the report and table metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.core.stars import anova_stars, regression_stars
from ojpanel.designs.peer import PeerDesign
from ojpanel.errors import DataError, ModelError, ParameterError
from ojpanel.peers import NEIGHBOURS, improved, lagged, top_quartile_flag
from ojpanel.replication.engine import SlopeFit, fit_slope, mean_test, one_way_anova
from ojpanel.replication.tables import COLUMNS

__all__ = [
    "COLUMNS",
    "CHOICES",
    "Prepared",
    "prepare",
    "unit_staffing_summary",
    "trend",
    "users_vs_nonusers",
    "group_anova",
    "peer_effects",
    "DESIGN_COLUMNS",
    "staffing",
]


#: Choices the appendix leaves open, per analysis and mode (written to the report and metadata).
CHOICES: dict[str, dict[str, list[str]]] = {
    "all": {
        "faithful": [
            "Regressions are OLS with a constant; binary outcomes use a linear probability model.",
            "Plain (homoskedastic) OLS standard errors; p-values from the t distribution with N-K df.",
            "No year effects. Rows with a missing outcome or regressor are left out (complete cases); "
            "n_obs counts the rows used.",
            "Stars: ++/+ (--/-) = positive (negative) coefficient with p <= 0.05 / p <= 0.10; "
            "ANOVA ** / * = p <= 0.05 / p <= 0.10.",
            "Elderly-care unit-survey, user-survey and staffing indicators are used to 2019; values "
            "after 2019 are ignored for them.",
        ],
        "improved": [
            "Year effects (one dummy per year) in every pooled regression.",
            "Cluster-robust standard errors (CR1, t distribution with G-1 df); the cluster is "
            "stated in the table metadata ('cluster').",
        ],
    },
    "A": {
        "faithful": [
            "National average = unweighted mean over the municipalities with a value that year "
            "(not population-weighted; not Kolada's 'riket' value); n_obs = municipalities with data.",
        ],
        "improved": ["Same as faithful (a descriptive table)."],
    },
    "B": {
        "faithful": [
            "Regression of the indicator on a dummy (1 = OJ user, 0 = non-user); municipalities "
            "answering 'other' are left out; sample = 'all' means all users and non-users.",
            "Column 7: change from the first to the last year of the period regressed on the dummy "
            "(municipalities with both years only).",
            "Not run for elderly care (the audit had five non-users there).",
        ],
        "improved": ["Pooled column with year effects; all columns with clustered SEs."],
    },
    "C": {
        "faithful": [
            "One-way ANOVA; pooled = all municipality-years of the period as independent rows; "
            "estimate = eta squared (between-group share of the variance), statistic = F.",
            "kommungrupp = SKR's 2017 grouping (9 groups).",
        ],
        "improved": [
            "Pooled ANOVA on each municipality's mean over the period (one row per municipality), "
            "so repeated years do not inflate the degrees of freedom; last-year ANOVA as faithful.",
        ],
    },
    "D": {
        "faithful": [
            "Peer variable = mean of the *other* municipalities of the group with a value that year "
            "(leave-one-out), at t-1 or t-2.",
            "Binary peer flag = 1 when that leave-one-out mean is strictly above its 75th percentile; "
            "reference set = the leave-one-out means of all municipalities in that indicator and year "
            "(linear interpolation; ties at the percentile count as 0).",
            "Peer means and flags always use all municipalities; the 'oj_users' sample restricts only "
            "the rows of the regression to OJ users.",
            "Outcome 'level' = own value at t; 'improved' = 1 when the own value changed strictly for "
            "the better from t-k to t given the indicator's direction (unchanged = 0); indicators "
            "with unknown direction are skipped for 'improved'.",
            "Estimation years t = 2017-2020 for t-1 and 2018-2020 for t-2 (to 2019 for elderly "
            "unit/user surveys), pooled.",
            "Columns 5-8 ('oj_users') run in every area where the users file lists OJ users, elderly "
            "care included (the audit's five-non-users caveat concerns B only).",
        ],
        "improved": [
            "Also the continuous leave-one-out mean (term 'peer_mean'), besides the binary flag "
            "(term 'peer_top_quartile').",
            "Neighbour peers (a grouping given as 'neighbours'): the mean of the municipalities that "
            "share a land border (rook contiguity; weights as stated in 'neighbour_weights'; the five "
            "island municipalities have no neighbours and no peer value), improved mode only.",
        ],
    },
    "E": {
        "faithful": [
            "Outcome = development of staffing per place from t-k to t (municipal mean over units; "
            "with unit-level data also the lowest-staffed unit).",
            "Large-spread flag = (max - min) / mean over the municipality's units, 1 when strictly "
            "above its 75th percentile across municipalities in that year; needs unit-level data.",
            "Without unit-level data only the development of the municipal means is reported "
            "(mean change with a t test); min and max-min need unit-level (/oudata) data, which "
            "`ojpanel fetch` can obtain.",
            "Years t = 2017-2019 for t-1 and 2018-2019 for t-2.",
        ],
        "improved": ["Also the continuous spread (term 'spread'), besides the binary flag."],
    },
}

_DEFAULT_GROUPINGS = (("county", "county"), ("kommungrupp", "kommungrupp_2017"))


@dataclass
class Prepared:
    """The panel reduced to the audit's indicators, as numpy arrays with their labels."""

    values: np.ndarray  # (indicator, municipality, year)
    indicators: list[str]
    municipalities: np.ndarray
    years: np.ndarray
    spec: pd.DataFrame  # one row per indicator, same order as ``indicators``
    groupings: dict[str, np.ndarray]  # peer-group name -> label per municipality ("" = none)
    county: np.ndarray
    users: pd.DataFrame | None
    start_year: int
    end_year: int
    cluster: str
    quantile: float = 0.75
    messages: list[str] = field(default_factory=list)
    # neighbour peer definitions: name -> "neighbours" or a NeighbourGraph (no labels: every
    # municipality has its own peers), with the neighbour weights
    neighbours: dict[str, object] = field(default_factory=dict)
    neighbour_weights: str = "contiguity"

    def da(self) -> xr.DataArray:
        """The values as a DataArray (indicator, municipality, year)."""
        return xr.DataArray(
            self.values,
            dims=("indicator", "municipality", "year"),
            coords={"indicator": self.indicators, "municipality": self.municipalities, "year": self.years},
        )

    def cluster_labels(self) -> np.ndarray:
        """Cluster label per municipality for improved-mode SEs."""
        return self.county if self.cluster == "county" else self.municipalities

    def user_mask(self, area: str, status: str = "user") -> np.ndarray | None:
        """Boolean mask of municipalities with ``status`` in ``area`` (None without a users file)."""
        if self.users is None:
            return None
        sub = self.users[(self.users["area"] == area) & (self.users["status"] == status)]
        return np.isin(self.municipalities, sub["municipality"].to_numpy())


def _labels(values: np.ndarray) -> np.ndarray:
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append("")
        else:
            out.append(str(v))
    return np.array(out, dtype=object)


def prepare(
    panel: xr.Dataset,
    spec: pd.DataFrame,
    *,
    users: pd.DataFrame | None,
    groupings: Mapping[str, object] | None,
    start_year: int,
    end_year: int,
    cluster: str,
    neighbour_weights: str = "contiguity",
) -> Prepared:
    """Reduce a panel to the audit's indicators and years, with groupings as label arrays.

    A grouping given as ``"neighbours"`` (or a :class:`~ojpanel.data.geo.NeighbourGraph`) is a
    neighbour peer definition, kept apart from the label groupings (:attr:`Prepared.neighbours`).
    """
    from ojpanel.data.geo import WEIGHTS, NeighbourGraph

    if cluster not in {"county", "municipality"}:
        raise ParameterError(f"cluster must be 'county' or 'municipality', got {cluster!r}")
    if neighbour_weights not in WEIGHTS:
        raise ParameterError(f"neighbour_weights must be one of {WEIGHTS}; got {neighbour_weights!r}")
    da = panel["value"].sel(indicator=list(spec["indicator"])).transpose("indicator", "municipality", "year")
    years = np.asarray(da["year"].values).astype(int)
    keep = (years >= start_year) & (years <= end_year)
    da = da.isel(year=np.flatnonzero(keep))
    years = years[keep]
    vals = np.array(da.values, dtype=float)
    # Values after an indicator's last audit year (elderly surveys: 2019) are not used anywhere.
    for i, last in enumerate(spec["last_year"].to_numpy()):
        vals[i, :, years > int(last)] = np.nan
    munis = np.asarray(da["municipality"].values).astype(str)
    messages: list[str] = []
    groups: dict[str, np.ndarray] = {}
    for name, coord in _DEFAULT_GROUPINGS:
        if coord in panel.coords:
            groups[name] = _labels(panel[coord].sel(municipality=munis).values)
        else:
            messages.append(f"the panel has no '{coord}' coordinate: peer group '{name}' was skipped")
    neighbours: dict[str, object] = {}
    for name, g in (groupings or {}).items():
        if name in groups:
            raise ParameterError(f"grouping name '{name}' is reserved; choose another name")
        if isinstance(g, NeighbourGraph) or (isinstance(g, str) and g == NEIGHBOURS):
            neighbours[name] = g
            continue
        if isinstance(g, str):
            if g not in panel.coords or panel[g].dims != ("municipality",):
                raise DataError(f"grouping '{name}' names '{g}', which is not a municipality coordinate of the panel")
            groups[name] = _labels(panel[g].sel(municipality=munis).values)
            continue
        series = pd.Series(g) if not isinstance(g, pd.Series) else g
        series.index = series.index.astype(str)
        unknown = sorted(set(series.index) - set(munis))
        if unknown:
            raise DataError(
                f"grouping '{name}' has municipality code(s) not in the panel: {unknown[:10]}; "
                "use the panel's 4-digit codes"
            )
        lab = _labels(series.reindex(munis).to_numpy(dtype=object))
        n_missing = int((lab == "").sum())
        if n_missing:
            messages.append(f"grouping '{name}': {n_missing} municipality(ies) have no group and get no peer value")
        groups[name] = lab
    if "county" in panel.coords:
        county = _labels(panel["county"].sel(municipality=munis).values)
    else:
        county = np.array([m[:2] for m in munis], dtype=object)
        messages.append("the panel has no 'county' coordinate: clusters use the first two digits of the code")
    return Prepared(
        values=vals,
        indicators=list(spec["indicator"]),
        municipalities=munis,
        years=years,
        spec=spec.reset_index(drop=True),
        groupings=groups,
        county=county,
        users=users,
        start_year=start_year,
        end_year=end_year,
        cluster=cluster,
        messages=messages,
        neighbours=neighbours,
        neighbour_weights=neighbour_weights,
    )


def _row(**kw) -> dict:
    base = dict.fromkeys(COLUMNS, "")
    for k in ("estimate", "std_error", "statistic", "p_value"):
        base[k] = np.nan
    base["lag"] = pd.NA
    base["n_obs"] = pd.NA
    base["n_municipalities"] = pd.NA
    base.update(kw)
    return base


def _fit_row(fit: SlopeFit, n_mun: int, **kw) -> dict:
    return _row(
        estimate=fit.estimate,
        std_error=fit.std_error,
        statistic=fit.statistic,
        p_value=fit.p_value,
        n_obs=fit.n_obs,
        n_municipalities=n_mun,
        stars=regression_stars(fit.estimate, fit.p_value),
        **kw,
    )


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("lag", "n_obs", "n_municipalities"):
        df[c] = pd.array(df[c], dtype="Int64")
    for c in ("estimate", "std_error", "statistic", "p_value"):
        df[c] = df[c].astype(float)
    return df


def _meta(prep: Prepared, i: int) -> dict:
    s = prep.spec.iloc[i]
    return {"area": s["area"], "indicator": s["indicator"], "indicator_group": s["indicator_group"]}


def _year_span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def _stack(arrays: list[np.ndarray], munis: np.ndarray, years: np.ndarray, mmask: np.ndarray, ymask: np.ndarray):
    """Rows (municipality × year) where every array is non-missing, restricted by the masks."""
    sub = [a[np.ix_(mmask, ymask)] for a in arrays]
    ok = np.ones(sub[0].shape, dtype=bool)
    for a in sub:
        ok &= ~np.isnan(a)
    mi, yi = np.nonzero(ok)
    m_idx = np.flatnonzero(mmask)[mi]
    y_lab = years[ymask][yi]
    return [a[ok] for a in sub], m_idx, y_lab


# ----------------------------------------------------------------------------------------- A
def trend(prep: Prepared, mode: str) -> pd.DataFrame:
    """A: national average by year (unweighted mean over municipalities with data)."""
    rows = []
    for i in range(len(prep.indicators)):
        for j, year in enumerate(prep.years):
            v = prep.values[i, :, j]
            v = v[~np.isnan(v)]
            if not len(v):
                continue
            rows.append(
                _row(
                    analysis="A",
                    **_meta(prep, i),
                    outcome="level",
                    sample="all",
                    period=str(int(year)),
                    term="national_mean",
                    estimate=float(v.mean()),
                    n_obs=len(v),
                    n_municipalities=len(v),
                    mode=mode,
                )
            )
    return _frame(rows)


# ----------------------------------------------------------------------------------------- B
def users_vs_nonusers(prep: Prepared, mode: str) -> tuple[pd.DataFrame, list[str]]:
    """B: regressions of the indicator on an OJ-user dummy (pooled, per year, change)."""
    notes: list[str] = []
    rows: list[dict] = []
    if prep.users is None:
        return _frame(rows), ["B skipped: no OJ-users file was given (oj_users=...); the per-municipality answers of SKR's 2019 survey are not public"]
    cl_all = prep.cluster_labels()
    for i, s in prep.spec.iterrows():
        if s["area"] == "äldreomsorg" or s["role"] == "staffing":
            continue
        users = prep.user_mask(s["area"], "user")
        non = prep.user_mask(s["area"], "non_user")
        if users.sum() < 2 or non.sum() < 2:
            notes.append(
                f"B skipped for {s['indicator']} ({s['area']}): needs at least 2 users and 2 non-users "
                f"in the OJ-users file, found {int(users.sum())} and {int(non.sum())}"
            )
            continue
        mmask = users | non
        dummy = users.astype(float)
        Y = prep.values[i]
        last = int(s["last_year"])
        ymask = (prep.years >= prep.start_year) & (prep.years <= last)
        present = prep.years[ymask]
        if not len(present):
            continue
        base = dict(analysis="B", **_meta(prep, i), sample="all", term="oj_user", mode=mode)
        X = np.broadcast_to(dummy[:, None], Y.shape)
        imp = mode == "improved"
        # Column 1: pooled over the period.
        (y, x), m_idx, yl = _stack([Y, X], prep.municipalities, prep.years, mmask, ymask)
        try:
            fit = fit_slope(y, x, year=yl if imp else None, cluster=cl_all[m_idx] if imp else None)
            rows.append(_fit_row(fit, len(set(m_idx)), outcome="level", period=_year_span(present[0], present[-1]), **base))
        except ModelError as exc:
            notes.append(f"B pooled {s['indicator']}: not estimable ({exc})")
        # Columns 2-6: one regression per year.
        for j in np.flatnonzero(ymask):
            yv = Y[:, j]
            ok = mmask & ~np.isnan(yv)
            try:
                fit = fit_slope(yv[ok], dummy[ok], cluster=cl_all[ok] if imp else None)
                rows.append(_fit_row(fit, int(ok.sum()), outcome="level", period=str(int(prep.years[j])), **base))
            except ModelError as exc:
                notes.append(f"B {s['indicator']} {int(prep.years[j])}: not estimable ({exc})")
        # Column 7: change from the first to the last year.
        j0, j1 = np.flatnonzero(ymask)[[0, -1]]
        if j1 > j0:
            d = Y[:, j1] - Y[:, j0]
            ok = mmask & ~np.isnan(d)
            try:
                fit = fit_slope(d[ok], dummy[ok], cluster=cl_all[ok] if imp else None)
                rows.append(
                    _fit_row(
                        fit, int(ok.sum()), outcome="change",
                        period=f"{int(prep.years[j0])}-{int(prep.years[j1])}", **base,
                    )
                )
            except ModelError as exc:
                notes.append(f"B change {s['indicator']}: not estimable ({exc})")
    return _frame(rows), notes


# ----------------------------------------------------------------------------------------- C
def group_anova(prep: Prepared, mode: str) -> tuple[pd.DataFrame, list[str]]:
    """C: one-way ANOVA on each peer grouping, pooled over the period and for the last year."""
    rows: list[dict] = []
    notes: list[str] = []
    for i, s in prep.spec.iterrows():
        if s["role"] == "staffing":
            continue
        Y = prep.values[i]
        last = int(s["last_year"])
        ymask = (prep.years >= prep.start_year) & (prep.years <= last)
        if not ymask.any():
            continue
        present = prep.years[ymask]
        for gname, labels in prep.groupings.items():
            has_group = labels != ""
            cells = []
            if mode == "improved":
                with np.errstate(invalid="ignore"):
                    sub = Y[:, ymask]
                    cnt = (~np.isnan(sub)).sum(1)
                    mm = np.where(cnt > 0, np.nansum(sub, 1) / np.maximum(cnt, 1), np.nan)
                ok = has_group & ~np.isnan(mm)
                cells.append((_year_span(present[0], present[-1]), mm[ok], labels[ok], ok.sum()))
            else:
                (y,), m_idx, _ = _stack([Y], prep.municipalities, prep.years, has_group, ymask)
                cells.append((_year_span(present[0], present[-1]), y, labels[m_idx], len(set(m_idx))))
            jl = np.flatnonzero(prep.years == present[-1])[0]
            yv = Y[:, jl]
            ok = has_group & ~np.isnan(yv)
            cells.append((str(int(present[-1])), yv[ok], labels[ok], ok.sum()))
            for period, y, g, n_mun in cells:
                try:
                    a = one_way_anova(y, g)
                except ModelError as exc:
                    notes.append(f"C {s['indicator']} by {gname} ({period}): not estimable ({exc})")
                    continue
                rows.append(
                    _row(
                        analysis="C", **_meta(prep, i), peer_group=gname, outcome="level", sample="all",
                        period=period, term="between_group", estimate=a.eta_squared, statistic=a.f_value,
                        p_value=a.p_value, n_obs=a.n_obs, n_municipalities=int(n_mun),
                        stars=anova_stars(a.p_value), mode=mode,
                    )
                )
    for gname in prep.neighbours:
        notes.append(f"C: '{gname}' (neighbour peers) is not a partition of the municipalities (every "
                     "municipality has its own neighbours), so it has no between-group ANOVA")
    return _frame(rows), notes


# ----------------------------------------------------------------------------------------- D
def _samples(prep: Prepared, area: str) -> list[tuple[str, np.ndarray]]:
    out = [("all", np.ones(len(prep.municipalities), dtype=bool))]
    users = prep.user_mask(area, "user")
    if users is not None and users.any():
        out.append(("oj_users", users))
    return out


def peer_effects(prep: Prepared, mode: str) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """D: own level / improvement at t on the peers' (leave-one-out) top-quartile flag at t-k.

    Returns
    -------
    (pandas.DataFrame, list of str, pandas.DataFrame)
        Tidy rows, notes on skipped cells, and the design: one row per indicator, peer group,
        lag, municipality and year with ``level``, ``improved``, ``peer_mean`` and
        ``peer_top_quartile`` (the peer variables already lagged to t), so every cell can be
        audited.
    """
    rows: list[dict] = []
    notes: list[str] = []
    designs: list[pd.DataFrame] = []
    idx = [i for i, r in prep.spec.iterrows() if r["role"] != "staffing"]
    if not idx:
        return _frame(rows), notes, pd.DataFrame(columns=DESIGN_COLUMNS)
    da = prep.da().isel(indicator=idx)
    spec = prep.spec.iloc[idx].reset_index(drop=True)
    direction = xr.DataArray(spec["direction"].to_numpy(), dims="indicator", coords={"indicator": da["indicator"]})
    for i in np.flatnonzero(spec["direction"].to_numpy() == 0):
        notes.append(f"D: {spec['indicator'][i]} has unknown direction (0); the 'improved' outcome was skipped")
    imp = mode == "improved"
    cl_all = prep.cluster_labels()
    if prep.users is None:
        notes.append("D: no OJ-users file, so columns 5-8 (OJ users only) were not run")
    peer_groups: list[tuple[str, object]] = [
        (g, xr.DataArray(labels, dims="municipality", coords={"municipality": prep.municipalities}))
        for g, labels in prep.groupings.items()
    ]
    if prep.neighbours and not imp:
        notes.append(f"D: neighbour peers ({', '.join(prep.neighbours)}) are not part of the audit's "
                     "method; they run in improved mode")
    elif imp:
        peer_groups += list(prep.neighbours.items())
    for gname, group in peer_groups:
        for k in (1, 2):
            # the peer variables of the peer design: the lagged leave-one-out mean and its flag
            peer = PeerDesign(group=group, lag=k, shocks=None, quantile=prep.quantile,
                              weights=prep.neighbour_weights)
            loo_k = peer.peer_variable(da).values
            flag_k = peer.but(peer="binary").peer_variable(da).values
            imp_k = improved(da, k, direction).values
            designs.append(_design(prep, spec, gname, k, da.values, imp_k, loo_k, flag_k))
            for ii, s in spec.iterrows():
                last = int(s["last_year"])
                first_t = prep.start_year + k
                ymask = (prep.years >= first_t) & (prep.years <= last)
                if not ymask.any():
                    notes.append(f"D {s['indicator']} t-{k}: no estimation years ({first_t}-{last})")
                    continue
                period = _year_span(int(prep.years[ymask].min()), int(prep.years[ymask].max()))
                outcomes = [("level", da.values[ii])]
                if s["direction"] != 0:
                    outcomes.append(("improved", imp_k[ii]))
                terms = [("peer_top_quartile", flag_k[ii])]
                if imp:
                    terms.append(("peer_mean", loo_k[ii]))
                for sample, smask in _samples(prep, s["area"]):
                    for oname, Yo in outcomes:
                        for tname, Xr in terms:
                            (y, x), m_idx, yl = _stack([Yo, Xr], prep.municipalities, prep.years, smask, ymask)
                            base = dict(
                                analysis="D", area=s["area"], indicator=s["indicator"],
                                indicator_group=s["indicator_group"], peer_group=gname, lag=k,
                                outcome=oname, sample=sample, period=period, term=tname, mode=mode,
                            )
                            try:
                                fit = fit_slope(
                                    y, x, year=yl if imp else None, cluster=cl_all[m_idx] if imp else None
                                )
                            except ModelError as exc:
                                notes.append(
                                    f"D {s['indicator']} {gname} t-{k} {oname} {sample} {tname}: not estimable ({exc})"
                                )
                                rows.append(_row(n_obs=len(y), n_municipalities=len(set(m_idx)), **base))
                                continue
                            rows.append(_fit_row(fit, len(set(m_idx)), **base))
    return _frame(rows), notes, pd.concat(designs, ignore_index=True)


#: Columns of the D design frame.
DESIGN_COLUMNS = [
    "indicator", "area", "peer_group", "lag", "municipality", "year",
    "level", "improved", "peer_mean", "peer_top_quartile",
]


def _design(prep, spec, gname, k, level, imp_k, loo_k, flag_k) -> pd.DataFrame:
    n_i, n_m, n_t = level.shape
    return pd.DataFrame(
        {
            "indicator": np.repeat(spec["indicator"].to_numpy(), n_m * n_t),
            "area": np.repeat(spec["area"].to_numpy(), n_m * n_t),
            "peer_group": gname,
            "lag": k,
            "municipality": np.tile(np.repeat(prep.municipalities, n_t), n_i),
            "year": np.tile(prep.years, n_i * n_m),
            "level": level.ravel(),
            "improved": imp_k.ravel(),
            "peer_mean": loo_k.ravel(),
            "peer_top_quartile": flag_k.ravel(),
        },
        columns=DESIGN_COLUMNS,
    )


# ----------------------------------------------------------------------------------------- E
def unit_staffing_summary(units: pd.DataFrame) -> dict[str, xr.DataArray]:
    """Municipal mean, minimum and standardised spread ((max - min) / mean) from unit-level data.

    Parameters
    ----------
    units
        Columns ``indicator, municipality, unit, year, value`` (staffing per place per unit).

    Returns
    -------
    dict
        ``mean``, ``min`` and ``spread`` DataArrays with dims (indicator, municipality, year).
    """
    need = {"indicator", "municipality", "unit", "year", "value"}
    if not need <= set(units.columns):
        raise DataError(f"unit-level staffing data need columns {sorted(need)}; got {list(units.columns)}")
    u = units.copy()
    u["municipality"] = u["municipality"].astype(str)
    u["indicator"] = u["indicator"].astype(str)
    u["year"] = u["year"].astype(int)
    dup = u.duplicated(["indicator", "municipality", "unit", "year"])
    if dup.any():
        raise DataError(f"unit-level staffing data have {int(dup.sum())} duplicate (indicator, municipality, unit, year) rows")
    u = u.dropna(subset=["value"])
    g = u.groupby(["indicator", "municipality", "year"])["value"].agg(["mean", "min", "max"])
    with np.errstate(invalid="ignore", divide="ignore"):
        g["spread"] = (g["max"] - g["min"]) / g["mean"]
    ds = g[["mean", "min", "spread"]].to_xarray()
    return {k: ds[k].transpose("indicator", "municipality", "year") for k in ("mean", "min", "spread")}


def staffing(prep: Prepared, mode: str, units: pd.DataFrame | None) -> tuple[pd.DataFrame, list[str]]:
    """E: development of staffing per place over 1-2 years vs a large between-unit spread."""
    rows: list[dict] = []
    notes: list[str] = []
    idx = [i for i, r in prep.spec.iterrows() if r["role"] == "staffing"]
    if not idx:
        return _frame(rows), ["E skipped: the panel has none of the staffing-per-place indicators (KPIs U23489, U23490, U23493, U23494 or their harmonised ao_bemanning_* variables)"]
    imp = mode == "improved"
    cl_all = prep.cluster_labels()
    summary = None
    notes.append(
        "E: the dementia-housing-only version (second half of tables 6-7) has no Kolada KPI and was not run"
    )
    if units is None:
        notes.append(
            "E: only municipal means are available, so the mean-development rows were run; the "
            "lowest-staffed-unit (min) outcome and the max-min spread flag need unit-level (/oudata) "
            "data, which `ojpanel fetch` can obtain (pass them as staffing_units=...)"
        )
    else:
        summary = unit_staffing_summary(units)
    for i in idx:
        s = prep.spec.iloc[i]
        last = int(s["last_year"])
        unit_id = s["indicator"]
        if summary is not None:
            have = set(summary["mean"]["indicator"].values)
            # Unit-level files use Kolada ids; a harmonised panel names the variable instead.
            ids = [s["indicator"], *str(s.get("kpis", "")).split(",")]
            unit_id = next((i for i in ids if i in have), None)
            if unit_id is None:
                notes.append(f"E {s['indicator']}: not in the unit-level staffing data; skipped")
                continue
        for k in (1, 2):
            first_t = prep.start_year + k
            ymask = (prep.years >= first_t) & (prep.years <= last)
            if not ymask.any():
                continue
            period = _year_span(int(prep.years[ymask].min()), int(prep.years[ymask].max()))
            for sample, smask in _samples(prep, s["area"]):
                base = dict(
                    analysis="E", **_meta(prep, i), lag=k, sample=sample, period=period, mode=mode,
                )
                if summary is None:
                    Y = prep.values[i]
                    D = Y - _lag_np(Y, prep.years, k)
                    (d,), m_idx, _ = _stack([D], prep.municipalities, prep.years, smask, ymask)
                    try:
                        fit = mean_test(d, cluster=cl_all[m_idx] if imp else None)
                    except ModelError as exc:
                        notes.append(f"E {s['indicator']} t-{k} {sample}: not estimable ({exc})")
                        continue
                    rows.append(_fit_row(fit, len(set(m_idx)), outcome="mean_change", term="mean_change", **base))
                    continue
                parts = {
                    k2: summary[k2].sel(indicator=unit_id).reindex(
                        municipality=prep.municipalities, year=prep.years
                    )
                    for k2 in ("mean", "min", "spread")
                }
                spread_k = lagged(parts["spread"], k)
                flag_k = lagged(top_quartile_flag(parts["spread"], prep.quantile), k)
                terms = [("large_spread", flag_k.values)]
                if imp:
                    terms.append(("spread", spread_k.values))
                for version in ("mean", "min"):
                    V = parts[version].values
                    D = V - _lag_np(V, prep.years, k)
                    for tname, Xr in terms:
                        (y, x), m_idx, yl = _stack([D, Xr], prep.municipalities, prep.years, smask, ymask)
                        try:
                            fit = fit_slope(y, x, year=yl if imp else None, cluster=cl_all[m_idx] if imp else None)
                        except ModelError as exc:
                            notes.append(f"E {s['indicator']} {version} t-{k} {sample} {tname}: not estimable ({exc})")
                            continue
                        rows.append(_fit_row(fit, len(set(m_idx)), outcome=f"{version}_change", term=tname, **base))
    return _frame(rows), notes


def _lag_np(Y: np.ndarray, years: np.ndarray, k: int) -> np.ndarray:
    """Value at year t-k placed at t (by year label; NaN where t-k is absent)."""
    pos = {int(y): j for j, y in enumerate(years)}
    out = np.full_like(Y, np.nan, dtype=float)
    for j, y in enumerate(years):
        src = pos.get(int(y) - k)
        if src is not None:
            out[:, j] = Y[:, src]
    return out
