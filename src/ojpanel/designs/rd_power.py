"""Power and minimum detectable effect of the colour-threshold regression discontinuity.

The simulation keeps the panel's real structure: each replication resamples municipalities with
replacement (all their indicator-years together, as the clusters of the RD's standard errors),
takes the real running variable and next-year changes with the estimated real jump removed, plants
a jump of the given size at the cut-off, and re-estimates with the real data's bandwidth. The
analytic counterpart is ``(z_{1-α/2} + z_{power}) · SE`` of the jump on the real data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from ojpanel.core.parallel import chunk_sizes, map_seeded
from ojpanel.designs.power import PowerResult, VarianceComponents, interpolate_mde
from ojpanel.designs.rd import RDDesign, local_linear_jump, rd_jump
from ojpanel.errors import DataError, ParameterError
from ojpanel.progress import progress as report_progress

__all__ = ["rd_power"]


def _rd_chunk(size: int, rng: np.random.Generator, r: np.ndarray, y0: np.ndarray, muni: np.ndarray,
              cutoff: float, h: float, effects: np.ndarray, alpha: float, cluster: bool) -> np.ndarray:
    # rows of each municipality, so a resample keeps a municipality's indicator-years together
    codes, uniq = pd.factorize(muni)
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(len(uniq)))
    ends = np.append(starts[1:], len(order))
    hits = np.zeros(len(effects))
    for _ in range(size):
        draw = rng.integers(0, len(uniq), size=len(uniq))
        rows = np.concatenate([order[starts[d]:ends[d]] for d in draw])
        cl = np.repeat(np.arange(len(draw)), ends[draw] - starts[draw])
        # a planted jump shifts the estimate by its size and leaves the SE (local_linear_jump)
        est, se = local_linear_jump(r[rows], y0[rows], cutoff, h, cl if cluster else None)
        hits += 2 * stats.norm.sf(np.abs(est + effects) / se) < alpha
    return hits


def rd_power(
    ds: xr.Dataset | xr.DataArray,
    *,
    cutoff: float = 0.25,
    indicators: Sequence[str] | None = None,
    effects: Sequence[float] | None = None,
    n_sims: int = 200,
    alpha: float = 0.05,
    target_power: float = 0.8,
    bandwidth: float | None = None,
    design: RDDesign | None = None,
    seed: int = 0,
    chunk_size: int = 50,
    client: Any | None = None,
) -> PowerResult:
    """Simulated power of the colour-threshold RD at one cut-off, on the panel's real structure.

    Parameters
    ----------
    ds
        OJ panel of result indicators (as for :func:`ojpanel.designs.rd.colour_rd`).
    cutoff
        Percentile-rank cut-off (0.25: red; 0.75: green).
    effects
        Jumps to try, in the outcome's units (standardised next-year change); default a grid up
        to twice the analytic MDE.
    n_sims
        Replications per effect (the same resamples are used for every effect).
    bandwidth
        Fixed bandwidth (capped like ``colour_rd``'s); default the design's.
    design
        The :class:`~ojpanel.designs.rd.RDDesign` whose test is simulated (thresholds, so the
        bandwidth cap, bandwidth choice and clusters); default ``RDDesign()``, the design
        ``colour_rd`` runs by default. The MDE then belongs to the jump ``colour_rd`` reports.
    client
        Optional dask client; results equal the serial run for the same seed.

    Returns
    -------
    PowerResult
        ``design="colour_rd"``; ``analytic`` is the closed-form MDE from the real-data SE.
    """
    if not 0 < cutoff < 1:
        raise ParameterError(f"cutoff must be a percentile rank in (0, 1); got {cutoff}")
    d = design if design is not None else RDDesign()
    if bandwidth is not None:
        d = d.but(bandwidth=bandwidth)
    frame = d.data(ds, indicators)
    if frame.empty:
        raise DataError("no indicator-year pair has both a colour rank and a next-year change; the "
                        "colour RD needs result indicators with a direction and consecutive years")
    r, y = frame["rank"].to_numpy(), frame["change"].to_numpy()
    muni = frame["municipality"].to_numpy()
    cl = d.clusters(frame)
    bws = d.bandwidths(r, y, cutoff, cl)
    h, b = bws["h_mse"], bws["b_mse"]
    # the real jump and its SE as colour_rd reports them (rdrobust); replications use the
    # equivalent local linear fit at h (same estimate; SEs within a few per cent, see rd.py)
    real = rd_jump(r, y, cutoff, h, b, cl)
    # remove the real jump: the null is "no discontinuity" whatever the data show
    y0 = y - real["estimate"] * (r - cutoff >= 0)
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target_power)
    analytic = float(z * real["std_error"])
    grid = np.asarray(effects if effects is not None else analytic * np.linspace(0, 2, 9), dtype=float)
    if grid.size == 0:
        raise ParameterError("effects is empty")
    with report_progress("power (colour RD)", total=int(n_sims)) as bar:
        hits = np.sum(map_seeded(_rd_chunk, chunk_sizes(n_sims, chunk_size), seed, client=client,
                                 args=(r, y0, muni, cutoff, h, grid, alpha, d.cluster != "none"), progress=bar.advance),
                      axis=0)
    powers = hits / n_sims
    table = pd.DataFrame({"effect": grid, "power": powers,
                          "mc_se": np.sqrt(powers * (1 - powers) / n_sims), "n_sims": n_sims})
    sd = float(np.std(y, ddof=1))
    comps = VarianceComponents(mean=float(np.mean(y)), sd_municipality=float("nan"), sd_year=float("nan"),
                               sd_county_year=float("nan"), sd_residual=sd, rho=float("nan"),
                               sd_innovation=sd, n_obs=int(len(y)))
    return PowerResult(design="colour_rd", indicator="all result indicators (pooled)" if indicators is None
                       else ",".join(indicators),
                       alpha=alpha, n_sims=n_sims, table=table, components=comps, target_power=target_power,
                       mde=interpolate_mde(table, target_power), analytic=analytic,
                       settings={"cutoff": cutoff, "bandwidth": h, "cluster": d.cluster,
                                 "thresholds": list(d.thresholds), "real_jump": real["estimate"],
                                 "real_se": real["std_error"], "seed": seed})
