"""Checklist-adoption simulator with known steering, introduction, peer and OJ-use effects.

SYNTHETIC data only: we hold no real municipal-survey checklist panel long enough to test the
knowledge-steering designs, so they are tested on this documented process. Every panel it returns
carries ``attrs["synthetic"] = 1`` and says so in ``attrs["description"]``.

The process
-----------
Municipality ``i`` (in county ``c``), checklist item ``j`` (in area ``a``), year ``t``. Each item has
a latent level ``L[i,j,t]``: 0/1 for binary items (nej/ja), 0/1/2 for ordinal items
(nej/delvis/ja); "yes" means the top level. Every year a municipality below the top moves one
level up with the *adoption hazard*::

    eta[i,j,t] = alpha[j] + u[i] + w[c] + kappa[a,t]
                 + intro[g_j] * decay ** (t - g_j - 1)            for t > g_j (items introduced in-panel)
                 + steering_effect * red[i,j,t-1]
                 + peer_effect * (P[i,j,t-1] - 1/2)
                 + oj_use_effect * user[i,a] * (t >= oj_year)
    h[i,j,t] = 1 / (1 + exp(-eta[i,j,t]))

and otherwise (or at the top) drops one level with the lapse probability ``lapse``. Draws use one
uniform number per cell: up if ``U < h`` (below the top), down if ``U > 1 - lapse`` (below the top,
level > 0) or ``U < lapse`` (at the top).

* ``alpha[j] ~ N(base_logit, sd_item)``, ``u[i] ~ N(0, sigma_municipality)``,
  ``w[c] ~ N(0, sigma_county)``, ``kappa[a,t] ~ N(0, sigma_area_year)`` (panel years only).
* ``g_j`` is the year item ``j`` is first asked. *Established* items were asked before the panel
  starts (``g_j = first year - established_age``); *introduced* items enter in the years of
  ``introductions`` (``{year: items per area}``). Practices exist before an item is asked, so every
  item's chain runs through ``burn_in`` unobserved years without shocks first; values are
  *observed* only from ``g_j`` on. The introduction effect ``intro[g]`` (logit scale) varies by
  cohort (``intro_effects``, one value per introduction year) and decays geometrically; it starts
  the year after introduction, so the first observed year is untouched (ATT(g, 0) = 0).
* ``red[i,j,t] = coloured[j,t] * (L[i,j,t] < top)``: the item is shown with colours in year ``t``
  (``coloured`` from ``colour_year`` for a random ``share_coloured`` of the established items) and
  the municipality does not have the practice, so its result is red.
* ``P[i,j,t-1]`` is the leave-one-out mean of "yes" over the *other* municipalities of the county
  in ``t-1`` (latent, observed or not).
* ``user[i,a]``: OJ-use status per area (``user``/``non_user``/``other`` with shares
  ``user_shares``); ``logit P(user) = logit(share) + user_selection * u[i]`` so positive
  ``user_selection`` makes capable municipalities users (the selection problem).
* Observed cells are missing completely at random with probability ``p_missing``.

Known effects recorded in ``truth``
-----------------------------------
* logit-scale parameters (``steering_effect``, ``peer_effect``, ``oj_use_effect``, ``intro_effects``);
* average marginal effects on the adoption probability (at-risk, observed cells):
  ``steering_ame`` = mean of ``h - h(without the red term)`` over red cells; ``peer_ame`` = mean of
  ``h (1 - h) * peer_effect`` (per unit of the peer share). Adoption means reaching the top level
  in one year, so cells one step further down (ordinal items at "nej") contribute 0: their hazard
  moves them to "delvis", not to "yes";
* ``att``: the sample ATT of introduction on the yes-share for every cohort ``g`` and event time
  ``e = t - g``: mean of ``yes - yes_cf`` over the cohort's items and all municipalities, where
  ``yes_cf`` re-runs the same draws (common random numbers) without introduction effects;
  ``att_event`` averages it over cohorts weighted by their number of items.
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
from ojpanel.peers import loo_mean_np
from ojpanel.provenance import provenance_attrs

__all__ = ["SteeringSimulation", "simulate_steering"]


@dataclass(frozen=True)
class SteeringSimulation:
    """A simulated checklist panel with its known effects (all synthetic).

    Attributes
    ----------
    panel
        OJ panel (dims ``indicator, municipality, year``); ``value`` is the observed level, NaN
        before an item is first asked and where missing; data variable ``coloured``
        (``indicator × year``) flags items shown with colours; indicator coordinates
        ``introduced`` (first year asked) and ``colour_from`` (0 = never coloured).
    users
        OJ-users table ``municipality, area, status`` (the format of
        :func:`ojpanel.data.ojusers.read_oj_users`).
    truth
        Known parameters and effects (see the module docstring).
    """

    panel: xr.Dataset
    users: pd.DataFrame
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """Plain-text summary of the planted effects."""
        t = self.truth
        lines = [
            "SYNTHETIC checklist-adoption panel (ojpanel.simulate.steering)",
            f"  {self.panel.sizes['municipality']} municipalities, {self.panel.sizes['indicator']} items, "
            f"years {int(self.panel['year'].min())}-{int(self.panel['year'].max())}",
            f"  steering effect (logit) {t['steering_effect']}, AME {t['steering_ame']:.4f}",
            f"  peer effect (logit) {t['peer_effect']}, AME {t['peer_ame']:.4f}",
            f"  OJ-use effect (logit) {t['oj_use_effect']}, introduction effects {t['intro_effects']}",
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        return "<pre>" + self.summary + "</pre>"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _run(
    *,
    base: np.ndarray,
    top: np.ndarray,
    county_code: np.ndarray,
    item_area: np.ndarray,
    intro_term: np.ndarray,
    coloured: np.ndarray,
    kappa: np.ndarray,
    user_post: np.ndarray,
    U: np.ndarray,
    lapse: float,
    steering_effect: float,
    peer_effect: float,
    oj_use_effect: float,
    record: bool,
) -> dict[str, np.ndarray]:
    """Run the chains. Shapes: base (J, N), intro_term/coloured (J, S), kappa (A, S), U (J, N, S)."""
    J, N, S = U.shape
    L = np.zeros((J, N, S), dtype=np.int64)
    eta = np.full((J, N, S), np.nan)
    red_prev = np.zeros((J, N, S))
    peer_prev = np.full((J, N, S), np.nan)
    level = np.zeros((J, N), dtype=np.int64)
    for s in range(S):
        if s > 0:
            yes_prev = (L[:, :, s - 1] == top[:, None]).astype(float)
            peer = loo_mean_np(yes_prev.T, county_code).T
            red = coloured[:, s - 1][:, None] * (L[:, :, s - 1] < top[:, None])
        else:
            peer = np.full((J, N), 0.5)
            red = np.zeros((J, N))
        e = (base + kappa[item_area, s][:, None] + intro_term[:, s][:, None] + steering_effect * red
             + peer_effect * (np.nan_to_num(peer, nan=0.5) - 0.5) + oj_use_effect * user_post[:, :, s])
        h = _sigmoid(e)
        u = U[:, :, s]
        below = level < top[:, None]
        up = below & (u < h)
        down = np.where(below, (level > 0) & ~up & (u > 1 - lapse), u < lapse)
        level = level + up.astype(np.int64) - down.astype(np.int64)
        L[:, :, s] = level
        if record:
            eta[:, :, s] = e
            red_prev[:, :, s] = red
            peer_prev[:, :, s] = peer
    return {"L": L, "eta": eta, "red_prev": red_prev, "peer_prev": peer_prev}


def simulate_steering(
    seed: int = 0,
    *,
    n_municipalities: int = 290,
    n_counties: int = 21,
    years: Sequence[int] = range(2015, 2023),
    areas: Sequence[str] = ("äldreomsorg", "barn och unga"),
    n_established: int = 6,
    introductions: Mapping[int, int] | None = None,
    intro_effects: Mapping[int, float] | None = None,
    intro_decay: float = 0.8,
    ordinal_every: int = 4,
    established_age: int = 5,
    base_logit: float = -2.6,
    sd_item: float = 0.4,
    sigma_municipality: float = 0.5,
    sigma_county: float = 0.3,
    sigma_area_year: float = 0.15,
    lapse: float = 0.06,
    steering_effect: float = 0.8,
    colour_year: int = 2019,
    share_coloured: float = 0.5,
    peer_effect: float = 1.0,
    oj_use_effect: float = 0.0,
    oj_year: int = 2019,
    user_shares: tuple[float, float, float] = (0.6, 0.2, 0.2),
    user_selection: float = 0.0,
    p_missing: float = 0.02,
    burn_in: int = 40,
) -> SteeringSimulation:
    """Simulate a checklist panel with planted adoption effects (see the module docstring).

    Parameters
    ----------
    seed
        Seed of everything (``numpy.random.default_rng``); identical inputs give identical outputs.
    introductions
        ``{year: number of new items per area}``; default ``{2017: 3, 2019: 3, 2021: 3}``.
    intro_effects
        Logit-scale introduction effect per introduction year (cohort-varying); default
        ``{2017: 2.0, 2019: 1.0, 2021: 0.3}`` for the default introductions.
    steering_effect, peer_effect, oj_use_effect
        Logit-scale effects of a red flag in ``t-1``, of the lagged leave-one-out county share of
        "yes", and of OJ use from ``oj_year`` on.
    share_coloured, colour_year
        Share of established items shown with colours from ``colour_year`` on.

    Returns
    -------
    SteeringSimulation
    """
    years = [int(y) for y in years]
    if len(years) < 3 or np.any(np.diff(years) != 1):
        raise ParameterError("years must be at least three consecutive years, e.g. range(2015, 2023)")
    if introductions is None:
        introductions = {2017: 3, 2019: 3, 2021: 3}
    introductions = {int(k): int(v) for k, v in introductions.items()}
    if intro_effects is None:
        defaults = [2.0, 1.0, 0.3]
        intro_effects = {g: defaults[min(k, 2)] for k, g in enumerate(sorted(introductions))}
    intro_effects = {int(k): float(v) for k, v in intro_effects.items()}
    bad = [g for g in introductions if not years[0] < g <= years[-1]]
    if bad:
        raise ParameterError(f"introduction years {bad} must fall after the first panel year and within {years[0]}-{years[-1]}")
    if set(intro_effects) != set(introductions):
        raise ParameterError("intro_effects needs one value per introduction year (same keys as introductions)")
    for name, p in (("lapse", lapse), ("p_missing", p_missing), ("share_coloured", share_coloured)):
        if not 0 <= p < 1:
            raise ParameterError(f"{name} must be in [0, 1); got {p}")
    if len(user_shares) != 3 or abs(sum(user_shares) - 1) > 1e-9 or min(user_shares) <= 0:
        raise ParameterError("user_shares must be three positive shares (user, non_user, other) summing to 1")
    if n_established < 1:
        raise ParameterError("n_established must be at least 1 (established items are the comparison)")

    from ojpanel.simulate.panel import municipality_layout

    rng = np.random.default_rng(seed)
    codes, county, kg = municipality_layout(n_municipalities, n_counties, 9, seed)
    _, ccode = np.unique(county, return_inverse=True)
    N = n_municipalities

    # items
    rows = []
    for a_idx, area in enumerate(areas):
        for _ in range(n_established):
            rows.append({"area": area, "a": a_idx, "introduced": years[0] - established_age, "cohort": "established"})
        for g in sorted(introductions):
            for _ in range(introductions[g]):
                rows.append({"area": area, "a": a_idx, "introduced": g, "cohort": str(g)})
    items = pd.DataFrame(rows)
    J = len(items)
    items["id"] = [f"STEER{j:03d}" for j in range(J)]
    items["scale"] = ["ordinal" if ordinal_every and (j % ordinal_every == ordinal_every - 1) else "binary" for j in range(J)]
    top = np.where(items["scale"] == "ordinal", 2, 1)
    est = np.flatnonzero(items["cohort"].to_numpy() == "established")
    n_col = int(round(share_coloured * est.size))
    col_items = rng.permutation(est)[:n_col]
    colour_from = np.zeros(J, dtype=np.int64)
    colour_from[col_items] = colour_year
    items["colour_from"] = colour_from

    alpha = rng.normal(base_logit, sd_item, J)
    u = rng.normal(0, sigma_municipality, N)
    w = rng.normal(0, sigma_county, n_counties)[ccode]
    all_years = list(range(years[0] - burn_in, years[-1] + 1))
    S = len(all_years)
    panel_cols = np.arange(burn_in, S)
    kappa = np.zeros((len(areas), S))
    kappa[:, panel_cols] = rng.normal(0, sigma_area_year, (len(areas), len(years)))

    yr = np.array(all_years)
    intro_term = np.zeros((J, S))
    for j in range(J):
        g = int(items.loc[j, "introduced"])
        if items.loc[j, "cohort"] != "established":
            after = yr > g
            intro_term[j, after] = intro_effects[g] * intro_decay ** (yr[after] - g - 1)
    coloured = ((colour_from[:, None] > 0) & (yr[None, :] >= colour_from[:, None])).astype(float)

    # OJ users per area
    share = np.asarray(user_shares)
    ustatus = np.empty((len(areas), N), dtype=object)
    logit_user = np.log(share[0] / (1 - share[0])) + user_selection * u
    for a_idx in range(len(areas)):
        is_user = rng.random(N) < _sigmoid(logit_user)
        rest = rng.random(N) < share[1] / (share[1] + share[2])
        ustatus[a_idx] = np.where(is_user, "user", np.where(rest, "non_user", "other"))
    user_ind = (ustatus == "user").astype(float)  # (A, N)
    user_post = user_ind[items["a"].to_numpy()][:, :, None] * (yr >= oj_year)[None, None, :]

    U = rng.random((J, N, S))
    base = alpha[:, None] + (u + w)[None, :]
    common = dict(base=base, top=top, county_code=ccode, item_area=items["a"].to_numpy(), coloured=coloured,
                  kappa=kappa, user_post=user_post, U=U, lapse=lapse, steering_effect=steering_effect,
                  peer_effect=peer_effect, oj_use_effect=oj_use_effect)
    run = _run(intro_term=intro_term, record=True, **common)
    cf = _run(intro_term=np.zeros_like(intro_term), record=False, **common)

    L = run["L"][:, :, panel_cols].astype(float)
    yes = (run["L"] == top[:, None, None])[:, :, panel_cols].astype(float)
    yes_cf = (cf["L"] == top[:, None, None])[:, :, panel_cols].astype(float)
    pyears = np.array(years)
    asked = pyears[None, :] >= items["introduced"].to_numpy()[:, None]  # (J, T)
    observed = asked[:, None, :] & (rng.random(L.shape) >= p_missing)
    value = np.where(observed, L, np.nan)

    # truth: marginal effects on the adoption hazard in observed at-risk cells
    eta = run["eta"][:, :, panel_cols]
    red_prev = run["red_prev"][:, :, panel_cols]
    peer_prev = run["peer_prev"][:, :, panel_cols]
    prev_L = run["L"][:, :, panel_cols - 1]
    at_risk = (prev_L < top[:, None, None]) & observed & np.roll(observed, 1, axis=2)
    at_risk[:, :, 0] = False
    h = _sigmoid(eta)
    # only a cell one level below the top can adopt within the year
    one_step = (prev_L == top[:, None, None] - 1).astype(float)
    red_cells = at_risk & (red_prev > 0)
    d_red = (h - _sigmoid(eta - steering_effect)) * one_step
    steering_ame = float(np.mean(d_red[red_cells])) if red_cells.any() else float("nan")
    peer_ok = at_risk & np.isfinite(peer_prev)
    peer_ame = float(np.mean((h * (1 - h) * peer_effect * one_step)[peer_ok])) if peer_ok.any() else float("nan")

    att_rows = []
    for g in sorted(introductions):
        js = np.flatnonzero(items["introduced"].to_numpy() == g)
        js = js[items["cohort"].to_numpy()[js] != "established"]
        for t_idx, t in enumerate(years):
            if t < g:
                continue
            d = float(np.mean(yes[js, :, t_idx] - yes_cf[js, :, t_idx]))
            att_rows.append({"cohort": g, "event_time": t - g, "year": t, "att": d, "n_items": js.size})
    att = pd.DataFrame(att_rows)
    att_event = (att.assign(w=att["n_items"] * att["att"]).groupby("event_time")
                 .agg(w=("w", "sum"), n=("n_items", "sum")))
    att_event = (att_event["w"] / att_event["n"]).rename("att").reset_index()

    users = pd.DataFrame({
        "municipality": np.tile(codes, len(areas)),
        "area": np.repeat(list(areas), N),
        "status": ustatus.ravel(),
    })

    truth: dict[str, Any] = {
        "steering_effect": steering_effect, "steering_ame": steering_ame,
        "peer_effect": peer_effect, "peer_ame": peer_ame, "oj_use_effect": oj_use_effect,
        "oj_year": oj_year, "user_selection": user_selection, "intro_effects": intro_effects,
        "intro_decay": intro_decay, "lapse": lapse, "att": att, "att_event": att_event,
        "yes_share": pd.DataFrame(yes.mean(axis=1), index=items["id"], columns=years),
        "yes_share_cf": pd.DataFrame(yes_cf.mean(axis=1), index=items["id"], columns=years),
        "items": items,
    }
    titles = [f"Synthetic checklist item {j} ({r.area}, {'asked before ' + str(years[0]) if r.cohort == 'established' else 'introduced ' + r.cohort})"
              for j, r in enumerate(items.itertuples(index=False))]
    description = (
        "SYNTHETIC checklist-adoption panel from ojpanel.simulate.simulate_steering "
        f"(seed={seed}): steering_effect={steering_effect}, peer_effect={peer_effect}, "
        f"oj_use_effect={oj_use_effect}, user_selection={user_selection}, intro_effects={intro_effects}, "
        f"intro_decay={intro_decay}, lapse={lapse}, colour_year={colour_year}, share_coloured={share_coloured}"
    )
    ds = xr.Dataset(
        {
            "value": (("indicator", "municipality", "year"), value),
            "coloured": (("indicator", "year"), coloured[:, panel_cols]),
        },
        coords={
            "indicator": items["id"].to_numpy(),
            "municipality": codes,
            "year": pyears.astype(np.int64),
            "municipality_name": ("municipality", [f"Synthetic {c}" for c in codes]),
            "county": ("municipality", county),
            "county_name": ("municipality", [f"Synthetic county {c}" for c in county]),
            "kommungrupp_2017": ("municipality", kg),
            "kommungrupp_2023": ("municipality", kg),
            "title": ("indicator", titles),
            "area": ("indicator", items["area"].to_numpy()),
            "kind": ("indicator", np.array(["process"] * J)),
            "scale": ("indicator", items["scale"].to_numpy()),
            "direction": ("indicator", np.ones(J, dtype=np.int64)),
            "source": ("indicator", np.array(["kommunenkät"] * J)),
            "introduced": ("indicator", items["introduced"].to_numpy().astype(np.int64)),
            "colour_from": ("indicator", colour_from),
        },
        attrs=provenance_attrs(mark_synthetic(description)),
    )
    return SteeringSimulation(panel=ds, users=users, truth=truth)
