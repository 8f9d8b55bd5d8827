"""netCDF and zarr round trips are lossless; dask-chunked panels behave like in-memory ones."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import ojpanel
from ojpanel.errors import DataError, ParameterError


@pytest.fixture(scope="module")
def small_panel():
    return ojpanel.build_panel(areas=["äldreomsorg"], years=range(2016, 2021),
                               groupings={"socio": {"0114": "a", "0180": "b", "1280": "a"}})


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip_identity(small_panel, tmp_path, suffix):
    path = ojpanel.save_panel(small_panel, tmp_path / f"p{suffix}")
    back = ojpanel.load_panel(path)
    xr.testing.assert_identical(back, small_panel)
    assert back.attrs == small_panel.attrs
    assert back["socio"].attrs == small_panel["socio"].attrs
    assert back["municipality"].values.dtype == object and back["year"].dtype == np.int64


def test_dask_chunked_panel_behaves_like_memory(small_panel, tmp_path):
    path = ojpanel.save_panel(small_panel, tmp_path / "p.nc")
    lazy = ojpanel.load_panel(path, chunks={"indicator": 7})
    assert lazy["value"].chunks is not None
    xr.testing.assert_allclose(lazy.oj.national_mean().compute(), small_panel.oj.national_mean())
    xr.testing.assert_identical(lazy.oj.peer_mean("county", lag=1), small_panel.oj.peer_mean("county", lag=1))
    a = lazy.oj.select(kind="result").oj.to_frame()
    b = small_panel.oj.select(kind="result").oj.to_frame()
    assert a.equals(b)


def test_save_is_atomic_and_formats_are_checked(small_panel, tmp_path):
    with pytest.raises(ParameterError, match=r"use a .nc \(netCDF\) or .zarr path"):
        ojpanel.save_panel(small_panel, tmp_path / "p.csv")
    target = tmp_path / "p.nc"
    bad = small_panel.assign_attrs(unstorable={"nested": object()})
    with pytest.raises((TypeError, ValueError)):
        ojpanel.save_panel(bad, target)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="ojpanel build --out"):
        ojpanel.load_panel(tmp_path / "missing.nc")
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not a netcdf file")
    with pytest.raises(DataError, match="cannot read"):
        ojpanel.load_panel(junk)
