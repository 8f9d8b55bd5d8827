"""Labelled-synthetic staggered adoption panels with known effects (for the adoption design).

SYNTHETIC data: municipality ``i`` (in county ``c``) adopts a routine in year ``G_i`` (absorbing;
never for a share ``share_never``), drawn among ``cohorts`` with more capable municipalities
adopting earlier when ``selection > 0``. The outcome (a share, 0–100)::

    y[i,t] = 50 + a[i] + w[c] + lambda[t] + effect(G_i, t - G_i) + eps[i,t]
    effect(g, e) = rate[g] · (e + 1)   for e >= 0 (grows with time since adoption; cohort-specific rate)
    effect(g, e) = anticipation_effect for e = -1 (when set), 0 before

``a ~ N(0, sd_municipality)`` (shifted by ``selection·z`` for adopters' cohorts), ``w ~ N(0,
sd_county)``, ``lambda`` a common year path, ``eps ~ N(0, sd_noise)``. The treatment item is
coded 0/1 (binary, "routine in place") and the outcome as a share, in a panel that passes
:func:`ojpanel.validate` and carries the one synthetic marker
(:func:`ojpanel.core.synthetic.mark_synthetic`). Municipality ``i`` in county ``c`` gets the
made-up code ``f"{c + 1:02d}{k:02d}"`` (``k`` counts the county's municipalities in draw order), so
the code starts with its county as the panel contract asks. ``truth`` holds the ATT per cohort and event time and the
cohort-size-weighted ATT per event time (the target of the event-study aggregation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.core.synthetic import mark_synthetic
from ojpanel.errors import ParameterError

__all__ = ["AdoptionSimulation", "simulate_adoption"]


@dataclass(frozen=True)
class AdoptionSimulation:
    """A simulated staggered-adoption panel and its known effects (all synthetic)."""

    panel: xr.Dataset
    truth: dict[str, Any] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        return "<pre>SYNTHETIC staggered-adoption panel\n" + self.truth["att_event"].to_string(index=False) + "</pre>"


def simulate_adoption(
    seed: int = 0,
    *,
    n_municipalities: int = 290,
    n_counties: int = 21,
    years: Sequence[int] = tuple(range(2013, 2023)),
    cohorts: Mapping[int, float] | None = None,
    share_never: float = 0.35,
    selection: float = 0.0,
    anticipation_effect: float = 0.0,
    sd_municipality: float = 5.0,
    sd_county: float = 2.0,
    sd_noise: float = 3.0,
) -> AdoptionSimulation:
    """Simulate one panel (see the module docstring).

    Parameters
    ----------
    cohorts
        Adoption year → effect rate (percentage points per year since adoption, including the
        adoption year). Default ``{2016: 1.0, 2018: 2.0, 2020: 0.5}``: heterogeneous and dynamic,
        the case in which the two-way FE regression is biased.
    share_never
        Share of municipalities that never adopt; the rest split evenly over the cohorts.
    selection
        Earlier cohorts' municipalities have outcome levels higher by ``selection`` SDs (level
        differences only: parallel trends still hold).
    anticipation_effect
        Effect in the year before adoption (for the anticipation option).
    """
    cohorts = dict(cohorts or {2016: 1.0, 2018: 2.0, 2020: 0.5})
    years = np.asarray(list(years), dtype=int)
    if not cohorts or any(g not in set(years.tolist()) or g == years.min() for g in cohorts):
        raise ParameterError(f"cohort years {sorted(cohorts)} must be panel years after the first, {years.min()}")
    if not 0 <= share_never < 1:
        raise ParameterError(f"share_never must be in [0, 1); got {share_never}")
    if not 1 <= n_counties <= 99:
        raise ParameterError(f"n_counties must be between 1 and 99 (2-digit county codes); got {n_counties}")
    rng = np.random.default_rng(seed)
    N, T = n_municipalities, years.size
    county = rng.integers(0, n_counties, N)
    gs = sorted(cohorts)
    probs = np.r_[share_never, np.full(len(gs), (1 - share_never) / len(gs))]
    pick = rng.choice(len(gs) + 1, size=N, p=probs)
    G = np.array([0] + gs)[pick]
    order_rank = np.where(G > 0, len(gs) - np.searchsorted(gs, G), 0)
    a = rng.normal(0, sd_municipality, N) + selection * sd_municipality * order_rank
    w = rng.normal(0, sd_county, n_counties)[county]
    lam = np.cumsum(rng.normal(0.5, 0.8, T))
    eff = np.zeros((N, T))
    for i in range(N):
        if G[i]:
            e = years - G[i]
            eff[i] = np.where(e >= 0, cohorts[G[i]] * (e + 1), np.where(e == -1, anticipation_effect, 0.0))
    y = 50 + a[:, None] + w[:, None] + lam[None, :] + eff + rng.normal(0, sd_noise, (N, T))
    d = (G[:, None] > 0) & (years[None, :] >= G[:, None])
    within = np.zeros(N, dtype=int)
    for c in range(n_counties):
        idx = np.flatnonzero(county == c)
        within[idx] = np.arange(idx.size)
    if within.max() >= 100:
        raise ParameterError("more than 100 municipalities in a county; raise n_counties")
    mun = [f"{c + 1:02d}{k:02d}" for c, k in zip(county, within, strict=True)]
    counties = [f"{c + 1:02d}" for c in county]
    value = np.stack([d.astype(float), y])
    ds = xr.Dataset(
        {"value": (("indicator", "municipality", "year"), value)},
        coords={
            "indicator": ["SIM_ROUTINE", "SIM_OUTCOME"], "municipality": mun, "year": years,
            "title": ("indicator", ["Routine in place (synthetic)", "Outcome share, % (synthetic)"]),
            "scale": ("indicator", ["binary", "share"]), "area": ("indicator", ["synthetic", "synthetic"]),
            "kind": ("indicator", ["process", "result"]), "direction": ("indicator", [1, 1]),
            "source": ("indicator", ["synthetic", "synthetic"]),
            "municipality_name": ("municipality", [f"Synthetic municipality {m}" for m in mun]),
            "county": ("municipality", counties),
            "county_name": ("municipality", [f"Synthetic county {c}" for c in counties]),
            "kommungrupp_2017": ("municipality", ["synthetic"] * N),
            "kommungrupp_2023": ("municipality", ["synthetic"] * N),
        },
        attrs=mark_synthetic(
            f"SYNTHETIC staggered-adoption panel from ojpanel.simulate.simulate_adoption (seed={seed}, "
            f"cohorts={cohorts}, share_never={share_never}, selection={selection}); not real data",
            {"seed": seed},
        ),
    )
    rows = []
    for g in gs:
        n_g = int((G == g).sum())
        for t in years:
            e = int(t - g)
            val = cohorts[g] * (e + 1) if e >= 0 else (anticipation_effect if e == -1 else 0.0)
            rows.append({"cohort": g, "event_time": e, "att": val, "n": n_g})
    att = pd.DataFrame(rows)
    ev = att[att["n"] > 0].groupby("event_time").apply(
        lambda s: pd.Series({"att": float(np.average(s["att"], weights=s["n"])), "n_cohorts": len(s)}),
        include_groups=False).reset_index()
    return AdoptionSimulation(ds, {"att": att, "att_event": ev, "cohort_of": pd.Series(G, index=mun), "rates": cohorts})
