"""Property-based fuzzing of the panel reader and of the command line's argument handling.

Whatever the bytes or the arguments, the outcome is a result or a clear
:class:`~cytoresp.errors.CytorespError` (exit code 2 on the command line): never another
exception, never a traceback, never a file left behind.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cytoresp.cli import main
from cytoresp.errors import InputError, UsageError
from cytoresp.panels.read import read_panel

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,  # the same examples on every run: a failure is reproducible
)

# -- the reader -------------------------------------------------------------------------

NAMES = [
    "sample_id", "Sample", "therapy", "responder", "plate", "age", "sex", "edss",
    "IFNG", "IFN-gamma (pg/ml)", "IFN-γ", "IL10", "IL-10 (ng/mL)", "IL17F", "IL-17A",
    "TNF", "TNF-α", "IL6 (furlongs)", "IL-17", "", " ", "=cmd", "analyte", "value", "unit",
    "Program", "xPONENT", "DataType:", "x" * 300, "IFNG",
]  # fmt: skip
CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "NA",
            "nan",
            "inf",
            "-1",
            "0",
            "3.2",
            "1e308",
            "1e999",
            "<0.64",
            "< LLOQ",
            "OOR <",
            ">ULOQ",
            "OOR >",
            "***",
            "*1.5",
            "ifnb",
            "GA",
            "aspirin",
            "1",
            "0",
            "yes",
            "F",
            "M",
            "45",
            "500",
            "3,2",
            '"',
            "\x00",
            "\ufeff",
            "=1+1",
            "P1",
            "P1",
        ]
    ),  # fmt: skip
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)


def _read(data: bytes, suffix: str):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"panel{suffix}"
        path.write_bytes(data)
        try:
            panel = read_panel(path)
        except (InputError, UsageError) as exc:
            assert str(exc)  # a message, listing problems
            return None
    return panel


@FUZZ
@given(data=st.binary(max_size=3000), suffix=st.sampled_from([".csv", ".xlsx", ".parquet", ""]))
@example(data=b"PK\x03\x04" + b"\x00" * 60, suffix=".xlsx")
@example(data=b"PAR1" + b"\xff" * 60 + b"PAR1", suffix=".parquet")
@example(data=b"\xff\xfe" + "sample_id,IFNG\n".encode("utf-16-le"), suffix=".csv")
def test_reader_on_arbitrary_bytes(data, suffix):
    _read(data, suffix)


@st.composite
def tables(draw):
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=8))
    n_rows = draw(st.integers(0, 6))
    rows = [[draw(CELLS) for _ in names] for _ in range(n_rows)]
    if draw(st.booleans()) and rows:  # ragged rows
        rows[-1] = rows[-1][: draw(st.integers(0, len(names)))]
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator=ending).writerows([names, *rows])
    return buf.getvalue().encode("utf-8", errors="surrogatepass")


@FUZZ
@given(data=tables())
def test_reader_on_hostile_tables(data):
    panel = _read(data, ".csv")
    if panel is not None:  # accepted: then the values are sane
        values = panel.values.to_numpy(dtype=np.float64)
        assert not np.isinf(values).any()
        assert (values[~np.isnan(values)] >= 0).all()
        assert panel.values.index.is_unique
        assert set(np.unique(panel.censoring.to_numpy())) <= {-1, 0, 1}


# -- the command line -------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=20,
)
#: Corpus files that are bad for every command under the default limits (not the ones
#: only bad under a lowered limit or without labels), odd paths, random text (not "-":
#: stdin is pytest's).
with open(BAD / "EXPECTED.csv", newline="", encoding="utf-8") as _fh:
    _rows = list(csv.DictReader(_fh))
ALWAYS_BAD = sorted({str(BAD / r["file"]) for r in _rows if r["command"] == "validate"})
ALWAYS_BAD = [f for f in ALWAYS_BAD if not any(r["env"] for r in _rows if f.endswith(r["file"]))]
PATHS = st.one_of(
    st.sampled_from(ALWAYS_BAD),
    st.sampled_from(["", ".", "..", "/", "/etc", "/dev/null", "missing.csv", "a/b/c"]),
    TEXT,
)
#: Outputs stay inside the test's temporary folder.
OUTS = TEXT.map(lambda t: t.lstrip("/")).filter(lambda t: ".." not in t)
OPTIONS = {
    "validate": {"--input": PATHS, "--output": OUTS, "--labels": None},
    "predict": {"--model": PATHS, "--input": PATHS, "--output": OUTS, "--therapy": TEXT,
                "--explain": st.one_of(st.integers(-5, 5).map(str), TEXT)},
    "explain": {"--model": PATHS, "--input": PATHS, "--output": OUTS, "--sample": TEXT,
                "--plot": OUTS, "--therapy": TEXT},
    "train": {"--data": PATHS, "--therapy": TEXT, "--config": PATHS, "--out": OUTS,
              "--register": TEXT, "--experiment": TEXT},
}  # fmt: skip


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(OPTIONS)))
    argv = [command]
    options = draw(st.lists(st.sampled_from(sorted(OPTIONS[command])), max_size=6))
    for opt in options:
        argv.append(opt)
        value = OPTIONS[command][opt]
        if value is not None:
            argv.append(draw(value))
    if draw(st.booleans()):
        argv.append(draw(st.sampled_from(["--bogus", "-x", "--", "extra", "--input"])))
    return argv


def _is_uri(text: str) -> bool:
    return ":/" in text  # models:/, runs:/, http://: would reach for a tracking store


@settings(FUZZ, max_examples=60)
@given(argv=command_lines())
def test_cli_arguments(argv):
    assume(not any(_is_uri(a) for a in argv))
    with tempfile.TemporaryDirectory() as tmp:
        before = set(os.listdir(tmp))
        err, out = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                code = main(argv)
        finally:
            os.chdir(cwd)
        message = err.getvalue()
        assert code == 2, (argv, code, message)
        assert message.strip(), argv
        assert "Traceback" not in message and "internal error" not in message, (argv, message)
        assert set(os.listdir(tmp)) == before, (argv, os.listdir(tmp))


def test_binary_config_file_is_a_usage_error(tmp_path):
    """Found by a longer fuzzing run (UnicodeDecodeError was an 'internal error')."""
    config = tmp_path / "config.json"
    config.write_bytes(b"\x89PNG\r\n\x1a\n\xbd\xff")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", "--data", str(BAD / "non_numeric.csv"), "--config", str(config)])
    assert code == 2, err.getvalue()
