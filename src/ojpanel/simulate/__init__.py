"""Synthetic OJ panels with known effects: the one place where ojpanel makes data up.

Every simulator here marks what it returns with the one synthetic marker
(:func:`ojpanel.core.synthetic.mark_synthetic`: ``attrs["synthetic"] = 1``, a description that
starts with ``"SYNTHETIC"`` and names the process) and every simulated panel passes
:func:`ojpanel.validate` (tested).

* :func:`simulate_panel` — continuous indicators with municipality, year, county×year effects,
  persistence and a planted peer effect (:mod:`.panel`);
* :func:`simulate_checklist` — raw municipal-survey checklist items for the RiR 2021:17
  harmonisation and replication (:mod:`.checklist`);
* :func:`simulate_steering` — checklist adoption with known steering, introduction, peer and OJ-use
  effects for the knowledge-steering designs (:mod:`.steering`);
* :func:`simulate_adoption` — municipality-level staggered adoption of a routine with known,
  cohort-specific dynamic effects, for the staggered-adoption design (:mod:`.adoption`);
* :func:`simulate_bayes_panel` — the Bayesian models' data-generating process (normal, binomial,
  bernoulli, ordinal) with known truth, read back by :func:`ojpanel.simulate.bayes.truth`
  (:mod:`.bayes`; ``ojpanel.models.bayes.simulate_panel``).
"""

from __future__ import annotations

from ojpanel.simulate.adoption import AdoptionSimulation, simulate_adoption
from ojpanel.simulate.bayes import simulate_bayes_panel
from ojpanel.simulate.checklist import SIMULATED_SOURCES, checklist_variables, simulate_checklist
from ojpanel.simulate.panel import municipality_layout, simulate_panel
from ojpanel.simulate.steering import SteeringSimulation, simulate_steering

__all__ = [
    "simulate_panel",
    "municipality_layout",
    "simulate_checklist",
    "checklist_variables",
    "SIMULATED_SOURCES",
    "simulate_steering",
    "SteeringSimulation",
    "simulate_adoption",
    "AdoptionSimulation",
    "simulate_bayes_panel",
]
