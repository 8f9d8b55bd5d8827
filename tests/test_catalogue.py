"""Indicator metadata: declarative rules, explicit overrides, nothing guessed silently."""

from __future__ import annotations

import pandas as pd
import pytest

from ojpanel.errors import DataError
from ojpanel.indicators.catalogue import (
    AREAS,
    KINDS,
    SCALES,
    SOURCE_TYPES,
    clean_title,
    derive_metadata,
    load_catalogue,
    load_overrides,
    load_rules,
)


def _derive(title, source="", overrides=None):
    cat = pd.DataFrame({"id": ["X1"], "title": [title], "operating_area": [""], "source": [source]})
    return derive_metadata(cat, overrides=overrides or {}).iloc[0]


@pytest.mark.parametrize(
    "title,source,expected",
    [
        ("Aktuell rutin för samordning mellan äldreomsorg och missbruk, (Ja=1, Nej=0)",
         "Socialstyrelsens kommunenkät ÖJ socialtjänst.",
         ("äldreomsorg", "structure", "binary", 1, "kommunenkät")),
        ("Brukarbedömning hemtjänst äldreomsorg - väntetid, andel (%)",
         "Undersökningen av äldres uppfattning om kvaliteten i hemtjänst och äldreboenden, Socialstyrelsen.",
         ("äldreomsorg", "result", "share", -1, "brukarundersökning")),
        ("Kostnad äldreomsorg, kr/inv 65+", "SCB.", ("äldreomsorg", "background", "rate", 0, "register")),
        ("Ej återaktualiserade ungdomar 13-20 år ett år efter avslutad insats, andel (%)", "Socialstyrelsen",
         ("övergripande", "result", "share", 1, "register")),
        ("Vuxna biståndsmottagare med långvarigt ekonomiskt bistånd, andel (%)", "Socialstyrelsens individstatistik.",
         ("ekonomiskt bistånd", "result", "share", -1, "register")),
        ("Daglig verksamhet LSS, brukarbedömning - trivs alltid, andel (%)", "SKR:s undersökning om brukares "
         "uppfattning av kvalitet inom verksamheter för personer med funktionsnedsättning.",
         ("LSS", "result", "share", 1, "brukarundersökning")),
    ],
)
def test_rules_truth_table(title, source, expected):
    r = _derive(title, source)
    assert (r["area"], r["kind"], r["scale"], int(r["direction"]), r["source_type"]) == expected
    assert r["direction_rule"].startswith("rule direction#")


def test_background_has_no_direction_and_rule_is_recorded():
    r = _derive("Invånare 80+, andel (%)")
    assert r["kind"] == "background" and r["direction"] == 0 and r["direction_rule"] == "rule direction#1"


def test_overrides_win_and_are_recorded():
    ov = {"X1": {"direction": -1, "why": "test"}}
    r = _derive("Kostnad äldreomsorg, kr/inv 65+", overrides=ov)
    assert r["direction"] == -1 and r["direction_rule"] == "override" and r["kind_rule"] != "override"


def test_embedded_catalogue_metadata_is_complete():
    cat = load_catalogue()
    assert len(cat) == 907 and cat["id"].is_unique
    assert set(cat["area"]) <= set(AREAS) and set(cat["kind"]) <= set(KINDS)
    assert set(cat["scale"]) <= set(SCALES) and set(cat["source_type"]) <= set(SOURCE_TYPES)
    assert set(cat["direction"]) == {-1, 0, 1}
    assert not cat[["area", "kind", "scale", "source_type"]].isna().any().any()
    # every override is applied
    for kpi, entry in load_overrides().items():
        row = cat.set_index("id").loc[kpi]
        for field in entry:
            if field != "why":
                assert row[field] == entry[field] and row[f"{field}_rule"] == "override"


def test_clean_title():
    assert clean_title("Aktuell rutin, (Ja=1, Nej=0) (-2021)") == "Aktuell rutin, (Ja=1, Nej=0)"


def test_bad_rules_and_overrides_are_errors(tmp_path):
    p = tmp_path / "rules.toml"
    p.write_text('[[area]]\nname = "space"\npattern = "."\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"\[\[area\]\] rule 1 sets 'space'"):
        load_rules(p)
    p.write_text('[[area]]\nname = "LSS"\npattern = "("\n', encoding="utf-8")
    with pytest.raises(DataError, match="has no valid 'pattern'"):
        load_rules(p)
    o = tmp_path / "ov.toml"
    o.write_text('[X1]\ndirection = 1\n', encoding="utf-8")
    with pytest.raises(DataError, match="override for X1 has no 'why'"):
        load_overrides(o)
    o.write_text('[X1]\ndirection = 5\nwhy = "x"\n', encoding="utf-8")
    with pytest.raises(DataError, match="sets direction=5"):
        load_overrides(o)
