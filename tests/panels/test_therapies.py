"""The therapy registry (issue #13): names, brand names, did-you-mean, declared therapies."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cytoresp.errors import InputError
from cytoresp.panels import read_panel
from cytoresp.panels.therapies import (
    THERAPY_REGISTRY,
    declared_therapies,
    resolve_therapy,
    suggest_therapies,
    therapies_markdown,
    therapy_order,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Avonex", "ifnb"), ("Rebif", "ifnb"), ("Plegridy", "ifnb"), ("Betaseron", "ifnb"),
        ("Betaferon", "ifnb"), ("Extavia", "ifnb"), ("interferon beta-1a", "ifnb"),
        ("IFN-β-1b", "ifnb"), ("IFN-beta", "ifnb"), ("peginterferon beta-1a", "ifnb"),
        ("Copaxone", "ga"), ("Glatopa", "ga"), ("glatiramer acetate", "ga"),
        ("Glatiramer (generic)", "ga"), ("GA", "ga"),
        ("Tysabri", "natalizumab"), ("Gilenya", "fingolimod"), ("Mayzent", "siponimod"),
        ("Zeposia", "ozanimod"), ("Ponvory", "ponesimod"), ("Tecfidera", "dmf"),
        ("dimethyl fumarate", "dmf"), ("Vumerity", "drf"), ("diroximel fumarate", "drf"),
        ("Aubagio", "teriflunomide"), ("Ocrevus", "ocrelizumab"), ("Kesimpta", "ofatumumab"),
        ("Briumvi", "ublituximab"), ("Lemtrada", "alemtuzumab"), ("Mavenclad", "cladribine"),
        ("mitoxantrone", "mitoxantrone"), ("estriol", "estriol"), ("statins", "statin"),
        ("atorvastatin", "statin"), ("Vitamin D3", "vitamin_d"), ("cholecalciferol", "vitamin_d"),
        ("placebo", "placebo"), ("untreated", "untreated"), ("no treatment", "untreated"),
    ],
)
def test_generic_and_brand_names_resolve_to_the_canonical_id(name, expected):
    assert resolve_therapy(name) == expected


@pytest.mark.parametrize("name", ["  AVONEX ", "avonex", "A.V.O.N.E.X", "interferon-β 1a",
                                  "Interferon_Beta_1A"])
def test_matching_ignores_case_spaces_and_punctuation(name):
    assert resolve_therapy(name) == "ifnb"


def test_every_registered_name_matches_one_therapy_only():
    ids = [t.id for t in THERAPY_REGISTRY]
    assert len(ids) == len(set(ids))
    for t in THERAPY_REGISTRY:
        for name in (t.id, t.display_name, *t.synonyms):
            assert resolve_therapy(name) == t.id, name


@pytest.mark.parametrize(
    ("typo", "expected"),
    [("Tysabry", "natalizumab"), ("Copaxon", "ga"), ("Gilenia", "fingolimod"),
     ("ocrelizumb", "ocrelizumab"), ("Avonx", "ifnb")],
)
def test_near_misses_get_a_suggestion(typo, expected):
    assert resolve_therapy(typo) is None
    assert suggest_therapies(typo)[0] == expected


@pytest.mark.parametrize("name", ["aspirin", "xyz", ""])
def test_far_names_get_no_suggestion(name):
    assert suggest_therapies(name) == []


def test_a_panel_with_brand_names_reads_canonical_ids():
    csv = ("sample_id,IL6,DMT\nP1,1,Avonex\nP2,2,Tysabri\nP3,3,copaxone\nP4,4,Ocrevus\n"
           "P5,5,Placebo\n")
    panel = read_panel(io.StringIO(csv))
    assert panel.therapy.tolist() == ["ifnb", "natalizumab", "ga", "ocrelizumab", "placebo"]


def test_an_unknown_therapy_is_an_error_with_did_you_mean():
    csv = "sample_id,IL6,therapy\nP1,1,Avonex\nP2,2,Tysabry\n"
    with pytest.raises(InputError, match=r"row 3.*unknown therapy 'Tysabry'; did you mean "
                                         r"'natalizumab'"):
        read_panel(io.StringIO(csv))


def test_a_declared_therapy_is_accepted_and_only_then():
    csv = "sample_id,IL6,therapy\nP1,1,HSCT\nP2,2,autologous stem cells\n"
    with pytest.raises(InputError, match="unknown therapy 'HSCT'.*declared in the training"):
        read_panel(io.StringIO(csv))
    declared = declared_therapies(
        {"hsct": {"name": "autologous HSCT", "synonyms": ["autologous stem cells"]}})
    panel = read_panel(io.StringIO(csv), therapies=declared)
    assert panel.therapy.tolist() == ["hsct", "hsct"]


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"HSCT": "x"}, "must be a lower-case word"),
        ({"1x": "x"}, "must be a lower-case word"),
        ({"tysabri": "x"}, "already in the therapy registry as 'natalizumab'"),
        ({"hsct": "Avonex"}, "already in the therapy registry as 'ifnb'"),
        ({"hsct": {"synonyms": ["a"]}}, "must be a display name"),
        ({"hsct": 3}, "must be a display name"),
    ],
)
def test_bad_declarations_are_refused(declared, message):
    with pytest.raises(ValueError, match=message):
        declared_therapies(declared)


def test_outputs_order_therapies_as_the_registry_then_declared_ones():
    assert therapy_order(["hsct", "dmf", "ga", "ifnb", "dmf"]) == ["ifnb", "ga", "dmf", "hsct"]


def test_docs_therapies_md_is_up_to_date():
    doc = REPO / "docs" / "therapies.md"
    assert doc.read_text(encoding="utf-8") == therapies_markdown(), (
        "docs/therapies.md is stale: regenerate it with python -c 'from "
        "cytoresp.panels.therapies import therapies_markdown as m; "
        "open(\"docs/therapies.md\", \"w\").write(m())'"
    )
    for t in THERAPY_REGISTRY:
        assert f"| `{t.id}` |" in doc.read_text(encoding="utf-8")


@pytest.mark.parametrize(("cell", "tid"), [("ＧＡ", "ga"), ("ﬁngolimod", "fingolimod"),
                                           ("Interferon β-1a", "ifnb"), (" COPAXONE ", "ga")])
def test_therapy_cells_match_like_therapy_names(cell, tid):
    """One matching key for file cells and --therapy (NFKC included): no second copy."""
    panel = read_panel(io.StringIO(f"sample_id,therapy,IL6\nA,{cell},1\n"))
    assert panel.therapy.tolist() == [tid]
