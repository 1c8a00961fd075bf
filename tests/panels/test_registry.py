"""The analyte registry: ids, synonyms, ambiguity rules, limits, axes, generated docs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cytoresp.panels.registry import (
    ANALYTES,
    AXES,
    ambiguity,
    axis_members,
    canonical_ids,
    display_name,
    get_analyte,
    interpretation,
    registry_markdown,
    registry_table,
    resolve_analyte,
    split_unit,
)

REPO = Path(__file__).resolve().parents[2]


def test_registry_has_the_required_analytes_with_unique_ids():
    ids = canonical_ids()
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)
    required = (
        "IFNG TNF IL1B IL6 IL10 IL17A IL17F CXCL8 CXCL10 CSF2 TGFB1 TNFSF13B CCL2 CD40LG "
        "CXCL13 IL18 IL22 IL23 IL2 IL4 IL5 IL13 IL1RN IL7 IL15 IL21 IL27 IL33 CCL3 CCL4 "
        "CCL5 CCL11 CCL20 CXCL9 CXCL11 VEGFA OSM LTA IFNA2 IFNB1 IL1A IL3 IL9 CSF3 IL12 IL12B"
    ).split()
    assert set(required) <= set(ids)
    for a in ANALYTES:
        assert 0 < a.lloq < a.uloq, a.id
        assert a.axis is None or a.axis in AXES


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("IFN-γ", "IFNG"), ("IFN-gamma", "IFNG"), ("IFNg", "IFNG"), ("IFN gamma", "IFNG"),
        ("IFNγ", "IFNG"), ("interferon gamma", "IFNG"), ("ifng", "IFNG"),
        ("TNF-α", "TNF"), ("TNFa", "TNF"), ("TNF-alpha", "TNF"), ("TNFα", "TNF"),
        ("IL-1β", "IL1B"), ("IL-1beta", "IL1B"), ("IL1b", "IL1B"), ("IL-1α", "IL1A"),
        ("IL-12p70", "IL12"), ("IL-12 p70", "IL12"), ("IL-12(p70)", "IL12"),
        ("IL-12p40", "IL12B"), ("IL-12(p40)", "IL12B"), ("IL-12B", "IL12B"),
        ("IP-10", "CXCL10"), ("GM-CSF", "CSF2"), ("G-CSF", "CSF3"), ("TGF-β1", "TGFB1"),
        ("TGFb1", "TGFB1"), ("TGF-beta-1", "TGFB1"), ("IL-8", "CXCL8"), ("IL8", "CXCL8"),
        ("MCP-1", "CCL2"), ("BAFF", "TNFSF13B"), ("BLyS", "TNFSF13B"), ("sCD40L", "CD40LG"),
        ("CD40L", "CD40LG"), ("MIP-1α", "CCL3"), ("MIP-1beta", "CCL4"), ("RANTES", "CCL5"),
        ("Eotaxin", "CCL11"), ("MIG", "CXCL9"), ("I-TAC", "CXCL11"), ("IL-1RA", "IL1RN"),
        ("TNF-β", "LTA"), ("TNFB", "LTA"), ("IFN-α2", "IFNA2"), ("IFN-β", "IFNB1"),
        ("Fractalkine", "CX3CL1"), ("IL-17A", "IL17A"), ("IL-17F", "IL17F"),
        # unit suffixes, bead regions, prefixes
        ("IL-17A (pg/ml)", "IL17A"), ("IFN-gamma [pg/mL]", "IFNG"), ("IL6_pgml", "IL6"),
        ("IL-6 pg/mL", "IL6"), ("Hu IL-6 (19)", "IL6"), ("human IL-10", "IL10"),
        ("IL-12 p70 (ng/ml)", "IL12"),
    ],
)
def test_resolve_analyte_synonyms(name, expected):
    assert resolve_analyte(name) == expected


@pytest.mark.parametrize(
    "name",
    ["CD40", "IL-2R", "IL-18R1", "IL-10RB", "LAP TGF-beta-1", "sample_id", "Sample", "age",
     "sex", "edss", "plate", "batch", "therapy", "responder", "gd_lesions", "", "IL-99",
     "IL-1", "MIP-1", "IFN"],
)
def test_receptors_labels_and_ambiguous_names_do_not_resolve(name):
    assert resolve_analyte(name) is None


def test_resolve_analyte_non_string_is_none():
    assert resolve_analyte(12) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "expected", "note"),
    [
        ("IL-12", "IL12", "IL-12p70"), ("IL-12 (pg/mL)", "IL12", "IL-12p70"),
        ("IL-17", "IL17A", "IL-17A"), ("TGF-beta", "TGFB1", "TGF-β1"),
        ("IFN-alpha", "IFNA2", "IFN-α2"), ("VEGF", "VEGFA", "VEGF-A"),
    ],
)
def test_names_read_by_assumption_carry_a_note(name, expected, note):
    assert resolve_analyte(name) == expected
    assert note in interpretation(name)


@pytest.mark.parametrize("name", ["IL12", "IFNG", "IL-12p70", "IL-17A", "TGF-β1"])
def test_explicit_names_have_no_note(name):
    assert interpretation(name) is None
    assert ambiguity(name) is None


@pytest.mark.parametrize(("name", "hint"), [("IL-1", "IL-1β"), ("IL-1 (pg/ml)", "IL-1α"),
                                            ("MIP-1", "CCL4"), ("IL-12/23", "IL-23")])
def test_ambiguous_names_are_explained(name, hint):
    assert resolve_analyte(name) is None
    assert hint in ambiguity(name)


@pytest.mark.parametrize(
    ("header", "split"),
    [
        ("IL-17A (pg/ml)", ("IL-17A", "pg/ml")),
        ("IFN-gamma [ng/mL]", ("IFN-gamma", "ng/mL")),
        ("IL6_pgml", ("IL6", "pgml")),
        ("IL-6 (19)", ("IL-6", None)),
        ("IL-12(p40)", ("IL-12(p40)", None)),
        ("IL-6 (U/mL)", ("IL-6", "U/mL")),
        ("CCL2_MCP1", ("CCL2_MCP1", None)),
    ],
)
def test_split_unit(header, split):
    assert split_unit(header) == split


def test_every_name_of_every_analyte_resolves_to_it():
    for a in ANALYTES:
        for name in (a.id, a.display_name, *a.synonyms):
            assert resolve_analyte(name) == a.id, (name, a.id)
            assert resolve_analyte(f"{name} (pg/mL)") == a.id, (name, a.id)


_PUNCT = st.sampled_from(["", " ", "-", "_", ".", " - "])


@settings(max_examples=200, deadline=None)
@given(a=st.sampled_from(ANALYTES), data=st.data())
def test_matching_ignores_case_and_punctuation(a, data):
    name = data.draw(st.sampled_from((a.id, a.display_name, *a.synonyms)))
    out = []
    for ch in name:
        out.append(ch.upper() if data.draw(st.booleans()) else ch.lower())
        if ch.isalnum() and data.draw(st.booleans()):
            out.append(data.draw(_PUNCT))
    mangled = "".join(out)
    if not any(c.isalnum() for c in mangled):
        return
    assert resolve_analyte(mangled) == a.id, mangled


def test_axes_match_the_specification():
    axes = axis_members()
    assert tuple(axes) == AXES
    assert axes["Th1"] == ("IFNG", "TNF", "IL12", "IL2", "LTA")
    assert axes["Th2"] == ("IL4", "IL5", "IL13")
    assert axes["Th17"] == ("IL17A", "IL17F", "IL22", "IL23", "IL21")
    assert axes["Treg"] == ("IL10", "TGFB1")
    assert axes["IFN-response"] == ("CXCL10", "TNFSF13B", "CXCL9", "CXCL11")
    assert axes["innate"][:5] == ("IL1B", "IL6", "IL18", "IL1A", "IL1RN")
    assert axes["chemokine"][:6] == ("CXCL8", "CCL2", "CXCL13", "CCL3", "CCL4", "CCL5")
    members = [m for ms in axes.values() for m in ms]
    assert len(members) == len(set(members))  # an analyte is on at most one axis


@pytest.mark.parametrize(
    ("aid", "lloq"),
    [("IL1B", 0.14), ("IL2", 0.19), ("IL4", 1.12), ("IL6", 0.11), ("CXCL8", 0.13),
     ("IL10", 0.56), ("IL12", 0.15), ("IL13", 0.23), ("IFNG", 0.48), ("TNF", 0.16)],
)
def test_sourced_lloqs_are_the_milliplex_hs_values(aid, lloq):
    a = get_analyte(aid)
    assert a.lloq == lloq
    assert "Milliplex" in a.limits_source


def test_unsourced_limits_are_marked_typical():
    assert get_analyte("IL17F").limits_source == "typical"
    assert sum(a.limits_source == "typical" for a in ANALYTES) == len(ANALYTES) - 10


def test_get_analyte_and_display_name():
    assert get_analyte("TNFSF13B").display_name == "BAFF"
    with pytest.raises(KeyError, match="did you mean 'IFNG'"):
        get_analyte("IFN-gamma")
    with pytest.raises(KeyError, match="not a canonical analyte id"):
        get_analyte("nope")
    assert display_name("IL1B") == "IL-1β"
    assert display_name("edss") == "edss"


def test_registry_table():
    t = registry_table()
    assert list(t.columns) == ["id", "display_name", "synonyms", "lloq_pg_ml", "uloq_pg_ml",
                               "axis", "limits_source", "description"]
    assert len(t) == len(ANALYTES)
    row = t.set_index("id").loc["CXCL10"]
    assert row["display_name"] == "IP-10" and row["axis"] == "IFN-response"
    assert "IP10" in row["synonyms"].split("; ")


def test_docs_analytes_md_is_up_to_date():
    doc = REPO / "docs" / "analytes.md"
    assert doc.read_text(encoding="utf-8") == registry_markdown(), (
        "docs/analytes.md is stale: regenerate it with "
        "python -c 'from cytoresp.panels.registry import registry_markdown as m; "
        "open(\"docs/analytes.md\", \"w\").write(m())'"
    )


def test_markdown_lists_every_analyte_once():
    md = registry_markdown()
    for a in ANALYTES:
        rows = [ln for ln in md.splitlines() if ln.startswith(f"| `{a.id}` | ")]
        assert len(rows) == 1, a.id
