"""Research designs beyond the audit: the peer design done right (with county, kommungrupp or
neighbour peers), the spatial yardstick design, power and minimum detectable effects, the
colour-threshold regression discontinuity, a labelled synthetic-panel simulator and
seeded (optionally dask-distributed) execution, and the knowledge-steering designs
(``ojpanel.designs.steering``). Submodules load on first use."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "PeerDesign": "ojpanel.designs.peer",
    "UsersDesign": "ojpanel.designs.users",
    "fit_peer": "ojpanel.designs.peer",
    "peer_frame": "ojpanel.designs.peer",
    "peer_placebo": "ojpanel.designs.peer",
    "peer_inference": "ojpanel.designs.peer",
    "tidy_peer": "ojpanel.designs.peer",
    "exclusion_bias": "ojpanel.designs.peer",
    "power": "ojpanel.designs.power",
    "minimum_detectable_effect": "ojpanel.designs.power",
    "variance_components": "ojpanel.designs.power",
    "analytic_mde": "ojpanel.designs.power",
    "RDDesign": "ojpanel.designs.rd",
    "colour_rd": "ojpanel.designs.rd",
    "plot_rd": "ojpanel.designs.rd",
    "rd_power": "ojpanel.designs.rd_power",
    "yardstick": "ojpanel.designs.spatial",
    "fit_yardstick": "ojpanel.designs.spatial",
    "rewiring_placebo": "ojpanel.designs.spatial",
    "yardstick_power": "ojpanel.designs.spatial",
    "simulate_panel": "ojpanel.simulate.panel",
    "map_seeded": "ojpanel.core.parallel",
    "run_steering": "ojpanel.designs.steering",
    "simulate_steering": "ojpanel.designs.steering",
    "data_support": "ojpanel.designs.steering",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ojpanel.designs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
