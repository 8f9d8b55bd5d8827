"""Benchmark: RiR 2021:17 replication (faithful + improved) on the embedded panel.

Anchor (issue 4): the whole faithful + improved replication in <= 60 s on 2 cores. Prints the
number of regressions and ANOVAs, the seconds taken (panel build reported separately) and the
ratio to the anchor.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

ANCHOR_SECONDS = 60.0


def main() -> None:
    import ojpanel
    from ojpanel.replication import rir2021

    t0 = time.perf_counter()
    panel = ojpanel.build_panel()
    t_build = time.perf_counter() - t0
    t1 = time.perf_counter()
    rep = rir2021(panel, mode="both")
    t_rep = time.perf_counter() - t1
    print(f"panel build (embedded data): {t_build:.2f} s ({panel.sizes['indicator']} indicators)")
    print(f"audit indicators matched: {len(rep.indicators)}")
    print(f"regressions: {rep.n_regressions}; ANOVAs: {rep.n_anovas}; rendered tables: {len(rep.rendered)}")
    print(f"replication faithful + improved: {t_rep:.2f} s")
    print(f"ratio to the {ANCHOR_SECONDS:.0f} s anchor: {t_rep / ANCHOR_SECONDS:.3f} (<= 1 meets the anchor)")
    total = t_build + t_rep
    print(f"including the panel build: {total:.2f} s, ratio {total / ANCHOR_SECONDS:.3f}")

    # A full-size harmonised panel (every checklist variable of the audit, simulated and labelled
    # synthetic), with an OJ-users file and a third peer grouping: the workload of a real run.
    import numpy as np
    import pandas as pd

    from ojpanel.indicators.harmonise import harmonise
    from ojpanel.panel import from_harmonised
    from ojpanel.simulate.checklist import simulate_checklist

    raw, _ = simulate_checklist(seed=0, peer_effect=1.0)
    syn = from_harmonised(harmonise(raw))
    rng = np.random.default_rng(0)
    munis = syn["municipality"].values.astype(str)
    users = pd.DataFrame(
        [(m, a, s) for a in ("äldreomsorg", "ekonomiskt bistånd", "barn och unga")
         for m, s in zip(munis, rng.choice(["user", "non_user", "other"], len(munis)), strict=True)],
        columns=["municipality", "area", "status"],
    )
    socio = dict(zip(munis, rng.choice(list("ABCDEFG"), len(munis)), strict=True))
    t2 = time.perf_counter()
    rep2 = rir2021(syn, oj_users=users, mode="both", groupings={"socioeconomic": socio})
    t_syn = time.perf_counter() - t2
    print(
        f"synthetic full-size harmonised panel ({len(rep2.indicators)} variables, OJ users, 3 peer "
        f"groupings): {rep2.n_regressions} regressions, {rep2.n_anovas} ANOVAs in {t_syn:.2f} s, "
        f"ratio {t_syn / ANCHOR_SECONDS:.3f}"
    )


if __name__ == "__main__":
    main()
