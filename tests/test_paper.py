"""The paper template is filled only from recorded pipeline results; missing results are errors."""

from __future__ import annotations

import json

import pytest

from ojpanel.errors import DataError
from ojpanel.report.paper import fmt, md_table, render_paper


def _summary(tmp_path, records):
    pipe = tmp_path / "pipeline"
    (pipe / "02_x").mkdir(parents=True)
    (pipe / "02_x" / "fig.png").write_bytes(b"\x89PNG fake")
    s = {"started": "t", "smoke": True, "versions": {"ojpanel": "0"},
         "notebooks": [{"name": "01_a", "records": records, "seconds": 1.0}]}
    path = pipe / "summary.json"
    path.write_text(json.dumps(s))
    return path


def test_render_fills_numbers_tables_and_figures(tmp_path):
    summary = _summary(tmp_path, {"n": 290, "share": 0.1234, "rows": [{"a": 1, "b": 0.5}]})
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "paper.md").write_text(
        "N = {{ r['01_a'].n | fmt }}; share {{ r['01_a'].share | pct }}\n\n{{ table(r['01_a'].rows) }}\n\n"
        "{{ figure('02_x/fig.png', 'A figure') }}\n", encoding="utf-8")
    out = render_paper(summary, tmp_path / "out", paper)
    text = out["markdown"].read_text(encoding="utf-8")
    assert "N = 290; share 12.3 %" in text
    assert "| a | b |" in text and "| 1 | 0.5 |" in text
    assert (tmp_path / "out" / "figures" / "02_x__fig.png").exists()
    assert "<table>" in out["html"].read_text(encoding="utf-8")


def test_missing_result_or_figure_is_an_error(tmp_path):
    summary = _summary(tmp_path, {"n": 290})
    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / "paper.md").write_text("{{ r['01_a'].missing }}", encoding="utf-8")
    with pytest.raises(DataError, match="did not record"):
        render_paper(summary, tmp_path / "out", paper)
    (paper / "paper.md").write_text("{{ figure('02_x/none.png', 'x') }}", encoding="utf-8")
    with pytest.raises(DataError, match="which the pipeline did not write"):
        render_paper(summary, tmp_path / "out", paper)


def test_formatting():
    assert fmt(1234567) == "1 234 567" and fmt(0.012345) == "0.0123" and fmt(None) == "–"
    assert md_table([]) == "*(no rows)*"
