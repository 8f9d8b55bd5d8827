"""Simulated municipal-survey checklist items (synthetic, labelled as such).

We hold no real values for the kommunenkät and unit-survey routine items of RiR 2021:17, so the
harmoniser and, later, the replication are tested end to end on data from a documented latent
process with known parameters. The output has the shape of Kolada's values (``kpi, municipality,
year, gender, value, count, status``) with the real KPI ids and the real codings read from the
harmonisation spec, including the 2016/2017 breaks (joint items in 2016, split items from 2017;
a coding change inside one KPI id; the spliced LSS series).

The latent process
------------------
For variable ``v``, municipality ``i`` in county ``c`` and year ``t`` (``s = t - first year``)::

    eta[v,i,t] = alpha[v] + u[i] + w[c] + tau[v] * s + peer_effect * (P[v,i,t-1] - 1/2)
    p[v,i,t]   = 1 / (1 + exp(-eta[v,i,t]))
    A[v,i,t]   ~ Bernoulli(p[v,i,t])                     (adoption: the harmonised "yes")

* ``alpha[v] ~ N(base_logit, sd_variable)``, ``tau[v] ~ N(trend, sd_trend)``;
* ``u[i] ~ N(0, sigma_municipality)`` (one capacity per municipality, shared by all items);
* ``w[c] ~ N(0, sigma_county)`` (common regional support: "becoming good at the same time");
* ``P[v,i,t-1]`` is the leave-one-out mean over the *other* municipalities of the same peer
  group (county by default) of the harmonised value in ``t-1`` on a 0–1 scale (ordinal/2,
  share/100). The planted peer effect is ``peer_effect`` on the logit scale. For the first year
  the lag comes from a burn-in year simulated without a peer term and not returned.

Harmonised value ``y`` and raw codes, by rule (labels mapped to codes through the spec):

* binary items (``as_is``): ``A`` → ja/nej; ``ja_only_to_one``: ``A=1`` → ja, else delvis with
  probability ``p_partial_negative`` or nej;
* ``yes_partial_to_one`` / ``any_setting`` / ``isu_gender_joint_2016`` / ``preferred_else_any``:
  if ``A=1`` each setting is positive with probability ``p_setting`` (at least one is), a positive
  setting says ja with probability ``p_ja`` and delvis otherwise where the coding has delvis; the
  2016 joint item says ja/nej for ``A``; the spliced series uses the fallback items before the
  break year flagged in the spec and the preferred item from then on;
* ``audit_dudit_combined``: level ``L = A * (1 + B)``, ``B ~ Bernoulli(p_ja)``; 2016 joint item
  nej/delvis/ja for ``L`` = 0/1/2; from 2017 ``L`` items of two (alcohol, drugs) say ja
  (which one at random when ``L = 1``); ``y = L``;
* shares of units (unit survey): ``n ~ 1 + Poisson(units_mean)`` units each with the routine with
  probability ``p``; value ``100 * k / n``; ``y`` = the value.

Non-response: with probability ``p_missing`` a municipality's whole answer for a variable and
year is missing (every component); outside a variable's years in the spec (the unit survey was
not run in 2020) every answer is missing. The process itself runs on the latent adoption, observed or
not; the returned truth marks unobserved cells missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ojpanel.core.synthetic import SYNTHETIC, mark_synthetic
from ojpanel.errors import ParameterError
from ojpanel.indicators.spec import Component, Spec, Variable, load_spec
from ojpanel.peers import loo_mean_np
from ojpanel.provenance import provenance_attrs

__all__ = ["simulate_checklist", "checklist_variables", "SIMULATED_SOURCES"]

#: Spec sources the simulator generates (the others hold real values).
SIMULATED_SOURCES = ("kommunenkät", "enhetsundersökning")


def checklist_variables(
    spec: Spec | None = None, *, include_alternatives: bool = False
) -> list[Variable]:
    """The spec's checklist variables: coded items and unit-survey shares (no user survey, no staffing)."""
    spec = spec or load_spec()
    out = []
    for v in spec.select(include_alternatives=include_alternatives):
        if v.source in SIMULATED_SOURCES and v.scale in {"binary", "ordinal", "share"}:
            out.append(v)
    return out


def _municipalities() -> pd.DataFrame:
    from ojpanel.data.reference import load_municipalities

    m = load_municipalities()
    return m[["municipality", "county", "kommungrupp_2017", "kommungrupp_2023"]].copy()


def _codes(comp: Component) -> dict[str, int]:
    assert comp.codes is not None
    return {lab: code for code, lab in comp.codes.items()}


def _covering(v: Variable, role: str, year: int) -> list[Component]:
    """Components of ``role`` whose coding applies in ``year``, one per KPI, in spec order."""
    return [c for c in v.components if c.role == role and c.covers(year)]


def simulate_checklist(
    seed: int = 0,
    *,
    years: Iterable[int] = range(2016, 2021),
    peer_effect: float = 0.0,
    peer_group: str = "county",
    variables: Sequence[str] | None = None,
    spec: Spec | None = None,
    municipalities: pd.DataFrame | None = None,
    base_logit: float = 0.0,
    sd_variable: float = 0.8,
    trend: float = 0.15,
    sd_trend: float = 0.1,
    sigma_municipality: float = 0.8,
    sigma_county: float = 0.4,
    p_setting: float = 0.75,
    p_ja: float = 0.7,
    p_partial_negative: float = 0.4,
    units_mean: float = 6.0,
    p_missing: float = 0.03,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate Kolada-shaped raw values of the checklist items from a known latent process.

    Parameters
    ----------
    seed
        Seed of ``numpy.random.default_rng``; identical arguments give identical output.
    years
        Consecutive years to return (default 2016–2020).
    peer_effect
        Planted effect (logit scale) of the lagged leave-one-out peer-group mean on adoption.
    peer_group
        Municipality column that defines peers (``county``, ``kommungrupp_2017``, …).
    variables
        Variable ids (default: every checklist variable of the spec's default set).
    spec
        Harmonisation spec (default: the embedded ``rir2021``).
    municipalities
        Frame with ``municipality``, ``county`` and the ``peer_group`` column (default: all 290).
    base_logit, sd_variable, trend, sd_trend, sigma_municipality, sigma_county
        Parameters of the latent process (module docstring).
    p_setting, p_ja, p_partial_negative, units_mean, p_missing
        Parameters of the answer process (module docstring).

    Returns
    -------
    (pandas.DataFrame, dict)
        Raw values ``kpi, municipality, year, gender, value, count, status`` (``attrs["synthetic"]
        is True``), and the truth: parameters, effects, the latent frame (``p``, adoption, peer
        mean) and the harmonised values the harmoniser must reproduce (``harmonised``).

    Raises
    ------
    ParameterError
        For non-consecutive years, unknown variables or groups, or probabilities outside [0, 1].
    """
    years = sorted({int(y) for y in years})
    if not years or years != list(range(years[0], years[-1] + 1)):
        raise ParameterError(f"years must be consecutive, got {years}")
    for name, p in (
        ("p_setting", p_setting),
        ("p_ja", p_ja),
        ("p_partial_negative", p_partial_negative),
        ("p_missing", p_missing),
    ):
        if not 0.0 <= p <= 1.0:
            raise ParameterError(f"{name} must be a probability in [0, 1], got {p}")
    spec = spec or load_spec()
    pool = {v.id: v for v in checklist_variables(spec, include_alternatives=True)}
    if variables is None:
        chosen = checklist_variables(spec)
    else:
        unknown = [v for v in variables if v not in pool]
        if unknown:
            raise ParameterError(
                f"cannot simulate {unknown}: not checklist variables of spec {spec.name}; choose from {sorted(pool)}"
            )
        chosen = [pool[v] for v in variables]
    # a KPI-year must come from one variable only, or the raw values would clash
    owner: dict[tuple[str, int], str] = {}
    for v in chosen:
        for c in v.components:
            for y in years:
                if c.covers(y) and owner.setdefault((c.kpi, y), v.id) != v.id:
                    raise ParameterError(
                        f"{v.id} and {owner[(c.kpi, y)]} share {c.kpi} in {y}; simulate one of them"
                    )

    munis = (municipalities if municipalities is not None else _municipalities()).reset_index(
        drop=True
    )
    for col in ("municipality", "county", peer_group):
        if col not in munis.columns:
            raise ParameterError(f"municipality frame lacks column {col!r}")
    n = len(munis)
    rng = np.random.default_rng(seed)
    county_codes, counties = pd.factorize(munis["county"], sort=True)
    peer_codes, _ = pd.factorize(munis[peer_group], sort=True)
    w = rng.normal(0.0, sigma_county, len(counties))
    u = rng.normal(0.0, sigma_municipality, n)
    alpha = rng.normal(base_logit, sd_variable, len(chosen))
    tau = rng.normal(trend, sd_trend, len(chosen))

    raw_parts: list[pd.DataFrame] = []
    latent_parts: list[pd.DataFrame] = []
    codes_m = munis["municipality"].to_numpy(dtype=object)
    for j, v in enumerate(chosen):
        # burn-in year (no peer term) gives the first lag
        y_prev: np.ndarray | None = None
        for t in [years[0] - 1, *years]:
            s = t - years[0]
            peer = loo_mean_np(y_prev, peer_codes) if y_prev is not None else np.full(n, np.nan)
            eta = alpha[j] + u + w[county_codes] + tau[j] * s
            if y_prev is not None:
                eta = eta + peer_effect * (np.nan_to_num(peer, nan=0.5) - 0.5)
            p = 1.0 / (1.0 + np.exp(-eta))
            if v.scale == "share":
                units = 1 + rng.poisson(units_mean, n)
                adopted = rng.binomial(units, p)
                y = 100.0 * adopted / units
                y01 = y / 100.0
                a = (adopted > 0).astype(float)
            else:
                a = (rng.random(n) < p).astype(float)
                if v.rule == "audit_dudit_combined" or (v.rule == "as_is" and v.scale == "ordinal"):
                    y = a * (1.0 + (rng.random(n) < p_ja))
                    y01 = y / 2.0
                else:
                    y = a
                    y01 = y
            # no survey outside the variable's years (e.g. no unit survey in 2020)
            observed = (rng.random(n) >= p_missing) & (v.years[0] <= t <= v.years[1])
            if t >= years[0]:
                raw_parts.append(
                    _answers(
                        v, t, y, a, observed, codes_m, rng, p_setting, p_ja, p_partial_negative
                    )
                )
                latent_parts.append(pd.DataFrame({
                    "variable": v.id, "municipality": codes_m, "year": t, "eta": eta, "p": p,
                    "adopted": a, "y": y, "peer_lag": peer, "observed": observed,
                }))  # fmt: skip
            y_prev = y01

    raw = pd.concat(raw_parts, ignore_index=True)
    raw = raw.sort_values(["kpi", "municipality", "year"], kind="mergesort").reset_index(drop=True)
    raw.insert(3, "gender", "T")
    raw["count"] = pd.array(np.ones(len(raw), dtype=np.int64), dtype="Int64")
    raw["status"] = ""
    latent = pd.concat(latent_parts, ignore_index=True)
    harmonised = latent.loc[latent["observed"], ["variable", "municipality", "year", "y"]].rename(
        columns={"y": "value"}
    )
    harmonised = harmonised.sort_values(
        ["variable", "municipality", "year"], kind="mergesort"
    ).reset_index(drop=True)
    params = {
        "seed": seed, "years": years, "peer_effect": peer_effect, "peer_group": peer_group,
        "base_logit": base_logit, "sd_variable": sd_variable, "trend": trend, "sd_trend": sd_trend,
        "sigma_municipality": sigma_municipality, "sigma_county": sigma_county, "p_setting": p_setting,
        "p_ja": p_ja, "p_partial_negative": p_partial_negative, "units_mean": units_mean, "p_missing": p_missing,
    }  # fmt: skip
    raw.attrs = provenance_attrs(
        mark_synthetic(
            "SYNTHETIC checklist items from ojpanel.simulate.simulate_checklist "
            f"(seed={seed}, peer_effect={peer_effect}); not Kolada data",
            {"title": "Simulated checklist items (synthetic; not Kolada data)", "spec": spec.name},
        ),
        parameters=params,
    )
    truth: dict[str, Any] = {
        "synthetic": SYNTHETIC,
        **params,
        "variables": [v.id for v in chosen],
        "alpha": dict(zip([v.id for v in chosen], alpha.tolist(), strict=True)),
        "tau": dict(zip([v.id for v in chosen], tau.tolist(), strict=True)),
        "municipality_effect": pd.Series(u, index=pd.Index(codes_m, name="municipality"), name="u"),
        "county_effect": pd.Series(
            w, index=pd.Index(np.asarray(counties, dtype=object), name="county"), name="w"
        ),
        "latent": latent,
        "harmonised": harmonised,
        "description": __doc__,
    }
    return raw, truth


def _answers(
    v: Variable,
    year: int,
    y: np.ndarray,
    a: np.ndarray,
    observed: np.ndarray,
    munis: np.ndarray,
    rng: np.random.Generator,
    p_setting: float,
    p_ja: float,
    p_partial_negative: float,
) -> pd.DataFrame:
    """Raw component values for one variable and year (rows only where observed)."""
    n = len(y)
    out: list[tuple[str, np.ndarray]] = []  # (kpi, value per municipality)

    def label_codes(comp: Component, labels: np.ndarray) -> np.ndarray:
        m = _codes(comp)
        return np.array([m[lab] for lab in labels], dtype=float)

    def settings(comps: list[Component], positive: np.ndarray) -> None:
        k = len(comps)
        if k == 0:
            return
        pos = (rng.random((n, k)) < p_setting) & positive[:, None]
        none = positive & ~pos.any(axis=1)
        pick = rng.integers(0, k, n)
        pos[none, pick[none]] = True
        ja = rng.random((n, k)) < p_ja
        for col, comp in enumerate(comps):
            has_partial = "delvis" in _codes(comp)
            labels = np.where(
                pos[:, col], np.where(ja[:, col] | (not has_partial), "ja", "delvis"), "nej"
            )
            out.append((comp.kpi, label_codes(comp, labels)))

    rule = v.rule
    if rule == "as_is":
        (comp,) = _covering(v, "item", year) or [None]
        if comp is not None:
            if comp.codes is None:
                out.append((comp.kpi, y.astype(float)))
            elif v.scale == "ordinal":
                out.append(
                    (comp.kpi, label_codes(comp, np.array(["nej", "delvis", "ja"])[y.astype(int)]))
                )
            else:
                out.append((comp.kpi, label_codes(comp, np.where(a == 1, "ja", "nej"))))
    elif rule == "ja_only_to_one":
        (comp,) = _covering(v, "item", year) or [None]
        if comp is not None:
            neg = np.where(rng.random(n) < p_partial_negative, "delvis", "nej")
            out.append((comp.kpi, label_codes(comp, np.where(a == 1, "ja", neg))))
    elif rule in {"yes_partial_to_one", "any_setting"}:
        settings(_covering(v, "setting", year), a == 1)
    elif rule == "isu_gender_joint_2016":
        joint = _covering(v, "joint", year)
        if joint:
            out.append((joint[0].kpi, label_codes(joint[0], np.where(a == 1, "ja", "nej"))))
        else:
            settings(_covering(v, "setting", year), a == 1)
    elif rule == "preferred_else_any":
        splice = min((b for b, _ in v.breaks), default=None)
        pref = _covering(v, "preferred", year)
        if pref and (splice is None or year >= splice):
            out.append((pref[0].kpi, label_codes(pref[0], np.where(a == 1, "ja", "nej"))))
        else:
            settings(_covering(v, "fallback", year), a == 1)
    elif rule == "audit_dudit_combined":
        level = y.astype(int)
        joint = _covering(v, "joint", year)
        if joint:
            out.append(
                (joint[0].kpi, label_codes(joint[0], np.array(["nej", "delvis", "ja"])[level]))
            )
        else:
            (alc,) = _covering(v, "alcohol", year) or [None]
            (drg,) = _covering(v, "drugs", year) or [None]
            if alc is not None and drg is not None:
                first = rng.random(n) < 0.5
                alc_yes = (level == 2) | ((level == 1) & first)
                drg_yes = (level == 2) | ((level == 1) & ~first)
                out.append((alc.kpi, label_codes(alc, np.where(alc_yes, "ja", "nej"))))
                out.append((drg.kpi, label_codes(drg, np.where(drg_yes, "ja", "nej"))))
    else:
        raise ParameterError(f"the simulator does not know rule {rule!r} (variable {v.id})")
    frames = [
        pd.DataFrame(
            {"kpi": kpi, "municipality": munis[observed], "year": year, "value": vals[observed]}
        )
        for kpi, vals in out
    ]
    if not frames:
        return pd.DataFrame(columns=["kpi", "municipality", "year", "value"])
    return pd.concat(frames, ignore_index=True)
