"""Side by side: the pooled Bayesian effect and fixed-effects estimates of the same specification.

The fixed-effects counterpart of the hierarchical model ``alpha_i + u_m + gamma_t + beta_i x`` is
estimated with the package's fixed-effects engine (:func:`ojpanel.models.fe.fit_panel`) on the same cells and the same (model-scale) outcome
and exposure:

* pooled row: ``y ~ x + indicator effects + year effects + municipality effects`` (one common
  slope; the Bayesian counterpart is ``mu_beta``, the mean of the indicator effects);
* one row per indicator: ``y ~ x + municipality effects + year effects`` on that indicator
  (counterpart ``beta_i``, which is partially pooled towards ``mu_beta``).

Standard errors are clustered by municipality. For the logit and ordinal models the fixed-effects
rows are linear probability / linear score models, so their scale differs from the log-odds of the
Bayesian rows; the ``scale`` column says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import norm

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.core.results import Result
from ojpanel.errors import ModelError, ParameterError
from ojpanel.models.bayes.data import ModelData
from ojpanel.models.fe import fit_panel

__all__ = ["FEComparison", "compare_fe", "fe_estimates"]

_BAYES_SCALE = {"normal": "s.d. of indicator", "binomial": "log-odds", "bernoulli": "log-odds", "ordinal": "log-odds (cumulative)"}
_FE_SCALE = {"normal": "s.d. of indicator", "binomial": "share (0-1)", "bernoulli": "probability", "ordinal": "category score"}


def _fe_slope(fr: pd.DataFrame, y: np.ndarray, pooled: bool) -> tuple[float, float, int]:
    d = pd.DataFrame({"municipality": fr["municipality"].to_numpy(), "year": fr["year"].to_numpy(),
                      "indicator": fr["indicator"].to_numpy(), "y": y, "x": fr["x"].to_numpy()})
    # pooled: indicator and year effects absorbed next to the municipality effects (one slope)
    res = fit_panel(d, "y", "x", entity="municipality", time="year", entity_effects=True, time_effects=True,
                    other_effects=["indicator"] if pooled else None, cov="clustered", cluster="municipality",
                    keys=["municipality", "indicator", "year"])
    return float(res.params["x"]), float(res.std_errors["x"]), int(res.nobs)


def fe_estimates(data: ModelData) -> pd.DataFrame:
    """Fixed-effects slopes of the exposure: pooled and per indicator (:func:`~ojpanel.models.fe.fit_panel`).

    Returns
    -------
    pandas.DataFrame
        Index ``term`` (``"pooled"`` then the indicators); columns ``fe_estimate``, ``fe_se``,
        ``fe_nobs``. Indicators whose exposure does not vary within municipalities get NaN.
    """
    fr = data.frame
    y = fr["y"].to_numpy(dtype=float)
    if data.likelihood == "binomial":  # counts -> shares
        y = y / fr["n"].to_numpy(dtype=float)
    rows = []
    try:
        rows.append(("pooled", *_fe_slope(fr, y, pooled=True)))
    except (ValueError, np.linalg.LinAlgError, ModelError) as err:
        raise ModelError(f"the pooled fixed-effects regression failed: {err}") from err
    for i, lab in enumerate(data.indicators):
        sel = (fr["indicator_code"] == i).to_numpy()
        sub = fr.loc[sel]
        if sel.sum() < 3 or sub.groupby("municipality")["x"].nunique().max() < 2:
            rows.append((lab, np.nan, np.nan, int(sel.sum())))
            continue
        try:
            rows.append((lab, *_fe_slope(sub, y[sel], pooled=False)))
        except (ValueError, np.linalg.LinAlgError, ModelError):
            rows.append((lab, np.nan, np.nan, int(sel.sum())))
    return pd.DataFrame(rows, columns=["term", "fe_estimate", "fe_se", "fe_nobs"]).set_index("term")


class FEComparison(Result):
    """Pooled Bayesian effect and indicator effects next to their fixed-effects counterparts.

    Use :func:`compare_fe` to make one.
    """

    title = "Bayesian hierarchical vs fixed effects"

    def __init__(self, table: pd.DataFrame, likelihood: str, diagnostics_passed: bool | None, prob: float):
        self._table = table
        self._lik = likelihood
        self._passed = diagnostics_passed
        self._prob = prob

    @property
    def table(self) -> pd.DataFrame:
        """The comparison (a copy)."""
        return self._table.copy()

    @property
    def pooled(self) -> pd.Series:
        """The pooled row."""
        return self._table.loc["pooled"].copy()

    @property
    def diagnostics_passed(self) -> bool | None:
        """Whether the Bayesian fit passed its convergence gates."""
        return self._passed

    def to_frame(self) -> pd.DataFrame:
        """Same as :attr:`table`."""
        return self.table

    @property
    def summary(self) -> str:
        """Text table with the scale of each column and the gate outcome."""
        flag = {True: "passed", False: "FAILED — estimates not final", None: "not run"}[self._passed]
        lines = [
            f"Bayesian hierarchical ({self._lik}; scale: {_BAYES_SCALE[self._lik]}) vs fixed effects "
            f"(ojpanel.models.fe; scale: {_FE_SCALE[self._lik]}); {int(self._prob * 100)}% intervals",
            f"Convergence gates: {flag}",
            self._table.to_string(float_format=lambda v: f"{v:.4f}"),
            PROCESSED_SOURCE_NOTE,
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        flag = "" if self._passed is not False else "<p style='color:#cf222e'><b>Convergence gates FAILED: estimates not final.</b></p>"
        return flag + self._table.to_html(float_format=lambda v: f"{v:.4f}") + f"<p><small>{PROCESSED_SOURCE_NOTE}</small></p>"


def compare_fe(idata: xr.DataTree, data: ModelData, *, prob: float = 0.9) -> FEComparison:
    """Side-by-side table of the Bayesian effects and the fixed-effects estimates.

    Parameters
    ----------
    idata
        Fit from :mod:`ojpanel.models.bayes.fit` (made from ``data``).
    data
        The fit's data (from :func:`~ojpanel.models.bayes.data.prepare_data`).
    prob
        Mass of the equal-tailed posterior interval and of the (normal) FE confidence interval.

    Returns
    -------
    FEComparison
    """
    if not 0 < prob < 1:
        raise ParameterError(f"prob must be in (0, 1), got {prob}")
    if idata.attrs.get("data_hash") not in (None, data.data_hash):
        raise ParameterError("the data do not match the fit (different data hash)")
    post = idata["posterior"].to_dataset()
    lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
    mu = post["mu_beta"].values.ravel()
    beta = post["beta"].values.reshape(-1, post["beta"].shape[-1])
    bayes = [("pooled", mu.mean(), mu.std(ddof=1), *np.quantile(mu, [lo, hi]))]
    for j, lab in enumerate(data.indicators):
        b = beta[:, j]
        bayes.append((lab, b.mean(), b.std(ddof=1), *np.quantile(b, [lo, hi])))
    cols = ["term", "bayes_mean", "bayes_sd", "bayes_lower", "bayes_upper"]
    tb = pd.DataFrame(bayes, columns=cols).set_index("term")
    fe = fe_estimates(data)
    z = norm.ppf(hi)
    fe["fe_lower"] = fe["fe_estimate"] - z * fe["fe_se"]
    fe["fe_upper"] = fe["fe_estimate"] + z * fe["fe_se"]
    table = tb.join(fe, how="left")
    table["bayes_scale"] = _BAYES_SCALE[data.likelihood]
    table["fe_scale"] = _FE_SCALE[data.likelihood]
    v = idata.attrs.get("diagnostics_passed")
    return FEComparison(table, data.likelihood, None if v is None else bool(int(v)), prob)
