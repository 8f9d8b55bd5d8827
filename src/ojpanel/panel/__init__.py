"""The OJ panel: build from tidy values, validate the contract, save/load, and the ``ds.oj`` accessor."""

from ojpanel.panel import accessor as _accessor  # noqa: F401  (registers ds.oj)
from ojpanel.panel.build import (
    add_grouping,
    build_panel,
    from_harmonised,
    from_tidy,
    indicator_metadata,
)
from ojpanel.panel.io import load_panel, save_panel, verify_panel
from ojpanel.panel.validate import validate, violations

__all__ = [
    "build_panel",
    "from_tidy",
    "from_harmonised",
    "add_grouping",
    "indicator_metadata",
    "validate",
    "violations",
    "save_panel",
    "load_panel",
    "verify_panel",
]
