"""Benchmark: wild cluster bootstrap over one area's peer regressions, and power replications.

Anchors (issue 5): 9,999 wild-bootstrap draws over one area's peer regressions ≤ 60 s;
1,000 power replications of one design ≤ 60 s.

    .venv/bin/python benchmarks/bench_inference.py
"""

from __future__ import annotations

import time

from ojpanel.designs.peer import peer_frame
from ojpanel.designs.power import power
from ojpanel.inference import romano_wolf, wild_bootstrap_tstats
from ojpanel.models.fe import column_codes, panel_arrays
from ojpanel.simulate.panel import simulate_panel

ANCHOR_S = 60.0


def main() -> None:
    # one area: 40 indicators, the real 290 municipalities (synthetic outcomes), 2016–2020
    ds = simulate_panel(
        layout="real",
        years=range(2016, 2021),
        n_indicators=40,
        rho=0.4,
        sigma_county_year=0.3,
        missing=0.05,
        seed=2,
    )
    f = peer_frame(ds, group="kommungrupp_2017", lag=1, outcome="ancova")
    y, X, labels, rows = panel_arrays(f["y"], {"peer": f["peer"], "own_lag": f["own_lag"]})
    n = len(rows)
    cells = column_codes(rows, ("county", "year"), n)
    county = column_codes(rows, "county", n)
    t0 = time.perf_counter()
    t_obs, t_boot, p = wild_bootstrap_tstats(
        y, X, county, factors=[cells], term=0, n_draws=9999, weights="webb", seed=1
    )
    rw = romano_wolf(t_obs, t_boot)
    t_wb = time.perf_counter() - t0
    print("Wild cluster bootstrap (WCR, Webb, 21 county clusters), 40 ANCOVA peer regressions")
    print(
        f"  9,999 draws + Romano–Wolf: {t_wb:7.2f} s   anchor ≤ {ANCHOR_S:.0f} s   ratio {t_wb / ANCHOR_S:.3f}"
    )
    print(f"  smallest bootstrap p = {p.min():.4f}, smallest Romano–Wolf p = {rw.min():.4f}")

    one = ds.isel(indicator=[0])
    for design in ("users", "peer"):
        t0 = time.perf_counter()
        # exactly 1,000 replications: without the size adjustment no null panels are added
        res = power(one, design=design, effects=[0.2], n_sims=1000, seed=3, size_adjusted=False)
        dt = time.perf_counter() - t0
        print(
            f"Power, design '{design}': 1,000 replications {dt:7.2f} s   anchor ≤ {ANCHOR_S:.0f} s   "
            f"ratio {dt / ANCHOR_S:.3f}   (power {res.table['power'].iloc[0]:.3f})"
        )


if __name__ == "__main__":
    main()
