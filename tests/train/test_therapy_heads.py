"""Heads for any registered therapy, the minimum per head, a custom outcome (issue #13)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from cytoresp.cli import main
from cytoresp.errors import InputError
from cytoresp.train.fitting import resolve_therapies, trained_summary
from cytoresp.train.labels import read_training_panel

#: Mechanics, not quality: small nested CV, fixed penalties, few trees and members.
QUICK = {
    "n_repeats": 1, "n_splits": 3, "inner_splits": 2, "n_boot": 0, "n_jobs": 1,
    "n_ensemble": 0,
    "model": {"n_estimators": 20, "early_stopping": False, "C": 1.0, "C_ridge": 1.0},
}


@pytest.fixture(scope="module")
def real_world_table():
    """A simulated cohort written the way a clinic's export is: brand names, three
    therapies, the outcome under its own name with text values."""
    from cytoresp.datasets import simulate_cohort

    table = simulate_cohort(150, seed=21).panel.copy()
    ga = np.flatnonzero(table["therapy"].to_numpy() == "ga")
    brand = np.where(table["therapy"] == "ifnb", "Avonex", "Copaxone").astype(object)
    brand[ga[::2]] = "Tysabri"
    table["DMT"] = brand
    table["status_2y"] = np.where(table["responder"] == 1, "NEDA", "EDA")
    rng = np.random.default_rng(3)
    table["sNfL (pg/ml)"] = np.round(rng.lognormal(2.2, 0.5, len(table)), 2)
    table["BMI"] = np.round(rng.normal(25, 4, len(table)), 1)
    table["smoking"] = rng.choice(["never", "former", "current"], len(table))
    # no IL4 column: the ratios IFNG/IL4 and TNF/IL4 are skipped in every fold (a warning
    # printed 137 times in one training log before issue #13)
    return table.drop(columns=["therapy", "responder", "IL4"])


def test_custom_outcome_column_and_brand_names_read(real_world_table):
    panel = read_training_panel(real_world_table, label="status_2y", positive="NEDA")
    assert set(panel.therapy) == {"ifnb", "ga", "natalizumab"}
    assert panel.responder.mean() == pytest.approx((real_world_table["status_2y"] == "NEDA").mean())


def test_positive_needs_a_label(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "x.csv"), "--positive", "NEDA"]) == 2
    assert "--positive needs --label" in capsys.readouterr().err


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
    from cytoresp.models.response_model import ResponseModel

    panel = read_training_panel(real_world_table, label="status_2y", positive="NEDA")
    counts = panel.therapy.value_counts()
    lines: list[str] = []
    wanted = resolve_therapies(panel, "all", int(counts["ifnb"]), lines.append)
    assert wanted == ["ifnb"]
    assert lines == [f"skipped (fewer than min_patients_per_head = {counts['ifnb']} patients "
                     f"with a known outcome): ga ({counts['ga']}), natalizumab "
                     f"({counts['natalizumab']})"]
    assert resolve_therapies(panel, "natalizumab", 10_000) == ["natalizumab"]  # named: kept
    with pytest.raises(InputError, match="no therapy has at least 1000 patients"):
        resolve_therapies(panel, "all", 1000)
    with pytest.raises(InputError, match="no patients with therapy dmf"):
        resolve_therapies(panel, "dmf", 1)
    # what train prints, from the model's metadata
    model = ResponseModel(heads={"ifnb": None}, metadata={
        "n_training": {"ifnb": int(counts["ifnb"])}, "config": {"min_patients_per_head": 70},
        "skipped_therapies": {"ga": int(counts["ga"])}, "other_therapies": ["ga"]})
    assert trained_summary(model) == (
        f"trained 1 head: ifnb ({counts['ifnb']} patients); skipped ga ({counts['ga']} "
        f"patients, fewer than min_patients_per_head = 70)")
    alone = ResponseModel(heads={"ifnb": None}, metadata={"n_training": {"ifnb": 52}})
    assert trained_summary(alone) == ("trained 1 head: ifnb (52 patients) (the data hold no "
                                      "other therapy than IFN-β)")


@pytest.mark.slow  # about 40 s of CPU: MLflow store, 3 heads, plots, predict and report
def test_cli_trains_and_scores_a_real_world_cohort_from_a_config_file(
    real_world_table, tmp_path, mlflow_store, capsys
):
    import mlflow

    data = tmp_path / "clinic.csv"
    real_world_table.to_csv(data, index=False)
    config = tmp_path / "quick.json"
    config.write_text(json.dumps({
        **QUICK, "outcome_name": "NEDA-3 at 2 years", "label": "status_2y",
        "positive": "NEDA", "covariates": {
            "BMI": "numeric",
            "smoking": {"kind": "categorical", "levels": ["never", "former", "current"]}},
    }))
    out = tmp_path / "model"
    code = main(["train", "--data", str(data), "--config", str(config), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    counts = real_world_table["DMT"].value_counts()
    assert (f"trained 3 heads: ifnb ({counts['Avonex']} patients), ga ({counts['Copaxone']}), "
            f"natalizumab ({counts['Tysabri']})") in err
    assert "outcome: NEDA-3 at 2 years" in err
    assert "not registered: use --register NAME" in err
    skipped = [line for line in err.splitlines() if "LogRatioTransformer: skipped" in line]
    assert len(skipped) == 1 and re.search(r"\(\d+ times\)$", skipped[0]), skipped
    run = mlflow.search_runs(search_all_experiments=True,
                             filter_string="tags.cytoresp.job = 'train'")
    assert run["params.outcome_name"].tolist() == ["NEDA-3 at 2 years"]

    from cytoresp.models.response_model import ResponseModel

    model = ResponseModel.load(out)
    assert model.outcome_name == "NEDA-3 at 2 years"
    for col in ("NEFL", "BMI", "smoking=former", "smoking=current", "age"):
        assert col in model.input_columns, col
    assert "NEFL" not in " ".join(model.heads["ifnb"].features.ratio_.get_feature_names_out())
    explained = model.explain(real_world_table.head(3).drop(columns=["status_2y"]), "ga")
    assert {"NEFL", "BMI", "smoking=current"} <= set(explained["feature"])

    preds = tmp_path / "preds.csv"
    code = main(["predict", "--model", str(out), "--input", str(data), "--output", str(preds)])
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(preds)
    for t in ("ifnb", "ga", "natalizumab"):
        assert table[f"p_response_{t}"].between(0, 1).all()
    assert set(table["leading_therapy"]) <= {"ifnb", "ga", "natalizumab"}
    assert set(table["recommended_therapy"]) <= {"ifnb", "ga", "natalizumab", "either"}
    named = table["recommended_therapy"] != "either"
    assert (table.loc[named, "recommended_therapy"] == table.loc[named, "leading_therapy"]).all()
    assert (table.loc[named, "difference_lower"] > 0).all()

    html = tmp_path / "report.html"
    sample = str(real_world_table["sample_id"].iloc[0])
    assert main(["report", "--model", str(out), "--input", str(data), "--sample", sample,
                 "--out", str(html)]) == 0, capsys.readouterr().err
    text = html.read_text(encoding="utf-8")
    assert "the chance of NEDA-3 at 2 years on" in text and "chance of response" not in text

    one = tmp_path / "one.csv"
    assert main(["predict", "--model", str(out), "--input", str(data), "--output", str(one),
                 "--therapy", "Tysabri"]) == 0
    assert [c for c in pd.read_csv(one).columns if c.startswith("p_")] == ["p_response_natalizumab"]


def test_ipw_is_refused_for_heads_other_than_ifnb_and_ga(real_world_table):
    from cytoresp.errors import UsageError
    from cytoresp.train.config import TrainConfig
    from cytoresp.train.fitting import fit_response_model

    panel = read_training_panel(real_world_table, label="status_2y", positive="NEDA")
    with pytest.raises(UsageError, match="compares IFN-β with GA only; heads for natalizumab"):
        fit_response_model(panel, config=TrainConfig(**QUICK, ipw=True))
