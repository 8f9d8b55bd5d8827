"""Pointwise log-likelihood of the observed variables at every posterior draw.

The ``log_likelihood`` group that PSIS-LOO needs: one compiled log density, evaluated at each
draw. Unlike :func:`pymc.compute_log_likelihood`, which rebuilds the model without its value
transforms and so refuses models with custom initial values (the ordinal model's ordered
cutpoints), the log density here takes the natural-scale draws through each variable's forward
transform, so every model of the package has one. The tests compare it with PyMC's function where
that applies and with the model's own log density where it does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pymc as pm
import pytensor
import xarray as xr
from pytensor.graph.replace import graph_replace

from ojpanel.errors import ParameterError

__all__ = ["pointwise_log_likelihood"]


def pointwise_log_likelihood(
    posterior: xr.Dataset,
    model: pm.Model,
    *,
    var_names: list[str] | None = None,
    compile_kwargs: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Log density of each observed value at each posterior draw.

    Parameters
    ----------
    posterior
        Posterior draws with dims ``chain, draw`` and every free variable of ``model`` (values
        on their natural scale, as samplers store them).
    model
        The model the draws come from (or one of the same structure whose data containers hold
        other observations, e.g. held-out data).
    var_names
        Observed variables; default all.
    compile_kwargs
        Passed to :func:`pytensor.function` (e.g. ``{"mode": "NUMBA"}``).

    Returns
    -------
    xarray.Dataset
        One variable per observed variable, dims ``chain, draw`` and the variable's dims.

    Raises
    ------
    ParameterError
        When ``var_names`` names no observed variable of the model, or the posterior lacks one
        of the model's free variables.
    """
    observed = [rv for rv in model.observed_RVs if var_names is None or rv.name in var_names]
    free = list(model.free_RVs)
    unknown = sorted(set(var_names or ()) - {rv.name for rv in model.observed_RVs})
    missing = [rv.name for rv in free if rv.name not in posterior]
    if unknown or missing:
        raise ParameterError(
            (f"no observed variables {unknown} in the model; it has {[rv.name for rv in model.observed_RVs]}. "
             if unknown else "")
            + (f"the posterior lacks the model's free variables {missing}: pass the posterior of a fit of "
               "this model" if missing else ""))
    # the log density takes transformed values (e.g. log sigma); the draws are on the natural
    # scale, so each transformed value is written as the transform of a natural-scale input
    natural = [rv.type(name=rv.name) for rv in free]
    to_value = {}
    for rv, x in zip(free, natural, strict=True):
        tr = model.rvs_to_transforms.get(rv)
        to_value[model.rvs_to_values[rv]] = tr.forward(x, *rv.owner.inputs) if tr is not None else x
    outs = graph_replace(model.logp(vars=observed, sum=False), to_value, strict=False)
    fn = pytensor.function(natural, outs, on_unused_input="ignore", **(compile_kwargs or {}))

    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    n = n_chain * n_draw
    flat = [np.ascontiguousarray(posterior[rv.name].values.reshape(n, *posterior[rv.name].shape[2:]),
                                 dtype=x.type.dtype) for rv, x in zip(free, natural, strict=True)]
    arrays: list[np.ndarray] = []
    for i in range(n):
        res = fn(*(a[i] for a in flat))
        if i == 0:
            arrays = [np.empty((n, *np.shape(r)), dtype=np.asarray(r).dtype) for r in res]
        for k, r in enumerate(res):
            arrays[k][i] = r
    dims_of = model.named_vars_to_dims
    coords = {d: np.asarray(c) for d, c in model.coords.items() if c is not None}
    data_vars = {}
    for rv, flat_arr in zip(observed, arrays, strict=True):
        arr = flat_arr.reshape(n_chain, n_draw, *flat_arr.shape[1:])
        dims = ("chain", "draw", *dims_of.get(rv.name, [f"{rv.name}_dim_{i}" for i in range(arr.ndim - 2)]))
        data_vars[rv.name] = (dims, arr)
    var_coords = {d: coords[d] for dims, _ in data_vars.values() for d in dims[2:] if d in coords}
    return xr.Dataset(data_vars, coords={"chain": posterior["chain"].values, "draw": posterior["draw"].values,
                                         **var_coords})
