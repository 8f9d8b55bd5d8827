"""Results of fixed-effects regressions: one fit, a batch of fits, and comparison tables.

Modelled on linearmodels' results: read-only properties (``params``, ``std_errors``, ``tstats``,
``pvalues``, ``cov``), ``conf_int()``, ``summary``, ``to_frame()`` (tidy rows in the replication
schema) and ``_repr_html_`` for notebooks. :func:`compare` puts several fits side by side and renders
Markdown, LaTeX or HTML.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ojpanel.core.results import Result, critical_value
from ojpanel.core.stars import regression_stars
from ojpanel.core.tidy import tidy_frame
from ojpanel.errors import ModelError, ParameterError
from ojpanel.models.covariance import COVARIANCE, covariance
from ojpanel.models.within import BatchOLS, FitData, indicator_matrix

__all__ = ["FEResults", "BatchFEResults", "Comparison", "compare", "two_sided_pvalue"]

def _stars(estimate: float, p: float) -> str:
    return regression_stars(estimate, p)


def _se(variances: np.ndarray) -> np.ndarray:
    """Square roots of variances; a negative variance (a two-way estimate that is not positive
    semi-definite, already warned about) is NaN."""
    v = np.asarray(variances, dtype=float)
    return np.sqrt(np.where(v >= 0, v, np.nan))


def two_sided_pvalue(t: np.ndarray, df: np.ndarray | float) -> np.ndarray:
    """Two-sided p-values of t statistics: Student's t with ``df`` degrees of freedom, the
    standard normal where ``df`` is infinite (the fits' reference distributions)."""
    df = np.broadcast_to(np.asarray(df, dtype=float), np.shape(t))
    out = np.where(
        np.isfinite(df),
        2 * stats.t.sf(np.abs(t), np.where(np.isfinite(df), df, 1.0)),
        2 * stats.norm.sf(np.abs(t)),
    )
    return out


def _with_clusters(data: FitData, cov: str, cluster: Any) -> FitData:
    """``data`` with the cluster variables a recomputed covariance needs."""
    if cov not in COVARIANCE:
        raise ParameterError(f"cov must be one of {tuple(COVARIANCE)}; got {cov!r}")
    need = COVARIANCE[cov].clusters
    if cluster is None:
        if need and len(data.clusters) != need:
            raise ParameterError(
                f"cov={cov!r} needs {need} cluster variable(s) and the fit has "
                f"{len(data.clusters)}; pass cluster=..."
            )
        return data
    specs = list(cluster) if need == 2 else [cluster]
    if need and len(specs) != need:
        raise ParameterError(f"cov={cov!r} needs {need} cluster variable(s); got {len(specs)}")
    if data.columns is None and any(isinstance(c, str | tuple) for c in specs):
        raise ParameterError("name clusters by code arrays: this fit keeps no column lookup")
    codes = [c if isinstance(c, np.ndarray) else data.columns(c) for c in specs]
    return data.with_clusters(codes)


class FEResults(Result):
    """One fixed-effects regression.

    Parameters are set by the estimators in :mod:`ojpanel.models.fe`; use the properties.
    """

    title = "Fixed-effects regression"

    def __init__(
        self,
        *,
        params: np.ndarray,
        cov: np.ndarray,
        names: Sequence[str],
        df_resid: float,
        nobs: int,
        n_entities: int,
        n_clusters: float | None,
        cov_type: str,
        convention: str,
        effects: Sequence[str],
        dependent: str = "y",
        label: str | None = None,
        engine: str = "ojpanel",
        resid: np.ndarray | None = None,
        source: tuple[FitData, BatchOLS] | None = None,
    ) -> None:
        self._params = pd.Series(np.asarray(params, float), index=list(names), name="parameter")
        self._cov = pd.DataFrame(np.asarray(cov, float), index=list(names), columns=list(names))
        self._df = float(df_resid)
        self._nobs = int(nobs)
        self._n_entities = int(n_entities)
        self._n_clusters = None if n_clusters is None else int(n_clusters)
        self._cov_type = cov_type
        self._convention = convention
        self._effects = tuple(effects)
        self._dependent = dependent
        self._label = label
        self._engine = engine
        self._resid = resid
        self._source = source

    # --- read-only properties -------------------------------------------------------------
    @property
    def params(self) -> pd.Series:
        """Estimated coefficients."""
        return self._params.copy()

    @property
    def cov(self) -> pd.DataFrame:
        """Covariance of the coefficients (under :attr:`cov_type` and :attr:`convention`)."""
        return self._cov.copy()

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors."""
        return pd.Series(
            _se(np.diag(self._cov.values)), index=self._params.index, name="std_error"
        )

    @property
    def tstats(self) -> pd.Series:
        """t statistics (coefficient / standard error)."""
        return (self._params / self.std_errors).rename("tstat")

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values (t with :attr:`df_resid` df, normal when that is infinite)."""
        return pd.Series(
            two_sided_pvalue(self.tstats.values, self._df), index=self._params.index, name="pvalue"
        )

    @property
    def df_resid(self) -> float:
        """Degrees of freedom of the reference t distribution (``inf`` = normal)."""
        return self._df

    @property
    def nobs(self) -> int:
        """Observations used."""
        return self._nobs

    @property
    def n_entities(self) -> int:
        """Entities (municipalities) in the sample."""
        return self._n_entities

    @property
    def n_clusters(self) -> int | None:
        """Clusters (the smaller dimension for two-way clustering)."""
        return self._n_clusters

    @property
    def cov_type(self) -> str:
        """Standard-error type."""
        return self._cov_type

    @property
    def convention(self) -> str:
        """Small-sample convention (see :mod:`ojpanel.models.covariance`)."""
        return self._convention

    @property
    def effects(self) -> tuple[str, ...]:
        """Fixed effects absorbed."""
        return self._effects

    @property
    def dependent(self) -> str:
        """Name of the outcome."""
        return self._dependent

    @property
    def label(self) -> str | None:
        """Label of the fit (e.g. the indicator)."""
        return self._label

    @property
    def engine(self) -> str:
        """Which code estimated the model (``ojpanel`` core or ``linearmodels``)."""
        return self._engine

    @property
    def resids(self) -> np.ndarray | None:
        """Residuals of the within (demeaned) regression, when kept."""
        return None if self._resid is None else self._resid.copy()

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Confidence intervals with the same reference distribution as :attr:`pvalues`."""
        c = critical_value(level, self._df)
        se = self.std_errors
        return pd.DataFrame({"lower": self._params - c * se, "upper": self._params + c * se})

    def vcov(
        self,
        cov: str = "clustered",
        *,
        cluster: Any = None,
        convention: str | None = None,
    ) -> FEResults:
        """The same fit with another covariance (recomputed, nothing refitted).

        Parameters
        ----------
        cov
            Estimator (:data:`ojpanel.models.covariance.COVARIANCE`).
        cluster
            Cluster column name(s) of the fitted data (a tuple of two for ``"twoway"``), or code
            arrays; default the clusters of the fit.
        convention
            Small-sample convention; default the fit's.
        """
        if self._source is None:
            raise ModelError(
                "this result keeps no fitted data (engine='linearmodels'); refit with "
                "engine='vectorised' to recompute its covariance"
            )
        data, fit = self._source
        return BatchFEResults.from_fit(
            _with_clusters(data, cov, cluster), fit, cov=cov,
            convention=convention or self._convention, dependent=self._dependent,
        )[data.labels[0]]  # fmt: skip

    def to_frame(self, **meta: Any) -> pd.DataFrame:
        """Tidy rows (one per term) in the replication schema; ``meta`` fills other columns."""
        rows = []
        p = self.pvalues
        for term in self._params.index:
            rows.append(
                {
                    "indicator": self._label,
                    "outcome": self._dependent,
                    "term": term,
                    "estimate": float(self._params[term]),
                    "std_error": float(self.std_errors[term]),
                    "statistic": float(self.tstats[term]),
                    "p_value": float(p[term]),
                    "n_obs": self._nobs,
                    "n_municipalities": self._n_entities,
                    "stars": _stars(float(self._params[term]), float(p[term])),
                }
            )
        return tidy_frame(rows, **meta)

    def _table(self) -> pd.DataFrame:
        ci = self.conf_int()
        return pd.DataFrame(
            {
                "Parameter": self._params,
                "Std. Err.": self.std_errors,
                "T-stat": self.tstats,
                "P-value": self.pvalues,
                "Lower CI": ci["lower"],
                "Upper CI": ci["upper"],
            }
        )

    def _header(self) -> list[tuple[str, str]]:
        return [
            ("Dep. variable", self._dependent + (f" [{self._label}]" if self._label else "")),
            ("Observations", str(self._nobs)),
            ("Entities", str(self._n_entities)),
            ("Effects", ", ".join(self._effects) or "none"),
            ("Cov. type", self._cov_type),
            ("Convention", self._convention),
            ("Clusters", "" if self._n_clusters is None else str(self._n_clusters)),
            ("Ref. df", f"{self._df:g}"),
        ]

    @property
    def summary(self) -> str:
        """Plain-text summary (header and coefficient table)."""
        head = "\n".join(f"{k:<14}{v}" for k, v in self._header())
        return f"Fixed-effects regression\n{head}\n\n{self._table().to_string(float_format=lambda x: f'{x:.4f}')}"

    def __repr__(self) -> str:
        return f"<FEResults {self._dependent} ~ {', '.join(self._params.index)}; n={self._nobs}>"

    def _repr_html_(self) -> str:
        head = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in self._header()
        )
        return (
            f"<table><caption>Fixed-effects regression</caption>{head}</table>"
            + self._table().to_html(float_format=lambda x: f"{x:.4f}")
        )


class BatchFEResults(Result):
    """Many fits with the same specification (e.g. one per indicator), stored stacked.

    Index with a label to get one :class:`FEResults`; ``params``, ``std_errors``, ``pvalues`` are
    frames with one row per label.
    """

    title = "Fixed-effects regressions"

    def __init__(
        self,
        *,
        labels: Sequence[str],
        names: Sequence[str],
        params: np.ndarray,
        cov: np.ndarray,
        df_resid: np.ndarray,
        nobs: np.ndarray,
        n_entities: np.ndarray,
        n_clusters: np.ndarray | None,
        cov_type: str,
        convention: str,
        effects: Sequence[str],
        dependent: str = "y",
        source: tuple[FitData, BatchOLS] | None = None,
    ) -> None:
        self._labels = [str(x) for x in labels]
        if len(set(self._labels)) != len(self._labels):
            raise ParameterError("batch labels must be unique")
        self._names = list(names)
        self._params = np.asarray(params, float)
        self._cov = np.asarray(cov, float)
        self._df = np.asarray(df_resid, float)
        self._nobs = np.asarray(nobs, int)
        self._n_entities = np.asarray(n_entities, int)
        self._n_clusters = None if n_clusters is None else np.asarray(n_clusters, float)
        self._cov_type = cov_type
        self._convention = convention
        self._effects = tuple(effects)
        self._dependent = dependent
        self._source = source

    @classmethod
    def from_fit(
        cls,
        data: FitData,
        fit: BatchOLS,
        *,
        cov: str = "clustered",
        convention: str = "linearmodels",
        dependent: str = "y",
    ) -> BatchFEResults:
        """Results of least-squares fits with the covariance ``cov`` under ``convention``."""
        cv = covariance(data, fit, cov, convention)
        ent = (np.asarray(indicator_matrix(data.entity).T @ data.mask.T.astype(float)) > 0).sum(0)
        return cls(
            labels=data.labels,
            names=data.names,
            params=fit.beta,
            cov=cv.cov,
            df_resid=cv.df,
            nobs=data.mask.sum(1),
            n_entities=ent,
            n_clusters=cv.n_clusters,
            cov_type=cov,
            convention=convention,
            effects=data.effects,
            dependent=dependent,
            source=(data, fit),
        )

    def vcov(
        self,
        cov: str = "clustered",
        *,
        cluster: Any = None,
        convention: str | None = None,
    ) -> BatchFEResults:
        """The same fits with another covariance (see :meth:`FEResults.vcov`)."""
        if self._source is None:
            raise ModelError(
                "these results keep no fitted data (engine='linearmodels'); refit with "
                "engine='vectorised' to recompute their covariance"
            )
        data, fit = self._source
        return BatchFEResults.from_fit(
            _with_clusters(data, cov, cluster), fit, cov=cov,
            convention=convention or self._convention, dependent=self._dependent,
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self._labels)

    def __iter__(self):
        return (self[lab] for lab in self._labels)

    @property
    def labels(self) -> list[str]:
        """Labels of the fits."""
        return list(self._labels)

    def __getitem__(self, label: str) -> FEResults:
        try:
            b = self._labels.index(str(label))
        except ValueError:
            raise KeyError(f"no fit labelled {label!r}; labels: {self._labels[:10]}…") from None
        source = None
        if self._source is not None:
            data, fit = self._source
            one = BatchOLS(fit.beta[b : b + 1], fit.resid[b : b + 1], fit.xtx_inv[b : b + 1], fit.nobs[b : b + 1])
            source = (data.member(b), one)
        return FEResults(
            source=source,
            params=self._params[b],
            cov=self._cov[b],
            names=self._names,
            df_resid=self._df[b],
            nobs=self._nobs[b],
            n_entities=self._n_entities[b],
            n_clusters=None if self._n_clusters is None else self._n_clusters[b],
            cov_type=self._cov_type,
            convention=self._convention,
            effects=self._effects,
            dependent=self._dependent,
            label=self._labels[b],
        )

    def _frame(self, arr: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(arr, index=pd.Index(self._labels, name="label"), columns=self._names)

    @property
    def params(self) -> pd.DataFrame:
        """Coefficients, one row per fit."""
        return self._frame(self._params)

    @property
    def std_errors(self) -> pd.DataFrame:
        """Standard errors, one row per fit."""
        return self._frame(_se(np.einsum("bkk->bk", self._cov)))

    @property
    def tstats(self) -> pd.DataFrame:
        """t statistics, one row per fit."""
        return self.params / self.std_errors

    @property
    def pvalues(self) -> pd.DataFrame:
        """Two-sided p-values, one row per fit."""
        t = self.tstats.values
        return self._frame(two_sided_pvalue(t, self._df[:, None]))

    @property
    def df_resid(self) -> pd.Series:
        """Reference df per fit."""
        return pd.Series(self._df, index=self._labels)

    @property
    def nobs(self) -> pd.Series:
        """Observations per fit."""
        return pd.Series(self._nobs, index=self._labels)

    @property
    def cov_type(self) -> str:
        """Standard-error type."""
        return self._cov_type

    @property
    def convention(self) -> str:
        """Small-sample convention."""
        return self._convention

    def to_frame(self, **meta: Any) -> pd.DataFrame:
        """Tidy rows (fit × term) in the replication schema; ``meta`` fills other columns."""
        est, se, t, p = self.params, self.std_errors, self.tstats, self.pvalues
        rows = []
        for b, lab in enumerate(self._labels):
            for term in self._names:
                e, pv = float(est.loc[lab, term]), float(p.loc[lab, term])
                rows.append(
                    {
                        "indicator": lab,
                        "outcome": self._dependent,
                        "term": term,
                        "estimate": e,
                        "std_error": float(se.loc[lab, term]),
                        "statistic": float(t.loc[lab, term]),
                        "p_value": pv,
                        "n_obs": int(self._nobs[b]),
                        "n_municipalities": int(self._n_entities[b]),
                        "stars": _stars(e, pv),
                    }
                )
        return tidy_frame(rows, **meta)

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Intervals for every fit and term (t with each fit's reference df), indexed by
        ``(label, term)``."""
        q = critical_value(level, self._df)[:, None] * np.ones((1, len(self._names)))
        se = self.std_errors.values
        idx = pd.MultiIndex.from_product([self._labels, self._names], names=["label", "term"])
        return pd.DataFrame(
            {
                "lower": (self._params - q * se).ravel(),
                "upper": (self._params + q * se).ravel(),
            },
            index=idx,
        )

    @property
    def summary(self) -> str:
        """Plain-text table of all fits."""
        return self.to_frame()[
            ["indicator", "term", "estimate", "std_error", "p_value", "n_obs", "stars"]
        ].to_string(index=False)

    def _repr_html_(self) -> str:
        return self.to_frame()[
            ["indicator", "term", "estimate", "std_error", "p_value", "n_obs", "stars"]
        ].to_html(index=False)

    def __repr__(self) -> str:
        return f"<BatchFEResults {len(self)} fits of {self._dependent} ~ {', '.join(self._names)}>"


class Comparison(Result):
    """Side-by-side table of fits: coefficient with stars over the standard error in parentheses."""

    title = "Comparison of fits"

    def __init__(
        self, results: Sequence[FEResults], labels: Sequence[str] | None = None, digits: int = 3
    ):
        if not results:
            raise ParameterError("compare() needs at least one result")
        self._results = list(results)
        self._labels = (
            list(labels)
            if labels is not None
            else [r.label or f"({i + 1})" for i, r in enumerate(results)]
        )
        if len(self._labels) != len(self._results):
            raise ParameterError("compare(): one label per result")
        self._digits = digits

    @property
    def table(self) -> pd.DataFrame:
        """The cells as strings (rows: term / std. error pairs plus footer rows)."""
        terms: list[str] = []
        for r in self._results:
            terms += [t for t in r.params.index if t not in terms]
        d = self._digits
        rows: dict[str, list[str]] = {}
        for t in terms:
            est, se = [], []
            for r in self._results:
                if t in r.params.index:
                    e = float(r.params[t])
                    est.append(f"{e:.{d}f}{_stars(e, float(r.pvalues[t]))}")
                    se.append(f"({float(r.std_errors[t]):.{d}f})")
                else:
                    est.append("")
                    se.append("")
            rows[t] = est
            rows[f"{t} "] = se
        rows["Observations"] = [str(r.nobs) for r in self._results]
        rows["Effects"] = [", ".join(r.effects) or "none" for r in self._results]
        rows["Std. errors"] = [f"{r.cov_type} ({r.convention})" for r in self._results]
        return pd.DataFrame(rows, index=self._labels).T

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown table."""
        tab = self.table
        head = "| | " + " | ".join(tab.columns) + " |"
        sep = "|---|" + "---|" * len(tab.columns)
        body = [
            "| " + i.strip() + " | " + " | ".join(row) + " |"
            for i, row in zip(tab.index, tab.values.tolist(), strict=True)
        ]
        return (
            "\n".join([head, sep, *body])
            + "\n\n++/+ (--/-): positive (negative), significant at 5 %/10 %."
        )

    def to_latex(self) -> str:
        """LaTeX ``tabular`` (booktabs rules)."""
        tab = self.table

        def esc(s: str) -> str:
            return s.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")

        cols = "l" + "c" * len(tab.columns)
        lines = [
            rf"\begin{{tabular}}{{{cols}}}",
            r"\toprule",
            " & " + " & ".join(esc(c) for c in tab.columns) + r" \\",
            r"\midrule",
        ]
        for i, row in zip(tab.index, tab.values.tolist(), strict=True):
            lines.append(esc(i.strip()) + " & " + " & ".join(esc(x) for x in row) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines)

    def to_html(self) -> str:
        """HTML table."""
        return self.table.to_html(escape=True)

    def to_frame(self) -> pd.DataFrame:
        """The cells (same as :attr:`table`)."""
        return self.table

    @property
    def summary(self) -> str:
        """The table as plain text."""
        return self.table.to_string()

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Not defined for a table of several fits: ask each fit."""
        raise ParameterError("a comparison holds several fits; call conf_int() on each of them")

    def _repr_html_(self) -> str:
        return self.to_html()


def compare(
    results: Sequence[FEResults] | Mapping[str, FEResults], *, digits: int = 3
) -> Comparison:
    """Compare fits side by side; a mapping gives the column labels.

    Examples
    --------
    >>> compare({"county SE": r1, "two-way SE": r2}).to_markdown()  # doctest: +SKIP
    """
    if isinstance(results, Mapping):
        return Comparison(list(results.values()), list(results.keys()), digits)
    return Comparison(list(results), None, digits)
