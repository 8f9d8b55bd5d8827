"""``ojpanel steering``: one source required, files written together, provenance, clean errors."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from ojpanel.cli import app
from ojpanel.config import PROCESSED_SOURCE_NOTE


def test_steering_on_the_synthetic_panel_writes_every_table(tmp_path):
    out = tmp_path / "steer"
    r = CliRunner().invoke(app, ["steering", "--synthetic", "--seed", "3", "--no-logit", "--out", str(out)])
    assert r.exit_code == 0, r.output
    names = {p.name for p in out.iterdir()}
    assert {"steering.csv", "transition_rates.csv", "adoption_summary.csv", "summary.txt",
            "adoption_curves.png", "event_study.png", "provenance.json"} <= names
    assert not [n for n in names if n.startswith(".")]  # no temporary directory left behind
    tidy = pd.read_csv(out / "steering.csv")
    assert (tidy["data"] == "synthetic").all() and tidy["mde"].notna().all()
    assert {"adoption_lpm", "combined", "event_cohort", "event_twfe", "oj_use"} <= set(
        json.loads((out / "provenance.json").read_text())["designs_run"])
    meta = json.loads((out / "provenance.json").read_text())
    assert meta["source_note"] == PROCESSED_SOURCE_NOTE and "Kolada" not in meta["source_note"]
    assert meta["source"] == {"input": "synthetic checklist simulator", "seed": 3}
    assert "SYNTHETIC" in (out / "summary.txt").read_text()


def test_steering_on_embedded_shares_says_what_it_cannot_run(tmp_path):
    out = tmp_path / "lss"
    r = CliRunner().invoke(app, ["steering", "--embedded-area", "LSS", "--no-logit", "--out", str(out)])
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "provenance.json").read_text())
    assert meta["source"]["area"] == "LSS" and meta["source"]["dichotomised"] == "value >= 100.0"
    assert any("OJ-use moderator" in k for k in meta["designs_skipped"])
    assert "Not run" in (out / "summary.txt").read_text()
    assert (pd.read_csv(out / "steering.csv")["data"] == "real").all()


def test_steering_needs_exactly_one_source(tmp_path):
    runner = CliRunner()
    none = runner.invoke(app, ["steering", "--out", str(tmp_path / "a")])
    both = runner.invoke(app, ["steering", "--synthetic", "--embedded-area", "LSS", "--out", str(tmp_path / "b")])
    for r in (none, both):
        assert r.exit_code == 2
        assert "exactly one of --panel" in r.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    neg = runner.invoke(app, ["steering", "--synthetic", "--power-sims", "-1", "--out", str(tmp_path / "d")])
    assert neg.exit_code == 2 and "--power-sims" in neg.output and not (tmp_path / "d").exists()
    missing = runner.invoke(app, ["steering", "--panel", str(tmp_path / "nope.nc"), "--out", str(tmp_path / "c")])
    assert missing.exit_code == 2 and "nope.nc" in missing.output
