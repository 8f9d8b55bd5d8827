"""Municipality-level staggered adoption: heterogeneity-robust DiD estimators as a design object.

Municipalities adopt something — a routine (every unit reports it), a red flag, an OJ-use status —
in different years, and we ask what happens to an outcome afterwards. With effects that differ
by adoption cohort or grow with time since adoption, the two-way FE regression compares late
adopters with early ones already treated and is biased (Goodman-Bacon 2021; de Chaisemartin &
D'Haultfœuille 2020). :class:`StaggeredAdoption` wraps the estimators built for it, taken from
maintained packages:

``estimator="callaway_santanna"``
    Group-time ATTs ATT(g, t) (Callaway & Sant'Anna 2021, outcome-regression form without
    covariates) against never-treated or not-yet-treated municipalities, with an anticipation
    window, through :class:`diff_diff.CallawaySantAnna` (base period "universal": every
    event time is measured against ``e = -1 - anticipation``); event-time aggregation with its
    influence-function covariance. The tests check it against ``moderndid.att_gt``/``aggte``
    and ``csdid`` on shared data.
``estimator="imputation"``
    The imputation estimator (Borusyak, Jaravel & Spiess 2024): unit and period effects fitted on
    untreated cells only (never and not-yet treated), treated cells' imputed effects averaged by
    event time, BJS's conservative clustered SEs and their lead (pre-trend) test — through
    :class:`diff_diff.ImputationDiD`. The tests check the points against pyfixest's
    :func:`pyfixest.did2s` (Gardner's two-stage form, numerically the same estimator) and a
    hand-written imputation with :func:`pyfixest.feols`. diff-diff reports no joint covariance
    of the imputation event study, so its sup-t band uses the diagonal (conservative when the
    estimates correlate positively, as they do) and its Rambachan–Roth table is computed on the
    Callaway–Sant'Anna event study of the same design (said in the result).

Both report, for every event study: pre-period placebo estimates with a joint Wald test, sup-t
simultaneous 95 % bands (Montiel Olea & Plagborg-Møller 2019: the ``1 - α`` quantile of
``max_e |Z_e| / se_e`` with ``Z ~ N(0, V)``, seeded), the MDE of every estimate, and
Rambachan–Roth bounds with breakdown values (:mod:`.pretrends`).

Time is the *position* of a period in the panel (survey waves): the embedded LSS unit survey
has waves 2018, 2019 and 2022, so an event time counts waves, not calendar years; ``period_years``
in the result maps them back.

Adoption is taken as absorbing: the cohort is the first period of adoption, later lapses stay
"treated" (intention-to-treat reading); :attr:`StaggeredResult.accounting` counts them.
Municipalities already adopted in the first period (no pre-period) are left out, and listed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from ojpanel.core.results import Result
from ojpanel.designs.steering._common import mde, result_html, tidy
from ojpanel.errors import DataError, ParameterError

__all__ = ["StaggeredAdoption", "StaggeredResult", "adoption_cohorts", "sup_t_critical_value", "ESTIMATORS",
           "CONTROL_GROUPS", "ROUTINE_OUTCOMES", "routine_adoption", "adoption_table"]

ESTIMATORS = ("callaway_santanna", "imputation")
CONTROL_GROUPS = ("never_treated", "not_yet_treated")

#: LSS unit-survey routines (every unit has it = adopted) and the user-level share they should
#: move: units with current implementation plans → users with a current plan, and likewise for
#: participation and individual goals, in group homes (bostad med särskild service) and daily
#: activities (daglig verksamhet). Embedded waves: 2018, 2019, 2022.
ROUTINE_OUTCOMES = {
    "U28112": "U28129", "U28113": "U28130", "U28116": "U28131",
    "U28132": "U28143", "U28133": "U28144", "U28134": "U28145",
}


def sup_t_critical_value(vcov: np.ndarray, *, alpha: float = 0.05, n_draws: int = 20_000, seed: int = 0) -> float:
    """``1 - alpha`` quantile of ``max_k |Z_k| / sd_k`` for ``Z ~ N(0, vcov)`` (sup-t band critical value)."""
    V = np.asarray(vcov, dtype=float)
    sd = np.sqrt(np.diag(V))
    if V.size == 0 or not np.all(sd > 0):
        return float("nan")
    C = V / np.outer(sd, sd)
    w, U = np.linalg.eigh(C)
    L = U * np.sqrt(np.clip(w, 0, None))
    Z = np.random.default_rng(seed).standard_normal((n_draws, len(sd))) @ L.T
    return float(np.quantile(np.abs(Z).max(axis=1), 1 - alpha))


def adoption_cohorts(
    ds: xr.Dataset,
    treatment: str,
    *,
    threshold: float | None = None,
) -> pd.DataFrame:
    """First period of adoption per municipality from a checklist item (or a share dichotomised).

    Parameters
    ----------
    ds
        OJ panel holding ``treatment`` as an indicator.
    treatment
        Indicator id. Binary/ordinal items: adopted = top level; shares: ``value >= threshold``
        (default 100: every unit has the routine).
    threshold
        Cut for share indicators (ignored for binary/ordinal).

    Returns
    -------
    pandas.DataFrame
        ``municipality, cohort_year`` (first adoption; NaN never adopted), ``role``
        (``adopter``/``never``/``always``/``no data``), ``n_periods_observed``, ``lapsed``
        (adopted, then not in a later observed period), ``reason``.
    """
    if treatment not in set(np.asarray(ds["indicator"].values).astype(str)):
        raise DataError(f"treatment indicator {treatment!r} is not in the panel")
    da = ds["value"].sel(indicator=treatment).transpose("municipality", "year")
    scale = str(ds["scale"].sel(indicator=treatment).values) if "scale" in ds.coords else "binary"
    v = da.values
    years = np.asarray(da["year"].values).astype(int)
    if scale in ("binary", "ordinal"):
        top = 2.0 if scale == "ordinal" else 1.0
        yes = np.where(np.isnan(v), np.nan, (v == top).astype(float))
        rule = f"{treatment} at its top level ({scale})"
    elif scale == "share":
        cut = 100.0 if threshold is None else float(threshold)
        yes = np.where(np.isnan(v), np.nan, (v >= cut).astype(float))
        rule = f"{treatment} >= {cut:g} % (share dichotomised)"
    else:
        raise DataError(f"{treatment} has scale {scale!r}; adoption needs a binary/ordinal item or a share")
    rows = []
    for i, m in enumerate(np.asarray(da["municipality"].values).astype(str)):
        obs = np.flatnonzero(np.isfinite(yes[i]))
        if obs.size == 0:
            rows.append({"municipality": m, "cohort_year": np.nan, "role": "no data", "n_periods_observed": 0,
                         "lapsed": False, "reason": "no answer in any period"})
            continue
        hit = obs[yes[i, obs] == 1]
        if hit.size == 0:
            role, cy, why = "never", np.nan, "never adopted in the observed periods"
            lapsed = False
        else:
            k = int(hit[0])
            cy = int(years[k])
            lapsed = bool(np.any(yes[i, obs[obs > k]] == 0))
            if k == int(obs[0]):
                role, why = "always", "adopted in its first observed period: no pre-period to compare with"
            else:
                role, why = "adopter", "adopted after a non-adopting period"
        rows.append({"municipality": m, "cohort_year": cy, "role": role, "n_periods_observed": int(obs.size),
                     "lapsed": lapsed, "reason": why})
    out = pd.DataFrame(rows)
    out.attrs["rule"] = rule
    return out


class StaggeredResult(Result):
    """Staggered-adoption estimates (read-only): group-time ATTs, the event study, pre-trends,
    sensitivity, accounting; ``to_frame``, ``summary``, ``_repr_html_`` and ``plot``."""

    title = "Staggered adoption"

    def __init__(self, *, estimator: str, group_time: pd.DataFrame, event: pd.DataFrame, vcov: pd.DataFrame,
                 overall: dict[str, float], pretrend: dict[str, Any], sensitivity: pd.DataFrame | None,
                 breakdown: dict[str, float], accounting: pd.DataFrame, settings: dict[str, Any]):
        self._estimator = estimator
        self._gt = group_time
        self._event = event
        self._vcov = vcov
        self._overall = overall
        self._pretrend = pretrend
        self._sens = sensitivity
        self._breakdown = breakdown
        self._acc = accounting
        self._settings = settings

    @property
    def estimator(self) -> str:
        """``callaway_santanna`` or ``imputation``."""
        return self._estimator

    @property
    def group_time(self) -> pd.DataFrame:
        """ATT(g, t): ``cohort, period, cohort_year, year, event_time, estimate, std_error`` (CS only)."""
        return self._gt.copy()

    @property
    def event(self) -> pd.DataFrame:
        """Per event time: ``estimate, std_error, lower, upper`` (pointwise), ``band_lower,
        band_upper`` (sup-t simultaneous), ``p_value, mde, is_reference, n_cohorts``."""
        return self._event.copy()

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the event-time estimates (indexed by event time)."""
        return self._vcov.copy()

    @property
    def overall(self) -> dict[str, float]:
        """Average post-period effect (mean over post event times) with SE, p-value and MDE."""
        return dict(self._overall)

    @property
    def pretrend(self) -> dict[str, Any]:
        """Pre-period placebo estimates and their joint Wald test (:func:`.pretrends.pretrend_test`)."""
        return dict(self._pretrend)

    @property
    def sensitivity(self) -> pd.DataFrame | None:
        """Rambachan–Roth table (:func:`.pretrends.honest_sensitivity`); None without pre-periods."""
        return None if self._sens is None else self._sens.copy()

    @property
    def breakdown(self) -> dict[str, float]:
        """Breakdown values (:func:`.pretrends.breakdown_values`)."""
        return dict(self._breakdown)

    @property
    def accounting(self) -> pd.DataFrame:
        """Every municipality: cohort, role, used or not and why."""
        return self._acc.copy()

    @property
    def settings(self) -> dict[str, Any]:
        """Choices: estimator, control group, anticipation, outcome/treatment, time mapping."""
        return dict(self._settings)

    def to_frame(self, **meta: Any) -> pd.DataFrame:
        """Tidy rows (replication schema + ``mde``, ``df``): one per non-reference event time and the overall."""
        rows = []
        for r in self._event[~self._event["is_reference"]].itertuples(index=False):
            rows.append({"term": f"event_time_{int(r.event_time)}", "estimate": r.estimate, "std_error": r.std_error,
                         "statistic": r.estimate / r.std_error if r.std_error > 0 else np.nan, "p_value": r.p_value,
                         "lag": int(r.event_time), "mde": r.mde, "n_municipalities": self._settings["n_used"],
                         "band_lower": r.band_lower, "band_upper": r.band_upper})
        o = self._overall
        rows.append({"term": "overall_post", "estimate": o["estimate"], "std_error": o["std_error"],
                     "statistic": o["statistic"], "p_value": o["p_value"], "mde": o["mde"],
                     "n_municipalities": self._settings["n_used"]})
        meta.setdefault("analysis", f"steering_adoption_{self._estimator}")
        meta.setdefault("outcome", self._settings["outcome"])
        meta.setdefault("sample", f"{self._settings['control_group']}; anticipation {self._settings['anticipation']}")
        meta.setdefault("indicator", self._settings.get("treatment"))
        out = tidy(rows, **meta)
        out["pretrend_p"] = self._pretrend.get("p_value")
        for k, v in self._breakdown.items():
            out[f"breakdown_{k}"] = v
        return out

    def _notes(self) -> list[str]:
        s, o, p = self._settings, self._overall, self._pretrend
        acc = self._acc["role"].value_counts()
        notes = [
            f"Outcome {s['outcome_label']}; adoption: {s['adoption_rule']}",
            f"Estimator {self._estimator} ({s['package']}); controls: {s['control_group']}; "
            f"anticipation {s['anticipation']} period(s); time = {s['time_label']}",
            f"Average post effect {o['estimate']:.4f} (SE {o['std_error']:.4f}, p {o['p_value']:.3f}, MDE {o['mde']:.4f})",
            "Pre-trends: " + (f"Wald chi2({p['df']}) = {p['statistic']:.2f}, p = {p['p_value']:.3f} over placebo "
                              f"event times {p['periods']}" if p["df"] else "no pre-period placebo estimate"),
            f"Sup-t critical value {s['sup_t_crit']:.3f} (pointwise {stats.norm.ppf(0.975):.3f})",
        ]
        if self._sens is not None:
            notes.append("Rambachan–Roth breakdown value: relative magnitudes Mbar = "
                         f"{self._breakdown.get('relative_magnitude')}, smoothness M = {self._breakdown.get('smoothness')}"
                         " (nan: the ordinary CI already contains 0; inf: not reached on the grid)")
        else:
            notes.append(f"Rambachan–Roth: {s.get('sensitivity_note', 'not computed')}")
        notes.append("Municipalities: " + ", ".join(f"{k} {int(v)}" for k, v in acc.items())
                     + f"; used {s['n_used']}")
        if s.get("synthetic"):
            notes.insert(0, "SYNTHETIC data (simulated)")
        return notes

    @property
    def summary(self) -> str:
        """Plain-text summary: event study, pre-trend test, sensitivity, accounting."""
        cols = ["event_time", "estimate", "std_error", "lower", "upper", "band_lower", "band_upper", "p_value", "mde"]
        parts = [f"Staggered adoption ({self._estimator})", *self._notes(),
                 self._event[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}")]
        if self._sens is not None:
            parts.append(self._sens.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
        return "\n".join(parts)

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        cols = ["event_time", "estimate", "std_error", "lower", "upper", "band_lower", "band_upper", "p_value", "mde"]
        html = result_html(f"Staggered adoption — {self._estimator}", self._event[cols], self._notes())
        if self._sens is not None:
            html += result_html("Rambachan–Roth sensitivity (average post effect)",
                                self._sens[["restriction", "M", "lb", "ub", "ci_lower", "ci_upper", "excludes_zero"]])
        return html

    def plot(self, **kwargs: Any):
        """Event-study figure with pre-trend estimates, sup-t bands and Rambachan–Roth bands
        (:func:`ojpanel.designs.steering.figures.plot_staggered_event_study`)."""
        from ojpanel.designs.steering.figures import plot_staggered_event_study

        return plot_staggered_event_study(self, **kwargs)


class StaggeredAdoption:
    """A staggered-adoption design: municipalities, periods, an outcome and each one's adoption cohort.

    Parameters
    ----------
    frame
        Long rows with ``unit``, ``time``, ``outcome`` and ``cohort`` (first adoption period as
        a *year*; NaN/0 never adopted). Rows with a missing outcome are dropped and counted.
    outcome, unit, time, cohort
        Column names.
    accounting
        Per-unit table from :func:`adoption_cohorts` (roles ``always``/``no data`` are left out
        with their reason); default: every unit in ``frame`` as given.
    labels
        ``outcome_label`` (indicator name and unit), ``adoption_rule``, ``treatment``,
        ``synthetic`` (bool).
    """

    def __init__(self, frame: pd.DataFrame, *, outcome: str = "y", unit: str = "municipality", time: str = "year",
                 cohort: str = "cohort_year", accounting: pd.DataFrame | None = None,
                 labels: Mapping[str, Any] | None = None):
        need = {outcome, unit, time, cohort}
        if not need <= set(frame.columns):
            raise DataError(f"the staggered design needs columns {sorted(need)}; got {list(frame.columns)}")
        self._labels = dict(labels or {})
        f = frame[[unit, time, outcome, cohort]].copy()
        f.columns = ["unit", "year", "y", "cohort_year"]
        f["unit"] = f["unit"].astype(str)
        f["year"] = f["year"].astype(int)
        f["cohort_year"] = pd.to_numeric(f["cohort_year"], errors="coerce").replace(0, np.nan)
        if f.groupby("unit")["cohort_year"].nunique(dropna=False).max() > 1:
            raise DataError("each unit needs one cohort (first adoption year) on all its rows")
        if accounting is None:
            accounting = (f.groupby("unit", as_index=False)["cohort_year"].first()
                          .rename(columns={"unit": "municipality"}))
            accounting["role"] = np.where(accounting["cohort_year"].notna(), "adopter", "never")
            accounting["reason"] = "as given"
        self._acc = accounting.copy()
        keep_units = set(self._acc.loc[self._acc["role"].isin(["adopter", "never"]), "municipality"].astype(str))
        f = f[f["unit"].isin(keep_units)]
        n_missing = f.groupby("unit")["y"].apply(lambda s: int(s.isna().sum()))
        self._acc["outcome_missing_periods"] = self._acc["municipality"].astype(str).map(n_missing).fillna(0).astype(int)
        self._frame = f[f["y"].notna()].copy()
        years = sorted(self._frame["year"].unique())
        if len(years) < 2:
            raise DataError("the staggered design needs at least two periods with outcome values")
        self._years = [int(y) for y in years]

    @classmethod
    def from_panel(cls, ds: xr.Dataset, *, treatment: str, outcome: str, threshold: float | None = None,
                   years: list[int] | None = None) -> StaggeredAdoption:
        """Adoption of indicator ``treatment`` (:func:`adoption_cohorts`) and indicator ``outcome``.

        Both from the same OJ panel; labels use the indicators' titles, never ids alone.
        """
        if outcome not in set(np.asarray(ds["indicator"].values).astype(str)):
            raise DataError(f"outcome indicator {outcome!r} is not in the panel")
        sub = ds if years is None else ds.sel(year=[y for y in ds["year"].values if int(y) in set(years)])
        acc = adoption_cohorts(sub, treatment, threshold=threshold)
        y = sub["value"].sel(indicator=outcome).transpose("municipality", "year")
        f = y.to_dataframe(name="y").reset_index()[["municipality", "year", "y"]]
        f["municipality"] = f["municipality"].astype(str)
        f = f.merge(acc[["municipality", "cohort_year"]], on="municipality", how="left")

        def title(i: str) -> str:
            t = str(sub["title"].sel(indicator=i).values) if "title" in sub.coords else i
            return t

        labels = {"outcome": outcome, "outcome_label": title(outcome), "treatment": treatment,
                  "treatment_label": title(treatment), "adoption_rule": acc.attrs.get("rule", ""),
                  "synthetic": bool(sub.attrs.get("synthetic", 0))}
        return cls(f, outcome="y", unit="municipality", time="year", cohort="cohort_year", accounting=acc,
                   labels=labels)

    @property
    def frame(self) -> pd.DataFrame:
        """The estimation rows: ``unit, year, y, cohort_year`` (outcome observed)."""
        return self._frame.copy()

    @property
    def accounting(self) -> pd.DataFrame:
        """Every municipality with its adoption role and why it is used or not."""
        return self._acc.copy()

    def package_frame(self) -> pd.DataFrame:
        """Rows as the packages read them: ``unit`` (int), ``period`` (1..T, position of the year),
        ``g`` (cohort period, 0 never), ``y`` — the shared data of the comparison tests."""
        f = self._frame.copy()
        pos = {y: k + 1 for k, y in enumerate(self._years)}
        cyears = f["cohort_year"]
        bad = sorted({int(c) for c in cyears.dropna() if int(c) not in pos})
        if bad:
            raise DataError(f"adoption years {bad} are not periods with outcome values; the cohort must be a panel period")
        units = {u: k + 1 for k, u in enumerate(sorted(f["unit"].unique()))}
        return pd.DataFrame({"unit": f["unit"].map(units).astype(int), "period": f["year"].map(pos).astype(int),
                             "g": cyears.map(lambda c: 0 if pd.isna(c) else pos[int(c)]).astype(int),
                             "y": f["y"].astype(float), "municipality": f["unit"]})

    def fit(self, *, estimator: str = "callaway_santanna", control_group: str = "not_yet_treated",
            anticipation: int = 0, alpha: float = 0.05, seed: int = 0, sensitivity: bool = True,
            rm_grid: list[float] | None = None, sd_grid: list[float] | None = None) -> StaggeredResult:
        """Estimate the event study.

        Parameters
        ----------
        estimator
            ``"callaway_santanna"`` or ``"imputation"`` (see the module docstring).
        control_group
            ``"never_treated"`` or ``"not_yet_treated"`` (Callaway–Sant'Anna; the imputation
            estimator always uses every untreated cell).
        anticipation
            Periods before adoption in which effects may already start (excluded from the
            controls and from the reference; the reference period is ``-1 - anticipation``).
        alpha
            1 − confidence level of intervals and bands.
        seed
            Seed of the sup-t simulation.
        sensitivity
            Compute Rambachan–Roth bounds (needs a pre-period besides the reference).
        rm_grid, sd_grid
            Grids of ``Mbar`` and ``M`` (default: :data:`.pretrends.RM_GRID` and
            :data:`.pretrends.SD_GRID_SCALE` times the mean post-period SE). Smoothness intervals
            cost about a second per grid value.
        """
        if estimator not in ESTIMATORS:
            raise ParameterError(f"estimator must be one of {ESTIMATORS}; got {estimator!r}")
        if control_group not in CONTROL_GROUPS:
            raise ParameterError(f"control_group must be one of {CONTROL_GROUPS}; got {control_group!r}")
        if not isinstance(anticipation, int | np.integer) or anticipation < 0:
            raise ParameterError(f"anticipation must be a non-negative integer; got {anticipation!r}")
        pf_ = self.package_frame()
        n_adopters = int(pf_.loc[pf_["g"] > 0, "unit"].nunique())
        if n_adopters == 0:
            raise DataError("no municipality adopts inside the panel: nothing to estimate")
        from ojpanel.designs.steering.pretrends import (
            breakdown_values,
            honest_sensitivity,
            pretrend_test,
        )

        ref = -1 - anticipation
        if estimator == "callaway_santanna":
            gt, ev, V, package, o_pkg = _fit_cs(pf_, control_group, anticipation)
            pre = pretrend_test(ev, V, reference=ref)
            pre["test"] = "Wald chi2 on the pre-period event-time placebo estimates (joint covariance)"
            sens_ev, sens_V, sens_src = ev, V, "this event study"
        else:
            gt, ev, V, package, o_pkg, pre = _fit_imputation(pf_, anticipation)
            # diff-diff gives no joint covariance of the imputation event study: the Rambachan–Roth
            # restrictions are applied to the Callaway–Sant'Anna event study of the same design
            _, sens_ev, sens_V, _, _ = _fit_cs(pf_, "not_yet_treated", anticipation)
            sens_src = "the Callaway–Sant'Anna event study (not-yet-treated controls) of the same design"
        post_V = V.loc[[e for e in V.index if e > ref], [e for e in V.index if e > ref]]
        crit = sup_t_critical_value(post_V.to_numpy(), alpha=alpha, seed=seed)
        z = stats.norm.ppf(1 - alpha / 2)
        ev["is_reference"] = ev["event_time"] == ref
        ev["lower"] = ev["estimate"] - z * ev["std_error"]
        ev["upper"] = ev["estimate"] + z * ev["std_error"]
        ev["band_lower"] = ev["estimate"] - crit * ev["std_error"]
        ev["band_upper"] = ev["estimate"] + crit * ev["std_error"]
        # the band covers the post-adoption path; pre-periods keep pointwise intervals
        pre_rows = ev["event_time"] < ref
        ev.loc[pre_rows, "band_lower"] = np.nan
        ev.loc[pre_rows, "band_upper"] = np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            ev["p_value"] = 2 * stats.norm.sf(np.abs(ev["estimate"] / ev["std_error"].where(ev["std_error"] > 0)))
        ev["mde"] = mde(ev["std_error"].to_numpy())
        ev.loc[ev["is_reference"], ["lower", "upper", "band_lower", "band_upper", "mde"]] = 0.0
        o_est, o_se = o_pkg["estimate"], o_pkg["std_error"]
        o_t = o_est / o_se if o_se > 0 else float("nan")
        overall = {"estimate": o_est, "std_error": o_se, "statistic": o_t, "p_value": float(2 * stats.norm.sf(abs(o_t))),
                   "mde": float(mde(o_se)), "definition": o_pkg["definition"]}
        sens, brk, note = None, {}, ""
        if sensitivity:
            try:
                sens = honest_sensitivity(sens_ev, sens_V, reference=ref, alpha=alpha,
                                          **({"rm_grid": rm_grid} if rm_grid is not None else {}),
                                          sd_grid=sd_grid)
                sens.attrs["source"] = sens_src
                brk = breakdown_values(sens)
            except DataError as exc:
                note = str(exc)
        else:
            note = "not computed (sensitivity=False)"
        acc = self._acc.copy()
        used = set(pf_["municipality"])
        acc["used"] = acc["municipality"].astype(str).isin(used)
        acc.loc[~acc["used"] & acc["role"].isin(["adopter", "never"]), "reason"] = "no outcome value in any period"
        yrs = self._years
        settings = {
            "outcome": self._labels.get("outcome", "y"),
            "outcome_label": self._labels.get("outcome_label", "outcome"),
            "treatment": self._labels.get("treatment"), "treatment_label": self._labels.get("treatment_label", ""),
            "adoption_rule": self._labels.get("adoption_rule", "as given"),
            "synthetic": bool(self._labels.get("synthetic", False)),
            "control_group": control_group if estimator == "callaway_santanna" else "all untreated cells (never and not yet)",
            "anticipation": int(anticipation), "reference_event_time": ref, "package": package,
            "period_years": dict(enumerate(yrs, start=1)),
            "time_label": "consecutive years" if yrs == list(range(yrs[0], yrs[-1] + 1))
            else f"survey waves ({', '.join(map(str, yrs))}); event times count waves",
            "n_used": len(used), "n_adopters": n_adopters, "sup_t_crit": crit, "sensitivity_note": note,
            "sensitivity_source": sens_src if sens is not None else "",
            "sup_t_covariance": "joint (influence function)" if estimator == "callaway_santanna"
            else "diagonal (diff-diff reports no joint covariance; conservative when estimates correlate positively)",
        }
        return StaggeredResult(estimator=estimator, group_time=gt, event=ev, vcov=V, overall=overall, pretrend=pre,
                               sensitivity=sens, breakdown=brk, accounting=acc, settings=settings)


def _fit_cs(pf_: pd.DataFrame, control_group: str, anticipation: int):
    """Callaway–Sant'Anna through diff-diff: ATT(g,t), event study and its covariance."""
    import diff_diff as dd

    with warnings.catch_warnings():
        # diff-diff announces its defaults (e.g. unbalanced-panel handling) as UserWarnings
        warnings.simplefilter("ignore")
        r = dd.CallawaySantAnna(control_group=control_group, anticipation=int(anticipation), estimation_method="reg",
                                base_period="universal", n_bootstrap=0).fit(
            pf_, outcome="y", unit="unit", time="period", first_treat="g")
        es = r.aggregate("event_study")
    overall = {"estimate": float(r.overall_att), "std_error": float(r.overall_se),
               "definition": "simple aggregation: ATT(g, t) over t >= g - anticipation weighted by cohort size "
                             "(R's did starts at t >= g; the two agree without anticipation)"}
    gt = pd.DataFrame([{"cohort": int(k[0]), "period": int(k[1]), "event_time": int(k[1]) - int(k[0]),
                        "estimate": float(v["effect"]), "std_error": float(v["se"]),
                        "n_treated": v.get("n_treated"), "n_control": v.get("n_control")}
                       for k, v in r.group_time_effects.items()])
    d = es.to_dataframe()
    ev = pd.DataFrame({"event_time": d["event_time"].astype(int), "estimate": d["att"].astype(float),
                       "std_error": d["se"].astype(float).fillna(0.0)})
    ev["n_cohorts"] = ev["event_time"].map(gt.groupby("event_time")["cohort"].nunique()).fillna(0).astype(int)
    idx = [int(e) for e in es.vcov_index]
    V = pd.DataFrame(np.asarray(es.vcov, dtype=float), index=idx, columns=idx)
    ref = -1 - anticipation
    V.loc[ref] = 0.0
    V[ref] = 0.0
    order = sorted(V.index)
    return gt, ev.sort_values("event_time").reset_index(drop=True), V.loc[order, order], \
        f"diff-diff {dd.__version__} CallawaySantAnna", overall


def _fit_imputation(pf_: pd.DataFrame, anticipation: int):
    """Imputation (Borusyak–Jaravel–Spiess) through diff-diff's ImputationDiD, with its pre-trend test.

    Returns the event study (pre-periods: the BJS lead coefficients from the regression on untreated
    cells; post: the imputation estimates with BJS's conservative SEs), a *diagonal* covariance
    (diff-diff reports no joint one), the overall ATT and the lead test.
    """
    import diff_diff as dd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imp = dd.ImputationDiD(anticipation=int(anticipation), pretrends=True).fit(
            pf_, outcome="y", unit="unit", time="period", first_treat="g")
        es = imp.aggregate("event_study").to_dataframe()
        lead = imp.pretrend_test()
    ev = pd.DataFrame({"event_time": es["event_time"].astype(int), "estimate": es["att"].astype(float),
                       "std_error": es["se"].astype(float).fillna(0.0)})
    rel = np.where(pf_["g"] > 0, pf_["period"] - pf_["g"], np.nan)
    counts = pd.Series(pf_["g"].to_numpy()[pf_["g"] > 0]).groupby(rel[pf_["g"] > 0]).nunique()
    ev["n_cohorts"] = ev["event_time"].map(counts).fillna(0).astype(int)
    ev = ev.sort_values("event_time").reset_index(drop=True)
    idx = ev["event_time"].tolist()
    V = pd.DataFrame(np.diag(ev["std_error"].to_numpy() ** 2), index=idx, columns=idx)
    pre = {"statistic": float(lead["f_stat"]), "df": int(lead["df"]), "p_value": float(lead["p_value"]),
           "test": "F (BJS lead regression on untreated cells)",
           "placebo": ev[ev["event_time"] < -1 - anticipation].reset_index(drop=True),
           "periods": sorted(int(k) for k in lead["lead_coefficients"])}
    overall = {"estimate": float(imp.overall_att), "std_error": float(imp.overall_se),
               "definition": "average over treated municipality-periods (imputation)"}
    gt = pd.DataFrame(columns=["cohort", "period", "event_time", "estimate", "std_error"])
    return gt, ev, V, f"diff-diff {dd.__version__} ImputationDiD", overall, pre


def routine_adoption(
    ds: xr.Dataset,
    pairs: Mapping[str, str] | None = None,
    *,
    estimators: tuple[str, ...] = ESTIMATORS,
    threshold: float | None = None,
    **fit_kwargs: Any,
) -> tuple[dict[tuple[str, str], StaggeredResult], dict[str, str]]:
    """The adoption design for several routine → outcome pairs of one panel.

    Parameters
    ----------
    ds
        OJ panel holding both indicators of every pair (e.g. the embedded LSS unit survey).
    pairs
        Treatment (routine) id → outcome id (default :data:`ROUTINE_OUTCOMES`).
    estimators
        Estimators to fit for every pair.
    threshold
        Cut for share routines (default 100: every unit has it).
    **fit_kwargs
        Passed to :meth:`StaggeredAdoption.fit`.

    Returns
    -------
    tuple
        Results by ``(treatment, estimator)``, and pairs not estimated with the reason.
    """
    pairs = dict(ROUTINE_OUTCOMES if pairs is None else pairs)
    have = set(np.asarray(ds["indicator"].values).astype(str))
    out: dict[tuple[str, str], StaggeredResult] = {}
    skipped: dict[str, str] = {}
    for treat, outcome in pairs.items():
        missing = [i for i in (treat, outcome) if i not in have]
        if missing:
            skipped[treat] = f"indicator(s) {missing} not in the panel"
            continue
        try:
            design = StaggeredAdoption.from_panel(ds, treatment=treat, outcome=outcome, threshold=threshold)
            for est in estimators:
                out[(treat, est)] = design.fit(estimator=est, **fit_kwargs)
        except DataError as exc:
            skipped[treat] = str(exc)
    return out, skipped


def adoption_table(results: Mapping[tuple[str, str], StaggeredResult]) -> pd.DataFrame:
    """One row per result: names, average effect with SE/p/MDE, pre-trend p, breakdown values, counts."""
    rows = []
    for (treat, est), r in results.items():
        s, o, p = r.settings, r.overall, r.pretrend
        acc = r.accounting["role"].value_counts()
        rows.append({
            "treatment": treat, "routine": s.get("treatment_label", treat), "outcome": s.get("outcome_label"),
            "estimator": est, "estimate": o["estimate"], "std_error": o["std_error"], "p_value": o["p_value"],
            "mde": o["mde"], "pretrend_p": p.get("p_value"), "pretrend_test": p.get("test", ""),
            "breakdown_rm": r.breakdown.get("relative_magnitude", np.nan),
            "breakdown_sd": r.breakdown.get("smoothness", np.nan),
            "n_adopters": int(acc.get("adopter", 0)), "n_never": int(acc.get("never", 0)),
            "n_always": int(acc.get("always", 0)), "n_no_data": int(acc.get("no data", 0)), "n_used": s["n_used"],
        })
    return pd.DataFrame(rows)
