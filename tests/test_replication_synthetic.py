"""End to end: simulated checklist items -> harmoniser -> panel -> RiR 2021:17 replication.

Three variables get a planted peer effect (adoption depends on the lagged leave-one-out county
mean); three others are simulated with no peer effect. Neither has county effects or trends, so
any association of the null variables with their peers is noise. The audit's faithful cell (own
level at t on the peers' top-quartile flag at t-1, county peers, all municipalities) must show the
planted effect as ``++`` and mostly not for the null variables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ojpanel.indicators.harmonise import harmonise
from ojpanel.panel import from_harmonised
from ojpanel.replication import rir2021, write_rir2021
from ojpanel.simulate.checklist import simulate_checklist

PLANTED = ["bou_manual_foraldrastod", "bou_samverkan_skola", "eb_samord_missbruk"]
NULL = ["bou_manual_stodgrupp", "bou_samverkan_polisen", "eb_samord_barn"]
# No county effects, no trends and similar base rates: the planted effect is the only peer link
# and items do not saturate at 0 or 1.
PROCESS = dict(sigma_county=0.0, trend=0.0, sd_trend=0.0, sd_variable=0.3)


def synthetic_panel(seed: int):
    planted, _ = simulate_checklist(seed=seed, peer_effect=4.0, variables=PLANTED, **PROCESS)
    null, _ = simulate_checklist(seed=seed + 100, peer_effect=0.0, variables=NULL, **PROCESS)
    raw = pd.concat([planted, null], ignore_index=True)
    # concat keeps attrs only when they agree; both parts are simulated, so say so again.
    raw.attrs = {"synthetic": 1, "title": planted.attrs.get("title", "synthetic")}
    return from_harmonised(harmonise(raw))


def random_users(panel, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    munis = panel["municipality"].values.astype(str)
    rows = []
    for area in ("ekonomiskt bistånd", "barn och unga"):
        status = rng.choice(["user", "non_user", "other"], size=len(munis), p=[0.6, 0.25, 0.15])
        rows += [(m, area, s) for m, s in zip(munis, status, strict=True)]
    return pd.DataFrame(rows, columns=["municipality", "area", "status"])


def _cells(d, indicators, mode="faithful", term="peer_top_quartile"):
    sel = d[
        (d["peer_group"] == "county") & (d["outcome"] == "level") & (d["sample"] == "all")
        & (d["lag"] == 1) & (d["mode"] == mode) & (d["term"] == term)
    ]
    return sel.set_index("indicator").loc[indicators]


@pytest.mark.slow
def test_planted_peer_effect_shows_and_null_mostly_not(smoke):
    seeds = [0] if smoke else [0, 1, 2]
    null_positive = 0
    for seed in seeds:
        panel = synthetic_panel(seed)
        rep = rir2021(panel, oj_users=random_users(panel, seed), mode="both")
        d = rep.tables["D"]
        planted = _cells(d, PLANTED)
        assert (planted["stars"] == "++").all(), planted[["estimate", "p_value", "stars"]]
        # The improved design (year effects, county clusters, continuous peer mean) agrees.
        cont = _cells(d, PLANTED, mode="improved", term="peer_mean")
        assert (cont["estimate"] > 0).all()
        assert (cont["stars"] == "++").sum() >= 2
        null = _cells(d, NULL)
        null_positive += int(null["stars"].isin(["+", "++"]).sum())
        assert rep.settings["synthetic"] is True
        assert "SYNTHETIC DATA" in rep.summary
        # B ran on the random users file; users were assigned at random, so mostly no effect.
        b = rep.tables["B"]
        assert not b.empty and set(b["area"]) == {"ekonomiskt bistånd", "barn och unga"}
        assert (b[b["mode"] == "faithful"]["stars"] == "").mean() >= 0.6
    assert null_positive <= len(seeds)  # at most one false positive per seed among 3 null cells


def test_end_to_end_outputs_on_synthetic_panel(tmp_path):
    panel = synthetic_panel(5)
    users = random_users(panel, 5)
    users_path = tmp_path / "users.csv"
    users.to_csv(users_path, index=False)
    rep = write_rir2021(panel, tmp_path / "out", oj_users=users_path, mode="improved")
    assert set(rep.tables["D"]["mode"]) == {"improved"}
    names = {p.stem for p in (tmp_path / "out" / "tables").glob("*.md")}
    assert {"D_barn-och-unga_county_improved", "C_ekonomiskt-bistand_improved", "B_barn-och-unga_improved"} <= names
    tex = (tmp_path / "out" / "tables" / "D_barn-och-unga_county_improved.tex").read_text(encoding="utf-8")
    assert "SYNTHETIC DATA" in tex
    # Harmonised variable ids are mapped to the audit's groups through the spec.
    groups = dict(zip(rep.indicators["indicator"], rep.indicators["indicator_group"], strict=True))
    assert groups["bou_manual_foraldrastod"] == "Manualbaserade insatser"
    assert groups["eb_samord_missbruk"] == "Aktuell rutin för intern samordning"
