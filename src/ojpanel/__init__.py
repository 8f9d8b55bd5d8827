"""ojpanel: Öppna jämförelser as a municipality × indicator × year panel.

The public API is listed in ``__all__``. Heavy submodules (models, replication, pipeline) are
imported on first use; the ``ds.oj`` accessor is registered on import.
"""

from __future__ import annotations

import importlib
from typing import Any

from ojpanel.panel import accessor as _accessor  # noqa: F401  (registers the ds.oj accessor)
from ojpanel.provenance import package_version

__version__ = package_version()

# name -> module that defines it (None: the name is the module itself)
_LAZY = {
    "build_panel": "ojpanel.panel.build",
    "from_tidy": "ojpanel.panel.build",
    "from_harmonised": "ojpanel.panel.build",
    "validate": "ojpanel.panel.validate",
    "load_panel": "ojpanel.panel.io",
    "save_panel": "ojpanel.panel.io",
    "verify_panel": "ojpanel.panel.io",
    "load_municipalities": "ojpanel.data.reference",
    "load_catalogue": "ojpanel.indicators.catalogue",
    "load_embedded_values": "ojpanel.data.embedded",
    "KoladaClient": "ojpanel.data.kolada",
    "fetch_snapshot": "ojpanel.data.snapshot",
    "read_snapshot": "ojpanel.data.snapshot",
    "harmonise": "ojpanel.indicators.harmonise",
    "load_spec": "ojpanel.indicators.spec",
    "simulate_checklist": "ojpanel.simulate.checklist",
    "simulate_steering": "ojpanel.simulate.steering",
    "fit_panel": "ojpanel.models.fe",
    "fit_indicators": "ojpanel.models.fe",
    "simulate_panel": "ojpanel.simulate.panel",
    "replication": None,
    "models": None,
    "inference": None,
    "designs": None,
    "pipeline": None,
    "simulate": None,
    "core": None,
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        target = _LAZY[name]
        if target is None:
            return importlib.import_module(f"ojpanel.{name}")
        return getattr(importlib.import_module(target), name)
    raise AttributeError(f"module 'ojpanel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
