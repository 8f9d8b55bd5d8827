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
  effects for the knowledge-steering designs (:mod:`.steering`).
"""

from __future__ import annotations

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
]
