"""From the OJ panel (xarray Dataset) to the arrays a hierarchical model needs.

:func:`prepare_data` selects indicators and years, resolves the exposure (a DataArray, the name of
a data variable or coordinate, or a callable such as a lagged leave-one-out peer mean), codes the
outcome for the chosen likelihood and returns an immutable :class:`ModelData`. Cells whose outcome
or exposure is missing cannot enter a likelihood; their number is recorded (``n_missing``), never
dropped without trace.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.core.scales import SHARE_SCALES
from ojpanel.errors import DataError, ParameterError
from ojpanel.peers import NEIGHBOURS, lagged, loo_group_mean, neighbour_mean
from ojpanel.provenance import hash_frame

__all__ = [
    "ModelData",
    "prepare_data",
    "select_panel",
    "Exposure",
    "PeerExposure",
    "resolve_exposure",
    "SHARE_SCALES",
]

Exposure = xr.DataArray | str | Callable[[xr.Dataset], xr.DataArray]
Likelihood = Literal["normal", "binomial", "bernoulli", "ordinal"]
_DIMS = ("municipality", "indicator", "year")



@dataclass(frozen=True)
class ModelData:
    """Observation-level arrays and labels for one model (read-only).

    Attributes
    ----------
    frame
        Long frame, one row per used cell: ``municipality, indicator, year, group, y, x`` (and
        ``n`` for binomial). ``y``/``x`` are on the model's scale (see ``y_center``/``x_center``).
    likelihood
        ``"normal"``, ``"binomial"``, ``"bernoulli"`` or ``"ordinal"``.
    municipalities, groups, indicators, years
        Labels (coordinate values) in code order.
    municipality_group
        Group code of every municipality (length = number of municipalities).
    y_center, y_scale
        Per-indicator centre and scale subtracted/divided from the outcome (normal likelihood;
        zeros/ones otherwise).
    x_center, x_scale
        Per-indicator centre and scale of the exposure (zeros/ones when not standardised).
    n_categories
        Number of ordered categories (ordinal likelihood; 0 otherwise).
    n_missing
        Cells of the selection left out because outcome, exposure or ``n`` was missing.
    spec
        The specification (selection, exposure, grouping, codings) for provenance.
    data_hash
        Order-independent hash of ``frame`` (:func:`ojpanel.provenance.hash_frame`).
    """

    frame: pd.DataFrame
    likelihood: str
    municipalities: np.ndarray
    groups: np.ndarray
    indicators: np.ndarray
    years: np.ndarray
    municipality_group: np.ndarray
    y_center: np.ndarray
    y_scale: np.ndarray
    x_center: np.ndarray
    x_scale: np.ndarray
    n_categories: int
    n_missing: int
    spec: dict[str, Any] = field(default_factory=dict)
    data_hash: str = ""

    # observation-level integer codes ------------------------------------------------------
    @property
    def n_obs(self) -> int:
        """Number of observations (cells) in the model."""
        return len(self.frame)

    @property
    def municipality_idx(self) -> np.ndarray:
        """Municipality code of every observation."""
        return self.frame["municipality_code"].to_numpy()

    @property
    def group_idx(self) -> np.ndarray:
        """Group (county) code of every observation."""
        return self.municipality_group[self.municipality_idx]

    @property
    def indicator_idx(self) -> np.ndarray:
        """Indicator code of every observation."""
        return self.frame["indicator_code"].to_numpy()

    @property
    def year_idx(self) -> np.ndarray:
        """Year code of every observation (0 = first year, the reference)."""
        return self.frame["year_code"].to_numpy()

    @property
    def y(self) -> np.ndarray:
        """Outcome on the model's scale (float for normal, int otherwise)."""
        v = self.frame["y"].to_numpy()
        return v if self.likelihood == "normal" else v.astype(np.int64)

    @property
    def x(self) -> np.ndarray:
        """Exposure on the model's scale."""
        return self.frame["x"].to_numpy(dtype=float)

    @property
    def n_trials(self) -> np.ndarray | None:
        """Trials behind each share (binomial likelihood) or None."""
        return self.frame["n"].to_numpy().astype(np.int64) if "n" in self.frame else None

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """``(municipalities, indicators, years)`` of the full grid."""
        return (len(self.municipalities), len(self.indicators), len(self.years))

    @property
    def cell_idx(self) -> np.ndarray:
        """Flat (C-order) index of every observation's cell in the full grid."""
        _, n_i, n_t = self.grid_shape
        return (self.municipality_idx * n_i + self.indicator_idx) * n_t + self.year_idx

    @property
    def is_complete_grid(self) -> bool:
        """True when every cell of the grid is observed, in grid order (no gather needed)."""
        return self.n_obs == int(np.prod(self.grid_shape)) and bool(
            np.array_equal(self.cell_idx, np.arange(self.n_obs)))

    def x_grid(self) -> np.ndarray:
        """Exposure on the full grid (0 in unobserved cells, which never enter the likelihood)."""
        g = np.zeros(int(np.prod(self.grid_shape)))
        g[self.cell_idx] = self.x
        return g.reshape(self.grid_shape)

    def coords(self) -> dict[str, list]:
        """PyMC coordinates of the model's dimensions."""
        return {
            "municipality": self.municipalities.tolist(),
            "group": self.groups.tolist(),
            "indicator": self.indicators.tolist(),
            "year": [int(y) for y in self.years],
            "effect_year": [int(y) for y in self.years[1:]],
            "obs": np.arange(self.n_obs).tolist(),
        }

    def subset(self, keep: np.ndarray) -> ModelData:
        """Same labels and codings, only the observations where ``keep`` is True (for CV)."""
        fr = self.frame.loc[np.asarray(keep, dtype=bool)].reset_index(drop=True)
        return ModelData(
            frame=fr,
            likelihood=self.likelihood,
            municipalities=self.municipalities,
            groups=self.groups,
            indicators=self.indicators,
            years=self.years,
            municipality_group=self.municipality_group,
            y_center=self.y_center,
            y_scale=self.y_scale,
            x_center=self.x_center,
            x_scale=self.x_scale,
            n_categories=self.n_categories,
            n_missing=self.n_missing,
            spec=dict(self.spec),
            data_hash=hash_frame(fr),
        )


@dataclass(frozen=True)
class PeerExposure:
    """The peers' lagged leave-one-out mean as the model's exposure, by its peer definition.

    The same definitions as the peer design (:class:`ojpanel.designs.peer.PeerDesign`) and
    ``ds.oj.peer_mean``: a grouping coordinate (``"county"``, ``"kommungrupp_2017"``) or
    ``"neighbours"``, the municipalities that share a land border. Pass it as ``exposure`` to
    :func:`prepare_data` or the ``fit_*`` functions: the exposure's coefficient (``mu_beta``
    pooled, ``beta`` per indicator) is then the peer coefficient. It is computed on the whole
    panel before years are selected, so the lag reaches back before the first analysed year; the
    first ``lag`` years have no exposure and leave the model (select ``years`` after them).

    Parameters
    ----------
    group
        Grouping coordinate or ``"neighbours"`` (or a :class:`~ojpanel.data.geo.NeighbourGraph`).
    lag
        Years between the peers' values and the outcome (≥ 1: this year's peer mean shares the
        year's shocks with the outcome).
    weights, islands, contiguity
        Neighbour peers only: ``"contiguity"``/``"border"``/``"inverse_distance"`` weights, the
        island rule and ``"rook"``/``"queen"`` contiguity (:mod:`ojpanel.data.geo`).
    """

    group: Any = "county"
    lag: int = 1
    weights: str = "contiguity"
    islands: str = "exclude"
    contiguity: str = "rook"

    def __post_init__(self) -> None:
        if int(self.lag) < 1:
            raise ParameterError(f"the peer exposure's lag must be at least one year; got {self.lag}")

    @property
    def neighbours(self) -> bool:
        """Whether the peers are land neighbours rather than a grouping."""
        return not isinstance(self.group, str) or self.group == NEIGHBOURS

    def __call__(self, ds: xr.Dataset) -> xr.DataArray:
        """The lagged peer mean of every municipality, indicator and year of ``ds``."""
        v = ds["value"]
        if self.neighbours:
            from ojpanel.data.geo import neighbour_graph

            graph = neighbour_graph(self.contiguity, self.islands) if isinstance(self.group, str) else self.group
            peer = neighbour_mean(v, graph, self.weights)
        else:
            peer = loo_group_mean(v, self.group)
        out = lagged(peer, int(self.lag))
        out.name = "peer_mean"
        return out

    def describe(self) -> str:
        """The definition in words (stored in the model's specification)."""
        group = self.group if isinstance(self.group, str) else "custom neighbour graph"
        extra = (f", {self.weights} weights, {self.contiguity} contiguity, islands={self.islands!r}"
                 if self.neighbours else "")
        return f"peer mean of {group} at t-{int(self.lag)} (leave-one-out{extra})"


def resolve_exposure(ds: xr.Dataset, exposure: Exposure) -> xr.DataArray:
    """Turn an exposure specification into a DataArray broadcast to the panel's ``value``.

    Parameters
    ----------
    ds
        The panel.
    exposure
        A DataArray with dims among ``municipality``, ``indicator``, ``year``; the name of a data
        variable or coordinate of ``ds`` (e.g. a municipality-level grouping such as
        ``"oj_user_aldre"``); or a callable ``f(ds) -> DataArray`` such as :class:`PeerExposure`,
        the lagged leave-one-out peer mean by a peer definition (neighbours included). Computed on the full panel, before the
        selection of years, so that lags can reach back before the first analysed year.

    Returns
    -------
    xarray.DataArray
        Float exposure with the same dims and coordinates as ``ds["value"]``.
    """
    if callable(exposure) and not isinstance(exposure, xr.DataArray):
        da = exposure(ds)
        if not isinstance(da, xr.DataArray):
            raise ParameterError(f"the exposure callable must return an xarray.DataArray, got {type(da).__name__}")
    elif isinstance(exposure, str):
        if exposure in ds.data_vars or exposure in ds.coords:
            da = ds[exposure]
        else:
            raise ParameterError(
                f"exposure '{exposure}' is neither a data variable nor a coordinate of the panel; "
                f"data variables: {sorted(map(str, ds.data_vars))}, "
                f"coordinates: {sorted(map(str, ds.coords))}"
            )
    elif isinstance(exposure, xr.DataArray):
        da = exposure
    else:
        raise ParameterError(
            "exposure must be a DataArray, the name of a variable/coordinate or a callable, "
            f"got {type(exposure).__name__}"
        )
    bad = [d for d in da.dims if d not in _DIMS]
    if bad:
        raise ParameterError(f"the exposure has dims {bad} outside {_DIMS}; select or reduce them first")
    try:
        vals = da.astype(float)
    except (TypeError, ValueError) as err:
        raise DataError(f"the exposure must be numeric (or boolean); got dtype {da.dtype}") from err
    # align on labels (an exposure may carry more years than the panel, e.g. for lags)
    vals = vals.reindex({d: ds[d] for d in vals.dims})
    out = vals.broadcast_like(ds["value"]).transpose(*ds["value"].dims)
    return out.drop_vars([c for c in out.coords if c not in ds["value"].coords])


def select_panel(ds: xr.Dataset, area: str | Sequence[str] | None, indicators: Sequence[str] | None,
                 years: Sequence[int] | None) -> xr.Dataset:
    """Select indicators (by ``area`` coordinate or ids) and years of a panel, checking the contract.

    Shared by :func:`prepare_data` and the fitting functions of :mod:`ojpanel.models.bayes.fit`,
    which pick their likelihood from the selected indicators before preparing the data.

    Parameters
    ----------
    ds
        OJ panel (``indicator × municipality × year`` with ``value``).
    area
        Indicator area(s) to keep (by the ``area`` coordinate); ``None`` keeps every area.
    indicators
        Indicator ids to keep; ``None`` keeps every indicator (of the selected areas).
    years
        Years to keep; ``None`` keeps every year.

    Returns
    -------
    xarray.Dataset
        The selected part of ``ds``.

    Raises
    ------
    DataError
        If the panel lacks a dimension or ``value``, or has no ``area`` coordinate when asked.
    ParameterError
        If the selection names indicators, areas or years the panel lacks.
    """
    missing = [d for d in _DIMS if d not in ds.dims]
    if missing or "value" not in ds:
        raise DataError(
            f"the panel lacks {missing or ['value']}; build it with ojpanel.build_panel() "
            "or follow the OJ panel contract"
        )
    out = ds
    if area is not None:
        if "area" not in ds.coords:
            raise DataError("the panel has no 'area' indicator coordinate; select indicators by id instead")
        areas = [area] if isinstance(area, str) else list(area)
        mask = np.isin(ds["area"].values.astype(str), areas)
        if not mask.any():
            raise ParameterError(f"no indicator has area in {areas}; available: {sorted(set(ds['area'].values.astype(str)))}")
        out = out.isel(indicator=np.flatnonzero(mask))
    if indicators is not None:
        wanted = [str(i) for i in indicators]
        unknown = sorted(set(wanted) - set(out["indicator"].values.astype(str)))
        if unknown:
            raise ParameterError(f"indicators not in the (area-filtered) panel: {unknown}")
        out = out.sel(indicator=wanted)
    if years is not None:
        wanted_y = [int(y) for y in years]
        unknown_y = sorted(set(wanted_y) - set(int(y) for y in out["year"].values))
        if unknown_y:
            raise ParameterError(f"years not in the panel: {unknown_y}")
        out = out.sel(year=sorted(wanted_y))
    return out


def _share_full_scale(sub: xr.Dataset) -> np.ndarray:
    """Per indicator, the value meaning "all units" (100 for ``share``, 1 for ``proportion``)."""
    if "scale" not in sub.coords or sub["scale"].dims != ("indicator",):
        raise DataError(
            "the binomial likelihood needs each indicator's declared scale: add the indicator "
            "coordinate 'scale' with 'share' (percent, 0-100) or 'proportion' (fraction, 0-1), e.g. "
            "ds.assign_coords(scale=('indicator', ['share'] * ds.sizes['indicator']))"
        )
    scales = sub["scale"].values.astype(str)
    unknown = {str(i): sc for i, sc in zip(sub["indicator"].values.astype(str), scales, strict=True)
               if sc not in SHARE_SCALES}
    if unknown:
        shown = dict(list(unknown.items())[:5])
        raise DataError(
            f"the binomial likelihood needs shares, but {len(unknown)} indicators have another declared "
            f"scale ({shown}); declare 'share' (percent, 0-100) or 'proportion' (fraction, 0-1) in the "
            "indicator coordinate 'scale', or use likelihood='normal' for them"
        )
    return np.array([SHARE_SCALES[sc] for sc in scales])


def _describe_exposure(exposure: Exposure) -> str:
    if isinstance(exposure, PeerExposure):
        return exposure.describe()
    if isinstance(exposure, str):
        return exposure
    if isinstance(exposure, xr.DataArray):
        return f"DataArray {exposure.name or '(unnamed)'} dims={list(exposure.dims)}"
    return getattr(exposure, "__qualname__", repr(exposure))


def prepare_data(
    ds: xr.Dataset,
    exposure: Exposure,
    *,
    likelihood: Likelihood,
    area: str | Sequence[str] | None = None,
    indicators: Sequence[str] | None = None,
    years: Sequence[int] | None = None,
    grouping: str | None = "county",
    variable: str = "value",
    n_variable: str = "n",
    standardize_exposure: bool | Literal["auto"] = "auto",
    n_categories: int | None = None,
    standardize_outcome: bool = True,
) -> ModelData:
    """Select, code and flatten a panel for one hierarchical model.

    Parameters
    ----------
    ds
        Panel following the OJ panel contract.
    exposure
        The effect of interest; see :func:`resolve_exposure`.
    likelihood
        ``"normal"`` (outcome standardised per indicator so that effects are comparable and can be
        pooled: they are in standard deviations of the indicator), ``"binomial"`` (``value`` is a
        share of ``n_variable`` units; the indicator coordinate ``scale`` declares per indicator
        whether it is a percentage, ``"share"``, or a fraction, ``"proportion"``; see
        :data:`SHARE_SCALES`),
        ``"bernoulli"`` (values 0/1) or ``"ordinal"`` (integer categories 0..K-1, e.g. nej=0,
        delvis=1, ja=2).
    area, indicators, years
        Selection (by the ``area`` indicator coordinate, by indicator ids, by years).
    grouping
        Municipality coordinate of the upper level within which municipalities are nested
        (``"county"`` by default, or e.g. ``"kommungrupp_2017"``); None for no upper level.
    variable, n_variable
        Names of the outcome and trials variables.
    standardize_exposure
        Centre and scale the exposure per indicator. ``"auto"`` standardises unless the exposure
        is binary (0/1), which keeps its "flagged vs not" meaning.
    n_categories
        Number of ordered categories (ordinal); default ``max(y) + 1``.
    standardize_outcome
        Normal likelihood only: standardise the outcome per indicator (default). With False the
        outcome keeps its scale and the priors must be chosen for that scale.

    Returns
    -------
    ModelData

    Raises
    ------
    DataError
        If the outcome does not fit the likelihood (or, binomial, its declared scale), a binomial
        indicator's scale is not declared as ``share`` or ``proportion``, or nothing is left after
        removing missing cells.
    ParameterError
        If the selection or grouping names something the panel lacks.
    """
    if likelihood not in ("normal", "binomial", "bernoulli", "ordinal"):
        raise ParameterError(f"unknown likelihood {likelihood!r}")
    xfull = resolve_exposure(ds, exposure)
    sub = select_panel(ds, area, indicators, years)
    x_da = xfull.sel(indicator=sub["indicator"], year=sub["year"], municipality=sub["municipality"])
    if variable not in sub:
        raise DataError(f"the panel has no variable '{variable}'")
    if grouping is not None and grouping not in sub.coords:
        raise ParameterError(
            f"grouping '{grouping}' is not a municipality coordinate of the panel; available: "
            f"{sorted(c for c in sub.coords if sub[c].dims == ('municipality',) and c != 'municipality')}"
        )
    cols = {"y": sub[variable].transpose(*_DIMS).values.astype(float).ravel(),
            "x": x_da.transpose(*_DIMS).values.astype(float).ravel()}
    if likelihood == "binomial":
        if n_variable not in sub:
            raise DataError(
                f"the binomial likelihood needs the number of units in '{n_variable}'; "
                "use likelihood='normal' when counts are not available"
            )
        cols["n"] = sub[n_variable].transpose(*_DIMS).values.astype(float).ravel()
        full_scale = _share_full_scale(sub)
    n_m, n_i, n_t = (sub.sizes[d] for d in _DIMS)
    mi, ii, ti = np.meshgrid(np.arange(n_m), np.arange(n_i), np.arange(n_t), indexing="ij")
    fr = pd.DataFrame({"municipality_code": mi.ravel(), "indicator_code": ii.ravel(), "year_code": ti.ravel(), **cols})
    ok = fr[list(cols)].notna().all(axis=1).to_numpy()
    n_missing = int((~ok).sum())
    fr = fr.loc[ok].reset_index(drop=True)
    if fr.empty:
        raise DataError("no cell of the selection has both an outcome and an exposure; check the selection and the exposure's years")
    mun_labels = sub["municipality"].values.astype(str)
    if grouping is None:
        groups = np.array(["all"])
        mgroup = np.zeros(n_m, dtype=np.int64)
    else:
        glab = sub[grouping].values.astype(object)
        bad = np.array([g is None or (isinstance(g, float) and np.isnan(g)) or str(g) == "" for g in glab])
        if bad.any():
            raise DataError(
                f"{int(bad.sum())} municipalities have no '{grouping}' (e.g. {mun_labels[bad][:3].tolist()}); "
                "fill the grouping or drop those municipalities"
            )
        groups, mgroup = np.unique(glab.astype(str), return_inverse=True)
        mgroup = mgroup.astype(np.int64)
    y = fr["y"].to_numpy()
    ind = fr["indicator_code"].to_numpy()
    y_center, y_scale = np.zeros(n_i), np.ones(n_i)
    ncat = 0
    if likelihood == "normal" and standardize_outcome:
        for i in range(n_i):
            v = y[ind == i]
            if len(v) >= 2 and np.std(v) > 0:
                y_center[i], y_scale[i] = v.mean(), v.std(ddof=1)
            elif len(v):
                y_center[i] = v.mean()
        fr["y"] = (y - y_center[ind]) / y_scale[ind]
    elif likelihood == "bernoulli":
        if not np.isin(y, (0.0, 1.0)).all():
            raise DataError(
                f"the Bernoulli likelihood needs 0/1 outcomes; found values {np.unique(y)[:6].tolist()}. "
                "Recode ja/delvis/nej items with the ordinal model or binarise them first"
            )
    elif likelihood == "ordinal":
        if (y < 0).any() or not np.allclose(y, np.round(y)):
            raise DataError(f"the ordinal likelihood needs integer categories 0..K-1; found {np.unique(y)[:6].tolist()}")
        ncat = int(n_categories or int(y.max()) + 1)
        if y.max() >= ncat or ncat < 2:
            raise DataError(f"ordinal outcome has categories up to {int(y.max())} but n_categories={ncat}")
    elif likelihood == "binomial":
        n = fr["n"].to_numpy()
        if (n < 0).any() or not np.allclose(n, np.round(n)):
            raise DataError("the number of units 'n' must be non-negative integers")
        top = full_scale[ind]
        bad = (y < 0) | (y > top)
        if bad.any():
            labs = sorted(set(sub["indicator"].values.astype(str)[ind[bad]]))
            raise DataError(
                f"binomial outcomes outside their declared scale for indicators {labs[:5]} "
                f"(e.g. {y[bad][:3].tolist()}); 'share' values must lie in [0, 100] and 'proportion' "
                "values in [0, 1]: correct the values or the indicator coordinate 'scale'"
            )
        fr["y"] = np.round(y / top * n)
        fr = fr.loc[fr["n"] > 0].reset_index(drop=True)
        n_missing += int((n <= 0).sum())
    x = fr["x"].to_numpy()
    ind = fr["indicator_code"].to_numpy()
    binary_x = bool(np.isin(x, (0.0, 1.0)).all())
    do_std = (not binary_x) if standardize_exposure == "auto" else bool(standardize_exposure)
    x_center, x_scale = np.zeros(n_i), np.ones(n_i)
    if do_std:
        for i in range(n_i):
            v = x[ind == i]
            if len(v) >= 2 and np.std(v) > 0:
                x_center[i], x_scale[i] = v.mean(), v.std(ddof=1)
        fr["x"] = (x - x_center[ind]) / x_scale[ind]
    if np.std(fr["x"].to_numpy()) == 0:
        raise DataError("the exposure does not vary in the selection; its effect is not identified")
    fr.insert(0, "municipality", mun_labels[fr["municipality_code"].to_numpy()])
    fr.insert(1, "indicator", sub["indicator"].values.astype(str)[fr["indicator_code"].to_numpy()])
    fr.insert(2, "year", sub["year"].values.astype(int)[fr["year_code"].to_numpy()])
    fr.insert(3, "group", groups[mgroup[fr["municipality_code"].to_numpy()]])
    spec = {
        "likelihood": likelihood,
        "area": area if area is None or isinstance(area, str) else list(area),
        "indicators": sub["indicator"].values.astype(str).tolist(),
        "years": [int(v) for v in sub["year"].values],
        "grouping": grouping,
        "exposure": _describe_exposure(exposure),
        "exposure_standardized": do_std,
        "outcome_standardized": likelihood == "normal" and standardize_outcome,
        "variable": variable,
        "n_missing": n_missing,
    }
    hashed = fr[["municipality", "indicator", "year", "group", "y", "x"] + (["n"] if "n" in fr else [])]
    return ModelData(
        frame=fr,
        likelihood=likelihood,
        municipalities=mun_labels,
        groups=np.asarray(groups).astype(str),
        indicators=sub["indicator"].values.astype(str),
        years=sub["year"].values.astype(int),
        municipality_group=mgroup,
        y_center=y_center,
        y_scale=y_scale,
        x_center=x_center,
        x_scale=x_scale,
        n_categories=ncat,
        n_missing=n_missing,
        spec=json.loads(json.dumps(spec, default=str)),
        data_hash=hash_frame(hashed),
    )
