"""What every regression design shares: stacked arrays in, the fitting core out.

A design (:class:`ojpanel.designs.peer.PeerDesign`, :class:`ojpanel.designs.users.UsersDesign`)
says once which variables, effects, clusters and standard errors it uses, with their defaults; the
fit, the inference, the placebo and the power simulation all ask the design instead of rebuilding
the regression. A subclass defines :attr:`regressors`, :meth:`effects` and :meth:`arrays`; this
base turns them into effect and cluster codes, prepared data and fits.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.models.fe import column_codes, fit_indicators
from ojpanel.models.fe_results import BatchFEResults
from ojpanel.models.within import FitData, prepare_batch

__all__ = ["RegressionDesign"]


class RegressionDesign(abc.ABC):
    """Base of the regression designs (frozen dataclasses with ``cov``, ``cluster`` and
    ``convention`` fields); subclasses define :attr:`regressors`, :meth:`effects` and
    :meth:`arrays`."""

    cov: str
    cluster: str | None
    convention: str

    @property
    @abc.abstractmethod
    def regressors(self) -> tuple[str, ...]:
        """Regressor names, the tested one first."""

    @abc.abstractmethod
    def effects(self) -> dict[str, Any]:
        """Absorbed effects as :func:`ojpanel.models.fe.fit_indicators` takes them."""

    @abc.abstractmethod
    def arrays(self, ds: xr.Dataset | xr.DataArray, *args: Any, **kwargs: Any):
        """Outcome and regressors (``indicator × municipality × year``) of the design."""

    def factors(self, rows: pd.DataFrame) -> list[np.ndarray]:
        """Effect codes of stacked rows (``municipality``, ``year`` and coordinates)."""
        e = self.effects()
        n = len(rows)
        specs = (["municipality"] if e["entity_effects"] else []) + (
            ["year"] if e["time_effects"] else []
        ) + list(e["other_effects"] or [])
        return [column_codes(rows, s, n) for s in specs]

    def clusters(self, rows: pd.DataFrame) -> list[np.ndarray]:
        """Cluster codes of stacked rows (none without a cluster variable)."""
        if self.cluster is None:
            return []
        return [column_codes(rows, self.cluster, len(rows))]

    def prepare(
        self, y: np.ndarray, X: np.ndarray, rows: pd.DataFrame, labels: Sequence[str] | None = None
    ) -> FitData:
        """Stacked data of the design (e.g. simulated outcomes), absorbed and ready to fit."""
        return prepare_batch(
            y, X, factors=self.factors(rows), clusters=self.clusters(rows), names=self.regressors,
            labels=labels, entity=column_codes(rows, "municipality", len(rows)),
        )  # fmt: skip

    def fit_arrays(self, y: xr.DataArray, regressors: dict[str, xr.DataArray]) -> BatchFEResults:
        """Fit the design on its arrays (one vectorised pass over the indicators)."""
        return fit_indicators(
            y, regressors, cov=self.cov, cluster=self.cluster, convention=self.convention,
            **self.effects(),
        )  # fmt: skip
