"""Convergence gates for Bayesian fits: R-hat, bulk and tail ESS, divergences.

A fit passes when every checked quantity has rank-normalised split R-hat ≤ 1.01, bulk and tail
effective sample size ≥ 400 and the sampler reported no divergent transition. The outcome is
written into the fit's attrs (ArviZ 1 :class:`xarray.DataTree`) (``diagnostics_passed`` 1/0, ``diagnostics_failures`` JSON)
and into ``posterior.attrs`` so that it survives saving; a failing fit raises
:class:`~ojpanel.errors.DiagnosticsError` or emits a :class:`ConvergenceWarning`, as asked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import ess, rhat

from ojpanel.core.results import Result
from ojpanel.errors import DiagnosticsError, OJPanelWarning, ParameterError

__all__ = [
    "gated_variables",
    "RHAT_MAX",
    "ESS_MIN",
    "ConvergenceWarning",
    "DiagnosticsReport",
    "diagnose",
    "enforce_gates",
    "passed",
]

#: Largest acceptable rank-normalised split R-hat.
RHAT_MAX = 1.01
#: Smallest acceptable bulk and tail effective sample size.
ESS_MIN = 400


class ConvergenceWarning(OJPanelWarning):
    """A Bayesian fit failed its convergence gates; its estimates must not be reported as final."""


@dataclass(frozen=True)
class _Thresholds:
    rhat_max: float
    ess_min: float
    max_divergences: int


class DiagnosticsReport(Result):
    """Outcome of the convergence gates for one fit (read-only).

    Parameters
    ----------
    table
        One row per checked scalar (``variable``, ``r_hat``, ``ess_bulk``, ``ess_tail``).
    n_divergences
        Divergent transitions after warm-up (all chains).
    n_chains, n_draws
        Size of the posterior sample.
    rhat_max, ess_min, max_divergences
        The gates.
    """

    title = "Convergence gates"

    def __init__(self, table: pd.DataFrame, n_divergences: int, n_chains: int, n_draws: int,
                 rhat_max: float, ess_min: float, max_divergences: int):
        self._table = table
        self._ndiv = int(n_divergences)
        self._nchains = int(n_chains)
        self._ndraws = int(n_draws)
        self._thr = _Thresholds(rhat_max, ess_min, max_divergences)

    @property
    def n_divergences(self) -> int:
        """Divergent transitions after warm-up."""
        return self._ndiv

    @property
    def max_rhat(self) -> float:
        """Largest R-hat over the checked quantities."""
        return float(self._table["r_hat"].max())

    @property
    def min_ess_bulk(self) -> float:
        """Smallest bulk ESS."""
        return float(self._table["ess_bulk"].min())

    @property
    def min_ess_tail(self) -> float:
        """Smallest tail ESS."""
        return float(self._table["ess_tail"].min())

    @property
    def failures(self) -> list[str]:
        """One line per failed gate (empty when the fit passes)."""
        t = self._table
        out: list[str] = []
        if self._nchains < 2:
            out.append(f"only {self._nchains} chain: R-hat needs at least 2 chains to detect non-convergence")
        bad_r = t[~(t["r_hat"] <= self._thr.rhat_max)]
        if len(bad_r):
            worst = bad_r.sort_values("r_hat", ascending=False).iloc[0]
            out.append(f"R-hat > {self._thr.rhat_max} for {len(bad_r)} quantities (worst {worst['variable']}: {worst['r_hat']:.3f})")
        for col, label in (("ess_bulk", "bulk ESS"), ("ess_tail", "tail ESS")):
            bad = t[~(t[col] >= self._thr.ess_min)]
            if len(bad):
                worst = bad.sort_values(col).iloc[0]
                out.append(f"{label} < {self._thr.ess_min:g} for {len(bad)} quantities (worst {worst['variable']}: {worst[col]:.0f})")
        if self._ndiv > self._thr.max_divergences:
            out.append(f"{self._ndiv} divergent transitions (allowed {self._thr.max_divergences})")
        return out

    @property
    def passed(self) -> bool:
        """True when every gate holds."""
        return not self.failures

    def to_frame(self) -> pd.DataFrame:
        """Per-quantity diagnostics with a ``ok`` column."""
        t = self._table.copy()
        t["ok"] = (t["r_hat"] <= self._thr.rhat_max) & (t["ess_bulk"] >= self._thr.ess_min) & (t["ess_tail"] >= self._thr.ess_min)
        return t

    @property
    def summary(self) -> str:
        """Short text report."""
        head = "PASSED" if self.passed else "FAILED"
        lines = [
            f"Convergence gates {head} ({self._nchains} chains x {self._ndraws} draws; "
            f"R-hat <= {self._thr.rhat_max}, bulk/tail ESS >= {self._thr.ess_min:g}, divergences <= {self._thr.max_divergences})",
            f"  max R-hat {self.max_rhat:.4f}; min bulk ESS {self.min_ess_bulk:.0f}; "
            f"min tail ESS {self.min_ess_tail:.0f}; divergences {self.n_divergences}",
        ]
        lines += [f"  - {f}" for f in self.failures]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.passed else "#cf222e"
        head, *rest = self.summary.splitlines()
        return f"<div><b style='color:{colour}'>{head}</b><br>{'<br>'.join(rest)}</div>"

    def to_attrs(self) -> dict[str, str | int | float]:
        """Attrs written onto the fit (strings and numbers only)."""
        return {
            "diagnostics_passed": int(self.passed),
            "diagnostics_failures": json.dumps(self.failures),
            "diagnostics_max_rhat": self.max_rhat,
            "diagnostics_min_ess_bulk": self.min_ess_bulk,
            "diagnostics_min_ess_tail": self.min_ess_tail,
            "diagnostics_divergences": self.n_divergences,
            "diagnostics_gates": json.dumps({"rhat_max": self._thr.rhat_max, "ess_min": self._thr.ess_min,
                                             "max_divergences": self._thr.max_divergences}),
        }


def gated_variables(idata: xr.DataTree) -> list[str]:
    """Posterior variables the gates of a hierarchical fit check.

    Every variable except the auxiliary ones of the parametrisation: standardised effects
    (``z_*``) and the municipality level's within-county contrasts (``*_raw``), whose meaningful
    transforms (``beta``, ``group_effect``, ``municipality_effect``) are checked instead. They are
    the sampler's coordinates, not quantities of the model, and a contrast has no meaning of its
    own; checking them too would only add noise to the largest R-hat.
    """
    post = idata["posterior"]
    return [str(v) for v in post.data_vars if not (str(v).startswith("z_") or str(v).endswith("_raw"))]


def diagnose(
    idata: xr.DataTree,
    var_names: Sequence[str] | None = None,
    *,
    rhat_max: float = RHAT_MAX,
    ess_min: float = ESS_MIN,
    max_divergences: int = 0,
) -> DiagnosticsReport:
    """Compute the gates' quantities for a fit.

    Parameters
    ----------
    idata
        Fit with ``posterior`` (and ``sample_stats`` for divergences).
    var_names
        Variables to check; default every posterior variable (free and deterministic).
    rhat_max, ess_min, max_divergences
        The gates.

    Returns
    -------
    DiagnosticsReport
    """
    if "posterior" not in idata.children:
        raise ParameterError("the fit has no posterior group; nothing to diagnose")
    post = idata["posterior"].to_dataset()
    names = list(var_names) if var_names is not None else [str(v) for v in post.data_vars]
    unknown = [v for v in names if v not in post]
    if unknown:
        raise ParameterError(f"variables not in the posterior: {unknown}")
    nchain, ndraw = post.sizes["chain"], post.sizes["draw"]
    if ndraw < 4:
        raise DiagnosticsError(f"only {ndraw} draws per chain: convergence cannot be assessed; draw at least a few hundred")
    rh = rhat(post[names], method="rank")
    eb = ess(post[names], method="bulk")
    et = ess(post[names], method="tail")
    rows = []
    for v in names:
        r, b, t = (np.atleast_1d(np.asarray(d[v].values, dtype=float)).ravel() for d in (rh, eb, et))
        labels = [v] if post[v].ndim == 2 else [f"{v}[{j}]" for j in range(len(r))]
        for lab, ri, bi, ti in zip(labels, r, b, t, strict=True):
            rows.append((lab, ri, bi, ti))
    table = pd.DataFrame(rows, columns=["variable", "r_hat", "ess_bulk", "ess_tail"])
    ndiv = 0
    if "sample_stats" in idata.children and "diverging" in idata["sample_stats"].data_vars:
        ndiv = int(np.asarray(idata["sample_stats"]["diverging"].values).sum())
    return DiagnosticsReport(table, ndiv, nchain, ndraw, rhat_max, ess_min, max_divergences)


def enforce_gates(
    idata: xr.DataTree,
    var_names: Sequence[str] | None = None,
    *,
    on_fail: Literal["raise", "warn", "flag"] = "warn",
    rhat_max: float = RHAT_MAX,
    ess_min: float = ESS_MIN,
    max_divergences: int = 0,
) -> DiagnosticsReport:
    """Run the gates, record the outcome in the attrs and act on a failure.

    Parameters
    ----------
    idata
        The fit (modified in place: attrs of the tree and of its posterior).
    var_names
        Variables to check (default all posterior variables).
    on_fail
        ``"raise"`` raises :class:`~ojpanel.errors.DiagnosticsError`; ``"warn"`` emits a
        :class:`ConvergenceWarning`; ``"flag"`` only records the failure in the attrs.

    Returns
    -------
    DiagnosticsReport
    """
    if on_fail not in ("raise", "warn", "flag"):
        raise ParameterError(f"on_fail must be 'raise', 'warn' or 'flag', got {on_fail!r}")
    rep = diagnose(idata, var_names, rhat_max=rhat_max, ess_min=ess_min, max_divergences=max_divergences)
    attrs = rep.to_attrs()
    idata.attrs.update(attrs)
    idata["posterior"].attrs.update(attrs)
    if not rep.passed:
        msg = (
            "The Bayesian fit FAILED its convergence gates; do not report its estimates as final.\n"
            + rep.summary
            + "\nWhat to do: draw more (draws/tune), raise target_accept, check priors and the "
            "parametrisation, or simplify the model."
        )
        if on_fail == "raise":
            raise DiagnosticsError(msg)
        if on_fail == "warn":
            import warnings

            warnings.warn(msg, ConvergenceWarning, stacklevel=2)
    return rep


def passed(idata: xr.DataTree) -> bool | None:
    """Gate outcome recorded on a fit (None if the gates were never run)."""
    v = idata.attrs.get("diagnostics_passed", idata["posterior"].attrs.get("diagnostics_passed"))
    return None if v is None else bool(int(v))
