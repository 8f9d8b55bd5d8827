"""OJ use as a moderator of adoption, with its selection problem and a pre-period placebo.

SKR's member survey says which municipalities used OJ in 2019 (the OJ-users file, read with
:func:`ojpanel.data.ojusers.read_oj_users`). Users may differ from non-users for reasons
that also drive adoption (capacity, leadership), so a users' advantage after 2019 only reads as an
OJ effect if users did *not* already adopt faster before 2019 — status is measured in 2019, so any
pre-2019 "effect" is selection. The design:

* sample: pairs at risk of adoption (not "yes" in ``t-1``) of the items of areas the file covers;
  users vs non-users (answers other than user/non-user are left out, as in the audit);
* ``adopt ~ user×pre + user×post + item×year + county`` with ``pre = t < oj_year``,
  ``post = t >= oj_year``, SEs clustered by municipality (no municipality effects: they would
  absorb the status);
* the **placebo** is ``user×pre`` (must be about zero); the moderator effect is read from ``post``
  and from ``post - pre`` (a difference-in-differences that removes a constant selection gap);
* per-year interactions ``user×year`` (reference ``oj_year - 1``) with a joint Wald test of the
  pre-years.

MDEs: ``(q_{0.975} + q_{0.8})·SE`` per term (``q`` from the t distribution of the fit's p-values), and the closed-form users-design MDE of
:func:`ojpanel.designs.power.analytic_mde` from the variance components of the municipality-year
adoption rate (:func:`ojpanel.designs.power.variance_components`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from ojpanel.core.results import Result
from ojpanel.designs.steering._common import linear_combination, mde, reference_df, tidy
from ojpanel.designs.steering.design import OJ_USE, OJ_USE_SHOCKS
from ojpanel.designs.steering.transitions import adoption_frame
from ojpanel.errors import DataError, ParameterError

__all__ = ["ModeratorResult", "oj_use_moderator", "MISSING_USERS_MESSAGE"]

#: What the design says when no OJ-users file is available.
MISSING_USERS_MESSAGE = (
    "No OJ-users file: the OJ-use moderator design was not run. SKR's 2019 per-municipality answers "
    "are not public; supply them as a CSV with columns municipality, area, status "
    "(user/non_user/other) to run it."
)


class ModeratorResult(Result):
    """Users vs non-users adoption with the pre-period placebo (read-only)."""

    title = "OJ use as a moderator"

    def __init__(self, table: pd.DataFrame, by_year: pd.DataFrame, placebo_wald: dict[str, float],
                 settings: dict[str, Any], message: str = ""):
        self._table = table
        self._by_year = by_year
        self._wald = placebo_wald
        self._settings = settings
        self._message = message

    @property
    def available(self) -> bool:
        """False when the design could not run (no OJ-users file)."""
        return not self._message

    @property
    def message(self) -> str:
        """Why the design did not run ("" when it ran)."""
        return self._message

    @property
    def table(self) -> pd.DataFrame:
        """Rows ``placebo (user × pre)``, ``user × post``, ``post - pre``."""
        return self._table.copy()

    @property
    def by_year(self) -> pd.DataFrame:
        """Per-year ``user × year`` interactions (reference year has estimate 0)."""
        return self._by_year.copy()

    @property
    def placebo_wald(self) -> dict[str, float]:
        """Joint Wald test that all pre-period year interactions are zero."""
        return dict(self._wald)

    @property
    def settings(self) -> dict[str, Any]:
        """Sample, effects and the power-machinery MDE."""
        return dict(self._settings)

    def to_frame(self, **meta: Any) -> pd.DataFrame:
        """Tidy rows (empty, with the schema, when the design did not run)."""
        meta.setdefault("analysis", "steering_oj_use")
        meta.setdefault("outcome", "adoption")
        meta.setdefault("sample", "users vs non-users, at risk")
        meta.setdefault("area", ",".join(self._settings.get("areas", [])) or None)
        meta.setdefault("period", self._settings.get("period"))
        rows = self._table.to_dict("records") + self._by_year[self._by_year["std_error"] > 0].to_dict("records")
        return tidy(rows, **meta)

    @property
    def summary(self) -> str:
        """Plain text; says plainly when the file is missing."""
        if not self.available:
            return self._message
        cols = ["term", "estimate", "std_error", "p_value", "mde"]
        w = self._wald
        return "\n".join([
            f"OJ use as moderator (status measured {self._settings['oj_year']}); users {self._settings['n_users']}, "
            f"non-users {self._settings['n_non_users']}",
            self._table[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}"),
            f"Pre-period placebo, joint Wald: chi2={w['statistic']:.3f}, df={w['df']}, p={w['p_value']:.3f}",
            f"Users-design MDE (power machinery, post years): {self._settings.get('mde_users_design', float('nan')):.4f}",
        ])

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        import html

        from ojpanel.designs.steering._common import result_html

        if not self.available:
            return f"<p>{html.escape(self._message)}</p>"
        w = self._wald
        notes = [f"Status measured {self._settings['oj_year']}; users {self._settings['n_users']}, "
                 f"non-users {self._settings['n_non_users']}",
                 f"Pre-period placebo, joint Wald: chi2 = {w['statistic']:.3f}, df = {w['df']}, p = {w['p_value']:.3f}",
                 f"Users-design MDE (power machinery, post years): {self._settings.get('mde_users_design', float('nan')):.4f}"]
        return result_html("OJ use as moderator", self._table[["term", "estimate", "std_error", "p_value", "mde"]], notes)


def _not_run(message: str) -> ModeratorResult:
    empty = pd.DataFrame(columns=["term", "estimate", "std_error", "statistic", "p_value", "mde"])
    return ModeratorResult(empty, empty.assign(year=[]), {"statistic": np.nan, "df": 0, "p_value": np.nan}, {}, message)


def _users_design_mde(f: pd.DataFrame, user: pd.Series, oj_year: int) -> float:
    """Closed-form users-design MDE on the municipality-year adoption rate (post years)."""
    from ojpanel.designs.power import analytic_mde, variance_components

    post = f[f["year"] >= oj_year]
    if post.empty or post["year"].nunique() < 2:
        return float("nan")
    rate = post.groupby(["municipality", "year"])["adopt"].mean().unstack("year")
    county = post.groupby("municipality")["county"].first().reindex(rate.index)
    da = xr.DataArray(rate.to_numpy(), dims=("municipality", "year"),
                      coords={"municipality": rate.index.to_numpy(), "year": rate.columns.to_numpy().astype(int),
                              "county": ("municipality", county.to_numpy())})
    try:
        vc = variance_components(da)
    except DataError:
        return float("nan")
    share = float(user.reindex(rate.index).mean())
    if not 0 < share < 1:
        return float("nan")
    return analytic_mde(vc.sd_municipality, vc.sd_residual, rate.shape[0], rate.shape[1], share)


def oj_use_moderator(
    ds: xr.Dataset,
    users: str | Path | pd.DataFrame | None,
    *,
    oj_year: int = OJ_USE.oj_year,
    cluster: str = OJ_USE.cluster,
    shocks: str = "county",
) -> ModeratorResult:
    """Users' vs non-users' adoption with a pre-``oj_year`` placebo (see the module docstring; the
    regressions are :data:`ojpanel.designs.steering.design.OJ_USE_SHOCKS`).

    Parameters
    ----------
    ds
        Panel of binary/ordinal checklist items (``area`` coordinate names the audit's areas).
    users
        OJ-users file (path or DataFrame with ``municipality, area, status``), or None. A missing
        file gives a result whose ``summary`` says plainly that the design was not run.
    oj_year
        Year the OJ-use status was measured (SKR's survey: 2019).
    cluster
        Cluster variable of the SEs (default municipality; the clustered SE of the placebo matches
        the permutation distribution of user labels on simulated panels).
    shocks
        ``"county"`` (item×year and county effects) or ``"county×item×year"`` (users compared with
        non-users of the same county, item and year: absorbs county-level spillovers such as peer
        effects, at the cost of cells with only users or only non-users).

    Returns
    -------
    ModeratorResult
    """
    if users is None:
        return _not_run(MISSING_USERS_MESSAGE)
    if isinstance(users, (str, Path)) and not Path(users).is_file():
        return _not_run(MISSING_USERS_MESSAGE + f" (looked for {users})")
    from ojpanel.data.ojusers import read_oj_users

    codes = [str(m) for m in ds["municipality"].values]
    tab = read_oj_users(users, municipalities=codes)
    f = adoption_frame(ds, peer_group=None)
    f = f.merge(tab, on=["municipality", "area"], how="inner")
    f = f[f["status"].isin(["user", "non_user"])].dropna(subset=["adopt"]).reset_index(drop=True)
    if f.empty:
        raise DataError(
            f"no pairs at risk in the areas of the OJ-users file ({sorted(tab['area'].unique())}); the panel's "
            f"areas are {sorted(set(map(str, ds['area'].values)))}"
        )
    years = sorted(f["year"].unique())
    pre_years = [y for y in years if y < oj_year]
    if not pre_years or not [y for y in years if y >= oj_year]:
        raise DataError(f"the moderator design needs adoption pairs both before and from {oj_year}; years: {years}")
    if shocks not in OJ_USE_SHOCKS:
        raise ParameterError(f"shocks must be 'county' or 'county×item×year'; got {shocks!r}")
    design = OJ_USE_SHOCKS[shocks].with_options(cluster=cluster, oj_year=oj_year)
    f["user"] = (f["status"] == "user").astype(float)
    f["user_pre"] = f["user"] * (f["year"] < oj_year)
    f["user_post"] = f["user"] * (f["year"] >= oj_year)
    res = design.fit(f)
    rows = [
        {"term": "placebo: user × pre", **linear_combination(res, {"user_pre": 1.0})},
        {"term": "user × post", **linear_combination(res, {"user_post": 1.0})},
        {"term": "post - pre (DiD)", **linear_combination(res, {"user_post": 1.0, "user_pre": -1.0})},
    ]
    table = pd.DataFrame(rows)
    table["mde"] = mde(table["std_error"].to_numpy(), df=reference_df(res))
    nm = int(f["municipality"].nunique())
    table["n_obs"] = int(res.nobs)
    table["n_municipalities"] = nm
    # per-year interactions, reference oj_year - 1 (last pre year in the data)
    ref = max(pre_years)
    names = []
    for y in years:
        if y == ref:
            continue
        nmc = f"user_{y}"
        f[nmc] = f["user"] * (f["year"] == y)
        names.append(nmc)
    ry = design.fit(f, names, label="oj_use_by_year")
    by = [{"term": f"user × {ref} (reference)", "year": ref, "estimate": 0.0, "std_error": 0.0,
           "statistic": np.nan, "p_value": np.nan}]
    for nmc in names:
        y = int(nmc.split("_")[1])
        by.append({"term": f"user × {y}", "year": y, "estimate": float(ry.params[nmc]),
                   "std_error": float(ry.std_errors[nmc]), "statistic": float(ry.tstats[nmc]),
                   "p_value": float(ry.pvalues[nmc])})
    by_year = pd.DataFrame(by).sort_values("year").reset_index(drop=True)
    by_year["mde"] = mde(by_year["std_error"].to_numpy(), df=reference_df(ry))
    by_year["n_obs"] = int(ry.nobs)
    by_year["n_municipalities"] = nm
    pre_names = [f"user_{y}" for y in pre_years if y != ref]
    if pre_names:
        b = ry.params[pre_names].to_numpy()
        V = ry.cov.loc[pre_names, pre_names].to_numpy()
        W = float(b @ np.linalg.solve(V, b))
        wald = {"statistic": W, "df": len(pre_names), "p_value": float(stats.chi2.sf(W, len(pre_names)))}
    else:
        wald = {"statistic": np.nan, "df": 0, "p_value": np.nan}
    user = f.groupby("municipality")["user"].first()
    settings = {
        "oj_year": oj_year, "reference_year": ref, "effects": design.effects_label, "cluster": design.cluster,
        "n_users": int((user == 1).sum()), "n_non_users": int((user == 0).sum()),
        "areas": sorted(f["area"].unique()), "period": f"{int(f['year'].min())}-{int(f['year'].max())}",
        "mde_users_design": _users_design_mde(f, user, oj_year),
        "fit": res,
    }
    return ModeratorResult(table, by_year, wald, settings)
