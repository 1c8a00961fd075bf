"""Excel (.xlsx, via openpyxl) and Parquet (via pyarrow) panel files.

An Excel sheet is turned into CSV text cell by cell (numbers in their exact shortest form)
and then read like a CSV file, so every layout (wide, long, a Luminex export saved as
.xlsx) and every check is the same; row numbers are the sheet's row numbers. The first
sheet that has a recognisable table is read. openpyxl reads cells one by one, so very large
panels are faster as CSV or Parquet.

A Parquet file is read into a DataFrame and validated like one (``read_panel(df)``).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import zipfile

import pandas as pd

from cytoresp.errors import InputError, Problem
from cytoresp.panels._table import Table, role_key, table_from_frame
from cytoresp.panels.long import looks_long
from cytoresp.panels.luminex import read_luminex_text
from cytoresp.panels.registry import resolve_analyte
from cytoresp.panels.sniff import sniff
from cytoresp.panels.values import format_numbers
from cytoresp.panels.wide import read_csv_table


def _cell_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        if isinstance(v, float) and not math.isfinite(v):
            return "" if math.isnan(v) else str(v)
        return str(format_numbers([float(v)])[0]) if isinstance(v, float) else str(v)
    if isinstance(v, _dt.datetime | _dt.date):
        return v.isoformat()
    return str(v)


def _sheet_csv(ws) -> str:  # noqa: ANN001 - an openpyxl worksheet
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in ws.iter_rows(values_only=True):
        writer.writerow([_cell_text(v) for v in row])
    return buf.getvalue()


def read_excel_tables(data: bytes, source: str) -> Table:
    """Read the first sheet with a recognisable panel of an .xlsx workbook as a Table."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InputError([Problem(source, None, None,
                                  f"cannot open the Excel workbook ({exc}); save it as .xlsx "
                                  f"or export the sheet as CSV UTF-8")]) from None
    try:
        texts = [(ws.title, _sheet_csv(ws)) for ws in wb.worksheets]
    finally:
        wb.close()
    texts = [(t, x) for t, x in texts if x.replace(",", "").strip()]
    if not texts:
        raise InputError([Problem(source, None, None, "the workbook has no data")])
    errors: list[InputError] = []
    for title, text in texts:
        try:
            table = _read_text(text, source, sniff(text.encode("utf-8"), ""))
        except InputError as exc:
            errors.append(exc)
            continue
        if len(texts) > 1:
            table.warnings.append(f"read sheet {title!r} of the workbook")
        if _has_panel(table):
            return table
        errors.append(InputError([Problem(source, None, None,
                                          f"sheet {title!r} has no panel table")]))
    raise errors[0]


def _has_panel(table: Table) -> bool:
    if looks_long(table.names):
        return True
    keys = {role_key(n) for n in table.names}
    return bool(keys & {"sample_id", "sampleid", "sample", "description", "sample_name"}) and any(
        resolve_analyte(n) for n in table.names)


def _read_text(text: str, source: str, fmt: str) -> Table:
    if fmt == "luminex":
        return read_luminex_text(text, source)
    return read_csv_table(text, source)


def read_parquet_table(data: bytes, source: str) -> Table:
    """Read a Parquet file as a Table (columns kept with their types)."""
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise InputError([Problem(source, None, None,
                                  f"cannot read the Parquet file ({type(exc).__name__}: {exc})")]
                         ) from None
    return table_from_frame(df.reset_index(drop=True), source)
