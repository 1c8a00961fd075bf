"""read_panel / write_panel on the canonical wide CSV: parsing, validation, round trips."""

from __future__ import annotations

import io
import math
import os
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cytoresp.errors import InputError, UsageError
from cytoresp.panels import MAX_PROBLEMS, panel_to_frame, read_panel, write_panel
from cytoresp.panels.panel import ABOVE, BELOW, OBSERVED, Panel
from cytoresp.panels.registry import get_analyte
from cytoresp.panels.values import parse_value_column


def read(text: str, **kw) -> Panel:
    return read_panel(io.StringIO(text), **kw)


def problems_of(text: str | bytes, **kw) -> list:
    src = io.BytesIO(text) if isinstance(text, bytes) else io.StringIO(text)
    with pytest.raises(InputError) as info:
        read_panel(src, **kw)
    return info.value.problems


GOOD = (
    "sample_id,plate,therapy,responder,age,sex,edss,disease_duration_y,relapses_prior_2y,"
    "gd_lesions,IFN-γ,IL-10 (ng/ml),IL17F\n"
    "P1,pl1,ifnb,1,34,F,2.5,3.1,1,0,3.2,<0.0005,16.5\n"
    "P2,pl1,GA,0,51,male,6,10,0,2,*1.5,0.0021,>ULOQ\n"
    "P3,pl2,,,,,,,,,,,\n"
)


# ---- the canonical file ------------------------------------------------------------


def test_reads_every_column_of_the_canonical_file():
    p = read(GOOD)
    assert list(p.sample_ids) == ["P1", "P2", "P3"]
    assert p.values.index.name == "sample_id"
    assert p.analytes == ["IFNG", "IL10", "IL17F"]
    np.testing.assert_array_equal(p.values["IFNG"], [3.2, 1.5, np.nan])
    np.testing.assert_allclose(p.values["IL10"], [0.5, 2.1, np.nan], rtol=1e-15)
    np.testing.assert_array_equal(p.values["IL17F"], [16.5, get_analyte("IL17F").uloq, np.nan])
    assert p.censoring.to_numpy().tolist() == [[0, BELOW, 0], [0, 0, ABOVE], [0, 0, 0]]
    assert p.censoring.dtypes.unique().tolist() == [np.dtype("int8")]
    assert p.therapy.tolist()[:2] == ["ifnb", "ga"] and pd.isna(p.therapy.iloc[2])
    np.testing.assert_array_equal(p.responder, [1.0, 0.0, np.nan])
    assert list(p.covariates.columns) == ["age", "sex", "edss", "disease_duration_y",
                                          "relapses_prior_2y", "gd_lesions"]
    np.testing.assert_array_equal(p.covariates.iloc[0], [34, 1, 2.5, 3.1, 1, 0])
    np.testing.assert_array_equal(p.covariates.iloc[1], [51, 0, 6, 10, 0, 2])
    assert p.covariates.iloc[2].isna().all()
    assert p.plate.tolist() == ["pl1", "pl1", "pl2"]
    assert p.source == "<file>"
    assert any("extrapolated" in w and "rows 3" in w for w in p.warnings)
    assert any("IL17F" in w and "registry ULOQ" in w for w in p.warnings)


def test_model_frame_encodes_below_limit_as_minus_the_limit():
    frame = read(GOOD).to_model_frame()
    assert frame.loc["P1", "IL10"] == -0.5
    assert frame.loc["P2", "IL17F"] == get_analyte("IL17F").uloq


@pytest.mark.parametrize(
    ("cell", "value", "code"),
    [
        ("3.25", 3.25, OBSERVED), ("1e-05", 1e-05, OBSERVED), (" 7 ", 7.0, OBSERVED),
        ("0", 0.0, OBSERVED), ("<0.64", 0.64, BELOW), ("< 0.64", 0.64, BELOW),
        ("<=0.64", 0.64, BELOW), ("< LLOQ", 0.56, BELOW), ("<LLOQ", 0.56, BELOW),
        ("OOR <", 0.56, BELOW), ("oor<", 0.56, BELOW), ("below detection", 0.56, BELOW),
        ("<LOD", 0.56, BELOW), ("BLQ", 0.56, BELOW), (">ULOQ", 2000.0, ABOVE),
        ("> 1000", 1000.0, ABOVE), ("OOR >", 2000.0, ABOVE), ("*12.3", 12.3, OBSERVED),
        ("12.3*", 12.3, OBSERVED), ("***", np.nan, OBSERVED), ("", np.nan, OBSERVED),
        ("NA", np.nan, OBSERVED), ("N/A", np.nan, OBSERVED), ("NaN", np.nan, OBSERVED),
        ("nan", np.nan, OBSERVED),
    ],
)
def test_cell_tokens(cell, value, code):
    p = read(f"sample_id,IL10\nA,{cell}\n")
    got = p.values.loc["A", "IL10"]
    assert (math.isnan(got) and math.isnan(value)) or got == value
    assert p.censoring.loc["A", "IL10"] == code


@pytest.mark.parametrize(
    ("header", "cell", "expected"),
    [
        ("IL6 (pg/mL)", "2", 2.0), ("IL6 (ng/ml)", "2", 2000.0), ("IL6 [ng/mL]", "<2", 2000.0),
        ("IL6 (µg/mL)", "2", 2e6), ("IL6 (ug/ml)", "2", 2e6), ("IL6 (μg/ml)", "2", 2e6),
        ("IL6 (fg/mL)", "2000", 2.0), ("IL6_ngml", "0.5", 500.0), ("IL6 (ng/L)", "7", 7.0),
    ],
)
def test_units_in_headers_are_converted_to_pg_ml(header, cell, expected):
    p = read(f"sample_id,{header}\nA,{cell}\n")
    assert p.values.loc["A", "IL6"] == pytest.approx(expected, rel=1e-15)


def test_registry_limit_is_not_scaled_by_the_column_unit():
    p = read("sample_id,IL6 (ng/ml)\nA,OOR <\n")
    assert p.values.loc["A", "IL6"] == get_analyte("IL6").lloq


@pytest.mark.parametrize("alias", ["sample_id", "Sample", "Sample ID", "SampleID", "SAMPLE_ID",
                                   "Description", "sample-id"])
def test_sample_id_aliases(alias):
    assert list(read(f"{alias},IL6\nA,1\n").sample_ids) == ["A"]


def test_sample_id_alias_priority_and_extra_alias_ignored():
    p = read("Description,Sample ID,IL6\nd1,S1,1\n")
    assert list(p.sample_ids) == ["S1"]
    assert any("'Description'" in w for w in p.warnings)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("ifnb", "ifnb"), ("IFNB", "ifnb"), ("IFN-beta", "ifnb"), ("IFN-β", "ifnb"),
     ("interferon beta", "ifnb"), ("Interferon beta-1a", "ifnb"), ("Rebif", "ifnb"),
     ("ga", "ga"), ("GA", "ga"), ("glatiramer", "ga"), ("Glatiramer acetate", "ga"),
     ("Copaxone", "ga")],
)
def test_therapy_spellings(cell, expected):
    assert read(f"sample_id,therapy,IL6\nA,{cell},1\n").therapy.iloc[0] == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("1", 1.0), ("0", 0.0), ("1.0", 1.0), ("true", 1.0), ("FALSE", 0.0), ("yes", 1.0),
     ("No", 0.0)],
)
def test_responder_spellings(cell, expected):
    assert read(f"sample_id,responder,IL6\nA,{cell},1\n").responder.iloc[0] == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("F", 1.0), ("f", 1.0), ("female", 1.0), ("1", 1.0), ("M", 0.0), ("male", 0.0),
     ("m", 0.0), ("0", 0.0)],
)
def test_sex_coding(cell, expected):
    assert read(f"sample_id,sex,IL6\nA,{cell},1\n").covariates.loc["A", "sex"] == expected


def test_covariate_given_as_a_bound_is_read_as_the_bound():
    p = read("sample_id,age,IL6\nA,>90,1\nB,45,1\n")
    assert p.covariates["age"].tolist() == [90.0, 45.0]
    assert any("'>90'" in w and "rows 2" in w for w in p.warnings)


def test_plate_or_batch_column():
    assert read("sample_id,batch,IL6\nA,b7,1\n").plate.tolist() == ["b7"]


def test_unknown_columns_are_warned_and_not_used():
    p = read("sample_id,IL6,favourite_colour,IL-99\nA,1,red,3\n")
    assert p.analytes == ["IL6"]
    assert len(p.covariates.columns) == 0
    (w,) = [w for w in p.warnings if "ignored" in w]
    assert "'favourite_colour'" in w and "'IL-99'" in w


def test_interpreted_names_warn():
    p = read("sample_id,IL-12,IL-17\nA,1,2\n")
    assert p.analytes == ["IL12", "IL17A"]
    assert any("IL-12p70" in w for w in p.warnings)


def test_blank_rows_and_semicolons_and_bom():
    text = "\ufeffsample_id;IL6;IL10\r\nA;1;<0.5\r\n;;\r\n\r\nB;2;3\r\n"
    p = read_panel(io.BytesIO(text.encode("utf-8")))
    assert list(p.sample_ids) == ["A", "B"]
    assert p.values["IL10"].tolist() == [0.5, 3.0]


def test_row_numbers_count_blank_lines_and_quoted_newlines():
    text = '\nsample_id,IL6\nA,1\n\n"B\nb",x\nC,y\n'
    probs = problems_of(text)
    assert [(p.row, p.column) for p in probs] == [(5, "IL6"), (6, "IL6")]


def test_paths_stdin_and_file_objects_give_the_same_panel(tmp_path, monkeypatch):
    path = tmp_path / "panel.csv"
    path.write_text(GOOD, encoding="utf-8")
    from_path = read_panel(path)
    from_str = read_panel(str(path))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(GOOD.encode())))
    from_stdin = read_panel("-")
    with open(path, "rb") as fh:
        from_binary = read_panel(fh)
    assert from_path.source == str(path) and from_stdin.source == "<stdin>"
    assert from_binary.source == str(path)
    for other in (from_str, from_stdin, from_binary):
        pd.testing.assert_frame_equal(other.values, from_path.values)
        pd.testing.assert_frame_equal(other.censoring, from_path.censoring)
        pd.testing.assert_frame_equal(other.covariates, from_path.covariates)


def test_dataframe_input_matches_its_csv(cohort):
    df = cohort.panel
    from_frame = read_panel(df)
    from_csv = read(df.to_csv(index=False))
    assert from_frame.source == "<DataFrame>"
    pd.testing.assert_frame_equal(from_frame.values, from_csv.values)
    pd.testing.assert_frame_equal(from_frame.censoring, from_csv.censoring)
    pd.testing.assert_frame_equal(from_frame.covariates, from_csv.covariates)
    pd.testing.assert_series_equal(from_frame.therapy, from_csv.therapy)
    pd.testing.assert_series_equal(from_frame.responder, from_csv.responder)
    assert from_frame.warnings == []
    assert set(from_frame.therapy) == {"ifnb", "ga"}
    assert (from_frame.censoring == BELOW).to_numpy().any()


def test_dataframe_with_numbers_objects_and_int_ids():
    df = pd.DataFrame({
        "Sample": [1, 2, 3],
        "IL6": [0.1, np.nan, 2.0],
        "IL10": pd.Series([0.25, "<0.5", None], dtype=object),
        "responder": pd.array([1, None, 0], dtype="Int64"),
    })
    p = read_panel(df)
    assert list(p.sample_ids) == ["1", "2", "3"]
    assert p.values["IL6"].tolist()[0] == 0.1 and math.isnan(p.values["IL6"].iloc[1])
    assert p.values["IL10"].tolist()[:2] == [0.25, 0.5]
    assert p.censoring["IL10"].tolist() == [0, BELOW, 0]
    np.testing.assert_array_equal(p.responder, [1.0, np.nan, 0.0])


def test_dataframe_indexed_by_sample_id():
    df = pd.DataFrame({"IL6": [1.0, 2.0]}, index=pd.Index(["a", "b"], name="sample_id"))
    assert list(read_panel(df).sample_ids) == ["a", "b"]


@pytest.mark.parametrize(
    ("column", "match"),
    [(pd.Series([True, False]), "not a concentration: 'True'"),
     (pd.Series([1 + 2j, 1.0]), "not a concentration: '\\(1\\+2j\\)'")],
)
def test_dataframe_bool_and_complex_cells_are_errors(column, match):
    with pytest.raises(InputError, match=match):
        read_panel(pd.DataFrame({"sample_id": ["a", "b"], "IL6": column}))


# ---- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "row", "column", "match"),
    [
        ("", None, None, "the file is empty"),
        ("  \n\n", None, None, "the file is empty"),
        ("IL6,IL10\n1,2\n", None, None, "no sample id column"),
        ("sample_id,age\nA,3\n", None, None, "no column is a known analyte"),
        ("sample_id,IL6\n", None, None, "no data rows"),
        ("sample_id,IL6\nA,abc\n", 2, "IL6", "not a concentration: 'abc'"),
        ("sample_id,IL6\nA,0,64\n", 2, None, "3 fields but the header has 2"),
        ("sample_id;IL6\nA;0,64\n", 2, "IL6", "decimal comma"),
        ("sample_id,IL6\nA,ND\n", 2, "IL6", "'ND' is ambiguous"),
        ("sample_id,IL6\nA,-2\n", 2, "IL6", "negative concentration"),
        ("sample_id,IL6\nA,<0\n", 2, "IL6", "must be a positive number"),
        ("sample_id,IL6\nA,inf\n", 2, "IL6", "not a concentration"),
        ("sample_id,IL6 (U/mL)\nA,1\n", None, "IL6 (U/mL)", "unknown unit 'U/mL' for analyte IL6"),
        ("sample_id,IL6 (NPX)\nA,1\n", None, "IL6 (NPX)", "unknown unit 'NPX'"),
        ("sample_id,IL6\n,1\n", 2, "sample_id", "empty sample id"),
        ("sample_id,IL6\nA,1\nB,2\nA,3\n", None, "sample_id",
         "duplicate sample id 'A' in rows 2, 4"),
        ("sample_id,IL6,IL-6 (pg/ml)\nA,1,1\n", None, None, "'IL6' and 'IL-6 (pg/ml)' both give"),
        ("sample_id,age,Age\nA,1,1\n", None, None, "both give age"),
        ("sample_id,IL-1\nA,1\n", None, "IL-1", "ambiguous analyte name"),
        ("sample_id,therapy,IL6\nA,aspirin,1\n", 2, "therapy", "unknown therapy 'aspirin'"),
        ("sample_id,responder,IL6\nA,2,1\n", 2, "responder", "responder must be 0 or 1"),
        ("sample_id,responder,IL6\nA,maybe,1\n", 2, "responder", "got 'maybe'"),
        ("sample_id,sex,IL6\nA,x,1\n", 2, "sex", "sex must be F/M"),
        ("sample_id,age,IL6\nA,130,1\n", 2, "age", "outside the plausible range 0 to 120"),
        ("sample_id,age,IL6\nA,-1,1\n", 2, "age", "outside the plausible range"),
        ("sample_id,age,IL6\nA,old,1\n", 2, "age", "age must be a number"),
        ("sample_id,age,IL6\nA,OOR <,1\n", 2, "age", "age must be a number"),
        ("sample_id,age,IL6\nA,>130,1\n", 2, "age", "outside the plausible range"),
        ("sample_id,edss,IL6\nA,10.5,1\n", 2, "edss", "outside the plausible range 0 to 10"),
        ("sample_id,gd_lesions,IL6\nA,-1,1\n", 2, "gd_lesions", "plausible range >= 0"),
        ("sample_id,relapses_prior_2y,IL6\nA,1.5,1\n", 2, "relapses_prior_2y", "whole number"),
        ("sample_id,disease_duration_y,IL6\nA,-0.5,1\n", 2, "disease_duration_y", "range"),
    ],
)
def test_each_error_names_row_column_and_fix(text, row, column, match):
    probs = problems_of(text)
    hits = [p for p in probs if match in p.message]
    assert hits, [str(p) for p in probs]
    assert (hits[0].row, hits[0].column) == (row, column)
    assert hits[0].file == "<file>"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        ("sample_id,IL6\nA,1\n".encode("utf-16"), "UTF-16"),
        ("sample_id,IL6\nJosé,1\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_binary_and_non_utf8_files(data, match):
    (p,) = problems_of(data)
    assert match in p.message


def test_non_utf8_names_its_line():
    (p,) = problems_of("sample_id,IL6\nA,1\nJosé,1\n".encode("latin-1"))
    assert p.row == 3


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("sample_id,IL6\nA,1\n", "training data needs a 'therapy' column"),
        ("sample_id,IL6\nA,1\n", "training data needs a 'responder' column"),
        ("sample_id,therapy,responder,IL6\nA,,1,1\n", "empty therapy"),
        ("sample_id,therapy,responder,IL6\nA,ga,,1\n", "empty responder"),
    ],
)
def test_require_labels(text, match):
    assert any(match in p.message for p in problems_of(text, require_labels=True))
    read(text)  # the same file is fine without require_labels


def test_every_problem_is_reported_in_one_pass():
    text = (
        "sample_id,IL6,therapy,age,IL10 (U/ml)\n"
        "A,abc,ga,34,1\n"
        "A,2,xyz,200,1\n"
        ",-3,ga,40,1\n"
    )
    probs = problems_of(text)
    got = {(p.row, p.column, p.message.split(":")[0].split(" '")[0]) for p in probs}
    assert (2, "IL6", "not a concentration") in got
    assert (3, "therapy", "unknown therapy") in got
    assert (3, "age", "age") in got
    assert (4, "IL6", "negative concentration 'The value") not in got
    assert any(p.row == 4 and p.column == "IL6" and "negative" in p.message for p in probs)
    assert any(p.row == 4 and p.column == "sample_id" for p in probs)
    assert any("duplicate sample id 'A'" in p.message for p in probs)
    assert any("unknown unit" in p.message for p in probs)
    assert len(probs) == 7
    # cell problems are listed in row order after the file-level ones
    cell_rows = [p.row for p in probs if p.row is not None]
    assert cell_rows == sorted(cell_rows)


def test_problem_list_is_capped_with_a_count_of_the_rest():
    rows = "".join(f"S{i},bad,worse\n" for i in range(100))
    probs = problems_of("sample_id,IL6,IL10\n" + rows)
    assert len(probs) == MAX_PROBLEMS + 1
    assert "150 more problem(s) not listed" in probs[-1].message
    assert [p.row for p in probs[:4]] == [2, 2, 3, 3]


def test_input_error_message_names_file_row_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("sample_id,IL6\nA,abc\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.csv, row 2, column 'IL6': not a concentration"):
        read_panel(path)


@pytest.mark.parametrize(
    ("source", "error", "match"),
    [
        (12, UsageError, "takes a path"),
        ("/no/such/file.csv", InputError, "file not found"),
    ],
)
def test_bad_sources(source, error, match):
    with pytest.raises(error, match=match):
        read_panel(source)


def test_directory_and_bad_format(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read_panel(tmp_path)
    with pytest.raises(UsageError, match="format must be one of"):
        read_panel(io.StringIO("sample_id,IL6\nA,1\n"), format="json")


# ---- parse_value_column ------------------------------------------------------------


def test_parse_value_column_flags():
    s = pd.Series(["1.5", "<0.5", "< LLOQ", ">ULOQ", "*2", "***", "x", "-1", "<0", None])
    v, c, f = parse_value_column(s, lloq=0.1, uloq=100.0)
    assert v.dtype == np.float64 and c.dtype == np.int8
    np.testing.assert_array_equal(
        v, [1.5, 0.5, 0.1, 100.0, 2.0, np.nan, np.nan, np.nan, np.nan, np.nan])
    assert c.tolist() == [0, -1, -1, 1, 0, 0, 0, 0, 0, 0]
    assert f.missing.tolist() == [False] * 5 + [True, False, False, False, True]
    assert np.flatnonzero(f.extrapolated).tolist() == [4]
    assert np.flatnonzero(f.invalid).tolist() == [6]
    assert np.flatnonzero(f.negative).tolist() == [7]
    assert np.flatnonzero(f.bad_limit).tolist() == [8]
    assert np.flatnonzero(f.no_limit).tolist() == [2, 3]
    assert np.flatnonzero(f.errors).tolist() == [6, 7, 8]


def test_parse_value_column_numeric_input():
    v, c, f = parse_value_column(pd.Series([1.0, np.nan, -2.0, np.inf]))
    np.testing.assert_array_equal(v, [1.0, np.nan, np.nan, np.nan])
    assert c.tolist() == [0, 0, 0, 0]
    assert f.missing.tolist() == [False, True, False, False]
    assert f.negative.tolist() == [False, False, True, False]
    assert f.invalid.tolist() == [False, False, False, True]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=20))
def test_parse_value_column_never_fails_and_is_consistent(cells):
    v, c, f = parse_value_column(pd.Series(cells, dtype=object))
    n = len(cells)
    assert v.shape == c.shape == (n,)
    assert set(c.tolist()) <= {-1, 0, 1}
    # every cell is exactly one of: a value, censored, missing, or an error
    has_value = ~np.isnan(v)
    assert not (has_value & (f.missing | f.errors)).any()
    assert (has_value | f.missing | f.errors | f.no_limit).all()
    assert (v[has_value] >= 0).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, allow_infinity=False, allow_nan=False), max_size=20))
def test_numbers_as_text_parse_back_exactly(xs):
    text = pd.Series([repr(x) for x in xs], dtype=object)
    v, c, _ = parse_value_column(text)
    np.testing.assert_array_equal(v, np.asarray(xs, dtype=np.float64))
    assert (c == 0).all()


# ---- writing -----------------------------------------------------------------------


def test_panel_to_frame_layout():
    frame = panel_to_frame(read(GOOD))
    assert list(frame.columns) == [
        "sample_id", "plate", "therapy", "responder", "age", "sex", "edss",
        "disease_duration_y", "relapses_prior_2y", "gd_lesions", "IFNG", "IL10", "IL17F"]
    assert frame.iloc[0].tolist() == ["P1", "pl1", "ifnb", "1", "34", "F", "2.5", "3.1", "1", "0",
                                      "3.2", "<0.5", "16.5"]
    assert frame.iloc[1, -3:].tolist() == ["1.5", "2.1", f">{get_analyte('IL17F').uloq:g}"]
    assert frame.iloc[2].tolist() == ["P3", "pl2"] + [""] * 11


def test_write_panel_round_trips_the_canonical_file(tmp_path):
    p = read(GOOD)
    out = tmp_path / "out.csv"
    write_panel(p, out)
    assert_panels_equal(read_panel(out), p)
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("sample_id,plate,therapy,responder,age")
    assert oct(out.stat().st_mode & 0o777) != "0o600"  # not mkstemp's private mode
    assert [f.name for f in tmp_path.iterdir()] == ["out.csv"]


def test_write_panel_to_stdout_and_binary_file(capsysbinary, tmp_path):
    p = read("sample_id,IL6\nA,<0.11\nB,2.5\n")
    write_panel(p, "-")
    assert capsysbinary.readouterr().out == b"sample_id,IL6\nA,<0.11\nB,2.5\n"
    with open(tmp_path / "x.csv", "wb") as fh:
        write_panel(p, fh)
    assert (tmp_path / "x.csv").read_bytes() == b"sample_id,IL6\nA,<0.11\nB,2.5\n"


def test_write_panel_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    out.write_text("old content", encoding="utf-8")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_panel(read(GOOD), out)
    assert out.read_text(encoding="utf-8") == "old content"
    assert [f.name for f in tmp_path.iterdir()] == ["out.csv"]


def test_write_panel_bad_destination(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        write_panel(read(GOOD), tmp_path / "nope" / "out.csv")


def assert_panels_equal(a: Panel, b: Panel) -> None:
    pd.testing.assert_frame_equal(a.values, b.values, check_exact=True)
    pd.testing.assert_frame_equal(a.censoring, b.censoring)
    pd.testing.assert_frame_equal(a.covariates, b.covariates, check_exact=True)
    for name in ("therapy", "responder", "plate"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            pd.testing.assert_series_equal(x, y, check_exact=True)


_ids = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp", "Zs")),
    min_size=1, max_size=8,
).map(lambda s: s.strip()).filter(bool)
_conc = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)


@st.composite
def panels(draw) -> Panel:
    n = draw(st.integers(1, 8))
    ids = draw(st.lists(_ids, min_size=n, max_size=n, unique=True))
    analytes = draw(st.lists(st.sampled_from(["IFNG", "IL10", "IL17F", "CXCL10", "TGFB1"]),
                             min_size=1, max_size=3, unique=True))
    index = pd.Index(ids, name="sample_id", dtype=object)
    vals = np.array([[draw(_conc) for _ in analytes] for _ in range(n)], dtype=np.float64)
    cens = np.array([[draw(st.sampled_from([0, 0, -1, 1])) for _ in analytes] for _ in range(n)],
                    dtype=np.int8)
    missing = np.array([[draw(st.booleans()) and draw(st.booleans()) for _ in analytes]
                        for _ in range(n)])
    vals[missing] = np.nan
    cens[missing] = 0
    cols = pd.Index(analytes, dtype=object)
    covs = pd.DataFrame(index=index, columns=pd.Index([], dtype=object), dtype=np.float64)
    if draw(st.booleans()):
        covs = pd.DataFrame({
            "age": [draw(st.one_of(st.none(), st.floats(0, 120))) for _ in range(n)],
            "sex": [draw(st.sampled_from([0.0, 1.0, None])) for _ in range(n)],
            "gd_lesions": [draw(st.sampled_from([0.0, 3.0, None])) for _ in range(n)],
        }, index=index, dtype=np.float64)
        covs.columns = pd.Index(list(covs.columns), dtype=object)
    therapy = responder = plate = None
    if draw(st.booleans()):
        therapy = pd.Series([draw(st.sampled_from(["ifnb", "ga", np.nan])) for _ in range(n)],
                            index=index, name="therapy", dtype=object)
        responder = pd.Series([draw(st.sampled_from([0.0, 1.0, np.nan])) for _ in range(n)],
                              index=index, name="responder", dtype=np.float64)
    if draw(st.booleans()):
        plate = pd.Series([draw(st.one_of(_ids, st.just(np.nan))) for _ in range(n)],
                          index=index, name="plate", dtype=object)
    return Panel(pd.DataFrame(vals, index=index, columns=cols),
                 pd.DataFrame(cens, index=index, columns=cols), covs, therapy, responder, plate)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panels())
def test_write_then_read_round_trips_exactly(panel):
    buf = io.StringIO()
    write_panel(panel, buf)
    back = read_panel(io.StringIO(buf.getvalue()))
    assert_panels_equal(back, panel)
    # and writing again gives the same bytes
    buf2 = io.StringIO()
    write_panel(back, buf2)
    assert buf2.getvalue() == buf.getvalue()
