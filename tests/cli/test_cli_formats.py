"""``--format`` on predict and train, and ``train --plate-normalise``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cytoresp.cli import main

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"


def run(*args: str) -> int:
    return main(list(args))


@pytest.mark.parametrize("command", ["predict", "train", "validate"])
def test_unknown_format_is_a_usage_error_before_any_work(command, tmp_path, capsys):
    src = str(FORMATS / "wide_panel.csv")
    args = {
        "predict": ["--model", str(tmp_path / "no-model"), "--input", src,
                    "--output", str(tmp_path / "p.csv")],
        "train": ["--data", src, "--out", str(tmp_path / "m")],
        "validate": ["--input", src],
    }[command]
    assert run(command, *args, "--format", "csv") == 2
    err = capsys.readouterr().err
    assert "--format must be one of wide, luminex, long, xlsx, parquet, got 'csv'" in err
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("fixture", "fmt", "code"),
    [
        ("msd_long.csv", None, 0),  # detected
        ("msd_long.csv", "long", 0),
        ("msd_long.csv", "wide", 2),  # forced wide: no analyte column
        ("wide_panel.csv", "xlsx", 2),  # forced xlsx: not a workbook
        ("xponent_plate1.csv", "luminex", 0),
    ],
)
def test_predict_format_override_reaches_the_reader(model_dir, fixture, fmt, code, tmp_path,
                                                    capsys):
    out = tmp_path / "pred.csv"
    extra = [] if fmt is None else ["--format", fmt]
    args = ["predict", "--model", str(model_dir), "--input", str(FORMATS / fixture),
            "--output", str(out), *extra]
    assert run(*args) == code, capsys.readouterr().err
    if code == 0:
        table = pd.read_csv(out)
        assert len(table) > 0 and table["p_response_ifnb"].between(0, 1).all()
    else:
        assert not out.exists()
        assert "Traceback" not in capsys.readouterr().err


@pytest.fixture
def captured_job(monkeypatch):
    """Replace the training job by a recorder of what the CLI passes to it."""
    import cytoresp.train.job as job

    seen: dict = {}

    def fake(data, therapy, experiment, register, out, cfg, tracking_uri, **kw):
        seen.update(data=data, cfg=cfg, **kw)
        raise SystemExit(0)

    monkeypatch.setattr(job, "run_training_job", fake)
    return seen


@pytest.mark.parametrize(
    ("args", "config", "format", "plates", "ipw"),
    [
        ([], None, None, False, False),
        (["--format", "long"], None, "long", False, False),
        (["--plate-normalise"], None, None, True, False),
        (["--plate-normalise", "--ipw"], None, None, True, True),
        ([], '{"plate_normalisation": true}', None, True, False),
        (["--ipw"], '{"plate_normalisation": true}', None, True, True),
    ],
)
def test_train_passes_format_and_plate_normalisation(captured_job, tmp_path, args, config,
                                                     format, plates, ipw):
    extra = []
    if config is not None:
        path = tmp_path / "cfg.json"
        path.write_text(config)
        extra = ["--config", str(path)]
    with pytest.raises(SystemExit):
        main(["train", "--data", str(FORMATS / "msd_long.csv"), *args, *extra])
    assert captured_job["format"] == format
    assert captured_job["cfg"].plate_normalisation is plates
    assert captured_job["cfg"].ipw is ipw


def test_train_format_override_is_used_to_read(mlflow_store, tmp_path, capsys):
    code = run("train", "--data", str(FORMATS / "msd_long.csv"), "--format", "wide",
               "--tracking-uri", mlflow_store)
    assert code == 2
    assert "no column is a known analyte" in capsys.readouterr().err


def test_train_plate_normalise_needs_a_plate_column(mlflow_store, tmp_path, capsys):
    from cytoresp.datasets import simulate_cohort

    data = tmp_path / "cohort.csv"
    simulate_cohort(60, seed=2).panel.drop(columns="plate").to_csv(data, index=False)
    code = run("train", "--data", str(data), "--plate-normalise", "--tracking-uri", mlflow_store)
    assert code == 2
    assert "no 'plate' column" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["luminex", "long"])
def test_label_from_refuses_formats_without_one_row_per_patient(fmt, tmp_path):
    from cytoresp.errors import UsageError
    from cytoresp.train.labels import read_training_panel

    with pytest.raises(UsageError, match=f"not a {fmt} file"):
        read_training_panel(FORMATS / "wide_panel.csv", "rio", format=fmt)
