"""The package's figure style: the layout checker can fail, and the package's figures pass it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from ojpanel.core.style import (
    FigureLayoutError,
    FigureLayoutWarning,
    figure_problems,
    indicator_title,
    new_figure,
    plot_with_gaps,
    save_figure,
    style,
    unit_label,
    year_axis,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "ojpanel"


def _bare_figure(size=(3, 2)):
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def test_checker_finds_text_outside_canvas_overlaps_and_empty_axes():
    fig, ax = _bare_figure()
    ax.plot([0, 1])
    ax.text(0.9, 0.5, "a label running off the canvas", transform=ax.transAxes)
    ax.text(0.2, 0.3, "first label")
    ax.text(0.22, 0.3, "second label")
    problems = figure_problems(fig)
    assert any("outside the canvas: 'a label running off" in p for p in problems)
    assert any("overlapping labels: 'first label' and 'second label'" in p for p in problems)
    fig2, ax2 = _bare_figure()
    ax2.set_title("nothing drawn")
    assert any(p.startswith("empty axes: nothing drawn") for p in figure_problems(fig2))


def test_checker_passes_a_clean_styled_figure():
    with style():
        fig, ax = new_figure(size=(4, 3))
        ax.plot([2016, 2017, 2018], [1.0, 2.0, 1.5])
        indicator_title(ax, "Brukarbedömning hemtjänst äldreomsorg - helhetssyn, andel (%)", "U21468")
        year_axis(ax)
    assert figure_problems(fig) == []


def test_save_writes_png_and_svg_deterministically_and_strict_mode_raises(tmp_path, monkeypatch):
    with style():
        fig, ax = new_figure(size=(4, 3))
        ax.plot([1, 2], [3, 4])
    a = save_figure(fig, tmp_path / "a.png")
    b = save_figure(fig, tmp_path / "b.png")
    assert [p.suffix for p in a] == [".png", ".svg"]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))
    bad, ax = _bare_figure()
    ax.set_title("empty")
    monkeypatch.delenv("OJPANEL_FIGURE_CHECK", raising=False)
    with pytest.warns(FigureLayoutWarning, match="empty axes"):
        save_figure(bad, tmp_path / "bad.png")
    monkeypatch.setenv("OJPANEL_FIGURE_CHECK", "strict")
    with pytest.raises(FigureLayoutError, match=r"bad2.png: .*empty axes: empty"):
        save_figure(bad, tmp_path / "bad2.png")


def test_missing_years_are_gaps_and_short_runs_get_bars():
    with style():
        fig, ax = new_figure()
        plot_with_gaps(ax, [2015, 2016, 2017, 2019, 2020], [1, 2, 3, 4, 5],
                       [0, 1, 2, 3, 4], [2, 3, 4, 5, 6])
    line = ax.lines[0]
    x, y = line.get_data()
    assert list(x) == [2015, 2016, 2017, 2018, 2019, 2020]
    assert np.isnan(y[3]) and not np.isnan(y).sum() > 1
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1  # 2015–2017 get a band; 2019–2020 (two years) get error bars
    assert len(ax.containers) == 1


def test_year_ticks_are_integers():
    with style():
        fig, ax = new_figure()
        ax.plot([2018, 2019], [1, 2])
        year_axis(ax)
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)


@pytest.mark.parametrize(
    ("title", "unit"),
    [
        ("Brukarbedömning hemtjänst äldreomsorg - helhetssyn, andel (%)", "Andel (%)"),
        ("Kostnad äldreomsorg, kr/inv 65+", "Kr/inv 65+"),
        ("Nettokostnadsavvikelse äldreomsorg, (%)", "Procent (%)"),
        ("Aktuell rutin för samordning, (Ja=1, Nej=0) (-2021)", "Andel ja (0–1)"),
        ("Hemtjänsttagare 65+ i ordinärt boende, antal", "Antal"),
    ],
)
def test_units_come_from_the_titles(title, unit):
    assert unit_label(title) == unit


def test_no_library_module_forces_a_backend_or_uses_pyplot():
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if re.search(r"matplotlib\.use\(|import matplotlib\.pyplot|from matplotlib import pyplot", p.read_text())
    ]
    assert offenders == []


def test_package_figures_pass_the_checker(embedded_panel):
    from ojpanel.report import describe
    from ojpanel.report.coefplot import coef_plot
    from ojpanel.report.describe import plot_trends, trend_table
    from ojpanel.report.funnel import funnel_plot

    ds = embedded_panel.oj.select(area="äldreomsorg")
    trends = trend_table(ds)
    ids = list(dict.fromkeys(trends["indicator"]))[:8]
    assert figure_problems(plot_trends(trends[trends["indicator"].isin(ids)], "Äldreomsorg")) == []
    # every page of the report's ekonomiskt bistånd figures: units too long for a panel's height
    # ("Andel (%) av utbetalt ekonomiskt bistånd") ran into the source note until wrapped
    eb = trend_table(embedded_panel.oj.select(area="ekonomiskt bistånd"))
    ids = list(dict.fromkeys(eb["indicator"]))
    assert any(len(unit_label(str(t))) > 30 for t in eb["title"])
    for k in range(0, len(ids), describe._PER_PAGE):
        page = eb[eb["indicator"].isin(ids[k:k + describe._PER_PAGE])]
        assert figure_problems(plot_trends(page, f"Ekonomiskt bistånd: nationella trender ({k})")) == []

    rng = np.random.default_rng(3)
    n = rng.integers(5, 400, 290)
    p = np.clip(rng.normal(0.8, 0.08, 290), 0.01, 0.99)
    names = ds["municipality_name"].values
    fig, table = funnel_plot(p, n, labels=names, title="Tratt", ylabel="Andel (0–1)")
    assert figure_problems(fig) == []
    assert (table["flag"] != "within").sum() > 0

    titles = dict(zip(ds["indicator"].values, ds["title"].values, strict=True))
    rows = pd.DataFrame({
        "indicator": ids * 2,
        "design": ["flagga"] * len(ids) + ["lutning"] * len(ids),
        "estimate": np.r_[rng.normal(0, 1, len(ids)), rng.normal(0, 0.02, len(ids))],
        "std_error": np.r_[np.full(len(ids), 0.5), np.full(len(ids), 0.01)],
    })
    fig = coef_plot(rows, titles=titles, facet="design", xlabel={"flagga": "Procentenheter", "lutning": "Per enhet"})
    assert figure_problems(fig) == []
    assert len(fig.axes) == 2 and fig.axes[0].get_xlim() != fig.axes[1].get_xlim()
