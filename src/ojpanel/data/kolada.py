"""Client for the Kolada API (v3 by default, v2 supported), using only the standard library.

What it guarantees:

* every page of a request is followed (``next_url`` in v3, ``next_page`` in v2; both accepted);
* path segments carry at most 25 ids (Kolada v3's limit); longer lists are split into chunks;
* 429, 5xx, time-outs, dropped connections and malformed or truncated JSON are retried with
  exponential back-off, honouring ``Retry-After``; when retries run out a :class:`KoladaError`
  names the request, and nothing fetched so far is returned;
* every attempt waits at most ``timeout`` seconds for the server, and a whole fetch stops at its
  ``deadline``: a back-off or a ``Retry-After`` that would pass the deadline fails at once, with a
  message that quotes the server's ``Retry-After`` and says when to try again;
* every retry and wait is reported through a ``notify`` callback (the progress bar's text on a
  terminal, a log line otherwise);
* ``410 Gone`` means the API version is retired (Kolada v2 answers so): the error names v3;
* a paging loop (a ``next`` link seen before) is an error;
* complete responses are cached on disk (:class:`~ojpanel.data.kolada_cache.KoladaCache`);
  in offline mode only the cache is read and every missing request is named.

Raw values are cited "Källa: Kolada" (:data:`ojpanel.config.KOLADA_CITATION`).
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ojpanel.data.kolada_cache import KoladaCache
from ojpanel.errors import KoladaError, ParameterError
from ojpanel.provenance import package_version, utc_now

__all__ = [
    "DEFAULT_BASE_URL",
    "V2_BASE_URL",
    "MAX_IDS_PER_SEGMENT",
    "PER_PAGE",
    "RetryPolicy",
    "RequestRecord",
    "KoladaClient",
    "chunked",
    "api_version_of",
]

DEFAULT_BASE_URL = "https://api.kolada.se/v3"
V2_BASE_URL = "http://api.kolada.se/v2"
#: Kolada v3 rejects more ids than this in one path segment.
MAX_IDS_PER_SEGMENT = 25
#: Largest page size both API versions accept.
PER_PAGE = 5000
#: Guard against servers that page forever without repeating a link.
MAX_PAGES = 10_000

_METADATA_ENTITIES = ("kpi", "kpi_groups", "municipality", "municipality_groups", "ou")


@dataclass(frozen=True)
class RetryPolicy:
    """How failed requests are retried.

    Parameters
    ----------
    retries
        Further attempts after the first one.
    backoff
        Wait before the first retry in seconds; doubled (``factor``) on each further retry.
    factor
        Growth of the wait between retries.
    max_wait
        Upper bound of a back-off wait; without a ``deadline`` also the longest ``Retry-After``
        that is honoured (a longer one fails at once instead of retrying too early).
    timeout
        Seconds an attempt waits for the server (connecting, and between received bytes).
    deadline
        Seconds a whole fetch (:meth:`KoladaClient.get_many`) may take, retries and waits
        included; None for no limit. A ``Retry-After`` up to the time left is honoured, a longer
        one fails at once.
    """

    retries: int = 5
    backoff: float = 1.0
    factor: float = 2.0
    max_wait: float = 120.0
    timeout: float = 30.0
    deadline: float | None = 900.0

    def __post_init__(self) -> None:
        for name in ("retries", "backoff", "factor", "max_wait"):
            if getattr(self, name) < 0:
                raise ParameterError(f"{name} must not be negative; got {getattr(self, name)}")
        if not self.timeout > 0:
            raise ParameterError(f"the time-out per request must be positive; got {self.timeout}")
        if self.deadline is not None and not self.deadline > 0:
            raise ParameterError(f"the deadline must be positive (or None); got {self.deadline}")

    def wait(self, attempt: int) -> float:
        """Back-off in seconds before retry number ``attempt`` (1-based), at most ``max_wait``."""
        return min(self.backoff * self.factor ** (attempt - 1), self.max_wait)


@dataclass
class RequestRecord:
    """One logical request (all its pages) as recorded in provenance."""

    url: str
    pages: int = 0
    rows: int = 0
    attempts: int = 0
    source: str = "network"  # "network" or "cache"
    retrieved: str = ""
    cache_was_corrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON provenance."""
        return {
            "url": self.url,
            "pages": self.pages,
            "rows": self.rows,
            "attempts": self.attempts,
            "source": self.source,
            "retrieved": self.retrieved,
            "cache_was_corrupted": self.cache_was_corrupted,
        }


def chunked(ids: Sequence[str], size: int = MAX_IDS_PER_SEGMENT) -> list[list[str]]:
    """Split ``ids`` into lists of at most ``size`` (order kept, duplicates removed)."""
    if size < 1:
        raise ParameterError(f"chunk size must be positive, got {size}")
    seen: dict[str, None] = {}
    for i in ids:
        seen.setdefault(str(i), None)
    uniq = list(seen)
    return [uniq[k : k + size] for k in range(0, len(uniq), size)]


def api_version_of(base_url: str) -> str:
    """``"v2"`` or ``"v3"`` from a base URL (its last path segment; default v3)."""
    last = urllib.parse.urlsplit(base_url).path.rstrip("/").rsplit("/", 1)[-1].lower()
    return "v2" if last == "v2" else "v3"


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


class _Retryable(Exception):
    """Internal: a failure worth another attempt."""

    def __init__(self, reason: str, retry_after: float | None = None, retry_after_raw: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.retry_after_raw = retry_after_raw


def _is_data_url(url: str) -> bool:
    root = urllib.parse.urlsplit(url).path.rstrip("/").split("/")
    return "data" in root or "oudata" in root


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return False
        return True
    return False


def _record_problem(values: list[Any]) -> str:
    """What is wrong with the records of a ``/data`` or ``/oudata`` page ("" if nothing)."""
    for i, rec in enumerate(values):
        if not isinstance(rec, dict):
            return f"record {i} is {type(rec).__name__}, not an object"
        unit = rec.get("municipality", rec.get("municipality_id", rec.get("ou")))
        if rec.get("kpi") is None or unit is None or rec.get("period", rec.get("year")) is None:
            return f"record {i} lacks kpi, municipality/ou or period: {json.dumps(rec)[:120]}"
        period = rec.get("period", rec.get("year"))
        if not (isinstance(period, int) and not isinstance(period, bool)) and not (
            isinstance(period, str) and period.isdigit()
        ):
            return f"record {i} has period {period!r}, not a year"
        entries = rec.get("values", [rec])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            return f"record {i} has values {json.dumps(entries)[:80]}, not a list of objects"
        for e in entries:
            v = e.get("value")
            if v is not None and not _is_number(v):
                return f"record {i} has value {v!r}, not a number"
    return ""


def _short(url: str) -> str:
    """Path and query of a URL, for messages that repeat often."""
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _utc_after(seconds: float) -> str:
    when = datetime.now(UTC) + timedelta(seconds=seconds)
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")


class KoladaClient:
    """Kolada API client with paging, chunking, retries and an on-disk cache.

    Parameters
    ----------
    base_url
        API root, e.g. ``https://api.kolada.se/v3`` (default) or ``http://api.kolada.se/v2`` or a
        mirror/test server. The API version is read from its last path segment unless ``version``
        is given.
    version
        ``"v2"`` or ``"v3"``; overrides the guess from ``base_url``.
    cache
        A :class:`KoladaCache`, a directory for one, or None for no cache.
    offline
        Read only from the cache; a request that is not cached raises :class:`KoladaError`.
    retry
        Retry policy.
    sleep
        Function used to wait between retries (injectable so tests do not wait).
    notify
        Called with a one-line message for every retry and wait (default: nothing); a call of
        :meth:`get_many` can route them elsewhere for its duration.
    per_page
        Page size asked for (Kolada's maximum, 5000, by default).
    user_agent
        Sent with every request.

    Examples
    --------
    >>> client = KoladaClient()                                   # doctest: +SKIP
    >>> rows = client.data(kpi=["U21468"], year=[2019, 2020])      # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        version: str | None = None,
        cache: KoladaCache | str | Any | None = None,
        offline: bool = False,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        notify: Callable[[str], None] | None = None,
        per_page: int = PER_PAGE,
        user_agent: str | None = None,
    ):
        self._base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        scheme = urllib.parse.urlsplit(self._base_url).scheme
        if scheme not in {"http", "https"}:
            raise ParameterError(
                f"base URL {self._base_url!r} must start with http:// or https://, "
                f"e.g. {DEFAULT_BASE_URL}"
            )
        version = version or api_version_of(self._base_url)
        if version not in {"v2", "v3"}:
            raise ParameterError(f"Kolada API version must be 'v2' or 'v3', got {version!r}")
        self._version = version
        if cache is not None and not isinstance(cache, KoladaCache):
            cache = KoladaCache(cache)
        if offline and cache is None:
            raise ParameterError(
                "offline mode needs a cache directory (give cache=... / --cache-dir)"
            )
        self._cache = cache
        self._offline = offline
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._notify = notify
        self._deadline_at: float | None = None
        if not 1 <= per_page <= PER_PAGE:
            raise ParameterError(f"per_page must be between 1 and {PER_PAGE}, got {per_page}")
        self._per_page = per_page
        self._user_agent = user_agent or f"ojpanel/{package_version()}"
        self._log: list[RequestRecord] = []

    # ------------------------------------------------------------------ properties
    @property
    def base_url(self) -> str:
        """API root without a trailing slash."""
        return self._base_url

    @property
    def api_version(self) -> str:
        """``"v2"`` or ``"v3"``."""
        return self._version

    @property
    def offline(self) -> bool:
        """Whether only the cache is read."""
        return self._offline

    @property
    def cache(self) -> KoladaCache | None:
        """The on-disk cache, if any."""
        return self._cache

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy (time-out, deadline, back-off)."""
        return self._retry

    @property
    def requests(self) -> tuple[RequestRecord, ...]:
        """Every logical request made so far, in order."""
        return tuple(self._log)

    # ------------------------------------------------------------------ URLs
    def url(self, path: str, params: dict[str, Any] | None = None) -> str:
        """Full URL of ``path`` with ``per_page`` and sorted query parameters."""
        q = {k: v for k, v in (params or {}).items() if v is not None}
        q.setdefault("per_page", self._per_page)
        query = urllib.parse.urlencode(sorted((k, str(v)) for k, v in q.items()))
        return f"{self._base_url}/{path.lstrip('/')}?{query}"

    @staticmethod
    def _segment(ids: Iterable[Any]) -> str:
        return ",".join(urllib.parse.quote(str(i), safe="") for i in ids)

    def data_urls(
        self,
        kpi: Sequence[str] | None = None,
        municipality: Sequence[str] | None = None,
        year: Sequence[int] | None = None,
        *,
        ou: Sequence[str] | None = None,
        organisational_units: bool = False,
        from_date: str | None = None,
    ) -> list[str]:
        """URLs of the ``/data`` (or, with ``organisational_units=True``, ``/oudata``) requests.

        At least two of the dimensions must be given (Kolada's rule); each is split into chunks of
        at most 25 ids and every combination of chunks is one request.
        """
        if organisational_units and municipality is not None:
            raise ParameterError("/oudata requests take ou ids, not municipality ids")
        if not organisational_units and ou is not None:
            raise ParameterError("ou ids need organisational_units=True (the /oudata endpoint)")
        unit_name, units = ("ou", ou) if organisational_units else ("municipality", municipality)
        dims = [("kpi", kpi), (unit_name, units), ("year", year)]
        given = [(name, list(v)) for name, v in dims if v is not None]
        for name, v in given:
            if not v:
                raise ParameterError(
                    f"the {name} list is empty; leave it out or give at least one id"
                )
        if len(given) < 2:
            raise ParameterError(
                "Kolada data requests need at least two of kpi, municipality/ou and year; got "
                + (", ".join(n for n, _ in given) or "none")
            )
        root = "oudata" if organisational_units else "data"
        chunks = [[(name, c) for c in chunked([str(x) for x in v])] for name, v in given]
        urls = []

        def combos(
            i: int, acc: list[tuple[str, list[str]]]
        ) -> Iterator[list[tuple[str, list[str]]]]:
            if i == len(chunks):
                yield acc
                return
            for item in chunks[i]:
                yield from combos(i + 1, [*acc, item])

        params = {"from_date": from_date} if from_date else None
        for combo in combos(0, []):
            path = root + "".join(f"/{name}/{self._segment(ids)}" for name, ids in combo)
            urls.append(self.url(path, params))
        return urls

    def metadata_urls(
        self,
        entity: str,
        ids: Sequence[str] | None = None,
        *,
        title: str | None = None,
        **params: Any,
    ) -> list[str]:
        """URLs for a metadata endpoint (``kpi``, ``kpi_groups``, ``municipality``, …)."""
        if entity not in _METADATA_ENTITIES:
            raise ParameterError(
                f"unknown Kolada entity {entity!r}; use one of {', '.join(_METADATA_ENTITIES)}"
            )
        q = dict(params)
        if title:
            q["title"] = title
        if ids is None:
            return [self.url(entity, q)]
        if not ids:
            raise ParameterError(f"the {entity} id list is empty; leave it out to list all")
        return [self.url(f"{entity}/{self._segment(c)}", q) for c in chunked(list(ids))]

    # ------------------------------------------------------------------ fetching
    def missing(self, urls: Iterable[str]) -> list[str]:
        """The URLs among ``urls`` that have no valid cache entry."""
        if self._cache is None:
            return list(urls)
        return [u for u in urls if not self._cache.has(u)]

    def get_many(
        self,
        urls: Sequence[str],
        *,
        progress: Callable[[str], None] | None = None,
        notify: Callable[[str], None] | None = None,
    ) -> list[dict[str, Any]]:
        """All values of all ``urls``, in order; all-or-nothing.

        In offline mode every missing request is named in one error before anything is read.
        ``progress`` is called with each URL once it is done; ``notify`` receives every retry and
        wait of this call (instead of the client's ``notify``). The whole call must end within
        the retry policy's ``deadline``.

        Raises
        ------
        KoladaError
            If a request fails for good or the deadline passes; the message says how many
            requests were complete (and cached, so that running the same fetch again resumes).
        """
        if self._offline:
            absent = self.missing(urls)
            if absent:
                raise KoladaError(
                    f"offline mode: {len(absent)} of {len(urls)} request(s) are not in the cache "
                    f"{self._cache.root if self._cache else ''}:\n"
                    + "\n".join(f"  - {u}" for u in absent)
                    + "\nRun the same command without --offline on a networked machine to fill the cache."
                )
        out: list[dict[str, Any]] = []
        done = 0
        with self._budget(), self._routing(notify):
            try:
                for u in urls:
                    out.extend(self.get(u))
                    done += 1
                    if progress is not None:
                        progress(u)
            except KoladaError as exc:
                if len(urls) > 1 or done:
                    raise KoladaError(f"{exc}\n{self._resume_note(done, len(urls))}") from exc
                raise
        return out

    def _resume_note(self, done: int, total: int) -> str:
        if self._cache is None:
            return (f"{done} of {total} request(s) had completed; without a cache a new run "
                    "fetches them again.")
        return (f"{done} of {total} request(s) had completed and are cached in {self._cache.root}; "
                "running the same command again resumes from there.")

    @contextlib.contextmanager
    def _budget(self) -> Iterator[None]:
        # the outermost call starts the clock of the deadline; nested calls share it
        if self._deadline_at is not None or self._retry.deadline is None:
            yield
            return
        self._deadline_at = time.monotonic() + float(self._retry.deadline)
        try:
            yield
        finally:
            self._deadline_at = None

    @contextlib.contextmanager
    def _routing(self, notify: Callable[[str], None] | None) -> Iterator[None]:
        if notify is None:
            yield
            return
        before, self._notify = self._notify, notify
        try:
            yield
        finally:
            self._notify = before

    def _event(self, message: str) -> None:
        if self._notify is not None:
            self._notify(message)

    def _left(self) -> float:
        """Seconds left before the deadline (infinite without one)."""
        if self._deadline_at is None:
            return float("inf")
        return self._deadline_at - time.monotonic()

    def _deadline_error(self, url: str, doing: str, last: str = "") -> KoladaError:
        why = f" (last failure: {last})" if last else ""
        return KoladaError(
            f"Kolada fetch stopped at its deadline of {self._retry.deadline:g} s (--deadline) "
            f"{doing} {url}{why}. Nothing from this request was kept. Try again later, or allow "
            "more time with --deadline (and --timeout per request)."
        )

    def get(self, url: str) -> list[dict[str, Any]]:
        """All values of one request (every page), from the cache when possible."""
        rec = RequestRecord(url=url)
        if self._cache is not None:
            entry = self._cache.get(url)
            if entry is not None:
                rec.source, rec.pages, rec.rows = (
                    "cache",
                    int(entry.get("pages", 0)),
                    len(entry["values"]),
                )
                rec.retrieved = str(entry.get("retrieved", ""))
                self._log.append(rec)
                return entry["values"]
            rec.cache_was_corrupted = url in self._cache.corrupted
        if self._offline:
            raise KoladaError(
                f"offline mode: request not in the cache: {url}. "
                "Run without --offline on a networked machine to fill the cache."
            )
        values: list[dict[str, Any]] = []
        seen = {url}
        next_url: str | None = url
        rec.retrieved = utc_now()
        with self._budget():
            while next_url is not None:
                page, attempts = self._fetch_page(next_url, request=url)
                rec.attempts += attempts
                rec.pages += 1
                values.extend(page["values"])
                link = page.get("next_url") or page.get("next_page")
                if not link:
                    break
                link = urllib.parse.urljoin(next_url, str(link))
                if link in seen:
                    raise KoladaError(
                        f"Kolada request {url} pages in a loop (page {rec.pages} links back to {link}); "
                        "no data were kept. Report this to the server's operator or retry later."
                    )
                if rec.pages >= MAX_PAGES:
                    raise KoladaError(
                        f"Kolada request {url} exceeded {MAX_PAGES} pages; no data were kept."
                    )
                seen.add(link)
                next_url = link
        rec.rows = len(values)
        if self._cache is not None:
            self._cache.put(url, values, pages=rec.pages, retrieved=rec.retrieved)
        self._log.append(rec)
        return values

    def _fetch_page(self, page_url: str, *, request: str) -> tuple[dict[str, Any], int]:
        """One page as parsed JSON, with retries; returns (page, attempts)."""
        policy = self._retry
        last = ""
        last_exc: _Retryable | None = None
        where = "" if page_url == request else f" (page {page_url})"
        for attempt in range(policy.retries + 1):
            if last_exc is not None:
                self._pause(attempt, last_exc, request + where)
            left = self._left()
            if left <= 0:
                raise self._deadline_error(request + where, "before requesting", last)
            try:
                page = self._open_json(page_url, timeout=min(policy.timeout, left))
                if _is_data_url(page_url):
                    problem = _record_problem(page["values"])
                    if problem:  # never cache (or tidy) a page that is not Kolada data
                        raise _Retryable(f"malformed data page: {problem}")
                return page, attempt + 1
            except _Retryable as exc:
                last_exc = exc
                last = exc.reason
        raise KoladaError(
            f"Kolada request failed after {policy.retries + 1} attempt(s): {request}{where}: {last}. "
            "Nothing from this request was kept; try again later, or use --base-url for a mirror."
        )

    def _pause(self, attempt: int, failure: _Retryable, url: str) -> None:
        """Wait before retry ``attempt``, or fail at once when the wait cannot be afforded."""
        policy = self._retry
        left = self._left()
        if failure.retry_after is not None:
            wait = failure.retry_after
            limit, which = (
                (left, f"the {left:.0f} s left of this fetch's deadline (--deadline {policy.deadline:g})")
                if self._deadline_at is not None
                else (policy.max_wait, f"the longest wait allowed ({policy.max_wait:g} s)")
            )
            if wait > limit:
                raise KoladaError(
                    f"Kolada answered {failure.reason} to {url} and asks to wait {wait:.0f} s before "
                    f"retrying (Retry-After: {failure.retry_after_raw}); that is beyond {which}. "
                    f"Nothing from this request was kept; try again after {_utc_after(wait)} "
                    "(UTC), or use --base-url for a mirror."
                )
            how = f"in {wait:.0f} s (Retry-After: {failure.retry_after_raw})"
        else:
            wait = policy.wait(attempt)
            if wait >= left:
                raise self._deadline_error(url, "while retrying", failure.reason)
            how = f"in {wait:g} s"
        # most important first: a narrow progress bar cuts the end off
        self._event(f"retry {attempt}/{policy.retries} {how} after {failure.reason} — {_short(url)}")
        if wait > 0:
            self._sleep(wait)

    def _open_json(self, url: str, *, timeout: float | None = None) -> dict[str, Any]:
        timeout = self._retry.timeout if timeout is None else timeout
        req = urllib.request.Request(
            url, headers={"Accept": "application/json", "User-Agent": self._user_agent}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - http(s) only
                body = self._read_body(resp, url)
        except urllib.error.HTTPError as exc:
            raw_after = (exc.headers.get("Retry-After") if exc.headers else None) or ""
            if exc.code == 429 or exc.code >= 500:
                raise _Retryable(
                    f"HTTP {exc.code} {exc.reason}", _parse_retry_after(raw_after), raw_after.strip()
                ) from exc
            if exc.code == 410:
                raise KoladaError(
                    f"Kolada answered HTTP 410 Gone to {url}: this API version "
                    f"({self._version}) has been retired. Use Kolada API v3: --base-url "
                    f"{DEFAULT_BASE_URL} (the default)."
                ) from exc
            detail = ""
            try:
                detail = exc.read().decode("utf-8", "replace")[:300]
            except OSError:
                pass
            raise KoladaError(
                f"Kolada answered HTTP {exc.code} {exc.reason} to {url}"
                + (f": {detail}" if detail else "")
                + ". Check the ids and the base URL."
            ) from exc
        except TimeoutError as exc:
            raise _Retryable(f"no answer within {timeout:g} s (--timeout)") from exc
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise _Retryable(f"no answer within {timeout:g} s (--timeout)") from exc
            raise _Retryable(f"{type(exc).__name__}: {reason}") from exc
        try:
            page = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Retryable(f"malformed or truncated JSON ({len(body)} bytes): {exc}") from exc
        if not isinstance(page, dict) or not isinstance(page.get("values"), list):
            raise _Retryable("response is JSON but has no 'values' list (not a Kolada response)")
        return page

    def _read_body(self, resp: Any, url: str) -> bytes:
        """The whole body, checking the deadline between blocks and the promised length."""
        blocks: list[bytes] = []
        while True:
            block = resp.read(1 << 16)
            if not block:
                break
            blocks.append(block)
            if self._left() <= 0:
                raise self._deadline_error(url, "while reading")
        body = b"".join(blocks)
        promised = resp.headers.get("Content-Length") if resp.headers else None
        if promised and promised.isdigit() and len(body) < int(promised):
            raise _Retryable(
                f"connection closed after {len(body)} of {promised} bytes (truncated response)"
            )
        return body

    # ------------------------------------------------------------------ endpoints
    def kpis(
        self, ids: Sequence[str] | None = None, *, title: str | None = None
    ) -> list[dict[str, Any]]:
        """``/kpi``: KPI metadata (all, by id, or by title search)."""
        return self.get_many(self.metadata_urls("kpi", ids, title=title))

    def kpi_groups(
        self, ids: Sequence[str] | None = None, *, title: str | None = None
    ) -> list[dict[str, Any]]:
        """``/kpi_groups``: KPI groups with their members."""
        return self.get_many(self.metadata_urls("kpi_groups", ids, title=title))

    def municipalities(
        self,
        ids: Sequence[str] | None = None,
        *,
        title: str | None = None,
        region_type: str | None = None,
    ) -> list[dict[str, Any]]:
        """``/municipality``: municipalities and regions (``region_type`` K or L, v3 only)."""
        extra = {"region_type": region_type} if region_type else {}
        return self.get_many(self.metadata_urls("municipality", ids, title=title, **extra))

    def municipality_groups(
        self, ids: Sequence[str] | None = None, *, title: str | None = None
    ) -> list[dict[str, Any]]:
        """``/municipality_groups``: municipality groups with their members."""
        return self.get_many(self.metadata_urls("municipality_groups", ids, title=title))

    def ous(
        self, ids: Sequence[str] | None = None, *, title: str | None = None, **params: Any
    ) -> list[dict[str, Any]]:
        """``/ou``: organisational units (e.g. ``municipality=0180``)."""
        return self.get_many(self.metadata_urls("ou", ids, title=title, **params))

    def data(
        self,
        kpi: Sequence[str] | None = None,
        municipality: Sequence[str] | None = None,
        year: Sequence[int] | None = None,
        *,
        from_date: str | None = None,
    ) -> list[dict[str, Any]]:
        """``/data/...``: raw nested value records for any two or three dimensions."""
        return self.get_many(self.data_urls(kpi, municipality, year, from_date=from_date))

    def oudata(
        self,
        kpi: Sequence[str] | None = None,
        ou: Sequence[str] | None = None,
        year: Sequence[int] | None = None,
        *,
        from_date: str | None = None,
    ) -> list[dict[str, Any]]:
        """``/oudata/...``: raw nested value records for organisational units."""
        return self.get_many(
            self.data_urls(kpi, None, year, ou=ou, organisational_units=True, from_date=from_date)
        )
