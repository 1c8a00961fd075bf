"""train --landmarks, predict by patient with the alert, and the report's trajectory (issue 17)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cytoresp.cli import main

#: Plumbing, not quality: a 3-fold CV with fixed penalties (as tests/cli/test_cli.py).
FAST = {"n_repeats": 1, "n_splits": 3, "inner_splits": 2, "n_boot": 50, "n_jobs": 1,
        "model": {"C": 0.3, "C_ridge": 0.3}}

#: The columns of a prediction table by patient (models/landmarks.py, VISIT_COLUMNS).
VISIT_COLUMNS = ["patient_id", "sample_id", "therapy", "landmark_month", "p_response",
                 "p_response_baseline", "p_response_change", "early_nonresponse_alert",
                 "drivers", "warnings"]


def run(*args: str) -> int:
    return main(list(args))


def test_train_with_landmarks_logs_prefixed_metrics(tmp_path, mlflow_store, capsys):
    import mlflow

    data, config = tmp_path / "visits.csv", tmp_path / "fast.json"
    assert run("simulate", "--n", "70", "--seed", "3", "--visits", "0,3",
               "--out", str(data)) == 0
    config.write_text(json.dumps(FAST))
    code = run("train", "--data", str(data), "--therapy", "ifnb", "--landmarks", "0,3",
               "--config", str(config), "--out", str(tmp_path / "model"))
    err = capsys.readouterr().err
    assert code == 0, err
    assert "landmark 3 ifnb n=" in err and "early non-response alert at p <=" in err
    run_ = mlflow.search_runs(experiment_names=["cytoresp"], filter_string=
                              "tags.`cytoresp.job` = 'train'", output_format="list")[0]
    metrics = run_.data.metrics
    assert {"ifnb_roc_auc", "L3_ifnb_roc_auc", "L3_ifnb_alert_sensitivity",
            "L3_ifnb_logistic_roc_auc", "L3_ifnb_auc_diff_vs_baseline_head"} <= set(metrics)
    assert run_.data.tags["cytoresp.beats_baselines.L3.ifnb"] in {"true", "false", "untested"}
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_.info.run_id)}
    assert {"landmarks.json", "cv_predictions_L3_ifnb.csv"} <= artifacts
    plots = {a.path for a in mlflow.MlflowClient().list_artifacts(run_.info.run_id, "plots")}
    assert {"plots/roc_L3_ifnb.png", "plots/calibration_L3_ifnb.png"} <= plots
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["format_version"] == 5
    card = (tmp_path / "model" / "model_card.md").read_text()
    assert "## On-treatment landmark heads" in card and "| 3 | (0, 4] | IFN-β |" in card


def test_landmarks_without_visits_is_a_usage_error(tmp_path, mlflow_store, capsys):
    data = tmp_path / "baseline.csv"
    assert run("simulate", "--n", "40", "--seed", "3", "--out", str(data)) == 0
    code = run("train", "--data", str(data), "--landmarks", "0,3")
    assert code == 2
    assert "need a panel with visits" in capsys.readouterr().err


def test_bad_landmarks_option(tmp_path, capsys):
    code = run("train", "--data", str(tmp_path / "x.csv"), "--landmarks", "0,three")
    assert code == 2
    assert "whole months separated by commas" in capsys.readouterr().err


@pytest.fixture(scope="module")
def mixed_visits(tmp_path_factory):
    """New patients: some with a baseline only, some with a 3-month sample, one without
    a baseline."""
    from cytoresp.datasets import simulate_longitudinal

    table = simulate_longitudinal(24, seed=77, visits=(0, 3)).panel
    pid, month = table["patient_id"], table["month"]
    drop = (pid.isin(["P0001", "P0002", "P0003"]) & (month == 3)) | ((pid == "P0004")
                                                                     & (month == 0))
    path = tmp_path_factory.mktemp("visits") / "new.csv"
    table[~drop.to_numpy()].to_csv(path, index=False)
    return path


def test_predict_scores_each_patient_at_its_latest_landmark(landmark_cache, mixed_visits,
                                                           tmp_path, capsys):
    out = tmp_path / "preds.csv"
    assert run("predict", "--model", str(landmark_cache / "model"), "--input",
               str(mixed_visits), "--output", str(out), "--explain", "3") == 0
    assert "scored 24 patients" in capsys.readouterr().err
    table = pd.read_csv(out, keep_default_na=False, dtype=str).set_index("patient_id",
                                                                         drop=False)
    assert list(table.columns) == VISIT_COLUMNS
    assert len(table) == 24
    assert set(table.loc[["P0001", "P0002", "P0003"], "landmark_month"]) == {"0"}
    assert set(table.loc[["P0001", "P0002", "P0003"], "early_nonresponse_alert"]) == {""}
    on = table[table["landmark_month"] == "3"]
    assert len(on) == 21 and set(on["early_nonresponse_alert"]) <= {"True", "False"}
    # a change driver where a landmark head scored, the baseline head's drivers elsewhere
    by_base = on["warnings"].str.contains("did not beat the baseline head")
    assert not on.loc[by_base, "drivers"].str.contains(" Δ").any()
    assert on.loc[~by_base, "drivers"].str.contains(" Δ").any()
    assert table.loc["P0004", "p_response_baseline"] == ""
    assert "no baseline (month 0) sample" in table.loc["P0004", "warnings"]


def test_predict_without_visits_keeps_the_sample_table(landmark_cache, tmp_path):
    """A landmark model scores a panel without visits like any model: one row per sample."""
    from cytoresp.datasets import simulate_cohort

    new, out = tmp_path / "new.csv", tmp_path / "preds.csv"
    simulate_cohort(12, seed=8).panel.to_csv(new, index=False)
    assert run("predict", "--model", str(landmark_cache / "model"), "--input", str(new),
               "--output", str(out)) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:3]) == ["sample_id", "p_response_ifnb", "p_response_ga"]
    assert len(table) == 12


def test_report_shows_the_trajectory(landmark_cache, mixed_visits, tmp_path):
    page = tmp_path / "r.html"
    assert run("report", "--model", str(landmark_cache / "model"), "--input",
               str(mixed_visits), "--sample", "P0010-m3", "--out", str(page)) == 0
    html = page.read_text()
    assert 'id="trajectory"' in html and "patient P0010" in html
    assert 'id="p-landmark-0"' in html and 'id="p-landmark-3"' in html
    assert "month 0</th><th>month 3</th>" in html  # values per visit of the top drivers
    assert 'id="alert"' in html  # the alert, or its absence, with the threshold
