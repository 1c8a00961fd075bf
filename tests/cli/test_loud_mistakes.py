"""Mistakes made loud (issue #13): near-miss headers, --strict, per-sample plates, hygiene.

Each test here is one item of the issue's "What was seen", checked the way a user meets it.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from cytoresp.cli import _warnings_once, main
from cytoresp.panels import read_panel


@pytest.fixture(scope="module")
def new_patients(tmp_path_factory):
    from cytoresp.datasets import simulate_cohort

    table = simulate_cohort(30, seed=8).panel
    folder = tmp_path_factory.mktemp("loud")
    good = folder / "good.csv"
    table.to_csv(good, index=False)
    typo = folder / "typo.csv"  # IL-10 written with a letter O, as seen in the issue
    table.rename(columns={"IL10": "IL-1O"}).to_csv(typo, index=False)
    return good, typo


def test_validate_suggests_the_analyte_of_a_near_miss_header(new_patients, capsys):
    _, typo = new_patients
    assert main(["validate", "--input", str(typo)]) == 0
    err = capsys.readouterr().err
    assert "column 'IL-1O' matches no analyte, covariate or role (not used)" in err
    assert "did you mean 'IL10' (IL-10)?" in err


def test_validate_strict_refuses_the_near_miss_header(new_patients, capsys):
    _, typo = new_patients
    assert main(["validate", "--input", str(typo), "--strict"]) == 2
    assert "did you mean 'IL10' (IL-10)?" in capsys.readouterr().err
    good, _ = new_patients
    assert main(["validate", "--input", str(good), "--strict"]) == 0


def test_predict_says_on_stderr_what_is_missing_and_why(model_dir, new_patients, tmp_path,
                                                       capsys):
    good, typo = new_patients
    out = tmp_path / "p.csv"
    assert main(["predict", "--model", str(model_dir), "--input", str(typo),
                 "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "did you mean 'IL10' (IL-10)?" in err
    assert re.search(r"inputs the model uses are missing .*IL10 in 30 of 30 samples", err)
    # without the typo nothing is said about IL10
    assert main(["predict", "--model", str(model_dir), "--input", str(good),
                 "--output", str(out)]) == 0
    assert "IL10" not in capsys.readouterr().err


def test_predict_strict_exits_2_and_writes_nothing(model_dir, new_patients, tmp_path, capsys):
    _, typo = new_patients
    out = tmp_path / "p.csv"
    assert main(["predict", "--model", str(model_dir), "--input", str(typo),
                 "--output", str(out), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "the model needs IL10, which the file does not have" in err
    assert "did you mean 'IL10'" in err
    assert not out.exists()


def _plates(labels):
    n = len(labels)
    return pd.DataFrame({"sample_id": [f"S{i}" for i in range(n)],
                         "IL6": np.linspace(1, 5, n), "Plate_ID": labels})


def test_a_plate_column_with_one_sample_per_plate_is_not_used_as_the_plate(tmp_path, capsys):
    per_sample = _plates([f"W{i}" for i in range(12)])
    panel = read_panel(per_sample)
    assert panel.plate is None
    assert any("different value in every row (one per sample)" in w
               for w in panel.warnings)
    real = _plates(["P1"] * 6 + ["P2"] * 6)
    assert read_panel(real).plate.tolist() == ["P1"] * 6 + ["P2"] * 6
    path = tmp_path / "wells.csv"
    per_sample.to_csv(path, index=False)
    assert main(["validate", "--input", str(path), "--strict"]) == 2
    assert "is not a plate or batch" in capsys.readouterr().err


def test_each_warning_is_shown_once_with_its_count(capsys):
    with _warnings_once():
        for _ in range(137):
            warnings.warn("skipped 7 of 9 ratio(s)", UserWarning, stacklevel=1)
        warnings.warn("another one", RuntimeWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err.count("skipped 7 of 9 ratio(s)") == 1
    assert "skipped 7 of 9 ratio(s) [UserWarning] (137 times)" in err
    assert "another one [RuntimeWarning]" in err and "another one [RuntimeWarning] (" not in err


def test_version(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cytoresp {version('cytoresp')}"


def test_register_help_says_what_happens_without_it():
    import typer

    from cytoresp.cli import app

    train = typer.main.get_command(app).commands["train"]
    (register,) = [p for p in train.params if p.name == "register"]
    assert "without it the model is logged in the MLflow run" in register.help
    assert "not registered" in register.help


def test_train_refuses_an_unknown_therapy_before_any_work(tmp_path, capsys):
    path = tmp_path / "x.csv"
    path.write_text("sample_id,IL6\nA,1\n")
    assert main(["train", "--data", str(path), "--therapy", "Tysabry"]) == 2
    assert "did you mean 'natalizumab'" in capsys.readouterr().err
