"""The bad-input corpus (tests/data/bad/): each file ends in exit 2 with its message.

EXPECTED.csv lists, per file and command, the exit code and a fragment of the message;
``env`` lowers a size limit for the files that test one. Every run must also leave no
output (not even a temp file), print no traceback, and keep its message short.
"""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import pytest

from cytoresp.cli import main

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
NOT_CORPUS = {"EXPECTED.csv", "make_corpus.py"}


def _expected() -> list[dict[str, str]]:
    with open(BAD / "EXPECTED.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _argv(row: dict[str, str], work: Path, model: Path) -> list[str]:
    source = str(BAD / row["file"])
    return {
        "validate": ["validate", "--input", source, "--output", str(work / "canonical.csv")],
        "validate-labels": ["validate", "--labels", "--input", source],
        "predict": ["predict", "--model", str(model), "--input", source,
                    "--output", str(work / "predictions.csv")],
        "train": ["train", "--data", source, "--out", str(work / "model_out"),
                  "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}"],
    }[row["command"]]  # fmt: skip


def test_corpus_and_table_agree():
    files = {p.name for p in BAD.iterdir()} - NOT_CORPUS
    listed = {row["file"] for row in _expected()}
    assert files == listed
    assert len(files) >= 30
    for row in _expected():
        assert row["command"] in ("validate", "validate-labels", "predict", "train"), row
        assert row["exit_code"] == "2" and row["message"], row


@pytest.mark.parametrize(
    "row", _expected(), ids=lambda r: f"{r['file']}-{r['command']}" if isinstance(r, dict) else r
)
def test_bad_input(row, small_model, tmp_path, monkeypatch):
    for setting in filter(None, row["env"].split(";")):
        key, value = setting.split("=", 1)
        monkeypatch.setenv(key, value)
    work = tmp_path / "work"
    work.mkdir()
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(_argv(row, work, small_model))
    message = err.getvalue()
    assert code == int(row["exit_code"]), message
    assert row["message"] in message, message
    assert "Traceback" not in message and "internal error" not in message, message
    assert "\x1b" not in message  # control characters from the file are shown escaped
    assert len(message) < 100_000
    assert out.getvalue() == ""
    assert sorted(p.name for p in work.iterdir()) == []  # no output, no temp, no store


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "env"),
    [
        ("binary_garbage.csv", {}),
        ("terminal_escape.csv", {}),
        ("zip_bomb.xlsx", {"CYTORESP_MAX_INPUT_BYTES": "10000000"}),
    ],
)
def test_bad_input_in_a_real_process(rel, small_model, tmp_path, name, env):
    row = next(r for r in _expected() if r["file"] == name and r["command"] == "predict")
    result = rel.run(_argv(row, tmp_path, small_model), cwd=tmp_path, env=rel.env(**env))
    rel.fail(result, 2, row["message"])
    assert "\x1b" not in result.stderr
    assert result.stdout == ""
    assert [p.name for p in tmp_path.iterdir()] == []
