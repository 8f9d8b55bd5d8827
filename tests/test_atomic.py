"""Atomic file output (ojpanel.core.atomic): a file is its old self or completely new."""

from __future__ import annotations

import os
import stat

import pytest

from ojpanel.core.atomic import atomic_path, atomic_write_text


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.json"
    assert atomic_write_text(target, "new") == target
    assert target.read_text(encoding="utf-8") == "new"
    atomic_write_text(target, "newer")
    assert target.read_text(encoding="utf-8") == "newer"
    assert _leftovers(target.parent) == []


def test_a_write_that_fails_midway_leaves_the_original_untouched(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("original", encoding="utf-8")
    with pytest.raises(RuntimeError, match="midway"), atomic_path(target) as tmp:
        tmp.write_text("half of the new cont", encoding="utf-8")
        assert tmp.parent == target.parent and tmp.name.startswith(".out.csv.")
        raise RuntimeError("failed midway")
    assert target.read_text(encoding="utf-8") == "original"
    assert _leftovers(tmp_path) == []


def test_an_interrupt_leaves_no_file_where_there_was_none(tmp_path):
    target = tmp_path / "entry.json"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("{", encoding="utf-8")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_block_that_writes_nothing_does_not_create_the_file(tmp_path):
    target = tmp_path / "nothing.txt"
    with pytest.raises(FileNotFoundError), atomic_path(target):
        pass
    assert not target.exists()


def test_the_finished_file_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "shared.txt", "x")
    finally:
        os.umask(old)
    # not private (mkstemp would give 0600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_the_three_writers_share_it(tmp_path):
    """The Kolada cache, the pipeline cache and the command line write through this module."""
    import ojpanel.cli.power as cli_power
    import ojpanel.data.kolada_cache as kolada_cache
    import ojpanel.pipeline.cache as pipeline_cache
    import ojpanel.pipeline.runner as runner

    assert kolada_cache.atomic_write_text is atomic_write_text
    assert pipeline_cache.atomic_write_text is atomic_write_text
    assert runner.atomic_write_text is atomic_write_text
    assert cli_power.atomic_path is atomic_path
    cache = kolada_cache.KoladaCache(tmp_path)
    path = cache.put("http://example.test/v2/kpi?x=1", [{"a": 1}], pages=1, retrieved="2026-01-01T00:00:00+00:00")
    assert path.is_file() and _leftovers(path.parent) == []
