"""Stored panels prove their integrity: content hash, arrays and contract are checked on load."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

import ojpanel
from ojpanel.cli import app
from ojpanel.errors import PanelIntegrityError
from ojpanel.panel.io import verify_panel
from ojpanel.provenance import hash_dataset

runner = CliRunner()


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def panel():
    return ojpanel.build_panel(kpis=["U21468", "U23471", "N31807"], years=range(2014, 2021))


def tamper_netcdf(path, n_cells: int, seed: int = 0) -> None:
    """Overwrite ``n_cells`` observed values in place, as an editor of the file would."""
    with h5py.File(path, "r+") as f:
        v = f["value"][...]
        idx = np.flatnonzero(np.isfinite(v))
        pick = np.random.default_rng(seed).choice(idx, size=n_cells, replace=False)
        flat_v = v.ravel()
        flat_v[pick] = flat_v[pick] + 1.0
        f["value"][...] = flat_v.reshape(v.shape)


def test_saved_panel_verifies_and_save_restamps_the_hash(panel, tmp_path):
    sub = panel.oj.select(indicators=["U21468"])  # attrs still carry the full panel's hash
    assert sub.attrs["content_hash"] != hash_dataset(sub)
    for suffix in (".nc", ".zarr"):
        path = ojpanel.save_panel(sub, tmp_path / f"sub{suffix}")
        back = ojpanel.load_panel(path)
        assert back.attrs["content_hash"] == hash_dataset(sub) == hash_dataset(back)
        assert verify_panel(path) == []
        xr.testing.assert_equal(back, sub)


def test_tampered_netcdf_is_refused(panel, tmp_path):
    path = ojpanel.save_panel(panel, tmp_path / "p.nc")
    tamper_netcdf(path, 1894)
    with pytest.raises(PanelIntegrityError, match="content hash mismatch") as info:
        ojpanel.load_panel(path)
    assert "--no-verify" in str(info.value) and len(info.value.violations) >= 1
    back = ojpanel.load_panel(path, verify=False)  # the override still reads it
    changed = (back["value"] != panel["value"]) & panel["value"].notnull()
    assert int(changed.sum()) == 1894
    r = runner.invoke(app, ["info", str(path)])
    assert r.exit_code == 2 and "content hash mismatch" in flat(r.output)
    r = runner.invoke(app, ["verify", str(path)])
    assert r.exit_code == 2 and "failed verification" in r.output and "content hash mismatch" in r.output
    r = runner.invoke(app, ["info", str(path), "--no-verify"])
    assert r.exit_code == 0, r.output
    assert "loaded without verification (--no-verify)" in flat(r.output)


def test_zarr_with_a_deleted_value_array_is_refused(panel, tmp_path):
    path = ojpanel.save_panel(panel, tmp_path / "p.zarr")
    shutil.rmtree(path / "value")
    with pytest.raises(PanelIntegrityError) as info:
        ojpanel.load_panel(path)
    text = str(info.value)
    assert "['value'] are listed in the store's metadata but missing" in text
    assert "content hash mismatch" in text
    r = runner.invoke(app, ["info", str(path)])
    assert r.exit_code == 2 and "missing from" in flat(r.output)


def test_contract_violations_and_missing_hash_are_refused(panel, tmp_path):
    no_value = ojpanel.save_panel(panel.drop_vars("value"), tmp_path / "novalue.nc")
    with pytest.raises(PanelIntegrityError, match="panel contract: missing data variable 'value'"):
        ojpanel.load_panel(no_value)
    no_coord = ojpanel.save_panel(panel.drop_vars("county_name"), tmp_path / "nocoord.nc")
    with pytest.raises(PanelIntegrityError, match="missing municipality coordinate 'county_name'"):
        ojpanel.load_panel(no_coord)
    foreign = tmp_path / "foreign.nc"
    unhashed = panel.copy()
    del unhashed.attrs["content_hash"]
    unhashed.to_netcdf(foreign, engine="h5netcdf")
    with pytest.raises(PanelIntegrityError, match="no stored content hash"):
        ojpanel.load_panel(foreign)
    assert ojpanel.load_panel(foreign, verify=False).sizes == panel.sizes


def test_verify_command_passes_a_good_panel(panel, tmp_path):
    path = ojpanel.save_panel(panel, tmp_path / "p.nc")
    r = runner.invoke(app, ["verify", str(path)])
    assert r.exit_code == 0 and "verified" in r.output
    r = runner.invoke(app, ["info", str(path)])
    assert r.exit_code == 0 and f"verified: content hash {panel.attrs['content_hash']}" in flat(r.output)
    # the stored hash is the attr; a changed attr alone (not the data) is a mismatch too
    with h5py.File(path, "r+") as f:
        f.attrs["content_hash"] = "sha256:" + "0" * 64
    assert any("content hash mismatch" in p for p in verify_panel(path))
    assert json.loads(json.dumps(panel.attrs["build_report"]))  # provenance untouched
