"""The command line behaves like a mature tool: --version, examples in every help, flags shown as
flags, messages that name the flag, no silent successes and no tracebacks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import ojpanel
from ojpanel.cli import app
from ojpanel.errors import ParameterError
from ojpanel.pipeline import plan
from ojpanel.pipeline.runner import discover
from ojpanel.provenance import package_version

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    return " ".join(text.split())


def _commands(cmd, path=()):
    """Every leaf command of the click tree as its argument path."""
    subs = getattr(cmd, "commands", None)
    if not subs:
        yield path
        return
    for name, sub in sorted(subs.items()):
        yield from _commands(sub, (*path, name))


ALL_COMMANDS = list(_commands(typer.main.get_command(app)))


@pytest.fixture(scope="module")
def one_indicator_panel(tmp_path_factory):
    path = tmp_path_factory.mktemp("n") / "n.nc"
    r = run("build", "--kpis", "N31807", "--out", path)
    assert r.exit_code == 0, r.output
    return path


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and r.output.strip() == f"ojpanel {package_version()}"


def test_command_tree_is_complete():
    assert len(ALL_COMMANDS) >= 14
    assert ("verify",) in ALL_COMMANDS and ("kpi", "search") in ALL_COMMANDS


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p))
def test_every_help_has_an_example_and_shows_flags_as_flags(path):
    r = run(*path, "--help")
    assert r.exit_code == 0, r.output
    assert "Example" in r.output and f"ojpanel {' '.join(path)}" in flat(r.output)
    assert "<bool>" not in r.output


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p))
def test_help_paragraphs_are_not_hard_wrapped(path):
    """The docstring's source line breaks do not reach the terminal: each paragraph is one line."""
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    for para in (cmd.help or "").split("\n\n"):
        assert "\n" not in para or all(line.lstrip()[:1] in "-*•0123456789" for line in para.splitlines()[1:]), para


def test_reflow_keeps_paragraphs_and_list_items():
    from ojpanel.cli._common import reflow

    text = "First line\n    continues here.\n\nItems:\n- one\n  still one\n- two"
    assert reflow(text) == "First line continues here.\n\nItems:\n- one still one\n- two"


def test_group_help_shows_flags_as_flags():
    for group in ((), ("kpi",), ("reproduce",), ("pipeline",)):
        r = run(*group, "--help")
        assert r.exit_code == 0 and "<bool>" not in r.output and "--help" in r.output


@pytest.mark.parametrize(
    "args,flag",
    [
        (["--n-sims", "0"], "--n-sims must be at least 1"),
        (["--n-sims", "10"], "--n-sims 10 is too few"),
        (["--alpha", "2"], "--alpha must lie strictly between 0 and 1"),
        (["--target-power", "1"], "--target-power must lie strictly between 0 and 1"),
        (["--share-treated", "0"], "--share-treated must lie strictly between 0 and 1"),
        (["--cutoff", "1.5"], "--cutoff must lie strictly between 0 and 1"),
        (["--indicator", "X1"], "--indicator X1 is not in"),
        (["--cluster", "kommun"], "--cluster 'kommun' is not a municipality coordinate"),
    ],
)
def test_power_errors_name_the_flag(one_indicator_panel, args, flag):
    r = run("power", "--design", "users", "--panel", one_indicator_panel, *args)
    assert r.exit_code == 2, r.output
    assert flag in flat(r.output)
    for library_name in ("n_draws", "n_sims", "share_treated", "target_power"):
        assert library_name not in r.output
    assert not re.search(r"(?<!-)alpha must", r.output)


def test_other_flags_are_named(tmp_path):
    r = run("build", "--kpis", "N31807", "--gender", "X", "--out", tmp_path / "p.nc")
    assert r.exit_code == 2 and "--gender must be T, K, M or all" in r.output
    r = run("steering", "--synthetic", "--threshold", "150", "--out", tmp_path / "s")
    assert r.exit_code == 2 and "--threshold must be between 0 and 100" in flat(r.output)
    nowhere = ["--base-url", "http://127.0.0.1:9/v3", "--no-cache"]  # never the internet
    r = run("fetch", "--kpi", "U21468", "--years", "2019", "--out", tmp_path / "f", "--timeout", "0", *nowhere)
    assert r.exit_code == 2 and "--timeout must be a positive number" in r.output
    r = run("fetch", "--kpi", "U21468", "--years", "2019", "--out", tmp_path / "f", "--deadline", "-1", *nowhere)
    assert r.exit_code == 2 and "--deadline must be a positive number" in r.output
    r = run("build", "--years", "20x6", "--out", tmp_path / "p.nc")
    assert r.exit_code == 2 and "cannot read --years '20x6'" in r.output
    r = run("build", "--areas", "äldre", "--out", tmp_path / "p.nc")
    assert r.exit_code == 2 and "--areas: unknown value(s) äldre; choose from äldreomsorg" in r.output
    r = run("build", "--kinds", "outcome", "--out", tmp_path / "p.nc")
    assert r.exit_code == 2 and "--kinds: unknown value(s) outcome" in r.output
    assert not any(tmp_path.iterdir())


def test_peer_design_coordinates_are_checked_by_flag(one_indicator_panel):
    for flag in ("--group", "--shocks"):
        r = run("power", "--design", "peer", "--panel", one_indicator_panel, flag, "kommun")
        assert r.exit_code == 2 and f"{flag} 'kommun' is not a municipality coordinate" in r.output
        assert "kommungrupp_2017" in r.output  # the choices are listed


def test_power_design_foo_lists_every_design(one_indicator_panel):
    r = run("power", "--design", "foo", "--panel", one_indicator_panel)
    assert r.exit_code == 2 and "--design must be one of users, peer, rd; got 'foo'" in r.output


def test_power_rd_on_a_panel_without_directional_indicators(one_indicator_panel):
    r = run("power", "--design", "rd", "--panel", one_indicator_panel, "--n-sims", "10")
    assert r.exit_code == 2, r.output
    text = flat(r.output)
    assert "none of the 1 indicator(s)" in text and "has a direction" in text
    assert "ZeroDivisionError" not in r.output and "Traceback" not in r.output


@pytest.mark.filterwarnings("ignore:Degrees of freedom:RuntimeWarning")
def test_rd_power_on_an_empty_design_is_a_data_error():
    from ojpanel.designs.rd_power import rd_power
    from ojpanel.errors import DataError

    ds = ojpanel.build_panel(kpis=["U21468"], years=[2018, 2019])
    empty = ds.assign(value=ds["value"] * np.nan)  # no municipality can be ranked
    with pytest.raises(DataError, match="colour rank and a next-year change"):
        rd_power(empty, n_sims=5)


def test_steering_panel_message_shows_the_scale(one_indicator_panel, tmp_path):
    r = run("steering", "--panel", one_indicator_panel, "--out", tmp_path / "s")
    assert r.exit_code == 2
    assert "['N31807'] have scale ['share']" in flat(r.output)
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_years_beyond_the_data_are_an_error_and_nothing_is_written(tmp_path):
    out = tmp_path / "p.nc"
    r = run("build", "--kpis", "N31807", "--years", "2020-2030", "--out", out)
    assert r.exit_code == 2
    text = flat(r.output)
    assert "--years asks for 2020–2030" in text and "no values for 2023–2030" in text
    assert "--years 2020-2022" in text
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_grouping_file_missing_municipalities_warns(tmp_path):
    codes = sorted(ojpanel.data.reference.municipality_codes())
    grp = tmp_path / "g.csv"
    pd.DataFrame({"municipality": codes[90:], "group": "a"}).to_csv(grp, index=False)
    r = run("build", "--kpis", "N31807", "--grouping", f"socio={grp}", "--out", tmp_path / "p.nc")
    assert r.exit_code == 0, r.output
    text = flat(r.output)
    assert "warning: grouping 'socio'" in text and "covers 200 of 290 municipalities" in text
    assert f"the other 90 ({codes[0]}, {codes[1]}" in text
    full = tmp_path / "full.csv"
    pd.DataFrame({"municipality": codes, "group": "a"}).to_csv(full, index=False)
    r = run("build", "--kpis", "N31807", "--grouping", f"socio={full}", "--out", tmp_path / "q.nc")
    assert r.exit_code == 0 and "warning" not in r.output


def test_smoke_run_refuses_parameters_it_would_replace(tmp_path):
    nbs = discover(select=["04"])
    with pytest.raises(ParameterError, match=r"--smoke sets n_permutations \(to 39\) itself"):
        plan(nbs, {"04:n_permutations": 7}, smoke=True, out_dir=tmp_path)
    assert plan(nbs, {"04:n_permutations": 7}, smoke=False, out_dir=tmp_path)[0][1]["n_permutations"] == 7
    assert plan(nbs, {"seed": 3}, smoke=True, out_dir=tmp_path)[0][1]["seed"] == 3
    r = run("pipeline", "run", "--smoke", "-p", "04:n_permutations=7", "--only", "04", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "drop --smoke to run with your value(s), or drop the -p" in flat(r.output)
    assert not (tmp_path / "o").exists()


def test_unexpected_errors_and_ctrl_c_end_without_a_traceback(tmp_path, monkeypatch):
    import ojpanel.panel.io as io

    def boom(path):
        raise ZeroDivisionError("0.0 cannot be raised to a negative power")

    monkeypatch.setattr(io, "verify_panel", boom)
    r = run("verify", tmp_path / "x.nc")
    assert r.exit_code == 1
    assert "unexpected ZeroDivisionError: 0.0 cannot be raised" in flat(r.output)
    assert "OJPANEL_DEBUG=1" in r.output and "Traceback" not in r.output

    def interrupt(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(io, "verify_panel", interrupt)
    r = run("verify", tmp_path / "x.nc")
    assert r.exit_code == 130 and "interrupted (Ctrl-C)" in r.output

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(io, "verify_panel", denied)
    r = run("verify", tmp_path / "x.nc")
    assert r.exit_code == 2 and "Permission denied" in r.output


def test_markup_in_messages_is_shown_verbatim(tmp_path):
    r = run("build", "--grouping", "[bold]x[/bold]", "--out", tmp_path / "p.nc")
    assert r.exit_code == 2 and "'[bold]x[/bold]'" in r.output


def test_rir2021_grouping_values():
    from ojpanel.cli.reproduce import parse_groupings

    assert parse_groupings(["socioeconomic=socio.csv", "near = neighbours"]) == {
        "socioeconomic": Path("socio.csv"), "near": "neighbours"}
    for bad in ("socio", "=x.csv", "socio="):
        r = run("reproduce", "rir2021", "--grouping", bad)
        assert r.exit_code == 2 and "--grouping must look like NAME=FILE.csv or NAME=neighbours" in flat(r.output)
        assert "Traceback" not in r.output
