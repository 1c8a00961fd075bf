"""Delimited text (CSV, semicolon or tab separated) read as a :class:`Table`, cells as text."""

from __future__ import annotations

import codecs
import io
from typing import Any

import numpy as np
import pyarrow as pa

from cytoresp.errors import InputError, Problem
from cytoresp.panels._table import CsvLayout, Table, bad_row_problems, not_utf8_problem

__all__ = ["decode_text", "read_csv_table"]


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text of a file, or InputError for an empty, binary or non-UTF-8 file."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError([Problem(source, None, None,
                                  "the file is UTF-16 text; save it as UTF-8 (in Excel: "
                                  "'CSV UTF-8 (comma delimited)')")])
    if b"\x00" in data[:8192]:
        raise InputError([Problem(source, None, None,
                                  "this is a binary file, not a text table; give a CSV, an "
                                  ".xlsx or a .parquet file")])
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError([not_utf8_problem(source, line, data[exc.start])]) from None
    if not text.strip():
        raise InputError([Problem(source, None, None, "the file is empty")])
    return text


def read_csv_table(data: bytes | str, source: str, first_line: int = 1) -> Table:
    """Read delimited UTF-8 text (header on its first non-blank line) as a :class:`Table`.

    Every cell is kept as text. ``first_line`` is the file line of ``data``'s first line
    (for messages). The delimiter (``,``, ``;`` or tab) is taken from the header line.
    """
    import pyarrow.csv as pcsv

    if isinstance(data, str):
        data = data.encode("utf-8")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    layout = CsvLayout.of(data)
    n_blank_top = layout.n_blank_top
    bad: list[tuple[int | None, int, int]] = []

    def handler(row: Any) -> str:
        bad.append((row.number, row.expected_columns, row.actual_columns))
        return "skip"

    def read(threads: bool) -> Any:
        return pcsv.read_csv(io.BytesIO(data), **layout.options(handler, threads=threads))

    try:
        tbl = read(True)
        if bad:  # numbers of bad rows are only known single-threaded
            bad.clear()
            tbl = read(False)
    except pa.ArrowInvalid as exc:
        raise InputError([Problem(source, None, None, f"cannot parse the table: {exc}")]) from None
    rec = np.arange(tbl.num_rows, dtype=np.int64) + 1 + n_blank_top
    if bad:
        skipped = np.array(sorted(b[0] for b in bad if b[0] is not None), dtype=np.int64)
        # record k of the table is the k-th record number that was not skipped
        if len(skipped):
            keep = np.setdiff1d(np.arange(1, tbl.num_rows + len(skipped) + 1 + n_blank_top),
                                skipped)
            rec = keep[n_blank_top: n_blank_top + tbl.num_rows]
    problems = bad_row_problems(source, bad, layout, first_line)
    cols = [tbl.column(i).combine_chunks() for i in range(tbl.num_columns)]
    header_cells = [c[0].as_py() if len(c) else "" for c in cols]
    cols = [c.slice(1) for c in cols]
    rows = rec[1:] + first_line - 1
    t = Table([h.strip() for h in header_cells], cols, rows, source)
    if problems:
        raise InputError(problems)
    return t
