"""All four steering designs on one panel, as one call: :func:`run_steering`.

Designs whose inputs are missing are not run, and :attr:`SteeringResults.skipped` says why in
plain words (no colour flags, no introductions inside the panel, no OJ-users file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from ojpanel.core.results import Result
from ojpanel.designs.steering.design import COMBINED, OJ_USE
from ojpanel.errors import DataError

__all__ = ["SteeringResults", "run_steering"]


class SteeringResults(Result):
    """Results of :func:`run_steering` (read-only)."""

    title = "Knowledge-steering designs"

    def __init__(self, results: dict[str, Any], skipped: dict[str, str], descriptive: dict[str, pd.DataFrame],
                 synthetic: bool, power: dict[str, Any] | None = None):
        self._results = results
        self._skipped = skipped
        self._descriptive = descriptive
        self._synthetic = synthetic
        self._power = dict(power or {})

    @property
    def results(self) -> dict[str, Any]:
        """Result objects by name (``adoption_lpm``, ``adoption_logit``, ``adoption_peer_lpm`` (no
        colours), ``event_cohort``, ``event_twfe``, ``oj_use``, ``combined``)."""
        return dict(self._results)

    @property
    def skipped(self) -> dict[str, str]:
        """Design name → why it was not run."""
        return dict(self._skipped)

    @property
    def descriptive(self) -> dict[str, pd.DataFrame]:
        """``transition_rates``, ``adoption_summary`` (and ``red_flag_comparison`` with colours)."""
        return {k: v.copy() for k, v in self._descriptive.items()}

    @property
    def power(self) -> dict[str, Any]:
        """Simulated power by design (:class:`.power.SteeringPowerResult`; empty unless
        ``power_sims > 0``)."""
        return dict(self._power)

    def mde_table(self) -> pd.DataFrame:
        """Analytic vs simulated MDE per design (empty unless ``power_sims > 0``)."""
        rows = [{"design": k, "analytic_mde": r.analytic, "simulated_mde": r.mde, "n_sims": r.n_sims}
                for k, r in self._power.items()]
        return pd.DataFrame(rows, columns=["design", "analytic_mde", "simulated_mde", "n_sims"])

    def __getitem__(self, name: str) -> Any:
        return self._results[name]

    def to_frame(self, **meta: Any) -> pd.DataFrame:
        """All tidy rows (replication schema + ``mde``), with ``data`` = synthetic/real."""
        from ojpanel.designs.steering._common import tidy

        frames = [f for f in (r.to_frame(**meta) for r in self._results.values()) if len(f)]
        out = pd.concat(frames, ignore_index=True) if frames else tidy([], **meta)
        out["data"] = "synthetic" if self._synthetic else "real"
        return out

    @property
    def summary(self) -> str:
        """Plain-text summary of every design, and what was not run."""
        parts = [r.summary for r in self._results.values()]
        if self._power:
            parts.append("Minimum detectable effects, analytic vs simulated (synthetic checklist panels)\n"
                         + self.mde_table().to_string(index=False, float_format=lambda x: f"{x:.4f}"))
        parts += [f"Not run — {k}: {v}" for k, v in self._skipped.items()]
        head = "Knowledge-steering designs" + (" (SYNTHETIC data)" if self._synthetic else "")
        return "\n\n".join([head, *parts])

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        import html

        head = "Knowledge-steering designs" + (" (SYNTHETIC data)" if self._synthetic else "")
        parts = [f"<h4>{html.escape(head)}</h4>"]
        for name, r in self._results.items():
            body = r._repr_html_() if hasattr(r, "_repr_html_") else f"<pre>{html.escape(str(r))}</pre>"
            parts.append(f"<details open><summary><code>{html.escape(name)}</code></summary>{body}</details>")
        if self._power:
            parts.append("<p>Minimum detectable effects, analytic vs simulated</p>"
                         + self.mde_table().to_html(index=False, float_format=lambda x: f"{x:.4f}"))
        if self._skipped:
            parts.append("<ul>" + "".join(f"<li>Not run — {html.escape(k)}: {html.escape(v)}</li>"
                                          for k, v in self._skipped.items()) + "</ul>")
        return "".join(parts)


def run_steering(
    ds: xr.Dataset,
    *,
    users: str | Path | pd.DataFrame | None = None,
    oj_year: int = OJ_USE.oj_year,
    peer_group: str = COMBINED.peer_group,
    logit: bool = True,
    power_sims: int = 0,
    power_seed: int = 0,
    power_pilot: int = 10,
) -> SteeringResults:
    """Run the steering designs that the panel supports.

    Parameters
    ----------
    ds
        Panel of binary/ordinal checklist items (optionally ``coloured`` and ``introduced``).
    users
        OJ-users file or table (None: the moderator design says it was not run).
    logit
        Also fit the logit version of the adoption hazard (slower).
    power_sims
        Replications per effect size for the simulated MDE of every design that ran
        (:func:`ojpanel.designs.steering.power.steering_power`, on the checklist simulator with the
        panel's number of municipalities and counties); 0 (default) reports the analytic MDEs only.
        The red-flag designs' simulated MDE is the one to trust (see
        :mod:`ojpanel.designs.steering.power`).
    power_seed
        Root seed of those simulations.
    power_pilot
        Pilot panels per effect size for planting it (``n_pilot`` of
        :func:`ojpanel.designs.steering.power.steering_power`).
    """
    from ojpanel.designs.steering.combined import steering_vs_benchmarking
    from ojpanel.designs.steering.event_study import cohort_event_study, twfe_event_study
    from ojpanel.designs.steering.moderator import oj_use_moderator
    from ojpanel.designs.steering.transitions import (
        adoption_summary,
        fit_adoption,
        red_flag_comparison,
        transition_rates,
    )

    res: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    desc = {"transition_rates": transition_rates(ds), "adoption_summary": adoption_summary(ds)}
    has_colours = "coloured" in ds and bool(ds["coloured"].max() > 0)
    if has_colours:
        desc["red_flag_comparison"] = red_flag_comparison(ds)
        res["adoption_lpm"] = fit_adoption(ds, model="lpm")
        if logit:
            res["adoption_logit"] = fit_adoption(ds, model="logit")
        res["combined"] = steering_vs_benchmarking(ds, peer_group=peer_group)
    else:
        skipped["red-flag hazard / steering vs benchmarking"] = (
            "the panel has no colour flags ('coloured'), so there is no red-flag (checklist) signal; "
            "the adoption hazard is fitted on the peer signal only ('adoption_peer_lpm')")
        try:
            res["adoption_peer_lpm"] = fit_adoption(ds, model="lpm", terms=("peer_prev",), peer_group=peer_group)
        except DataError as exc:
            skipped["adoption hazard (peer signal)"] = str(exc)
    try:
        res["event_cohort"] = cohort_event_study(ds)
        res["event_twfe"] = twfe_event_study(ds)
    except DataError as exc:
        skipped["introduction event study"] = str(exc)
    mod = oj_use_moderator(ds, users, oj_year=oj_year)
    if mod.available:
        res["oj_use"] = mod
    else:
        skipped["OJ-use moderator"] = mod.message
    power = _simulated_mdes(ds, res, skipped, power_sims, power_seed, power_pilot) if power_sims > 0 else {}
    return SteeringResults(res, skipped, desc, bool(ds.attrs.get("synthetic", 0)), power)


def _simulated_mdes(ds: xr.Dataset, res: dict[str, Any], skipped: dict[str, str], n_sims: int,
                    seed: int, n_pilot: int = 10) -> dict[str, Any]:
    """Simulated power of the designs that ran (only when asked: it costs minutes)."""
    from ojpanel.designs.steering.power import steering_power
    from ojpanel.errors import ParameterError

    which = {"adoption": "adoption_lpm", "combined": "combined", "event_study": "event_cohort"}
    structure: dict[str, Any] = {"n_municipalities": int(ds.sizes["municipality"])}
    if "county" in ds.coords:
        structure["n_counties"] = int(pd.unique(ds["county"].values).size)
    out = {}
    for design, name in which.items():
        if name not in res:
            continue
        try:
            out[design] = steering_power(design, n_sims=n_sims, seed=seed, n_pilot=n_pilot, **structure)
        except (DataError, ParameterError) as exc:
            skipped[f"simulated MDE ({design})"] = str(exc)
    return out
