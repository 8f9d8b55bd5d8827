"""Exceptions and warnings raised by ojpanel.

Every error says what is wrong and what to do about it; messages are part of the tested API.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "OJPanelError",
    "OJPanelWarning",
    "CovarianceWarning",
    "DataError",
    "PanelValidationError",
    "PanelIntegrityError",
    "KoladaError",
    "ParameterError",
    "ModelError",
    "DiagnosticsError",
]


class OJPanelError(Exception):
    """Base class of all ojpanel errors."""


class OJPanelWarning(UserWarning):
    """Base class of ojpanel warnings (turned into errors in the test suite)."""


class DataError(OJPanelError, ValueError):
    """Input data are malformed (missing columns, bad codes, wrong coding)."""


class PanelValidationError(DataError):
    """A panel violates the contract; ``violations`` lists every problem found.

    Parameters
    ----------
    violations
        One human-readable line per violation.
    """

    def __init__(self, violations: Iterable[str]):
        self.violations = list(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(
            f"The panel violates the OJ panel contract ({len(self.violations)} problem(s)):\n{lines}"
        )


class PanelIntegrityError(PanelValidationError):
    """A stored panel failed verification: its content hash, its arrays or the panel contract.

    Parameters
    ----------
    path
        The panel file.
    problems
        One line per problem (also in ``violations``).
    """

    def __init__(self, path: object, problems: Iterable[str]):
        self.path = path
        self.violations = list(problems)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        DataError.__init__(
            self,
            f"{path} failed verification ({len(self.violations)} problem(s)):\n{lines}\n"
            "Rebuild or re-save the panel with ojpanel; to use it anyway, load it with "
            "verify=False (command line: --no-verify).",
        )


class KoladaError(OJPanelError, RuntimeError):
    """A Kolada request failed for good (after retries) or returned unusable content."""


class ParameterError(OJPanelError, ValueError):
    """A function, CLI or notebook parameter has a wrong name, type or value."""


class ModelError(OJPanelError, RuntimeError):
    """A model cannot be estimated as specified (e.g. collinear regressors)."""


class DiagnosticsError(OJPanelError, RuntimeError):
    """A Bayesian fit failed its convergence gates (R-hat, ESS, divergences)."""


class CovarianceWarning(OJPanelWarning):
    """A covariance estimate is not usable as it stands (e.g. a two-way clustered variance that is
    not positive semi-definite, so some standard errors are NaN)."""
