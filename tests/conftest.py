"""Shared fixtures. Slow statistical checks read ``SMOKE`` to choose their size."""

from __future__ import annotations

import os

import pytest

# Every figure the tests make is checked strictly (and the notebook kernels inherit it).
os.environ["OJPANEL_FIGURE_CHECK"] = "strict"

from ojpanel.config import smoke_default

#: Slow checks run at smoke size unless OJPANEL_FULL=1 (make test-full).
SMOKE = smoke_default()


# keeps the smoke-pipeline tests on one worker under ``pytest -n`` (``--dist loadgroup``)
from xdist_groups import pytest_collection_modifyitems  # noqa: E402,F401


@pytest.fixture(scope="session")
def smoke() -> bool:
    """Whether slow checks run at smoke size."""
    return SMOKE


@pytest.fixture(scope="module")
def kolada():
    """The local Kolada look-alike (``tests/kolada_server.py``), one per test module."""
    from kolada_server import serve

    yield from serve()


@pytest.fixture()
def srv(kolada):
    """The Kolada look-alike with no scripted faults, no deleted rows and v2 retired, per test."""
    kolada.reset()
    yield kolada
    kolada.reset()


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
def readme_workspace(tmp_path_factory):
    """A directory with the small input files that the README's examples name.

    ``socio.csv`` (a grouping), ``users.csv`` (an OJ-users file) and ``values.csv`` (a tidy
    file of two real KPIs); the README's commands run here in order.
    """
    import numpy as np
    import pandas as pd

    from ojpanel.data.embedded import load_embedded_values
    from ojpanel.data.reference import municipality_codes

    ws = tmp_path_factory.mktemp("readme")
    codes = np.array(sorted(municipality_codes()))
    rng = np.random.default_rng(1)
    pd.DataFrame({"municipality": codes, "group": rng.choice(["a", "b", "c"], len(codes))}).to_csv(
        ws / "socio.csv", index=False)
    pd.DataFrame({"municipality": codes, "area": "äldreomsorg",
                  "status": rng.choice(["user", "non_user", "other"], len(codes))}).to_csv(
        ws / "users.csv", index=False)
    vals = load_embedded_values(kpis=["U21468", "U23471"], years=range(2016, 2021), genders=["T"])
    vals[~vals["municipality"].str.startswith("00")].to_csv(ws / "values.csv", index=False)
    return ws


#: The README's smoke run, which :func:`smoke_pipeline` runs verbatim.
README_SMOKE_COMMAND = "ojpanel reproduce all --smoke --out reports"


@pytest.fixture(scope="session")
def smoke_pipeline(readme_workspace):
    """The README's ``ojpanel reproduce all --smoke --out reports``, run once per session.

    Its pipeline step is the whole notebook pipeline at smoke size; the result is read back
    through the execution cache (every notebook fresh, nothing re-executed). Figures are checked
    strictly for the whole session (``OJPANEL_FIGURE_CHECK=strict``): a figure with text outside
    its canvas, overlapping labels or empty axes fails the notebook that saves it.
    """
    from typer.testing import CliRunner

    from ojpanel.cli import app
    from ojpanel.pipeline import run_pipeline

    cwd = os.getcwd()
    os.chdir(readme_workspace)
    try:
        r = CliRunner().invoke(app, README_SMOKE_COMMAND.split()[1:])
    finally:
        os.chdir(cwd)
    assert r.exit_code == 0, f"ojpanel reproduce all --smoke failed:\n{r.output[-5000:]}"
    res = run_pipeline(out_dir=readme_workspace / "reports" / "pipeline", smoke=True, progress=False)
    assert len(res.cached) == len(res.runs), f"re-executed after an unchanged run: {set(r.name for r in res.runs) - set(res.cached)}"
    return res
