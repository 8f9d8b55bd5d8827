"""OJ users vs non-users as a design (RiR 2021:17 analysis B, pooled).

``y[i,t] ~ treated[i] + year effects``, clustered by municipality: does a municipality-level
status (an OJ user, say) go with different results? The design's defaults live here; the power
simulation (:func:`ojpanel.designs.power.power` with ``design="users"``) uses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import xarray as xr

from ojpanel.designs.design import RegressionDesign
from ojpanel.errors import DataError
from ojpanel.models.covariance import check_options
from ojpanel.models.fe_results import BatchFEResults

__all__ = ["UsersDesign"]


@dataclass(frozen=True)
class UsersDesign(RegressionDesign):
    """``y[i,t] ~ treated[i] + year effects``, clustered.

    Parameters
    ----------
    cov, cluster, convention
        Standard errors (:mod:`ojpanel.models.covariance`); clustered by municipality under the
        ``"stata"`` convention by default.
    """

    cov: str = "clustered"
    cluster: str | None = "municipality"
    convention: str = "stata"

    def __post_init__(self) -> None:
        check_options(self.cov, self.convention)

    @property
    def regressors(self) -> tuple[str, ...]:
        """The one regressor, ``treated``."""
        return ("treated",)

    def effects(self) -> dict[str, Any]:
        """Year effects only."""
        return {"entity_effects": False, "time_effects": True, "other_effects": None}

    def arrays(
        self, ds: xr.Dataset | xr.DataArray, treated: xr.DataArray
    ) -> tuple[xr.DataArray, dict[str, xr.DataArray]]:
        """Outcome and the treatment (``municipality`` or ``indicator × municipality``),
        broadcast over the years."""
        v = ds["value"] if isinstance(ds, xr.Dataset) else ds
        if "municipality" not in treated.dims:
            raise DataError("the treatment needs a 'municipality' dimension")
        return v, {"treated": treated.astype(float)}

    def fit(self, ds: xr.Dataset | xr.DataArray, treated: xr.DataArray) -> BatchFEResults:
        """The design's regression for every indicator of a panel."""
        y, regs = self.arrays(ds, treated)
        if "indicator" not in y.dims:
            y = y.expand_dims(indicator=[str(y.name or "value")])
        return self.fit_arrays(y, regs)
