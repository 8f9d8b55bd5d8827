"""Long work shows progress: a bar on a terminal, periodic log lines otherwise, and the same
results with or without it."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ojpanel.core.parallel import chunk_sizes, map_seeded
from ojpanel.progress import LOGGER_NAME, progress, progress_mode, track


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]


@pytest.fixture()
def log_mode(monkeypatch, caplog):
    monkeypatch.setenv("OJPANEL_PROGRESS", "log")
    monkeypatch.setenv("OJPANEL_PROGRESS_INTERVAL", "0")
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    return caplog


def test_mode_follows_the_terminal_and_the_environment(monkeypatch):
    monkeypatch.delenv("OJPANEL_PROGRESS", raising=False)
    assert progress_mode() == "log"  # pytest's stderr is not a terminal
    assert progress_mode(False) == "off"
    for value, mode in (("off", "off"), ("0", "off"), ("bar", "bar"), ("log", "log")):
        monkeypatch.setenv("OJPANEL_PROGRESS", value)
        assert progress_mode() == mode


def test_log_lines_are_periodic_and_notes_immediate(log_mode, monkeypatch):
    with progress("work", total=4) as bar:
        bar.advance()
        bar.note("waiting 3 s")
        bar.advance(3)
    got = lines(log_mode)
    assert got[0].startswith("work: 1/4 (25%) after")
    assert got[1] == "work: waiting 3 s"
    assert got[2].startswith("work: 4/4 (100%)") and got[-1].startswith("work: done (4/4) in")
    log_mode.clear()
    monkeypatch.setenv("OJPANEL_PROGRESS_INTERVAL", "3600")
    with progress("quiet work", total=2) as bar:  # shorter than the interval: nothing but notes
        bar.advance(2)
    assert lines(log_mode) == []
    with pytest.raises(RuntimeError), progress("failing", total=2, interval=0) as bar:
        bar.advance()
        raise RuntimeError("x")
    assert lines(log_mode)[-1].startswith("failing: stopped (1/2)")


def test_off_shows_nothing(monkeypatch, caplog):
    monkeypatch.setenv("OJPANEL_PROGRESS", "off")
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    assert list(track(range(3), "silent", interval=0)) == [0, 1, 2]
    with progress("silent", total=1, interval=0) as bar:
        bar.note("retry")
    assert lines(caplog) == []


def test_bar_on_a_terminal_shows_notes_and_nested_work_shares_one_bar(monkeypatch):
    import ojpanel.progress as pr

    monkeypatch.setenv("OJPANEL_PROGRESS", "bar")
    with progress("outer", total=2) as outer:
        shared = pr._BAR["progress"]
        with progress("inner", total=3) as inner:
            assert pr._BAR["progress"] is shared and len(shared.tasks) == 2
            inner.note("HTTP 503; waiting 2 s, then retry 1 of 5")
            task = next(t for t in shared.tasks if t.description == "inner")
            assert task.fields["note"] == "HTTP 503; waiting 2 s, then retry 1 of 5"
            inner.advance(3)
            assert task.completed == 3
        outer.advance()
        assert len(shared.tasks) == 1
    assert pr._BAR["progress"] is None and pr._BAR["users"] == 0


def test_map_seeded_reports_every_chunk_and_keeps_its_results():
    sizes = chunk_sizes(23, 5)
    done: list[int] = []

    def draw(size, rng):
        return rng.normal(size=size)

    with_progress = map_seeded(draw, sizes, 7, progress=done.append)
    without = map_seeded(draw, sizes, 7)
    assert done == sizes and sum(done) == 23
    assert all(np.array_equal(a, b) for a, b in zip(with_progress, without, strict=True))


def test_power_reports_progress_and_gives_the_same_table(log_mode, monkeypatch):
    from ojpanel.designs.power import power
    from ojpanel.simulate.panel import simulate_panel

    ds = simulate_panel(layout="real", years=range(2016, 2020), seed=6)
    kw = dict(design="users", effects=[0.0, 0.5], n_sims=40, chunk_size=10, seed=3)
    shown = power(ds, **kw)
    got = lines(log_mode)
    # the users design tests both effects on the same 40 replications
    assert any(ln.startswith("power (users): 40/40 (100%)") for ln in got)
    assert got[-1].startswith("power (users): done (40/40)")
    monkeypatch.setenv("OJPANEL_PROGRESS", "off")
    assert power(ds, **kw).table.equals(shown.table)


def test_wild_bootstrap_and_steering_power_report_progress(log_mode):
    from ojpanel.inference.bootstrap import wild_cluster_bootstrap

    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(15), 8)
    x = rng.normal(size=g.size)
    y = 0.3 * x + rng.normal(size=15)[g] + rng.normal(size=g.size)
    wild_cluster_bootstrap(np.column_stack([np.ones_like(x), x]), y, g, term=1, n_draws=99,
                           enumerate=False, chunk_size=50, seed=1)
    got = lines(log_mode)
    assert any(ln.startswith("wild cluster bootstrap: 99/101") for ln in got)
    assert "wild cluster bootstrap: confidence interval by test inversion" in got
    assert got[-1].startswith("wild cluster bootstrap: done (101/101)")
    log_mode.clear()
    from ojpanel.designs.steering.power import steering_power

    steering_power("adoption", effects=[0.0], n_sims=2, n_pilot=1, chunk_size=1, seed=1,
                   n_municipalities=60, n_counties=6)
    got = lines(log_mode)
    assert got[0].startswith("steering power (adoption): 1/2 (50%)")
    assert got[-1].startswith("steering power (adoption): done (2/2)")


def test_descriptive_report_reports_its_figures(log_mode, tmp_path):
    import ojpanel
    from ojpanel.report.describe import write_descriptive_report

    ds = ojpanel.build_panel(kpis=["U21468", "N31807"], years=range(2017, 2020))
    paths = write_descriptive_report(ds, tmp_path)
    n = len(paths["figures"])
    assert n >= 1 and lines(log_mode)[-1].startswith(f"trend figures: done ({n}/{n})")


# ---------------------------------------------------------------------------------- notebooks
@pytest.fixture()
def notebook(monkeypatch):
    """A simulated Jupyter kernel: ``in_notebook`` is true and ``display`` records what it shows."""
    import IPython.display

    import ojpanel.progress as pr

    shown: list = []
    monkeypatch.delenv("OJPANEL_PROGRESS", raising=False)
    monkeypatch.setattr(pr, "in_notebook", lambda: True)
    monkeypatch.setattr(pr, "WIDGET_DELAY", 0.0)
    monkeypatch.setattr(IPython.display, "display", shown.append)
    return shown


def test_a_notebook_gets_a_widget_that_runs_to_completion(notebook):
    with progress("power simulation", total=4) as bar:
        assert bar.mode == "widget"
        for _ in range(4):
            bar.advance()
        bar.note("last chunk")
    (box,) = notebook
    label, widget, status = box.children
    assert "power simulation" in label.value
    assert widget.value == widget.max == 4 and widget.bar_style == "success"
    assert status.value.startswith("done (4/4) in")


def test_a_notebook_widget_turns_red_when_the_work_stops(notebook):
    with pytest.raises(RuntimeError), progress("bootstrap", total=10) as bar:
        bar.advance(3)
        raise RuntimeError("x")
    (box,) = notebook
    assert box.children[1].value == 3 and box.children[1].bar_style == "danger"
    assert box.children[2].value.startswith("stopped (3/10)")


def test_quick_work_in_a_notebook_shows_no_widget(notebook, monkeypatch):
    import ojpanel.progress as pr

    monkeypatch.setattr(pr, "WIDGET_DELAY", 3600.0)
    assert list(track(range(5), "quick")) == list(range(5))
    assert notebook == []


def test_a_terminal_gets_the_text_bar_and_a_plain_process_no_widget(monkeypatch):
    import sys

    import ojpanel.progress as pr

    monkeypatch.delenv("OJPANEL_PROGRESS", raising=False)
    assert not pr.in_notebook()  # pytest is no Jupyter kernel
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert progress_mode() == "bar"
    monkeypatch.setenv("OJPANEL_PROGRESS", "widget")
    assert progress_mode() == "widget"


def test_the_pipeline_runs_its_kernels_without_progress(monkeypatch):
    from ojpanel.pipeline.execute import kernel_environment

    monkeypatch.delenv("OJPANEL_KERNEL_PROGRESS", raising=False)
    monkeypatch.setenv("OJPANEL_PROGRESS", "bar")  # the runner's own display
    assert kernel_environment()["OJPANEL_PROGRESS"] == "off"
    monkeypatch.setenv("OJPANEL_KERNEL_PROGRESS", "widget")
    assert kernel_environment()["OJPANEL_PROGRESS"] == "widget"


def test_a_real_kernel_chooses_the_widget_and_stores_its_final_state(monkeypatch, tmp_path):
    import json

    import nbclient
    import nbformat

    monkeypatch.delenv("OJPANEL_PROGRESS", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import time\n"
        "import ojpanel.progress as pr\n"
        "pr.WIDGET_DELAY = 0.0\n"
        "assert pr.progress_mode() == 'widget', pr.progress_mode()\n"
        "with pr.progress('simulations', total=5) as bar:\n"
        "    for _ in range(5):\n"
        "        time.sleep(0.02)\n"
        "        bar.advance()\n"
    )]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data"], outputs
    assert "application/vnd.jupyter.widget-view+json" in outputs[0].data
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    bars = [m["state"] for m in state.values() if m["model_name"] == "IntProgressModel"]
    assert len(bars) == 1 and bars[0]["value"] == bars[0]["max"] == 5, json.dumps(bars)
    assert bars[0]["bar_style"] == "success"
