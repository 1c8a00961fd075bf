"""Panels with visits: patient_id and month, their rules, and every reader carrying them."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cytoresp.errors import InputError
from cytoresp.panels import panel_to_frame, read_panel, write_panel
from cytoresp.panels.stream import PanelStream
from cytoresp.panels.visits import baseline_note, patients_without_baseline

WIDE = (
    "sample_id,patient_id,month,IL10,TNF,therapy,responder,age\n"
    "a0,A,0,1.5,<0.7,ifnb,1,30\n"
    "a3,A,3,2.5,1.2,,,\n"
    "a6,A,6,3,1.1,ifnb,1,30\n"
    "b3,B,3,0.9,2.2,ga,0,52\n"
)


def _problems(text: str, **kw) -> str:
    with pytest.raises(InputError) as info:
        read_panel(io.StringIO(text), **kw)
    return "\n".join(str(p) for p in info.value.problems)


def test_visits_are_read_and_per_patient_columns_filled():
    p = read_panel(io.StringIO(WIDE))
    assert p.has_visits
    assert p.patient_id.tolist() == ["A", "A", "A", "B"]
    assert p.month.tolist() == [0.0, 3.0, 6.0, 3.0] and p.month.dtype == np.float64
    # the 3-month row of A takes A's therapy, responder and age
    assert p.therapy.tolist() == ["ifnb", "ifnb", "ifnb", "ga"]
    assert p.responder.tolist() == [1.0, 1.0, 1.0, 0.0]
    assert p.covariates["age"].tolist() == [30.0, 30.0, 30.0, 52.0]
    assert patients_without_baseline(p) == ["B"]
    assert any(w.startswith("1 patient(s) have no baseline (month 0) sample: 'B'")
               for w in p.warnings)


def test_training_labels_on_one_row_of_the_patient_are_enough():
    p = read_panel(io.StringIO(WIDE), require_labels=True)
    assert p.responder.notna().all()
    text = WIDE + "c0,C,0,1,1,,,\n"   # C has no therapy or responder on any row
    msg = _problems(text, require_labels=True)
    assert "row 6, column 'therapy': empty therapy" in msg
    assert "row 6, column 'responder': empty responder" in msg


def test_aliases_and_fractional_months():
    text = "Sample,Subject ID,Visit month,IL10\ns1,P1,0,1\ns2,P1,1.5,2\n"
    p = read_panel(io.StringIO(text))
    assert p.patient_id.tolist() == ["P1", "P1"] and p.month.tolist() == [0.0, 1.5]


def test_a_panel_without_visits_is_unchanged():
    p = read_panel(io.StringIO("sample_id,IL10\ns1,1\ns2,2\n"))
    assert not p.has_visits and p.patient_id is None and p.month is None
    assert patients_without_baseline(p) == [] and baseline_note(p) is None
    assert p.to_model_frame().columns.tolist() == ["IL10"]
    f = p.to_model_frame(visits=True)
    assert f["patient_id"].tolist() == ["s1", "s2"] and f["month"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sample_id,patient_id,IL10\ns1,A,1\n",
         "column 'patient_id' gives the patient_id of each sample but there is no 'month' "
         "column"),
        ("sample_id,month,IL10\ns1,0,1\n",
         "column 'month' gives the month of each sample but there is no 'patient_id' column"),
        ("sample_id,patient_id,month,IL10\ns1,A,0,1\ns2,A,0,2\ns3,A,3,1\ns4,A,3.0,2\n",
         "patient 'A' has 2 samples at month 0 (rows 2, 3); keep one sample per patient and "
         "month (average replicates first)\n"
         "<file>, column 'month': patient 'A' has 2 samples at month 3 (rows 4, 5)"),
        ("sample_id,patient_id,month,IL10\ns1,A,-3,1\n",
         "row 2, column 'month': month must be a number >= 0 (months since the therapy "
         "started, 0 = baseline), got '-3'"),
        ("sample_id,patient_id,month,IL10\ns1,A,three,1\n",
         "row 2, column 'month': month must be a number >= 0"),
        ("sample_id,patient_id,month,IL10\ns1,A,inf,1\n",
         "row 2, column 'month': month must be a number >= 0"),
        ("sample_id,patient_id,month,IL10\ns1,A,,1\n",
         "row 2, column 'month': empty month"),
        ("sample_id,patient_id,month,IL10\ns1,,0,1\n",
         "row 2, column 'patient_id': empty patient id"),
        ("sample_id,patient_id,month,IL10,therapy\ns1,A,0,1,ifnb\ns2,A,3,1,GA\n",
         "column 'therapy': patient 'A' has different values in column 'therapy' (rows 2, 3): "
         "'ifnb', 'ga'; therapy is per patient and must agree across the patient's rows"),
        ("sample_id,patient_id,month,IL10,responder\ns1,A,0,1,1\ns2,A,3,1,0\n",
         "patient 'A' has different values in column 'responder' (rows 2, 3): '1', '0'"),
        ("sample_id,patient_id,month,IL10,sex\ns1,A,0,1,F\ns2,A,3,1,M\n",
         "patient 'A' has different values in column 'sex'"),
        ("sample_id,patient_id,month,IL10,age\ns1,A,0,1,30\ns2,A,3,1,31\n",
         "patient 'A' has different values in column 'age' (rows 2, 3): '30', '31'"),
    ],
)
def test_visit_problems_are_named(text, expected):
    assert expected in _problems(text)


def test_every_problem_is_listed_at_once():
    text = ("sample_id,patient_id,month,IL10,therapy\n"
            "s1,A,0,1,ifnb\ns2,A,0,1,ga\ns3,B,-1,1,ga\n")
    msg = _problems(text)
    assert "2 samples at month 0" in msg and "different values in column 'therapy'" in msg
    assert "got '-1'" in msg


def test_long_format_carries_visits():
    text = ("sample_id,patient_id,month,analyte,value\n"
            "s1,A,0,IL10,1\ns1,A,0,IL6,<0.5\ns2,A,3,IL10,3\ns2,A,3,IL6,4\n")
    p = read_panel(io.StringIO(text))
    assert p.patient_id.tolist() == ["A", "A"] and p.month.tolist() == [0.0, 3.0]
    assert p.values.loc["s2", "IL6"] == 4.0
    bad = text + "s2,A,6,IL10,3\n"   # a sample-level column must agree across its rows
    assert "sample 's2' has different values in column 'month': '3', '6'" in _problems(bad)


def test_write_and_read_back_is_identical(tmp_path):
    p = read_panel(io.StringIO(WIDE))
    out = tmp_path / "canonical.csv"
    write_panel(p, out)
    assert panel_to_frame(p).columns.tolist()[:3] == ["sample_id", "patient_id", "month"]
    q = read_panel(out)
    pd.testing.assert_series_equal(q.patient_id, p.patient_id)
    pd.testing.assert_series_equal(q.month, p.month)
    pd.testing.assert_frame_equal(q.values, p.values)


@pytest.mark.parametrize("suffix", [".parquet", ".xlsx"])
def test_excel_and_parquet_carry_visits(tmp_path, suffix):
    frame = pd.DataFrame({"sample_id": ["a0", "a3"], "patient_id": ["A", "A"],
                          "month": [0, 3], "IL10": [1.0, 2.0]})
    path = tmp_path / f"p{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_excel(path, index=False)
    p = read_panel(path)
    assert p.patient_id.tolist() == ["A", "A"] and p.month.tolist() == [0.0, 3.0]


def test_a_dataframe_carries_visits():
    frame = pd.DataFrame({"sample_id": ["a0", "a3"], "patient": ["A", "A"],
                          "months": [0.0, 3.0], "IL10": [1.0, 2.0]})
    p = read_panel(frame)
    assert p.patient_id.tolist() == ["A", "A"] and p.month.tolist() == [0.0, 3.0]


def test_streaming_finds_duplicates_across_chunks(tmp_path):
    n = 60
    frame = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)],
                          "patient_id": [f"P{i // 2}" for i in range(n)],
                          "month": [3.0 * (i % 2) for i in range(n)],
                          "IL10": np.arange(1.0, n + 1)})
    path = tmp_path / "p.parquet"
    frame.to_parquet(path, index=False)
    chunks = list(PanelStream(path, chunk_rows=10))
    assert len(chunks) > 1
    got = pd.concat([c.panel.month for c in chunks])
    assert got.tolist() == frame["month"].tolist()
    assert pd.concat([c.panel.patient_id for c in chunks]).tolist() == frame["patient_id"].tolist()

    frame.loc[n - 1, ["patient_id", "month"]] = ["P0", 3.0]   # P0 at month 3 twice
    frame.to_parquet(path, index=False)
    with pytest.raises(InputError, match=r"patient 'P0' has 2 samples at month 3 \(rows 3, 61\)"):
        list(PanelStream(path, chunk_rows=10))


BIOPLEX = (
    "Bio-Plex Manager(TM) 6.2 Report\nPlate: BPX-0211\n\n"
    "Type,Well,Description,Patient,Month,Hu IL-6 (19),Hu IL-10 (56)\n"
    "S1,B1,,,,3200,3150\n"
    "X1,E1,MS-017,A,0,4.52,OOR <\n"
    "X1,F1,MS-017,A,0,4.71,OOR <\n"
    "X2,G1,MS-018,A,3,1.5,2.25\n"
    "X2,H1,MS-018,A,{m},1.7,2.41\n"
)


def test_an_instrument_export_carries_visits():
    p = read_panel(io.StringIO(BIOPLEX.format(m=3)), format="luminex")
    assert p.sample_ids.tolist() == ["MS-017", "MS-018"]
    assert p.patient_id.tolist() == ["A", "A"] and p.month.tolist() == [0.0, 3.0]
    with pytest.raises(InputError, match="sample 'MS-018' has different values in column "
                                         "'Month': '3', '6'"):
        read_panel(io.StringIO(BIOPLEX.format(m=6)), format="luminex")


@pytest.mark.parametrize(
    ("patient", "month"),
    [("patient", "months"), ("Patient No", "Visit Month"), ("Subject ID", "month of visit"),
     ("participant", "Months on therapy"), ("PatientID", "months since baseline"),
     ("patient number", "time_months"), ("Participant ID", "months on treatment")],
)
def test_documented_aliases(patient, month):
    p = read_panel(io.StringIO(f"sample_id,{patient},{month},IL10\ns1,A,0,1\ns2,A,3,2\n"))
    assert p.patient_id.tolist() == ["A", "A"] and p.month.tolist() == [0.0, 3.0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C", "P-1", "x y"]),
                          st.sampled_from([0, 0.5, 1, 3, 3.0, 6, 12.25])),
                min_size=1, max_size=12))
def test_visits_round_trip_and_duplicates_are_found_exactly(tmp_path_factory, visits):
    """Any set of (patient, month) rows: read back exactly through write_panel when the
    pairs are unique, refused naming every duplicated pair otherwise."""
    rows = [f"s{i},{p},{m},{i + 1}" for i, (p, m) in enumerate(visits)]
    text = "sample_id,patient_id,month,IL10\n" + "\n".join(rows) + "\n"
    keys = [(p, float(m)) for p, m in visits]
    dups = {k for k in keys if keys.count(k) > 1}
    if dups:
        with pytest.raises(InputError) as info:
            read_panel(io.StringIO(text))
        msg = "\n".join(str(x) for x in info.value.problems)
        for p, m in dups:
            assert f"patient '{p}' has {keys.count((p, m))} samples at month {m:g}" in msg
        return
    p = read_panel(io.StringIO(text))
    assert list(zip(p.patient_id, p.month, strict=True)) == keys
    out = tmp_path_factory.mktemp("rt") / "p.csv"
    write_panel(p, out)
    q = read_panel(out)
    assert list(zip(q.patient_id, q.month, strict=True)) == keys
    assert patients_without_baseline(q) == [x for x in dict.fromkeys(k[0] for k in keys)
                                            if (x, 0.0) not in keys]
