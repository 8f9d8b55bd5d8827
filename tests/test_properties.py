"""Property-based tests of every reader and of the Kolada client against a fault-injecting server.

Whatever the input, a reader either returns data in which every input row is accounted for, or
raises one of ojpanel's errors (never another exception, which the command line would show as a
traceback); the command line leaves no partial output behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import ojpanel
from ojpanel.cli import app
from ojpanel.data.reference import load_grouping, municipality_codes
from ojpanel.errors import OJPanelError

runner = CliRunner()
CLEAN = (OJPanelError, FileNotFoundError)
#: Examples per property; OJPANEL_HYPOTHESIS_EXAMPLES=500 searches harder (locally, not in CI).
EXAMPLES = int(os.environ.get("OJPANEL_HYPOTHESIS_EXAMPLES", "30"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

CODES = sorted(municipality_codes())
SOME_CODES = [CODES[0], CODES[1], "0180", "1480", "2584"]
BAD_CODES = ["0000", "0001", "114", "9999", "abc", "", " 0180 ", "01800"]

GOOD = {
    "kpi": ["U21468", "N31807", "U23471"],
    "municipality": [*SOME_CODES, "0000", "0001"],  # 00xx: national/region rows, dropped on purpose
    "year": ["2018", "2019", "2020", "2021", "2019.0", " 2020 "],
    "gender": ["T", "T", "K", "M"],
    "count": ["", "1", "12"],
}
BAD = {
    "kpi": ["", " "],
    "municipality": ["114", "9999", "abc", "", "01800", "1e3"],
    "year": ["2019.5", "x", "", "-1", "99999999999999999999", "1e3", "inf", "nan"],
    "gender": ["X", "", "t", "TT"],
    "value": ["abc", "1e400", "-5", "1,5", "101", "--1", "inf"],
    "count": ["x", "2.5", "-1", "1e400"],
}


def _csv(columns: list[str], rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    for r in rows:
        w.writerow([r.get(c, "") for c in columns])
    return buf.getvalue()


@st.composite
def tidy_tables(draw):
    columns = ["kpi", "municipality", "year", "gender", "value"]
    if draw(st.booleans()):
        columns.append("count")
    if draw(st.integers(0, 9)) == 0:
        columns.remove(draw(st.sampled_from(columns)))
    if draw(st.integers(0, 9)) == 0:
        columns.append("extra")
    columns = draw(st.permutations(columns))
    n = draw(st.integers(0, 12))
    rows = []
    for _ in range(n):
        rows.append({
            **{k: draw(st.sampled_from(v)) for k, v in GOOD.items()},
            "value": draw(st.one_of(
                st.floats(min_value=0, max_value=100, allow_nan=False).map(repr),
                st.sampled_from(["", "nan", " 50 "]))),
            "extra": "x",
        })
    for _ in range(draw(st.integers(0, 2)) if rows else 0):  # a few malformed cells
        row = draw(st.sampled_from(rows))
        field = draw(st.sampled_from(sorted(BAD)))
        row[field] = draw(st.sampled_from(BAD[field]))
    if rows and draw(st.integers(0, 5)) == 0:
        rows.append(dict(draw(st.sampled_from(rows))))  # a duplicated key
    return list(columns), rows


def _no_leftovers(folder: Path, keep: set[str]) -> None:
    assert sorted(p.name for p in folder.iterdir() if p.name not in keep) == []


def _check_every_row_is_in_the_panel(ds, frame: pd.DataFrame) -> None:
    """Every kept gender-T row of ``frame`` (normalised as the reader does) is in the panel."""
    report = json.loads(ds.attrs["build_report"])
    assert report["rows_read"] == len(frame)
    assert report["rows_kept"] + report["region_rows_dropped"] == report["rows_read"]
    kept = frame[~frame["municipality"].str.fullmatch(r"00\d\d")]
    other = int((kept["gender"] != "T").sum())
    assert report["rows_other_gender_dropped"] == other
    for r in kept[kept["gender"] == "T"].itertuples():
        got = ds["value"].sel(indicator=r.kpi, municipality=r.municipality, year=int(float(r.year))).item()
        want = float(r.value) if str(r.value).strip() not in {"", "nan", "NaN"} else np.nan
        assert (np.isnan(got) and np.isnan(want)) or got == pytest.approx(want)


# ---------------------------------------------------------------------------- tidy CSV / parquet
@SETTINGS
@given(table=tidy_tables(), parquet=st.booleans())
def test_tidy_reader_accounts_for_every_row_or_fails_cleanly(tmp_path_factory, table, parquet):
    folder = tmp_path_factory.mktemp("tidy")
    columns, rows = table
    text = _csv(columns, rows)
    src = folder / ("values.parquet" if parquet else "values.csv")
    if parquet:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        frame.to_parquet(src)
    else:
        src.write_text(text, encoding="utf-8")
    out = folder / "panel.nc"
    r = runner.invoke(app, ["build", "--from-csv", str(src), "--out", str(out)])
    assert r.exit_code in (0, 2), r.output
    event(f"exit {r.exit_code}")
    if r.exit_code == 2:
        assert r.output.startswith("error:") and not out.exists()
        _no_leftovers(folder, {src.name})
        return
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for c in ("kpi", "municipality", "gender"):
        frame[c] = frame[c].str.strip()
    _check_every_row_is_in_the_panel(ojpanel.load_panel(out), frame)


@SETTINGS
@given(blob=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8"))))
def test_tidy_reader_on_arbitrary_bytes(tmp_path_factory, blob):
    folder = tmp_path_factory.mktemp("raw")
    for name in ("values.csv", "values.parquet", "values.csv.gz"):
        src = folder / name
        src.write_bytes(blob)
        try:
            ojpanel.build_panel(src)
        except CLEAN:
            pass


# ---------------------------------------------------------------------------- OJ-users file
USER_GOOD = {
    "municipality": [*CODES[:30], "114", "180"],  # spreadsheets drop the leading zero
    "area": ["äldreomsorg", "Elderly care", "ekonomiskt bistånd", "barn och unga", " aldreomsorg "],
    "status": ["user", "non_user", "other", "Non-User", "USER"],
}
USER_BAD = {
    "municipality": ["9999", "abc", "", "01140"],
    "area": ["LSS", "", "äldre"],
    "status": ["yes", "", "users"],
}


@st.composite
def user_tables(draw):
    columns = draw(st.permutations(["municipality", "area", "status"]))
    columns = [c.upper() if draw(st.integers(0, 5)) == 0 else c for c in columns]
    if draw(st.integers(0, 9)) == 0:
        columns = columns[:-1]
    rows = [{k: draw(st.sampled_from(v)) for k, v in USER_GOOD.items()}
            for _ in range(draw(st.integers(0, 10)))]
    for _ in range(draw(st.integers(0, 2)) if rows else 0):
        field = draw(st.sampled_from(sorted(USER_BAD)))
        draw(st.sampled_from(rows))[field] = draw(st.sampled_from(USER_BAD[field]))
    return columns, rows


@SETTINGS
@given(table=user_tables(), blob=st.binary(max_size=200), raw=st.integers(0, 3))
def test_oj_users_reader_keeps_every_row_or_fails_cleanly(tmp_path_factory, table, blob, raw):
    from ojpanel.data.ojusers import normalise_area, read_oj_users

    columns, rows = table
    blob = blob if raw == 0 else None  # arbitrary bytes in a quarter of the examples
    path = tmp_path_factory.mktemp("users") / "users.csv"
    if blob is not None:
        path.write_bytes(blob)
    else:
        path.write_text(_csv(columns, [{c: r.get(c.lower(), "") for c in columns} for r in rows]),
                        encoding="utf-8")
    try:
        users = read_oj_users(path)
    except CLEAN:
        event("refused")
        return
    event("read")
    assert blob is None  # arbitrary bytes are never read as a valid file with rows
    assert len(users) == len(rows)
    got = set(users.itertuples(index=False, name=None))
    want = {(r["municipality"].strip().zfill(4), normalise_area(r["area"]),
             r["status"].strip().lower().replace("-", "_")) for r in rows}
    assert got == want


# ---------------------------------------------------------------------------- grouping file
@SETTINGS
@given(
    rows=st.lists(st.tuples(st.sampled_from([*CODES[:30], "9999", "114", "", " 0180"]),
                            st.sampled_from(["a", "b", " c ", "", "ä ö"])), max_size=10),
    header=st.sampled_from(["municipality,group", "group,municipality", "kommun,group", ""]),
    blob=st.one_of(st.none(), st.binary(max_size=120)),
    raw=st.integers(0, 3),
)
def test_grouping_reader_keeps_every_row_or_fails_cleanly(tmp_path_factory, rows, header, blob, raw):
    blob = blob if raw == 0 else None  # arbitrary bytes in a quarter of the examples
    folder = tmp_path_factory.mktemp("grouping")
    path = folder / "g.csv"
    if blob is not None:
        path.write_bytes(blob)
    else:
        cols = header.split(",") if header else ["municipality", "group"]
        lines = ([header] if header else []) + [
            ",".join(m if c != "group" else g for c in cols) for m, g in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        series = load_grouping(path, "socio")
    except CLEAN:
        event("refused")
        r = runner.invoke(app, ["build", "--kpis", "N31807", "--years", "2019", "--grouping",
                                f"socio={path}", "--out", str(folder / "p.nc")])
        assert r.exit_code == 2 and not (folder / "p.nc").exists(), r.output
        return
    event("read")
    assert blob is None and header in {"municipality,group", "group,municipality"}
    assert len(series) == len(rows)
    assert dict(series) == {m.strip(): g.strip() for m, g in rows}
    ds = ojpanel.build_panel(kpis=["N31807"], years=[2019], groupings={"socio": path})
    labels = dict(zip(ds["municipality"].values, ds["socio"].values, strict=True))
    assert all(labels[m] == g for m, g in series.items())
    assert sum(v != "" for v in labels.values()) == len(series)


# ---------------------------------------------------------------------------- snapshots
@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory):
    from ojpanel.data.snapshot import Snapshot, write_snapshot

    values = pd.DataFrame({
        "kpi": ["U21468"] * 4, "municipality": ["0114", "0115", "0117", "0120"], "year": [2019] * 4,
        "gender": ["T"] * 4, "value": [80.0, np.nan, 70.5, 91.0], "count": pd.array([1, 1, None, 1], "Int64"),
        "status": ["", "Missing", "", ""]})
    prov = {"format": "ojpanel-kolada-snapshot/1", "rows": {"deleted_dropped": 0}, "requests": []}
    return write_snapshot(Snapshot(values, prov), tmp_path_factory.mktemp("snap") / "snap"), values


@st.composite
def snapshot_damage(draw):
    what = draw(st.sampled_from(["values_bytes", "values_truncate", "provenance_json",
                                 "provenance_bytes", "delete"]))
    if what == "values_bytes":
        return what, (draw(st.integers(0, 10_000)), draw(st.integers(1, 255)))
    if what == "values_truncate":
        return what, draw(st.floats(0, 1))
    if what == "provenance_json":
        return what, (draw(st.sampled_from(["format", "values_sha256", "values_file", "rows"])),
                      draw(st.one_of(st.none(), st.integers(), st.text(max_size=20))))
    if what == "provenance_bytes":
        return what, draw(st.binary(max_size=50))
    return what, draw(st.sampled_from(["values.csv.gz", "provenance.json"]))


@SETTINGS
@given(damage=snapshot_damage())
def test_snapshot_reader_returns_the_fetched_values_or_refuses(tmp_path_factory, snapshot_dir, damage):
    from ojpanel.data.snapshot import read_snapshot

    original, values = snapshot_dir
    snap = tmp_path_factory.mktemp("damaged") / "snap"
    shutil.copytree(original, snap)
    what, arg = damage
    vfile, pfile = snap / "values.csv.gz", snap / "provenance.json"
    if what == "values_bytes":
        blob = bytearray(vfile.read_bytes())
        blob[arg[0] % len(blob)] ^= arg[1]
        vfile.write_bytes(bytes(blob))
    elif what == "values_truncate":
        blob = vfile.read_bytes()
        vfile.write_bytes(blob[: int(arg * (len(blob) - 1))])
    elif what == "provenance_json":
        prov = json.loads(pfile.read_text())
        key, new = arg
        if new is None:
            prov.pop(key, None)
        else:
            prov[key] = new
        pfile.write_text(json.dumps(prov))
    elif what == "provenance_bytes":
        pfile.write_bytes(arg)
    else:
        (snap / arg).unlink()
    try:
        got, _ = read_snapshot(snap)
    except CLEAN:
        event("refused")
        return
    event("read")
    pd.testing.assert_frame_equal(got, values)


# ---------------------------------------------------------------------------- netCDF / zarr
@pytest.fixture(scope="module")
def stored_panels(tmp_path_factory):
    ds = ojpanel.build_panel(kpis=["U21468", "N31807"], years=range(2017, 2020))
    folder = tmp_path_factory.mktemp("panels")
    return ds, {s: ojpanel.save_panel(ds, folder / f"p{s}") for s in (".nc", ".zarr")}


@st.composite
def panel_damage(draw):
    fmt = draw(st.sampled_from([".nc", ".zarr"]))
    if fmt == ".nc":
        what = draw(st.sampled_from(["truncate", "cells", "attr", "none"]))
    else:
        what = draw(st.sampled_from(["delete", "chunk_bytes", "json", "cells", "none"]))
    return fmt, what, draw(st.integers(0, 2**32 - 1))


@SETTINGS
@given(damage=panel_damage())
def test_panel_reader_returns_the_saved_panel_or_refuses(tmp_path_factory, stored_panels, damage):
    import h5py
    import xarray as xr

    ds, paths = stored_panels
    fmt, what, seed = damage
    rng = np.random.default_rng(seed)
    folder = tmp_path_factory.mktemp("damaged")
    path = folder / paths[fmt].name
    (shutil.copytree if fmt == ".zarr" else shutil.copy)(paths[fmt], path)
    if what == "truncate":
        blob = path.read_bytes()
        path.write_bytes(blob[: int(rng.integers(0, len(blob)))])
    elif what == "cells":
        if fmt == ".nc":
            with h5py.File(path, "r+") as f:
                v = f["value"][...]
                v.flat[rng.integers(0, v.size)] = rng.normal()
                f["value"][...] = v
        else:
            z = xr.open_zarr(path, consolidated=True).load()
            v = z["value"].values.copy()
            v.flat[rng.integers(0, v.size)] = rng.normal()
            z.assign(value=(z["value"].dims, v)).to_zarr(path, mode="a", consolidated=True, zarr_format=2)
    elif what == "attr":
        with h5py.File(path, "r+") as f:
            f.attrs["content_hash"] = "sha256:" + format(seed, "064x")
    elif what in {"delete", "chunk_bytes", "json"}:
        files = sorted(p for p in path.rglob("*") if p.is_file())
        if what == "json":
            files = [p for p in files if p.name.startswith(".z")]
        target = files[int(rng.integers(0, len(files)))]
        if what == "delete":
            target.unlink()
        else:
            blob = bytearray(target.read_bytes())
            if blob:
                blob[int(rng.integers(0, len(blob)))] ^= int(rng.integers(1, 256))
            target.write_bytes(bytes(blob))
    try:
        back = ojpanel.load_panel(path)
    except CLEAN:
        event("refused")
        r = runner.invoke(app, ["info", str(path)])
        assert r.exit_code == 2, r.output
        return
    event("read")
    xr.testing.assert_identical(back, ds)


# ---------------------------------------------------------------------------- Kolada client
MALFORMED_BODIES = [
    b"", b"[]", b"null", b'{"values": {}}', b'{"value": []}', b"\xff\xfe{", b'{"values": [1, 2]}',
    b'{"values": [{"kpi": "U21468"}]}',
    b'{"values": [{"kpi": "U21468", "municipality": "0180", "period": 2019, "values": [{"value": "x"}]}]}',
    b'{"values": [{"kpi": "U21468", "municipality": "0180", "period": 2019, "values": 5}]}',
]
fault_st = st.one_of(
    st.tuples(st.just("status"), st.sampled_from([429, 500, 502, 503]),
              st.sampled_from([None, 0, 1, 3600, "soon", "Wed, 21 Oct 2015 07:28:00 GMT"])),
    st.tuples(st.just("status"), st.sampled_from([400, 404, 410]), st.just(None)),
    st.sampled_from([("truncate",), ("short",), ("not_kolada",), ("loop",)]),
    st.tuples(st.just("body"), st.sampled_from(MALFORMED_BODIES)),
)


@SETTINGS
@given(
    faults=st.lists(st.tuples(st.sampled_from(["/data/", "page=2", "page=3"]), fault_st), max_size=5),
    slow=st.sampled_from([None, "/data/", "page=2"]),
    page_size=st.sampled_from([5000, 300]),
)
def test_kolada_fetch_is_complete_or_fails_cleanly(tmp_path_factory, kolada, faults, slow, page_size):
    from kolada_server import real_values
    from ojpanel.data.kolada import KoladaClient, RetryPolicy
    from ojpanel.data.kolada_cache import KoladaCache
    from ojpanel.data.snapshot import fetch_snapshot, tidy_values

    kolada.reset()
    kolada.page_size = page_size
    kolada.faults.extend(faults)
    if slow is not None:  # one answer slower than the time-out
        kolada.faults.append((slow, ("delay", 0.5)))
    folder = tmp_path_factory.mktemp("kolada")
    cache = KoladaCache(folder / "cache")
    kpis, years = ["U21468", "U23471"], [2019, 2020]
    client = KoladaClient(kolada.url(), cache=cache, sleep=lambda s: None,
                          retry=RetryPolicy(retries=2, backoff=0, timeout=0.3, deadline=None))
    real = real_values()
    want = real[real["kpi"].isin(kpis) & real["year"].isin(years)].sort_values(
        ["kpi", "municipality", "year", "gender"]).reset_index(drop=True)
    try:
        snap = fetch_snapshot(client, kpis, years=years)
    except CLEAN:
        event("refused")
    else:
        event("fetched")
        got = snap.values
        assert len(got) == len(want)
        pd.testing.assert_frame_equal(got[["kpi", "municipality", "year", "gender", "value"]],
                                      want[["kpi", "municipality", "year", "gender", "value"]])
    # whatever happened, the cache holds only complete, correct answers
    for url in client.data_urls(kpis, None, years):
        entry = cache.get(url)
        if entry is not None:
            cached, _ = tidy_values(entry["values"])
            assert len(cached) == len(want)
    kolada.reset()
