"""The pipeline's execution cache, its declared reads/writes and the parallel scheduler.

Tiny fixture notebooks (written here) stand in for the real, slow ones: 01_a draws seeded random
numbers and writes a file, 02_b reads a data file, 03_c reads 01_a's recorded results and file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

import ojpanel.provenance
from ojpanel.cli import app
from ojpanel.errors import OJPanelError
from ojpanel.pipeline import (
    DeclarationError,
    PipelineError,
    discover,
    notebook_parameters,
    pipeline_status,
    read_declaration,
    read_records,
    run_pipeline,
)
from ojpanel.pipeline import cache as cache_mod
from ojpanel.pipeline.declarations import check_declared_inputs, dependency_graph, matches_write
from ojpanel.pipeline.execute import Executor
from ojpanel.pipeline.progress import PipelineProgress
from ojpanel.pipeline.runner import replay_parameters
from ojpanel.report.paper import render_paper

SRC = Path(ojpanel.__file__).resolve().parents[1]


def _nb(path: Path, params: str, body: list[str], reads: list[str] | None = None,
        writes: list[str] | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, *[nbformat.v4.new_code_cell(b) for b in body]]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if reads is not None or writes is not None:
        nb.metadata["ojpanel"] = {"reads": reads or [], "writes": writes or []}
    nbformat.write(nb, str(path))
    return path


A_BODY = [
    "import time\ntime.sleep(sleep)",
    "from pathlib import Path\n"
    "import numpy as np\n"
    "from ojpanel.pipeline import record\n"
    "Path(out_dir).mkdir(parents=True, exist_ok=True)\n"
    "(Path(out_dir) / 'value.txt').write_text(str(seed * 100))\n"
    "record('draws', np.random.default_rng(seed).normal(size=3))\n"
    "record('seed', seed)",
]
B_BODY = [
    "import time\ntime.sleep(sleep)",
    "import pandas as pd\n"
    "from ojpanel.config import data_dir\n"
    "from ojpanel.pipeline import record\n"
    "record('total', float(pd.read_csv(data_dir() / 'small.csv')['x'].sum() * scale))",
]
C_BODY = [
    "from pathlib import Path\n"
    "from ojpanel.pipeline import read_records, record\n"
    "up = Path(out_dir).parent\n"
    "record('combined', read_records(up / '01_a.ipynb')['seed'] + int((up / '01_a' / 'value.txt').read_text()))",
]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """Fixture notebooks, a private data directory and an output directory."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "PROVENANCE.md").write_text("test data\n")
    (data / "small.csv").write_text("x\n1\n2\n3\n")
    monkeypatch.setenv("OJPANEL_DATA_DIR", str(data))  # the kernels inherit it
    nbs = tmp_path / "nb"
    nbs.mkdir()
    _nb(nbs / "01_a.ipynb", "seed = 1\nsleep = 0.0\nout_dir = ''", A_BODY, ["data:small.csv"], ["value.txt"])
    _nb(nbs / "02_b.ipynb", "scale = 2.0\nsleep = 0.0\nout_dir = ''", B_BODY, ["data:small.csv"], [])
    _nb(nbs / "03_c.ipynb", "out_dir = ''", C_BODY, ["records:01_a", "output:01_a/value.txt"], [])
    return {"nb": nbs, "out": tmp_path / "out", "data": data}


def _run(project, **kw):
    return run_pipeline(project["nb"], project["out"], progress=False, html=False, **kw)


def _status(project, **kw):
    return {s.notebook: s for s in pipeline_status(project["nb"], project["out"], **kw)}


def _only_stale(states, name, fragment):
    assert [n for n, s in states.items() if not s.fresh] == [name], {n: s.reasons for n, s in states.items()}
    assert any(fragment in r for r in states[name].reasons), states[name].reasons


# -- declarations (nothing executes) ------------------------------------------------------------

def test_declarations_are_read_and_checked(tmp_path):
    good = _nb(tmp_path / "01_a.ipynb", "out_dir = ''\npath = ''", [],
               ["data:small.csv", "param:path", "records:02", "output:02_b/x/*.csv"], ["a.txt", "figs/*.png"])
    d = read_declaration(good)
    assert [(r.kind, r.target) for r in d.reads] == [("data", "small.csv"), ("param", "path"),
                                                     ("records", "02"), ("output", "02_b/x/*.csv")]
    assert d.writes == ("a.txt", "figs/*.png") and d.declared
    assert read_declaration(_nb(tmp_path / "02_u.ipynb", "x = 1", [])).declared is False
    bad = {
        "kind:target with kind one of": (["table:x.csv"], []),
        "must be a relative path": (["data:../secret.csv"], []),
        "must name a notebook and a file": (["output:02_b"], []),
        "declared output": ([], ["/abs.png"]),
    }
    for message, (reads, writes) in bad.items():
        with pytest.raises(DeclarationError, match=message):
            read_declaration(_nb(tmp_path / "09_bad.ipynb", "x = 1", [], reads, writes))
    nb = nbformat.read(str(good), as_version=4)
    nb.metadata["ojpanel"] = {"reads": "data:x.csv"}
    nbformat.write(nb, str(tmp_path / "09_bad.ipynb"))
    with pytest.raises(DeclarationError, match="must be a list of strings"):
        read_declaration(tmp_path / "09_bad.ipynb")


def test_dependency_graph_orders_and_rejects_cycles(tmp_path):
    a = read_declaration(_nb(tmp_path / "01_a.ipynb", "out_dir = ''", [], [], ["v.txt", "t/**/*"]))
    b = read_declaration(_nb(tmp_path / "02_b.ipynb", "x = 1", [], ["data:x.csv"], []))
    c = read_declaration(_nb(tmp_path / "03_c.ipynb", "x = 1", [], ["records:01", "output:01_a/t/u/w.csv"], []))
    u = read_declaration(_nb(tmp_path / "04_u.ipynb", "x = 1", []))
    assert dependency_graph([a, b, c, u]) == {"01_a": (), "02_b": (), "03_c": ("01_a",),
                                              "04_u": ("01_a", "02_b", "03_c")}
    assert matches_write("t/w.csv", ["t/**/*"]) and not matches_write("s/w.csv", ["t/**/*"])
    wrong = read_declaration(_nb(tmp_path / "05_w.ipynb", "x = 1", [], ["output:01_a/other.txt"], []))
    with pytest.raises(DeclarationError, match="01_a does not declare that it writes 'other.txt'"):
        dependency_graph([a, wrong])
    ghost = read_declaration(_nb(tmp_path / "05_w.ipynb", "x = 1", [], ["records:08"], []))
    with pytest.raises(DeclarationError, match="names notebook '08', which does not exist"):
        dependency_graph([a, ghost])
    x = read_declaration(_nb(tmp_path / "06_x.ipynb", "x = 1", [], ["records:07"], []))
    y = read_declaration(_nb(tmp_path / "07_y.ipynb", "x = 1", [], ["records:06"], []))
    with pytest.raises(DeclarationError, match="cycle: 06_x -> 07_y -> 06_x"):
        dependency_graph([x, y])


def test_declared_inputs_are_checked_before_anything_runs(project):
    nbs, out = project["nb"], project["out"]
    _nb(nbs / "04_d.ipynb", "users = ''\nout_dir = ''", [], ["param:users"], [])
    with pytest.raises(DeclarationError, match="parameter users = 'nope.csv' names .*nope.csv, which does not exist"):
        _run(project, parameters={"04:users": "nope.csv"})
    _nb(nbs / "04_d.ipynb", "users = ''", [], ["param:user"], [])
    with pytest.raises(DeclarationError, match="'param:user' names no parameter"):
        _run(project)
    _nb(nbs / "04_d.ipynb", "x = 1", [], ["data:missing.csv"], [])
    with pytest.raises(DeclarationError, match="declares that it reads 'data:missing.csv'"):
        _run(project)
    _nb(nbs / "04_d.ipynb", "x = 1", [], [], ["out.txt"])
    with pytest.raises(DeclarationError, match="has no out_dir parameter"):
        _run(project)
    assert not out.exists()  # nothing ran, nothing was written


def test_every_real_notebook_declares_valid_reads_and_writes():
    notebooks = discover()
    declarations = [read_declaration(nb) for nb in notebooks]
    assert all(d.declared for d in declarations), [d.notebook for d in declarations if not d.declared]
    graph = dependency_graph(declarations)
    assert set(graph) == {nb.stem for nb in notebooks}
    from ojpanel.config import data_dir

    for nb, d in zip(notebooks, declarations, strict=True):
        assert any(r.kind == "data" for r in d.reads), f"{nb.name} builds the panel from the embedded data"
        check_declared_inputs(d, notebook_parameters(nb), {}, nb.parent, data_dir())


# -- the cache ------------------------------------------------------------------------------------

def test_second_run_is_cached_and_every_input_change_makes_an_entry_stale(project):
    first = _run(project, jobs=2)
    assert first.cached == [] and (project["out"] / ".cache" / "01_a.json").is_file()
    assert first.records["03_c"] == {"combined": 101}
    t0 = time.perf_counter()
    second = _run(project, jobs=2)
    assert second.cached == ["01_a", "02_b", "03_c"] and time.perf_counter() - t0 < 5
    assert second.records == first.records and second.timings() == first.timings()
    summary = json.loads(second.summary_path.read_text())
    assert [nb["cached"] for nb in summary["notebooks"]] == [True, True, True]
    assert all(s.fresh for s in _status(project).values())

    # a parameter given on the command line, or a changed default in the parameters cell
    _only_stale(_status(project, parameters={"02:scale": 3.0}), "02_b", "parameter scale changed: 2.0 -> 3.0")
    b = project["nb"] / "02_b.ipynb"
    original = b.read_text()
    b.write_text(original.replace("scale = 2.0", "scale = 5.0"))
    _only_stale(_status(project), "02_b", "parameter scale changed: 2.0 -> 5.0")
    b.write_text(original)
    # code, but not outputs or execution counts
    nb = nbformat.read(str(b), as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="noise")]
    nb.cells[1].execution_count = 7
    nbformat.write(nb, str(b))
    assert _status(project)["02_b"].fresh
    nb.cells[1].source += "  # a comment"
    nbformat.write(nb, str(b))
    _only_stale(_status(project), "02_b", "the notebook's cells changed")
    b.write_text(original)

    # a declared data file (the key is its content: restoring it makes the entry fresh again)
    small = project["data"] / "small.csv"
    small.write_text("x\n1\n2\n4\n")
    states = _status(project)
    assert "input data:small.csv changed (small.csv)" in states["02_b"].reasons
    assert "input data:small.csv changed (small.csv)" in states["01_a"].reasons
    assert states["03_c"].reasons == ("it reads 01_a, which is stale",)
    small.write_text("x\n1\n2\n3\n")
    assert all(s.fresh for s in _status(project).values())

    # the package version, and the library's source
    version = ojpanel.provenance.package_version()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ojpanel.provenance, "package_version", lambda: "99.0")
        states = _status(project)
    assert all(f"ojpanel version changed: {version} -> 99.0" in s.reasons for s in states.values())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cache_mod, "source_digest", lambda: "sha256:edited")
        states = _status(project)
    assert all("the ojpanel library's source code changed" in s.reasons for s in states.values())
    assert all(s.fresh for s in _status(project).values())
    # environment variables the library reads (any OJPANEL_* but the cosmetic ones)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OJPANEL_NEW_SETTING", "strict")
        states = _status(project)
    assert all("environment variable OJPANEL_NEW_SETTING changed: null -> \"strict\"" in s.reasons
               for s in states.values()), states
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OJPANEL_PROGRESS", "off")  # how progress is shown changes no result
        assert all(s.fresh for s in _status(project).values())

    # artefacts changed after the run; a damaged entry
    value = project["out"] / "01_a" / "value.txt"
    value.write_text("0")
    assert "output value.txt was modified after the run" in _status(project)["01_a"].reasons
    value.write_text("100")
    executed = project["out"] / "02_b.ipynb"
    executed.write_text(executed.read_text().replace("total", "tota1"))
    assert "the executed copy 02_b.ipynb was modified after the run" in _status(project)["02_b"].reasons
    entry = project["out"] / ".cache" / "03_c.json"
    entry.write_text(entry.read_text().replace("101", "102"))
    assert _status(project)["03_c"].reasons == ("its cache entry is damaged",)

    # --force executes a fresh notebook again; stale ones run again
    third = _run(project, force=True, select=["02"])
    assert third.cached == [] and third.records["02_b"] == first.records["02_b"]
    assert _run(project).cached == ["01_a", "02_b"]  # 03_c: its damaged entry
    assert all(s.fresh for s in _status(project).values())


def test_upstream_results_decide_whether_a_reader_runs_again(project):
    _run(project, select=["03"])
    res = _run(project, parameters={"01:seed": 5}, select=["03"])
    assert res.cached == [] and res.records["03_c"] == {"combined": 505}
    # an upstream stale for its own reasons: the reader is stale until the upstream has run
    assert all(s.fresh for s in _status(project, parameters={"01:seed": 5}, select=["03"]).values())
    states = _status(project, parameters={"01:seed": 2}, select=["03"])
    assert states["03_c"].reasons == ("it reads 01_a, which is stale",)
    # the upstream re-runs with the same results (a comment changed): the reader stays cached
    a = project["nb"] / "01_a.ipynb"
    nb = nbformat.read(str(a), as_version=4)
    nb.cells[1].source += "  # comment"
    nbformat.write(nb, str(a))
    res = _run(project, parameters={"01:seed": 5}, select=["03"])
    assert res.cached == ["03_c"]
    # `ojpanel paper` replays the last run's settings, so it finds these results fresh
    smoke, params = replay_parameters(res.summary_path, project["nb"])
    assert (smoke, params) == (False, {"01_a:seed": 5})
    assert _run(project, parameters=params, select=["03"]).cached == ["01_a", "03_c"]


def test_select_brings_the_notebooks_it_reads(project):
    states = pipeline_status(project["nb"], project["out"], select=["03"])
    assert [s.notebook for s in states] == ["01_a", "03_c"]
    assert [s.notebook for s in pipeline_status(project["nb"], project["out"], select=["02"])] == ["02_b"]


def test_interrupted_entry_write_leaves_no_usable_entry(project):
    _run(project, select=["02"])
    # a crash while the new entry is written: the old one is gone, the half-written file is ignored
    real = cache_mod.atomic_write_text

    def crash(path, text):
        if path.name == "02_b.json":
            (path.parent / f".{path.name}.deadbeef.tmp").write_text(text[: len(text) // 2])
            raise KeyboardInterrupt
        return real(path, text)

    with pytest.MonkeyPatch.context() as mp, pytest.raises(KeyboardInterrupt):
        mp.setattr(cache_mod, "atomic_write_text", crash)
        _run(project, force=True, select=["02"])
    state = _status(project, select=["02"])["02_b"]
    assert not state.fresh and not (project["out"] / ".cache" / "02_b.json").exists()
    assert len(state.reasons) == 1 and "was interrupted before it finished" in state.reasons[0], state.reasons
    assert sorted(p.name for p in (project["out"] / ".cache").iterdir()) == [
        ".02_b.json.deadbeef.tmp", "02_b.kernel.log", "02_b.running"]
    # even a complete, valid-looking entry left under a temporary name is never read
    (project["out"] / ".cache" / ".02_b.json.cafe.tmp").write_text(json.dumps({"format": 1}))
    assert not _status(project, select=["02"])["02_b"].fresh
    assert _run(project, select=["02"]).cached == []
    assert _status(project, select=["02"])["02_b"].fresh


def _wait_for_running_cell(executed: Path, source: str, proc: subprocess.Popen, timeout: float = 90) -> bool:
    """Wait until papermill's copy shows the cell with ``source`` running (it saves as cells start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            nb = nbformat.read(str(executed), as_version=4)
        except Exception:  # absent, or being written
            nb = None
        if nb is not None and any(source in c.source and c.metadata.get("papermill", {}).get("status") == "running"
                                  for c in nb.cells):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_run_interrupted_during_execution_is_stale(project, sig):
    _run(project, select=["02"])
    # a child of a background job inherits an ignored SIGINT: restore Python's Ctrl-C handler
    code = (f"import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
            f"from ojpanel.pipeline import run_pipeline\n"
            f"run_pipeline({str(project['nb'])!r}, {str(project['out'])!r}, progress=False, html=False, "
            f"force=True, select=['02'], parameters={{'02:sleep': 60.0}})")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not _wait_for_running_cell(project["out"] / "02_b.ipynb", "time.sleep", proc):
        proc.kill()
        pytest.fail(f"the notebook never started its sleeping cell: {proc.communicate()}")
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert not (project["out"] / ".cache" / "02_b.json").exists()
    reasons = _status(project, parameters={"02:sleep": 60.0}, select=["02"])["02_b"].reasons
    assert len(reasons) == 1 and "was interrupted before it finished" in reasons[0], reasons
    if sig == signal.SIGINT:
        summary = json.loads((project["out"] / "summary.json").read_text())
        assert summary["failed"] == {"notebook": "02_b.ipynb", "error": Executor.STOPPED}


def test_one_run_at_a_time_per_output_directory(project):
    lock = project["out"] / ".cache" / "lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(f"{os.getppid()} 2026-01-01T00:00:00+00:00\n")  # a live process
    with pytest.raises(OJPanelError, match=f"another pipeline run \\(process {os.getppid()}\\) is writing to"):
        _run(project)
    assert lock.is_file() and not (project["out"] / "summary.json").exists()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock.write_text(f"{gone.pid} 2026-01-01T00:00:00+00:00\n")  # left by a killed run
    with cache_mod.run_lock(project["out"]):
        assert lock.read_text().split()[0] == str(os.getpid())
    assert not lock.exists()


def test_library_source_digest_covers_what_notebooks_run(tmp_path):
    pkg = tmp_path / "pkg"
    for rel in ("models/fit.py", "cli/run.py", "pipeline/runner.py", "pipeline/record.py", "config.py"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(f"# {rel}\n")
    base = cache_mod.source_digest(pkg)
    for rel, counts in (("cli/run.py", False), ("pipeline/runner.py", False), ("models/fit.py", True),
                        ("pipeline/record.py", True), ("config.py", True)):
        (pkg / rel).write_text("# edited\n")
        assert (cache_mod.source_digest(pkg) != base) == counts, rel
        (pkg / rel).write_text(f"# {rel}\n")
    (pkg / "models" / "new.py").write_text("x = 1\n")
    assert cache_mod.source_digest(pkg) != base


# -- the scheduler --------------------------------------------------------------------------------

def _interval(executed: Path) -> tuple[datetime, datetime]:
    meta = nbformat.read(str(executed), as_version=4).metadata["papermill"]
    return datetime.fromisoformat(meta["start_time"]), datetime.fromisoformat(meta["end_time"])


def test_parallel_run_respects_order_and_equals_the_serial_run(project, tmp_path):
    params = {"01:sleep": 1.0, "02:sleep": 2.5}
    parallel = _run(project, jobs=2, parameters=params)
    out = project["out"]
    a, b, c = (_interval(out / f"{n}.ipynb") for n in ("01_a", "02_b", "03_c"))
    assert a[0] < b[1] and b[0] < a[1], "independent notebooks ran one after the other"
    assert c[0] >= a[1], "03_c started before 01_a, whose results it reads, had finished"
    s_parallel = json.loads(parallel.summary_path.read_text())
    paper_dir = tmp_path / "template"
    paper_dir.mkdir()
    (paper_dir / "paper.md").write_text("{{ r['01_a'].draws }} {{ r['02_b'].total | fmt }} {{ r['03_c'].combined }}")
    p_parallel = render_paper(parallel.summary_path, tmp_path / "paper_parallel", paper_dir)["markdown"].read_text()

    serial = _run(project, jobs=1, parameters=params, force=True)
    s_serial = json.loads(serial.summary_path.read_text())
    a, b, _ = (_interval(out / f"{n}.ipynb") for n in ("01_a", "02_b", "03_c"))
    assert b[1] <= a[0], "one worker: 02_b, the longer last time, should have run first"
    assert (s_parallel["jobs"], s_serial["jobs"]) == (2, 1)
    same = ("name", "parameters", "records", "notebook", "html", "cached")
    assert [{k: nb[k] for k in same} for nb in s_parallel["notebooks"]] == \
           [{k: nb[k] for k in same} for nb in s_serial["notebooks"]]
    assert [nb["name"] for nb in s_serial["notebooks"]] == ["01_a", "02_b", "03_c"]
    p_serial = render_paper(serial.summary_path, tmp_path / "paper_serial", paper_dir)["markdown"].read_text()
    assert p_serial == p_parallel and "[" in p_serial


def test_failure_stops_new_notebooks_and_skips_readers(project):
    _nb(project["nb"] / "01_a.ipynb", "seed = 1\nsleep = 0.0\nout_dir = ''", ["raise ValueError('boom')"],
        ["data:small.csv"], ["value.txt"])
    with pytest.raises(PipelineError, match=r"01_a.ipynb failed: cell \[\d+\] raised ValueError: boom.*not run: 03_c"):
        _run(project, jobs=2)
    summary = json.loads((project["out"] / "summary.json").read_text())
    assert summary["failed"]["notebook"] == "01_a.ipynb" and summary["not_run"] == {"03_c": "01_a did not finish"}
    assert [nb["name"] for nb in summary["notebooks"]] == ["02_b"]  # started with 01_a, and finished
    assert any(r.startswith("the last run failed: cell [") and r.endswith("raised ValueError: boom")
               for r in _status(project)["01_a"].reasons)


def test_declared_write_that_is_not_written_fails(project):
    _nb(project["nb"] / "02_b.ipynb", "scale = 2.0\nsleep = 0.0\nout_dir = ''", B_BODY, ["data:small.csv"],
        ["table.csv"])
    with pytest.raises(PipelineError, match=r"declares that it writes \['table.csv'\] but did not write them"):
        _run(project, select=["02"])
    assert not (project["out"] / ".cache" / "02_b.json").exists()


def test_undeclared_notebook_always_runs(project):
    _nb(project["nb"] / "04_u.ipynb", "out_dir = ''", ["from ojpanel.pipeline import record\nrecord('u', 1)"])
    _run(project, select=["02", "04"])
    res = _run(project, select=["02", "04"])
    assert res.cached == ["02_b"] and res.records["04_u"] == {"u": 1}
    assert any("declares no reads/writes" in r for r in _status(project)["04_u"].reasons)
    # it waits for every earlier notebook, but reads none of them, so a selection does not bring them
    assert dependency_graph([read_declaration(p) for p in discover(project["nb"])])["04_u"] == ("01_a", "02_b", "03_c")


# -- execution, progress, command line --------------------------------------------------------

def test_parallel_kernels_share_the_cores_between_their_thread_pools(project, monkeypatch):
    from ojpanel.pipeline import default_jobs
    from ojpanel.pipeline.execute import THREAD_VARIABLES, kernel_environment

    for var in THREAD_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    body = ["import os\nfrom ojpanel.pipeline import record\n"
            f"record('threads', [os.environ.get(v) for v in {list(THREAD_VARIABLES)!r}])"]
    _nb(project["nb"] / "04_t.ipynb", "out_dir = ''", body, [], [])
    _nb(project["nb"] / "05_t.ipynb", "out_dir = ''", body, [], [])
    res = _run(project, select=["04", "05"], jobs=2)
    expected = str(max(1, default_jobs() // 2))
    assert res.records["04_t"]["threads"] == res.records["05_t"]["threads"] == [expected] * len(THREAD_VARIABLES)
    # a value the user set is kept; without a cap nothing is set
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert kernel_environment(1)["OMP_NUM_THREADS"] == "3" and kernel_environment(1)["MKL_NUM_THREADS"] == "1"
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert not set(THREAD_VARIABLES) & set(kernel_environment())


def test_cell_progress_and_no_kernel_noise(project, capfd):
    calls = []
    project["out"].mkdir()
    with Executor() as ex:
        outcome = ex.run("01_a", project["nb"] / "01_a.ipynb", project["out"] / "x.ipynb",
                         {"out_dir": str(project["out"] / "01_a")}, on_cell=lambda i, n: calls.append((i, n)))
    assert outcome.ok and outcome.error is None
    # the injected parameters cell counts: defaults, injected, then the notebook's two cells
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert read_records(project["out"] / "x.ipynb")["seed"] == 1
    captured = capfd.readouterr()
    assert "without encryption" not in captured.err + captured.out
    # with a kernel log (as the runner gives it), nothing of the kernel's own reaches the terminal
    log = project["out"] / "kernel.log"
    with Executor() as ex:
        assert ex.run("01_a", project["nb"] / "01_a.ipynb", project["out"] / "x.ipynb",
                      {"out_dir": str(project["out"] / "01_a")}, kernel_log=log).ok
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == "" and log.is_file()



def test_progress_lines_show_cell_n_of_m(monkeypatch, caplog):
    monkeypatch.setenv("OJPANEL_PROGRESS", "log")  # as in CI logs; a terminal gets bars instead
    monkeypatch.setenv("OJPANEL_PROGRESS_INTERVAL", "0")
    caplog.set_level("INFO", logger="ojpanel.progress")
    with PipelineProgress(2) as bar:
        bar.started("05_bayes", 9)
        bar.cell("05_bayes", 1, 9)
        bar.cell("05_bayes", 3, 9)
        bar.finished("05_bayes", 12.3)
        bar.cached("01_a", 6.5)
    text = caplog.text
    assert "05_bayes: cell 3 of 9 (0 s)" in text and "05_bayes: 1/9" in text
    assert "✓ 05_bayes" in text and "12.3 s" in text and "cached (ran in 6.5 s)" in text
    caplog.clear()
    with PipelineProgress(1, enabled=False) as bar:
        bar.started("05_bayes", 9)
        bar.finished("05_bayes", 1.0)
    assert caplog.text == ""


def test_cli_run_status_force_and_jobs(project):
    runner = CliRunner()
    args = ["--notebooks", str(project["nb"]), "--out", str(project["out"])]
    res = runner.invoke(app, ["pipeline", "run", *args, "--only", "03", "--jobs", "2"])
    assert res.exit_code == 0, res.output
    assert "2 executed, 0 cached" in res.output  # 03_c reads 01_a, which comes along
    res = runner.invoke(app, ["pipeline", "run", *args, "--only", "03"])
    assert res.exit_code == 0 and "0 executed, 2 cached" in res.output and "01_a: cached (ran in" in res.output
    res = runner.invoke(app, ["pipeline", "status", *args, "-p", "01:seed=4"])
    assert res.exit_code == 0, res.output
    lines = {line.split()[0]: line for line in res.output.splitlines() if line.strip()}
    assert "stale" in lines["01_a"] and "parameter seed changed: 1 -> 4" in lines["01_a"]
    assert "it has not run into this output directory" in lines["02_b"] and "it reads 01_a" in lines["03_c"]
    res = runner.invoke(app, ["pipeline", "run", *args, "--force", "--only", "03", "-j", "1"])
    assert res.exit_code == 0 and "2 executed, 0 cached" in res.output
    res = runner.invoke(app, ["pipeline", "run", *args, "--jobs", "0"])
    assert res.exit_code == 2
    for cmd in (["run", "--help"], ["status", "--help"]):
        res = runner.invoke(app, ["pipeline", *cmd])
        assert "Example" in res.output
