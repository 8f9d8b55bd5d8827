"""``ojpanel fetch`` and ``ojpanel kpi`` against the local Kolada look-alike."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from kolada_server import RIR_LOCAL, real_values
from ojpanel.cli import app
from ojpanel.cli.fetch import preset_kpis
from ojpanel.data.snapshot import read_snapshot
from ojpanel.errors import ParameterError
from ojpanel.indicators.harmonise import harmonise
from ojpanel.indicators.spec import load_spec
from ojpanel.panel import from_harmonised

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_fetch_kpis_writes_snapshot(srv, tmp_path):
    out = tmp_path / "snap"
    r = run("fetch", "--kpi", "U21468,U23471", "--years", "2018-2019", "--out", out,
            "--base-url", srv.url(), "--cache-dir", tmp_path / "cache")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "wrote snapshot" in r.output
    values, prov = read_snapshot(out)
    real = real_values()
    exp = real[real["kpi"].isin(["U21468", "U23471"]) & real["year"].isin([2018, 2019])]
    assert len(values) == len(exp)
    merged = values.merge(exp, on=["kpi", "municipality", "year", "gender"], suffixes=("", "_real"))
    pd.testing.assert_series_equal(merged["value"], merged["value_real"], check_names=False)
    assert prov["base_url"] == srv.url() and prov["api_version"] == "v3"
    assert prov["query"]["years"] == [2018, 2019]


def test_fetch_v2_and_municipalities(srv, tmp_path):
    srv.retired.clear()  # a mirror that still speaks v2
    out = tmp_path / "snap"
    r = run("fetch", "--kpi", "U21468", "--municipalities", "0180,1480", "--out", out,
            "--base-url", srv.url("v2"), "--no-cache", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    values, prov = read_snapshot(out)
    assert prov["api_version"] == "v2" and prov["cache_dir"] is None
    assert set(values["municipality"]) == {"0180", "1480"}
    assert sorted(values["year"].unique()) == list(range(2015, 2021))


def test_preset_rir2021_default_years_and_missing_kpis(srv, tmp_path):
    out = tmp_path / "snap"
    r = run(
        "fetch",
        "--preset",
        "rir2021",
        "--out",
        out,
        "--base-url",
        srv.url(),
        "--cache-dir",
        tmp_path / "c",
    )
    assert r.exit_code == 0, r.output
    values, prov = read_snapshot(out)
    assert prov["query"]["years"] == [2016, 2017, 2018, 2019, 2020]
    assert set(values["kpi"]) == set(RIR_LOCAL)
    assert len(set(srv.paths("/data/"))) == 4  # 76 KPIs in chunks of 25
    assert "returned no values" in r.output
    assert len(prov["rows"]["kpis_without_values"]) == len(load_spec().kpis()) - len(RIR_LOCAL)
    # the fetched real values harmonise into the audit's user-survey and staffing variables
    h = harmonise(values)
    got = h.values.query("variable == 'ao_bu_helhet_hemtjanst'")
    real = real_values()
    exp = real[(real["kpi"] == "U21468") & (real["gender"] == "T") & real["year"].between(2016, 2019)]
    assert len(got) == len(exp.dropna(subset=["value"])) > 1000
    assert set(got["year"]) == {2016, 2017, 2018, 2019}  # faithful: no 2020 user survey
    ds = from_harmonised(h)
    assert "ao_bemanning_ssk_vardag" in set(ds["indicator"].values)
    assert ds.sizes["municipality"] == 290


def test_presets():
    assert preset_kpis("rir2021") == load_spec().kpis()
    assert len(preset_kpis("oj-socialtjanst")) == 907
    with pytest.raises(ParameterError, match="unknown preset"):
        preset_kpis("nope")


def test_fetch_permanent_failure_leaves_nothing(srv, tmp_path):
    srv.faults.append(("/data/", ("status", 500, None, "sticky")))
    out = tmp_path / "snap"
    r = run("fetch", "--kpi", "U21468", "--years", "2019", "--out", out, "--base-url", srv.url(),
            "--no-cache", "--retries", "2", "--backoff", "0")  # fmt: skip
    assert r.exit_code == 2
    assert "failed after 3 attempt(s)" in r.output and "/data/kpi/U21468/year/2019" in r.output
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".snap")]


def test_fetch_offline_partial_cache(srv, tmp_path):
    cache = tmp_path / "cache"
    assert run("fetch", "--kpi", "U21468", "--years", "2019", "--out", tmp_path / "a",
               "--base-url", srv.url(), "--cache-dir", cache, "-q").exit_code == 0  # fmt: skip
    n = len(srv.log)
    # cached request: works offline
    r = run("fetch", "--kpi", "U21468", "--years", "2019", "--out", tmp_path / "b",
            "--base-url", srv.url(), "--cache-dir", cache, "--offline", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "b" / "provenance.json").read_text())["cache_hits"] == 1
    # 26 KPIs make two requests whose id lists differ from the cached one: both are named
    r = run("fetch", "--kpi", ",".join(["U21468"] + [f"U9{i:04d}" for i in range(25)]), "--years", "2019",
            "--out", tmp_path / "c", "--base-url", srv.url(), "--cache-dir", cache, "--offline")  # fmt: skip
    assert r.exit_code == 2
    assert "offline mode: 2 of 2 request(s) are not in the cache" in r.output
    assert not (tmp_path / "c").exists()
    assert len(srv.log) == n


def test_fetch_argument_errors(srv, tmp_path):
    r = run("fetch", "--out", tmp_path / "x")
    assert r.exit_code == 2 and "exactly one of --kpi" in r.output
    r = run("fetch", "--kpi", "A", "--preset", "rir2021", "--out", tmp_path / "x")
    assert r.exit_code == 2 and "exactly one of --kpi" in r.output
    r = run("fetch", "--kpi", "A", "--out", tmp_path / "x")
    assert r.exit_code == 2 and "--years" in r.output
    r = run("fetch", "--preset", "nope", "--out", tmp_path / "x")
    assert r.exit_code == 2 and "unknown preset" in r.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    r = run(
        "fetch",
        "--kpi",
        "U21468",
        "--years",
        "2019",
        "--out",
        tmp_path / "full",
        "--base-url",
        srv.url(),
    )
    assert r.exit_code == 2 and "not empty" in r.output
    assert srv.log == []
    r = run(
        "fetch",
        "--kpi",
        "U21468",
        "--years",
        "2019",
        "--out",
        tmp_path / "y",
        "--offline",
        "--no-cache",
    )
    assert r.exit_code == 2 and "cannot be combined" in r.output


def test_build_from_snapshot(srv, tmp_path):
    snap = tmp_path / "snap"
    assert run("fetch", "--kpi", "U21468,U23471", "--years", "2016-2019", "--out", snap,
               "--base-url", srv.url(), "--no-cache", "-q").exit_code == 0  # fmt: skip
    r = run("build", "--from", snap, "--out", tmp_path / "panel.nc")
    assert r.exit_code == 0, r.output
    from ojpanel.panel.io import load_panel

    ds = load_panel(tmp_path / "panel.nc")
    assert set(ds["indicator"].values) == {"U21468", "U23471"}
    real = real_values()
    v = real[
        (real["kpi"] == "U21468")
        & (real["municipality"] == "0180")
        & (real["year"] == 2017)
        & (real["gender"] == "T")
    ]
    assert ds["value"].sel(
        indicator="U21468", municipality="0180", year=2017
    ).item() == pytest.approx(v["value"].item())


def test_kpi_search_and_show(srv):
    r = run("kpi", "search", "hemtjänst helhetssyn")
    assert r.exit_code == 0, r.output
    assert "U21468" in r.output and "embedded catalogue" in r.output
    r = run("kpi", "search", "zzzz-no-such-word")
    assert r.exit_code == 2 and "no KPI" in r.output
    r = run("kpi", "show", "U21468")
    assert r.exit_code == 0, r.output
    assert "helhetssyn" in r.output and "ao_bu_helhet_hemtjanst" in r.output
    r = run("kpi", "show", "X00000")
    assert r.exit_code == 2 and "not in the embedded catalogue" in r.output
    r = run("kpi", "search", "helhetssyn", "--live", "--base-url", srv.url())
    assert r.exit_code == 0, r.output
    assert "U21468" in r.output and "Kolada http://127.0.0.1" in r.output
    assert srv.paths("/v3/kpi")
    r = run("kpi", "show", "U21468", "--live", "--base-url", srv.url())
    assert r.exit_code == 0 and "helhetssyn" in r.output
