"""One figure style for every figure the package draws.

Why matplotlib with a style of our own rather than another plotting library: it writes vector
figures (SVG/PDF) that journals accept, it needs no browser or server, ArviZ's plots draw on it,
and its object-oriented ``Figure`` needs no global state, so a library function never changes
what a notebook displays. Every plotting function of the package:

* creates its figure with :func:`new_figure` (constrained layout, the style's fonts) inside
  :func:`style`;
* names indicators by their titles (wrapped, the KPI id in small type) through
  :func:`indicator_title` or :func:`indicator_ticklabels`;
* speaks one language, Swedish, the language of the indicator titles (:data:`WORDS`);
* puts its source note in a strip the layout reserves for it (:func:`source_note`);
* is saved with :func:`save_figure` (PNG and SVG), which checks it with
  :func:`figure_problems` first: text outside the canvas, overlapping labels, empty axes.

Figures returned by library functions are ``matplotlib.figure.Figure`` objects; in Jupyter they
display inline when they are the value of a cell (or through ``display(fig)``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from cycler import cycler

from ojpanel.errors import OJPanelError, OJPanelWarning

__all__ = [
    "STYLE",
    "WORDS",
    "FigureLayoutError",
    "FigureLayoutWarning",
    "style",
    "styled",
    "new_figure",
    "wrap",
    "indicator_title",
    "indicator_ticklabels",
    "scale_label",
    "unit_label",
    "plain_numbers",
    "year_axis",
    "plot_with_gaps",
    "source_note",
    "label_points",
    "figure_problems",
    "save_figure",
]

#: rcParams of the package's style: sizes for a figure printed at its own size (one or two
#: columns of a paper), sans-serif, light grid, no top/right spines.
STYLE: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.titleweight": "regular",
    "axes.labelsize": 8.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "figure.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "0.9",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "axes.prop_cycle": cycler(
        color=["#1f5a91", "#d1603d", "#3b8b5a", "#8e6bb3", "#b8860b", "#5f6b73",
               "#17becf", "#a0522d", "#e377c2", "#2f2f2f"]
    ),
    "lines.linewidth": 1.4,
    "lines.markersize": 3.5,
    "savefig.dpi": 150,
    "svg.fonttype": "none",
    "svg.hashsalt": "ojpanel",
    "pdf.fonttype": 42,
}

#: The words figures use (Swedish, like the indicator titles).
WORDS: dict[str, str] = {
    "year": "År",
    "national_mean": "Nationellt medelvärde (ovägt)",
    "band95": "95 % konfidensband",
    "estimate": "Skattning",
    "ci": "konfidensintervall",
    "respondents": "Antal svarande (n)",
    "precision": "Precision (1 / standardfel)",
    "limits": "kontrollgränser",
    "mean": "medelvärde",
}

_SMALL = 6.5
_NOTE_SIZE = 6.5


class FigureLayoutWarning(OJPanelWarning):
    """A figure has text outside its canvas, overlapping labels or empty axes."""


class FigureLayoutError(OJPanelError, ValueError):
    """Raised instead of the warning when ``OJPANEL_FIGURE_CHECK=strict``."""


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Apply the package's style for the duration of a block (artists read it when created)."""
    import matplotlib as mpl

    with mpl.rc_context(STYLE):
        yield


def styled(func):
    """Decorator: run a plotting function inside :func:`style`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any):
        with style():
            return func(*args, **kwargs)

    return wrapper


def new_figure(
    nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] = (6.5, 4.0), **subplot_kw: Any
):
    """A ``Figure`` with constrained layout and its axes (always a 2-D array unless 1 × 1).

    Call inside :func:`style`. The figure is not registered with pyplot, so creating it changes
    nothing a notebook shows until it is returned or displayed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, (axes[0, 0] if nrows == ncols == 1 else axes)


def wrap(text: str, width: int) -> str:
    """Wrap ``text`` at word boundaries to lines of at most ``width`` characters (never cut)."""
    return "\n".join(textwrap.wrap(str(text), width=width, break_long_words=False)) or str(text)


def indicator_title(ax, title: str, kpi: str | None = None, *, width: int = 40) -> None:
    """Title an axes by the indicator's name, wrapped, with the KPI id in small type at the right.

    The name is wrapped short enough to leave the id's room on every line, so the two never meet.
    """
    room = len(str(kpi)) + 3 if kpi else 0
    ax.set_title(wrap(title, max(12, width - room)), loc="left")
    if kpi:
        ax.set_title(str(kpi), loc="right", fontsize=_SMALL, color="0.35")


def indicator_ticklabels(
    ax, titles: Sequence[str], ids: Sequence[str] | None = None, *, width: int = 38, id_ax=None
) -> None:
    """Label the y ticks 0..k-1 with wrapped indicator titles, and the KPI ids in small type.

    The ids stand on a secondary axis at the right of ``id_ax`` (default ``ax``; give the last
    panel of a row of panels), so they never compete with the names for room.
    """
    ax.set_yticks(range(len(titles)))
    ax.set_yticklabels([wrap(t, width) for t in titles], linespacing=1.0)
    if ids is None:
        return
    target = id_ax if id_ax is not None else ax
    sec = target.secondary_yaxis("right")
    sec.set_yticks(range(len(ids)))
    sec.set_yticklabels([str(i) for i in ids], fontsize=_SMALL, color="0.4")
    sec.tick_params(length=0)
    sec.spines["right"].set_visible(False)


def scale_label(scale: str | None) -> str:
    """Axis label for a declared indicator scale (shares are in per cent in OJ)."""
    s = (scale or "").lower()
    return {
        "share": "Andel (%)",
        "binary": "Andel ja (0–1)",
        "ordinal": "Nivå (ordinal skala)",
        "mean": "Medelvärde",
        "count": "Antal",
        "rate": "Antal per 1 000 invånare",
    }.get(s, "Värde")


_TAIL_YEARS = re.compile(r"\s*\(-\s*\d{4}\)\s*$")


def unit_label(title: str | None, scale: str | None = None) -> str:
    """The unit of an indicator as its title states it (Kolada titles end in ", <unit>").

    ``"…, andel (%)"`` gives ``"Andel (%)"``, ``"…, kr/inv 65+"`` gives ``"Kr/inv 65+"``; yes/no
    items (``"(Ja=1 Nej=0)"``) give ``"Andel ja (0–1)"``. Titles without a unit fall back to the
    declared scale (:func:`scale_label`).
    """
    text = _TAIL_YEARS.sub("", str(title or "")).strip().rstrip(".")
    if re.search(r"Ja=1\s*Nej=0|Nej=0\)", text):
        return "Andel ja (0–1)"
    tail = text.rsplit(",", 1)[-1].strip() if "," in text else ""
    if tail == "(%)":
        return "Procent (%)"
    if tail and len(tail) <= 40 and (tail[0].islower() or tail.startswith("(")):
        return tail[0].upper() + tail[1:]
    return scale_label(scale)


def plain_numbers(ax, axis: str = "y") -> None:
    """Full numbers with thin-space thousands separators, never an offset such as "1e6"."""
    from matplotlib.ticker import FuncFormatter

    def fmt(v: float, _pos: int) -> str:
        if abs(v) >= 10_000:
            return f"{v:,.0f}".replace(",", "\u2009")
        return f"{v:g}"

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(fmt))


def year_axis(ax) -> None:
    """Integer year ticks only (never 2018.5) and the year label."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
    ax.set_xlabel(WORDS["year"])


def plot_with_gaps(ax, years, values, lower=None, upper=None, **kw) -> None:
    """A yearly series with gaps where years are missing, and a band or bars for its uncertainty.

    Missing years break the line rather than being bridged. The band is drawn over runs of at
    least three consecutive years; shorter runs show their interval as error bars.
    """
    years = np.asarray(years, dtype=int)
    order = np.argsort(years)
    years = years[order]
    full = np.arange(years.min(), years.max() + 1)
    idx = np.searchsorted(full, years)

    def _on_full(a):
        out = np.full(full.shape, np.nan)
        out[idx] = np.asarray(a, dtype=float)[order]
        return out

    y = _on_full(values)
    (line,) = ax.plot(full, y, marker="o", **kw)
    if lower is None or upper is None:
        return
    lo, hi = _on_full(lower), _on_full(upper)
    ok = ~np.isnan(y) & ~np.isnan(lo) & ~np.isnan(hi)
    run_id = np.cumsum(~ok)
    colour = line.get_color()
    for r in np.unique(run_id[ok]):
        m = ok & (run_id == r)
        if m.sum() >= 3:
            ax.fill_between(full[m], lo[m], hi[m], alpha=0.2, color=colour, linewidth=0)
        else:
            ax.errorbar(full[m], y[m], yerr=[y[m] - lo[m], hi[m] - y[m]], fmt="none",
                        ecolor=colour, elinewidth=0.8, capsize=2)


def label_points(ax, xs, ys, labels, *, fontsize: float = 6.5) -> None:
    """Name points without overlaps: each label takes the first free spot around its point.

    Spots are tried in eight directions at growing distances; a label that finds no free spot
    inside the axes is left out rather than drawn over another (the caller's table lists every
    unit). Deterministic for the same input.
    """
    fig = ax.figure
    _agg_canvas(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken = []
    directions = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    for x, y, text in zip(xs, ys, labels, strict=True):
        placed = False
        for dist in (3, 8, 14):
            for dx, dy in directions:
                ha = "left" if dx > 0 else "right" if dx < 0 else "center"
                va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
                t = ax.annotate(str(text), (x, y), xytext=(dx * dist, dy * dist),
                                textcoords="offset points", ha=ha, va=va, fontsize=fontsize)
                bb = t.get_window_extent(renderer).expanded(1.05, 1.1)
                inside = (bb.x0 >= frame.x0 and bb.x1 <= frame.x1 and bb.y0 >= frame.y0
                          and bb.y1 <= frame.y1)
                if inside and not any(bb.overlaps(o) for o in taken):
                    taken.append(bb)
                    placed = True
                    break
                t.remove()
            if placed:
                break


def source_note(fig, text: str) -> None:
    """Put a source note at the bottom left, below everything else (figure legends included).

    The note is the figure's ``supxlabel``, which the constrained layout keeps clear of the axes
    and of legends placed outside them; figures with a source note use no other ``supxlabel``.
    """
    # Wrap to the figure's width (about 0.55 em per character) so a narrow figure keeps it whole.
    chars = max(30, int(fig.get_figwidth() * 72 / (_NOTE_SIZE * 0.55)) - 4)
    text = "\n".join(wrap(line, chars) for line in str(text).splitlines())
    fig.supxlabel(text, x=0.005, ha="left", fontsize=_NOTE_SIZE, color="0.35")


def _agg_canvas(fig) -> None:
    """Give a bare ``Figure`` an Agg canvas, which can measure text (the base canvas cannot)."""
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)


def _drawn_texts(fig) -> list:
    """The text artists a reader sees: tick labels only of ticks inside the view."""
    from matplotlib.text import Text

    tick_texts: set[int] = set()
    shown: list = []
    for ax in fig.axes:
        for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            lo, hi = min(lo, hi), max(lo, hi)
            tol = 1e-9 * max(1.0, abs(hi - lo))
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                labels = (tick.label1, tick.label2)
                tick_texts.update(id(t) for t in labels)
                if ax.get_visible() and lo - tol <= tick.get_loc() <= hi + tol:
                    shown += [t for t in labels if t.get_visible()]
    for t in fig.findobj(Text):
        if id(t) in tick_texts or not t.get_visible():
            continue
        if t.axes is not None and not t.axes.get_visible():
            continue
        shown.append(t)
    return [t for t in shown if t.get_text().strip()]


def figure_problems(fig) -> list[str]:
    """What a reader would trip over: text outside the canvas, overlapping text, empty axes.

    The figure is drawn first (so the constrained layout is applied). Returns one sentence per
    problem; an empty list means the figure passed.
    """
    _agg_canvas(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    problems: list[str] = []
    boxes = []
    for t in _drawn_texts(fig):
        bb = t.get_window_extent(renderer)
        if bb.width <= 0 or bb.height <= 0:
            continue
        label = t.get_text().replace("\n", " ")[:50]
        if bb.x0 < canvas.x0 - 1 or bb.y0 < canvas.y0 - 1 or bb.x1 > canvas.x1 + 1 or bb.y1 > canvas.y1 + 1:
            problems.append(f"text outside the canvas: {label!r}")
        boxes.append((label, bb))
    for (la, a), (lb, b) in combinations(boxes, 2):
        w = min(a.x1, b.x1) - max(a.x0, b.x0)
        h = min(a.y1, b.y1) - max(a.y0, b.y0)
        if w > 1.5 and h > 1.5:
            problems.append(f"overlapping labels: {la!r} and {lb!r}")
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        if not (ax.lines or ax.collections or ax.patches or ax.images):
            problems.append(f"empty axes: {ax.get_title(loc='left') or ax.get_title() or 'untitled'}")
    return problems


def save_figure(fig, path: Path | str, *, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Check a figure with :func:`figure_problems`, then save it in each format (PNG first).

    Problems raise :class:`FigureLayoutError` when ``OJPANEL_FIGURE_CHECK=strict`` (the tests'
    pipeline run) and warn with :class:`FigureLayoutWarning` otherwise. Metadata are fixed so
    identical figures give identical files.
    """
    problems = figure_problems(fig)
    if problems:
        msg = f"figure {Path(path).name}: " + "; ".join(problems)
        if os.environ.get("OJPANEL_FIGURE_CHECK", "").lower() == "strict":
            raise FigureLayoutError(msg)
        warnings.warn(msg, FigureLayoutWarning, stacklevel=2)
    base = Path(path).with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        target = base.with_suffix(f".{fmt}")
        meta = {"Software": None} if fmt == "png" else {"Date": None} if fmt in {"svg", "pdf"} else {}
        with style():
            fig.savefig(target, format=fmt, metadata=meta)
        written.append(target)
    return written
