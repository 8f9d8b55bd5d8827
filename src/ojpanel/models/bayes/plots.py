"""ArviZ figures of the Bayesian models in the package's figure style.

The figures are drawn by arviz-plots (forest, rank, predictive-check and PIT-ECDF plots) inside
:func:`ojpanel.core.style.style`, so they take the package's fonts and sizes; this module then
gives them what the rest of the package's figures have: Swedish words, parameters named by what
they mean rather than by their variable names (``mu_beta`` is "Poolad effekt (μ)"), indicators by
their titles, a constrained layout and the source note in its own strip
(:func:`ojpanel.core.style.source_note`). Every function returns a ``matplotlib.figure.Figure``
that passes :func:`ojpanel.core.style.figure_problems`; save it with
:func:`ojpanel.core.style.save_figure`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import arviz_plots as azp
import numpy as np
import xarray as xr

from ojpanel.config import PROCESSED_SOURCE_NOTE
from ojpanel.core.style import source_note, style, wrap
from ojpanel.errors import ParameterError
from ojpanel.models.bayes.models import HYPERPARAMETERS

__all__ = [
    "PARAMETER_LABELS",
    "arviz_figure",
    "parameter_label",
    "plot_effects",
    "plot_rank",
]

#: What the model's parameters mean, in the figures' language.
PARAMETER_LABELS: dict[str, str] = {
    "mu_beta": "Poolad effekt (μ)",
    "tau_beta": "Effekternas spridning (τ)",
    "beta": "Effekt",
    "sigma_group": "Spridning mellan grupper",
    "sigma_municipality": "Spridning mellan kommuner",
    "sigma_y": "Residualspridning",
    "y": "Utfall",
}


def parameter_label(name: str, titles: Mapping[str, str] | None = None, *, width: int = 30) -> str:
    """A readable name for an arviz-plots panel title such as ``"sigma_y\\nU01421"``.

    The variable's name becomes its meaning (:data:`PARAMETER_LABELS`); a coordinate that is an
    indicator id becomes the indicator's title when ``titles`` has it (wrapped to ``width``).
    """
    head, *coords = str(name).split("\n")
    label = PARAMETER_LABELS.get(head.strip(), head.strip())
    parts = [wrap((titles or {}).get(c.strip(), c.strip()), width) for c in coords if c.strip()]
    return "\n".join([label, *parts])


def arviz_figure(pc: Any, *, note: str | None = PROCESSED_SOURCE_NOTE) -> Any:
    """The matplotlib figure of an arviz-plots ``PlotCollection``, laid out and with a source note.

    Parameters
    ----------
    pc
        What an arviz-plots function returned with ``backend="matplotlib"`` (or its figure).
    note
        Source note (None: none).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = pc.viz["figure"].item() if hasattr(pc, "viz") else pc
    # arviz-plots creates its figures through pyplot; unregistered, a figure is shown once, when
    # it is a cell's value or displayed, like the package's other figures (not again by the
    # inline backend at the end of the cell that drew it)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
    # arviz-plots sizes its figures with its own layout; the constrained layout keeps every label
    # (and the source note, a supxlabel) inside the canvas and clear of the others
    fig.set_layout_engine("constrained")
    if note:
        source_note(fig, note)
    return fig


def _retitle(fig: Any, titles: Mapping[str, str] | None, width: int) -> None:
    for ax in fig.axes:
        for loc in ("center", "left", "right"):
            text = ax.get_title(loc=loc)
            if text:
                ax.set_title(parameter_label(text, titles, width=width), loc=loc)


def plot_effects(
    idata: xr.DataTree,
    titles: Mapping[str, str] | None = None,
    *,
    ci_probs: tuple[float, float] = (0.5, 0.9),
    width: int = 34,
    note: str | None = PROCESSED_SOURCE_NOTE,
) -> Any:
    """Forest plot (arviz-plots) of the pooled effect and each indicator's effect.

    Parameters
    ----------
    idata
        A fit of :func:`~ojpanel.models.bayes.fit.fit` (posterior ``mu_beta`` and ``beta``).
    titles
        Indicator id → title; rows are named by title (wrapped to ``width``), else by id.
    ci_probs
        The inner and outer credible intervals drawn.
    width, note
        Width of the wrapped row names; the source note (None: none).

    Returns
    -------
    matplotlib.figure.Figure
    """
    post = idata["posterior"].to_dataset()
    if not {"mu_beta", "beta"} <= set(post.data_vars):
        raise ParameterError("the fit has no 'mu_beta' and 'beta' to plot")
    ids = [str(i) for i in post["beta"]["indicator"].values]
    names = [wrap((titles or {}).get(i, i), width) for i in ids]
    rows = [PARAMETER_LABELS["mu_beta"], *names]
    effects = xr.concat([post["mu_beta"].expand_dims(term=[rows[0]]),
                         post["beta"].rename(indicator="term").assign_coords(term=names)], dim="term")
    lines = sum(r.count("\n") + 1 for r in rows)
    size = (6.5, 1.2 + 0.15 * lines + 0.15 * len(rows))
    with style():
        pc = azp.plot_forest(xr.Dataset({"effect": effects}), combined=True, ci_probs=ci_probs,
                             labels=["term"], backend="matplotlib", figure_kwargs={"figsize": size})
        fig = arviz_figure(pc, note=note)
        label_ax, *plot_axes = fig.axes
        # the names' column: as wide as the longest line needs (about 0.55 em per character)
        font = max((t.get_fontsize() for t in label_ax.texts), default=8.5)
        need = max(len(line) for r in rows for line in r.split("\n")) * 0.55 * font / 72 + 0.15
        label_ax.get_subplotspec().get_gridspec().set_width_ratios([need, size[0] - need - 0.4])
        # the names are text, not data: no frame, and no "empty axes" for the layout check
        label_ax.set_axis_off()
        label_ax.set_xlabel("")  # arviz-plots names the column by its dimension ("term")
        label_ax.set_xticks([])
        for ax in fig.axes:
            ax.set_ylim(-0.6, len(rows) - 0.4)  # room for the first and last name's lines
            ax.set_title("")  # the variable's name ("effect") says nothing the axis label does not
        lo, hi = (f"{100 * p:.0f} %" for p in sorted(ci_probs))
        plot_axes[-1].set_xlabel(wrap("Effekt av gruppens medelvärde (SD av indikatorn per SD av exponeringen); "
                                      f"{lo}- och {hi}-intervall", 60))
    return fig


def plot_rank(
    idata: xr.DataTree,
    var_names: Sequence[str] | None = None,
    titles: Mapping[str, str] | None = None,
    *,
    columns: int = 3,
    note: str | None = PROCESSED_SOURCE_NOTE,
) -> Any:
    """Rank plots (arviz-plots' fractional-rank ECDFs per chain with a simultaneous envelope).

    Chains that sample the same distribution give ranks whose ECDFs stay inside the envelope;
    a chain outside it has not mixed. Complements the R-hat and ESS gates.

    Parameters
    ----------
    idata
        A fit.
    var_names
        Parameters (default: the hyperparameters and the pooled effect the fit has).
    titles
        Indicator id → title, for parameters with one value per indicator.
    columns, note
        Panels per row; the source note (None: none).

    Returns
    -------
    matplotlib.figure.Figure
    """
    post = idata["posterior"]
    names = list(var_names) if var_names is not None else [v for v in HYPERPARAMETERS if v in post.data_vars]
    if not names:
        raise ParameterError("no parameters to plot")
    panels = sum(int(np.prod([post[v].sizes[d] for d in post[v].dims if d not in ("chain", "draw")]))
                 for v in names)
    rows = -(-panels // columns)
    with style():
        pc = azp.plot_rank(idata, var_names=names, backend="matplotlib",
                           col_wrap=columns, figure_kwargs={"figsize": (6.5, 0.6 + 1.9 * rows)})
        fig = arviz_figure(pc, note=note)
        _retitle(fig, titles, 26)
        _label_ecdf_axes(fig, "Fraktionell rang", "ECDF minus likformig")
    return fig


def _label_ecdf_axes(fig: Any, xlabel: str, ylabel: str) -> None:
    """One x label under each panel's axis, the y label only in the first column."""
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        spec = ax.get_subplotspec()
        ax.set_xlabel(xlabel if ax.get_xlabel() or (spec is not None and spec.is_last_row()) else "")
        ax.set_ylabel(ylabel if spec is not None and spec.is_first_col() else "")
