"""Randomisation (permutation) inference by reassigning group labels.

Under the sharp null that group membership does not matter, any reassignment of municipalities to
pseudo-groups *of the real sizes* is as likely as the observed one. :func:`permutation_test`
shuffles the labels (optionally within strata), recomputes the statistic and reports
``p = (1 + #{|T*| ≥ |T|}) / (1 + R)`` (two-sided; ``"greater"``/``"less"`` one-sided), which is a
valid p-value for any number of permutations ``R`` (Phipson and Smyth 2010).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ojpanel.core.parallel import chunk_sizes, map_seeded
from ojpanel.core.results import Result
from ojpanel.errors import ParameterError

__all__ = ["PermutationResult", "permute_labels", "permutation_test"]


def permute_labels(
    labels: np.ndarray, rng: np.random.Generator, strata: np.ndarray | None = None
) -> np.ndarray:
    """A random reassignment of ``labels`` that keeps every group's size (and stays within strata)."""
    labels = np.asarray(labels)
    if strata is None:
        return labels[rng.permutation(labels.size)]
    out = labels.copy()
    strata = np.asarray(strata)
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        out[idx] = labels[idx[rng.permutation(idx.size)]]
    return out


@dataclass(frozen=True)
class PermutationResult(Result):
    """Observed statistic(s), the permutation distribution and p-values."""

    title = "Permutation test"

    observed: np.ndarray
    null_distribution: np.ndarray
    p_value: np.ndarray
    n_permutations: int
    alternative: str

    def to_frame(self, names: list[str] | None = None) -> pd.DataFrame:
        """One row per statistic."""
        k = self.observed.size
        return pd.DataFrame(
            {
                "term": names or [f"s{i}" for i in range(k)],
                "estimate": self.observed.ravel(),
                "p_value": self.p_value.ravel(),
                "null_mean": np.nanmean(self.null_distribution, axis=0).ravel(),
                "null_sd": np.nanstd(self.null_distribution, axis=0, ddof=1).ravel(),
                "n_permutations": self.n_permutations,
            }
        )


def _chunk(size: int, rng: np.random.Generator, statistic, labels, strata) -> np.ndarray:
    return np.stack(
        [
            np.atleast_1d(np.asarray(statistic(permute_labels(labels, rng, strata)), float))
            for _ in range(size)
        ]
    )


def permutation_test(
    statistic: Callable[[np.ndarray], Any],
    labels: np.ndarray,
    *,
    n_permutations: int = 999,
    seed: int = 0,
    strata: np.ndarray | None = None,
    alternative: str = "two-sided",
    client: Any | None = None,
    chunk_size: int = 250,
) -> PermutationResult:
    """Permutation test of ``statistic(labels)`` against relabelled data.

    Parameters
    ----------
    statistic
        Function of a label array returning a number or an array of numbers (e.g. one coefficient
        per indicator); must be picklable to run on a dask client.
    labels
        Group label per unit (municipality).
    n_permutations
        Number of random relabellings.
    seed
        Root seed (chunks get spawned seeds: identical results serially and on dask).
    strata
        Optional strata within which labels are shuffled.
    alternative
        ``"two-sided"`` (``|T*| ≥ |T|``), ``"greater"`` or ``"less"``.
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise ParameterError("alternative must be 'two-sided', 'greater' or 'less'")
    labels = np.asarray(labels)
    obs = np.atleast_1d(np.asarray(statistic(labels), float))
    parts = map_seeded(
        _chunk,
        chunk_sizes(n_permutations, chunk_size),
        seed,
        client=client,
        args=(statistic, labels, strata),
    )
    null = np.concatenate(parts, axis=0)
    if alternative == "two-sided":
        hits = np.abs(null) >= np.abs(obs) - 1e-12 * np.abs(obs)
    elif alternative == "greater":
        hits = null >= obs - 1e-12 * np.abs(obs)
    else:
        hits = null <= obs + 1e-12 * np.abs(obs)
    valid = np.isfinite(null)
    p = (1 + (hits & valid).sum(0)) / (1 + valid.sum(0))
    return PermutationResult(obs, null, p, int(null.shape[0]), alternative)
