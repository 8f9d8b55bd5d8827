"""Significance marks in the style of RiR 2021:17's appendix tables.

Regression cells: ``++``/``+`` positive and significant at 5 %/10 %, ``--``/``-`` negative and
significant at 5 %/10 %, empty otherwise. ANOVA cells: ``**`` at 5 %, ``*`` at 10 %.
A p-value exactly at a threshold counts as significant (``p <= 0.05``).
"""

from __future__ import annotations

import math

__all__ = ["LEVELS", "regression_stars", "anova_stars", "is_significant"]

#: Significance levels used by the audit (strong, weak).
LEVELS = (0.05, 0.10)


def _finite(x: float | None) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(float(x))


def is_significant(p_value: float | None, level: float = 0.10) -> bool:
    """Whether ``p_value`` is finite and at most ``level``."""
    return _finite(p_value) and float(p_value) <= level


def regression_stars(estimate: float | None, p_value: float | None) -> str:
    """Audit mark for a regression coefficient: ``++``, ``+``, ``-``, ``--`` or ``""``.

    Parameters
    ----------
    estimate
        Coefficient (its sign sets ``+`` or ``-``).
    p_value
        Two-sided p-value; missing or non-finite values give ``""``.
    """
    if not (_finite(estimate) and _finite(p_value)) or float(estimate) == 0.0:
        return ""
    sign = "+" if float(estimate) > 0 else "-"
    if float(p_value) <= LEVELS[0]:
        return sign * 2
    if float(p_value) <= LEVELS[1]:
        return sign
    return ""


def anova_stars(p_value: float | None) -> str:
    """Audit mark for an ANOVA F test: ``**`` (5 %), ``*`` (10 %) or ``""``."""
    if not _finite(p_value):
        return ""
    if float(p_value) <= LEVELS[0]:
        return "**"
    if float(p_value) <= LEVELS[1]:
        return "*"
    return ""
