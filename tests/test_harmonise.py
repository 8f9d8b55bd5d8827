"""Harmonisation spec and rules: truth tables from hand-made inputs, spec checks, CSV consistency."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from ojpanel.config import data_dir
from ojpanel.errors import DataError, ParameterError
from ojpanel.indicators.harmonise import harmonise
from ojpanel.indicators.spec import RULES, load_spec
from ojpanel.panel import from_harmonised

NAN = float("nan")
M = ["0114", "0115", "0117", "0120", "0123", "0125", "0126", "0127", "0128", "0136"]


def raw(rows):
    """rows: (kpi, municipality, year, value) -> tidy raw frame with gender T."""
    df = pd.DataFrame(rows, columns=["kpi", "municipality", "year", "value"])
    df.insert(3, "gender", "T")
    return df


def result(h, variable):
    v = h.values
    v = v[v["variable"] == variable]
    return {(m, y): val for m, y, val in zip(v["municipality"], v["year"], v["value"], strict=True)}


# ---------------------------------------------------------------------------- the embedded spec
def test_embedded_spec_loads_and_uses_closed_rules():
    spec = load_spec()
    assert spec.name == "rir2021" and len(spec) == 69
    assert {v.rule for v in spec.variables} <= set(RULES)
    meta = spec.metadata()
    assert list(meta.columns) == [
        "id",
        "title",
        "area",
        "kind",
        "scale",
        "direction",
        "source",
        "group",
    ]
    assert meta["id"].is_unique
    assert set(meta["area"]) == {"äldreomsorg", "ekonomiskt bistånd", "barn och unga"}
    assert spec["ao_audit_dudit"].breaks[0][0] == 2017
    assert "audit_dudit_combined" in spec.summary and "<table" in spec._repr_html_()
    with pytest.raises(ParameterError, match="no variable"):
        spec["nope"]


def _csv():
    return pd.read_csv(
        data_dir() / "indicators" / "rir2021_indicators.csv", dtype=str, keep_default_na=False
    )


def test_spec_covers_every_kpi_of_the_audit_csv_with_its_coding():
    csv = _csv()
    spec = load_spec()
    csv_kpis = set(csv["kpi_id"]) - {""}
    assert csv_kpis == set(spec.kpis())
    coding = dict(zip(csv["kpi_id"], csv["raw_coding"], strict=True))
    checked = 0
    for v in spec.variables:
        for c in v.components:
            if c.id_assumed:
                continue
            assert c.raw_coding and c.raw_coding in coding[c.kpi], (v.id, c.kpi)
            if c.codes is not None:
                stated = {int(d) for d in re.findall(r"=\s*(\d)\b", c.raw_coding)}
                stated |= {int(d) for d in re.findall(r"\b(\d)\s*=", c.raw_coding)}
                assert stated == set(c.codes), (v.id, c.kpi, c.raw_coding, c.codes)
                checked += 1
    assert checked >= 60
    # each of the audit's rows with a KPI is used by a default variable, except alternatives
    default_kpis = set(spec.kpis(include_alternatives=False))
    alt_rows = csv[
        csv["component"].str.contains("alternative|proxy: LSS", regex=True)
        | csv["kpi_id"].isin(["U21504", "U23520"])
    ]
    assert csv_kpis - default_kpis <= set(alt_rows["kpi_id"])


def test_assumed_ids_are_only_the_2016_joint_items():
    spec = load_spec()
    assumed = [(v.id, c.kpi, c.years) for v in spec.variables for c in v.components if c.id_assumed]
    assert sorted(assumed) == [
        ("ao_audit_dudit", "U20485", (2016, 2016)),
        ("ao_isu_kon", "U21570", (2016, 2016)),
        ("bou_isu_kon", "U33597", (2016, 2016)),
        ("eb_audit_dudit", "U31510", (2016, 2016)),
    ]


# ---------------------------------------------------------------------------- truth tables
def test_as_is_binary_ordinal_and_share():
    r = raw([
        ("U20469", M[0], 2016, 1), ("U20469", M[1], 2016, 0), ("U20469", M[2], 2016, NAN),
        ("U31485", M[0], 2018, 2), ("U31485", M[1], 2018, 1), ("U31485", M[2], 2018, 0),
        ("U21468", M[0], 2019, 87.5), ("U21468", M[1], 2019, 0.0),
    ])  # fmt: skip
    h = harmonise(
        r,
        variables=[
            "ao_samord_missbruk",
            "eb_utredningsmall_ordinal",
            "eb_utredningsmall",
            "ao_bu_helhet_hemtjanst",
        ],
    )
    assert result(h, "ao_samord_missbruk") == {(M[0], 2016): 1.0, (M[1], 2016): 0.0}
    assert result(h, "eb_utredningsmall_ordinal") == {
        (M[0], 2018): 2.0,
        (M[1], 2018): 1.0,
        (M[2], 2018): 0.0,
    }
    # ja_only_to_one: only "Ja, alla" counts
    assert result(h, "eb_utredningsmall") == {
        (M[0], 2018): 1.0,
        (M[1], 2018): 0.0,
        (M[2], 2018): 0.0,
    }
    assert result(h, "ao_bu_helhet_hemtjanst") == {(M[0], 2019): 87.5, (M[1], 2019): 0.0}
    rep = h.report.set_index("variable")
    assert rep.loc["ao_samord_missbruk", "missing_raw"] == 1
    assert rep.loc["ao_samord_missbruk", "rows_out"] == 2


@pytest.mark.parametrize(
    ("ordinary", "special", "expected"),
    [(2, 2, 1.0), (2, 1, 1.0), (2, 0, 1.0), (1, 1, 1.0), (1, 0, 1.0), (0, 1, 1.0), (0, 2, 1.0), (0, 0, 0.0),
     (2, NAN, 1.0), (1, NAN, 1.0), (0, NAN, NAN), (NAN, 0, NAN), (NAN, 1, 1.0)],
)  # fmt: skip
def test_yes_partial_to_one_any_setting_truth_table(ordinary, special, expected):
    rows = [("U21548", M[0], 2018, ordinary), ("U23562", M[0], 2018, special)]
    h = harmonise(raw([x for x in rows if not math.isnan(x[3])]), variables=["ao_isu_utveckling"])
    got = result(h, "ao_isu_utveckling").get((M[0], 2018), NAN)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected
    assert h.report["undetermined"].iloc[0] == int(math.isnan(expected))


def test_yes_partial_to_one_single_item_and_coding_change_read_per_year():
    r = raw([
        ("U31488", M[0], 2016, 2), ("U31488", M[1], 2016, 1), ("U31488", M[2], 2016, 0),
        # U31490: Ja=1/Nej=0 to 2017, Ja=2/Delvis=1/Nej=0 from 2018
        ("U31490", M[0], 2017, 1), ("U31490", M[1], 2017, 0),
        ("U31490", M[0], 2018, 2), ("U31490", M[1], 2018, 1), ("U31490", M[2], 2018, 0),
    ])  # fmt: skip
    h = harmonise(r, variables=["eb_isu_utveckling", "eb_isu_kon_alt"])
    assert result(h, "eb_isu_utveckling") == {
        (M[0], 2016): 1.0,
        (M[1], 2016): 1.0,
        (M[2], 2016): 0.0,
    }
    assert result(h, "eb_isu_kon_alt") == {
        (M[0], 2017): 1.0, (M[1], 2017): 0.0, (M[0], 2018): 1.0, (M[1], 2018): 1.0, (M[2], 2018): 0.0,
    }  # fmt: skip
    # a 2 is valid in 2018 but not in 2017 for the same KPI
    with pytest.raises(DataError, match=r"KPI U31490, year 2017, municipality 0117: 2"):
        harmonise(raw([("U31490", M[2], 2017, 2)]), variables=["eb_isu_kon_alt"])


@pytest.mark.parametrize(
    ("year", "alcohol", "drugs", "expected"),
    [(2016, 2, None, 2.0), (2016, 1, None, 1.0), (2016, 0, None, 0.0),
     (2017, 1, 1, 2.0), (2017, 1, 0, 1.0), (2017, 0, 1, 1.0), (2017, 0, 0, 0.0), (2020, 1, 1, 2.0),
     (2018, 1, NAN, NAN), (2018, NAN, 0, NAN)],
)  # fmt: skip
def test_audit_dudit_combined_truth_table(year, alcohol, drugs, expected):
    rows = [("U20485", M[3], year, alcohol)]
    if drugs is not None:
        rows.append(("U20486", M[3], year, drugs))
    rows = [x for x in rows if not math.isnan(x[3])]
    h = harmonise(raw(rows), variables=["ao_audit_dudit"])
    got = result(h, "ao_audit_dudit").get((M[3], year), NAN)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_audit_dudit_unexpected_codes_name_kpi_year_municipality():
    # 2016 joint item: 3 is not a code
    with pytest.raises(DataError, match=r"KPI U20485, year 2016, municipality 0120: 3"):
        harmonise(raw([("U20485", M[3], 2016, 3)]), variables=["ao_audit_dudit"])
    # 2017 alcohol item is ja/nej: a 2 ("ja" in the 2016 coding) is an error
    with pytest.raises(
        DataError, match=r"unexpected code value.*U31510.*year 2017, municipality 0114: 2"
    ):
        harmonise(
            raw([("U31510", M[0], 2017, 2), ("U31511", M[0], 2017, 1)]),
            variables=["eb_audit_dudit"],
        )
    with pytest.raises(DataError, match=r"U20486, year 2019, municipality 0115: 0.5"):
        harmonise(raw([("U20486", M[1], 2019, 0.5)]), variables=["ao_audit_dudit"])


@pytest.mark.parametrize(
    ("year", "ordinary", "special", "expected"),
    [(2016, 1, None, 1.0), (2016, 0, None, 0.0), (2016, 0, 1, 0.0),
     (2017, 1, 0, 1.0), (2017, 0, 1, 1.0), (2017, 1, 1, 1.0), (2017, 0, 0, 0.0),
     (2019, 0, NAN, NAN), (2019, NAN, 1, 1.0)],
)  # fmt: skip
def test_isu_gender_joint_2016_truth_table(year, ordinary, special, expected):
    rows = [("U21570", M[4], year, ordinary)]
    if special is not None:
        rows.append(("U23576", M[4], year, special))
    rows = [x for x in rows if not math.isnan(x[3])]
    h = harmonise(raw(rows), variables=["ao_isu_kon"])
    got = result(h, "ao_isu_kon").get((M[4], year), NAN)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected
    # in 2016 the special-housing KPI is not coded (the joint item stands for both settings)
    if year == 2016 and special is not None:
        assert h.report["rows_uncoded_years"].iloc[0] == 1


def test_preferred_else_any_splice():
    r = raw([
        ("U33631", M[0], 2020, 1), ("U33631", M[1], 2020, 0),
        ("U33534", M[0], 2018, 0), ("U33535", M[0], 2018, 1),
        ("U33534", M[1], 2018, 0), ("U33535", M[1], 2018, 0),
        ("U33534", M[2], 2018, 0),
        ("U33631", M[3], 2019, 0), ("U33534", M[3], 2019, 1), ("U33535", M[3], 2019, 1),
    ])  # fmt: skip
    h = harmonise(r, variables=["bou_samord_lss"])
    assert result(h, "bou_samord_lss") == {
        (M[0], 2020): 1.0, (M[1], 2020): 0.0, (M[0], 2018): 1.0, (M[1], 2018): 0.0, (M[3], 2019): 0.0,
    }  # fmt: skip
    rep = h.report.iloc[0]
    assert rep["spliced"] == 2 and rep["undetermined"] == 1
    assert list(h.breaks["variable"]) == ["bou_samord_lss"]


def test_any_setting_rule_in_a_custom_spec(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(
        """
[spec]
name = "custom"
years = [2016, 2020]

[[variable]]
id = "x_any"
area = "barn och unga"
group = "g"
label = "l"
kind = "process"
scale = "binary"
direction = 1
source = "kommunenkät"
rule = "any_setting"
years = [2016, 2020]

[[variable.component]]
kpi = "A1"
role = "setting"
years = [2016, 2020]
codes = {1 = "ja", 0 = "nej"}

[[variable.component]]
kpi = "A2"
role = "setting"
years = [2016, 2020]
codes = {1 = "ja", 0 = "nej"}
""",
        encoding="utf-8",
    )
    table = [(1, 1, 1.0), (1, 0, 1.0), (0, 1, 1.0), (0, 0, 0.0)]
    rows = []
    for i, (a, b, _) in enumerate(table):
        rows += [("A1", M[i], 2017, a), ("A2", M[i], 2017, b)]
    h = harmonise(raw(rows), p)
    assert result(h, "x_any") == {(M[i], 2017): e for i, (_, _, e) in enumerate(table)}


def test_faithful_years_gender_and_duplicates():
    r = raw([("U21447", M[0], 2019, 70.0), ("U21447", M[0], 2020, 71.0)])
    r = pd.concat([r, r.assign(gender="K", value=[10.0, 11.0])], ignore_index=True)
    h = harmonise(r, variables=["ao_bu_halsa_hemtjanst"])
    assert result(h, "ao_bu_halsa_hemtjanst") == {(M[0], 2019): 70.0}
    assert h.report["outside_years"].iloc[0] == 1
    h_all = harmonise(r, variables=["ao_bu_halsa_hemtjanst"], faithful=False)
    assert result(h_all, "ao_bu_halsa_hemtjanst") == {(M[0], 2019): 70.0, (M[0], 2020): 71.0}
    with pytest.raises(DataError, match="duplicated"):
        harmonise(pd.concat([r, r]), variables=["ao_bu_halsa_hemtjanst"])
    with pytest.raises(DataError, match=r"outside \[0, 100\].*municipality 0114: 140"):
        harmonise(raw([("U21447", M[0], 2019, 140.0)]), variables=["ao_bu_halsa_hemtjanst"])
    with pytest.raises(DataError, match="lacks column"):
        harmonise(r.drop(columns="value"))


def test_default_selection_metadata_and_panel():
    r = raw([("U20469", m, y, (i + y) % 2) for i, m in enumerate(M) for y in range(2016, 2021)]
            + [("U21447", m, 2018, 50.0 + i) for i, m in enumerate(M)])  # fmt: skip
    h = harmonise(r)
    assert len(h.meta) == 59
    assert set(h.values["variable"]) == {"ao_samord_missbruk", "ao_bu_halsa_hemtjanst"}
    assert h.attrs["synthetic"] == 0 and "Kolada" not in h.attrs["citation_processed"]
    assert "ao_samord_missbruk" in h.summary and "<table" in h._repr_html_()
    tidy = h.to_tidy()
    assert list(tidy.columns) == ["kpi", "municipality", "year", "gender", "value"]
    ds = from_harmonised(h)
    assert set(ds["indicator"].values) == {"ao_samord_missbruk", "ao_bu_halsa_hemtjanst"}
    v = ds["value"].sel(indicator="ao_samord_missbruk", municipality=M[1], year=2017).item()
    assert v == (1 + 2017) % 2
    assert ds["scale"].sel(indicator="ao_bu_halsa_hemtjanst").item() == "share"
    assert np.isnan(ds["value"].sel(indicator="ao_bu_halsa_hemtjanst", year=2016)).all()
    with_alt = harmonise(r, include_alternatives=True)
    assert len(with_alt.meta) == 69


# ---------------------------------------------------------------------------- spec errors
BASE = """
[[variable]]
id = "v"
area = "barn och unga"
group = "g"
label = "l"
kind = "process"
scale = "{scale}"
direction = 1
source = "kommunenkät"
rule = "{rule}"
years = [2016, 2020]
{extra}
[[variable.component]]
kpi = "A1"
role = "{role}"
years = [{y0}, 2020]
{coding}
"""


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(rule="magic"), "rule 'magic' is not one of"),
        (dict(role="joint"), "takes roles"),
        (dict(coding='codes = {1 = "yes", 0 = "nej"}'), "labels must be one of"),
        (dict(coding='codes = {x = "ja"}'), "not an integer"),
        (dict(coding="value_range = [0.0, 100.0]"), "needs coded components"),
        (dict(scale="share"), "needs numeric components"),
        (dict(coding='codes = {2 = "ja", 1 = "delvis", 0 = "nej"}'), "cannot use"),
        (dict(y0=2021), "first <= last"),
        (dict(coding='codes = {1 = "ja", 0 = "nej"}\nid_assumed = true'), "needs a 'note'"),
        (dict(extra="formula = 'a + b'"), "unknown key"),
        (
            dict(rule="audit_dudit_combined", scale="ordinal", role="alcohol"),
            "needs component role",
        ),
    ],
)
def test_spec_errors(tmp_path, kw, message):
    fields = dict(
        rule="as_is",
        scale="binary",
        role="item",
        y0=2016,
        extra="",
        coding='codes = {1 = "ja", 0 = "nej"}',
    )
    fields.update(kw)
    p = tmp_path / "bad.toml"
    p.write_text(BASE.format(**fields), encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_spec(p)


def test_spec_rejects_overlaps_and_inconsistent_codings(tmp_path):
    two = BASE.format(
        rule="as_is",
        scale="binary",
        role="item",
        y0=2016,
        extra="",
        coding='codes = {1 = "ja", 0 = "nej"}',
    )
    overlap = (
        two
        + '\n[[variable.component]]\nkpi = "A1"\nrole = "item"\nyears = [2020, 2020]\ncodes = {1 = "ja", 0 = "nej"}\n'
    )
    p = tmp_path / "o.toml"
    p.write_text(overlap, encoding="utf-8")
    with pytest.raises(DataError, match="given twice for 2020"):
        load_spec(p)
    other = BASE.format(
        rule="as_is",
        scale="ordinal",
        role="item",
        y0=2016,
        extra="",
        coding='codes = {2 = "ja", 1 = "delvis", 0 = "nej"}',
    )
    p2 = tmp_path / "c.toml"
    p2.write_text(two + other.replace('id = "v"', 'id = "w"'), encoding="utf-8")
    with pytest.raises(DataError, match="coded differently in v and w"):
        load_spec(p2)
    p3 = tmp_path / "d.toml"
    p3.write_text(two + two, encoding="utf-8")
    with pytest.raises(DataError, match="duplicate variable"):
        load_spec(p3)
