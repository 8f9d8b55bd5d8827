"""The result of a RiR 2021:17 replication: tidy tables A–E, audit-style tables, figures, summary."""

from __future__ import annotations

import html
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from ojpanel.core.results import Result
from ojpanel.replication.analyses import COLUMNS
from ojpanel.replication.tables import AuditTable

__all__ = ["RiR2021Result", "compare_modes"]

_KEY = ["analysis", "area", "indicator", "peer_group", "lag", "outcome", "sample", "period", "term"]


def compare_modes(tidy: pd.DataFrame) -> pd.DataFrame:
    """Cells whose sign or significance differs between faithful and improved mode.

    Parameters
    ----------
    tidy
        Rows of both modes (regression analyses B, D, E; ANOVA C).

    Returns
    -------
    pandas.DataFrame
        One row per changed cell: the key columns, ``faithful`` and ``improved`` marks, both
        estimates and p-values, and ``change`` ('sign' or 'significance').
    """
    f = tidy[tidy["mode"] == "faithful"]
    i = tidy[tidy["mode"] == "improved"]
    cols = ["estimate", "p_value", "stars"]
    m = f[_KEY + cols].merge(i[_KEY + cols], on=_KEY, suffixes=("_faithful", "_improved"))
    m = m[m["analysis"] != "A"]
    sign_f = m["estimate_faithful"].apply(lambda x: 0 if pd.isna(x) else (x > 0) - (x < 0))
    sign_i = m["estimate_improved"].apply(lambda x: 0 if pd.isna(x) else (x > 0) - (x < 0))
    sig_diff = m["stars_faithful"] != m["stars_improved"]
    # A sign change matters only where at least one mode calls the cell significant.
    sign_diff = (sign_f != sign_i) & ((m["stars_faithful"] != "") | (m["stars_improved"] != ""))
    out = m[sig_diff | sign_diff].copy()
    out["change"] = ["sign" if s else "significance" for s in sign_diff[sig_diff | sign_diff]]
    out = out.rename(columns={"stars_faithful": "faithful", "stars_improved": "improved"})
    return out.reset_index(drop=True)


class RiR2021Result(Result):
    title = "RiR 2021:17 replication"

    """Everything a replication produced. Build it with :func:`ojpanel.replication.rir2021`.

    Properties are read-only; :meth:`summary` says what ran, what was skipped and why, and which
    choices were made; :meth:`to_frame` gives all tidy rows in one frame.
    """

    def __init__(
        self,
        *,
        mode: str,
        tables: Mapping[str, pd.DataFrame],
        rendered: list[AuditTable],
        figures: Mapping[str, Figure],
        choices: Mapping[str, list[str]],
        ran: list[str],
        skipped: list[str],
        changes: pd.DataFrame,
        spec: pd.DataFrame,
        settings: Mapping[str, Any],
        designs: Mapping[str, pd.DataFrame] | None = None,
    ) -> None:
        self._designs = dict(designs or {})
        self._mode = mode
        self._tables = {k: v for k, v in tables.items()}
        self._rendered = list(rendered)
        self._figures = dict(figures)
        self._choices = {k: list(v) for k, v in choices.items()}
        self._ran = list(ran)
        self._skipped = list(skipped)
        self._changes = changes
        self._spec = spec
        self._settings = dict(settings)

    # ---- read-only properties ---------------------------------------------------------------
    @property
    def mode(self) -> str:
        """Requested mode: ``faithful``, ``improved`` or ``both``."""
        return self._mode

    @property
    def tables(self) -> Mapping[str, pd.DataFrame]:
        """Tidy tables keyed ``A``..``E`` (copies; schema :data:`~ojpanel.replication.analyses.COLUMNS`)."""
        return MappingProxyType({k: v.copy() for k, v in self._tables.items()})

    @property
    def rendered(self) -> tuple[AuditTable, ...]:
        """Audit-style tables (Markdown via ``.markdown``, LaTeX via ``.latex``)."""
        return tuple(self._rendered)

    @property
    def figures(self) -> Mapping[str, Figure]:
        """Figures of analysis A keyed by file stem."""
        return MappingProxyType(self._figures)

    @property
    def choices(self) -> Mapping[str, tuple[str, ...]]:
        """Choices made where the appendix is silent, per analysis."""
        return MappingProxyType({k: tuple(v) for k, v in self._choices.items()})

    @property
    def ran(self) -> tuple[str, ...]:
        """One line per analysis that ran."""
        return tuple(self._ran)

    @property
    def skipped(self) -> tuple[str, ...]:
        """One line per analysis, indicator or cell that was skipped, with the reason."""
        return tuple(self._skipped)

    @property
    def changes(self) -> pd.DataFrame:
        """Cells whose sign or significance differs between faithful and improved mode."""
        return self._changes.copy()

    @property
    def indicators(self) -> pd.DataFrame:
        """The panel indicators matched to the audit's rows (area, group, label, last year)."""
        return self._spec.copy()

    @property
    def settings(self) -> Mapping[str, Any]:
        """Run settings (years, cluster, quantile, groupings, users file given)."""
        return MappingProxyType(self._settings)

    def design(self, analysis: str = "D") -> pd.DataFrame:
        """The constructed variables behind an analysis's regressions (for auditing).

        For ``"D"``: one row per indicator, peer group, lag, municipality and year with the own
        ``level``, ``improved`` (t-k -> t), and the peers' ``peer_mean`` and
        ``peer_top_quartile`` measured at t-k (placed at t).
        """
        if analysis not in self._designs:
            raise KeyError(f"no design kept for analysis {analysis!r}; available: {sorted(self._designs)}")
        return self._designs[analysis].copy()

    @property
    def n_regressions(self) -> int:
        """Number of estimated regressions (B, D, E cells with an estimate)."""
        n = 0
        for k in ("B", "D", "E"):
            t = self._tables.get(k)
            if t is not None and len(t):
                n += int(t["estimate"].notna().sum())
        return n

    @property
    def n_anovas(self) -> int:
        """Number of ANOVAs (C cells)."""
        t = self._tables.get("C")
        return 0 if t is None else int(t["statistic"].notna().sum())

    # ---- views ------------------------------------------------------------------------------
    def compare_published(
        self,
        published: Any = None,
        *,
        mode: str | None = None,
        socioeconomic: str = "socioeconomic",
        alternatives: bool = False,
    ) -> Any:
        """This replication beside the audit's published Tables 2–17, cell by cell.

        Parameters
        ----------
        published
            The transcribed tables (default: ``data/rir2021/published``).
        mode
            Mode to compare; default ``faithful`` (``improved`` for an improved-only run).
        socioeconomic
            Name of the socioeconomic grouping passed as ``groupings``.
        alternatives
            Compare each row's alternative coding (e.g. the other bemötande cut-off).

        Returns
        -------
        ojpanel.replication.compare.FidelityReport
            See :func:`ojpanel.replication.compare.compare_published`.
        """
        from ojpanel.replication.compare import compare_published

        mode = mode or ("improved" if self._mode == "improved" else "faithful")
        return compare_published(self, published, mode=mode, socioeconomic=socioeconomic, alternatives=alternatives)

    def to_frame(self) -> pd.DataFrame:
        """All tidy rows A–E in one frame."""
        parts = [t for t in self._tables.values() if len(t)]
        if not parts:
            return pd.DataFrame(columns=COLUMNS)
        return pd.concat(parts, ignore_index=True)

    def table(self, name: str) -> AuditTable:
        """The rendered table with file stem ``name``."""
        for t in self._rendered:
            if t.name == name:
                return t
        raise KeyError(f"no rendered table named {name!r}; available: {[t.name for t in self._rendered]}")

    def metadata(self) -> dict[str, Any]:
        """Choices, settings, what ran and what was skipped (JSON-serialisable)."""
        return {
            "mode": self._mode,
            "settings": {k: v for k, v in self._settings.items()},
            "choices": self._choices,
            "ran": self._ran,
            "skipped": self._skipped,
            "n_regressions": self.n_regressions,
            "n_anovas": self.n_anovas,
            "columns": COLUMNS,
        }

    @property
    def summary(self) -> str:
        """Plain-text account: what ran, what was skipped and why, the choices made."""
        lines = [f"RiR 2021:17 replication (mode: {self._mode})"]
        if self._settings.get("synthetic"):
            lines.append("SYNTHETIC DATA: the panel is simulated, not Öppna jämförelser results.")
        if self._settings.get("panel_content_hash"):
            lines.append(f"Panel content hash: {self._settings['panel_content_hash']}")
        lines.append("")
        lines.append(
            f"{len(self._spec)} audit indicator(s) in the panel; {self.n_regressions} regressions, "
            f"{self.n_anovas} ANOVAs."
        )
        lines += ["", "Ran:"] + [f"  - {r}" for r in self._ran]
        lines += ["", "Skipped:"] + ([f"  - {s}" for s in self._skipped] or ["  (nothing)"])
        lines += ["", "Choices:"]
        for k, v in self._choices.items():
            lines += [f"  [{k}] {c}" for c in v]
        if self._mode != "faithful":
            lines += ["", f"Faithful vs improved: {len(self._changes)} cell(s) change sign or significance."]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"RiR2021Result(mode={self._mode!r}, indicators={len(self._spec)}, "
            f"regressions={self.n_regressions}, anovas={self.n_anovas}, tables={len(self._rendered)})"
        )

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(r)}</li>" for r in self._ran)
        skipped = "".join(f"<li>{html.escape(s)}</li>" for s in self._skipped) or "<li>nothing</li>"
        counts = "".join(
            f"<tr><td>{k}</td><td>{len(v)}</td></tr>" for k, v in self._tables.items()
        )
        return (
            f"<div><strong>RiR 2021:17 replication</strong> (mode: {html.escape(self._mode)})"
            f"<p>{len(self._spec)} indicators, {self.n_regressions} regressions, {self.n_anovas} ANOVAs, "
            f"{len(self._rendered)} tables, {len(self._figures)} figures.</p>"
            f"<table><tr><th>analysis</th><th>rows</th></tr>{counts}</table>"
            f"<p>Ran:</p><ul>{items}</ul><p>Skipped:</p><ul>{skipped}</ul></div>"
        )
