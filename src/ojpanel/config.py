"""Paths and project-wide constants, in one place.

The embedded data directory is found in this order: the ``OJPANEL_DATA_DIR`` environment variable,
``data/`` at the top of a source checkout, and the copy packed into an installed wheel.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "PACKAGE_DIR",
    "REPO_ROOT",
    "data_dir",
    "cache_dir",
    "smoke_default",
    "KOLADA_CITATION",
    "PROCESSED_SOURCE_NOTE",
]

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parents[1]

#: How raw Kolada values must be cited (Kolada's terms of use).
KOLADA_CITATION = "Källa: Kolada"
#: Processed figures must not name Kolada as their source.
PROCESSED_SOURCE_NOTE = "Egen bearbetning av Öppna jämförelser (ojpanel)"


def data_dir() -> Path:
    """Return the directory holding the embedded data.

    Returns
    -------
    pathlib.Path
        Directory with ``municipalities.csv``, ``kpi_catalogue.csv`` and the values file.

    Raises
    ------
    FileNotFoundError
        If no data directory can be found; the message says how to point to one.
    """
    env = os.environ.get("OJPANEL_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT / "data", PACKAGE_DIR / "_data"]
    for c in candidates:
        if (c / "PROVENANCE.md").is_file():
            return c
    raise FileNotFoundError(
        "ojpanel cannot find its embedded data (looked in: "
        + ", ".join(str(c) for c in candidates)
        + "). Set OJPANEL_DATA_DIR to the repository's data/ directory."
    )


def cache_dir() -> Path:
    """Directory for the Kolada HTTP cache (``OJPANEL_CACHE_DIR`` or ``~/.cache/ojpanel``)."""
    env = os.environ.get("OJPANEL_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "ojpanel"


def smoke_default() -> bool:
    """Whether slow statistical checks run at smoke size.

    ``make test`` is the same fast suite on every machine, in CI or not; only ``OJPANEL_FULL=1``
    (set by ``make test-full``) asks for full size.
    """
    return os.environ.get("OJPANEL_FULL", "").strip().lower() not in {"1", "true", "yes"}
