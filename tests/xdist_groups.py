"""Keeps the tests that share the smoke pipeline on one ``pytest -n`` worker, scheduled first.

``conftest.py`` imports the hook; ``test_suite_grouping.py`` runs it in a small generated suite
to show that ``--dist loadgroup`` really groups (a pytest/xdist pairing that breaks the grouping
would run the pipeline once per worker and make ``make test`` minutes slower).
"""

from __future__ import annotations

import pytest

#: Fixtures whose tests run in one test process (the smoke pipeline runs once per process).
GROUPED_FIXTURES = {"smoke_pipeline"}
GROUP = "pipeline"


# before xdist's own hook, which reads the group marks to keep a group on one worker
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    grouped = {id(it) for it in items if GROUPED_FIXTURES & set(getattr(it, "fixturenames", ()))}
    for item in items:
        if id(item) in grouped:
            item.add_marker(pytest.mark.xdist_group(GROUP))
    # the group is the longest unit of work: handed out first, it overlaps the rest of the suite
    # instead of running alone at the end (a stable sort keeps every other order)
    items.sort(key=lambda it: id(it) not in grouped)
