"""The one synthetic marker: ``attrs["synthetic"] = 1`` on everything made up by a simulator.

Real data carry ``0`` or no marker. The description of a synthetic object starts with
``"SYNTHETIC"`` and names the process that made it; its ``source`` says that no real data are
behind it, so no figure or table made from it can be mistaken for Kolada data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SYNTHETIC", "SYNTHETIC_SOURCE", "mark_synthetic", "is_synthetic"]

#: The value of ``attrs["synthetic"]`` on synthetic objects.
SYNTHETIC = 1
#: The ``source`` attribute of synthetic objects.
SYNTHETIC_SOURCE = "synthetic (no real data)"


def mark_synthetic(description: str, attrs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``attrs`` with the synthetic marker, the description and the synthetic source.

    Parameters
    ----------
    description
        What made the data (process, parameters, seed); ``"SYNTHETIC "`` is prepended unless it
        already starts so.
    attrs
        Further attributes to keep.
    """
    text = description if description.startswith("SYNTHETIC") else f"SYNTHETIC {description}"
    return {**dict(attrs or {}), "synthetic": SYNTHETIC, "description": text,
            "source": SYNTHETIC_SOURCE}  # fmt: skip


def is_synthetic(obj: Any) -> bool:
    """Whether an object (or its ``attrs`` mapping) carries the synthetic marker."""
    # datasets are mappings of variables themselves: read their attrs first
    attrs = getattr(obj, "attrs", None)
    if attrs is None:
        attrs = obj if isinstance(obj, Mapping) else {}
    value = attrs.get("synthetic", 0)
    try:
        return int(value) == SYNTHETIC and not isinstance(value, str)
    except (TypeError, ValueError):
        return False
