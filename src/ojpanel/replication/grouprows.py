"""The audit's combined rows ("Intern samordning", "Extern samverkan") as panel indicators.

The appendix reports internal coordination and external cooperation as one row each, although
Table 1 lists several partners under each. It does not say how it combined them. We build the
row as the mean of its items for each municipality and year, over the items with a value: the
share of the listed partners with a routine (a choice, stated in the replication's choices).
Which items make a row is in ``data/rir2021/published/groups.csv``.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from ojpanel.replication.published import Published, load_published, our_ids

__all__ = ["GROUP_RULE", "add_group_rows"]

#: How a combined row is built (repeated in the replication's choices).
GROUP_RULE = (
    "Rows that combine several items (Intern samordning; Extern samverkan for ekonomiskt bistånd "
    "and barn och unga) are the mean of the items with a value in that municipality and year (the "
    "share of the listed partners with a routine); the audit does not say how it combined them. "
    "A row is built only when the panel holds every item."
)


def _group_name(component: str) -> str:
    from ojpanel.indicators.spec import load_spec

    spec = load_spec()
    return spec[component].group if component in {v.id for v in spec.variables} else ""


def add_group_rows(panel: xr.Dataset, published: Published | None = None) -> tuple[xr.Dataset, list[str]]:
    """Add the audit's combined rows to a panel as indicators (ids from ``groups.csv``).

    Parameters
    ----------
    panel
        An OJ panel holding the items (harmonised variable ids, or the KPI of single-KPI items).
    published
        The transcribed tables (default: the embedded copy).

    Returns
    -------
    (xarray.Dataset, list of str)
        The panel with one indicator per combined row whose items it holds (coordinates
        ``title``, ``area``, ``kind``, ``scale``, ``direction``, ``source`` and the audit group in
        ``indicator_group``), and one message per row left out because items are missing.
    """
    pub = published or load_published()
    have = set(panel["indicator"].values.astype(str))
    built: list[tuple[str, str, str, list[str], xr.DataArray]] = []
    messages: list[str] = []
    for g in pub.groups.itertuples(index=False):
        if g.group in have:
            continue
        ids, lacking = [], []
        for comp in g.components.split(";"):
            found = next((x for x in our_ids(comp) if x in have), None)
            (ids if found else lacking).append(found or comp)
        if lacking:
            if ids:  # the panel holds this area's items, but not all of them
                messages.append(
                    f"combined row '{g.row}' ({g.area}) was not built: the panel lacks item(s) {', '.join(lacking)}"
                )
            continue
        with warnings.catch_warnings():
            # A municipality-year without any item is missing; numpy warns about the empty mean.
            warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
            mean = panel["value"].sel(indicator=ids).mean("indicator", skipna=True)
        built.append((g.group, g.row, _group_name(g.components.split(";")[0]), ids, mean))
    if not built:
        return panel, messages
    new_ids = [b[0] for b in built]
    out = panel.reindex(indicator=[*panel["indicator"].values.astype(str), *new_ids])
    for gid, _, _, _, mean in built:
        out["value"].loc[{"indicator": gid}] = mean.transpose(*[d for d in out["value"].dims if d != "indicator"])
    gcol = "rir_group" if ("rir_group" in panel.coords and "indicator_group" not in panel.coords) else "indicator_group"
    coords = [c for c in out.coords if out[c].dims == ("indicator",) and c != "indicator"]
    if gcol not in coords:
        out = out.assign_coords({gcol: ("indicator", np.array([""] * out.sizes["indicator"], dtype=object))})
        coords.append(gcol)
    pos = {i: k for k, i in enumerate(out["indicator"].values.astype(str))}
    for c in coords:
        arr = np.array(out[c].values, dtype=object)
        for gid, row, group, ids, _ in built:
            first = arr[pos[ids[0]]]
            fixed = {
                "title": f"{row} (mean of {len(ids)} items: {', '.join(ids)})",
                "kind": "structure", "scale": "mean", "direction": 1, "source": "kommunenkät",
                gcol: group,
            }
            arr[pos[gid]] = fixed.get(c, first)
        if c == "direction":
            arr = arr.astype(int)
        elif all(isinstance(v, str) for v in arr):
            arr = arr.astype(str).astype(object)
        out = out.assign_coords({c: ("indicator", arr)})
    return out, messages
