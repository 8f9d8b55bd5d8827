"""The execution cache: reuse a notebook's executed copy and recorded results while nothing changed.

A notebook's cache key has these components, each compared on its own so that a stale entry can
say why it is stale:

``cells``
    the cells' sources (code and Markdown, since both end up in the executed copy and its HTML),
    outputs, execution counts and the ``parameters`` cell excluded;
``parameters``
    the effective parameters: the ``parameters`` cell's defaults overlaid with what is injected;
``inputs``
    SHA-256 of every file behind the declared reads, and of the upstream notebooks' recorded
    results (see :mod:`ojpanel.pipeline.declarations`);
``versions``
    Python, ojpanel and the scientific libraries (:func:`ojpanel.provenance.library_versions`);
``ojpanel_source``
    the library's source code, because a fix in a development checkout does not change the version
    number but can change results (the command line and the pipeline runner, which do not change
    what a notebook computes, are left out);
``environment``
    the ``OJPANEL_*`` environment variables, which the kernels inherit and the library reads
    (e.g. ``OJPANEL_FIGURE_CHECK=strict`` fails a notebook whose figure overflows), except those
    in :data:`COSMETIC_VARIABLES`;
``kernel``
    the Jupyter kernel's name.

Entries live in ``<pipeline out>/.cache/<stem>.json``. An entry is written only after the executed
copy, its HTML and the declared outputs are in place, through a temporary file renamed over the
old one, and it carries a digest of its own content. Before a notebook executes, its entry is
removed and a ``.running`` marker written, so a run that is interrupted at any point leaves no
entry (and the marker says what happened); an entry is also rejected when the executed copy or a
declared output no longer has the content recorded in it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ojpanel import provenance
from ojpanel.config import PACKAGE_DIR
from ojpanel.core.atomic import atomic_write_text
from ojpanel.errors import OJPanelError
from ojpanel.pipeline.declarations import Declaration, input_files, matches_write, resolve_notebook

__all__ = [
    "CACHE_DIRNAME",
    "COSMETIC_VARIABLES",
    "Freshness",
    "digest_file",
    "digest_json",
    "cells_digest",
    "source_digest",
    "environment",
    "input_digests",
    "key_components",
    "entry_path",
    "read_entry",
    "write_entry",
    "run_lock",
    "start_run",
    "finish_failed",
    "finish_ok",
    "written_files",
    "freshness",
]

FORMAT = 1
CACHE_DIRNAME = ".cache"
#: ``OJPANEL_*`` variables that change how ojpanel reports, never what a notebook computes.
COSMETIC_VARIABLES = frozenset({"OJPANEL_PROGRESS", "OJPANEL_PROGRESS_INTERVAL", "OJPANEL_KERNEL_PROGRESS",
                                "OJPANEL_DEBUG", "OJPANEL_HYPOTHESIS_EXAMPLES"})
MISSING = "missing"


def digest_file(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes, or ``"missing"``."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except FileNotFoundError:
        return MISSING
    return "sha256:" + h.hexdigest()


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr)


def digest_json(obj: Any) -> str:
    """``sha256:<hex>`` of a JSON-like value in canonical form (sorted keys)."""
    return "sha256:" + hashlib.sha256(_canonical(obj).encode("utf-8")).hexdigest()


def cells_digest(nb_path: Path | str) -> str:
    """Digest of a notebook's cell sources (not outputs, counts or the ``parameters`` cell)."""
    import nbformat  # here, not at the top: importing it takes seconds, and every kernel imports this package

    nb = nbformat.read(str(nb_path), as_version=4)
    cells = [(c.cell_type, c.source) for c in nb.cells
             if "parameters" not in c.get("metadata", {}).get("tags", [])]
    return digest_json(cells)


def source_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """Digest of the ojpanel library's Python sources that notebooks run.

    The command line and the pipeline's own machinery are left out (editing them changes no
    result), except ``pipeline/record.py``, which notebooks call to record their results.
    """
    def counts(rel: Path) -> bool:
        top = rel.parts[0]
        return top not in ("cli", "pipeline") or rel.as_posix() == "pipeline/record.py"

    files = sorted(p for p in package_dir.rglob("*.py") if counts(p.relative_to(package_dir)))
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(package_dir).as_posix().encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


def environment(kernel_name: str) -> dict[str, Any]:
    """The key components shared by every notebook of a run: versions, library source, kernel."""
    return {"versions": provenance.library_versions(), "ojpanel_source": source_digest(),
            "environment": {k: v for k, v in sorted(os.environ.items())
                            if k.startswith("OJPANEL_") and k not in COSMETIC_VARIABLES},
            "kernel": kernel_name}


def input_digests(declaration: Declaration, *, params: Mapping[str, Any], nb_dir: Path,
                  data_dir: Path | None, out_dir: Path, stems: Sequence[str],
                  upstream_records: Mapping[str, Mapping[str, Any] | None]) -> dict[str, dict[str, str]]:
    """Digests of every declared input, by the read's text, then by file name.

    ``upstream_records`` maps notebook stems to their recorded results (None: not available).
    """
    out: dict[str, dict[str, str]] = {}
    for r in declaration.reads:
        if r.kind == "records":
            up = resolve_notebook(r.target, stems)
            rec = upstream_records.get(up)
            out[r.text] = {"records": MISSING if rec is None else digest_json(rec)}
        else:
            files = input_files(r, params=params, nb_dir=nb_dir, data_dir=data_dir, out_dir=out_dir, stems=stems)
            out[r.text] = {name: digest_file(p) for name, p in files.items()}
    return out


def key_components(nb_path: Path, effective_params: Mapping[str, Any], inputs: Mapping[str, Any],
                   env: Mapping[str, Any]) -> dict[str, Any]:
    """Everything a notebook's results depend on, as compared by :func:`freshness`."""
    return {"cells": cells_digest(nb_path), "parameters": json.loads(_canonical(dict(effective_params))),
            "inputs": dict(inputs), **env}


# -- entries and markers ---------------------------------------------------------------------------

def entry_path(out: Path, stem: str, suffix: str = ".json") -> Path:
    """Where the cache entry (or a ``.running``/``.failed`` marker) of a notebook lives."""
    return Path(out) / CACHE_DIRNAME / f"{stem}{suffix}"


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold ``<out>/.cache/lock`` while a run writes to ``out``; a second run there is an error.

    A lock left by a process that no longer exists (killed) is taken over.

    Raises
    ------
    OJPanelError
        If another live process holds the lock.
    """
    path = entry_path(out, "lock", "")
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(path.read_text(encoding="utf-8").split()[0])
            except (OSError, ValueError, IndexError):
                pid = -1
            if pid > 0 and _alive(pid):
                raise OJPanelError(f"another pipeline run (process {pid}) is writing to {out}; wait for it to "
                                   "finish or choose another --out") from None
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # left by a run that was killed
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {provenance.utc_now()}\n")
        break
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def write_entry(out: Path, stem: str, entry: Mapping[str, Any]) -> Path:
    """Store a complete cache entry atomically, with a digest of its own content."""
    body = {"format": FORMAT, **entry}
    body["digest"] = digest_json(body)
    return atomic_write_text(entry_path(out, stem), json.dumps(body, indent=1, ensure_ascii=False))


def read_entry(out: Path, stem: str) -> dict[str, Any] | None:
    """The cache entry of a notebook, or None when absent, unreadable or damaged."""
    path = entry_path(out, stem)
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        return None
    claimed = body.pop("digest", None)
    return body if claimed == digest_json(body) else None


def start_run(out: Path, stem: str) -> None:
    """Before executing: drop the entry and leave a ``.running`` marker (pid, start time)."""
    with contextlib.suppress(FileNotFoundError):
        entry_path(out, stem).unlink()
    with contextlib.suppress(FileNotFoundError):
        entry_path(out, stem, ".failed").unlink()
    atomic_write_text(entry_path(out, stem, ".running"),
                      json.dumps({"pid": os.getpid(), "started": provenance.utc_now()}))


def finish_failed(out: Path, stem: str, message: str | None, *, interrupted: bool = False) -> None:
    """After a run that produced no entry: record why (None: nothing to record) and drop the marker."""
    if message is not None:
        atomic_write_text(entry_path(out, stem, ".failed"),
                          json.dumps({"error": message, "interrupted": interrupted,
                                      "finished": provenance.utc_now()}))
    with contextlib.suppress(FileNotFoundError):
        entry_path(out, stem, ".running").unlink()


def finish_ok(out: Path, stem: str, entry: Mapping[str, Any]) -> Path:
    """After a successful run: write the entry, then drop the marker."""
    path = write_entry(out, stem, entry)
    with contextlib.suppress(FileNotFoundError):
        entry_path(out, stem, ".running").unlink()
    return path


def written_files(nb_out: Path, writes: Sequence[str]) -> dict[str, str]:
    """Digests of the files a notebook wrote that its declared writes cover."""
    if not writes or not nb_out.is_dir():
        return {}
    files = sorted(p for p in nb_out.rglob("*") if p.is_file())
    return {rel: digest_file(p) for p in files
            if matches_write(rel := p.relative_to(nb_out).as_posix(), writes)}


# -- freshness -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Freshness:
    """Whether a notebook's cache entry can be used, and if not, every reason why."""

    notebook: str
    fresh: bool
    reasons: tuple[str, ...] = ()
    entry: dict[str, Any] | None = field(default=None, repr=False)

    def explain(self) -> str:
        """When a fresh entry's run finished and took, or why the notebook is stale."""
        if self.fresh and self.entry is not None:
            return f"ran {self.entry.get('finished', '?')} in {self.entry.get('seconds', 0):.1f} s"
        return "; ".join(self.reasons)


def _short(v: Any) -> str:
    text = json.dumps(v, ensure_ascii=False, default=repr)
    return text if len(text) <= 40 else text[:37] + "..."


def _changed_files(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    names = sorted({k for k in set(old) | set(new) if old.get(k) != new.get(k)})
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    reasons = []
    if old.get("cells") != new["cells"]:
        reasons.append("the notebook's cells changed")
    op, np_ = old.get("parameters", {}), new["parameters"]
    for k in sorted(set(op) | set(np_)):
        if k not in np_:
            reasons.append(f"parameter {k} was removed")
        elif k not in op:
            reasons.append(f"parameter {k} is new ({_short(np_[k])})")
        elif op[k] != np_[k]:
            reasons.append(f"parameter {k} changed: {_short(op[k])} -> {_short(np_[k])}")
    oi, ni = old.get("inputs", {}), new["inputs"]
    for k in sorted(set(oi) | set(ni)):
        if k not in ni:
            reasons.append(f"input {k} is no longer declared")
        elif k not in oi:
            reasons.append(f"input {k} is newly declared")
        elif oi[k] != ni[k]:
            if k.startswith("records:"):
                reasons.append(f"the recorded results it reads ({k}) changed")
            else:
                reasons.append(f"input {k} changed ({_changed_files(oi[k], ni[k])})")
    ov, nv = old.get("versions", {}), new["versions"]
    for k in sorted(set(ov) | set(nv)):
        if ov.get(k) != nv.get(k):
            reasons.append(f"{k} version changed: {ov.get(k, 'none')} -> {nv.get(k, 'none')}")
    oe, ne = old.get("environment", {}), new["environment"]
    for k in sorted(set(oe) | set(ne)):
        if oe.get(k) != ne.get(k):
            reasons.append(f"environment variable {k} changed: {_short(oe.get(k))} -> {_short(ne.get(k))}")
    if old.get("ojpanel_source") != new["ojpanel_source"]:
        reasons.append("the ojpanel library's source code changed")
    if old.get("kernel") != new["kernel"]:
        reasons.append(f"kernel changed: {old.get('kernel')} -> {new['kernel']}")
    return reasons


def _artefact_reasons(out: Path, entry: Mapping[str, Any]) -> list[str]:
    reasons = []
    executed = entry.get("executed", {})
    if digest_file(out / executed.get("path", "?")) != executed.get("sha256"):
        state = "is missing" if not (out / executed.get("path", "?")).is_file() else "was modified after the run"
        reasons.append(f"the executed copy {executed.get('path')} {state}")
    nb_out = out / entry.get("notebook", "?")
    for rel, dig in entry.get("outputs", {}).items():
        now = digest_file(nb_out / rel)
        if now != dig:
            reasons.append(f"output {rel} {'is missing' if now == MISSING else 'was modified after the run'}")
    return reasons


def _no_entry_reason(out: Path, stem: str) -> str:
    running, failed = entry_path(out, stem, ".running"), entry_path(out, stem, ".failed")
    if running.is_file():
        try:
            info = json.loads(running.read_text(encoding="utf-8"))
            pid, started = int(info["pid"]), info["started"]
        except (OSError, ValueError, KeyError, TypeError):
            return "the last run did not finish"
        if pid != os.getpid() and _alive(pid):
            return f"it is running now (process {pid}, started {started})"
        return f"the last run (started {started}) was interrupted before it finished"
    if failed.is_file():
        try:
            info = json.loads(failed.read_text(encoding="utf-8"))
            if info.get("interrupted"):
                return f"the last run was interrupted before it finished ({info['finished']})"
            return f"the last run failed: {info['error']}"
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return "the last run failed"
    if entry_path(out, stem).is_file():
        return "its cache entry is damaged"
    return "it has not run into this output directory"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def freshness(out: Path, stem: str, components: Mapping[str, Any], *, declared: bool = True,
              upstream_stale: Sequence[str] = ()) -> Freshness:
    """Compare a notebook's current key components with its cache entry.

    Parameters
    ----------
    out
        The pipeline's output directory.
    components
        From :func:`key_components` for the run about to happen.
    declared
        False for a notebook without a reads/writes declaration: it is never fresh.
    upstream_stale
        Notebooks it reads that are themselves stale (their results are not known yet).
    """
    entry = read_entry(out, stem)
    reasons = [f"it reads {u}, which is stale" for u in upstream_stale]
    if not declared:
        reasons.append("it declares no reads/writes (metadata['ojpanel']), so its inputs cannot be "
                       "checked and it always runs")
    if entry is None:
        reasons.append(_no_entry_reason(out, stem))
        return Freshness(stem, False, tuple(reasons))
    reasons += _compare(entry.get("key", {}), components)
    reasons += _artefact_reasons(out, entry)
    return Freshness(stem, not reasons, tuple(reasons), entry)
