"""`ojpanel build`, `ojpanel info` and `ojpanel reproduce describe` from the command line."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

import ojpanel
from ojpanel.cli import app

runner = CliRunner()


def test_build_and_info(tmp_path):
    out = tmp_path / "panel.nc"
    r = runner.invoke(app, ["build", "--areas", "äldreomsorg", "--years", "2018-2019", "--out", str(out)])
    assert r.exit_code == 0, r.output
    ds = ojpanel.load_panel(out)
    assert set(ds["area"].values) == {"äldreomsorg"} and ds["year"].values.tolist() == [2018, 2019]
    r = runner.invoke(app, ["info", str(out)])
    assert r.exit_code == 0 and "290 municipalities" in r.output and "coverage" in r.output


def test_build_from_csv_with_grouping(tmp_path):
    csv = tmp_path / "values.csv"
    pd.DataFrame({"kpi": ["U21468"] * 2, "municipality": ["0114", "0115"], "year": [2019, 2019],
                  "gender": ["T", "T"], "value": [80.0, 70.0]}).to_csv(csv, index=False)
    grp = tmp_path / "g.csv"
    pd.DataFrame({"municipality": ["0114", "0115"], "group": ["a", "a"]}).to_csv(grp, index=False)
    out = tmp_path / "p.zarr"
    r = runner.invoke(app, ["build", "--from-csv", str(csv), "--grouping", f"socio={grp}", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "socio" in ojpanel.load_panel(out).oj.groupings


@pytest.mark.parametrize(
    "rows,message",
    [
        ({"municipality": ["9999", "0115"]}, "unknown municipality code"),
        ({"municipality": ["0114", "0114"]}, "duplicate (kpi, municipality, year, gender) key"),
        ({"value": ["abc", "1"]}, "non-numeric value"),
    ],
)
def test_bad_input_fails_cleanly_without_output(tmp_path, rows, message):
    base = {"kpi": ["U21468"] * 2, "municipality": ["0114", "0115"], "year": [2019, 2019],
            "gender": ["T", "T"], "value": ["80", "70"]}
    base.update(rows)
    csv = tmp_path / "values.csv"
    pd.DataFrame(base).to_csv(csv, index=False)
    out = tmp_path / "p.nc"
    r = runner.invoke(app, ["build", "--from-csv", str(csv), "--out", str(out)])
    assert r.exit_code == 2
    assert message in " ".join(r.output.split())
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["values.csv"]


def test_bad_options(tmp_path):
    r = runner.invoke(app, ["build", "--years", "2020-2016", "--out", str(tmp_path / "p.nc")])
    assert r.exit_code == 2 and "runs backwards" in r.output
    r = runner.invoke(app, ["build", "--out", str(tmp_path / "p.txt")])
    assert r.exit_code == 2 and ".nc (netCDF) or .zarr" in r.output
    r = runner.invoke(app, ["info", str(tmp_path / "missing.nc")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_descriptive_report(tmp_path):
    from ojpanel.report.describe import write_descriptive_report

    ds = ojpanel.build_panel(kpis=["U21468", "U23471", "N00980"], years=range(2016, 2021))
    paths = write_descriptive_report(ds, tmp_path)
    cov = pd.read_csv(paths["coverage"])
    assert len(cov) == 3 * 5 and cov["coverage"].between(0, 1).all()
    trends = pd.read_csv(paths["trends"], dtype={"indicator": str})
    t = trends[(trends["indicator"] == "U21468") & (trends["year"] == 2019)].iloc[0]
    v = ds["value"].sel(indicator="U21468", year=2019).values
    assert t["mean"] == pytest.approx(float(pd.Series(v).mean()))
    assert t["n"] == int(pd.Series(v).notna().sum())
    assert len(paths["figures"]) == len(set(ds["area"].values)) and all(p.stat().st_size > 10_000 for p in paths["figures"])
    text = paths["report"].read_text(encoding="utf-8")
    assert "unweighted mean over municipalities with data" in text and "Egen bearbetning" in text
