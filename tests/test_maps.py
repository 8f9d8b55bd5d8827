"""Choropleth maps: colours follow the values, missing municipalities are marked, county borders
leave out segments inside a county, source notes, and the map in the descriptive report."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

import ojpanel
from ojpanel.config import KOLADA_CITATION, PROCESSED_SOURCE_NOTE
from ojpanel.core.style import figure_problems
from ojpanel.data import geo
from ojpanel.errors import ParameterError
from ojpanel.report import maps


def test_colours_follow_the_values_and_missing_is_marked():
    b = geo.load_boundaries()
    vals = pd.Series(np.arange(290, dtype=float), index=list(b.codes))
    vals.iloc[[3, 100]] = np.nan
    fig = maps.choropleth(vals, label="rank (1–290)", cmap="viridis")
    ax = fig.axes[0]
    fill = [c for c in ax.collections if isinstance(c, PathCollection)][0]
    faces = fill.get_facecolors()
    assert len(faces) == 290
    cm = matplotlib.colormaps["viridis"]
    np.testing.assert_allclose(faces[0], cm(0.0))
    np.testing.assert_allclose(faces[289], cm(1.0))
    np.testing.assert_allclose(faces[150], cm(150 / 289))
    np.testing.assert_allclose(faces[3], (0.85, 0.85, 0.85, 1))
    texts = fig.get_supxlabel()
    assert PROCESSED_SOURCE_NOTE in texts and "SCB" in texts and "Kolada" not in texts.replace(PROCESSED_SOURCE_NOTE, "")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "inget värde (2)" in labels and fig.axes[1].get_ylabel() == "rank (1–290)"
    assert figure_problems(fig) == []


def test_county_borders_leave_out_internal_segments():
    segs = maps.county_border_segments()
    b = geo.load_boundaries()
    total = sum(len(r) - 1 for p in b.polygons for poly in p for r in poly)
    assert 0 < len(segs) < total
    # Stockholm–Solna share a border inside Stockholm county: no shared segment is a county border
    sto = b.polygons[b.index("0180")]
    sol = b.polygons[b.index("0184")]
    s1 = {tuple(map(tuple, maps._xy(r))) for p in sto for r in p}
    pts_sto = {pt for ring in s1 for pt in ring}
    pts_sol = {tuple(x) for p in sol for r in p for x in maps._xy(r)}
    shared = pts_sto & pts_sol
    assert len(shared) >= 2
    seg_pts = {tuple(x) for s in segs for x in s}
    assert len(shared - seg_pts) >= 1


def test_map_values_and_errors(embedded_small):
    s = maps.map_values(embedded_small["value"], indicator="U21468", year=2019)
    assert len(s) == 290 and s.index[0] == "0114"
    with pytest.raises(ParameterError, match="choose one with indicator"):
        maps.map_values(embedded_small["value"], year=2019)
    with pytest.raises(ParameterError, match="no boundary for municipality codes"):
        maps.choropleth(pd.Series({"9999": 1.0}))
    with pytest.raises(ParameterError, match="have no category"):
        maps.category_map(pd.Series({"0180": "blue"}), {"red": ("red", "#d7301f")})
    fig = maps.category_map(pd.Series({"0180": "red", "0184": "green"}),
                            {"red": ("bottom quartile", "#d7301f"), "green": ("top quartile", "#1a9850")},
                            source=KOLADA_CITATION)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[:2] == ["bottom quartile (1)", "top quartile (1)"] and "inget värde (288)" in labels
    assert "Källa: Kolada" in fig.get_supxlabel() and figure_problems(fig) == []


@pytest.fixture(scope="module")
def embedded_small():
    return ojpanel.build_panel(kpis=["U21468", "U23471"], years=range(2018, 2021))


def test_descriptive_report_has_a_map(embedded_small, tmp_path):
    from ojpanel.report.describe import default_map_indicator, write_descriptive_report

    ind, year = default_map_indicator(embedded_small)
    assert ind in ("U21468", "U23471") and year == 2020
    paths = write_descriptive_report(embedded_small, tmp_path)
    assert paths["map"].is_file() and paths["map"].stat().st_size > 20_000
    text = paths["report"].read_text(encoding="utf-8")
    assert f"![map](figures/{paths['map'].name})" in text and "## Map" in text
    other = write_descriptive_report(embedded_small, tmp_path / "b", map_indicator="U23471", map_year=2018)
    assert other["map"].name == "map_u23471_2018.png"
