"""``make test`` runs the smoke-pipeline tests on one worker, so the pipeline runs once.

A generated suite with the real grouping hook (:mod:`xdist_groups`) runs under the same
``pytest -n 2 --dist loadgroup`` as ``make test``; every test that uses ``smoke_pipeline`` must
run in one worker and the fixture must run once. This fails when a pytest or pytest-xdist release
stops honouring the group (pytest 9.2 with pytest-xdist 3.8 did).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

CONFTEST = f"""
import os, sys
import pytest
sys.path.insert(0, {str(TESTS)!r})
from xdist_groups import pytest_collection_modifyitems  # noqa: F401

@pytest.fixture(scope="session")
def smoke_pipeline(tmp_path_factory):
    # one marker file per process that ran the fixture, in the directory all workers share
    (tmp_path_factory.getbasetemp().parent / f"ran-{{os.getpid()}}").touch()
    return os.getpid()
"""

SUITE = """
import pytest

@pytest.mark.parametrize("i", range(4))
def test_other_before(i):
    pass

@pytest.mark.parametrize("i", range(6))
def test_uses_pipeline(smoke_pipeline, i):
    pass

@pytest.mark.parametrize("i", range(4))
def test_other_after(i):
    pass
"""


def test_pipeline_tests_share_one_worker_and_run_first(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_generated.py").write_text(SUITE)
    base = tmp_path / "base"
    r = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p",
                        "no:cacheprovider", "--basetemp", str(base), "-o", "addopts=", "test_generated.py"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ran = re.findall(r"\[(gw\d+)\][^\n]*PASSED test_generated.py::(\w+)\[", r.stdout)
    assert len(ran) == 14, r.stdout[-3000:]
    workers = {w for w, name in ran if name == "test_uses_pipeline"}
    assert len(workers) == 1, f"the smoke-pipeline tests ran on {sorted(workers)}: --dist loadgroup is not grouping"
    assert len(list(base.glob("ran-*"))) == 1, "the smoke pipeline fixture ran in more than one process"
    # the group's worker starts with it (it is the suite's longest unit of work)
    (worker,) = workers
    first = next(name for w, name in ran if w == worker)
    assert first == "test_uses_pipeline"
