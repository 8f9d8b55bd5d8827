"""Fixed-effects panel regressions: one fit, many fits at once, and the linearmodels engine.

Three entry points, all returning linearmodels-style results objects
(:class:`~ojpanel.models.fe_results.FEResults` / :class:`~ojpanel.models.fe_results.BatchFEResults`):

* :func:`fit_panel` — one regression from a long frame (or a mapping of arrays):
  ``fit_panel(df, "y", ["x"], entity_effects=True, time_effects=True,
  other_effects=[("county", "year")], cov="clustered", cluster="county")``.
* :func:`fit_indicators` — the same specification for every indicator of a panel
  (``indicator × municipality × year`` DataArrays), in one vectorised pass.
* :func:`fit_batch` — the numerical core on stacked arrays, used by bootstraps, permutation tests
  and power simulations.

``engine="linearmodels"`` runs :class:`linearmodels.PanelOLS` instead (a loop, slower); the
vectorised engine reproduces it to 1e-8 in the coefficients and 1e-6 (relative) in the standard
errors under ``convention="linearmodels"`` (tested). Standard-error types and small-sample
conventions are described in :mod:`ojpanel.models.covariance`.

Effects are named by columns: ``"entity"`` and ``"time"`` switches use the ``entity`` and
``time`` columns; ``other_effects`` takes column names or tuples of names (interactions such as
``("county", "year")`` for county×year shocks). Clusters are a column name (``"county"``), a
two-tuple for two-way clustering (``("municipality", "year")``), or arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.errors import DataError, ModelError, ParameterError
from ojpanel.models.covariance import COVARIANCE, check_options
from ojpanel.models.fe_results import BatchFEResults, FEResults
from ojpanel.models.within import FitData, factorize, ols_batch, prepare_batch, refuse_infinite

__all__ = [
    "FitData",
    "prepare_batch",
    "fit_batch",
    "fit_panel",
    "fit_linearmodels",
    "fit_indicators",
    "panel_arrays",
    "column_codes",
    "check_unique_keys",
]

EffectSpec = str | tuple[str, ...]


def fit_batch(
    data: FitData,
    *,
    cov: str = "clustered",
    convention: str = "linearmodels",
    dependent: str = "y",
    min_obs: int = 1,
) -> BatchFEResults:
    """Estimate every member of prepared data (one vectorised pass).

    Raises
    ------
    ModelError
        If a member has fewer than ``min_obs`` observations, or collinear regressors.
    """
    check_options(cov, convention)
    nobs = data.mask.sum(1)
    small = np.flatnonzero(nobs < max(min_obs, data.X.shape[2] + 1))
    if small.size:
        raise ModelError(
            f"too few observations ({int(nobs[small[0]])}) in '{data.labels[small[0]]}'; "
            "drop that member or widen its sample"
        )
    fit = ols_batch(data.y, data.X, data.mask, names=data.names, labels=data.labels)
    return BatchFEResults.from_fit(data, fit, cov=cov, convention=convention, dependent=dependent)


# ------------------------------------------------------------------------------------------
# Frames and mappings of arrays
# ------------------------------------------------------------------------------------------


def column_codes(
    data: Mapping[str, Any] | pd.DataFrame, spec: EffectSpec | np.ndarray, n: int
) -> np.ndarray:
    """Integer codes of an effect or cluster variable: a column, a tuple of columns (their
    interaction, e.g. ``("county", "year")``) or an array of labels of length ``n``.

    Raises
    ------
    ParameterError
        For a missing column or an array of the wrong length.
    DataError
        When a label is missing (every observation needs one).
    """
    if isinstance(spec, np.ndarray | pd.Series | list):
        arr = np.asarray(spec)
        if len(arr) != n:
            raise ParameterError(
                f"an array given as effect/cluster has {len(arr)} rows; expected {n}"
            )
        return factorize(arr.astype(str) if arr.dtype == object else arr)
    names = (spec,) if isinstance(spec, str) else tuple(spec)
    missing = [c for c in names if c not in data]
    if missing:
        raise ParameterError(
            f"column(s) {missing} not found; available: {sorted(map(str, data.keys()))}"
        )
    parts = []
    for c in names:
        col = np.asarray(data[c])
        if pd.isna(col).any():
            raise DataError(
                f"column '{c}' has missing values; every observation needs an effect/cluster label"
            )
        parts.append(factorize(col.astype(str) if col.dtype == object else col))
    code = parts[0]
    for p in parts[1:]:
        code = code * (int(p.max()) + 1) + p
    return factorize(code)


def _effects(
    data: Mapping[str, Any] | pd.DataFrame,
    n: int,
    entity: str,
    time: str,
    entity_effects: bool,
    time_effects: bool,
    other_effects: Sequence[EffectSpec] | None,
) -> tuple[list[np.ndarray], list[str]]:
    specs: list[EffectSpec] = []
    if entity_effects:
        specs.append(entity)
    if time_effects:
        specs.append(time)
    specs += list(other_effects or [])
    codes = [column_codes(data, s, n) for s in specs]
    names = [s if isinstance(s, str) else "×".join(s) for s in specs]
    return codes, names


def _clusters(data, cluster, n: int, cov: str) -> list[np.ndarray]:
    need = COVARIANCE[cov].clusters
    if need == 0:
        return []
    if cluster is None:
        raise ParameterError(f"cov={cov!r} needs cluster=...; e.g. cluster='county'")
    if need == 2:
        if isinstance(cluster, str) or len(cluster) != 2:
            raise ParameterError(
                "cov='twoway' needs two cluster variables, e.g. ('municipality', 'year')"
            )
        return [column_codes(data, c, n) for c in cluster]
    if (
        isinstance(cluster, tuple | list)
        and not isinstance(cluster, str)
        and len(cluster) == 2
        and all(isinstance(c, str) for c in cluster)
    ):
        raise ParameterError("two cluster variables need cov='twoway'")
    return [column_codes(data, cluster, n)]


def _lookup(data: Mapping[str, Any] | pd.DataFrame, n: int):
    """Cluster variables by name for :meth:`FEResults.vcov` (the frame is kept by reference)."""
    return lambda spec: column_codes(data, spec, n)


def _numeric(data: Mapping[str, Any] | pd.DataFrame, col: str, role: str) -> np.ndarray:
    """A column as floats, or a clear error naming it (text, booleans as text, objects)."""
    raw = data[col]
    arr = np.asarray(raw)
    if arr.dtype.kind in "biuf":
        return arr.astype(float)
    try:
        out = pd.to_numeric(pd.Series(np.asarray(raw, dtype=object)), errors="raise")
    except (ValueError, TypeError):
        vals = pd.Series(np.asarray(raw, dtype=object))
        bad = vals[pd.to_numeric(vals, errors="coerce").isna() & vals.notna()]
        example = ", ".join(repr(v) for v in bad.unique()[:3])
        raise DataError(
            f"{role} '{col}' is not numeric ({bad.size} non-numeric value(s), e.g. {example}); "
            "convert it to numbers (codes or dummies) before fitting"
        ) from None
    return out.to_numpy(dtype=float, na_value=np.nan)


def check_unique_keys(data: Mapping[str, Any] | pd.DataFrame, keys: Sequence[str]) -> None:
    """Refuse data in which the key columns (e.g. municipality and year) repeat.

    Raises
    ------
    ParameterError
        For a key column that is not in the data.
    DataError
        Naming the repeated keys (at most ten) and how often each occurs.
    """
    missing = [k for k in keys if k not in data]
    if missing:
        raise ParameterError(f"key column(s) {missing} not found in the data")
    frame = pd.DataFrame({k: np.asarray(data[k]) for k in keys})
    dup = frame.duplicated(keep=False)
    if dup.any():
        counts = frame[dup].value_counts(sort=False)
        shown = "; ".join(
            f"({', '.join(map(str, key if isinstance(key, tuple) else (key,)))}) ×{int(c)}"
            for key, c in list(counts.items())[:10]
        )
        more = "" if len(counts) <= 10 else f" (and {len(counts) - 10} more)"
        raise DataError(
            f"{len(counts)} ({', '.join(keys)}) key(s) occur more than once: {shown}{more}. "
            "Each observation must appear once: aggregate or drop the duplicates, or name the "
            "columns that identify an observation with keys=..."
        )


def fit_panel(
    data: pd.DataFrame | Mapping[str, Any],
    y: str,
    x: str | Sequence[str],
    *,
    entity: str = "municipality",
    time: str = "year",
    entity_effects: bool = True,
    time_effects: bool = True,
    other_effects: Sequence[EffectSpec] | None = None,
    cov: str = "clustered",
    cluster: EffectSpec | np.ndarray | Sequence | None = "municipality",
    convention: str = "linearmodels",
    engine: str = "vectorised",
    label: str | None = None,
    keys: Sequence[str] | None = None,
) -> FEResults:
    """Fit one fixed-effects regression ``y ~ x + effects`` (the simple functional entry point).

    Parameters
    ----------
    data
        Long frame (or mapping of equal-length arrays) with the outcome, regressors, entity, time,
        effect and cluster columns. Rows with a missing outcome or regressor are dropped (and
        counted in ``nobs``); missing effect or cluster labels raise :class:`DataError`, and so
        do infinite values and non-numeric outcomes or regressors.
    y, x
        Outcome and regressor column names (no constant: it is absorbed by the effects; with no
        effects at all a column ``const`` must be supplied by the caller).
    entity, time
        Columns that identify municipality and year.
    entity_effects, time_effects
        Absorb entity (municipality) and time (year) effects.
    other_effects
        Further effects: column names or tuples of names for interactions (``("county", "year")``).
    cov
        ``"unadjusted"``, ``"robust"``, ``"clustered"``, ``"twoway"`` or ``"crv3"``.
    cluster
        Cluster column(s) or array(s); two for ``cov="twoway"``.
    convention
        Small-sample convention (:mod:`ojpanel.models.covariance`).
    engine
        ``"vectorised"`` (ojpanel's core) or ``"linearmodels"`` (:class:`linearmodels.PanelOLS`).
    label
        Label stored on the result (e.g. the indicator id).
    keys
        Columns that identify one observation; default ``(entity, time)``. Repeated keys raise
        :class:`DataError` naming them (e.g. a municipality-year that appears twice).

    Returns
    -------
    FEResults
    """
    check_options(cov, convention)
    xs = [x] if isinstance(x, str) else list(x)
    missing = [c for c in [y, *xs] if c not in data]
    if missing:
        raise ParameterError(f"column(s) {missing} not found in the data")
    check_unique_keys(data, list(keys) if keys is not None else [entity, time])
    yv = _numeric(data, y, "the outcome")
    Xv = np.column_stack([_numeric(data, c, "regressor") for c in xs])
    if engine == "linearmodels":
        return fit_linearmodels(
            data,
            y,
            xs,
            entity=entity,
            time=time,
            entity_effects=entity_effects,
            time_effects=time_effects,
            other_effects=other_effects,
            cov=cov,
            cluster=cluster,
            convention=convention,
            label=label,
        )
    if engine != "vectorised":
        raise ParameterError(f"engine must be 'vectorised' or 'linearmodels'; got {engine!r}")
    n = len(yv)
    factors, fnames = _effects(data, n, entity, time, entity_effects, time_effects, other_effects)
    clusters = _clusters(data, cluster, n, cov)
    ent = column_codes(data, entity, n)
    fd = prepare_batch(
        yv[None],
        Xv,
        factors=factors,
        clusters=clusters,
        entity=ent,
        names=xs,
        labels=[label or y],
        effects=fnames,
        columns=_lookup(data, n),
    )
    res = fit_batch(fd, cov=cov, convention=convention, dependent=y)
    return res[label or y]


def fit_linearmodels(
    data: pd.DataFrame | Mapping[str, Any],
    y: str,
    x: str | Sequence[str],
    *,
    entity: str = "municipality",
    time: str = "year",
    entity_effects: bool = True,
    time_effects: bool = True,
    other_effects: Sequence[EffectSpec] | None = None,
    cov: str = "clustered",
    cluster: EffectSpec | Sequence | None = "municipality",
    convention: str = "linearmodels",
    label: str | None = None,
) -> FEResults:
    """Fit with :class:`linearmodels.PanelOLS` and wrap the result as :class:`FEResults`.

    Only ``convention="linearmodels"`` exists in linearmodels (``debiased=True``); ``cov="crv3"``
    is not available there. The result cannot recompute its covariance (:meth:`FEResults.vcov`).
    """
    from linearmodels import PanelOLS

    if convention != "linearmodels":
        raise ParameterError(
            "engine='linearmodels' reproduces convention='linearmodels' only; use "
            "engine='vectorised' for the other conventions"
        )
    if cov == "crv3":
        raise ParameterError("linearmodels has no CRV3; use engine='vectorised'")
    xs = [x] if isinstance(x, str) else list(x)
    frame = pd.DataFrame({c: np.asarray(data[c]) for c in dict.fromkeys([entity, time, y, *xs])})
    n = len(frame)
    oe = None
    other_names: list[str] = []
    if other_effects:
        oe = pd.DataFrame({f"oe{i}": column_codes(data, s, n) for i, s in enumerate(other_effects)})
        other_names = [s if isinstance(s, str) else "×".join(s) for s in other_effects]
    cl = _clusters(data, cluster, n, cov)
    n_eff = int(entity_effects) + int(time_effects) + len(other_effects or [])
    if n_eff > 2:
        raise ParameterError(
            "linearmodels.PanelOLS absorbs at most two effects; use engine='vectorised' (e.g. for "
            "entity + year + county×year, where year is redundant given county×year)"
        )
    frame = frame.set_index([entity, time])
    keep = frame[[y, *xs]].notna().all(axis=1).to_numpy()
    # drop incomplete rows here so that PanelOLS does not warn about them
    frame = frame[keep]
    if oe is not None:
        oe = oe[keep]
        oe.index = frame.index
    cl = [c[keep] for c in cl]
    mod = PanelOLS(
        frame[y],
        frame[xs],
        entity_effects=entity_effects,
        time_effects=time_effects,
        other_effects=oe,
        check_rank=True,
    )
    kw: dict[str, Any] = {}
    if cl:
        kw["clusters"] = pd.DataFrame({f"c{i}": c for i, c in enumerate(cl)}, index=frame.index)
    # PanelOLS names two-way clustering "clustered" with two cluster columns
    res = mod.fit(cov_type="clustered" if cl else cov, **kw)
    names = list(res.params.index)
    nclu = int(min(np.unique(c).size for c in cl)) if cl else None
    effects = ([entity] if entity_effects else []) + ([time] if time_effects else []) + other_names
    return FEResults(
        params=res.params.values,
        cov=res.cov.values,
        names=names,
        df_resid=float(res.df_resid),
        nobs=int(res.nobs),
        n_entities=int(res.entity_info["total"]),
        n_clusters=nclu,
        cov_type=cov,
        convention=convention,
        effects=effects,
        dependent=y,
        label=label,
        engine="linearmodels",
    )


# ------------------------------------------------------------------------------------------
# Panel Datasets (indicator × municipality × year)
# ------------------------------------------------------------------------------------------


def _as_da(ds: xr.Dataset | None, v: xr.DataArray | str) -> xr.DataArray:
    if isinstance(v, xr.DataArray):
        return v
    if ds is None or v not in ds:
        raise ParameterError(f"variable {v!r} is not in the panel")
    return ds[v]


def _check_array(da: xr.DataArray, name: str) -> None:
    """Numeric values and no repeated coordinate labels (a municipality or year twice)."""
    if da.dtype.kind not in "biuf":
        raise DataError(
            f"{name} is not numeric (dtype {da.dtype}); convert it to numbers before fitting"
        )
    for d in da.dims:
        if d in da.indexes:
            idx = da.indexes[d]
            if idx.has_duplicates:
                dup = sorted(map(str, idx[idx.duplicated()].unique()))
                raise DataError(
                    f"{name} has repeated '{d}' labels: {dup[:10]}; each "
                    f"{d} must appear once (aggregate or drop the duplicates first)"
                )


def panel_arrays(
    outcome: xr.DataArray,
    regressors: Mapping[str, xr.DataArray],
) -> tuple[np.ndarray, np.ndarray, list[str], pd.DataFrame]:
    """Flatten ``indicator × municipality × year`` arrays into stacked regression arrays.

    Returns
    -------
    y : ``(B, n)``; X : ``(B, n, k)``; labels : indicator ids; rows : frame of the ``n`` rows with
    ``municipality``, ``year`` and every municipality coordinate (county, kommungrupp, …).
    """
    for d in ("municipality", "year"):
        if d not in outcome.dims:
            raise DataError(f"the outcome needs a '{d}' dimension; it has {outcome.dims}")
    for name, da in {"the outcome": outcome, **{f"regressor '{k}'": r for k, r in regressors.items()}}.items():
        _check_array(da, name)
    if "indicator" not in outcome.dims:
        outcome = outcome.expand_dims(indicator=[str(outcome.name or "y")])
    outcome = outcome.transpose("indicator", "municipality", "year")
    xs = [
        xr.broadcast(r, outcome)[0].transpose("indicator", "municipality", "year")
        for r in regressors.values()
    ]
    B = outcome.sizes["indicator"]
    y = outcome.values.reshape(B, -1)
    X = (
        np.stack([r.values.reshape(B, -1) for r in xs], axis=2)
        if xs
        else np.zeros((B, y.shape[1], 0))
    )
    mun = np.asarray(outcome["municipality"].values)
    yrs = np.asarray(outcome["year"].values)
    rows = pd.DataFrame({"municipality": np.repeat(mun, len(yrs)), "year": np.tile(yrs, len(mun))})
    for c, co in outcome.coords.items():
        if co.dims == ("municipality",) and c != "municipality":
            rows[c] = np.repeat(np.asarray(co.values), len(yrs))
    return y, X, [str(i) for i in outcome["indicator"].values], rows


def fit_indicators(
    outcome: xr.DataArray | str,
    regressors: Mapping[str, xr.DataArray | str],
    *,
    panel: xr.Dataset | None = None,
    entity_effects: bool = True,
    time_effects: bool = True,
    other_effects: Sequence[EffectSpec] | None = None,
    cov: str = "clustered",
    cluster: EffectSpec | None = "municipality",
    convention: str = "linearmodels",
    engine: str = "vectorised",
    dependent: str | None = None,
) -> BatchFEResults:
    """Fit the same regression for every indicator of a panel.

    Parameters
    ----------
    outcome
        DataArray with dims ``indicator``, ``municipality``, ``year`` (or a variable of
        ``panel``); municipality coordinates (``county``, ``kommungrupp_2017``, …) are available as
        effects and clusters.
    regressors
        Mapping name → DataArray broadcastable to the outcome (e.g. a peer mean, an own lag).
    other_effects, cluster
        Names of municipality coordinates or ``"year"``/``"municipality"``, or tuples of them.
    engine
        ``"vectorised"`` (one pass over all indicators) or ``"linearmodels"`` (a PanelOLS loop).

    Returns
    -------
    BatchFEResults
        One fit per indicator, labelled by indicator id.
    """
    check_options(cov, convention)
    out = _as_da(panel, outcome)
    regs = {k: _as_da(panel, v) for k, v in regressors.items()}
    y, X, labels, rows = panel_arrays(out, regs)
    names = list(regs)
    dep = dependent or str(out.name or "y")
    refuse_infinite(y, X, names, labels)
    if engine == "linearmodels":
        fits = []
        for b, lab in enumerate(labels):
            frame = rows.copy()
            frame[dep] = y[b]
            for j, nm in enumerate(names):
                frame[nm] = X[b, :, j]
            frame = frame.dropna(subset=[dep, *names])
            fits.append(
                fit_linearmodels(
                    frame,
                    dep,
                    names,
                    entity_effects=entity_effects,
                    time_effects=time_effects,
                    other_effects=other_effects,
                    cov=cov,
                    cluster=cluster,
                    convention=convention,
                    label=lab,
                )
            )
        return BatchFEResults(
            labels=labels,
            names=names,
            params=np.stack([f.params.values for f in fits]),
            cov=np.stack([f.cov.values for f in fits]),
            df_resid=np.array([f.df_resid for f in fits]),
            nobs=np.array([f.nobs for f in fits]),
            n_entities=np.array([f.n_entities for f in fits]),
            n_clusters=None
            if fits[0].n_clusters is None
            else np.array([f.n_clusters for f in fits]),
            cov_type=cov,
            convention=convention,
            effects=fits[0].effects,
            dependent=dep,
        )
    if engine != "vectorised":
        raise ParameterError(f"engine must be 'vectorised' or 'linearmodels'; got {engine!r}")
    n = len(rows)
    factors, fnames = _effects(
        rows, n, "municipality", "year", entity_effects, time_effects, other_effects
    )
    clusters = _clusters(rows, cluster, n, cov)
    fd = prepare_batch(
        y,
        X,
        factors=factors,
        clusters=clusters,
        entity=column_codes(rows, "municipality", n),
        names=names,
        labels=labels,
        effects=fnames,
        columns=_lookup(rows, n),
    )
    return fit_batch(fd, cov=cov, convention=convention, dependent=dep)
