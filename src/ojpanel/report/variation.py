"""How much of the variation between municipalities lies between peer groups (eta squared)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ojpanel.errors import ParameterError

__all__ = ["between_group_share"]


def between_group_share(ds: xr.Dataset, group: str, *, var: str = "value", min_n: int = 10) -> pd.DataFrame:
    """Share of the cross-municipality variance that lies between groups, per indicator × year.

    ``eta2 = SS_between / SS_total`` over municipalities with a value and a group label; the
    one-way ANOVA F statistic and the group count are returned with it. Cells with fewer than
    ``min_n`` municipalities or fewer than two groups are left out (listed nowhere else: the
    returned frame has one row per analysable cell, with ``n`` and ``groups``).

    Returns
    -------
    pandas.DataFrame
        ``indicator, year, n, groups, eta2, f_stat``.
    """
    if group not in ds.oj.groupings:
        raise ParameterError(f"unknown grouping {group!r}; available: {ds.oj.groupings}")
    labels = pd.Series(ds[group].values.astype(str))
    has_group = (labels != "").to_numpy()
    codes = pd.factorize(labels)[0]
    v = ds[var].transpose("municipality", "indicator", "year").values
    rows = []
    for i, ind in enumerate(ds["indicator"].values):
        for j, yr in enumerate(ds["year"].values):
            x = v[:, i, j]
            ok = ~np.isnan(x) & has_group
            n = int(ok.sum())
            if n < min_n:
                continue
            g = codes[ok]
            k = len(np.unique(g))
            if k < 2 or n - k < 1:
                continue
            xs = x[ok]
            grand = xs.mean()
            sums = np.bincount(g, xs)
            cnt = np.bincount(g)
            present = cnt > 0
            ss_between = float(np.sum(cnt[present] * (sums[present] / cnt[present] - grand) ** 2))
            ss_total = float(np.sum((xs - grand) ** 2))
            if ss_total == 0:
                continue
            ss_within = ss_total - ss_between
            f_stat = (ss_between / (k - 1)) / (ss_within / (n - k)) if ss_within > 0 else np.inf
            rows.append((str(ind), int(yr), n, k, ss_between / ss_total, f_stat))
    return pd.DataFrame(rows, columns=["indicator", "year", "n", "groups", "eta2", "f_stat"])
