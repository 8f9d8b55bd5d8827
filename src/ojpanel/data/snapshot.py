"""Kolada snapshots: tidy values plus provenance, written atomically to a directory.

A snapshot directory holds

``values.csv.gz``
    one row per KPI × municipality × year × gender with columns
    ``kpi, municipality, year, gender, value, count, status`` (raw Kolada values);
``provenance.json``
    API version, base URL, every request (pages, rows, cache or network), retrieval time, row
    counts (including rows Kolada marks deleted, which are dropped by default), the package
    version and a SHA-256 of ``values.csv.gz``.

:func:`read_snapshot` checks the checksum, so a snapshot edited or truncated after the fetch is
refused. The directory appears only when everything was fetched: a failed fetch leaves nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ojpanel.config import KOLADA_CITATION
from ojpanel.data.kolada import KoladaClient
from ojpanel.errors import DataError, ParameterError
from ojpanel.progress import progress as report_progress
from ojpanel.provenance import package_version, utc_now

__all__ = [
    "SNAPSHOT_COLUMNS",
    "SNAPSHOT_FORMAT",
    "Snapshot",
    "tidy_values",
    "fetch_snapshot",
    "write_snapshot",
    "read_snapshot",
    "snapshot_lock",
]

SNAPSHOT_COLUMNS = ("kpi", "municipality", "year", "gender", "value", "count", "status")
SNAPSHOT_FORMAT = "ojpanel-kolada-snapshot/1"
_VALUES = "values.csv.gz"
_PROVENANCE = "provenance.json"


def _truthy(x: Any) -> bool:
    if isinstance(x, str):
        return x.strip().lower() in {"1", "true", "yes"}
    return bool(x)


def tidy_values(
    records: Iterable[Mapping[str, Any]], *, keep_deleted: bool = False, unit: str = "municipality"
) -> tuple[pd.DataFrame, int]:
    """Flatten Kolada ``/data`` records into a tidy frame.

    Parameters
    ----------
    records
        Objects as Kolada returns them: ``kpi``, ``municipality`` (or ``municipality_id``, or
        ``ou`` for ``/oudata``), ``period`` (or ``year``) and a ``values`` list of
        ``{gender, count, status, value}``. A deleted flag (``isdeleted`` in v3, ``is_deleted`` in
        v2) is honoured on the record or on its value entries.
    keep_deleted
        Keep rows flagged deleted (adds a ``deleted`` column) instead of dropping them.
    unit
        Name of the unit column: ``municipality`` or ``ou``.

    Returns
    -------
    (pandas.DataFrame, int)
        The tidy values sorted by kpi, unit, year, gender, and the number of deleted rows dropped.

    Raises
    ------
    DataError
        If a record lacks its KPI, unit or year, or a value is not a number.
    """
    rows: list[tuple[Any, ...]] = []
    n_deleted = 0
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise DataError(f"Kolada record {i} is {type(rec).__name__}, not an object; "
                            "the response is not a /data response")
        kpi = rec.get("kpi")
        where = rec.get(unit, rec.get(f"{unit}_id"))
        year = rec.get("period", rec.get("year"))
        if kpi is None or where is None or year is None:
            raise DataError(
                f"Kolada record {i} lacks kpi, {unit} or period: {dict(rec)!r:.200}; "
                "the response is not a /data response"
            )
        outer_deleted = _truthy(rec.get("isdeleted", rec.get("is_deleted", False)))
        entries = rec.get("values")
        if entries is None:  # a flat record carries its own value
            entries = [rec]
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
            raise DataError(f"Kolada record {i} ({kpi}/{where}/{year}) has values {entries!r:.80}, "
                            "not a list of objects")
        for e in entries:
            deleted = outer_deleted or _truthy(e.get("isdeleted", e.get("is_deleted", False)))
            if deleted and not keep_deleted:
                n_deleted += 1
                continue
            v = e.get("value")
            try:
                value = float("nan") if v is None else float(v)
            except (TypeError, ValueError) as exc:
                raise DataError(
                    f"Kolada value {v!r} for {kpi}/{where}/{year} is not a number"
                ) from exc
            count = e.get("count")
            try:
                year_i, count_i = int(year), None if count is None else int(count)
            except (TypeError, ValueError) as exc:
                raise DataError(
                    f"Kolada record {i} ({kpi}/{where}) has period {year!r} or count {count!r}, "
                    "not whole numbers"
                ) from exc
            rows.append(
                (
                    str(kpi),
                    str(where),
                    year_i,
                    str(e.get("gender") or "T"),
                    value,
                    count_i,
                    "" if e.get("status") is None else str(e.get("status")),
                    deleted,
                )
            )
    cols = ["kpi", unit, "year", "gender", "value", "count", "status", "deleted"]
    df = pd.DataFrame(rows, columns=cols)
    df["year"] = df["year"].astype("int64")
    df["value"] = df["value"].astype("float64")
    df["count"] = df["count"].astype("Int64")
    if not keep_deleted:
        df = df.drop(columns="deleted")
    df = df.sort_values(["kpi", unit, "year", "gender"], kind="mergesort").reset_index(drop=True)
    dup = df.duplicated(["kpi", unit, "year", "gender"])
    if dup.any():
        first = df.loc[dup].iloc[0]
        raise DataError(
            f"{int(dup.sum())} duplicated Kolada value(s), e.g. {first['kpi']}/{first[unit]}/"
            f"{first['year']}/{first['gender']}; the requests overlap or the server repeated a page"
        )
    return df, n_deleted


class Snapshot:
    """Tidy Kolada values with their provenance (what :func:`fetch_snapshot` returns).

    Parameters
    ----------
    values
        Frame with :data:`SNAPSHOT_COLUMNS`.
    provenance
        JSON-serialisable dict.
    """

    def __init__(self, values: pd.DataFrame, provenance: Mapping[str, Any]):
        self._values = values
        self._provenance = dict(provenance)

    @property
    def values(self) -> pd.DataFrame:
        """The tidy values (a copy)."""
        return self._values.copy()

    @property
    def provenance(self) -> dict[str, Any]:
        """The provenance dict (a copy)."""
        return json.loads(json.dumps(self._provenance))

    def to_frame(self) -> pd.DataFrame:
        """The tidy values (same as :attr:`values`)."""
        return self.values

    @property
    def summary(self) -> str:
        """A few lines: rows, KPIs, years, requests, deleted rows dropped."""
        p = self._provenance
        v = self._values
        years = f"{v['year'].min()}–{v['year'].max()}" if len(v) else "none"
        return (
            f"Kolada snapshot ({p.get('api_version')}, {p.get('base_url')})\n"
            f"  rows: {len(v)}  KPIs: {v['kpi'].nunique()}  units: {v['municipality'].nunique()}  years: {years}\n"
            f"  requests: {len(p.get('requests', []))}  deleted rows dropped: {p['rows']['deleted_dropped']}\n"
            f"  retrieved: {p.get('retrieved')}  {KOLADA_CITATION}"
        )

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        return "<pre>" + self.summary.replace("&", "&amp;").replace("<", "&lt;") + "</pre>"


def fetch_snapshot(
    client: KoladaClient,
    kpis: Sequence[str],
    *,
    years: Sequence[int] | None = None,
    municipalities: Sequence[str] | None = None,
    keep_deleted: bool = False,
    allow_empty: bool = False,
    progress: bool | Callable[[int, int], None] = False,
) -> Snapshot:
    """Fetch the values of ``kpis`` and return a :class:`Snapshot`; all or nothing.

    Parameters
    ----------
    client
        The Kolada client (its base URL, cache, offline mode, time-out and deadline are used).
    kpis
        KPI ids (any number; split into requests of at most 25).
    years, municipalities
        At least one must be given (Kolada needs two dimensions). Municipality ids may be group
        ids (``G…``).
    keep_deleted
        Keep rows Kolada marks deleted (with a ``deleted`` column); by default they are dropped and
        counted in the provenance.
    allow_empty
        Return an empty snapshot when Kolada has no values at all for the query; by default that
        is an error (a wrong id or year range is the usual cause).
    progress
        True reports progress (:mod:`ojpanel.progress`: a bar on a terminal, log lines
        otherwise), including every retry and wait; a callable receives ``(done, total)``.

    Raises
    ------
    ParameterError
        If no KPI is given or neither years nor municipalities.
    KoladaError
        If any request fails after its retries, the deadline passes, or (offline) a request is
        not cached: nothing is returned.
    DataError
        If Kolada returned no values and ``allow_empty`` is False.
    """
    kpis = [str(k).strip() for k in kpis if str(k).strip()]
    if not kpis:
        raise ParameterError("no KPI ids given; pass at least one (e.g. U21468)")
    if years is None and municipalities is None:
        raise ParameterError(
            "Kolada needs two dimensions: give years (e.g. 2016-2020) and/or municipalities as well as KPIs"
        )
    urls = client.data_urls(
        kpis,
        list(municipalities) if municipalities is not None else None,
        list(years) if years is not None else None,
    )
    started = utc_now()
    n_before = len(client.requests)
    if callable(progress):
        total = len(urls)
        done = [0]

        def tick(_url: str) -> None:
            done[0] += 1
            progress(done[0], total)

        records = client.get_many(urls, progress=tick)
    else:
        with report_progress("Kolada", total=len(urls), enabled=bool(progress)) as bar:
            records = client.get_many(urls, progress=lambda _u: bar.advance(), notify=bar.note)
    values, n_deleted = tidy_values(records, keep_deleted=keep_deleted)
    if values.empty and not allow_empty:
        query = (f"KPI(s) {', '.join(kpis[:10])}{' …' if len(kpis) > 10 else ''}"
                 + (f", years {_span(years)}" if years is not None else "")
                 + (f", municipalities {', '.join(map(str, list(municipalities)[:10]))}"
                    if municipalities is not None else ""))
        raise DataError(
            f"Kolada ({client.base_url}) returned no values for {query}"
            + (f" ({n_deleted} row(s) marked deleted were dropped; --keep-deleted keeps them)"
               if n_deleted else "")
            + ". Check the ids (`ojpanel kpi search WORDS`) and the years, or pass --allow-empty "
            "(allow_empty=True) to write an empty snapshot."
        )
    reqs = [r.to_dict() for r in client.requests[n_before:]]
    cache = client.cache
    provenance = {
        "format": SNAPSHOT_FORMAT,
        "citation": KOLADA_CITATION,
        "api_version": client.api_version,
        "base_url": client.base_url,
        "retrieved": started,
        "completed": utc_now(),
        "package_version": package_version(),
        "query": {
            "kpis": kpis,
            "years": list(years) if years is not None else None,
            "municipalities": list(municipalities) if municipalities is not None else None,
            "keep_deleted": keep_deleted,
        },
        "offline": client.offline,
        "cache_dir": str(cache.root) if cache is not None else None,
        "requests": reqs,
        "rows": {
            "records": len(records),
            "values": int(len(values)),
            "deleted_dropped": int(n_deleted),
            "by_kpi": {k: int(n) for k, n in values.groupby("kpi").size().items()},
            "kpis_without_values": sorted(set(kpis) - set(values["kpi"])),
        },
        "cache_hits": sum(r["source"] == "cache" for r in reqs),
        "cache_corrupted_refetched": [r["url"] for r in reqs if r["cache_was_corrupted"]],
    }
    return Snapshot(values, provenance)


def _span(years: Sequence[int]) -> str:
    ys = sorted(int(y) for y in years)
    if ys and ys == list(range(ys[0], ys[-1] + 1)) and len(ys) > 2:
        return f"{ys[0]}–{ys[-1]}"
    return ", ".join(map(str, ys))


def _lock_path(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


@contextlib.contextmanager
def snapshot_lock(out_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold a lock on ``out_dir`` while a snapshot is fetched and written into it.

    The lock is a file ``.<name>.lock`` beside ``out_dir``, created exclusively, holding the
    process id, host and start time. A lock left by a process that no longer runs (on this host)
    is taken over; one held by a running process is refused.

    Raises
    ------
    ParameterError
        If another process is writing ``out_dir``.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock_path(out)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": utc_now()}
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                held = json.loads(lock.read_text(encoding="utf-8"))
                pid, host = int(held["pid"]), str(held["host"])
            except (OSError, ValueError, KeyError, TypeError):
                held, pid, host = {}, -1, ""
            if host == me["host"] and pid > 0 and not _pid_alive(pid):
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            who = (f"process {pid} on {host}, started {held.get('started', '?')}" if pid > 0
                   else "another process")
            raise ParameterError(
                f"{out} is being written by another ojpanel fetch ({who}; lock file {lock}). "
                "Wait for it to finish, or choose another --out; if no such fetch is running, "
                f"delete {lock}."
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(me, fh)
        break
    else:  # pragma: no cover - a second stale-lock race
        raise ParameterError(f"could not take the lock {lock}; try again")
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def write_snapshot(
    snapshot: Snapshot, out_dir: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write ``snapshot`` to ``out_dir`` atomically (a temporary directory renamed into place).

    Raises
    ------
    ParameterError
        If ``out_dir`` exists and is not empty and ``overwrite`` is False.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ParameterError(
            f"{out} already exists and is not empty; choose another --out or remove it first"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        values = snapshot.values
        # mtime=0 keeps the gzip bytes (and so the checksum) reproducible.
        values.to_csv(tmp / _VALUES, index=False, compression={"method": "gzip", "mtime": 0})
        prov = snapshot.provenance
        prov["values_file"] = _VALUES
        prov["values_sha256"] = _sha256(tmp / _VALUES)
        (tmp / _PROVENANCE).write_text(
            json.dumps(prov, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        if out.exists() and overwrite:
            old = out.with_name(f".{out.name}.old.{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                # fails if another writer filled `out` since the check above: never replace it
                os.rename(tmp, out)
            except OSError as exc:
                raise ParameterError(
                    f"{out} was created by someone else while this snapshot was written; "
                    "nothing was replaced. Choose another --out or add --overwrite"
                ) from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def read_snapshot(snapshot_dir: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a snapshot directory written by :func:`write_snapshot`.

    Returns
    -------
    (pandas.DataFrame, dict)
        Tidy values (columns :data:`SNAPSHOT_COLUMNS`, ``municipality`` as 4-digit strings) and
        the provenance dict.

    Raises
    ------
    FileNotFoundError
        If the directory or one of its two files is missing.
    DataError
        If the values file does not match its checksum or lacks columns.
    """
    d = Path(snapshot_dir)
    vpath, ppath = d / _VALUES, d / _PROVENANCE
    for p in (vpath, ppath):
        if not p.is_file():
            raise FileNotFoundError(
                f"{p} not found: {d} is not an ojpanel snapshot (run `ojpanel fetch --out {d}`)"
            )
    try:
        prov = json.loads(ppath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{ppath} is not valid JSON ({exc}); fetch the snapshot again") from exc
    if not isinstance(prov, dict) or prov.get("format") != SNAPSHOT_FORMAT:
        found = prov.get("format") if isinstance(prov, dict) else type(prov).__name__
        raise DataError(
            f"{ppath}: unknown snapshot format {found!r} (expected {SNAPSHOT_FORMAT}); fetch the "
            "snapshot again"
        )
    expected = prov.get("values_sha256")
    if not isinstance(expected, str) or not expected.startswith("sha256:"):
        raise DataError(
            f"{ppath} has no checksum of {vpath.name}, so the values cannot be trusted; fetch the "
            "snapshot again"
        )
    if _sha256(vpath) != expected:
        raise DataError(
            f"{vpath} does not match the checksum in {ppath}: it changed after the fetch; fetch again"
        )
    try:
        values = pd.read_csv(
            vpath,
            dtype={
                "kpi": str,
                "municipality": str,
                "gender": str,
                "status": str,
                "year": "int64",
                "value": "float64",
            },
            keep_default_na=False,
            na_values={"value": [""], "count": [""]},
        )
    except (OSError, EOFError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError,
            ValueError) as exc:
        raise DataError(f"cannot read {vpath} ({exc}); fetch the snapshot again") from exc
    missing = [c for c in SNAPSHOT_COLUMNS if c not in values.columns]
    if missing:
        raise DataError(f"{vpath} lacks column(s) {missing}")
    values["count"] = values["count"].astype("Int64")
    if "deleted" in values.columns:
        values["deleted"] = values["deleted"].astype(str).str.lower().eq("true")
    return values, prov
