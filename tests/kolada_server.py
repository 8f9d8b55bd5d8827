"""A local Kolada look-alike on 127.0.0.1 for tests (no internet).

It serves v3 paths (``/v3/...``) the way the live API answers them, with responses built from the
real values in ``data/kolada_values.csv.gz``, Kolada's municipality list
(``data/kolada_api/pykolada_*.json``), the embedded KPI catalogue and the Kolada group ids in
``data/municipalities.csv``:

* a page is ``{"count", "values", "next_url", "previous_url"}`` (links null at the ends);
* every value entry of a ``/data`` record carries ``isdeleted`` (false unless the record's key is
  in :attr:`KoladaTestServer.deleted`).

Kolada v2 is retired and answers ``410 Gone``, as the live API does. A test that needs a server
still speaking v2 (a mirror) removes ``"v2"`` from :attr:`KoladaTestServer.retired`; v2 pages use
``next_page``/``previous_page`` and ``is_deleted: 0|1`` on each value entry.

Tests script failures per request through :attr:`KoladaTestServer.faults`: a list of
``(path substring, action)`` consumed in order, where an action is ``("status", code,
retry_after)``, ``("truncate",)`` (half the JSON), ``("short",)`` (the connection closes before
``Content-Length`` bytes), ``("delay", seconds)``, ``("hang",)`` (no answer until the server is
reset or stopped), ``("body", bytes)`` (a 200 answer with exactly these bytes), ``("loop",)`` or
``("not_kolada",)``; a ``sticky`` action (``("status", 500, None, "sticky")``) is never consumed.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pandas as pd

from ojpanel.config import data_dir

__all__ = ["KoladaTestServer", "Sleeper", "real_values", "serve"]

#: KPIs with real values used by the server (user survey and staffing from the RiR list, plus
#: enough further OJ KPIs to need more than one 25-id chunk).
N_EXTRA_KPIS = 28
RIR_LOCAL = ["U21447", "U23448", "U21466", "U21504", "U23463", "U23520", "U21468", "U23471",
             "U23489", "U23490", "U23493", "U23494"]  # fmt: skip


class Sleeper:
    """Records the waits a client asks for instead of sleeping (pass as ``sleep=``)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, s: float) -> None:
        self.waits.append(s)


@functools.lru_cache(maxsize=1)
def real_values() -> pd.DataFrame:
    """Real Kolada values for 2015–2020 of the RiR user-survey/staffing KPIs and 28 more OJ KPIs."""
    df = pd.read_csv(
        data_dir() / "kolada_values.csv.gz",
        dtype={"kpi": str, "municipality": str, "gender": str, "year": "int64", "value": "float64"},
    )
    df = df[df["year"].between(2015, 2020)]
    others = sorted(set(df["kpi"]) - set(RIR_LOCAL))[:N_EXTRA_KPIS]
    keep = df["kpi"].isin(RIR_LOCAL + others)
    return df.loc[keep].reset_index(drop=True)


@functools.lru_cache(maxsize=1)
def _records_index() -> dict[tuple[str, str, int], list[dict[str, Any]]]:
    out: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    df = real_values()
    for (k, m, y), g in df.groupby(["kpi", "municipality", "year"], sort=True):
        out[(k, m, int(y))] = [
            {"count": 1, "gender": gd, "status": "", "value": None if pd.isna(v) else float(v)}
            for gd, v in zip(g["gender"], g["value"], strict=True)
        ]
    return out


@functools.lru_cache(maxsize=1)
def _metadata() -> dict[str, list[dict[str, Any]]]:
    d = data_dir()
    munis = json.loads(
        (d / "kolada_api" / "pykolada_2024-01-15_municipality.json").read_text(encoding="utf-8")
    )
    cat = pd.read_csv(d / "kpi_catalogue.csv", dtype=str, keep_default_na=False)
    kpis = [
        {
            "id": r.id,
            "title": r.title,
            "description": "",
            "operating_area": r.operating_area,
            "perspective": r.perspective,
            "municipality_type": r.municipality_type,
            "is_divided_by_gender": r.is_divided_by_gender == "True",
            "has_ou_data": False,
        }
        for r in cat.itertuples()
    ]
    ref = pd.read_csv(d / "municipalities.csv", dtype=str)
    groups = [
        {
            "id": gid,
            "title": f"Kommungrupp {g['kg2017_kod'].iloc[0]}: {g['kg2017_namn'].iloc[0]} (ovägt medel)",
            "members": [
                {"member_id": c, "member_title": n}
                for c, n in zip(g["kommunkod"], g["kommun"], strict=True)
            ],
        }
        for gid, g in ref.groupby("kg2017_kolada_group")
    ]
    kpi_groups = [
        {"id": "GKPI_TEST", "title": "Brukarbedömning äldreomsorg (test group)",
         "members": [{"member_id": k, "member_title": k} for k in RIR_LOCAL[:8]]}
    ]  # fmt: skip
    return {
        "municipality": munis,
        "kpi": kpis,
        "municipality_groups": groups,
        "kpi_groups": kpi_groups,
        "ou": [],
    }


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that timed out closes its socket: expected in the time-out tests
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class KoladaTestServer:
    """Threaded HTTP server answering Kolada v2/v3 requests.

    Attributes
    ----------
    page_size
        Server-side cap on page size (small values force multi-page answers).
    faults
        Scripted failures, see the module docstring.
    deleted
        ``(kpi, municipality, year)`` keys whose records are flagged deleted.
    log
        Every request as ``(path, query dict)``.
    ou_records
        Records served by ``/oudata`` (empty unless a test sets them).
    retired
        API versions that answer ``410 Gone`` (default: v2, as the live API).
    """

    def __init__(self) -> None:
        self.page_size = 5000
        self.faults: list[tuple[str, tuple[Any, ...]]] = []
        self.deleted: set[tuple[str, str, int]] = set()
        self.log: list[tuple[str, dict[str, str]]] = []
        self.ou_records: list[dict[str, Any]] = []
        self.retired: set[str] = {"v2"}
        self._unhang = threading.Event()
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def root(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, version: str = "v3") -> str:
        """Base URL for ``version``."""
        return f"{self.root}/{version}"

    def start(self) -> KoladaTestServer:
        """Start serving in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (hung requests are released first)."""
        self._unhang.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        """Forget faults, deleted flags, OU records and the request log; release hung requests;
        default page size and retired versions."""
        with self._lock:
            self.page_size = 5000
            self.faults.clear()
            self.deleted.clear()
            self.log.clear()
            self.ou_records = []
            self.retired = {"v2"}
            self._unhang.set()
            self._unhang = threading.Event()

    def paths(self, contains: str = "") -> list[str]:
        """Logged request paths containing ``contains``."""
        return [p for p, _ in self.log if contains in p]

    # ------------------------------------------------------------------ responses
    def _take_fault(self, path: str) -> tuple[Any, ...] | None:
        with self._lock:
            for i, (needle, action) in enumerate(self.faults):
                if needle in path:
                    if not (len(action) > 3 and action[3] == "sticky"):
                        del self.faults[i]
                    return action
        return None

    def _data_values(self, version: str, dims: dict[str, list[str]]) -> list[dict[str, Any]]:
        index = _records_index()
        kpis = dims.get("kpi")
        munis = dims.get("municipality")
        years = [int(y) for y in dims["year"]] if "year" in dims else None
        out = []
        for (k, m, y), entries in index.items():
            if (
                (kpis is None or k in kpis)
                and (munis is None or m in munis)
                and (years is None or y in years)
            ):
                rec: dict[str, Any] = {"kpi": k, "municipality": m, "period": y}
                deleted = (k, m, y) in self.deleted
                if version == "v3":
                    rec["values"] = [dict(e, isdeleted=deleted) for e in entries]
                else:
                    rec["values"] = [dict(e, is_deleted=int(deleted)) for e in entries]
                out.append(rec)
        return out

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                return

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _error(self, code: int, msg: str) -> None:
                self._send(code, json.dumps({"error": msg}).encode())

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                with server._lock:
                    server.log.append((parts.path, query))
                fault = server._take_fault(parts.path + "?" + parts.query)
                if fault and fault[0] == "delay":  # slower than the client's time-out
                    time.sleep(fault[1])
                if fault and fault[0] == "hang":  # a server that never answers
                    server._unhang.wait(timeout=120)
                    return None
                if fault and fault[0] == "status":
                    headers = {"Retry-After": str(fault[2])} if fault[2] is not None else {}
                    return self._send(fault[1], b'{"error": "scripted failure"}', headers)
                if fault and fault[0] == "body":
                    return self._send(200, fault[1])
                segs = [urllib.parse.unquote(s) for s in parts.path.strip("/").split("/")]
                if not segs or segs[0] not in {"v2", "v3"}:
                    return self._error(404, "unknown API version")
                version, rest = segs[0], segs[1:]
                if version in server.retired:
                    return self._error(410, f"API {version} has been retired; use v3")
                if not rest:
                    return self._error(404, "no endpoint")
                try:
                    values = self._values(version, rest, query)
                except LookupError as exc:
                    return self._error(404, str(exc))
                except ValueError as exc:
                    return self._error(400, str(exc))
                per_page = min(int(query.get("per_page", 5000)), server.page_size)
                page = int(query.get("page", 1))
                chunk = values[(page - 1) * per_page : page * per_page]
                body: dict[str, Any] = {"count": len(chunk), "values": chunk}
                link_key, back_key = (
                    ("next_url", "previous_url") if version == "v3" else ("next_page", "previous_page")
                )

                def link(to: int) -> str:
                    q = dict(query, page=str(to))
                    return f"{server.root}{parts.path}?{urllib.parse.urlencode(sorted(q.items()))}"

                if fault and fault[0] == "loop":
                    body[link_key] = server.root + self.path
                elif page * per_page < len(values):
                    body[link_key] = link(page + 1)
                elif version == "v3":
                    body[link_key] = None
                if page > 1:
                    body[back_key] = link(page - 1)
                elif version == "v3":
                    body[back_key] = None
                if fault and fault[0] == "not_kolada":
                    return self._send(200, b'{"message": "maintenance"}')
                raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
                if fault and fault[0] == "truncate":
                    raw = raw[: max(len(raw) // 2, 1)]
                if fault and fault[0] == "short":  # connection closes before Content-Length bytes
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(raw) + 1000))
                    self.end_headers()
                    self.wfile.write(raw)
                    self.close_connection = True
                    return None
                return self._send(200, raw)

            def _values(
                self, version: str, rest: list[str], query: dict[str, str]
            ) -> list[dict[str, Any]]:
                entity = rest[0]
                if entity in {"data", "oudata"}:
                    dims: dict[str, list[str]] = {}
                    it: Iterator[str] = iter(rest[1:])
                    for name in it:
                        ids = next(it, "")
                        if name not in {"kpi", "municipality", "year", "ou"} or not ids:
                            raise LookupError(f"bad data path segment {name!r}")
                        dims[name] = ids.split(",")
                    for name, ids in dims.items():
                        if version == "v3" and len(ids) > 25:
                            raise ValueError(f"too many ids in segment {name} ({len(ids)} > 25)")
                    if len(dims) < 2:
                        raise ValueError("at least two dimensions are required")
                    if entity == "oudata":
                        return list(server.ou_records)
                    return server._data_values(version, dims)
                meta = _metadata()
                if entity not in meta:
                    raise LookupError(f"unknown endpoint {entity!r}")
                vals = meta[entity]
                if len(rest) > 1:
                    ids = rest[1].split(",")
                    if version == "v3" and len(ids) > 25:
                        raise ValueError(f"too many ids ({len(ids)} > 25)")
                    vals = [v for v in vals if v["id"] in ids]
                if "title" in query:
                    vals = [v for v in vals if query["title"].lower() in v["title"].lower()]
                if "region_type" in query:
                    vals = [v for v in vals if v.get("type") == query["region_type"]]
                return vals

        return Handler


def serve() -> Iterator[KoladaTestServer]:
    """Generator for a pytest fixture: a started server, stopped afterwards.

    The response index is built before the server starts, so the first request is not slow
    enough to hit a client time-out on a busy machine.
    """
    _records_index()
    _metadata()
    srv = KoladaTestServer().start()
    try:
        yield srv
    finally:
        srv.stop()
