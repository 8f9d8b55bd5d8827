"""Shared fixtures. Slow statistical checks read ``SMOKE`` to choose their size."""

from __future__ import annotations

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
