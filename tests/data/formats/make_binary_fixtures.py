"""Regenerate the binary fixtures (.xlsx, .parquet) from wide_panel.csv.

Run from the repository root: ``python tests/data/formats/make_binary_fixtures.py``.
Numbers become numeric cells / float columns; censored and flagged cells stay text, as a
lab spreadsheet holds them.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd

HERE = Path(__file__).resolve().parent


def _cell(v: str):
    try:
        return float(v) if "." in v or "e" in v.lower() else int(v)
    except ValueError:
        return v if v else None


def main() -> None:
    raw = pd.read_csv(HERE / "wide_panel.csv", dtype=str, keep_default_na=False)
    wb = openpyxl.Workbook()
    notes = wb.active
    notes.title = "Notes"
    notes.append(["MS cytokine study, export of 2025-03-14"])
    notes.append(["Values in pg/mL unless the header says otherwise"])
    ws = wb.create_sheet("Panel")
    ws.append(list(raw.columns))
    for row in raw.itertuples(index=False):
        ws.append([_cell(v) for v in row])
    wb.save(HERE / "wide_panel.xlsx")

    frame = raw.copy()
    for col in frame.columns:
        num = pd.to_numeric(frame[col], errors="coerce")
        if num.notna().all():
            frame[col] = num
    frame.to_parquet(HERE / "wide_panel.parquet", index=False)


if __name__ == "__main__":
    main()
