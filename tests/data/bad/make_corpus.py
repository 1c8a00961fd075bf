"""Regenerate the bad-input corpus: malformed and hostile panel files.

Run from the repository root: ``python tests/data/bad/make_corpus.py``. What each file must
produce (exit code 2 and a message fragment, per command) is in ``EXPECTED.csv`` next to
it, checked by ``tests/reliability/test_bad_inputs.py``. The files are small; the ones
that test a size limit are checked with that limit lowered through its environment
variable (the ``env`` column of EXPECTED.csv).
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

HEADER = "sample_id,therapy,responder,IFNG,IL10,IL17F,TNF"
ROWS = ["P1,ifnb,1,3.2,1.1,4.0,2.2", "P2,ga,0,2.9,<0.5,3.1,1.8", "P3,ifnb,0,4.4,0.9,5.5,2.0"]


def table(*rows: str, header: str = HEADER) -> bytes:
    """A small wide CSV with the given data rows."""
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def good() -> bytes:
    return table(*ROWS)


def xlsx_bytes() -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for line in good().decode().splitlines():
        ws.append(line.split(","))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def parquet_bytes() -> bytes:
    import pandas as pd

    frame = pd.read_csv(io.BytesIO(good()), dtype=str)
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def zip_with(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def corpus() -> dict[str, bytes]:
    rng = random.Random(8)
    wide = ",".join(["sample_id", *[f"X{i}" for i in range(500)]])
    return {
        # encoding and file type
        "empty.csv": b"",
        "whitespace_only.csv": b"  \n\n \t \n\r\n",
        "header_only.csv": table(),
        "utf16.csv": good().decode().encode("utf-16"),
        "latin1.csv": "sample_id,IFNG,IL10\nPatient_\u00e9,3.2,1.1\n".encode("latin-1"),
        "binary_garbage.csv": bytes(rng.randrange(256) for _ in range(4096)),
        "png_disguised.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200),
        "nul_after_header.csv": table(*ROWS) + b"\x00" * 16,
        # structure
        "ragged_rows.csv": table(ROWS[0], "P2,ga,0,2.9,1.0,3.1,1.8,99,100", ROWS[2]),
        "unterminated_quote.csv": table(ROWS[0], 'P2,ga,0,"2.9,1.0,3.1,1.8', ROWS[2]),
        "no_sample_id.csv": table(
            "ifnb,1,3.2,1.1,4.0,2.2", header="therapy,responder,IFNG,IL10,IL17F,TNF"
        ),
        "duplicate_sample_id.csv": table(ROWS[0], ROWS[0].replace("3.2", "3.3"), ROWS[2]),
        "blank_sample_id.csv": table(ROWS[0], ",ga,0,2.9,1.0,3.1,1.8", ROWS[2]),
        "duplicate_analyte.csv": table(
            "P1,3.2,3.3", "P2,2.0,2.1", header="sample_id,IFNG,IFN-gamma"
        ),
        "no_analytes.csv": table("P1,a,b", "P2,c,d", header="sample_id,colour,shape"),
        "blank_header.csv": table("P1,1,2,3", header=",,,"),
        "deep_quotes.csv": table('P1,ifnb,1,"' + '""' * 20000 + '",1.1,4.0,2.2'),
        # cell values
        "non_numeric.csv": table(ROWS[0], "P2,ga,0,abc,1.0,3.1,1.8", ROWS[2]),
        "negative_value.csv": table(ROWS[0], "P2,ga,0,-5,1.0,3.1,1.8", ROWS[2]),
        "infinite_value.csv": table(ROWS[0], "P2,ga,0,inf,1e999,3.1,1.8", ROWS[2]),
        "bad_censoring.csv": table(ROWS[0], "P2,ga,0,<abc,>>3,3.1,1.8", ROWS[2]),
        "overlong_number.csv": table(ROWS[0], "P2,ga,0," + "9" * 5000 + ",1.0,3.1,1.8"),
        "covariate_out_of_range.csv": table(
            "P1,500,3.2,1.1", "P2,40,2.9,1.0", header="sample_id,age,IFNG,IL10"
        ),
        "terminal_escape.csv": table(
            ROWS[0], "P2\x1b[2J\x1b[31m,ga,0,\x1b]0;pwned\x07,1.0,3.1,1.8", ROWS[2]
        ),
        "unknown_unit.csv": table(
            "P1,3.2,1.1", "P2,2.9,1.0", header="sample_id,IFNG (furlongs),IL10"
        ),
        # training labels (checked with --labels / train)
        "bad_therapy.csv": table(ROWS[0], "P2,aspirin,0,2.9,1.0,3.1,1.8", ROWS[2]),
        "bad_responder.csv": table(ROWS[0], "P2,ga,maybe,2.9,1.0,3.1,1.8", "P3,ifnb,2,1,1,1,1"),
        "missing_labels.csv": table("P1,3.2,1.1", "P2,2.9,1.0", header="sample_id,IFNG,IL10"),
        # vendor and long formats
        "luminex_garbage.csv": b"Program,xPONENT\n\x01\x02,,\nDataType:,Nonsense\n\n,,\n",
        "long_bad_values.csv": table(
            "P1,IFNG,abc,pg/mL",
            "P1,IL10,1.0,pg/mL",
            "P2,IFNG,2.0,pg/mL",
            header="sample_id,analyte,value,unit",
        ),
        # binary formats
        "text_named.xlsx": good(),
        "truncated.xlsx": xlsx_bytes()[:300],
        "zip_not_xlsx.xlsx": zip_with({"hello.txt": b"not a workbook"}),
        "zip_bomb.xlsx": zip_with({"xl/worksheets/sheet1.xml": b" " * (20 << 20)}),
        "garbage.parquet": b"PAR1" + bytes(rng.randrange(256) for _ in range(512)) + b"PAR1",
        "truncated.parquet": parquet_bytes()[:200],
        # size limits (lowered through the environment in EXPECTED.csv)
        "too_many_columns.csv": table("P1," + ",".join("1" * 500), header=wide),
        "long_line.csv": table(ROWS[0], "P2,ga,0," + "1" * 5000 + ",1.0,3.1,1.8"),
        "too_large.csv": table(*(ROWS * 100)),
        "too_many_cells.csv": table(*[f"P{i},ifnb,1,3.2,1.1,4.0,2.2" for i in range(300)]),
    }


def main() -> None:
    for name, data in corpus().items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
