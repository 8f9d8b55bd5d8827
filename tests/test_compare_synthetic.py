"""The comparison end to end on the synthetic checklist panel (with Kolada's codings), the audit's
combined rows, the method-choice evaluation and the command line.

With every checklist item of the spec simulated, harmonised and given an OJ-users file and a
socioeconomic grouping, the comparison must reach every table of the appendix that the checklist
items fill (Tables 2–5 and 8–17), so a user who fetches the real items gets the full report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ojpanel.cli import app
from ojpanel.indicators.harmonise import harmonise
from ojpanel.panel.build import from_harmonised
from ojpanel.panel.io import save_panel
from ojpanel.replication import compare_published, rir2021, write_rir2021
from ojpanel.replication.choices import CHOICES, decide, evaluate_choices, peer_cells
from ojpanel.replication.grouprows import GROUP_RULE, add_group_rows
from ojpanel.simulate.checklist import simulate_checklist

AREAS = ("äldreomsorg", "ekonomiskt bistånd", "barn och unga")


def _users(panel, seed):
    rng = np.random.default_rng(seed)
    munis = panel["municipality"].values.astype(str)
    rows = [(m, a, s) for a in AREAS
            for m, s in zip(munis, rng.choice(["user", "non_user", "other"], size=len(munis), p=[0.6, 0.25, 0.15]), strict=True)]
    return pd.DataFrame(rows, columns=["municipality", "area", "status"])


def _socio(panel, seed):
    rng = np.random.default_rng(seed)
    munis = panel["municipality"].values.astype(str)
    return pd.Series(rng.integers(1, 8, len(munis)).astype(str), index=munis)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    raw, _ = simulate_checklist(seed=7)
    panel = from_harmonised(harmonise(raw))
    out = tmp_path_factory.mktemp("full")
    rep = write_rir2021(panel, out, oj_users=_users(panel, 7), groupings={"socioeconomic": _socio(panel, 7)},
                        mode="faithful")
    return panel, rep, out


def test_comparison_covers_the_checklist_tables(full):
    panel, rep, out = full
    fid = rep.compare_published()
    bt = fid.by_table().set_index("table")
    assert list(bt.index) == list(range(2, 18))
    checklist_tables = [2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
    assert (bt.loc[checklist_tables, "rows_checked"] > 0).all(), bt["rows_checked"]
    # every checklist row of the appendix meets our results (the user-survey rows of Table 2 are
    # not simulated, Table 6 needs unit-level data and Table 7 has no KPI)
    rows = fid.rows
    missing = rows[(rows["n_held"] == 0) & rows["table"].isin(checklist_tables)]
    assert set(missing["table"]) <= {2}
    assert set(missing["row"]) == {"Allmänt hälsotillstånd", "Personalens bemötande", "Sammantaget"}
    reasons = set(fid.cells["reason"]) - {""}
    assert "grouping not supplied" not in reasons and "OJ users not supplied" not in reasons
    assert (fid.cells[fid.cells["table"] == 6]["reason"] == "unit-level data not held").all()
    # cell-level comparisons happen where the appendix's columns can be read
    assert fid.totals()["agree"] + fid.totals()["disagree"] > 100
    # the written report and cell table
    assert (out / "fidelity" / "cells.csv").is_file() and (out / "fidelity" / "rows.csv").is_file()
    written = pd.read_csv(out / "fidelity" / "cells.csv", keep_default_na=False)
    assert len(written) == 1103
    assert "## Agreement with the published appendix" in (out / "report.md").read_text(encoding="utf-8")


def test_combined_rows_are_the_mean_of_their_items(full):
    panel, rep, _ = full
    ids = rep.indicators.set_index("indicator")
    for gid, items in {
        "eb_grp_samverkan": ["eb_samverkan_primarvard", "eb_samverkan_arbetsformedlingen",
                             "eb_samverkan_forsakringskassan", "eb_samverkan_vuxenpsykiatri"],
        "ao_grp_samordning": ["ao_samord_missbruk", "ao_samord_socialpsykiatri"],
    }.items():
        assert gid in ids.index and ids.loc[gid, "role"] == "checklist"
        grown, _ = add_group_rows(panel)
        got = grown["value"].sel(indicator=gid).to_dataframe()["value"]
        # independent computation: pandas mean over the items with a value
        long = panel["value"].sel(indicator=items).to_dataframe().reset_index()
        want = long.groupby(["municipality", "year"])["value"].mean()
        got = got.reorder_levels(want.index.names).sort_index()
        want = want.sort_index()
        assert [tuple(map(str, k)) for k in got.index] == [tuple(map(str, k)) for k in want.index]
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, equal_nan=True)
    assert ids.loc["bou_grp_samverkan", "indicator_group"] == "Aktuell rutin för extern samverkan"
    assert GROUP_RULE in rep.choices["all"]
    c = rep.tables["C"]
    assert len(c[c["indicator"] == "bou_grp_samordning"]) == 6  # 3 groupings x pooled and last year


def test_combined_row_needs_every_item():
    raw, _ = simulate_checklist(seed=1, variables=["eb_samord_barn", "eb_samord_missbruk", "bou_manual_stodgrupp"])
    panel = from_harmonised(harmonise(raw))
    grown, notes = add_group_rows(panel)
    assert list(grown["indicator"].values) == list(panel["indicator"].values)
    assert notes == ["combined row 'Intern samordning' (ekonomiskt bistånd) was not built: the panel lacks "
                     "item(s) eb_samord_socialpsykiatri, eb_samord_lss"]
    rep = rir2021(panel)
    assert notes[0] in rep.skipped
    cell = rep.compare_published().cells
    miss = cell[(cell["table"] == 9) & (cell["row_no"] == 1)]
    socio = miss["column"].str.endswith("socioeconomic")
    assert (miss.loc[socio, "reason"] == "grouping not supplied").all()
    assert (miss.loc[~socio, "reason"] == "data not held").all()
    assert "lacks item(s) eb_samord_socialpsykiatri, eb_samord_lss" in miss.loc[~socio, "explanation"].iloc[0]


@pytest.fixture(scope="module")
def small():
    raw, _ = simulate_checklist(seed=11, variables=["eb_hushallsekonomi", "eb_isu_utveckling", "bou_manual_stodgrupp"])
    panel = from_harmonised(harmonise(raw))
    return panel, _users(panel, 11)


def test_peer_cells_reproduce_the_replication(small):
    panel, users = small
    rep = rir2021(panel, oj_users=users, mode="faithful")
    ours = peer_cells(rep.design("D"), rep.indicators, start_year=2016, users=users)
    d = rep.tables["D"]
    key = ["indicator", "peer_group", "lag", "outcome", "sample"]
    m = d.assign(lag=d["lag"].astype(int)).merge(ours, on=key, suffixes=("", "_again"))
    assert len(m) == len(d) == len(ours)
    np.testing.assert_allclose(m["estimate_again"], m["estimate"], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(m["p_value_again"], m["p_value"], rtol=1e-10, equal_nan=True)
    assert (m["stars"] == m["stars_again"]).all() and (m["period"] == m["period_again"]).all()
    # ties at the percentile count as 1 under 'at or above': never fewer flagged municipalities
    ge = peer_cells(rep.design("D"), rep.indicators, start_year=2016, users=users, at_or_above=True)
    assert len(ge) == len(ours)


def test_choice_evaluation(small):
    panel, users = small
    ev = evaluate_choices(panel, oj_users=users)
    opts = ev.options
    assert list(dict.fromkeys(opts["choice"])) == list(CHOICES)
    assert opts.groupby("choice")["default"].sum().eq(1).all()
    # the percentile rule changes D cells, which meet the published Tables 10-12 and 15-17
    pr = opts[opts["choice"] == "percentile rule and ties"]
    assert pr["testable"].all() and (pr["held"] > 0).all()
    # the default's score is the comparison of the faithful replication itself
    base = rir2021(panel, oj_users=users, mode="faithful").compare_published()
    rows = base.rows[(base.rows["analysis"] == "D") & (base.rows["status"] != "not comparable")]
    assert pr[pr["default"]]["held"].iloc[0] == rows["n_held"].sum()
    assert pr[pr["default"]]["min_disagreements"].iloc[0] == rows["min_disagreements"].sum()
    assert not opts.loc[opts["choice"] == "weights", "testable"].any()
    assert set(ev.verdicts) == set(CHOICES)
    assert "faithful default" in ev.summary and "(* = faithful default)" in ev.summary


def _options(rates_held):
    rows = [{"option": o, "default": k == 0, "testable": True, "held": h, "min_disagreements": d, "rate": d / h}
            for k, (o, d, h) in enumerate(rates_held)]
    return pd.DataFrame(rows)


def test_decision_rule():
    assert "it stays" in decide("x", _options([("a", 5, 40), ("b", 6, 40)]))
    thin = decide("x", _options([("a", 11, 24), ("b", 10, 24)]))
    assert "only 24 cells of evidence" in thin and "'a' stays" in thin
    small_gain = decide("x", _options([("a", 12, 60), ("b", 10, 60)]))
    assert "removes only 2.0 disagreement(s)" in small_gain and "stays" in small_gain
    change = decide("x", _options([("a", 20, 60), ("b", 8, 60)]))
    assert "the evidence supports making it the faithful default" in change


def test_reproduce_command_writes_the_fidelity_report(tmp_path, small):
    panel, users = small
    path = save_panel(panel, tmp_path / "panel.nc")
    users.to_csv(tmp_path / "users.csv", index=False)
    res = CliRunner().invoke(app, ["reproduce", "rir2021", "--panel", str(path), "--oj-users", str(tmp_path / "users.csv"),
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "Agreement with the published appendix" in res.output
    assert "Method choices left open by the audit" in res.output
    for f in ("cells.csv", "rows.csv", "by_table.csv", "summary.txt", "choices.csv", "choices.txt"):
        assert (tmp_path / "out" / "fidelity" / f).is_file(), f
    again = CliRunner().invoke(app, ["reproduce", "rir2021", "--panel", str(path), "--no-evaluate-choices",
                                     "--out", str(tmp_path / "out")])
    assert again.exit_code == 0 and "Method choices" not in again.output
    assert not (tmp_path / "out" / "fidelity" / "choices.csv").exists()  # no stale choice table
    bad = CliRunner().invoke(app, ["reproduce", "rir2021", "--grouping", "socio.csv", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "NAME=FILE.csv" in bad.output
    assert not (tmp_path / "bad").exists()


def test_compare_published_function_equals_method(full):
    _, rep, _ = full
    a, b = compare_published(rep), rep.compare_published()
    pd.testing.assert_frame_equal(a.cells, b.cells)
