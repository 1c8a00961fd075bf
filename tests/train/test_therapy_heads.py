"""Heads for any registered therapy, the minimum per head, a custom outcome (issue #13)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cytoresp.cli import main
from cytoresp.errors import InputError
from cytoresp.train.config import TrainConfig
from cytoresp.train.fitting import fit_response_model, trained_summary
from cytoresp.train.labels import read_training_panel

#: Mechanics, not quality: small nested CV, fixed penalties, few trees and members.
QUICK = {
    "n_repeats": 1, "n_splits": 3, "inner_splits": 2, "n_boot": 0, "n_jobs": 1,
    "n_ensemble": 5,
    "model": {"n_estimators": 20, "early_stopping": False, "C": 1.0, "C_ridge": 1.0},
}


@pytest.fixture(scope="module")
def real_world_table():
    """A simulated cohort written the way a clinic's export is: brand names, three
    therapies, the outcome under its own name with text values."""
    from cytoresp.datasets import simulate_cohort

    table = simulate_cohort(240, seed=21).panel.copy()
    ga = np.flatnonzero(table["therapy"].to_numpy() == "ga")
    brand = np.where(table["therapy"] == "ifnb", "Avonex", "Copaxone").astype(object)
    brand[ga[::2]] = "Tysabri"
    table["DMT"] = brand
    table["status_2y"] = np.where(table["responder"] == 1, "NEDA", "EDA")
    return table.drop(columns=["therapy", "responder"])


def test_custom_outcome_column_and_brand_names_read(real_world_table):
    panel = read_training_panel(real_world_table, label="status_2y", positive="NEDA")
    assert set(panel.therapy) == {"ifnb", "ga", "natalizumab"}
    assert panel.responder.mean() == pytest.approx((real_world_table["status_2y"] == "NEDA").mean())


@pytest.mark.parametrize(
    ("label", "positive", "message"),
    [
        ("status", "NEDA", r"no outcome column 'status' \(--label\); did you mean 'status_2y'"),
        ("status_2y", "yes", r"--positive 'yes' is not a value of 'status_2y'"),
        ("status_2y", None, r"say which value is the outcome with --positive"),
        ("DMT", "Avonex", r"must have exactly two values"),
    ],
)
def test_bad_outcome_columns_are_refused(real_world_table, label, positive, message):
    with pytest.raises(InputError, match=message):
        read_training_panel(real_world_table, label=label, positive=positive)


def test_small_therapies_are_skipped_and_said(real_world_table):
    panel = read_training_panel(real_world_table, label="status_2y", positive="NEDA")
    counts = panel.therapy.value_counts()
    lines: list[str] = []
    config = TrainConfig(**{**QUICK, "n_ensemble": 0},
                         min_patients_per_head=int(counts["ifnb"]))
    model, _ = fit_response_model(panel, config=config, log=lines.append)
    assert model.therapies == ["ifnb"]
    text = trained_summary(model)
    assert text.startswith(f"trained 1 head: ifnb ({counts['ifnb']} patients); skipped ga "
                           f"({counts['ga']} patients")
    assert f"natalizumab ({counts['natalizumab']} patients" in text
    assert any("skipped" in line and "natalizumab" in line for line in lines)
    with pytest.raises(InputError, match="no therapy has at least 1000 patients"):
        fit_response_model(panel, config=TrainConfig(**QUICK, min_patients_per_head=1000))


def test_cli_trains_and_scores_three_heads_on_a_custom_outcome(
    real_world_table, tmp_path, mlflow_store, capsys
):
    import mlflow

    data = tmp_path / "clinic.csv"
    real_world_table.to_csv(data, index=False)
    config = tmp_path / "quick.json"
    config.write_text(json.dumps({**QUICK, "outcome_name": "NEDA-3 at 2 years"}))
    out = tmp_path / "model"
    code = main(["train", "--data", str(data), "--label", "status_2y", "--positive", "NEDA",
                 "--config", str(config), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    counts = real_world_table["DMT"].value_counts()
    assert (f"trained 3 heads: ifnb ({counts['Avonex']} patients), ga ({counts['Copaxone']}), "
            f"natalizumab ({counts['Tysabri']})") in err
    assert "outcome: NEDA-3 at 2 years" in err
    assert "not registered: use --register NAME" in err
    run = mlflow.search_runs(search_all_experiments=True,
                             filter_string="tags.cytoresp.job = 'train'")
    assert run["params.outcome_name"].tolist() == ["NEDA-3 at 2 years"]

    preds = tmp_path / "preds.csv"
    code = main(["predict", "--model", str(out), "--input", str(data), "--output", str(preds)])
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(preds)
    for t in ("ifnb", "ga", "natalizumab"):
        assert table[f"p_response_{t}"].between(0, 1).all()
    assert set(table["best_therapy"]) <= {"ifnb", "ga", "natalizumab"}
    assert set(table["recommended_therapy"]) <= {"ifnb", "ga", "natalizumab", "either"}
    named = table["recommended_therapy"] != "either"
    assert (table.loc[named, "recommended_therapy"] == table.loc[named, "best_therapy"]).all()
    assert (table.loc[named, "difference_lower"] > 0).all()

    one = tmp_path / "one.csv"
    assert main(["predict", "--model", str(out), "--input", str(data), "--output", str(one),
                 "--therapy", "Tysabri"]) == 0
    assert [c for c in pd.read_csv(one).columns if c.startswith("p_")] == ["p_response_natalizumab"]
