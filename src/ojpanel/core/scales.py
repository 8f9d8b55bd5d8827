"""The indicator scales a panel may declare, defined once.

Every layer that reads an indicator's ``scale`` coordinate (the catalogue, the harmonisation specs,
the panel contract, the Bayesian likelihoods) takes the allowed values from here, so a new scale is
added in one place.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SCALE_BOUNDS", "SCALES", "SHARE_SCALES"]

#: Allowed values per declared scale: a closed interval, and whether values must be whole numbers.
#: ``share`` is a percentage (0-100, what Kolada publishes); ``proportion`` the same quantity as a
#: fraction (0-1), for panels built from other sources.
SCALE_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "binary": (0.0, 1.0, True),
    "ordinal": (0.0, 2.0, True),
    "share": (0.0, 100.0, False),
    "proportion": (0.0, 1.0, False),
    "count": (0.0, np.inf, False),
    "rate": (0.0, np.inf, False),
    "mean": (-np.inf, np.inf, False),
}

#: The scale names, in the order above.
SCALES: tuple[str, ...] = tuple(SCALE_BOUNDS)

#: Scales a binomial outcome may have, and the value that means "all units". Scales are declared,
#: never guessed from the values: a panel of small percentages looks exactly like one of
#: proportions.
SHARE_SCALES: dict[str, float] = {"share": 100.0, "proportion": 1.0}
