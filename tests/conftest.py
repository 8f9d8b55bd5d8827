"""Shared fixtures. Slow statistical checks read ``SMOKE`` to choose their size."""

from __future__ import annotations

import os

import pytest

from ojpanel.config import smoke_default

#: Slow checks run at smoke size unless OJPANEL_FULL=1 (make test-full).
SMOKE = smoke_default()


@pytest.fixture(scope="session")
def smoke() -> bool:
    """Whether slow checks run at smoke size."""
    return SMOKE


@pytest.fixture(scope="session")
def embedded_panel():
    """The real embedded panel, 2014–2022, gender T (built once per session; do not modify)."""
    import ojpanel

    return ojpanel.build_panel(years=range(2014, 2023))


@pytest.fixture(scope="session")
def raw_values():
    """The embedded raw tidy values (all KPIs, years, genders; do not modify)."""
    from ojpanel.data.embedded import load_embedded_values

    return load_embedded_values()


@pytest.fixture(scope="session")
def smoke_pipeline(tmp_path_factory):
    """The whole notebook pipeline at smoke size, run once per session.

    Figures are checked strictly (``OJPANEL_FIGURE_CHECK=strict``): a figure with text outside
    its canvas, overlapping labels or empty axes fails the notebook that saves it.
    """
    from ojpanel.pipeline import run_pipeline

    out = tmp_path_factory.mktemp("pipeline")
    before = os.environ.get("OJPANEL_FIGURE_CHECK")
    os.environ["OJPANEL_FIGURE_CHECK"] = "strict"
    try:
        return run_pipeline(out_dir=out, smoke=True, progress=False)
    finally:
        if before is None:
            os.environ.pop("OJPANEL_FIGURE_CHECK", None)
        else:
            os.environ["OJPANEL_FIGURE_CHECK"] = before
