"""Kolada faults fail fast and visibly: time-outs, deadlines, Retry-After, 410, Ctrl-C, locks,
empty results — against the local Kolada look-alike (no internet)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ojpanel
from kolada_server import Sleeper, real_values
from ojpanel.cli import app
from ojpanel.data.kolada import KoladaClient, RetryPolicy
from ojpanel.data.kolada_cache import KoladaCache
from ojpanel.data.snapshot import fetch_snapshot, read_snapshot, snapshot_lock
from ojpanel.errors import DataError, KoladaError, ParameterError

runner = CliRunner()
SRC = str(Path(ojpanel.__file__).resolve().parents[1])


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    return " ".join(text.split())


def two_chunks() -> list[str]:
    kpis = sorted(real_values()["kpi"].unique())
    assert len(kpis) > 25
    return kpis[:26]


# ---------------------------------------------------------------------------- the live v3 shape
def test_server_answers_in_the_live_v3_shape(srv):
    srv.page_size = 100
    url = srv.url() + "/data/kpi/U21468/year/2019?per_page=5000"
    first = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert {"count", "values", "next_url", "previous_url"} <= set(first)
    assert first["previous_url"] is None and first["count"] == len(first["values"]) == 100
    assert all("isdeleted" in e and e["isdeleted"] is False for r in first["values"] for e in r["values"])
    assert all("isdeleted" not in r for r in first["values"])
    second = json.loads(urllib.request.urlopen(first["next_url"], timeout=10).read())
    assert second["previous_url"] and "page=1" in second["previous_url"]


# ---------------------------------------------------------------------------- time-out and deadline
def test_hung_server_ends_within_15_s_with_a_clear_message(srv, tmp_path):
    srv.faults.append(("/data/", ("hang", None, None, "sticky")))
    out = tmp_path / "snap"
    t0 = time.monotonic()
    r = run("fetch", "--kpi", "U21468", "--years", "2019", "--out", out, "--base-url", srv.url(),
            "--no-cache", "--timeout", "2", "--deadline", "10")  # fmt: skip
    took = time.monotonic() - t0
    assert r.exit_code == 2, r.output
    assert took < 15, took
    text = flat(r.output)
    assert "deadline of 10 s (--deadline)" in text and "no answer within 2 s (--timeout)" in text
    assert "Traceback" not in r.output and not out.exists()


def test_deadline_bounds_the_whole_fetch_not_each_request(srv):
    # every request needs two attempts; the deadline stops the fetch between requests
    srv.faults.append(("/data/", ("status", 503, None, "sticky")))
    c = KoladaClient(srv.url(), sleep=time.sleep,
                     retry=RetryPolicy(retries=50, backoff=0.2, factor=1.0, timeout=2, deadline=1.0))
    t0 = time.monotonic()
    with pytest.raises(KoladaError, match=r"deadline of 1 s"):
        c.data(kpi=["U21468"], year=[2019])
    assert time.monotonic() - t0 < 2.5


# ---------------------------------------------------------------------------- Retry-After
def test_retry_after_3600_fails_at_once_quoting_it(srv, tmp_path):
    srv.faults.append(("/data/", ("status", 429, 3600, "sticky")))
    out = tmp_path / "snap"
    t0 = time.monotonic()
    r = run("fetch", "--kpi", "U21468", "--years", "2019", "--out", out, "--base-url", srv.url(),
            "--no-cache")  # fmt: skip
    assert time.monotonic() - t0 < 5
    assert r.exit_code == 2, r.output
    text = flat(r.output)
    assert "Retry-After: 3600" in text and "asks to wait 3600 s" in text
    assert "try again after" in text and "(UTC)" in text and "--deadline 900" in text
    assert len(srv.paths("/data/")) == 1 and not out.exists()


def test_retry_after_within_the_deadline_is_honoured_beyond_max_wait(srv):
    srv.faults.append(("/data/", ("status", 503, 200)))
    sleep = Sleeper()
    c = KoladaClient(srv.url(), sleep=sleep, retry=RetryPolicy(max_wait=5, deadline=900))
    assert c.data(kpi=["U21468"], year=[2019])
    assert sleep.waits == [200.0]
    # without a deadline, max_wait is the limit and a longer Retry-After fails at once
    srv.faults.append(("/data/", ("status", 503, 200)))
    c = KoladaClient(srv.url(), sleep=Sleeper(), retry=RetryPolicy(max_wait=5, deadline=None))
    with pytest.raises(KoladaError, match=r"longest wait allowed \(5 s\)"):
        c.data(kpi=["U23471"], year=[2019])


# ---------------------------------------------------------------------------- retries are visible
def test_every_retry_and_wait_is_reported(srv):
    srv.faults += [("/data/", ("status", 503, None)), ("/data/", ("status", 429, 3)),
                   ("/data/", ("truncate",))]  # fmt: skip
    seen: list[str] = []
    c = KoladaClient(srv.url(), sleep=Sleeper(), notify=seen.append,
                     retry=RetryPolicy(backoff=0.5, timeout=10))
    c.data(kpi=["U21468"], year=[2019])
    assert len(seen) == 3
    assert seen[0].startswith("retry 1/5 in 0.5 s after HTTP 503")
    assert seen[1].startswith("retry 2/5 in 3 s (Retry-After: 3) after HTTP 429")
    assert seen[2].startswith("retry 3/5 in 2 s after malformed or truncated JSON")
    assert seen[0].endswith("/v3/data/kpi/U21468/year/2019?per_page=5000")


def test_fetch_shows_retries_as_log_lines_when_not_on_a_terminal(srv, tmp_path, monkeypatch):
    monkeypatch.delenv("OJPANEL_PROGRESS", raising=False)
    srv.faults += [("/data/", ("status", 503, None)), ("/data/", ("status", 502, None))]
    r = run("fetch", "--kpi", "U21468", "--years", "2019", "--out", tmp_path / "s", "--base-url",
            srv.url(), "--no-cache", "--backoff", "0")  # fmt: skip
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("Kolada: ") and "retry" in ln]
    assert len(lines) == 2, r.output
    assert lines[0].startswith("Kolada: retry 1/5 in 0 s after HTTP 503")
    assert lines[1].startswith("Kolada: retry 2/5 in 0 s after HTTP 502")


# ---------------------------------------------------------------------------- 410 and empty results
def test_410_says_the_version_is_retired_and_names_v3(srv, tmp_path):
    r = run("fetch", "--kpi", "U21468", "--years", "2019", "--out", tmp_path / "s",
            "--base-url", srv.url("v2"), "--no-cache")  # fmt: skip
    assert r.exit_code == 2
    text = flat(r.output)
    assert "410 Gone" in text and "(v2) has been retired" in text
    assert "--base-url https://api.kolada.se/v3" in text and "Check the ids" not in text


def test_empty_result_is_an_error_unless_allowed(srv, tmp_path):
    out = tmp_path / "s"
    r = run("fetch", "--kpi", "U99999", "--years", "2019", "--out", out, "--base-url", srv.url(),
            "--no-cache")  # fmt: skip
    assert r.exit_code == 2 and not out.exists()
    assert "returned no values for KPI(s) U99999, years 2019" in flat(r.output)
    assert "--allow-empty" in r.output
    r = run("fetch", "--kpi", "U99999", "--years", "2019", "--out", out, "--base-url", srv.url(),
            "--no-cache", "--allow-empty")  # fmt: skip
    assert r.exit_code == 0, r.output
    values, prov = read_snapshot(out)
    assert values.empty and prov["rows"]["values"] == 0
    with pytest.raises(DataError, match="returned no values"):
        fetch_snapshot(KoladaClient(srv.url()), ["U99999"], years=[2019])


# ---------------------------------------------------------------------------- locks on --out
def _subprocess_fetch(srv, out: Path, cache: Path, kpis: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
               OJPANEL_PROGRESS="log")
    cmd = [sys.executable, "-m", "ojpanel", "fetch", "--kpi", ",".join(kpis), "--years", "2019",
           "--out", str(out), "--base-url", srv.url(), "--cache-dir", str(cache), "--backoff", "0"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(cond, seconds: float = 60.0) -> None:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > seconds:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def test_a_second_fetch_into_the_same_out_is_refused(srv, tmp_path):
    out = tmp_path / "snap"
    srv.faults.append(("/data/", ("hang",)))
    first = _subprocess_fetch(srv, out, tmp_path / "cache", ["U21468"])
    try:
        _wait_for(lambda: srv.paths("/data/"))
        r = run("fetch", "--kpi", "U21468", "--years", "2019", "--out", out, "--base-url",
                srv.url(), "--no-cache", "--overwrite")  # fmt: skip
        assert r.exit_code == 2, r.output
        text = flat(r.output)
        assert f"being written by another ojpanel fetch (process {first.pid}" in text
        assert len(srv.paths("/data/")) == 1  # refused before any request
    finally:
        srv.reset()  # release the hung request: the first fetch retries and finishes
        stdout, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr
    assert "wrote snapshot" in stdout and read_snapshot(out)[0]["kpi"].eq("U21468").all()
    assert not (tmp_path / ".snap.lock").exists()


def test_a_stale_lock_is_taken_over_and_a_live_one_refused(srv, tmp_path):
    out = tmp_path / "snap"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = tmp_path / ".snap.lock"
    import socket

    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "x"}))
    r = run("fetch", "--kpi", "U21468", "--years", "2019", "--out", out, "--base-url", srv.url(),
            "--no-cache", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert not lock.exists() and read_snapshot(out)[0].shape[0] > 0
    with snapshot_lock(tmp_path / "other"), pytest.raises(ParameterError, match=f"process {os.getpid()}"):
        with snapshot_lock(tmp_path / "other"):
            pass
    assert not (tmp_path / ".other.lock").exists()


def test_overwrite_replaces_a_snapshot_and_is_needed_to(srv, tmp_path):
    out = tmp_path / "snap"
    args = ["fetch", "--years", "2019", "--out", out, "--base-url", srv.url(), "--no-cache", "-q"]
    assert run(*args, "--kpi", "U21468").exit_code == 0
    r = run(*args, "--kpi", "U23471")
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert set(read_snapshot(out)[0]["kpi"]) == {"U21468"}
    assert run(*args, "--kpi", "U23471", "--overwrite").exit_code == 0
    assert set(read_snapshot(out)[0]["kpi"]) == {"U23471"}


# ---------------------------------------------------------------------------- Ctrl-C
@pytest.mark.skipif(os.name != "posix", reason="SIGINT delivery as on a terminal")
def test_ctrl_c_says_what_is_cached_and_how_to_resume(srv, tmp_path):
    kpis = two_chunks()
    second = ",".join(kpis[25:])
    srv.faults.append((f"/kpi/{second}/", ("hang",)))
    out, cache = tmp_path / "snap", tmp_path / "cache"
    proc = _subprocess_fetch(srv, out, cache, kpis)
    try:
        # the first request (two pages) is done once the second one is asked for
        _wait_for(lambda: srv.paths(f"/kpi/{second}/"))
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        srv.reset()
    assert proc.returncode == 130, stderr
    text = flat(stderr)
    assert "Traceback" not in stderr
    assert f"1 of 2 request(s) are complete and cached in {cache}" in text
    assert f"Nothing was written to {out}" in text and not out.exists()
    resume = next(ln for ln in stderr.splitlines() if ln.startswith("resume with: "))
    words = shlex.split(resume.removeprefix("resume with: "))
    assert words[:2] == ["ojpanel", "fetch"] and "--cache-dir" in words and str(out) in words
    n = len(srv.paths("/data/"))
    r = runner.invoke(app, words[1:])
    assert r.exit_code == 0, r.output
    assert srv.paths("/data/")[n:] == [f"/v3/data/kpi/{second}/year/2019"]  # only the missing one
    assert set(read_snapshot(out)[0]["kpi"]) == set(kpis) & set(real_values()["kpi"])


def test_no_cache_entry_for_a_failed_request(srv, tmp_path):
    srv.faults.append(("/data/", ("status", 500, None, "sticky")))
    cache = KoladaCache(tmp_path / "c")
    c = KoladaClient(srv.url(), cache=cache, sleep=Sleeper(), retry=RetryPolicy(retries=1))
    with pytest.raises(KoladaError, match="failed after 2 attempt"):
        fetch_snapshot(c, ["U21468"], years=[2019])
    assert not list((tmp_path / "c").rglob("*.json"))
