"""Atomic file output: a file is either its old self or completely new, never half written.

Everything ojpanel writes for later reading (Kolada cache entries, pipeline cache entries and
summaries, command-line outputs) goes through :func:`atomic_path` or :func:`atomic_write_text`:
the content is written to a temporary file beside the target, which replaces the target with
:func:`os.replace` only once it is complete. On any error, including an interrupt, the temporary
file is removed and the target is left as it was.

Temporary files are named ``.<name>.<random hex>.tmp``, so readers that look for ``<name>`` never
see one. They are created with :func:`open` (mode ``"x"``), not :func:`tempfile.mkstemp`, whose
files are private (mode 0600): the finished file gets the permissions the umask gives.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text", "temporary_name"]


def temporary_name(path: Path) -> Path:
    """A fresh temporary path beside ``path`` (``.<name>.<random hex>.tmp``)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    The block writes the temporary path (it does not exist yet); the parent directory is created
    if needed.

    Parameters
    ----------
    path
        The file to write.

    Yields
    ------
    pathlib.Path
        Where to write the new content.

    Raises
    ------
    FileNotFoundError
        If the block finished without writing the temporary path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (flushed to disk before the rename).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    target = Path(path)
    with atomic_path(target) as tmp, open(tmp, "x", encoding=encoding) as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return target
