"""Kolada client, cache and snapshot against a local Kolada look-alike (no internet)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from kolada_server import RIR_LOCAL, Sleeper, real_values
from ojpanel.config import KOLADA_CITATION
from ojpanel.data.kolada import (
    DEFAULT_BASE_URL,
    KoladaClient,
    RetryPolicy,
    api_version_of,
    chunked,
)
from ojpanel.data.kolada_cache import KoladaCache
from ojpanel.data.snapshot import fetch_snapshot, read_snapshot, tidy_values, write_snapshot
from ojpanel.errors import DataError, KoladaError, ParameterError

YEARS = [2016, 2017]


def client(srv, version="v3", **kw):
    kw.setdefault("sleep", Sleeper())
    kw.setdefault("retry", RetryPolicy(retries=3, backoff=0.5, factor=2.0, timeout=10))
    return KoladaClient(srv.url(version), **kw)


def expected(kpis, years, munis=None):
    df = real_values()
    sel = df[df["kpi"].isin(kpis) & df["year"].isin(years)]
    if munis is not None:
        sel = sel[sel["municipality"].isin(munis)]
    return sel.sort_values(["kpi", "municipality", "year", "gender"]).reset_index(drop=True)


def check_equal_to_real(values, kpis, years, munis=None):
    exp = expected(kpis, years, munis)
    got = values.sort_values(["kpi", "municipality", "year", "gender"]).reset_index(drop=True)
    assert len(got) == len(exp) > 0
    pd.testing.assert_frame_equal(
        got[["kpi", "municipality", "year", "gender", "value"]],
        exp[["kpi", "municipality", "year", "gender", "value"]],
    )


# ---------------------------------------------------------------------------- pure functions
def test_defaults_and_versions():
    c = KoladaClient()
    assert c.base_url == DEFAULT_BASE_URL == "https://api.kolada.se/v3"
    assert c.api_version == "v3"
    assert api_version_of("http://api.kolada.se/v2/") == "v2"
    assert KoladaClient("http://mirror.example/kolada/v2").api_version == "v2"
    assert KoladaClient("http://mirror.example/x", version="v2").api_version == "v2"
    with pytest.raises(ParameterError, match="http"):
        KoladaClient("ftp://x/v3")
    with pytest.raises(ParameterError, match="offline"):
        KoladaClient(offline=True)


def test_chunking_and_urls():
    ids = [f"U{i:05d}" for i in range(60)]
    parts = chunked(ids + ids[:3])
    assert [len(p) for p in parts] == [25, 25, 10]
    assert sum(parts, []) == ids
    c = KoladaClient("http://h/v3")
    urls = c.data_urls(ids, None, [2016, 2017])
    assert len(urls) == 3
    assert all("per_page=5000" in u and "/data/kpi/" in u and "/year/2016,2017" in u for u in urls)
    assert c.data_urls(["A"], ["0180"], None) == [
        "http://h/v3/data/kpi/A/municipality/0180?per_page=5000"
    ]
    assert c.data_urls(None, ["0180"], [2020]) == [
        "http://h/v3/data/municipality/0180/year/2020?per_page=5000"
    ]
    assert c.data_urls(["A"], None, [2020], from_date="2024-01-01")[0].endswith(
        "?from_date=2024-01-01&per_page=5000"
    )
    ou = c.data_urls(["A"], None, [2020], ou=["V15E018000101"], organisational_units=True)
    assert ou == ["http://h/v3/oudata/kpi/A/ou/V15E018000101/year/2020?per_page=5000"]
    with pytest.raises(ParameterError, match="at least two"):
        c.data_urls(["A"], None, None)
    with pytest.raises(ParameterError, match="empty"):
        c.data_urls([], None, [2020])
    assert c.metadata_urls("kpi", title="hemtjänst") == [
        "http://h/v3/kpi?per_page=5000&title=hemtj%C3%A4nst"
    ]
    with pytest.raises(ParameterError, match="unknown Kolada entity"):
        c.metadata_urls("nope")


def test_retry_policy_waits():
    p = RetryPolicy(backoff=1.0, factor=2.0, max_wait=5.0)
    assert [p.wait(a) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert RetryPolicy().timeout == 30.0 and RetryPolicy().deadline == 900.0
    for bad in ({"timeout": 0}, {"deadline": -1}, {"retries": -1}, {"backoff": -0.5}):
        with pytest.raises(ParameterError):
            RetryPolicy(**bad)


def test_tidy_values_shapes_and_deleted():
    recs = [
        {"kpi": "K1", "municipality": "0180", "period": 2019,
         "values": [{"gender": "T", "count": 1, "status": "", "value": 1.5},
                    {"gender": "K", "count": 1, "status": None, "value": None, "isdeleted": True}]},
        {"kpi": "K1", "municipality_id": "0181", "year": 2019, "isdeleted": True,
         "values": [{"gender": "T", "count": 1, "status": "", "value": 2.0}]},
        {"kpi": "K1", "municipality": "0182", "period": 2019, "gender": "T", "value": 3, "count": 2, "status": "Missing"},
    ]  # fmt: skip
    df, n_del = tidy_values(recs)
    assert n_del == 2
    assert list(df.columns) == ["kpi", "municipality", "year", "gender", "value", "count", "status"]
    assert df["municipality"].tolist() == ["0180", "0182"]
    assert df["value"].tolist() == [1.5, 3.0]
    assert df["status"].tolist() == ["", "Missing"]
    kept, n0 = tidy_values(recs, keep_deleted=True)
    assert n0 == 0 and kept["deleted"].sum() == 2 and len(kept) == 4
    assert np.isnan(kept.loc[kept["gender"].eq("K"), "value"]).all()
    with pytest.raises(DataError, match="lacks kpi"):
        tidy_values([{"kpi": "K1", "values": []}])
    with pytest.raises(DataError, match="not a number"):
        tidy_values([{"kpi": "K", "municipality": "1", "period": 2020, "values": [{"value": "x"}]}])
    with pytest.raises(DataError, match="duplicated"):
        tidy_values(recs[:1] * 2)


# ---------------------------------------------------------------------------- server tests
@pytest.mark.parametrize("version", ["v3", "v2"])
def test_multipage_both_paging_styles(srv, version):
    srv.retired.clear()  # a mirror that still speaks v2
    srv.page_size = 700
    c = client(srv, version)
    recs = c.data(kpi=RIR_LOCAL[:2], year=YEARS)
    df, _ = tidy_values(recs)
    check_equal_to_real(df, RIR_LOCAL[:2], YEARS)
    rec = c.requests[-1]
    assert rec.pages == len(srv.log) >= 2
    assert all(q["per_page"] == "5000" for _, q in srv.log)
    assert [q.get("page", "1") for _, q in srv.log] == [str(i) for i in range(1, rec.pages + 1)]


def test_more_than_25_kpis_are_chunked(srv):
    kpis = sorted(real_values()["kpi"].unique())
    assert len(kpis) > 25
    c = client(srv)
    df, _ = tidy_values(c.data(kpi=kpis, year=[2018]))
    check_equal_to_real(df, kpis, [2018])
    paths = set(srv.paths("/data/"))
    assert len(paths) == 2
    assert all(len(p.split("/kpi/")[1].split("/")[0].split(",")) <= 25 for p in paths)


def test_municipality_chunks_and_any_two_dimensions(srv):
    munis = [m["id"] for m in client(srv).municipalities(region_type="K")][:30]
    assert len(munis) == 30
    c = client(srv)
    df, _ = tidy_values(c.data(kpi=["U21468"], municipality=munis))
    check_equal_to_real(df, ["U21468"], range(2015, 2021), munis)
    df2, _ = tidy_values(c.data(municipality=munis[:3], year=[2019]))
    exp = real_values()
    exp = exp[exp["municipality"].isin(munis[:3]) & exp["year"].eq(2019)]
    assert len(df2) == len(exp) > 0


def test_metadata_endpoints(srv):
    c = client(srv)
    munis = c.municipalities()
    assert len(munis) == 312 and {"id", "title", "type"} <= set(munis[0])
    assert {m["title"] for m in c.municipalities(["0180", "1480"])} == {"Stockholm", "Göteborg"}
    kpis = c.kpis(title="hemtjänst")
    assert kpis and all("hemtjänst" in k["title"].lower() for k in kpis)
    assert c.kpis(["U21468"])[0]["id"] == "U21468"
    groups = c.municipality_groups()
    assert len(groups) == 9 and sum(len(g["members"]) for g in groups) == 290
    assert c.kpi_groups()[0]["members"][0]["member_id"] == RIR_LOCAL[0]
    assert c.ous() == []


def test_oudata(srv):
    srv.ou_records = [
        {"kpi": "U23490", "ou": "V15E018000101", "period": 2019,
         "values": [{"gender": "T", "count": 1, "status": "", "value": 0.08}]}
    ]  # fmt: skip
    recs = client(srv).oudata(kpi=["U23490"], ou=["V15E018000101"], year=[2019])
    df, _ = tidy_values(recs, unit="ou")
    assert df[["ou", "value"]].values.tolist() == [["V15E018000101", 0.08]]
    assert srv.paths("/oudata/kpi/U23490/ou/V15E018000101/year/2019")


def test_429_retry_after_then_success(srv):
    srv.faults.append(("/data/", ("status", 429, 7)))
    sleep = Sleeper()
    c = client(srv, sleep=sleep)
    df, _ = tidy_values(c.data(kpi=["U21468"], year=[2019]))
    check_equal_to_real(df, ["U21468"], [2019])
    assert sleep.waits == [7.0]
    assert c.requests[-1].attempts == 2


def test_503_twice_then_success_with_backoff(srv):
    srv.faults += [("/data/", ("status", 503, None)), ("/data/", ("status", 503, None))]
    sleep = Sleeper()
    c = client(srv, sleep=sleep)
    df, _ = tidy_values(c.data(kpi=["U21468"], year=[2019]))
    check_equal_to_real(df, ["U21468"], [2019])
    assert sleep.waits == [0.5, 1.0]


def test_permanent_500_fails_cleanly_nothing_partial(srv, tmp_path):
    # the second of two KPI chunks fails for good: no snapshot, no cache entry for it
    kpis = sorted(real_values()["kpi"].unique())
    second = ",".join(chunked(kpis)[1])
    srv.faults.append((second, ("status", 500, None, "sticky")))
    cache = KoladaCache(tmp_path / "cache")
    c = client(srv, cache=cache)
    with pytest.raises(KoladaError, match=r"failed after 4 attempt\(s\).*" + second.split(",")[0]):
        fetch_snapshot(c, kpis, years=[2019])
    assert not cache.has(c.data_urls(kpis, None, [2019])[1])
    out = tmp_path / "snap"
    assert not out.exists()


def test_truncated_json_retried_then_error(srv):
    srv.faults.append(("/data/", ("truncate",)))
    c = client(srv)
    df, _ = tidy_values(c.data(kpi=["U21468"], year=[2019]))
    check_equal_to_real(df, ["U21468"], [2019])
    assert c.requests[-1].attempts == 2
    srv.reset()
    srv.faults.append(("/data/", ("truncate", None, None, "sticky")))
    with pytest.raises(KoladaError, match="malformed or truncated JSON"):
        client(srv).data(kpi=["U21468"], year=[2019])
    srv.reset()
    srv.faults.append(("/data/", ("not_kolada", None, None, "sticky")))
    with pytest.raises(KoladaError, match="no 'values' list"):
        client(srv).data(kpi=["U21468"], year=[2019])


def test_short_body_and_timeout_are_retried(srv):
    srv.faults += [("/data/", ("short",)), ("/data/", ("delay", 1.5))]
    sleep = Sleeper()
    c = client(srv, sleep=sleep, retry=RetryPolicy(retries=3, backoff=0.5, timeout=0.5))
    df, _ = tidy_values(c.data(kpi=["U21468"], year=[2019]))
    check_equal_to_real(df, ["U21468"], [2019])
    assert c.requests[-1].attempts == 3 and sleep.waits == [0.5, 1.0]


def test_retry_after_http_date():
    from email.utils import format_datetime

    from ojpanel.data.kolada import _parse_retry_after

    when = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 <= _parse_retry_after(format_datetime(when, usegmt=True)) <= 31
    assert _parse_retry_after("12") == 12.0
    assert _parse_retry_after("soon") is None and _parse_retry_after(None) is None


def test_client_error_is_not_retried(srv):
    sleep = Sleeper()
    with pytest.raises(KoladaError, match="HTTP 404"):
        client(srv, sleep=sleep).get(srv.url() + "/nope?per_page=5000")
    assert sleep.waits == []


def test_paging_loop_detected(srv):
    srv.page_size = 500
    srv.faults.append(("page=2", ("loop",)))
    with pytest.raises(KoladaError, match="loop"):
        client(srv).data(kpi=RIR_LOCAL[:2], year=YEARS)


def test_cache_hit_corruption_and_offline(srv, tmp_path):
    cache_dir = tmp_path / "cache"
    c1 = client(srv, cache=cache_dir)
    first = c1.data(kpi=["U21468", "U23471"], year=[2019])
    url = c1.requests[-1].url
    n_requests = len(srv.log)
    # a second client reads the cache: no network
    c2 = client(srv, cache=cache_dir)
    assert c2.data(kpi=["U21468", "U23471"], year=[2019]) == first
    assert len(srv.log) == n_requests and c2.requests[-1].source == "cache"
    # corrupt the entry: detected, refetched, recorded
    path = KoladaCache(cache_dir).path_for(url)
    path.write_text(path.read_text()[:-40])
    c3 = client(srv, cache=cache_dir)
    assert c3.data(kpi=["U21468", "U23471"], year=[2019]) == first
    assert len(srv.log) == n_requests + 1
    assert c3.requests[-1].cache_was_corrupted and c3.cache.corrupted == (url,)
    assert json.loads(path.read_text())["url"] == url  # repaired
    # tampered values with an intact JSON shape fail the checksum
    entry = json.loads(path.read_text())
    entry["values"][0]["values"][0]["value"] = -1
    path.write_text(json.dumps(entry))
    assert not KoladaCache(cache_dir).has(url)


def test_offline_partial_cache_names_missing(srv, tmp_path):
    cache_dir = tmp_path / "cache"
    client(srv, cache=cache_dir).data(kpi=["U21468"], year=[2019])
    off = client(srv, cache=cache_dir, offline=True)
    n = len(srv.log)
    with pytest.raises(KoladaError, match=r"offline mode: 1 of 2 request\(s\)") as info:
        off.get_many(
            off.data_urls(["U21468"], None, [2019]) + off.data_urls(["U23471"], None, [2019])
        )
    listed = [ln for ln in str(info.value).splitlines() if ln.startswith("  - ")]
    assert len(listed) == 1 and "/data/kpi/U23471/year/2019" in listed[0]
    assert len(srv.log) == n  # offline never touches the network
    assert off.data(kpi=["U21468"], year=[2019])


def test_snapshot_roundtrip_and_deleted_rows(srv, tmp_path):
    srv.page_size = 1000
    srv.deleted |= {("U21468", "0180", 2019), ("U21468", "1480", 2019)}
    c = client(srv, cache=tmp_path / "cache")
    snap = fetch_snapshot(c, ["U21468", "U23471"], years=[2018, 2019], progress=lambda d, t: None)
    exp = expected(["U21468", "U23471"], [2018, 2019])
    n_gone = int(exp.set_index(["kpi", "municipality", "year"]).index.isin(list(srv.deleted)).sum())
    assert n_gone == 6  # T, K, M for each deleted record
    prov = snap.provenance
    assert prov["rows"]["deleted_dropped"] == n_gone
    assert prov["rows"]["values"] == len(exp) - n_gone == len(snap.values)
    assert prov["api_version"] == "v3" and prov["base_url"] == srv.url()
    assert prov["citation"] == KOLADA_CITATION and prov["package_version"]
    assert prov["requests"][0]["pages"] >= 2 and prov["requests"][0]["source"] == "network"
    assert "deleted rows dropped: 6" in snap.summary and "<pre>" in snap._repr_html_()
    out = write_snapshot(snap, tmp_path / "snap")
    values, prov2 = read_snapshot(out)
    assert sorted(p.name for p in out.iterdir()) == ["provenance.json", "values.csv.gz"]
    assert list(values.columns) == [
        "kpi",
        "municipality",
        "year",
        "gender",
        "value",
        "count",
        "status",
    ]
    pd.testing.assert_frame_equal(values, snap.values)
    assert prov2["values_sha256"].startswith("sha256:")
    with pytest.raises(ParameterError, match="not empty"):
        write_snapshot(snap, out)
    # keep_deleted keeps them with a flag
    keep = fetch_snapshot(c, ["U21468"], years=[2019], keep_deleted=True)
    assert keep.values["deleted"].sum() == 6
    # tampering is detected
    (out / "values.csv.gz").write_bytes(b"x")
    with pytest.raises(DataError, match="checksum"):
        read_snapshot(out)
    with pytest.raises(FileNotFoundError, match="not an ojpanel snapshot"):
        read_snapshot(tmp_path / "nothing")


def test_snapshot_needs_two_dimensions(srv):
    with pytest.raises(ParameterError, match="two dimensions"):
        fetch_snapshot(client(srv), ["U21468"])
    with pytest.raises(ParameterError, match="no KPI"):
        fetch_snapshot(client(srv), [" "], years=[2019])
