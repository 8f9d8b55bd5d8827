"""Simulated power of the knowledge-steering designs on the checklist simulator.

Each design reports an analytic MDE, ``(q_{0.975} + q_{0.8})·SE`` (:func:`._common.mde`). This
module checks that claim by simulation: panels from :func:`ojpanel.simulate.simulate_steering` with a
planted effect of known size are analysed with the design's own estimator, and the rejection rate
at ``alpha`` is the power.

Designs and what is planted
---------------------------
Each design is a :class:`ojpanel.designs.steering.design.SteeringDesign`
(:data:`~ojpanel.designs.steering.design.POWER_DESIGNS`): it names the simulator parameter that
carries the effect (``planted``), the true effect (``true_effect``) and the estimate tested
(``tested``); the estimate comes from the design's own fit.

``"adoption"``
    Red-flag hazard LPM (:func:`.transitions.fit_adoption`, term ``red_prev``); planted:
    ``steering_effect``; true effect: ``truth["steering_ame"]``.
``"combined"``
    Steering term of :func:`.combined.steering_vs_benchmarking`; planted and true effect as for
    ``"adoption"``.
``"event_study"``
    Average post-introduction effect (``overall``) of :func:`.event_study.cohort_event_study`;
    planted: the same logit introduction effect for every cohort; true effect: the mean over
    post-introduction event times of ``truth["att_event"]``.

What the simulations show (default simulator, 290 municipalities): the cohort event study's
analytic MDE holds (power 0.83 ± 0.02 at an effect 6 % above it, simulated MDE within 3 % of it;
size 0.05); the red-flag LPM terms (``"adoption"``, ``"combined"``) have the right size but
power about 0.72 ± 0.03 (200 replications) and 0.75 ± 0.014 (1000 replications) at their
analytic MDE, because the LPM's SE grows with the effect — their simulated ``mde`` is the one
to trust.

The OJ-use moderator is not covered: the simulator plants its effect on the logit scale but
records no true effect on the adoption-probability scale the design estimates.

Effect sizes are given in the estimator's units (probability scale). The simulator plants effects
on the logit scale, so each size is translated into a logit parameter by a secant search on the
true effect of a few pilot panels; the table reports the ``planted`` parameter and the
``realised`` mean true effect of the simulated panels next to the requested ``effect``.

Seeds: child 0 of ``SeedSequence(seed)`` seeds the pilot panels, child ``k + 1`` the replications
of the ``k``-th effect; replications run in chunks (:func:`ojpanel.core.parallel.map_seeded`), so
a dask ``client`` gives identical results.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ojpanel.core.parallel import chunk_sizes, map_seeded
from ojpanel.designs.power import PowerResult, VarianceComponents, interpolate_mde
from ojpanel.designs.steering.design import POWER_DESIGNS, SteeringDesign
from ojpanel.errors import DataError, ModelError, ParameterError
from ojpanel.progress import progress as report_progress

__all__ = ["DESIGNS", "SteeringPowerResult", "steering_power"]

#: Designs :func:`steering_power` simulates.
DESIGNS = tuple(POWER_DESIGNS)


@dataclass(frozen=True)
class SteeringPowerResult(PowerResult):
    """:class:`ojpanel.designs.power.PowerResult` of a steering design (synthetic panels).

    ``table`` has ``effect`` (requested, estimator's units), ``planted`` (logit-scale simulator
    parameter), ``realised`` (mean true effect of the simulated panels), ``mean_estimate``,
    ``mean_mde`` (mean analytic MDE the design reported), ``power``, ``mc_se``, ``n_sims`` and
    ``n_failed`` (panels where the design could not estimate its term; counted as non-rejections).
    ``analytic`` is the mean analytic MDE the design reports at effect 0.
    """

    @property
    def summary(self) -> str:
        """Plain-text summary."""
        mde = "not reached in the effect grid" if not np.isfinite(self.mde) else f"{self.mde:.4g}"
        lines = [
            f"Simulated power of the steering design '{self.design}' on SYNTHETIC checklist panels "
            f"(alpha={self.alpha}, {self.n_sims} replications per effect)",
            self.table.to_string(index=False, float_format=lambda x: f"{x:.4f}"),
            f"Simulated MDE at power {self.target_power}: {mde}",
        ]
        if self.analytic is not None:
            lines.append(f"Analytic MDE the design reports (q·SE, mean at effect 0): {self.analytic:.4g}")
        return "\n".join(lines)


def _plant(design: str, planted: float, sim_kwargs: dict[str, Any]) -> dict[str, Any]:
    d = POWER_DESIGNS[design]
    kw = dict(sim_kwargs)
    if d.planted == "intro_effects":
        # one logit effect for every introduction cohort of the simulator
        intro = kw.get("introductions") or {2017: 3, 2019: 3, 2021: 3}
        kw["intro_effects"] = {int(g): float(planted) for g in intro}
    else:
        kw[d.planted] = float(planted)
    return kw


def _truth(design: str, sim: Any) -> float:
    if POWER_DESIGNS[design].true_effect == "att_post":
        att = sim.truth["att_event"]
        return float(att.loc[att["event_time"] > 0, "att"].mean())
    return float(sim.truth[POWER_DESIGNS[design].true_effect])


def _estimate(design: str, panel: Any) -> tuple[float, float, float]:
    """Estimate, two-sided p-value and reported MDE of the design's tested term."""
    d: SteeringDesign = POWER_DESIGNS[design]
    if design == "adoption":
        from ojpanel.designs.steering.transitions import fit_adoption

        r = fit_adoption(panel, model="lpm", terms=d.regressors, peer_group=d.peer_group, items=d.items)
        return float(r.params[d.tested]), float(r.pvalues[d.tested]), float(r.mde[d.tested])
    if design == "combined":
        from ojpanel.designs.steering.combined import steering_vs_benchmarking

        t = steering_vs_benchmarking(panel, peer_group=d.peer_group, items=d.items).table.set_index("term")
        row = t.loc[d.tested]
        return float(row["estimate"]), float(row["p_value"]), float(row["mde"])
    from ojpanel.designs.steering.event_study import cohort_event_study

    o = cohort_event_study(panel, exclude_coloured=d.exclude_coloured, inference=d.inference).overall
    return float(o["estimate"]), float(o["p_value"]), float(o["mde"])


def _chunk(size: int, rng: np.random.Generator, design: str, planted: float,
           sim_kwargs: dict[str, Any]) -> np.ndarray:
    """``size`` replications: rows of (estimate, p-value, reported MDE, true effect).

    A panel on which the design cannot estimate its term (e.g. every coloured item drawn in one
    area, so the red flag is absorbed by the area×year effects) gives NaN and counts as a
    non-rejection: the design would have reported nothing.
    """
    from ojpanel.simulate.steering import simulate_steering

    kw = _plant(design, planted, sim_kwargs)
    out = np.full((size, 4), np.nan)
    for b in range(size):
        sim = simulate_steering(int(rng.integers(0, 2**31 - 1)), **kw)
        try:
            out[b, :3] = _estimate(design, sim.panel)
        except (DataError, ModelError):
            pass
        out[b, 3] = _truth(design, sim)
    return out


def _mean_truth(design: str, planted: float, seeds: Sequence[int], sim_kwargs: dict[str, Any]) -> float:
    from ojpanel.simulate.steering import simulate_steering

    kw = _plant(design, planted, sim_kwargs)
    return float(np.mean([_truth(design, simulate_steering(int(s), **kw)) for s in seeds]))


def _calibrate(design: str, effect: float, seeds: Sequence[int], sim_kwargs: dict[str, Any],
               rtol: float = 0.005, max_iter: int = 10) -> float:
    """Logit parameter whose mean true effect on the pilot panels is ``effect`` (secant search).

    The true effect is 0 at parameter 0 and increases with it, so the secant starts from
    ``(0, 0)`` and ``(±1, T(±1))``; the chains make ``T`` a fine step function, hence the
    relative tolerance rather than an exact root.
    """
    if effect == 0:
        return 0.0
    a, ta = 0.0, 0.0
    b = float(np.sign(effect))
    tb = _mean_truth(design, b, seeds, sim_kwargs)
    for _ in range(max_iter):
        if abs(tb - effect) <= rtol * abs(effect):
            break
        if tb == ta:
            raise ParameterError(
                f"effect {effect} cannot be planted for design {design!r}: the true effect does not move "
                "with the simulator's parameter"
            )
        a, ta, b = b, tb, b + (effect - tb) * (b - a) / (tb - ta)
        tb = _mean_truth(design, b, seeds, sim_kwargs)
    return float(b)


def _check_kwargs(design: str, sim_kwargs: dict[str, Any]) -> None:
    from ojpanel.simulate.steering import simulate_steering

    allowed = set(inspect.signature(simulate_steering).parameters) - {"seed"}
    bad = sorted(set(sim_kwargs) - allowed)
    if bad:
        raise ParameterError(f"unknown simulator arguments {bad}; see ojpanel.simulate.simulate_steering")
    planted = POWER_DESIGNS[design].planted
    if planted in sim_kwargs:
        raise ParameterError(
            f"{planted!r} is what steering_power plants for design {design!r}; give effect sizes "
            "with effects=... instead"
        )


def steering_power(
    design: str,
    *,
    effects: Sequence[float] | None = None,
    relative: bool = False,
    n_sims: int = 200,
    alpha: float = 0.05,
    target_power: float = 0.8,
    seed: int = 0,
    n_pilot: int = 10,
    chunk_size: int = 20,
    client: Any | None = None,
    **simulator_kwargs: Any,
) -> SteeringPowerResult:
    """Simulated power of a steering design, with its analytic MDE for comparison.

    Parameters
    ----------
    design
        ``"adoption"``, ``"event_study"`` or ``"combined"`` (see the module docstring).
    effects
        Effect sizes in the estimator's units (adoption-probability or yes-share points); with
        ``relative=True``, multiples of the design's analytic MDE. Default ``0, 0.5, 1, 1.5, 2``
        times the analytic MDE.
    relative
        Read ``effects`` as multiples of the analytic MDE (effect 0 is then simulated first).
    n_sims
        Replications per effect size.
    alpha, target_power
        Test level and the power at which the simulated MDE is interpolated.
    seed
        Root seed (pilot panels and every replication).
    n_pilot
        Pilot panels used to translate effect sizes into logit-scale simulator parameters.
    chunk_size, client
        Replications per task and an optional dask client (identical results).
    **simulator_kwargs
        Passed to :func:`ojpanel.simulate.steering.simulate_steering` (not ``seed`` nor the
        planted parameter).

    Returns
    -------
    SteeringPowerResult
        A :class:`ojpanel.designs.power.PowerResult`; ``mde`` is interpolated at ``target_power``
        on the ``realised`` effects of ``table`` and ``analytic`` is the mean MDE the design reports at effect 0 (the mean
        over all replications when the grid has no 0).

    Raises
    ------
    ParameterError
        For an unknown design, bad sizes or levels, or simulator arguments that clash.
    """
    if design not in DESIGNS:
        raise ParameterError(f"design must be one of {DESIGNS}; got {design!r}")
    if not 0 < alpha < 1 or not 0 < target_power < 1:
        raise ParameterError(f"alpha and target_power must be in (0, 1); got {alpha}, {target_power}")
    if n_sims < 1 or n_pilot < 1:
        raise ParameterError(f"n_sims and n_pilot must be positive; got {n_sims}, {n_pilot}")
    _check_kwargs(design, simulator_kwargs)
    if effects is None:
        effects, relative = [0.0, 0.5, 1.0, 1.5, 2.0], True
    grid = [float(e) for e in effects]
    if not grid:
        raise ParameterError("effects is empty")
    if relative and 0.0 not in grid:
        grid = [0.0, *grid]
    root = np.random.SeedSequence(int(seed))
    children = root.spawn(len(grid) + 1)
    pilot = [int(s) for s in children[0].generate_state(n_pilot)]
    # effect 0 first: relative effects need the analytic MDE it reports
    order = sorted(range(len(grid)), key=lambda k: grid[k] != 0.0)
    draws: dict[int, np.ndarray] = {}
    planted: dict[int, float] = {}
    analytic: float | None = None
    with report_progress(f"steering power ({design})", total=len(grid) * int(n_sims)) as bar:
        for k in order:
            eff = grid[k] * analytic if relative and grid[k] != 0.0 else grid[k]
            if relative and grid[k] != 0.0 and not np.isfinite(eff):
                raise ParameterError("the design reported no finite MDE at effect 0; give absolute effects")
            planted[k] = _calibrate(design, eff, pilot, simulator_kwargs)
            sub_seed = int(children[k + 1].generate_state(1)[0])
            draws[k] = np.concatenate(map_seeded(
                _chunk, chunk_sizes(int(n_sims), int(chunk_size)), sub_seed, client=client,
                kwargs=dict(design=design, planted=planted[k], sim_kwargs=simulator_kwargs),
                progress=bar.advance,
            ))
            if grid[k] == 0.0 and analytic is None:
                analytic = float(np.nanmean(draws[k][:, 2]))
    rows = []
    for k, g in enumerate(grid):
        d = draws[k]
        rej = d[:, 1] < alpha
        pw = float(rej.mean())
        rows.append({
            "effect": g * analytic if relative else g,
            "planted": planted[k],
            "realised": float(d[:, 3].mean()),
            "mean_estimate": float(np.nanmean(d[:, 0])),
            "mean_mde": float(np.nanmean(d[:, 2])),
            "power": pw,
            "mc_se": float(np.sqrt(pw * (1 - pw) / rej.size)),
            "n_sims": int(rej.size),
            "n_failed": int(np.isnan(d[:, 1]).sum()),
        })
    table = pd.DataFrame(rows)
    if analytic is None:
        analytic = float(np.nanmean(np.concatenate([d[:, 2] for d in draws.values()])))
    nan = float("nan")
    # the simulator fixes the structure; there are no estimated variance components here
    comps = VarianceComponents(mean=nan, sd_municipality=nan, sd_year=nan, sd_county_year=nan,
                               sd_residual=nan, rho=nan, sd_innovation=nan, n_obs=0)
    return SteeringPowerResult(
        design=design, indicator="synthetic checklist panel", alpha=alpha, n_sims=int(n_sims), table=table,
        components=comps, target_power=target_power,
        # on the realised effects: the pilot calibration hits the requested sizes only within a few %
        mde=interpolate_mde(table.assign(effect=table["realised"]), target_power),
        analytic=analytic,
        settings={"seed": seed, "n_pilot": n_pilot, "planted": POWER_DESIGNS[design].planted, "relative": relative,
                  "simulator": dict(simulator_kwargs)},
    )
