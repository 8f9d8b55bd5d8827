"""Synthetic OJ-like panels with known effects, for calibration, power and validation.

Every panel made here carries ``attrs["synthetic"] = 1`` and a description naming the data
generating process; it follows the panel contract (dims ``indicator``, ``municipality``, ``year``;
municipality coordinates ``county``, ``kommungrupp_2017``; indicator coordinates ``title``, ``area``,
``kind``, ``scale``, ``direction``, ``source``). Nothing here is real data.

Data generating process for indicator ``k`` (all components independent normal)::

    y[i,t] = μ + a_i + γ_t + c_{county(i),t} + ρ·y[i,t−1] + β·P[i,t−1] + e[i,t]
    P[i,t−1] = mean of y[j,t−1] over the other municipalities j of i's peer group

with ``a_i ~ N(0, σ_a²)`` (municipality), ``γ_t ~ N(0, σ_γ²)`` (year), ``c ~ N(0, σ_c²)``
(county×year shocks, the "become good at the same time" channel), ``e ~ N(0, σ_e²)``. The first
year starts from its stationary-ish level ``μ + a_i + e``. Values are then set missing completely
at random with probability ``missing``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from ojpanel.core.synthetic import mark_synthetic
from ojpanel.errors import ParameterError
from ojpanel.peers import loo_mean_np

__all__ = ["simulate_panel", "municipality_layout"]


def municipality_layout(
    n_municipalities: int = 290, n_counties: int = 21, n_groups: int = 9, seed: int = 0
):
    """Codes, counties and kommungrupp-like groups for a synthetic set of municipalities.

    Counties have unequal sizes (like Sweden's 21 län: 3 to 49 municipalities); groups are drawn
    independently of counties.
    """
    if n_municipalities < 2 * n_counties:
        raise ParameterError("need at least two municipalities per county")
    rng = np.random.default_rng(seed)
    w = rng.gamma(2.0, 1.0, n_counties)
    sizes = np.maximum(2, np.floor(w / w.sum() * n_municipalities)).astype(int)
    while sizes.sum() > n_municipalities:
        sizes[np.argmax(sizes)] -= 1
    while sizes.sum() < n_municipalities:
        sizes[np.argmin(sizes)] += 1
    county = np.repeat(np.arange(n_counties), sizes)
    codes = [
        f"{c + 1:02d}{i:02d}"
        for c, i in zip(county, np.concatenate([np.arange(s) for s in sizes]), strict=True)
    ]
    groups = np.array(list("ABC"))[rng.integers(0, 3, n_municipalities)]
    sub = rng.integers(1, max(2, n_groups // 3 + 1), n_municipalities)
    kg = np.array([f"{g}{s}" for g, s in zip(groups, sub, strict=True)])
    return np.array(codes), np.array([f"{c + 1:02d}" for c in county]), kg


def simulate_panel(
    *,
    n_municipalities: int = 290,
    n_counties: int = 21,
    n_groups: int = 9,
    years: Sequence[int] = range(2016, 2021),
    n_indicators: int = 1,
    mu: float = 0.0,
    sigma_municipality: float = 1.0,
    sigma_year: float = 0.3,
    sigma_county_year: float = 0.0,
    sigma_e: float = 1.0,
    rho: float = 0.0,
    peer_effect: float = 0.0,
    peer_group: str = "county",
    missing: float = 0.0,
    seed: int = 0,
    layout_seed: int = 0,
    layout: str = "synthetic",
) -> xr.Dataset:
    """Simulate a labelled synthetic panel (see the module docstring for the process).

    Parameters
    ----------
    peer_group
        ``"county"`` or ``"kommungrupp_2017"``: the group whose leave-one-out lagged mean has the
        effect ``peer_effect``.
    missing
        Probability that a value is missing (completely at random).
    seed, layout_seed
        Seeds of the outcomes and of the municipality layout.
    layout
        ``"synthetic"`` (made-up codes, ``n_municipalities`` in ``n_counties``) or ``"real"``: the
        290 real municipalities with their real counties and kommungrupper (only the outcomes are
        synthetic); ``n_municipalities``/``n_counties``/``n_groups`` are then ignored.

    Returns
    -------
    xarray.Dataset
        ``value`` with dims ``(indicator, municipality, year)``; ``attrs["synthetic"] = 1``.
    """
    if peer_group not in ("county", "kommungrupp_2017"):
        raise ParameterError("peer_group must be 'county' or 'kommungrupp_2017'")
    if not 0 <= missing < 1:
        raise ParameterError("missing must be in [0, 1)")
    years = [int(y) for y in years]
    extra: dict = {}
    if layout == "real":
        from ojpanel.data.reference import load_municipalities

        ref = load_municipalities().sort_values("municipality")
        codes = ref["municipality"].astype(str).to_numpy()
        county = ref["county"].astype(str).to_numpy()
        kg = ref["kommungrupp_2017"].astype(str).to_numpy()
        extra = {
            c: ("municipality", ref[c].astype(str).to_numpy())
            for c in ("municipality_name", "county_name", "kommungrupp_2011", "kommungrupp_2023")
            if c in ref
        }
        n_municipalities, n_counties = len(codes), int(np.unique(county).size)
    elif layout == "synthetic":
        codes, county, kg = municipality_layout(n_municipalities, n_counties, n_groups, layout_seed)
    else:
        raise ParameterError("layout must be 'synthetic' or 'real'")
    grp = county if peer_group == "county" else kg
    _, gcode = np.unique(grp, return_inverse=True)
    _, ccode = np.unique(county, return_inverse=True)
    rng = np.random.default_rng(seed)
    N, T, K = n_municipalities, len(years), int(n_indicators)
    out = np.empty((K, N, T))
    for k in range(K):
        a = rng.normal(0, sigma_municipality, N)
        g = rng.normal(0, sigma_year, T)
        c = (
            rng.normal(0, sigma_county_year, (n_counties, T))
            if sigma_county_year > 0
            else np.zeros((n_counties, T))
        )
        e = rng.normal(0, sigma_e, (N, T))
        y = np.empty((N, T))
        y[:, 0] = mu + a + g[0] + c[ccode, 0] + e[:, 0]
        for t in range(1, T):
            peer = loo_mean_np(y[:, t - 1], gcode)
            y[:, t] = mu + a + g[t] + c[ccode, t] + rho * y[:, t - 1] + peer_effect * peer + e[:, t]
        out[k] = y
    if missing > 0:
        out[rng.random(out.shape) < missing] = np.nan
    ind = [f"SIM{k:03d}" for k in range(K)]
    ds = xr.Dataset(
        {"value": (("indicator", "municipality", "year"), out)},
        coords={
            "indicator": ind,
            "municipality": codes,
            "year": np.array(years, dtype=np.int64),
            "municipality_name": ("municipality", [f"Synthetic {c}" for c in codes]),
            "county": ("municipality", county),
            "county_name": ("municipality", [f"Synthetic county {c}" for c in county]),
            "kommungrupp_2017": ("municipality", kg),
            "kommungrupp_2023": ("municipality", kg),
            "title": ("indicator", [f"Synthetic indicator {k}" for k in range(K)]),
            "area": ("indicator", ["synthetic"] * K),
            "kind": ("indicator", ["result"] * K),
            "scale": ("indicator", ["mean"] * K),
            "direction": ("indicator", np.ones(K, dtype=np.int64)),
            "source": ("indicator", ["register"] * K),
        },
        attrs=mark_synthetic(
            "SYNTHETIC panel from ojpanel.simulate.simulate_panel: "
            f"rho={rho}, peer_effect={peer_effect} ({peer_group}), sigma_municipality={sigma_municipality}, "
            f"sigma_year={sigma_year}, sigma_county_year={sigma_county_year}, sigma_e={sigma_e}, "
            f"missing={missing}, seed={seed}",
            {"layout": layout},
        ),
    )
    if extra:
        ds = ds.assign_coords(extra)
    return ds
