"""Steering vs benchmarking in one model: the checklist signal and the peer signal side by side.

For the same items and the same pairs at risk of adoption (not "yes" in ``t-1``)::

    adopt[i,j,t] = beta_S * red[i,j,t-1] + beta_B * P[i,j,t-1]
                   + municipality + item + area×year effects + e

* ``red`` — the **checklist (steering) signal**: the item was shown with colours in ``t-1`` and the
  municipality was red (did not have the practice);
* ``P`` — the **peer (benchmarking) signal**: the leave-one-out share of "yes" among the other
  municipalities of the peer group in ``t-1`` (:func:`ojpanel.peers.loo_mean_np`).

Both are estimated jointly with one covariance matrix clustered by municipality, so their
difference has a proper SE. Two differences are reported: raw (``beta_S - beta_B``: a red flag vs
a move of the peer share from 0 to 1 — the largest possible peer change) and per standard
deviation (``beta_S·sd(red) - beta_B·sd(P)`` in the estimation sample), with SEs from the same
covariance. Every term carries its MDE, ``(q_{0.975} + q_{0.8})·SE`` with ``q`` the quantiles of
the t distribution its p-value uses (the fit's ``df_resid``). That MDE is computed from the SE
under no effect and is optimistic for the steering term: the LPM's residual variance grows with
the adoption rate, so on the checklist simulator a red-flag effect of the analytic MDE is detected
with power about 0.75 (1000 replications, MC SE 0.014), not 0.80. Trust the simulated MDE
(:func:`ojpanel.designs.steering.power.steering_power` with ``design="combined"``, or
``run_steering(..., power_sims=...)``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import xarray as xr

from ojpanel.core.results import Result
from ojpanel.designs.steering._common import linear_combination, mde, reference_df, tidy
from ojpanel.designs.steering.design import COMBINED
from ojpanel.designs.steering.transitions import adoption_frame, restrict_items
from ojpanel.errors import DataError

__all__ = ["CombinedResult", "steering_vs_benchmarking"]


class CombinedResult(Result):
    """Joint steering/benchmarking estimates (read-only) with the difference and its SE."""

    title = "Steering vs benchmarking"

    def __init__(self, table: pd.DataFrame, fit: Any, sd: dict[str, float], settings: dict[str, Any]):
        self._table = table
        self._fit = fit
        self._sd = sd
        self._settings = settings

    @property
    def table(self) -> pd.DataFrame:
        """Rows ``steering``, ``benchmarking``, ``difference``, ``difference_per_sd`` (and per-SD terms)."""
        return self._table.copy()

    @property
    def fit(self) -> Any:
        """The joint FE fit (:class:`ojpanel.models.fe_results.FEResults`)."""
        return self._fit

    @property
    def sd(self) -> dict[str, float]:
        """Standard deviations of the two signals in the estimation sample."""
        return dict(self._sd)

    @property
    def settings(self) -> dict[str, Any]:
        """Effects, clustering, peer group and sample."""
        return dict(self._settings)

    def to_frame(self, **meta: Any) -> pd.DataFrame:
        """Tidy rows in the replication schema."""
        rows = self._table.to_dict("records")
        meta.setdefault("analysis", "steering_vs_benchmarking")
        meta.setdefault("outcome", "adoption")
        meta.setdefault("sample", "at risk (not yes in t-1)")
        meta.setdefault("peer_group", self._settings["peer_group"])
        meta.setdefault("lag", 1)
        meta.setdefault("area", self._settings.get("areas"))
        meta.setdefault("period", self._settings.get("period"))
        return tidy(rows, **meta)

    @property
    def summary(self) -> str:
        """Plain-text table."""
        cols = ["term", "estimate", "std_error", "p_value", "mde"]
        return ("Steering (red flag) vs benchmarking (peer share), one model; "
                f"effects {self._settings['effects']}, clustered by {self._settings['cluster']}\n"
                + self._table[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}"))

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        from ojpanel.designs.steering._common import result_html

        return result_html("Steering (red flag) vs benchmarking (peer share), one model",
                           self._table[["term", "estimate", "std_error", "p_value", "mde"]],
                           [f"Effects {self._settings['effects']}; clustered by {self._settings['cluster']}; "
                            f"peer group {self._settings['peer_group']}",
                            "Raw terms differ in units (a flag vs a share from 0 to 1); compare the per-SD rows"])


def steering_vs_benchmarking(
    ds: xr.Dataset,
    *,
    coloured: xr.DataArray | None = None,
    peer_group: str = COMBINED.peer_group,
    items: str = COMBINED.items,
) -> CombinedResult:
    """Estimate the steering and benchmarking signals jointly (see the module docstring; the
    regression is :data:`ojpanel.designs.steering.design.COMBINED`).

    Parameters
    ----------
    ds
        Panel of binary/ordinal checklist items with ``coloured`` flags (or pass ``coloured``).
    peer_group
        Municipality coordinate defining peers (``"county"``, ``"kommungrupp_2017"``, ...).
    items
        ``"established"`` or ``"all"`` (see :func:`ojpanel.designs.steering.transitions.fit_adoption`).

    Returns
    -------
    CombinedResult
    """
    f = adoption_frame(ds, coloured=coloured, peer_group=peer_group)
    f = restrict_items(ds, f, items)
    if f["red_prev"].isna().all():
        raise DataError(
            "the panel has no colour flags ('coloured', indicator × year); the checklist signal needs "
            "them — pass coloured=... (1 where OJ showed the item with colours)"
        )
    f = f.dropna(subset=["adopt", "red_prev", "peer_prev"]).reset_index(drop=True)
    if f.empty:
        raise DataError("no pairs at risk with both signals observed")
    terms = list(COMBINED.regressors)
    res = COMBINED.fit(f)
    sd = {t: float(f[t].std(ddof=1)) for t in terms}
    n, nm = int(res.nobs), int(f["municipality"].nunique())
    rows = []
    for term, label in (("red_prev", "steering (red flag, t-1)"), ("peer_prev", "benchmarking (peer share, t-1)")):
        lc = linear_combination(res, {term: 1.0})
        rows.append({"term": label, **lc})
    rows.append({"term": "difference (steering - benchmarking)", **linear_combination(res, {"red_prev": 1.0, "peer_prev": -1.0})})
    rows.append({"term": "steering per sd", **linear_combination(res, {"red_prev": sd["red_prev"]})})
    rows.append({"term": "benchmarking per sd", **linear_combination(res, {"peer_prev": sd["peer_prev"]})})
    rows.append({"term": "difference per sd", **linear_combination(res, {"red_prev": sd["red_prev"], "peer_prev": -sd["peer_prev"]})})
    table = pd.DataFrame(rows)
    table["mde"] = mde(table["std_error"].to_numpy(), df=reference_df(res))
    table["n_obs"] = n
    table["n_municipalities"] = nm
    settings = COMBINED.settings(f, peer_group=peer_group, items=items, se="one clustered covariance for both signals")
    return CombinedResult(table, res, sd, settings)
