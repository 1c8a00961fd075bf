"""read_panel applies the input size guards itself, and quotes long cells only in part."""

from __future__ import annotations

import io
import re
import sys

import pandas as pd
import pytest

from cytoresp.errors import MAX_QUOTED_CHARS, InputError, Problem, quote_cell
from cytoresp.panels.read import read_panel

CSV = "sample_id,IFNG,IL10\nP1,3.2,1.0\nP2,4.1,2.0\n"


# -- size guards on every entry point -----------------------------------------------------


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


@pytest.mark.parametrize("kind", ["path", "stdin", "text stream", "binary stream", "frame"])
@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"CYTORESP_MAX_COLUMNS": "2"}, "the header has 3 columns, more than the limit of 2"),
        ({"CYTORESP_MAX_CELLS": "4"}, "more than the limit of 4 cells"),
        ({"CYTORESP_MAX_INPUT_BYTES": "10"}, "larger than the limit of 10 bytes"),
    ],
)
def test_read_panel_refuses_oversized_input_from_every_source(
    kind, env, match, tmp_path, monkeypatch
):
    if kind == "frame" and "CYTORESP_MAX_INPUT_BYTES" in env:
        pytest.skip("a DataFrame has no byte size to bound")
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    path = tmp_path / f"{kind.replace(' ', '_')}.csv"
    path.write_text(CSV)
    source = {
        "path": str(path),
        "stdin": "-",
        "text stream": io.StringIO(CSV),
        "binary stream": io.BytesIO(CSV.encode()),
        "frame": pd.read_csv(io.StringIO(CSV), dtype=str),
    }[kind]
    if kind == "stdin":
        _stdin(monkeypatch, CSV.encode())
    with pytest.raises(InputError, match=match):
        read_panel(source)


@pytest.mark.parametrize("kind", ["path", "stdin", "text stream", "frame"])
def test_read_panel_accepts_input_within_the_limits(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("CYTORESP_MAX_COLUMNS", "3")
    path = tmp_path / "ok.csv"
    path.write_text(CSV)
    if kind == "stdin":
        _stdin(monkeypatch, CSV.encode())
    source = {"path": path, "stdin": "-", "text stream": io.StringIO(CSV),
              "frame": pd.read_csv(io.StringIO(CSV), dtype=str)}[kind]
    assert read_panel(source).values["IFNG"].tolist() == [3.2, 4.1]


def test_read_panel_checks_a_path_before_reading_it(tmp_path, monkeypatch):
    """The size check comes first: the file is never read into memory."""
    from pathlib import Path

    path = tmp_path / "big.csv"
    path.write_text(CSV)
    monkeypatch.setenv("CYTORESP_MAX_INPUT_BYTES", "10")

    def boom(self):  # pragma: no cover - must not be called
        raise AssertionError("read before the size check")

    monkeypatch.setattr(Path, "read_bytes", boom)
    with pytest.raises(InputError, match="refused before reading"):
        read_panel(path)


# -- long cells are quoted in part --------------------------------------------------------

BIG = 1_000_000
CUT = rf"'{'x' * MAX_QUOTED_CHARS}'… \(1,000,000 characters\)"


def test_quote_cell_keeps_short_text_and_cuts_long_text():
    assert quote_cell("abc") == "'abc'"
    assert quote_cell("y" * MAX_QUOTED_CHARS) == repr("y" * MAX_QUOTED_CHARS)
    assert quote_cell("y" * (MAX_QUOTED_CHARS + 1)).endswith("… (41 characters)")
    assert quote_cell(12.5) == "'12.5'"


@pytest.mark.parametrize(
    ("table", "what"),
    [
        ("sample_id,IFNG\nP1,{x}\n", "not a concentration"),
        ("sample_id,IFNG,therapy\nP1,1,{x}\n", "unknown therapy"),
        ("sample_id,IFNG,responder\nP1,1,{x}\n", "responder must be 0 or 1"),
        ("sample_id,IFNG,sex\nP1,1,{x}\n", "sex must be F/M"),
        ("sample_id,IFNG,age\nP1,1,{x}\n", "age must be a number"),
        ("sample_id,IFNG\n{x},1\n{x},2\n", "duplicate sample id"),
        ("sample_id,analyte,value,unit\nP1,IFNG,{x},pg/mL\n", "not a concentration"),
        ("sample_id,analyte,value,unit\nP1,IFNG,1,{x}\n", "unknown unit"),
    ],
)
def test_error_messages_quote_at_most_40_characters_of_a_cell(table, what):
    with pytest.raises(InputError, match=what) as info:
        read_panel(io.StringIO(table.format(x="x" * BIG)))
    message = str(info.value)
    assert len(message) < 2_000
    assert re.search(CUT, message), message[:300]


def test_outcome_messages_quote_at_most_40_characters_of_a_cell():
    from cytoresp.features.outcomes import derive_responder

    frame = pd.DataFrame({"relapses_y1": ["x" * BIG], "new_t2_y1": ["0"]})
    with pytest.raises(InputError, match=CUT) as info:
        derive_responder(frame, "modified_rio")
    assert len(str(info.value)) < 2_000


@pytest.mark.parametrize(("column", "shown"), [("IL10", "'IL10'"), ("c" * 500, "… (500")])
def test_problem_cuts_a_runaway_column_name(column, shown):
    text = str(Problem("a.csv", 2, column, "bad"))
    assert shown in text and len(text) < 200
