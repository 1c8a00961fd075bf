"""Streaming batch scoring: same answers as whole-file scoring, errors with the right rows."""

from __future__ import annotations

import io
import sys

import numpy as np
import pandas as pd
import pytest

from cytoresp.errors import InputError
from cytoresp.models.choice import RECOMMENDATION_COLUMNS
from cytoresp.panels.stream import PanelStream
from cytoresp.predict.batch import score_file, score_frame, score_panel, xgboost_threads
from cytoresp.predict.streaming import TableWriter


@pytest.fixture(scope="module")
def new_table():
    """600 new simulated patients as the canonical text table (censored cells included)."""
    from cytoresp.datasets import simulate_cohort

    return simulate_cohort(600, seed=23).panel


@pytest.fixture(scope="module")
def new_csv(new_table, tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "new.csv"
    new_table.to_csv(path, index=False)
    return path


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, dtype={"sample_id": str})


@pytest.mark.parametrize("explain", [0, 3])
def test_streamed_csv_equals_whole_file_scoring(trained, new_csv, tmp_path, explain):
    model = trained[0]
    out = tmp_path / "pred.csv"
    summary = score_file(model, new_csv, out, explain=explain, chunk_rows=97)
    got = _read(out)
    ref = score_panel(model, new_csv, explain=explain)
    assert summary.n_rows == len(ref) == 600
    assert list(got.columns) == list(ref.columns)
    assert got["sample_id"].tolist() == ref["sample_id"].tolist()
    for col in ref.columns:
        if col.startswith("p_response_"):
            np.testing.assert_array_equal(got[col].to_numpy(), ref[col].to_numpy())
        elif col.startswith("difference_"):  # matrix products may round by chunk size
            np.testing.assert_allclose(got[col], ref[col], rtol=0, atol=1e-12)
        else:
            assert got[col].tolist() == ref[col].tolist(), col
    assert summary.n_with_warnings == int((ref["warnings"] != "").sum())
    # the header is written once
    assert out.read_text(encoding="utf-8").count("sample_id") == 1


def test_parquet_in_and_out_equal_csv(trained, new_table, new_csv, tmp_path):
    model = trained[0]
    pq_in = tmp_path / "new.parquet"
    new_table.to_parquet(pq_in, index=False)
    assert PanelStream(pq_in).mode == "parquet"
    out = tmp_path / "pred.parquet"
    score_file(model, pq_in, out, explain=2, chunk_rows=128)
    got = pd.read_parquet(out)
    ref = score_panel(model, new_csv, explain=2)
    assert got["sample_id"].tolist() == ref["sample_id"].tolist()
    np.testing.assert_allclose(got["p_response_ga"], ref["p_response_ga"], rtol=0, atol=0)
    assert got["drivers_ifnb"].tolist() == ref["drivers_ifnb"].tolist()
    assert got["recommended_therapy"].tolist() == ref["recommended_therapy"].tolist()


def test_blank_lines_quotes_and_bom_are_read_like_the_whole_file(trained, tmp_path):
    model = trained[0]
    text = (
        "\ufeffsample_id,IFNG,IL10,IL17F\n"
        '"P,1",1.5,<0.5,3\n'
        "\n"
        "P2,2.5,0.8,\n"
        '"P3",OOR <,1.2,40\n'
        ",,,\n"
        "P4,*3.1,>900,12\n"
    )
    src = tmp_path / "odd.csv"
    src.write_text(text, encoding="utf-8")
    out = tmp_path / "p.csv"
    assert PanelStream(src).mode == "csv"
    score_file(model, src, out, chunk_rows=2)
    got = _read(out)
    ref = score_panel(model, src)
    assert got["sample_id"].tolist() == ["P,1", "P2", "P3", "P4"] == ref["sample_id"].tolist()
    np.testing.assert_array_equal(got["p_response_ifnb"], ref["p_response_ifnb"])
    assert got["warnings"].tolist() == ref["warnings"].tolist()


def test_bad_cells_in_later_chunks_are_reported_with_file_rows(trained, new_table, tmp_path):
    table = new_table.copy()
    table.loc[250, "IFNG"] = "abc"  # spreadsheet row 252
    table.loc[431, "IL10"] = "1,5"  # spreadsheet row 433
    src = tmp_path / "bad.csv"
    table.to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    with pytest.raises(InputError) as info:
        score_file(trained[0], src, out, chunk_rows=100)
    rows = [(p.row, p.column) for p in info.value.problems]
    assert rows == [(252, "IFNG"), (433, "IL10")]
    assert all(p.file == str(src) for p in info.value.problems)
    assert "decimal comma" in str(info.value)
    assert not out.exists()
    assert list(tmp_path.glob(".pred.csv.*")) == []
    # the whole-file reader says the same
    from cytoresp.panels.read import read_panel

    with pytest.raises(InputError) as whole:
        read_panel(src)
    assert [str(p) for p in whole.value.problems] == [str(p) for p in info.value.problems]


def test_duplicate_ids_across_chunks_fail_with_both_rows(trained, new_table, tmp_path):
    table = new_table.copy()
    table.loc[480, "sample_id"] = table.loc[7, "sample_id"]  # rows 9 and 482
    src = tmp_path / "dup.csv"
    table.to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    with pytest.raises(InputError, match=r"duplicate sample id .* in rows 9, 482") as info:
        score_file(trained[0], src, out, chunk_rows=50)
    assert info.value.problems[0].column == "sample_id"
    assert not out.exists()


def test_header_problem_is_reported_once(trained, tmp_path):
    src = tmp_path / "nohead.csv"
    src.write_text("sample_id,foo\n" + "".join(f"S{i},1\n" for i in range(300)))
    with pytest.raises(InputError) as info:
        score_file(trained[0], src, tmp_path / "o.csv", chunk_rows=10)
    assert len(info.value.problems) == 1
    assert "no column is a known analyte" in info.value.problems[0].message


def test_many_problems_are_capped_and_counted(trained, new_table, tmp_path):
    table = new_table.copy()
    table["IFNG"] = "x"
    src = tmp_path / "many.csv"
    table.to_csv(src, index=False)
    with pytest.raises(InputError) as info:
        score_file(trained[0], src, tmp_path / "o.csv", chunk_rows=40)
    problems = info.value.problems
    assert problems[0].row == 2
    assert [p.row for p in problems[:-1]] == sorted(p.row for p in problems[:-1])
    assert problems[-1].message.startswith("... and")


def test_empty_and_header_only_files(trained, tmp_path):
    head = tmp_path / "head.csv"
    head.write_text("sample_id,IFNG\n\n\n")
    with pytest.raises(InputError, match="header but no data rows"):
        score_file(trained[0], head, tmp_path / "o.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        score_file(trained[0], empty, tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()


def test_whole_file_formats_fall_back(trained, new_table, tmp_path):
    long = new_table.melt(
        id_vars=["sample_id"],
        value_vars=["IFNG", "IL10", "IL17F"],
        var_name="analyte",
        value_name="value",
    )
    src = tmp_path / "long.csv"
    long.to_csv(src, index=False)
    stream = PanelStream(src)
    assert stream.mode == "whole"
    out = tmp_path / "p.csv"
    score_file(trained[0], src, out, chunk_rows=64)
    got = _read(out)
    ref = score_panel(trained[0], src)
    assert got["sample_id"].tolist() == ref["sample_id"].tolist()
    np.testing.assert_array_equal(got["p_response_ga"], ref["p_response_ga"])


def test_stdin_is_streamed(trained, new_csv, tmp_path, monkeypatch):
    data = new_csv.read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    out = tmp_path / "p.csv"
    score_file(trained[0], "-", out, chunk_rows=111)
    got = _read(out)
    ref = score_panel(trained[0], new_csv)
    assert got["sample_id"].tolist() == ref["sample_id"].tolist()
    np.testing.assert_array_equal(got["p_response_ifnb"], ref["p_response_ifnb"])


def test_dataframe_source_is_scored_in_chunks(trained, new_table, tmp_path):
    out = tmp_path / "p.csv"
    summary = score_file(trained[0], new_table, out, chunk_rows=250)
    assert summary.n_rows == 600
    assert _read(out)["sample_id"].tolist() == new_table["sample_id"].tolist()


def test_chunked_scores_equal_the_models_own_whole_panel_answers(trained, new_csv, tmp_path):
    """The streamed table carries what the model's public API says on the whole panel."""
    from cytoresp.panels import read_panel

    model = trained[0]
    assert model.choice is not None
    out = tmp_path / "pred.csv"
    score_file(model, new_csv, out, chunk_rows=97)
    got = _read(out)
    assert list(got.columns) == [
        "sample_id",
        "p_response_ifnb",
        "p_response_ga",
        *RECOMMENDATION_COLUMNS,
        "warnings",
    ]
    panel = read_panel(new_csv)
    proba = model.predict_proba(panel)
    rec = model.recommend(panel)
    assert got["sample_id"].tolist() == list(proba.index) == list(rec.index)
    for t in ("ifnb", "ga"):  # CSV keeps the shortest round-trip form: exact
        np.testing.assert_array_equal(got[f"p_response_{t}"], proba[f"p_response_{t}"])
    assert got["recommended_therapy"].tolist() == rec["recommended_therapy"].tolist()
    for col in ("difference", "difference_lower", "difference_upper"):
        np.testing.assert_allclose(got[col], rec[col], rtol=0, atol=1e-12, err_msg=col)
    for col in ("leading_therapy", "runner_up", "recommendation_reason"):
        assert got[col].tolist() == rec[col].tolist(), col
    assert {"ifnb", "ga", "either"} >= set(got["recommended_therapy"])
    assert len(set(got["recommended_therapy"])) >= 2
    assert (got["difference_lower"] <= got["difference_upper"]).all()


def test_recommendation_without_a_stored_choice_is_either(trained, new_csv):
    import dataclasses

    model = dataclasses.replace(trained[0], choice=None)
    got = score_frame(model, model.model_frame(new_csv))
    assert (got["recommended_therapy"] == "either").all()
    assert got["recommendation_reason"].str.contains("no cohort-level heterogeneity test").all()


def test_one_therapy_has_no_recommendation_columns(trained, new_csv):
    model = trained[0]
    got = score_frame(model, model.model_frame(new_csv), therapy="ga")
    assert list(got.columns) == ["sample_id", "p_response_ga", "warnings"]


def test_xgboost_threads_are_restored(trained):
    import json

    model = trained[0]
    booster = model.heads["ifnb"].model.booster_

    def nthread() -> str:
        return json.loads(booster.save_config())["learner"]["generic_param"]["nthread"]

    before = nthread()
    with xgboost_threads(model, 3):
        assert nthread() == "3"
    assert nthread() == before


def test_progress_bar_on_a_terminal_only(trained, new_csv, tmp_path):
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    score_file(trained[0], new_csv, tmp_path / "p.csv", chunk_rows=100, progress=console)
    assert "rows/s" in buf.getvalue()


def test_cli_predict_is_quiet_when_piped(model_dir, new_csv, tmp_path, capsys):
    from cytoresp.cli import main

    out = tmp_path / "p.csv"
    assert (
        main(["predict", "--model", str(model_dir), "--input", str(new_csv), "--output", str(out)])
        == 0
    )
    err = capsys.readouterr().err
    assert "rows/s" not in err and "scored 600 samples" in err


def test_table_writer_failure_leaves_nothing(tmp_path):
    dest = tmp_path / "o.parquet"
    with pytest.raises(RuntimeError):
        with TableWriter(dest) as out:
            out.write(pd.DataFrame({"a": [1.0]}))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


# -- the vectorised text helpers of the batch output ---------------------------------------


def _drivers_reference(contrib, Z, background, k):
    """The former per-row formatting (stable argsort, printf)."""
    values = contrib.to_numpy()
    k = min(k, values.shape[1])
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
    out = []
    for i in range(len(values)):
        parts = []
        for j in order[i]:
            dev = Z.to_numpy()[i, j] - background[j]
            arrow = "?" if np.isnan(dev) else ("↑" if dev >= 0 else "↓")
            parts.append(f"{contrib.columns[j]}{arrow} " + "%+.2f" % values[i, j])  # noqa: UP031
        out.append("; ".join(parts))
    return out


def test_format_drivers_matches_the_reference_with_ties_and_nan():
    from cytoresp.models.response_model import format_drivers

    rng = np.random.default_rng(4)
    n, m = 400, 7
    vals = np.round(rng.normal(0, 0.3, (n, m)), 1)  # many ties
    vals[::9, 2] = np.nan
    vals[::11] = 0.0
    vals[5, 0] = 0.125  # half-way cases
    vals[6, 0] = -0.005
    vals[7, 0] = -0.0
    cols = [f"C{j}" for j in range(m)]
    contrib = pd.DataFrame(vals, columns=cols)
    Z = pd.DataFrame(rng.normal(0, 1, (n, m)), columns=cols)
    Z.iloc[::5, 1] = np.nan
    bg = np.zeros(m)
    for k in (1, 3, 7, 10):
        got = format_drivers(contrib, Z, bg, k).tolist()
        assert got == _drivers_reference(contrib, Z, bg, k)


def test_row_warnings_lists_missing_and_outside_in_column_order():
    from cytoresp.models.response_model import row_warnings

    frame = pd.DataFrame(
        {
            "A": [1.0, np.nan, 50.0, -0.2, np.nan],
            "B": [2.0, 2.0, np.nan, 9.0, 0.01],
            "C": [1.0, 1.0, 1.0, 1.0, 1.0],
        }
    )
    ranges = {"A": (0.5, 10.0), "B": (0.1, 5.0)}
    got = row_warnings(frame, ["A", "B", "C"], ranges).tolist()
    assert got == [
        "",
        "missing: A",
        "missing: B; outside training range: A",
        "outside training range: B",  # A censored below its limit: not 'outside'
        "missing: A; outside training range: B",
    ]
