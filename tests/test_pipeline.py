"""The notebook pipeline: discovery, parameter checks before execution, failures, recorded results."""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from ojpanel.errors import ParameterError
from ojpanel.pipeline import (
    PipelineError,
    default_jobs,
    discover,
    notebook_parameters,
    plan,
    read_records,
    run_pipeline,
)
from ojpanel.pipeline.declarations import matches_write, read_declaration
from ojpanel.pipeline.parameters import parse_cli_parameter
from ojpanel.pipeline.record import to_jsonable
from ojpanel.pipeline.runner import default_notebooks_dir


def _write_nb(path, params: str, body: list[str]):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, *[nbformat.v4.new_code_cell(b) for b in body]]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def test_discover_fails_on_zero_notebooks(tmp_path):
    with pytest.raises(PipelineError, match="no notebooks matching"):
        discover(tmp_path)


def test_discover_orders_and_selects(tmp_path):
    for name in ("02_b", "01_a", "10_c"):
        _write_nb(tmp_path / f"{name}.ipynb", "x = 1", [])
    (tmp_path / "scratch.ipynb").write_text("{}")
    assert [p.stem for p in discover(tmp_path)] == ["01_a", "02_b", "10_c"]
    assert [p.stem for p in discover(tmp_path, select=["02"])] == ["02_b"]
    with pytest.raises(ParameterError, match=r"no notebook matches \['07'\]"):
        discover(tmp_path, select=["07"])


def test_parameters_checked_before_any_execution(tmp_path):
    a = _write_nb(tmp_path / "01_a.ipynb", "seed = 1\nalpha = 0.05\nsmoke = False\nout_dir = ''", [])
    b = _write_nb(tmp_path / "02_b.ipynb", "area = 'LSS'\nsmoke = False", [])
    assert notebook_parameters(a) == {"seed": 1, "alpha": 0.05, "smoke": False, "out_dir": ""}
    planned = dict((p.stem, q) for p, q in plan([a, b], {"alpha": 1, "02:area": "äldreomsorg"}, smoke=True,
                                                out_dir=tmp_path / "o"))
    assert planned["01_a"]["alpha"] == 1 and planned["01_a"]["smoke"] is True
    assert planned["02_b"] == {"smoke": True, "area": "äldreomsorg"}
    with pytest.raises(ParameterError, match="unknown parameter 'alfa': no notebook accepts it"):
        plan([a, b], {"alfa": 0.1}, smoke=False, out_dir=tmp_path)
    with pytest.raises(ParameterError, match=r"parameter seed must be int \(default 1\), got str 'x'"):
        plan([a, b], {"seed": "x"}, smoke=False, out_dir=tmp_path)
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['seed'\]; 02_b.ipynb accepts"):
        plan([a, b], {"02:seed": 3}, smoke=False, out_dir=tmp_path)
    with pytest.raises(ParameterError, match="parameter smoke must be bool"):
        plan([a, b], {"smoke": 1}, smoke=False, out_dir=tmp_path)
    assert not (tmp_path / "o").exists()


def test_parameters_cell_must_be_literal(tmp_path):
    nb = _write_nb(tmp_path / "01_a.ipynb", "import os\nx = os.getcwd()", [])
    with pytest.raises(ParameterError, match="may only assign literals"):
        notebook_parameters(nb)


def test_cli_parameter_parsing():
    assert parse_cli_parameter("seed=3") == ("seed", 3)
    assert parse_cli_parameter("area=LSS") == ("area", "LSS")
    assert parse_cli_parameter("years=[2016, 2017]") == ("years", [2016, 2017])
    with pytest.raises(ParameterError):
        parse_cli_parameter("seed")


def test_jsonable_records():
    got = to_jsonable({"a": np.float64(1.5), "b": np.arange(3), "c": float("nan"),
                       "d": pd.DataFrame({"x": [1, 2]})})
    assert got == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": [{"x": 1}, {"x": 2}]}
    with pytest.raises(TypeError, match="cannot record"):
        to_jsonable(object())


def test_failing_notebook_names_notebook_and_cell(tmp_path):
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    _write_nb(nbdir / "01_ok.ipynb", "smoke = False",
              ["from ojpanel.pipeline import record\nrecord('answer', 42)"])
    _write_nb(nbdir / "02_bad.ipynb", "smoke = False", ["x = 1", "raise ValueError('bad thing happened')"])
    with pytest.raises(PipelineError) as e:
        run_pipeline(nbdir, tmp_path / "out", progress=False, html=False)
    assert "02_bad.ipynb failed" in str(e.value) and "ValueError: bad thing happened" in str(e.value)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["failed"]["notebook"] == "02_bad.ipynb"
    assert summary["notebooks"][0]["records"] == {"answer": 42}
    assert read_records(tmp_path / "out" / "01_ok.ipynb") == {"answer": 42}


@pytest.mark.notebook
def test_smoke_pipeline_runs_every_notebook(smoke_pipeline):
    names = [r.name for r in smoke_pipeline.runs]
    assert names == [p.stem for p in discover()]
    for r in smoke_pipeline.runs:
        assert r.notebook.exists() and r.html is not None and r.html.stat().st_size > 10_000
        assert r.records, f"{r.name} recorded no results"
    summary = json.loads(smoke_pipeline.summary_path.read_text())
    assert summary["smoke"] is True and "ojpanel" in summary["versions"]


@pytest.mark.notebook
def test_smoke_pipeline_build_panel_results(smoke_pipeline):
    rec = smoke_pipeline.records["01_build_panel"]
    assert rec["n_municipalities"] == 290
    assert rec["years"] == [2016, 2020]
    assert rec["indicators_per_area"] == {"äldreomsorg": rec["n_indicators"]}
    assert rec["content_hash"].startswith("sha256:")


@pytest.mark.notebook
def test_smoke_pipeline_trends_results(smoke_pipeline):
    rec = smoke_pipeline.records["02_trends_and_variation"]
    assert rec["n_indicators"] == 4
    for g in ("county", "kommungrupp_2017"):
        assert 0 <= rec["eta2_median"][g] <= 1
    assert all(np.isfinite(v) for v in rec["latest_national_mean"].values())


@pytest.mark.notebook
def test_smoke_pipeline_replication_results(smoke_pipeline):
    rec = smoke_pipeline.records["03_rir2021_replication"]
    assert rec["n_regressions"] > 0 and rec["n_anovas"] > 0
    assert set(rec["D_cells"]) == {"faithful", "improved"}
    assert rec["synthetic_planted_stars"] == ["++", "++", "++"]
    assert sum(s in ("+", "++") for s in rec["synthetic_null_stars"]) <= 1
    assert any("B skipped" in s for s in rec["skipped"])


@pytest.mark.notebook
def test_smoke_pipeline_peer_design_results(smoke_pipeline):
    rec = smoke_pipeline.records["04_peer_effects_fixed_effects"]
    share = rec["share_p05"]
    # corrections can only remove rejections: Holm <= BH <= unadjusted (wild bootstrap)
    assert share["holm"] <= share["bh"] <= share["wild_bootstrap"]
    assert rec["exclusion_bias"]["bias_rho_0.5"] < 0
    assert 0 <= rec["placebo_share_p05"] <= 1
    assert len(rec["peer_table"]) == rec["n_indicators"]


@pytest.mark.notebook
def test_smoke_pipeline_power_and_rd_results(smoke_pipeline):
    rec = smoke_pipeline.records["06_power_and_colour_rd"]
    check = rec["analytic_vs_simulated_users_mde"]
    assert check["simulated"] == pytest.approx(check["analytic"], rel=0.25)
    assert {r["design"] for r in rec["mde"]} == {"users", "peer", "peer_neighbours"}
    assert [r["cutoff"] for r in rec["rd_thresholds"]] == [0.25, 0.75]
    assert all(r["std_error"] > 0 for r in rec["rd_thresholds"])
    assert all(lo < r["estimate_bc"] < hi for r in rec["rd_thresholds"] for lo, hi in [r["ci_robust"]])
    # the MDE rests on size-adjusted power, so the simulated size is recorded for every design
    assert all(0 <= r["size_at_zero"] <= 1 for r in rec["mde"])
    # the RD diagnostics the paper reads: density (with the donut test), balance, local randomisation
    assert [r["cutoff"] for r in rec["rd_density"]] == [0.25, 0.75]
    assert all(0 <= r["density_p"] <= 1 and 0 <= r["density_p_donut"] <= 1 for r in rec["rd_density"])
    # whole-number values: a share of the values ties with each threshold
    assert all(r["density_share_at_cutoff"] > 0.01 for r in rec["rd_density"])
    assert {(r["cutoff"], r["variable"]) for r in rec["rd_balance"]} == {
        (c, v) for c in (0.25, 0.75) for v in ("lag_change", "lag_level")}
    assert all(0 < r["lr_p_value"] <= 1 for r in rec["rd_local_randomisation"])
    check = rec["rd_density_check"]
    assert 0.5 < check["whole_share"] <= 1
    # rounded smooth values without sorting reject at the red threshold; unrounded they do not
    red = check["rows"][0]
    assert red["simulated_rounded_p"] < 0.05 < red["simulated_smooth_p"]


@pytest.mark.notebook
def test_smoke_pipeline_steering_results(smoke_pipeline):
    rec = smoke_pipeline.records["07_knowledge_steering"]
    err = rec["steering_event_max_abs_error"]
    assert err["staggered"] < err["twfe"]  # the staggered estimator beats the naive TWFE on planted effects
    lpm = rec["steering_red_flag_lpm"]
    assert abs(lpm["estimate"] - rec["steering_red_flag_ame_truth"]) < 4 * lpm["se"]
    placebo = rec["steering_oj_use_placebo"]
    assert abs(placebo["estimate"]) < 4 * placebo["std_error"]
    assert rec["steering_real_items"] > 0 and 0 <= rec["steering_real_median_hazard"] <= 1


@pytest.mark.notebook
def test_smoke_pipeline_bayesian_results(smoke_pipeline):
    rec = smoke_pipeline.records["05_bayesian_hierarchical"]
    pooled = rec["pooled_effect"]
    assert pooled["q05"] <= pooled["mean"] <= pooled["q95"]
    assert rec["effect_spread"]["mean"] > 0
    diag = rec["diagnostics"]
    # smoke fits are short: the gates are computed and reported, passed or not
    assert set(diag) >= {"passed", "max_rhat", "min_ess_bulk", "divergences"} and diag["sampler"] == "nutpie"
    assert diag["passed"] == (diag["max_rhat"] <= 1.01 and diag["min_ess_bulk"] >= 400
                              and diag["min_ess_tail"] >= 400 and diag["divergences"] == 0)
    assert len(rec["fe_comparison"]) == rec["n_indicators"] + 1


@pytest.mark.notebook
def test_smoke_pipeline_geography_results(smoke_pipeline):
    rec = smoke_pipeline.records["08_geography"]
    assert rec["geo_graph"]["pairs"] == 694 and rec["geo_graph"]["islands"] == "exclude"
    assert rec["geo_graph"]["without_neighbours"] == ["0125", "0186", "0980", "1407", "1419"]
    ids = [r["indicator"] for r in rec["geo_indicators"]]
    assert ids == ["U21468", "U23471"]  # smoke: the first two elderly-care user-survey indicators
    assert [r["indicator"] for r in rec["yardstick"]] == sorted(ids)
    for r in rec["yardstick"]:
        assert r["se_conley"] > 0 and r["se_county"] > 0 and 0 <= r["p_conley"] <= 1
        assert abs(r["estimate"]) < 1  # a share of the neighbours' deviation
    for r in rec["yardstick_placebo"]:
        assert 1 / 20 <= r["p_value"] <= 1 and r["n_rewirings"] == 19
    assert {r["indicator"] for r in rec["neighbour_peer"]} == set(ids)
    assert 0 <= rec["yardstick_power"][0]["size_at_zero"] <= 1


@pytest.mark.notebook
def test_smoke_pipeline_rerun_is_cached_and_quick(smoke_pipeline, monkeypatch):
    monkeypatch.setenv("OJPANEL_FIGURE_CHECK", "strict")  # as the session's run had it
    t0 = time.perf_counter()
    again = run_pipeline(out_dir=smoke_pipeline.summary_path.parent, smoke=True, progress=False)
    assert again.cached == [r.name for r in smoke_pipeline.runs]
    assert time.perf_counter() - t0 < 10
    assert again.records == smoke_pipeline.records and again.timings() == smoke_pipeline.timings()


@pytest.mark.notebook
def test_one_worker_gives_the_results_of_the_parallel_run(smoke_pipeline, tmp_path):
    """Results do not depend on --jobs: notebooks 01-03 run again one at a time, from nothing,
    record exactly what they recorded beside the other notebooks in the session's parallel run."""
    first = ["01_build_panel", "02_trends_and_variation", "03_rir2021_replication"]
    assert json.loads(smoke_pipeline.summary_path.read_text())["jobs"] == default_jobs()
    serial = run_pipeline(out_dir=tmp_path / "serial", smoke=True, select=first, jobs=1, html=False,
                          progress=False, force=True)
    assert [r.name for r in serial.runs] == first and not serial.cached
    def same_places(records: dict, out: Path) -> str:
        # paths of written files differ by output directory only
        return json.dumps(records, sort_keys=True).replace(str(out.resolve()), "<out>")

    for name in first:
        assert same_places(serial.records[name], serial.summary_path.parent) == \
            same_places(smoke_pipeline.records[name], smoke_pipeline.summary_path.parent), name


@pytest.mark.notebook
def test_smoke_pipeline_notebooks_declare_every_file_they_write(smoke_pipeline):
    out = smoke_pipeline.summary_path.parent
    for run in smoke_pipeline.runs:
        writes = read_declaration(default_notebooks_dir() / f"{run.name}.ipynb").writes
        files = [p.relative_to(out / run.name).as_posix() for p in (out / run.name).rglob("*") if p.is_file()]
        undeclared = [f for f in files if not matches_write(f, writes)]
        assert not undeclared, f"{run.name} writes {undeclared}, which its metadata['ojpanel']['writes'] does not declare"
