"""The transcription of RiR 2021:17's published Tables 2–17 (data/rir2021/published/).

The row lists below are typed from the appendix (each table's row labels, in order); the test
checks that the data hold exactly these rows, that every cell's mark comes from the allowed set
with a legal confidence, that cells.csv is the documented expansion of rows.csv, and a set of
cells that can be read off the appendix without doubt.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from ojpanel.errors import DataError
from ojpanel.indicators.spec import load_spec
from ojpanel.replication.published import (
    CONFIDENCE,
    LAYOUTS,
    TABLES,
    expand_cells,
    load_published,
    marks_of,
    published_dir,
    reading_marks,
)

AO = [
    "Intern samordning",
    "Vårdplanering med vårdcentral", "Läkemedelsgenomg. med sjuksköterska", "Samarbete med anhöriga",
    "Vårdplanering med läkare", "Läkemedelsgenomg. med sjuksköterska", "Samarbete med anhöriga",
    "Alkohol/droger", "Individbaserad systematisk uppföljning", "ISU kön",
]
AO_USER = ["Allmänt hälsotillstånd", "Personalens bemötande", "Sammantaget"] * 2
STAFF = ["Sjuksköterskor, vardag", "Sjuksköterskor, helg", "Omsorgspersonal, vardag", "Omsorgspersonal, helg"]
EB = [
    "Intern samordning", "Extern samverkan", "Alkohol/droger", "Strukturerad utredningsmall",
    "Individbaserad systematisk uppföljning", "ISU kön", "Arbetsmarknadsinsats 18–24 år",
    "Arbetsmarknadsinsats 24+ år", "Hushållsekonomisk rådgivning",
]
BOU = [
    "Intern samordning", "Extern samverkan", "Utagerande", "Missbruk", "Föräldraförmåga",
    "Individbaserad systematisk uppföljning", "ISU kön", "Föräldragrupp", "Psykosocial behandling", "Stödgrupp",
]
APPENDIX_ROWS = {
    2: AO + AO_USER, 3: AO, 4: AO, 5: AO, 6: STAFF, 7: STAFF,
    8: EB, 9: EB, 10: EB, 11: EB, 12: EB,
    13: BOU, 14: BOU, 15: BOU, 16: BOU, 17: BOU,
}
AREAS = {**dict.fromkeys(range(2, 8), "äldreomsorg"), **dict.fromkeys(range(8, 13), "ekonomiskt bistånd"),
         **dict.fromkeys(range(13, 18), "barn och unga")}


@pytest.fixture(scope="module")
def pub():
    return load_published()


def test_every_table_and_row_of_the_appendix(pub):
    assert sorted(pub.tables["table"]) == list(TABLES) == list(range(2, 18))
    for t, labels in APPENDIX_ROWS.items():
        rows = pub.rows[pub.rows["table"] == t].sort_values("row_no")
        assert rows["row"].tolist() == labels, t
        assert pub.tables.set_index("table").loc[t, "area"] == AREAS[t]
    assert len(pub.rows) == sum(len(v) for v in APPENDIX_ROWS.values()) == 149
    # Sections as the appendix prints them, e.g. Table 2's two external-cooperation blocks.
    t2 = pub.rows[pub.rows["table"] == 2]["section"].tolist()
    assert t2[1:4] == ["Extern samverkan inom hemtjänsten"] * 3
    assert t2[4:7] == ["Extern samverkan på särskilda boenden"] * 3
    assert t2[10:13] == ["Brukarbedömningar inom hemtjänsten"] * 3


def test_table_layouts_and_analyses(pub):
    meta = pub.tables.set_index("table")
    assert meta.loc[[2, 9, 14], "layout"].eq("anova").all() and meta.loc[[2, 9, 14], "analysis"].eq("C").all()
    assert meta.loc[[8, 13], "layout"].eq("users").all()
    assert meta.loc[[6, 7], "layout"].eq("staffing").all() and meta.loc[7, "housing"] == "dementia"
    peers = meta[meta["layout"] == "peers"]
    assert sorted(peers.index) == [3, 4, 5, 10, 11, 12, 15, 16, 17]
    assert peers["peer_group"].tolist() == ["county", "kommungrupp", "socioeconomic"] * 3
    assert [len(LAYOUTS[k]) for k in ("anova", "users", "peers", "staffing")] == [6, 7, 8, 8]


def test_every_cell_has_an_allowed_mark_and_confidence(pub):
    cells = pub.cells
    assert len(cells) == 1103
    layout = pub.tables.set_index("table")["layout"]
    for t, g in cells.groupby("table"):
        allowed = set(marks_of(layout[t])) | {"", "?", "*/**" if layout[t] == "anova" else "+/++"}
        if layout[t] != "anova":
            allowed.add("-/--")
        assert set(g["mark"]) <= allowed, (t, set(g["mark"]) - allowed)
        assert (g.groupby("row_no").size() == len(LAYOUTS[layout[t]])).all()
    assert set(cells["confidence"]) <= set(CONFIDENCE)
    assert ((cells["mark"] == "?") == (cells["confidence"] == "unreadable")).all()
    # A cell is certain only when its printed token is the mark itself (or the row prints nothing).
    certain = cells[cells["confidence"] == "certain"]
    assert (certain["printed"] == certain["mark"]).all()


def test_cells_are_the_expansion_of_rows(pub):
    again = expand_cells(pub.tables, pub.rows)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), pub.cells.reset_index(drop=True))


def test_cells_read_without_doubt(pub):
    c = pub.cells.set_index(["table", "row_no", "column"])
    # Table 3 and Table 4, "Samarbete med anhöriga" (hemtjänst): ++ in all eight columns.
    for t in (3, 4):
        row = pub.cells[(pub.cells["table"] == t) & (pub.cells["row_no"] == 4)]
        assert (row["mark"] == "++").all() and (row["confidence"] == "certain").all()
    # Table 4, ISU and ISU kön: ++ everywhere; Table 3, "Läkemedelsgenomg." (hemtjänst): no mark.
    assert c.loc[(4, 9, "improved_oj_users_t2"), "mark"] == "++"
    assert c.loc[(3, 3, "level_all_t1"), "mark"] == "" and c.loc[(3, 3, "level_all_t1"), "confidence"] == "certain"
    # Table 2, särskilt boende "Läkemedelsgenomg.": six garbled tokens for six columns (probable).
    t2 = pub.cells[(pub.cells["table"] == 2) & (pub.cells["row_no"] == 6)]
    assert t2["mark"].tolist() == ["**", "*/**", "**", "*/**", "*", "*"]
    assert (t2["confidence"] == "probable").all()
    # Table 2 hemtjänst "Sammantaget": no mark on a line standing alone -> empty, probable only.
    assert c.loc[(2, 13, "pooled_county"), "mark"] == "" and c.loc[(2, 13, "pooled_county"), "confidence"] == "probable"
    # Rows with fewer marks than columns are unreadable cell by cell, but keep their tokens.
    r = pub.rows.set_index(["table", "row_no"])
    assert r.loc[(2, 11), "printed"] == "s *k s" and r.loc[(2, 11), "placement"] == "unplaced"
    assert (pub.cells[(pub.cells["table"] == 2) & (pub.cells["row_no"] == 11)]["mark"] == "?").all()
    assert r.loc[(17, 10), "printed"] == "- -- .- .- .- -"
    assert r.loc[(13, 2), "layout"] == "doubtful"


def test_mapped_ids_exist():
    pub = load_published()
    spec_ids = {v.id for v in load_spec().variables}
    groups = pub.group_components()
    for comps in groups.values():
        assert set(comps) <= spec_ids
    for r in pub.rows.itertuples(index=False):
        ids = [x for x in [r.indicators, *r.alternatives.split(";")] if x]
        assert all(i in spec_ids or i in groups for i in ids), (r.table, r.row, ids)
    # Only Table 7 (dementia housing) has no counterpart at all.
    assert set(pub.rows.loc[pub.rows["indicators"] == "", "table"]) == {7}
    # The same row maps to the same variable in every table of its area.
    for labels_tables in ([3, 4, 5], [8, 9, 10, 11, 12], [13, 14, 15, 16, 17]):
        maps = [pub.rows[pub.rows["table"] == t]["indicators"].tolist() for t in labels_tables]
        assert all(m == maps[0] for m in maps)


def test_reading_vocabulary():
    assert reading_marks("**?", "anova") == {"*", "**"}
    assert reading_marks("+?", "peers") == {"+", "++"}
    assert reading_marks("--", "peers") == {"--"}
    assert reading_marks("neg", "staffing") == {"-", "--"}
    assert reading_marks("maybe", "anova") == {"*", "**", ""}
    assert reading_marks("noise", "users") == {""}
    with pytest.raises(DataError, match="unknown reading 'pos' for a anova table"):
        reading_marks("pos", "anova")


def _copy(tmp_path):
    dst = tmp_path / "published"
    shutil.copytree(published_dir(), dst)
    return dst


def test_inconsistent_transcription_is_refused(tmp_path):
    d = _copy(tmp_path)
    rows = pd.read_csv(d / "rows.csv", dtype=str, keep_default_na=False)
    rows.loc[0, "readings"] = "+?"  # a regression reading in an ANOVA table
    rows.loc[1, "placement"] = "full"  # three marks cannot fill six columns
    rows.to_csv(d / "rows.csv", index=False)
    with pytest.raises(DataError) as err:
        load_published(d)
    msg = str(err.value)
    assert "table 2 row 1 (Intern samordning): unknown reading '+?'" in msg
    assert "table 2 row 2 (Vårdplanering med vårdcentral): a full row needs exactly one reading with 6 marks" in msg
    assert "cells.csv was not checked" in msg


def test_edited_cells_are_refused(tmp_path):
    d = _copy(tmp_path)
    cells = pd.read_csv(d / "cells.csv", dtype=str, keep_default_na=False)
    cells.loc[0, "mark"] = "**"  # an unreadable cell made readable by hand
    cells.to_csv(d / "cells.csv", index=False)
    with pytest.raises(DataError, match="cells.csv is not the expansion of rows.csv"):
        load_published(d)


def test_missing_table_or_file_is_refused(tmp_path):
    d = _copy(tmp_path)
    t = pd.read_csv(d / "tables.csv", dtype=str, keep_default_na=False)
    t[t["table"] != "7"].to_csv(d / "tables.csv", index=False)
    with pytest.raises(DataError, match=r"tables.csv must list tables \[2, 3"):
        load_published(d)
    (d / "groups.csv").unlink()
    with pytest.raises(DataError, match="groups.csv is missing"):
        load_published(d)


def test_printed_mark_counts_by_hand(pub):
    from ojpanel.replication.published import Published

    only3 = Published(
        tables=pub.tables[pub.tables["table"] == 3], groups=pub.groups,
        rows=pub.rows[pub.rows["table"] == 3], cells=pub.cells[pub.cells["table"] == 3],
    )
    # Table 3 as printed: 34 '++', 5 '+', one '-', no '--'.
    assert only3.printed_mark_counts("D") == {
        "cells": 80, "positive": 39, "positive_5pct": 34, "negative": 1, "negative_5pct": 0, "unknown_sign": 0}
    allD = pub.printed_mark_counts("D")
    assert allD["cells"] == 9 * 0 + 80 * 6 + 72 * 3
    assert allD["positive"] + allD["negative"] + allD["unknown_sign"] <= allD["cells"]
