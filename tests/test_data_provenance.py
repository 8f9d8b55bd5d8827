"""The embedded data are the files PROVENANCE.md describes, byte for byte."""

from __future__ import annotations

import hashlib
import re

import pytest

from ojpanel.config import data_dir

ROWS = re.compile(r"^\| `([^`]+)` \| .*? \| `([0-9a-f]{64})` \|$", re.M)


def _entries():
    text = (data_dir() / "PROVENANCE.md").read_text(encoding="utf-8")
    return ROWS.findall(text)


def test_provenance_lists_the_data_files():
    names = {n for n, _ in _entries()}
    assert {"municipalities.csv", "kpi_catalogue.csv", "kolada_values.csv.gz"} <= names


@pytest.mark.parametrize("name,digest", _entries())
def test_sha256_matches(name, digest):
    got = hashlib.sha256((data_dir() / name).read_bytes()).hexdigest()
    assert got == digest, f"data/{name} changed; embedded data are never edited by hand"


def test_data_dir_is_small():
    total = sum(p.stat().st_size for p in data_dir().rglob("*") if p.is_file())
    assert total < 15 * 2**20
