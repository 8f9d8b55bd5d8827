"""What every layer of ojpanel shares: the seeded parallel map, the tidy result schema, the
significance marks, the result base, the synthetic marker, the declared indicator scales and atomic file output (with :mod:`ojpanel.errors`,
:mod:`ojpanel.config` and :mod:`ojpanel.provenance`, the bottom layer; see docs/ARCHITECTURE.md)."""

from __future__ import annotations

from ojpanel.core.atomic import atomic_path, atomic_write_text
from ojpanel.core.parallel import chunk_sizes, map_seeded, spawn_generators
from ojpanel.core.results import Result, critical_value
from ojpanel.core.scales import SCALE_BOUNDS, SCALES, SHARE_SCALES
from ojpanel.core.stars import anova_stars, is_significant, regression_stars
from ojpanel.core.synthetic import SYNTHETIC, is_synthetic, mark_synthetic
from ojpanel.core.tidy import TIDY_COLUMNS, tidy_frame

__all__ = [
    "map_seeded",
    "chunk_sizes",
    "spawn_generators",
    "TIDY_COLUMNS",
    "tidy_frame",
    "regression_stars",
    "anova_stars",
    "is_significant",
    "Result",
    "critical_value",
    "SYNTHETIC",
    "mark_synthetic",
    "is_synthetic",
    "SCALE_BOUNDS",
    "SCALES",
    "SHARE_SCALES",
    "atomic_path",
    "atomic_write_text",
]
