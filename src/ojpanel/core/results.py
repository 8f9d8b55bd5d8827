"""The result base: what every ojpanel result object offers, the same way.

A result is read in three ways — a tidy frame (:meth:`Result.to_frame`, alias :meth:`Result.tidy`),
a plain-text :attr:`Result.summary` (also ``str(result)``) and HTML in notebooks (``_repr_html_``:
the title, the result's key numbers in sentences from :meth:`Result.headline`, then the tidy rows
as a table) — and, where it holds estimates with standard errors, :meth:`Result.conf_int`.
``summary`` is a property everywhere. Subclasses implement :meth:`to_frame`, give the numbers a
reader looks for first (an MDE, a test's size) through :meth:`Result.headline` rather than writing
HTML of their own, and may refine the rest (modelled on linearmodels' results).
"""

from __future__ import annotations

import abc
import html
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from ojpanel.errors import ParameterError

__all__ = ["Result", "critical_value"]


def critical_value(level: float, df: float | np.ndarray = np.inf) -> np.ndarray | float:
    """Two-sided critical value at ``level``: Student's t with ``df`` (infinite = normal)."""
    if not 0 < level < 1:
        raise ParameterError(f"confidence level must be in (0, 1); got {level}")
    q = stats.t.ppf(0.5 + level / 2, np.asarray(df, dtype=float))  # scipy: df=inf is the normal
    return float(q) if np.ndim(q) == 0 else q


class Result(abc.ABC):
    """Base class of result objects (see the module docstring); subclasses define :meth:`to_frame`."""

    #: Title shown above the summary and the HTML table.
    title: ClassVar[str] = "Result"

    @abc.abstractmethod
    def to_frame(self) -> pd.DataFrame:
        """Tidy rows of the result."""

    def tidy(self) -> pd.DataFrame:
        """The tidy rows (same as :meth:`to_frame`)."""
        return self.to_frame()

    @property
    def summary(self) -> str:
        """Plain-text summary."""
        return f"{self.title}\n{self.to_frame().to_string(index=False)}"

    def __str__(self) -> str:
        return self.summary

    def headline(self) -> list[str]:
        """Sentences with the key numbers that the rows do not show (default: none).

        Shown between the title and the table in notebooks.
        """
        return []

    def _repr_html_(self) -> str:
        lines = "".join(f"<p>{html.escape(line)}</p>" for line in self.headline())
        return f"<h4>{html.escape(self.title)}</h4>{lines}" + self.to_frame().to_html(index=False)

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Intervals ``estimate ± q·std_error`` for the tidy rows that have both.

        ``q`` is Student's t with the rows' ``df`` where the frame has that column, else normal.
        Rows are labelled by ``term`` (and ``indicator`` when several indicators share a term).
        """
        frame = self.to_frame()
        if not {"estimate", "std_error"} <= set(frame.columns):
            raise ParameterError(f"{type(self).__name__} holds no estimates with standard errors")
        df = frame["df"].to_numpy(float) if "df" in frame else np.inf
        q = critical_value(level, df)
        est = frame["estimate"].to_numpy(float)
        se = frame["std_error"].to_numpy(float)
        keys = [c for c in ("indicator", "term") if c in frame and frame[c].notna().any()]
        index = pd.MultiIndex.from_frame(frame[keys]) if len(keys) > 1 else (
            pd.Index(frame[keys[0]]) if keys else None)  # fmt: skip
        return pd.DataFrame({"lower": est - q * se, "upper": est + q * se}, index=index)
