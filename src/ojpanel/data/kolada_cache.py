"""On-disk cache of complete Kolada responses, keyed by request.

One entry holds every page of one logical request (the first URL, paging included), so a cached
answer is never a partial result. Entries are written atomically (temporary file + ``os.replace``)
and carry a SHA-256 of their values; an entry that cannot be parsed or fails its checksum is
reported as corrupted and treated as absent, so the client fetches it again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ojpanel.core.atomic import atomic_write_text

__all__ = ["KoladaCache", "request_key"]

_FORMAT = 1


def request_key(url: str) -> str:
    """Cache key of a request: SHA-256 of its full URL (base URL, path and sorted query)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _values_digest(values: list[Any]) -> str:
    blob = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class KoladaCache:
    """Directory of cached Kolada responses.

    Parameters
    ----------
    root
        Cache directory; created on first write.

    Notes
    -----
    ``corrupted`` lists the URLs whose entries were found damaged during this object's lifetime;
    the client records them in the snapshot provenance.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self._root = Path(root)
        self._corrupted: list[str] = []

    @property
    def root(self) -> Path:
        """The cache directory."""
        return self._root

    @property
    def corrupted(self) -> tuple[str, ...]:
        """URLs whose cache entries were damaged and ignored."""
        return tuple(self._corrupted)

    def path_for(self, url: str) -> Path:
        """File that holds (or would hold) the entry for ``url``."""
        key = request_key(url)
        return self._root / key[:2] / f"{key}.json"

    def has(self, url: str) -> bool:
        """Whether a valid entry exists for ``url`` (a damaged entry counts as absent)."""
        return self.get(url, record=False) is not None

    def get(self, url: str, *, record: bool = True) -> dict[str, Any] | None:
        """Return the entry for ``url`` or None when absent or damaged.

        The entry is a dict with ``url``, ``retrieved``, ``pages`` and ``values``.
        """
        path = self.path_for(url)
        if not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            ok = (
                isinstance(entry, dict)
                and entry.get("format") == _FORMAT
                and entry.get("url") == url
                and isinstance(entry.get("values"), list)
                and entry.get("sha256") == _values_digest(entry["values"])
            )
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            ok = False
        if not ok:
            if record and url not in self._corrupted:
                self._corrupted.append(url)
            return None
        return entry

    def put(self, url: str, values: list[Any], *, pages: int, retrieved: str) -> Path:
        """Store the complete ``values`` of ``url`` atomically and return the entry's path."""
        path = self.path_for(url)
        entry = {
            "format": _FORMAT,
            "url": url,
            "retrieved": retrieved,
            "pages": pages,
            "sha256": _values_digest(values),
            "values": values,
        }
        return atomic_write_text(path, json.dumps(entry, ensure_ascii=False))
