"""Knowledge-steering designs: do the state's checklist items change what municipalities do?

Four designs, each with tidy output in the replication schema and an MDE on every estimate:

1. adoption dynamics of checklist items (:mod:`.transitions`): transition rates, ceilings, time
   to adoption, the red-flag hazard regression (FE LPM, logit, conditional logit, Bayesian);
2. item-introduction event study (:mod:`.event_study`): staggered-timing group-time ATTs against
   established items, and the naive two-way FE for comparison; introduction years from the
   catalogue and the embedded values (:mod:`.introductions`);
3. OJ use as a moderator with a pre-2019 placebo (:mod:`.moderator`);
4. steering vs benchmarking in one model (:mod:`.combined`);
5. municipality-level staggered adoption (:mod:`.staggered`): Callaway–Sant'Anna group-time ATTs
   (never- or not-yet-treated controls, anticipation) and the imputation estimator, from
   maintained packages (diff-diff; checked against moderndid, csdid and pyfixest), with sup-t
   bands, pre-trend tests and Rambachan–Roth sensitivity (:mod:`.pretrends`); real data: the
   LSS unit-survey routines (:data:`.staggered.ROUTINE_OUTCOMES`).

The item-introduction event study's standard errors are two-way clustered by item and
municipality (:mod:`.item_inference`): items are the treated units and few.

The documented, labelled-synthetic simulators the tests run on live with every other simulator:
:mod:`ojpanel.simulate.steering` (checklist adoption) and :mod:`ojpanel.simulate.adoption`
(staggered adoption); both are importable from here too.
:mod:`.figures` draws adoption curves and event-study plots; :func:`run_steering` runs everything.
Submodules load on first use.

Minimum detectable effects
--------------------------
Every estimate carries ``mde = (q_{1-α/2} + q_{0.8})·SE`` (α = 0.05), computed by
:func:`ojpanel.designs.power.mde_from_se` with the reference distribution of the estimate's own
p-value: t with the fixed-effects fit's residual df, the normal for the logit and the
influence-function event study. :func:`steering_power` (:mod:`.power`) checks these analytic MDEs
by simulation: it plants effects of known size in :mod:`ojpanel.simulate.steering` panels, re-runs the design's
estimator and reports power by effect size, the simulated MDE and the analytic one next to it.
The event study's analytic MDE holds; the red-flag LPM's is optimistic (its SE grows with the
effect), so ``run_steering(..., power_sims=200)`` adds the simulated MDEs to the results.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "simulate_steering": "ojpanel.simulate.steering",
    "SteeringSimulation": "ojpanel.simulate.steering",
    "transition_rates": "ojpanel.designs.steering.transitions",
    "adoption_summary": "ojpanel.designs.steering.transitions",
    "adoption_frame": "ojpanel.designs.steering.transitions",
    "fit_adoption": "ojpanel.designs.steering.transitions",
    "red_flag_comparison": "ojpanel.designs.steering.transitions",
    "adoption_bayes": "ojpanel.designs.steering.transitions",
    "AdoptionResult": "ojpanel.designs.steering.transitions",
    "cohort_event_study": "ojpanel.designs.steering.event_study",
    "twfe_event_study": "ojpanel.designs.steering.event_study",
    "introduction_cohorts": "ojpanel.designs.steering.event_study",
    "compare_event_studies": "ojpanel.designs.steering.event_study",
    "EventStudyResult": "ojpanel.designs.steering.event_study",
    "introduction_years": "ojpanel.designs.steering.introductions",
    "data_support": "ojpanel.designs.steering.introductions",
    "dichotomise": "ojpanel.designs.steering.introductions",
    "INTRODUCTION_RULE": "ojpanel.designs.steering.introductions",
    "oj_use_moderator": "ojpanel.designs.steering.moderator",
    "ModeratorResult": "ojpanel.designs.steering.moderator",
    "steering_vs_benchmarking": "ojpanel.designs.steering.combined",
    "CombinedResult": "ojpanel.designs.steering.combined",
    "plot_adoption_curves": "ojpanel.designs.steering.figures",
    "plot_event_study": "ojpanel.designs.steering.figures",
    "steering_power": "ojpanel.designs.steering.power",
    "StaggeredAdoption": "ojpanel.designs.steering.staggered",
    "StaggeredResult": "ojpanel.designs.steering.staggered",
    "adoption_cohorts": "ojpanel.designs.steering.staggered",
    "routine_adoption": "ojpanel.designs.steering.staggered",
    "adoption_table": "ojpanel.designs.steering.staggered",
    "ROUTINE_OUTCOMES": "ojpanel.designs.steering.staggered",
    "simulate_adoption": "ojpanel.simulate.adoption",
    "AdoptionSimulation": "ojpanel.simulate.adoption",
    "pretrend_test": "ojpanel.designs.steering.pretrends",
    "honest_sensitivity": "ojpanel.designs.steering.pretrends",
    "plot_staggered_event_study": "ojpanel.designs.steering.figures",
    "plot_designs_compared": "ojpanel.designs.steering.figures",
    "SteeringPowerResult": "ojpanel.designs.steering.power",
    "run_steering": "ojpanel.designs.steering.run",
    "SteeringResults": "ojpanel.designs.steering.run",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ojpanel.designs.steering' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
