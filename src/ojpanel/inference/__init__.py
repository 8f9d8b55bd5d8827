"""Inference for few clusters and many indicators: wild cluster bootstrap, randomisation
inference and multiple-testing corrections."""

from __future__ import annotations

from ojpanel.inference.bootstrap import (
    WildBootstrapResult,
    draw_weights,
    enumerate_rademacher,
    wild_bootstrap_tstats,
    wild_cluster_bootstrap,
)
from ojpanel.inference.multitest import adjust, benjamini_hochberg, holm, romano_wolf
from ojpanel.inference.randomization import PermutationResult, permutation_test, permute_labels

__all__ = [
    "wild_cluster_bootstrap",
    "wild_bootstrap_tstats",
    "WildBootstrapResult",
    "draw_weights",
    "enumerate_rademacher",
    "holm",
    "benjamini_hochberg",
    "romano_wolf",
    "adjust",
    "permutation_test",
    "permute_labels",
    "PermutationResult",
]
